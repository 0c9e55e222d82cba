/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A fast data pattern for large regions (THPs): 64-bit words that name
 * their seed and position, so a page that lands at the wrong offset, a
 * stale page, a zeroed one or another sender's is told apart, at a cost
 * a 2 MiB region can afford under TCG (pattern.h works byte by byte).
 */
#ifndef VMSPLICE_TESTS_WORDS_H
#define VMSPLICE_TESTS_WORDS_H

#include <stddef.h>
#include <stdint.h>

/* Fill @len bytes (a multiple of 8) at @p for (@seed, byte @offset on). */
void words_fill(void *p, size_t len, uint64_t seed, size_t offset);

/* Byte offset of the first wrong word, or (size_t)-1 when all match. */
size_t words_check(const void *p, size_t len, uint64_t seed, size_t offset);

/* The seed a page filled by words_fill() carries in its first word. */
uint64_t words_seed_at(const void *page, size_t offset);

/*
 * Which seed and byte offset (below 128 MiB) the 8 bytes at @p were
 * filled for: a page names itself wherever it lands.
 */
void words_id(const void *p, uint64_t *seed, size_t *offset);

#endif
