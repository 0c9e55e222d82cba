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

# (tests/qemu_handoff*.c link the hand-off tool's code: see the QEMU block)
TEST_SRCS  := $(filter-out tests/qemu_handoff%.c,$(wildcard tests/*.c))
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
TOOL_PROGS := $(TOOLBIN)/vmsplice-handoff $(TOOLBIN)/vmsplice-bench

.SECONDARY: $(LIB_OBJS)

.PHONY: all deps tree kernel-debug kernel-bench tests tools check demo demo-handoff bench bench-handoff clean distclean

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

# ---- QEMU hand-off: tools/vmsplice-move/qemu, tests/qemu_handoff*.c -------
# vmsplice-move-qemu (the qemu-handoff command, standalone for now), its
# tests, and the freestanding multiboot guest they boot under QEMU.
QEMU_DIR    := $(TOOLDIR)/qemu
QEMU_SRCS   := $(filter-out $(QEMU_DIR)/main.c,$(wildcard $(QEMU_DIR)/*.c))
QEMU_HDRS   := $(wildcard $(QEMU_DIR)/*.h)
QEMU_TOOL   := $(TOOLBIN)/vmsplice-move-qemu
QEMU_GUEST  := $(TESTBIN)/qemu/guest.elf
QEMU_TESTS  := $(TESTBIN)/qemu_handoff_inject $(TESTBIN)/qemu_handoff
GUEST_CFLAGS := -m32 -ffreestanding -fno-pie -no-pie -nostdlib -static -O2 \
              -Wall -Wextra -Werror -fno-stack-protector \
              -fno-asynchronous-unwind-tables -Wl,--build-id=none \
              -Wl,--no-warn-rwx-segments
HANDOFF_MIB ?= 512 2048

tools: $(QEMU_TOOL)
tests: $(QEMU_TESTS) $(QEMU_GUEST)

$(QEMU_TOOL): $(QEMU_SRCS) $(QEMU_DIR)/main.c $(QEMU_HDRS) | $(KHDR)
	@mkdir -p $(dir $@)
	$(CC) $(TOOL_CFLAGS) -DVSM_QEMU_STANDALONE -o $@ $(QEMU_SRCS) $(QEMU_DIR)/main.c -ljson-c

$(TESTBIN)/qemu_handoff_inject: tests/qemu_handoff_inject.c $(QEMU_DIR)/inject.c $(QEMU_DIR)/inject.h | $(KHDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(QEMU_DIR)/inject.c $(LDLIBS)

$(TESTBIN)/qemu_handoff: tests/qemu_handoff.c $(QEMU_TOOL) $(QEMU_GUEST) | $(KHDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -ljson-c $(LDLIBS)

$(QEMU_GUEST): tests/qemu/guest.c tests/qemu/guest.ld
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -T tests/qemu/guest.ld -o $@ $<

# QEMU's own localhost migration against the hand-off, on the bench kernel.
bench-handoff: deps kernel-bench
	@$(MAKE) --no-print-directory tools tests
	@tests/vm/run --kernel bench --mem 6144 --timeout 3600 -- \
		tools/vmsplice-move/qemu/bench-handoff $(TOOLBIN) $(QEMU_GUEST) $(HANDOFF_MIB)
# The hand-off as a demo, on the bench kernel (make demo can call it).
demo-handoff: deps kernel-bench
	@$(MAKE) --no-print-directory tools tests
	@tests/vm/run --kernel bench --mem 2048 -- \
		tools/vmsplice-move/qemu/demo-handoff $(TOOLBIN) $(QEMU_GUEST) $(DEMO_MIB)
# ---- end of the QEMU hand-off block --------------------------------------

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
