/* SPDX-License-Identifier: GPL-2.0 */
/* Memory for the tests: anonymous mappings, and copying out racing memory. */
#ifndef VMSPLICE_TESTS_MEM_H
#define VMSPLICE_TESTS_MEM_H

#include <stdbool.h>
#include <stddef.h>

/* A private anonymous read-write mapping, or NULL. */
void *map_anon(size_t len);

/* A shared anonymous read-write mapping (seen across fork()), or NULL. */
void *map_anon_shared(size_t len);

/*
 * Copy @len bytes from @from, which another thread may unmap meanwhile:
 * false (instead of a fault) when it did.
 */
bool copy_out(void *to, const void *from, size_t len);

#endif
