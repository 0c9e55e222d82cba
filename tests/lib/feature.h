/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Does the running kernel move pages with vmsplice(), and must it?
 *
 * The writer's opt-in, SPLICE_F_UNMAP, is a flag bit that kernels without
 * the change refuse with EINVAL: probing it tells the two apart without
 * reading global counters.  Inside the test VM (VMSPLICE_REQUIRE_MOVE=1,
 * set by tests/run-suite vm) a kernel without it is an error, not a skip.
 */
#ifndef VMSPLICE_TESTS_FEATURE_H
#define VMSPLICE_TESTS_FEATURE_H

#include <fcntl.h>
#include <stdbool.h>

#ifndef SPLICE_F_UNMAP
#define SPLICE_F_UNMAP	0x10	/* include/linux/splice.h of the change */
#endif

/* The writer's flags for giving pages away. */
#define GIVE		(SPLICE_F_GIFT | SPLICE_F_UNMAP)

#define NO_MOVE_MSG	"kernel without vmsplice page moving (vmsplice() refuses SPLICE_F_UNMAP)"

/* Whether vmsplice() accepts SPLICE_F_GIFT | SPLICE_F_UNMAP (cached). */
bool kernel_unmaps(void);

/* Whether this run must have the feature (VMSPLICE_REQUIRE_MOVE=1). */
bool move_required(void);

/* GIVE where the kernel has it, else SPLICE_F_GIFT: the old copy path. */
unsigned int give_flags(void);

/*
 * In a kselftest TEST: SKIP with @msg where the kernel lacks a feature
 * (@have false), FAIL where the run requires the change.  Use before any
 * check, so that a failed check is never turned into a skip.
 */
#define REQUIRE_FEATURE(have, msg)					\
	do {								\
		if (!(have)) {						\
			if (move_required()) {				\
				TH_LOG("this run requires the feature: %s", msg); \
				ASSERT_TRUE(have);			\
			}						\
			SKIP(return, msg);				\
		}							\
	} while (0)

/* Page moves: vmsplice() accepts SPLICE_F_UNMAP. */
#define REQUIRE_MOVE()	REQUIRE_FEATURE(kernel_unmaps(), NO_MOVE_MSG)

#endif
