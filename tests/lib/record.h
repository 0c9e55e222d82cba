/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 4 KiB records that say who sent them: a header (pipe, writer, sequence)
 * and a payload only that record has, so a reader can tell a record that
 * arrived intact from a wrong, stale, zeroed or foreign page.
 */
#ifndef VMSPLICE_TESTS_RECORD_H
#define VMSPLICE_TESTS_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#define RECORD_SIZE	4096
#define RECORD_MAGIC	0x7673706dU	/* "vspm" */

struct record_hdr {
	uint32_t magic;
	uint16_t pipe;
	uint16_t writer;
	uint64_t seq;
};

/* Write record (@pipe, @writer, @seq) into the RECORD_SIZE bytes at @p. */
void record_fill(void *p, uint16_t pipe, uint16_t writer, uint64_t seq);

/* Whether @p holds an intact record; its header goes to @hdr. */
bool record_check(const void *p, struct record_hdr *hdr);

#endif
