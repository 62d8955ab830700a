/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * framelabel.h - the parts of a frame label as the agent writes it: "qualname (path:LINE)".
 *
 * Labels are untrusted bytes (ingested from anywhere, or read from profiled processes); the
 * split never reads past len and never allocates.
 */
#ifndef PYSAMP_FRAMELABEL_H
#define PYSAMP_FRAMELABEL_H

#include <stdbool.h>
#include <stddef.h>

struct frame_parts {
	const char *name; /* qualname: the bytes before the first " (" */
	size_t name_len;
	const char *file; /* the path, between " (" and the last ':' */
	size_t file_len;
	long line;	  /* the number before ')' (negative for an unknown line, e.g. -1) */
};

/*
 * Split s[0..len) of the form "NAME (FILE:LINE)", LINE 1-9 digits without a leading zero, maybe
 * after a '-' (so "NAME (FILE:LINE)" rebuilt from the parts is s again). NAME ends at the first
 * " (" (Python names hold no spaces), so FILE may hold ':', " (" and spaces; neither may be
 * empty. true and *p filled
 * (pointing into s); false for any other label (a process, a thread, "[pruned]"), p untouched.
 */
bool frame_label_split(const char *s, size_t len, struct frame_parts *p);

#endif /* PYSAMP_FRAMELABEL_H */
