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
#include "poller.h"
#include "stacks.h"
#include "store.h"
#include "util.h"

#define COLLECTOR_VERSION "0.1.0"
#define DEFAULT_LISTEN	  "127.0.0.1:4040"
#define DEFAULT_DATA_DIR  "pysamp-data"
#define DEFAULT_MAX_BODY  16 /* MB */
#define MAX_INGEST_STACKS 100000
#define TOKEN_MAX	  512

static volatile sig_atomic_t exiting;

struct collector_opts {
	const char *listen;
	const char *data_dir;
	const char *token_file;
	uint32_t max_body_mb;
	const char *poll;
	uint32_t poll_interval_s;
	int verbose;
};

struct collector {
	struct collector_opts o;
	struct store *store;
	struct httpd *httpd;
	struct poller *poller; /* --poll, or NULL */
	char token[TOKEN_MAX]; /* "" = no token required */
	uint64_t ingested, ingest_rejected, ingest_failed, unauthorized, samples;
};

static void on_signal(int sig)
{
	(void)sig;
	exiting = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pysamp-collector [--listen [ADDR:]PORT] [--data-dir DIR] [--token-file F]\n"
		"                        [--max-body MB] [--poll URL[,URL...]] [-v]\n"
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
		"  -v, --verbose         log every request; -vv debug\n"
		"  -h, --help            this help\n"
		"      --version         print the version\n"
		"\n"
		"Endpoints:\n"
		"  POST /ingest?name=APP.cpu{k=v,...}&from=T&until=T&format=folded   store a profile\n"
		"  GET  /render?query=APP{k=v,...}&from=T&until=T   merged folded stacks (T: Unix\n"
		"       seconds, or now, now-1h, ...; labels in the query must all match)\n"
		"  GET  /api/series                     every series (JSON)\n"
		"  GET  /api/timeline?query=...&from=&until=   samples per 10 s bucket (JSON)\n"
		"  GET  /api/top?query=...&from=&until=[&limit=N]   functions by self/total (JSON)\n"
		"  GET  /api/diff?query=...&from=&until=&from2=&until2=   differential folded\n"
		"       (flamegraph.pl input: 'stack COUNT_1 COUNT_2')\n"
		"  GET  /healthz\n",
		DEFAULT_LISTEN, DEFAULT_DATA_DIR, DEFAULT_MAX_BODY);
}

static int parse_args(int argc, char **argv, struct collector_opts *o)
{
	enum { OPT_LISTEN = 256, OPT_DATA, OPT_TOKEN, OPT_MAX_BODY, OPT_VERSION, OPT_POLL,
	       OPT_POLL_INTERVAL };
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "data-dir", required_argument, NULL, OPT_DATA },
		{ "token-file", required_argument, NULL, OPT_TOKEN },
		{ "max-body", required_argument, NULL, OPT_MAX_BODY },
		{ "poll", required_argument, NULL, OPT_POLL },
		{ "poll-interval", required_argument, NULL, OPT_POLL_INTERVAL },
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

static int read_token(const char *path, char *out, size_t outlen)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -errno;
	if (!fgets(out, (int)outlen, f))
		out[0] = '\0';
	fclose(f);
	n = strcspn(out, "\r\n");
	out[n] = '\0';
	while (n && (out[n - 1] == ' ' || out[n - 1] == '\t'))
		out[--n] = '\0';
	return n ? 0 : -EINVAL;
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

	if (!c->token[0])
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

static void handle_render(struct collector *c, const struct httpd_request *req,
			  struct httpd_response *r)
{
	const char *fmt = httpd_arg(req, "format");
	struct ingest_name n;
	int64_t from, until;
	struct stacks *st;
	int e;

	if (parse_selection(req, r, &n, &from, &until))
		return;
	if (fmt && strcmp(fmt, "folded")) {
		reply(r, 400, "format=%.32s: only folded for now", fmt);
		return;
	}
	st = stacks__new();
	e = st ? store__query(c->store, n.app, n.labels[0] ? n.labels : NULL, from, until, st)
	       : -ENOMEM;
	if (!e)
		e = folded_write_buf(st, &r->body);
	if (e == -E2BIG)
		r->err = e;
	else if (e)
		reply(r, 500, "cannot read the profile: %s", strerror(-e));
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
	reply_json(r, a, e);
	free(fs);
	stacks__free(st);
}

/* /api/diff: the differential folded profile of [from, until) against [from2, until2). */
static void handle_diff(struct collector *c, const struct httpd_request *req,
			struct httpd_response *r)
{
	const char *v1 = httpd_arg(req, "from2"), *v2 = httpd_arg(req, "until2");
	int64_t now = (int64_t)time(NULL), from, until, from2, until2;
	struct stacks *a = NULL, *b = NULL;
	struct ingest_name n;
	const char *lm;
	int e;

	if (parse_selection(req, r, &n, &from, &until))
		return;
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
	if (!e)
		e = analyze_diff_write(a, b, &r->body);
	if (e == -E2BIG)
		r->err = e;
	else if (e)
		reply(r, 500, "cannot read the profiles: %s", strerror(-e));
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

static int add_point(void *arg, int64_t t, uint64_t count)
{
	json_object *p = json_object_new_array();

	json_object_array_add(p, json_object_new_int64(t));
	json_object_array_add(p, json_object_new_int64((int64_t)count));
	json_object_array_add(arg, p);
	return 0;
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
		struct ingest_name n;
		int64_t from, until;
		json_object *a;

		if (parse_selection(req, r, &n, &from, &until))
			return;
		a = json_object_new_array();
		reply_json(r, a,
			   store__timeline(c->store, n.app, n.labels[0] ? n.labels : NULL, from,
					   until, add_point, a));
	} else {
		reply(r, 404, "%s", "not found: /ingest, /render, /api/series, /api/timeline, /api/top, "
			       "/api/diff, /healthz");
	}
}

int main(int argc, char **argv)
{
	struct collector c;
	struct httpd_opts ho = { 0 };
	struct sigaction sa;
	char err[512] = "";
	int e;

	memset(&c, 0, sizeof(c));
	log_set_prog("pysamp-collector");
	e = parse_args(argc, argv, &c.o);
	if (e)
		return 1;
	log_set_level(c.o.verbose >= 2 ? LOG_DEBUG : c.o.verbose ? LOG_INFO : LOG_WARN);
	if (c.o.token_file && (e = read_token(c.o.token_file, c.token, sizeof(c.token)))) {
		log_error("--token-file %s: %s", c.o.token_file,
			  e == -EINVAL ? "empty token" : strerror(-e));
		return 1;
	}
	c.store = store__open(c.o.data_dir, err, sizeof(err));
	if (!c.store) {
		log_error("--data-dir %s: %s", c.o.data_dir, err);
		return 1;
	}
	ho.listen = c.o.listen;
	ho.handler = handle;
	ho.ctx = &c;
	ho.max_body_bytes = (size_t)c.o.max_body_mb << 20;
	c.httpd = httpd__new(&ho, err, sizeof(err));
	if (!c.httpd) {
		log_error("--listen %s: %s", c.o.listen, err);
		store__free(c.store);
		return 1;
	}
	if (c.o.poll) {
		c.poller = poller__new(c.o.poll, c.o.poll_interval_s, store_polled, &c, err,
				       sizeof(err));
		if (!c.poller) {
			log_error("--poll: %s", err);
			httpd__free(c.httpd);
			store__free(c.store);
			return 1;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "pysamp-collector: listening on port %u, data in %s\n",
		httpd__port(c.httpd), c.o.data_dir);
	while (!exiting) {
		/* Sleep until there is network work (or a timer is due); signals wake us too. */
		struct pollfd pfd = { .fd = httpd__wait_fd(c.httpd), .events = POLLIN };
		int wait = 200;

		if (c.poller)
			wait = poller__run(c.poller);
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
		"%llu unauthorized\n",
		(unsigned long long)c.ingested, (unsigned long long)c.samples,
		(unsigned long long)c.ingest_rejected, (unsigned long long)c.ingest_failed,
		(unsigned long long)c.unauthorized);
	if (c.poller)
		fprintf(stderr, "pysamp-collector: pulled %llu profiles (%llu refused), %llu failed polls\n",
			(unsigned long long)poller__stats(c.poller)->items,
			(unsigned long long)poller__stats(c.poller)->refused,
			(unsigned long long)poller__stats(c.poller)->errors);
	poller__free(c.poller);
	httpd__free(c.httpd);
	store__free(c.store);
	return 0;
}
