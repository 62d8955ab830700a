/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * targets.h - the set of profiled processes, by pid: each one's interpreter
 * description, symbolizer and series metadata (names, pids, container).
 *
 * Owns its targets (and through them their pyproc and symbolizer); labels
 * are interned in a borrowed struct stacks, which the caller may switch
 * (targets__set_stacks) when it starts a new table. Not thread-safe.
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
#include "window.h"

struct target {
	struct pyproc *pp;	/* owned */
	struct symbolizer *sy;	/* owned */
	struct series_meta meta; /* set by the caller after adding */
	uint64_t win_gen;	/* window generation root belongs to (0: none) */
	uint32_t root;		/* series root label in that window */
	uint64_t samples;	/* samples aggregated */
};

struct targets;

/* Empty set labelling into st (borrowed). NULL with errno on failure. */
struct targets *targets__new(struct stacks *st);
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

/*
 * Label into st (borrowed) from now on: every symbolizer forgets its cached label ids and every
 * target's win_gen is reset to 0.
 */
void targets__set_stacks(struct targets *ts, struct stacks *st);

#endif /* PYSAMP_TARGETS_H */
