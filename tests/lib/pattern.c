// SPDX-License-Identifier: GPL-2.0
#include "pattern.h"

static unsigned char pattern_byte(uint32_t seed, size_t pos)
{
	uint64_t x = (uint64_t)seed * 0x9e3779b97f4a7c15ULL + pos;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 32;
	return (unsigned char)x;
}

void pattern_fill(void *buf, size_t len, uint32_t seed, size_t offset)
{
	unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = pattern_byte(seed, offset + i);
}

size_t pattern_check(const void *buf, size_t len, uint32_t seed, size_t offset)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i] != pattern_byte(seed, offset + i))
			return i;
	return (size_t)-1;
}

int all_bytes_are(const void *buf, size_t len, unsigned char c)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i] != c)
			return 0;
	return 1;
}
