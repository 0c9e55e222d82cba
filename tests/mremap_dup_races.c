// SPDX-License-Identifier: GPL-2.0
/*
 * mremap(MREMAP_DUP) against munmap, mprotect, fork, madvise and THP
 * collapse of the original from another thread, and 10,000 duplicates
 * back to the baseline memory.  Each duplicate that succeeds must hold,
 * page by page, something the original held: its pattern or zeros.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/dup.h"
#include "lib/fuzz_dup.h"
#include "lib/mem.h"
#include "lib/pattern.h"
#include "lib/vmstat.h"

#define PS		4096UL
#define PMD_SZ		(2UL << 20)
#define RACE_LEN	(2 * PMD_SZ)
#define RACE_SECS	3
#define SEED		31

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25
#endif

enum racer { RACE_MUNMAP, RACE_MPROTECT, RACE_FORK, RACE_MADVISE, RACE_COLLAPSE };

struct race {
	char *p;		/* RACE_LEN, 2 MiB aligned */
	enum racer what;
	_Atomic int stop;
	_Atomic long rounds;
};

/* Fill [@p, @p + @len) of the region at @base with its pattern. */
static void fill(char *base, char *p, size_t len)
{
	pattern_fill(p, len, SEED, p - base);
}

static void *racer(void *arg)
{
	struct race *r = arg;
	unsigned int n = 0;

	while (!atomic_load(&r->stop)) {
		char *q = r->p + (n % (RACE_LEN / PS)) * PS;
		pid_t pid;

		switch (r->what) {
		case RACE_MUNMAP:
			/* Gone, then back (zeros), then filled again. */
			munmap(r->p + PMD_SZ, PMD_SZ);
			mmap(r->p + PMD_SZ, PMD_SZ, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			/* Same flags again: merges back into one VMA. */
			madvise(r->p + PMD_SZ, PMD_SZ, MADV_HUGEPAGE);
			fill(r->p, r->p + PMD_SZ, PMD_SZ);
			break;
		case RACE_MPROTECT:
			mprotect(q, 16 * PS, PROT_READ);
			mprotect(q, 16 * PS, PROT_READ | PROT_WRITE);
			break;
		case RACE_FORK:
			pid = fork();
			if (pid == 0) {
				/* The child's writes are its own. */
				memset(r->p, 0xcc, RACE_LEN);
				_exit(0);
			}
			if (pid > 0)
				waitpid(pid, NULL, 0);
			break;
		case RACE_MADVISE:
			madvise(q, 8 * PS, n & 1 ? MADV_DONTNEED : MADV_PAGEOUT);
			madvise(q, 8 * PS, MADV_COLD);
			fill(r->p, q, 8 * PS);	/* rewrite what DONTNEED dropped */
			break;
		case RACE_COLLAPSE:
			/* PTE-map the THPs, then collapse them again. */
			madvise(q, PS, MADV_DONTNEED);
			fill(r->p, q, PS);
			madvise(r->p, RACE_LEN, MADV_COLLAPSE);
			break;
		}
		n++;
		atomic_fetch_add(&r->rounds, 1);
	}
	return NULL;
}

/*
 * Each page of @d is the pattern of its offset, or zeros, or (caught while
 * the racer was refilling it) the pattern up to some byte and zeros after.
 */
static long bad_page(const char *d)
{
	for (size_t off = 0; off < RACE_LEN; off += PS) {
		size_t k = pattern_check(d + off, PS, SEED, off);

		if (k == (size_t)-1 || all_bytes_are(d + off + k, PS - k, 0))
			continue;
		return off / PS;
	}
	return -1;
}

static void run_race(struct __test_metadata *_metadata, enum racer what)
{
	char *map = map_anon(RACE_LEN + PMD_SZ);
	struct race r = { .what = what };
	struct timespec t0, t;
	long dups = 0, refused = 0;
	pthread_t th;

	REQUIRE_DUP();
	ASSERT_NE(NULL, map);
	r.p = (char *)(((uintptr_t)map + PMD_SZ - 1) & ~(PMD_SZ - 1));
	madvise(r.p, RACE_LEN, MADV_HUGEPAGE);
	fill(r.p, r.p, RACE_LEN);
	ASSERT_EQ(0, pthread_create(&th, NULL, racer, &r));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		char *d = dup_range(r.p, RACE_LEN);

		if (d == MAP_FAILED) {
			/* The range was not one mapping at that moment. */
			ASSERT_EQ(EFAULT, errno);
			refused++;
		} else {
			long bad = bad_page(d);

			ASSERT_EQ(-1, bad) {
				TH_LOG("duplicate page %ld holds neither the data nor zeros", bad);
			}
			/* The duplicate is its own: the racer does not reach it. */
			usleep(100);
			ASSERT_EQ(-1, bad_page(d));
			ASSERT_EQ(0, munmap(d, RACE_LEN));
			dups++;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < RACE_SECS);
	atomic_store(&r.stop, 1);
	pthread_join(th, NULL);
	TH_LOG("%ld duplicates, %ld refused, %ld racer rounds", dups, refused,
	       atomic_load(&r.rounds));
	ASSERT_LT(0, dups);
	ASSERT_LT(0, atomic_load(&r.rounds));
	if (what != RACE_MUNMAP && what != RACE_MPROTECT)
		ASSERT_EQ(0, refused);
	munmap(map, RACE_LEN + PMD_SZ);
}

TEST(race_munmap)
{
	run_race(_metadata, RACE_MUNMAP);
}

TEST(race_mprotect)
{
	run_race(_metadata, RACE_MPROTECT);
}

TEST(race_fork)
{
	run_race(_metadata, RACE_FORK);
}

TEST(race_madvise)
{
	run_race(_metadata, RACE_MADVISE);
}

TEST(race_thp_collapse)
{
	run_race(_metadata, RACE_COLLAPSE);
}

/*
 * 10,000 duplicates of 4 KiB and THP memory, each written on both sides
 * and unmapped: afterwards the anonymous pages and free memory are back
 * at their baseline.  MREMAP_DUP_TEST_LEAK=N keeps every Nth duplicate
 * mapped, to see this test go red.
 */
#ifndef SPLICE_F_UNMAP
#define SPLICE_F_UNMAP	0x10
#endif

/*
 * Pages shared with a duplicate are gifted and moved through a pipe (the
 * fuzzer's MREMAP_DUP operation, once, deterministically): the reader
 * gets the data, and the duplicate still holds it, unchanged.  A move
 * that took a page the duplicate maps would change the duplicate.
 */
TEST(gift_of_duplicated_pages)
{
	size_t len = 16 * PS;
	char *src = map_anon(len), *dst = map_anon(len);
	struct iovec iov = { .iov_base = src, .iov_len = len };
	struct iovec riov = { .iov_base = dst, .iov_len = len };
	struct fuzz_dup f = { 0 };
	int p[2];
	ssize_t n;

	REQUIRE_DUP();
	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	fill(src, src, len);
	ASSERT_EQ(0, pipe(p));
	ASSERT_LE(0, fcntl(p[1], F_SETPIPE_SZ, 1 << 20));
	fuzz_dup_begin(&f, 0, 1, src, len);
	ASSERT_EQ(1, f.made);
	n = vmsplice(p[1], &iov, 1, SPLICE_F_GIFT | SPLICE_F_MOVE | SPLICE_F_UNMAP);
	if (n < 0 && errno == EINVAL)	/* a kernel without SPLICE_F_UNMAP */
		n = vmsplice(p[1], &iov, 1, SPLICE_F_GIFT | SPLICE_F_MOVE);
	ASSERT_EQ((ssize_t)len, n);
	ASSERT_EQ((ssize_t)len, vmsplice(p[0], &riov, 1, SPLICE_F_MOVE));
	ASSERT_EQ((size_t)-1, pattern_check(dst, len, SEED, 0));
	ASSERT_EQ(0, fuzz_dup_end(&f)) {
		TH_LOG("%s", f.why);
	}
	close(p[0]);
	close(p[1]);
}

/* A fixture only for TEST_F_TIMEOUT: 10,000 rounds take minutes on TCG. */
FIXTURE(long_run) {
	int unused;
};

FIXTURE_SETUP(long_run)
{
	self->unused = 0;
}

FIXTURE_TEARDOWN(long_run)
{
}

/*
 * @n duplicates, alternately of the THP at @p and of 16 pages of 4 KiB at
 * @q, each written on both sides and unmapped, except every @leak_every-th.
 */
static int dup_rounds(char *p, char *q, int n, long leak_every)
{
	for (int i = 0; i < n; i++) {
		size_t l = i & 1 ? 16 * PS : PMD_SZ;
		char *s = i & 1 ? q : p;
		char *d = dup_range(s, l);

		if (d == MAP_FAILED)
			return -1;
		d[(i % (l / PS)) * PS] ^= 1;		/* a copy on the duplicate */
		s[((i + 1) % (l / PS)) * PS] ^= 1;	/* and on the original */
		s[((i + 1) % (l / PS)) * PS] ^= 1;
		if (leak_every && i % leak_every == 0)
			continue;
		if (munmap(d, l))
			return -1;
	}
	return 0;
}

/*
 * 10,000 duplicates of THP and 4 KiB memory, each written on both sides
 * and unmapped, leave the anonymous pages, page tables and free memory at
 * their baseline.  The baseline is taken after a first 10,000 rounds, so
 * that caches that grow to a bound (per-CPU page lists, slab, the debug
 * kernel's KASAN quarantine, which holds freed objects up to 1/32 of RAM)
 * are at their steady state.  MREMAP_DUP_TEST_LEAK=N keeps every Nth
 * duplicate mapped, to see this test go red.
 */
TEST_F_TIMEOUT(long_run, iterations_back_to_baseline, 900)
{
	const char *leak_env = getenv("MREMAP_DUP_TEST_LEAK");
	long leak_every = leak_env ? atol(leak_env) : 0;
	char *map = map_anon(2 * PMD_SZ), *p, *q = map_anon(16 * PS);
	long long anon0, free0, pt0, anon1, free1, pt1;

	REQUIRE_DUP();
	ASSERT_NE(NULL, map);
	ASSERT_NE(NULL, q);
	p = (char *)(((uintptr_t)map + PMD_SZ - 1) & ~(PMD_SZ - 1));
	madvise(p, PMD_SZ, MADV_HUGEPAGE);
	fill(p, p, PMD_SZ);
	fill(q, q, 16 * PS);
	ASSERT_EQ(0, dup_rounds(p, q, 10000, 0));
	counters_settle();
	anon0 = vmstat_get("nr_anon_pages");
	free0 = vmstat_get("nr_free_pages");
	pt0 = vmstat_get("nr_page_table_pages");
	ASSERT_EQ(0, dup_rounds(p, q, 10000, leak_every));
	ASSERT_EQ((size_t)-1, pattern_check(p, PMD_SZ, SEED, 0));
	ASSERT_EQ((size_t)-1, pattern_check(q, 16 * PS, SEED, 0));
	counters_settle();
	anon1 = vmstat_get("nr_anon_pages");
	free1 = vmstat_get("nr_free_pages");
	pt1 = vmstat_get("nr_page_table_pages");
	TH_LOG("nr_anon_pages %lld -> %lld, nr_page_table_pages %lld -> %lld, nr_free_pages %lld -> %lld",
	       anon0, anon1, pt0, pt1, free0, free1);
	/*
	 * Tolerance: 64 anonymous pages and 16 page tables (other tasks of
	 * the VM fault a few), 1024 free pages (4 MiB of caches).  A leak of
	 * one page per duplicate is 10,000 pages.
	 */
	ASSERT_LT(llabs(anon1 - anon0), 64);
	ASSERT_LT(llabs(pt1 - pt0), 16);
	ASSERT_LT(free0 - free1, 1024);
}

TEST_HARNESS_MAIN
