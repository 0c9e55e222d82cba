/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Moving anonymous pages through a pipe with vmsplice(): the giver
 * vmsplice()s with SPLICE_F_GIFT | SPLICE_F_UNMAP and its whole pages leave
 * its address space; a taker that vmsplice()s from the pipe with
 * SPLICE_F_MOVE gets those same pages mapped, or a copy where moving is not
 * provably safe.  See Documentation/mm/vmsplice-move.rst.
 */
#ifndef _LINUX_VMSPLICE_MOVE_H
#define _LINUX_VMSPLICE_MOVE_H

#include <linux/types.h>
#include <linux/uio.h>

struct mem_cgroup;
struct mm_struct;
struct page;
struct pipe_inode_info;
struct vm_area_struct;

/*
 * What happened to the pages of a pipe buffer read with SPLICE_F_MOVE.  The
 * order matches the vmsplice_move_* events of enum vm_event_item, which
 * count base pages.
 */
enum vmsplice_move_result {
	VMSPLICE_MOVED,			/* mapped into the reader */
	VMSPLICE_MOVED_ZERO,		/* gifted zero page: destination cleared */
	VMSPLICE_FB_NOT_GIFT,		/* not a buffer given with SPLICE_F_UNMAP */
	VMSPLICE_FB_PARTIAL,		/* not all of it, or unaligned target */
	VMSPLICE_FB_DST_VMA,		/* target not private anon writable */
	VMSPLICE_FB_DST_BUSY,		/* target page in use, cannot replace */
	VMSPLICE_FB_NOT_ANON,		/* page cache, shmem or device page */
	VMSPLICE_FB_KSM,		/* KSM page */
	VMSPLICE_FB_LARGE,		/* part of a large folio, not all given */
	VMSPLICE_FB_MAPPED,		/* still mapped by the giver or a child */
	VMSPLICE_FB_PINNED,		/* DMA-pinned */
	VMSPLICE_FB_REFS,		/* referenced elsewhere (tee, GUP, ...) */
	VMSPLICE_FB_SWAPCACHE,		/* in the swap cache, still swapped */
	VMSPLICE_FB_MEMCG,		/* charged to another memory cgroup */
	VMSPLICE_FB_NUMA,		/* on a node the reader may not use */
	VMSPLICE_FB_HWPOISON,		/* hardware-poisoned */
	VMSPLICE_FB_BUSY,		/* lock contended, raced, out of memory */
	NR_VMSPLICE_MOVE_RESULTS
};

/**
 * struct vmsplice_move - state of one vmsplice(SPLICE_F_MOVE) read
 * @mm: the reader's mm
 * @memcg: the reader's memory cgroup (a reference is held)
 * @iter: the reader's iovec, advanced by the caller as buffers are consumed
 * @vma: last destination VMA; only valid while @locked
 * @vma_result: what the destination checks said of @vma
 * @locked: whether the mmap_lock of @mm is held for read
 * @drained: whether the per-CPU LRU batches were drained during this read
 *
 * The mmap_lock is taken on the first buffer that may be moved and dropped
 * by vmsplice_move_unlock() before the caller confirms, copies or releases
 * any other buffer (which may wait for I/O or fault) or sleeps on the pipe.
 */
struct vmsplice_move {
	struct mm_struct *mm;
	struct mem_cgroup *memcg;
	struct iov_iter *iter;
	struct vm_area_struct *vma;
	int vma_result;
	bool locked;
	bool drained;
};

/**
 * vmsplice_iter_seg_len - bytes left in the current segment of @iter
 * @iter: a user-backed iov_iter
 *
 * iter_iov_len() is only right for ITER_IOVEC: for ITER_UBUF (a
 * one-segment vmsplice) the count already excludes what was consumed.
 *
 * Return: the length of the current segment from the current position.
 */
static inline size_t vmsplice_iter_seg_len(const struct iov_iter *iter)
{
	if (iter_is_ubuf(iter))
		return iov_iter_count(iter);
	return min(iter_iov(iter)->iov_len - iter->iov_offset,
		   iov_iter_count(iter));
}

#ifdef CONFIG_MMU
ssize_t vmsplice_gift_to_pipe(struct pipe_inode_info *pipe,
			      struct iov_iter *from);
void vmsplice_move_begin(struct vmsplice_move *vm, struct iov_iter *iter);
size_t vmsplice_move_bufs(struct vmsplice_move *vm,
			  struct pipe_inode_info *pipe, size_t max,
			  int *result);
void vmsplice_move_unlock(struct vmsplice_move *vm);
void vmsplice_move_end(struct vmsplice_move *vm);
void vmsplice_move_account(struct page *page, unsigned long addr,
			   size_t bytes, int result);
#else
static inline ssize_t vmsplice_gift_to_pipe(struct pipe_inode_info *pipe,
					    struct iov_iter *from)
{
	return -EINVAL;
}

static inline void vmsplice_move_begin(struct vmsplice_move *vm,
				       struct iov_iter *iter)
{
	vm->iter = iter;
}

static inline size_t vmsplice_move_bufs(struct vmsplice_move *vm,
					struct pipe_inode_info *pipe,
					size_t max, int *result)
{
	*result = VMSPLICE_FB_DST_VMA;
	return 0;
}

static inline void vmsplice_move_unlock(struct vmsplice_move *vm) { }
static inline void vmsplice_move_end(struct vmsplice_move *vm) { }
static inline void vmsplice_move_account(struct page *page,
					 unsigned long addr, size_t bytes,
					 int result) { }
#endif

#endif /* _LINUX_VMSPLICE_MOVE_H */
