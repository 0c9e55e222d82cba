// SPDX-License-Identifier: GPL-2.0
/*
 * libvmsplice-move's vsm_snapshot(): copy-on-write with MREMAP_DUP where
 * the kernel has it, a copy that says so elsewhere.  The data checks hold
 * on every kernel; what it did is checked against what the kernel can do.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/mem.h"
#include "lib/pagemap.h"
#include "lib/pattern.h"
#include "snapshot.h"

#define PS	4096UL

/*
 * A snapshot holds the original's bytes, later writes on either side stay
 * on that side, and on a kernel with MREMAP_DUP no byte was copied: the
 * snapshot maps the original's frames.
 */
TEST(private_anonymous)
{
	size_t len = 64 * PS;
	char *p = map_anon(len);
	struct vsm_snapshot s;
	int pm = pagemap_open();

	ASSERT_NE(NULL, p);
	pattern_fill(p, len, 51, 0);
	ASSERT_EQ(0, vsm_snapshot(p, len, 0, &s));
	ASSERT_EQ(len, s.len);
	ASSERT_EQ((size_t)-1, pattern_check(s.addr, len, 51, 0));
	if (vsm_snapshot_cow_supported()) {
		ASSERT_EQ(VSM_SNAP_COW, s.how);
		ASSERT_STREQ("", s.reason);
		if (pm >= 0 && pagemap_pfns_visible(pm))
			ASSERT_EQ(pagemap_pfn(pm, p + PS), pagemap_pfn(pm, (char *)s.addr + PS));
	} else {
		ASSERT_EQ(VSM_SNAP_COPY, s.how);
		ASSERT_STREQ("kernel without mremap(MREMAP_DUP)", s.reason);
	}
	memset(p, 0, PS);
	((char *)s.addr)[PS] ^= 1;
	ASSERT_EQ((size_t)-1, pattern_check(s.addr, PS, 51, 0));
	ASSERT_EQ((size_t)-1, pattern_check(p + PS, PS, 51, PS));
	ASSERT_EQ(0, vsm_snapshot_free(&s));
	ASSERT_EQ(NULL, s.addr);
	ASSERT_EQ(0, vsm_snapshot_free(&s));	/* twice: harmless */
}

/* Shared memory cannot be duplicated copy-on-write: it is copied, and says why. */
TEST(shared_is_copied)
{
	size_t len = 8 * PS;
	char *p = map_anon_shared(len);
	struct vsm_snapshot s;

	ASSERT_NE(NULL, p);
	memset(p, 0x3c, len);
	ASSERT_EQ(0, vsm_snapshot(p, len, 0, &s));
	ASSERT_EQ(VSM_SNAP_COPY, s.how);
	ASSERT_NE(0, s.reason[0]);
	ASSERT_TRUE(all_bytes_are(s.addr, len, 0x3c));
	p[0] = 0;
	ASSERT_EQ(0x3c, ((char *)s.addr)[0]);
	ASSERT_EQ(0, vsm_snapshot_free(&s));

	/* VSM_SNAP_NO_COPY: refuse rather than copy. */
	ASSERT_EQ(-1, vsm_snapshot(p, len, VSM_SNAP_NO_COPY, &s));
	ASSERT_EQ(EOPNOTSUPP, errno);
	ASSERT_EQ(NULL, s.addr);
}

/* Bad arguments and unmapped ranges: an error, nothing mapped. */
TEST(errors)
{
	char *p = map_anon(4 * PS);
	struct vsm_snapshot s;

	ASSERT_NE(NULL, p);
	ASSERT_EQ(-1, vsm_snapshot(p + 1, PS, 0, &s));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, vsm_snapshot(p, 0, 0, &s));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, vsm_snapshot(p, PS, 0x80, &s));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(0, munmap(p, 4 * PS));
	/* Unmapped: EFAULT on a kernel with MREMAP_DUP; without, the copy
	 * fallback must not touch it either. */
	if (vsm_snapshot_cow_supported()) {
		ASSERT_EQ(-1, vsm_snapshot(p, PS, 0, &s));
		ASSERT_EQ(EFAULT, errno);
	}
	ASSERT_EQ(-1, vsm_snapshot(p, PS, VSM_SNAP_NO_COPY, &s));
}

TEST_HARNESS_MAIN
