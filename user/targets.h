/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * targets.h - the set of profiled processes, by pid: each one's interpreter
 * description, symbolizer and root frame label.
 *
 * Owns its targets (and through them their pyproc and symbolizer); labels
 * are interned in a borrowed struct stacks. Not thread-safe.
 */
#ifndef PYSAMP_TARGETS_H
#define PYSAMP_TARGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyproc.h"
#include "stacks.h"
#include "symbolize.h"

struct target {
	struct pyproc *pp;	/* owned */
	struct symbolizer *sy;	/* owned */
	uint32_t root_id;	/* "COMM [PID]" (or "COMM" when merging) */
	uint64_t samples;	/* samples aggregated */
};

struct targets;

/* Empty set labelling into st (borrowed). NULL with errno on failure. */
struct targets *targets__new(struct stacks *st, bool merge);
/* Free every target; accepts NULL. */
void targets__free(struct targets *ts);

/*
 * Start profiling pp (ownership moves in, also on failure, when pp is freed).
 * Returns 0 with *out (borrowed, valid until removed) or -errno (-EEXIST when
 * the pid is already a target).
 */
int targets__add_take(struct targets *ts, struct pyproc *pp, struct target **out)
	__attribute__((warn_unused_result));

/* The target for pid, or NULL. Borrowed. */
struct target *targets__get(const struct targets *ts, pid_t pid);

/* Stop profiling pid and free its target; no-op for an unknown pid. */
void targets__remove(struct targets *ts, pid_t pid);

/* Number of targets. */
size_t targets__count(const struct targets *ts);

/* Visit every target (order unspecified; fn must not add or remove). */
typedef void (*targets_visit_fn)(struct target *t, void *arg);
void targets__foreach(const struct targets *ts, targets_visit_fn fn, void *arg);

/* Forget every cached label id (after stacks__clear) and re-intern roots. 0 or -errno. */
int targets__relabel(struct targets *ts) __attribute__((warn_unused_result));

#endif /* PYSAMP_TARGETS_H */
