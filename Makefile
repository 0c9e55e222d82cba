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

.SECONDARY: $(LIB_OBJS)

.PHONY: all deps tree kernel-debug kernel-bench tests check check-unpatched check-big demo bench bench-kernel-cost clean distclean

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

# lib/test_hmm's uapi, from the extracted tree (not a uapi header).
$(TESTBIN)/vmsplice_notifier: CFLAGS += -iquote $(KSRC)/lib
$(TESTBIN)/vmsplice_notifier: $(KSRC)/lib/test_hmm_uapi.h

# ---- tools/vmsplice-move (library, command, install): its own file ----
include tools/vmsplice-move/tool.mk
# ---- end tools/vmsplice-move ----

# ---- mremap(MREMAP_DUP): the snapshot helpers' test, the benchmark ----
# The test of vsm_snapshot() links the library.
$(TESTBIN)/vsm_snapshot: tests/vsm_snapshot.c $(LIB_OBJS) $(LIB_HDRS) $(VSM_A) $(VSM_LIB_HDRS) | $(KHDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(TOOLDIR)/lib -o $@ $< $(LIB_OBJS) $(VSM_A) $(VSM_LIBS) $(LDLIBS)

# dup-bench: MREMAP_DUP against fork(), memcpy() and memfd + MAP_PRIVATE
# (also `vmsplice-move bench --dup`).
tools: $(TOOLBIN)/dup-bench
$(TOOLBIN)/dup-bench: $(TOOLDIR)/bench/dup_bench.c $(VSM_A) $(VSM_LIB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(TOOL_CFLAGS) -DVSM_DUP_BENCH_STANDALONE -o $@ $< $(VSM_A) $(VSM_LIBS)
# ---- end mremap(MREMAP_DUP) ----

# The kernel's per-page cost of giving and taking, one process, against
# UFFDIO_MOVE (make bench times whole two-process hand-overs).
bench-kernel-cost: deps kernel-bench
	@$(MAKE) --no-print-directory VSM_KHDR=$(BENCH_KHDR) tools
	@tests/vm/run --bzimage $(BUILD)/kernel-bench/arch/x86/boot/bzImage --mem 3072 --timeout 1800 \
		--append "$(BENCH_APPEND)" -- $(VSM_CMD) bench --kernel-cost

# ---- QEMU hand-off: tools/vmsplice-move/qemu, tests/qemu_handoff*.c -------
# `vmsplice-move qemu-handoff` is linked into the command by tool.mk
# (tools/vmsplice-move/qemu/*.c); here: its tests, the freestanding
# multiboot guest they boot under QEMU, the benchmark and the demo.
QEMU_DIR    := $(TOOLDIR)/qemu
QEMU_GUEST  := $(TESTBIN)/qemu/guest.elf
QEMU_TESTS  := $(TESTBIN)/qemu_handoff_inject $(TESTBIN)/qemu_handoff_stream \
               $(TESTBIN)/qemu_handoff
GUEST_CFLAGS := -m32 -ffreestanding -fno-pie -no-pie -nostdlib -static -O2 \
              -Wall -Wextra -Werror -fno-stack-protector \
              -fno-asynchronous-unwind-tables -Wl,--build-id=none \
              -Wl,--no-warn-rwx-segments
HANDOFF_MIB ?= 512 2048

.PHONY: demo-handoff bench-handoff check-handoff-vm
tests: $(QEMU_TESTS) $(QEMU_GUEST)

$(TESTBIN)/qemu_handoff_inject: tests/qemu_handoff_inject.c $(QEMU_DIR)/inject.c $(QEMU_DIR)/inject.h | $(KHDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(QEMU_DIR)/inject.c $(LDLIBS)

$(TESTBIN)/qemu_handoff_stream: tests/qemu_handoff_stream.c $(QEMU_DIR)/stream.c $(QEMU_DIR)/stream.h | $(KHDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(QEMU_DIR)/stream.c $(LDLIBS)

# The test runs the command (VSM_CMD) and boots the guest.
$(TESTBIN)/qemu_handoff: tests/qemu_handoff.c $(LIB_OBJS) $(LIB_HDRS) $(VSM_CMD) $(QEMU_GUEST) | $(KHDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DVSM_CMD='"$(abspath $(VSM_CMD))"' -o $@ $< $(LIB_OBJS) -ljson-c $(LDLIBS)

$(QEMU_GUEST): tests/qemu/guest.c tests/qemu/guest.ld
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -T tests/qemu/guest.ld -o $@ $<

# QEMU's own localhost migration against the hand-off, on the bench kernel.
bench-handoff: deps kernel-bench
	@$(MAKE) --no-print-directory VSM_KHDR=$(BENCH_KHDR) tools $(QEMU_GUEST)
	@tests/vm/run --bzimage $(BUILD)/kernel-bench/arch/x86/boot/bzImage --mem 6144 --timeout 3600 -- \
		$(QEMU_DIR)/bench-handoff $(VSM_CMD) $(QEMU_GUEST) $(HANDOFF_MIB)
# The hand-off as a demo, on the bench kernel (make demo runs it too).
demo-handoff: deps kernel-bench
	@$(MAKE) --no-print-directory VSM_KHDR=$(BENCH_KHDR) tools $(QEMU_GUEST)
	@tests/vm/run --bzimage $(BUILD)/kernel-bench/arch/x86/boot/bzImage --mem 2048 -- \
		$(QEMU_DIR)/demo-handoff $(VSM_CMD) $(QEMU_GUEST) $(DEMO_QEMU_MIB)
# Every hand-off test in the patched debug VM (nested TCG, 11-23 min);
# make check runs the move-path subset there and all of them on the host.
check-handoff-vm: deps kernel-debug tests
	VMSPLICE_HANDOFF_ALL=1 VMSPLICE_REQUIRE_MOVE=1 tests/vm/run \
		--bzimage $(BUILD)/kernel-debug/arch/x86/boot/bzImage --timeout 2400 -- \
		$(TESTBIN)/qemu_handoff
# ---- end of the QEMU hand-off block --------------------------------------

check: deps
	@scripts/check $(BUILD)

# make check with stock 6.12 booted in the VM: must be red (full kernel build).
check-unpatched: deps
	@scripts/check-unpatched $(BUILD)

# ---- tools/vmsplice-move: make demo, make bench, make check-big ----
# The demo and the benchmark need only the bench kernel (no debug options:
# KASAN and lockdep would make the timings meaningless); the tool compiles
# against the uapi headers of that same build.
BENCH_KHDR := $(BUILD)/kernel-bench/usr/include

# The region hand-off, then the QEMU hand-off (a DEMO_QEMU_MIB guest: QEMU
# is emulated inside the emulated VM), in one boot.
DEMO_QEMU_MIB ?= 128
demo: deps kernel-bench
	@$(MAKE) --no-print-directory VSM_KHDR=$(BENCH_KHDR) tools $(QEMU_GUEST)
	@tests/vm/run --bzimage $(BUILD)/kernel-bench/arch/x86/boot/bzImage --mem 2048 -- \
		sh -c '$(TOOLDIR)/demo/demo.sh $(VSM_CMD) $(DEMO_MIB) && \
		$(QEMU_DIR)/demo-handoff $(VSM_CMD) $(QEMU_GUEST) $(DEMO_QEMU_MIB)'

# The benchmark matrix, all in one boot: BENCH_ARGS="--csv" or "--json",
# "-s 4M,64M -k 4k,thp" to narrow it (see vmsplice-move(1)).
# BENCH_APPEND: guest kernel arguments, e.g. "idle=poll" (idle vCPUs spin
# instead of halting, which under TCG takes a tenth of a millisecond or
# more to wake from: see Documentation/mm/vmsplice-move.rst).
BENCH_ARGS ?=
BENCH_APPEND ?=
bench: deps kernel-bench
	@$(MAKE) --no-print-directory VSM_KHDR=$(BENCH_KHDR) tools
	@tests/vm/run --bzimage $(BUILD)/kernel-bench/arch/x86/boot/bzImage --mem 3072 --timeout 1800 \
		--append "$(BENCH_APPEND)" -- $(VSM_CMD) bench $(BENCH_ARGS)

# The slow tool tests kept out of make check: the 1 GiB hand-off, on this
# kernel and in the patched debug VM.
check-big: deps kernel-debug tests
	VMSPLICE_TEST_BIG=1 $(TESTBIN)/tool_proto
	VMSPLICE_TEST_BIG=1 tests/vm/run --bzimage $(BUILD)/kernel-debug/arch/x86/boot/bzImage --mem 3072 --timeout 1800 -- $(TESTBIN)/tool_proto
# ---- end tools/vmsplice-move ----

# ---------------------------------------------------------------- mutate
# Mutation testing: remove each safety check of the kernel change in turn
# (the table in scripts/mutate), rebuild the debug kernel incrementally in
# its own tree (build/mutate), run the move tests in the VM, and print
# which tests went red.  Not part of make check: 5 to 15 minutes a mutant
# under TCG (a check no test catches runs the whole suite).  Without
# building anything: scripts/mutate --check.
#   make mutate MUTATE_ARGS="--only folio_ksm,folio_mapped --fuzz"
MUTATE_ARGS ?=
.PHONY: mutate
mutate: deps
	@scripts/mutate --build $(BUILD)/mutate $(MUTATE_ARGS)
# ------------------------------------------------------------ end mutate

clean:
	rm -rf $(TESTBIN) $(TOOLBIN)

distclean:
	rm -rf $(BUILD)
