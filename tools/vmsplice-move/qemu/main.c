// SPDX-License-Identifier: GPL-2.0
/*
 * vmsplice-move-qemu: the qemu-handoff subcommand as a program of its own
 * (built with -DVSM_QEMU_STANDALONE).  Linked into the vmsplice-move
 * command, this file is empty: that command has its own main().
 */
#ifdef VSM_QEMU_STANDALONE
#include "handoff.h"

int main(int argc, char **argv)
{
	return vsm_cmd_qemu_handoff(argc, argv);
}
#endif
