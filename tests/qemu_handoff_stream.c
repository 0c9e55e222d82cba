// SPDX-License-Identifier: GPL-2.0
/*
 * The hand-off's migration stream filter (tools/vmsplice-move/qemu/
 * stream.c) on a synthetic QEMU 7.2 stream: which records it drops
 * stop-first and in precopy, that what it lets through is a stream QEMU
 * can read (blocks re-named where a dropped record carried the name), and
 * that feeding the stream in any chunking gives the same result.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "../tools/vmsplice-move/qemu/stream.h"

struct buf {
	uint8_t p[1 << 16];
	size_t len;
};

static void b8(struct buf *b, uint8_t v)
{
	b->p[b->len++] = v;
}

static void b32(struct buf *b, uint32_t v)
{
	for (int i = 3; i >= 0; i--)
		b8(b, v >> (8 * i));
}

static void b64(struct buf *b, uint64_t v)
{
	for (int i = 7; i >= 0; i--)
		b8(b, v >> (8 * i));
}

static void bname(struct buf *b, const char *s)
{
	b8(b, strlen(s));
	memcpy(b->p + b->len, s, strlen(s));
	b->len += strlen(s);
}

#define ZERO	0x02
#define MEMSIZE	0x04
#define PAGE	0x08
#define EOS	0x10
#define CONT	0x20
#define RAM_ID	2
#define RAM_MIB	4

/* A record: @block NULL for "the same block" (CONTINUE). */
static void rec(struct buf *b, uint64_t off, int kind, const char *block, uint8_t fill)
{
	b64(b, off | kind | (block ? 0 : CONT));
	if (block)
		bname(b, block);
	if (kind == ZERO) {
		b8(b, 0);
	} else {
		memset(b->p + b->len, fill, 4096);
		b->len += 4096;
	}
}

static void section(struct buf *b, uint8_t type)
{
	b8(b, type);
	b32(b, RAM_ID);
	if (type == 0x01) {	/* START: name, instance, version */
		bname(b, "ram");
		b32(b, 0);
		b32(b, 4);
	}
}

static void end_section(struct buf *b)
{
	b64(b, EOS);
	b8(b, 0x7e);		/* footer */
	b32(b, RAM_ID);
}

/*
 * header, configuration, START (block list: pc.ram 4 MiB, rom 64 KiB),
 * PART: pc.ram page 0, pc.ram zero 1, rom page 0;
 * END: pc.ram zero 2, pc.ram page 3 (CONTINUE), rom zero 1;
 * device state, EOF.
 */
static void make_stream(struct buf *b)
{
	b->len = 0;
	b32(b, 0x5145564d);
	b32(b, 3);
	b8(b, 0x07);		/* configuration: the machine name */
	b32(b, 13);
	memcpy(b->p + b->len, "pc-i440fx-7.2", 13);
	b->len += 13;
	section(b, 0x01);
	b64(b, ((RAM_MIB << 20) + (64 << 10)) | MEMSIZE);
	bname(b, "pc.ram");
	b64(b, RAM_MIB << 20);
	bname(b, "rom");
	b64(b, 64 << 10);
	end_section(b);
	section(b, 0x02);
	rec(b, 0, PAGE, "pc.ram", 0xaa);
	rec(b, 4096, ZERO, NULL, 0);
	rec(b, 0, PAGE, "rom", 0xbb);
	end_section(b);
	section(b, 0x03);
	rec(b, 8192, ZERO, "pc.ram", 0);
	rec(b, 12288, PAGE, NULL, 0xcc);
	rec(b, 4096, ZERO, "rom", 0);
	end_section(b);
	b8(b, 0x04);		/* the device state: opaque to the filter */
	memcpy(b->p + b->len, "DEVICE-STATE", 12);
	b->len += 12;
	b8(b, 0x00);		/* EOF */
}

static const char *const moved[] = { "pc.ram", NULL };
static const char *const none[] = { NULL };

/* Filter @in fed in chunks of @chunk bytes (0: whole). */
static int run(struct buf *in, const char *const *mv, bool precopy, size_t chunk,
	       uint8_t **out, size_t *outlen, struct vsm_stream_stats *st)
{
	struct vsm_stream *s = vsm_stream_new(mv, precopy);
	char err[256];
	int ret = 0;

	if (!s)
		return -1;
	for (size_t off = 0; off < in->len && !ret;) {
		size_t n = chunk && chunk < in->len - off ? chunk : in->len - off;

		ret = vsm_stream_feed(s, in->p + off, n, err, sizeof(err));
		off += n;
	}
	if (!ret)
		ret = vsm_stream_end(s, out, outlen, err, sizeof(err));
	*st = *vsm_stream_stats(s);
	vsm_stream_free(s);
	return ret;
}

TEST(stop_first_drops_only_zero_records_of_moved_blocks)
{
	static struct buf in;
	struct vsm_stream_stats st;
	uint8_t *out;
	size_t len;

	make_stream(&in);
	ASSERT_EQ(0, run(&in, moved, false, 0, &out, &len, &st));
	EXPECT_EQ(2, st.zero_dropped);		/* pc.ram 1 and 2 */
	EXPECT_EQ(0, st.precopy_dropped);
	EXPECT_EQ(2, st.pages_moved_blocks);	/* pc.ram 0 and 3 */
	EXPECT_EQ(1, st.pages_other);
	EXPECT_EQ(1, st.zero_other);
	EXPECT_EQ(((RAM_MIB << 20) + (64 << 10)) / 4096, st.pass_pages);
	EXPECT_EQ(3, st.pass_records);		/* START and PART only */
	EXPECT_TRUE(st.in_end);
	EXPECT_TRUE(st.done);
	/* The device state is passed on as it came, at the end. */
	EXPECT_EQ(0, memcmp(out + len - 14, "\x04" "DEVICE-STATE" "\x00", 14));
	free(out);
}

TEST(precopy_drops_every_record_of_moved_blocks_before_the_completion)
{
	static struct buf in;
	struct vsm_stream_stats st, again;
	static struct buf o2;
	uint8_t *out, *out2;
	size_t len, len2;

	make_stream(&in);
	ASSERT_EQ(0, run(&in, moved, true, 0, &out, &len, &st));
	EXPECT_EQ(1, st.precopy_dropped);	/* the PART data page */
	EXPECT_EQ(2, st.zero_dropped);		/* PART zero, END zero */
	EXPECT_EQ(1, st.pages_moved_blocks);	/* the END data page */
	EXPECT_EQ(1, st.pages_other);
	EXPECT_EQ(1, st.zero_other);
	EXPECT_EQ(3, st.pass_records);
	/* None of the 0xaa page made it through. */
	EXPECT_EQ(NULL, memmem(out, len, (uint8_t[64]){ [0 ... 63] = 0xaa }, 64));
	EXPECT_NE(NULL, memmem(out, len, (uint8_t[64]){ [0 ... 63] = 0xcc }, 64));
	/*
	 * What comes out is a stream QEMU can read: parsed again, the END
	 * page (CONTINUE in the input, after a dropped record that named its
	 * block) still belongs to pc.ram, so its block was named again.
	 */
	ASSERT_LE(len, sizeof(o2.p));
	memcpy(o2.p, out, len);
	o2.len = len;
	ASSERT_EQ(0, run(&o2, moved, false, 0, &out2, &len2, &again));
	EXPECT_EQ(1, again.pages_moved_blocks);
	EXPECT_EQ(1, again.pages_other);
	EXPECT_EQ(0, again.zero_dropped);
	/* ... and with nothing moved, passing it through changes nothing. */
	free(out2);
	ASSERT_EQ(0, run(&o2, none, false, 0, &out2, &len2, &again));
	EXPECT_EQ(len, len2);
	EXPECT_EQ(0, memcmp(out, out2, len));
	free(out);
	free(out2);
}

TEST(any_chunking_gives_the_same_stream)
{
	static const size_t chunks[] = { 1, 2, 3, 7, 8, 9, 13, 4095, 4096, 4097, 8193 };
	static struct buf in;
	struct vsm_stream_stats st0, st;
	uint8_t *out0, *out;
	size_t len0, len;

	make_stream(&in);
	for (int pre = 0; pre < 2; pre++) {
		ASSERT_EQ(0, run(&in, moved, pre, 0, &out0, &len0, &st0));
		for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
			ASSERT_EQ(0, run(&in, moved, pre, chunks[i], &out, &len, &st))
				TH_LOG("chunk %zu", chunks[i]);
			EXPECT_EQ(len0, len) TH_LOG("chunk %zu, precopy %d", chunks[i], pre);
			EXPECT_EQ(0, memcmp(out0, out, len < len0 ? len : len0));
			EXPECT_EQ(st0.zero_dropped, st.zero_dropped);
			EXPECT_EQ(st0.precopy_dropped, st.precopy_dropped);
			EXPECT_EQ(st0.pass_records, st.pass_records);
			EXPECT_EQ(in.len, st.in_bytes);
			free(out);
		}
		free(out0);
	}
}

TEST(a_stream_cut_short_or_not_understood_is_an_error)
{
	static struct buf in;
	struct vsm_stream_stats st;
	uint8_t *out;
	size_t len;
	struct vsm_stream *s;
	char err[256] = "";

	make_stream(&in);
	/* Cut before the device state. */
	in.len -= 15;
	EXPECT_EQ(-1, run(&in, moved, true, 0, &out, &len, &st));
	/* A record kind it does not know (XBZRLE, 0x40). */
	make_stream(&in);
	s = vsm_stream_new(moved, false);
	ASSERT_NE(NULL, s);
	{
		static struct buf bad;

		memcpy(bad.p, in.p, 8);
		bad.len = 8;
		section(&bad, 0x01);
		b64(&bad, 0x40);
		EXPECT_EQ(-1, vsm_stream_feed(s, bad.p, bad.len, err, sizeof(err)));
		EXPECT_NE(NULL, strstr(err, "not understood")) TH_LOG("%s", err);
	}
	vsm_stream_free(s);
	/* Not a migration stream at all. */
	s = vsm_stream_new(moved, false);
	ASSERT_NE(NULL, s);
	EXPECT_EQ(-1, vsm_stream_feed(s, (const uint8_t *)"GET / HTTP/1.0\r\n", 16, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "not a QEMU migration stream")) TH_LOG("%s", err);
	vsm_stream_free(s);
}

TEST_HARNESS_MAIN
