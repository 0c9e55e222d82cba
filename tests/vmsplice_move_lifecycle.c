// SPDX-License-Identifier: GPL-2.0
/*
 * vmsplice(SPLICE_F_MOVE) over the life of the pages: a writer that exits
 * before its gift is read, a reader that never reads, many iterations,
 * errors in the middle of a move, KSM pages, and the trace event.  Data
 * checks run everywhere; what only the patched kernel can show SKIPs on
 * other kernels.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/mem.h"
#include "lib/pagemap.h"
#include "lib/pattern.h"
#include "lib/vmstat.h"
#include "lib/xfer.h"

#define PS		4096UL
#define GM		give_flags()
#define NO_LEAK_MSG	"global page counters are compared only on the patched kernel in the quiet test VM: this kernel has no move path to leak from"

static ssize_t vms(int fd, void *base, size_t len, unsigned int flags)
{
	struct iovec iov = { .iov_base = base, .iov_len = len };

	return vmsplice(fd, &iov, 1, flags);
}

/* Fork a writer that gifts @n pages of pattern @seed and exits. */
static pid_t gift_and_exit(int wr, size_t n, uint32_t seed)
{
	pid_t pid = fork();

	if (pid == 0) {
		char *src = map_anon(n * PS);

		if (!src)
			_exit(2);
		pattern_fill(src, n * PS, seed, 0);
		_exit(vms(wr, src, n * PS, GM) == (ssize_t)(n * PS) ? 0 : 1);
	}
	return pid;
}

/*
 * The writer is gone (its mm, anon_vma and memcg may be freed) before the
 * reader looks: the pages must still arrive whole, and still move.
 */
TEST(writer_exits_before_read)
{
	struct xfer_counters b, a;
	int p[2], status;
	char *dst = map_anon(16 * PS);
	pid_t pid;

	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, pipe(p));
	ASSERT_LE(0, fcntl(p[1], F_SETPIPE_SZ, 1 << 20));
	xfer_counters_read(&b);
	pid = gift_and_exit(p[1], 16, 7);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	close(p[1]);
	ASSERT_EQ((ssize_t)(16 * PS), vms(p[0], dst, 16 * PS, SPLICE_F_MOVE));
	ASSERT_EQ((size_t)-1, pattern_check(dst, 16 * PS, 7, 0));
	xfer_counters_read(&a);
	close(p[0]);
	if (!xfer_kernel_moves())
		SKIP(return, NO_MOVE_MSG);
	ASSERT_EQ(16, xfer_counter_delta(&b, &a, "moved"));
}

/*
 * Pages gifted and never read are freed with the pipe: nr_anon_pages
 * comes back.  (Before the change the gifted pages stay with the writer,
 * which exits too, so this holds on every kernel.)
 */
TEST(reader_closes_without_reading)
{
	const size_t n = 256;	/* 1 MiB, the default pipe-max-size */
	long long before, after;
	int p[2], status;
	pid_t pid;

	if (!xfer_kernel_moves())
		SKIP(return, NO_LEAK_MSG);
	ASSERT_EQ(0, pipe(p));
	ASSERT_LE(0, fcntl(p[1], F_SETPIPE_SZ, (int)(n * PS)));
	counters_settle();
	before = vmstat_get("nr_anon_pages");
	pid = gift_and_exit(p[1], n, 9);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	close(p[1]);
	close(p[0]);
	counters_settle();
	after = vmstat_get("nr_anon_pages");
	/* Within 1/4 of the gift: other processes may allocate a little. */
	ASSERT_LT(after - before, (long long)n / 4)
		TH_LOG("nr_anon_pages %lld -> %lld", before, after);
}

/*
 * 10,000 hand-overs within one process, each replacing the previous
 * destination pages: every page is moved (patched kernel) and nothing
 * leaks: nr_anon_pages and MemFree end where they started.
 */
TEST(ten_thousand_iterations)
{
	const int iters = 10000, n = 4;
	struct xfer_counters b, a;
	long long anon0, free0, anon1, free1;
	char *src, *dst;
	int p[2];

	ASSERT_EQ(0, pipe(p));
	counters_settle();
	anon0 = vmstat_get("nr_anon_pages");
	free0 = meminfo_kb("MemFree");
	xfer_counters_read(&b);
	src = map_anon(n * PS);
	dst = map_anon(n * PS);
	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	for (int i = 0; i < iters; i++) {
		pattern_fill(src, n * PS, i, 0);
		ASSERT_EQ((ssize_t)(n * PS), vms(p[1], src, n * PS, GM));
		ASSERT_EQ((ssize_t)(n * PS), vms(p[0], dst, n * PS, SPLICE_F_MOVE));
		ASSERT_EQ((size_t)-1, pattern_check(dst, n * PS, i, 0))
			TH_LOG("iteration %d", i);
	}
	xfer_counters_read(&a);
	munmap(src, n * PS);
	munmap(dst, n * PS);
	close(p[0]);
	close(p[1]);
	if (!xfer_kernel_moves())
		SKIP(return, NO_LEAK_MSG);
	counters_settle();
	anon1 = vmstat_get("nr_anon_pages");
	free1 = meminfo_kb("MemFree");
	ASSERT_LT(anon1 - anon0, 256) TH_LOG("nr_anon_pages %lld -> %lld", anon0, anon1);
	ASSERT_LT(free0 - free1, 4096) TH_LOG("MemFree %lld -> %lld kB", free0, free1);
	ASSERT_EQ((long long)iters * n, xfer_counter_delta(&b, &a, "moved"));
}

/*
 * A bad address after a good one: the first page is delivered (moved),
 * the call returns its size, and the second stays in the pipe.
 */
TEST(efault_mid_iov_after_move)
{
	char *src = map_anon(2 * PS), *dst = map_anon(2 * PS);
	struct iovec out[2] = { { dst, PS }, { (void *)PS, PS } };
	struct xfer_counters b, a;
	int p[2];

	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, pipe(p));
	pattern_fill(src, 2 * PS, 3, 0);
	ASSERT_EQ((ssize_t)(2 * PS), vms(p[1], src, 2 * PS, GM));
	xfer_counters_read(&b);
	ASSERT_EQ((ssize_t)PS, vmsplice(p[0], out, 2, SPLICE_F_MOVE));
	xfer_counters_read(&a);
	ASSERT_EQ((size_t)-1, pattern_check(dst, PS, 3, 0));
	ASSERT_EQ((ssize_t)PS, read(p[0], dst + PS, PS));
	ASSERT_EQ((size_t)-1, pattern_check(dst + PS, PS, 3, PS));
	if (!xfer_kernel_moves())
		SKIP(return, NO_MOVE_MSG);
	/* One page moved; the copy that failed is not counted. */
	ASSERT_EQ(1, xfer_counter_delta(&b, &a, "moved"));
	ASSERT_EQ(0, xfer_counter_delta(&b, &a, "dst_vma"));
}

/*
 * Found by vmsplice_fuzz: a page given with GIFT|MOVE leaves the writer in
 * that call, so naming the same address again (a retry after a short
 * call) sends what is mapped there now: zeros on a kernel that moves,
 * the old data on one that does not.  Never the reader's data, never a
 * page the writer no longer owns.
 */
TEST(regift_sends_what_is_mapped_now)
{
	char *src = map_anon(PS), *dst = map_anon(2 * PS);
	int p[2];

	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, pipe(p));
	pattern_fill(src, PS, 11, 0);
	ASSERT_EQ((ssize_t)PS, vms(p[1], src, PS, GM));
	ASSERT_EQ((ssize_t)PS, vms(p[1], src, PS, GM));
	ASSERT_EQ((ssize_t)(2 * PS), vms(p[0], dst, 2 * PS, SPLICE_F_MOVE));
	ASSERT_EQ((size_t)-1, pattern_check(dst, PS, 11, 0));
	if (xfer_kernel_moves()) {
		ASSERT_TRUE(all_bytes_are(dst + PS, PS, 0));
	} else {
		ASSERT_EQ((size_t)-1, pattern_check(dst + PS, PS, 11, 0));
	}
	close(p[0]);
	close(p[1]);
}

/* Wait (bounded) until ksmd has merged the two pages at @p. */
static bool ksm_merged(int pm, const char *p)
{
	for (int i = 0; i < 2000; i++) {
		uint64_t a = pagemap_pfn(pm, p), b = pagemap_pfn(pm, p + PS);
		struct timespec ts = { 0, 5 * 1000 * 1000 };

		if (a && a == b)
			return true;
		nanosleep(&ts, NULL);	/* polling ksmd, an asynchronous thread */
	}
	return false;
}

/* A KSM page is shared by content with other mappings: never moved. */
TEST(ksm_page_is_copied)
{
	struct xfer_counters b, a;
	char *src, *dst;
	int p[2], pm;

	if (!xfer_kernel_moves())
		SKIP(return, NO_MOVE_MSG);
	if (access("/sys/kernel/mm/ksm/run", W_OK))
		SKIP(return, "KSM not configured");
	pm = pagemap_open();
	ASSERT_LE(0, pm);
	if (!pagemap_pfns_visible(pm))
		SKIP(return, "PFNs hidden: run as root");
	src = map_anon(2 * PS);
	dst = map_anon(2 * PS);
	ASSERT_NE(NULL, src);
	memset(src, 0x42, 2 * PS);
	ASSERT_EQ(0, madvise(src, 2 * PS, MADV_MERGEABLE));
	ASSERT_EQ(0, proc_write("/sys/kernel/mm/ksm/sleep_millisecs", "0"));
	ASSERT_EQ(0, proc_write("/sys/kernel/mm/ksm/pages_to_scan", "1000"));
	ASSERT_EQ(0, proc_write("/sys/kernel/mm/ksm/run", "1"));
	if (!ksm_merged(pm, src)) {
		proc_write("/sys/kernel/mm/ksm/run", "2");
		SKIP(return, "ksmd did not merge the pages within 10 s");
	}
	ASSERT_EQ(0, pipe(p));
	xfer_counters_read(&b);
	ASSERT_EQ((ssize_t)PS, vms(p[1], src, PS, GM));
	ASSERT_EQ((ssize_t)PS, vms(p[0], dst, PS, SPLICE_F_MOVE));
	xfer_counters_read(&a);
	proc_write("/sys/kernel/mm/ksm/run", "2");	/* unmerge, stop */
	ASSERT_TRUE(all_bytes_are(dst, PS, 0x42));
	/* The second page still maps the KSM page: it is "mapped" or "ksm". */
	ASSERT_EQ(0, xfer_counter_delta(&b, &a, "moved"));
	ASSERT_EQ(1, xfer_counter_delta(&b, &a, "ksm") +
		     xfer_counter_delta(&b, &a, "mapped"));
	close(pm);
}

/* The trace event names the destination and the result. */
TEST(trace_event)
{
	const char *ev = "/sys/kernel/tracing/events/vmsplice/vmsplice_move/enable";
	char *src = map_anon(PS), *dst = map_anon(PS);
	char want[64], buf[4096];
	ssize_t n;
	int p[2], fd;

	if (!xfer_kernel_moves())
		SKIP(return, NO_MOVE_MSG);
	if (access(ev, W_OK))
		SKIP(return, "no tracefs or no vmsplice trace event");
	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, proc_write("/sys/kernel/tracing/trace", ""));
	ASSERT_EQ(0, proc_write(ev, "1"));
	ASSERT_EQ(0, pipe(p));
	memset(src, 1, PS);
	ASSERT_EQ((ssize_t)PS, vms(p[1], src, PS, GM));
	ASSERT_EQ((ssize_t)PS, vms(p[0], dst, PS, SPLICE_F_MOVE));
	ASSERT_EQ(0, proc_write(ev, "0"));
	fd = open("/sys/kernel/tracing/trace", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ASSERT_LT(0, n);
	buf[n] = 0;
	snprintf(want, sizeof(want), "addr=%p", dst);
	ASSERT_NE(NULL, strstr(buf, want)) TH_LOG("trace: %s", buf);
	ASSERT_NE(NULL, strstr(buf, "result=moved")) TH_LOG("trace: %s", buf);
}

TEST_HARNESS_MAIN
