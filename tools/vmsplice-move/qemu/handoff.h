/* SPDX-License-Identifier: GPL-2.0 */
/*
 * `vmsplice-move qemu-handoff`: replace the QEMU process under a running
 * VM without copying its RAM.  See tools/vmsplice-move/qemu/README.md.
 */
#ifndef VSM_QEMU_HANDOFF_H
#define VSM_QEMU_HANDOFF_H

/* Entry point (getopt_long options, --help). Returns the exit status. */
int vsm_cmd_qemu_handoff(int argc, char **argv);

/*
 * Exit statuses: the vmsplice-move command's (cmd.h, vmsplice-move(1)),
 * with what each means for a hand-off.
 */
enum {
	VSM_EXIT_OK = 0,
	VSM_EXIT_ERROR = 1,	/* failed before anything was touched */
	VSM_EXIT_USAGE = 2,
	VSM_EXIT_ROLLED_BACK = 3, /* failed midway; source resumed with its RAM */
	VSM_EXIT_LOST = 4,	/* failed, the source left stopped: guest RAM
				 * not returned, or back but not resumed */
	VSM_EXIT_ENV = 5,	/* refused: this system cannot (ptrace policy,
				 * QEMU version, fd or memory limits) */
};

#endif
