/* SPDX-License-Identifier: GPL-2.0 */
/* Internal: pipe capacity helpers. */
#ifndef VMSPLICE_MOVE_PIPESIZE_H
#define VMSPLICE_MOVE_PIPESIZE_H

#include <stddef.h>

/* /proc/sys/fs/pipe-max-size, or -1. */
long vsmi_pipe_max_size(void);

/* F_SETPIPE_SZ to @want (0: pipe-max-size) or as close below as allowed. */
size_t vsmi_pipe_grow(int fd, size_t want);

#endif
