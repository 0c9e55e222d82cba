// SPDX-License-Identifier: GPL-2.0
/*
 * mremap(MREMAP_DUP): a copy-on-write duplicate of a private range inside
 * one process.
 *
 *	new = mremap(old, len, len, MREMAP_MAYMOVE | MREMAP_DUP, 0);
 *
 * maps at @new a private mapping whose contents are those of [old, old+len)
 * at the time of the call, sharing every page copy-on-write with the
 * original exactly as fork() shares a private mapping with the child.  The
 * per-PTE work is fork()'s (copy_pte_range(), copy_huge_pmd()); what is here
 * is the walk over two ranges at different addresses of one mm, the new VMA
 * and the checks.  See Documentation/mm/mremap-dup.rst.
 */

#include <linux/hugetlb.h>
#include <linux/huge_mm.h>
#include <linux/khugepaged.h>
#include <linux/mempolicy.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mmu_notifier.h>
#include <linux/pagemap.h>
#include <linux/rmap.h>
#include <linux/security.h>
#include <linux/userfaultfd_k.h>
#include <asm/tlbflush.h>

#include "internal.h"
#include "vma.h"

#ifdef CONFIG_64BIT
#define VM_DUP_SEALED	VM_SEALED
#else
#define VM_DUP_SEALED	VM_NONE
#endif

/*
 * Flags of the original the duplicate does not get: it is not locked (as
 * fork() does not pass mlock on), not registered with any userfaultfd (as
 * fork() without UFFD_FEATURE_EVENT_FORK), not sealed (the seal is on the
 * original's addresses), and not a stack that grows: it is a mapping of
 * fixed size.
 */
#define VM_DUP_CLEAR	(VM_LOCKED_MASK | __VM_UFFD_FLAGS | VM_DUP_SEALED | \
			 VM_GROWSDOWN | VM_GROWSUP)

/*
 * Check that @vma may be duplicated: a private mapping of anonymous memory
 * or of a file, nothing a driver or the owner said must not be copied.
 * Return: 0 or a negative errno.
 */
static int dup_check_vma(struct vm_area_struct *vma)
{
	/*
	 * A shared mapping has no private pages to share copy-on-write: a
	 * "duplicate" would be a second view of the same memory, which
	 * mmap() of the same object already gives.
	 */
	if (vma->vm_flags & (VM_SHARED | VM_MAYSHARE))
		return -EINVAL;
	/* Only copy-on-write mappings get write-protected and shared. */
	if (!is_cow_mapping(vma->vm_flags))
		return -EINVAL;
	/* hugetlb has its own page tables and reservations (no COW walk here). */
	if (is_vm_hugetlb_page(vma))
		return -EINVAL;
	/* Raw PFNs and device memory: no struct page to share. */
	if (vma->vm_flags & (VM_PFNMAP | VM_IO | VM_MIXEDMAP))
		return -EINVAL;
	/*
	 * MADV_DONTFORK / VM_DONTCOPY and MADV_WIPEONFORK (also set for
	 * MAP_DROPPABLE) say the contents must not reach a copy; special
	 * mappings (vDSO, driver mappings) are VM_DONTEXPAND and have state
	 * tied to their one address.
	 */
	if (vma->vm_flags & (VM_DONTCOPY | VM_WIPEONFORK | VM_DONTEXPAND))
		return -EINVAL;
	/*
	 * A shadow stack may only be written by the CPU's call instructions
	 * (and the kernel): a second copy would be a second valid stack.
	 */
	if (vma->vm_flags & VM_SHADOW_STACK)
		return -EINVAL;
	return 0;
}

/*
 * The new VMA: the original's over [addr, addr + len), at @new_addr, with
 * the same vm_pgoff, so that the shared anonymous pages' ->index is valid
 * in both.  Its anon_vma is made as fork() makes a child's (anon_vma_fork(),
 * valid within one mm: the root is the same): it is linked into the
 * original's anon_vmas, so that the reverse map finds the shared pages in
 * both, and gets one of its own for the pages it copies on write, which
 * rmap walks then look for in it alone rather than in every duplicate.  It
 * is never merged with a neighbour: its flags differ from the original's
 * (VM_DUP_CLEAR, VM_SOFTDIRTY), and it is a new mapping.
 */
static struct vm_area_struct *dup_vma_create(struct vm_area_struct *vma,
					     unsigned long addr,
					     unsigned long new_addr,
					     unsigned long len)
{
	pgoff_t pgoff = vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
	struct vm_area_struct *new;

	new = vm_area_dup(vma);
	if (!new)
		return NULL;
	vma_set_range(new, new_addr, new_addr + len, pgoff);
	/* A new mapping: soft-dirty as a whole, like anything mmap()ed. */
	vm_flags_init(new, (vma->vm_flags & ~VM_DUP_CLEAR) | VM_SOFTDIRTY);
	new->vm_userfaultfd_ctx = NULL_VM_UFFD_CTX;
	if (vma_dup_policy(vma, new))
		goto out_free_vma;
	/* On failure anon_vma_fork() has unlinked what it linked. */
	if (anon_vma_fork(new, vma))
		goto out_free_mempol;
	if (new->vm_file)
		get_file(new->vm_file);
	if (new->vm_ops && new->vm_ops->open)
		new->vm_ops->open(new);
	if (vma_link(vma->vm_mm, new))
		goto out_vma_link;
	return new;

out_vma_link:
	vma_close(new);
	if (new->vm_file)
		fput(new->vm_file);
	unlink_anon_vmas(new);
out_free_mempol:
	mpol_put(vma_policy(new));
out_free_vma:
	vm_area_free(new);
	return NULL;
}

/* The PMD over @addr if page tables exist down to it, else NULL. */
static pmd_t *dup_src_pmd(struct mm_struct *mm, unsigned long addr)
{
	pgd_t *pgd;
	p4d_t *p4d;
	pud_t *pud;

	pgd = pgd_offset(mm, addr);
	if (pgd_none_or_clear_bad(pgd))
		return NULL;
	p4d = p4d_offset(pgd, addr);
	if (p4d_none_or_clear_bad(p4d))
		return NULL;
	pud = pud_offset(p4d, addr);
	/*
	 * A huge PUD is DAX, a file page of a private file mapping: fork()
	 * skips it too and a fault fills the duplicate in.  Check before
	 * pud_bad(), which a huge PUD would fail.
	 */
	if (pud_trans_huge(*pud) || pud_devmap(*pud))
		return NULL;
	if (pud_none_or_clear_bad(pud))
		return NULL;
	return pmd_offset(pud, addr);
}

static pmd_t *dup_dst_pmd(struct mm_struct *mm, unsigned long addr)
{
	pgd_t *pgd;
	p4d_t *p4d;
	pud_t *pud;

	pgd = pgd_offset(mm, addr);
	p4d = p4d_alloc(mm, pgd, addr);
	if (!p4d)
		return NULL;
	pud = pud_alloc(mm, p4d, addr);
	if (!pud)
		return NULL;
	return pmd_alloc(mm, pud, addr);
}

/*
 * Share [addr, addr + len) of @src_vma copy-on-write into all of @dst_vma.
 * fork()'s copy_page_range() at two addresses: the walk goes by extents
 * that end at the next PMD boundary of either range, so that each extent
 * lies in one page table on both sides.  A THP is shared whole when both
 * addresses are PMD-aligned over it (copy_huge_pmd()), otherwise its PMD
 * mapping is split (the folio stays whole, PTE-mapped on both sides).
 */
static int dup_page_range(struct vm_area_struct *dst_vma,
			  struct vm_area_struct *src_vma, unsigned long addr,
			  unsigned long len)
{
	struct mm_struct *mm = src_vma->vm_mm;
	unsigned long dst_addr = dst_vma->vm_start;
	unsigned long start = addr, end = addr + len;
	struct mmu_notifier_range range;
	unsigned long extent;
	int ret = 0;

	/*
	 * As fork()'s vma_needs_copy(): without an anon_vma there is no
	 * anonymous page, and a fault fills the duplicate from the file (or
	 * the zero page) as it would the original.
	 */
	if (!src_vma->anon_vma)
		return 0;

	/*
	 * The original's PTEs lose write permission: secondary MMUs (KVM,
	 * devices) must drop their writable copies first.
	 */
	mmu_notifier_range_init(&range, MMU_NOTIFY_PROTECTION_PAGE, 0, mm,
				start, end);
	mmu_notifier_invalidate_range_start(&range);
	/*
	 * As in fork(): GUP-fast pinning a page concurrently sees the change
	 * and falls back to the slow path, so that a page pinned during the
	 * call is either copied here or pinned after it is write-protected.
	 */
	vma_assert_write_locked(src_vma);
	/*
	 * A page is about to be mapped at a second virtual address: write
	 * back what a virtually indexed cache holds of the first, as fork()
	 * (flush_cache_dup_mm()) and mremap() (flush_cache_range()) do.
	 */
	flush_cache_range(src_vma, start, end);
	raw_write_seqcount_begin(&mm->write_protect_seq);

	for (; addr < end; addr += extent, dst_addr += extent) {
		pmd_t *src_pmd, *dst_pmd;

		cond_resched();
		/*
		 * The mmap_lock is held for writing: a huge range must not keep
		 * a task the OOM killer chose from exiting.  The caller unmaps
		 * what was duplicated so far.
		 */
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		extent = min(pmd_addr_end(addr, end) - addr,
			     pmd_addr_end(dst_addr, dst_vma->vm_end) - dst_addr);
		src_pmd = dup_src_pmd(mm, addr);
		/* Nothing mapped here: nothing to share, no table to make. */
		if (!src_pmd || pmd_none(*src_pmd))
			continue;
		dst_pmd = dup_dst_pmd(mm, dst_addr);
		if (!dst_pmd) {
			ret = -ENOMEM;
			break;
		}
		if (is_swap_pmd(*src_pmd) || pmd_trans_huge(*src_pmd) ||
		    pmd_devmap(*src_pmd)) {
			/* extent == PMD size: both addresses are aligned. */
			if (extent == PMD_SIZE) {
				ret = copy_huge_pmd(mm, mm, dst_pmd, src_pmd,
						    dst_addr, addr, dst_vma,
						    src_vma);
				if (ret == -ENOMEM)
					break;
				if (!ret)
					continue;
				/* -EAGAIN: split (pinned), copy the PTEs */
				ret = 0;
			} else {
				split_huge_pmd(src_vma, src_pmd, addr);
			}
		}
		if (pmd_none_or_clear_bad(src_pmd))
			continue;
		/*
		 * -EBUSY (a device-exclusive entry not restored) and -EHWPOISON
		 * (a page that had to be copied is poisoned) become -ENOMEM, as
		 * fork()'s copy_pmd_range() reports them.
		 */
		if (copy_pte_range(dst_vma, src_vma, dst_pmd, src_pmd,
				   dst_addr, addr, addr + extent)) {
			ret = -ENOMEM;
			break;
		}
	}

	raw_write_seqcount_end(&mm->write_protect_seq);
	/*
	 * Before the call returns, no CPU may keep a writable TLB entry for
	 * a page now shared: a write through one would show in the
	 * duplicate.  Flushing the original's range is enough even when
	 * both ranges share a page table: the duplicate's PTEs were empty.
	 */
	flush_tlb_range(src_vma, start, end);
	mmu_notifier_invalidate_range_end(&range);
	return ret;
}

/* Where page offset 0 of @vma's anonymous memory would be mapped. */
static unsigned long dup_linear_base(struct vm_area_struct *vma)
{
	return vma->vm_start - (vma->vm_pgoff << PAGE_SHIFT);
}

/**
 * mremap_dup_lock_unique - lock a folio's anon_vma if all map it at one address
 * @folio: the locked anonymous folio
 * @vma: a VMA that maps it
 *
 * KSM turns a page into a KSM page in place only when every mapping of it
 * is at the address @vma maps it at: rmap_walk_ksm() looks for a KSM
 * page's mappings at the recorded address only, in this mm and in forked
 * children, where fork() keeps the address.  A duplicate that
 * mremap(MREMAP_DUP) made, in this mm or in a child, maps it elsewhere
 * (so does a child's mremap() move of a range it still shares).  Every VMA
 * that may map the folio is in its anon_vma's tree over the folio's page
 * offsets; one whose linear base differs from @vma's maps them elsewhere.
 * The lock is kept until the caller has converted the folio: a duplicate
 * links its VMA into that tree (anon_vma_fork()) before it copies any
 * entry, so one made meanwhile waits and then copies the KSM page.
 *
 * Context: the caller holds the folio lock, which keeps the folio's
 * anon_vma from being freed (as for rmap_walk_anon_lock()), and @vma's
 * mmap_lock.
 * Return: the folio's anon_vma, read-locked, when no VMA maps the folio at
 * another address; NULL, with nothing locked, when one may.
 */
struct anon_vma *mremap_dup_lock_unique(struct folio *folio,
					struct vm_area_struct *vma)
{
	pgoff_t first = folio_pgoff(folio);
	pgoff_t last = first + folio_nr_pages(folio) - 1;
	unsigned long base = dup_linear_base(vma);
	struct anon_vma *anon_vma;
	struct anon_vma_chain *avc;

	VM_WARN_ON_ONCE_FOLIO(!folio_test_locked(folio), folio);
	anon_vma = folio_anon_vma(folio);
	if (!anon_vma)
		return NULL;
	anon_vma_lock_read(anon_vma);
	anon_vma_interval_tree_foreach(avc, &anon_vma->rb_root, first, last) {
		if (dup_linear_base(avc->vma) != base) {
			anon_vma_unlock_read(anon_vma);
			return NULL;
		}
	}
	return anon_vma;
}

/*
 * Where the duplicate goes without MREMAP_FIXED: for anonymous memory at
 * least a PMD long, an address with the same offset in a PMD as the
 * original, so that its THPs can stay PMD-mapped on both sides.
 */
static unsigned long dup_get_area(struct vm_area_struct *vma,
				  unsigned long addr, unsigned long len)
{
	pgoff_t pgoff = vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
	unsigned long area;

	if (vma_is_anonymous(vma) && len >= PMD_SIZE && len + PMD_SIZE > len) {
		area = get_unmapped_area(NULL, 0, len + PMD_SIZE, 0, 0);
		if (!IS_ERR_VALUE(area))
			return area + ((addr - area) & ~PMD_MASK);
	}
	return get_unmapped_area(vma->vm_file, 0, len, pgoff, 0);
}

/* mremap_dup() with the mmap_lock held for writing. */
static unsigned long dup_locked(unsigned long addr, unsigned long len,
				unsigned long flags, unsigned long new_addr,
				struct list_head *uf_unmap)
{
	struct mm_struct *mm = current->mm;
	unsigned long pages = len >> PAGE_SHIFT;
	struct vm_area_struct *vma, *new;
	unsigned long charged = 0;
	long ret;

	vma = vma_lookup(mm, addr);
	/* Like any mremap(): the range must be mapped, by one VMA. */
	if (!vma || len > vma->vm_end - addr)
		return -EFAULT;
	ret = dup_check_vma(vma);
	if (ret)
		return ret;
	/*
	 * One more VMA, and with MREMAP_FIXED the unmap may split one: stay
	 * below the limit as mremap_to() does, checked before anything
	 * changes.
	 */
	if (mm->map_count + 2 >= sysctl_max_map_count - 3)
		return -ENOMEM;
	/* The duplicate counts against RLIMIT_AS and RLIMIT_DATA. */
	if (!may_expand_vm(mm, vma->vm_flags & ~VM_DUP_CLEAR, pages))
		return -ENOMEM;
	/*
	 * Overcommit accounting: a private writable mapping is charged for
	 * its whole length (each side may come to own a copy of every page),
	 * as fork() charges the child.
	 */
	if (vma->vm_flags & VM_ACCOUNT) {
		if (security_vm_enough_memory_mm(mm, pages))
			return -ENOMEM;
		charged = pages;
	}

	if (flags & MREMAP_FIXED) {
		/*
		 * The checks mmap(MAP_FIXED) makes of an address (the
		 * architecture's limits, mmap_min_addr), before anything is
		 * unmapped.
		 */
		ret = get_unmapped_area(vma->vm_file, new_addr, len,
					vma->vm_pgoff +
					((addr - vma->vm_start) >> PAGE_SHIFT),
					MAP_FIXED);
		if (IS_ERR_VALUE(ret))
			goto out_unacct;
		/* do_munmap() refuses a sealed destination (EPERM). */
		ret = do_munmap(mm, new_addr, len, uf_unmap);
		if (ret)
			goto out_unacct;
		/* The unmap did not touch the original (no overlap), re-find. */
		vma = vma_lookup(mm, addr);
	} else {
		new_addr = dup_get_area(vma, addr, len);
		if (IS_ERR_VALUE(new_addr)) {
			ret = new_addr;
			goto out_unacct;
		}
	}

	/* Page faults on the original wait until the copy is made. */
	vma_start_write(vma);
	new = dup_vma_create(vma, addr, new_addr, len);
	if (!new) {
		ret = -ENOMEM;
		goto out_unacct;
	}
	/* From here the new VMA owns the charge: munmap() returns it. */
	vm_stat_account(mm, new->vm_flags, pages);

	ret = dup_page_range(new, vma, addr, len);
	if (ret) {
		VMA_ITERATOR(vmi, mm, new_addr);

		/* Drop what was shared so far; the original is unchanged. */
		do_vmi_munmap(&vmi, mm, new_addr, len, uf_unmap, false);
		return ret;
	}
	khugepaged_enter_vma(new, new->vm_flags);
	return new_addr;

out_unacct:
	if (charged)
		vm_unacct_memory(charged);
	return ret;
}

/**
 * mremap_dup - mremap(MREMAP_DUP): a copy-on-write duplicate of a range
 * @addr: start of the private range to duplicate (page aligned)
 * @old_len: its length
 * @new_len: must equal @old_len
 * @flags: MREMAP_MAYMOVE | MREMAP_DUP, optionally MREMAP_FIXED
 * @new_addr: with MREMAP_FIXED, where the duplicate goes (whatever is
 *	mapped there is unmapped first)
 *
 * Called from the mremap() system call with the tag stripped from @addr.
 *
 * Return: the address of the duplicate, or a negative errno: EINVAL for
 * bad flags, lengths or addresses and for mappings that cannot be
 * duplicated (shared, hugetlb, PFN/IO/mixed maps, VM_DONTCOPY,
 * VM_WIPEONFORK, special mappings); EFAULT when the range is not one
 * mapping; ENOMEM for map count, rlimit, overcommit or allocation
 * failure; EPERM for a sealed MREMAP_FIXED destination; EINTR.
 */
unsigned long mremap_dup(unsigned long addr, unsigned long old_len,
			 unsigned long new_len, unsigned long flags,
			 unsigned long new_addr)
{
	struct mm_struct *mm = current->mm;
	LIST_HEAD(uf_unmap);
	unsigned long len, ret;

	/*
	 * A duplicate is always a new mapping of the same size:
	 * MREMAP_MAYMOVE is required, MREMAP_DONTUNMAP and resizing are not
	 * defined for it.
	 */
	if (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DUP))
		return -EINVAL;
	if (!(flags & MREMAP_MAYMOVE))
		return -EINVAL;
	if (offset_in_page(addr))
		return -EINVAL;
	len = PAGE_ALIGN(old_len);
	/* PAGE_ALIGN() of a huge length wraps to 0. */
	if (!len || PAGE_ALIGN(new_len) != len)
		return -EINVAL;
	if (flags & MREMAP_FIXED) {
		if (offset_in_page(new_addr))
			return -EINVAL;
		if (len > TASK_SIZE || new_addr > TASK_SIZE - len)
			return -EINVAL;
		/* The duplicate cannot replace (part of) its original. */
		if (addr + len > new_addr && new_addr + len > addr)
			return -EINVAL;
	}

	if (mmap_write_lock_killable(mm))
		return -EINTR;
	ret = dup_locked(addr, len, flags, new_addr, &uf_unmap);
	mmap_write_unlock(mm);
	userfaultfd_unmap_complete(mm, &uf_unmap);
	return ret;
}
