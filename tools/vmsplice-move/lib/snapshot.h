/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libvmsplice-move snapshots: a copy-on-write duplicate of a range of the
 * caller's own memory with mremap(MREMAP_DUP), or, on kernels without it,
 * a plain copy that says so.
 */
#ifndef VMSPLICE_MOVE_SNAPSHOT_H
#define VMSPLICE_MOVE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>

#ifndef MREMAP_DUP
#define MREMAP_DUP	8
#endif

/* vsm_snapshot() flags */
#define VSM_SNAP_NO_COPY	0x1	/* fail (EOPNOTSUPP) rather than copy */
#define VSM_SNAP_VERBOSE	0x2	/* say on stderr when it copies */

enum vsm_snap_how {
	VSM_SNAP_COW,		/* mremap(MREMAP_DUP): pages shared copy-on-write */
	VSM_SNAP_COPY,		/* a private copy made with memcpy() */
};

struct vsm_snapshot {
	void *addr;		/* the snapshot: private, read-write */
	size_t len;		/* its length (page aligned) */
	enum vsm_snap_how how;
	/* Why it is a copy: "" for VSM_SNAP_COW. */
	char reason[96];
};

/*
 * vsm_snapshot - a point-in-time copy of [@addr, @addr + @len).
 *
 * @addr must be page aligned; @len is rounded up to whole pages.  With
 * MREMAP_DUP the snapshot shares every page with the original until one
 * side writes it, and holds the contents as of the call even while other
 * threads write the original.  When the kernel lacks MREMAP_DUP, or
 * refuses this kind of mapping (shared, hugetlb, ...), the range is copied
 * instead (unless VSM_SNAP_NO_COPY): that takes time and memory
 * proportional to @len and is not atomic against concurrent writers;
 * snap->how and snap->reason say what was done.
 *
 * Returns 0, or -1 with errno set: EINVAL (bad arguments), EFAULT (the
 * range is not one mapping), ENOMEM, EOPNOTSUPP (VSM_SNAP_NO_COPY and no
 * copy-on-write possible).
 */
int vsm_snapshot(void *addr, size_t len, unsigned int flags,
		 struct vsm_snapshot *snap);

/* vsm_snapshot_free - unmap a snapshot.  Returns 0 or -1 with errno set. */
int vsm_snapshot_free(struct vsm_snapshot *snap);

/* Whether the running kernel has mremap(MREMAP_DUP). */
bool vsm_snapshot_cow_supported(void);

#endif
