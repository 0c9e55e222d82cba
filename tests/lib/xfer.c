// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include "xfer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/io_uring.h>
#include <linux/mempolicy.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mem.h"
#include "pagemap.h"
#include "pattern.h"
#include "thp.h"
#include "vmstat.h"

#define SEED		0x5eedU
#define GUARD_BYTE	0x5a	/* the pages around a destination */
#define OLD_BYTE	0x77	/* a populated destination's old contents */

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE	0x08	/* Linux 6.11 */
#endif

const char *const xfer_fallback_names[XFER_NR_FALLBACKS] = {
	"not_gift", "partial", "dst_vma", "dst_busy", "not_anon", "ksm",
	"large", "mapped", "pinned", "refs", "swapcache", "memcg", "numa",
	"hwpoison", "busy",
};

bool xfer_kernel_moves(void)
{
	return kernel_unmaps();
}

void xfer_counters_read(struct xfer_counters *c)
{
	char name[64];

	c->moved = vmstat_get("vmsplice_move_pages");
	c->moved_zero = vmstat_get("vmsplice_move_zero_pages");
	c->unmapped = vmstat_get("vmsplice_gift_unmapped");
	c->gift_large = vmstat_get("vmsplice_gift_large");
	c->thp = vmstat_get("vmsplice_move_thp");
	c->large = vmstat_get("vmsplice_move_large");
	c->split = vmstat_get("vmsplice_move_split");
	c->split_pmd = vmstat_get("thp_split_pmd");
	c->split_page = vmstat_get("thp_split_page");
	for (int i = 0; i < XFER_NR_FALLBACKS; i++) {
		snprintf(name, sizeof(name), "vmsplice_move_fallback_%s",
			 xfer_fallback_names[i]);
		c->fallback[i] = vmstat_get(name);
	}
}

long long xfer_counter_delta(const struct xfer_counters *before,
			     const struct xfer_counters *after, const char *name)
{
	static const struct {
		const char *name;
		size_t off;
	} named[] = {
		{ "moved", offsetof(struct xfer_counters, moved) },
		{ "moved_zero", offsetof(struct xfer_counters, moved_zero) },
		{ "unmapped", offsetof(struct xfer_counters, unmapped) },
		{ "gift_large", offsetof(struct xfer_counters, gift_large) },
		{ "folio_thp", offsetof(struct xfer_counters, thp) },
		{ "folio_large", offsetof(struct xfer_counters, large) },
		{ "folio_split", offsetof(struct xfer_counters, split) },
		{ "split_pmd", offsetof(struct xfer_counters, split_pmd) },
		{ "split_page", offsetof(struct xfer_counters, split_page) },
	};

	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
		if (!strcmp(name, named[i].name))
			return *(const long long *)((const char *)after + named[i].off) -
			       *(const long long *)((const char *)before + named[i].off);
	for (int i = 0; i < XFER_NR_FALLBACKS; i++)
		if (!strcmp(name, xfer_fallback_names[i]))
			return after->fallback[i] - before->fallback[i];
	return -1000000;	/* unknown name: fails any comparison */
}

/* What the writer tells the reader over the control pipe. */
struct report {
	bool skipped;
	char skip_reason[160];
	ssize_t wret;
	int werrno;
	bool writer_zero, writer_intact, guards_ok, in_flight;
	char guards_msg[160];
	size_t pattern_off;		/* pattern offset of the first byte */
	size_t npages;
	uint64_t src_pfn[XFER_MAX_PAGES];
	long long rss_drop_kb, thp_drop_kb;
};

static size_t page_size(void)
{
	return (size_t)getpagesize();
}

static size_t round_up(size_t n, size_t a)
{
	return (n + a - 1) & ~(a - 1);
}

static int full_read(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static void *map_memfd(size_t len, int flags)
{
	int fd = memfd_create("xfer", MFD_CLOEXEC);
	void *p;

	if (fd < 0 || ftruncate(fd, len))
		return NULL;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

/*
 * @len bytes at an address aligned to @align, with at least one unused
 * page before and after it inside the same mapping (the guards).
 */
static char *map_guarded(size_t len, size_t align)
{
	size_t ps = page_size();
	char *p = map_anon(len + align + 2 * ps);

	if (!p)
		return NULL;
	return (char *)round_up((uintptr_t)p + ps, align);
}

int xfer_swap_on(char *why, size_t why_len)
{
	char line[256];
	int fd, swaps = 0;
	FILE *f = fopen("/proc/swaps", "re");

	while (f && fgets(line, sizeof(line), f))
		swaps++;
	if (f)
		fclose(f);
	if (swaps > 1)		/* a header line and at least one device */
		return 0;
	fd = open("/sys/block/zram0/disksize", O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, why_len, "no swap and no zram0 device");
		return -1;
	}
	if (write(fd, "64M", 3) != 3 && errno != EBUSY) {
		snprintf(why, why_len, "zram0 disksize: %s", strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	if (system("mkswap /dev/zram0 >/dev/null 2>&1") != 0) {
		snprintf(why, why_len, "mkswap /dev/zram0 failed");
		return -1;
	}
	if (swapon("/dev/zram0", 0)) {
		snprintf(why, why_len, "swapon /dev/zram0: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int xfer_hugetlb_on(char *why, size_t why_len)
{
	if (proc_write("/proc/sys/vm/nr_hugepages", "4")) {
		snprintf(why, why_len, "cannot reserve hugetlb pages: %s",
			 strerror(errno));
		return -1;
	}
	return 0;
}

int xfer_mthp_on(char *why, size_t why_len)
{
	if (proc_write(MTHP_64K, "always")) {
		snprintf(why, why_len, "cannot enable 64 KiB mTHP: %s",
			 strerror(errno));
		return -1;
	}
	return 0;
}

void xfer_mthp_off(void)
{
	proc_write(MTHP_64K, "never");
}

static void *map_hugetlb(size_t len)
{
	void *p = mmap(NULL, round_up(len, XFER_THP), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Whether every page of [p, p + len) is swapped out. */
static bool all_swapped(int pm, const char *p, size_t len)
{
	for (size_t off = 0; off < len; off += page_size())
		if (!(pagemap_entry(pm, p + off) & (1ULL << 62)))
			return false;
	return true;
}

/* Wait (bounded) until mincore() shows [p, p + len) resident. */
static bool wait_resident(char *p, size_t len)
{
	unsigned char vec[XFER_MAX_PAGES];
	size_t n = len / page_size();

	for (int i = 0; i < 1000; i++) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		size_t in = 0;

		if (mincore(p, len, vec))
			return false;
		for (size_t k = 0; k < n; k++)
			in += vec[k] & 1;
		if (in == n)
			return true;
		nanosleep(&ts, NULL);	/* readahead I/O, asynchronous */
	}
	return false;
}

static int pin_with_io_uring(void *addr, size_t len, char *why)
{
	struct io_uring_params params = { 0 };
	struct iovec iov = { .iov_base = addr, .iov_len = len };
	int fd = syscall(__NR_io_uring_setup, 1, &params);

	if (fd < 0) {
		snprintf(why, 160, "io_uring_setup: %s", strerror(errno));
		return -1;
	}
	if (syscall(__NR_io_uring_register, fd, IORING_REGISTER_BUFFERS, &iov, 1)) {
		snprintf(why, 160, "IORING_REGISTER_BUFFERS: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;	/* the pin lasts as long as the ring */
}

/*
 * The VM's /dev/nullb0 completes requests after 3 s (tests/vm/run sets
 * null_blk's irqmode=2, completion_nsec), so that an O_DIRECT read into
 * user memory stays in flight, its pages pinned.  NULL, with the reason in
 * @why, elsewhere.
 */
static const char *slow_blockdev(char *why)
{
	char mode[8] = "";
	int fd = open("/sys/module/null_blk/parameters/irqmode", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, mode, sizeof(mode) - 1) < 0)
			mode[0] = 0;
		close(fd);
	}
	if (atoi(mode) != 2 || access("/dev/nullb0", R_OK)) {
		snprintf(why, 160, "no slow /dev/nullb0 (null_blk irqmode=2)");
		return NULL;
	}
	return "/dev/nullb0";
}

/* An O_DIRECT read of @len bytes into @buf, left in flight (Linux AIO). */
static int aio_read_in_flight(void *buf, size_t len, aio_context_t *ctx,
			      char *why)
{
	struct iocb cb = { 0 }, *cbs[1] = { &cb };
	const char *dev = slow_blockdev(why);
	int fd;

	if (!dev)
		return -1;
	fd = open(dev, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, 160, "open %s: %s", dev, strerror(errno));
		return -1;
	}
	*ctx = 0;
	if (syscall(__NR_io_setup, 1, ctx)) {
		snprintf(why, 160, "io_setup: %s", strerror(errno));
		return -1;
	}
	cb.aio_fildes = fd;
	cb.aio_lio_opcode = IOCB_CMD_PREAD;
	cb.aio_buf = (uintptr_t)buf;
	cb.aio_nbytes = len;
	if (syscall(__NR_io_submit, *ctx, 1, cbs) != 1) {
		snprintf(why, 160, "io_submit: %s", strerror(errno));
		return -1;
	}
	return fd;
}

/* Whether the read of aio_read_in_flight() has not completed yet. */
static bool aio_still_in_flight(aio_context_t ctx)
{
	struct io_event ev;
	struct timespec zero = { 0, 0 };

	return syscall(__NR_io_getevents, ctx, 0, 1, &ev, &zero) == 0;
}

/*
 * Move this process into a new cgroup /sys/fs/cgroup/vmsplice-@name-PID
 * with @ctl enabled above it and, when @knob is set, @knob written @val.
 */
static int join_new_cgroup(const char *ctl, const char *name, const char *knob,
			   const char *val, char *why)
{
	char path[128], enable[32];

	snprintf(enable, sizeof(enable), "+%s", ctl);
	if (proc_write("/sys/fs/cgroup/cgroup.subtree_control", enable)) {
		snprintf(why, 160, "cannot enable the %s controller: %s", ctl,
			 strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "/sys/fs/cgroup/vmsplice-%s-%d", name, getpid());
	if (mkdir(path, 0755) && errno != EEXIST) {
		snprintf(why, 160, "mkdir %.64s: %.40s", path, strerror(errno));
		return -1;
	}
	if (knob) {
		size_t at = strlen(path);

		snprintf(path + at, sizeof(path) - at, "/%s", knob);
		if (proc_write(path, val)) {
			snprintf(why, 160, "%s %s: %.40s", knob, val, strerror(errno));
			return -1;
		}
		path[at] = '\0';
	}
	strcat(path, "/cgroup.procs");
	if (proc_write(path, "0")) {
		snprintf(why, 160, "join %.64s: %.40s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int join_new_memcg(char *why)
{
	return join_new_cgroup("memory", "xfer", NULL, NULL, why);
}

/*
 * Move this process into a new cgroup whose cpuset allows memory on @node
 * only (@node < 0: back to the root cgroup, the new one removed).
 */
static int cpuset_node(int node, char *why)
{
	char path[128], mems[16];

	if (node < 0) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup/vmsplice-cpuset-%d", getpid());
		proc_write("/sys/fs/cgroup/cgroup.procs", "0");
		rmdir(path);
		return 0;
	}
	if (access("/sys/devices/system/node/node1", F_OK)) {
		snprintf(why, 160, "one NUMA node only");
		return -1;
	}
	snprintf(mems, sizeof(mems), "%d", node);
	return join_new_cgroup("cpuset", "cpuset", "cpuset.mems", mems, why);
}

static int bind_node(void *addr, size_t len, int node, char *why)
{
	unsigned long mask = 1UL << node;

	if (access("/sys/devices/system/node/node1", F_OK)) {
		snprintf(why, 160, "one NUMA node only");
		return -1;
	}
	if (syscall(__NR_mbind, addr, len, MPOL_BIND, &mask, 8 * sizeof(mask), 0)) {
		snprintf(why, 160, "mbind: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int uffd_register(void *addr, size_t len, char *why)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { 0 };
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api)) {
		snprintf(why, 160, "userfaultfd: %s", strerror(errno));
		return -1;
	}
	reg.range.start = (uintptr_t)addr;
	reg.range.len = len;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		snprintf(why, 160, "UFFDIO_REGISTER: %s", strerror(errno));
		return -1;
	}
	return uffd;	/* registered as long as it stays open */
}

/*
 * Merge the page at @p with a twin of the same contents through KSM, then
 * unmap the twin: the KSM page is then mapped by @p alone, so that only
 * the taker's KSM check (not its "mapped" check) can refuse it.
 */
static int ksm_alone(int pm, char *p, size_t pattern_off, char *why)
{
	size_t ps = page_size();
	char *twin = map_anon(ps);

	if (access("/sys/kernel/mm/ksm/run", W_OK)) {
		snprintf(why, 160, "KSM not configured");
		return -1;
	}
	if (!twin)
		return -1;
	pattern_fill(twin, ps, SEED, pattern_off);
	if (madvise(p, ps, MADV_MERGEABLE) || madvise(twin, ps, MADV_MERGEABLE) ||
	    proc_write("/sys/kernel/mm/ksm/sleep_millisecs", "0") ||
	    proc_write("/sys/kernel/mm/ksm/pages_to_scan", "1000") ||
	    proc_write("/sys/kernel/mm/ksm/run", "1")) {
		snprintf(why, 160, "KSM set-up: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < 2000; i++) {
		uint64_t a = pagemap_pfn(pm, p), b = pagemap_pfn(pm, twin);
		struct timespec ts = { 0, 5 * 1000 * 1000 };

		if (a && a == b) {
			/* Stop ksmd, keeping the merged page; drop the twin. */
			proc_write("/sys/kernel/mm/ksm/run", "0");
			munmap(twin, ps);
			return 0;
		}
		nanosleep(&ts, NULL);	/* polling ksmd, an asynchronous thread */
	}
	proc_write("/sys/kernel/mm/ksm/run", "2");
	snprintf(why, 160, "ksmd did not merge the pages within 10 s");
	return -1;
}

static ssize_t vmsplice_all(int fd, struct iovec *iov, int n,
			    unsigned int flags);

/* Everything the writer set up that must live until the reader is done. */
struct writer_hold {
	pid_t sharer;
	int hold[2];
	int ring, uffd, aio_fd;
	aio_context_t aio;
};

/*
 * The writer: prepare memory as @c says, vmsplice it, report, wait.  When
 * the pipe cannot hold the whole hand-over (@stream: a host that refuses
 * large pipes, where every page costs a slot), it reports once before the
 * gift too, so that the reader can read while it writes.
 */
static void writer(const struct xfer_case *c, int pipe_wr, int ctl_wr,
		   int go_rd, bool stream)
{
	struct writer_hold h = { .sharer = -1, .hold = { -1, -1 }, .ring = -1,
				 .uffd = -1, .aio_fd = -1 };
	struct report rep = { 0 };
	size_t ps = page_size();
	size_t span = round_up(c->src_off + c->len, ps);
	struct iovec iov[3];
	int niov = 1, pm = pagemap_open();
	char *region = NULL, *src = NULL, *small[2] = { NULL, NULL };
	size_t region_len = 0;
	long long rss, thp;
	bool sharer_changed = false;
	char go;

	if (c->mod == MOD_OTHER_MEMCG && join_new_memcg(rep.skip_reason))
		rep.skipped = true;
	if (c->mod == MOD_LAZYFREE) {
		cpu_set_t cpu0;

		/*
		 * One CPU for the faults, MADV_FREE and the gift: a folio still
		 * in the per-CPU LRU batch its fault put it in is not marked
		 * lazy-free, and the lazy-free batch is drained by the gift's
		 * unmapping on the same CPU.
		 */
		CPU_ZERO(&cpu0);
		CPU_SET(0, &cpu0);
		if (sched_setaffinity(0, sizeof(cpu0), &cpu0)) {
			rep.skipped = true;
			snprintf(rep.skip_reason, sizeof(rep.skip_reason),
				 "sched_setaffinity: %s", strerror(errno));
		}
	}
	if (rep.skipped)
		goto report;

	/* The memory, with a guard page on each side where possible. */
	switch (c->mem) {
	case MEM_ANON:
	case MEM_UNTOUCHED:
	case MEM_FILE:
		src = map_guarded(span, ps);
		break;
	case MEM_THP:
	case MEM_HUGE_ZERO:
		span = round_up(span, XFER_THP);
		src = map_guarded(span, XFER_THP);
		if (src && madvise(src, span, MADV_HUGEPAGE))
			src = NULL;
		break;
	case MEM_MTHP:
		span = round_up(span, MTHP_64K_SIZE);
		src = map_guarded(span, MTHP_64K_SIZE);
		break;
	case MEM_MIXED:
		/* 16 KiB, a whole THP, 16 KiB: three segments, far apart. */
		small[0] = map_guarded(4 * ps, ps);
		small[1] = map_guarded(4 * ps, ps);
		span = XFER_THP;
		src = map_guarded(span, XFER_THP);
		if (src && madvise(src, span, MADV_HUGEPAGE))
			src = NULL;
		if (!small[0] || !small[1])
			src = NULL;
		break;
	case MEM_MEMFD_SHARED:
		region = map_memfd(span + 2 * ps, MAP_SHARED);
		src = region ? region + ps : NULL;
		break;
	case MEM_HUGETLB:
		src = map_hugetlb(span);
		break;
	case MEM_DROPPABLE:
		region = mmap(NULL, span + 2 * ps, PROT_READ | PROT_WRITE,
			      MAP_ANONYMOUS | MAP_DROPPABLE, -1, 0);
		if (region == MAP_FAILED)
			region = NULL;
		src = region ? region + ps : NULL;
		break;
	}
	if (!src) {
		rep.skipped = true;
		snprintf(rep.skip_reason, sizeof(rep.skip_reason), "mmap: %s",
			 strerror(errno));
		goto report;
	}
	if (!region) {
		/* The guards: a page before and after, filled too. */
		region = c->mem == MEM_HUGETLB ? src : src - ps;
		region_len = c->mem == MEM_HUGETLB ? span : span + 2 * ps;
	} else {
		region_len = span + 2 * ps;
	}
	rep.pattern_off = (size_t)(src - region) + c->src_off;

	if ((c->mod == MOD_NUMA || c->mod == MOD_NUMA_CPUSET) &&
	    bind_node(src, span, 0, rep.skip_reason)) {
		rep.skipped = true;
		goto report;
	}
	if (c->mem == MEM_HUGE_ZERO) {
		/* Read only: the huge zero page is mapped, nothing allocated. */
		pattern_fill(region, ps, SEED, 0);
		pattern_fill(src + span, ps, SEED, (size_t)(src + span - region));
		for (size_t off = 0; off < span; off += ps)
			(void)*(volatile char *)(src + off);
	} else if (c->mem == MEM_UNTOUCHED) {
		pattern_fill(region, ps, SEED, 0);
		pattern_fill(src + span, ps, SEED, (size_t)(src + span - region));
	} else {
		pattern_fill(region, region_len, SEED, 0);
	}
	if (c->mem == MEM_MIXED) {
		pattern_fill(small[0], 4 * ps, SEED ^ 1, 0);
		pattern_fill(small[1], 4 * ps, SEED ^ 2, 0);
	}
	if ((c->mem == MEM_THP || c->mem == MEM_MIXED) &&
	    self_smaps_kb("AnonHugePages") < 2048) {
		rep.skipped = true;
		snprintf(rep.skip_reason, sizeof(rep.skip_reason),
			 "no transparent huge page was allocated");
		goto report;
	}

	switch (c->mod) {
	case MOD_PINNED:
		h.ring = pin_with_io_uring(src, span, rep.skip_reason);
		rep.skipped = h.ring < 0;
		break;
	case MOD_AIO_PINNED:
		h.aio_fd = aio_read_in_flight(src + c->src_off, c->len, &h.aio,
					      rep.skip_reason);
		rep.skipped = h.aio_fd < 0;
		break;
	case MOD_LAZYFREE:
		/* MADV_COLD drains this CPU's batch onto the LRU first. */
		if (madvise(src, span, MADV_COLD) || madvise(src, span, MADV_FREE)) {
			rep.skipped = true;
			snprintf(rep.skip_reason, sizeof(rep.skip_reason),
				 "MADV_FREE: %s", strerror(errno));
		}
		break;
	case MOD_SWAPCACHE:
	case MOD_SWAPIN:
		if (madvise(src, span, MADV_PAGEOUT) || !all_swapped(pm, src, span)) {
			rep.skipped = true;
			snprintf(rep.skip_reason, sizeof(rep.skip_reason),
				 "MADV_PAGEOUT did not swap the pages out");
			break;
		}
		/*
		 * SWAPIN: read back by readahead into the swap cache, where
		 * they stay, no swap entry referring to them once mapped.
		 */
		if (c->mod == MOD_SWAPIN &&
		    (madvise(src, span, MADV_WILLNEED) || !wait_resident(src, span))) {
			rep.skipped = true;
			snprintf(rep.skip_reason, sizeof(rep.skip_reason),
				 "MADV_WILLNEED did not read the pages back");
			break;
		}
		/* Mapped again by read faults, which leave the swap cache be. */
		for (size_t off = 0; c->mod == MOD_SWAPIN && off < span; off += ps)
			(void)*(volatile char *)(src + off);
		break;
	case MOD_KSM:
		rep.skipped = ksm_alone(pm, src, (size_t)(src - region), rep.skip_reason);
		break;
	case MOD_MLOCKED:
		if (mlock(src, span)) {
			rep.skipped = true;
			snprintf(rep.skip_reason, sizeof(rep.skip_reason),
				 "mlock: %s", strerror(errno));
		}
		break;
	case MOD_SEALED:
		if (mprotect(src, span, PROT_READ) ||
		    syscall(__NR_mseal, src, span, 0)) {
			rep.skipped = true;
			snprintf(rep.skip_reason, sizeof(rep.skip_reason),
				 "mseal: %s", strerror(errno));
		}
		break;
	case MOD_UFFD:
		h.uffd = uffd_register(src, span, rep.skip_reason);
		rep.skipped = h.uffd < 0;
		break;
	case MOD_STRADDLE: {
		/*
		 * The range with its guards, moved (PTEs, folios whole) so that
		 * its middle lies on a 2 MiB boundary: half of it in one page
		 * table, half in the next.  Unmapping it takes two steps.
		 */
		char *room = map_anon(3 * XFER_THP), *to;
		/* Guard, range, guard: apart, as MADV_HUGEPAGE splits the VMA. */
		char *piece[4] = { region, src, src + span, region + region_len };

		to = room ? (char *)round_up((uintptr_t)room + XFER_THP, XFER_THP) -
			    span / 2 - ((size_t)(src - region)) : NULL;
		for (int i = 0; to && i < 3; i++) {
			size_t n = piece[i + 1] - piece[i];
			char *at = to + (piece[i] - region);

			if (n && mremap(piece[i], n, n, MREMAP_MAYMOVE | MREMAP_FIXED,
					at) != at)
				to = NULL;
		}
		if (!to) {
			rep.skipped = true;
			snprintf(rep.skip_reason, sizeof(rep.skip_reason),
				 "mremap: %s", strerror(errno));
			break;
		}
		src = to + (src - region);
		region = to;
		break;
	}
	case MOD_OUT_OF_ORDER: {
		/*
		 * Swap the mappings of pages 1 and 2 (one folio stays whole,
		 * mapped out of order), then write the pattern again: what
		 * the range reads in address order is what must arrive.
		 */
		char *tmp = map_anon(ps);

		if (!tmp ||
		    mremap(src + ps, ps, ps, MREMAP_MAYMOVE | MREMAP_FIXED, tmp) != tmp ||
		    mremap(src + 2 * ps, ps, ps, MREMAP_MAYMOVE | MREMAP_FIXED,
			   src + ps) != src + ps ||
		    mremap(tmp, ps, ps, MREMAP_MAYMOVE | MREMAP_FIXED,
			   src + 2 * ps) != src + 2 * ps) {
			rep.skipped = true;
			snprintf(rep.skip_reason, sizeof(rep.skip_reason),
				 "mremap: %s", strerror(errno));
			break;
		}
		pattern_fill(region, region_len, SEED, 0);
		break;
	}
	case MOD_HOLE_REFILLED:
		/*
		 * Page 1 scribbled over, then zapped (the folio keeps the
		 * scribble) and written again: a new small page there, in the
		 * same VMA, the rest still the old folio's.
		 */
		memset(src + ps, 0xee, ps);
		if (madvise(src + ps, ps, MADV_DONTNEED)) {
			rep.skipped = true;
			snprintf(rep.skip_reason, sizeof(rep.skip_reason),
				 "MADV_DONTNEED: %s", strerror(errno));
			break;
		}
		pattern_fill(region, region_len, SEED, 0);
		break;
	default:
		break;
	}
	if (rep.skipped)
		goto report;
	if (c->mod == MOD_FORK_SHARED || c->mod == MOD_SWAPCACHE ||
	    c->mod == MOD_FORK_SPLIT) {
		/*
		 * A child that keeps the pages mapped (or their swap entries)
		 * until told to go.  MOD_FORK_SPLIT: it maps the THP by PTEs
		 * (mprotect() of one page splits its PMD, not the parent's),
		 * and at the end checks that nothing the reader did after
		 * the hand-over reached its copy (exit status 3 if it did).
		 */
		int ready[2];

		if (pipe(h.hold) || pipe(ready))
			_exit(2);
		h.sharer = fork();
		if (h.sharer == 0) {
			close(h.hold[1]);
			if (c->mod == MOD_FORK_SPLIT &&
			    mprotect(src + ps, ps, PROT_READ))
				_exit(2);
			if (write(ready[1], "r", 1) != 1)
				_exit(2);
			read(h.hold[0], &go, 1);
			if (c->mod == MOD_FORK_SPLIT &&
			    pattern_check(src, c->len, SEED, src - region) != (size_t)-1)
				_exit(3);
			_exit(0);
		}
		close(h.hold[0]);
		close(ready[1]);
		if (read(ready[0], &go, 1) != 1)
			_exit(2);
		close(ready[0]);
	}

	rep.npages = span / ps < XFER_MAX_PAGES ? span / ps : XFER_MAX_PAGES;
	for (size_t i = 0; i < rep.npages; i++)
		rep.src_pfn[i] = c->mod == MOD_SWAPCACHE ? 0 :
				 pagemap_pfn(pm, src + i * ps);

	if (stream && write(ctl_wr, &rep, sizeof(rep)) != sizeof(rep))
		_exit(2);
	iov[0].iov_base = src + c->src_off;
	iov[0].iov_len = c->len;
	if (c->mod == MOD_DUP) {
		iov[0].iov_len = c->len / 2;
		iov[1] = iov[0];
		niov = 2;
	}
	if (c->mem == MEM_MIXED) {
		iov[0] = (struct iovec){ small[0], 4 * ps };
		iov[1] = (struct iovec){ src, XFER_THP };
		iov[2] = (struct iovec){ small[1], 4 * ps };
		niov = 3;
	}
	/*
	 * Anonymous memory mapped in the given VMAs, from a page-table walk
	 * (smaps): RssAnon is the mm's per-CPU counter read without its CPUs'
	 * deltas, one page or more off now and then on 2 CPUs; and the whole
	 * process (smaps_rollup) counts a stack page first touched on the
	 * way into vmsplice(), which one random stack offset in a few does.
	 */
	rss = smaps_ranges_kb(iov, niov, "Anonymous");
	thp = smaps_ranges_kb(iov, niov, "AnonHugePages");
	if (c->mem == MEM_FILE) {
		char path[] = "/tmp/vmsplice-xfer-XXXXXX";
		int fd = mkstemp(path);
		loff_t off = c->src_off;

		unlink(path);
		if (fd < 0 || write(fd, src, span) != (ssize_t)span)
			_exit(2);
		rep.wret = splice(fd, &off, pipe_wr, NULL, c->len, c->wflags);
		close(fd);
	} else {
		unsigned int wflags = c->wflags;

		/* Kernels without the change: the old copy path, data only. */
		if (!kernel_unmaps())
			wflags &= ~(unsigned int)SPLICE_F_UNMAP;
		/* Streaming: a vmsplice() into a pipe stops when it is full. */
		rep.wret = stream ? vmsplice_all(pipe_wr, iov, niov, wflags) :
				    vmsplice(pipe_wr, iov, niov, wflags);
	}
	rep.werrno = errno;
	if (c->mod == MOD_AIO_PINNED)
		rep.in_flight = aio_still_in_flight(h.aio);
	rep.rss_drop_kb = rss - smaps_ranges_kb(iov, niov, "Anonymous");
	rep.thp_drop_kb = thp - smaps_ranges_kb(iov, niov, "AnonHugePages");

	/* The writer's view of what it handed over, and of what it kept. */
	if (c->mem != MEM_MIXED) {
		size_t s = round_up(c->src_off, ps);
		size_t e = (c->src_off + c->len) & ~(ps - 1);
		char *end = src + c->src_off + c->len;
		size_t bad;

		if (c->mod == MOD_DUP)		/* one page, given twice */
			e = s + ps;
		rep.writer_zero = s < e && all_bytes_are(src + s, e - s, 0);
		rep.writer_intact = c->mem == MEM_UNTOUCHED || c->mem == MEM_HUGE_ZERO ?
			all_bytes_are(src + c->src_off, c->len, 0) :
			pattern_check(src + c->src_off, c->len, SEED,
				      rep.pattern_off) == (size_t)-1;
		/* Bytes just outside the range, in the same pages and beyond. */
		rep.guards_ok = true;
		bad = pattern_check(region, (size_t)(src + c->src_off - region),
				    SEED, 0);
		if (c->mem != MEM_UNTOUCHED && c->mem != MEM_HUGE_ZERO &&
		    bad != (size_t)-1) {
			rep.guards_ok = false;
			snprintf(rep.guards_msg, sizeof(rep.guards_msg),
				 "writer: byte %zu before the range changed",
				 (size_t)(src + c->src_off - region) - bad);
		}
		bad = pattern_check(end, (size_t)(region + region_len - end), SEED,
				    (size_t)(end - region));
		if (c->mem != MEM_UNTOUCHED && c->mem != MEM_HUGE_ZERO &&
		    bad != (size_t)-1) {
			rep.guards_ok = false;
			snprintf(rep.guards_msg, sizeof(rep.guards_msg),
				 "writer: byte %zu after the range changed", bad);
		}
		if ((c->mem == MEM_UNTOUCHED || c->mem == MEM_HUGE_ZERO) &&
		    (pattern_check(region, ps, SEED, 0) != (size_t)-1 ||
		     pattern_check(src + span, ps, SEED,
				   (size_t)(src + span - region)) != (size_t)-1)) {
			rep.guards_ok = false;
			snprintf(rep.guards_msg, sizeof(rep.guards_msg),
				 "writer: a guard page changed");
		}
	} else {
		rep.guards_ok = true;
		rep.writer_zero = all_bytes_are(small[0], 4 * ps, 0) &&
				  all_bytes_are(src, XFER_THP, 0) &&
				  all_bytes_are(small[1], 4 * ps, 0);
	}

report:
	/* A skip before the gift is the only report, streaming or not. */
	if (write(ctl_wr, &rep, sizeof(rep)) != sizeof(rep))
		_exit(2);
	read(go_rd, &go, 1);
	if (h.sharer > 0) {
		int st = 0;

		close(h.hold[1]);
		waitpid(h.sharer, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
			sharer_changed = true;
	}
	if (h.aio_fd >= 0) {
		struct io_event ev;

		/* The in-flight read ends before the memory goes away. */
		syscall(__NR_io_getevents, h.aio, 1, 1, &ev, NULL);
	}
	if (c->mod == MOD_KSM)
		proc_write("/sys/kernel/mm/ksm/run", "2");	/* unmerge */
	_exit(sharer_changed ? 3 : 0);
}

/* The reader's destination: one or two segments, and what surrounds them. */
struct dst_layout {
	char *lo, *hi;		/* the guarded area checked afterwards */
	char *seg[2];
	size_t seg_len[2];
	int nseg;
	unsigned char inside;	/* what unused bytes between segments hold */
	int ring, uffd;
};

/* A destination of @len bytes at @dst with guard pages around it. */
static void layout_one(struct dst_layout *l, char *dst, size_t len,
		       unsigned char inside)
{
	size_t ps = page_size();
	char *lo = (char *)((uintptr_t)dst & ~(ps - 1)) - ps;
	char *hi = (char *)round_up((uintptr_t)dst + len, ps) + ps;

	memset(lo, GUARD_BYTE, ps);
	memset(hi - ps, GUARD_BYTE, ps);
	l->lo = lo;
	l->hi = hi;
	l->seg[0] = dst;
	l->seg_len[0] = len;
	l->nseg = 1;
	l->inside = inside;
}

static int map_dst(const struct xfer_case *c, struct dst_layout *l, char *why)
{
	size_t ps = page_size(), len = c->len, span = round_up(len, ps) + ps;
	char *p = NULL;

	memset(l, 0, sizeof(*l));
	l->ring = l->uffd = -1;
	switch (c->dst) {
	case DST_FRESH:
	case DST_READONLY:
	case DST_PKEY_RO:
	case DST_MLOCKED:
	case DST_TWO_VMAS:
		p = map_guarded(span, ps);
		if (!p)
			break;
		/*
		 * With 64 KiB mTHP enabled, the fault that writes a guard page
		 * may allocate a 64 KiB folio reaching into the destination,
		 * which then is populated and copied into (dst_busy), and each
		 * copy's faults populate the next folio's destination.  Keep
		 * the guards in VMAs of their own that allow no large folio.
		 */
		if (c->mem == MEM_MTHP &&
		    (madvise(p - ps, ps, MADV_NOHUGEPAGE) ||
		     madvise((char *)round_up((uintptr_t)p + len, ps), ps,
			     MADV_NOHUGEPAGE)))
			return -1;
		layout_one(l, p, len, 0);
		if (c->dst == DST_READONLY && mprotect(p, span, PROT_READ))
			return -1;
		/* MADV_DONTFORK: another VMA, as good a destination. */
		if (c->dst == DST_TWO_VMAS &&
		    madvise(p + round_up(len / 2, ps), len - round_up(len / 2, ps),
			    MADV_DONTFORK))
			return -1;
		if (c->dst == DST_MLOCKED && mlock(p, span)) {
			snprintf(why, 160, "mlock: %s", strerror(errno));
			return -1;
		}
		if (c->dst == DST_PKEY_RO) {
			int pkey = pkey_alloc(0, PKEY_DISABLE_WRITE);

			if (pkey < 0 || pkey_mprotect(p, span, PROT_READ | PROT_WRITE, pkey)) {
				snprintf(why, 160, "pkey: %s", strerror(errno));
				return -1;
			}
		}
		return 0;
	case DST_UNALIGNED:
		p = map_guarded(span, ps);
		if (!p)
			break;
		layout_one(l, p + 8, len, 0);
		return 0;
	case DST_SEGMENTS:
		/* Page-aligned halves of a page, a page apart. */
		p = map_guarded(3 * ps, ps);
		if (!p)
			break;
		layout_one(l, p, 3 * ps, 0);
		l->seg_len[0] = len / 2;
		l->seg[1] = p + 2 * ps;
		l->seg_len[1] = len - len / 2;
		l->nseg = 2;
		return 0;
	case DST_POPULATED:
	case DST_ZEROPAGE:
	case DST_PINNED:
	case DST_REFERENCED:
	case DST_UFFD:
	case DST_SWAPPED:
		p = map_guarded(span, ps);
		if (!p)
			break;
		if (c->dst == DST_ZEROPAGE) {
			for (size_t i = 0; i < span; i += ps)
				(void)*(volatile char *)(p + i);
			layout_one(l, p, len, 0);
		} else {
			memset(p, OLD_BYTE, span);
			layout_one(l, p, len, OLD_BYTE);
		}
		if (c->dst == DST_PINNED) {
			l->ring = pin_with_io_uring(p, span, why);
			if (l->ring < 0)
				return -1;
		}
		if (c->dst == DST_SWAPPED) {
			int pm = pagemap_open();
			bool out = pm >= 0 && !madvise(p, span, MADV_PAGEOUT) &&
				   all_swapped(pm, p, span);

			if (pm >= 0)
				close(pm);
			if (!out) {
				snprintf(why, 160, "MADV_PAGEOUT did not swap the destination out");
				return -1;
			}
		}
		if (c->dst == DST_UFFD) {
			/* Populated first: the copy then raises no fault. */
			l->uffd = uffd_register(p, span, why);
			if (l->uffd < 0)
				return -1;
		}
		return 0;
	case DST_SHARED:
		p = map_memfd(span + 2 * ps, MAP_SHARED);
		if (!p)
			break;
		layout_one(l, p + ps, len, 0);
		return 0;
	case DST_PRIVATE_FILE:
		p = map_memfd(span + 2 * ps, MAP_PRIVATE);
		if (!p)
			break;
		layout_one(l, p + ps, len, 0);
		return 0;
	case DST_DROPPABLE:
		p = mmap(NULL, span + 2 * ps, PROT_READ | PROT_WRITE,
			 MAP_ANONYMOUS | MAP_DROPPABLE, -1, 0);
		if (p == MAP_FAILED) {
			snprintf(why, 160, "MAP_DROPPABLE: %s", strerror(errno));
			return -1;
		}
		layout_one(l, p + ps, len, 0);
		return 0;
	case DST_HUGETLB:
		p = map_hugetlb(len);
		if (!p) {
			snprintf(why, 160, "MAP_HUGETLB: %s", strerror(errno));
			return -1;
		}
		l->lo = l->seg[0] = p;
		l->seg_len[0] = len;
		l->hi = p + len;
		l->nseg = 1;
		return 0;
	case DST_THP:
	case DST_THP_PINNED:
	case DST_THP_ZERO:
		p = map_guarded(round_up(len, XFER_THP), XFER_THP);
		if (!p || madvise(p, round_up(len, XFER_THP), MADV_HUGEPAGE))
			break;
		if (c->dst == DST_THP_ZERO) {
			for (size_t i = 0; i < len; i += ps)
				(void)*(volatile char *)(p + i);
		} else {
			memset(p, OLD_BYTE, round_up(len, XFER_THP));
			if (self_smaps_kb("AnonHugePages") < 2048) {
				snprintf(why, 160, "no transparent huge page was allocated");
				return -1;
			}
		}
		layout_one(l, p, len, c->dst == DST_THP_ZERO ? 0 : OLD_BYTE);
		if (c->dst == DST_THP_PINNED) {
			l->ring = pin_with_io_uring(p, XFER_THP, why);
			if (l->ring < 0)
				return -1;
		}
		return 0;
	case DST_THP_FRESH:
	case DST_THP_MISALIGNED:
	case DST_PTE_TABLE:
	case DST_NOHUGEPAGE: {
		size_t thp_len = round_up(len, XFER_THP) + XFER_THP;
		size_t lead = 0;

		/* MEM_MIXED: 16 KiB before the THP, so that it lands aligned. */
		if (c->mem == MEM_MIXED)
			lead = XFER_THP - 4 * ps;
		if (c->dst == DST_THP_MISALIGNED)
			lead = ps;
		p = map_guarded(thp_len + (lead ? XFER_THP : 0), XFER_THP);
		if (!p)
			break;
		if (madvise(p, thp_len + (lead ? XFER_THP : 0),
			    c->dst == DST_NOHUGEPAGE ? MADV_NOHUGEPAGE : MADV_HUGEPAGE))
			break;
		/*
		 * What comes before the 2 MiB boundary (the guard page, for
		 * MEM_MIXED the small pages) in a VMA of its own without THP:
		 * filling the guard must not fault in, or let khugepaged
		 * collapse, a THP under the destination.
		 */
		if (lead && madvise(p, XFER_THP, MADV_NOHUGEPAGE))
			break;
		if (c->dst == DST_THP_MISALIGNED) {
			/* THP allowed right from the destination's first byte. */
			if (madvise(p + ps, XFER_THP - ps, MADV_HUGEPAGE))
				break;
			lead = ps;
		}
		if (c->dst == DST_PTE_TABLE) {
			/* A page table, emptied again: no PMD can go there. */
			if (madvise(p, thp_len, MADV_NOHUGEPAGE))
				break;
			*(volatile char *)p = 1;
			if (madvise(p, ps, MADV_DONTNEED) ||
			    madvise(p, thp_len, MADV_HUGEPAGE))
				break;
		}
		/* Nor filling the guard after it. */
		if (madvise((void *)round_up((uintptr_t)p + lead + len, ps), ps,
			    MADV_NOHUGEPAGE))
			break;
		layout_one(l, p + lead, len, 0);
		return 0;
	}
	case DST_THP_CUT:
		p = map_guarded(3 * XFER_THP, XFER_THP);
		if (!p || madvise(p, 3 * XFER_THP, MADV_HUGEPAGE))
			break;
		layout_one(l, p, 3 * XFER_THP, 0);
		l->seg_len[0] = len / 2;
		l->seg[1] = p + 2 * XFER_THP;
		l->seg_len[1] = len - len / 2;
		l->nseg = 2;
		return 0;
	}
	if (!why[0])
		snprintf(why, 160, "destination mmap: %s", strerror(errno));
	return -1;
}

/* Are the @len bytes at @got what the writer of @c sent? */
static bool expected_bytes(const struct xfer_case *c, size_t pattern_off,
			   const char *got, size_t len, char *msg)
{
	size_t ps = page_size(), bad;

	if (c->mem == MEM_UNTOUCHED || c->mem == MEM_HUGE_ZERO) {
		if (all_bytes_are(got, len, 0))
			return true;
		snprintf(msg, 160, "expected zeros");
		return false;
	}
	if (c->mod == MOD_DUP) {
		size_t half = len / 2;

		bad = pattern_check(got, half, SEED, pattern_off);
		if (bad == (size_t)-1)
			bad = pattern_check(got + half, half, SEED, pattern_off);
	} else if (c->mem == MEM_MIXED) {
		bad = pattern_check(got, 4 * ps, SEED ^ 1, 0);
		if (bad == (size_t)-1)
			bad = pattern_check(got + 4 * ps, XFER_THP, SEED, pattern_off);
		if (bad == (size_t)-1)
			bad = pattern_check(got + 4 * ps + XFER_THP, 4 * ps, SEED ^ 2, 0);
	} else {
		bad = pattern_check(got, len, SEED, pattern_off);
	}
	if (bad == (size_t)-1)
		return true;
	snprintf(msg, 160, "wrong byte at offset %zu", bad);
	return false;
}

/* Every byte of the guarded area outside the segments as it was set up. */
static bool guards_intact(const struct dst_layout *l, char *msg)
{
	size_t ps = page_size();

	for (char *q = l->lo; q < l->hi; q++) {
		bool in = false;
		unsigned char want;

		for (int s = 0; s < l->nseg; s++)
			in |= q >= l->seg[s] && q < l->seg[s] + l->seg_len[s];
		if (in)
			continue;
		want = q < l->lo + ps || q >= l->hi - ps ? GUARD_BYTE : l->inside;
		if ((unsigned char)*q != want) {
			snprintf(msg, 160, "reader: byte at %+td of the range is 0x%02x, was 0x%02x",
				 q - l->seg[0], (unsigned char)*q, want);
			return false;
		}
	}
	return true;
}

/* Poison the page frame @pfn (debugfs hwpoison), as a memory error would. */
static int poison_pfn(uint64_t pfn, char *why)
{
	char val[32];

	snprintf(val, sizeof(val), "%llu", (unsigned long long)pfn);
	if (proc_write("/sys/kernel/debug/hwpoison/corrupt-pfn", val)) {
		snprintf(why, 160, "hwpoison corrupt-pfn: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * A pipe for @c that never fills: its copy path needs a slot per page.
 * Where the size is refused (no CAP_SYS_RESOURCE beyond pipe-max-size),
 * the largest allowed, and *@stream tells the two sides to overlap.
 */
static int size_pipe(int fd, const struct xfer_case *c, bool *stream)
{
	size_t ps = page_size(), need = 16 * ps + 2 * round_up(c->src_off + c->len, ps);
	long max = 1 << 20;
	FILE *f;

	*stream = false;
	if (fcntl(fd, F_SETPIPE_SZ, (int)need) >= 0)
		return 0;
	f = fopen("/proc/sys/fs/pipe-max-size", "re");
	if (f) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 1 << 20;
		fclose(f);
	}
	*stream = true;
	return fcntl(fd, F_SETPIPE_SZ, (int)max) < 0 ? -1 : 0;
}

/* All of @iov with vmsplice(), in as many calls as it takes (streaming). */
static ssize_t vmsplice_all(int fd, struct iovec *iov, int n,
			    unsigned int flags)
{
	struct iovec v[3];
	ssize_t total = 0, r;
	int i = 0;

	memcpy(v, iov, n * sizeof(*iov));
	while (i < n) {
		r = vmsplice(fd, v + i, n - i, flags);
		if (r <= 0)
			return total ? total : r;
		total += r;
		while (r > 0 && i < n) {
			size_t k = (size_t)r < v[i].iov_len ? (size_t)r : v[i].iov_len;

			v[i].iov_base = (char *)v[i].iov_base + k;
			v[i].iov_len -= k;
			r -= k;
			if (!v[i].iov_len)
				i++;
		}
	}
	return total;
}

int xfer_run(const struct xfer_case *c, struct xfer_result *res)
{
	int p[2], ctl[2], go[2], t[2] = { -1, -1 };
	size_t ps = page_size();
	bool stream, tstream;
	struct dst_layout l;
	struct iovec iov[2];
	struct report rep;
	long long rss, thp;
	pid_t pid;
	int pm;

	memset(res, 0, sizeof(*res));
	if (c->len > XFER_MAX_PAGES * ps / 2 + 16 * ps)
		return -1;
	if (pipe2(p, O_CLOEXEC) || pipe2(ctl, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
		return -1;
	/* Room for the whole hand-over, so the writer never blocks. */
	if (size_pipe(p[1], c, &stream))
		return -1;
	if (c->tee && (pipe2(t, O_CLOEXEC) || size_pipe(t[1], c, &tstream) || tstream))
		return -1;
	xfer_counters_read(&res->before);

	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(p[0]);
		close(ctl[0]);
		close(go[1]);
		writer(c, p[1], ctl[1], go[0], stream);
	}
	/* DST_REFERENCED: the reader puts a page of its own in, too. */
	if (c->dst != DST_REFERENCED)
		close(p[1]);
	close(ctl[1]);
	close(go[0]);

	if (full_read(ctl[0], &rep, sizeof(rep)))
		goto fail;
	res->wret = rep.wret;
	res->werrno = rep.werrno;
	res->writer_zero = rep.writer_zero;
	res->writer_intact = rep.writer_intact;
	res->guards_ok = rep.guards_ok;
	memcpy(res->guards_msg, rep.guards_msg, sizeof(res->guards_msg));
	res->npages = rep.npages;
	memcpy(res->src_pfn, rep.src_pfn, sizeof(rep.src_pfn));
	res->writer_rss_drop_kb = rep.rss_drop_kb;
	res->writer_thp_drop_kb = rep.thp_drop_kb;
	if (rep.skipped) {
		res->skipped = true;
		memcpy(res->skip_reason, rep.skip_reason, sizeof(res->skip_reason));
		goto done;
	}
	if (stream) {
		/* The pre-gift report; the rest comes after the data. */
		struct report post;

		if (map_dst(c, &l, res->skip_reason)) {
			res->skipped = true;
			goto done;
		}
		for (int s = 0; s < l.nseg; s++)
			iov[s] = (struct iovec){ l.seg[s], l.seg_len[s] };
		res->rret = vmsplice_all(p[0], iov, l.nseg, c->rflags);
		res->rerrno = errno;
		if (full_read(ctl[0], &post, sizeof(post)))
			goto fail;
		res->wret = post.wret;
		res->werrno = post.werrno;
		res->writer_zero = post.writer_zero;
		res->writer_intact = post.writer_intact;
		res->guards_ok = post.guards_ok;
		memcpy(res->guards_msg, post.guards_msg, sizeof(res->guards_msg));
		goto check;
	}
	if (c->mod == MOD_AIO_PINNED && !rep.in_flight) {
		res->skipped = true;
		snprintf(res->skip_reason, sizeof(res->skip_reason),
			 "the O_DIRECT read completed before the gift");
		goto done;
	}

	if (map_dst(c, &l, res->skip_reason)) {
		res->skipped = true;
		goto done;
	}
	if (c->mod == MOD_NUMA &&
	    bind_node(l.lo, (size_t)(l.hi - l.lo), 1, res->skip_reason)) {
		res->skipped = true;
		goto done;
	}
	if (c->mod == MOD_NUMA_CPUSET && cpuset_node(1, res->skip_reason)) {
		cpuset_node(-1, NULL);
		res->skipped = true;
		goto done;
	}
	if (c->mod == MOD_HWPOISON && poison_pfn(rep.src_pfn[0], res->skip_reason)) {
		res->skipped = true;
		goto done;
	}
	if (c->tee && tee(p[0], t[1], c->len, 0) != (ssize_t)c->len)
		goto fail;
	if (c->dst == DST_REFERENCED) {
		/* The first destination page, in the pipe after the data. */
		iov[0] = (struct iovec){ l.seg[0], ps };
		if (vmsplice(p[1], iov, 1, SPLICE_F_GIFT) != (ssize_t)ps)
			goto fail;
	}

	pm = pagemap_open();
	for (size_t i = 0; i < rep.npages; i++)
		res->dst_pfn_before[i] = pagemap_pfn(pm, l.seg[0] + i * ps);
	/* Clear soft-dirty bits: moved-in pages must come back soft-dirty. */
	proc_write("/proc/self/clear_refs", "4");
	/* The destination's VMAs only, as the writer's above. */
	for (int s = 0; s < l.nseg; s++)
		iov[s] = (struct iovec){ l.seg[s], l.seg_len[s] };
	rss = smaps_ranges_kb(iov, l.nseg, "Anonymous");
	thp = smaps_ranges_kb(iov, l.nseg, "AnonHugePages");
	res->rret = vmsplice(p[0], iov, l.nseg, c->rflags);
	res->rerrno = errno;
	if (c->mod == MOD_NUMA_CPUSET)
		cpuset_node(-1, NULL);
	res->reader_rss_rise_kb = smaps_ranges_kb(iov, l.nseg, "Anonymous") - rss;
	res->reader_thp_rise_kb = smaps_ranges_kb(iov, l.nseg, "AnonHugePages") - thp;
	res->dst_soft_dirty = true;
	for (size_t i = 0; i < rep.npages; i++) {
		char *a = l.seg[0] + i * ps;

		res->dst_pfn[i] = pagemap_pfn(pm, a);
		if (l.nseg == 1 && i * ps < c->len &&
		    !(pagemap_entry(pm, a) & (1ULL << 55)))
			res->dst_soft_dirty = false;
	}
	close(pm);

check:
	if (c->dst == DST_READONLY || c->dst == DST_PKEY_RO) {
		/* Nothing may be lost: the data must still be in the pipe. */
		char *buf = map_anon(c->len);

		res->data_ok = buf && read(p[0], buf, c->len) == (ssize_t)c->len &&
			       expected_bytes(c, rep.pattern_off, buf, c->len,
					      res->data_msg);
	} else {
		char *got = l.nseg == 1 ? l.seg[0] : map_anon(c->len);

		if (got && l.nseg == 2) {
			memcpy(got, l.seg[0], l.seg_len[0]);
			memcpy(got + l.seg_len[0], l.seg[1], l.seg_len[1]);
		}
		res->data_ok = res->rret == (ssize_t)c->len && got &&
			       expected_bytes(c, rep.pattern_off, got, c->len,
					      res->data_msg);
		if (res->rret != (ssize_t)c->len)
			snprintf(res->data_msg, sizeof(res->data_msg),
				 "read returned %zd (%s)", res->rret,
				 strerror(res->rerrno));
	}
	if (res->guards_ok && c->dst != DST_HUGETLB)
		res->guards_ok = guards_intact(&l, res->guards_msg);
	if (c->tee && res->data_ok) {
		/* The tee()d copy must deliver the same bytes. */
		char *dst2 = map_anon(c->len);

		iov[0] = (struct iovec){ dst2, c->len };
		res->data_ok = dst2 &&
			vmsplice(t[0], iov, 1, c->rflags) == (ssize_t)c->len &&
			expected_bytes(c, rep.pattern_off, dst2, c->len,
				       res->data_msg);
	}
	if (c->dst == DST_REFERENCED && res->data_ok) {
		/*
		 * The buffer that referenced the destination page must now
		 * deliver what the copy wrote into it: the data just read.
		 */
		char *again = map_anon(ps);

		res->data_ok = again && read(p[0], again, ps) == (ssize_t)ps &&
			       expected_bytes(c, rep.pattern_off, again, ps,
					      res->data_msg);
		if (!res->data_ok && !res->data_msg[0])
			snprintf(res->data_msg, sizeof(res->data_msg),
				 "the referencing buffer lost the new bytes");
	}
	xfer_counters_read(&res->after);
	/* Whatever the reader now does with what it got stays its own. */
	if (c->mod == MOD_FORK_SPLIT && res->data_ok)
		for (int s = 0; s < l.nseg; s++)
			memset(l.seg[s], 0x5a, l.seg_len[s]);

done:
	if (write(go[1], "g", 1) != 1)
		goto fail;
	{
		int st = 0;

		waitpid(pid, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 3) {
			res->data_ok = false;
			snprintf(res->data_msg, sizeof(res->data_msg),
				 "the forked child saw the reader's write");
		}
	}
	if (c->mod == MOD_OTHER_MEMCG) {
		char path[128];

		snprintf(path, sizeof(path), "/sys/fs/cgroup/vmsplice-xfer-%d", pid);
		rmdir(path);
	}
	close(p[0]);
	if (c->dst == DST_REFERENCED)
		close(p[1]);
	close(ctl[0]);
	close(go[1]);
	if (c->tee) {
		close(t[0]);
		close(t[1]);
	}
	return 0;
fail:
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}
