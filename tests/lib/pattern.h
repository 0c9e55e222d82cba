/* SPDX-License-Identifier: GPL-2.0 */
/* Data patterns that identify every byte by position and sender. */
#ifndef VMSPLICE_TESTS_PATTERN_H
#define VMSPLICE_TESTS_PATTERN_H

#include <stddef.h>
#include <stdint.h>

/* Fill @len bytes at @buf with a pattern unique to (@seed, offset). */
void pattern_fill(void *buf, size_t len, uint32_t seed, size_t offset);

/*
 * Check that @buf holds what pattern_fill(@seed, @offset) wrote; returns the
 * index of the first wrong byte, or (size_t)-1 when all @len bytes match.
 */
size_t pattern_check(const void *buf, size_t len, uint32_t seed, size_t offset);

/* Whether all @len bytes at @buf are @c. */
int all_bytes_are(const void *buf, size_t len, unsigned char c);

#endif
