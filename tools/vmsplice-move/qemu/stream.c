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

enum where {
	W_HEADER,	/* file magic and version */
	W_TOP,		/* between sections */
	W_RAM,		/* in a RAM section's records */
	W_FOOTER,	/* after a RAM section's EOS */
	W_DEVICE,	/* the device state: passed through */
};

struct vsm_stream {
	char **moved;
	bool precopy;
	enum where where;
	uint8_t section;	/* START, PART or END of the RAM section */
	uint32_t ram_section, cur_id;
	bool have_ram;
	char src_block[256];	/* the sender's current block */
	char dst_block[256];	/* the receiver's idea of it */
	uint8_t *in;		/* input not yet parsed */
	size_t inlen, incap;
	struct wr w;
	struct vsm_stream_stats st;
};

/* What parsing one item gave. */
enum { ITEM_MORE = 0, ITEM_DONE = 1, ITEM_BAD = -1 };

static bool is_moved(const struct vsm_stream *s, const char *name)
{
	for (int i = 0; s->moved[i]; i++)
		if (!strcmp(s->moved[i], name))
			return true;
	return false;
}

/*
 * The configuration section, whole.  Whether another subsection follows
 * is only known from the next byte: without it, wait for more.
 */
static int config_section(struct rd *r, char *err, size_t errlen)
{
	uint32_t len = get32(r);

	getn(r, len);
	for (;;) {
		char name[257];
		uint8_t nl;
		const uint8_t *n;

		if (r->bad || r->pos == r->len)
			return ITEM_MORE;
		if (r->p[r->pos] != QEMU_VM_SUBSECTION)
			return ITEM_DONE;
		get8(r);
		nl = get8(r);
		n = getn(r, nl);
		if (!n)
			return ITEM_MORE;
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
			return ferr(err, errlen, "migration stream: configuration subsection %s not understood",
				    name);
		}
	}
}

/* One RAM record (or the section's EOS). */
static int ram_record(struct vsm_stream *s, struct rd *r, char *err, size_t errlen)
{
	struct wr *w = &s->w;
	uint64_t hdr = get64(r), addr = hdr & TARGET_PAGE_MASK;
	unsigned int flags = hdr & ~TARGET_PAGE_MASK;
	unsigned int kind = flags & ~RAM_SAVE_FLAG_CONTINUE;
	char block[256];
	const uint8_t *data;
	uint8_t fill = 0;
	bool moved;

	if (r->bad)
		return ITEM_MORE;
	if (kind == RAM_SAVE_FLAG_EOS) {
		pass(r, w, 0);
		s->where = W_FOOTER;
		return ITEM_DONE;
	}
	if (kind == RAM_SAVE_FLAG_MEM_SIZE) {
		/* The block list: name and used length of each. */
		uint64_t total = addr;

		while (total && !r->bad) {
			uint64_t blen;

			getn(r, get8(r));
			blen = get64(r);
			if (r->bad)
				return ITEM_MORE;
			if (blen > total)
				return ferr(err, errlen, "migration stream: block list not understood");
			total -= blen;
		}
		if (r->bad)
			return ITEM_MORE;
		s->st.pass_pages += addr / TARGET_PAGE_SIZE;
		pass(r, w, 0);
		return ITEM_DONE;
	}
	if (kind != RAM_SAVE_FLAG_ZERO && kind != RAM_SAVE_FLAG_PAGE)
		return ferr(err, errlen, "migration stream: RAM record flags %#x not understood (compression, XBZRLE, RDMA?)",
			    flags);
	if (!(flags & RAM_SAVE_FLAG_CONTINUE)) {
		uint8_t nl = get8(r);
		const uint8_t *n = getn(r, nl);

		if (!n)
			return ITEM_MORE;
		memcpy(block, n, nl);
		block[nl] = 0;
	} else if (!s->src_block[0]) {
		return ferr(err, errlen, "migration stream: page record before any block");
	} else {
		strcpy(block, s->src_block);
	}
	if (kind == RAM_SAVE_FLAG_ZERO) {
		fill = get8(r);
		data = NULL;
	} else {
		data = getn(r, TARGET_PAGE_SIZE);
	}
	if (r->bad)
		return ITEM_MORE;
	/* The record is whole: from here on it counts. */
	strcpy(s->src_block, block);
	moved = is_moved(s, block);
	if (s->section != QEMU_VM_SECTION_END)
		s->st.pass_records++;
	if (moved && s->precopy && s->section != QEMU_VM_SECTION_END) {
		/* Sent before the gift: the moved page is newer or the same. */
		if (kind == RAM_SAVE_FLAG_ZERO)
			s->st.zero_dropped++;
		else
			s->st.precopy_dropped++;
		return ITEM_DONE;
	}
	if (kind == RAM_SAVE_FLAG_ZERO && moved && fill == 0) {
		/* The moved page is the truth: do not let QEMU clear it. */
		s->st.zero_dropped++;
		return ITEM_DONE;
	}
	if (kind == RAM_SAVE_FLAG_ZERO)
		s->st.zero_other++;
	else if (moved)
		s->st.pages_moved_blocks++;
	else
		s->st.pages_other++;
	/* Re-encode: name the block when the receiver would not know it. */
	if (!strcmp(s->dst_block, s->src_block)) {
		put64(w, addr | kind | RAM_SAVE_FLAG_CONTINUE);
	} else {
		size_t nl = strlen(s->src_block);

		put64(w, addr | kind);
		put8(w, nl);
		put(w, s->src_block, nl);
		strcpy(s->dst_block, s->src_block);
	}
	if (data)
		put(w, data, TARGET_PAGE_SIZE);
	else
		put8(w, fill);
	return ITEM_DONE;
}

static int footer(struct vsm_stream *s, struct rd *r, char *err, size_t errlen)
{
	if (r->pos == r->len)
		return ITEM_MORE;
	if (r->p[r->pos] == QEMU_VM_SECTION_FOOTER) {
		get8(r);
		uint32_t id = get32(r);

		if (r->bad)
			return ITEM_MORE;
		if (id != s->cur_id)
			return ferr(err, errlen, "migration stream: bad section footer");
		pass(r, &s->w, 0);
	}
	s->where = W_TOP;
	return ITEM_DONE;
}

/* A top-level item: a section header, the configuration, a command. */
static int top(struct vsm_stream *s, struct rd *r, char *err, size_t errlen)
{
	uint8_t type = get8(r);
	int ret;

	if (r->bad)
		return ITEM_MORE;
	if (type == QEMU_VM_CONFIGURATION) {
		ret = config_section(r, err, errlen);
		if (ret == ITEM_DONE)
			pass(r, &s->w, 0);
		return ret;
	}
	if (type == QEMU_VM_SECTION_START) {
		uint32_t id = get32(r);
		uint8_t nl = get8(r);
		const uint8_t *n = getn(r, nl);

		get32(r);	/* instance */
		get32(r);	/* version */
		if (r->bad)
			return ITEM_MORE;
		if (nl != 3 || memcmp(n, "ram", 3))
			return ferr(err, errlen, "migration stream: iterative section %.*s not understood",
				    nl, (const char *)n);
		s->ram_section = id;
		s->have_ram = true;
		s->cur_id = id;
		s->section = type;
		s->where = W_RAM;
		pass(r, &s->w, 0);
		return ITEM_DONE;
	}
	if (type == QEMU_VM_SECTION_PART || type == QEMU_VM_SECTION_END) {
		uint32_t id = get32(r);

		if (r->bad)
			return ITEM_MORE;
		if (!s->have_ram || id != s->ram_section)
			return ferr(err, errlen, "migration stream: section %u not understood", id);
		s->cur_id = id;
		s->section = type;
		if (type == QEMU_VM_SECTION_END)
			s->st.in_end = true;
		s->where = W_RAM;
		pass(r, &s->w, 0);
		return ITEM_DONE;
	}
	if (type == QEMU_VM_SECTION_FULL || type == QEMU_VM_EOF) {
		/* The device state (and the end): passed through from here. */
		r->pos = 0;
		s->where = W_DEVICE;
		s->st.done = true;
		return ITEM_DONE;
	}
	if (type == QEMU_VM_COMMAND) {
		uint32_t cl = get32(r);	/* be16 command, be16 length */

		getn(r, cl & 0xffff);
		if (r->bad)
			return ITEM_MORE;
		pass(r, &s->w, 0);
		return ITEM_DONE;
	}
	return ferr(err, errlen, "migration stream: section type %#x not understood", type);
}

struct vsm_stream *vsm_stream_new(const char *const *moved, bool precopy)
{
	struct vsm_stream *s = calloc(1, sizeof(*s));
	int n = 0;

	if (!s)
		return NULL;
	while (moved && moved[n])
		n++;
	s->moved = calloc(n + 1, sizeof(*s->moved));
	if (!s->moved) {
		free(s);
		return NULL;
	}
	for (int i = 0; i < n; i++)
		if (!(s->moved[i] = strdup(moved[i]))) {
			vsm_stream_free(s);
			return NULL;
		}
	s->precopy = precopy;
	return s;
}

void vsm_stream_free(struct vsm_stream *s)
{
	if (!s)
		return;
	for (int i = 0; s->moved && s->moved[i]; i++)
		free(s->moved[i]);
	free(s->moved);
	free(s->in);
	free(s->w.p);
	free(s);
}

const struct vsm_stream_stats *vsm_stream_stats(const struct vsm_stream *s)
{
	return &s->st;
}

/* Parse items from @r, each from its own start, until one is incomplete. */
static int parse(struct vsm_stream *s, struct rd *r, char *err, size_t errlen)
{
	while (r->pos < r->len) {
		struct rd item = { r->p + r->pos, r->len - r->pos, 0, false };
		int ret;

		if (s->where == W_DEVICE) {
			s->st.device_bytes += item.len;
			put(&s->w, item.p, item.len);
			r->pos = r->len;
			break;
		}
		switch (s->where) {
		case W_HEADER:
			if (item.len < 8)
				return 0;
			if (get32(&item) != QEMU_VM_FILE_MAGIC ||
			    get32(&item) != QEMU_VM_FILE_VERSION)
				return ferr(err, errlen, "not a QEMU migration stream (version 3)");
			pass(&item, &s->w, 0);
			s->where = W_TOP;
			ret = ITEM_DONE;
			break;
		case W_TOP:
			ret = top(s, &item, err, errlen);
			break;
		case W_RAM:
			ret = ram_record(s, &item, err, errlen);
			break;
		default:
			ret = footer(s, &item, err, errlen);
			break;
		}
		if (ret == ITEM_BAD)
			return -1;
		if (ret == ITEM_MORE)
			return 0;
		r->pos += item.pos;
	}
	return 0;
}

/* Keep @r's unparsed bytes as the leftover (at most an item). */
static int keep(struct vsm_stream *s, const struct rd *r, char *err, size_t errlen)
{
	size_t left = r->len - r->pos;

	if (r->p != s->in && s->incap < left) {
		uint8_t *n = realloc(s->in, left);

		if (!n)
			return ferr(err, errlen, "out of memory filtering the migration stream");
		s->in = n;
		s->incap = left;
	}
	memmove(s->in, r->p + r->pos, left);
	s->inlen = left;
	return 0;
}

int vsm_stream_feed(struct vsm_stream *s, const uint8_t *buf, size_t len,
		    char *err, size_t errlen)
{
	struct rd r;

	s->st.in_bytes += len;
	/*
	 * An item cut by the previous chunk: complete it from the front of
	 * this one, a little at a time, so that the rest is parsed where it
	 * lies instead of being copied.
	 */
	while (s->inlen && len) {
		size_t take = len < 8192 ? len : 8192;

		if (s->incap - s->inlen < take) {
			uint8_t *n = realloc(s->in, s->inlen + 8192);

			if (!n)
				return ferr(err, errlen, "out of memory filtering the migration stream");
			s->in = n;
			s->incap = s->inlen + 8192;
		}
		memcpy(s->in + s->inlen, buf, take);
		r = (struct rd){ s->in, s->inlen + take, 0, false };
		buf += take;
		len -= take;
		if (parse(s, &r, err, errlen))
			return -1;
		if (r.len - r.pos <= take) {
			/* The old part is parsed: go on in the caller's buffer. */
			buf -= r.len - r.pos;
			len += r.len - r.pos;
			s->inlen = 0;
		} else if (keep(s, &r, err, errlen)) {
			return -1;
		}
	}
	if (len) {
		r = (struct rd){ buf, len, 0, false };
		if (parse(s, &r, err, errlen) || keep(s, &r, err, errlen))
			return -1;
	}
	if (s->w.oom)
		return ferr(err, errlen, "out of memory filtering the migration stream");
	s->st.out_bytes = s->w.len;
	return 0;
}

int vsm_stream_end(struct vsm_stream *s, uint8_t **out, size_t *outlen,
		   char *err, size_t errlen)
{
	if (s->where != W_DEVICE)
		return ferr(err, errlen, s->where == W_HEADER && !s->st.in_bytes ?
			    "not a QEMU migration stream (version 3)" :
			    "migration stream ends before the device state");
	*out = s->w.p;
	*outlen = s->w.len;
	s->w = (struct wr){ 0 };
	return 0;
}

int vsm_stream_filter(const uint8_t *in, size_t inlen,
		      const char *const *moved, uint8_t **out, size_t *outlen,
		      struct vsm_stream_stats *st, char *err, size_t errlen)
{
	struct vsm_stream *s = vsm_stream_new(moved, false);
	int ret;

	if (!s)
		return ferr(err, errlen, "out of memory filtering the migration stream");
	ret = vsm_stream_feed(s, in, inlen, err, errlen);
	if (!ret)
		ret = vsm_stream_end(s, out, outlen, err, errlen);
	*st = s->st;
	vsm_stream_free(s);
	return ret;
}
