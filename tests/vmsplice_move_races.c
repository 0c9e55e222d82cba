// SPDX-License-Identifier: GPL-2.0
/*
 * vmsplice(SPLICE_F_MOVE) against everything that can happen at the same
 * time, on several CPUs (the test VM has two): a second reader on the
 * pipe, mprotect(), munmap(), fork(), MADV_DONTNEED and THP collapse
 * (MADV_COLLAPSE, khugepaged) in the reader or in the writer, signals,
 * and a writer killed mid-stream; with 4 KiB pages and with whole THPs
 * (one 2 MiB pipe buffer each).
 *
 * Every 4 KiB page carries its sequence number and a pattern only it has,
 * every THP words that name it (lib/words.h), so each test can say which
 * pages arrived, whether they are right, and whether any was lost or
 * delivered twice.  A racer that destroys data (munmap, MADV_DONTNEED)
 * says when it does (an epoch, odd while it acts): only pages it may have
 * zeroed may read as zeros, and then only zeros; everything else must be
 * exact.  Loops are bounded by page counts, racers paced by the readers'
 * and writers' progress; nothing waits on time.  The kernel's own checks
 * (KASAN, lockdep, DEBUG_VM) run alongside in the test VM.  Each test
 * prints its figures: pages moved, fallbacks, EFAULT retries, racer
 * rounds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/leak.h"
#include "lib/mem.h"
#include "lib/pattern.h"
#include "lib/setting.h"
#include "lib/pagemap.h"
#include "lib/thp.h"
#include "lib/vmstat.h"
#include "lib/words.h"
#include "lib/xfer.h"

#define PS	4096UL
#define GM	give_flags()
#define KHUGEPAGED	THP_DIR "/khugepaged"

/* Page @seq: its number, then a pattern that only page @seq has. */
static void tag_page(char *p, uint64_t seq)
{
	pattern_fill(p + 8, PS - 8, (uint32_t)seq + 1, 8);
	memcpy(p, &seq, 8);
}

/* The sequence number of a correctly tagged page, or -1. */
static int64_t page_seq(const char *p)
{
	uint64_t seq;

	memcpy(&seq, p, 8);
	if (pattern_check(p + 8, PS - 8, (uint32_t)seq + 1, 8) != (size_t)-1)
		return -1;
	return (int64_t)seq;
}

/*
 * Writer process: gifts pages @first..@first+@n-1, @batch at a time, from
 * fresh memory each batch, then exits (closing its end of the pipe).
 */
static pid_t start_writer(int rd, int wr, uint64_t first, size_t n, size_t batch)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	close(rd);	/* a reader that dies must leave the writer EPIPE */
	for (size_t done = 0; done < n; done += batch) {
		size_t k = n - done < batch ? n - done : batch;
		char *src = map_anon(k * PS);
		struct iovec iov = { src, k * PS };

		if (!src)
			_exit(2);
		for (size_t i = 0; i < k; i++)
			tag_page(src + i * PS, first + done + i);
		while (iov.iov_len) {
			ssize_t r = vmsplice(wr, &iov, 1, GM);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				_exit(3);
			iov.iov_base = (char *)iov.iov_base + r;
			iov.iov_len -= r;
		}
		munmap(src, k * PS);
	}
	_exit(0);
}

/*
 * Read one page with SPLICE_F_MOVE into @dst, retrying after EINTR.
 * Returns 1 for a page, 0 at end of file, 2 after EFAULT (the page stays
 * in the pipe; counted in @efaults), -1 on another error.
 */
static int take_page(int rd, char *dst, int *efaults)
{
	struct iovec iov = { dst, PS };

	for (;;) {
		ssize_t r = vmsplice(rd, &iov, 1, SPLICE_F_MOVE);

		if (r == (ssize_t)PS)
			return 1;
		if (r == 0)
			return 0;
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0 && errno == EFAULT) {
			(*efaults)++;
			return 2;
		}
		return -1;
	}
}

static void print_fallbacks(const struct xfer_counters *b,
			    const struct xfer_counters *a)
{
	char line[512];
	int n = 0;

	for (int i = 0; i < XFER_NR_FALLBACKS; i++) {
		long long d = xfer_counter_delta(b, a, xfer_fallback_names[i]);

		if (d && n < (int)sizeof(line) - 40)
			n += snprintf(line + n, sizeof(line) - n, " %s %lld",
				      xfer_fallback_names[i], d);
	}
	ksft_print_msg("  copied (fallback reasons, system-wide):%s\n", n ? line : " none");
}

FIXTURE(races)
{
	struct setting scan_sleep, alloc_sleep, pages_to_scan;
};

FIXTURE_SETUP(races)
{
}

/* In the parent: khugepaged's settings come back even after a timeout. */
FIXTURE_TEARDOWN_PARENT(races)
{
	setting_restore(&self->scan_sleep);
	setting_restore(&self->alloc_sleep);
	setting_restore(&self->pages_to_scan);
}

/*
 * Two reader processes on one pipe, one writer: every page arrives exactly
 * once, at one of the readers, intact.
 */
TEST_F_TIMEOUT(races, two_readers_one_pipe, 300)
{
	const size_t n = 2000;
	_Atomic int *seen = (_Atomic int *)map_anon_shared(n * sizeof(int));
	_Atomic int *bad = (_Atomic int *)map_anon_shared(sizeof(int));
	pid_t readers[2], writer;
	struct xfer_counters b, a;
	int p[2], status;

	xfer_counters_read(&b);
	ASSERT_NE(NULL, seen);
	ASSERT_NE(NULL, bad);
	ASSERT_EQ(0, pipe(p));
	writer = start_writer(p[0], p[1], 0, n, 16);
	close(p[1]);
	for (int r = 0; r < 2; r++) {
		readers[r] = fork();
		if (readers[r] == 0) {
			char *dst = map_anon(PS);
			int efaults = 0, got;

			while ((got = take_page(p[0], dst, &efaults)) == 1) {
				int64_t seq = page_seq(dst);

				if (seq < 0 || seq >= (int64_t)n)
					atomic_fetch_add(bad, 1);
				else
					atomic_fetch_add(&seen[seq], 1);
			}
			_exit(got == 0 ? 0 : 1);
		}
	}
	close(p[0]);
	ASSERT_EQ(writer, waitpid(writer, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	for (int r = 0; r < 2; r++) {
		ASSERT_EQ(readers[r], waitpid(readers[r], &status, 0));
		ASSERT_EQ(0, WEXITSTATUS(status));
	}
	ASSERT_EQ(0, *bad);
	xfer_counters_read(&a);
	ksft_print_msg("two readers: %zu pages, %lld moved\n", n,
		       xfer_counter_delta(&b, &a, "moved"));
	print_fallbacks(&b, &a);
	if (xfer_kernel_moves())
		ASSERT_EQ((long long)n, xfer_counter_delta(&b, &a, "moved"));
	for (size_t i = 0; i < n; i++) {
		ASSERT_EQ(1, seen[i]) TH_LOG("page %zu delivered %d times", i, seen[i]);
	}
}

/*
 * A page the munmap racer took away part-way: a copy that faulted in a
 * fresh zero page at the racer's new mapping and went on writing there.
 * Every byte is the page's own or zero.  (@expect: scratch page.)
 */
static bool exact_or_zero(const char *got, uint64_t seq, char *expect)
{
	tag_page(expect, seq);
	for (size_t i = 0; i < PS; i++)
		if (got[i] != expect[i] && got[i])
			return false;
	return true;
}

struct racer {
	char *region;
	size_t len;
	_Atomic bool stop;
	_Atomic long rounds;
	int kind;		/* 0 mprotect, 1 munmap+mmap, 2 fork */
};

static void *race(void *arg)
{
	struct racer *r = arg;

	while (!atomic_load(&r->stop)) {
		switch (r->kind) {
		case 0:
			mprotect(r->region, r->len, PROT_READ);
			mprotect(r->region, r->len, PROT_READ | PROT_WRITE);
			break;
		case 1:
			munmap(r->region, r->len);
			mmap(r->region, r->len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			break;
		case 2: {
			pid_t pid = fork();

			if (pid == 0)
				_exit(0);
			if (pid > 0)
				waitpid(pid, NULL, 0);
			break;
		}
		}
		atomic_fetch_add(&r->rounds, 1);
	}
	return NULL;
}

/*
 * The reader's destination changes under it.  Each page is read into the
 * racing region, then copied out for checking; EFAULT leaves the page in
 * the pipe, and the next try gets it.  With munmap racing, a page can be
 * delivered and then unmapped before it is copied out: then it reads as
 * zeros (or cannot be read), never as anything else.
 */
static void reader_vs(struct __test_metadata *_metadata, int kind)
{
	static const char *const name[] = { "mprotect", "munmap", "fork" };
	const size_t n = 1500, len = 16 * PS;
	struct racer r = { .len = len, .kind = kind };
	char *check = map_anon(PS), *expect = map_anon(PS);
	size_t delivered = 0, verified = 0, zeroed = 0;
	int p[2], status, efaults = 0;
	pthread_t th;
	pid_t writer;

	struct xfer_counters b, a;

	r.region = map_anon(len);
	ASSERT_NE(NULL, r.region);
	xfer_counters_read(&b);
	ASSERT_NE(NULL, check);
	ASSERT_NE(NULL, expect);
	ASSERT_EQ(0, pipe(p));
	writer = start_writer(p[0], p[1], 0, n, 8);
	close(p[1]);
	ASSERT_EQ(0, pthread_create(&th, NULL, race, &r));

	for (size_t i = 0; delivered < n; i++) {
		char *dst = r.region + (i % 16) * PS;
		int got = take_page(p[0], dst, &efaults);

		if (got == 2)
			continue;		/* EFAULT: still in the pipe */
		ASSERT_EQ(1, got) TH_LOG("after %zu pages", delivered);
		if (!copy_out(check, dst, PS))
			memset(check, 0, PS);	/* taken away: as good as zeros */
		if (page_seq(check) == (int64_t)delivered) {
			verified++;
		} else {
			/* Only the munmap racer may take (part of) a page away. */
			ASSERT_EQ(1, kind) TH_LOG("page %zu wrong", delivered);
			ASSERT_TRUE(exact_or_zero(check, delivered, expect))
				TH_LOG("page %zu: bytes neither its own nor zero", delivered);
			zeroed++;
		}
		delivered++;
	}
	atomic_store(&r.stop, true);
	pthread_join(th, NULL);
	/* Nothing left over, nothing lost. */
	ASSERT_EQ(0, take_page(p[0], check, &efaults));
	ASSERT_EQ(writer, waitpid(writer, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	xfer_counters_read(&a);
	ksft_print_msg("%s racing the reader: %zu pages, %zu verified, %zu taken away by the racer, %d EFAULT retries, %ld racer rounds, %lld moved\n",
		       name[kind], delivered, verified, zeroed, efaults,
		       atomic_load(&r.rounds), xfer_counter_delta(&b, &a, "moved"));
	print_fallbacks(&b, &a);
	ASSERT_LT(0, verified);
	/* The race must have hit the move path, not only the copy. */
	if (xfer_kernel_moves())
		ASSERT_LT(0, xfer_counter_delta(&b, &a, "moved"));
	close(p[0]);
}

TEST_F_TIMEOUT(races, mprotect_races_reader, 300)
{
	reader_vs(_metadata, 0);
}

TEST_F_TIMEOUT(races, munmap_races_reader, 300)
{
	reader_vs(_metadata, 1);
}

TEST_F_TIMEOUT(races, fork_races_reader, 300)
{
	reader_vs(_metadata, 2);
}

/* ------------------------------------------------------------- THPs */

#define NR_THP		48	/* THPs through the pipe per test */

enum thp_race {
	THP_MPROTECT,	/* PROT_READ and back, over all or part of a THP */
	THP_MUNMAP,	/* munmap() and a fresh MADV_HUGEPAGE mapping */
	THP_FORK,	/* fork(): the THP shared copy-on-write meanwhile */
	THP_DONTNEED,	/* MADV_DONTNEED of some pages: a PMD split, zeros */
	THP_COLLAPSE,	/* split by mprotect() of one page, MADV_COLLAPSE back */
	THP_KHUGEPAGED,	/* split the same way, khugepaged collapses it */
};

static const char *const thp_race_name[] = {
	"mprotect", "munmap", "fork", "MADV_DONTNEED", "MADV_COLLAPSE",
	"khugepaged",
};

/* Whether the racer may zero or take away data. */
static bool thp_race_destroys(enum thp_race kind)
{
	return kind == THP_MUNMAP || kind == THP_DONTNEED;
}

/*
 * A racer thread acting on @region (@len bytes) while the owner works on
 * it.  The owner arms it for one operation at a time (@tick), so every
 * race starts while a vmsplice() is under way, and half of the rounds
 * stay quiet: those are checked strictly.  @epoch is odd while a
 * destructive operation runs; the owner compares it before and after.
 */
struct thp_racer {
	enum thp_race kind;
	char *region;
	size_t len;
	unsigned int rnd;
	_Atomic long tick, seen_tick;
	_Atomic bool busy, armed, stop;
	_Atomic long epoch;
	_Atomic long rounds;
};

static void thp_race_once(struct thp_racer *r)
{
	size_t npages = r->len / PS;
	size_t off = (rand_r(&r->rnd) % npages) * PS;
	size_t n = (1 + rand_r(&r->rnd) % 8) * PS;

	if (off + n > r->len)
		n = r->len - off;
	switch (r->kind) {
	case THP_MPROTECT:
		if (rand_r(&r->rnd) % 2) {
			off = 0;
			n = r->len;
		}
		mprotect(r->region + off, n, PROT_READ);
		mprotect(r->region + off, n, PROT_READ | PROT_WRITE);
		break;
	case THP_MUNMAP:
		munmap(r->region, r->len);
		mmap(r->region, r->len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		madvise(r->region, r->len, MADV_HUGEPAGE);
		break;
	case THP_FORK: {
		pid_t pid = fork();

		if (pid == 0)
			_exit(0);
		if (pid > 0)
			waitpid(pid, NULL, 0);
		break;
	}
	case THP_DONTNEED:
		madvise(r->region + off, n, MADV_DONTNEED);
		break;
	case THP_COLLAPSE:
	case THP_KHUGEPAGED:
		/* One page's protection changed and back: the PMD is split. */
		mprotect(r->region + off, PS, PROT_READ);
		mprotect(r->region + off, PS, PROT_READ | PROT_WRITE);
		if (r->kind == THP_COLLAPSE)
			madvise((char *)((uintptr_t)(r->region + off) & ~(THP_SIZE - 1)),
				THP_SIZE, MADV_COLLAPSE);
		break;
	}
}

static void *thp_race(void *arg)
{
	struct thp_racer *r = arg;

	while (!atomic_load(&r->stop)) {
		long t = atomic_load(&r->tick);

		if (t == atomic_load(&r->seen_tick)) {
			sched_yield();		/* wait for the next round */
			continue;
		}
		atomic_store(&r->seen_tick, t);
		if (rand_r(&r->rnd) % 2)
			continue;		/* a quiet round */
		/* Dekker with thp_race_quiesce(): busy first, then armed. */
		atomic_store(&r->busy, true);
		if (atomic_load(&r->armed)) {
			bool destroys = thp_race_destroys(r->kind);

			if (destroys)
				atomic_fetch_add(&r->epoch, 1);
			thp_race_once(r);
			if (destroys)
				atomic_fetch_add(&r->epoch, 1);
			atomic_fetch_add(&r->rounds, 1);
		}
		atomic_store(&r->busy, false);
	}
	return NULL;
}

/* Let the racer act once from now on; returns the epoch before. */
static long thp_race_arm(struct thp_racer *r)
{
	long e = atomic_load(&r->epoch);

	atomic_store(&r->armed, true);
	atomic_fetch_add(&r->tick, 1);
	return e;
}

/* Disarm and wait for the racer to finish; whether it destroyed anything. */
static bool thp_race_quiesce(struct thp_racer *r, long epoch0)
{
	atomic_store(&r->armed, false);
	while (atomic_load(&r->busy))
		sched_yield();
	return atomic_load(&r->epoch) != epoch0 || (epoch0 & 1);
}

/* What the writer tells the reader about THP @i (shared memory). */
struct thp_shared {
	_Atomic int touched[NR_THP];	/* the writer's racer destroyed data */
	_Atomic int verdicts;		/* touched[] is final below this */
	_Atomic long writer_rounds, writer_efaults, not_thp;
};


/*
 * Writer: @n THPs, each filled with words of seed i + 1 in a fresh 2 MiB
 * MADV_HUGEPAGE region and given whole with SPLICE_F_UNMAP, one pipe
 * buffer each; with a racer in this process when @race is not negative.
 * A short or faulting gift continues after the bytes taken (a racing
 * munmap leaves zeros to send).
 */
static pid_t start_thp_writer(int rd, int wr, int n, int race,
			      struct thp_shared *sh)
{
	struct thp_racer r = { .kind = race, .len = THP_SIZE, .rnd = 7 };
	pthread_t th;
	pid_t pid = fork();

	if (pid)
		return pid;
	close(rd);
	if (race >= 0 && pthread_create(&th, NULL, thp_race, &r))
		_exit(2);
	for (int i = 0; i < n; i++) {
		char *src = thp_map(THP_SIZE);
		size_t done = 0;
		int pm = pagemap_open(), faults = 0;
		long e0;

		if (!src)
			_exit(2);
		words_fill(src, THP_SIZE, i + 1, 0);
		if (!backed_by_folio(pm, src, THP_SIZE))
			atomic_fetch_add(&sh->not_thp, 1);
		close(pm);
		r.region = src;
		e0 = thp_race_arm(&r);
		while (done < THP_SIZE) {
			struct iovec iov = { src + done, THP_SIZE - done };
			ssize_t got = vmsplice(wr, &iov, 1, GM);

			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0 && errno == EFAULT && race >= 0 && ++faults < 100000) {
				atomic_fetch_add(&sh->writer_efaults, 1);
				sched_yield();	/* the racer is remapping it */
				continue;
			}
			if (got <= 0)
				_exit(3);
			done += got;
		}
		if (race >= 0 && thp_race_quiesce(&r, e0))
			atomic_store(&sh->touched[i], 1);
		atomic_store(&sh->verdicts, i + 1);
		munmap(src, THP_SIZE);
	}
	atomic_store(&r.stop, true);
	if (race >= 0)
		pthread_join(th, NULL);
	sh->writer_rounds = r.rounds;
	_exit(0);
}

/*
 * Check THP @i as received: all of it exact, or, where a racer may have
 * destroyed data, every word exact or zero (a page zapped, or taken away
 * part-way through a copy).  Returns 1 exact, 0 with zeros (excused), -1
 * wrong (a message in @msg).
 */
static int check_thp(const char *got, int i, bool excused, char *msg, size_t len)
{
	size_t bad = words_check(got, THP_SIZE, i + 1, 0);

	if (bad == (size_t)-1)
		return 1;
	for (size_t off = bad; excused && off < THP_SIZE; off += 8) {
		if (!*(const uint64_t *)(got + off) ||
		    words_check(got + off, 8, i + 1, off) == (size_t)-1)
			continue;
		bad = off;
		excused = false;
	}
	if (excused)
		return 0;
	snprintf(msg, len, "THP %d: wrong word at byte %zu (page %zu, seed there %#llx)",
		 i, bad, bad / PS, (unsigned long long)words_seed_at(got + bad, bad));
	return -1;
}

/*
 * THPs through one pipe, a racer on the @side (0 reader, 1 writer).  The
 * reader receives THP i into slot i % 2 of its 4 MiB MADV_HUGEPAGE region
 * (2 MiB aligned: a whole-THP buffer lands with one PMD), copies it out,
 * checks it, and empties the slot again (MADV_DONTNEED) for the next.
 */
static void thp_vs(struct __test_metadata *_metadata, enum thp_race kind, int side)
{
	struct thp_shared *sh = map_anon_shared(sizeof(*sh));
	struct thp_racer r = { .kind = kind, .len = 2 * THP_SIZE, .rnd = 3 };
	char *copy = map_anon(THP_SIZE), msg[256] = "";
	int p[2], status, efaults = 0, exact = 0, excused = 0;
	struct mem_snapshot m0, m1;
	struct xfer_counters b, a;
	bool leak_check = xfer_kernel_moves();
	long long collapsed0;
	pthread_t th;
	pid_t writer;

	ASSERT_NE(NULL, sh);
	ASSERT_NE(NULL, copy);
	if (leak_check)
		leak_check = mem_snapshot(&m0) == 0;
	r.region = thp_map(2 * THP_SIZE);
	ASSERT_NE(NULL, r.region);
	ASSERT_EQ(0, pipe(p));
	xfer_counters_read(&b);
	collapsed0 = vmstat_get("thp_collapse_alloc");
	writer = start_thp_writer(p[0], p[1], NR_THP, side ? (int)kind : -1, sh);
	close(p[1]);
	if (side == 0)
		ASSERT_EQ(0, pthread_create(&th, NULL, thp_race, &r));

	for (int i = 0; i < NR_THP; i++) {
		char *dst = r.region + (i % 2) * THP_SIZE;
		size_t got = 0;
		long e0 = side == 0 ? thp_race_arm(&r) : 0;
		bool destroyed;
		int res;

		/* One THP, in as many reads as it takes (EFAULT, short). */
		while (got < THP_SIZE) {
			struct iovec iov = { dst + got, THP_SIZE - got };
			ssize_t n = vmsplice(p[0], &iov, 1, SPLICE_F_MOVE);

			if (n < 0 && (errno == EINTR || errno == EFAULT)) {
				efaults += errno == EFAULT;
				ASSERT_LT(efaults, 1000000);
				continue;
			}
			ASSERT_LT(0, n) TH_LOG("THP %d: vmsplice %zd (%s) after %zu bytes",
					       i, n, strerror(errno), got);
			got += n;
		}
		if (!copy_out(copy, dst, THP_SIZE))
			memset(copy, 0, THP_SIZE);	/* taken away: zeros */
		destroyed = side == 0 && thp_race_quiesce(&r, e0);
		madvise(dst, THP_SIZE, MADV_DONTNEED);
		/*
		 * The writer decides right after its gift returns, which is
		 * after the reader may have had it all: wait for the verdict.
		 */
		while (side == 1 && atomic_load(&sh->verdicts) <= i)
			sched_yield();
		destroyed |= side == 1 && atomic_load(&sh->touched[i]);
		res = check_thp(copy, i, destroyed, msg, sizeof(msg));
		ASSERT_LE(0, res) TH_LOG("%s%s", msg,
					 destroyed ? "" : "; no racer destroyed anything");
		exact += res == 1;
		excused += res == 0;
	}
	if (side == 0) {
		atomic_store(&r.stop, true);
		pthread_join(th, NULL);
	}
	/* Nothing left over: end of file after exactly NR_THP THPs. */
	{
		struct iovec iov = { copy, PS };

		ASSERT_EQ(0, vmsplice(p[0], &iov, 1, SPLICE_F_MOVE));
	}
	ASSERT_EQ(writer, waitpid(writer, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("writer status %#x", status);
	xfer_counters_read(&a);
	close(p[0]);
	munmap(r.region, 2 * THP_SIZE);
	ksft_print_msg("%s racing the %s: %d THPs (%ld not THP-backed at the writer), %d exact, %d with pages the racer zeroed, %d+%ld EFAULT retries, %ld racer rounds\n",
		       thp_race_name[kind], side ? "writer" : "reader", NR_THP,
		       atomic_load(&sh->not_thp), exact, excused, efaults,
		       atomic_load(&sh->writer_efaults),
		       side ? atomic_load(&sh->writer_rounds) : atomic_load(&r.rounds));
	ksft_print_msg("  moved %lld pages, %lld THPs with one PMD, %lld whole by PTEs, %lld unmapped; THPs collapsed %lld\n",
		       xfer_counter_delta(&b, &a, "moved"),
		       xfer_counter_delta(&b, &a, "folio_thp"),
		       xfer_counter_delta(&b, &a, "folio_large"),
		       xfer_counter_delta(&b, &a, "unmapped"),
		       vmstat_get("thp_collapse_alloc") - collapsed0);
	print_fallbacks(&b, &a);
	/* Half the rounds are quiet: those were checked exactly. */
	ASSERT_LT(0, exact);
	if (!thp_race_destroys(kind))
		ASSERT_EQ(0, excused);
	if (!xfer_kernel_moves())
		return;
	/* The race hit whole-THP moves, not only copies. */
	ASSERT_LT(0, xfer_counter_delta(&b, &a, "folio_thp"));
	if (leak_check) {
		ASSERT_EQ(0, mem_snapshot(&m1));
		ksft_print_msg("  orphaned anon pages %+ld (THP %+ld), MemFree %+lld kB\n",
			       m1.orphans.pages - m0.orphans.pages,
			       m1.orphans.thp - m0.orphans.thp, m1.free_kb - m0.free_kb);
		ASSERT_LE(m1.orphans.thp, m0.orphans.thp);
		ASSERT_LE(m1.orphans.pages - m0.orphans.pages, LEAK_ORPHAN_SLACK);
	}
}

TEST_F_TIMEOUT(races, thp_mprotect_races_reader, 600)
{
	thp_vs(_metadata, THP_MPROTECT, 0);
}

TEST_F_TIMEOUT(races, thp_munmap_races_reader, 600)
{
	thp_vs(_metadata, THP_MUNMAP, 0);
}

TEST_F_TIMEOUT(races, thp_fork_races_reader, 600)
{
	thp_vs(_metadata, THP_FORK, 0);
}

TEST_F_TIMEOUT(races, thp_dontneed_races_reader, 600)
{
	thp_vs(_metadata, THP_DONTNEED, 0);
}

TEST_F_TIMEOUT(races, thp_collapse_races_reader, 600)
{
	thp_vs(_metadata, THP_COLLAPSE, 0);
}

TEST_F_TIMEOUT(races, thp_mprotect_races_writer, 600)
{
	thp_vs(_metadata, THP_MPROTECT, 1);
}

TEST_F_TIMEOUT(races, thp_munmap_races_writer, 600)
{
	thp_vs(_metadata, THP_MUNMAP, 1);
}

TEST_F_TIMEOUT(races, thp_fork_races_writer, 600)
{
	thp_vs(_metadata, THP_FORK, 1);
}

TEST_F_TIMEOUT(races, thp_dontneed_races_writer, 600)
{
	thp_vs(_metadata, THP_DONTNEED, 1);
}

TEST_F_TIMEOUT(races, thp_collapse_races_writer, 600)
{
	thp_vs(_metadata, THP_COLLAPSE, 1);
}

/*
 * khugepaged scanning without pause (scan_sleep_millisecs=0) collapses
 * the THPs the racer splits, at both ends, while they are moved.  It
 * changes global settings: only on the patched kernel (the test VM).
 */
TEST_F_TIMEOUT(races, thp_khugepaged_races_both, 600)
{
	char why[256];

	REQUIRE_MOVE();
	ASSERT_EQ(0, setting_set(&self->scan_sleep, KHUGEPAGED "/scan_sleep_millisecs",
				 "0", why, sizeof(why))) TH_LOG("%s", why);
	ASSERT_EQ(0, setting_set(&self->alloc_sleep, KHUGEPAGED "/alloc_sleep_millisecs",
				 "0", why, sizeof(why))) TH_LOG("%s", why);
	ASSERT_EQ(0, setting_set(&self->pages_to_scan, KHUGEPAGED "/pages_to_scan",
				 "4096", why, sizeof(why))) TH_LOG("%s", why);
	thp_vs(_metadata, THP_KHUGEPAGED, 0);
	thp_vs(_metadata, THP_KHUGEPAGED, 1);
}

/*
 * Two readers on one pipe of whole-THP buffers, each into its own THP
 * region: every page arrives exactly once, at one of them, exact (each
 * names its THP and offset).  With the change a whole-THP buffer is read
 * whole or not at all, and every THP is moved with one PMD.
 */
TEST_F_TIMEOUT(races, thp_two_readers_one_pipe, 600)
{
	const size_t per = THP_SIZE / PS;
	struct thp_shared *sh = map_anon_shared(sizeof(*sh));
	_Atomic int *seen = (_Atomic int *)map_anon_shared(NR_THP * per * sizeof(int));
	_Atomic int *bad = (_Atomic int *)map_anon_shared(2 * sizeof(int));
	bool moves = xfer_kernel_moves();
	struct xfer_counters b, a;
	pid_t readers[2], writer;
	int p[2], status;

	ASSERT_NE(NULL, sh);
	ASSERT_NE(NULL, seen);
	ASSERT_NE(NULL, bad);
	ASSERT_EQ(0, pipe(p));
	xfer_counters_read(&b);
	writer = start_thp_writer(p[0], p[1], NR_THP, -1, sh);
	close(p[1]);
	for (int k = 0; k < 2; k++) {
		readers[k] = fork();
		if (readers[k] == 0) {
			char *dst = thp_map(THP_SIZE);
			struct iovec iov = { dst, THP_SIZE };
			ssize_t n;

			if (!dst)
				_exit(2);
			while ((n = vmsplice(p[0], &iov, 1, SPLICE_F_MOVE)) != 0) {
				if (n < 0 || n % PS || (moves && n != (ssize_t)THP_SIZE)) {
					atomic_fetch_add(&bad[1], 1);	/* a bad size */
					break;
				}
				for (ssize_t off = 0; off < n; off += PS) {
					uint64_t seed;
					size_t at;

					words_id(dst + off, &seed, &at);
					if (seed < 1 || seed > NR_THP || at % PS ||
					    words_check(dst + off, PS, seed, at) != (size_t)-1)
						atomic_fetch_add(&bad[0], 1);
					else
						atomic_fetch_add(&seen[(seed - 1) * per + at / PS], 1);
				}
				madvise(dst, THP_SIZE, MADV_DONTNEED);
			}
			_exit(0);
		}
	}
	close(p[0]);
	ASSERT_EQ(writer, waitpid(writer, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	for (int k = 0; k < 2; k++) {
		ASSERT_EQ(readers[k], waitpid(readers[k], &status, 0));
		ASSERT_EQ(0, WEXITSTATUS(status)) TH_LOG("reader %d", k);
	}
	xfer_counters_read(&a);
	ksft_print_msg("two readers, %d THPs (%ld not THP-backed): moved %lld pages, %lld THPs with one PMD\n",
		       NR_THP, atomic_load(&sh->not_thp),
		       xfer_counter_delta(&b, &a, "moved"),
		       xfer_counter_delta(&b, &a, "folio_thp"));
	print_fallbacks(&b, &a);
	ASSERT_EQ(0, bad[0]) TH_LOG("pages wrong");
	ASSERT_EQ(0, bad[1]) TH_LOG("reads of a wrong size");
	for (size_t i = 0; i < NR_THP * per; i++) {
		ASSERT_EQ(1, seen[i]) TH_LOG("THP %zu page %zu delivered %d times",
					     i / per, i % per, seen[i]);
	}
	if (moves) {
		ASSERT_EQ(0, atomic_load(&sh->not_thp));
		ASSERT_EQ(NR_THP, xfer_counter_delta(&b, &a, "folio_thp"));
		ASSERT_EQ((long long)NR_THP * 512, xfer_counter_delta(&b, &a, "moved"));
	}
}

static void on_alarm(int sig)
{
	(void)sig;
}

/*
 * Signals interrupt a reader waiting for pages (no SA_RESTART): it sees
 * EINTR or a short read, never a lost or repeated page.
 */
TEST_F_TIMEOUT(races, signals_interrupt_reader, 300)
{
	const size_t n = 1000;
	struct sigaction sa = { .sa_handler = on_alarm };
	char *dst = map_anon(8 * PS);
	struct itimerval it = { { 0, 200 }, { 0, 200 } };
	size_t got = 0, eintr = 0;
	int p[2], status;
	pid_t writer;

	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	ASSERT_EQ(0, pipe(p));
	writer = start_writer(p[0], p[1], 0, n, 3);
	close(p[1]);
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	while (got < n) {
		struct iovec iov = { dst, 8 * PS };
		ssize_t r = vmsplice(p[0], &iov, 1, SPLICE_F_MOVE);

		if (r < 0 && errno == EINTR) {
			eintr++;
			continue;
		}
		ASSERT_LT(0, r);
		ASSERT_EQ(0, r % PS);
		for (ssize_t off = 0; off < r; off += PS, got++) {
			ASSERT_EQ((int64_t)got, page_seq(dst + off));
		}
	}
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	ASSERT_EQ(writer, waitpid(writer, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ksft_print_msg("signals: %zu pages, %zu EINTR\n", got, eintr);
	close(p[0]);
}

/*
 * The writer is killed while blocked on a full pipe: what it put in the
 * pipe is read intact and in order, and nothing else arrives.
 */
TEST_F_TIMEOUT(races, writer_killed_mid_stream, 300)
{
	char *dst = map_anon(PS);
	int p[2], efaults = 0, got;
	int64_t next = 0;
	pid_t writer;

	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, pipe(p));
	writer = start_writer(p[0], p[1], 0, 100000, 64);
	close(p[1]);
	/* Read the first page: the writer is running and the pipe filled. */
	ASSERT_EQ(1, take_page(p[0], dst, &efaults));
	ASSERT_EQ(next++, page_seq(dst));
	ASSERT_EQ(0, kill(writer, SIGKILL));
	ASSERT_EQ(writer, waitpid(writer, NULL, 0));
	while ((got = take_page(p[0], dst, &efaults)) == 1) {
		ASSERT_EQ(next++, page_seq(dst));
	}
	ASSERT_EQ(0, got);
	ksft_print_msg("writer killed after %lld pages were read\n", (long long)next);
	close(p[0]);
}

TEST_HARNESS_MAIN
