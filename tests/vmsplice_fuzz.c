// SPDX-License-Identifier: GPL-2.0
/*
 * vmsplice_fuzz: a randomized tester of vmsplice(SPLICE_F_MOVE), bounded by
 * time and by a count of vmsplice operations, reproducible from its seed.
 *
 *   VMSPLICE_FUZZ_SEED=N   seed (default: from the clock; always printed)
 *   VMSPLICE_FUZZ_SECS=S   time bound (default 20)
 *   VMSPLICE_FUZZ_OPS=N    vmsplice operations, all actors together (20000)
 *   FZ_NO_THP, FZ_NO_MEMFD, FZ_NO_RMOVE   leave out THP memory, memfd
 *                          memory, reader moves (to narrow a failure down)
 *
 * The seed fixes what every actor does; the interleaving is the scheduler's.
 *
 * The world (all processes fork()ed from this one):
 *  - three "multi" pipes, each written by two writer threads from different
 *    processes and read by three reader processes.  The unit is a 4 KiB
 *    record (tests/lib/lrec.h) in a page of its own, so records never
 *    split; every 64-byte line of a record names its writer and sequence
 *    number.  Writers vary flags (none, GIFT, MOVE, GIFT|MOVE, GIFT|UNMAP,
 *    NONBLOCK), iov shapes (one segment, a segment per page in any order,
 *    the same page twice, zero-length segments, a bad address at the end,
 *    a large folio cut in two), memory (fresh, a whole 2 MiB THP given as
 *    one pipe buffer, part of a THP, 64 kB mTHP folios, shared memfd) and
 *    now and then fork a child that shares the pages copy-on-write and,
 *    a few gifts later, checks that its view of them never changed;
 *    sometimes a writer process dies abruptly.
 *  - readers vary flags, iov shapes, read(), and three destinations: a
 *    4 KiB "verified" zone and a 4 MiB THP zone (2 MiB aligned,
 *    MADV_HUGEPAGE: whole-THP buffers land with one PMD, mTHP ones by PTEs)
 *    that racing threads only mprotect(), madvise(HUGEPAGE, NOHUGEPAGE,
 *    COLLAPSE) and fork() over; and a 4 MiB THP "chaos" zone that they
 *    also madvise(DONTNEED), munmap() and mremap() away.  Chaos racers
 *    mark every page they may destroy (an epoch per page, odd while they
 *    act), so the reader knows which of its pages a racer touched between
 *    its read and its check.  Every record landing anywhere is checked
 *    byte for byte: exact, or — only in a page a racer touched — its own
 *    bytes or zeros; a record zeroed beyond recognition counts as
 *    destroyed.  Garbage is always a failure.
 *  - one "stream" pipe, one writer and one reader, with arbitrary byte
 *    shapes (unaligned, partial pages), checked byte for byte.
 *  - helpers tee() the multi pipes into a sink pipe (whose copies are
 *    checked too), splice() records between multi pipes, resize pipes and
 *    send signals.
 *
 * At the end: every writer and reader exited as it should (a writer may
 * only die when it chose to); every 4 KiB unit the writers' calls put into
 * the multi pipes was read out (up to what a dying writer's last call may
 * have sent) and every unit read is accounted for; every record seen at
 * most as often as sent, and the records never seen exactly the ones
 * destroyed by the chaos racers; the sink delivered every tee()d unit; no
 * bad record; no pipe buffer left; on the patched kernel moves happened,
 * whole THPs and mTHP folios among them, no page is left orphaned and
 * MemFree is back, and no kernel splat.
 *
 * The MREMAP_DUP operation (tests/lib/fuzz_dup.[ch]; off on kernels without
 * MREMAP_DUP) runs at the places marked "MREMAP_DUP hook".
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
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/dup.h"
#include "lib/fuzz_dup.h"
#include "lib/leak.h"
#include "lib/lrec.h"
#include "lib/mem.h"
#include "lib/pattern.h"
#include "lib/setting.h"
#include "lib/thp.h"
#include "lib/vmstat.h"
#include "lib/xfer.h"

/*
 * ---- MREMAP_DUP hook ------------------------------------------------------
 * Writers duplicate (mremap(MREMAP_DUP), tests/lib/fuzz_dup.[ch]) the
 * memory they are about to give, readers the destination they are about
 * to receive into, one time in DUP_ONE_IN, and check after the transfer
 * that the duplicate still holds the bytes it was made with: a gifted
 * page is then mapped twice, so moving it away or writing into it would
 * change the duplicate.  On a kernel without MREMAP_DUP the hook is off
 * (W->dup_one_in is 0, said at the start), and the same random numbers
 * are drawn, so a seed replays the same run either way.
 */
#define DUP_ONE_IN	8

/*
 * The duplicate must equal the original when made (fuzz_dup_begin()
 * copied the original right after): 0, or -1 with the first difference.
 */
static int dup_made_equal(const struct fuzz_dup *f, char *why, size_t len)
{
	for (size_t off = 0; f->dup && off < f->len; off++) {
		if (f->dup[off] != f->copy[off]) {
			snprintf(why, len, "MREMAP_DUP duplicate differs from the original when made, at byte %zu of %zu (%#x, original %#x)",
				 off, f->len, f->dup[off] & 0xff, f->copy[off] & 0xff);
			return -1;
		}
	}
	return 0;
}
/* ---- end of the MREMAP_DUP hook ----------------------------------------- */

#define PS		4096UL
#define NR_MULTI	3			/* multi pipes 0..2 */
#define THP_PIPE	0			/* the multi pipe of large folios */
#define SINK		NR_MULTI		/* tee sink */
#define STREAM		(NR_MULTI + 1)		/* stream pipe */
#define NR_PIPES	(NR_MULTI + 2)
#define WRITER_PROCS	3
#define WRITER_THREADS	2
#define NR_WRITERS	(WRITER_PROCS * WRITER_THREADS)
#define READER_PROCS	3
/*
 * Records per writer: a 10^6-operation soak's writers of large folios send
 * a few million each.  The counters live in shared memory, touched as used.
 */
#define SEQ_CAP		(1UL << 24)
#define THP_RECORDS	(THP_SIZE / PS)		/* 512 */
#define VZONE_PAGES	64			/* the 4 KiB verified zone */
#define BIG_ZONE	(2 * THP_SIZE)		/* THP and chaos zones */
#define BIG_PAGES	(BIG_ZONE / PS)
#define MAX_IOV		48
#define STREAM_SEED	0xabcdU

enum op {
	OP_VMSPLICE_WRITE, OP_VMSPLICE_READ, OP_READ, OP_TEE, OP_SPLICE,
	OP_RESIZE, OP_SIGNAL, OP_MPROTECT, OP_MADV_DONTNEED, OP_MADV_HUGEPAGE,
	OP_MADV_NOHUGEPAGE, OP_MADV_COLLAPSE, OP_MUNMAP, OP_MREMAP, OP_FORK,
	OP_WRITER_DEATH, OP_GIVE_THP, OP_GIVE_THP_CUT, OP_GIVE_THP_PART,
	OP_GIVE_MTHP, OP_READ_WHOLE_THP, OP_READ_MTHP, OP_EFAULT, OP_EINTR,
	OP_EAGAIN, NR_OPS
};

static const char *const op_name[NR_OPS] = {
	"vmsplice write", "vmsplice read", "read", "tee", "splice",
	"pipe resize", "signal", "mprotect", "madvise DONTNEED",
	"madvise HUGEPAGE", "madvise NOHUGEPAGE", "madvise COLLAPSE",
	"munmap+mmap", "mremap", "fork", "writer death", "give whole THP",
	"give THP in 2 cuts", "give part of THP", "give mTHP folios",
	"read 2 MiB aligned", "read 64 kB aligned", "EFAULT (race hit)",
	"EINTR (race hit)", "EAGAIN",
};

/* Everything the actors share; lives in a MAP_SHARED mapping. */
struct world {
	uint64_t seed;
	bool moves;		/* the kernel has vmsplice(SPLICE_F_UNMAP) */
	bool thp;		/* THP memory in use (not FZ_NO_THP) */
	double deadline;
	long max_ops;
	int fds[NR_PIPES][2];
	_Atomic long vmsplice_ops;
	_Atomic int writers_done, helpers_stop, drain;
	_Atomic long ops[NR_OPS];
	/* 4 KiB units into and out of the multi pipes, into the sink. */
	_Atomic long units_sent, units_delivered, sink_sent, sink_delivered;
	/* Verdicts on the units read (lrec.h). */
	_Atomic long records_exact, records_damaged, records_zero;
	_Atomic long sink_exact, sink_damaged, sink_zero;
	_Atomic long bad_records, bad_sizes, writer_not_zero, writer_nomem;
	_Atomic long stream_sent, stream_received, stream_bad;
	_Atomic long bytes_verified;
	unsigned int dup_one_in;	/* DUP_ONE_IN, or 0 without MREMAP_DUP */
	_Atomic long dup_made, dup_refused;
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
 * With GIFT|UNMAP a page given away is unmapped at once: naming it again
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
	struct fuzz_dup dup;
};

/* What a writer gives this round. */
enum mem_kind {
	FZ_ANON,	/* 1..16 fresh pages */
	FZ_THP,	/* one whole 2 MiB THP: 512 records */
	FZ_THP_PART,	/* 1..16 records at the start of a THP */
	FZ_MTHP,	/* 1..4 64 kB folios: 16..64 records */
	FZ_MEMFD,	/* 1..16 pages of a shared memfd: never unmapped */
};

/*
 * Pick the memory and map it; *@k records fit, *@maplen to unmap.  The
 * writers of pipe THP_PIPE give mostly THPs and mTHP folios.
 */
static char *writer_memory(struct rng *r, bool thp_pipe, enum mem_kind *kind,
			   size_t *k, size_t *maplen)
{
	unsigned int pick = below(r, 40);
	char *p;

	*k = 1 + below(r, 16);
	if (thp_pipe)	/* mostly large folios: whole-folio moves happen */
		*kind = pick < 12 ? FZ_THP : pick < 16 ? FZ_THP_PART :
			pick < 28 ? FZ_MTHP : pick < 30 ? FZ_MEMFD : FZ_ANON;
	else
		*kind = pick < 2 ? FZ_THP : pick < 4 ? FZ_THP_PART :
			pick < 8 ? FZ_MTHP : pick < 12 ? FZ_MEMFD : FZ_ANON;
	if ((*kind == FZ_THP || *kind == FZ_THP_PART || *kind == FZ_MTHP) &&
	    !W->thp)
		*kind = FZ_ANON;
	if (*kind == FZ_MEMFD && getenv("FZ_NO_MEMFD"))
		*kind = FZ_ANON;

	switch (*kind) {
	case FZ_THP:
	case FZ_THP_PART:
		if (*kind == FZ_THP)
			*k = THP_RECORDS;
		*maplen = THP_SIZE;
		return thp_map(THP_SIZE);
	case FZ_MTHP:
		*k = (1 + below(r, 4)) * (MTHP_64K_SIZE / PS);
		*maplen = *k * PS;
		return map_aligned(*maplen, MTHP_64K_SIZE, MADV_HUGEPAGE);
	case FZ_MEMFD: {
		int fd = memfd_create("fuzz", MFD_CLOEXEC);

		*maplen = *k * PS;
		if (fd < 0 || ftruncate(fd, *maplen)) {
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		p = mmap(NULL, *maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		return p == MAP_FAILED ? NULL : p;
	}
	case FZ_ANON:
		break;
	}
	*maplen = *k * PS;
	return map_anon(*maplen);
}

/*
 * The iovec for @k records at @src: which pages, in which order, how
 * often.  Returns the number of segments; *@bad_tail: the last one is a
 * bad address.
 */
static int writer_iov(struct rng *r, enum mem_kind kind, char *src, size_t k,
		      struct iovec *iov, bool *bad_tail)
{
	unsigned int shape = below(r, 6);
	int cnt = 0;

	*bad_tail = false;
	if (k > 16) {
		/* Large folios: whole, or cut in two at a page boundary. */
		size_t cut = 1 + below(r, k - 1);

		if (shape < 3) {
			iov[cnt++] = (struct iovec){ src, k * PS };
		} else {
			count(kind == FZ_THP ? OP_GIVE_THP_CUT : OP_GIVE_MTHP);
			iov[cnt++] = (struct iovec){ src, cut * PS };
			iov[cnt++] = (struct iovec){ src + cut * PS, (k - cut) * PS };
		}
		return cnt;
	}
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
	if (shape == 4) {	/* a bad address after the good ones */
		iov[cnt++] = (struct iovec){ (void *)PS, PS };
		*bad_tail = true;
	}
	return cnt;
}

/*
 * A child of a writer that shares a gift's pages copy-on-write: it keeps
 * them mapped while the gift goes out and readers receive, write over and
 * give back what they got, and a few gifts later checks that its own view
 * is still exactly its records.  A page moved while it was still mapped
 * here (or written through) would change under it.  It holds no pipe (so
 * it cannot keep one from reaching end of file) and dies with its parent.
 */
struct sharer {
	pid_t pid;
	int ctl;		/* a byte here: check and exit */
	int rounds_left;
	uint64_t seq;
	size_t k;
};

static void sharer_start(struct sharer *sh, int w, int pipe_id, const char *src,
			 size_t k, uint64_t seq)
{
	int ctl[2];

	if (pipe2(ctl, O_CLOEXEC))
		return;
	count(OP_FORK);
	sh->pid = fork();
	if (sh->pid == 0) {
		char go;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (int i = 0; i < NR_PIPES; i++) {
			close(W->fds[i][0]);
			close(W->fds[i][1]);
		}
		close(ctl[1]);
		if (read(ctl[0], &go, 1) != 1)
			_exit(3);
		for (size_t i = 0; i < k; i++) {
			struct lrec_id id;

			if (!lrec_check(src + i * PS, &id) || id.writer != (unsigned int)w ||
			    id.pipe != (unsigned int)pipe_id || id.seq != seq + i)
				_exit(1);
		}
		_exit(0);
	}
	close(ctl[0]);
	if (sh->pid < 0) {
		close(ctl[1]);
		return;
	}
	sh->ctl = ctl[1];
	sh->rounds_left = 1 + (int)(seq % 4);
	sh->seq = seq;
	sh->k = k;
}

static void sharer_check(struct sharer *sh, int w)
{
	int status;

	if (write(sh->ctl, "c", 1) != 1)
		kill(sh->pid, SIGKILL);
	close(sh->ctl);
	if (waitpid(sh->pid, &status, 0) != sh->pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		bad("writer %d: the child sharing records %llu..%llu saw them change (status %#x)",
		    w, (unsigned long long)sh->seq,
		    (unsigned long long)(sh->seq + sh->k - 1), status);
	sh->pid = -1;
}

static void *writer_thread(void *arg)
{
	struct writer_arg *wa = arg;
	struct rng *r = &wa->rng;
	int w = wa->id, pipe_id = w % NR_MULTI, wr = W->fds[pipe_id][1];
	static bool given_buf[NR_WRITERS][THP_RECORDS];
	bool *given = given_buf[w];
	struct sharer sh = { .pid = -1 };
	uint64_t seq = 0;
	char why[200];

	while (budget_left() && seq + THP_RECORDS + 1 < SEQ_CAP) {
		/* The pipe of large folios: mostly given with UNMAP. */
		unsigned int flags_pick = pipe_id == THP_PIPE && below(r, 4) ?
					  4 + below(r, 4) : below(r, 8);
		unsigned int flags = (unsigned int[]){ 0, SPLICE_F_GIFT, SPLICE_F_MOVE,
			SPLICE_F_GIFT | SPLICE_F_MOVE, GIVE, GIVE | SPLICE_F_MOVE,
			GIVE | SPLICE_F_NONBLOCK, GIVE }[flags_pick];
		struct iovec iov[MAX_IOV];
		int cnt, first = 0;
		enum mem_kind kind;
		size_t k, maplen;
		bool unmaps, bad_tail;
		char *src = writer_memory(r, pipe_id == THP_PIPE, &kind, &k, &maplen);

		if (!src) {
			atomic_fetch_add(&W->writer_nomem, 1);
			continue;
		}
		count(kind == FZ_THP ? OP_GIVE_THP : kind == FZ_THP_PART ?
		      OP_GIVE_THP_PART : kind == FZ_MTHP ? OP_GIVE_MTHP : OP_VMSPLICE_WRITE);
		if (kind != FZ_THP && kind != FZ_THP_PART && kind != FZ_MTHP)
			atomic_fetch_sub(&W->ops[OP_VMSPLICE_WRITE], 1);
		memset(given, 0, THP_RECORDS);
		for (size_t i = 0; i < k; i++) {
			struct lrec_id id = { pipe_id, w, seq + i };

			lrec_fill(src + i * PS, &id);
		}
		cnt = writer_iov(r, kind, src, k, iov, &bad_tail);
		for (int i = 0; i < cnt - bad_tail; i++) {
			size_t page = ((char *)iov[i].iov_base - src) / PS;

			for (size_t n = 0; n < iov[i].iov_len / PS; n++)
				atomic_fetch_add(&W->expected[w][seq + page + n], 1);
		}
		atomic_store(&W->pending[w], seq + k);

		if (below(r, 16) == 0 && sh.pid <= 0)
			sharer_start(&sh, w, pipe_id, src, k, seq);
		if (below(r, 3000) == 0) {
			/* Die with records maybe in the pipe, maybe not. */
			count(OP_WRITER_DEATH);
			atomic_store(&W->dead[w], 1);
			atomic_store(&W->dead[w ^ 1], 1);	/* its sibling thread */
			raise(SIGKILL);
		}
		/* MREMAP_DUP hook: a duplicate of what is about to leave. */
		fuzz_dup_begin(&wa->dup, rnd(r), W->dup_one_in, src, k * PS);
		if (dup_made_equal(&wa->dup, why, sizeof(why)))
			bad("writer %d: %s", w, why);

		/* Kernels without the change: the old copy path. */
		if (!W->moves)
			flags &= ~(unsigned int)SPLICE_F_UNMAP;
		unmaps = kind != FZ_MEMFD && (flags & SPLICE_F_UNMAP);
		while (first < cnt) {
			ssize_t n;

			if (unmaps)
				drop_given(iov, cnt, first, src, given, w, seq);
			if (bad_tail && first == cnt - 1)
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
				if (errno == EFAULT && bad_tail)
					break;
				if (errno == EINTR || errno == EAGAIN)
					continue;
				bad("writer %d: vmsplice: %s", w, strerror(errno));
				break;
			}
			if (n % PS)
				bad("writer %d: vmsplice put %zd bytes in, not whole records", w, n);
			atomic_fetch_add(&W->units_sent, n / PS);
			mark_given(iov, cnt, first, n, src, given);
			first = iov_advance(iov, cnt, first, n);
		}
		/* A few gifts later the sharer checks what it still sees. */
		if (sh.pid > 0 && --sh.rounds_left <= 0)
			sharer_check(&sh, w);
		if (fuzz_dup_end(&wa->dup))
			bad("writer %d: %s", w, wa->dup.why);
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
	if (sh.pid > 0)
		sharer_check(&sh, w);
	atomic_fetch_add(&W->dup_made, wa->dup.made);
	atomic_fetch_add(&W->dup_refused, wa->dup.refused);
	return NULL;
}

static void writer_process(int proc)
{
	pthread_t th[WRITER_THREADS];
	struct writer_arg wa[WRITER_THREADS];

	memset(wa, 0, sizeof(wa));
	for (int t = 0; t < WRITER_THREADS; t++) {
		wa[t].id = proc * WRITER_THREADS + t;
		rng_init(&wa[t].rng, 100 + wa[t].id);
		if (pthread_create(&th[t], NULL, writer_thread, &wa[t]))
			_exit(2);
	}
	for (int t = 0; t < WRITER_THREADS; t++)
		pthread_join(th[t], NULL);
	_exit(0);
}

/* ------------------------------------------------------------ readers */

struct zones {
	char *verified;		/* 4 KiB pages, only data-preserving racers */
	char *thp;		/* THP zone, only data-preserving racers */
	char *chaos;		/* THP zone, anything goes */
	char *scratch;		/* where mremap parks the chaos zone */
	/*
	 * Held by the chaos racer while its munmap()/mremap() leave a hole
	 * it will map over with MAP_FIXED (in the chaos zone or at scratch),
	 * and by the reader while MREMAP_DUP places a duplicate and malloc()
	 * its copy: a duplicate must not land in such a hole and be
	 * replaced, which would read as a duplicate that changed.
	 */
	pthread_mutex_t holes;
	_Atomic bool stop;
	int tick_v, tick_c;	/* eventfds: one racer operation per read */
	struct rng rng_v, rng_c;
	/* Per chaos page: odd while a racer destroys it, +2 every time. */
	_Atomic unsigned int epoch[BIG_PAGES];
};

/* A chaos racer is about to destroy (or did destroy) pages [p, p + n). */
static void touch_epochs(struct zones *z, size_t p, size_t n)
{
	for (size_t i = p; i < p + n; i++)
		atomic_fetch_add(&z->epoch[i], 1);
}

/*
 * Racers act once per read of their reader (which ticks them right before
 * its vmsplice()), so that on two CPUs they race with the transfers
 * instead of starving them.
 */
static bool racer_turn(struct zones *z, int tick)
{
	uint64_t v;

	return read(tick, &v, sizeof(v)) == sizeof(v) && !atomic_load(&z->stop);
}

static void tick(int efd)
{
	uint64_t one = 1;

	if (write(efd, &one, sizeof(one)) != sizeof(one))
		bad("eventfd: %s", strerror(errno));
}

static void *verified_racer(void *arg)
{
	struct zones *z = arg;

	while (racer_turn(z, z->tick_v)) {
		bool big = below(&z->rng_v, 2);
		char *zone = big ? z->thp : z->verified;
		size_t len = big ? BIG_ZONE : VZONE_PAGES * PS;
		size_t off = below(&z->rng_v, len / PS) * PS;

		switch (below(&z->rng_v, 6)) {
		case 0:
			count(OP_MPROTECT);
			mprotect(zone, len, PROT_READ);
			mprotect(zone, len, PROT_READ | PROT_WRITE);
			break;
		case 1:
			count(OP_MADV_HUGEPAGE);
			madvise(zone, len, MADV_HUGEPAGE);
			break;
		case 2:
			count(OP_MADV_NOHUGEPAGE);
			madvise(zone, len, MADV_NOHUGEPAGE);
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
		case 4:
			/* Split a PMD (one page's protection), collapse it back. */
			count(OP_MPROTECT);
			mprotect(zone + off, PS, PROT_READ);
			mprotect(zone + off, PS, PROT_READ | PROT_WRITE);
			/* fall through */
		case 5:
			count(OP_MADV_COLLAPSE);
			madvise(z->thp + (off & ~(THP_SIZE - 1)) % BIG_ZONE, THP_SIZE,
				MADV_COLLAPSE);
			madvise(z->thp, BIG_ZONE, MADV_HUGEPAGE);
			break;
		}
	}
	return NULL;
}

static void *chaos_racer(void *arg)
{
	struct zones *z = arg;
	size_t len = BIG_ZONE;

	while (racer_turn(z, z->tick_c)) {
		size_t p = below(&z->rng_c, BIG_PAGES);
		size_t n = 1 + below(&z->rng_c, 8);

		if (p + n > BIG_PAGES)
			n = BIG_PAGES - p;
		switch (below(&z->rng_c, 5)) {
		case 0:
			count(OP_MADV_DONTNEED);
			touch_epochs(z, p, n);
			madvise(z->chaos + p * PS, n * PS, MADV_DONTNEED);
			touch_epochs(z, p, n);
			break;
		case 1:
			/* A whole 2 MiB slot: a THP zapped in one go. */
			count(OP_MADV_DONTNEED);
			p &= ~(THP_RECORDS - 1);
			touch_epochs(z, p, THP_RECORDS);
			madvise(z->chaos + p * PS, THP_SIZE, MADV_DONTNEED);
			touch_epochs(z, p, THP_RECORDS);
			break;
		case 2:
			count(OP_MUNMAP);
			touch_epochs(z, 0, BIG_PAGES);
			pthread_mutex_lock(&z->holes);
			munmap(z->chaos, len);
			mmap(z->chaos, len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			pthread_mutex_unlock(&z->holes);
			madvise(z->chaos, len, MADV_HUGEPAGE);
			touch_epochs(z, 0, BIG_PAGES);
			break;
		case 3:
			/* Away and back: the data survives, the address does not. */
			count(OP_MREMAP);
			touch_epochs(z, 0, BIG_PAGES);
			pthread_mutex_lock(&z->holes);
			if (mremap(z->chaos, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
				   z->scratch) != MAP_FAILED)
				mremap(z->scratch, len, len,
				       MREMAP_MAYMOVE | MREMAP_FIXED, z->chaos);
			/* Keep the parking place reserved: no hole there either. */
			mmap(z->scratch, len, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
			pthread_mutex_unlock(&z->holes);
			touch_epochs(z, 0, BIG_PAGES);
			break;
		case 4:
			count(OP_MPROTECT);
			mprotect(z->chaos + p * PS, n * PS, PROT_READ);
			mprotect(z->chaos + p * PS, n * PS, PROT_READ | PROT_WRITE);
			break;
		}
	}
	return NULL;
}

/*
 * Account for @n bytes of records gathered in @buf from pipe @pipe_id;
 * @excused[i]: a chaos racer may have destroyed record i's page.
 */
static void account(const char *buf, size_t n, int pipe_id, const bool *excused)
{
	for (size_t off = 0, i = 0; off < n; off += PS, i++) {
		bool sink = pipe_id == SINK;
		struct lrec_id id = { 0 };
		char msg[200] = "";
		enum lrec_verdict v;

		atomic_fetch_add(sink ? &W->sink_delivered : &W->units_delivered, 1);
		v = lrec_judge(buf + off, excused && excused[i], &id, msg, sizeof(msg));
		if (v == LREC_BAD) {
			bad("pipe %d: %s", pipe_id, msg);
			continue;
		}
		if (v == LREC_ZERO) {
			atomic_fetch_add(sink ? &W->sink_zero : &W->records_zero, 1);
			continue;
		}
		if (id.writer >= NR_WRITERS || id.seq >= SEQ_CAP || id.pipe >= NR_MULTI ||
		    id.pipe != id.writer % NR_MULTI) {
			bad("pipe %d: foreign record writer %u seq %llu pipe %u",
			    pipe_id, id.writer, (unsigned long long)id.seq, id.pipe);
			continue;
		}
		atomic_fetch_add(&W->bytes_verified, PS);
		if (sink) {
			atomic_fetch_add(v == LREC_EXACT ? &W->sink_exact : &W->sink_damaged, 1);
			continue;
		}
		atomic_fetch_add(v == LREC_EXACT ? &W->records_exact : &W->records_damaged, 1);
		atomic_fetch_add(&W->seen[id.writer][id.seq], 1);
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

/*
 * The reader's iovec: @m pages into @zone at a page @at.  4 KiB verified
 * zone: aligned, or unaligned pieces.  THP and chaos zones: page-aligned
 * pieces only (a record then lies in one page, whose epoch says whether a
 * racer touched it).  Returns the number of segments.
 */
static int reader_iov(struct rng *r, char *zone, bool big, size_t at, size_t m,
		      struct iovec *iov, bool *bad_tail)
{
	unsigned int shape = below(r, 5);
	size_t len = m * PS;
	int cnt = 0;

	*bad_tail = false;
	if (m == THP_RECORDS && below(r, 2))
		shape = 0;	/* a whole THP mostly in one segment */
	if (shape <= 1 || (big && shape != 4 && m == 1)) {
		iov[cnt++] = (struct iovec){ zone + at, len };
	} else if (big) {
		/* Page-aligned pieces, sometimes with empty segments. */
		size_t left = m;

		while (left) {
			size_t piece = 1 + below(r, left < 64 ? left : 64);

			if (cnt >= 30)
				piece = left;
			if (below(r, 4) == 0 && cnt < 20)
				iov[cnt++] = (struct iovec){ zone, 0 };
			iov[cnt++] = (struct iovec){ zone + at, piece * PS };
			at += piece * PS;
			left -= piece;
		}
	} else {			/* unaligned pieces */
		size_t left = len, off = 1 + below(r, PS - 1);

		while (left) {
			size_t piece = 1 + below(r, 3 * PS);

			if (piece > left || cnt >= 30)
				piece = left;
			if (shape == 3 && below(r, 3) == 0 && cnt < 20)
				iov[cnt++] = (struct iovec){ zone, 0 };
			iov[cnt++] = (struct iovec){ zone + at + off, piece };
			off += piece;
			left -= piece;
		}
	}
	if (shape == 4 && cnt < MAX_IOV) {	/* a bad address after the rest */
		iov[cnt++] = (struct iovec){ (void *)PS, PS };
		*bad_tail = true;
	}
	return cnt;
}

static void reader_process(int proc)
{
	static unsigned int e0[BIG_PAGES];
	struct zones *z = calloc(1, sizeof(*z));
	static bool excused[THP_RECORDS];
	struct fuzz_dup dup = { 0 };
	pthread_t tv, tc;
	struct rng r;
	char why[200];
	char *tmp = map_anon(THP_SIZE + VZONE_PAGES * PS);

	close_write_ends();
	if (!z)
		_exit(2);
	rng_init(&r, 200 + proc);
	rng_init(&z->rng_v, 300 + proc);
	rng_init(&z->rng_c, 400 + proc);
	z->verified = map_anon((VZONE_PAGES + 1) * PS);
	z->thp = thp_map(BIG_ZONE);
	z->chaos = thp_map(BIG_ZONE);
	z->scratch = thp_map(BIG_ZONE);
	z->tick_v = eventfd(0, EFD_CLOEXEC);
	z->tick_c = eventfd(0, EFD_CLOEXEC);
	pthread_mutex_init(&z->holes, NULL);
	if (!tmp || !z->verified || !z->thp || !z->chaos || !z->scratch ||
	    z->tick_v < 0 || z->tick_c < 0)
		_exit(2);
	if (pthread_create(&tv, NULL, verified_racer, z) ||
	    pthread_create(&tc, NULL, chaos_racer, z))
		_exit(2);

	for (;;) {
		bool drain = atomic_load(&W->drain);
		int pipe_id = below(&r, 8) == 0 ? SINK : below(&r, NR_MULTI);
		unsigned int which = below(&r, 10);
		/* From the pipe of large folios mostly into the THP zones. */
		bool chaos = which >= 7, big = which >= (pipe_id == THP_PIPE ? 2 : 4);
		char *zone = chaos ? z->chaos : big ? z->thp : z->verified;
		size_t zpages = big ? BIG_PAGES : VZONE_PAGES;
		size_t m = 1 + below(&r, 8), at;
		unsigned int size_pick = below(&r, 8), flags;
		struct iovec iov[MAX_IOV];
		bool bad_tail;
		int cnt;
		ssize_t n;

		if (drain && pipes_empty())
			break;
		/*
		 * THP and chaos zones: now and then a whole THP or a 64 kB
		 * folio, mostly so from the pipe of large folios.
		 */
		if (big && pipe_id == THP_PIPE)
			size_pick = size_pick < 6 ? 0 : size_pick < 7 ? 1 : size_pick;
		if (big && size_pick == 0) {
			count(OP_READ_WHOLE_THP);
			m = THP_RECORDS;
			at = below(&r, 2) * THP_SIZE;
			/*
			 * Half the time into an empty slot, where a whole THP
			 * lands with one PMD (what landed there before was
			 * checked already).
			 */
			if (!chaos && below(&r, 2))
				madvise(zone + at, THP_SIZE, MADV_DONTNEED);
		} else if (big && size_pick == 1) {
			count(OP_READ_MTHP);
			m = MTHP_64K_SIZE / PS;
			at = below(&r, BIG_ZONE / MTHP_64K_SIZE) * MTHP_64K_SIZE;
		} else {
			at = below(&r, zpages - m + 1) * PS;
		}
		flags = below(&r, 4) && !getenv("FZ_NO_RMOVE") ? SPLICE_F_MOVE : 0;
		/* Only the tee helper feeds the sink: never wait on it. */
		if (drain || pipe_id == SINK || below(&r, 8) == 0)
			flags |= SPLICE_F_NONBLOCK;
		cnt = reader_iov(&r, zone, big, at, m, iov, &bad_tail);

		/* The chaos pages' epochs before the read... */
		for (size_t i = 0; chaos && i < m; i++)
			e0[i] = atomic_load(&z->epoch[at / PS + i]);
		/* MREMAP_DUP hook: a duplicate of what the read will change. */
		pthread_mutex_lock(&z->holes);
		fuzz_dup_begin(&dup, rnd(&r), chaos ? 0 : W->dup_one_in, zone + at, m * PS);
		pthread_mutex_unlock(&z->holes);
		if (dup_made_equal(&dup, why, sizeof(why)))
			bad("reader %d: %s", proc, why);
		tick(chaos ? z->tick_c : z->tick_v);

		if (cnt == 1 && below(&r, 6) == 0 && !(flags & SPLICE_F_NONBLOCK)) {
			count(OP_READ);
			n = read(W->fds[pipe_id][0], iov[0].iov_base, iov[0].iov_len);
		} else {
			count(OP_VMSPLICE_READ);
			atomic_fetch_add(&W->vmsplice_ops, 1);
			n = vmsplice(W->fds[pipe_id][0], iov, cnt, flags);
		}
		if (fuzz_dup_end(&dup))
			bad("reader %d: %s", proc, dup.why);
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

			for (int i = 0; i < cnt && got < (size_t)n; i++) {
				size_t take = iov[i].iov_len;

				if (take > (size_t)n - got)
					take = n - got;
				if (!chaos) {
					memcpy(tmp + got, iov[i].iov_base, take);
				} else {
					/* Page by page: a racer may take one away. */
					for (size_t o = 0; o < take; o += PS)
						if (!copy_out(tmp + got + o,
							      (char *)iov[i].iov_base + o, PS))
							memset(tmp + got + o, 0, PS);
				}
				got += take;
			}
			/* ... and after: which pages did a racer touch meanwhile? */
			for (size_t i = 0; chaos && i < (size_t)n / PS; i++) {
				unsigned int e1 = atomic_load(&z->epoch[at / PS + i]);

				excused[i] = e1 != e0[i] || (e0[i] & 1);
			}
			account(tmp, n, pipe_id, chaos ? excused : NULL);
		}
	}
	atomic_store(&z->stop, true);
	tick(z->tick_v);
	tick(z->tick_c);
	pthread_join(tv, NULL);
	pthread_join(tc, NULL);
	atomic_fetch_add(&W->dup_made, dup.made);
	atomic_fetch_add(&W->dup_refused, dup.refused);
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
			ssize_t n;

			count(OP_TEE);
			n = tee(W->fds[a][0], W->fds[SINK][1], len, SPLICE_F_NONBLOCK);
			if (n > 0 && n % PS)
				bad("tee: %zd bytes, not whole records", n);
			if (n > 0)
				atomic_fetch_add(&W->sink_sent, n / PS);
		} else {
			ssize_t n;

			/* From one multi pipe to another: units neither made nor lost. */
			count(OP_SPLICE);
			n = splice(W->fds[a][0], NULL, W->fds[b][1], NULL, len,
				   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (n > 0 && n % PS)
				bad("splice: %zd bytes, not whole records", n);
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

FIXTURE(fuzz)
{
	struct setting mthp;
};

FIXTURE_SETUP(fuzz)
{
}

/* In the parent: the mTHP size comes back even after a timeout. */
FIXTURE_TEARDOWN_PARENT(fuzz)
{
	setting_restore(&self->mthp);
}

/*
 * How a writer process ended: exited 0, or killed by the SIGKILL it sent
 * itself (OP_WRITER_DEATH; then it said so first).
 */
static bool writer_ended_well(int proc, int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status) == 0;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
	       atomic_load(&W->dead[proc * WRITER_THREADS]);
}

TEST_F_TIMEOUT(fuzz, run, 86400)
{
	struct sigaction sa = { .sa_handler = on_signal };
	pid_t writers[WRITER_PROCS + 1], readers[READER_PROCS + 1], helpers[2];
	struct xfer_counters b, a;
	struct mem_snapshot m0, m1;
	long missing = 0, extra = 0, maybe = 0, sent = 0, uncertain_units = 0;
	bool moves = xfer_kernel_moves(), snap;
	int splats0 = count_splats(), status;
	double t0 = now();
	char why[256];

	W = mmap(NULL, sizeof(*W), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, W);
	W->seed = env_long("VMSPLICE_FUZZ_SEED", (long)(time(NULL) ^ getpid()));
	W->moves = moves;
	W->thp = !getenv("FZ_NO_THP");
	W->max_ops = env_long("VMSPLICE_FUZZ_OPS", 20000);
	W->deadline = t0 + env_long("VMSPLICE_FUZZ_SECS", 20);
	W->dup_one_in = dup_supported() ? DUP_ONE_IN : 0;
	ksft_print_msg("vmsplice_fuzz: seed %llu, %ld vmsplice operations or %ld s\n",
		       (unsigned long long)W->seed, W->max_ops,
		       env_long("VMSPLICE_FUZZ_SECS", 20));
	ksft_print_msg("reproduce: VMSPLICE_FUZZ_SEED=%llu VMSPLICE_FUZZ_OPS=%ld\n",
		       (unsigned long long)W->seed, W->max_ops);
	if (W->dup_one_in)
		ksft_print_msg("MREMAP_DUP hook: on, one transfer in %u duplicated\n",
			       W->dup_one_in);
	else
		ksft_print_msg("MREMAP_DUP hook: off (%s)\n", DUP_NO_KERNEL_MSG);
	/*
	 * mTHP folios of 64 kB for the writers' FZ_MTHP memory: a global
	 * setting, changed only on the patched kernel (the test VM).
	 */
	if (moves && W->thp && !access(MTHP_64K, W_OK))
		ASSERT_EQ(0, setting_set(&self->mthp, MTHP_64K, "madvise", why,
					 sizeof(why))) TH_LOG("%s", why);

	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));	/* no SA_RESTART */
	snap = moves && mem_snapshot(&m0) == 0;
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

	/* Every actor must end as it should: its status is checked. */
	for (int p = 0; p <= WRITER_PROCS; p++) {
		ASSERT_EQ(writers[p], waitpid(writers[p], &status, 0));
		if (p < WRITER_PROCS) {
			EXPECT_TRUE(writer_ended_well(p, status))
				TH_LOG("writer process %d: status %#x", p, status);
		} else {
			EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
				TH_LOG("stream writer: status %#x", status);
		}
	}
	atomic_store(&W->writers_done, 1);
	atomic_store(&W->helpers_stop, 1);
	for (int h = 0; h < 2; h++) {
		ASSERT_EQ(helpers[h], waitpid(helpers[h], &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
			TH_LOG("helper %d: status %#x", h, status);
	}
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
			else
				uncertain_units += e;	/* a dying writer's last call */
			if (got > e && extra++ < 5)
				ksft_print_msg("  record writer %d seq %llu: sent %d, seen %d (committed %llu)\n",
					       w, (unsigned long long)s, e, got,
					       (unsigned long long)c);
			else if (got > e)
				;
			else if (got < e && s < c)
				missing += e - got;
			else if (got < e)
				maybe += e - got;
		}
	}

	ksft_print_msg("--- vmsplice_fuzz figures (seed %llu, %.1f s) ---\n",
		       (unsigned long long)W->seed, now() - t0);
	ksft_print_msg("  vmsplice operations %ld (budget %ld)\n",
		       (long)W->vmsplice_ops, W->max_ops);
	for (int i = 0; i < NR_OPS; i++)
		ksft_print_msg("  %-20s %ld\n", op_name[i], (long)W->ops[i]);
	ksft_print_msg("  units: sent %ld (+%ld uncertain), delivered %ld; records exact %ld, damaged by racers %ld, destroyed by racers %ld\n",
		       (long)W->units_sent, uncertain_units, (long)W->units_delivered,
		       (long)W->records_exact, (long)W->records_damaged,
		       (long)W->records_zero);
	ksft_print_msg("  records: expected %ld committed, missing %ld, maybe %ld (dying writers), duplicated %ld\n",
		       sent, missing, maybe, extra);
	ksft_print_msg("  sink: tee()d %ld, delivered %ld (exact %ld, damaged %ld, destroyed %ld)\n",
		       (long)W->sink_sent, (long)W->sink_delivered, (long)W->sink_exact,
		       (long)W->sink_damaged, (long)W->sink_zero);
	ksft_print_msg("  stream bytes %ld sent, %ld received; bytes verified %ld\n",
		       (long)W->stream_sent, (long)W->stream_received,
		       (long)W->bytes_verified);
	ksft_print_msg("  MREMAP_DUP hook: %s, %ld duplicates made, %ld refused\n",
		       W->dup_one_in ? "on" : "off", (long)W->dup_made,
		       (long)W->dup_refused);
	ksft_print_msg("  moved %lld pages (zero %lld), unmapped %lld; whole large folios: given %lld, THP by PMD %lld, by PTEs %lld, split %lld\n",
		       xfer_counter_delta(&b, &a, "moved"),
		       xfer_counter_delta(&b, &a, "moved_zero"),
		       xfer_counter_delta(&b, &a, "unmapped"),
		       xfer_counter_delta(&b, &a, "gift_large"),
		       xfer_counter_delta(&b, &a, "folio_thp"),
		       xfer_counter_delta(&b, &a, "folio_large"),
		       xfer_counter_delta(&b, &a, "folio_split"));
	for (int i = 0; i < XFER_NR_FALLBACKS; i++)
		ksft_print_msg("  fallback %-10s %lld\n", xfer_fallback_names[i],
			       xfer_counter_delta(&b, &a, xfer_fallback_names[i]));

	ASSERT_EQ(0, W->bad_records) TH_LOG("%s", W->bad_msg);
	ASSERT_EQ(0, W->stream_bad) TH_LOG("%s", W->bad_msg);
	ASSERT_EQ(W->stream_sent, W->stream_received);
	ASSERT_EQ(0, W->writer_not_zero);
	ASSERT_EQ(0, extra);
	/* Every unit sent was read out, and only those. */
	ASSERT_LE(W->units_sent, W->units_delivered);
	ASSERT_LE(W->units_delivered, W->units_sent + uncertain_units);
	/* Every unit read is one of: exact, a record a racer damaged, zeros. */
	ASSERT_EQ(W->units_delivered,
		  W->records_exact + W->records_damaged + W->records_zero);
	/*
	 * The records never seen are exactly those the chaos racers zeroed
	 * beyond recognition (and a dying writer's last, maybe).
	 */
	ASSERT_LE(missing, (long)W->records_zero);
	ASSERT_LE((long)W->records_zero, missing + maybe);
	ASSERT_EQ(W->sink_sent, W->sink_delivered);
	ASSERT_EQ(W->sink_delivered, W->sink_exact + W->sink_damaged + W->sink_zero);
	ASSERT_LT(0, W->records_exact);
	/*
	 * With MREMAP_DUP, duplicates were made: one transfer in DUP_ONE_IN
	 * of a thousand or more leaves no chance ((7/8)^1000) of none.
	 */
	if (W->dup_one_in && W->vmsplice_ops >= 1000)
		ASSERT_LT(0, W->dup_made);

	if (!moves) {
		ksft_print_msg("  (kernel without the change: no move, no leak or splat check)\n");
		return;
	}
	ASSERT_LT(0, xfer_counter_delta(&b, &a, "moved"));
	if (W->thp) {
		/* Whole large folios went into pipes as one buffer each. */
		ASSERT_LT(0, xfer_counter_delta(&b, &a, "gift_large"));
	}
	ASSERT_TRUE(snap) TH_LOG("no baseline: /proc/kpageflags unreadable?");
	ASSERT_EQ(0, mem_snapshot(&m1));
	ksft_print_msg("  orphaned anon pages %+ld (THP %+ld), nr_anon_pages %+lld, MemFree %+lld kB (Slab %+lld kB), splats %d\n",
		       m1.orphans.pages - m0.orphans.pages,
		       m1.orphans.thp - m0.orphans.thp, m1.anon - m0.anon,
		       m1.free_kb - m0.free_kb, m1.slab_kb - m0.slab_kb,
		       count_splats() - splats0);
	/*
	 * Nothing is left holding a page: no orphaned anonymous page (exact
	 * but for a few in flight elsewhere; a pipe buffer or a reference
	 * leaked anywhere shows here), nr_anon_pages back within 2 MiB, and
	 * MemFree within 96 MiB: the fuzzer's churn of processes, pipes and
	 * VMAs passes through KASAN's quarantine (up to 1/32 of memory, 64 MiB
	 * here) and the slab and per-CPU caches; 20 s runs in the 2 GiB debug
	 * VM measured -24 to -54 MiB.
	 */
	ASSERT_LE(m1.orphans.thp, m0.orphans.thp);
	ASSERT_LE(m1.orphans.pages - m0.orphans.pages, LEAK_ORPHAN_SLACK);
	ASSERT_LT(m1.anon - m0.anon, 512);
	ASSERT_LT(m0.free_kb - m1.free_kb, 96 * 1024);
	ASSERT_EQ(0, count_splats() - splats0);
}

TEST_HARNESS_MAIN
