/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * agent.h - the agent's run loop: which processes are profiled (given PIDs,
 * or every Python process on the host with --all, following exec, fork and
 * exit), turning samples into counted stacks, and the final report.
 *
 * struct agent is owned by main(); not thread-safe.
 */
#ifndef PYSAMP_AGENT_H
#define PYSAMP_AGENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loader.h"
#include "stacks.h"
#include "targets.h"

struct agent_opts {
	const int *pids;	/* -p PIDs (borrowed) */
	size_t npids;
	bool all;		/* --all: every Python process, now and later */
	uint32_t hz;
	uint64_t duration_ms;	/* 0 = until stopped */
	int verbose;
	bool threads;		/* a "thread TID" frame under the root */
	bool merge;		/* root frame without the PID */
};

struct pending; /* processes to inspect after an exec */

struct agent {
	struct agent_opts opts;
	struct loader ld;
	struct stacks *st;
	struct targets *targets;
	struct pending *pending;
	size_t npending, cap_pending;
	pid_t *dying;		/* exited targets, removed once their samples are in */
	size_t ndying, cap_dying;
	uint32_t *ids;		/* scratch for one stack, root first */
	uint32_t truncated_id;
	uint32_t generation;		/* last pysamp_proc.generation handed out */
	uint64_t samples;		/* samples aggregated */
	uint64_t samples_unknown_pid;	/* samples of processes not (or no longer) tracked */
	uint64_t samples_malformed;	/* records of the wrong size */
	uint64_t samples_nomem;		/* samples dropped for lack of memory */
	uint64_t samples_error;		/* stacks cut by a read error (kept) */
	uint64_t procs_added;		/* processes profiled, in all */
	uint64_t procs_exited;
	uint64_t procs_refused;		/* Python-looking processes that could not be profiled */
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

/* Counters to stderr: a summary line, and with -v the sampler's and agent's counters. */
void agent_report(struct agent *a);

/* Free everything; accepts a zeroed or partly started agent. */
void agent_release(struct agent *a);

#endif /* PYSAMP_AGENT_H */
