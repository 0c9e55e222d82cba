/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Filtering a QEMU 7.2 migration stream on its way to the destination.
 *
 * The destination must not see RAM_SAVE_FLAG_ZERO records for the blocks
 * whose pages travel through pipes: QEMU's loader clears a non-zero page
 * when told it is zero (ram_handle_compressed()), which would wipe the
 * moved pages.  Everything else passes unchanged: page records (data the
 * source still had, applied after the moved pages and so newer), other
 * blocks, the device state.  Dropping records can break the "same block as
 * before" shortcut (RAM_SAVE_FLAG_CONTINUE), so block names are re-sent
 * where the receiver's idea of the current block would differ.
 *
 * Precopy (the source ran while it streamed its RAM, and gave its pages
 * only when it paused before the switch-over): every record of a moved
 * block in the setup and iteration sections (QEMU_VM_SECTION_START and
 * _PART) predates the gift, so all of them go, data pages too; the moved
 * page is newer or the same.  Only the completion section
 * (QEMU_VM_SECTION_END), written after the gift, is filtered as above.
 *
 * The filter is incremental: the stream is fed as it arrives, so a
 * precopy stream as large as guest RAM is never held.  The parser knows
 * the format of the stream header, the configuration section and the RAM
 * sections; the device state, which starts with the first
 * QEMU_VM_SECTION_FULL, is passed through without being parsed.  Anything
 * else is "not understood" and an error.
 */
#ifndef VSM_QEMU_STREAM_H
#define VSM_QEMU_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vsm_stream_stats {
	uint64_t in_bytes, out_bytes;
	uint64_t zero_dropped;		/* zero-page records of moved blocks */
	uint64_t precopy_dropped;	/* data pages of moved blocks, precopy */
	uint64_t pages_moved_blocks;	/* data pages of moved blocks kept */
	uint64_t pages_other;		/* data pages of other blocks */
	uint64_t zero_other;
	uint64_t device_bytes;		/* the device-state part */
	/* The first pass: pages in the block list, records seen before END. */
	uint64_t pass_pages, pass_records;
	bool in_end;			/* the completion section has begun */
	bool done;			/* the device state has begun */
};

struct vsm_stream;

/*
 * vsm_stream_new - a filter for the blocks named in @moved (NULL-terminated,
 * copied).  @precopy: the START and PART sections were written before the
 * gift (see above).  NULL when out of memory.
 */
struct vsm_stream *vsm_stream_new(const char *const *moved, bool precopy);

/* Feed the next @len bytes.  0, or -1 with @err saying what was not understood. */
int vsm_stream_feed(struct vsm_stream *s, const uint8_t *buf, size_t len,
		    char *err, size_t errlen);

/*
 * vsm_stream_end - the input ended: 0 if it reached the device state, else
 * -1 with @err.  *@out (free() it) and *@outlen get the filtered stream.
 */
int vsm_stream_end(struct vsm_stream *s, uint8_t **out, size_t *outlen,
		   char *err, size_t errlen);

const struct vsm_stream_stats *vsm_stream_stats(const struct vsm_stream *s);

void vsm_stream_free(struct vsm_stream *s);

/* The whole stream @in at once (tests, and the stop-first flow). */
int vsm_stream_filter(const uint8_t *in, size_t inlen,
		      const char *const *moved, uint8_t **out, size_t *outlen,
		      struct vsm_stream_stats *st, char *err, size_t errlen);

#endif
