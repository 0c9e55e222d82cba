// SPDX-License-Identifier: GPL-2.0
/*
 * QEMU 7.2 migration stream filter; see stream.h.  Format constants from
 * QEMU's migration/savevm.c and migration/ram.c.
 */
#define _GNU_SOURCE
#include "stream.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QEMU_VM_FILE_MAGIC	0x5145564d
#define QEMU_VM_FILE_VERSION	0x00000003
#define QEMU_VM_EOF		0x00
#define QEMU_VM_SECTION_START	0x01
#define QEMU_VM_SECTION_PART	0x02
#define QEMU_VM_SECTION_END	0x03
#define QEMU_VM_SECTION_FULL	0x04
#define QEMU_VM_SUBSECTION	0x05
#define QEMU_VM_VMDESCRIPTION	0x06
#define QEMU_VM_CONFIGURATION	0x07
#define QEMU_VM_COMMAND		0x08
#define QEMU_VM_SECTION_FOOTER	0x7e

#define RAM_SAVE_FLAG_ZERO	0x02
#define RAM_SAVE_FLAG_MEM_SIZE	0x04
#define RAM_SAVE_FLAG_PAGE	0x08
#define RAM_SAVE_FLAG_EOS	0x10
#define RAM_SAVE_FLAG_CONTINUE	0x20
#define TARGET_PAGE_SIZE	4096
#define TARGET_PAGE_MASK	(~(uint64_t)(TARGET_PAGE_SIZE - 1))

struct rd {
	const uint8_t *p;
	size_t len, pos;
	bool bad;
};

struct wr {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

static bool need(struct rd *r, size_t n)
{
	if (r->bad || r->len - r->pos < n) {
		r->bad = true;
		return false;
	}
	return true;
}

static uint8_t get8(struct rd *r)
{
	return need(r, 1) ? r->p[r->pos++] : 0;
}

static uint32_t get32(struct rd *r)
{
	uint32_t v = 0;

	if (need(r, 4))
		for (int i = 0; i < 4; i++)
			v = v << 8 | r->p[r->pos++];
	return v;
}

static uint64_t get64(struct rd *r)
{
	uint64_t v = 0;

	if (need(r, 8))
		for (int i = 0; i < 8; i++)
			v = v << 8 | r->p[r->pos++];
	return v;
}

static const uint8_t *getn(struct rd *r, size_t n)
{
	const uint8_t *s = r->p + r->pos;

	if (!need(r, n))
		return NULL;
	r->pos += n;
	return s;
}

static void put(struct wr *w, const void *s, size_t n)
{
	if (w->oom)
		return;
	if (w->cap - w->len < n) {
		size_t cap = (w->cap ? w->cap * 2 : 1 << 20) + n;
		uint8_t *np = realloc(w->p, cap);

		if (!np) {
			w->oom = true;
			return;
		}
		w->p = np;
		w->cap = cap;
	}
	memcpy(w->p + w->len, s, n);
	w->len += n;
}

static void put8(struct wr *w, uint8_t v)
{
	put(w, &v, 1);
}

static void put64(struct wr *w, uint64_t v)
{
	uint8_t b[8];

	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = v & 0xff;
	put(w, b, 8);
}

/* Copy input bytes [@from, current position) to the output. */
static void pass(struct rd *r, struct wr *w, size_t from)
{
	put(w, r->p + from, r->pos - from);
}

static int ferr(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int ferr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

struct filt {
	const char *const *moved;
	char src_block[256];	/* the sender's current block */
	char dst_block[256];	/* the receiver's idea of it */
	uint32_t ram_section;
	bool have_ram;
	struct vsm_stream_stats *st;
	char *err;
	size_t errlen;
};

static bool is_moved(const struct filt *f, const char *name)
{
	for (int i = 0; f->moved && f->moved[i]; i++)
		if (!strcmp(f->moved[i], name))
			return true;
	return false;
}

/* Skip a vmstate's subsections we know (configuration's). */
static int config_section(struct filt *f, struct rd *r)
{
	uint32_t len = get32(r);

	getn(r, len);
	while (!r->bad && r->pos < r->len && r->p[r->pos] == QEMU_VM_SUBSECTION) {
		char name[257];
		uint8_t nl;
		const uint8_t *n;

		get8(r);
		nl = get8(r);
		n = getn(r, nl);
		if (!n)
			break;
		memcpy(name, n, nl);
		name[nl] = 0;
		get32(r);	/* version */
		if (!strcmp(name, "configuration/target-page-bits")) {
			get32(r);
		} else if (!strcmp(name, "configuration/capabilities")) {
			uint32_t caps = get32(r);

			for (uint32_t i = 0; i < caps && !r->bad; i++)
				getn(r, get8(r));
		} else if (!strcmp(name, "configuration/uuid")) {
			getn(r, 16);
		} else {
			return ferr(f->err, f->errlen, "migration stream: configuration subsection %s not understood",
				    name);
		}
	}
	return r->bad ? ferr(f->err, f->errlen, "migration stream: truncated configuration") : 0;
}

/* One RAM section body, up to and including RAM_SAVE_FLAG_EOS. */
static int ram_body(struct filt *f, struct rd *r, struct wr *w)
{
	for (;;) {
		size_t at = r->pos;
		uint64_t hdr = get64(r), addr = hdr & TARGET_PAGE_MASK;
		unsigned int flags = hdr & ~TARGET_PAGE_MASK;
		unsigned int kind = flags & ~RAM_SAVE_FLAG_CONTINUE;

		if (r->bad)
			return ferr(f->err, f->errlen, "migration stream: truncated RAM section");
		if (kind == RAM_SAVE_FLAG_EOS) {
			pass(r, w, at);
			return 0;
		}
		if (kind == RAM_SAVE_FLAG_MEM_SIZE) {
			/* The block list: name and used length of each. */
			uint64_t total = addr;

			while (total && !r->bad) {
				uint64_t blen;

				getn(r, get8(r));
				blen = get64(r);
				if (blen > total)
					return ferr(f->err, f->errlen, "migration stream: block list not understood");
				total -= blen;
			}
			pass(r, w, at);
			continue;
		}
		if (kind != RAM_SAVE_FLAG_ZERO && kind != RAM_SAVE_FLAG_PAGE)
			return ferr(f->err, f->errlen, "migration stream: RAM record flags %#x not understood (compression, XBZRLE, RDMA?)",
				    flags);
		if (!(flags & RAM_SAVE_FLAG_CONTINUE)) {
			uint8_t nl = get8(r);
			const uint8_t *n = getn(r, nl);

			if (!n)
				return ferr(f->err, f->errlen, "migration stream: truncated block name");
			memcpy(f->src_block, n, nl);
			f->src_block[nl] = 0;
		} else if (!f->src_block[0]) {
			return ferr(f->err, f->errlen, "migration stream: page record before any block");
		}
		bool moved = is_moved(f, f->src_block);
		const uint8_t *data;
		uint8_t fill = 0;

		if (kind == RAM_SAVE_FLAG_ZERO) {
			fill = get8(r);
			data = NULL;
		} else {
			data = getn(r, TARGET_PAGE_SIZE);
		}
		if (r->bad)
			return ferr(f->err, f->errlen, "migration stream: truncated page record");
		if (kind == RAM_SAVE_FLAG_ZERO && moved && fill == 0) {
			/* The moved page is the truth: do not let QEMU clear it. */
			f->st->zero_dropped++;
			continue;
		}
		if (kind == RAM_SAVE_FLAG_ZERO)
			f->st->zero_other++;
		else if (moved)
			f->st->pages_moved_blocks++;
		else
			f->st->pages_other++;
		/* Re-encode: name the block when the receiver would not know it. */
		if (!strcmp(f->dst_block, f->src_block)) {
			put64(w, addr | kind | RAM_SAVE_FLAG_CONTINUE);
		} else {
			size_t nl = strlen(f->src_block);

			put64(w, addr | kind);
			put8(w, nl);
			put(w, f->src_block, nl);
			strcpy(f->dst_block, f->src_block);
		}
		if (data)
			put(w, data, TARGET_PAGE_SIZE);
		else
			put8(w, fill);
	}
}

static int footer(struct filt *f, struct rd *r, struct wr *w, uint32_t id)
{
	size_t at = r->pos;

	if (r->pos < r->len && r->p[r->pos] == QEMU_VM_SECTION_FOOTER) {
		get8(r);
		if (get32(r) != id || r->bad)
			return ferr(f->err, f->errlen, "migration stream: bad section footer");
		pass(r, w, at);
	}
	return 0;
}

int vsm_stream_filter(const uint8_t *in, size_t inlen,
		      const char *const *moved, uint8_t **out, size_t *outlen,
		      struct vsm_stream_stats *st, char *err, size_t errlen)
{
	struct rd r = { in, inlen, 0, false };
	struct wr w = { 0 };
	struct filt f = { .moved = moved, .st = st, .err = err, .errlen = errlen };
	int ret = -1;

	memset(st, 0, sizeof(*st));
	st->in_bytes = inlen;
	if (get32(&r) != QEMU_VM_FILE_MAGIC || get32(&r) != QEMU_VM_FILE_VERSION) {
		ferr(err, errlen, "not a QEMU migration stream (version 3)");
		goto out;
	}
	pass(&r, &w, 0);
	for (;;) {
		size_t at = r.pos;
		uint8_t type = get8(&r);

		if (r.bad) {
			ferr(err, errlen, "migration stream ends before the device state");
			goto out;
		}
		if (type == QEMU_VM_CONFIGURATION) {
			if (config_section(&f, &r))
				goto out;
			pass(&r, &w, at);
		} else if (type == QEMU_VM_SECTION_START) {
			uint32_t id = get32(&r);
			uint8_t nl = get8(&r);
			const uint8_t *n = getn(&r, nl);

			get32(&r);	/* instance */
			get32(&r);	/* version */
			if (!n || nl != 3 || memcmp(n, "ram", 3)) {
				ferr(err, errlen, "migration stream: iterative section %.*s not understood",
				     n ? nl : 0, n ? (const char *)n : "");
				goto out;
			}
			f.ram_section = id;
			f.have_ram = true;
			pass(&r, &w, at);
			if (ram_body(&f, &r, &w) || footer(&f, &r, &w, id))
				goto out;
		} else if (type == QEMU_VM_SECTION_PART || type == QEMU_VM_SECTION_END) {
			uint32_t id = get32(&r);

			if (!f.have_ram || id != f.ram_section) {
				ferr(err, errlen, "migration stream: section %u not understood", id);
				goto out;
			}
			pass(&r, &w, at);
			if (ram_body(&f, &r, &w) || footer(&f, &r, &w, id))
				goto out;
		} else if (type == QEMU_VM_SECTION_FULL || type == QEMU_VM_EOF) {
			/* The device state (and the end): passed through. */
			r.pos = at;
			st->device_bytes = inlen - at;
			put(&w, in + at, inlen - at);
			break;
		} else if (type == QEMU_VM_COMMAND) {
			uint32_t cl = get32(&r);	/* be16 command, be16 length */

			getn(&r, cl & 0xffff);
			if (r.bad) {
				ferr(err, errlen, "migration stream: truncated command");
				goto out;
			}
			pass(&r, &w, at);
		} else {
			ferr(err, errlen, "migration stream: section type %#x not understood",
			     type);
			goto out;
		}
	}
	if (w.oom) {
		ferr(err, errlen, "out of memory filtering the migration stream");
		goto out;
	}
	st->out_bytes = w.len;
	*out = w.p;
	*outlen = w.len;
	w.p = NULL;
	ret = 0;
out:
	free(w.p);
	return ret;
}
