/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * serve.h - the agent's HTTP endpoints (--listen), on top of httpd:
 *
 *   GET /          folded stacks of recent windows (flamegraph.pl input). Parameters:
 *                  seconds=N (the last N seconds, open window included; default: one window),
 *                  or from=T&until=T (Unix seconds; sealed windows overlapping [from, until)),
 *                  pid=PID[,PID...], app=NAME, group=process|comm|app|none.
 *                  Headers X-Pysamp-From / X-Pysamp-Until give the interval covered.
 *   GET /export    from=T&until=T: the sealed windows overlapping [from, until) as the items
 *                  --push sends, one JSON object per line (pysamp-collector --poll).
 *   GET /metrics   the agent's counters in Prometheus text format (0.0.4).
 *   GET /healthz   "ok" while the sampler is attached.
 *
 * Runs on the agent's loop thread (serve__poll from the on_tick hook), reading the agent, the
 * push queue and the exporter without locks. Owns its httpd.
 */
#ifndef PYSAMP_SERVE_H
#define PYSAMP_SERVE_H

#include <stdint.h>

#include "agent.h"
#include "export.h"
#include "push.h"

struct serve_opts {
	const char *listen;	     /* "ADDR:PORT" (httpd_parse_listen forms) */
	const struct agent *agent;   /* borrowed */
	const struct push *push;     /* borrowed; NULL without --push */
	struct export *export;	     /* borrowed */
};

struct serve;

/* Listen. NULL with errno and a message in err on failure (address in use, bad address). */
struct serve *serve__new(const struct serve_opts *o, char *err, size_t errlen);
void serve__free(struct serve *s); /* accepts NULL */
int serve__poll(struct serve *s);  /* non-blocking; 0 or -errno */
uint16_t serve__port(const struct serve *s);

#endif /* PYSAMP_SERVE_H */
