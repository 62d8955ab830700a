/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * filter.h - which processes to profile: the --include / --exclude rules, matched against a
 * struct procinfo.
 *
 * Specs are "KIND:VALUE":
 *   comm:GLOB       fnmatch(3) on procinfo.comm
 *   app:GLOB        fnmatch(3) on procinfo.app
 *   cgroup:GLOB     fnmatch(3) on procinfo.cgroup; a GLOB without a leading '/' also matches
 *                   the part after any '/' ("cgroup:docker-*.scope" matches
 *                   "/system.slice/docker-abc.scope"); an unknown cgroup ("") never matches
 *   pid:N[,N...]    procinfo.pid (the host PID), a list as parse_pid_list reads it
 *   container:HEX   procinfo.container starts with HEX (4 to 64 hex digits, case-insensitive)
 * Globs use no fnmatch flags ('*' also matches '/'); a process matches a rule or it does not,
 * there is no negation inside a rule. A filter is read-only after it is built and may then be
 * shared between threads.
 */
#ifndef PYSAMP_FILTER_H
#define PYSAMP_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "procinfo.h"

#define FILTER_GLOB_MAX 4096 /* bytes of a GLOB */

struct filter;

/* An empty filter (it allows everything). NULL with errno on failure. Free with filter__free. */
struct filter *filter__new(void);
/* Free; accepts NULL. */
void filter__free(struct filter *f);

/*
 * Add an --include (include = true) or --exclude rule from spec (see above). Returns 0;
 * -EINVAL for a bad spec (NULL, no known "KIND:" prefix, an empty or too long GLOB, a bad pid
 * list, a container prefix that is not 4 to 64 hex digits); -ENOMEM. On failure f is unchanged
 * and err (errlen bytes; may be NULL when errlen is 0) holds a one-line message naming the
 * option, the spec and the problem, without a final period.
 */
int filter__add(struct filter *f, bool include, const char *spec, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * true when the process pi describes should be profiled: it matches no exclude rule and, when
 * there is at least one include rule, some include rule. A NULL f allows everything.
 */
bool filter__allows(const struct filter *f, const struct procinfo *pi);

/* true when no rule was added (also for NULL). */
bool filter__empty(const struct filter *f);

#endif /* PYSAMP_FILTER_H */
