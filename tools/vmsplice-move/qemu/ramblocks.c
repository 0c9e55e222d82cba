// SPDX-License-Identifier: GPL-2.0
/*
 * Finding QEMU's guest RAM blocks in a QEMU process; see ramblocks.h.
 */
#define _GNU_SOURCE
#include "ramblocks.h"
#include "qmp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#define PAGE		4096ULL
#define RAM_ALIGN	(2ULL << 20)	/* QEMU_VMALLOC_ALIGN on x86-64 Linux */
#define QMP_MS		5000
#define MAX_CAND	64
#define SPREAD		64		/* evenly spaced probe pages */
#define DENSE		4096		/* ... when those are all zero */
#define MAX_SAMPLES	16

static int errf(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int errf(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

void vsm_ram_free(struct vsm_ramlist *l)
{
	free(l->b);
	l->b = NULL;
	l->n = 0;
}

struct vsm_ramblock *vsm_ram_find(struct vsm_ramlist *l, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (!strcmp(l->b[i].name, name))
			return &l->b[i];
	return NULL;
}

/* Whether memory region name @mr names block @b ("dev/path/" + name). */
static bool mr_is_block(const char *mr, const struct vsm_ramblock *b)
{
	size_t lb = strlen(b->name), lm = strlen(mr);

	if (!strcmp(mr, b->name))
		return true;
	return lb > lm && b->name[lb - lm - 1] == '/' &&
	       !strcmp(b->name + lb - lm, mr);
}

static int parse_ramblocks(const char *txt, struct vsm_ramlist *out,
			   char *err, size_t errlen)
{
	const char *line = txt;
	int cap = 0;

	out->n = 0;
	out->b = NULL;
	for (; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		struct vsm_ramblock b = { 0 };
		unsigned long long off, used, max;
		char unit[8];
		unsigned int ps;

		if (sscanf(line, "%255s %u %7s %llx %llx %llx", b.name, &ps, unit,
			   &off, &used, &max) != 6)
			continue;
		if (!strcmp(unit, "KiB"))
			b.page_size = ps << 10;
		else if (!strcmp(unit, "MiB"))
			b.page_size = ps << 20;
		else if (!strcmp(unit, "GiB"))
			b.page_size = ps << 30;
		else
			return errf(err, errlen, "info ramblock: page size \"%u %s\" not understood",
				    ps, unit);
		b.ram_offset = off;
		b.used = used;
		b.max = max;
		if (used > max || used % PAGE || max % PAGE)
			return errf(err, errlen, "info ramblock: block %s has sizes %#llx/%#llx not understood",
				    b.name, used, max);
		if (out->n == cap) {
			struct vsm_ramblock *nb;

			cap = cap ? cap * 2 : 16;
			nb = realloc(out->b, cap * sizeof(*nb));
			if (!nb)
				return errf(err, errlen, "out of memory");
			out->b = nb;
		}
		out->b[out->n++] = b;
	}
	if (!out->n)
		return errf(err, errlen, "info ramblock listed no RAM block (output not understood)");
	return 0;
}

/*
 * "info mtree -f": in the flat view of the "memory" address space, lines
 *   0000000000100000-0000000003ffffff (prio 0, ram): pc.ram @0000000000100000
 * say which guest-physical range shows which part of which block.
 */
static int parse_mtree(const char *txt, struct vsm_ramlist *l)
{
	const char *line = txt;
	bool in_memory = false;

	for (; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		unsigned long long s, e, off = 0;
		char type[32], name[256];
		const char *p;
		int n = 0, hits = 0;
		struct vsm_ramblock *hit = NULL;

		if (!strncmp(line, "FlatView", 8)) {
			in_memory = false;
			continue;
		}
		if (strstr(line, " AS \"memory\"") == line ||
		    !strncmp(line, " AS \"memory\",", 13)) {
			in_memory = true;
			continue;
		}
		if (!in_memory)
			continue;
		if (sscanf(line, " %llx-%llx (prio %*d, %31[^)]): %255s%n", &s, &e,
			   type, name, &n) != 4)
			continue;
		if (strcmp(type, "ram") && strcmp(type, "rom"))
			continue;
		p = line + n;
		if (sscanf(p, " @%llx", &off) != 1)
			off = 0;
		for (int i = 0; i < l->n; i++) {
			if (mr_is_block(name, &l->b[i])) {
				hit = &l->b[i];
				hits++;
			}
		}
		/* Two blocks behind one name: neither can be told apart. */
		if (hits != 1 || hit->nranges == VSM_MAX_GPA_RANGES)
			continue;
		if (off + (e - s + 1) > hit->used)
			continue;
		hit->ranges[hit->nranges++] = (struct vsm_gpa_range){
			.gpa = s, .offset = off, .len = e - s + 1 };
	}
	return 0;
}

int vsm_ram_query(struct vsm_qmp *q, struct vsm_ramlist *out, char *err,
		  size_t errlen)
{
	char *rb = vsm_qmp_hmp(q, "info ramblock", QMP_MS), *mt;
	int ret;

	if (!rb)
		return errf(err, errlen, "info ramblock: %s", vsm_qmp_error(q));
	ret = parse_ramblocks(rb, out, err, errlen);
	free(rb);
	if (ret)
		return ret;
	mt = vsm_qmp_hmp(q, "info mtree -f", QMP_MS);
	if (!mt) {
		vsm_ram_free(out);
		return errf(err, errlen, "info mtree -f: %s", vsm_qmp_error(q));
	}
	parse_mtree(mt, out);
	free(mt);
	return 0;
}

/* Candidate host addresses of @b in @pid: private anonymous rw mappings. */
static int candidates(pid_t pid, const struct vsm_ramblock *b, bool need_hg,
		      uint64_t *cand)
{
	char path[64], line[512];
	unsigned long long s = 0, e = 0;
	bool anon = false;
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long ns, ne;
		char perms[5];
		int pos = 0;

		if (sscanf(line, "%llx-%llx %4s %*s %*s %*s %n", &ns, &ne, perms,
			   &pos) == 3 && pos > 0) {
			s = ns;
			e = ne;
			anon = !strcmp(perms, "rw-p") &&
			       (line[pos] == '\n' || line[pos] == 0);
			continue;
		}
		if (strncmp(line, "VmFlags:", 8) || !anon)
			continue;
		/* QEMU madvises every RAM block MADV_HUGEPAGE ("hg"). */
		if (need_hg && !strstr(line, " hg"))
			continue;
		for (uint64_t a = (s + RAM_ALIGN - 1) & ~(RAM_ALIGN - 1);
		     a + b->max <= e && n < MAX_CAND; a += RAM_ALIGN)
			cand[n++] = a;
		if (s % RAM_ALIGN && s + b->max <= e && n < MAX_CAND)
			cand[n++] = s;
	}
	fclose(f);
	return n;
}

static bool read_remote(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec l = { buf, len }, r = { (void *)(uintptr_t)addr, len };

	return process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)len;
}

static bool write_remote(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec l = { (void *)buf, len }, r = { (void *)(uintptr_t)addr, len };

	return process_vm_writev(pid, &l, 1, &r, 1, 0) == (ssize_t)len;
}

static bool is_zero(const void *p, size_t n)
{
	const uint8_t *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i])
			return false;
	return true;
}

static uint64_t visible_pages(const struct vsm_ramblock *b)
{
	uint64_t n = 0;

	for (int i = 0; i < b->nranges; i++)
		n += b->ranges[i].len / PAGE;
	return n;
}

/* The @k-th visible page of @b: its block offset and guest address. */
static void visible_page(const struct vsm_ramblock *b, uint64_t k,
			 uint64_t *off, uint64_t *gpa)
{
	for (int i = 0; i < b->nranges; i++) {
		uint64_t np = b->ranges[i].len / PAGE;

		if (k < np) {
			*off = b->ranges[i].offset + k * PAGE;
			*gpa = b->ranges[i].gpa + k * PAGE;
			return;
		}
		k -= np;
	}
	*off = *gpa = 0;
}

static void tmpname(char *buf, size_t len, const char *tmpdir)
{
	snprintf(buf, len, "%s/pmem.%d", tmpdir, getpid());
}

/*
 * Pages of @b that are non-zero in at least one candidate: up to @max of
 * them, spread over the visible part.
 */
static int pick_samples(pid_t pid, const struct vsm_ramblock *b,
			const uint64_t *cand, int nc, uint64_t *koff, int max)
{
	uint64_t np = visible_pages(b);
	static uint8_t page[PAGE];
	int n = 0;

	for (int pass = 0; pass < 2 && n < max; pass++) {
		uint64_t want = pass ? DENSE : SPREAD;
		uint64_t step = np > want ? np / want : 1;

		n = 0;
		for (uint64_t k = step / 2; k < np && n < max; k += step) {
			uint64_t off, gpa;

			visible_page(b, k, &off, &gpa);
			for (int c = 0; c < nc; c++) {
				if (read_remote(pid, cand[c] + off, page, PAGE) &&
				    !is_zero(page, PAGE)) {
					koff[n++] = k;
					break;
				}
			}
		}
	}
	return n;
}

int vsm_ram_locate_by_content(struct vsm_qmp *q, pid_t pid,
			      struct vsm_ramblock *b, int min_samples,
			      const char *tmpdir, char *err, size_t errlen)
{
	uint64_t cand[MAX_CAND], koff[MAX_SAMPLES];
	bool ok[MAX_CAND];
	static uint8_t gp[PAGE], hp[PAGE];
	char tmp[512];
	int nc, ns, nok = 0, which = -1;

	b->host = 0;
	b->samples = 0;
	if (!b->nranges)
		return 0;	/* not in guest-physical memory: cannot compare */
	nc = candidates(pid, b, true, cand);
	if (nc <= 0)
		nc = candidates(pid, b, false, cand);
	if (nc < 0)
		return errf(err, errlen, "cannot read /proc/%d/smaps", pid);
	if (!nc)
		return 0;
	ns = pick_samples(pid, b, cand, nc, koff, MAX_SAMPLES);
	if (ns < min_samples)
		return 0;	/* too little non-zero memory to tell */
	tmpname(tmp, sizeof(tmp), tmpdir);
	for (int c = 0; c < nc; c++)
		ok[c] = true;
	for (int s = 0; s < ns; s++) {
		uint64_t off, gpa;

		visible_page(b, koff[s], &off, &gpa);
		for (int c = 0; c < nc; c++) {
			/* A running guest may write between the two reads. */
			bool same = false;

			for (int tries = 0; ok[c] && tries < 3 && !same; tries++) {
				if (vsm_qmp_pmem_read(q, gpa, gp, PAGE, tmp, QMP_MS))
					return errf(err, errlen, "reading guest memory at %#llx: %s",
						    (unsigned long long)gpa,
						    vsm_qmp_error(q));
				same = read_remote(pid, cand[c] + off, hp, PAGE) &&
				       !memcmp(gp, hp, PAGE);
			}
			ok[c] = ok[c] && same;
		}
	}
	for (int c = 0; c < nc; c++) {
		if (ok[c]) {
			nok++;
			which = c;
		}
	}
	if (nok > 1)
		return errf(err, errlen, "block %s: %d host mappings hold the same %d pages; refusing to guess",
			    b->name, nok, ns);
	if (!nok)
		return 0;
	b->host = cand[which];
	b->samples = ns;
	return 1;
}

int vsm_ram_locate_by_marker(struct vsm_qmp *q, pid_t pid,
			     struct vsm_ramblock *b, const char *tmpdir,
			     char *err, size_t errlen)
{
	struct marker {
		char magic[8];
		uint64_t nonce;
		uint32_t idx, inv;
		uint64_t pad;
	} mk, seen, saved[MAX_CAND];
	uint64_t cand[MAX_CAND], off, gpa, nonce;
	bool wrote[MAX_CAND] = { false };
	char tmp[512];
	int nc, which = -1, ret = 0;

	b->host = 0;
	b->samples = 0;
	if (!b->nranges)
		return 0;
	/* Only mappings QEMU madvised as guest RAM: never write elsewhere. */
	nc = candidates(pid, b, true, cand);
	if (nc < 0)
		return errf(err, errlen, "cannot read /proc/%d/smaps", pid);
	if (!nc)
		return 0;
	visible_page(b, visible_pages(b) / 2, &off, &gpa);
	if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce))
		nonce = (uint64_t)getpid() << 32 ^ (uint64_t)b;
	for (int c = 0; c < nc; c++) {
		if (!read_remote(pid, cand[c] + off, &saved[c], sizeof(mk)))
			continue;
		memcpy(mk.magic, "VSMPROBE", 8);
		mk.nonce = nonce;
		mk.idx = c;
		mk.inv = ~(uint32_t)c;
		mk.pad = 0;
		wrote[c] = write_remote(pid, cand[c] + off, &mk, sizeof(mk));
	}
	tmpname(tmp, sizeof(tmp), tmpdir);
	if (vsm_qmp_pmem_read(q, gpa, &seen, sizeof(seen), tmp, QMP_MS))
		ret = errf(err, errlen, "reading guest memory at %#llx: %s",
			   (unsigned long long)gpa, vsm_qmp_error(q));
	else if (!memcmp(seen.magic, "VSMPROBE", 8) && seen.nonce == nonce &&
		 seen.idx < (uint32_t)nc && seen.inv == ~seen.idx &&
		 wrote[seen.idx])
		which = seen.idx;
	for (int c = 0; c < nc; c++)
		if (wrote[c] && !write_remote(pid, cand[c] + off, &saved[c],
					      sizeof(mk)))
			ret = errf(err, errlen, "cannot restore probed bytes in process %d",
				   pid);
	if (ret || which < 0)
		return ret;
	b->host = cand[which];
	b->samples = 1;
	return 1;
}

int vsm_ram_verify(struct vsm_qmp *q, pid_t pid, const struct vsm_ramblock *b,
		   int n, const char *tmpdir, char *err, size_t errlen)
{
	uint64_t koff[MAX_SAMPLES], host = b->host;
	static uint8_t gp[PAGE], hp[PAGE];
	char tmp[512];
	int ns;

	if (n > MAX_SAMPLES)
		n = MAX_SAMPLES;
	ns = pick_samples(pid, b, &host, 1, koff, n);
	tmpname(tmp, sizeof(tmp), tmpdir);
	for (int s = 0; s < ns; s++) {
		uint64_t off, gpa;

		visible_page(b, koff[s], &off, &gpa);
		if (vsm_qmp_pmem_read(q, gpa, gp, PAGE, tmp, QMP_MS))
			return errf(err, errlen, "reading guest memory: %s",
				    vsm_qmp_error(q));
		if (!read_remote(pid, host + off, hp, PAGE) ||
		    memcmp(gp, hp, PAGE))
			return errf(err, errlen, "block %s at %#llx no longer matches guest memory at %#llx",
				    b->name, (unsigned long long)host,
				    (unsigned long long)gpa);
	}
	return 0;
}
