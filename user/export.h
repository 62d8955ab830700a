/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * export.h - each sealed window becomes Pyroscope ingest items, one per application series.
 *
 * A series is (application name, Python version, container): processes that share all three are
 * summed, as Pyroscope's own agents do, so short-lived workers of one service add up instead of
 * making one series per PID. The item's name is "APP.cpu{host=H,py_version=V[,container=C]
 * [,extra labels]}"; its body is folded text without a process root frame, kept inside
 * Pyroscope's limits (at most 15,000 stacks, rarer ones folded into "[pruned]"; lines at most
 * 60 KiB; bodies at most 4 MiB).
 *
 * struct export is an embedded value owned by main(); items go to an enqueue callback (the push
 * queue's push__enqueue in the agent, a recorder in tests).
 */
#ifndef PYSAMP_EXPORT_H
#define PYSAMP_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "push.h"
#include "window.h"

#define EXPORT_MAX_LABELS 16

/* Takes a copy of *it (as push__enqueue does). 0 or -errno. */
typedef int (*export_enqueue_fn)(void *ctx, const struct push_item *it);

struct export_opts {
	export_enqueue_fn enqueue; /* NULL: export_window does nothing */
	void *ctx;
	uint32_t sample_rate;	/* Hz */
	const char *host;	/* host label value (sanitised here) */
	const char *const *labels; /* extra "key=value" labels, checked with export_check_label */
	size_t nlabels;
};

struct export {
	struct export_opts o;
	char host[128];
	uint64_t windows;	   /* windows exported */
	uint64_t items;		   /* items handed to the push queue */
	uint64_t enqueue_failures; /* items the queue refused (counted there too) */
	uint64_t pruned_stacks;	   /* stacks folded into [pruned] to fit the limits */
};

/* Copy o (labels stay borrowed). */
void export_init(struct export *e, const struct export_opts *o);

/*
 * Queue one item per series group of w (empty groups skipped) with the enqueue callback of the
 * options (nothing without one). Errors are counted, not fatal.
 */
void export_window(struct export *e, const struct window *w);

/* The same, handing the items to fn(ctx, item) (e.g. to serve them to a polling collector). */
void export_window_to(struct export *e, const struct window *w, export_enqueue_fn fn, void *ctx);

/*
 * Check an extra label "key=value": key [a-z_][a-z0-9_]* (not host, py_version, container, or
 * starting with "__"), value 1-128 bytes of [A-Za-z0-9_.:/-]. 0 or -EINVAL with a message.
 */
int export_check_label(const char *kv, char *err, size_t errlen);

/* The item name for a series (exposed for tests). 0 or -E2BIG. */
int export_series_name(const struct export *e, const struct series_meta *m, char *out,
		       size_t outlen);

#endif /* PYSAMP_EXPORT_H */
