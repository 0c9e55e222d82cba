// SPDX-License-Identifier: GPL-2.0
/*
 * vsm_probe(): what does this kernel do with gifted pages?  Unprivileged:
 * the flag check, then one page, one THP and one mTHP folio given to
 * ourselves through a pipe, judged by what the giver reads afterwards, the
 * data, the counters and (when visible, as root) the page frame numbers.
 */
#define _GNU_SOURCE
#include "pipesize.h"
#include "vmsplice_move.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#define THP_DIR	"/sys/kernel/mm/transparent_hugepage"

const char *vsm_probe_result_name(enum vsm_probe_result r)
{
	switch (r) {
	case VSM_PROBE_COPIED:
		return "copied";
	case VSM_PROBE_MOVED:
		return "moved";
	case VSM_PROBE_BROKEN:
		return "broken";
	default:
		return "untested";
	}
}

/* The bracketed word of a THP "enabled" file: [always] madvise never. */
static int thp_setting(const char *path, char *out, size_t len)
{
	char buf[128], *a, *b;
	FILE *f = fopen(path, "re");

	out[0] = '\0';
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	a = strchr(buf, '[');
	b = a ? strchr(a, ']') : NULL;
	if (!a || !b)
		return -1;
	*b = '\0';
	snprintf(out, len, "%s", a + 1);
	return 0;
}

/* The smallest anonymous mTHP size below the PMD size that can be used. */
static size_t smallest_mthp(const char *top, size_t pmd)
{
	size_t best = 0;
	struct dirent *e;
	DIR *d = opendir(THP_DIR);

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char path[512], set[16];
		unsigned long kb;

		if (sscanf(e->d_name, "hugepages-%lukB", &kb) != 1)
			continue;
		if (kb * 1024 >= pmd)
			continue;
		snprintf(path, sizeof(path), THP_DIR "/%s/enabled", e->d_name);
		if (thp_setting(path, set, sizeof(set)))
			continue;
		if (!strcmp(set, "inherit"))
			snprintf(set, sizeof(set), "%s", top);
		if ((!strcmp(set, "always") || !strcmp(set, "madvise")) &&
		    (!best || kb * 1024 < best))
			best = kb * 1024;
	}
	closedir(d);
	return best;
}

static uint64_t pfn_of(int pm, const void *addr)
{
	uint64_t e = 0;
	off_t off = (uintptr_t)addr / sysconf(_SC_PAGESIZE) * sizeof(e);

	if (pm < 0 || pread(pm, &e, sizeof(e), off) != sizeof(e))
		return 0;
	if (!(e & (1ULL << 63)))
		return 0;
	return e & ((1ULL << 55) - 1);
}

/* KiB of AnonHugePages in the mapping holding @addr (/proc/self/smaps). */
static long anon_huge_kb(const void *addr)
{
	char line[256];
	bool in = false;
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b;

		if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)addr >= a && (uintptr_t)addr < b;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return in ? kb : -1;
}

/* Memory of @len bytes aligned to @align (power of two), MADV_HUGEPAGE. */
static void *map_aligned(size_t len, size_t align)
{
	char *p = mmap(NULL, len + align, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *s;

	if (p == MAP_FAILED)
		return NULL;
	s = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	if (s > p)
		munmap(p, s - p);
	munmap(s + len, p + len + align - (s + len));
	madvise(s, len, MADV_HUGEPAGE);
	return s;
}

/*
 * Give @len bytes to ourselves: alternate non-blocking gives and takes, so
 * that a region larger than the pipe cannot block us against ourselves.
 * *@zero: the giver read zeros at every given page just after giving it.
 */
static int self_handoff(int p[2], uint64_t *src, uint64_t *dst, size_t len,
			bool unmap, bool *zero, char *why, size_t why_len)
{
	unsigned int gflags = SPLICE_F_GIFT | (unmap ? SPLICE_F_UNMAP : 0);
	size_t given = 0, taken = 0, page = sysconf(_SC_PAGESIZE);

	*zero = true;
	while (taken < len) {
		bool progress = false;
		ssize_t n;

		if (given < len) {
			struct iovec iov = { (char *)src + given, len - given };

			n = vmsplice(p[1], &iov, 1, gflags | SPLICE_F_NONBLOCK);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				snprintf(why, why_len, "vmsplice(GIFT%s): %s",
					 unmap ? "|UNMAP" : "", strerror(errno));
				return -1;
			}
			if (n > 0) {
				/* Whole pages given read zeros now if they left. */
				for (size_t o = given; o + page <= given + n; o += page)
					*zero &= src[o / 8] == 0;
				given += n;
				progress = true;
			}
		}
		struct iovec iov = { (char *)dst + taken, len - taken };

		n = vmsplice(p[0], &iov, 1, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(why, why_len, "vmsplice(MOVE): %s", strerror(errno));
			return -1;
		}
		if (n > 0) {
			taken += n;
			progress = true;
		}
		if (!progress && given == taken && given < len) {
			snprintf(why, why_len, "vmsplice made no progress");
			return -1;
		}
	}
	return 0;
}

enum kind { K_BASE, K_THP, K_MTHP };

static void try_case(struct vsm_probe *pr, enum kind k, size_t len,
		     struct vsm_probe_case *c)
{
	size_t page = pr->page_size;
	struct vsm_stats before, after, d;
	uint64_t *src, *dst, pfn_src = 0, pfn_dst = 0;
	bool intact = true, zero = true;
	int p[2], pm = -1;

	c->bytes = len;
	if (pipe2(p, O_CLOEXEC)) {
		snprintf(c->why, sizeof(c->why), "pipe: %s", strerror(errno));
		return;
	}
	/* One THP or folio costs one slot; 4 KiB pages one each. */
	vsmi_pipe_grow(p[1], len > 65536 ? len : 65536);
	src = k == K_BASE ? vsm_alloc(len, false) : map_aligned(len, len);
	dst = k == K_BASE ? vsm_alloc(len, false) : map_aligned(len, len);
	if (!src || !dst) {
		snprintf(c->why, sizeof(c->why), "mmap: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < len / 8; i++)
		src[i] = 0x5a5a000000000000ULL | i;
	if (k == K_THP && anon_huge_kb(src) < (long)(len / 1024)) {
		snprintf(c->why, sizeof(c->why),
			 "no THP for the source (transparent_hugepage=%s)", pr->thp_enabled);
		goto out;
	}
	if (pr->pfns_visible) {
		pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		pfn_src = pfn_of(pm, src);
	}
	vsm_stats_read(&before);
	if (self_handoff(p, src, dst, len, pr->unmap_flag, &zero, c->why, sizeof(c->why)))
		goto out;
	vsm_stats_read(&after);
	vsm_stats_delta(&before, &after, &d);
	c->src_unmapped = zero;
	for (size_t i = 0; i < len / 8; i++)
		intact &= dst[i] == (0x5a5a000000000000ULL | i);
	pfn_dst = pfn_of(pm, dst);
	c->moved = d.moved;
	c->copied = d.copied;
	c->thp = d.thp;
	c->large = d.large;
	if (!intact) {
		c->result = VSM_PROBE_BROKEN;
		snprintf(c->why, sizeof(c->why), "the data did not arrive intact");
	} else if (!pr->unmap_flag) {
		c->result = VSM_PROBE_COPIED;
		snprintf(c->why, sizeof(c->why), "kernel rejects SPLICE_F_UNMAP: copies");
	} else if (pfn_src && pfn_dst) {
		c->result = pfn_src == pfn_dst ? VSM_PROBE_MOVED : VSM_PROBE_COPIED;
		snprintf(c->why, sizeof(c->why), "page frame %s (pagemap)%s",
			 pfn_src == pfn_dst ? "kept" : "changed",
			 k == K_THP && d.thp ? ", one PMD (counters)" :
			 k == K_MTHP && d.large ? ", a whole large folio (counters)" : "");
	} else if (d.supported && d.moved >= (long long)(len / page) &&
		   (k != K_THP || d.thp >= 1)) {
		c->result = VSM_PROBE_MOVED;
		snprintf(c->why, sizeof(c->why), "counters: %lld pages moved%s", d.moved,
			 k == K_THP ? ", as a THP" : k == K_MTHP && d.large ?
			 ", as a large folio" : "");
	} else {
		c->result = VSM_PROBE_COPIED;
		snprintf(c->why, sizeof(c->why), "%s: %lld moved, %lld copied",
			 d.supported ? "counters" : "no counters", d.moved, d.copied);
	}
	if (k == K_THP && c->result == VSM_PROBE_MOVED && anon_huge_kb(dst) < (long)(len / 1024))
		snprintf(c->why + strlen(c->why), sizeof(c->why) - strlen(c->why),
			 " (mapped by PTEs, not one PMD)");
out:
	if (pm >= 0)
		close(pm);
	if (src)
		munmap(src, len);
	if (dst)
		munmap(dst, len);
	close(p[0]);
	close(p[1]);
}

int vsm_probe(struct vsm_probe *pr)
{
	struct utsname u;
	struct vsm_stats s;
	int p[2], pm;

	memset(pr, 0, sizeof(*pr));
	if (!uname(&u))
		snprintf(pr->kernel, sizeof(pr->kernel), "%s", u.release);
	pr->page_size = sysconf(_SC_PAGESIZE);
	pr->pipe_max_size = vsmi_pipe_max_size();
	if (pipe2(p, O_CLOEXEC))
		return -1;
	pr->unmap_flag = vsm_unmap_supported(p[1]) == 1;
	close(p[0]);
	close(p[1]);
	pr->counters = vsm_stats_read(&s) == 0 && s.supported;

	/* PFNs: shown to CAP_SYS_ADMIN only, zero for everyone else. */
	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pm >= 0) {
		volatile char *x = vsm_alloc(pr->page_size, false);

		if (x) {
			x[0] = 1;
			pr->pfns_visible = pfn_of(pm, (const void *)x) != 0;
			vsm_free((void *)x, pr->page_size);
		}
		close(pm);
	}
	if (!thp_setting(THP_DIR "/enabled", pr->thp_enabled, sizeof(pr->thp_enabled)))
		pr->thp_size = vsm_thp_size();
	if (pr->thp_size)
		pr->mthp_size = smallest_mthp(pr->thp_enabled, pr->thp_size);

	try_case(pr, K_BASE, pr->page_size, &pr->base);
	if (!pr->thp_size || !strcmp(pr->thp_enabled, "never"))
		snprintf(pr->thp.why, sizeof(pr->thp.why), "THP %s",
			 pr->thp_size ? "disabled (never)" : "not supported");
	else
		try_case(pr, K_THP, pr->thp_size, &pr->thp);
	if (!pr->mthp_size)
		snprintf(pr->mthp.why, sizeof(pr->mthp.why),
			 "no mTHP size enabled (" THP_DIR "/hugepages-*kB/enabled)");
	else
		try_case(pr, K_MTHP, pr->mthp_size, &pr->mthp);
	return 0;
}
