/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * collector.c - pysamp-collector: receives profiles from many agents over the Pyroscope ingest
 * API (POST /ingest, as `pysamp-bpf --push` sends them), stores them in SQLite (store.c) and
 * serves them back: the merged folded profile of any interval, the list of series, a timeline.
 *
 * Single-threaded: the HTTP server (httpd.c, libmicrohttpd in external polling) runs from this
 * loop and the handler talks to the store directly. Owns the options, the store and the server.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "analyze.h"
#include "folded.h"
#include "httpd.h"
#include "ingest.h"
#include "log.h"
#include "outfmt.h"
#include "poller.h"
#include "ratelimit.h"
#include "stacks.h"
#include "store.h"
#include "util.h"

#define COLLECTOR_VERSION "0.1.0"
#define DEFAULT_LISTEN	  "127.0.0.1:4040"
#define DEFAULT_DATA_DIR  "pysamp-data"
#define DEFAULT_MAX_BODY  16 /* MB */
#define MAX_INGEST_STACKS 100000
#define TOKEN_MAX	  4096
#define DEFAULT_RATE	  100 /* requests per second per client */
#define RATE_CLIENTS	  4096
#define DEFAULT_MAX_DISK  10240 /* MB */
#define COMPACT_ROWS	  20000 /* (stack, count) pairs per compaction step */

static volatile sig_atomic_t exiting;

struct collector_opts {
	const char *listen;
	const char *data_dir;
	const char *token_file;
	uint32_t max_body_mb;
	const char *poll;
	uint32_t poll_interval_s;
	uint32_t rate_limit; /* requests/s per client, 0 = off */
	const char *retention;
	uint64_t max_disk_mb; /* 0 = unbounded */
	int verbose;
};

struct collector {
	struct collector_opts o;
	struct store *store;
	struct httpd *httpd;
	struct poller *poller; /* --poll, or NULL */
	char *token;	       /* NULL = no token required */
	struct ratelimit *limit; /* per client address, or NULL (--rate-limit 0) */
	uint64_t ingested, ingest_rejected, ingest_failed, unauthorized, samples, limited;
	uint64_t compact_failed;
};

/* The web UI, embedded at build time (web/embed.sh): path, bytes, size; a NULL path ends it. */
struct web_asset {
	const char *path;
	const unsigned char *data;
	unsigned long size;
};
extern const struct web_asset web_assets[];

static void on_signal(int sig)
{
	(void)sig;
	exiting = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pysamp-collector [--listen [ADDR:]PORT] [--data-dir DIR] [--token-file F]\n"
		"                        [--max-body MB] [--poll URL[,URL...]] [--poll-interval S]\n"
		"                        [--rate-limit N] [--retention SPEC] [--max-disk MB] [-v]\n"
		"\n"
		"Store the profiles pysamp-bpf agents push (Pyroscope ingest API) in SQLite and\n"
		"serve them back.\n"
		"\n"
		"  --listen [ADDR:]PORT  HTTP address (default %s)\n"
		"  --data-dir DIR        where the database lives (default ./%s)\n"
		"  --token-file F        require 'Authorization: Bearer TOKEN' (first line of F)\n"
		"                        for ingest and queries\n"
		"  --max-body MB         largest ingest body accepted (default %d)\n"
		"  --poll URL[,URL...]   also pull from agents (their --listen address,\n"
		"                        http://host:4041): GET /export every interval\n"
		"  --poll-interval S     seconds between pulls (default 10)\n"
		"  --rate-limit N        requests per second per client address, bursts of\n"
		"                        2N (default %d; 0: none); over it: 429 + Retry-After\n"
		"  --retention SPEC      WIDTH:KEEP tiers, finest first (default %s:\n"
		"                        10 s buckets kept 2 days, then merged into 1 min\n"
		"                        buckets kept 14 days, then 1 h buckets kept a year)\n"
		"  --max-disk MB         bound on the database's live size; past it the oldest\n"
		"                        buckets are deleted, and counted (default %d; 0: none)\n"
		"  -v, --verbose         log every request; -vv debug\n"
		"  -h, --help            this help\n"
		"      --version         print the version\n"
		"\n"
		"Endpoints:\n"
		"  POST /ingest?name=APP.cpu{k=v,...}&from=T&until=T&format=folded   store a profile\n"
		"  GET  /          the web UI\n"
		"  GET  /render?query=APP{k=v,...}&from=T&until=T[&format=F]   the merged profile\n"
		"       (T: Unix seconds, or now, now-3600, ...; labels in the query must all match;\n"
		"       F: folded (default), json (call tree), svg (flame graph; &reverse=1: icicle,\n"
		"       &width=PX), speedscope, pprof)\n"
		"  GET  /api/series                     every series (JSON)\n"
		"  GET  /api/timeline?query=...&from=&until=[&step=S]   [start, samples, width]\n"
		"       per point (default: about 1000 points)\n"
		"  GET  /api/top?query=...&from=&until=[&limit=N]   functions by self/total (JSON;\n"
		"       the selection's total in the X-Pysamp-Samples header)\n"
		"  GET  /api/diff?query=...&from=&until=&from2=&until2=[&format=svg]   the second\n"
		"       interval against the first: differential folded (flamegraph.pl input:\n"
		"       'stack COUNT_1 COUNT_2') or a differential flame graph\n"
		"  GET  /api/stats                      storage and ingest counters (JSON)\n"
		"  GET  /metrics                        the same, Prometheus text\n"
		"  GET  /healthz\n",
		DEFAULT_LISTEN, DEFAULT_DATA_DIR, DEFAULT_MAX_BODY, DEFAULT_RATE,
		STORE_RETENTION_DEFAULT, DEFAULT_MAX_DISK);
}

static int parse_args(int argc, char **argv, struct collector_opts *o)
{
	enum { OPT_LISTEN = 256, OPT_DATA, OPT_TOKEN, OPT_MAX_BODY, OPT_VERSION, OPT_POLL,
	       OPT_POLL_INTERVAL, OPT_RATE_LIMIT, OPT_RETENTION, OPT_MAX_DISK };
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "data-dir", required_argument, NULL, OPT_DATA },
		{ "token-file", required_argument, NULL, OPT_TOKEN },
		{ "max-body", required_argument, NULL, OPT_MAX_BODY },
		{ "poll", required_argument, NULL, OPT_POLL },
		{ "poll-interval", required_argument, NULL, OPT_POLL_INTERVAL },
		{ "rate-limit", required_argument, NULL, OPT_RATE_LIMIT },
		{ "retention", required_argument, NULL, OPT_RETENTION },
		{ "max-disk", required_argument, NULL, OPT_MAX_DISK },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->listen = DEFAULT_LISTEN;
	o->data_dir = DEFAULT_DATA_DIR;
	o->max_body_mb = DEFAULT_MAX_BODY;
	o->poll_interval_s = 10;
	o->rate_limit = DEFAULT_RATE;
	o->retention = STORE_RETENTION_DEFAULT;
	o->max_disk_mb = DEFAULT_MAX_DISK;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			o->listen = optarg;
			break;
		case OPT_DATA:
			o->data_dir = optarg;
			break;
		case OPT_TOKEN:
			o->token_file = optarg;
			break;
		case OPT_MAX_BODY:
			if (parse_u32(optarg, 1, 1024, &o->max_body_mb)) {
				log_error("invalid --max-body '%s': expected 1-1024 MB", optarg);
				return -EINVAL;
			}
			break;
		case OPT_POLL:
			o->poll = optarg;
			break;
		case OPT_POLL_INTERVAL:
			if (parse_u32(optarg, 1, 3600, &o->poll_interval_s)) {
				log_error("invalid --poll-interval '%s': expected 1-3600 s", optarg);
				return -EINVAL;
			}
			break;
		case OPT_RATE_LIMIT:
			if (parse_u32(optarg, 0, 1000000, &o->rate_limit)) {
				log_error("invalid --rate-limit '%s': expected requests per second "
					  "per client, 0-1000000 (0: no limit)",
					  optarg);
				return -EINVAL;
			}
			break;
		case OPT_RETENTION:
			o->retention = optarg;
			break;
		case OPT_MAX_DISK:
			if (parse_u64(optarg, 0, UINT64_MAX >> 20, &o->max_disk_mb)) {
				log_error("invalid --max-disk '%s': expected megabytes (0: no bound)",
					  optarg);
				return -EINVAL;
			}
			break;
		case 'v':
			o->verbose++;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case OPT_VERSION:
			printf("pysamp-collector %s\n", COLLECTOR_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

static void reply(struct httpd_response *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reply(struct httpd_response *r, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->status = status;
	strbuf_reset(&r->body);
	(void)httpd_response_addf(r, "%s\n", msg);
}

/* Constant-time check of "Bearer TOKEN". */
static bool authorized(const struct collector *c, const struct httpd_request *req)
{
	const char *h;
	size_t n, tn;
	unsigned char diff = 0;

	if (!c->token)
		return true;
	h = httpd_header(req, "Authorization");
	if (!h || strncmp(h, "Bearer ", 7))
		return false;
	h += 7;
	n = strlen(h);
	tn = strlen(c->token);
	if (n != tn)
		return false;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(h[i] ^ c->token[i]);
	return diff == 0;
}

/*
 * Parse and store one profile (name, interval, rate, folded body): the path POST /ingest and
 * --poll share, so both store the same data. Returns the HTTP status (200 stored, 4xx refused,
 * 5xx failed) with the reason in err.
 */
static int store_profile(struct collector *c, const char *name, int64_t from, int64_t until,
			 uint32_t rate, const char *body, size_t len, char *err, size_t errlen)
{
	struct ingest_name n;
	struct stacks *st;
	int e;

	if (ingest_parse_name(name, &n, err, errlen)) {
		c->ingest_rejected++;
		return 400;
	}
	st = stacks__new();
	if (!st) {
		snprintf(err, errlen, "out of memory");
		return 503;
	}
	e = ingest_parse_folded(body ? body : "", len, st, MAX_INGEST_STACKS, err, errlen);
	if (e) {
		c->ingest_rejected++;
		stacks__free(st);
		return e == -ENOMEM ? 503 : e == -E2BIG ? 413 : 400;
	}
	e = store__ingest(c->store, n.app, n.labels, from, until, rate, st);
	if (e) {
		c->ingest_failed++;
		snprintf(err, errlen, "cannot store the profile: %s", strerror(-e));
	} else {
		c->ingested++;
		c->samples += stacks__total(st);
	}
	stacks__free(st);
	return e ? 500 : 200;
}

static int store_polled(void *ctx, const char *name, int64_t from, int64_t until, uint32_t rate,
			const char *body, size_t len, char *err, size_t errlen)
{
	return store_profile(ctx, name, from, until, rate, body, len, err, errlen);
}

static void handle_ingest(struct collector *c, const struct httpd_request *req,
			  struct httpd_response *r)
{
	const char *name = httpd_arg(req, "name"), *fmt = httpd_arg(req, "format"), *v;
	const char *enc = httpd_header(req, "Content-Encoding");
	int64_t now = (int64_t)time(NULL), from = now, until = now;
	uint32_t rate = 100;
	char err[256] = "";
	int e;

	if (strcmp(req->method, "POST")) {
		reply(r, 405, "%s", "POST a profile to /ingest");
		return;
	}
	if (fmt && *fmt && strcmp(fmt, "folded") && strcmp(fmt, "groups")) {
		c->ingest_rejected++;
		reply(r, 415, "format=%.32s is not supported (send format=folded)", fmt);
		return;
	}
	if (enc && *enc && strcmp(enc, "identity")) {
		c->ingest_rejected++;
		reply(r, 415, "Content-Encoding %.32s is not supported", enc);
		return;
	}
	if (((v = httpd_arg(req, "from")) && ingest_parse_time(v, now, &from)) ||
	    ((v = httpd_arg(req, "until")) && ingest_parse_time(v, now, &until)) || until < from) {
		c->ingest_rejected++;
		reply(r, 400, "%s", "from/until: expected Unix seconds or now-N, from <= until");
		return;
	}
	if ((v = httpd_arg(req, "sampleRate")) && parse_u32(v, 0, 1000000, &rate))
		rate = 100; /* as Pyroscope: a bad rate falls back to 100 */
	e = store_profile(c, name, from, until, rate, req->body, req->body_len, err, sizeof(err));
	if (e != 200)
		reply(r, e, "%s", err);
}

static const char *content_type_of(const char *path)
{
	const char *dot = strrchr(path, '.');

	if (!dot || !strcmp(dot, ".html") || !strcmp(path, "/"))
		return "text/html; charset=utf-8";
	if (!strcmp(dot, ".js"))
		return "text/javascript; charset=utf-8";
	if (!strcmp(dot, ".css"))
		return "text/css; charset=utf-8";
	return "application/octet-stream";
}

/*
 * The web UI's files: only the exact paths embedded in the binary exist (no file system, so
 * no traversal); "/index.html" is "/". true when path named one and the reply was made.
 */
static bool serve_asset(const struct httpd_request *req, struct httpd_response *r)
{
	const char *path = strcmp(req->path, "/index.html") ? req->path : "/";

	for (const struct web_asset *a = web_assets; a->path; a++) {
		if (strcmp(a->path, path))
			continue;
		if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) {
			reply(r, 405, "%s", "GET only");
			return true;
		}
		r->content_type = content_type_of(path);
		snprintf(r->extra_headers, sizeof(r->extra_headers),
			 "X-Content-Type-Options: nosniff\r\n"
			 "Cache-Control: %s\r\n",
			 strcmp(path, "/") ? "public, max-age=300" : "no-cache");
		if (httpd_response_add(r, a->data, a->size))
			r->err = -E2BIG;
		return true;
	}
	return false;
}

/* query=APP{k=v,...}, from, until (default: the last hour). 0 or a reply was made. */
static int parse_selection(const struct httpd_request *req, struct httpd_response *r,
			   struct ingest_name *n, int64_t *from, int64_t *until)
{
	const char *q = httpd_arg(req, "query"), *v;
	int64_t now = (int64_t)time(NULL);
	char err[256];

	*from = now - 3600;
	*until = now + 1;
	if (!q) {
		reply(r, 400, "%s", "query=APP{k=v,...} is required");
		return -EINVAL;
	}
	if (ingest_parse_name(q, n, err, sizeof(err))) {
		reply(r, 400, "query: %s", err);
		return -EINVAL;
	}
	if (((v = httpd_arg(req, "from")) && ingest_parse_time(v, now, from)) ||
	    ((v = httpd_arg(req, "until")) && ingest_parse_time(v, now, until))) {
		reply(r, 400, "%s", "from/until: expected Unix seconds or now-N");
		return -EINVAL;
	}
	/* until=now includes the current second (times are whole seconds, until exclusive). */
	if (v && !strcmp(v, "now"))
		(*until)++;
	return 0;
}

/*
 * format= (default folded; chrome needs per-sample times, which the store does not keep),
 * reverse= and width= (svg). 0, or a 400 reply was made.
 */
static int parse_output(const struct httpd_request *req, struct httpd_response *r,
			enum outfmt *f, struct outfmt_ctx *oc)
{
	const char *v = httpd_arg(req, "format"), *rev = httpd_arg(req, "reverse");
	const char *w = httpd_arg(req, "width");

	*f = OUTFMT_FOLDED;
	if (v && *v && (outfmt_parse(v, f) || *f == OUTFMT_CHROME)) {
		reply(r, 400, "format=%.32s: expected folded, json, svg, speedscope or pprof (the "
			      "chrome timeline needs per-sample times: the agent writes it)",
		      v);
		return -EINVAL;
	}
	if (w && parse_u32(w, 100, 100000, &oc->width)) {
		reply(r, 400, "%s", "width: expected 100-100000 (pixels)");
		return -EINVAL;
	}
	oc->reverse = rev && (!strcmp(rev, "1") || !strcmp(rev, "true"));
	oc->title = httpd_arg(req, "query");
	return 0;
}

static void fmt_interval(char *out, size_t outlen, int64_t from, int64_t until)
{
	char a[32] = "?", b[32] = "?";
	time_t ta = (time_t)from, tb = (time_t)until;
	struct tm tm;

	if (gmtime_r(&ta, &tm))
		strftime(a, sizeof(a), "%Y-%m-%d %H:%M:%S", &tm);
	if (gmtime_r(&tb, &tm))
		strftime(b, sizeof(b), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(out, outlen, "%s to %s UTC", a, b);
}

/* Finish a profile reply: a full buffer is httpd's 500-and-say-so, other errors a 500 here. */
static void profile_done(struct httpd_response *r, int e)
{
	if (e == -E2BIG) {
		r->err = e;
	} else if (e) {
		r->content_type = NULL;
		reply(r, 500, "cannot read the profile: %s", strerror(-e));
	}
}

static void handle_render(struct collector *c, const struct httpd_request *req,
			  struct httpd_response *r)
{
	struct outfmt_ctx oc = { 0 };
	struct ingest_name n;
	int64_t from, until;
	struct stacks *st;
	enum outfmt f;
	char sub[96];
	int e;

	if (parse_selection(req, r, &n, &from, &until) || parse_output(req, r, &f, &oc))
		return;
	st = stacks__new();
	e = st ? store__query(c->store, n.app, n.labels[0] ? n.labels : NULL, from, until, st)
	       : -ENOMEM;
	fmt_interval(sub, sizeof(sub), from, until);
	oc.subtitle = sub;
	oc.time_ns = from * 1000000000;
	oc.duration_ns = (until - from) * 1000000000;
	if (!e) {
		r->content_type = f == OUTFMT_FOLDED ? NULL : outfmt_content_type(f);
		e = outfmt_write(f, st, &oc, &r->body);
	}
	profile_done(r, e);
	stacks__free(st);
}

static void reply_json(struct httpd_response *r, json_object *j, int e)
{
	const char *s;

	if (e) {
		reply(r, 500, "cannot read the store: %s", strerror(-e));
	} else {
		s = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
		r->content_type = "application/json";
		(void)httpd_response_addf(r, "%s\n", s);
	}
	json_object_put(j);
}

/* /api/top: functions by self and total samples over the selection (JSON). */
static void handle_top(struct collector *c, const struct httpd_request *req,
		       struct httpd_response *r)
{
	const char *v = httpd_arg(req, "limit");
	struct fn_stat *fs = NULL;
	struct ingest_name n;
	int64_t from, until;
	uint32_t limit = 100;
	struct stacks *st;
	size_t nfs = 0;
	json_object *a;
	int e;

	if (parse_selection(req, r, &n, &from, &until))
		return;
	if (v && parse_u32(v, 1, 100000, &limit)) {
		reply(r, 400, "%s", "limit: expected 1-100000");
		return;
	}
	st = stacks__new();
	e = st ? store__query(c->store, n.app, n.labels[0] ? n.labels : NULL, from, until, st)
	       : -ENOMEM;
	if (!e)
		e = analyze_top(st, &fs, &nfs);
	a = json_object_new_array();
	for (size_t i = 0; !e && i < nfs && i < limit; i++) {
		json_object *o = json_object_new_object();
		size_t len;
		const char *name = stacks__label_bytes(st, fs[i].id, &len);

		json_object_object_add(o, "name", json_object_new_string_len(name, (int)len));
		json_object_object_add(o, "self", json_object_new_int64((int64_t)fs[i].self));
		json_object_object_add(o, "total", json_object_new_int64((int64_t)fs[i].total));
		json_object_array_add(a, o);
	}
	if (!e) /* the selection's total: what percentages are of */
		snprintf(r->extra_headers, sizeof(r->extra_headers),
			 "X-Pysamp-Samples: %" PRIu64 "\r\n", stacks__total(st));
	reply_json(r, a, e);
	free(fs);
	stacks__free(st);
}

/* /api/diff: the differential folded profile of [from, until) against [from2, until2). */
/*
 * /api/diff: [from2, until2) against the baseline [from, until): differential folded
 * (flamegraph.pl's difffolded input), or format=svg, a differential flame graph (widths from the
 * second interval; red: a larger share than in the baseline, blue: smaller).
 */
static void handle_diff(struct collector *c, const struct httpd_request *req,
			struct httpd_response *r)
{
	const char *v1 = httpd_arg(req, "from2"), *v2 = httpd_arg(req, "until2");
	int64_t now = (int64_t)time(NULL), from, until, from2, until2;
	struct stacks *a = NULL, *b = NULL;
	struct outfmt_ctx oc = { 0 };
	struct ingest_name n;
	const char *lm;
	char sub[224], i1[96], i2[96];
	enum outfmt f;
	int e;

	if (parse_selection(req, r, &n, &from, &until) || parse_output(req, r, &f, &oc))
		return;
	if (f != OUTFMT_FOLDED && f != OUTFMT_SVG) {
		reply(r, 400, "%s", "a diff comes as folded (default) or svg");
		return;
	}
	if (!v1 || !v2 || ingest_parse_time(v1, now, &from2) || ingest_parse_time(v2, now, &until2)) {
		reply(r, 400, "%s", "from2= and until2= (the second interval) are required");
		return;
	}
	if (!strcmp(v2, "now"))
		until2++; /* as for until: the current second included */
	lm = n.labels[0] ? n.labels : NULL;
	a = stacks__new();
	b = stacks__new();
	e = a && b ? store__query(c->store, n.app, lm, from, until, a) : -ENOMEM;
	if (!e)
		e = store__query(c->store, n.app, lm, from2, until2, b);
	if (!e && f == OUTFMT_FOLDED) {
		e = analyze_diff_write(a, b, &r->body);
	} else if (!e) {
		fmt_interval(i1, sizeof(i1), from, until);
		fmt_interval(i2, sizeof(i2), from2, until2);
		snprintf(sub, sizeof(sub), "%s against the baseline %s", i2, i1);
		oc.subtitle = sub;
		oc.base = a;
		r->content_type = outfmt_content_type(f);
		e = outfmt_write(f, b, &oc, &r->body);
	}
	profile_done(r, e);
	stacks__free(a);
	stacks__free(b);
}

static int add_series(void *arg, const char *app, const char *labels, int64_t first_s,
		      int64_t last_s, uint64_t samples, uint32_t sample_rate)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "app", json_object_new_string(app));
	json_object_object_add(o, "labels", json_object_new_string(labels));
	json_object_object_add(o, "first", json_object_new_int64(first_s));
	json_object_object_add(o, "last", json_object_new_int64(last_s));
	json_object_object_add(o, "samples", json_object_new_int64((int64_t)samples));
	json_object_object_add(o, "sample_rate", json_object_new_int64(sample_rate));
	json_object_array_add(arg, o);
	return 0;
}

static int add_point(void *arg, int64_t t, int64_t width_s, uint64_t count)
{
	json_object *p = json_object_new_array();

	json_object_array_add(p, json_object_new_int64(t));
	json_object_array_add(p, json_object_new_int64((int64_t)count));
	json_object_array_add(p, json_object_new_int64(width_s));
	json_object_array_add(arg, p);
	return 0;
}

/* ------------------------------------------------------------------ stats */

struct stat_item {
	const char *name; /* Prometheus name without the pysamp_collector_ prefix; JSON key */
	const char *type; /* counter or gauge */
	const char *help;
	uint64_t v;
};

/* Everything /api/stats and /metrics report, in one list. 0 or -errno from store__stats. */
static int collect_stats(struct collector *c, struct store_stats *ss, struct stat_item *it,
			 size_t *n)
{
	const struct httpd_stats *hs = httpd__stats(c->httpd);
	size_t k = 0;
	int e = store__stats(c->store, ss);

	if (e)
		return e;
#define ITEM(nm, ty, hl, val) it[k++] = (struct stat_item){ nm, ty, hl, (uint64_t)(val) }
	ITEM("profiles_stored_total", "counter", "profiles stored (ingest and poll)", c->ingested);
	ITEM("samples_stored_total", "counter", "samples in the profiles stored", c->samples);
	ITEM("profiles_rejected_total", "counter", "profiles refused as malformed (4xx)",
	     c->ingest_rejected);
	ITEM("profiles_failed_total", "counter", "profiles the store could not write (5xx)",
	     c->ingest_failed);
	ITEM("unauthorized_total", "counter", "requests without the right token", c->unauthorized);
	ITEM("rate_limited_total", "counter", "requests refused by --rate-limit (429)", c->limited);
	ITEM("http_requests_total", "counter", "HTTP requests read", hs->requests);
	ITEM("http_responses_2xx_total", "counter", "HTTP 2xx responses", hs->responses_2xx);
	ITEM("http_responses_4xx_total", "counter", "HTTP 4xx responses", hs->responses_4xx);
	ITEM("http_responses_5xx_total", "counter", "HTTP 5xx responses", hs->responses_5xx);
	ITEM("db_file_bytes", "gauge", "database and WAL files on disk", ss->file_bytes);
	ITEM("db_live_bytes", "gauge", "pages in use in the database", ss->live_bytes);
	ITEM("db_free_pages", "gauge", "free pages in the database file", ss->free_pages);
	ITEM("db_max_bytes", "gauge", "the --max-disk bound (0: none)", ss->max_bytes);
	ITEM("series", "gauge", "series stored", ss->series);
	ITEM("stacks", "gauge", "distinct stacks stored", ss->stacks);
	ITEM("frames", "gauge", "distinct frames stored", ss->frames);
	ITEM("dropped_samples_total", "counter",
	     "samples deleted to keep the database under --max-disk (ever)", ss->dropped_samples);
	ITEM("downsampled_rows_total", "counter", "buckets merged into a coarser tier",
	     ss->moved_rows);
	ITEM("expired_rows_total", "counter", "buckets deleted past the last tier's keep",
	     ss->expired_rows);
	ITEM("trimmed_rows_total", "counter", "buckets deleted by --max-disk", ss->trimmed_rows);
	ITEM("compaction_failures_total", "counter", "compaction steps that failed",
	     c->compact_failed);
	ITEM("vacuumed_pages_total", "counter", "pages handed back to the file system",
	     ss->vacuumed_pages);
	ITEM("rollups", "gauge", "hour rollups stored (pre-aggregated hours of a series)",
	     ss->rollups);
	ITEM("rollup_bytes", "gauge", "bytes of the rollups' blobs", ss->rollup_bytes);
	ITEM("rollup_queue", "gauge", "hours waiting for their rollup", ss->rollup_queue);
#undef ITEM
	*n = k;
	return 0;
}

#define MAX_STAT_ITEMS 32

static void handle_stats(struct collector *c, struct httpd_response *r, bool prometheus)
{
	struct stat_item it[MAX_STAT_ITEMS];
	struct store_stats ss;
	json_object *o, *tiers;
	size_t n = 0;
	int e = collect_stats(c, &ss, it, &n);

	if (e) {
		reply(r, 500, "cannot read the store's statistics: %s", strerror(-e));
		return;
	}
	if (prometheus) {
		r->content_type = "text/plain; version=0.0.4; charset=utf-8";
		for (size_t i = 0; i < n; i++)
			(void)httpd_response_addf(r, "# HELP pysamp_collector_%s %s\n"
					     "# TYPE pysamp_collector_%s %s\n"
					     "pysamp_collector_%s %" PRIu64 "\n",
					     it[i].name, it[i].help, it[i].name, it[i].type,
					     it[i].name, it[i].v);
		(void)httpd_response_addf(r, "# HELP pysamp_collector_tier_samples samples stored "
				     "per retention tier (bucket width in seconds)\n"
				     "# TYPE pysamp_collector_tier_samples gauge\n");
		for (size_t i = 0; i < ss.ntiers; i++)
			(void)httpd_response_addf(r,
					     "pysamp_collector_tier_samples{width=\"%" PRId64
					     "\"} %" PRIu64 "\n",
					     ss.tiers[i].width_s, ss.tiers[i].samples);
		return;
	}
	o = json_object_new_object();
	for (size_t i = 0; i < n; i++)
		json_object_object_add(o, it[i].name, json_object_new_int64((int64_t)it[i].v));
	tiers = json_object_new_array();
	for (size_t i = 0; i < ss.ntiers; i++) {
		json_object *t = json_object_new_object();

		json_object_object_add(t, "width", json_object_new_int64(ss.tiers[i].width_s));
		json_object_object_add(t, "keep", json_object_new_int64(ss.tiers[i].keep_s));
		json_object_object_add(t, "buckets", json_object_new_int64((int64_t)ss.tiers[i].rows));
		json_object_object_add(t, "samples",
				       json_object_new_int64((int64_t)ss.tiers[i].samples));
		json_object_array_add(tiers, t);
	}
	json_object_object_add(o, "tiers", tiers);
	reply_json(r, o, 0);
}


/* The host part of --listen for a URL people can open: the wildcard and no address mean here. */
static void ui_host(const char *listen, char *out, size_t outlen)
{
	const char *colon = strrchr(listen, ':');
	size_t n = colon ? (size_t)(colon - listen) : 0;

	if (!n || (n == 7 && !strncmp(listen, "0.0.0.0", 7)) || (n == 4 && !strncmp(listen, "[::]", 4)))
		snprintf(out, outlen, "127.0.0.1");
	else
		snprintf(out, outlen, "%.*s", (int)n, listen);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void handle(void *ctx, const struct httpd_request *req, struct httpd_response *r)
{
	struct collector *c = ctx;
	bool ingest = !strcmp(req->path, "/ingest") || !strcmp(req->path, "/pyroscope/ingest");

	if (c->o.verbose)
		log_info("%s %s %s", req->peer, req->method, req->path);
	if (!strcmp(req->path, "/healthz")) {
		reply(r, 200, "%s", "ok");
		return;
	}
	if (serve_asset(req, r))
		return;
	if (c->limit) {
		char host[64];
		uint32_t retry = 1;

		ratelimit_peer_host(req->peer, host, sizeof(host));
		if (!ratelimit__take(c->limit, host, now_ms(), &retry)) {
			c->limited++;
			reply(r, 429, "too many requests from %s: at most %u per second", host,
			      c->o.rate_limit);
			snprintf(r->extra_headers, sizeof(r->extra_headers), "Retry-After: %u\r\n",
				 retry);
			return;
		}
	}
	if (!authorized(c, req)) {
		c->unauthorized++;
		reply(r, 401, "%s", "a valid 'Authorization: Bearer TOKEN' is required");
		return;
	}
	if (ingest) {
		handle_ingest(c, req, r);
	} else if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) {
		reply(r, 405, "%s", "only /ingest takes POST");
	} else if (!strcmp(req->path, "/render")) {
		handle_render(c, req, r);
	} else if (!strcmp(req->path, "/api/top")) {
		handle_top(c, req, r);
	} else if (!strcmp(req->path, "/api/diff")) {
		handle_diff(c, req, r);
	} else if (!strcmp(req->path, "/api/series")) {
		json_object *a = json_object_new_array();

		reply_json(r, a, store__series(c->store, add_series, a));
	} else if (!strcmp(req->path, "/api/timeline")) {
		const char *v = httpd_arg(req, "step");
		struct ingest_name n;
		int64_t from, until, step, unit;
		uint32_t st;
		json_object *a;

		if (parse_selection(req, r, &n, &from, &until))
			return;
		/* step=S seconds per point; default: about 1000 points, whole 10 s buckets */
		if (v && parse_u32(v, 1, 366 * 86400, &st)) {
			reply(r, 400, "%s", "step: expected seconds per point, 1-31622400");
			return;
		}
		step = v ? (int64_t)st : (until - from + 999) / 1000;
		/* whole buckets; past a minute whole minutes, past an hour whole hours (the store
		 * answers those from its per-minute and hourly totals) */
		unit = step > 3600 ? 3600 : step > 60 ? 60 : STORE_BUCKET_S;
		if (!v)
			step = (step + unit - 1) / unit * unit;
		a = json_object_new_array();
		reply_json(r, a,
			   store__timeline_step(c->store, n.app, n.labels[0] ? n.labels : NULL, from,
						until, step, add_point, a));
	} else if (!strcmp(req->path, "/api/stats")) {
		handle_stats(c, r, false);
	} else if (!strcmp(req->path, "/metrics")) {
		handle_stats(c, r, true);
	} else {
		reply(r, 404, "%s", "not found: /, /ingest, /render, /api/series, /api/timeline, "
			       "/api/top, /api/diff, /api/stats, /metrics, /healthz");
	}
}

int main(int argc, char **argv)
{
	struct collector c;
	struct httpd_opts ho = { 0 };
	struct sigaction sa;
	struct store_tier tiers[STORE_MAX_TIERS];
	char err[512] = "", host[128];
	size_t ntiers = 0;
	int64_t next_compact = 0;
	bool more = false;
	int e, status = 1;

	memset(&c, 0, sizeof(c));
	log_set_prog("pysamp-collector");
	e = parse_args(argc, argv, &c.o);
	if (e)
		return 1;
	log_set_level(c.o.verbose >= 2 ? LOG_DEBUG : c.o.verbose ? LOG_INFO : LOG_WARN);
	if (c.o.token_file && (e = token_read_file(c.o.token_file, TOKEN_MAX, &c.token))) {
		log_error("--token-file %s: %s", c.o.token_file,
			  e == -EINVAL ? "empty or invalid token (one line, no spaces)" : strerror(-e));
		return 1;
	}
	if (c.o.rate_limit) {
		c.limit = ratelimit__new(c.o.rate_limit, 2.0 * c.o.rate_limit, RATE_CLIENTS);
		if (!c.limit) {
			log_error("out of memory");
			goto out;
		}
	}
	if (store_parse_retention(c.o.retention, tiers, STORE_MAX_TIERS, &ntiers, err,
				  sizeof(err))) {
		log_error("invalid --retention '%s': %s", c.o.retention, err);
		goto out;
	}
	c.store = store__open(c.o.data_dir, err, sizeof(err));
	if (!c.store) {
		log_error("--data-dir %s: %s", c.o.data_dir, err);
		goto out;
	}
	if ((e = store__set_retention(c.store, tiers, ntiers)) ||
	    (e = store__set_max_bytes(c.store, c.o.max_disk_mb << 20))) {
		log_error("cannot apply --retention/--max-disk: %s", strerror(-e));
		goto out;
	}
	ho.listen = c.o.listen;
	ho.handler = handle;
	ho.ctx = &c;
	ho.max_body_bytes = (size_t)c.o.max_body_mb << 20;
	c.httpd = httpd__new(&ho, err, sizeof(err));
	if (!c.httpd) {
		log_error("--listen %s: %s", c.o.listen, err);
		goto out;
	}
	if (c.o.poll) {
		c.poller = poller__new(c.o.poll, c.o.poll_interval_s, store_polled, &c, err,
				       sizeof(err));
		if (!c.poller) {
			log_error("--poll: %s", err);
			goto out;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	ui_host(c.o.listen, host, sizeof(host));
	fprintf(stderr, "pysamp-collector: listening on port %u, data in %s; web UI: http://%s:%u/\n",
		httpd__port(c.httpd), c.o.data_dir, host, httpd__port(c.httpd));
	while (!exiting) {
		/* Sleep until there is network work (or a timer is due); signals wake us too. */
		struct pollfd pfd = { .fd = httpd__wait_fd(c.httpd), .events = POLLIN };
		int wait = 200;

		if (c.poller)
			wait = poller__run(c.poller);
		/* Downsampling, expiry and the disk bound, a bounded step at a time. */
		if (more || (int64_t)time(NULL) >= next_compact) {
			e = store__compact(c.store, (int64_t)time(NULL), COMPACT_ROWS, &more);
			if (e) {
				c.compact_failed++;
				more = false;
			}
			next_compact = (int64_t)time(NULL) + 1;
			if (more)
				wait = 0;
		}
		e = httpd__poll(c.httpd);
		if (e) {
			log_error("serving failed: %s", strerror(-e));
			break;
		}
		if (pfd.fd >= 0)
			(void)poll(&pfd, 1, httpd__timeout_ms(c.httpd, wait < 200 ? wait : 200));
		else
			(void)poll(NULL, 0, 5);
	}
	fprintf(stderr,
		"pysamp-collector: %llu profiles stored (%llu samples), %llu rejected, %llu failed, "
		"%llu unauthorized, %llu over the rate limit\n",
		(unsigned long long)c.ingested, (unsigned long long)c.samples,
		(unsigned long long)c.ingest_rejected, (unsigned long long)c.ingest_failed,
		(unsigned long long)c.unauthorized, (unsigned long long)c.limited);
	if (c.poller)
		fprintf(stderr, "pysamp-collector: pulled %llu profiles (%llu refused), %llu failed polls\n",
			(unsigned long long)poller__stats(c.poller)->items,
			(unsigned long long)poller__stats(c.poller)->refused,
			(unsigned long long)poller__stats(c.poller)->errors);
	status = 0;
out:
	poller__free(c.poller);
	httpd__free(c.httpd);
	store__free(c.store);
	ratelimit__free(c.limit);
	free(c.token);
	return status;
}
