// SPDX-License-Identifier: GPL-2.0
/*
 * vsm_give_pipes()/vsm_take_pipes(): a range handed over through several
 * pipes in turn, chunk k through pipe k % nr, a forked giver and this
 * process taking.
 *
 *  - route: the chunks go where the contract says (each pipe read on its
 *    own, with read(2)), and vsm_take_pipes() reassembles a range routed
 *    so by hand with the copy flags: both run on every kernel.
 *  - moved: on a kernel that moves, every page of the range arrives with
 *    its page frame (as root), the giver reads zeros, the counters show
 *    every page moved and none copied.
 *  - short: a giver that closes its pipes after some chunks leaves the
 *    taker with exactly those bytes, right.
 *  - einval: nr or chunk 0 is refused and nothing is given.
 */
#define _GNU_SOURCE
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "kselftest_harness.h"
#include "lib/feature.h"
#include "lib/pagemap.h"
#include "lib/pattern.h"
#include "lib/vmstat.h"
#include "tool_util.h"

#define PS	4096UL
#define SEED	0x5eed

/* Four pipes of 16 pages each: small enough that a chunk fills one. */
#define NR_MAX	4
#define CAP	(16 * PS)

struct pipes {
	int rd[NR_MAX], wr[NR_MAX];
};

static int open_pipes(struct pipes *p, unsigned int nr)
{
	for (unsigned int i = 0; i < nr; i++) {
		int fds[2];

		if (pipe2(fds, O_CLOEXEC) || fcntl(fds[1], F_SETPIPE_SZ, (int)CAP) < 0)
			return -1;
		p->rd[i] = fds[0];
		p->wr[i] = fds[1];
	}
	return 0;
}

static void close_all(int *fds, unsigned int nr)
{
	for (unsigned int i = 0; i < nr; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static char *map_fill(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	pattern_fill(p, len, SEED, 0);
	return p;
}

/*
 * Fork a giver that copies @sent bytes of @src into the pipes by hand,
 * chunk k into pipe k % @nr (SPLICE_F_GIFT: every kernel), and exits.
 */
static pid_t give_by_hand(struct pipes *p, unsigned int nr, size_t chunk,
			  char *src, size_t sent)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	close_all(p->rd, nr);
	for (size_t off = 0; off < sent; off += chunk) {
		size_t want = sent - off < chunk ? sent - off : chunk;
		struct iovec iov = { src + off, want };

		while (iov.iov_len) {
			ssize_t n = vmsplice(p->wr[(off / chunk) % nr], &iov, 1, SPLICE_F_GIFT);

			if (n <= 0)
				_exit(1);
			iov.iov_base = (char *)iov.iov_base + n;
			iov.iov_len -= n;
		}
	}
	_exit(0);
}

FIXTURE(route) {};
FIXTURE_SETUP(route) {}
FIXTURE_TEARDOWN(route) {}

FIXTURE_VARIANT(route)
{
	unsigned int nr;
	size_t chunk, len;
};

/* A chunk a pipe-full; the last chunk short. */
FIXTURE_VARIANT_ADD(route, two_pipes_full_chunks) { 2, CAP, 5 * CAP + 3 * PS };
/* Three pipes, chunks of 4 pages: each pipe holds several chunks. */
FIXTURE_VARIANT_ADD(route, three_pipes_small_chunks) { 3, 4 * PS, 37 * PS };
/* One pipe: vsm_give()'s behaviour. */
FIXTURE_VARIANT_ADD(route, one_pipe) { 1, CAP, 3 * CAP };
/* The range shorter than one chunk: all of it through the first pipe. */
FIXTURE_VARIANT_ADD(route, less_than_a_chunk) { 2, CAP, 5 * PS };

/*
 * A giver copying chunk k into pipe k % nr by hand (SPLICE_F_GIFT: every
 * kernel), vsm_take_pipes() on our side: the reassembled range is right.
 */
TEST_F(route, take_reassembles)
{
	unsigned int nr = variant->nr;
	size_t len = variant->len, chunk = variant->chunk, taken = 0;
	char *src = map_fill(len), *dst;
	struct pipes p;
	pid_t pid;
	int st;

	ASSERT_NE(NULL, src);
	dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, dst);
	ASSERT_EQ(0, open_pipes(&p, nr));
	pid = give_by_hand(&p, nr, chunk, src, len);
	ASSERT_LE(0, pid);
	close_all(p.wr, nr);
	ASSERT_EQ((ssize_t)len, vsm_take_pipes(p.rd, nr, chunk, dst, len, &taken));
	ASSERT_EQ(len, taken);
	ASSERT_EQ((size_t)-1, pattern_check(dst, len, SEED, 0));
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_EQ(0, st);
	close_all(p.rd, nr);
}

/*
 * vsm_give_pipes() in a giver, each pipe drained on its own with read(2)
 * in chunk order: chunk k is found in pipe k % nr and nowhere else.
 */
TEST_F(route, give_routes)
{
	unsigned int nr = variant->nr;
	size_t len = variant->len, chunk = variant->chunk;
	char *src = map_fill(len), *dst;
	struct pipes p;
	pid_t pid;
	int st;

	REQUIRE_MOVE();	/* vsm_give_pipes() gives with SPLICE_F_UNMAP */
	ASSERT_NE(NULL, src);
	dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, dst);
	ASSERT_EQ(0, open_pipes(&p, nr));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		size_t given = 0;

		close_all(p.rd, nr);
		_exit(vsm_give_pipes(p.wr, nr, chunk, src, len, &given) != (ssize_t)len ||
		      given != len);
	}
	close_all(p.wr, nr);
	for (size_t off = 0; off < len; off += chunk) {
		size_t want = len - off < chunk ? len - off : chunk;
		int fd = p.rd[(off / chunk) % nr];

		for (size_t got = 0; got < want;) {
			ssize_t n = read(fd, dst + off + got, want - got);

			ASSERT_LT(0, n) TH_LOG("chunk at %zu: pipe %zu ended early",
					       off, (off / chunk) % nr);
			got += n;
		}
	}
	ASSERT_EQ((size_t)-1, pattern_check(dst, len, SEED, 0));
	/* Nothing more in any pipe: no chunk went twice. */
	for (unsigned int i = 0; i < nr; i++) {
		char c;

		ASSERT_EQ(0, read(p.rd[i], &c, 1)) TH_LOG("pipe %u has more", i);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_EQ(0, st);
	close_all(p.rd, nr);
}

/*
 * Both sides with the library: every page moved, none copied, each kept
 * its page frame (as root), the giver reads zeros.  The giver fills its
 * range after fork(): pages shared with a parent would (rightly) be copied.
 */
TEST_F(route, moved)
{
	unsigned int nr = variant->nr;
	size_t len = variant->len, chunk = variant->chunk, pages = len / PS;
	uint64_t *pfns = mmap(NULL, pages * 8 + 8, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct vsm_stats before, after, d;
	int res[2], pm = pagemap_open(), st;
	bool see_pfns = pm >= 0 && pagemap_pfns_visible(pm);
	struct pipes p;
	char zero_ok, *dst;
	pid_t pid;

	REQUIRE_MOVE();
	ASSERT_NE(MAP_FAILED, pfns);
	dst = vsm_alloc(len, false);
	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, pipe2(res, O_CLOEXEC));
	ASSERT_EQ(0, open_pipes(&p, nr));
	counters_settle();
	ASSERT_EQ(0, vsm_stats_read(&before));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char *src = map_fill(len);
		int own = pagemap_open();	/* @pm shows the parent's pages */

		close_all(p.rd, nr);
		if (!src || (see_pfns && own < 0))
			_exit(1);
		for (size_t i = 0; i < pages; i++)
			pfns[i] = see_pfns ? pagemap_pfn(own, src + i * PS) : 0;
		if (vsm_give_pipes(p.wr, nr, chunk, src, len, NULL) != (ssize_t)len)
			_exit(1);
		close_all(p.wr, nr);
		zero_ok = all_bytes_are(src, len, 0) ? 'z' : 'n';
		_exit(write(res[1], &zero_ok, 1) != 1);
	}
	close(res[1]);
	close_all(p.wr, nr);
	ASSERT_EQ((ssize_t)len, vsm_take_pipes(p.rd, nr, chunk, dst, len, NULL));
	ASSERT_EQ((size_t)-1, pattern_check(dst, len, SEED, 0));
	ASSERT_EQ(1, read(res[0], &zero_ok, 1));
	ASSERT_EQ('z', zero_ok) TH_LOG("the giver still sees its data");
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_EQ(0, st);
	counters_settle();
	ASSERT_EQ(0, vsm_stats_read(&after));
	vsm_stats_delta(&before, &after, &d);
	ASSERT_TRUE(d.supported);
	ASSERT_EQ((long long)pages, d.moved) TH_LOG("copied %lld", d.copied);
	ASSERT_EQ(0, d.copied);
	if (see_pfns) {
		for (size_t i = 0; i < pages; i++) {
			ASSERT_NE(0, pfns[i]);
			ASSERT_EQ(pfns[i], pagemap_pfn(pm, dst + i * PS)) TH_LOG("page %zu", i);
		}
	}
	close_all(p.rd, nr);
	close(res[0]);
	if (pm >= 0)
		close(pm);
}

/*
 * The giver closes every pipe after two and a half chunks: the taker gets
 * exactly those bytes, right, and a short count (not an error).
 */
TEST(short_when_the_giver_stops)
{
	size_t chunk = 4 * PS, len = 8 * chunk, sent = 2 * chunk + 2 * PS, taken = 0;
	char *src = map_fill(len), *dst;
	struct pipes p;
	pid_t pid;
	int st;

	ASSERT_NE(NULL, src);
	dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, dst);
	ASSERT_EQ(0, open_pipes(&p, 2));
	pid = give_by_hand(&p, 2, chunk, src, sent);
	ASSERT_LE(0, pid);
	close_all(p.wr, 2);
	ASSERT_EQ((ssize_t)sent, vsm_take_pipes(p.rd, 2, chunk, dst, len, &taken));
	ASSERT_EQ(sent, taken);
	ASSERT_EQ((size_t)-1, pattern_check(dst, sent, SEED, 0));
	ASSERT_TRUE(all_bytes_are(dst + sent, len - sent, 0));
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_EQ(0, st);
	close_all(p.rd, 2);
}

/* nr 0 or chunk 0: EINVAL, and nothing left the caller. */
TEST(einval_gives_nothing)
{
	size_t len = 4 * PS, given = 1;
	char *src = map_fill(len);
	struct pipes p;
	int avail = -1;

	ASSERT_NE(NULL, src);
	ASSERT_EQ(0, open_pipes(&p, 1));
	ASSERT_EQ(-1, vsm_give_pipes(p.wr, 0, PS, src, len, &given));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(0, given);
	given = 1;
	ASSERT_EQ(-1, vsm_give_pipes(p.wr, 1, 0, src, len, &given));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(0, given);
	ASSERT_EQ(-1, vsm_take_pipes(p.rd, 1, 0, src, len, &given));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(0, ioctl(p.rd[0], FIONREAD, &avail));
	ASSERT_EQ(0, avail);
	ASSERT_EQ((size_t)-1, pattern_check(src, len, SEED, 0));
	close_all(p.rd, 1);
	close_all(p.wr, 1);
}

/*
 * A kernel without SPLICE_F_UNMAP refuses the first chunk: -1 EINVAL, no
 * byte given, the pipes empty, the caller's data where it was.
 */
TEST(refused_without_unmap_keeps_data)
{
	size_t len = 8 * PS, given = 1;
	char *src = map_fill(len);
	struct pipes p;

	if (kernel_unmaps())
		SKIP(return, "this kernel has SPLICE_F_UNMAP: nothing to refuse");
	ASSERT_NE(NULL, src);
	ASSERT_EQ(0, open_pipes(&p, 2));
	ASSERT_EQ(-1, vsm_give_pipes(p.wr, 2, 4 * PS, src, len, &given));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(0, given);
	for (int i = 0; i < 2; i++) {
		int avail = -1;

		ASSERT_EQ(0, ioctl(p.rd[i], FIONREAD, &avail));
		ASSERT_EQ(0, avail);
	}
	ASSERT_EQ((size_t)-1, pattern_check(src, len, SEED, 0));
	close_all(p.rd, 2);
	close_all(p.wr, 2);
}

TEST_HARNESS_MAIN
