/* SPDX-License-Identifier: BSD-2-Clause */
/* trace.c - time-ordered samples and the Chrome/Perfetto Trace Event writer. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "framelabel.h"
#include "trace.h"

struct tsample {
	uint64_t ts;
	uint32_t pid, tid;
	uint32_t stack; /* ref in t->st */
};

struct trace {
	struct stacks *st; /* own labels and stacks (root first) */
	struct tsample *v;
	size_t n, cap, max;
	uint64_t dropped;
	uint32_t *ids; /* scratch for trace__add */
	size_t ids_cap;
};

struct trace *trace__new(size_t max_samples)
{
	struct trace *t;

	if (!max_samples) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->st = stacks__new();
	if (!t->st) {
		free(t);
		return NULL;
	}
	t->max = max_samples;
	return t;
}

void trace__free(struct trace *t)
{
	if (!t)
		return;
	stacks__free(t->st);
	free(t->v);
	free(t->ids);
	free(t);
}

size_t trace__samples(const struct trace *t)
{
	return t->n;
}

uint64_t trace__dropped(const struct trace *t)
{
	return t->dropped;
}

int trace__add(struct trace *t, uint64_t ts_ns, uint32_t pid, uint32_t tid,
	       const struct stacks *src, uint32_t root, const uint32_t *frames, size_t nframes)
{
	size_t n = nframes + 1;
	uint32_t ref;
	int err;

	if (t->n >= t->max) {
		t->dropped++;
		return 0;
	}
	if (n > t->ids_cap) {
		uint32_t *v = realloc(t->ids, n * sizeof(*v));

		if (!v)
			goto nomem;
		t->ids = v;
		t->ids_cap = n;
	}
	for (size_t i = 0; i < n; i++) {
		size_t len;
		const char *l = stacks__label_bytes(src, i ? frames[i - 1] : root, &len);

		if (!l)
			return -EINVAL;
		err = stacks__intern(t->st, l, len, &t->ids[i]);
		if (err)
			goto fail;
	}
	err = stacks__add_ref(t->st, t->ids, n, 1, &ref);
	if (err)
		goto fail;
	if (t->n == t->cap) {
		size_t nc = t->cap ? 2 * t->cap : 4096;
		struct tsample *v = realloc(t->v, nc * sizeof(*v));

		if (!v)
			goto nomem;
		t->v = v;
		t->cap = nc;
	}
	t->v[t->n++] = (struct tsample){ .ts = ts_ns, .pid = pid, .tid = tid, .stack = ref };
	return 0;
nomem:
	err = -ENOMEM;
fail:
	t->dropped++;
	return err;
}

/* ------------------------------------------------------------------ writer */

static int cmp_sample(const void *x, const void *y)
{
	const struct tsample *a = x, *b = y;

	if (a->pid != b->pid)
		return a->pid < b->pid ? -1 : 1;
	if (a->tid != b->tid)
		return a->tid < b->tid ? -1 : 1;
	if (a->ts != b->ts)
		return a->ts < b->ts ? -1 : 1;
	return 0;
}

struct span {
	uint32_t key;	/* function identity: label without its line */
	uint32_t label; /* the label of the span's first sample (its line goes in args) */
	uint64_t start;
};

struct writer {
	const struct trace *t;
	struct strbuf *out;
	uint32_t *key;	    /* label id -> function key id */
	struct stacks *keys; /* interned function keys */
	struct span *open;
	size_t nopen, open_cap;
	int64_t offset_ns;
	uint32_t pid, tid;
	bool first;
	int err;
};

static void put(struct writer *w, int e)
{
	if (!w->err && e)
		w->err = e;
}

/* Function identity of every label: "name (file)" for Python frames, the label otherwise. */
static int make_keys(struct writer *w)
{
	size_t nl = stacks__nlabels(w->t->st);
	struct strbuf sb;
	int err = 0;

	w->key = malloc((nl ? nl : 1) * sizeof(*w->key));
	w->keys = stacks__new();
	if (!w->key || !w->keys)
		return -ENOMEM;
	strbuf_init(&sb, 0);
	for (uint32_t i = 0; !err && i < nl; i++) {
		struct frame_parts p;
		size_t len;
		const char *l = stacks__label_bytes(w->t->st, i, &len);

		strbuf_reset(&sb);
		if (frame_label_split(l, len, &p)) {
			err = strbuf_add(&sb, p.name, p.name_len);
			if (!err)
				err = strbuf_addlit(&sb, " (");
			if (!err)
				err = strbuf_add(&sb, p.file, p.file_len);
			if (!err)
				err = strbuf_addlit(&sb, ")");
			if (!err)
				err = stacks__intern(w->keys, sb.buf, sb.len, &w->key[i]);
		} else {
			err = stacks__intern(w->keys, l, len, &w->key[i]);
		}
	}
	strbuf_release(&sb);
	return err;
}

static void event_sep(struct writer *w)
{
	put(w, w->first ? strbuf_addlit(w->out, "\n") : strbuf_addlit(w->out, ",\n"));
	w->first = false;
}

static void put_us(struct writer *w, const char *key, uint64_t ns)
{
	put(w, strbuf_addf(w->out, ",\"%s\":%" PRIu64 ".%03u", key, ns / 1000,
			   (unsigned)(ns % 1000)));
}

static void emit_span(struct writer *w, const struct span *s, uint64_t end)
{
	struct frame_parts p;
	size_t len;
	const char *l = stacks__label_bytes(w->t->st, s->label, &len);
	bool py = frame_label_split(l, len, &p);

	event_sep(w);
	put(w, strbuf_addlit(w->out, "{\"name\":"));
	put(w, strbuf_add_json(w->out, py ? p.name : l, py ? p.name_len : len));
	put(w, strbuf_addf(w->out, ",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":%u,\"tid\":%u",
			   py ? "python" : "process", w->pid, w->tid));
	put_us(w, "ts", (uint64_t)((int64_t)s->start + w->offset_ns));
	put_us(w, "dur", end - s->start);
	if (py) {
		put(w, strbuf_addlit(w->out, ",\"args\":{\"file\":"));
		put(w, strbuf_add_json(w->out, p.file, p.file_len));
		put(w, strbuf_addf(w->out, ",\"line\":%ld}", p.line));
	}
	put(w, strbuf_addlit(w->out, "}"));
}

/* Close the open spans from depth d up, deepest first, at end. */
static void close_from(struct writer *w, size_t d, uint64_t end)
{
	while (w->nopen > d) {
		w->nopen--;
		emit_span(w, &w->open[w->nopen], end);
	}
}

static void metadata(struct writer *w, const char *what, uint32_t pid, uint32_t tid,
		     const char *name, size_t len)
{
	event_sep(w);
	put(w, strbuf_addf(w->out, "{\"name\":\"%s\",\"ph\":\"M\",\"pid\":%u,\"tid\":%u,"
				   "\"args\":{\"name\":",
			   what, pid, tid));
	put(w, strbuf_add_json(w->out, name, len));
	put(w, strbuf_addlit(w->out, "}}"));
}

int trace_write_chrome(const struct trace *t, const struct trace_opts *o, struct strbuf *out)
{
	uint64_t period = 1000000000ull / (o && o->hz ? o->hz : 100), gap = period * 5 / 2;
	struct writer w = { .t = t, .out = out, .first = true };
	struct tsample *v = NULL;
	size_t start = out->len;
	char name[64];

	w.offset_ns = o ? o->realtime_offset_ns : 0;
	w.err = make_keys(&w);
	if (!w.err && t->n) {
		v = malloc(t->n * sizeof(*v));
		if (!v)
			w.err = -ENOMEM;
		else
			memcpy(v, t->v, t->n * sizeof(*v));
	}
	if (v)
		qsort(v, t->n, sizeof(*v), cmp_sample);
	put(&w, strbuf_addlit(out, "{\"traceEvents\":["));
	for (size_t i = 0; !w.err && i < t->n; i++) {
		const struct tsample *s = &v[i];
		size_t n, d;
		const uint32_t *ids = stacks__stack(t->st, s->stack, &n, NULL);
		bool new_thread = !i || s->pid != v[i - 1].pid || s->tid != v[i - 1].tid;

		if (new_thread) {
			if (i)
				close_from(&w, 0, v[i - 1].ts + period);
			if (!i || s->pid != v[i - 1].pid) {
				size_t len;
				const char *root = stacks__label_bytes(t->st, ids[0], &len);

				metadata(&w, "process_name", s->pid, s->tid, root, len);
			}
			snprintf(name, sizeof(name), "thread %u%s", s->tid,
				 s->tid == s->pid ? " (main)" : "");
			metadata(&w, "thread_name", s->pid, s->tid, name, strlen(name));
			w.pid = s->pid;
			w.tid = s->tid;
		} else if (s->ts - v[i - 1].ts > gap) {
			close_from(&w, 0, v[i - 1].ts + period);
		}
		/* frames: ids[1..n); the open spans that still match stay open */
		for (d = 0; d < w.nopen && d + 1 < n && w.open[d].key == w.key[ids[d + 1]]; d++)
			;
		close_from(&w, d, s->ts);
		if (n - 1 > w.open_cap) {
			struct span *sp = realloc(w.open, (n - 1) * sizeof(*sp));

			if (!sp) {
				w.err = -ENOMEM;
				break;
			}
			w.open = sp;
			w.open_cap = n - 1;
		}
		for (; d + 1 < n; d++)
			w.open[w.nopen++] = (struct span){ .key = w.key[ids[d + 1]],
							   .label = ids[d + 1],
							   .start = s->ts };
	}
	if (!w.err && t->n)
		close_from(&w, 0, v[t->n - 1].ts + period);
	put(&w, strbuf_addf(out, "\n],\"displayTimeUnit\":\"ms\",\"otherData\":{\"generator\":"
				 "\"pysamp-bpf\",\"samples\":%zu,\"dropped\":%" PRIu64 "}}\n",
			    t->n, t->dropped));
	if (w.err)
		strbuf_setlen(out, start);
	free(v);
	free(w.key);
	free(w.open);
	stacks__free(w.keys);
	return w.err;
}
