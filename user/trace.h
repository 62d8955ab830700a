/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * trace.h - samples in time order, for a timeline of execution: the Trace Event format that
 * Chrome's DevTools, chrome://tracing and Perfetto load (--format chrome).
 *
 * The agent adds every sample (kernel timestamp, process, thread, stack) as it arrives; the
 * trace keeps its own copy of the labels, so it does not depend on the agent's windows. At most
 * max_samples are kept; later ones are counted as dropped (a bounded memory cost of 24 bytes
 * per sample plus each distinct stack once).
 *
 * The writer turns each thread's samples into spans: consecutive samples that share a frame
 * (the same function of the same file at the same depth, whatever the line) make one span from
 * the first of them to one sampling period after the last; a thread not sampled for more than
 * 2.5 periods (off CPU) closes all its spans. One "process" per profiled process (named by its
 * root label), one "thread" per thread.
 *
 * Not thread-safe. Errors are -errno.
 */
#ifndef PYSAMP_TRACE_H
#define PYSAMP_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "stacks.h"
#include "util.h"

struct trace;

/* A trace keeping up to max_samples (>= 1) samples; NULL on ENOMEM or EINVAL. */
struct trace *trace__new(size_t max_samples) __attribute__((warn_unused_result));

/* Accepts NULL. */
void trace__free(struct trace *t);

/*
 * Add one sample at ts_ns (CLOCK_MONOTONIC, as bpf_ktime_get_ns) of thread tid of process pid.
 * root and frames[0..nframes) are label ids of src: root names the process, frames are its
 * Python frames, outermost first (no thread label: threads come from tid).
 * 0; -ENOMEM / -E2BIG (counted as dropped too); 0 and counted as dropped past max_samples.
 */
int trace__add(struct trace *t, uint64_t ts_ns, uint32_t pid, uint32_t tid,
	       const struct stacks *src, uint32_t root, const uint32_t *frames, size_t nframes);

size_t trace__samples(const struct trace *t);
uint64_t trace__dropped(const struct trace *t);

struct trace_opts {
	uint32_t hz;		/* sampling frequency (0: 100): one period closes a span */
	int64_t realtime_offset_ns; /* added to timestamps: CLOCK_REALTIME - CLOCK_MONOTONIC */
};

/*
 * Append the trace as a JSON object {"traceEvents":[...],"displayTimeUnit":"ms",...}: metadata
 * events naming processes and threads, then complete ("X") events, one per span: name = the
 * function's qualname, cat "python", ts/dur in microseconds, args {file, line of the span's first
 * sample}. 0, -ENOMEM, -E2BIG past out's cap (out restored).
 */
int trace_write_chrome(const struct trace *t, const struct trace_opts *o, struct strbuf *out)
	__attribute__((warn_unused_result));

#endif /* PYSAMP_TRACE_H */
