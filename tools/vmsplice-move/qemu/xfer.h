/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Moving guest RAM between two QEMU processes through pipes, by making the
 * processes themselves vmsplice (syscall injection, inject.h).
 *
 * The source gives (vmsplice SPLICE_F_GIFT | SPLICE_F_UNMAP) every present
 * page of every block into pipes that it holds itself (their fds are
 * installed into it with pidfd_getfd), so the pages survive this tool's
 * death and the destination's.  The destination takes them (vmsplice
 * SPLICE_F_MOVE) into the same offsets of its own blocks.  A ledger says,
 * per pipe, which block ranges went in, in order, and how many bytes have
 * been taken out, so any state can be undone: vsm_xfer_return() moves the
 * pages still in pipes back into the source, and the ones already taken
 * back from the destination.
 *
 * On a kernel without SPLICE_F_UNMAP the source gives with SPLICE_F_GIFT
 * and then drops its mapping of the given pages (MADV_DONTNEED): the pipe
 * holds the only reference, exactly as after an unmapping gift, and the
 * destination's read copies.  Same states, same ledger, same recovery.
 */
#ifndef VSM_QEMU_XFER_H
#define VSM_QEMU_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vsm_victim;

#ifndef SPLICE_F_UNMAP
#define SPLICE_F_UNMAP 0x10
#endif

/* One guest RAM block present in both processes. */
struct vsm_mblock {
	char name[256];
	uint64_t src, dst;	/* host addresses */
	uint64_t len;		/* used_length */
};

/* A range of a block that went into a pipe. */
struct vsm_seg {
	int block;
	uint64_t off, len;
};

struct vsm_xpipe {
	int rfd, wfd;		/* this tool's ends (-1 when not held) */
	int src_r, src_w;	/* fd numbers in the source (-1: none) */
	int dst_r, dst_w;	/* fd numbers in the destination (-1: none) */
	uint64_t given, taken;	/* bytes in, bytes taken out by the dest */
	int nseg, capseg;
	struct vsm_seg *seg;
	bool backup;		/* holds references to the destination's pages */
	/*
	 * While returning: the pipe's content is bytes [a_start, given) of
	 * its ledger; of the bytes [0, taken) the destination had, [0, back)
	 * are back in the source.
	 */
	uint64_t a_start, back;
	uint64_t b_inpipe;	/* recovery: given back, not yet read back */
	/* Where the next gift into this pipe starts (write-ahead). */
	int next_block;
	uint64_t next_off;
};

enum vsm_xfer_hook { VSM_HOOK_GIVE, VSM_HOOK_TAKE, VSM_HOOK_RETURN };

struct vsm_xfer {
	int nblocks;
	struct vsm_mblock *blocks;
	int npipes, cappipes;
	struct vsm_xpipe *pipes;
	size_t pipe_size;	/* bytes per pipe (F_SETPIPE_SZ) */
	int pipes_per_batch;
	bool unmap;		/* the kernel has SPLICE_F_UNMAP */
	bool sparse;		/* give only present (or swapped) pages */
	long src_pidfd, dst_pidfd;	/* this tool's pidfd in each victim */
	/* A datagram socket pair per victim, to pass fds with SCM_RIGHTS. */
	int src_sock, dst_sock;		/* the victim's end (fd number there) */
	int src_sock_tool, dst_sock_tool;	/* this tool's end */
	uint64_t total;		/* bytes to give (present pages) */
	uint64_t given_total, taken_total, returned_total;
	uint64_t unmapped_total;	/* given and no longer mapped by the source */
	uint64_t lost;		/* bytes that could not be returned */
	bool backed_up;		/* backup pipes cover everything taken */
	uint64_t backup_total;
	/*
	 * Called after every injected vmsplice (for the journal, progress
	 * and failure injection); a non-zero return aborts the operation.
	 */
	int (*hook)(struct vsm_xfer *x, enum vsm_xfer_hook what, void *arg);
	void *hook_arg;
	char err[512];
};

/* Whether this kernel accepts SPLICE_F_UNMAP (the move path). */
bool vsm_kernel_has_unmap(void);

void vsm_xfer_init(struct vsm_xfer *x);
void vsm_xfer_free(struct vsm_xfer *x);

/* Count the bytes to give (present pages of @src's blocks). */
int vsm_xfer_plan(struct vsm_xfer *x, pid_t src_pid);

/* Give every planned range from the seized source into pipes. */
int vsm_xfer_give(struct vsm_xfer *x, struct vsm_victim *src);

/* Take everything from the pipes into the seized destination. */
int vsm_xfer_take(struct vsm_xfer *x, struct vsm_victim *dst);

/*
 * Backup: the destination vmsplices (without gifting) every page it took
 * into further pipes, held by the source.  The pipes keep references to
 * those pages, so if the destination dies before it resumes the VM, the
 * source can still copy its RAM back.  Needs both seized.
 */
int vsm_xfer_backup(struct vsm_xfer *x, struct vsm_victim *src,
		    struct vsm_victim *dst);

/*
 * Undo: put every given byte back into the source (seized), from the pipes
 * and, for bytes the destination took, from @dst (seized; NULL when it is
 * gone: those bytes are lost and counted in x->lost).  0 when all came
 * back.
 */
int vsm_xfer_return(struct vsm_xfer *x, struct vsm_victim *src,
		    struct vsm_victim *dst);

/*
 * Recovery, giving back from the destination: skip the pages the
 * destination no longer has (returned before this tool died).
 */
void vsm_xfer_skip_returned(struct vsm_xfer *x, pid_t dst_pid);

/* Bytes waiting in pipe @p (FIONREAD on this tool's end), or -1. */
long long vsm_xfer_pipe_bytes(const struct vsm_xpipe *p);

#endif
