/* SPDX-License-Identifier: BSD-2-Clause */
/* log.c - leveled logging to stderr. */
#include <stdio.h>
#include <bpf/libbpf.h>

#include "log.h"

static enum log_level cur_level = LOG_WARN;
static const char *prog = "pysamp-bpf";

void log_set_prog(const char *name)
{
	prog = name;
}

void log_set_level(enum log_level level)
{
	cur_level = level;
}

enum log_level log_get_level(void)
{
	return cur_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > cur_level)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

__attribute__((format(printf, 2, 0))) int log_libbpf_print(enum libbpf_print_level level,
							   const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && cur_level < LOG_DEBUG)
		return 0;
	if (level == LIBBPF_INFO && cur_level < LOG_INFO)
		return 0;
	return vfprintf(stderr, fmt, ap);
}
