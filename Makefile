# SPDX-License-Identifier: GPL-2.0
#
# vmsplice-move: the two commands are "make demo" and "make check".
# See README.md.

BUILD      ?= $(CURDIR)/build
KSRC       := $(BUILD)/linux
KHDR       := $(BUILD)/kernel-debug/usr/include
TESTBIN    := $(BUILD)/tests
DEMO_MIB   ?= 256

CC         ?= gcc
CFLAGS     := -std=gnu11 -O2 -g -Wall -Wextra -Werror \
              -isystem $(KHDR) -isystem $(KSRC)/tools/testing/selftests -Itests
LDLIBS     := -lpthread

TEST_SRCS  := $(wildcard tests/*.c)
TEST_PROGS := $(patsubst tests/%.c,$(TESTBIN)/%,$(TEST_SRCS))
LIB_SRCS   := $(wildcard tests/lib/*.c)
LIB_OBJS   := $(patsubst tests/%.c,$(TESTBIN)/%.o,$(LIB_SRCS))
LIB_HDRS   := $(wildcard tests/lib/*.h)

# tools/vmsplice-move: the library, the demo and the benchmark
TOOLDIR    := tools/vmsplice-move
TOOLBIN    := $(BUILD)/tools
VSM_LIB    := $(TOOLBIN)/libvmsplice-move.a
VSM_HDRS   := $(wildcard $(TOOLDIR)/lib/*.h)
TOOL_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -isystem $(KHDR)
TOOL_PROGS := $(TOOLBIN)/vmsplice-handoff $(TOOLBIN)/vmsplice-bench \
              $(TOOLBIN)/dup-bench

.SECONDARY: $(LIB_OBJS)

.PHONY: all deps tree kernel-debug kernel-bench tests tools check demo bench clean distclean

all: kernel-debug tests tools

deps:
	@scripts/install-deps

tree: deps
	@scripts/prepare-tree $(BUILD)

kernel-debug: deps
	@scripts/build-kernel debug $(BUILD)

kernel-bench: deps
	@scripts/build-kernel bench $(BUILD)

tests: $(TEST_PROGS)

# Tests compile against the extracted tree's kselftest harness and the
# 6.12 uapi headers that the debug kernel build installs.
$(KHDR) $(KSRC)/tools/testing/selftests/kselftest_harness.h:
	@$(MAKE) --no-print-directory kernel-debug

$(TESTBIN)/lib/%.o: tests/lib/%.c $(LIB_HDRS) | $(KHDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(TESTBIN)/%: tests/%.c $(LIB_OBJS) $(LIB_HDRS) | $(KHDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS)

# The test of the library's snapshot helpers links the library.
$(TESTBIN)/vsm_snapshot: tests/vsm_snapshot.c $(LIB_OBJS) $(LIB_HDRS) $(VSM_LIB) $(VSM_HDRS) | $(KHDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(TOOLDIR)/lib -o $@ $< $(LIB_OBJS) $(VSM_LIB) $(LDLIBS)

tools: $(TOOL_PROGS)

$(TOOLBIN)/lib/%.o: $(TOOLDIR)/lib/%.c $(VSM_HDRS) | $(KHDR)
	@mkdir -p $(dir $@)
	$(CC) $(TOOL_CFLAGS) -c -o $@ $<

$(VSM_LIB): $(patsubst $(TOOLDIR)/lib/%.c,$(TOOLBIN)/lib/%.o,$(wildcard $(TOOLDIR)/lib/*.c))
	$(AR) rcs $@ $^

$(TOOLBIN)/vmsplice-handoff: $(TOOLDIR)/demo/handoff.c $(VSM_LIB) $(VSM_HDRS)
	$(CC) $(TOOL_CFLAGS) -o $@ $< $(VSM_LIB)

$(TOOLBIN)/vmsplice-bench: $(TOOLDIR)/bench/vmsplice_bench.c $(VSM_LIB) $(VSM_HDRS)
	$(CC) $(TOOL_CFLAGS) -o $@ $< $(VSM_LIB)

$(TOOLBIN)/dup-bench: $(TOOLDIR)/bench/dup_bench.c $(VSM_LIB) $(VSM_HDRS)
	$(CC) $(TOOL_CFLAGS) -o $@ $< $(VSM_LIB)

check: deps
	@scripts/check $(BUILD)

# The demo runs on the bench kernel: the debug options (KASAN, lockdep)
# would make the timings meaningless.
demo: deps kernel-bench
	@$(MAKE) --no-print-directory tools
	@tests/vm/run --kernel bench --mem 2048 -- $(TOOLBIN)/vmsplice-handoff $(DEMO_MIB)

# Benchmarks run on the bench kernel (no debug options), all in one boot.
BENCH_ARGS ?= --csv
bench: deps kernel-bench
	@$(MAKE) --no-print-directory tools
	@tests/vm/run --kernel bench --mem 3072 --timeout 1800 -- $(TOOLBIN)/vmsplice-bench $(BENCH_ARGS)

clean:
	rm -rf $(TESTBIN) $(TOOLBIN)

distclean:
	rm -rf $(BUILD)
