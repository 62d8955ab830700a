/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * window.h - the profile of one time interval: the stacks of many processes ("series").
 *
 * Every stack in a window's table starts with its series' root label, an internal marker that
 * is never printed: window__query() replaces it by the root frame the reader asked for (process,
 * command name, application, or none). Each series carries the metadata of the process it came
 * from (pids, names, container), so a window can be filtered and grouped after the fact.
 *
 * Memory is bounded by the caller: window__prune() keeps the most-counted stacks and folds the
 * rest into one "[pruned]" stack per series, so totals per series stay exact.
 *
 * Ownership: a window owns its stacks table and series array. Not thread-safe.
 */
#ifndef PYSAMP_WINDOW_H
#define PYSAMP_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stacks.h"

#define SERIES_APP_MAX 128

/* Who a series is. Plain value; copied into each window the series appears in. */
struct series_meta {
	uint64_t serial;	   /* unique per profiled process image for the agent's lifetime */
	pid_t pid;		   /* host PID */
	pid_t nspid;		   /* PID in its own namespace; equal to pid when the same */
	char comm[17];
	char app[SERIES_APP_MAX];  /* application name ([A-Za-z0-9_./-]) */
	char container[65];	   /* container id or "" */
	char python[8];		   /* interpreter version, "3.11" */
};

struct window_series {
	struct series_meta m;
	uint32_t root; /* label id of the series marker in the window's stacks */
};

struct window {
	int64_t from_ms, until_ms; /* wall clock, [from, until); until is 0 while open */
	struct stacks *st;	   /* owned; ids[0] of every stack is a series root */
	struct window_series *series;
	size_t nseries, cap_series;
	uint64_t pruned_stacks;	 /* unique stacks folded into "[pruned]" */
	uint64_t pruned_samples; /* samples they held (still counted, under "[pruned]") */
};

/* Empty window starting at from_ms. NULL with errno on failure. */
struct window *window__new(int64_t from_ms) __attribute__((warn_unused_result));

/* Free w and everything it holds; accepts NULL. */
void window__free(struct window *w);

/*
 * The root label id of series m->serial in w, adding the series (with a copy of *m) the first
 * time. 0 or -ENOMEM. Root ids are valid until the next window__prune.
 */
int window__series(struct window *w, const struct series_meta *m, uint32_t *root)
	__attribute__((warn_unused_result));

/*
 * Keep the `keep` most-counted stacks (ties broken by stacks__foreach_sorted order) and fold
 * every other stack into "ROOT;[pruned]" of its series, adding to the pruned counters. Label and
 * root ids all change (w->st is replaced). 0, or -ENOMEM with w unchanged.
 */
int window__prune(struct window *w, size_t keep) __attribute__((warn_unused_result));

/*
 * Add every stack and series of src to dst and widen dst's interval to cover both; pruned
 * counters add up. dst's label and root ids stay valid. 0 or -ENOMEM (dst may then hold part of
 * src: callers drop dst on failure).
 */
int window__absorb(struct window *dst, const struct window *src)
	__attribute__((warn_unused_result));

/* Heap bytes held by w (approximate). */
size_t window__bytes(const struct window *w);

/* Total samples in w. */
uint64_t window__samples(const struct window *w);

enum window_group {
	WINDOW_GROUP_PROCESS, /* root frame "COMM [PID]" ("COMM [PID ns:NSPID]" in another ns) */
	WINDOW_GROUP_COMM,    /* root frame "COMM" */
	WINDOW_GROUP_APP,     /* root frame "APP" */
	WINDOW_GROUP_NONE,    /* no root frame: Python frames only */
};

/* Filter for window__query: true to include the series. */
typedef bool (*window_match_fn)(const struct series_meta *m, void *arg);

struct window_query {
	enum window_group group;
	window_match_fn match; /* NULL: every series */
	void *arg;
};

/*
 * Add the stacks of w's matching series to out (a separate table: labels are copied), with the
 * root frame chosen by q->group. 0 or -errno from stacks__intern/stacks__add (out may then hold
 * part of w).
 */
int window__query(const struct window *w, const struct window_query *q, struct stacks *out)
	__attribute__((warn_unused_result));

/*
 * Copy the `keep` most-counted stacks of in to out; fold each other stack into its first
 * root_depth labels followed by "[pruned]" (root_depth 0: a lone "[pruned]" stack). Adds the
 * number of stacks and samples folded to *pruned_stacks and *pruned_samples (either may be
 * NULL). 0 or -errno (out may then hold part of in).
 */
int window_stacks_topk(const struct stacks *in, size_t keep, size_t root_depth,
		       struct stacks *out, uint64_t *pruned_stacks, uint64_t *pruned_samples)
	__attribute__((warn_unused_result));

#endif /* PYSAMP_WINDOW_H */
