#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# `make run`: start tests/demo.py and profile it for a few seconds with the
# freshly built agent, printing its folded stacks (and a summary on stderr).
set -eu
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
secs=${SECONDS_TO_PROFILE:-5}
"$py" tests/demo.py $((secs + 5)) &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT INT TERM
sleep 1
echo "profiling $py (pid $pid) for $secs s at 99 Hz: ./pysamp-bpf -p $pid -d $secs -v" >&2
./pysamp-bpf -p "$pid" -d "$secs" -v
