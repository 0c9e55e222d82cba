/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 4 KiB records made of 64 self-naming lines, for the fuzzer: every
 * 64-byte line starts with an id (magic, pipe, writer, sequence number,
 * line number) followed by words only that line has.  A page that a racer
 * zeroed in part (MADV_DONTNEED, or a copy that faulted in a fresh page
 * half-way after a munmap()) still says which record it was from any line
 * that survived, so every byte of it can be checked: the record's own, or
 * zero where a racer may have destroyed data.  Garbage is never excused.
 */
#ifndef VMSPLICE_TESTS_LREC_H
#define VMSPLICE_TESTS_LREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LREC_SIZE	4096
#define LREC_LINE	64

struct lrec_id {
	unsigned int pipe;	/* 0..15 */
	unsigned int writer;	/* 0..255 */
	uint64_t seq;		/* below 2^30 */
};

/* Write record @id into the LREC_SIZE bytes at @p. */
void lrec_fill(void *p, const struct lrec_id *id);

/* Whether @p holds record exactly; its id goes to @id. */
bool lrec_check(const void *p, struct lrec_id *id);

enum lrec_verdict {
	LREC_EXACT,		/* the record, every byte */
	LREC_DAMAGED,		/* a known record with zeros where excused */
	LREC_ZERO,		/* all zeros where excused: nothing to name */
	LREC_BAD,		/* anything else */
};

/*
 * Judge @p when a racer may have zeroed it (@excused), or not: with
 * @excused false only LREC_EXACT or LREC_BAD.  A line whose id was
 * destroyed is checked against the id of the lines that survived; lines
 * that name different records are LREC_BAD.  @id: the record named, if
 * any.  @msg: why LREC_BAD.
 */
enum lrec_verdict lrec_judge(const void *p, bool excused, struct lrec_id *id,
			     char *msg, size_t msg_len);

#endif
