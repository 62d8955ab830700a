/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * log.h - leveled logging to stderr, and the libbpf print callback.
 *
 * The level is process-wide (the one global besides the signal flag that
 * STYLE.md allows, because libbpf's print callback takes no context); set it
 * once with log_set_level() before any thread starts.
 */
#ifndef PYSAMP_LOG_H
#define PYSAMP_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_ERROR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,
	LOG_DEBUG = 3,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* The program name that prefixes messages (default "pysamp-bpf"); a static string. */
void log_set_prog(const char *name);

/* Print "PROG: <msg>\n" to stderr when level <= the current level. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* libbpf_set_print() callback: libbpf's warnings always, its debug output at LOG_DEBUG. */
enum libbpf_print_level;
int log_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif /* PYSAMP_LOG_H */
