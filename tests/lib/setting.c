// SPDX-License-Identifier: GPL-2.0
#include "setting.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmstat.h"

static int read_setting(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	char *sel;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	sel = strchr(buf, '[');
	if (sel) {
		size_t k = strcspn(sel + 1, "]");

		memmove(buf, sel + 1, k);
		buf[k] = 0;
	}
	return 0;
}

int setting_set(struct setting *s, const char *path, const char *value,
		char *why, size_t why_len)
{
	if (!s->saved) {
		if (read_setting(path, s->old, sizeof(s->old))) {
			snprintf(why, why_len, "cannot read %s: %s", path,
				 strerror(errno));
			return -1;
		}
		snprintf(s->path, sizeof(s->path), "%s", path);
		s->saved = true;
	}
	if (proc_write(path, value)) {
		snprintf(why, why_len, "cannot write %s to %s: %s", value, path,
			 strerror(errno));
		return -1;
	}
	return 0;
}

void setting_restore(struct setting *s)
{
	if (s->saved)
		proc_write(s->path, s->old);
	s->saved = false;
}
