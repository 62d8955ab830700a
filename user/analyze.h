/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * analyze.h - what people ask of a profile besides the flamegraph: the top functions (self and
 * total samples) and the difference of two profiles.
 *
 * Pure functions over struct stacks (read only). Not thread-safe against writers of st.
 */
#ifndef PYSAMP_ANALYZE_H
#define PYSAMP_ANALYZE_H

#include <stddef.h>
#include <stdint.h>

#include "stacks.h"
#include "util.h"

struct fn_stat {
	uint32_t id;	/* label id in the stacks table analysed */
	uint64_t self;	/* samples where it is the leaf */
	uint64_t total; /* samples of stacks it appears in (once per stack, recursion or not) */
};

/*
 * Every label of st with its self and total samples, sorted by self, then total (both
 * descending), then label bytes. *out is malloc'ed (free it), *n its length; labels that appear
 * in no stack are left out. 0 or -ENOMEM.
 */
int analyze_top(const struct stacks *st, struct fn_stat **out, size_t *n)
	__attribute__((warn_unused_result));

/*
 * The differential folded format flamegraph.pl reads (Brendan Gregg's difffolded.pl): one line
 * per stack of a or b, "frame;...;frame COUNT_A COUNT_B", the stacks of a first (in
 * stacks__foreach_sorted order), then those only in b. Frames are sanitised as in folded.h.
 * 0, -ENOMEM, or -E2BIG past sb's cap (sb then restored).
 */
int analyze_diff_write(const struct stacks *a, const struct stacks *b, struct strbuf *sb)
	__attribute__((warn_unused_result));

/*
 * The merged call tree of st as JSON, the shape d3-flame-graph and similar viewers read:
 *   {"name":"all","value":TOTAL,"self":0,"children":[{"name":"main","value":N,"self":S,
 *    "children":[...]}, ...]}
 * value counts the samples of the node and below, self those ending at it. Children are merged
 * by label and ordered by value descending, then label bytes. Names are JSON strings of the
 * label bytes (invalid UTF-8 replaced by U+FFFD, control characters escaped). Any depth (no
 * recursion). Ends with a newline.
 * 0, -ENOMEM, or -E2BIG past sb's cap (sb then restored).
 */
int analyze_tree_write(const struct stacks *st, struct strbuf *sb) __attribute__((warn_unused_result));

#endif /* PYSAMP_ANALYZE_H */
