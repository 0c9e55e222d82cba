// SPDX-License-Identifier: GPL-2.0
#include "lrec.h"

#include <stdio.h>
#include <string.h>

#define LREC_MAGIC	0xf5a3ULL
#define WORDS		(LREC_LINE / 8)
#define LINES		(LREC_SIZE / LREC_LINE)

/* magic:16 pipe:4 writer:8 line:6 seq:30 */
static uint64_t line_id(const struct lrec_id *id, unsigned int line)
{
	return LREC_MAGIC << 48 | (uint64_t)(id->pipe & 0xf) << 44 |
	       (uint64_t)(id->writer & 0xff) << 36 | (uint64_t)line << 30 |
	       (id->seq & ((1ULL << 30) - 1));
}

static bool parse_id(uint64_t w, struct lrec_id *id, unsigned int *line)
{
	if (w >> 48 != LREC_MAGIC)
		return false;
	id->pipe = (w >> 44) & 0xf;
	id->writer = (w >> 36) & 0xff;
	*line = (w >> 30) & 0x3f;
	id->seq = w & ((1ULL << 30) - 1);
	return true;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	return x;
}

/* Word @j (1..WORDS-1) of the line whose id is @lid. */
static uint64_t line_word(uint64_t lid, unsigned int j)
{
	return mix(lid * 0x9e3779b97f4a7c15ULL + j);
}

static void fill_line(uint64_t *w, uint64_t lid)
{
	w[0] = lid;
	for (unsigned int j = 1; j < WORDS; j++)
		w[j] = line_word(lid, j);
}

void lrec_fill(void *p, const struct lrec_id *id)
{
	uint64_t *w = p;

	for (unsigned int l = 0; l < LINES; l++)
		fill_line(w + l * WORDS, line_id(id, l));
}

static bool line_exact(const uint64_t *w, uint64_t lid)
{
	if (w[0] != lid)
		return false;
	for (unsigned int j = 1; j < WORDS; j++)
		if (w[j] != line_word(lid, j))
			return false;
	return true;
}

bool lrec_check(const void *p, struct lrec_id *id)
{
	const uint64_t *w = p;
	unsigned int line;

	if (!parse_id(w[0], id, &line) || line != 0)
		return false;
	for (unsigned int l = 0; l < LINES; l++)
		if (!line_exact(w + l * WORDS, line_id(id, l)))
			return false;
	return true;
}

enum lrec_verdict lrec_judge(const void *p, bool excused, struct lrec_id *id,
			     char *msg, size_t msg_len)
{
	const unsigned char *b = p;
	const uint64_t *w = p;
	bool known = false;
	uint64_t want[WORDS];

	if (lrec_check(p, id))
		return LREC_EXACT;
	if (!excused) {
		struct lrec_id tmp;
		unsigned int line;

		if (parse_id(w[0], &tmp, &line))
			*id = tmp;
		snprintf(msg, msg_len, "bad record (first word %#llx), and no racer touched its page",
			 (unsigned long long)w[0]);
		return LREC_BAD;
	}
	/* Which record?  Any intact line says; all intact lines must agree. */
	for (unsigned int l = 0; l < LINES; l++) {
		struct lrec_id lid;
		unsigned int line;

		if (!parse_id(w[l * WORDS], &lid, &line) || line != l ||
		    !line_exact(w + l * WORDS, line_id(&lid, l)))
			continue;
		if (known && (lid.pipe != id->pipe || lid.writer != id->writer ||
			      lid.seq != id->seq)) {
			snprintf(msg, msg_len, "lines of two records (writer %u seq %llu and writer %u seq %llu) in one page",
				 id->writer, (unsigned long long)id->seq,
				 lid.writer, (unsigned long long)lid.seq);
			return LREC_BAD;
		}
		*id = lid;
		known = true;
	}
	if (!known) {
		/*
		 * No line survived whole: a zeroed page, or one zeroed up to
		 * a point inside its last line.  Bytes after the last zero
		 * run then cannot be named; at most one line's worth.
		 */
		size_t first = LREC_SIZE;

		for (size_t i = 0; i < LREC_SIZE; i++)
			if (b[i]) {
				first = i;
				break;
			}
		if (first == LREC_SIZE)
			return LREC_ZERO;
		if (first >= LREC_SIZE - LREC_LINE)
			return LREC_ZERO;	/* <64 trailing bytes, unnamed */
		snprintf(msg, msg_len, "garbage: no line intact, first non-zero byte at %zu",
			 first);
		return LREC_BAD;
	}
	/* Every byte is the record's or zero. */
	for (unsigned int l = 0; l < LINES; l++) {
		const unsigned char *g = b + l * LREC_LINE;
		const unsigned char *e = (const unsigned char *)want;

		fill_line(want, line_id(id, l));
		for (unsigned int i = 0; i < LREC_LINE; i++)
			if (g[i] != e[i] && g[i]) {
				snprintf(msg, msg_len, "writer %u seq %llu: byte %u is %#x, neither its own (%#x) nor zero",
					 id->writer, (unsigned long long)id->seq,
					 l * LREC_LINE + i, g[i], e[i]);
				return LREC_BAD;
			}
	}
	return LREC_DAMAGED;
}
