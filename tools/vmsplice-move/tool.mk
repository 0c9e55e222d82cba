# SPDX-License-Identifier: GPL-2.0
#
# tools/vmsplice-move: libvmsplice-move (static + shared), the vmsplice-move
# command, its man pages and install rules.  Included by the top Makefile;
# BUILD and KHDR come from there.
#
#   make tools                     library + command in $(BUILD)/tools
#   make install PREFIX=/usr DESTDIR=/tmp/stage
#   make tools-asan                the command under ASan/UBSan (tests use it)

TOOLDIR      := tools/vmsplice-move
TOOLBIN      := $(BUILD)/tools
VSM_SOMAJOR  := 1
VSM_VERSION  := 1.0.0
PREFIX       ?= /usr/local
DESTDIR      ?=
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
MANDIR       ?= $(PREFIX)/share/man
BINDIR       ?= $(PREFIX)/bin

# The 6.12 uapi headers (UFFDIO_MOVE for the benchmark); everything else
# compiles against the system's headers.  Named even before they exist:
# gcc skips a missing -isystem directory, and testing for it here, when
# make reads this file, saw none in "make kernel-debug tests tools" on a
# fresh tree, which installs them later in the same run.
VSM_KHDR     ?= $(KHDR)
TOOL_CFLAGS  := -std=gnu11 -O2 -g -Wall -Wextra -Werror -fPIC \
                $(if $(VSM_KHDR),-isystem $(VSM_KHDR)) -I$(TOOLDIR)/lib
VSM_LIBS     := -lxxhash -lpthread
VSM_CMD_LIBS := $(VSM_LIBS) -ljson-c -lm

VSM_LIB_SRCS := $(wildcard $(TOOLDIR)/lib/*.c)
VSM_LIB_HDRS := $(wildcard $(TOOLDIR)/lib/*.h)
VSM_LIB_OBJS := $(patsubst $(TOOLDIR)/lib/%.c,$(TOOLBIN)/lib/%.o,$(VSM_LIB_SRCS))
# Other subcommands (qemu-handoff) are linked in when their sources exist;
# they must not define main().
VSM_EXT_SRCS ?= $(wildcard $(TOOLDIR)/qemu/*.c) $(TOOLDIR)/bench/dup_bench.c \
		$(TOOLDIR)/bench/move_bench.c
VSM_CMD_SRCS := $(wildcard $(TOOLDIR)/cmd/*.c) $(VSM_EXT_SRCS)
VSM_CMD_HDRS := $(wildcard $(TOOLDIR)/cmd/*.h $(TOOLDIR)/qemu/*.h)
VSM_CMD_OBJS := $(patsubst $(TOOLDIR)/%.c,$(TOOLBIN)/%.o,$(VSM_CMD_SRCS))

VSM_A        := $(TOOLBIN)/libvmsplice-move.a
VSM_SO       := $(TOOLBIN)/libvmsplice-move.so.$(VSM_VERSION)
VSM_CMD      := $(TOOLBIN)/vmsplice-move
VSM_PC       := $(TOOLBIN)/vmsplice-move.pc
VSM_ASAN_CMD := $(TOOLBIN)/asan/vmsplice-move
VSM_MAN1     := $(wildcard $(TOOLDIR)/man/man1/*.1)
VSM_MAN3     := $(wildcard $(TOOLDIR)/man/man3/*.3)
ASAN_FLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.PHONY: tools tools-asan install uninstall

tools: $(VSM_A) $(VSM_SO) $(VSM_CMD) $(VSM_PC)

tools-asan: $(VSM_ASAN_CMD)

$(TOOLBIN)/lib/%.o: $(TOOLDIR)/lib/%.c $(VSM_LIB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(TOOL_CFLAGS) -c -o $@ $<

$(TOOLBIN)/cmd/%.o: $(TOOLDIR)/cmd/%.c $(VSM_LIB_HDRS) $(VSM_CMD_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(TOOL_CFLAGS) -I$(TOOLDIR)/cmd -c -o $@ $<

$(TOOLBIN)/qemu/%.o: $(TOOLDIR)/qemu/%.c $(VSM_LIB_HDRS) $(VSM_CMD_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(TOOL_CFLAGS) -I$(TOOLDIR)/cmd -c -o $@ $<

$(TOOLBIN)/bench/%.o: $(TOOLDIR)/bench/%.c $(VSM_LIB_HDRS) $(VSM_CMD_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(TOOL_CFLAGS) -I$(TOOLDIR)/cmd -c -o $@ $<

$(VSM_A): $(VSM_LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(VSM_SO): $(VSM_LIB_OBJS) $(TOOLDIR)/lib/libvmsplice-move.map
	$(CC) -shared -Wl,-soname,libvmsplice-move.so.$(VSM_SOMAJOR) \
		-Wl,--version-script=$(TOOLDIR)/lib/libvmsplice-move.map -o $@ $(VSM_LIB_OBJS) $(VSM_LIBS)
	ln -sf $(notdir $@) $(TOOLBIN)/libvmsplice-move.so.$(VSM_SOMAJOR)
	ln -sf libvmsplice-move.so.$(VSM_SOMAJOR) $(TOOLBIN)/libvmsplice-move.so

# The command links the static library: it runs from the build tree.
$(VSM_CMD): $(VSM_CMD_OBJS) $(VSM_A)
	$(CC) -o $@ $(VSM_CMD_OBJS) $(VSM_A) $(VSM_CMD_LIBS)

# The build tree's own pkg-config file (PKG_CONFIG_PATH=$(TOOLBIN)); install
# writes one for PREFIX.
$(VSM_PC): $(TOOLDIR)/lib/vmsplice-move.pc.in $(MAKEFILE_LIST)
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(TOOLBIN)|' -e 's|@LIBDIR@|$(TOOLBIN)|' \
	    -e 's|@INCLUDEDIR@|$(abspath $(TOOLDIR)/lib)|' -e 's|@VERSION@|$(VSM_VERSION)|' $< > $@

# Sanitizer build: every source compiled again, one binary.
$(VSM_ASAN_CMD): $(VSM_LIB_SRCS) $(VSM_CMD_SRCS) $(VSM_LIB_HDRS) $(VSM_CMD_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -O2,$(TOOL_CFLAGS)) -O1 $(ASAN_FLAGS) -I$(TOOLDIR)/cmd -o $@ \
		$(VSM_LIB_SRCS) $(VSM_CMD_SRCS) $(VSM_CMD_LIBS)

install: tools
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	install -m 0644 $(VSM_A) $(DESTDIR)$(LIBDIR)/
	install -m 0755 $(VSM_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(VSM_SO)) $(DESTDIR)$(LIBDIR)/libvmsplice-move.so.$(VSM_SOMAJOR)
	ln -sf libvmsplice-move.so.$(VSM_SOMAJOR) $(DESTDIR)$(LIBDIR)/libvmsplice-move.so
	install -m 0644 $(TOOLDIR)/lib/vmsplice_move.h $(DESTDIR)$(INCLUDEDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VSM_VERSION)|' \
	    $(TOOLDIR)/lib/vmsplice-move.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/vmsplice-move.pc
	install -m 0755 $(VSM_CMD) $(DESTDIR)$(BINDIR)/
	install -m 0644 $(VSM_MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(VSM_MAN3) $(DESTDIR)$(MANDIR)/man3/

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libvmsplice-move.* $(DESTDIR)$(LIBDIR)/pkgconfig/vmsplice-move.pc \
		$(DESTDIR)$(INCLUDEDIR)/vmsplice_move.h $(DESTDIR)$(BINDIR)/vmsplice-move \
		$(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(VSM_MAN1))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man3/,$(notdir $(VSM_MAN3)))

# Tests of the tool (tests/tool_*.c): the kselftest harness, the library,
# and the command's path (normal and sanitizer builds) compiled in.
$(TESTBIN)/tool_%: tests/tool_%.c tests/tool_util.h $(LIB_OBJS) $(VSM_A) $(VSM_LIB_HDRS) \
		$(VSM_CMD) $(VSM_ASAN_CMD) | $(KHDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(TOOLDIR)/lib -DVSM_CMD='"$(abspath $(VSM_CMD))"' \
		-DVSM_ASAN_CMD='"$(abspath $(VSM_ASAN_CMD))"' -o $@ $< $(LIB_OBJS) $(VSM_A) \
		$(VSM_CMD_LIBS) $(LDLIBS)
