// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include "xfer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
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
#include <unistd.h>

#include "mem.h"
#include "pagemap.h"
#include "pattern.h"
#include "vmstat.h"

#define SEED		0x5eedU
#define THP_SIZE	(2UL << 20)

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
	for (int i = 0; i < XFER_NR_FALLBACKS; i++) {
		snprintf(name, sizeof(name), "vmsplice_move_fallback_%s",
			 xfer_fallback_names[i]);
		c->fallback[i] = vmstat_get(name);
	}
}

long long xfer_counter_delta(const struct xfer_counters *before,
			     const struct xfer_counters *after, const char *name)
{
	if (!strcmp(name, "moved"))
		return after->moved - before->moved;
	if (!strcmp(name, "moved_zero"))
		return after->moved_zero - before->moved_zero;
	if (!strcmp(name, "unmapped"))
		return after->unmapped - before->unmapped;
	if (!strcmp(name, "gift_large"))
		return after->gift_large - before->gift_large;
	if (!strcmp(name, "folio_thp"))
		return after->thp - before->thp;
	if (!strcmp(name, "folio_large"))
		return after->large - before->large;
	if (!strcmp(name, "folio_split"))
		return after->split - before->split;
	for (int i = 0; i < XFER_NR_FALLBACKS; i++)
		if (!strcmp(name, xfer_fallback_names[i]))
			return after->fallback[i] - before->fallback[i];
	return -1000000;	/* unknown name: fails any comparison */
}

/* What the writer tells the reader over the control pipe. */
struct report {
	bool skipped;
	char skip_reason[128];
	ssize_t wret;
	int werrno;
	bool writer_zero, writer_intact;
	size_t npages;
	uint64_t src_pfn[XFER_MAX_PAGES];
	long long rss_drop_kb;
};

static size_t page_size(void)
{
	return (size_t)getpagesize();
}

static size_t round_up_page(size_t n)
{
	return (n + page_size() - 1) & ~(page_size() - 1);
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

static void *map_memfd_shared(size_t len)
{
	int fd = memfd_create("xfer", MFD_CLOEXEC);
	void *p;

	if (fd < 0 || ftruncate(fd, len))
		return NULL;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

/* A THP-aligned private anonymous region of @len bytes asking for THP. */
static void *map_thp(size_t len)
{
	char *p = map_anon(len + THP_SIZE);
	uintptr_t a;

	if (!p)
		return NULL;
	a = ((uintptr_t)p + THP_SIZE - 1) & ~(THP_SIZE - 1);
	if (madvise((void *)a, len, MADV_HUGEPAGE))
		return NULL;
	return (void *)a;
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

static void *map_hugetlb(size_t len)
{
	size_t hlen = (len + THP_SIZE - 1) & ~(THP_SIZE - 1);
	void *p = mmap(NULL, hlen, PROT_READ | PROT_WRITE,
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

static int pin_with_io_uring(void *addr, size_t len, char *why)
{
	struct io_uring_params params = { 0 };
	struct iovec iov = { .iov_base = addr, .iov_len = len };
	int fd = syscall(__NR_io_uring_setup, 1, &params);

	if (fd < 0) {
		snprintf(why, 128, "io_uring_setup: %s", strerror(errno));
		return -1;
	}
	if (syscall(__NR_io_uring_register, fd, IORING_REGISTER_BUFFERS, &iov, 1)) {
		snprintf(why, 128, "IORING_REGISTER_BUFFERS: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;	/* the pin lasts as long as the ring */
}

static int join_new_memcg(char *why)
{
	char path[128];

	if (proc_write("/sys/fs/cgroup/cgroup.subtree_control", "+memory")) {
		snprintf(why, 128, "cannot enable the memory controller: %s",
			 strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "/sys/fs/cgroup/vmsplice-xfer-%d", getpid());
	if (mkdir(path, 0755) && errno != EEXIST) {
		snprintf(why, 128, "mkdir %.64s: %.40s", path, strerror(errno));
		return -1;
	}
	strcat(path, "/cgroup.procs");
	if (proc_write(path, "0")) {
		snprintf(why, 128, "join %.64s: %.40s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* The writer: prepare memory as @c says, vmsplice it, report, wait. */
static void writer(const struct xfer_case *c, int pipe_wr, int ctl_wr, int go_rd)
{
	struct report rep = { 0 };
	size_t ps = page_size();
	size_t span = round_up_page(c->src_off + c->len);
	struct iovec iov[2];
	int niov = 1, ring = -1, pm = pagemap_open();
	long long rss;
	pid_t sharer = -1;
	int hold[2] = { -1, -1 };
	char *src = NULL;
	char go;

	switch (c->src) {
	case SRC_OTHER_MEMCG:
		if (join_new_memcg(rep.skip_reason))
			rep.skipped = true;
		/* fall through */
	case SRC_ANON:
	case SRC_UNTOUCHED:
	case SRC_FORK_SHARED:
	case SRC_PINNED:
	case SRC_DUP:
	case SRC_FILE:
	case SRC_LAZYFREE:
	case SRC_SWAPCACHE:
		src = map_anon(span);
		break;
	case SRC_THP:
		src = map_thp(round_up_page(span) < THP_SIZE ? THP_SIZE : span);
		break;
	case SRC_MEMFD_SHARED:
		src = map_memfd_shared(span);
		break;
	case SRC_HUGETLB:
		src = map_hugetlb(span);
		break;
	}
	if (!src) {
		rep.skipped = true;
		snprintf(rep.skip_reason, sizeof(rep.skip_reason), "mmap: %s",
			 strerror(errno));
	}
	if (rep.skipped)
		goto report;

	if (c->src == SRC_LAZYFREE) {
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
			goto report;
		}
	}
	if (c->src != SRC_UNTOUCHED)
		pattern_fill(src, span, SEED, 0);
	if (c->src == SRC_THP && self_smaps_kb("AnonHugePages") <= 0) {
		rep.skipped = true;
		snprintf(rep.skip_reason, sizeof(rep.skip_reason),
			 "no transparent huge page was allocated");
		goto report;
	}
	if (c->src == SRC_PINNED) {
		ring = pin_with_io_uring(src, span, rep.skip_reason);
		if (ring < 0) {
			rep.skipped = true;
			goto report;
		}
	}
	if (c->src == SRC_LAZYFREE) {
		/* MADV_COLD drains this CPU's batch onto the LRU first. */
		if (madvise(src, span, MADV_COLD) ||
		    madvise(src, span, MADV_FREE)) {
			rep.skipped = true;
			snprintf(rep.skip_reason, sizeof(rep.skip_reason),
				 "MADV_FREE: %s", strerror(errno));
			goto report;
		}
	}
	if (c->src == SRC_SWAPCACHE) {
		/*
		 * Page out, then fork: the child's copy of the swap entry makes
		 * the gift's swap-in go through the swap cache, where the page
		 * stays while the child still refers to the entry.
		 */
		if (madvise(src, span, MADV_PAGEOUT) || !all_swapped(pm, src, span)) {
			rep.skipped = true;
			snprintf(rep.skip_reason, sizeof(rep.skip_reason),
				 "MADV_PAGEOUT did not swap the pages out");
			goto report;
		}
	}
	if (c->src == SRC_FORK_SHARED || c->src == SRC_SWAPCACHE) {
		/* A child that keeps the pages mapped until told to go. */
		if (pipe(hold))
			_exit(2);
		sharer = fork();
		if (sharer == 0) {
			close(hold[1]);
			read(hold[0], &go, 1);
			_exit(0);
		}
		close(hold[0]);
	}

	rep.npages = span / ps < XFER_MAX_PAGES ? span / ps : XFER_MAX_PAGES;
	for (size_t i = 0; i < rep.npages; i++)
		rep.src_pfn[i] = c->src == SRC_SWAPCACHE ? 0 :
				 pagemap_pfn(pm, src + i * ps);

	rss = self_status_kb("RssAnon");
	iov[0].iov_base = src + c->src_off;
	iov[0].iov_len = c->len;
	if (c->src == SRC_DUP) {
		iov[0].iov_len = c->len / 2;
		iov[1] = iov[0];
		niov = 2;
	}
	if (c->src == SRC_FILE) {
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
		rep.wret = vmsplice(pipe_wr, iov, niov, wflags);
	}
	rep.werrno = errno;
	rep.rss_drop_kb = rss - self_status_kb("RssAnon");

	/* The writer's view of the whole pages it handed over. */
	{
		size_t s = round_up_page(c->src_off);
		size_t e = (c->src_off + c->len) & ~(ps - 1);

		if (c->src == SRC_DUP)		/* one page, given twice */
			e = s + ps;

		rep.writer_zero = s < e && all_bytes_are(src + s, e - s, 0);
		rep.writer_intact = c->src == SRC_UNTOUCHED ?
			all_bytes_are(src + c->src_off, c->len, 0) :
			pattern_check(src + c->src_off, c->len, SEED,
				      c->src_off) == (size_t)-1;
	}

report:
	if (write(ctl_wr, &rep, sizeof(rep)) != sizeof(rep))
		_exit(2);
	read(go_rd, &go, 1);
	if (sharer > 0) {
		close(hold[1]);
		waitpid(sharer, NULL, 0);
	}
	if (ring >= 0)
		close(ring);
	_exit(0);
}

static void *map_dst(enum xfer_dst dst, size_t len, char *why)
{
	char *p = NULL;

	switch (dst) {
	case DST_FRESH:
	case DST_UNALIGNED:
		return map_anon(len);
	case DST_POPULATED:
		p = map_anon(len);
		if (p)
			memset(p, 0x77, len);
		return p;
	case DST_ZEROPAGE:
		p = map_anon(len);
		for (size_t i = 0; p && i < len; i += page_size())
			(void)*(volatile char *)(p + i);
		return p;
	case DST_SHARED:
		return map_memfd_shared(len);
	case DST_MLOCKED:
		p = map_anon(len);
		if (p && mlock(p, len)) {
			snprintf(why, 128, "mlock: %s", strerror(errno));
			return NULL;
		}
		return p;
	case DST_UFFD: {
		struct uffdio_api api = { .api = UFFD_API };
		struct uffdio_register reg = { 0 };
		int uffd;

		p = map_anon(len);
		if (!p)
			return NULL;
		/* Populated first: the copy then raises no missing fault. */
		memset(p, 0x77, len);
		uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api)) {
			snprintf(why, 128, "userfaultfd: %s", strerror(errno));
			return NULL;
		}
		reg.range.start = (uintptr_t)p;
		reg.range.len = len;
		reg.mode = UFFDIO_REGISTER_MODE_MISSING;
		if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
			snprintf(why, 128, "UFFDIO_REGISTER: %s", strerror(errno));
			return NULL;
		}
		return p;	/* uffd stays open until the test process exits */
	}
	case DST_READONLY:
		p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	case DST_THP:
		p = map_thp(THP_SIZE);
		if (p)
			memset(p, 0x77, THP_SIZE);
		if (p && self_smaps_kb("AnonHugePages") <= 0) {
			snprintf(why, 128, "no transparent huge page was allocated");
			return NULL;
		}
		return p;
	case DST_HUGETLB:
		p = map_hugetlb(len);
		if (!p)
			snprintf(why, 128, "MAP_HUGETLB: %s", strerror(errno));
		return p;
	case DST_PKEY_RO: {
		int pkey = pkey_alloc(0, PKEY_DISABLE_WRITE);

		if (pkey < 0) {
			snprintf(why, 128, "pkey_alloc: %s", strerror(errno));
			return NULL;
		}
		p = map_anon(len);
		if (p && pkey_mprotect(p, len, PROT_READ | PROT_WRITE, pkey)) {
			snprintf(why, 128, "pkey_mprotect: %s", strerror(errno));
			return NULL;
		}
		return p;
	}
	}
	return NULL;
}

/* Are the @len bytes at @got what the writer of @c sent? */
static bool expected_bytes(const struct xfer_case *c, const char *got,
			   size_t len, char *msg)
{
	size_t bad;

	if (c->src == SRC_UNTOUCHED) {
		if (all_bytes_are(got, len, 0))
			return true;
		snprintf(msg, 128, "expected zeros");
		return false;
	}
	if (c->src == SRC_DUP) {
		size_t half = len / 2;

		bad = pattern_check(got, half, SEED, c->src_off);
		if (bad == (size_t)-1)
			bad = pattern_check(got + half, half, SEED, c->src_off);
	} else {
		bad = pattern_check(got, len, SEED, c->src_off);
	}
	if (bad == (size_t)-1)
		return true;
	snprintf(msg, 128, "wrong byte at offset %zu", bad);
	return false;
}

int xfer_run(const struct xfer_case *c, struct xfer_result *res)
{
	int p[2], ctl[2], go[2], t[2] = { -1, -1 };
	size_t ps = page_size();
	size_t dlen = round_up_page(c->len) + ps;
	struct report rep;
	struct iovec iov;
	char *dst, *base;
	long long rss;
	pid_t pid;
	int pm;

	memset(res, 0, sizeof(*res));
	if (c->len > XFER_MAX_PAGES * ps)
		return -1;
	if (pipe2(p, O_CLOEXEC) || pipe2(ctl, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
		return -1;
	/* Room for the whole hand-over, so the writer never blocks. */
	if (fcntl(p[1], F_SETPIPE_SZ, (int)(2 * XFER_MAX_PAGES * ps)) < 0)
		return -1;
	if (c->tee) {
		if (pipe2(t, O_CLOEXEC) ||
		    fcntl(t[1], F_SETPIPE_SZ, (int)(2 * XFER_MAX_PAGES * ps)) < 0)
			return -1;
	}
	xfer_counters_read(&res->before);

	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(p[0]);
		close(ctl[0]);
		close(go[1]);
		writer(c, p[1], ctl[1], go[0]);
	}
	close(p[1]);
	close(ctl[1]);
	close(go[0]);

	if (full_read(ctl[0], &rep, sizeof(rep)))
		goto fail;
	res->wret = rep.wret;
	res->werrno = rep.werrno;
	res->writer_zero = rep.writer_zero;
	res->writer_intact = rep.writer_intact;
	res->npages = rep.npages;
	memcpy(res->src_pfn, rep.src_pfn, sizeof(rep.src_pfn));
	res->writer_rss_drop_kb = rep.rss_drop_kb;
	if (rep.skipped) {
		res->skipped = true;
		memcpy(res->skip_reason, rep.skip_reason, sizeof(res->skip_reason));
		goto done;
	}

	base = map_dst(c->dst, dlen, res->skip_reason);
	if (!base) {
		res->skipped = true;
		if (!res->skip_reason[0])
			snprintf(res->skip_reason, sizeof(res->skip_reason),
				 "destination mmap: %s", strerror(errno));
		goto done;
	}
	dst = base + (c->dst == DST_UNALIGNED ? 8 : 0);

	if (c->tee && tee(p[0], t[1], c->len, 0) != (ssize_t)c->len)
		goto fail;

	pm = pagemap_open();
	/* Clear soft-dirty bits: moved-in pages must come back soft-dirty. */
	{
		int cr = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);

		if (cr >= 0) {
			if (write(cr, "4", 1) != 1)
				res->dst_soft_dirty = false;
			close(cr);
		}
	}
	rss = self_status_kb("RssAnon");
	iov.iov_base = dst;
	iov.iov_len = c->len;
	res->rret = vmsplice(p[0], &iov, 1, c->rflags);
	res->rerrno = errno;
	res->reader_rss_rise_kb = self_status_kb("RssAnon") - rss;
	res->dst_soft_dirty = true;
	for (size_t i = 0; i < res->npages; i++) {
		res->dst_pfn[i] = pagemap_pfn(pm, base + i * ps);
		if (i * ps < c->len &&
		    !(pagemap_entry(pm, base + i * ps) & (1ULL << 55)))
			res->dst_soft_dirty = false;
	}
	close(pm);

	if (c->dst == DST_READONLY || c->dst == DST_PKEY_RO) {
		/* Nothing may be lost: the data must still be in the pipe. */
		char *buf = map_anon(dlen);

		res->data_ok = buf && read(p[0], buf, c->len) == (ssize_t)c->len &&
			       expected_bytes(c, buf, c->len, res->data_msg);
	} else {
		res->data_ok = res->rret == (ssize_t)c->len &&
			       expected_bytes(c, dst, c->len, res->data_msg);
		if (res->rret != (ssize_t)c->len)
			snprintf(res->data_msg, sizeof(res->data_msg),
				 "read returned %zd (%s)", res->rret,
				 strerror(res->rerrno));
	}
	if (c->tee && res->data_ok) {
		/* The tee()d copy must deliver the same bytes. */
		char *dst2 = map_anon(dlen);

		iov.iov_base = dst2;
		res->data_ok = dst2 &&
			vmsplice(t[0], &iov, 1, c->rflags) == (ssize_t)c->len &&
			expected_bytes(c, dst2, c->len, res->data_msg);
	}
	xfer_counters_read(&res->after);

done:
	if (write(go[1], "g", 1) != 1)
		goto fail;
	waitpid(pid, NULL, 0);
	if (c->src == SRC_OTHER_MEMCG) {
		char path[128];

		snprintf(path, sizeof(path), "/sys/fs/cgroup/vmsplice-xfer-%d", pid);
		rmdir(path);
	}
	close(p[0]);
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
