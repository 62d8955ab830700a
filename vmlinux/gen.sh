#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Regenerate vmlinux/<arch>/vmlinux_<MAJ><MIN>.h from the running kernel's BTF
# and point vmlinux/<arch>/vmlinux.h at it. Needs bpftool and /sys/kernel/btf/vmlinux.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
btf=${BTF:-/sys/kernel/btf/vmlinux}
arch=$(uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
ver=$(uname -r | sed -E 's/^([0-9]+)\.([0-9]+).*/\1\2/')
[ -r "$btf" ] || { echo "gen.sh: '$btf' is not readable: this kernel has no BTF" >&2; exit 1; }
mkdir -p "$dir/$arch"
out="$dir/$arch/vmlinux_$ver.h"
bpftool btf dump file "$btf" format c > "$out.tmp"
mv "$out.tmp" "$out"
ln -sf "vmlinux_$ver.h" "$dir/$arch/vmlinux.h"
echo "gen.sh: wrote $out"
