/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The fuzzer's MREMAP_DUP operation: duplicate memory an actor is about to
 * gift, receive into or otherwise change, and check afterwards that the
 * duplicate still holds exactly the bytes of the moment it was made (a
 * move that took a page shared with a duplicate, or wrote into one,
 * changes them).
 */
#ifndef VMSPLICE_TESTS_FUZZ_DUP_H
#define VMSPLICE_TESTS_FUZZ_DUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fuzz_dup {
	char *dup;		/* the duplicate, or NULL when none was made */
	char *copy;		/* its bytes when made */
	size_t len;
	long made, refused;	/* totals over the life of the struct */
	char why[160];		/* what fuzz_dup_end() found */
};

/*
 * fuzz_dup_begin - with probability 1/@one_in (from @rnd), duplicate the
 * pages holding [@addr, @addr + @len).  Only the calling thread may write
 * that memory until fuzz_dup_end().  A refusal (no MREMAP_DUP, a shared
 * mapping, a range over two VMAs) is counted and is no error.
 */
void fuzz_dup_begin(struct fuzz_dup *f, uint64_t rnd, unsigned int one_in,
		    void *addr, size_t len);

/*
 * fuzz_dup_end - check and unmap the duplicate: 0, or -1 with what
 * differs in f->why when it no longer holds the bytes it was made with.
 */
int fuzz_dup_end(struct fuzz_dup *f);

#endif
