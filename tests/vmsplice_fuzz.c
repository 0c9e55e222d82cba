// SPDX-License-Identifier: GPL-2.0
/*
 * vmsplice_fuzz: a randomized tester of vmsplice(SPLICE_F_MOVE), bounded by
 * time and by a count of vmsplice operations, reproducible from its seed.
 *
 *   VMSPLICE_FUZZ_SEED=N   seed (default: from the clock; always printed)
 *   VMSPLICE_FUZZ_SECS=S   time bound (default 20)
 *   VMSPLICE_FUZZ_OPS=N    vmsplice operations, all actors together (20000)
 *
 * The seed fixes what every actor does; the interleaving is the scheduler's.
 *
 * The world (all processes fork()ed from this one):
 *  - three "multi" pipes, each written by two writer threads from different
 *    processes and read by three reader processes.  The unit is a 4 KiB
 *    record (tests/lib/record.h) in a page of its own, so records never
 *    split and every one names its writer and sequence number.  Writers
 *    vary flags (none, GIFT, MOVE, GIFT|MOVE, NONBLOCK), iov shapes (one
 *    segment, a segment per page in any order, the same page twice, zero
 *    length segments, a bad address at the end), memory (fresh, THP,
 *    shared memfd) and fork a child sharing the pages now and then;
 *    sometimes a writer process dies abruptly in the middle.
 *  - readers vary flags, iov shapes (aligned for moves, unaligned and split,
 *    zero length, bad address at the end), read(), and two destinations: a
 *    "verified" zone that racing threads only mprotect(), madvise(HUGEPAGE,
 *    NOHUGEPAGE) and fork() over, and a "chaos" zone that they also
 *    madvise(DONTNEED), munmap() and mremap() away.  Every record landing
 *    in the verified zone must be intact; in the chaos zone, records still
 *    readable are checked, the others counted as unverifiable.
 *  - one "stream" pipe, one writer and one reader, with arbitrary byte
 *    shapes (unaligned, partial pages), checked byte for byte.
 *  - helpers tee() the multi pipes into a sink pipe (whose copies are
 *    checked too), splice() records between multi pipes, resize pipes and
 *    send signals.
 *
 * At the end: every record sent is seen as often as sent (missing ones at
 * most the unverifiable ones, and only dying writers' last sends may be
 * missing or present), nothing seen more often than sent, no bad record,
 * no pipe buffer left, and (on the patched kernel in the test VM)
 * nr_anon_pages and MemFree back to baseline and no kernel splat.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/mem.h"
#include "lib/pattern.h"
#include "lib/record.h"
#include "lib/vmstat.h"
#include "lib/xfer.h"

#define PS		4096UL
#define NR_MULTI	3			/* multi pipes 0..2 */
#define SINK		NR_MULTI		/* tee sink */
#define STREAM		(NR_MULTI + 1)		/* stream pipe */
#define NR_PIPES	(NR_MULTI + 2)
#define WRITER_PROCS	3
#define WRITER_THREADS	2
#define NR_WRITERS	(WRITER_PROCS * WRITER_THREADS)
#define READER_PROCS	3
#define SEQ_CAP		(1UL << 20)		/* records per writer */
#define ZONE_PAGES	64
#define STREAM_SEED	0xabcdU
#define THP_SIZE	(2UL << 20)

enum op {
	OP_VMSPLICE_WRITE, OP_VMSPLICE_READ, OP_READ, OP_TEE, OP_SPLICE,
	OP_RESIZE, OP_SIGNAL, OP_MPROTECT, OP_MADV_DONTNEED, OP_MADV_HUGEPAGE,
	OP_MADV_NOHUGEPAGE, OP_MUNMAP, OP_MREMAP, OP_FORK, OP_WRITER_DEATH,
	OP_EFAULT, OP_EINTR, OP_EAGAIN, NR_OPS
};

static const char *const op_name[NR_OPS] = {
	"vmsplice write", "vmsplice read", "read", "tee", "splice",
	"pipe resize", "signal", "mprotect", "madvise DONTNEED",
	"madvise HUGEPAGE", "madvise NOHUGEPAGE", "munmap+mmap", "mremap",
	"fork", "writer death", "EFAULT (race hit)", "EINTR (race hit)",
	"EAGAIN",
};

/* Everything the actors share; lives in a MAP_SHARED mapping. */
struct world {
	uint64_t seed;
	bool moves;		/* the kernel has vmsplice(SPLICE_F_MOVE) */
	double deadline;
	long max_ops;
	int fds[NR_PIPES][2];
	_Atomic long vmsplice_ops;
	_Atomic int writers_done, helpers_stop, drain;
	_Atomic long ops[NR_OPS];
	_Atomic long records_delivered, records_verified, records_unverifiable;
	_Atomic long bad_records, tee_copies, bad_sizes, writer_not_zero;
	_Atomic long stream_sent, stream_received, stream_bad;
	_Atomic long bytes_verified;
	char bad_msg[256];
	/* Per writer: sequence numbers handed out and committed. */
	_Atomic uint64_t pending[NR_WRITERS], committed[NR_WRITERS];
	_Atomic int dead[NR_WRITERS];
	/* How often each record was sent and seen. */
	_Atomic uint8_t expected[NR_WRITERS][SEQ_CAP];
	_Atomic uint8_t seen[NR_WRITERS][SEQ_CAP];
};

static struct world *W;

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dULL;
}

static unsigned int below(struct rng *r, unsigned int n)
{
	return (unsigned int)(rnd(r) % n);
}

static void rng_init(struct rng *r, uint64_t role)
{
	r->s = (W->seed ^ (role * 0x9e3779b97f4a7c15ULL)) | 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void count(enum op op)
{
	atomic_fetch_add_explicit(&W->ops[op], 1, memory_order_relaxed);
}

static bool budget_left(void)
{
	return atomic_load(&W->vmsplice_ops) < W->max_ops && now() < W->deadline;
}

static void note_errno(int e)
{
	if (e == EFAULT)
		count(OP_EFAULT);
	else if (e == EINTR)
		count(OP_EINTR);
	else if (e == EAGAIN)
		count(OP_EAGAIN);
}

static void bad(const char *fmt, ...)
{
	va_list ap;

	/* Keep the first message, and print the first few as they happen. */
	if (atomic_fetch_add(&W->bad_records, 1) < 5) {
		va_start(ap, fmt);
		vsnprintf(W->bad_msg, sizeof(W->bad_msg), fmt, ap);
		va_end(ap);
		fprintf(stderr, "# BAD: %s\n", W->bad_msg);
	}
}

static void on_signal(int sig)
{
	(void)sig;
}

/* Advance an iovec array by @n bytes; returns the new first index. */
static int iov_advance(struct iovec *iov, int cnt, int first, size_t n)
{
	while (first < cnt && n >= iov[first].iov_len) {
		n -= iov[first].iov_len;
		first++;
	}
	if (first < cnt) {
		iov[first].iov_base = (char *)iov[first].iov_base + n;
		iov[first].iov_len -= n;
	}
	return first;
}

/* ------------------------------------------------------------ writers */

/*
 * Mark the pages that @n bytes of the iovec, from segment @first on, gave
 * away.  Segments start on page boundaries of @src (multi-pipe writers).
 */
static void mark_given(const struct iovec *iov, int cnt, int first, size_t n,
		       const char *src, bool *given)
{
	for (int i = first; i < cnt && n; i++) {
		size_t take = iov[i].iov_len < n ? iov[i].iov_len : n;
		size_t page = ((const char *)iov[i].iov_base - src) / PS;

		for (size_t p = 0; p < take / PS; p++)
			given[page + p] = true;
		n -= take;
	}
}

/*
 * With GIFT|MOVE a page given away is unmapped at once: naming it again
 * in a later call (after a short one) would send the zeros now mapped
 * there.  A writer does not do that; drop such segments and what they were
 * expected to deliver.
 */
static void drop_given(struct iovec *iov, int cnt, int first, const char *src,
		       const bool *given, int w, uint64_t seq)
{
	for (int i = first; i < cnt; i++) {
		size_t page = ((const char *)iov[i].iov_base - src) / PS;

		if (iov[i].iov_len != PS || (uintptr_t)iov[i].iov_base == PS ||
		    !given[page])
			continue;
		atomic_fetch_sub(&W->expected[w][seq + page], 1);
		iov[i].iov_len = 0;
	}
}

struct writer_arg {
	int id;
	struct rng rng;
};

/* Memory for @k records: fresh anonymous, THP-backed, or shared memfd. */
static char *writer_memory(struct rng *r, size_t k, size_t *maplen, bool *anon)
{
	unsigned int kind = below(r, 10);
	char *p;

	if (kind == 0 && getenv("FZ_NO_THP"))
		kind = 5;
	if (kind == 1 && getenv("FZ_NO_MEMFD"))
		kind = 5;

	*anon = true;
	if (kind == 0) {		/* THP region, records at its start */
		char *raw = map_anon(2 * THP_SIZE);
		uintptr_t a;

		if (!raw)
			return NULL;
		a = ((uintptr_t)raw + THP_SIZE - 1) & ~(THP_SIZE - 1);
		madvise((void *)a, THP_SIZE, MADV_HUGEPAGE);
		munmap(raw, a - (uintptr_t)raw);
		munmap((void *)(a + THP_SIZE), (uintptr_t)raw + THP_SIZE - a);
		*maplen = THP_SIZE;
		return (char *)a;
	}
	if (kind == 1) {		/* shared memfd: never unmapped, copied */
		int fd = memfd_create("fuzz", MFD_CLOEXEC);

		*anon = false;
		*maplen = k * PS;
		if (fd < 0 || ftruncate(fd, *maplen))
			return NULL;
		p = mmap(NULL, *maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		return p == MAP_FAILED ? NULL : p;
	}
	*maplen = k * PS;
	return map_anon(*maplen);
}

static void *writer_thread(void *arg)
{
	struct writer_arg *wa = arg;
	struct rng *r = &wa->rng;
	int w = wa->id, pipe_id = w % NR_MULTI, wr = W->fds[pipe_id][1];
	uint64_t seq = 0;

	while (budget_left() && seq + 32 < SEQ_CAP) {
		size_t k = 1 + below(r, 16), maplen;
		unsigned int flags_pick = below(r, 8), shape = below(r, 6);
		unsigned int flags = (unsigned int[]){ 0, SPLICE_F_GIFT, SPLICE_F_MOVE,
			SPLICE_F_GIFT | SPLICE_F_MOVE, GIVE, GIVE | SPLICE_F_MOVE,
			GIVE | SPLICE_F_NONBLOCK, SPLICE_F_GIFT }[flags_pick];
		struct iovec iov[48];
		int cnt = 0, first = 0;
		pid_t sharer = -1;
		bool anon, unmaps, given[16] = { false };
		char *src = writer_memory(r, k, &maplen, &anon);

		if (!src)
			continue;
		for (size_t i = 0; i < k; i++)
			record_fill(src + i * PS, pipe_id, w, seq + i);

		/* The iovec: which pages, in which order, how often. */
		if (shape == 0 || shape == 5) {
			iov[cnt++] = (struct iovec){ src, k * PS };
		} else {
			for (size_t i = 0; i < k; i++) {
				size_t j = shape == 1 ? k - 1 - i : i;	/* reversed */

				if (shape == 3 && below(r, 2))
					iov[cnt++] = (struct iovec){ src, 0 };
				iov[cnt++] = (struct iovec){ src + j * PS, PS };
			}
		}
		if (shape == 2)		/* one page twice: refs fallback */
			iov[cnt++] = (struct iovec){ src + below(r, k) * PS, PS };
		for (int i = 0; i < cnt; i++) {
			size_t page = ((char *)iov[i].iov_base - src) / PS;

			for (size_t n = 0; n < iov[i].iov_len / PS; n++)
				atomic_fetch_add(&W->expected[w][seq + page + n], 1);
		}
		if (shape == 4)		/* a bad address after the good ones */
			iov[cnt++] = (struct iovec){ (void *)PS, PS };
		atomic_store(&W->pending[w], seq + k);

		if (below(r, 16) == 0) {
			/*
			 * A child shares the pages copy-on-write meanwhile.  It
			 * holds no pipe (so it cannot keep a pipe from reaching
			 * end of file), dies with this process, and is killed
			 * when the gift is done.
			 */
			count(OP_FORK);
			sharer = fork();
			if (sharer == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				for (int i = 0; i < NR_PIPES; i++) {
					close(W->fds[i][0]);
					close(W->fds[i][1]);
				}
				for (;;)
					pause();
			}
		}
		if (below(r, 3000) == 0) {
			/* Die with records maybe in the pipe, maybe not. */
			count(OP_WRITER_DEATH);
			atomic_store(&W->dead[w], 1);
			atomic_store(&W->dead[w ^ 1], 1);	/* its sibling thread */
			raise(SIGKILL);
		}

		/* Kernels without the change: the old copy path. */
		if (!W->moves)
			flags &= ~(unsigned int)SPLICE_F_UNMAP;
		unmaps = anon && (flags & SPLICE_F_UNMAP);
		while (first < cnt) {
			ssize_t n;

			if (unmaps)
				drop_given(iov, cnt, first, src, given, w, seq);
			if (shape == 4 && first == cnt - 1)
				break;		/* only the bad segment is left */
			n = vmsplice(wr, iov + first, cnt - first, flags);
			if (n < 0 && errno == EAGAIN) {
				/* Full pipe: wait for room instead of spinning. */
				count(OP_EAGAIN);
				flags &= ~SPLICE_F_NONBLOCK;
				continue;
			}
			atomic_fetch_add(&W->vmsplice_ops, 1);
			count(OP_VMSPLICE_WRITE);
			if (n < 0) {
				note_errno(errno);
				if (errno == EFAULT && shape == 4)
					break;
				if (errno == EINTR || errno == EAGAIN)
					continue;
				bad("writer %d: vmsplice: %s", w, strerror(errno));
				break;
			}
			mark_given(iov, cnt, first, n, src, given);
			first = iov_advance(iov, cnt, first, n);
		}
		if (sharer > 0) {
			kill(sharer, SIGKILL);
			waitpid(sharer, NULL, 0);
		}
		/*
		 * Given and moved away: the writer must read zeros where its
		 * whole private anonymous pages were.  (Only the patched kernel
		 * unmaps; on others the pages stay.)
		 */
		for (size_t i = 0; unmaps && i < k; i++)
			if (given[i] && ((volatile char *)src)[i * PS] != 0) {
				atomic_fetch_add(&W->writer_not_zero, 1);
				break;
			}
		munmap(src, maplen);
		seq += k;
		atomic_store(&W->committed[w], seq);
	}
	return NULL;
}

static void writer_process(int proc)
{
	pthread_t th[WRITER_THREADS];
	struct writer_arg wa[WRITER_THREADS];

	for (int t = 0; t < WRITER_THREADS; t++) {
		wa[t].id = proc * WRITER_THREADS + t;
		rng_init(&wa[t].rng, 100 + wa[t].id);
		pthread_create(&th[t], NULL, writer_thread, &wa[t]);
	}
	for (int t = 0; t < WRITER_THREADS; t++)
		pthread_join(th[t], NULL);
	_exit(0);
}

/* ------------------------------------------------------------ readers */

struct zones {
	char *verified;		/* only data-preserving racers */
	char *chaos;		/* anything goes */
	char *scratch;		/* where mremap parks the chaos zone */
	_Atomic bool stop;
	struct rng rng_v, rng_c;
};

static void *verified_racer(void *arg)
{
	struct zones *z = arg;
	size_t len = ZONE_PAGES * PS;

	while (!atomic_load(&z->stop)) {
		sched_yield();
		switch (below(&z->rng_v, 4)) {
		case 0:
			count(OP_MPROTECT);
			mprotect(z->verified, len, PROT_READ);
			mprotect(z->verified, len, PROT_READ | PROT_WRITE);
			break;
		case 1:
			count(OP_MADV_HUGEPAGE);
			madvise(z->verified, len, MADV_HUGEPAGE);
			break;
		case 2:
			count(OP_MADV_NOHUGEPAGE);
			madvise(z->verified, len, MADV_NOHUGEPAGE);
			break;
		case 3: {
			pid_t pid = fork();

			count(OP_FORK);
			if (pid == 0)
				_exit(0);
			if (pid > 0)
				waitpid(pid, NULL, 0);
			break;
		}
		}
	}
	return NULL;
}

static void *chaos_racer(void *arg)
{
	struct zones *z = arg;
	size_t len = ZONE_PAGES * PS;

	while (!atomic_load(&z->stop)) {
		size_t off = below(&z->rng_c, ZONE_PAGES) * PS;

		sched_yield();
		size_t n = (1 + below(&z->rng_c, 8)) * PS;

		if (off + n > len)
			n = len - off;
		switch (below(&z->rng_c, 4)) {
		case 0:
			count(OP_MADV_DONTNEED);
			madvise(z->chaos + off, n, MADV_DONTNEED);
			break;
		case 1:
			count(OP_MUNMAP);
			munmap(z->chaos, len);
			mmap(z->chaos, len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			break;
		case 2:
			count(OP_MREMAP);
			if (mremap(z->chaos, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
				   z->scratch) != MAP_FAILED)
				mremap(z->scratch, len, len,
				       MREMAP_MAYMOVE | MREMAP_FIXED, z->chaos);
			break;
		case 3:
			count(OP_MPROTECT);
			mprotect(z->chaos + off, n, PROT_READ);
			mprotect(z->chaos + off, n, PROT_READ | PROT_WRITE);
			break;
		}
	}
	return NULL;
}

/* Account for @n bytes of records gathered in @buf from pipe @pipe_id. */
static void account(const char *buf, size_t n, int pipe_id, bool verified,
		    bool readable)
{
	for (size_t off = 0; off < n; off += PS) {
		struct record_hdr h;
		bool ok = readable && record_check(buf + off, &h);

		if (pipe_id != SINK)
			atomic_fetch_add(&W->records_delivered, 1);
		if (!ok) {
			if (verified)
				bad("pipe %d: bad record (magic %#x writer %u seq %llu)",
				    pipe_id, h.magic, h.writer,
				    (unsigned long long)h.seq);
			else
				atomic_fetch_add(&W->records_unverifiable, 1);
			continue;
		}
		if (h.writer >= NR_WRITERS || h.seq >= SEQ_CAP ||
		    (pipe_id != SINK && h.pipe != h.writer % NR_MULTI &&
		     h.pipe != pipe_id)) {
			bad("pipe %d: foreign record writer %u seq %llu",
			    pipe_id, h.writer, (unsigned long long)h.seq);
			continue;
		}
		atomic_fetch_add(&W->bytes_verified, PS);
		if (pipe_id == SINK) {
			atomic_fetch_add(&W->tee_copies, 1);
			continue;
		}
		atomic_fetch_add(&W->records_verified, 1);
		atomic_fetch_add(&W->seen[h.writer][h.seq], 1);
	}
}

/*
 * Processes that do not write close every write end, so that a pipe whose
 * writers are gone reads as end of file and no reader waits forever.
 */
static void close_write_ends(void)
{
	for (int i = 0; i < NR_PIPES; i++)
		close(W->fds[i][1]);
}

static bool pipes_empty(void)
{
	for (int i = 0; i <= SINK; i++) {
		int n = 0;

		if (ioctl(W->fds[i][0], FIONREAD, &n) || n)
			return false;
	}
	return true;
}

static void reader_process(int proc)
{
	struct zones z = { 0 };
	pthread_t tv, tc;
	struct rng r;
	char *tmp = map_anon(16 * PS);

	close_write_ends();
	rng_init(&r, 200 + proc);
	rng_init(&z.rng_v, 300 + proc);
	rng_init(&z.rng_c, 400 + proc);
	z.verified = map_anon(ZONE_PAGES * PS);
	z.chaos = map_anon(ZONE_PAGES * PS);
	z.scratch = map_anon(ZONE_PAGES * PS);
	if (!tmp || !z.verified || !z.chaos || !z.scratch)
		_exit(2);
	pthread_create(&tv, NULL, verified_racer, &z);
	pthread_create(&tc, NULL, chaos_racer, &z);

	for (;;) {
		bool drain = atomic_load(&W->drain);
		int pipe_id = below(&r, 8) == 0 ? SINK : below(&r, NR_MULTI);
		bool verified = below(&r, 3) != 0;
		char *zone = verified ? z.verified : z.chaos;
		size_t m = 1 + below(&r, 8), len = m * PS;
		unsigned int shape = below(&r, 5), flags;
		struct iovec iov[40];
		int cnt = 0;
		ssize_t n;

		if (drain && pipes_empty())
			break;
		flags = below(&r, 4) && !getenv("FZ_NO_RMOVE") ? SPLICE_F_MOVE : 0;
		/* Only the tee helper feeds the sink: never wait on it. */
		if (drain || pipe_id == SINK || below(&r, 8) == 0)
			flags |= SPLICE_F_NONBLOCK;

		if (shape <= 1) {		/* aligned: the move path */
			size_t at = below(&r, ZONE_PAGES - m + 1) * PS;

			iov[cnt++] = (struct iovec){ zone + at, len };
		} else {			/* unaligned pieces */
			size_t left = len, at = 1 + below(&r, PS - 1);

			while (left) {
				size_t piece = 1 + below(&r, 3 * PS);

				if (piece > left || cnt >= 30)
					piece = left;
				if (shape == 3 && below(&r, 3) == 0 && cnt < 20)
					iov[cnt++] = (struct iovec){ zone, 0 };
				iov[cnt++] = (struct iovec){ zone + at, piece };
				at += piece;
				left -= piece;
			}
		}
		if (shape == 4)		/* a bad address after the rest */
			iov[cnt++] = (struct iovec){ (void *)PS, PS };

		if (cnt == 1 && below(&r, 6) == 0 && !(flags & SPLICE_F_NONBLOCK)) {
			count(OP_READ);
			n = read(W->fds[pipe_id][0], iov[0].iov_base, iov[0].iov_len);
		} else {
			count(OP_VMSPLICE_READ);
			atomic_fetch_add(&W->vmsplice_ops, 1);
			n = vmsplice(W->fds[pipe_id][0], iov, cnt, flags);
		}
		if (n < 0) {
			note_errno(errno);
			continue;
		}
		if (n == 0)
			continue;
		if (n % PS) {
			/* read() may return part of a page; vmsplice must not. */
			atomic_fetch_add(&W->bad_sizes, 1);
			bad("pipe %d: read %zd bytes, not whole records", pipe_id, n);
			continue;
		}
		/* Gather the records from the pieces, as the reader sees them. */
		{
			size_t got = 0;
			bool readable = true;

			for (int i = 0; i < cnt && got < (size_t)n; i++) {
				size_t take = iov[i].iov_len;

				if (take > (size_t)n - got)
					take = n - got;
				if (verified)
					memcpy(tmp + got, iov[i].iov_base, take);
				else if (!copy_out(tmp + got, iov[i].iov_base, take))
					readable = false;
				got += take;
			}
			account(tmp, n, pipe_id, verified, readable);
		}
	}
	atomic_store(&z.stop, true);
	pthread_join(tv, NULL);
	pthread_join(tc, NULL);
	_exit(0);
}

/* ------------------------------------------------------------ stream */

static void stream_writer(void)
{
	struct rng r;
	size_t off = 0;
	int wr = W->fds[STREAM][1];

	rng_init(&r, 500);
	while (budget_left()) {
		size_t len = 1 + below(&r, 5 * PS), at = below(&r, PS);
		size_t maplen = (at + 2 * len + 2 * PS) & ~(PS - 1);
		char *src = map_anon(maplen);
		struct iovec iov[40];
		int cnt = 0, first = 0;
		size_t left = len, pos = at, sent = 0;
		unsigned int flags = (unsigned int[]){ 0, SPLICE_F_GIFT,
			SPLICE_F_GIFT | SPLICE_F_MOVE, SPLICE_F_MOVE,
			GIVE }[below(&r, 5)] & (W->moves ? ~0U : ~(unsigned int)SPLICE_F_UNMAP);

		if (!src)
			continue;
		while (left) {
			size_t piece = 1 + below(&r, 2 * PS);

			if (piece > left || cnt >= 30)
				piece = left;
			if (below(&r, 5) == 0 && cnt < 20)
				iov[cnt++] = (struct iovec){ src, 0 };
			pattern_fill(src + pos, piece, STREAM_SEED, off + (len - left));
			iov[cnt++] = (struct iovec){ src + pos, piece };
			pos += piece + below(&r, 64);	/* gaps between pieces */
			left -= piece;
		}
		while (first < cnt) {
			ssize_t n = vmsplice(wr, iov + first, cnt - first, flags);

			atomic_fetch_add(&W->vmsplice_ops, 1);
			count(OP_VMSPLICE_WRITE);
			if (n < 0) {
				note_errno(errno);
				if (errno == EINTR || errno == EAGAIN)
					continue;
				atomic_fetch_add(&W->stream_bad, 1);
				break;
			}
			sent += n;
			first = iov_advance(iov, cnt, first, n);
		}
		munmap(src, maplen);
		off += sent;
		atomic_store(&W->stream_sent, off);
	}
	close(wr);
	_exit(0);
}

static void stream_reader(void)
{
	struct rng r;
	size_t off = 0;
	char *dst = map_anon(16 * PS + PS), *tmp = map_anon(16 * PS);
	int rd = W->fds[STREAM][0];

	close_write_ends();
	rng_init(&r, 600);
	if (!dst || !tmp)
		_exit(2);
	for (;;) {
		size_t len = 1 + below(&r, 12 * PS), left = len;
		size_t at = below(&r, 2) ? 0 : below(&r, PS);
		unsigned int flags = below(&r, 3) ? SPLICE_F_MOVE : 0;
		struct iovec iov[40];
		int cnt = 0;
		ssize_t n;

		if (atomic_load(&W->writers_done) &&
		    off == (size_t)atomic_load(&W->stream_sent))
			break;
		while (left) {
			size_t piece = 1 + below(&r, 4 * PS);

			if (piece > left || cnt >= 30)
				piece = left;
			iov[cnt++] = (struct iovec){ dst + at, piece };
			at += piece;
			left -= piece;
		}
		/* Blocking: the writer's exit is the end of the stream. */
		n = vmsplice(rd, iov, cnt, flags);
		atomic_fetch_add(&W->vmsplice_ops, 1);
		count(OP_VMSPLICE_READ);
		if (n < 0) {
			note_errno(errno);
			continue;
		}
		if (n == 0)
			break;
		{
			size_t got = 0;

			for (int i = 0; i < cnt && got < (size_t)n; i++) {
				size_t take = iov[i].iov_len;

				if (take > (size_t)n - got)
					take = n - got;
				memcpy(tmp + got, iov[i].iov_base, take);
				got += take;
			}
			if (pattern_check(tmp, n, STREAM_SEED, off) != (size_t)-1) {
				atomic_fetch_add(&W->stream_bad, 1);
				snprintf(W->bad_msg, sizeof(W->bad_msg),
					 "stream: wrong byte near offset %zu", off);
			}
		}
		off += n;
		atomic_fetch_add(&W->bytes_verified, n);
		atomic_store(&W->stream_received, off);
	}
	_exit(0);
}

/* ------------------------------------------------------------ helpers */

/*
 * Helpers act about once per vmsplice operation of the others, so that on
 * two CPUs they race with the transfers instead of starving them; and also
 * when nothing moves for a while, because their signals are what wakes
 * readers blocked on a pipe whose writers are stuck on another one.
 */
static bool helper_turn(long *last, int *idle)
{
	long v = atomic_load(&W->vmsplice_ops);

	if (v == *last && ++*idle < 200) {
		sched_yield();
		return false;
	}
	*last = v;
	*idle = 0;
	return true;
}

static void tee_splice_helper(void)
{
	struct rng r;

	long last = 0;
	int idle = 0;

	rng_init(&r, 700);
	while (!atomic_load(&W->helpers_stop)) {
		if (!helper_turn(&last, &idle))
			continue;
		int a = below(&r, NR_MULTI), b = (a + 1 + below(&r, NR_MULTI - 1)) % NR_MULTI;
		size_t len = (1 + below(&r, 4)) * PS;

		if (below(&r, 2)) {
			count(OP_TEE);
			tee(W->fds[a][0], W->fds[SINK][1], len, SPLICE_F_NONBLOCK);
		} else {
			count(OP_SPLICE);
			splice(W->fds[a][0], NULL, W->fds[b][1], NULL, len,
			       SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		}
	}
	_exit(0);
}

static void resize_signal_helper(pid_t *victims, int nvictims)
{
	struct rng r;

	long last = 0;
	int idle = 0;

	close_write_ends();
	rng_init(&r, 800);
	while (!atomic_load(&W->helpers_stop)) {
		if (!helper_turn(&last, &idle))
			continue;
		if (below(&r, 2)) {
			count(OP_RESIZE);
			fcntl(W->fds[below(&r, NR_PIPES)][0], F_SETPIPE_SZ,
			      (int)((1 + below(&r, 64)) * PS));
		} else {
			count(OP_SIGNAL);
			kill(victims[below(&r, nvictims)], SIGUSR1);
		}
	}
	_exit(0);
}

/* ------------------------------------------------------------ the run */

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 0) : def;
}

/* Kernel log lines that mean a kernel bug (the VM runner checks too). */
static int count_splats(void)
{
	static const char *const pat[] = { "BUG:", "WARNING:", "Oops",
		"Kernel panic", "general protection", "possible circular",
		"INFO: " };
	int len = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0), n = 0;
	char *buf;

	if (len <= 0)
		return -1;
	buf = malloc(len + 1);
	if (!buf)
		return -1;
	len = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, len);
	if (len < 0) {
		free(buf);
		return -1;
	}
	buf[len] = 0;
	for (size_t i = 0; i < sizeof(pat) / sizeof(pat[0]); i++)
		for (char *p = buf; (p = strstr(p, pat[i])); p++)
			n++;
	free(buf);
	return n;
}

/* Drop reclaimable caches and fold per-CPU counters before measuring. */
static void settle(void)
{
	proc_write("/proc/sys/vm/drop_caches", "3");	/* best effort */
	counters_settle();
}

FIXTURE(fuzz)
{
	int unused;
};

FIXTURE_SETUP(fuzz)
{
}

FIXTURE_TEARDOWN(fuzz)
{
}

TEST_F_TIMEOUT(fuzz, run, 86400)
{
	struct sigaction sa = { .sa_handler = on_signal };
	pid_t writers[WRITER_PROCS + 1], readers[READER_PROCS + 1], helpers[2];
	struct xfer_counters b, a;
	long long anon0, free0, anon1, free1;
	long missing = 0, extra = 0, maybe = 0, sent = 0;
	bool moves = xfer_kernel_moves();
	int splats0 = count_splats(), status;
	double t0 = now();

	W = mmap(NULL, sizeof(*W), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, W);
	W->seed = env_long("VMSPLICE_FUZZ_SEED", (long)(time(NULL) ^ getpid()));
	W->moves = moves;
	W->max_ops = env_long("VMSPLICE_FUZZ_OPS", 20000);
	W->deadline = t0 + env_long("VMSPLICE_FUZZ_SECS", 20);
	ksft_print_msg("vmsplice_fuzz: seed %llu, %ld vmsplice operations or %ld s\n",
		       (unsigned long long)W->seed, W->max_ops,
		       env_long("VMSPLICE_FUZZ_SECS", 20));
	ksft_print_msg("reproduce: VMSPLICE_FUZZ_SEED=%llu VMSPLICE_FUZZ_OPS=%ld\n",
		       (unsigned long long)W->seed, W->max_ops);

	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));	/* no SA_RESTART */
	settle();
	anon0 = vmstat_get("nr_anon_pages");
	free0 = meminfo_kb("MemFree");
	xfer_counters_read(&b);
	for (int i = 0; i < NR_PIPES; i++)
		ASSERT_EQ(0, pipe2(W->fds[i], O_CLOEXEC));

	for (int p = 0; p < WRITER_PROCS; p++)
		if ((writers[p] = fork()) == 0)
			writer_process(p);
	if ((writers[WRITER_PROCS] = fork()) == 0)
		stream_writer();
	for (int p = 0; p < READER_PROCS; p++)
		if ((readers[p] = fork()) == 0)
			reader_process(p);
	if ((readers[READER_PROCS] = fork()) == 0)
		stream_reader();
	if ((helpers[0] = fork()) == 0)
		tee_splice_helper();
	if ((helpers[1] = fork()) == 0)
		resize_signal_helper(readers, READER_PROCS + 1);
	close_write_ends();	/* only writers and the tee/splice helper write */

	for (int p = 0; p <= WRITER_PROCS; p++)
		ASSERT_EQ(writers[p], waitpid(writers[p], &status, 0));
	atomic_store(&W->writers_done, 1);
	atomic_store(&W->helpers_stop, 1);
	for (int h = 0; h < 2; h++)
		ASSERT_EQ(helpers[h], waitpid(helpers[h], &status, 0));
	atomic_store(&W->drain, 1);
	for (int p = 0; p <= READER_PROCS; p++) {
		ASSERT_EQ(readers[p], waitpid(readers[p], &status, 0));
		ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
			TH_LOG("reader %d: status %#x", p, status);
	}

	/* No pipe buffer left behind. */
	ASSERT_TRUE(pipes_empty());
	for (int i = 0; i < NR_PIPES; i++)
		close(W->fds[i][0]);
	xfer_counters_read(&a);

	/* Every record seen as often as it was sent, never more. */
	for (int w = 0; w < NR_WRITERS; w++) {
		uint64_t c = atomic_load(&W->committed[w]);
		uint64_t p = atomic_load(&W->pending[w]);

		for (uint64_t s = 0; s < p; s++) {
			int e = W->expected[w][s], got = W->seen[w][s];

			if (s < c)
				sent += e;
			if (got > e && extra++ < 5)
				ksft_print_msg("  record writer %d seq %llu: sent %d, seen %d (committed %llu)\n",
					       w, (unsigned long long)s, e, got,
					       (unsigned long long)c);
			else if (got > e)
				;
			else if (got < e && s < c)
				missing += e - got;
			else if (got < e)
				maybe++;	/* a dying writer's last send */
		}
	}

	ksft_print_msg("--- vmsplice_fuzz figures (seed %llu, %.1f s) ---\n",
		       (unsigned long long)W->seed, now() - t0);
	ksft_print_msg("  vmsplice operations %ld (budget %ld)\n",
		       (long)W->vmsplice_ops, W->max_ops);
	for (int i = 0; i < NR_OPS; i++)
		ksft_print_msg("  %-20s %ld\n", op_name[i], (long)W->ops[i]);
	ksft_print_msg("  records sent %ld, delivered %ld, verified %ld, unverifiable %ld, missing %ld, duplicated %ld, tee copies %ld\n",
		       sent, (long)W->records_delivered, (long)W->records_verified,
		       (long)W->records_unverifiable, missing, extra,
		       (long)W->tee_copies);
	ksft_print_msg("  stream bytes %ld sent, %ld received; bytes verified %ld\n",
		       (long)W->stream_sent, (long)W->stream_received,
		       (long)W->bytes_verified);
	ksft_print_msg("  moved %lld, zero %lld, unmapped %lld\n",
		       xfer_counter_delta(&b, &a, "moved"),
		       xfer_counter_delta(&b, &a, "moved_zero"),
		       xfer_counter_delta(&b, &a, "unmapped"));
	for (int i = 0; i < XFER_NR_FALLBACKS; i++)
		ksft_print_msg("  fallback %-10s %lld\n", xfer_fallback_names[i],
			       xfer_counter_delta(&b, &a, xfer_fallback_names[i]));

	ASSERT_EQ(0, W->bad_records) TH_LOG("%s", W->bad_msg);
	ASSERT_EQ(0, W->stream_bad) TH_LOG("%s", W->bad_msg);
	ASSERT_EQ(W->stream_sent, W->stream_received);
	ASSERT_EQ(0, extra);
	ASSERT_LE(missing, (long)W->records_unverifiable);
	ASSERT_EQ(0, W->writer_not_zero);
	ASSERT_LT(0, W->records_verified);

	if (!moves) {
		ksft_print_msg("  (kernel without the change: no move, no leak or splat check)\n");
		return;
	}
	ASSERT_LT(0, xfer_counter_delta(&b, &a, "moved"));
	settle();
	anon1 = vmstat_get("nr_anon_pages");
	free1 = meminfo_kb("MemFree");
	ksft_print_msg("  nr_anon_pages %lld -> %lld, MemFree %lld -> %lld kB, splats %d\n",
		       anon0, anon1, free0, free1, count_splats() - splats0);
	/*
	 * Tolerance: 2 MiB of anonymous pages (every page the fuzzer moved or
	 * copied is anonymous, so a leaked one shows here), and 64 MiB of
	 * MemFree: KASAN's quarantine of freed slab objects alone may hold
	 * 1/32 of memory, and slab caches grow with the process churn.
	 */
	ASSERT_LT(anon1 - anon0, 512);
	ASSERT_LT(free0 - free1, 65536);
	ASSERT_EQ(0, count_splats() - splats0);
}

TEST_HARNESS_MAIN
