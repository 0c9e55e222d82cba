// SPDX-License-Identifier: GPL-2.0
#include "record.h"

#include <string.h>

#include "pattern.h"

static uint32_t record_seed(uint16_t pipe, uint16_t writer, uint64_t seq)
{
	return (uint32_t)(seq * 2654435761U) ^ ((uint32_t)writer << 20) ^ pipe;
}

void record_fill(void *p, uint16_t pipe, uint16_t writer, uint64_t seq)
{
	struct record_hdr h = {
		.magic = RECORD_MAGIC, .pipe = pipe, .writer = writer, .seq = seq,
	};

	pattern_fill((char *)p + sizeof(h), RECORD_SIZE - sizeof(h),
		     record_seed(pipe, writer, seq), 0);
	memcpy(p, &h, sizeof(h));
}

bool record_check(const void *p, struct record_hdr *hdr)
{
	memcpy(hdr, p, sizeof(*hdr));
	if (hdr->magic != RECORD_MAGIC)
		return false;
	return pattern_check((const char *)p + sizeof(*hdr),
			     RECORD_SIZE - sizeof(*hdr),
			     record_seed(hdr->pipe, hdr->writer, hdr->seq), 0) ==
	       (size_t)-1;
}
