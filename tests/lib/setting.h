/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A /proc or /sys setting a test changes and puts back: ksmd's, the THP
 * and mTHP sizes', khugepaged's.  Tests change such global settings only
 * on the patched kernel, that is in the test VM (feature.h): a run on the
 * host uses whatever the host has configured.
 */
#ifndef VMSPLICE_TESTS_SETTING_H
#define VMSPLICE_TESTS_SETTING_H

#include <stdbool.h>
#include <stddef.h>

struct setting {
	char path[160];
	char old[64];
	bool saved;
};

/*
 * Write @value to @path, saving the old value in @s the first time.  For
 * "a [b] c" files (THP modes) the bracketed choice is what is saved.  0,
 * or -1 with the reason in @why.
 */
int setting_set(struct setting *s, const char *path, const char *value,
		char *why, size_t why_len);

/* Put back what setting_set() changed (idempotent). */
void setting_restore(struct setting *s);

#endif
