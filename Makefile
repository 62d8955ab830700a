# SPDX-License-Identifier: BSD-2-Clause
# pysamp-bpf build. Artefacts in .output/, binaries at the top.
#   make            build pysamp-bpf (installs missing Debian packages first)
#   make deps       install every Debian package the build and tests need
#   make run        build, start a demo Python program and profile it
#   make test       the whole suite (unit under ASan/UBSan, fuzz, BPF, integration)
#   make bench      overhead benchmark (bench/overhead.py)
#   V=1             show commands

OUTPUT := .output
CLANG ?= clang
LLVM_STRIP ?= llvm-strip
BPFTOOL ?= bpftool
CC ?= gcc
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
VMLINUX := vmlinux/$(ARCH)/vmlinux.h

DEB_PACKAGES := clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config make gcc \
	libc6-dev libclang-rt-14-dev valgrind python3 procps libmicrohttpd-dev \
	libcurl4-openssl-dev curl util-linux libsqlite3-dev sqlite3 libjson-c-dev chromium \
	protobuf-c-compiler libprotobuf-c-dev golang-go tmux

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wvla \
	-Wformat=2 -Wundef -fno-common
CFLAGS ?= -O2 -g
USER_CFLAGS := -std=gnu11 $(WARN) -Iinclude -Iuser -I$(OUTPUT) -D_GNU_SOURCE
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Wextra -Werror \
	-Wno-unused-parameter -Iinclude -I$(dir $(VMLINUX))
# System include dirs for BPF, after our own (libbpf-bootstrap's -idirafter trick).
CLANG_BPF_SYS_INCLUDES := $(shell $(CLANG) -v -E - </dev/null 2>&1 \
	| sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')
# libbpf static; libelf, libz, libmicrohttpd (--listen), libcurl (--push) and json-c dynamic.
LIBBPF_A := $(firstword $(wildcard /usr/lib/$(shell $(CC) -print-multiarch)/libbpf.a /usr/lib64/libbpf.a /usr/lib/libbpf.a))
# protobuf-c (pprof output) static too: one fewer library for hosts to carry.
PROTOBUF_C_A := $(firstword $(wildcard /usr/lib/$(shell $(CC) -print-multiarch)/libprotobuf-c.a) -lprotobuf-c)
AGENT_LDLIBS := $(LIBBPF_A) -lelf -lz -lmicrohttpd -lcurl -ljson-c $(PROTOBUF_C_A) -lm
COLLECTOR_LDLIBS := -lmicrohttpd -lsqlite3 -lcurl -ljson-c -lprotobuf-c -lz -lm
# Tests link every module.
LDLIBS := $(LIBBPF_A) -lelf -lz -lmicrohttpd -lcurl -lsqlite3 -ljson-c -lprotobuf-c -lm

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_HDRS := $(wildcard bpf/*.bpf.h) $(wildcard include/*.h)
USER_SRCS := $(wildcard user/*.c)
USER_HDRS := $(wildcard user/*.h) $(wildcard include/*.h)
USER_OBJS := $(patsubst user/%.c,$(OUTPUT)/%.o,$(USER_SRCS))
# main.c is the agent's entry point, collector.c the collector's; the rest is a library both
# link from an archive (each binary takes only the modules it uses).
LIB_SRCS := $(filter-out user/main.c user/collector.c,$(USER_SRCS))
# Protocol buffers (pprof's profile.proto) compiled by protoc-c into .output/, part of the library.
PROTOS := $(wildcard user/*.proto)
PROTO_SRCS := $(patsubst user/%.proto,$(OUTPUT)/%.pb-c.c,$(PROTOS))
PROTO_HDRS := $(PROTO_SRCS:.c=.h)
LIB_OBJS := $(patsubst user/%.c,$(OUTPUT)/%.o,$(LIB_SRCS)) $(PROTO_SRCS:.c=.o)
LIB_A := $(OUTPUT)/libpysamp.a

# Sanitizer build of every user module but main.c, for unit tests.
SAN_DIR := $(OUTPUT)/san
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SAN_OBJS := $(patsubst user/%.c,$(SAN_DIR)/%.o,$(LIB_SRCS)) \
	$(patsubst $(OUTPUT)/%.pb-c.c,$(SAN_DIR)/%.pb-c.o,$(PROTO_SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(SAN_DIR)/%,$(UNIT_SRCS))
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(OUTPUT)/fuzz/%,$(FUZZ_SRCS))

.PHONY: all deps run test unit fuzz bench bench-collector clean format lint install check-deps
.DELETE_ON_ERROR:
.SECONDARY:

all: check-deps pysamp-bpf pysamp-collector

# Every build checks the Debian packages (a fraction of a second) and installs
# what is missing; `make deps` does the same and says so when nothing is.
check-deps:
	@$(MAKE) --no-print-directory -s deps DEPS_QUIET=1

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' \
			|| missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "deps: run as root (sudo make deps) to install$$missing" >&2; exit 1; fi; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing \
			|| { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; }; \
	elif [ -z "$(DEPS_QUIET)" ]; then echo "deps: all Debian packages present"; fi
	@# The web UI's assets come from the npm registry (web/package.json): Node.js and npm from
	@# Debian when the machine has none.
	@command -v npm >/dev/null 2>&1 || { echo "deps: installing nodejs npm"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm; }

$(OUTPUT) $(OUTPUT)/fuzz $(SAN_DIR):
	$(Q)mkdir -p $@

$(VMLINUX):
	$(call msg,GEN,$@)
	$(Q)./vmlinux/gen.sh

# BPF object -> linked -> stripped of DWARF (BTF stays) -> skeleton.
$(OUTPUT)/%.tmp.bpf.o: bpf/%.bpf.c $(BPF_HDRS) $(VMLINUX) | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) $(CLANG_BPF_SYS_INCLUDES) -c $< -o $@

$(OUTPUT)/%.bpf.o: $(OUTPUT)/%.tmp.bpf.o
	$(call msg,LINK,$@)
	$(Q)$(BPFTOOL) gen object $@ $<
	$(Q)$(LLVM_STRIP) -g $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

$(OUTPUT)/%.o: user/%.c $(USER_HDRS) $(OUTPUT)/pysamp.skel.h $(PROTO_HDRS) | $(OUTPUT)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(USER_CFLAGS) -c $< -o $@

$(OUTPUT)/%.pb-c.c $(OUTPUT)/%.pb-c.h: user/%.proto | $(OUTPUT)
	$(call msg,PROTOC,$@)
	$(Q)protoc-c --c_out=$(OUTPUT) --proto_path=user $<

# Generated code: compiled without the project's warning set (it is not ours to fix).
$(OUTPUT)/%.pb-c.o: $(OUTPUT)/%.pb-c.c $(OUTPUT)/%.pb-c.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -I$(OUTPUT) -c $< -o $@

$(SAN_DIR)/%.pb-c.o: $(OUTPUT)/%.pb-c.c $(OUTPUT)/%.pb-c.h | $(SAN_DIR)
	$(call msg,CC-SAN,$@)
	$(Q)$(CC) $(SAN_FLAGS) -I$(OUTPUT) -c $< -o $@

$(LIB_A): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

pysamp-bpf: $(OUTPUT)/main.o $(LIB_A)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(AGENT_LDLIBS) -o $@

pysamp-collector: $(OUTPUT)/collector.o $(OUTPUT)/web_assets.o $(LIB_A)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(COLLECTOR_LDLIBS) -o $@

# The web UI (web/src) and its vendored npm assets, embedded in the collector: it serves them
# with no files to install and no network at run time. `npm ci` installs exactly what
# web/package-lock.json pins (also playwright-core, which drives Chromium in the UI test).
WEB_STAMP := web/node_modules/.package-lock.json
WEB_ASSETS := /=web/src/index.html /assets/app.js=web/src/app.js /assets/app.css=web/src/app.css \
	/assets/uPlot.iife.min.js=web/node_modules/uplot/dist/uPlot.iife.min.js \
	/assets/uPlot.min.css=web/node_modules/uplot/dist/uPlot.min.css

$(WEB_STAMP): web/package.json web/package-lock.json
	$(call msg,NPM,web/node_modules)
	$(Q)cd web && npm ci --no-audit --no-fund --loglevel=error
	$(Q)touch $@

$(OUTPUT)/web_assets.S: web/embed.sh $(wildcard web/src/*) $(WEB_STAMP) | $(OUTPUT)
	$(call msg,EMBED,$@)
	$(Q)web/embed.sh $@ $(WEB_ASSETS)

$(OUTPUT)/web_assets.o: $(OUTPUT)/web_assets.S
	$(call msg,AS,$@)
	$(Q)$(CC) -c $< -o $@

$(SAN_DIR)/%.o: user/%.c $(USER_HDRS) $(OUTPUT)/pysamp.skel.h $(PROTO_HDRS) | $(SAN_DIR)
	$(call msg,CC-SAN,$@)
	$(Q)$(CC) $(SAN_FLAGS) $(USER_CFLAGS) -c $< -o $@

$(SAN_DIR)/test_%: tests/unit/test_%.c tests/harness.h $(SAN_OBJS) | $(SAN_DIR)
	$(call msg,TEST,$@)
	$(Q)$(CC) $(SAN_FLAGS) $(USER_CFLAGS) -Itests $< $(SAN_OBJS) $(LDLIBS) -o $@

$(OUTPUT)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_SRCS) $(PROTO_SRCS) $(USER_HDRS) $(OUTPUT)/pysamp.skel.h | $(OUTPUT)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined $(USER_CFLAGS) -Wno-unused-command-line-argument \
		$< $(LIB_SRCS) $(PROTO_SRCS) $(LDLIBS) -o $@

unit: check-deps $(UNIT_BINS)
fuzz: check-deps $(FUZZ_BINS)

run: all
	./tests/demo.sh

PYTHON ?= /usr/bin/python3

test: all unit fuzz
	$(Q)$(PYTHON) tests/run.py

# BPF-side cost of the ring buffer vs in-kernel stack-id maps (bench/README-emit.txt).
$(OUTPUT)/emit_cost: bench/emit_cost.c $(OUTPUT)/emitbench.skel.h include/pysamp_abi.h | $(OUTPUT)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(USER_CFLAGS) $< $(AGENT_LDLIBS) -pthread -o $@

# Time, memory and size of every output format for 100,000 unique stacks.
$(OUTPUT)/bench_formats: bench/formats.c $(LIB_A) $(USER_HDRS) | $(OUTPUT)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(USER_CFLAGS) $< $(LIB_A) $(LDLIBS) -o $@

bench: all $(OUTPUT)/emit_cost $(OUTPUT)/bench_formats
	$(OUTPUT)/emit_cost
	$(OUTPUT)/bench_formats
	$(PYTHON) bench/overhead.py

# The store alone (store__ingest, queries with and without hour rollups, bytes per sample).
$(OUTPUT)/store_ingest: bench/store_ingest.c $(LIB_A) $(USER_HDRS) | $(OUTPUT)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(USER_CFLAGS) $< $(LIB_A) $(LDLIBS) -o $@

# The collector end to end: ingest rate, 24-hour query time, bytes per sample (about 15
# minutes), then the store's own figures.
bench-collector: all $(OUTPUT)/store_ingest
	$(PYTHON) bench/collector.py
	$(OUTPUT)/store_ingest

format:
	clang-format -i bpf/*.c bpf/*.h user/*.c user/*.h include/*.h tests/unit/*.c tests/fuzz/*.c tests/*.h

lint:
	clang-tidy $(LIB_SRCS) -- $(USER_CFLAGS)

prefix ?= /usr/local
install: pysamp-bpf pysamp-collector
	install -D -m 0755 pysamp-bpf $(DESTDIR)$(prefix)/sbin/pysamp-bpf
	install -D -m 0755 pysamp-collector $(DESTDIR)$(prefix)/bin/pysamp-collector

clean:
	rm -rf $(OUTPUT) pysamp-bpf pysamp-collector web/node_modules
