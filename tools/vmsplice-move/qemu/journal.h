/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The hand-off journal: what a later `qemu-handoff --recover` needs to put
 * a source VM back together after this tool died.  A header line (JSON:
 * processes, blocks) and then one short line per change of the ledger,
 * appended before every step that changes where guest pages are and after
 * it, so writing it costs the same however many pipes there are.  A last
 * line cut short by a crash is ignored.
 */
#ifndef VSM_QEMU_JOURNAL_H
#define VSM_QEMU_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "xfer.h"

/* Phases, in order. */
enum vsm_phase {
	VSM_PH_PREFLIGHT,	/* nothing touched */
	VSM_PH_PRECOPY,		/* source runs, migrating into this tool */
	VSM_PH_STOPPED,		/* source stopped, RAM in place */
	VSM_PH_GIVE,		/* source giving RAM into pipes */
	VSM_PH_MIGRATE,		/* RAM in pipes; device state migrating */
	VSM_PH_TAKE,		/* destination taking RAM */
	VSM_PH_TAKEN,		/* destination holds RAM (backed up) */
	VSM_PH_LOADING,		/* destination loads the device state */
	VSM_PH_COMMITTED,	/* destination runs: no way back */
	VSM_PH_DONE,		/* source gone */
	VSM_PH_RETURN,		/* pages flow back into the source */
	VSM_PH_RETURNED,	/* all back; its settings, resume pending */
	VSM_PH_ROLLED_BACK,	/* source has its RAM again */
};

const char *vsm_phase_name(enum vsm_phase p);

struct vsm_journal {
	char path[512];
	enum vsm_phase phase;
	pid_t src_pid, dst_pid;
	unsigned long long src_start, dst_start;	/* /proc starttime */
	char src_qmp[256], dst_qmp[256];
	bool src_was_running;
	long long old_bandwidth;	/* source max-bandwidth before, or -1 */
	long long old_downtime;		/* its downtime-limit before, or -1 */
	int old_pause;			/* its pause-before-switchover, or -1 */
	/* What has been written (to append only what changed). */
	int fd;
	bool started;
	enum vsm_phase w_phase;
	long long w_bandwidth, w_downtime;
	int w_pause;
	long w_pidfd;
	bool w_backed_up;
	int w_npipes, w_cap;
	struct vsm_jpipe {
		int nseg;
		uint64_t last_len, given, taken, a_start, back, next_off;
		int next_block;
	} *w;
};

/* Append what changed in @j and the ledger of @x; 0 or -1. */
int vsm_journal_write(struct vsm_journal *j, const struct vsm_xfer *x);

/* Close the journal file (not removing it). */
void vsm_journal_close(struct vsm_journal *j);

/*
 * Read a journal: @j and the ledger into @x (blocks, pipes with their fd
 * numbers in the source; this tool's fds are -1).  0 or -1 with @err.
 */
int vsm_journal_read(const char *path, struct vsm_journal *j,
		     struct vsm_xfer *x, char *err, size_t errlen);

#endif
