// SPDX-License-Identifier: GPL-2.0
/*
 * vmsplice-move: probe, send, recv, bench.  One table of subcommands; a new
 * one is a function int NAME(int argc, char **argv) and one line below.
 */
#define _GNU_SOURCE
#include "cmd.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

/*
 * Subcommands built from other directories (tools/vmsplice-move/qemu/):
 * weak, so the command links and says so when they are not built in.
 */
int vsm_cmd_qemu_handoff(int argc, char **argv) __attribute__((weak));

static const struct subcommand subcommands[] = {
	{ "probe", cmd_probe, "what this kernel can move (4 KiB, THP, mTHP)" },
	{ "send", cmd_send, "hand a region to a receiver over a UNIX socket" },
	{ "recv", cmd_recv, "receive a region from a sender over a UNIX socket" },
	{ "bench", cmd_bench, "benchmark moving against copying" },
	{ "qemu-handoff", vsm_cmd_qemu_handoff, "hand a QEMU guest's RAM to a new QEMU" },
};

#define NR_SUBCOMMANDS	(sizeof(subcommands) / sizeof(subcommands[0]))

static void usage(FILE *f)
{
	fprintf(f, "Usage: %s COMMAND [OPTIONS] [ARGS]\n"
		"       %s COMMAND --help\n\n"
		"Move memory between processes with vmsplice(2) (SPLICE_F_GIFT|SPLICE_F_UNMAP\n"
		"-> SPLICE_F_MOVE); on kernels without that, copy, and say so.\n\nCommands:\n",
		VSM_CMD_NAME, VSM_CMD_NAME);
	for (size_t i = 0; i < NR_SUBCOMMANDS; i++)
		if (subcommands[i].run)
			fprintf(f, "  %-13s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(f, "\nOptions:\n  -h, --help     this help\n  -V, --version  version\n\n"
		"Exit status: 0 ok, 1 failure, 2 usage, 3 hand-off failed, 4 data wrong,\n"
		"5 not possible on this system.  See vmsplice-move(1).\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	int c;

	/* Options before the command only: "+" stops at the first non-option. */
	while ((c = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("%s %s (libvmsplice-move %s, protocol %d)\n", VSM_CMD_NAME,
			       VSM_VERSION_STRING, VSM_VERSION_STRING, VSM_PROTO_VERSION);
			return EXIT_OK;
		default:
			return usage_error(NULL, "unknown option");
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < NR_SUBCOMMANDS; i++) {
		if (strcmp(argv[optind], subcommands[i].name))
			continue;
		if (!subcommands[i].run) {
			errorf(NULL, "'%s' is not built into this binary", argv[optind]);
			return EXIT_ENV;
		}
		/* The subcommand parses its own options from a fresh start. */
		{
			int first = optind;

			optind = 0;	/* glibc: reinitialise getopt completely */
			return subcommands[i].run(argc - first, argv + first);
		}
	}
	return usage_error(NULL, "unknown command '%s'", argv[optind]);
}
