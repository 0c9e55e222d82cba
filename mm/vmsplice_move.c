// SPDX-License-Identifier: GPL-2.0
/*
 * vmsplice(SPLICE_F_MOVE): hand anonymous pages from one process to another
 * through a pipe without copying them.
 *
 * The giver vmsplice()s whole pages with SPLICE_F_GIFT | SPLICE_F_MOVE: the
 * pages go into the pipe as usual and are then unmapped from the giver, as
 * MADV_DONTNEED would.  A taker that vmsplice()s from the pipe with
 * SPLICE_F_MOVE gets each such page mapped at the destination address when
 * nobody else can see the page any more; in every other case the page is
 * copied as before.  fs/splice.c decides which pipe buffers qualify (it owns
 * the buffer operations); this file does the mm work and every check on
 * the folio and the destination.
 *
 * The move itself follows UFFDIO_MOVE (mm/userfaultfd.c): the folio is
 * locked, its anon_vma and index are pointed at the destination
 * (folio_move_anon_rmap()), and it is mapped exclusively.  Unlike
 * UFFDIO_MOVE the two ends are different mms, so the memory cgroup and the
 * RSS counters are checked and updated here.
 */
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/mm_inline.h>
#include <linux/mman.h>
#include <linux/mmap_lock.h>
#include <linux/mmu_context.h>
#include <linux/pagemap.h>
#include <linux/rmap.h>
#include <linux/swap.h>
#include <linux/uio.h>
#include <linux/userfaultfd_k.h>
#include <linux/vmsplice_move.h>
#include <asm/tlbflush.h>

#define CREATE_TRACE_POINTS
#include <trace/events/vmsplice.h>

#include "internal.h"

/* ---------------------------------------------------------------- giver */

/*
 * A gifted page is unmapped only where MADV_DONTNEED could unmap it, and
 * only in private mappings:
 *  - VM_SHARED: the pages belong to a file or shmem object that others can
 *    still reach; unmapping would hide nothing from them and move nothing.
 *  - VM_LOCKED: mlock() promised the range stays mapped (MADV_DONTNEED
 *    refuses it too).
 *  - hugetlb, PFNMAP, IO, MIXEDMAP, DROPPABLE: not ordinary anonymous
 *    memory; their pages are never moved, so leave them alone.
 *  - mseal()ed read-only anonymous memory may not be discarded, which is
 *    what unmapping it would do.
 * Pages left mapped are simply copied by the taker (folio_mapped()).
 */
static bool vmsplice_vma_may_unmap(struct vm_area_struct *vma)
{
	if (vma->vm_flags & (VM_SHARED | VM_LOCKED | VM_HUGETLB | VM_PFNMAP |
			     VM_IO | VM_MIXEDMAP | VM_DROPPABLE))
		return false;
	return can_modify_vma_madv(vma, MADV_DONTNEED);
}

/* Unmap [start, end) of @mm wherever the VMA allows; count the pages. */
static unsigned long vmsplice_unmap_range(struct mm_struct *mm,
					  unsigned long start,
					  unsigned long end)
{
	VMA_ITERATOR(vmi, mm, start);
	struct vm_area_struct *vma;
	unsigned long nr = 0;

	for_each_vma_range(vmi, vma, end) {
		unsigned long s = max(start, vma->vm_start);
		unsigned long e = min(end, vma->vm_end);

		if (!vmsplice_vma_may_unmap(vma))
			continue;
		/*
		 * One mmu_gather, one mmu-notifier range and one TLB flush
		 * for the whole range; this also drains the local LRU
		 * batches, so the pipe's reference is the folio's last.
		 */
		zap_page_range_single(vma, s, e - s, NULL);
		nr += (e - s) >> PAGE_SHIFT;
	}
	return nr;
}

/**
 * vmsplice_unmap_gift - unmap pages just gifted to a pipe from the giver
 * @from: the giver's iov_iter as it was before the pages were added
 * @bytes: how many bytes of it went into the pipe
 *
 * Called by vmsplice(SPLICE_F_GIFT | SPLICE_F_MOVE) with the pipe locked,
 * before readers are woken, so that a reader finds the pages unmapped.
 * Only whole, page-aligned pages are unmapped; adjacent segments are
 * merged so that a many-segment iovec costs one zap per contiguous range,
 * all under a single mmap_lock.  Partial pages stay mapped (and are
 * copied by the reader).
 */
void vmsplice_unmap_gift(const struct iov_iter *from, size_t bytes)
{
	struct mm_struct *mm = current->mm;
	struct iov_iter it = *from;
	unsigned long start = 0, end = 0, nr = 0;

	if (!user_backed_iter(&it) || !mm)
		return;

	mmap_read_lock(mm);
	while (bytes && iov_iter_count(&it)) {
		unsigned long addr = (unsigned long)iter_iov_addr(&it);
		size_t len = min(vmsplice_iter_seg_len(&it), bytes);
		unsigned long s = PAGE_ALIGN(addr);
		unsigned long e = (addr + len) & PAGE_MASK;

		if (s < e) {
			if (s != end) {
				if (start < end)
					nr += vmsplice_unmap_range(mm, start, end);
				start = s;
			}
			end = e;
		}
		iov_iter_advance(&it, len);
		bytes -= len;
	}
	if (start < end)
		nr += vmsplice_unmap_range(mm, start, end);
	mmap_read_unlock(mm);

	count_vm_events(VMSPLICE_GIFT_UNMAPPED, nr);
}

/* ---------------------------------------------------------------- taker */

/**
 * vmsplice_move_begin - start a vmsplice(SPLICE_F_MOVE) read
 * @vm: state to initialise
 * @iter: the reader's destination
 */
void vmsplice_move_begin(struct vmsplice_move *vm, struct iov_iter *iter)
{
	vm->mm = current->mm;
	vm->memcg = get_mem_cgroup_from_mm(vm->mm);
	vm->vma = NULL;
	vm->locked = false;
	vm->iter = iter;
}

/**
 * vmsplice_move_unlock - drop the reader's mmap_lock if held
 * @vm: the read
 *
 * Must be called before copying to user memory and before sleeping.
 */
void vmsplice_move_unlock(struct vmsplice_move *vm)
{
	if (vm->locked) {
		mmap_read_unlock(vm->mm);
		vm->locked = false;
		vm->vma = NULL;
	}
}

/**
 * vmsplice_move_end - finish a vmsplice(SPLICE_F_MOVE) read
 * @vm: the read
 */
void vmsplice_move_end(struct vmsplice_move *vm)
{
	vmsplice_move_unlock(vm);
	mem_cgroup_put(vm->memcg);
}

/**
 * vmsplice_move_account - count and trace what happened to one buffer
 * @page: the buffer's page
 * @addr: the destination address
 * @result: an enum vmsplice_move_result
 */
void vmsplice_move_account(struct page *page, unsigned long addr, int result)
{
	BUILD_BUG_ON(VMSPLICE_MOVE_FALLBACK_BUSY - VMSPLICE_MOVE_PAGES + 1 !=
		     NR_VMSPLICE_MOVE_RESULTS);
	count_vm_event(VMSPLICE_MOVE_PAGES + result);
	trace_vmsplice_move(addr, page_to_pfn(page), result);
}

/*
 * The destination must be memory the reader owns privately, where a page
 * can be installed exactly as an anonymous fault would install one.
 */
static int vmsplice_check_dst_vma(struct vm_area_struct *vma)
{
	/*
	 * Private anonymous only: a shared or file mapping's pages belong to
	 * the file or shmem object (other processes would see the page), and
	 * a private file mapping would need the COW state of each page.
	 */
	if (!vma_is_anonymous(vma) || (vma->vm_flags & VM_SHARED))
		return VMSPLICE_FB_DST_VMA;
	/*
	 * A move writes the destination: it needs the right to write, by the
	 * VMA and by the reader's protection keys, exactly as the copy (whose
	 * fault would fail with EFAULT) does.
	 */
	if (!(vma->vm_flags & VM_WRITE) ||
	    !arch_vma_access_permitted(vma, true, false, false))
		return VMSPLICE_FB_DST_VMA;
	/*
	 * mlock()ed memory stays mapped: replacing a page would zap a locked
	 * range, which MADV_DONTNEED refuses.  hugetlb and the special
	 * mappings have no anonymous rmap to install into.
	 */
	if (vma->vm_flags & (VM_LOCKED | VM_HUGETLB | VM_PFNMAP | VM_IO |
			     VM_MIXEDMAP | VM_DROPPABLE))
		return VMSPLICE_FB_DST_VMA;
	/*
	 * userfaultfd: the monitor must see the missing, minor and
	 * write-protect faults a copy raises; a move would bypass them.
	 */
	if (userfaultfd_armed(vma))
		return VMSPLICE_FB_DST_VMA;
	return VMSPLICE_MOVED;
}

/*
 * Make the destination page empty: whatever was mapped there (an old page,
 * the zero page, a swap entry) is unmapped as MADV_DONTNEED would, because
 * it is about to be replaced whole.  A DMA-pinned page is not replaced: a
 * device writing into it expects the data there, so it is copied into.
 */
static int vmsplice_clear_dst(struct vm_area_struct *vma, unsigned long addr)
{
	struct mm_struct *mm = vma->vm_mm;
	struct folio *folio = NULL;
	spinlock_t *ptl;	/* the PTE table's lock */
	pmd_t *pmd, pmdval;
	pte_t *pte, ptent;
	bool populated;

	pmd = mm_find_pmd(mm, addr);
	if (!pmd)
		return VMSPLICE_MOVED;
	pmdval = pmdp_get_lockless(pmd);
	if (pmd_none(pmdval))
		return VMSPLICE_MOVED;
	if (pmd_trans_huge(pmdval)) {
		bool pinned = false;

		/* The PMD lock keeps the THP from being freed meanwhile. */
		ptl = pmd_lock(mm, pmd);
		pmdval = pmdp_get(pmd);
		if (pmd_trans_huge(pmdval) && pmd_present(pmdval))
			pinned = folio_maybe_dma_pinned(page_folio(pmd_page(pmdval)));
		spin_unlock(ptl);
		if (pinned)
			return VMSPLICE_FB_PINNED;
		/* Zapping one page of a PMD-mapped THP splits the PMD. */
		zap_page_range_single(vma, addr, PAGE_SIZE, NULL);
		return VMSPLICE_MOVED;
	}

	pte = pte_offset_map_lock(mm, pmd, addr, &ptl);
	if (!pte)
		return VMSPLICE_FB_BUSY;	/* the PMD changed under us */
	ptent = ptep_get(pte);
	populated = !pte_none(ptent);
	if (pte_present(ptent)) {
		struct page *page = vm_normal_page(vma, addr, ptent);

		if (page)
			folio = page_folio(page);
	}
	if (folio && folio_maybe_dma_pinned(folio)) {
		pte_unmap_unlock(pte, ptl);
		return VMSPLICE_FB_PINNED;
	}
	pte_unmap_unlock(pte, ptl);

	if (populated)
		zap_page_range_single(vma, addr, PAGE_SIZE, NULL);
	return VMSPLICE_MOVED;
}

/*
 * Find or allocate the page table for @addr, as userfaultfd's
 * mfill_atomic() does.  NULL when out of memory or when a huge PMD maps
 * @addr (the caller splits it by clearing the page, or copies).
 */
static pmd_t *vmsplice_dst_pmd(struct mm_struct *mm, unsigned long addr)
{
	pgd_t *pgd = pgd_offset(mm, addr);
	p4d_t *p4d;
	pud_t *pud;
	pmd_t *pmd, pmdval;

	p4d = p4d_alloc(mm, pgd, addr);
	if (!p4d)
		return NULL;
	pud = pud_alloc(mm, p4d, addr);
	if (!pud)
		return NULL;
	pmd = pmd_alloc(mm, pud, addr);
	if (!pmd)
		return NULL;
	pmdval = pmdp_get_lockless(pmd);
	if (unlikely(pmd_none(pmdval)) && unlikely(__pte_alloc(mm, pmd)))
		return NULL;
	pmdval = pmdp_get_lockless(pmd);
	if (unlikely(!pmd_present(pmdval) || pmd_trans_huge(pmdval) ||
		     pmd_devmap(pmdval) || pmd_bad(pmdval)))
		return NULL;
	return pmd;
}

/*
 * Checks on the folio that must hold for it to change owner.  Called once
 * without the folio lock to fail fast, and again with it held, where
 * nothing checked here can change any more: the folio is unmapped, so no
 * page-table walk (GUP, KSM, fork) can find it, and reclaim, migration and
 * swap need the folio lock.
 */
static int vmsplice_check_folio(struct vmsplice_move *vm, struct folio *folio,
				bool locked)
{
	/*
	 * Page cache and shmem pages belong to their file, which others can
	 * still read and write: never hand them to one process.
	 */
	if (!folio_test_anon(folio))
		return VMSPLICE_FB_NOT_ANON;
	/* Device memory belongs to its driver's pgmap, not to a process. */
	if (folio_is_zone_device(folio))
		return VMSPLICE_FB_NOT_ANON;
	/* KSM pages are shared by content and use the stable tree's rmap. */
	if (folio_test_ksm(folio))
		return VMSPLICE_FB_KSM;
	/* A THP's pages can only move together (not done here yet). */
	if (folio_test_large(folio))
		return VMSPLICE_FB_LARGE;
	/*
	 * Pinned for DMA (O_DIRECT, io_uring fixed buffers, RDMA): a device
	 * may still write into the page after the reader starts using it.
	 */
	if (folio_maybe_dma_pinned(folio))
		return VMSPLICE_FB_PINNED;
	/*
	 * Still mapped: the giver did not unmap it (GIFT without MOVE, a
	 * range it may not unmap) or a forked child shares it copy-on-write.
	 * Mapping it writable here would let them see the reader's writes.
	 */
	if (folio_mapped(folio))
		return VMSPLICE_FB_MAPPED;
	/*
	 * Reclaim put it in the swap cache, which refers to it (and holds a
	 * reference: tested before the count so the reason is reported).
	 */
	if (folio_test_swapcache(folio))
		return VMSPLICE_FB_SWAPCACHE;
	/*
	 * The pipe buffer must hold the only reference.  Any other one is a
	 * user of the page we cannot see: the same page in another pipe
	 * buffer (tee(), or vmspliced twice) that would later hand our
	 * writes to another reader, a GUP user, an LRU batch in flight.
	 */
	if (folio_ref_count(folio) != 1)
		return VMSPLICE_FB_REFS;
	if (!locked)
		return VMSPLICE_MOVED;

	/*
	 * Off the LRU with no other reference: nobody would ever reclaim it
	 * once mapped.  Should not happen; copying is always safe.
	 */
	if (!folio_test_lru(folio) || folio_test_mlocked(folio))
		return VMSPLICE_FB_BUSY;
	/*
	 * Lazily freed (MADV_FREE) and not written since: it sits on the file
	 * LRU and reclaim may drop it; its swapbacked flag can only change
	 * while isolated from the LRU.  A copy gives the reader a normal page.
	 */
	if (!folio_test_swapbacked(folio))
		return VMSPLICE_FB_BUSY;
	/*
	 * The charge stays with the folio's memcg: moving it into another
	 * memcg's process would let it use memory its limits do not see.
	 * (folio_memcg() is stable with the folio locked.)
	 */
	if (folio_memcg(folio) != vm->memcg)
		return VMSPLICE_FB_MEMCG;
	return VMSPLICE_MOVED;
}

/* Map @folio, unmapped and with only the pipe's reference, at @addr. */
static int vmsplice_install(struct vmsplice_move *vm,
			    struct vm_area_struct *vma, struct folio *folio,
			    unsigned long addr)
{
	struct mm_struct *mm = vm->mm;
	struct page *page = folio_page(folio, 0);
	spinlock_t *ptl;	/* the PTE table's lock */
	pte_t *pte, entry;
	pmd_t *pmd;
	int ret;

	bool cleared = false;

	/*
	 * Usually the destination is empty and one walk does.  Otherwise
	 * clear it (which also splits a huge PMD) and walk once more; if it
	 * is populated again, another thread faulted it in: copy.
	 */
	for (;;) {
		pmd = vmsplice_dst_pmd(mm, addr);
		pte = pmd ? pte_offset_map_lock(mm, pmd, addr, &ptl) : NULL;
		if (pte && pte_none(ptep_get(pte)))
			break;
		if (pte)
			pte_unmap_unlock(pte, ptl);
		if (cleared)
			return VMSPLICE_FB_BUSY;
		ret = vmsplice_clear_dst(vma, addr);
		if (ret)
			return ret;
		cleared = true;
	}
	/* Whoever holds the folio lock (reclaim, migration) owns it now. */
	if (!folio_trylock(folio)) {
		ret = VMSPLICE_FB_BUSY;
		goto out_unlock_pte;
	}
	ret = vmsplice_check_folio(vm, folio, true);
	if (ret)
		goto out_unlock_folio;

	/*
	 * The rmap must describe the new owner before the page is mapped:
	 * the anon_vma and index still name the giver's VMA (the 2013 RFC
	 * kept them, breaking rmap walks of the moved page).
	 */
	folio_move_anon_rmap(folio, vma);
	WRITE_ONCE(folio->index, linear_page_index(vma, addr));

	/* The mapping's reference; the pipe buffer drops its own. */
	folio_get(folio);
	add_mm_counter(mm, MM_ANONPAGES, 1);
	folio_add_anon_rmap_pte(folio, page, vma, addr, RMAP_EXCLUSIVE);

	/* As do_anonymous_page(): young, dirty (and soft-dirty), writable. */
	entry = mk_pte(page, vma->vm_page_prot);
	entry = pte_sw_mkyoung(entry);
	entry = pte_mkwrite(pte_mkdirty(entry), vma);
	set_pte_at(mm, addr, pte, entry);
	update_mmu_cache(vma, addr, pte);
	ret = VMSPLICE_MOVED;

out_unlock_folio:
	folio_unlock(folio);
out_unlock_pte:
	pte_unmap_unlock(pte, ptl);
	return ret;
}

/**
 * vmsplice_move_page - map a gifted pipe page at a reader's address
 * @vm: the read
 * @page: the page of a whole-page gifted pipe buffer
 * @addr: page-aligned destination address in the reader
 *
 * The caller has checked the pipe buffer (vmsplice gift, whole page) and
 * the alignment of @addr.  On success the page is mapped at @addr with a
 * reference of its own, and the caller releases the pipe buffer.
 *
 * Return: %VMSPLICE_MOVED or %VMSPLICE_MOVED_ZERO when the data is in
 * place, otherwise the reason (enum vmsplice_move_result) why the caller
 * must copy.  Nothing has been changed at @addr except that a page there
 * may have been unmapped, which the copy then refaults.
 */
int vmsplice_move_page(struct vmsplice_move *vm, struct page *page,
		       unsigned long addr)
{
	struct folio *folio = page_folio(page);
	struct vm_area_struct *vma = vm->vma;
	int ret;

	if (!vm->locked) {
		if (mmap_read_lock_killable(vm->mm))
			return VMSPLICE_FB_BUSY;
		vm->locked = true;
		vma = NULL;
	}
	if (!vma || addr < vma->vm_start || addr >= vma->vm_end) {
		vma = vma_lookup(vm->mm, addr);
		vm->vma = vma;
		/* No VMA: the copy reports EFAULT and keeps the buffer. */
		if (!vma)
			return VMSPLICE_FB_DST_VMA;
		/*
		 * Nothing it tests changes while the mmap_lock is held (nor
		 * the caller's protection keys within one call): once a VMA.
		 */
		vm->vma_result = vmsplice_check_dst_vma(vma);
	}
	ret = vm->vma_result;
	if (ret)
		return ret;

	/*
	 * A page the giver never touched is the shared zero page: the
	 * destination only has to read zeros, which an empty private
	 * anonymous page does.  No allocation, no copy.
	 */
	if (is_zero_page(page) || is_huge_zero_folio(folio)) {
		ret = vmsplice_clear_dst(vma, addr);
		return ret ? ret : VMSPLICE_MOVED_ZERO;
	}

	ret = vmsplice_check_folio(vm, folio, false);
	if (ret)
		return ret;
	/* The destination VMA needs an anon_vma for the moved page's rmap. */
	if (unlikely(anon_vma_prepare(vma)))
		return VMSPLICE_FB_BUSY;
	return vmsplice_install(vm, vma, folio, addr);
}
