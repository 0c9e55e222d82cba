// SPDX-License-Identifier: GPL-2.0
/*
 * mremap(MREMAP_DUP): detection, every refusal (with "nothing changed"
 * checked), soft-dirty and uffd-wp state, mlock, overcommit accounting,
 * and the point-in-time snapshot of memory other threads keep writing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
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

#define PS	4096UL

#ifndef __NR_mseal
#define __NR_mseal	462
#endif

/*
 * Kernels without MREMAP_DUP reject the unknown flag with EINVAL: that is
 * the detection user space relies on, so it must hold everywhere, and a
 * kernel with it must succeed.
 */
TEST(detection)
{
	char *p = map_anon(PS);
	char *d;

	ASSERT_NE(NULL, p);
	p[0] = 1;
	d = dup_range(p, PS);
	if (d == MAP_FAILED) {
		ASSERT_EQ(EINVAL, errno);
		ASSERT_EQ(1, p[0]);
		TH_LOG("MREMAP_DUP: EINVAL (not supported by this kernel)");
	} else {
		ASSERT_EQ(1, d[0]);
		ASSERT_EQ(0, munmap(d, PS));
	}
	ASSERT_EQ(0, munmap(p, PS));
}

/* /proc/self/maps into @buf (no stdio: its buffer could change the maps). */
static size_t read_maps(char *buf, size_t len)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	ssize_t r;

	if (fd < 0)
		return 0;
	while (n < len - 1 && (r = read(fd, buf + n, len - 1 - n)) > 0)
		n += r;
	close(fd);
	buf[n] = 0;
	return n;
}

struct refusal {
	char *addr;
	size_t old_len, new_len;
	unsigned long flags;
	char *to;
	int err;
	char skip[96];		/* set: this machine cannot build the case */
	char *check;		/* contents to find unchanged */
	size_t check_len;
};

static void *find_special(const char *name)
{
	static char maps[1 << 16];
	char *l;

	read_maps(maps, sizeof(maps));
	l = strstr(maps, name);
	if (!l)
		return NULL;
	while (l > maps && l[-1] != '\n')
		l--;
	return (void *)strtoul(l, NULL, 16);
}

enum refusal_kind {
	R_SHARED_ANON, R_SHARED_MEMFD, R_HUGETLB, R_PFNMAP_VVAR, R_VDSO,
	R_DONTFORK, R_WIPEONFORK, R_TWO_VMAS, R_HOLE, R_UNMAPPED,
	R_RESIZE, R_NO_MAYMOVE, R_DONTUNMAP, R_UNALIGNED, R_ZERO_LEN,
	R_FIXED_OVERLAP, R_FIXED_UNALIGNED, R_FIXED_SEALED, R_RLIMIT_AS,
	R_OVERCOMMIT, R_NR
};

static const char *const refusal_name[R_NR] = {
	"shared anonymous", "shared memfd", "hugetlb", "PFN map ([vvar])",
	"vDSO (special mapping)", "MADV_DONTFORK", "MADV_WIPEONFORK",
	"range over two VMAs", "range over a hole", "nothing mapped",
	"new_len != old_len", "without MREMAP_MAYMOVE",
	"with MREMAP_DONTUNMAP", "unaligned address", "zero length",
	"MREMAP_FIXED over the original", "MREMAP_FIXED unaligned",
	"MREMAP_FIXED onto a sealed mapping", "over RLIMIT_AS",
	"over the overcommit limit (vm.overcommit_memory=2)",
};

/* A private anonymous range of @n written pages. */
static char *written(size_t n)
{
	char *p = map_anon(n * PS);

	if (p)
		pattern_fill(p, n * PS, 21, 0);
	return p;
}

static void build_refusal(enum refusal_kind k, struct refusal *r)
{
	int fd;

	memset(r, 0, sizeof(*r));
	r->old_len = r->new_len = 4 * PS;
	r->flags = MREMAP_MAYMOVE | MREMAP_DUP;
	r->err = EINVAL;
	switch (k) {
	case R_SHARED_ANON:
		r->addr = map_anon_shared(r->old_len);
		memset(r->addr, 3, r->old_len);
		break;
	case R_SHARED_MEMFD:
		fd = memfd_create("dup-shared", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, r->old_len))
			break;
		r->addr = mmap(NULL, r->old_len, PROT_READ | PROT_WRITE,
			       MAP_SHARED, fd, 0);
		close(fd);
		memset(r->addr, 4, r->old_len);
		break;
	case R_HUGETLB:
		if (xfer_hugetlb_on(r->skip, sizeof(r->skip)))
			break;
		r->old_len = r->new_len = 2UL << 20;
		r->addr = mmap(NULL, r->old_len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (r->addr == MAP_FAILED) {
			snprintf(r->skip, sizeof(r->skip), "no hugetlb page: %s",
				 strerror(errno));
			r->addr = NULL;
			break;
		}
		memset(r->addr, 5, r->old_len);
		break;
	case R_PFNMAP_VVAR:
		r->addr = find_special("[vvar]");
		r->old_len = r->new_len = PS;
		if (!r->addr)
			snprintf(r->skip, sizeof(r->skip), "no [vvar] mapping");
		return;
	case R_VDSO:
		r->addr = find_special("[vdso]");
		r->old_len = r->new_len = PS;
		if (!r->addr)
			snprintf(r->skip, sizeof(r->skip), "no [vdso] mapping");
		return;
	case R_DONTFORK:
		r->addr = written(4);
		madvise(r->addr, r->old_len, MADV_DONTFORK);
		break;
	case R_WIPEONFORK:
		r->addr = written(4);
		madvise(r->addr, r->old_len, MADV_WIPEONFORK);
		break;
	case R_TWO_VMAS:
		r->addr = written(4);
		mprotect(r->addr + 2 * PS, 2 * PS, PROT_READ);
		r->err = EFAULT;
		break;
	case R_HOLE:
		r->addr = written(4);
		munmap(r->addr + 3 * PS, PS);
		r->check_len = 3 * PS;
		r->err = EFAULT;
		break;
	case R_UNMAPPED:
		r->addr = written(4);
		munmap(r->addr, 4 * PS);
		r->err = EFAULT;
		return;
	case R_RESIZE:
		r->addr = written(4);
		r->new_len = 8 * PS;
		break;
	case R_NO_MAYMOVE:
		r->addr = written(4);
		r->flags = MREMAP_DUP;
		break;
	case R_DONTUNMAP:
		r->addr = written(4);
		r->flags |= MREMAP_DONTUNMAP;
		break;
	case R_UNALIGNED:
		r->addr = written(4);
		r->check = r->addr;
		r->check_len = 4 * PS;
		r->addr += 1;
		r->old_len = r->new_len = 2 * PS;
		return;
	case R_ZERO_LEN:
		r->addr = written(4);
		r->old_len = r->new_len = 0;
		r->check = r->addr;
		r->check_len = 4 * PS;
		return;
	case R_FIXED_OVERLAP:
		r->addr = written(4);
		r->flags |= MREMAP_FIXED;
		r->to = r->addr + 2 * PS;
		break;
	case R_FIXED_UNALIGNED:
		r->addr = written(4);
		r->flags |= MREMAP_FIXED;
		r->to = (char *)map_anon(8 * PS) + 10;
		break;
	case R_FIXED_SEALED:
		r->addr = written(4);
		r->flags |= MREMAP_FIXED;
		r->to = map_anon(4 * PS);
		memset(r->to, 0x66, 4 * PS);
		if (syscall(__NR_mseal, r->to, 4 * PS, 0)) {
			snprintf(r->skip, sizeof(r->skip), "mseal: %s", strerror(errno));
			break;
		}
		r->err = EPERM;
		break;
	case R_RLIMIT_AS:
	case R_OVERCOMMIT:
		r->old_len = r->new_len = 64UL << 20;
		r->addr = map_anon(r->old_len);
		memset(r->addr, 7, r->old_len);
		r->err = ENOMEM;
		break;
	default:
		break;
	}
	if (!r->addr && !r->skip[0])
		snprintf(r->skip, sizeof(r->skip), "set-up failed: %s", strerror(errno));
	if (!r->check) {
		r->check = r->addr;
		if (!r->check_len)
			r->check_len = r->old_len;
	}
}

/* Apply the limit the case is about; restore it with @undo. */
static int limit_on(enum refusal_kind k, struct refusal *r, char *undo, size_t ulen)
{
	struct rlimit rl;
	char v[32];

	if (k == R_RLIMIT_AS) {
		long long vm = self_status_kb("VmSize");

		getrlimit(RLIMIT_AS, &rl);
		snprintf(undo, ulen, "%llu", (unsigned long long)rl.rlim_cur);
		rl.rlim_cur = (vm << 10) + r->old_len / 2;
		return setrlimit(RLIMIT_AS, &rl);
	}
	if (k == R_OVERCOMMIT) {
		long long committed = meminfo_kb("Committed_AS");
		long long swap = meminfo_kb("SwapTotal");
		char ratio[32], mode[8];

		if (sysfs_swap("/proc/sys/vm/overcommit_ratio", "50", ratio, sizeof(ratio)) ||
		    sysfs_swap("/proc/sys/vm/overcommit_memory", "0", mode, sizeof(mode)))
			return -1;
		snprintf(undo, ulen, "%s %s", ratio, mode);
		/*
		 * CommitLimit = overcommit_kbytes + swap: room for half the
		 * duplicate above what is committed now.
		 */
		snprintf(v, sizeof(v), "%lld",
			 committed + (long long)(r->old_len >> 11) - swap);
		if (proc_write("/proc/sys/vm/overcommit_kbytes", v))
			return -1;
		return proc_write("/proc/sys/vm/overcommit_memory", "2");
	}
	return 0;
}

static void limit_off(enum refusal_kind k, const char *undo)
{
	struct rlimit rl;
	char ratio[32], mode[8];

	if (k == R_RLIMIT_AS) {
		getrlimit(RLIMIT_AS, &rl);
		rl.rlim_cur = strtoull(undo, NULL, 10);
		setrlimit(RLIMIT_AS, &rl);
	} else if (k == R_OVERCOMMIT && sscanf(undo, "%31s %7s", ratio, mode) == 2) {
		proc_write("/proc/sys/vm/overcommit_memory", mode);
		proc_write("/proc/sys/vm/overcommit_ratio", ratio);
	}
}

/*
 * Every refused kind gets its errno and nothing changes: the mappings
 * (/proc/self/maps), the original's bytes and frames.  A kernel that
 * duplicated a shared or special mapping, or left a half-made duplicate
 * behind, fails here.
 */
TEST(refusals)
{
	static char before[1 << 16], after[1 << 16];
	int pm = pagemap_open();

	REQUIRE_DUP();
	ASSERT_LE(0, pm);
	for (int k = 0; k < R_NR; k++) {
		struct refusal r;
		char undo[64] = "";
		uint64_t pfn0 = 0;
		char *copy = NULL;
		void *ret;
		int err;

		build_refusal(k, &r);
		if (r.skip[0]) {
			/* Only a machine limitation may leave a case out. */
			TH_LOG("%-44s not run: %s", refusal_name[k], r.skip);
			ASSERT_TRUE(k == R_HUGETLB || k == R_FIXED_SEALED ||
				    k == R_PFNMAP_VVAR || k == R_VDSO);
			continue;
		}
		if (r.check && r.check_len) {
			copy = malloc(r.check_len);
			ASSERT_NE(NULL, copy);
			memcpy(copy, r.check, r.check_len);
			pfn0 = pagemap_pfn(pm, r.check);
		}
		ASSERT_EQ(0, limit_on(k, &r, undo, sizeof(undo)));
		read_maps(before, sizeof(before));
		ret = dup_mremap(r.addr, r.old_len, r.new_len, r.flags, r.to);
		err = errno;
		read_maps(after, sizeof(after));
		limit_off(k, undo);
		TH_LOG("%-44s -> %s", refusal_name[k],
		       ret == MAP_FAILED ? strerror(err) : "mapped!");
		ASSERT_EQ(MAP_FAILED, ret);
		ASSERT_EQ(r.err, err);
		ASSERT_STREQ(before, after);
		if (copy) {
			ASSERT_EQ(0, memcmp(copy, r.check, r.check_len));
			ASSERT_EQ(pfn0, pagemap_pfn(pm, r.check));
			free(copy);
		}
		if (k == R_FIXED_SEALED)
			ASSERT_TRUE(all_bytes_are(r.to, 4 * PS, 0x66));
	}
	close(pm);
}

/*
 * Soft-dirty: the duplicate is a new mapping, soft-dirty as a whole; the
 * original is not dirtied by being duplicated (its bits were cleared just
 * before), and a write to it afterwards marks just that page.
 */
TEST(soft_dirty)
{
	size_t n = 16;
	char *p = written(n), *d;
	int pm = pagemap_open();

	REQUIRE_DUP();
	ASSERT_NE(NULL, p);
	ASSERT_LE(0, pm);
	ASSERT_EQ(0, proc_write("/proc/self/clear_refs", "4"));
	d = dup_range(p, n * PS);
	ASSERT_NE(MAP_FAILED, d);
	for (size_t i = 0; i < n; i++) {
		ASSERT_FALSE(pagemap_entry(pm, p + i * PS) & PM_SOFT_DIRTY);
		ASSERT_TRUE(pagemap_entry(pm, d + i * PS) & PM_SOFT_DIRTY);
	}
	p[3 * PS] = 1;
	for (size_t i = 0; i < n; i++)
		ASSERT_EQ(i == 3, !!(pagemap_entry(pm, p + i * PS) & PM_SOFT_DIRTY));
	close(pm);
}

/* Whether the smaps VmFlags of the VMA holding @p list @flag. */
static bool vmflag(const void *p, const char *flag)
{
	char line[512], want[8];
	unsigned long lo, hi;
	bool in = false, found = false;
	FILE *f = fopen("/proc/self/smaps", "re");

	snprintf(want, sizeof(want), " %s", flag);
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			in = lo <= (unsigned long)p && (unsigned long)p < hi;
		else if (in && !strncmp(line, "VmFlags:", 8))
			found = strstr(line, want) != NULL;
	}
	if (f)
		fclose(f);
	return found;
}

/*
 * uffd-wp: the original stays registered and write-protected; the
 * duplicate, like a child forked without UFFD_FEATURE_EVENT_FORK, is not
 * registered and carries no uffd-wp bits.
 */
TEST(uffd_wp_state)
{
	size_t n = 16, len = n * PS;
	char *p = written(n), *d;
	int pm = pagemap_open();
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
	struct uffdio_register reg = { .range = { (uintptr_t)p, len },
				       .mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_writeprotect wp = { .range = { (uintptr_t)p, len },
					  .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	int uffd;

	REQUIRE_DUP();
	ASSERT_LE(0, pm);
	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	ASSERT_LE(0, uffd);
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_API, &api));
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_REGISTER, &reg));
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_WRITEPROTECT, &wp));
	d = dup_range(p, len);
	ASSERT_NE(MAP_FAILED, d);
	ASSERT_TRUE(vmflag(p, "uw"));
	ASSERT_FALSE(vmflag(d, "uw"));
	for (size_t i = 0; i < n; i++) {
		ASSERT_TRUE(pagemap_entry(pm, p + i * PS) & PM_UFFD_WP);
		ASSERT_FALSE(pagemap_entry(pm, d + i * PS) & PM_UFFD_WP);
	}
	d[0] = 1;	/* no uffd: an ordinary copy-on-write */
	ASSERT_TRUE(pagemap_entry(pm, p) & PM_UFFD_WP);
	ASSERT_EQ(1, d[0]);
	ASSERT_EQ((size_t)-1, pattern_check(p, len, 21, 0));
	close(uffd);
	close(pm);
}

/* mlock is not inherited: the duplicate is not locked, the original is. */
TEST(mlock_not_inherited)
{
	size_t len = 16 * PS;
	char *p = written(16), *d;

	REQUIRE_DUP();
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, mlock(p, len));
	d = dup_range(p, len);
	ASSERT_NE(MAP_FAILED, d);
	/* smaps "Locked" is proportional: the original's pages are shared. */
	ASSERT_EQ(smaps_vma_kb(p, "Pss"), smaps_vma_kb(p, "Locked"));
	ASSERT_EQ((long long)(len >> 11), smaps_vma_kb(p, "Locked"));
	ASSERT_EQ(0, smaps_vma_kb(d, "Locked"));
	ASSERT_TRUE(vmflag(p, "lo"));
	ASSERT_FALSE(vmflag(d, "lo"));
	ASSERT_EQ((long long)(len >> 10), self_status_kb("VmLck"));
	ASSERT_EQ((size_t)-1, pattern_check(d, len, 21, 0));
	/* Not even under mlockall(MCL_FUTURE): as for a forked child. */
	ASSERT_EQ(0, munmap(d, len));
	ASSERT_EQ(0, mlockall(MCL_CURRENT | MCL_FUTURE));
	d = dup_range(p, len);
	ASSERT_NE(MAP_FAILED, d);
	ASSERT_FALSE(vmflag(d, "lo"));
	ASSERT_EQ(0, munlockall());
}

/*
 * Overcommit accounting: a private writable duplicate is charged its whole
 * length (Committed_AS), as fork() charges the child, and munmap() gives
 * it back; a read-only private mapping is not charged.
 */
TEST(commit_charge)
{
	size_t len = 64UL << 20;
	char *p = map_anon(len), *d;
	long long c0, c1, c2;

	REQUIRE_DUP();
	ASSERT_NE(NULL, p);
	memset(p, 1, PS);
	c0 = meminfo_kb("Committed_AS");
	d = dup_range(p, len);
	ASSERT_NE(MAP_FAILED, d);
	c1 = meminfo_kb("Committed_AS");
	ASSERT_EQ(0, munmap(d, len));
	c2 = meminfo_kb("Committed_AS");
	TH_LOG("Committed_AS %lld -> %lld -> %lld kB", c0, c1, c2);
	/* Other processes commit a little meanwhile: 4 MiB of slack. */
	ASSERT_LT(llabs((c1 - c0) - (long long)(len >> 10)), 4096);
	ASSERT_LT(llabs(c2 - c0), 4096);

	ASSERT_EQ(0, mprotect(p, len, PROT_READ));
	ASSERT_EQ(0, munmap(p, len));
	p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	c0 = meminfo_kb("Committed_AS");
	d = dup_range(p, len);
	ASSERT_NE(MAP_FAILED, d);
	c1 = meminfo_kb("Committed_AS");
	ASSERT_LT(llabs(c1 - c0), 4096);
}

/*
 * Both ranges in one page table, and for THPs in one PMD table: one page
 * table lock (a kernel taking it twice deadlocks), and the TLB flush of
 * the original's range covers both.
 */
TEST(same_page_table)
{
	size_t pmd = 2UL << 20, n = 64;
	char *map = map_anon(3 * pmd), *p, *d;
	int pm = pagemap_open();

	REQUIRE_DUP();
	ASSERT_NE(NULL, map);
	ASSERT_LE(0, pm);
	p = (char *)(((uintptr_t)map + pmd - 1) & ~(pmd - 1));

	/* 4 KiB pages: [p, p + 64 pages) to p + 256 pages, one PTE table. */
	ASSERT_EQ(0, madvise(p, pmd, MADV_NOHUGEPAGE));
	pattern_fill(p, n * PS, 41, 0);
	d = dup_range_fixed(p, n * PS, p + 256 * PS);
	ASSERT_EQ(p + 256 * PS, d);
	for (size_t i = 0; i < n; i++)
		ASSERT_EQ(pagemap_pfn(pm, p + i * PS), pagemap_pfn(pm, d + i * PS));
	d[0] ^= 1;
	p[PS] ^= 1;
	ASSERT_EQ((size_t)-1, pattern_check(d + PS, PS, 41, PS));
	ASSERT_EQ((size_t)-1, pattern_check(p, PS, 41, 0));
	ASSERT_EQ(0, munmap(map, 3 * pmd));

	/* A THP onto the next 2 MiB of the same VMA: one PMD table. */
	map = map_anon(3 * pmd);
	ASSERT_NE(NULL, map);
	p = (char *)(((uintptr_t)map + pmd - 1) & ~(pmd - 1));
	ASSERT_EQ(0, madvise(p, 2 * pmd, MADV_HUGEPAGE));
	pattern_fill(p, pmd, 43, 0);
	memset(p + pmd, 1, pmd);
	if (smaps_vma_kb(p, "AnonHugePages") < 2048)
		SKIP(return, "THP not available");
	d = dup_range_fixed(p, pmd, p + pmd);
	ASSERT_EQ(p + pmd, d);
	ASSERT_EQ(2048, smaps_vma_kb(d, "AnonHugePages"));
	ASSERT_EQ(pagemap_pfn(pm, p + 5 * PS), pagemap_pfn(pm, d + 5 * PS));
	ASSERT_EQ((size_t)-1, pattern_check(d, pmd, 43, 0));
	p[0] ^= 1;
	ASSERT_EQ((size_t)-1, pattern_check(d, pmd, 43, 0));
	close(pm);
}

/* Snapshot under fire ------------------------------------------------- */

#define FIRE_PAGES	256
#define FIRE_THREADS	2

struct fire {
	volatile uint64_t *mem;		/* FIRE_PAGES pages, a counter each */
	_Atomic uint64_t published[FIRE_PAGES];	/* last value stored */
	_Atomic uint64_t seq;
	_Atomic int returned;		/* the mremap() call has returned */
	_Atomic int stop;
	_Atomic long passes_after[FIRE_THREADS];
};

struct writer_arg {
	struct fire *f;
	int id;
};

/*
 * Each page is written by one thread only, with values that only grow: a
 * global sequence number, shifted, with bit 0 saying whether the writer
 * had seen the call return before it took the number.
 */
static void *fire_writer(void *arg)
{
	struct writer_arg *a = arg;
	struct fire *f = a->f;

	while (!atomic_load(&f->stop)) {
		for (int i = a->id; i < FIRE_PAGES; i += FIRE_THREADS) {
			uint64_t after = atomic_load(&f->returned);
			uint64_t v = (atomic_fetch_add(&f->seq, 1) + 1) << 1 | after;

			f->mem[i * (PS / 8)] = v;
			atomic_store(&f->published[i], v);
		}
		if (atomic_load(&f->returned))
			atomic_fetch_add(&f->passes_after[a->id], 1);
	}
	return NULL;
}

static bool poll_until(bool (*cond)(struct fire *), struct fire *f)
{
	for (int i = 0; i < 60000; i++) {	/* 60 s */
		if (cond(f))
			return true;
		nanosleep(&(struct timespec){ 0, 1000 * 1000 }, NULL);
	}
	return false;
}

static bool all_written(struct fire *f)
{
	for (int i = 0; i < FIRE_PAGES; i++)
		if (!atomic_load(&f->published[i]))
			return false;
	return true;
}

static bool writers_went_on(struct fire *f)
{
	for (int t = 0; t < FIRE_THREADS; t++)
		if (atomic_load(&f->passes_after[t]) < 3)
			return false;
	return true;
}

/*
 * Threads keep writing to the original during and after the call.  Page
 * by page the duplicate must hold a value the page had during the call:
 * not older than what was published before the call, and never one
 * written by a thread that had seen the call return.  A kernel that left
 * a writable PTE or TLB entry behind, or shared a page without
 * write-protecting it, shows later writes in the duplicate.
 */
/* A fixture only for TEST_F_TIMEOUT: writer threads are slow under TCG. */
FIXTURE(fire) {
	int unused;
};

FIXTURE_SETUP(fire)
{
	self->unused = 0;
}

FIXTURE_TEARDOWN(fire)
{
}

TEST_F_TIMEOUT(fire, snapshot_under_fire, 600)
{
	size_t len = FIRE_PAGES * PS;
	struct writer_arg args[FIRE_THREADS];
	pthread_t th[FIRE_THREADS];
	struct fire *f;

	REQUIRE_DUP();
	for (int round = 0; round < 10; round++) {
		uint64_t start[FIRE_PAGES];
		uint64_t *d;

		f = calloc(1, sizeof(*f));
		ASSERT_NE(NULL, f);
		f->mem = map_anon(len);
		ASSERT_NE(NULL, f->mem);
		for (int t = 0; t < FIRE_THREADS; t++) {
			args[t] = (struct writer_arg){ f, t };
			ASSERT_EQ(0, pthread_create(&th[t], NULL, fire_writer, &args[t]));
		}
		ASSERT_TRUE(poll_until(all_written, f));
		for (int i = 0; i < FIRE_PAGES; i++)
			start[i] = atomic_load(&f->published[i]);
		d = dup_range((void *)f->mem, len);
		atomic_store(&f->returned, 1);
		ASSERT_NE(MAP_FAILED, d);
		ASSERT_TRUE(poll_until(writers_went_on, f));
		atomic_store(&f->stop, 1);
		for (int t = 0; t < FIRE_THREADS; t++)
			pthread_join(th[t], NULL);
		for (int i = 0; i < FIRE_PAGES; i++) {
			uint64_t v = d[i * (PS / 8)];

			ASSERT_EQ(0, v & 1) {
				TH_LOG("round %d page %d: a write made after the call returned (%#llx)",
				       round, i, (unsigned long long)v);
			}
			ASSERT_GE(v, start[i]) {
				TH_LOG("round %d page %d: older than before the call", round, i);
			}
			/* The original went on; the duplicate did not follow. */
			ASSERT_EQ(1, f->mem[i * (PS / 8)] & 1);
			ASSERT_LT(v, f->mem[i * (PS / 8)]);
		}
		ASSERT_EQ(0, munmap(d, len));
		ASSERT_EQ(0, munmap((void *)f->mem, len));
		free(f);
	}
}

TEST_HARNESS_MAIN
