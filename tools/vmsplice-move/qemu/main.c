// SPDX-License-Identifier: GPL-2.0
/*
 * vmsplice-move-qemu: the qemu-handoff subcommand as a program of its own,
 * until it is wired into the vmsplice-move command.
 */
#include "handoff.h"

int main(int argc, char **argv)
{
	return vsm_cmd_qemu_handoff(argc, argv);
}
