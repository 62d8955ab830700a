/* SPDX-License-Identifier: BSD-2-Clause */
/* serve.c - GET / (folded), /metrics (Prometheus), /healthz. */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <json-c/json.h>

#include "folded.h"
#include "httpd.h"
#include "log.h"
#include "serve.h"
#include "util.h"

#define MAX_QUERY_PIDS 256
#define MAX_SECONDS    (366u * 24 * 3600)

struct serve {
	struct serve_opts o;
	struct httpd *h;
	uint64_t queries, bad_queries;
};

struct selector {
	int *pids;
	size_t npids;
	const char *app; /* fnmatch pattern */
};

static bool select_series(const struct series_meta *m, void *arg)
{
	const struct selector *sel = arg;
	bool ok = !sel->npids;

	for (size_t i = 0; i < sel->npids && !ok; i++)
		ok = sel->pids[i] == m->pid;
	return ok && (!sel->app || fnmatch(sel->app, m->app, 0) == 0);
}

/* Appends to a response body, remembering the first failure (the body's size cap). */
struct out {
	struct strbuf *sb;
	int err;
};

static void __attribute__((format(printf, 2, 3))) outf(struct out *o, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = -EINVAL;
	else
		n = strbuf_add(o->sb, line, (size_t)n);
	if (n && !o->err)
		o->err = n;
}

static void __attribute__((format(printf, 3, 4)))
reply_error(struct httpd_response *r, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	r->status = status;
	strbuf_reset(&r->body);
	if (strbuf_add(&r->body, msg, (size_t)n) == 0 && strbuf_add(&r->body, "\n", 1) == 0)
		return;
	r->status = 500;
}

static const char *const known_args[] = { "seconds", "from", "until", "pid", "app", "group" };

static void handle_folded(struct serve *s, const struct httpd_request *req,
			  struct httpd_response *r)
{
	const struct agent *a = s->o.agent;
	struct window_query q = { .group = WINDOW_GROUP_PROCESS, .match = select_series };
	struct selector sel = { 0 };
	int64_t now = agent_wall_ms(), from, until, got_from = 0, got_until = 0;
	const char *v;
	struct stacks *out = NULL;
	bool open = true;
	uint32_t secs = a->opts.window_ms / 1000;
	uint64_t t;
	int err;

	s->queries++;
	for (size_t i = 0; i < req->nargs; i++) {
		bool known = false;

		for (size_t k = 0; k < sizeof(known_args) / sizeof(known_args[0]); k++)
			known |= !strcmp(req->args[i].key, known_args[k]);
		if (!known) {
			reply_error(r, 400,
				    "unknown parameter '%s' (known: seconds, from, until, pid, app, "
				    "group)",
				    req->args[i].key);
			goto bad;
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(req->args[i].key, req->args[j].key)) {
				reply_error(r, 400, "parameter '%s' given twice", req->args[i].key);
				goto bad;
			}
		}
	}
	if ((v = httpd_arg(req, "seconds")) && parse_u32(v, 1, MAX_SECONDS, &secs)) {
		reply_error(r, 400, "seconds=%s: expected 1 to 31622400", v);
		goto bad;
	}
	from = now - (int64_t)secs * 1000;
	until = now + 1;
	if (httpd_arg(req, "from") || httpd_arg(req, "until")) {
		if (httpd_arg(req, "seconds")) {
			reply_error(r, 400, "%s", "use either seconds= or from=/until=, not both");
			goto bad;
		}
		open = false;
		from = 0;
		until = now;
		if ((v = httpd_arg(req, "from"))) {
			if (parse_u64(v, 0, UINT32_MAX * 1000ULL, &t)) {
				reply_error(r, 400, "from=%s: expected Unix seconds", v);
				goto bad;
			}
			from = (int64_t)t * 1000;
		}
		if ((v = httpd_arg(req, "until"))) {
			if (parse_u64(v, 0, UINT32_MAX * 1000ULL, &t)) {
				reply_error(r, 400, "until=%s: expected Unix seconds", v);
				goto bad;
			}
			until = (int64_t)t * 1000;
		}
	}
	if ((v = httpd_arg(req, "pid"))) {
		if (parse_pid_list(v, &sel.pids, &sel.npids) || sel.npids > MAX_QUERY_PIDS) {
			reply_error(r, 400, "pid=%.64s: expected PID[,PID...] (at most 256)", v);
			goto bad;
		}
	}
	if ((v = httpd_arg(req, "app"))) {
		if (!v[0] || strlen(v) > 256) {
			reply_error(r, 400, "%s", "app=: expected a name or pattern of 1-256 bytes");
			goto bad;
		}
		sel.app = v;
	}
	if ((v = httpd_arg(req, "group"))) {
		if (!strcmp(v, "process"))
			q.group = WINDOW_GROUP_PROCESS;
		else if (!strcmp(v, "comm"))
			q.group = WINDOW_GROUP_COMM;
		else if (!strcmp(v, "app"))
			q.group = WINDOW_GROUP_APP;
		else if (!strcmp(v, "none"))
			q.group = WINDOW_GROUP_NONE;
		else {
			reply_error(r, 400, "group=%.64s: expected process, comm, app or none", v);
			goto bad;
		}
	}
	q.arg = &sel;
	out = stacks__new();
	err = out ? agent_query(a, from, until, open, &q, out, &got_from, &got_until) : -ENOMEM;
	if (!err)
		err = folded_write_buf(out, &r->body);
	if (err == -E2BIG) {
		r->err = err; /* httpd answers 500 "response too large" */
		goto done;
	}
	if (err) {
		reply_error(r, 500, "cannot build the profile: %s", strerror(-err));
		goto done;
	}
	snprintf(r->extra_headers, sizeof(r->extra_headers),
		 "X-Pysamp-From: %" PRId64 ".%03d\r\nX-Pysamp-Until: %" PRId64 ".%03d\r\n"
		 "X-Pysamp-Samples: %" PRIu64 "\r\n",
		 got_from / 1000, (int)(got_from % 1000), got_until / 1000, (int)(got_until % 1000),
		 stacks__total(out));
	goto done;
bad:
	s->bad_queries++;
done:
	stacks__free(out);
	free(sel.pids);
}

/* ------------------------------------------------------------------ export */

/* One exported item as a JSON line: {"name","from","until","sampleRate","body"}. */
static int export_line(void *ctx, const struct push_item *it)
{
	struct httpd_response *r = ctx;
	json_object *o = json_object_new_object();
	const char *s;
	int err;

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "name", json_object_new_string(it->name));
	json_object_object_add(o, "from", json_object_new_int64((int64_t)it->from_s));
	json_object_object_add(o, "until", json_object_new_int64((int64_t)it->until_s));
	json_object_object_add(o, "sampleRate", json_object_new_int64(it->sample_rate));
	json_object_object_add(o, "body", json_object_new_string_len(it->body, (int)it->len));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	err = s ? strbuf_add(&r->body, s, strlen(s)) : -ENOMEM;
	if (!err)
		err = strbuf_add(&r->body, "\n", 1);
	json_object_put(o);
	if (err && !r->err)
		r->err = err;
	return err;
}

/*
 * GET /export?from=T&until=T: the sealed windows overlapping [from, until) as the items --push
 * would send, one JSON object per line, oldest first (what pysamp-collector --poll reads).
 */
static void handle_export(struct serve *s, const struct httpd_request *req,
			  struct httpd_response *r)
{
	const struct agent *a = s->o.agent;
	uint64_t from = 0, until = UINT32_MAX;
	int64_t last = 0;
	const char *v;

	for (size_t i = 0; i < req->nargs; i++) {
		if (strcmp(req->args[i].key, "from") && strcmp(req->args[i].key, "until")) {
			reply_error(r, 400, "unknown parameter '%s' (known: from, until)",
				    req->args[i].key);
			return;
		}
	}
	if (((v = httpd_arg(req, "from")) && parse_u64(v, 0, UINT32_MAX, &from)) ||
	    ((v = httpd_arg(req, "until")) && parse_u64(v, 0, UINT32_MAX, &until))) {
		reply_error(r, 400, "%s", "from/until: expected Unix seconds");
		return;
	}
	r->content_type = "application/x-ndjson";
	for (size_t i = 0; i < a->hist.n && !r->err; i++) {
		const struct window *w = a->hist.w[i];

		if (w->from_ms >= (int64_t)until * 1000 || w->until_ms <= (int64_t)from * 1000)
			continue;
		export_window_to(s->o.export, w, export_line, r);
		if (w->until_ms > last)
			last = w->until_ms;
	}
	snprintf(r->extra_headers, sizeof(r->extra_headers), "X-Pysamp-Until: %" PRId64 "\r\n",
		 (last + 999) / 1000);
}

/* ------------------------------------------------------------------ metrics */

static void metric(struct out *b, const char *name, const char *type, const char *help,
		   uint64_t v)
{
	outf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name, v);
}

static void metric_head(struct out *b, const char *name, const char *type, const char *help)
{
	outf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t rss_bytes(void)
{
	unsigned long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &pages, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void handle_metrics(struct serve *s, struct httpd_response *r)
{
	const struct agent *a = s->o.agent;
	struct out ob = { .sb = &r->body }, *b = &ob;
	uint64_t st[PYSAMP_STAT_MAX], ps = 0, pn = 0;
	const struct httpd_stats *hs = httpd__stats(s->h);
	struct rusage ru;

	r->content_type = "text/plain; version=0.0.4; charset=utf-8";
	metric(b, "pysamp_samples_total", "counter",
	       "Samples turned into stacks (one per CPU tick in a Python thread).", a->samples);
	metric_head(b, "pysamp_samples_dropped_total", "counter",
		    "Samples received but not counted, by reason.");
	outf(b,
			  "pysamp_samples_dropped_total{reason=\"unknown_pid\"} %" PRIu64 "\n"
			  "pysamp_samples_dropped_total{reason=\"malformed\"} %" PRIu64 "\n"
			  "pysamp_samples_dropped_total{reason=\"nomem\"} %" PRIu64 "\n",
			  a->samples_unknown_pid, a->samples_malformed, a->samples_nomem);
	metric(b, "pysamp_samples_stack_error_total", "counter",
	       "Samples whose stack was cut by a read error (kept).", a->samples_error);
	if (a->ld.skel && loader_stats((struct loader *)&a->ld, st) == 0) {
		metric(b, "pysamp_samples_lost_total", "counter",
		       "Samples lost in the kernel because the ring buffer was full.",
		       st[PYSAMP_STAT_RINGBUF_FULL]);
		metric_head(b, "pysamp_bpf_total", "counter",
			    "The BPF sampler's own counters (ticks, errors, outcomes).");
		for (int i = 0; i < PYSAMP_STAT_MAX; i++)
			outf(b, "pysamp_bpf_total{counter=\"%s\"} %" PRIu64 "\n",
					  loader_stat_name(i), st[i]);
	}
	metric(b, "pysamp_processes_tracked", "gauge", "Python processes being profiled now.",
	       targets__count(a->targets));
	metric(b, "pysamp_processes_added_total", "counter", "Python processes profiled in all.",
	       a->procs_added);
	metric(b, "pysamp_processes_exited_total", "counter", "Profiled processes that exited.",
	       a->procs_exited);
	metric(b, "pysamp_processes_refused_total", "counter",
	       "Python processes that could not be profiled (unsupported builds).",
	       a->procs_refused);
	metric(b, "pysamp_processes_filtered_total", "counter",
	       "Processes left out by --include/--exclude.", a->procs_filtered);
	agent_pruned(a, &ps, &pn);
	metric(b, "pysamp_stacks_pruned_total", "counter",
	       "Rare unique stacks folded into [pruned] to bound memory.", ps);
	metric(b, "pysamp_samples_pruned_total", "counter",
	       "Samples of those stacks (still counted, under [pruned]).", pn);
	metric(b, "pysamp_windows_total", "counter", "Windows sealed.", a->windows);
	metric(b, "pysamp_history_windows", "gauge", "Windows kept in memory.", a->hist.n);
	metric(b, "pysamp_history_bytes", "gauge", "Memory held by past windows.", a->hist.bytes);
	metric(b, "pysamp_history_compactions_total", "counter",
	       "Merges of the oldest windows to stay within --history-memory.",
	       a->hist.compactions);
	if (s->o.push) {
		const struct push_stats *p = push__stats(s->o.push);

		metric(b, "pysamp_push_items_total", "counter", "Profiles queued for the collector.",
		       p->enqueued);
		metric(b, "pysamp_push_sent_total", "counter", "Profiles the collector accepted.",
		       p->sent);
		metric(b, "pysamp_push_bytes_sent_total", "counter", "Body bytes accepted.",
		       p->bytes_sent);
		metric(b, "pysamp_push_failed_attempts_total", "counter",
		       "Sends that failed and will be retried (network, timeout, 5xx, 408, 429).",
		       p->failed_attempts);
		metric(b, "pysamp_push_retries_total", "counter", "Retried sends.", p->retries);
		metric_head(b, "pysamp_push_dropped_total", "counter", "Profiles lost, by reason.");
		outf(b,
				  "pysamp_push_dropped_total{reason=\"rejected\"} %" PRIu64 "\n"
				  "pysamp_push_dropped_total{reason=\"spool_full\"} %" PRIu64 "\n"
				  "pysamp_push_dropped_total{reason=\"spool_error\"} %" PRIu64 "\n"
				  "pysamp_push_dropped_total{reason=\"spool_corrupt\"} %" PRIu64 "\n"
				  "pysamp_push_dropped_total{reason=\"unsent_at_exit\"} %" PRIu64 "\n",
				  p->rejected, p->dropped_overflow, p->dropped_disk_error,
				  p->dropped_corrupt, p->dropped_unsent);
		metric(b, "pysamp_push_queue_items", "gauge", "Profiles waiting (memory and disk).",
		       p->queued_items);
		metric(b, "pysamp_push_queue_bytes", "gauge", "Bytes waiting (memory and disk).",
		       p->queued_bytes);
		metric(b, "pysamp_push_last_success_timestamp_seconds", "gauge",
		       "When the collector last accepted a profile (0: never).",
		       (uint64_t)(p->last_success_unix > 0 ? p->last_success_unix : 0));
	}
	if (s->o.export)
		metric(b, "pysamp_push_stacks_pruned_total", "counter",
		       "Stacks folded into [pruned] to fit Pyroscope's per-profile limit.",
		       s->o.export->pruned_stacks);
	metric_head(b, "pysamp_http_requests_total", "counter", "HTTP requests, by status class.");
	outf(b,
			  "pysamp_http_requests_total{code=\"2xx\"} %" PRIu64 "\n"
			  "pysamp_http_requests_total{code=\"4xx\"} %" PRIu64 "\n"
			  "pysamp_http_requests_total{code=\"5xx\"} %" PRIu64 "\n",
			  hs->responses_2xx, hs->responses_4xx, hs->responses_5xx);
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
			     ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;

		metric_head(b, "process_cpu_seconds_total", "counter",
			    "User and system CPU time of the agent.");
		outf(b, "process_cpu_seconds_total %.6f\n", cpu);
	}
	metric(b, "process_resident_memory_bytes", "gauge", "Resident memory of the agent.",
	       rss_bytes());
	metric(b, "process_start_time_seconds", "gauge", "When the agent started (Unix seconds).",
	       a->start_unix_ms / 1000);
	if (ob.err)
		reply_error(r, 500, "cannot build the metrics: %s", strerror(-ob.err));
}

static void handle(void *ctx, const struct httpd_request *req, struct httpd_response *r)
{
	struct serve *s = ctx;

	if (!strcmp(req->path, "/")) {
		handle_folded(s, req, r);
	} else if (!strcmp(req->path, "/metrics")) {
		if (req->nargs)
			reply_error(r, 400, "%s", "/metrics takes no parameters");
		else
			handle_metrics(s, r);
	} else if (!strcmp(req->path, "/export")) {
		handle_export(s, req, r);
	} else if (!strcmp(req->path, "/healthz")) {
		bool ok = s->o.agent->ld.skel && s->o.agent->ld.nlinks > 0;

		reply_error(r, ok ? 200 : 503, "%s", ok ? "ok" : "sampler not attached");
	} else {
		reply_error(r, 404, "%s", "not found: try /, /export, /metrics or /healthz");
	}
}

struct serve *serve__new(const struct serve_opts *o, char *err, size_t errlen)
{
	struct serve *s = calloc(1, sizeof(*s));
	struct httpd_opts ho = { 0 };

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->o = *o;
	ho.listen = o->listen;
	ho.handler = handle;
	ho.ctx = s;
	s->h = httpd__new(&ho, err, errlen);
	if (!s->h) {
		int e = errno;

		free(s);
		errno = e;
		return NULL;
	}
	return s;
}

void serve__free(struct serve *s)
{
	if (!s)
		return;
	httpd__free(s->h);
	free(s);
}

int serve__poll(struct serve *s)
{
	return httpd__poll(s->h);
}

uint16_t serve__port(const struct serve *s)
{
	return httpd__port(s->h);
}
