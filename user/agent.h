/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * agent.h - the agent's run loop: which processes are profiled (given PIDs,
 * or every Python process on the host with --all, following exec, fork and
 * exit, minus what the filter excludes), turning samples into counted stacks
 * in time windows (the open one, then a bounded history), and the report.
 *
 * Outputs (HTTP, push, files) hang off two hooks: on_window sees each
 * window as it is sealed, on_tick runs on every loop iteration; both run on
 * the loop's thread, so they may read the agent without locks.
 *
 * struct agent is owned by main(); not thread-safe.
 */
#ifndef PYSAMP_AGENT_H
#define PYSAMP_AGENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filter.h"
#include "history.h"
#include "loader.h"
#include "procinfo.h"
#include "stacks.h"
#include "targets.h"
#include "trace.h"
#include "window.h"

struct agent_opts {
	const int *pids;	/* -p PIDs (borrowed) */
	size_t npids;
	bool all;		/* --all: every Python process, now and later */
	uint32_t hz;
	uint64_t duration_ms;	/* 0 = until stopped */
	int verbose;
	bool threads;		/* a "thread TID" frame under the root */
	uint32_t window_ms;	/* window length (wall clock, aligned); 0 = 10 s */
	size_t max_stacks;	/* unique stacks per window before pruning; 0 = 20000 */
	size_t history_bytes;	/* memory for past windows; 0 = 64 MiB */
	const struct filter *filter;	     /* --include/--exclude (borrowed; NULL: all) */
	const struct appname_rules *rules;   /* --app-name (borrowed; NULL: none) */
	struct trace *trace; /* every sample in time order, for --format chrome (borrowed; NULL) */
	void (*on_window)(void *ctx, const struct window *w); /* a window was sealed */
	void (*on_tick)(void *ctx);			       /* every loop iteration */
	void *hook_ctx;
};

struct pending; /* processes to inspect after an exec */

struct agent {
	struct agent_opts opts;
	struct loader ld;
	struct window *cur;	/* the open window (owned) */
	struct history hist;	/* sealed windows */
	uint64_t win_gen;	/* bumped whenever cur's label ids change */
	int64_t next_seal_ms;	/* wall clock end of cur */
	uint64_t serial;	/* last series_meta.serial handed out */
	struct targets *targets;
	struct pyproc_verdicts verdicts; /* files known to hold no interpreter */
	struct pending *pending;
	size_t npending, cap_pending;
	pid_t *dying;		/* exited targets, removed once their samples are in */
	size_t ndying, cap_dying;
	uint32_t *ids;		/* scratch for one stack, root first */
	uint32_t truncated_id;	/* in cur, valid while truncated_gen == win_gen */
	uint64_t truncated_gen;
	uint64_t start_unix_ms;
	uint32_t generation;		/* last pysamp_proc.generation handed out */
	uint64_t samples;		/* samples aggregated */
	uint64_t samples_unknown_pid;	/* samples of processes not (or no longer) tracked */
	uint64_t samples_malformed;	/* records of the wrong size */
	uint64_t samples_nomem;		/* samples dropped for lack of memory */
	uint64_t samples_error;		/* stacks cut by a read error (kept) */
	uint64_t procs_added;		/* processes profiled, in all */
	uint64_t procs_exited;
	uint64_t procs_refused;		/* Python-looking processes that could not be profiled */
	uint64_t procs_filtered;	/* left out by --include/--exclude */
	uint64_t windows;		/* windows sealed */
	uint64_t prune_failures;	/* prunes that ran out of memory */
};

/*
 * Set up: find the target processes (the PIDs given, or every Python process
 * with --all), load the BPF programs and start sampling. Messages are printed
 * here. Returns 0 or -errno (-ENOENT: no usable process among the PIDs given).
 * The agent must be zeroed before the first call; release with agent_release()
 * in every case.
 */
int agent_start(struct agent *a, const struct agent_opts *o) __attribute__((warn_unused_result));

/*
 * Run until *stop is set, the duration has passed, or (without --all) every
 * target has exited; then drain what the sampler queued. 0 or -errno.
 */
int agent_run(struct agent *a, volatile sig_atomic_t *stop) __attribute__((warn_unused_result));

/*
 * Add to out the windows that overlap [from_ms, until_ms) (wall clock; sealed ones, and the open
 * one when include_open), filtered and rooted by q. *got_from / *got_until receive the interval
 * actually covered (whole windows; both 0 when none matched). 0 or -errno.
 */
int agent_query(const struct agent *a, int64_t from_ms, int64_t until_ms, bool include_open,
		const struct window_query *q, struct stacks *out, int64_t *got_from,
		int64_t *got_until) __attribute__((warn_unused_result));

/* Stacks and samples folded into "[pruned]" so far (open window and history). */
void agent_pruned(const struct agent *a, uint64_t *stacks, uint64_t *samples);

/* Wall clock now, in ms since the epoch. */
int64_t agent_wall_ms(void);

/* Counters to stderr: a summary line, and with -v the sampler's and agent's counters. */
void agent_report(struct agent *a);

/* Free everything; accepts a zeroed or partly started agent. */
void agent_release(struct agent *a);

#endif /* PYSAMP_AGENT_H */
