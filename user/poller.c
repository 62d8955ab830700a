/* SPDX-License-Identifier: BSD-2-Clause */
/* poller.c - fetch agents' GET /export with libcurl multi. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "log.h"
#include "poller.h"
#include "util.h"

#define MAX_AGENTS	64
#define MAX_ANSWER	((size_t)256 << 20)
#define POLL_TIMEOUT_MS 30000

struct agent_src {
	char url[512];
	CURL *easy;	   /* in flight, or NULL */
	struct strbuf buf; /* the answer so far */
	int64_t since;	   /* ask from here (Unix seconds): where the last answer ended */
	int64_t due_ms;
	bool failing;
};

struct poller {
	CURLM *multi;
	struct agent_src *v;
	size_t n;
	uint32_t interval_ms;
	poller_item_fn fn;
	void *ctx;
	struct poller_stats st;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct strbuf *b = arg;

	return strbuf_add(b, data, size * nmemb) ? 0 : size * nmemb; /* 0 aborts the transfer */
}

struct poller *poller__new(const char *urls, uint32_t interval_s, poller_item_fn fn, void *ctx,
			   char *err, size_t errlen)
{
	struct poller *p = calloc(1, sizeof(*p));
	const char *s = urls;

	if (!p || curl_global_init(CURL_GLOBAL_DEFAULT)) {
		free(p);
		set_errf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	p->v = calloc(MAX_AGENTS, sizeof(*p->v));
	p->multi = curl_multi_init();
	p->interval_ms = interval_s * 1000;
	p->fn = fn;
	p->ctx = ctx;
	if (!p->v || !p->multi) {
		set_errf(err, errlen, "out of memory");
		goto fail;
	}
	while (s && *s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		struct agent_src *a = &p->v[p->n];

		if (p->n == MAX_AGENTS || !len || len >= sizeof(a->url) - 1 ||
		    (strncmp(s, "http://", 7) && strncmp(s, "https://", 8))) {
			set_errf(err, errlen, "'%.*s': expected http[s]://HOST:PORT (at most %d agents)",
				 (int)(len > 80 ? 80 : len), s, MAX_AGENTS);
			goto fail;
		}
		memcpy(a->url, s, len);
		while (len && a->url[len - 1] == '/')
			len--;
		a->url[len] = '\0';
		strbuf_init(&a->buf, MAX_ANSWER);
		p->n++;
		s = comma ? comma + 1 : NULL;
	}
	if (!p->n) {
		set_errf(err, errlen, "no agent URL");
		goto fail;
	}
	return p;
fail:
	poller__free(p);
	errno = EINVAL;
	return NULL;
}

void poller__free(struct poller *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		if (p->v[i].easy) {
			curl_multi_remove_handle(p->multi, p->v[i].easy);
			curl_easy_cleanup(p->v[i].easy);
		}
		strbuf_release(&p->v[i].buf);
	}
	if (p->multi)
		curl_multi_cleanup(p->multi);
	free(p->v);
	free(p);
}

static void start(struct poller *p, struct agent_src *a)
{
	char url[640];

	snprintf(url, sizeof(url), "%s/export?from=%" PRId64, a->url, a->since);
	strbuf_reset(&a->buf);
	a->easy = curl_easy_init();
	if (!a->easy)
		return;
	curl_easy_setopt(a->easy, CURLOPT_URL, url);
	curl_easy_setopt(a->easy, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(a->easy, CURLOPT_WRITEDATA, &a->buf);
	curl_easy_setopt(a->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(a->easy, CURLOPT_TIMEOUT_MS, (long)POLL_TIMEOUT_MS);
	curl_easy_setopt(a->easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(a->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(a->easy, CURLOPT_PRIVATE, a);
	if (curl_multi_add_handle(p->multi, a->easy) != CURLM_OK) {
		curl_easy_cleanup(a->easy);
		a->easy = NULL;
	}
}

static int64_t json_int(json_object *o, const char *key, bool *ok)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int)) {
		*ok = false;
		return 0;
	}
	return json_object_get_int64(v);
}

static const char *json_str(json_object *o, const char *key, size_t *len, bool *ok)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string)) {
		*ok = false;
		return NULL;
	}
	*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

/* Store every line of a's answer; returns false when it was malformed. */
static bool consume(struct poller *p, struct agent_src *a)
{
	const char *s = a->buf.buf ? a->buf.buf : "", *end = s + a->buf.len;
	int64_t last = a->since;
	bool good = true;

	while (s < end && good) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t ll = nl ? (size_t)(nl - s) : (size_t)(end - s);
		json_tokener *tok = json_tokener_new();
		json_object *o = tok ? json_tokener_parse_ex(tok, s, (int)ll) : NULL;
		size_t nlen = 0, blen = 0;
		const char *name, *body;
		int64_t from, until, rate;
		char err[256] = "";

		if (tok)
			json_tokener_free(tok);
		if (!ll) {
			/* an empty line (the end of the answer) */
		} else if (!o || !json_object_is_type(o, json_type_object)) {
			good = false;
		} else {
			name = json_str(o, "name", &nlen, &good);
			body = json_str(o, "body", &blen, &good);
			from = json_int(o, "from", &good);
			until = json_int(o, "until", &good);
			rate = json_int(o, "sampleRate", &good);
			if (good && (from < 0 || until < from || rate < 0 || rate > 1000000))
				good = false;
			if (good) {
				if (p->fn(p->ctx, name, from, until, (uint32_t)rate, body, blen, err,
					  sizeof(err)) == 200) {
					p->st.items++;
				} else {
					p->st.refused++;
					log_warn("poll %s: item '%s' refused: %s", a->url, name, err);
				}
				if (until > last)
					last = until;
			}
		}
		json_object_put(o);
		s += ll + (nl ? 1 : 0);
	}
	a->since = last;
	return good;
}

int poller__run(struct poller *p)
{
	int64_t now = mono_ms(), wait = 1000;
	int running = 0, left;
	CURLMsg *m;

	curl_multi_perform(p->multi, &running);
	while ((m = curl_multi_info_read(p->multi, &left))) {
		struct agent_src *a = NULL;
		long status = 0;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&a);
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		if (m->data.result == CURLE_OK && status == 200 && consume(p, a)) {
			p->st.polls++;
			if (a->failing)
				log_info("poll %s: answering again", a->url);
			a->failing = false;
		} else {
			p->st.errors++;
			if (!a->failing)
				log_warn("poll %s: %s (status %ld); retrying every interval", a->url,
					 m->data.result == CURLE_OK ? "bad answer"
								    : curl_easy_strerror(m->data.result),
					 status);
			a->failing = true;
		}
		curl_multi_remove_handle(p->multi, a->easy);
		curl_easy_cleanup(a->easy);
		a->easy = NULL;
		a->due_ms = now + p->interval_ms;
	}
	for (size_t i = 0; i < p->n; i++) {
		struct agent_src *a = &p->v[i];

		if (a->easy) {
			wait = 20; /* a transfer is on: come back soon */
			continue;
		}
		if (a->due_ms <= now) {
			start(p, a);
			wait = 20;
		} else if (a->due_ms - now < wait) {
			wait = a->due_ms - now;
		}
	}
	if (running || wait < 0)
		wait = wait < 20 ? wait : 20;
	return (int)(wait < 0 ? 0 : wait);
}

const struct poller_stats *poller__stats(const struct poller *p)
{
	return &p->st;
}
