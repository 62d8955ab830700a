/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * history.h - the agent's past windows, oldest first, in bounded memory.
 *
 * When the windows together hold more than the budget, the two oldest are merged into one
 * covering both intervals and pruned to the per-window stack cap (window__prune), so the
 * oldest history gets coarser but every sample stays counted; recent windows keep their own
 * interval. Memory is then about budget + one window.
 *
 * Owns its windows. Not thread-safe.
 */
#ifndef PYSAMP_HISTORY_H
#define PYSAMP_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "window.h"

struct history {
	struct window **w; /* owned, oldest first, intervals ascending and disjoint */
	size_t n, cap;
	size_t budget_bytes;
	size_t max_stacks;
	size_t bytes;	      /* sum of window__bytes */
	uint64_t compactions; /* merges done to stay in budget */
	uint64_t compact_failures;
};

/* Empty history (embedded value type). */
void history_init(struct history *h, size_t budget_bytes, size_t max_stacks);

/* Free every window. h may be reused after history_init. */
void history_release(struct history *h);

/*
 * Append w (sealed: until_ms set; ownership moves in, also on failure, when w is freed), then
 * merge the oldest windows while over budget. 0 or -ENOMEM (w lost; nothing else changes).
 * A failed merge leaves the windows as they were and counts compact_failures.
 */
int history__append(struct history *h, struct window *w) __attribute__((warn_unused_result));

#endif /* PYSAMP_HISTORY_H */
