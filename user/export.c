/* SPDX-License-Identifier: BSD-2-Clause */
/* export.c - sealed windows to Pyroscope ingest items. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "export.h"
#include "folded.h"
#include "log.h"

#define MAX_STACKS_PER_ITEM 15000     /* Pyroscope rejects profiles of more than 16,000 */
#define MAX_LINE_BYTES	    (60 << 10) /* its reader stops at a 64 KiB line */
#define MAX_BODY_BYTES	    (4 << 20)  /* and rejects bodies over 4 MiB */

static void sanitise(const char *in, char *out, size_t outlen)
{
	size_t n = 0;

	for (; *in && n + 1 < outlen; in++) {
		unsigned char c = (unsigned char)*in;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '_' || c == '.' || c == '-' || c == ':' || c == '/';

		out[n++] = ok ? (char)c : '_';
	}
	out[n] = '\0';
}

void export_init(struct export *e, const struct export_opts *o)
{
	memset(e, 0, sizeof(*e));
	e->o = *o;
	sanitise(o->host ? o->host : "unknown", e->host, sizeof(e->host));
	if (!e->host[0])
		snprintf(e->host, sizeof(e->host), "unknown");
}

int export_check_label(const char *kv, char *err, size_t errlen)
{
	const char *eq = strchr(kv, '=');
	size_t klen = eq ? (size_t)(eq - kv) : 0, vlen;

	if (!eq || !klen) {
		snprintf(err, errlen, "label '%s': expected KEY=VALUE", kv);
		return -EINVAL;
	}
	for (size_t i = 0; i < klen; i++) {
		char c = kv[i];

		if (!((c >= 'a' && c <= 'z') || c == '_' || (i && c >= '0' && c <= '9'))) {
			snprintf(err, errlen, "label '%s': the key must match [a-z_][a-z0-9_]*", kv);
			return -EINVAL;
		}
	}
	if ((klen == 4 && !strncmp(kv, "host", 4)) || (klen == 10 && !strncmp(kv, "py_version", 10)) ||
	    (klen == 9 && !strncmp(kv, "container", 9)) || (klen >= 2 && !strncmp(kv, "__", 2))) {
		snprintf(err, errlen, "label '%.*s' is reserved", (int)klen, kv);
		return -EINVAL;
	}
	vlen = strlen(eq + 1);
	if (!vlen || vlen > 128 || strspn(eq + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
						  "0123456789_.:/-") != vlen) {
		snprintf(err, errlen, "label '%s': the value must be 1-128 of [A-Za-z0-9_.:/-]", kv);
		return -EINVAL;
	}
	return 0;
}

int export_series_name(const struct export *e, const struct series_meta *m, char *out,
		       size_t outlen)
{
	struct strbuf sb;
	char app[SERIES_APP_MAX];
	int err;

	sanitise(m->app, app, sizeof(app));
	strbuf_init(&sb, outlen - 1);
	err = strbuf_addf(&sb, "%s.cpu{host=%s,py_version=%s", app[0] ? app : "python", e->host,
			  m->python[0] ? m->python : "unknown");
	if (!err && m->container[0])
		err = strbuf_addf(&sb, ",container=%.12s", m->container);
	for (size_t i = 0; !err && i < e->o.nlabels; i++)
		err = strbuf_addf(&sb, ",%s", e->o.labels[i]);
	if (!err)
		err = strbuf_add(&sb, "}", 1);
	if (!err)
		memcpy(out, sb.buf, sb.len + 1);
	strbuf_release(&sb);
	return err;
}

static bool same_group(const struct series_meta *a, const struct series_meta *b)
{
	return !strcmp(a->app, b->app) && !strcmp(a->python, b->python) &&
	       !strcmp(a->container, b->container);
}

static bool match_group(const struct series_meta *m, void *arg)
{
	return same_group(m, arg);
}

/* The body of one group, inside Pyroscope's limits. 0 or -errno. */
static int build_body(struct export *e, const struct window *w, const struct series_meta *key,
		      struct strbuf *body)
{
	struct window_query q = { .group = WINDOW_GROUP_NONE, .match = match_group,
				  .arg = (void *)key };
	struct stacks *all = stacks__new(), *top = NULL;
	size_t keep = MAX_STACKS_PER_ITEM;
	int err;

	if (!all)
		return -ENOMEM;
	err = window__query(w, &q, all);
	while (!err) {
		const struct stacks *src = all;

		if (stacks__nstacks(all) > keep) {
			uint64_t ps = 0;

			stacks__free(top);
			top = stacks__new();
			if (!top) {
				err = -ENOMEM;
				break;
			}
			err = window_stacks_topk(all, keep, 0, top, &ps, NULL);
			if (err)
				break;
			e->pruned_stacks += ps;
			src = top;
		}
		strbuf_reset(body);
		err = folded_write_buf_capped(src, body, MAX_LINE_BYTES);
		if (err != -E2BIG || keep < 64)
			break;
		keep /= 2; /* over 4 MiB: fewer, and so more common, stacks */
		err = 0;
	}
	stacks__free(all);
	stacks__free(top);
	return err;
}

void export_window(struct export *e, const struct window *w)
{
	if (e->o.enqueue)
		export_window_to(e, w, e->o.enqueue, e->o.ctx);
}

void export_window_to(struct export *e, const struct window *w, export_enqueue_fn fn, void *ctx)
{
	struct strbuf body;
	char name[1024];

	strbuf_init(&body, MAX_BODY_BYTES);
	for (size_t i = 0; i < w->nseries; i++) {
		const struct series_meta *m = &w->series[i].m;
		struct push_item it;
		bool seen = false;
		int err;

		for (size_t j = 0; j < i && !seen; j++)
			seen = same_group(&w->series[j].m, m);
		if (seen)
			continue;
		err = build_body(e, w, m, &body);
		if (!err)
			err = export_series_name(e, m, name, sizeof(name));
		if (err) {
			log_warn("push: cannot build the profile of '%s': %s", m->app, strerror(-err));
			e->enqueue_failures++;
			continue;
		}
		if (!body.len)
			continue;
		it = (struct push_item){
			.name = name,
			.from_s = (uint64_t)(w->from_ms / 1000),
			.until_s = (uint64_t)((w->until_ms + 999) / 1000),
			.sample_rate = e->o.sample_rate,
			.body = body.buf,
			.len = body.len,
		};
		if (fn(ctx, &it))
			e->enqueue_failures++;
		else
			e->items++;
	}
	e->windows++;
	strbuf_release(&body);
}
