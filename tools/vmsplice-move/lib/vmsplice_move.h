/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libvmsplice-move: hand memory from one process to another through a pipe,
 * moving whole pages where the kernel supports vmsplice(SPLICE_F_MOVE) and
 * copying otherwise.  The data arrives intact either way; the counters say
 * which happened.
 */
#ifndef VMSPLICE_MOVE_LIB_H
#define VMSPLICE_MOVE_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * vsm_give - give @len bytes at @addr to whoever reads @pipe_wr.
 *
 * vmsplice(SPLICE_F_GIFT | SPLICE_F_MOVE) until everything is in the pipe,
 * blocking while the pipe is full.  Whole, page-aligned pages of private
 * anonymous memory are unmapped from the caller: it reads zeros there
 * afterwards.  Returns @len, or -1 with errno set; on error some bytes may
 * have been given (*@given says how many when not NULL).
 */
ssize_t vsm_give(int pipe_wr, void *addr, size_t len, size_t *given);

/*
 * vsm_take - receive @len bytes from @pipe_rd into @addr.
 *
 * vmsplice(SPLICE_F_MOVE) until @len bytes arrived: gifted whole pages land
 * in page-aligned private anonymous memory without a copy, the rest is
 * copied.  Returns @len, fewer at end of file, or -1 with errno set
 * (*@taken says how many arrived when not NULL).
 */
ssize_t vsm_take(int pipe_rd, void *addr, size_t len, size_t *taken);

/*
 * vsm_alloc - memory that can receive moved pages: private, anonymous,
 * page aligned and writable.  @huge asks for transparent huge pages
 * (MADV_HUGEPAGE), otherwise 4 KiB pages (MADV_NOHUGEPAGE).  Returns NULL
 * with errno set on failure; free it with munmap().
 */
void *vsm_alloc(size_t len, bool huge);

/* vsm_take() without SPLICE_F_MOVE: always copies. */
ssize_t vsm_take_copy(int pipe_rd, void *addr, size_t len, size_t *taken);

/* The kernel's vmsplice move counters (/proc/vmstat). */
struct vsm_stats {
	bool supported;			/* the kernel has the counters */
	long long unmapped;		/* pages unmapped from givers */
	long long moved;		/* pages mapped into takers */
	long long moved_zero;		/* zero pages delivered by clearing */
	long long copied;		/* pages copied, all reasons together */
	long long fallback[16];		/* pages copied, by reason */
};

#define VSM_NR_REASONS	12
extern const char *const vsm_reason_names[VSM_NR_REASONS];

/* Read the counters; stats->supported is false on kernels without them. */
int vsm_stats_read(struct vsm_stats *stats);

/* @after - @before, field by field, into @delta. */
void vsm_stats_delta(const struct vsm_stats *before,
		     const struct vsm_stats *after, struct vsm_stats *delta);

#endif
