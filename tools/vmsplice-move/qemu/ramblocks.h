/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Finding QEMU's guest RAM blocks in a QEMU process.
 *
 * QMP gives each block's name and sizes ("info ramblock") and where its
 * bytes appear in guest-physical memory ("info mtree -f"); /proc/PID/maps
 * gives candidate host mappings.  A candidate is only accepted when memory
 * read from the process (process_vm_readv) equals guest-physical memory
 * read through QMP (pmemsave) at several non-zero pages -- or, in a QEMU
 * whose guest memory is still empty (a destination waiting for incoming
 * migration), when a marker written into the candidate shows up in
 * guest-physical memory.  Nothing is guessed: a block that cannot be
 * confirmed has host == 0.
 */
#ifndef VSM_QEMU_RAMBLOCKS_H
#define VSM_QEMU_RAMBLOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vsm_qmp;

/* A piece of a block visible at a guest-physical address. */
struct vsm_gpa_range {
	uint64_t gpa, offset, len;
};

#define VSM_MAX_GPA_RANGES 16

struct vsm_ramblock {
	char name[256];
	uint64_t ram_offset;		/* QEMU's ram_addr_t offset */
	uint64_t used, max;		/* used_length, max_length */
	unsigned int page_size;
	int nranges;
	struct vsm_gpa_range ranges[VSM_MAX_GPA_RANGES];
	uint64_t host;			/* confirmed host address, or 0 */
	int samples;			/* pages the confirmation compared */
};

struct vsm_ramlist {
	int n;
	struct vsm_ramblock *b;
};

/* Parse "info ramblock" and "info mtree -f"; 0 or -1 with @err. */
int vsm_ram_query(struct vsm_qmp *q, struct vsm_ramlist *out, char *err,
		  size_t errlen);

void vsm_ram_free(struct vsm_ramlist *l);

/* The block called @name, or NULL. */
struct vsm_ramblock *vsm_ram_find(struct vsm_ramlist *l, const char *name);

/*
 * vsm_ram_locate_by_content - find @b in process @pid by comparing its
 * memory with guest-physical memory read through @q.  Needs at least
 * @min_samples distinct non-zero pages; @tmpdir takes pmemsave's file.
 * Returns 1 when confirmed (b->host set), 0 when the block cannot be
 * confirmed this way (not visible, all zero), -1 on a contradiction or
 * error (@err).
 */
int vsm_ram_locate_by_content(struct vsm_qmp *q, pid_t pid,
			      struct vsm_ramblock *b, int min_samples,
			      const char *tmpdir, char *err, size_t errlen);

/*
 * vsm_ram_locate_by_marker - find @b in process @pid by writing a unique
 * marker into each candidate and reading guest-physical memory.  The bytes
 * written over are put back.  Only for a QEMU whose guest does not run.
 * Same returns as above.
 */
int vsm_ram_locate_by_marker(struct vsm_qmp *q, pid_t pid,
			     struct vsm_ramblock *b, const char *tmpdir,
			     char *err, size_t errlen);

/*
 * vsm_ram_verify - re-check a located block at @n pages (a stopped VM must
 * match exactly).  0 when all match, -1 otherwise (@err).
 */
int vsm_ram_verify(struct vsm_qmp *q, pid_t pid, const struct vsm_ramblock *b,
		   int n, const char *tmpdir, char *err, size_t errlen);

#endif
