/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * poller.h - pull mode of the collector (--poll): fetch each agent's GET /export every interval
 * and hand every item (the same name, interval, rate and folded body --push would have sent) to
 * a callback, so pulled and pushed profiles are stored the same way. Each agent is asked from
 * where the last answer ended, so no window is fetched twice or skipped while the agent keeps
 * it. libcurl multi, driven from the caller's loop; never blocks. Not thread-safe.
 */
#ifndef PYSAMP_POLLER_H
#define PYSAMP_POLLER_H

#include <stddef.h>
#include <stdint.h>

/* Store one item; returns an HTTP-like status (200 stored) with a reason in err otherwise. */
typedef int (*poller_item_fn)(void *ctx, const char *name, int64_t from_s, int64_t until_s,
			      uint32_t sample_rate, const char *body, size_t len, char *err,
			      size_t errlen);

struct poller_stats {
	uint64_t polls;	      /* answers received */
	uint64_t errors;      /* failed polls (connection, HTTP status, malformed answer) */
	uint64_t items;	      /* items stored */
	uint64_t refused;     /* items the callback refused */
};

struct poller;

/*
 * Poll every agent of urls ("http://host:port[,...]", their --listen addresses) every
 * interval_s seconds. NULL with errno and a message in err for a bad URL list.
 */
struct poller *poller__new(const char *urls, uint32_t interval_s, poller_item_fn fn, void *ctx,
			   char *err, size_t errlen);
void poller__free(struct poller *p); /* accepts NULL */

/* Advance transfers, start due polls. Returns how many ms the caller may sleep (<= 1000). */
int poller__run(struct poller *p);

const struct poller_stats *poller__stats(const struct poller *p);

#endif /* PYSAMP_POLLER_H */
