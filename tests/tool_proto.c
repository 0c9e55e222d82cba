// SPDX-License-Identifier: GPL-2.0
/*
 * libvmsplice-move hand-off round trips: a forked sender (vsm_send) and
 * this process (vsm_recv) over a socketpair, for one table of region
 * layouts, each checked three ways:
 *
 *  - bytes: every byte arrives, checksums verified, both sides agree on the
 *    count, and the path is reported truthfully: "copy" with every page
 *    copied on a kernel without SPLICE_F_UNMAP (the stock host), "move"
 *    where the flag is accepted.  Must pass on every kernel.
 *  - counters: on a kernel that moves, every whole page was moved (THPs
 *    with one PMD each), the sender reads zeros where it gave them.
 *  - pfns: as root, every whole page kept its page frame (pagemap).
 *
 * The 1 GiB round trip is gated: VMSPLICE_TEST_BIG=1 (make check-big).
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/socket.h>

#include "kselftest_harness.h"
#include "lib/feature.h"
#include "lib/pagemap.h"
#include "tool_util.h"

#define PS		4096UL
#define MAX_REGIONS	64
#define SEED		0x1d2c3b4a59687706ULL

struct layout {
	int nr;
	size_t len[8];		/* nr <= 8: explicit lengths */
	size_t each;		/* else nr regions of @each bytes */
	bool huge;
	unsigned int pipes;	/* vsm_send_opts.pipes: 0 (two), 1 or 2 */
	size_t pipe_size;	/* vsm_send_opts.pipe_size, 0: the largest */
};

/* What the sender child saw, sent back over a pipe. */
struct sender_out {
	int ret;
	struct vsm_report rep;
	bool src_zero;		/* every whole given page reads zeros now */
	uint64_t nr_pfns;	/* then nr_pfns PFNs, whole pages in order */
};

struct outcome {
	int recv_ret;
	struct vsm_report rep;
	struct vsm_received got;
	struct sender_out s;
	uint64_t *src_pfns;
	size_t lens[MAX_REGIONS];
	int nr;
	uint64_t total, whole_pages;
	bool sender_exited_ok;
};

static size_t region_len(const struct layout *l, int i)
{
	return l->nr <= 8 && !l->each ? l->len[i] : l->each;
}

static bool pfns_visible(void)
{
	int fd = pagemap_open();
	bool yes = fd >= 0 && pagemap_pfns_visible(fd);

	if (fd >= 0)
		close(fd);
	return yes;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len, int ms)
{
	char *p = buf;

	while (len) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pf, 1, ms) <= 0)
			return -1;
		n = read(fd, p, len);
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static void sender(int sock, int res_wr, const struct layout *l)
{
	struct vsm_region regs[MAX_REGIONS];
	struct vsm_send_opts o = { .timeout_ms = 60000, .checksum = true,
				   .pipes = l->pipes, .pipe_size = l->pipe_size };
	struct sender_out out = { .src_zero = true };
	uint64_t off = 0, *pfns = NULL, n = 0;
	int pm = pagemap_open();

	for (int i = 0; i < l->nr; i++) {
		regs[i].len = region_len(l, i);
		regs[i].flags = l->huge ? VSM_REGION_HUGE : 0;
		regs[i].addr = vsm_alloc(regs[i].len, l->huge);
		if (!regs[i].addr)
			_exit(10);
		fill_pattern(regs[i].addr, regs[i].len, off, SEED);
		off += regs[i].len;
		n += regs[i].len / PS;
	}
	pfns = calloc(n ? n : 1, sizeof(*pfns));
	n = 0;
	for (int i = 0; i < l->nr && pfns; i++)
		for (size_t o2 = 0; o2 + PS <= regs[i].len; o2 += PS)
			pfns[n++] = pm >= 0 ? pagemap_pfn(pm, (char *)regs[i].addr + o2) : 0;
	out.ret = vsm_send(sock, regs, l->nr, &o, &out.rep);
	for (int i = 0; i < l->nr; i++)
		for (size_t o2 = 0; o2 + PS <= regs[i].len; o2 += PS)
			out.src_zero &= *(uint64_t *)((char *)regs[i].addr + o2) == 0 &&
					*(uint64_t *)((char *)regs[i].addr + o2 + PS - 8) == 0;
	out.nr_pfns = n;
	if (write_all(res_wr, &out, sizeof(out)) || write_all(res_wr, pfns, n * sizeof(*pfns)))
		_exit(11);
	_exit(0);
}

static void handoff(struct __test_metadata *_metadata, const struct layout *l,
		    struct outcome *o, int timeout_ms)
{
	struct vsm_recv_opts ro = { .timeout_ms = timeout_ms };
	int sv[2], res[2];
	bool timed_out;
	pid_t pid;

	memset(o, 0, sizeof(*o));
	o->nr = l->nr;
	for (int i = 0; i < l->nr; i++) {
		o->lens[i] = region_len(l, i);
		o->total += o->lens[i];
		o->whole_pages += o->lens[i] / PS;
	}
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(0, pipe2(res, O_CLOEXEC));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		close(sv[0]);
		close(res[0]);
		sender(sv[1], res[1], l);
	}
	close(sv[1]);
	close(res[1]);
	o->recv_ret = vsm_recv(sv[0], &ro, &o->got, &o->rep);
	ASSERT_EQ(0, read_all(res[0], &o->s, sizeof(o->s), timeout_ms));
	o->src_pfns = calloc(o->s.nr_pfns + 1, sizeof(uint64_t));
	ASSERT_NE(NULL, o->src_pfns);
	ASSERT_EQ(0, read_all(res[0], o->src_pfns, o->s.nr_pfns * sizeof(uint64_t), timeout_ms));
	o->sender_exited_ok = decode_status(wait_bounded(pid, timeout_ms, &timed_out)) == 0 &&
			      !timed_out;
	close(sv[0]);
	close(res[0]);
}

static void release(struct outcome *o)
{
	vsm_recv_free(&o->got);
	free(o->src_pfns);
}

/* Data intact, counts agreed, the path reported as it happened. */
static void check_data(struct __test_metadata *_metadata, const struct layout *l,
		       struct outcome *o)
{
	uint64_t off = 0;

	ASSERT_EQ(0, o->recv_ret) TH_LOG("receiver: %s", o->rep.reason);
	ASSERT_EQ(0, o->s.ret) TH_LOG("sender: %s", o->s.rep.reason);
	ASSERT_TRUE(o->sender_exited_ok);
	ASSERT_EQ(o->total, o->rep.bytes);
	ASSERT_EQ(o->total, o->s.rep.bytes);
	ASSERT_EQ(o->total, o->s.rep.acked);
	ASSERT_TRUE(o->rep.verified);
	/* Both sides went through the pipes asked for, of one size. */
	ASSERT_EQ(l->pipes ? l->pipes : 2u, o->s.rep.nr_pipes);
	ASSERT_EQ(o->s.rep.nr_pipes, o->rep.nr_pipes);
	ASSERT_EQ(o->s.rep.pipe_size, o->rep.pipe_size);
	if (l->pipe_size)
		ASSERT_EQ(l->pipe_size, o->rep.pipe_size);
	ASSERT_EQ((unsigned int)l->nr, o->got.nr);
	for (int i = 0; i < l->nr; i++) {
		ASSERT_EQ(o->lens[i], o->got.regs[i].len);
		ASSERT_EQ(l->huge ? VSM_REGION_HUGE : 0u, o->got.regs[i].flags);
		if (l->huge)	/* THP-aligned on the receiving side */
			ASSERT_EQ(0, (uintptr_t)o->got.regs[i].addr % vsm_thp_size());
		ASSERT_EQ(-1, diff_pattern(o->got.regs[i].addr, o->lens[i], off, SEED))
			TH_LOG("region %d differs", i);
		off += o->lens[i];
	}
	if (!kernel_moves()) {
		ASSERT_EQ(VSM_PATH_COPY, o->rep.path);
		ASSERT_EQ(VSM_PATH_COPY, o->s.rep.path);
		ASSERT_NE(NULL, strstr(o->s.rep.path_why, "SPLICE_F_UNMAP"));
		ASSERT_EQ(0, o->rep.pages_moved);
		ASSERT_EQ(o->rep.pages, o->rep.pages_copied);
	} else {
		ASSERT_EQ(VSM_PATH_MOVE, o->rep.path);
		ASSERT_EQ(VSM_PATH_MOVE, o->s.rep.path);
	}
}

FIXTURE(proto)
{
	struct outcome o;
};

FIXTURE_VARIANT(proto)
{
	struct layout l;
};

/* The basic hand-off: one page-aligned region. */
FIXTURE_VARIANT_ADD(proto, one_region) {
	.l = { .nr = 1, .len = { 1 << 20 } },
};

/* Many regions: each its own destination, offsets must not slip. */
FIXTURE_VARIANT_ADD(proto, many_regions) {
	.l = { .nr = 64, .each = 64 << 10 },
};

/* Odd sizes: partial pages at region ends are copied, nothing shifts. */
FIXTURE_VARIANT_ADD(proto, odd_sizes) {
	.l = { .nr = 5, .len = { 1, 4097, 3 * 4096 + 5, 100000, 4095 } },
};

/* THP-backed regions: whole THPs move with one PMD into aligned memory. */
FIXTURE_VARIANT_ADD(proto, thp) {
	.l = { .nr = 2, .len = { 4 << 20, 4 << 20 }, .huge = true },
};

/*
 * Many turns of two small pipes: chunks end mid-region and mid-page, and
 * the pipes' alternation carries on across regions; a receiver that took a
 * chunk from the wrong pipe or cut it elsewhere than the sender would put
 * bytes in the wrong place.
 */
FIXTURE_VARIANT_ADD(proto, two_pipes_many_turns) {
	.l = { .nr = 3, .len = { (1 << 20) + 5, 3 << 20, 3 * 4096 + 1 },
	       .pipes = 2, .pipe_size = 64 << 10 },
};

/* One slot a pipe: every THP is a turn of its own, the pipes alternate. */
FIXTURE_VARIANT_ADD(proto, thp_two_pipes_a_thp_a_turn) {
	.l = { .nr = 2, .len = { 4 << 20, (6 << 20) + 3 * 4096 }, .huge = true,
	       .pipes = 2, .pipe_size = 4096 },
};

/* One pipe, as before two were the default: the two sides take turns. */
FIXTURE_VARIANT_ADD(proto, one_pipe) {
	.l = { .nr = 2, .len = { 1 << 20, (2 << 20) + 7 }, .pipes = 1,
	       .pipe_size = 64 << 10 },
};

FIXTURE_SETUP(proto)
{
	handoff(_metadata, &variant->l, &self->o, 20000);
}

FIXTURE_TEARDOWN(proto)
{
	release(&self->o);
}

TEST_F(proto, bytes)
{
	check_data(_metadata, &variant->l, &self->o);
}

TEST_F(proto, counters)
{
	struct outcome *o = &self->o;

	REQUIRE_MOVE();	/* skips on a stock kernel, fails in the test VM */
	if (!kernel_counters())
		SKIP(return, "no vmsplice move counters in /proc/vmstat");
	ASSERT_EQ(0, o->recv_ret) TH_LOG("receiver: %s", o->rep.reason);
	ASSERT_EQ(o->whole_pages, o->rep.pages_moved)
		TH_LOG("moved %llu copied %llu", (unsigned long long)o->rep.pages_moved,
		       (unsigned long long)o->rep.pages_copied);
	ASSERT_EQ(o->rep.pages - o->whole_pages, o->rep.pages_copied);
	ASSERT_TRUE(o->s.src_zero);
	ASSERT_GE(o->s.rep.stats.unmapped, (long long)o->whole_pages);
	if (variant->l.huge)
		ASSERT_EQ((long long)(o->total / vsm_thp_size()), o->rep.stats.thp);
}

TEST_F(proto, pfns)
{
	struct outcome *o = &self->o;
	uint64_t n = 0;
	int pm;

	REQUIRE_MOVE();	/* skips on a stock kernel, fails in the test VM */
	if (!pfns_visible())
		SKIP(return, "page frame numbers hidden (not root)");
	ASSERT_EQ(0, o->recv_ret);
	pm = pagemap_open();
	ASSERT_GE(pm, 0);
	ASSERT_EQ(o->whole_pages, o->s.nr_pfns);
	for (unsigned int i = 0; i < o->got.nr; i++)
		for (size_t off = 0; off + PS <= o->got.regs[i].len; off += PS, n++) {
			ASSERT_NE(0, o->src_pfns[n]);
			ASSERT_EQ(o->src_pfns[n],
				  pagemap_pfn(pm, (char *)o->got.regs[i].addr + off))
				TH_LOG("region %u page %zu changed frame", i, off / PS);
		}
	close(pm);
}

FIXTURE(big) {};
FIXTURE_SETUP(big) {}
FIXTURE_TEARDOWN(big) {}

/* 1 GiB in one region: gated to keep make check fast. */
TEST_F_TIMEOUT(big, round_trip_1gib, 1200)
{
	static const struct layout l = { .nr = 1, .len = { 1UL << 30 } };
	struct outcome o;

	if (!getenv("VMSPLICE_TEST_BIG"))
		SKIP(return, "1 GiB round trip runs with VMSPLICE_TEST_BIG=1 (make check-big)");
	handoff(_metadata, &l, &o, 600000);
	check_data(_metadata, &l, &o);
	if (kernel_moves() && kernel_counters()) {
		ASSERT_EQ(o.whole_pages, o.rep.pages_moved);
		ASSERT_TRUE(o.s.src_zero);
	}
	release(&o);
}

TEST_HARNESS_MAIN
