/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmsplice(SPLICE_F_MOVE): moving gifted anonymous pages from the process
 * that vmsplice()d them into a pipe to the process that vmsplice()s them
 * out of it.  See Documentation/mm/vmsplice-move.rst.
 */
#ifndef _LINUX_VMSPLICE_MOVE_H
#define _LINUX_VMSPLICE_MOVE_H

#include <linux/types.h>
#include <linux/uio.h>

struct mem_cgroup;
struct mm_struct;
struct page;
struct vm_area_struct;

/*
 * What happened to one pipe buffer read with SPLICE_F_MOVE.  The order
 * matches the vmsplice_move_* events of enum vm_event_item.
 */
enum vmsplice_move_result {
	VMSPLICE_MOVED,			/* page mapped into the reader */
	VMSPLICE_MOVED_ZERO,		/* gifted zero page: destination cleared */
	VMSPLICE_FB_NOT_GIFT,		/* not a page vmsplice() was gifted */
	VMSPLICE_FB_PARTIAL,		/* not a whole page, or unaligned target */
	VMSPLICE_FB_DST_VMA,		/* target not private anon writable */
	VMSPLICE_FB_NOT_ANON,		/* page cache or shmem page */
	VMSPLICE_FB_KSM,		/* KSM page */
	VMSPLICE_FB_LARGE,		/* part of a large folio (THP) */
	VMSPLICE_FB_MAPPED,		/* still mapped by the giver or a child */
	VMSPLICE_FB_PINNED,		/* source or target page DMA-pinned */
	VMSPLICE_FB_REFS,		/* referenced elsewhere (tee, GUP, ...) */
	VMSPLICE_FB_SWAPCACHE,		/* in the swap cache */
	VMSPLICE_FB_MEMCG,		/* charged to another memory cgroup */
	VMSPLICE_FB_BUSY,		/* lock contended, raced, out of memory */
	NR_VMSPLICE_MOVE_RESULTS
};

/**
 * struct vmsplice_move - state of one vmsplice(SPLICE_F_MOVE) read
 * @mm: the reader's mm
 * @memcg: the reader's memory cgroup (a reference is held)
 * @vma: last destination VMA; only valid while @locked
 * @vma_result: what vmsplice_check_dst_vma() said of @vma
 * @locked: whether the mmap_lock of @mm is held for read
 * @iter: the reader's iovec
 *
 * The mmap_lock is taken on the first page moved and dropped by
 * vmsplice_move_unlock() before the caller copies (a fault in the copy
 * would take the mmap_lock again) or sleeps on the pipe.
 */
struct vmsplice_move {
	struct mm_struct *mm;
	struct mem_cgroup *memcg;
	struct vm_area_struct *vma;
	int vma_result;
	bool locked;
	struct iov_iter *iter;
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
void vmsplice_unmap_gift(const struct iov_iter *from, size_t bytes);
void vmsplice_move_begin(struct vmsplice_move *vm, struct iov_iter *iter);
int vmsplice_move_page(struct vmsplice_move *vm, struct page *page,
		       unsigned long addr);
void vmsplice_move_unlock(struct vmsplice_move *vm);
void vmsplice_move_end(struct vmsplice_move *vm);
void vmsplice_move_account(struct page *page, unsigned long addr, int result);
#else
static inline void vmsplice_unmap_gift(const struct iov_iter *from,
				       size_t bytes) { }
static inline void vmsplice_move_begin(struct vmsplice_move *vm,
				       struct iov_iter *iter)
{
	vm->iter = iter;
}

static inline int vmsplice_move_page(struct vmsplice_move *vm,
				     struct page *page, unsigned long addr)
{
	return VMSPLICE_FB_DST_VMA;
}

static inline void vmsplice_move_unlock(struct vmsplice_move *vm) { }
static inline void vmsplice_move_end(struct vmsplice_move *vm) { }
static inline void vmsplice_move_account(struct page *page,
					 unsigned long addr, int result) { }
#endif

#endif /* _LINUX_VMSPLICE_MOVE_H */
