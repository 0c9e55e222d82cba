/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libvmsplice-move: hand memory from one process to another through a pipe,
 * moving whole pages where the kernel supports vmsplice(SPLICE_F_GIFT |
 * SPLICE_F_UNMAP) on the writer and vmsplice(SPLICE_F_MOVE) on the reader,
 * copying otherwise.  The data arrives intact either way; the report says
 * which happened.
 *
 * Two layers:
 *  - primitives: vsm_give()/vsm_take() loops over vmsplice(2), vsm_alloc(),
 *    the kernel's counters (vsm_stats_*) and vsm_probe();
 *  - the hand-off protocol over a connected UNIX stream socket: vsm_send()
 *    and vsm_recv() (see vmsplice_move(7)-style notes in README.md and
 *    vsm_send(3) for the wire format and the failure model).
 *
 * Every function is thread-compatible: it keeps no global state; distinct
 * threads may run distinct hand-offs at once.  Link with
 * `pkg-config --libs vmsplice-move`.
 */
#ifndef VMSPLICE_MOVE_LIB_H
#define VMSPLICE_MOVE_LIB_H

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Library version (also in the pkg-config file and the soname's major). */
#define VSM_VERSION_MAJOR	1
#define VSM_VERSION_MINOR	0
#define VSM_VERSION_STRING	"1.0"

/*
 * The writer's move opt-in of the patched kernel (include/uapi/linux/fcntl.h
 * there).  Kernels without the change reject it with EINVAL, which is how
 * the library detects support.
 */
#ifndef SPLICE_F_UNMAP
#define SPLICE_F_UNMAP		0x10
#endif

/* ---------------------------------------------------------------------- */
/* Primitives                                                              */
/* ---------------------------------------------------------------------- */

/*
 * vsm_unmap_supported - does this kernel accept SPLICE_F_GIFT|SPLICE_F_UNMAP?
 * @pipe_wr: the write end of any pipe.
 *
 * Asks with an empty vmsplice(2) (no page is touched).  Returns 1 when the
 * flag is accepted (pages can move), 0 when the kernel rejects it (every
 * page will be copied), -1 with errno set when @pipe_wr is not usable.
 */
int vsm_unmap_supported(int pipe_wr);

/*
 * vsm_give - put @len bytes at @addr into the pipe @pipe_wr with
 * vmsplice(SPLICE_F_GIFT | SPLICE_F_UNMAP): whole page-aligned private
 * anonymous pages leave the caller (it reads zeros there afterwards).
 * @given: when not NULL, receives the number of bytes that went into the
 *         pipe, also on error: exactly those bytes left the caller.
 *
 * Blocks while the pipe is full; retries on EINTR and continues after short
 * writes (after the bytes already taken: they have left).  Returns @len, or
 * -1 with errno set: EINVAL on a kernel without SPLICE_F_UNMAP (ask
 * vsm_unmap_supported() first, or use vsm_give_copy()), EPIPE when no
 * reader is left (SIGPIPE is raised as for write(2) unless the caller
 * blocks or ignores it).
 */
ssize_t vsm_give(int pipe_wr, void *addr, size_t len, size_t *given);

/*
 * vsm_give_copy - vsm_give() with SPLICE_F_GIFT alone, as every kernel
 * supports: the pages stay mapped and the reader copies them.
 */
ssize_t vsm_give_copy(int pipe_wr, void *addr, size_t len, size_t *given);

/*
 * vsm_take - receive @len bytes from the pipe @pipe_rd into @addr with
 * vmsplice(SPLICE_F_MOVE): gifted whole pages landing on page-aligned
 * private anonymous memory are mapped instead of copied (on a patched
 * kernel; everything else is copied).
 * @taken: when not NULL, receives the number of bytes that arrived, also on
 *         error.
 *
 * Blocks while the pipe is empty; retries on EINTR.  Returns @len, fewer
 * when the writer closed the pipe first, or -1 with errno set.
 */
ssize_t vsm_take(int pipe_rd, void *addr, size_t len, size_t *taken);

/* vsm_take_copy - vsm_take() without SPLICE_F_MOVE: always copies. */
ssize_t vsm_take_copy(int pipe_rd, void *addr, size_t len, size_t *taken);

/*
 * vsm_give_pipes - vsm_give() through @nr pipes in turn: bytes
 * [k * @chunk, (k + 1) * @chunk) of the range go into @pipe_wr[k % @nr].
 * With @chunk what one pipe holds (its F_GETPIPE_SZ for 4 KiB pages, a
 * multiple of the THP size for THPs, which take one slot each) the giver
 * fills one pipe while the taker empties another, so on two CPUs each
 * side's page-table work overlaps the other's instead of taking turns on
 * one pipe's lock.  The taker must use vsm_take_pipes() with the same
 * @nr and @chunk.  Returns and @given as vsm_give(); EINVAL for @nr or
 * @chunk 0.
 */
ssize_t vsm_give_pipes(const int *pipe_wr, unsigned int nr, size_t chunk,
		       void *addr, size_t len, size_t *given);

/*
 * vsm_take_pipes - vsm_take() from @nr pipes in turn, the counterpart of
 * vsm_give_pipes() with the same @nr and @chunk.  Returns fewer than @len
 * when a writer closed its pipe before its chunk was complete.
 */
ssize_t vsm_take_pipes(const int *pipe_rd, unsigned int nr, size_t chunk,
		       void *addr, size_t len, size_t *taken);

/*
 * vsm_alloc - memory that can receive moved pages.
 * @huge: true: 2 MiB aligned and MADV_HUGEPAGE, so that a moved transparent
 *        huge page is mapped with one PMD; false: MADV_NOHUGEPAGE (4 KiB
 *        pages).
 *
 * Private, anonymous, writable, never touched.  Returns NULL with errno set
 * on failure.  Free it with vsm_free(addr, len).
 */
void *vsm_alloc(size_t len, bool huge);

/* vsm_free - unmap memory from vsm_alloc(); NULL is ignored. */
void vsm_free(void *addr, size_t len);

/* The size of a PMD-mapped transparent huge page on this machine (2 MiB). */
size_t vsm_thp_size(void);

/* ---------------------------------------------------------------------- */
/* Counters                                                                */
/* ---------------------------------------------------------------------- */

#define VSM_MAX_REASONS		32
#define VSM_REASON_LEN		32

/*
 * The kernel's vmsplice move counters: every /proc/vmstat line starting
 * "vmsplice_".  They are SYSTEM-WIDE: a before/after delta counts every
 * process's moves in between.  All counts are base pages unless said.
 */
struct vsm_stats {
	bool supported;			/* the kernel has the counters */
	long long unmapped;		/* vmsplice_gift_unmapped */
	long long moved;		/* vmsplice_move_pages */
	long long moved_zero;		/* vmsplice_move_zero_pages */
	long long thp;			/* vmsplice_move_thp (folios) */
	long long large;		/* vmsplice_move_large (folios) */
	long long copied;		/* all fallbacks together */
	int nr_reasons;
	struct {
		char name[VSM_REASON_LEN];	/* e.g. "dst_busy" */
		long long pages;
	} reason[VSM_MAX_REASONS];	/* vmsplice_move_fallback_<name> */
};

/*
 * vsm_stats_read - read the counters into @stats.
 *
 * Returns 0 (stats->supported false on kernels without the counters), or
 * -1 with errno set when /proc/vmstat cannot be read.
 */
int vsm_stats_read(struct vsm_stats *stats);

/*
 * vsm_stats_delta - @after - @before into @delta, field by field; reasons
 * are matched by name (a reason missing from @before counts from zero).
 * Only reasons with a non-zero delta are kept.
 */
void vsm_stats_delta(const struct vsm_stats *before,
		     const struct vsm_stats *after, struct vsm_stats *delta);

/* ---------------------------------------------------------------------- */
/* Probe                                                                   */
/* ---------------------------------------------------------------------- */

/* What happened to one kind of memory given to ourselves. */
enum vsm_probe_result {
	VSM_PROBE_UNTESTED,	/* could not be tried (see .why) */
	VSM_PROBE_COPIED,	/* data arrived, but copied */
	VSM_PROBE_MOVED,	/* data arrived and the pages moved */
	VSM_PROBE_BROKEN,	/* data did not arrive intact: a kernel bug */
};

struct vsm_probe_case {
	enum vsm_probe_result result;
	size_t bytes;		/* how much was given */
	bool src_unmapped;	/* the giver read zeros afterwards */
	long long moved;	/* counter deltas seen (system-wide) */
	long long copied;
	long long thp;
	long long large;
	char why[128];		/* human explanation of the result */
};

struct vsm_probe {
	char kernel[65];		/* uname -r */
	bool unmap_flag;		/* SPLICE_F_GIFT|SPLICE_F_UNMAP accepted */
	bool counters;			/* /proc/vmstat has vmsplice_* */
	bool pfns_visible;		/* /proc/self/pagemap shows PFNs (root) */
	size_t page_size;
	size_t thp_size;		/* 0: no THP support */
	char thp_enabled[16];		/* always | madvise | never | "" */
	size_t mthp_size;		/* smallest enabled mTHP size, 0: none */
	long pipe_max_size;		/* /proc/sys/fs/pipe-max-size */
	struct vsm_probe_case base;	/* 4 KiB pages */
	struct vsm_probe_case thp;	/* one PMD-mapped THP */
	struct vsm_probe_case mthp;	/* one mTHP folio */
};

/*
 * vsm_probe - find out what this kernel does, without privilege.
 *
 * Checks the flag, then gives one page, one THP and one mTHP folio (when an
 * mTHP size is enabled in /sys/kernel/mm/transparent_hugepage) to itself
 * through a pipe and looks at what happened: does the giver read zeros
 * afterwards, did the data arrive, what do the counters say (and the PFNs,
 * when visible).  Returns 0, or -1 with errno set when no pipe could be
 * made.
 */
int vsm_probe(struct vsm_probe *probe);

/* vsm_probe_result_name - "untested", "copied", "moved" or "broken". */
const char *vsm_probe_result_name(enum vsm_probe_result r);

/* ---------------------------------------------------------------------- */
/* Hand-off protocol                                                       */
/* ---------------------------------------------------------------------- */

/* Wire protocol version spoken by this library (see vsm_send(3)). */
#define VSM_PROTO_VERSION	2
/* Limits the receiver enforces by default. */
#define VSM_MAX_REGIONS		4096

/* Region flags. */
#define VSM_REGION_HUGE		0x1u	/* THP-backed: receiver 2 MiB aligns */

/* One region of a hand-off. */
struct vsm_region {
	void *addr;		/* sender: the data; receiver: where it landed */
	size_t len;		/* bytes, any size > 0 */
	unsigned int flags;	/* VSM_REGION_* */
};

/* Which way the pages went. */
enum vsm_path {
	VSM_PATH_MOVE,	/* SPLICE_F_GIFT|SPLICE_F_UNMAP -> SPLICE_F_MOVE */
	VSM_PATH_COPY,	/* SPLICE_F_GIFT -> vmsplice(): the kernel copies */
};

/* Error classes (vsm_report.error); errno-like detail is in .sys_errno. */
enum vsm_error {
	VSM_OK = 0,
	VSM_ESYS,	/* a system call failed (.sys_errno) */
	VSM_ETIMEDOUT,	/* a wait exceeded the timeout */
	VSM_EPROTO,	/* the peer broke the protocol */
	VSM_EPEER,	/* the peer aborted (its reason in .reason) */
	VSM_EREJECT,	/* the receiver refused the announced hand-off */
	VSM_ECLOSED,	/* the peer went away (socket or pipe closed) */
	VSM_EVERIFY,	/* checksum mismatch after arrival */
	VSM_ECANCEL,	/* the progress callback asked to stop */
};

/* What a hand-off did, filled in on success and on failure. */
struct vsm_report {
	enum vsm_error error;
	int sys_errno;		/* for VSM_ESYS / VSM_ETIMEDOUT */
	char reason[160];	/* human-readable, set whenever error != 0 */
	bool local_abort;	/* this side decided to abort */

	enum vsm_path path;
	char path_why[96];	/* why VSM_PATH_COPY */
	unsigned int nr_regions;
	uint64_t total_bytes;	/* announced */
	/*
	 * Sender: bytes that went into the pipe, i.e. left this process
	 * (with VSM_PATH_MOVE their pages read zeros now), counted from the
	 * start of the concatenated regions.  Receiver: bytes it took from
	 * the pipe into its regions.
	 */
	uint64_t bytes;
	/* Sender: bytes the receiver confirmed it took (its last word). */
	uint64_t acked;
	bool verified;		/* receiver: checksums present and matched */
	size_t pipe_size;	/* bytes a pipe held */
	double seconds;		/* data phase, wall clock */

	/*
	 * Counter deltas over the data phase (see vsm_stats: system-wide).
	 * Receiver: moved, zero-filled and copied pages, by reason.
	 * Sender: unmapped.  counters_exclusive is false when the deltas
	 * exceed what this hand-off can account for, i.e. other processes
	 * moved pages at the same time and the numbers are not ours alone.
	 */
	struct vsm_stats stats;
	bool counters_exclusive;

	/*
	 * What happened to this hand-off's pages (receiver; base pages).
	 * From the counter deltas when the kernel has them, clamped to the
	 * pages received; without the change every page is copied.
	 * pages_copied = pages - pages_moved - pages_zero.
	 */
	uint64_t pages;
	uint64_t pages_moved;
	uint64_t pages_zero;
	uint64_t pages_copied;

	unsigned int nr_pipes;	/* pipes the data went through in turn */
};

/*
 * Per-chunk progress: @done of @total bytes given (sender) or taken
 * (receiver) so far.  Return non-zero to abort the hand-off (both sides see
 * VSM_ECANCEL / VSM_EPEER with reason "cancelled").
 */
typedef int (*vsm_progress_fn)(void *arg, uint64_t done, uint64_t total);

struct vsm_send_opts {
	int timeout_ms;		/* every wait; 0: 10000; <0: forever */
	bool checksum;		/* send XXH3-64 checksums of each region */
	bool copy;		/* force the copy path (SPLICE_F_GIFT only) */
	size_t pipe_size;	/* 0: as large as pipe-max-size allows */
	vsm_progress_fn progress;
	void *progress_arg;
	unsigned int pipes;	/* 1 or 2 pipes in turn; 0: 2 */
};

/*
 * vsm_send - hand @nr regions to the receiver at the other end of @sock.
 * @sock: a connected AF_UNIX SOCK_STREAM socket.
 * @regs: the regions, in order; each addr should be page aligned (THP
 *        regions 2 MiB aligned) for the pages to move; anything still goes
 *        across, by copying.
 * @opts: NULL for defaults.
 * @rep:  filled in, also on failure: rep->bytes says exactly which bytes
 *        left this process (the first rep->bytes of the concatenation).
 *
 * Makes two pipes (opts->pipes: one), sends their read ends with
 * SCM_RIGHTS along with a header describing the regions, waits for the
 * receiver to accept, gives the pages in pipe-sized chunks through the
 * pipes in turn (SPLICE_F_GIFT|SPLICE_F_UNMAP, or GIFT alone on kernels
 * without the change: rep->path says which), and waits for the receiver's
 * confirmation.  With two pipes this side fills one while the receiver
 * empties the other: a pipe's lock is held across all the page-table work
 * of filling or emptying it, so through one pipe the two sides take turns.
 * SIGPIPE is blocked in the calling thread while it runs and a SIGPIPE it
 * caused is consumed.  Returns 0, or -1 with rep->error and rep->reason
 * set (VSM_ESYS, EINVAL for opts->pipes > 2).  On failure the receiver is
 * told why.
 */
int vsm_send(int sock, const struct vsm_region *regs, unsigned int nr,
	     const struct vsm_send_opts *opts, struct vsm_report *rep);

/* The receiver's view of an announced region, before it is accepted. */
struct vsm_region_desc {
	unsigned int index;
	uint64_t len;
	unsigned int flags;	/* VSM_REGION_* */
};

/*
 * Destination callback: return where region @d should land (at least
 * d->len bytes; page aligned, private anonymous, writable memory for the
 * pages to move; 2 MiB aligned for VSM_REGION_HUGE), or NULL to refuse the
 * hand-off.  Memory it returns belongs to the caller: vsm_recv_free()
 * leaves it alone.
 */
typedef void *(*vsm_place_fn)(void *arg, const struct vsm_region_desc *d);

struct vsm_recv_opts {
	int timeout_ms;		/* every wait; 0: 10000; <0: forever */
	uint64_t max_bytes;	/* refuse larger hand-offs; 0: no limit */
	unsigned int max_regions; /* 0: VSM_MAX_REGIONS */
	bool copy;		/* take without SPLICE_F_MOVE (always copy) */
	bool require_checksum;	/* refuse a hand-off without checksums */
	vsm_place_fn place;	/* NULL: vsm_alloc() each region */
	void *place_arg;
	vsm_progress_fn progress;
	void *progress_arg;
};

/* What vsm_recv() received. */
struct vsm_received {
	unsigned int nr;
	struct vsm_region *regs; /* nr entries; addr/len/flags as announced */
	bool *owned;		/* regs[i] allocated by the library */
};

/*
 * vsm_recv - receive a hand-off from the sender at the other end of @sock.
 * @sock: a connected AF_UNIX SOCK_STREAM socket.
 * @opts: NULL for defaults.
 * @out:  the regions; on failure, those that were set up, holding the
 *        first rep->bytes of the stream (the rest reads zeros).  Release
 *        with vsm_recv_free() in both cases.
 * @rep:  filled in, also on failure.
 *
 * Validates the header completely before accepting anything (magic,
 * version, sizes, counts, overflow, limits, the passed descriptor), then
 * takes the pages with SPLICE_F_MOVE, verifies checksums when sent, checks
 * that nothing beyond what was announced follows, and confirms to the
 * sender.  Returns 0, or -1 with rep->error and rep->reason set.
 */
int vsm_recv(int sock, const struct vsm_recv_opts *opts,
	     struct vsm_received *out, struct vsm_report *rep);

/* vsm_recv_free - unmap the regions vsm_recv() allocated, free @out. */
void vsm_recv_free(struct vsm_received *out);

/* vsm_error_name - a short name for @e ("ok", "timeout", ...). */
const char *vsm_error_name(enum vsm_error e);

/* vsm_checksum - the XXH3-64 checksum the protocol uses, of @len bytes. */
uint64_t vsm_checksum(const void *addr, size_t len);

#ifdef __cplusplus
}
#endif
#endif
