// SPDX-License-Identifier: GPL-2.0
/* Parsing, formatting and messages shared by the subcommands. */
#define _GNU_SOURCE
#include "cmd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int shift = 0;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (shift && (*end == 'i' || *end == 'I'))
		end++;
	if (shift && (*end == 'b' || *end == 'B'))
		end++;
	if (*end || (shift && v > (~0ULL >> shift)))
		return -1;
	*out = v << shift;
	return 0;
}

int parse_seconds(const char *s, int *ms)
{
	char *end;
	double v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || v < 0 || v > 86400 * 30)
		return -1;
	*ms = (int)(v * 1000 + 0.5);
	if (!*ms && v > 0)
		*ms = 1;
	return 0;
}

int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

const char *fmt_bytes(char *buf, size_t len, double b)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (b >= 1024 && u < 4) {
		b /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
	return buf;
}

void errorf(const char *sub, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s%s%s: ", VSM_CMD_NAME, sub ? " " : "", sub ? sub : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int usage_error(const char *sub, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s%s%s: ", VSM_CMD_NAME, sub ? " " : "", sub ? sub : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s%s%s --help'.\n", VSM_CMD_NAME, sub ? " " : "",
		sub ? sub : "");
	return EXIT_USAGE;
}

void json_print(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

json_object *json_stats(const struct vsm_stats *s)
{
	json_object *o = json_object_new_object();
	json_object *r = json_object_new_object();

	json_object_object_add(o, "supported", json_object_new_boolean(s->supported));
	json_object_object_add(o, "unmapped", json_object_new_int64(s->unmapped));
	json_object_object_add(o, "moved", json_object_new_int64(s->moved));
	json_object_object_add(o, "zero", json_object_new_int64(s->moved_zero));
	json_object_object_add(o, "thp", json_object_new_int64(s->thp));
	json_object_object_add(o, "large", json_object_new_int64(s->large));
	json_object_object_add(o, "copied", json_object_new_int64(s->copied));
	for (int i = 0; i < s->nr_reasons; i++)
		json_object_object_add(r, s->reason[i].name,
				       json_object_new_int64(s->reason[i].pages));
	json_object_object_add(o, "copy_reasons", r);
	return o;
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One 64-bit word per 8 bytes of offset; any byte range is reproducible. */
static inline uint64_t pattern_word(uint64_t index, uint64_t seed)
{
	uint64_t z = index * 0x9e3779b97f4a7c15ULL + seed;

	z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9ULL;
	return z ^ (z >> 29);
}

void pattern_fill(void *buf, size_t len, uint64_t off, uint64_t seed)
{
	unsigned char *p = buf;
	size_t i = 0;

	/* Head and tail bytewise, the aligned middle a word at a time. */
	for (; i < len && (off + i) % 8; i++)
		p[i] = pattern_word((off + i) / 8, seed) >> ((off + i) % 8 * 8);
	for (; i + 8 <= len; i += 8) {
		uint64_t w = pattern_word((off + i) / 8, seed);

		memcpy(p + i, &w, 8);
	}
	for (; i < len; i++)
		p[i] = pattern_word((off + i) / 8, seed) >> ((off + i) % 8 * 8);
}

long long pattern_check(const void *buf, size_t len, uint64_t off, uint64_t seed)
{
	const unsigned char *p = buf;
	size_t i = 0;

	for (; i < len && (off + i) % 8; i++)
		if (p[i] != (unsigned char)(pattern_word((off + i) / 8, seed) >> ((off + i) % 8 * 8)))
			return i;
	for (; i + 8 <= len; i += 8) {
		uint64_t w = pattern_word((off + i) / 8, seed), g;

		memcpy(&g, p + i, 8);
		if (g != w)
			return i;
	}
	for (; i < len; i++)
		if (p[i] != (unsigned char)(pattern_word((off + i) / 8, seed) >> ((off + i) % 8 * 8)))
			return i;
	return -1;
}
