/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * procmaps.h - /proc/PID/maps as a table.
 *
 * The text comes from the kernel but names files chosen by the (untrusted)
 * target; the parser bounds every field and rejects malformed lines.
 */
#ifndef PYSAMP_PROCMAPS_H
#define PYSAMP_PROCMAPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct procmap {
	uint64_t start;
	uint64_t end;
	uint64_t offset;
	uint64_t inode;
	uint32_t dev_major;
	uint32_t dev_minor;
	char perms[5]; /* "r-xp" */
	char *path;    /* owned; "" for anonymous mappings */
};

struct procmaps {
	struct procmap *v;
	size_t n;
	size_t cap;
};

/* Empty table; release with procmaps_release(). */
void procmaps_init(struct procmaps *m);
/* Free the entries (accepts a zeroed or half-filled table). */
void procmaps_release(struct procmaps *m);

/*
 * Parse maps text (len bytes, need not be NUL-terminated) and append the
 * entries to m. Returns 0, -EINVAL on a malformed line (m keeps the lines
 * before it), -ENOMEM.
 */
int procmaps_parse(struct procmaps *m, const char *text, size_t len)
	__attribute__((warn_unused_result));

/* Read and parse /proc/PID/maps. Returns 0 or -errno (-ESRCH, -EACCES...). */
int procmaps_read(struct procmaps *m, pid_t pid) __attribute__((warn_unused_result));

#endif /* PYSAMP_PROCMAPS_H */
