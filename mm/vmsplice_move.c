// SPDX-License-Identifier: GPL-2.0
/*
 * vmsplice() page moving: hand anonymous pages from one process to another
 * through a pipe without copying them.
 *
 * Giver: vmsplice(SPLICE_F_GIFT | SPLICE_F_UNMAP) puts the pages into the
 * pipe, as every vmsplice() does, and then unmaps the whole ones from the
 * giver's address space, as MADV_DONTNEED would (vmsplice_gift_to_pipe()).
 * A whole large folio (a THP, an mTHP folio) becomes one pipe buffer.  The
 * buffers carry vmsplice_gift_pipe_buf_ops, which nothing else sets, and
 * hold a reference to the anon_vma their folio still points to.
 *
 * Taker: vmsplice(SPLICE_F_MOVE) maps the pages of such buffers at the
 * reader's addresses when nobody else can see them any more
 * (vmsplice_move_bufs()); fs/splice.c copies everything else, exactly as
 * before.  A move is indistinguishable from the copy to every observer: it
 * only lands on an empty destination, a zero page, or a page that nothing
 * but this mapping references, replaced atomically under the page-table
 * lock.
 *
 * The move itself follows UFFDIO_MOVE (mm/userfaultfd.c): the folio is
 * locked, the anon_vma it points to is write-locked, the rmap is pointed at
 * the destination (folio_move_anon_rmap() and ->index) and the folio is
 * mapped exclusively.  Unlike UFFDIO_MOVE the two ends are different mms
 * and the folio is unmapped in between, so the memory cgroup, the NUMA
 * placement and the RSS counters are checked and updated here, and the
 * giver's anon_vma is kept alive by the pipe buffer until the folio has a
 * new one.
 */
#include <linux/cpuset.h>
#include <linux/huge_mm.h>
#include <linux/list_sort.h>
#include <linux/memcontrol.h>
#include <linux/mempolicy.h>
#include <linux/mm.h>
#include <linux/mm_inline.h>
#include <linux/mman.h>
#include <linux/mmap_lock.h>
#include <linux/mmu_notifier.h>
#include <linux/pagemap.h>
#include <linux/pipe_fs_i.h>
#include <linux/rmap.h>
#include <linux/sort.h>
#include <linux/splice.h>
#include <linux/swap.h>
#include <linux/uio.h>
#include <linux/userfaultfd_k.h>
#include <linux/vmsplice_move.h>
#include <asm/pgalloc.h>
#include <asm/tlb.h>
#include <asm/tlbflush.h>

#define CREATE_TRACE_POINTS
#include <trace/events/vmsplice.h>

#include "internal.h"

/*
 * Internal outcomes, never counted: the caller retries another way.  All
 * negative, so that "if (ret)" still means "not moved".
 */
#define VMSPLICE_DST_POPULATED	(-1)	/* replace it: vmsplice_move_replace() */
#define VMSPLICE_NEED_DRAIN	(-2)	/* an LRU batch may hold a reference */
#define VMSPLICE_USE_PTES	(-3)	/* a page table is there: map by PTEs */

/* Small pages moved under one page-table lock at most. */
#define VMSPLICE_MOVE_BATCH	64

/* ------------------------------------------------------- pipe buffers */

/*
 * Buffers of vmsplice(SPLICE_F_GIFT | SPLICE_F_UNMAP).  Only
 * vmsplice_gift_to_pipe() makes them, so their ops pointer is what tells a
 * reader that a buffer may be moved: nothing another path (splice() from a
 * file, a pipe write, tee()) can set.
 *
 * ->private holds a reference to the anon_vma the folio pointed to when it
 * was given, or is NULL; for a whole large folio it points (tagged with
 * VMSPLICE_GIFT_REF) to a struct vmsplice_gift_ref instead.  A slot counts
 * as one page against the pipe owner's pipe-user-pages limits; a 2 MiB
 * buffer in one slot would let those limits, meant to bound the memory
 * pipes hold, be exceeded 512 times, so the pages beyond the first are
 * charged there too, for as long as the buffer (or a tee()d copy) lives,
 * wherever splice() moves it.
 */
struct vmsplice_gift_ref {
	refcount_t refs;
	struct anon_vma *anon_vma;
	struct user_struct *user;
	unsigned long charged;		/* pages, beyond the slot's one */
	/*
	 * The giver unmapped the THP itself, from its one PMD, its last
	 * mapping (vmsplice_gift_unmap_thp()): no tail page carries
	 * PageAnonExclusive.  Set before the pipe is unlocked, then only read.
	 */
	bool tails_clear;
	/*
	 * While the giving call runs: its THPs found mapped by a PMD, on the
	 * call's own list (on its stack), taken off it before the call
	 * returns (vmsplice_gift_forget_thps()).
	 */
	struct list_head thp_list;
	struct folio *thp;
	unsigned long thp_addr;
};

#define VMSPLICE_GIFT_REF	1UL	/* ->private tag: a vmsplice_gift_ref */

static struct vmsplice_gift_ref *vmsplice_buf_ref(const struct pipe_buffer *buf)
{
	if (!(buf->private & VMSPLICE_GIFT_REF))
		return NULL;
	return (struct vmsplice_gift_ref *)(buf->private & ~VMSPLICE_GIFT_REF);
}

/* The anon_vma a gift buffer pinned, or NULL. */
static struct anon_vma *vmsplice_buf_anon_vma(const struct pipe_buffer *buf)
{
	struct vmsplice_gift_ref *ref = vmsplice_buf_ref(buf);

	return ref ? ref->anon_vma : (struct anon_vma *)buf->private;
}

static void vmsplice_gift_buf_release(struct pipe_inode_info *pipe,
				      struct pipe_buffer *buf)
{
	struct vmsplice_gift_ref *ref = vmsplice_buf_ref(buf);
	struct anon_vma *anon_vma = vmsplice_buf_anon_vma(buf);

	put_page(buf->page);
	if (ref && !refcount_dec_and_test(&ref->refs))
		return;
	if (anon_vma)
		put_anon_vma(anon_vma);
	if (ref) {
		account_pipe_buffers(ref->user, ref->charged, 0);
		free_uid(ref->user);
		kfree(ref);
	}
}

static bool vmsplice_gift_buf_get(struct pipe_inode_info *pipe,
				  struct pipe_buffer *buf)
{
	struct vmsplice_gift_ref *ref = vmsplice_buf_ref(buf);
	struct anon_vma *anon_vma = vmsplice_buf_anon_vma(buf);

	if (!try_get_page(buf->page))
		return false;
	if (ref)
		refcount_inc(&ref->refs);
	else if (anon_vma)
		get_anon_vma(anon_vma);
	return true;
}

/*
 * No ->try_steal(): stealing hands the page to a page cache (FUSE's
 * fuse_try_move_folio()), which wants a page that was never anonymous;
 * FUSE copies these instead.  No ->confirm(): the data is always there.
 */
static const struct pipe_buf_operations vmsplice_gift_pipe_buf_ops = {
	.release	= vmsplice_gift_buf_release,
	.get		= vmsplice_gift_buf_get,
};

/* ---------------------------------------------------------------- giver */

/* A range of whole pages given away, to be unmapped from the giver. */
struct vmsplice_range {
	unsigned long start, end;
};

struct vmsplice_gift {
	struct mm_struct *mm;
	struct vmsplice_range *range;
	unsigned int nr, max;
	unsigned long unmapped;		/* pages */
	struct list_head thps;		/* vmsplice_gift_thp()'s buffers */
};

/*
 * A gifted page is unmapped only where MADV_DONTNEED could discard it, and
 * only in private mappings:
 *  - VM_SHARED: the pages belong to a file or shmem object that others can
 *    still reach; unmapping would hide nothing from them and move nothing.
 *  - VM_LOCKED: mlock() promised the range stays mapped (MADV_DONTNEED
 *    refuses it too).
 *  - hugetlb, PFNMAP, IO, MIXEDMAP, DROPPABLE: not ordinary anonymous
 *    memory; their pages are never moved, so leave them alone.
 *  - VM_SHADOW_STACK: discarding a shadow stack's pages would lose the
 *    return addresses it guards.
 *  - VM_MTE (arm64): the tags live with the physical page; a moved page
 *    would carry the giver's tags to the reader, where a copy carries none.
 *  - userfaultfd: MADV_DONTNEED reports UFFD_EVENT_REMOVE and waits for
 *    the monitor to read it; waiting with the pipe locked could deadlock
 *    with a monitor that reads this pipe, and write-protect or minor-fault
 *    tracking expects the pages to stay.  Such ranges stay mapped.
 *  - mseal()ed read-only anonymous memory may not be discarded.
 * Pages left mapped are copied by the taker (folio_mapped()).
 */
static bool vmsplice_vma_may_unmap(struct vm_area_struct *vma)
{
	if (vma->vm_flags & (VM_SHARED | VM_LOCKED | VM_HUGETLB | VM_PFNMAP |
			     VM_IO | VM_MIXEDMAP | VM_DROPPABLE |
			     VM_SHADOW_STACK | VM_MTE))
		return false;
	if (userfaultfd_armed(vma))
		return false;
	return can_modify_vma_madv(vma, MADV_DONTNEED);
}

static int vmsplice_range_cmp(const void *a, const void *b)
{
	const struct vmsplice_range *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return 0;
}

/* vmsplice_gift_unmap()'s order: by address, as its ranges are. */
static int vmsplice_thp_cmp(void *priv, const struct list_head *a,
			    const struct list_head *b)
{
	const struct vmsplice_gift_ref *x, *y;

	x = list_entry(a, struct vmsplice_gift_ref, thp_list);
	y = list_entry(b, struct vmsplice_gift_ref, thp_list);
	return x->thp_addr > y->thp_addr;
}

#ifdef CONFIG_TRANSPARENT_HUGEPAGE
/* Whether the whole THP at @addr lies in @vma. */
static bool vmsplice_vma_holds_thp(struct vm_area_struct *vma,
				   unsigned long addr)
{
	return addr >= vma->vm_start && addr + HPAGE_PMD_SIZE <= vma->vm_end;
}

/*
 * The PMD that may map a THP of the giver at @addr (PMD-aligned), or NULL,
 * with its VMA in *@vmap.  Only an anonymous VMA's PMDs map anonymous THPs
 * (not hugetlb's leaves), and only one that covers the whole THP.  The
 * mmap_lock, held, keeps the VMA's page tables.
 */
static pmd_t *vmsplice_gift_pmd(struct mm_struct *mm, unsigned long addr,
				struct vm_area_struct **vmap)
{
	struct vm_area_struct *vma = vma_lookup(mm, addr);

	*vmap = NULL;
	if (!vma || !vma_is_anonymous(vma) || !vmsplice_vma_holds_thp(vma, addr))
		return NULL;
	*vmap = vma;
	return mm_find_pmd(mm, addr);
}

/*
 * Whether @pmdval maps @folio, whole.  pmd_present() first: a PMD
 * migration entry is not pmd_trans_huge() on the architectures that have
 * them, but this is also read without the PMD lock, and zap_huge_pmd()
 * tests it too.
 */
static bool vmsplice_pmd_maps(pmd_t pmdval, struct folio *folio)
{
	return pmd_present(pmdval) && pmd_trans_huge(pmdval) &&
	       pmd_page(pmdval) == &folio->page;
}

/*
 * Unmap a THP that vmsplice_gift_thp() put into the pipe from the one PMD of
 * @vma that mapped it, as zap_huge_pmd() does (the PMD's folio reference left
 * to @tlb, dropped after the TLB flush), if that PMD still maps it.  The caller
 * holds the mmap_lock, has checked that @vma is anonymous, holds the whole THP
 * and may be unmapped, has started an mmu-notifier range over it, and has
 * called tlb_start_vma() and tlb_change_page_size(HPAGE_PMD_SIZE) on @tlb.
 * A THP named twice is unmapped once: the second time its PMD maps nothing,
 * or something else, and is left alone.  Not left
 * to the zap that follows so that the check and the unmap happen under one PMD
 * lock, which tells the taker something: no tail page of an anonymous THP
 * mapped by a PMD carries PageAnonExclusive.  Only PTE-level rmap additions set
 * it on tails; a PMD mapping keeps it on the head alone (page-flags.h documents
 * that rule "for now", hence the taker's DEBUG_VM check); and what maps an
 * existing folio by a PMD keeps the tails clear: fork, mremap() and UFFDIO_MOVE
 * carry the PMD over, khugepaged and migration map new folios, and
 * vmsplice_move_pmd() clears the tails of a PTE-mapped folio it maps by a PMD.
 * If this PMD was the folio's last mapping and it is not in the swap cache,
 * whatever maps it before a reader takes it (a failed migration restoring a
 * forked child's entries) maps it shared, which sets no bit: the reader may
 * skip clearing the bit on 511 tails.  (The same rule is why GUP of the head
 * alone was enough to read the whole folio: one PMD, one set of permissions.)
 */
static void vmsplice_gift_unmap_thp(struct vmsplice_gift *g,
				    struct mmu_gather *tlb,
				    struct vm_area_struct *vma,
				    struct vmsplice_gift_ref *ref)
{
	struct folio *folio = ref->thp;
	unsigned long addr = ref->thp_addr;
	spinlock_t *ptl;	/* the PMD's lock */
	pmd_t *pmd, pmdval;
	bool unmapped = false;

	pmd = mm_find_pmd(g->mm, addr);
	if (!pmd)
		return;
	ptl = pmd_lock(g->mm, pmd);
	pmdval = pmdp_get(pmd);
	if (vmsplice_pmd_maps(pmdval, folio)) {
		pmdval = pmdp_huge_get_and_clear_full(vma, addr, pmd,
						      tlb->fullmm);
		arch_check_zapped_pmd(vma, pmdval);
		tlb_remove_pmd_tlb_entry(tlb, pmd, addr);
		/* Deposited for a split, never walked: freed at once. */
		pte_free(g->mm, pgtable_trans_huge_withdraw(g->mm, pmd));
		mm_dec_nr_ptes(g->mm);
		folio_remove_rmap_pmd(folio, &folio->page, vma);
		add_mm_counter(g->mm, MM_ANONPAGES, -HPAGE_PMD_NR);
		ref->tails_clear = !folio_mapped(folio) &&
				   !folio_test_swapcache(folio);
		unmapped = true;
	}
	spin_unlock(ptl);
	/* The PMD's reference, dropped after the TLB flush. */
	if (unmapped)
		tlb_remove_page_size(tlb, &folio->page, HPAGE_PMD_SIZE);
}

/* The first of the sorted given THPs, or NULL. */
static struct vmsplice_gift_ref *vmsplice_first_thp(struct vmsplice_gift *g)
{
	return list_first_entry_or_null(&g->thps, struct vmsplice_gift_ref,
					thp_list);
}

/* The first of the sorted given THPs, taken off the list if below @end. */
static struct vmsplice_gift_ref *vmsplice_next_thp(struct vmsplice_gift *g,
						   unsigned long end)
{
	struct vmsplice_gift_ref *ref = vmsplice_first_thp(g);

	if (!ref || ref->thp_addr >= end)
		return NULL;
	list_del_init(&ref->thp_list);
	return ref;
}

/*
 * Unmap [@s, @e) of @vma, which the giver may unmap, as
 * zap_page_range_single() would, but with the given THPs that lie whole in
 * it (at the head of the sorted g->thps) unmapped from their PMDs by
 * vmsplice_gift_unmap_thp() first, inside the same mmu-notifier range and
 * mmu_gather: a secondary MMU (KVM) sees one invalidation per range per
 * VMA, whatever mix of THPs and small pages it holds, and the zap that
 * follows finds those PMDs empty.  A THP whose PMD no longer maps it (a
 * VMA changed since it was given, or it was named twice and is already
 * unmapped) is left to the zap, which unmaps whatever is there now.
 *
 * Return: false, with nothing unmapped, when the range holds none of them
 * or @vma is not one this path may zap: the caller zaps it as usual.
 */
static bool vmsplice_zap_given_range(struct vmsplice_gift *g,
				     struct vm_area_struct *vma,
				     unsigned long s, unsigned long e)
{
	struct mmu_notifier_range range;
	struct vmsplice_gift_ref *ref;
	struct mmu_gather tlb;

	/*
	 * Those below @s lay in a gap between VMAs, in a VMA that may not be
	 * unmapped (they stay mapped, and the taker copies them), or in one
	 * that was zapped the usual way.
	 */
	while (vmsplice_next_thp(g, s))
		;
	ref = vmsplice_first_thp(g);
	if (!ref || ref->thp_addr >= e)
		return false;
	/*
	 * Only an anonymous VMA's PMDs map anonymous THPs, and this path
	 * skips unmap_single_vma()'s extras (uprobes, PFN tracking,
	 * hugetlb), which only file, PFN-mapped and hugetlb VMAs need.  A
	 * private mapping of /dev/zero is anonymous but keeps its vm_file:
	 * zapped the usual way, so that what this path skips is provably
	 * nothing.
	 */
	if (!vma_is_anonymous(vma) || vma->vm_file)
		return false;

	/* zap_page_range_single()'s steps, the PMD pass added. */
	lru_add_drain();
	mmu_notifier_range_init(&range, MMU_NOTIFY_CLEAR, 0, g->mm, s, e);
	tlb_gather_mmu(&tlb, g->mm);
	update_hiwater_rss(g->mm);
	mmu_notifier_invalidate_range_start(&range);
	/*
	 * Before any PMD changes: the VMA's flags, which a flush that a full
	 * batch forces during the PMD pass uses, and (on VIVT caches) the
	 * cache flush.  unmap_page_range() starts the VMA again: harmless,
	 * but on VIVT caches the whole VMA's cache is flushed twice.  The
	 * page size once, for the whole PMD pass: on the architectures
	 * that track it a change of size forces a flush.
	 */
	tlb_start_vma(&tlb, vma);
	tlb_change_page_size(&tlb, HPAGE_PMD_SIZE);
	while ((ref = vmsplice_next_thp(g, e))) {
		/* Whole inside [@s, @e): a VMA cutting a THP split its PMD. */
		if (ref->thp_addr >= s && ref->thp_addr + HPAGE_PMD_SIZE <= e)
			vmsplice_gift_unmap_thp(g, &tlb, vma, ref);
		cond_resched();
	}
	/*
	 * No tlb_end_vma() of our own: unmap_page_range() ends the VMA, and
	 * that one flush (at tlb_finish_mmu() where VMAs merge) covers the
	 * PMDs and the PTEs alike.  Where a flush goes by range at the
	 * smallest page size gathered (arm64, riscv), a range that mixes
	 * THPs and small pages is flushed at 4 KiB strides, as a zap of
	 * such a range always was.
	 */
	unmap_page_range(&tlb, vma, s, e, NULL);
	mmu_notifier_invalidate_range_end(&range);
	tlb_finish_mmu(&tlb);
	return true;
}
#else
static bool vmsplice_zap_given_range(struct vmsplice_gift *g,
				     struct vm_area_struct *vma,
				     unsigned long s, unsigned long e)
{
	return false;
}
#endif /* CONFIG_TRANSPARENT_HUGEPAGE */

/* Unmap [@start, @end) of the giver wherever allowed; count the pages. */
static void vmsplice_unmap_range(struct vmsplice_gift *g, unsigned long start,
				 unsigned long end)
{
	VMA_ITERATOR(vmi, g->mm, start);
	struct vm_area_struct *vma;

	for_each_vma_range(vmi, vma, end) {
		unsigned long s = max(start, vma->vm_start);
		unsigned long e = min(end, vma->vm_end);

		if (!vmsplice_vma_may_unmap(vma))
			continue;
		/*
		 * One mmu_gather, one mmu-notifier range and one TLB flush
		 * (more if a batch fills) for the range's part in this VMA,
		 * given THPs and small pages alike; a whole PMD-mapped THP
		 * goes in one step, without a split.  This also drains the
		 * local LRU batches, so that the pipe's reference is often
		 * the last.
		 */
		if (!vmsplice_zap_given_range(g, vma, s, e))
			zap_page_range_single(vma, s, e - s, NULL);
		g->unmapped += (e - s) >> PAGE_SHIFT;
	}
}

/*
 * Unmap every range given in this call, once: sorted and merged, so that a
 * page named twice (or by many iovecs) is unmapped and counted once.  All
 * of it happens after every buffer is in the pipe, so a page named twice
 * carries the same data in both buffers.
 */
static void vmsplice_gift_unmap(struct vmsplice_gift *g)
{
	unsigned int i, n = 0;

	if (!g->nr)
		return;
	sort(g->range, g->nr, sizeof(*g->range), vmsplice_range_cmp, NULL);
	for (i = 1; i < g->nr; i++) {
		if (g->range[i].start <= g->range[n].end)
			g->range[n].end = max(g->range[n].end, g->range[i].end);
		else
			g->range[++n] = g->range[i];
	}
	g->nr = n + 1;

	/*
	 * The THPs in the ranges' order, so that each range finds its own at
	 * the head of the list (vmsplice_zap_given_range()).  The list is
	 * this call's own: no lock needed.  (list_sort() returns at once for
	 * an empty list or one entry.)
	 */
	list_sort(NULL, &g->thps, vmsplice_thp_cmp);

	/* A fatal signal: the pages stay mapped and the taker copies them. */
	if (mmap_read_lock_killable(g->mm))
		return;
	for (i = 0; i < g->nr; i++)
		vmsplice_unmap_range(g, g->range[i].start, g->range[i].end);
	mmap_read_unlock(g->mm);
	count_vm_events(VMSPLICE_GIFT_UNMAPPED, g->unmapped);
}

/*
 * Take the call's THPs off its list, those the unmap did not reach too (a
 * fatal signal, a VMA left mapped), so that no buffer that outlives the
 * call keeps links into its stack.
 */
static void vmsplice_gift_forget_thps(struct vmsplice_gift *g)
{
	struct vmsplice_gift_ref *ref, *tmp;

	list_for_each_entry_safe(ref, tmp, &g->thps, thp_list)
		list_del_init(&ref->thp_list);
}

static void vmsplice_gift_add_range(struct vmsplice_gift *g,
				    unsigned long start, unsigned long end)
{
	/* Consecutive batches of one segment extend the same range. */
	if (g->nr && g->range[g->nr - 1].end == start) {
		g->range[g->nr - 1].end = end;
		return;
	}
	/* At most one range per segment: cannot overflow, but be safe. */
	if (WARN_ON_ONCE(g->nr == g->max))
		return;
	g->range[g->nr].start = start;
	g->range[g->nr].end = end;
	g->nr++;
}

/*
 * Whether a large folio may become one pipe buffer.  Not where a consumer
 * could kmap one page of the buffer and read on past it (HIGHMEM,
 * DEBUG_KMAP_LOCAL_FORCE_MAP: FUSE's fuse_copy_do() and virtio_console's
 * pipe_to_sg() map buffer->page alone).
 */
static bool vmsplice_large_bufs(void)
{
	return !IS_ENABLED(CONFIG_HIGHMEM) &&
	       !IS_ENABLED(CONFIG_DEBUG_KMAP_LOCAL_FORCE_MAP);
}

/*
 * How many of @pages (@n of them; the first at byte @off of its page, with
 * @left bytes fetched and @seg_left bytes of the segment from there) make
 * up one whole large folio that can go into a single pipe buffer: all its
 * pages, in order, from its first.  Otherwise 1.  0: a large folio starts
 * here but continues beyond what was fetched, and the caller fetches again
 * from here.
 */
static unsigned int vmsplice_gift_folio_pages(struct page **pages,
					      unsigned int n, size_t off,
					      size_t left, size_t seg_left)
{
	struct folio *folio = page_folio(pages[0]);
	unsigned int nr, i;

	if (!vmsplice_large_bufs())
		return 1;
	if (!folio_test_large(folio) || folio_test_hugetlb(folio) || off ||
	    pages[0] != folio_page(folio, 0))
		return 1;
	nr = folio_nr_pages(folio);
	if (nr > PTRS_PER_PTE || seg_left < folio_size(folio))
		return 1;
	if (nr > n || left < folio_size(folio))
		return 0;
	for (i = 1; i < nr; i++)
		if (pages[i] != folio_page(folio, i))
			return 1;
	return nr;
}

/*
 * How many pages to fetch for the pipe's free slots: a range longer than
 * the pipe would otherwise fetch a page table's worth each call and put
 * back what does not fit (for a 1 MiB pipe, twice the pages it takes).  A
 * large folio takes one slot for all its pages: one cut by the end of what
 * was fetched is fetched again from its first page, with room for all of
 * them (@folio_pages).
 */
static unsigned int vmsplice_gift_room(struct pipe_inode_info *pipe,
				       unsigned int folio_pages)
{
	unsigned int used = pipe_occupancy(pipe->head, pipe->tail);

	return min_t(unsigned int, PTRS_PER_PTE,
		     max(pipe->max_usage - used, folio_pages));
}

/*
 * Charge the @nr - 1 pages of a whole large folio beyond its slot to the
 * pipe owner, within pipe-user-pages as pipe_resize_ring() applies it
 * (the soft limit to unprivileged users).  NULL: not allowed (or no
 * memory); the folio then goes in one page per buffer, a slot each.
 */
static struct vmsplice_gift_ref *vmsplice_gift_charge(struct pipe_inode_info *pipe,
						      unsigned int nr)
{
	struct vmsplice_gift_ref *ref;
	unsigned long user_bufs;

	user_bufs = account_pipe_buffers(pipe->user, 0, nr - 1);
	if (too_many_pipe_buffers_hard(user_bufs) ||
	    (too_many_pipe_buffers_soft(user_bufs) &&
	     pipe_is_unprivileged_user()))
		goto uncharge;
	ref = kzalloc(sizeof(*ref), GFP_KERNEL);
	if (!ref)
		goto uncharge;
	refcount_set(&ref->refs, 1);
	ref->user = get_uid(pipe->user);
	ref->charged = nr - 1;
	return ref;
uncharge:
	account_pipe_buffers(pipe->user, nr - 1, 0);
	return NULL;
}

/*
 * Put one buffer into the pipe.  A whole page or folio of anonymous memory
 * may later be moved: its buffer keeps the anon_vma the folio points to
 * alive.  Once the giver unmaps the folio nothing else does: if the giver
 * exits, its anon_vmas go, and folio->mapping would dangle while the folio
 * waits in the pipe.  Lockless rmap walkers (folio_referenced(), page_idle,
 * DAMON) rely on "mapped implies its anon_vma is alive"
 * (folio_lock_anon_vma_read()); when the taker maps the folio again under
 * its own anon_vma, a walker that read the old ->mapping before that must
 * still find a live anon_vma, which the taker holds write-locked for the
 * switch (as UFFDIO_MOVE holds its source anon_vma).
 */
static ssize_t vmsplice_gift_add(struct pipe_inode_info *pipe,
				 struct page *page, size_t off, size_t len,
				 bool whole, struct vmsplice_gift_ref *ref)
{
	struct folio *folio = page_folio(page);
	struct anon_vma *anon_vma = NULL;
	struct pipe_buffer buf = {
		.ops = &vmsplice_gift_pipe_buf_ops,
		.flags = PIPE_BUF_FLAG_GIFT,
		.page = page,
		.offset = off,
		.len = len,
	};

	if (whole && folio_test_anon(folio) && !folio_test_ksm(folio))
		anon_vma = folio_get_anon_vma(folio);
	if (ref) {
		ref->anon_vma = anon_vma;
		buf.private = (unsigned long)ref | VMSPLICE_GIFT_REF;
	} else {
		buf.private = (unsigned long)anon_vma;
	}
	return add_to_pipe(pipe, &buf);
}

#ifdef CONFIG_TRANSPARENT_HUGEPAGE
/*
 * A whole THP mapped by one PMD at @addr (PMD-aligned, with a whole THP
 * of the segment left) goes into one buffer without fetching its 512
 * pages one by one, which costs more than the rest of the move: GUP takes
 * the head, as it takes any page vmsplice() reads (the same permission
 * checks, the same reference), and the PMD, read under the mmap_lock that
 * keeps the VMA's page tables, shows the rest of the range mapping the
 * rest of the folio, in order, as vmsplice_gift_folio_pages() checks it
 * page by page.  Its range is unmapped with the others, from the PMD by
 * vmsplice_gift_unmap_thp().
 *
 * Return: the bytes put into the pipe; 0 if this is not such a THP (the
 * caller fetches page by page); a negative errno from add_to_pipe().
 */
static ssize_t vmsplice_gift_thp(struct vmsplice_gift *g,
				 struct pipe_inode_info *pipe,
				 unsigned long addr, size_t seg)
{
	struct vmsplice_gift_ref *ref;
	struct vm_area_struct *vma;
	struct folio *folio;
	struct page *page;
	ssize_t ret;
	bool whole;
	pmd_t *pmd;

	if (!vmsplice_large_bufs() ||
	    !IS_ALIGNED(addr, HPAGE_PMD_SIZE) || seg < HPAGE_PMD_SIZE)
		return 0;
	if (get_user_pages_fast(addr, 1, 0, &page) != 1)
		return 0;
	folio = page_folio(page);
	/* hugetlb folios are never moved: one page per buffer, as before. */
	if (!folio_test_anon(folio) || folio_test_ksm(folio) ||
	    folio_test_hugetlb(folio) ||
	    folio_order(folio) != HPAGE_PMD_ORDER || page != &folio->page)
		goto put;
	if (mmap_read_lock_killable(g->mm))
		goto put;
	pmd = vmsplice_gift_pmd(g->mm, addr, &vma);
	whole = pmd && vmsplice_pmd_maps(pmdp_get_lockless(pmd), folio);
	mmap_read_unlock(g->mm);
	if (!whole)
		goto put;
	ref = vmsplice_gift_charge(pipe, HPAGE_PMD_NR);
	if (!ref)
		goto put;
	ret = vmsplice_gift_add(pipe, page, 0, HPAGE_PMD_SIZE, true, ref);
	if (ret < 0)
		return ret;	/* released, with the page and the charge */
	ref->thp = folio;
	ref->thp_addr = addr;
	list_add_tail(&ref->thp_list, &g->thps);
	count_vm_event(VMSPLICE_GIFT_LARGE);
	vmsplice_gift_add_range(g, addr, addr + HPAGE_PMD_SIZE);
	return HPAGE_PMD_SIZE;
put:
	put_page(page);
	return 0;
}
#else
static ssize_t vmsplice_gift_thp(struct vmsplice_gift *g,
				 struct pipe_inode_info *pipe,
				 unsigned long addr, size_t seg)
{
	return 0;
}
#endif /* CONFIG_TRANSPARENT_HUGEPAGE */

/**
 * vmsplice_gift_to_pipe - vmsplice(SPLICE_F_GIFT | SPLICE_F_UNMAP)
 * @pipe: the pipe, locked, with room for at least one buffer
 * @from: the giver's memory; advanced past what went into the pipe
 *
 * Like iter_to_pipe() in fs/splice.c, but a whole large folio that the
 * range covers becomes a single buffer (one pipe slot for a 2 MiB THP), and
 * once everything is in the pipe, before any reader is woken, the whole
 * pages are unmapped from the giver as MADV_DONTNEED would unmap them: one
 * mmap_lock for the call, one zap per contiguous range.  Partial pages at
 * the ends of a segment stay mapped, and are copied by the taker.
 *
 * Return: the number of bytes put into the pipe, or a negative errno if
 * none were.
 */
ssize_t vmsplice_gift_to_pipe(struct pipe_inode_info *pipe,
			      struct iov_iter *from)
{
	struct vmsplice_gift g = {
		.mm = current->mm,
		.thps = LIST_HEAD_INIT(g.thps),
	};
	unsigned int folio_pages = 0, asked;
	struct page **pages;
	size_t total = 0;
	ssize_t ret = 0;

	g.max = iter_is_ubuf(from) ? 1 : from->nr_segs;
	g.range = kmalloc_array(g.max, sizeof(*g.range), GFP_KERNEL);
	pages = kmalloc_array(PTRS_PER_PTE, sizeof(*pages), GFP_KERNEL);
	if (!g.range || !pages) {
		ret = -ENOMEM;
		goto out;
	}

	while (iov_iter_count(from) &&
	       !pipe_full(pipe->head, pipe->tail, pipe->max_usage)) {
		unsigned long addr, page_addr;
		unsigned int n, i = 0;
		size_t off, seg;
		ssize_t left;

		/*
		 * iov_iter_get_pages2() skips empty segments (a first iovec
		 * of length 0): so must the address of what it fetches.
		 */
		if (!vmsplice_iter_seg_len(from))
			iov_iter_advance(from, 0);
		addr = untagged_addr((unsigned long)iter_iov_addr(from));
		seg = vmsplice_iter_seg_len(from);
		if (WARN_ON_ONCE(!seg))
			break;
		ret = vmsplice_gift_thp(&g, pipe, addr, seg);
		if (ret < 0)
			goto unmap;
		if (ret) {
			iov_iter_advance(from, ret);
			total += ret;
			continue;
		}
		asked = vmsplice_gift_room(pipe, folio_pages);
		folio_pages = 0;
		left = iov_iter_get_pages2(from, pages, ~0UL, asked, &off);
		if (left <= 0) {
			ret = left;
			break;
		}
		n = DIV_ROUND_UP(left + off, PAGE_SIZE);
		page_addr = addr - off;

		while (i < n) {
			size_t seg_left = seg + off - (size_t)i * PAGE_SIZE;
			struct vmsplice_gift_ref *ref = NULL;
			unsigned int nr;
			size_t len;

			nr = vmsplice_gift_folio_pages(pages + i, n - i,
						       i ? 0 : off, left, seg_left);
			if (nr > 1) {
				ref = vmsplice_gift_charge(pipe, nr);
				if (!ref)
					nr = 1;
			}
			/*
			 * Fetch the folio again, from its first page and all
			 * of it, unless that was asked for already.
			 */
			if (!nr && (i || folio_nr_pages(page_folio(pages[i])) > asked)) {
				folio_pages = folio_nr_pages(page_folio(pages[i]));
				iov_iter_revert(from, left);
				while (i < n)
					put_page(pages[i++]);
				break;
			}
			if (nr > 1) {
				struct folio *folio = page_folio(pages[i]);

				/* One reference for the one buffer. */
				folio_put_refs(folio, nr - 1);
				len = folio_size(folio);
				ret = vmsplice_gift_add(pipe, pages[i], 0, len, true, ref);
			} else {
				nr = 1;
				len = min_t(size_t, left, PAGE_SIZE - (i ? 0 : off));
				ret = vmsplice_gift_add(pipe, pages[i], i ? 0 : off,
							len, len == PAGE_SIZE, NULL);
			}
			if (ret < 0) {
				/* Not added (and released): the rest goes back. */
				iov_iter_revert(from, left);
				for (i += nr; i < n; i++)
					put_page(pages[i]);
				goto unmap;
			}
			if (nr > 1)
				count_vm_event(VMSPLICE_GIFT_LARGE);
			if (len == (size_t)nr * PAGE_SIZE)
				vmsplice_gift_add_range(&g, page_addr + i * PAGE_SIZE,
							page_addr + i * PAGE_SIZE + len);
			total += len;
			left -= len;
			i += nr;
		}
	}
unmap:
	vmsplice_gift_unmap(&g);
	vmsplice_gift_forget_thps(&g);
out:
	kfree(pages);
	kfree(g.range);
	return total ? total : ret;
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
	vm->memcg = NULL;	/* on the first buffer that may move */
	vm->iter = iter;
	vm->vma = NULL;
	vm->locked = false;
	vm->drained = false;
}

/**
 * vmsplice_move_unlock - drop the reader's mmap_lock if held
 * @vm: the read
 *
 * Must be called before confirming, copying or releasing a buffer that is
 * not moved, and before sleeping on the pipe.
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
	if (vm->memcg)
		mem_cgroup_put(vm->memcg);
}

/**
 * vmsplice_move_account - count and trace what happened to part of a buffer
 * @page: the buffer's page
 * @addr: the destination address
 * @bytes: how many bytes of the buffer
 * @result: an enum vmsplice_move_result
 *
 * The counters are in base pages: a 2 MiB THP moved counts 512.
 */
void vmsplice_move_account(struct page *page, unsigned long addr,
			   size_t bytes, int result)
{
	unsigned long nr = DIV_ROUND_UP(bytes, PAGE_SIZE);

	BUILD_BUG_ON(VMSPLICE_MOVE_FALLBACK_BUSY - VMSPLICE_MOVE_PAGES + 1 !=
		     NR_VMSPLICE_MOVE_RESULTS);
	if (WARN_ON_ONCE(result < 0 || result >= NR_VMSPLICE_MOVE_RESULTS))
		result = VMSPLICE_FB_BUSY;
	count_vm_events(VMSPLICE_MOVE_PAGES + result, nr);
	trace_vmsplice_move(addr, page_to_pfn(page), nr, result);
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
	 * mappings have no anonymous rmap to install into; a droppable
	 * mapping's pages must be marked droppable, which a moved page is not.
	 */
	if (vma->vm_flags & (VM_LOCKED | VM_HUGETLB | VM_PFNMAP | VM_IO |
			     VM_MIXEDMAP | VM_DROPPABLE))
		return VMSPLICE_FB_DST_VMA;
	/*
	 * An x86 shadow stack is private, anonymous and VM_WRITE (written by
	 * the CPU's shadow-stack accesses only), but installing a normal
	 * writable entry there would forge a shadow stack: the copy faults,
	 * and GUP and UFFDIO_MOVE (vma_move_compatible()) refuse it.  Memory
	 * tagging (arm64 MTE) keeps tags with the physical page: a moved page
	 * would bring the giver's tags where the copy would not.
	 */
	if (vma->vm_flags & (VM_SHADOW_STACK | VM_MTE))
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
 * Take the reader's mmap_lock if needed and find the destination VMA: it
 * must pass vmsplice_check_dst_vma() and hold all @len bytes from @addr.
 * The mmap_lock is held across the run of buffers the pipe holds at once.
 */
static int vmsplice_lock_dst(struct vmsplice_move *vm, unsigned long addr,
			     size_t len)
{
	struct vm_area_struct *vma = vm->vma;

	if (!vm->locked) {
		if (mmap_read_lock_killable(vm->mm))
			return VMSPLICE_FB_BUSY;
		vm->locked = true;
		vma = NULL;
	}
	if (!vm->memcg)
		vm->memcg = get_mem_cgroup_from_mm(vm->mm);
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
	if (vm->vma_result)
		return vm->vma_result;
	/* A folio's pages must all land in the one VMA its rmap will name. */
	if (len > vma->vm_end - addr)
		return VMSPLICE_FB_PARTIAL;
	return VMSPLICE_MOVED;
}

/*
 * Is a reference beyond @expected probably the per-CPU LRU batch that a
 * freshly faulted folio sits in (off the LRU until the batch drains)?
 * Then the read drains all batches once and looks again.
 */
static bool vmsplice_in_lru_batch(struct vmsplice_move *vm,
				  struct folio *folio, long expected)
{
	return !vm->drained && !folio_test_lru(folio) &&
	       folio_ref_count(folio) == expected + 1;
}

/* Would the reader's mempolicy and cpuset allow the folio's node? */
static bool vmsplice_node_allowed(struct vm_area_struct *vma,
				  unsigned long addr, struct folio *folio)
{
#ifdef CONFIG_NUMA
	int nid = folio_nid(folio);
	struct mempolicy *pol;
	bool allowed = true;
	pgoff_t ilx;

	if (!cpuset_node_allowed(nid, GFP_HIGHUSER_MOVABLE))
		return false;
	pol = get_vma_policy(vma, addr, folio_order(folio), &ilx);
	if (pol->mode == MPOL_BIND)
		allowed = node_isset(nid, pol->nodes);
	mpol_cond_put(pol);
	return allowed;
#else
	return true;
#endif
}

/*
 * Checks on a gifted folio that must hold for it to change owner, without
 * its lock, to fail fast.  vmsplice_check_folio_locked() repeats what can
 * still change.
 */
static int vmsplice_check_folio(struct vmsplice_move *vm, struct folio *folio,
				struct vm_area_struct *vma, unsigned long addr)
{
	long refs = 1;	/* the pipe buffer's */

	/*
	 * Page cache and shmem pages belong to their file, which others can
	 * still read and write: never hand them to one process.  Device
	 * memory belongs to its driver's pgmap.
	 */
	if (!folio_test_anon(folio) || folio_is_zone_device(folio))
		return VMSPLICE_FB_NOT_ANON;
	/* KSM pages are shared by content and use the stable tree's rmap. */
	if (folio_test_ksm(folio))
		return VMSPLICE_FB_KSM;
	/*
	 * Poisoned memory must never be mapped again (an access would take a
	 * machine check); the copy is what the kernel always did with it.
	 */
	if (folio_test_hwpoison(folio) ||
	    (folio_test_large(folio) && folio_test_has_hwpoisoned(folio)))
		return VMSPLICE_FB_HWPOISON;
	/*
	 * Pinned for DMA (O_DIRECT, io_uring fixed buffers, RDMA): a device
	 * may still write into the page after the reader starts using it.
	 */
	if (folio_maybe_dma_pinned(folio))
		return VMSPLICE_FB_PINNED;
	/*
	 * Still mapped: the giver did not unmap it (no SPLICE_F_UNMAP, a
	 * range it may not unmap) or a forked child shares it copy-on-write.
	 * Mapping it writable here would let them see the reader's writes.
	 */
	if (folio_mapped(folio))
		return VMSPLICE_FB_MAPPED;
	/* The swap cache holds references; the locked check may drop it. */
	if (folio_test_swapcache(folio))
		refs += folio_nr_pages(folio);
	/*
	 * The pipe buffer must hold the only reference.  Any other one is a
	 * user we cannot see: the same page in another pipe buffer (tee(), or
	 * given twice) that would later hand the reader's writes to another
	 * reader, a GUP user, a PFN walker.
	 */
	if (folio_ref_count(folio) != refs)
		return vmsplice_in_lru_batch(vm, folio, refs) ?
			VMSPLICE_NEED_DRAIN : VMSPLICE_FB_REFS;
	/*
	 * A moved page stays on its node: the reader's mempolicy (MPOL_BIND)
	 * or cpuset may forbid that node, where a copy would allocate on an
	 * allowed one.  (Unlocked: migration cannot move the folio while the
	 * pipe holds a reference its expected count does not allow for.)
	 */
	if (!vmsplice_node_allowed(vma, addr, folio))
		return VMSPLICE_FB_NUMA;
	return VMSPLICE_MOVED;
}

/*
 * The same, with the folio locked and @anon_vma write-locked, right before
 * the folio is mapped.  Nothing checked here can change any more: the
 * folio is unmapped, so no page-table walk (GUP, KSM, fork) can find it;
 * reclaim, migration, swap and KSM need the folio lock.
 */
static int vmsplice_check_folio_locked(struct vmsplice_move *vm,
				       struct folio *folio,
				       struct anon_vma *anon_vma)
{
	/* KSM converts a folio only under its lock: not before we took it. */
	if (folio_test_ksm(folio))
		return VMSPLICE_FB_KSM;
	if (folio_mapped(folio))
		return VMSPLICE_FB_MAPPED;
	/* memory_failure() marks the folio before it takes the lock. */
	if (folio_test_hwpoison(folio) ||
	    (folio_test_large(folio) && folio_test_has_hwpoisoned(folio)))
		return VMSPLICE_FB_HWPOISON;
	if (folio_maybe_dma_pinned(folio))
		return VMSPLICE_FB_PINNED;
	/* Reclaim or compaction may have isolated it meanwhile. */
	if (folio_ref_count(folio) !=
	    1 + (folio_test_swapcache(folio) ? folio_nr_pages(folio) : 0))
		return VMSPLICE_FB_REFS;
	/*
	 * The anon_vma the buffer pinned is what keeps ->mapping valid and is
	 * what we hold locked: it must be the one the folio points to.
	 */
	if (!anon_vma || folio_anon_vma(folio) != anon_vma)
		return VMSPLICE_FB_BUSY;
	/*
	 * mlocked: mapping it into an unlocked VMA would leave it on the
	 * unevictable list, counted as locked.  (With the pipe's reference
	 * the only one this should not be seen: the munlock batch holds one.)
	 */
	if (folio_test_mlocked(folio))
		return VMSPLICE_FB_BUSY;
	/*
	 * Lazily freed (MADV_FREE) and not written since: it sits on the file
	 * LRU and reclaim may drop it; its swapbacked flag can only change
	 * while isolated from the LRU.  A copy gives the reader a normal page.
	 */
	if (!folio_test_swapbacked(folio))
		return VMSPLICE_FB_BUSY;
	/*
	 * No test of the deferred-split queue or PG_partially_mapped.  A
	 * given folio may be on the queue, marked partially mapped by the
	 * giver's own unmap (e.g. a large folio mapped across a page-table
	 * or VMA boundary is unmapped in two steps, marked in between).  The
	 * shrinker takes a reference and then the folio lock before it
	 * splits, which the checks above and our lock exclude; we never
	 * touch ->_deferred_list, and the queue is the folio's memcg's and
	 * node's, which the move keeps.  Mapped whole again while still
	 * marked is also what a failed or completed migration of a
	 * PTE-mapped folio leaves (remove_migration_ptes()).  The shrinker,
	 * reclaim or migration may split it later, leaving the reader its
	 * data in small pages: never worse than the copy.
	 */
	/*
	 * The charge stays with the folio's memcg: moving it into another
	 * memcg's process would let it use memory its limits do not see.
	 * (folio_memcg() is stable with the folio locked.)
	 */
	if (folio_memcg(folio) != vm->memcg)
		return VMSPLICE_FB_MEMCG;
	/*
	 * Last, as it changes the folio: reclaim put it in the swap cache (or
	 * a swap-in left it there).  Take it out, as a write fault would,
	 * unless a swap entry (a forked child's) still refers to it and would
	 * read it back from there.
	 */
	if (folio_test_swapcache(folio) && !folio_free_swap(folio))
		return VMSPLICE_FB_SWAPCACHE;
	if (folio_ref_count(folio) != 1)
		return VMSPLICE_FB_REFS;
	return VMSPLICE_MOVED;
}

/*
 * Point the folio's rmap at @vma, its first page at @addr.  The anon_vma
 * and index still name the giver's VMA (the 2013 RFC kept them, breaking
 * rmap walks of the moved page).  Folio locked, old anon_vma write-locked.
 */
static void vmsplice_retarget(struct folio *folio, struct vm_area_struct *vma,
			      unsigned long addr)
{
	folio_move_anon_rmap(folio, vma);
	WRITE_ONCE(folio->index, linear_page_index(vma, addr));
}

/* The PTE an anonymous write fault installs (do_anonymous_page()). */
static pte_t vmsplice_mk_pte(struct vm_area_struct *vma, struct page *page)
{
	pte_t entry = mk_pte(page, vma->vm_page_prot);

	entry = pte_sw_mkyoung(entry);
	/* Dirty (and soft-dirty): the reader's copy would have written it. */
	return pte_mkwrite(pte_mkdirty(entry), vma);
}

/*
 * May the PMD-mapped THP (or huge zero page) at the destination be
 * replaced?  The same rules as vmsplice_check_dst_pte().
 */
static int vmsplice_check_dst_pmd(pmd_t pmdval, struct folio **oldp)
{
	struct folio *folio;
	struct page *page;

	if (is_huge_zero_pmd(pmdval))
		return VMSPLICE_MOVED;
	if (!pmd_trans_huge(pmdval) || pmd_devmap(pmdval))
		return VMSPLICE_FB_DST_BUSY;
	page = pmd_page(pmdval);
	folio = page_folio(page);
	if (!folio_test_anon(folio) || !PageAnonExclusive(page) ||
	    folio_test_swapcache(folio) || folio_maybe_dma_pinned(folio) ||
	    folio_ref_count(folio) != folio_mapcount(folio))
		return VMSPLICE_FB_DST_BUSY;
	*oldp = folio;
	return VMSPLICE_MOVED;
}

/*
 * The page table for @addr, allocated if needed, as mfill_atomic() finds
 * it, in *@pmdp.  A huge PMD there is split first if @split and its THP
 * could be replaced (its pages stay mapped, by PTEs); a THP that could not
 * be (pinned, shared) is left whole and the destination is busy.  Called
 * before any lock is taken: allocating under the anon_vma lock could
 * recurse into reclaim, whose rmap walks take that lock.
 */
static int vmsplice_dst_pmd(struct vm_area_struct *vma, unsigned long addr,
			    bool split, pmd_t **pmdp)
{
	struct mm_struct *mm = vma->vm_mm;
	pgd_t *pgd = pgd_offset(mm, addr);
	pmd_t *pmd, pmdval;
	p4d_t *p4d;
	pud_t *pud;

	p4d = p4d_alloc(mm, pgd, addr);
	if (!p4d)
		return VMSPLICE_FB_BUSY;
	pud = pud_alloc(mm, p4d, addr);
	if (!pud)
		return VMSPLICE_FB_BUSY;
	pmd = pmd_alloc(mm, pud, addr);
	if (!pmd)
		return VMSPLICE_FB_BUSY;
	pmdval = pmdp_get_lockless(pmd);
	if (pmd_trans_huge(pmdval)) {
		struct folio *old = NULL;
		spinlock_t *ptl;	/* the PMD's lock */
		int ret = VMSPLICE_FB_DST_BUSY;

		ptl = pmd_lock(mm, pmd);
		pmdval = pmdp_get(pmd);
		if (split)
			ret = pmd_trans_huge(pmdval) ?
				vmsplice_check_dst_pmd(pmdval, &old) :
				VMSPLICE_MOVED;
		spin_unlock(ptl);
		if (ret)
			return ret;
		split_huge_pmd(vma, pmd, addr);
		pmdval = pmdp_get_lockless(pmd);
	}
	if (unlikely(pmd_none(pmdval)) && unlikely(__pte_alloc(mm, pmd)))
		return VMSPLICE_FB_BUSY;
	pmdval = pmdp_get_lockless(pmd);
	if (unlikely(!pmd_present(pmdval) || pmd_trans_huge(pmdval) ||
		     pmd_devmap(pmdval) || pmd_bad(pmdval)))
		return VMSPLICE_FB_BUSY;
	*pmdp = pmd;
	return VMSPLICE_MOVED;
}

/*
 * May the page mapped by @ptent at @addr be replaced?  Only one nothing
 * else can see: mapped here only (PageAnonExclusive: not shared with a
 * forked child, not KSM), no reference but its mappings (not in a pipe
 * buffer that would deliver its old bytes later, not held by GUP), not
 * pinned (a device writing into it expects the data there), not in the
 * swap cache.  Otherwise the reader gets a copy written into it, which all
 * of them see.  An empty entry or the zero page may always be replaced.
 * Swap, migration and marker entries: let the copy fault them in.
 */
static int vmsplice_check_dst_pte(struct vm_area_struct *vma,
				  unsigned long addr, pte_t ptent, bool may_drain,
				  struct folio **oldp, struct page **old_pagep)
{
	struct folio *folio;
	struct page *page;

	if (pte_none(ptent))
		return VMSPLICE_MOVED;
	if (!pte_present(ptent))
		return VMSPLICE_FB_DST_BUSY;
	page = vm_normal_page(vma, addr, ptent);
	if (!page)
		return is_zero_pfn(pte_pfn(ptent)) ? VMSPLICE_MOVED :
						      VMSPLICE_FB_DST_BUSY;
	folio = page_folio(page);
	if (!folio_test_anon(folio) || folio_test_ksm(folio) ||
	    !PageAnonExclusive(page) || folio_test_swapcache(folio) ||
	    folio_maybe_dma_pinned(folio))
		return VMSPLICE_FB_DST_BUSY;
	if (folio_ref_count(folio) != folio_mapcount(folio)) {
		/* The LRU batch of a CPU the reader faulted it on? */
		if (may_drain && !folio_test_lru(folio) &&
		    folio_ref_count(folio) == folio_mapcount(folio) + 1)
			return VMSPLICE_NEED_DRAIN;
		return VMSPLICE_FB_DST_BUSY;
	}
	*oldp = folio;
	*old_pagep = page;
	return VMSPLICE_MOVED;
}

/* Map the small, locked, checked @folio at @addr: PTE locked and empty. */
static void vmsplice_install_pte(struct vm_area_struct *vma,
				 struct folio *folio, unsigned long addr,
				 pte_t *pte)
{
	struct page *page = folio_page(folio, 0);

	vmsplice_retarget(folio, vma, addr);
	/* The mapping's reference; the pipe buffer drops its own. */
	folio_get(folio);
	folio_add_anon_rmap_pte(folio, page, vma, addr, RMAP_EXCLUSIVE);
	set_pte_at(vma->vm_mm, addr, pte, vmsplice_mk_pte(vma, page));
	update_mmu_cache(vma, addr, pte);
}

/*
 * The destination page is populated: replace it atomically under the
 * page-table lock, as a write fault replaces a page it copies
 * (wp_page_copy()): the old entry is cleared and flushed from every TLB
 * before the new page is mapped, and secondary MMUs are told.  A sibling
 * thread sees the old page or the new one, never an empty one.  @folio
 * NULL: a gifted zero page, so the old page is only cleared.
 */
static int vmsplice_move_replace(struct vmsplice_move *vm, struct folio *folio,
				 struct anon_vma *anon_vma, unsigned long addr)
{
	struct vm_area_struct *vma = vm->vma;
	struct mm_struct *mm = vm->mm;
	struct mmu_notifier_range range;
	struct page *old_page = NULL;
	struct folio *old = NULL;
	spinlock_t *ptl;	/* the PTE table's lock */
	pte_t *pte, ptent;
	pmd_t *pmd;
	int ret;

	if (folio && (!anon_vma || unlikely(anon_vma_prepare(vma))))
		return VMSPLICE_FB_BUSY;
	ret = vmsplice_dst_pmd(vma, addr, true, &pmd);
	if (ret)
		return ret;
	/*
	 * A page the reader faulted in lately may sit in this CPU's LRU
	 * batch, whose reference would make it look used elsewhere.
	 */
	lru_add_drain();

	mmu_notifier_range_init(&range, MMU_NOTIFY_CLEAR, 0, mm, addr,
				addr + PAGE_SIZE);
	mmu_notifier_invalidate_range_start(&range);
	if (folio)
		anon_vma_lock_write(anon_vma);
	pte = pte_offset_map_lock(mm, pmd, addr, &ptl);
	if (!pte) {
		ret = VMSPLICE_FB_BUSY;	/* the PMD changed under us */
		goto out;
	}
	ptent = ptep_get(pte);
	/* Only a small page may retry after draining: @folio is one. */
	ret = vmsplice_check_dst_pte(vma, addr, ptent, folio && !vm->drained,
				     &old, &old_page);
	if (ret)
		goto out_unlock;
	if (folio) {
		/* Whoever holds the folio lock (reclaim, migration) owns it. */
		if (!folio_trylock(folio)) {
			ret = VMSPLICE_FB_BUSY;
			goto out_unlock;
		}
		ret = vmsplice_check_folio_locked(vm, folio, anon_vma);
		if (ret) {
			folio_unlock(folio);
			goto out_unlock;
		}
	}
	if (!pte_none(ptent)) {
		pte_t orig;

		/* The old page's lines in a virtually indexed cache, as COW. */
		flush_cache_page(vma, addr, pte_pfn(ptent));
		orig = ptep_clear_flush(vma, addr, pte);

		/*
		 * GUP-fast takes no page-table lock: a reference or pin taken
		 * between the check above and the clear survives it.  Look
		 * again now that the entry is gone from every TLB, as KSM's
		 * write_protect_page() and UFFDIO_MOVE do (the barrier pairs
		 * with try_grab_folio(), see __folio_try_share_anon_rmap()),
		 * and put the entry back if anyone holds the page.
		 */
		if (old) {
			if (IS_ENABLED(CONFIG_HAVE_GUP_FAST)) {
				/* Paired with the one in try_grab_folio(). */
				smp_mb();
			}
			if (folio_maybe_dma_pinned(old) ||
			    folio_ref_count(old) != folio_mapcount(old)) {
				set_pte_at(mm, addr, pte, orig);
				if (folio)
					folio_unlock(folio);
				ret = VMSPLICE_FB_DST_BUSY;
				goto out_unlock;
			}
			folio_remove_rmap_pte(old, old_page, vma);
			add_mm_counter(mm, MM_ANONPAGES, -1);
		}
	}
	if (folio) {
		vmsplice_install_pte(vma, folio, addr, pte);
		add_mm_counter(mm, MM_ANONPAGES, 1);
		folio_unlock(folio);
	}
out_unlock:
	pte_unmap_unlock(pte, ptl);
out:
	if (folio)
		anon_vma_unlock_write(anon_vma);
	mmu_notifier_invalidate_range_end(&range);
	if (ret)
		return ret;
	/* Flushed from the TLBs already: the old page may go. */
	if (old)
		folio_put(old);
	return folio ? VMSPLICE_MOVED : VMSPLICE_MOVED_ZERO;
}

/*
 * Move @n small folios, the pages of consecutive pipe buffers from @slot,
 * to @addr onwards: one VMA, one page table, one anon_vma to lock, and
 * empty destination entries (a populated one ends the batch with
 * VMSPLICE_DST_POPULATED).  Returns how many moved; *@result says why the
 * next one did not (VMSPLICE_MOVED if all did).
 */
static unsigned int vmsplice_move_small(struct vmsplice_move *vm,
					struct pipe_inode_info *pipe,
					unsigned int slot, unsigned int n,
					unsigned long addr, int *result)
{
	struct anon_vma *anon_vma = vmsplice_buf_anon_vma(pipe_buf(pipe, slot));
	struct vm_area_struct *vma = vm->vma;
	struct mm_struct *mm = vm->mm;
	spinlock_t *ptl;	/* the PTE table's lock */
	unsigned int i;
	pte_t *pte;
	pmd_t *pmd;
	int ret = VMSPLICE_MOVED;

	for (i = 0; i < n; i++) {
		struct folio *folio = page_folio(pipe_buf(pipe, slot + i)->page);

		ret = vmsplice_check_folio(vm, folio, vma, addr + i * PAGE_SIZE);
		if (ret)
			break;
	}
	n = i;
	if (!n)
		goto out;
	/* The giver's anon_vma went before the gift: nothing to lock. */
	if (!anon_vma || unlikely(anon_vma_prepare(vma))) {
		ret = VMSPLICE_FB_BUSY;
		n = 0;
		goto out;
	}
	ret = vmsplice_dst_pmd(vma, addr, true, &pmd);
	if (ret) {
		n = 0;
		goto out;
	}

	anon_vma_lock_write(anon_vma);
	pte = pte_offset_map_lock(mm, pmd, addr, &ptl);
	if (!pte) {
		anon_vma_unlock_write(anon_vma);
		ret = VMSPLICE_FB_BUSY;	/* the PMD changed under us */
		n = 0;
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct folio *folio = page_folio(pipe_buf(pipe, slot + i)->page);

		if (!pte_none(ptep_get(pte + i))) {
			ret = VMSPLICE_DST_POPULATED;
			break;
		}
		/* Whoever holds the folio lock (reclaim, migration) owns it. */
		if (!folio_trylock(folio)) {
			ret = VMSPLICE_FB_BUSY;
			break;
		}
		ret = vmsplice_check_folio_locked(vm, folio, anon_vma);
		if (!ret)
			vmsplice_install_pte(vma, folio, addr + i * PAGE_SIZE,
					     pte + i);
		folio_unlock(folio);
		if (ret)
			break;
	}
	if (i)
		add_mm_counter(mm, MM_ANONPAGES, i);
	/* Empty entries filled: no TLB flush, as for a fault. */
	pte_unmap_unlock(pte, ptl);
	anon_vma_unlock_write(anon_vma);
	n = i;
out:
	*result = ret;
	return n;
}

/*
 * A gifted zero page, or the huge zero folio: the giver never wrote there.
 * The destination must read zeros.  An empty or zero-page entry already
 * does; a populated page is cleared by vmsplice_move_replace().  Nothing is
 * allocated, nothing copied.  Returns the bytes done.
 */
static size_t vmsplice_move_zero(struct vmsplice_move *vm, unsigned long addr,
				 size_t len, int *result)
{
	size_t done = 0;
	int ret = VMSPLICE_MOVED;

	while (done < len) {
		unsigned long a = addr + done;
		unsigned long next = pmd_addr_end(a, addr + len);
		pmd_t *pmd = mm_find_pmd(vm->mm, a);
		pmd_t pmdval;
		pte_t *pte;
		bool empty;

		pmdval = pmd ? pmdp_get_lockless(pmd) : __pmd(0);
		if (!pmd || pmd_none(pmdval) || is_huge_zero_pmd(pmdval)) {
			done = next - addr;
			continue;
		}
		/*
		 * A populated THP would be split and replaced page by page, one
		 * TLB flush each: writing zeros into it keeps it whole.
		 */
		if (pmd_trans_huge(pmdval)) {
			ret = VMSPLICE_FB_DST_BUSY;
			break;
		}
		/* A quick look, re-checked under the lock if it matters. */
		empty = false;
		pte = pte_offset_map(pmd, a);
		if (pte) {
			pte_t ptent = ptep_get(pte);

			empty = pte_none(ptent) ||
				(pte_present(ptent) && is_zero_pfn(pte_pfn(ptent)));
			pte_unmap(pte);
		}
		if (!empty) {
			ret = vmsplice_move_replace(vm, NULL, NULL, a);
			if (ret != VMSPLICE_MOVED_ZERO)
				break;
			ret = VMSPLICE_MOVED;
		}
		done += PAGE_SIZE;
	}
	*result = ret;
	return done;
}

#ifdef CONFIG_TRANSPARENT_HUGEPAGE
/*
 * Map a whole PMD-sized folio with one PMD at @addr (PMD-aligned, THP
 * allowed there), as do_huge_pmd_anonymous_page() maps a new THP: a page
 * table deposited for a later split, the mm's counters raised.  An empty
 * PMD is filled; a huge zero page or an exclusive THP there is replaced
 * atomically, keeping its deposited page table.  A page table there:
 * VMSPLICE_USE_PTES.
 */
static int vmsplice_move_pmd(struct vmsplice_move *vm, struct folio *folio,
			     struct anon_vma *anon_vma, unsigned long addr,
			     bool tails_clear)
{
	struct vm_area_struct *vma = vm->vma;
	struct mm_struct *mm = vm->mm;
	struct mmu_notifier_range range;
	struct folio *old = NULL;
	pgtable_t pgtable = NULL;
	pmd_t *pmd, pmdval, entry;
	bool populated;
	spinlock_t *ptl;	/* the PMD's lock */
	pgd_t *pgd;
	p4d_t *p4d;
	pud_t *pud;
	int ret, i;

	pgd = pgd_offset(mm, addr);
	p4d = p4d_alloc(mm, pgd, addr);
	pud = p4d ? pud_alloc(mm, p4d, addr) : NULL;
	pmd = pud ? pmd_alloc(mm, pud, addr) : NULL;
	if (!pmd)
		return VMSPLICE_FB_BUSY;
	pmdval = pmdp_get_lockless(pmd);
	populated = !pmd_none(pmdval);
	if (populated && !pmd_trans_huge(pmdval))
		return VMSPLICE_USE_PTES;
	if (!populated) {
		/* Allocated before any lock: see vmsplice_dst_pmd(). */
		pgtable = pte_alloc_one(mm);
		if (!pgtable)
			return VMSPLICE_FB_BUSY;
	} else {
		lru_add_drain();	/* see vmsplice_move_replace() */
		mmu_notifier_range_init(&range, MMU_NOTIFY_CLEAR, 0, mm, addr,
					addr + HPAGE_PMD_SIZE);
		mmu_notifier_invalidate_range_start(&range);
	}

	anon_vma_lock_write(anon_vma);
	if (!folio_trylock(folio)) {
		ret = VMSPLICE_FB_BUSY;
		goto out;
	}
	ptl = pmd_lock(mm, pmd);
	/* As it was when we chose the path (a fault may have filled it). */
	if (!pmd_same(pmdp_get(pmd), pmdval)) {
		ret = VMSPLICE_FB_BUSY;
		goto out_unlock;
	}
	if (populated) {
		ret = vmsplice_check_dst_pmd(pmdval, &old);
		if (ret)
			goto out_unlock;
	}
	ret = vmsplice_check_folio_locked(vm, folio, anon_vma);
	if (ret)
		goto out_unlock;

	if (populated) {
		/* The old entry's deposited page table serves the new one. */
		pmd_t orig;

		flush_cache_range(vma, addr, addr + HPAGE_PMD_SIZE);
		orig = pmdp_huge_clear_flush(vma, addr, pmd);

		/* GUP-fast: see vmsplice_move_replace(). */
		if (old) {
			if (IS_ENABLED(CONFIG_HAVE_GUP_FAST)) {
				/* Paired with the one in try_grab_folio(). */
				smp_mb();
			}
			if (folio_maybe_dma_pinned(old) ||
			    folio_ref_count(old) != folio_mapcount(old)) {
				set_pmd_at(mm, addr, pmd, orig);
				ret = VMSPLICE_FB_DST_BUSY;
				goto out_unlock;
			}
			folio_remove_rmap_pmd(old, &old->page, vma);
			add_mm_counter(mm, MM_ANONPAGES, -HPAGE_PMD_NR);
		}
	} else {
		pgtable_trans_huge_deposit(mm, pmd, pgtable);
		mm_inc_nr_ptes(mm);
		pgtable = NULL;
	}
	/*
	 * A PMD-mapped THP carries PageAnonExclusive on its head only: a
	 * fork clears it there alone, and a split then gives every page the
	 * head's.  A tail still carrying it from PTE mappings in the giver
	 * would let a write after fork and split reuse a page the child
	 * shares.  Unless the giver unmapped it from a PMD (tails_clear:
	 * vmsplice_gift_unmap_thp()), clear it on all 511: that loop costs
	 * about as much as the rest of the move.
	 */
	if (!tails_clear) {
		for (i = 1; i < HPAGE_PMD_NR; i++)
			ClearPageAnonExclusive(folio_page(folio, i));
	} else if (IS_ENABLED(CONFIG_DEBUG_VM)) {
		for (i = 1; i < HPAGE_PMD_NR; i++) {
			struct page *tail = folio_page(folio, i);

			VM_WARN_ON_ONCE_FOLIO(PageAnonExclusive(tail), folio);
			ClearPageAnonExclusive(tail);
		}
	}
	vmsplice_retarget(folio, vma, addr);
	folio_get(folio);
	folio_add_anon_rmap_pmd(folio, &folio->page, vma, addr, RMAP_EXCLUSIVE);
	add_mm_counter(mm, MM_ANONPAGES, HPAGE_PMD_NR);
	entry = mk_huge_pmd(&folio->page, vma->vm_page_prot);
	entry = maybe_pmd_mkwrite(pmd_mkdirty(entry), vma);
	set_pmd_at(mm, addr, pmd, entry);
	update_mmu_cache_pmd(vma, addr, pmd);
	count_vm_event(VMSPLICE_MOVE_THP);
out_unlock:
	spin_unlock(ptl);
	folio_unlock(folio);
out:
	anon_vma_unlock_write(anon_vma);
	if (populated)
		mmu_notifier_invalidate_range_end(&range);
	if (pgtable)
		pte_free(mm, pgtable);
	if (old && !ret)
		folio_put(old);
	return ret;
}

/* Whether the reader asked for small pages at @vma (MADV_NOHUGEPAGE, prctl). */
static bool vmsplice_thp_disabled(struct vm_area_struct *vma)
{
	return vma_thp_disabled(vma, vma->vm_flags);
}
#else
/* Without THP there are no anonymous large folios to keep whole. */
static bool vmsplice_thp_disabled(struct vm_area_struct *vma)
{
	return false;
}
#endif /* CONFIG_TRANSPARENT_HUGEPAGE */

/*
 * Map a whole large folio by PTEs at @addr: an mTHP folio, or a THP whose
 * destination is not PMD-aligned or allows no THP.  The folio stays whole
 * (a THP-disabled destination gets it split afterwards).  It spans at most
 * two page tables (it is at most PMD-sized); both are locked, in the order
 * double_pt_lock() takes them, and every entry must be empty: all of the
 * folio is mapped, or none of it.  Returns the bytes mapped.
 */
static size_t vmsplice_move_ptes(struct vmsplice_move *vm, struct folio *folio,
				 struct anon_vma *anon_vma, unsigned long addr,
				 int *result)
{
	struct vm_area_struct *vma = vm->vma;
	struct mm_struct *mm = vm->mm;
	unsigned int nr = folio_nr_pages(folio), done = 0, i;
	unsigned long end = addr + folio_size(folio);
	unsigned long mid = pmd_addr_end(addr, end);
	unsigned int cnt[2] = { (mid - addr) >> PAGE_SHIFT,
				(end - mid) >> PAGE_SHIFT };
	int tables = mid == end ? 1 : 2, ret, t;
	spinlock_t *ptls[2] = { NULL, NULL }, *first, *second;
	pte_t *ptes[2] = { NULL, NULL };
	pmd_t *pmds[2], pmdvals[2];

	/*
	 * Page tables first, before any lock (see vmsplice_dst_pmd()); a
	 * huge PMD there would only be split to find its entries in use.
	 */
	ret = vmsplice_dst_pmd(vma, addr, false, &pmds[0]);
	if (!ret && tables == 2)
		ret = vmsplice_dst_pmd(vma, mid, false, &pmds[1]);
	if (ret) {
		*result = ret;
		return 0;
	}

	anon_vma_lock_write(anon_vma);
	if (!folio_trylock(folio)) {
		ret = VMSPLICE_FB_BUSY;
		goto out_anon;
	}
	ret = vmsplice_check_folio_locked(vm, folio, anon_vma);
	if (ret)
		goto out_folio;
	for (t = 0; t < tables; t++) {
		pmdvals[t] = pmdp_get_lockless(pmds[t]);
		ptes[t] = pte_offset_map_nolock(mm, pmds[t], t ? mid : addr,
						&ptls[t]);
		if (!ptes[t]) {
			ret = VMSPLICE_FB_BUSY;	/* the PMD changed under us */
			goto out_unmap;
		}
	}
	first = ptls[0];
	second = tables == 2 && ptls[1] != ptls[0] ? ptls[1] : NULL;
	if (second && second < first)
		swap(first, second);
	spin_lock(first);
	if (second)
		spin_lock_nested(second, SINGLE_DEPTH_NESTING);
	for (t = 0; !ret && t < tables; t++) {
		/* The table is still the one mapped (nothing freed it). */
		if (!pmd_same(pmdvals[t], pmdp_get_lockless(pmds[t]))) {
			ret = VMSPLICE_FB_BUSY;
			break;
		}
		for (i = 0; i < cnt[t]; i++) {
			if (!pte_none(ptep_get(ptes[t] + i))) {
				ret = VMSPLICE_FB_DST_BUSY;
				break;
			}
		}
	}
	if (!ret) {
		vmsplice_retarget(folio, vma, addr);
		/* One reference per PTE mapping a large folio. */
		folio_ref_add(folio, nr);
		for (t = 0; t < tables; t++) {
			unsigned long a = addr + done * PAGE_SIZE;
			struct page *page = folio_page(folio, done);

			folio_add_anon_rmap_ptes(folio, page, cnt[t], vma, a,
						 RMAP_EXCLUSIVE);
			set_ptes(mm, a, ptes[t], vmsplice_mk_pte(vma, page), cnt[t]);
			update_mmu_cache_range(NULL, vma, a, ptes[t], cnt[t]);
			done += cnt[t];
		}
		add_mm_counter(mm, MM_ANONPAGES, nr);
	}
	if (second)
		spin_unlock(second);
	spin_unlock(first);
out_unmap:
	for (t = tables - 1; t >= 0; t--)
		if (ptes[t])
			pte_unmap(ptes[t]);
out_folio:
	anon_vma_unlock_write(anon_vma);
	if (done == nr) {
		count_vm_event(VMSPLICE_MOVE_LARGE);
		/*
		 * THP disabled at the destination (MADV_NOHUGEPAGE, prctl):
		 * split it, mapped and locked, as the reader asked for small
		 * pages.  If the split fails the folio stays PTE-mapped.
		 */
		if (vmsplice_thp_disabled(vma) && !split_folio(folio))
			count_vm_event(VMSPLICE_MOVE_SPLIT);
	}
	folio_unlock(folio);
	*result = ret;
	return (size_t)done * PAGE_SIZE;
out_anon:
	anon_vma_unlock_write(anon_vma);
	*result = ret;
	return 0;
}

/* A whole large folio, one pipe buffer: with one PMD, or by PTEs. */
static size_t vmsplice_move_large(struct vmsplice_move *vm,
				  struct pipe_buffer *buf, unsigned long addr,
				  int *result)
{
	struct anon_vma *anon_vma = vmsplice_buf_anon_vma(buf);
	struct folio *folio = page_folio(buf->page);
	struct vm_area_struct *vma = vm->vma;
	int ret;

	ret = vmsplice_check_folio(vm, folio, vma, addr);
	/* The giver's anon_vma went before the gift: nothing to lock. */
	if (!ret && (!anon_vma || unlikely(anon_vma_prepare(vma))))
		ret = VMSPLICE_FB_BUSY;
	if (ret) {
		*result = ret;
		return 0;
	}
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	if (folio_order(folio) == HPAGE_PMD_ORDER &&
	    IS_ALIGNED(addr, HPAGE_PMD_SIZE) &&
	    thp_vma_suitable_order(vma, addr, HPAGE_PMD_ORDER) &&
	    thp_vma_allowable_order(vma, vma->vm_flags, TVA_ENFORCE_SYSFS,
				    HPAGE_PMD_ORDER)) {
		struct vmsplice_gift_ref *ref = vmsplice_buf_ref(buf);

		ret = vmsplice_move_pmd(vm, folio, anon_vma, addr,
					ref && ref->tails_clear);
		if (ret != VMSPLICE_USE_PTES) {
			*result = ret;
			return ret ? 0 : folio_size(folio);
		}
	}
#endif
	return vmsplice_move_ptes(vm, folio, anon_vma, addr, result);
}

/*
 * Buffer-level conditions.  Only buffers vmsplice_gift_to_pipe() made (its
 * ops, set nowhere else) that are still a gift (tee() and partial splices
 * clear the flag on the copies they make).  No address and no decision is
 * taken from a field another path could set: the 2013 proposal read a
 * user address from the buffer, which splice() from a file left
 * uninitialised.
 */
static int vmsplice_check_buf(const struct pipe_buffer *buf, size_t want,
			      const struct iov_iter *it)
{
	struct folio *folio = page_folio(buf->page);
	unsigned long addr;

	if (buf->ops != &vmsplice_gift_pipe_buf_ops ||
	    !(buf->flags & PIPE_BUF_FLAG_GIFT))
		return VMSPLICE_FB_NOT_GIFT;
	/* Pages of a large folio given without the rest cannot move alone. */
	if (folio_test_large(folio) && !is_huge_zero_folio(folio) &&
	    buf->len != folio_size(folio))
		return buf->offset || buf->len != PAGE_SIZE ?
			VMSPLICE_FB_PARTIAL : VMSPLICE_FB_LARGE;
	/*
	 * A moved folio replaces whole destination pages: all of the buffer,
	 * from offset 0, wanted by the reader, landing page-aligned within one
	 * iovec segment.
	 */
	if (buf->offset || !buf->len || !PAGE_ALIGNED(buf->len) ||
	    want < buf->len || !user_backed_iter(it))
		return VMSPLICE_FB_PARTIAL;
	addr = untagged_addr((unsigned long)iter_iov_addr(it));
	if (!PAGE_ALIGNED(addr) || vmsplice_iter_seg_len(it) < buf->len)
		return VMSPLICE_FB_PARTIAL;
	return VMSPLICE_MOVED;
}

/*
 * How many buffers from @slot can go in one batch with the first: small
 * folios, whole pages, consecutive destinations in one segment, one page
 * table and one VMA, given with the same anon_vma.
 */
static unsigned int vmsplice_small_run(struct vmsplice_move *vm,
				       struct pipe_inode_info *pipe,
				       unsigned int slot,
				       const struct iov_iter *it, size_t room)
{
	struct anon_vma *anon_vma = vmsplice_buf_anon_vma(pipe_buf(pipe, slot));
	unsigned long addr = untagged_addr((unsigned long)iter_iov_addr(it));
	unsigned long end = pmd_addr_end(addr, vm->vma->vm_end);
	unsigned int n = 1, max;

	room = min(room, vmsplice_iter_seg_len(it));
	max = min3((size_t)VMSPLICE_MOVE_BATCH, room / PAGE_SIZE,
		   (size_t)(end - addr) >> PAGE_SHIFT);
	while (n < max && slot + n != pipe->head) {
		const struct pipe_buffer *buf = pipe_buf(pipe, slot + n);
		struct folio *folio = page_folio(buf->page);

		if (buf->ops != &vmsplice_gift_pipe_buf_ops ||
		    !(buf->flags & PIPE_BUF_FLAG_GIFT) ||
		    buf->offset || buf->len != PAGE_SIZE ||
		    vmsplice_buf_anon_vma(buf) != anon_vma ||
		    folio_test_large(folio) ||
		    is_zero_folio(folio))
			break;
		n++;
	}
	return n;
}

/**
 * vmsplice_move_bufs - map gifted pipe buffers into the reader
 * @vm: the read
 * @pipe: the pipe, locked, not empty
 * @max: how many bytes the reader still wants
 * @result: why it stopped (enum vmsplice_move_result)
 *
 * Moves the buffers at the pipe's tail, in order, into the reader at the
 * position of @vm->iter, for as long as they can be moved: whole gifted
 * pages and folios in batches of small pages, each batch under one
 * page-table lock; a whole THP with one PMD.  Takes the reader's mmap_lock
 * if not held, and keeps it.  Neither @vm->iter nor the buffers are
 * consumed: the caller does that for the bytes returned, then copies the
 * buffer this stopped at (the rest of it, if part of it moved) for the
 * reason in @result.  Every byte moved is counted and traced here.
 *
 * Return: the number of bytes mapped into the reader.
 */
size_t vmsplice_move_bufs(struct vmsplice_move *vm,
			  struct pipe_inode_info *pipe, size_t max,
			  int *result)
{
	struct iov_iter it = *vm->iter;
	unsigned int slot = pipe->tail;
	size_t moved = 0;
	int ret = VMSPLICE_MOVED;

	/* A first iovec of length 0: the data goes to the next one. */
	if (iov_iter_count(&it) && !vmsplice_iter_seg_len(&it))
		iov_iter_advance(&it, 0);
	while (slot != pipe->head && moved < max) {
		struct pipe_buffer *buf = pipe_buf(pipe, slot);
		struct page *page = buf->page;
		unsigned long addr;
		unsigned int n, i;
		size_t done;

		ret = vmsplice_check_buf(buf, max - moved, &it);
		if (ret)
			break;
		addr = untagged_addr((unsigned long)iter_iov_addr(&it));
		ret = vmsplice_lock_dst(vm, addr, buf->len);
		if (ret)
			break;

		if (is_zero_page(page) || is_huge_zero_folio(page_folio(page))) {
			done = vmsplice_move_zero(vm, addr, buf->len, &ret);
			if (done)
				vmsplice_move_account(page, addr, done,
						      VMSPLICE_MOVED_ZERO);
			n = done == buf->len;
		} else if (folio_test_large(page_folio(page))) {
			done = vmsplice_move_large(vm, buf, addr, &ret);
			if (done)
				vmsplice_move_account(page, addr, done,
						      VMSPLICE_MOVED);
			n = done == buf->len;
		} else {
			n = vmsplice_small_run(vm, pipe, slot, &it, max - moved);
			n = vmsplice_move_small(vm, pipe, slot, n, addr, &ret);
			if (ret == VMSPLICE_DST_POPULATED) {
				struct pipe_buffer *b = pipe_buf(pipe, slot + n);

				ret = vmsplice_move_replace(vm, page_folio(b->page),
							    vmsplice_buf_anon_vma(b),
							    addr + n * PAGE_SIZE);
				if (!ret)
					n++;
			}
			/* Counted once for the batch, traced page by page. */
			count_vm_events(VMSPLICE_MOVE_PAGES, n);
			for (i = 0; trace_vmsplice_move_enabled() && i < n; i++)
				trace_vmsplice_move(addr + i * PAGE_SIZE,
						    page_to_pfn(pipe_buf(pipe, slot + i)->page),
						    1, VMSPLICE_MOVED);
			done = (size_t)n * PAGE_SIZE;
		}
		moved += done;
		iov_iter_advance(&it, done);
		slot += n;
		if (ret == VMSPLICE_NEED_DRAIN) {
			/*
			 * A per-CPU LRU batch (of a CPU the giver or the
			 * reader faulted on) holds a reference: drain them
			 * all, once per read, without the mmap_lock, and look
			 * again.
			 */
			vmsplice_move_unlock(vm);
			lru_add_drain_all();
			vm->drained = true;
			ret = VMSPLICE_MOVED;
			continue;
		}
		if (ret)
			break;
		/* A pipe full of THPs is a long walk: no lock but mmap_lock. */
		cond_resched();
	}
	*result = ret;
	return moved;
}
