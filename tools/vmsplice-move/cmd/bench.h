/* SPDX-License-Identifier: GPL-2.0 */
/* vmsplice-move bench: the matrix, one measurement, the outputs. */
#ifndef VMSPLICE_MOVE_BENCH_H
#define VMSPLICE_MOVE_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bench_kind { K_4K, K_THP, K_MTHP, NR_KINDS };
enum bench_dest { D_FRESH, D_POPULATED, NR_DESTS };
enum bench_method { M_MOVE, M_MOVE2P, M_VMSPLICE, M_READ, M_PVREADV, M_UFFD, NR_METHODS };

/* The methods that move pages: their rows must show every page moved. */
static inline bool bench_moves(enum bench_method m)
{
	return m == M_MOVE || m == M_MOVE2P;
}

extern const char *const bench_kind_name[NR_KINDS];
extern const char *const bench_dest_name[NR_DESTS];
extern const char *const bench_method_name[NR_METHODS];

struct bench_env {
	bool unmap;		/* kernel accepts SPLICE_F_UNMAP */
	size_t page, thp, mthp;	/* sizes; mthp 0: none usable */
	size_t pipe_size;	/* the two-process rows' pipe (F_SETPIPE_SZ) */
	char mthp_why[200];	/* why not */
};

/* One row of the matrix. */
struct bench_row {
	uint64_t size;
	enum bench_kind kind;
	enum bench_dest dest;
	enum bench_method method;
	bool skipped;		/* could not run here: see note */
	bool failed;		/* ran, but data or a call went wrong */
	double secs;		/* best of the repetitions */
	double worst;		/* worst of them: the spread flags noise */
	long long moved;	/* vmsplice_move_pages delta per repetition */
	long long copied;
	bool counters;		/* the kernel has the counters */
	bool move_ok;		/* move rows: the counters show every page moved */
	double sleeps;		/* two processes: context switches a MiB, or -1 */
	char note[200];
};

/* Run one row, best of @reps. */
void bench_run(const struct bench_env *env, int reps, struct bench_row *row);

/* Plot cost per MiB against size for each method: 0, or -1 with @why. */
int bench_plot(const char *png, const struct bench_row *rows, int nr,
	       char *why, size_t why_len);

#endif
