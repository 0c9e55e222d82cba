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
 * The parser knows the format of the stream header, the configuration
 * section and the RAM sections; the device state, which starts with the
 * first QEMU_VM_SECTION_FULL, is passed through without being parsed.
 * Anything else is "not understood" and an error.
 */
#ifndef VSM_QEMU_STREAM_H
#define VSM_QEMU_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vsm_stream_stats {
	uint64_t in_bytes, out_bytes;
	uint64_t zero_dropped;		/* zero-page records of moved blocks */
	uint64_t pages_moved_blocks;	/* data pages of moved blocks kept */
	uint64_t pages_other;		/* data pages of other blocks */
	uint64_t zero_other;
	uint64_t device_bytes;		/* the device-state part */
};

/*
 * vsm_stream_filter - filter the complete stream @in (@inlen bytes) into
 * a new buffer *@out (*@outlen bytes; free() it).  @moved lists the names
 * of the blocks whose zero records go (NULL-terminated).  Returns 0, or -1
 * with @err saying what was not understood.
 */
int vsm_stream_filter(const uint8_t *in, size_t inlen,
		      const char *const *moved, uint8_t **out, size_t *outlen,
		      struct vsm_stream_stats *st, char *err, size_t errlen);

#endif
