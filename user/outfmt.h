/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * outfmt.h - every output format a profile can be written in, by name, for the agent's --format
 * and the collector's format= parameter: one switch over the writers.
 *
 *   folded      flamegraph.pl's input, "a;b;c 42" (folded.h)
 *   svg         an interactive flame graph (flamesvg.h)
 *   speedscope  speedscope's JSON file format (speedscope.h)
 *   chrome      Trace Event JSON for Chrome/Perfetto, a timeline (trace.h; needs a trace)
 *   pprof       gzipped profile.proto (pprof.h)
 *   json        the merged call tree (analyze.h)
 */
#ifndef PYSAMP_OUTFMT_H
#define PYSAMP_OUTFMT_H

#include <stdbool.h>
#include <stdint.h>

#include "stacks.h"
#include "trace.h"
#include "util.h"

enum outfmt { OUTFMT_FOLDED, OUTFMT_SVG, OUTFMT_SPEEDSCOPE, OUTFMT_CHROME, OUTFMT_PPROF,
	      OUTFMT_JSON };

/* "folded", "svg", ... -> *f. 0, or -EINVAL for an unknown name. */
int outfmt_parse(const char *name, enum outfmt *f) __attribute__((warn_unused_result));

/* The names, for messages: "folded, svg, speedscope, chrome, pprof, json". */
const char *outfmt_names(void);

/* MIME type of f (HTTP replies). */
const char *outfmt_content_type(enum outfmt f);

struct outfmt_ctx {
	const char *title;	   /* svg title, speedscope name (NULL: a default) */
	const char *subtitle;	   /* svg (NULL: none) */
	bool reverse;		   /* svg: icicle */
	unsigned width;		   /* svg width in pixels (0: 1200) */
	const struct stacks *base; /* svg: differential against this profile (NULL: none) */
	uint32_t hz;		   /* pprof period, chrome span length (0: 100) */
	int64_t time_ns;	   /* pprof: start (Unix ns, 0: unknown) */
	int64_t duration_ns;	   /* pprof (0: unknown) */
	const struct trace *trace; /* chrome: the samples in time order (required) */
	int64_t realtime_offset_ns; /* chrome: CLOCK_REALTIME - CLOCK_MONOTONIC */
};

/*
 * Append st in format f to out. c may be NULL for defaults (then chrome fails).
 * 0; -EINVAL (chrome without a trace); the writer's -ENOMEM / -E2BIG / -EOVERFLOW.
 */
int outfmt_write(enum outfmt f, const struct stacks *st, const struct outfmt_ctx *c,
		 struct strbuf *out) __attribute__((warn_unused_result));

#endif /* PYSAMP_OUTFMT_H */
