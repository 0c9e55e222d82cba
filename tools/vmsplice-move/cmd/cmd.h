/* SPDX-License-Identifier: GPL-2.0 */
/* The vmsplice-move command: subcommands and what they share. */
#ifndef VMSPLICE_MOVE_CMD_H
#define VMSPLICE_MOVE_CMD_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmsplice_move.h"

/* Exit codes (documented in vmsplice-move(1)). */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,		/* a system call or I/O failed */
	EXIT_USAGE = 2,		/* bad command line */
	EXIT_HANDOFF = 3,	/* hand-off refused, aborted, timed out, peer gone */
	EXIT_VERIFY = 4,	/* data arrived but is not what was sent */
	EXIT_ENV = 5,		/* this system cannot do what was asked */
};

#define VSM_CMD_NAME	"vmsplice-move"

/* A subcommand: its entry point gets argv[0] = its own name. */
struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

int cmd_probe(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_recv(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* bench --dup: tools/vmsplice-move/bench/dup_bench.c */
int vsm_cmd_dup_bench(int argc, char **argv);
/* bench --kernel-cost: tools/vmsplice-move/bench/move_bench.c */
int vsm_cmd_move_bench(int argc, char **argv);
/* Whether timings can be trusted (not jiffies, 1 us or better); @why if not. */
bool bench_clock_ok(char *why, size_t len);

/* "4096", "64K", "16M", "1G" (binary units) -> bytes; -1 when malformed. */
int parse_size(const char *s, uint64_t *out);
/* Seconds, possibly fractional, -> milliseconds; -1 when malformed. */
int parse_seconds(const char *s, int *ms);
/* A non-negative integer; -1 when malformed. */
int parse_uint(const char *s, unsigned long long max, unsigned long long *out);

/* "256.0 MiB" style into @buf. */
const char *fmt_bytes(char *buf, size_t len, double bytes);

/* Error message "vmsplice-move SUB: ..." on stderr. */
void errorf(const char *sub, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "Try 'vmsplice-move SUB --help'." and EXIT_USAGE. */
int usage_error(const char *sub, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Print @o to stdout, pretty, and release it. */
void json_print(json_object *o);

/* Counter deltas as a JSON object. */
json_object *json_stats(const struct vsm_stats *s);

/* Monotonic seconds. */
double now_s(void);

/* A progress bar on stderr when it is a terminal. */
struct progress {
	bool on;
	const char *verb;	/* "sent" / "received" */
	double t0, last;
};
void progress_init(struct progress *p, const char *verb, bool quiet);
int progress_cb(void *arg, uint64_t done, uint64_t total);
void progress_end(struct progress *p);

/* The test pattern: deterministic from (seed, byte offset). */
void pattern_fill(void *buf, size_t len, uint64_t offset, uint64_t seed);
/* First differing offset within @buf, or -1 when all match. */
long long pattern_check(const void *buf, size_t len, uint64_t offset, uint64_t seed);

#endif
