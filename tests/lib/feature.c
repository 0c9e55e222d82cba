// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include "feature.h"

#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

bool kernel_unmaps(void)
{
	static int known = -1;
	int p[2];

	if (known >= 0)
		return known;
	if (pipe(p))
		return false;
	/* Zero segments: nothing is given, only the flags are checked. */
	known = vmsplice(p[1], NULL, 0, GIVE) == 0;
	close(p[0]);
	close(p[1]);
	return known;
}

bool move_required(void)
{
	const char *v = getenv("VMSPLICE_REQUIRE_MOVE");

	return v && strcmp(v, "0");
}

unsigned int give_flags(void)
{
	return kernel_unmaps() ? GIVE : SPLICE_F_GIFT;
}
