// SPDX-License-Identifier: GPL-2.0
#include "words.h"

/*
 * Word i of seed s: s in the upper 40 bits' mix, i in the rest, so that
 * words_seed_at() can recover s from any word without a search.
 */
static uint64_t word(uint64_t seed, uint64_t i)
{
	return (seed << 24) ^ (i & 0xffffff) ^ ((i >> 24) * 0x9e3779b97f4a7c15ULL);
}

void words_fill(void *p, size_t len, uint64_t seed, size_t offset)
{
	uint64_t *w = p, i0 = offset / 8;

	for (size_t i = 0; i < len / 8; i++)
		w[i] = word(seed, i0 + i);
}

size_t words_check(const void *p, size_t len, uint64_t seed, size_t offset)
{
	const uint64_t *w = p;
	uint64_t i0 = offset / 8;

	for (size_t i = 0; i < len / 8; i++)
		if (w[i] != word(seed, i0 + i))
			return i * 8;
	return (size_t)-1;
}

uint64_t words_seed_at(const void *page, size_t offset)
{
	uint64_t i = offset / 8;

	return (*(const uint64_t *)page ^ word(0, i)) >> 24;
}

void words_id(const void *p, uint64_t *seed, size_t *offset)
{
	uint64_t w = *(const uint64_t *)p;

	*seed = w >> 24;
	*offset = (size_t)(w & 0xffffff) * 8;
}
