// SPDX-License-Identifier: GPL-2.0
/*
 * mremap(MREMAP_DUP): one table of memory kinds (the fixture variants)
 * times cases (the TEST_Fs), as in selftests/mm/cow.c.  Every case says
 * what a kernel bug would let a process observe.  Page frame numbers come
 * from /proc/self/pagemap (root).  On a kernel without MREMAP_DUP every
 * case SKIPs with that reason.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/dup.h"
#include "lib/mem.h"
#include "lib/pagemap.h"
#include "lib/pattern.h"
#include "lib/vmstat.h"
#include "lib/xfer.h"

#define PS		4096UL
#define PMD_SZ		(2UL << 20)
#define MTHP_SZ		(64UL << 10)
#define MTHP_CTL	"/sys/kernel/mm/transparent_hugepage/hugepages-64kB/enabled"
#define KSM_RUN		"/sys/kernel/mm/ksm/run"

enum kind {
	K_BASE,		/* 4 KiB pages, written */
	K_THP,		/* PMD-mapped THPs, duplicated at an aligned address */
	K_THP_UNALIGNED,	/* the same, duplicated 4 KiB off alignment */
	K_MTHP,		/* 64 KiB mTHP folios */
	K_ZERO,		/* read only: the shared zero page */
	K_SWAP,		/* written, then paged out to (zram) swap */
	K_KSM,		/* identical pages merged by KSM */
	K_PINNED,	/* pinned as io_uring fixed buffers */
	K_FILE,		/* MAP_PRIVATE of a file, half written (anon), half read */
	K_SOFTDIRTY,	/* soft-dirty bits cleared before the call */
	K_UFFDWP,	/* userfaultfd write-protected (async mode) */
};

FIXTURE(dup) {
	char *map;		/* what to munmap */
	size_t maplen;
	char *src;		/* the range duplicated */
	size_t len;
	char *expect;		/* its contents at setup */
	int pm, ring, uffd, memfd;
	char old_mthp[32], old_ksm[8];
};

FIXTURE_VARIANT(dup) {
	enum kind kind;
	size_t len;
	/* The duplicate maps the original's pages (else it got copies). */
	bool shares;
	/* The pages are mapped in the duplicate right after the call. */
	bool present;
	/* A write to the original keeps its page (pinned: exclusive). */
	bool src_write_in_place;
};

FIXTURE_VARIANT_ADD(dup, base4k) {
	.kind = K_BASE, .len = 64 * PS, .shares = true, .present = true,
};
FIXTURE_VARIANT_ADD(dup, thp) {
	.kind = K_THP, .len = 2 * PMD_SZ, .shares = true, .present = true,
};
FIXTURE_VARIANT_ADD(dup, thp_unaligned) {
	.kind = K_THP_UNALIGNED, .len = 2 * PMD_SZ, .shares = true,
	.present = true,
};
FIXTURE_VARIANT_ADD(dup, mthp64k) {
	.kind = K_MTHP, .len = 4 * MTHP_SZ, .shares = true, .present = true,
};
FIXTURE_VARIANT_ADD(dup, zeropage) {
	.kind = K_ZERO, .len = 64 * PS, .shares = true, .present = true,
};
FIXTURE_VARIANT_ADD(dup, swapped) {
	.kind = K_SWAP, .len = 64 * PS, .shares = true, .present = false,
};
FIXTURE_VARIANT_ADD(dup, ksm) {
	.kind = K_KSM, .len = 8 * PS, .shares = false, .present = true,
};
FIXTURE_VARIANT_ADD(dup, pinned) {
	.kind = K_PINNED, .len = 16 * PS, .shares = false, .present = true,
	.src_write_in_place = true,
};
FIXTURE_VARIANT_ADD(dup, file_private) {
	.kind = K_FILE, .len = 64 * PS, .shares = true, .present = true,
};
FIXTURE_VARIANT_ADD(dup, softdirty) {
	.kind = K_SOFTDIRTY, .len = 64 * PS, .shares = true, .present = true,
};
FIXTURE_VARIANT_ADD(dup, uffd_wp) {
	.kind = K_UFFDWP, .len = 64 * PS, .shares = true, .present = true,
};

/* A @len region aligned to @align inside a larger anonymous mapping. */
static char *map_aligned(size_t len, size_t align, char **map, size_t *maplen)
{
	char *p = map_anon(len + align);
	uintptr_t a;

	if (!p)
		return NULL;
	a = ((uintptr_t)p + align - 1) & ~(align - 1);
	*map = p;
	*maplen = len + align;
	return (char *)a;
}

static void touch_read(const char *p, size_t len)
{
	for (size_t off = 0; off < len; off += PS)
		(void)*(volatile const char *)(p + off);
}

/* Whether ksmd merged all @n pages at @p into one, polled for 10 s. */
static bool ksm_all_merged(int pm, const char *p, size_t n)
{
	for (int i = 0; i < 2000; i++) {
		uint64_t first = pagemap_pfn(pm, p);
		size_t k = 1;

		while (first && k < n && pagemap_pfn(pm, p + k * PS) == first)
			k++;
		if (first && k == n)
			return true;
		/* polling ksmd, an asynchronous kernel thread */
		nanosleep(&(struct timespec){ 0, 5 * 1000 * 1000 }, NULL);
	}
	return false;
}

FIXTURE_SETUP(dup)
{
	size_t len = variant->len;
	char why[160];

	self->ring = self->uffd = self->memfd = -1;
	self->old_mthp[0] = self->old_ksm[0] = 0;
	self->len = len;
	REQUIRE_DUP();
	self->pm = pagemap_open();
	ASSERT_LE(0, self->pm);
	if (!pagemap_pfns_visible(self->pm))
		SKIP(return, "PFNs hidden from this process: run as root");
	self->expect = malloc(len);
	ASSERT_NE(NULL, self->expect);

	switch (variant->kind) {
	case K_THP:
	case K_THP_UNALIGNED:
		self->src = map_aligned(len, PMD_SZ, &self->map, &self->maplen);
		ASSERT_NE(NULL, self->src);
		ASSERT_EQ(0, madvise(self->src, len, MADV_HUGEPAGE));
		break;
	case K_MTHP:
		if (sysfs_swap(MTHP_CTL, "always", self->old_mthp,
			       sizeof(self->old_mthp)))
			SKIP(return, "no 64 KiB mTHP control (%s)", MTHP_CTL);
		self->src = map_aligned(len, MTHP_SZ, &self->map, &self->maplen);
		ASSERT_NE(NULL, self->src);
		break;
	case K_FILE:
		self->memfd = memfd_create("dup", MFD_CLOEXEC);
		ASSERT_LE(0, self->memfd);
		ASSERT_EQ(0, ftruncate(self->memfd, len));
		pattern_fill(self->expect, len, 3, 0);
		ASSERT_EQ((ssize_t)len, pwrite(self->memfd, self->expect, len, 0));
		self->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE,
				 self->memfd, 0);
		ASSERT_NE(MAP_FAILED, self->map);
		self->maplen = len;
		self->src = self->map;
		break;
	default:
		self->src = map_anon(len);
		ASSERT_NE(NULL, self->src);
		self->map = self->src;
		self->maplen = len;
	}

	/* Contents: a pattern unique to each byte, except where noted. */
	switch (variant->kind) {
	case K_ZERO:
		/* One written page gives the VMA its anon_vma; the rest read. */
		memset(self->expect, 0, len);
		pattern_fill(self->expect, PS, 5, 0);
		memcpy(self->src, self->expect, PS);
		touch_read(self->src, len);
		break;
	case K_KSM:
		memset(self->expect, 0x5a, len);
		memcpy(self->src, self->expect, len);
		break;
	case K_FILE:
		/* The first half becomes anonymous (COW), the second is read. */
		pattern_fill(self->expect, len / 2, 9, 0);
		memcpy(self->src, self->expect, len / 2);
		touch_read(self->src + len / 2, len / 2);
		break;
	default:
		pattern_fill(self->expect, len, 7, 0);
		memcpy(self->src, self->expect, len);
	}

	switch (variant->kind) {
	case K_THP:
	case K_THP_UNALIGNED:
		if (smaps_vma_kb(self->src, "AnonHugePages") < (long long)(len >> 10))
			SKIP(return, "THP not available (transparent_hugepage disabled?)");
		break;
	case K_MTHP:
		/* Each 64 KiB block must be one folio: 16 aligned consecutive PFNs. */
		for (size_t off = 0; off < len; off += PS) {
			uint64_t first = pagemap_pfn(self->pm, self->src + (off & ~(MTHP_SZ - 1)));

			if (first % 16 || pagemap_pfn(self->pm, self->src + off) !=
			    first + (off & (MTHP_SZ - 1)) / PS) {
				sysfs_swap(MTHP_CTL, self->old_mthp, NULL, 0);
				SKIP(return, "no 64 KiB mTHP folios allocated");
			}
		}
		break;
	case K_SWAP:
		if (xfer_swap_on(why, sizeof(why)))
			SKIP(return, "no swap: %s", why);
		ASSERT_EQ(0, madvise(self->src, len, MADV_PAGEOUT));
		for (size_t off = 0; off < len; off += PS)
			if (!(pagemap_entry(self->pm, self->src + off) & PM_SWAP))
				SKIP(return, "MADV_PAGEOUT left pages in memory");
		break;
	case K_KSM:
		if (access(KSM_RUN, W_OK))
			SKIP(return, "KSM not configured");
		ASSERT_EQ(0, madvise(self->src, len, MADV_MERGEABLE));
		ASSERT_EQ(0, proc_write("/sys/kernel/mm/ksm/sleep_millisecs", "0"));
		ASSERT_EQ(0, proc_write("/sys/kernel/mm/ksm/pages_to_scan", "1000"));
		ASSERT_EQ(0, sysfs_swap(KSM_RUN, "1", self->old_ksm,
					sizeof(self->old_ksm)));
		if (!ksm_all_merged(self->pm, self->src, len / PS)) {
			proc_write(KSM_RUN, "2");
			SKIP(return, "ksmd did not merge the pages within 10 s");
		}
		/* Stop ksmd (merged pages stay): it would merge the copies too. */
		ASSERT_EQ(0, proc_write(KSM_RUN, "0"));
		break;
	case K_PINNED:
		self->ring = dup_pin_io_uring(self->src, len, why, sizeof(why));
		if (self->ring < 0)
			SKIP(return, "cannot pin: %s", why);
		break;
	case K_SOFTDIRTY:
		ASSERT_EQ(0, proc_write("/proc/self/clear_refs", "4"));
		ASSERT_FALSE(pagemap_entry(self->pm, self->src) & PM_SOFT_DIRTY);
		break;
	case K_UFFDWP: {
		struct uffdio_api api = { .api = UFFD_API,
					  .features = UFFD_FEATURE_WP_ASYNC };
		struct uffdio_register reg = {
			.range = { (uintptr_t)self->src, len },
			.mode = UFFDIO_REGISTER_MODE_WP,
		};
		struct uffdio_writeprotect wp = {
			.range = { (uintptr_t)self->src, len },
			.mode = UFFDIO_WRITEPROTECT_MODE_WP,
		};

		self->uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		if (self->uffd < 0)
			SKIP(return, "userfaultfd: %s", strerror(errno));
		if (ioctl(self->uffd, UFFDIO_API, &api))
			SKIP(return, "userfaultfd without WP_ASYNC: %s", strerror(errno));
		ASSERT_EQ(0, ioctl(self->uffd, UFFDIO_REGISTER, &reg));
		ASSERT_EQ(0, ioctl(self->uffd, UFFDIO_WRITEPROTECT, &wp));
		ASSERT_TRUE(pagemap_entry(self->pm, self->src) & PM_UFFD_WP);
		break;
	}
	default:
		break;
	}
}

FIXTURE_TEARDOWN(dup)
{
	if (self->ring >= 0)
		close(self->ring);
	if (self->uffd >= 0)
		close(self->uffd);
	if (self->memfd >= 0)
		close(self->memfd);
	if (self->old_mthp[0])
		sysfs_swap(MTHP_CTL, self->old_mthp, NULL, 0);
	if (self->old_ksm[0]) {
		madvise(self->src, self->len, MADV_UNMERGEABLE);
		proc_write(KSM_RUN, self->old_ksm);
	}
	if (self->map)
		munmap(self->map, self->maplen);
	free(self->expect);
}

/*
 * Duplicate the fixture's range as the variant wants: thp_unaligned goes
 * to an address 4 KiB off PMD alignment (its PMDs must be split), the
 * others wherever the kernel puts them.
 */
static char *dup_kind(const FIXTURE_VARIANT(dup) *variant, char *src, size_t len)
{
	if (variant->kind == K_THP_UNALIGNED) {
		char *area = map_anon(len + 2 * PMD_SZ);
		uintptr_t to;

		if (!area)
			return MAP_FAILED;
		to = (((uintptr_t)area + PMD_SZ - 1) & ~(PMD_SZ - 1)) + PS;
		return dup_range_fixed(src, len, (void *)to);
	}
	return dup_range(src, len);
}

/* Index of the first page whose bytes differ, or -1. */
static long first_bad_page(const char *a, const char *b, size_t len)
{
	for (size_t off = 0; off < len; off += PS)
		if (memcmp(a + off, b + off, PS))
			return off / PS;
	return -1;
}

/*
 * Right after the call the duplicate holds the original's contents and,
 * page by page, the original's frames (or, for pinned and KSM pages, a
 * copy): a kernel that faulted pages in afresh, or mapped the wrong
 * page, shows different frames or bytes.
 */
TEST_F(dup, same_pages)
{
	size_t len = self->len;
	char *d = dup_kind(variant, self->src, len);

	ASSERT_NE(MAP_FAILED, d);
	for (size_t off = 0; off < len; off += PS) {
		uint64_t e = pagemap_entry(self->pm, d + off);

		if (variant->present) {
			ASSERT_TRUE(pagemap_present(self->pm, d + off)) {
				TH_LOG("page %zu of the duplicate not mapped", off / PS);
			}
		} else {
			ASSERT_TRUE(e & PM_SWAP) {
				TH_LOG("page %zu: no swap entry in the duplicate", off / PS);
			}
		}
	}
	if (variant->kind == K_SWAP) {
		/* Swap both in: they must find one page in the swap cache. */
		ASSERT_EQ(-1, first_bad_page(self->src, self->expect, len));
		ASSERT_EQ(-1, first_bad_page(d, self->expect, len));
	}
	ASSERT_EQ(-1, first_bad_page(d, self->expect, len));
	ASSERT_EQ(-1, first_bad_page(self->src, self->expect, len));
	for (size_t off = 0; off < len; off += PS) {
		uint64_t s = pagemap_pfn(self->pm, self->src + off);
		uint64_t t = pagemap_pfn(self->pm, d + off);

		ASSERT_NE(0, s);
		if (variant->shares) {
			ASSERT_EQ(s, t) {
				TH_LOG("page %zu: original pfn %#llx, duplicate %#llx",
				       off / PS, (unsigned long long)s,
				       (unsigned long long)t);
			}
		} else {
			ASSERT_NE(s, t) {
				TH_LOG("page %zu: pinned/KSM page not copied", off / PS);
			}
		}
	}
	if (variant->kind == K_THP) {
		/* Kept whole and PMD-mapped on both sides. */
		ASSERT_EQ(smaps_vma_kb(d, "AnonHugePages"), (long long)(len >> 10));
		ASSERT_LE((long long)(len >> 10), smaps_vma_kb(self->src, "AnonHugePages"));
	}
	if (variant->kind == K_THP_UNALIGNED)
		ASSERT_EQ(0, smaps_vma_kb(d, "AnonHugePages"));
	if (variant->kind == K_KSM)	/* the original stays merged */
		ASSERT_TRUE(ksm_all_merged(self->pm, self->src, len / PS));
	ASSERT_EQ(0, munmap(d, len));
	ASSERT_EQ(-1, first_bad_page(self->src, self->expect, len));
}

/* Fault everything in on both sides so that frames can be compared. */
static char *dup_resident(struct __test_metadata *_metadata,
			  const FIXTURE_VARIANT(dup) *variant,
			  FIXTURE_DATA(dup) *self)
{
	char *d = dup_kind(variant, self->src, self->len);

	EXPECT_NE(MAP_FAILED, d);
	if (d == MAP_FAILED)
		return NULL;
	touch_read(self->src, self->len);
	touch_read(d, self->len);
	return d;
}

/*
 * A write on one side copies only the page written, and only on that
 * side: a kernel that left a PTE writable, or copied too much, shows the
 * write on the other side or other frames changing.
 */
static void write_one_side(struct __test_metadata *_metadata,
			   const FIXTURE_VARIANT(dup) *variant,
			   FIXTURE_DATA(dup) *self, bool write_dup)
{
	size_t len = self->len, n = len / PS;
	size_t pick[3] = { 0, n / 2 + 1, n - 1 };
	uint64_t *spfn = calloc(n, 8), *dpfn = calloc(n, 8);
	char *d = dup_resident(_metadata, variant, self);

	ASSERT_NE(NULL, d);
	ASSERT_NE(NULL, spfn);
	ASSERT_NE(NULL, dpfn);
	for (size_t i = 0; i < n; i++) {
		spfn[i] = pagemap_pfn(self->pm, self->src + i * PS);
		dpfn[i] = pagemap_pfn(self->pm, d + i * PS);
	}
	for (int k = 0; k < 3; k++) {
		size_t i = pick[k];
		char *w = (write_dup ? d : self->src) + i * PS;
		char *other = (write_dup ? self->src : d) + i * PS;
		uint64_t *wpfn = write_dup ? dpfn : spfn;
		bool in_place = write_dup ? !variant->shares : variant->src_write_in_place;
		uint64_t now;

		w[100] ^= 0xff;
		ASSERT_EQ(0, memcmp(other, self->expect + i * PS, PS)) {
			TH_LOG("page %zu: write shows through to the other side", i);
		}
		ASSERT_EQ((char)(self->expect[i * PS + 100] ^ 0xff), w[100]);
		now = pagemap_pfn(self->pm, w);
		if (in_place) {
			ASSERT_EQ(wpfn[i], now);
		} else {
			ASSERT_NE(wpfn[i], now) {
				TH_LOG("page %zu: written without a copy", i);
			}
		}
		wpfn[i] = now;
		/* Nothing else moved, on either side. */
		for (size_t j = 0; j < n; j++) {
			ASSERT_EQ(spfn[j], pagemap_pfn(self->pm, self->src + j * PS));
			ASSERT_EQ(dpfn[j], pagemap_pfn(self->pm, d + j * PS));
		}
	}
	ASSERT_EQ(0, munmap(d, len));
	free(spfn);
	free(dpfn);
}

TEST_F(dup, write_duplicate)
{
	write_one_side(_metadata, variant, self, true);
}

TEST_F(dup, write_original)
{
	write_one_side(_metadata, variant, self, false);
}

/*
 * RSS counts both mappings, PSS halves what they share: a kernel that
 * forgot the duplicate's rss counters, or copied, shows other numbers.
 * Swapped-out pages: Swap counts both, SwapPss halves.
 */
TEST_F(dup, rss_pss)
{
	size_t len = self->len;
	const char *rss = variant->kind == K_SWAP ? "Swap" : "Rss";
	const char *pss = variant->kind == K_SWAP ? "SwapPss" : "Pss";
	char *d = dup_kind(variant, self->src, len);
	long long srss, drss, spss, dpss;

	ASSERT_NE(MAP_FAILED, d);
	srss = smaps_vma_kb(self->src, rss);
	drss = smaps_vma_kb(d, rss);
	spss = smaps_vma_kb(self->src, pss);
	dpss = smaps_vma_kb(d, pss);
	TH_LOG("%s: original %lld dup %lld kB, %s: %lld %lld kB", rss, srss,
	       drss, pss, spss, dpss);
	ASSERT_LE(0, srss);
	if (variant->kind == K_ZERO) {
		/* The zero page is in no RSS: only the one written page. */
		ASSERT_EQ((long long)(PS >> 10), drss);
		ASSERT_EQ((long long)(PS >> 10) / 2, dpss);
	} else if (variant->shares) {
		ASSERT_EQ((long long)(len >> 10), drss);
		/* Everything of the duplicate is shared with the original. */
		ASSERT_EQ(drss / 2, dpss);
		ASSERT_GE(srss, drss);
	} else {
		/* Copies: exclusive to the duplicate. */
		ASSERT_EQ((long long)(len >> 10), drss);
		ASSERT_EQ(drss, dpss);
	}
	ASSERT_EQ(0, munmap(d, len));
}

/*
 * Repeated and nested: the original duplicated twice, a duplicate
 * duplicated; a write in each of the four mappings of a page is seen in
 * that one only, and the pages nobody wrote stay one frame.
 */
TEST_F(dup, nested)
{
	size_t len = self->len;
	char *m[4];

	m[0] = self->src;
	m[1] = dup_kind(variant, m[0], len);
	ASSERT_NE(MAP_FAILED, m[1]);
	m[2] = dup_range(m[1], len);
	ASSERT_NE(MAP_FAILED, m[2]);
	m[3] = dup_range(m[0], len);
	ASSERT_NE(MAP_FAILED, m[3]);
	for (int i = 0; i < 4; i++)
		touch_read(m[i], len);
	for (int i = 0; i < 4; i++)
		m[i][10] = (char)(0x10 + i);
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ((char)(0x10 + i), m[i][10]);
		ASSERT_EQ(0, memcmp(m[i] + PS, self->expect + PS, len - PS));
		if (variant->shares && i)
			ASSERT_EQ(pagemap_pfn(self->pm, m[0] + len - PS),
				  pagemap_pfn(self->pm, m[i] + len - PS));
	}
	for (int i = 1; i < 4; i++)
		ASSERT_EQ(0, munmap(m[i], len));
	ASSERT_EQ((char)0x10, m[0][10]);
}

/*
 * MREMAP_FIXED replaces what was at the destination: a kernel that kept
 * the old pages there, or returned another address, fails here.
 */
TEST_F(dup, fixed_replaces)
{
	size_t len = self->len;
	char *to = map_anon(len);
	char *d;

	ASSERT_NE(NULL, to);
	memset(to, 0xee, len);
	d = dup_range_fixed(self->src, len, to);
	ASSERT_EQ(to, d);
	ASSERT_EQ(-1, first_bad_page(d, self->expect, len));
	if (variant->shares && variant->present && variant->kind != K_SWAP)
		ASSERT_EQ(pagemap_pfn(self->pm, self->src + PS),
			  pagemap_pfn(self->pm, d + PS));
	ASSERT_EQ(0, munmap(d, len));
}

/*
 * munmap() of either side frees only what the other does not map: the
 * survivor keeps its bytes and its frames, and now owns them alone.
 */
TEST_F(dup, unmap_either_side)
{
	size_t len = self->len;
	char *d = dup_resident(_metadata, variant, self);
	char *d2;
	uint64_t pfn;

	ASSERT_NE(NULL, d);
	pfn = pagemap_pfn(self->pm, d + PS);
	ASSERT_EQ(0, munmap(d, len));
	ASSERT_EQ(-1, first_bad_page(self->src, self->expect, len));

	d2 = dup_resident(_metadata, variant, self);
	ASSERT_NE(NULL, d2);
	pfn = pagemap_pfn(self->pm, d2 + PS);
	/* The original goes: the duplicate is left with its frames. */
	ASSERT_EQ(0, munmap(self->map, self->maplen));
	self->map = NULL;
	ASSERT_EQ(-1, first_bad_page(d2, self->expect, len));
	ASSERT_EQ(pfn, pagemap_pfn(self->pm, d2 + PS));
	ASSERT_EQ(smaps_vma_kb(d2, "Rss"), smaps_vma_kb(d2, "Pss"));
	/* Let teardown unmap the survivor. */
	self->map = d2;
	self->maplen = len;
}

/* A number from a sysfs file, -1 if unreadable. */
static long long sysfs_ll(const char *path)
{
	long long v = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

#define KSM_DIR		"/sys/kernel/mm/ksm/"

/*
 * KSM must not turn a page the duplicate shares into a KSM page in place:
 * rmap_walk_ksm() finds a KSM page's mappings at its recorded address
 * only, so the duplicate's mapping would never be unmapped for migration,
 * reclaim or memory failure.  n identical pages (a pattern no other test
 * uses, so no existing KSM page matches) and one more after them, of which
 * only the first n are duplicated; then only the original is made
 * mergeable.  ksmd may convert the last page, which nobody else maps, in
 * place, and must merge the n shared ones into it by replacing their
 * mappings: every one of them ends up on the last page's frame, off the
 * frame the duplicate keeps.  An in-place merge of a shared page would
 * leave it on the duplicate's frame.  (/proc/kpageflags cannot tell:
 * 6.12 reports KPF_KSM for every anonymous page.)
 */
TEST(ksm_merges_no_shared_page_in_place)
{
	char old_run[8] = "", old_sleep[16] = "", old_scan[16] = "";
	const size_t n = 8, len = n * PS;
	long long merged = -1;
	uint64_t dst_pfn[8], last;
	int pm, i, off_shared = 0;
	char *p, *d;

	REQUIRE_DUP();
	if (access(KSM_RUN, W_OK) || access("/proc/self/ksm_merging_pages", R_OK))
		SKIP(return, "KSM not configured (or not root)");
	pm = pagemap_open();
	ASSERT_LE(0, pm);
	if (!pagemap_pfns_visible(pm))
		SKIP(return, "page frames need root");

	p = mmap(NULL, len + PS, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (size_t off = 0; off < len + PS; off += sizeof(long))
		*(long *)(p + off) = (long)getpid() * 7919 + (long)(off % PS);
	d = dup_range(p, len);
	ASSERT_NE(NULL, d);
	for (i = 0; i < (int)n; i++) {
		dst_pfn[i] = pagemap_pfn(pm, d + i * PS);
		ASSERT_EQ(pagemap_pfn(pm, p + i * PS), dst_pfn[i]);
	}

	ASSERT_EQ(0, madvise(p, len + PS, MADV_MERGEABLE));
	ASSERT_EQ(0, sysfs_swap(KSM_DIR "sleep_millisecs", "0", old_sleep,
				sizeof(old_sleep)));
	ASSERT_EQ(0, sysfs_swap(KSM_DIR "pages_to_scan", "1000", old_scan,
				sizeof(old_scan)));
	ASSERT_EQ(0, sysfs_swap(KSM_RUN, "1", old_run, sizeof(old_run)));
	/* Polling ksmd, an asynchronous kernel thread, for up to 20 s. */
	for (i = 0; i < 4000; i++) {
		merged = sysfs_ll("/proc/self/ksm_merging_pages");
		if (merged >= (long long)n + 1)
			break;
		nanosleep(&(struct timespec){ 0, 5 * 1000 * 1000 }, NULL);
	}
	/* Stop ksmd; what it merged stays merged until unmerged below. */
	proc_write(KSM_RUN, "0");
	sysfs_swap(KSM_DIR "sleep_millisecs", old_sleep, NULL, 0);
	sysfs_swap(KSM_DIR "pages_to_scan", old_scan, NULL, 0);

	last = pagemap_pfn(pm, p + len);
	for (i = 0; i < (int)n; i++) {
		uint64_t po = pagemap_pfn(pm, p + i * PS);

		EXPECT_EQ(0, memcmp(p + i * PS, d + i * PS, PS));
		EXPECT_EQ(dst_pfn[i], pagemap_pfn(pm, d + i * PS));
		off_shared += po != dst_pfn[i];
		EXPECT_NE(po, dst_pfn[i])
			TH_LOG("page %d: merged in place, on the frame the duplicate maps", i);
		EXPECT_EQ(last, po)
			TH_LOG("page %d: not merged into the unshared page", i);
	}
	EXPECT_EQ((long long)n + 1, merged)
		TH_LOG("%lld of %zu pages merged, %d off the shared frames",
		       merged, n + 1, off_shared);
	madvise(p, len + PS, MADV_UNMERGEABLE);
	sysfs_swap(KSM_RUN, old_run, NULL, 0);
	munmap(d, len);
	munmap(p, len + PS);
	close(pm);
}

TEST_HARNESS_MAIN
