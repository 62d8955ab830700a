/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pprof.c - struct stacks to a gzipped pprof profile (see pprof.h for the mapping).
 *
 * The Profile message is produced in three pieces whose concatenation is exactly what one
 * protobuf-c pack would give (fields in number order; repeated fields of concatenated messages
 * append, scalar fields left at 0 are not emitted):
 *   1. a Profile holding only sample_type (field 1);
 *   2. each Sample as its own field-2 record, packed while walking the stacks;
 *   3. a Profile holding the rest (location, function, string_table and the scalars).
 * Everything goes through a sink that deflates into out as it arrives, so neither the samples'
 * message structs nor the serialised profile are ever held whole.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "framelabel.h"
#include "pprof.h"
#include "profile.pb-c.h"

#define PPROF_DEFAULT_HZ 100
#define NSEC_PER_SEC	 1000000000LL
/* Longest LINE accepted in "NAME (FILE:LINE)": 18 digits always fit an int64. */
/* Wire tag of Profile.sample: field 2, length-delimited. */
#define TAG_PROFILE_SAMPLE ((2u << 3) | 2u)
#define SINK_CHUNK	   (64 * 1024)

/* ---- gzip sink: a ProtobufCBuffer that deflates into a strbuf ---- */

struct gz_sink {
	ProtobufCBuffer base; /* first: protobuf-c hands &base to append */
	z_stream zs;
	struct strbuf *out;
	int err;  /* first failure; later appends are ignored */
	size_t n; /* bytes staged */
	uint8_t stage[SINK_CHUNK];
	uint8_t zout[SINK_CHUNK];
};

/* Deflate the staged bytes with flush (Z_NO_FLUSH or Z_FINISH) and append the output to out. */
static void sink_deflate(struct gz_sink *s, int flush)
{
	int rc, err;

	s->zs.next_in = s->stage;
	s->zs.avail_in = (uInt)s->n;
	do {
		s->zs.next_out = s->zout;
		s->zs.avail_out = sizeof(s->zout);
		rc = deflate(&s->zs, flush);
		if (rc == Z_STREAM_ERROR) {
			s->err = -EINVAL;
			return;
		}
		err = strbuf_add(s->out, s->zout, sizeof(s->zout) - s->zs.avail_out);
		if (err) {
			s->err = err;
			return;
		}
	} while (s->zs.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
	s->n = 0;
}

static void sink_append(ProtobufCBuffer *buf, size_t len, const uint8_t *data)
{
	struct gz_sink *s = (struct gz_sink *)buf;
	size_t k;

	while (len && !s->err) {
		k = sizeof(s->stage) - s->n;
		if (k > len)
			k = len;
		memcpy(s->stage + s->n, data, k);
		s->n += k;
		data += k;
		len -= k;
		if (s->n == sizeof(s->stage))
			sink_deflate(s, Z_NO_FLUSH);
	}
}

static void sink_varint(struct gz_sink *s, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;

	while (v >= 0x80) {
		b[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b[n++] = (uint8_t)v;
	sink_append(&s->base, n, b);
}

/* ---- string table: deduplicated, NUL-terminated strings in one arena ---- */

struct strtab {
	struct strbuf arena; /* the strings, each followed by its NUL */
	size_t *off;	     /* off[i]: start of string i in arena */
	uint32_t *hash;	     /* hash[i]: hash of string i */
	uint32_t n, cap;
	uint32_t *slots; /* open addressing: string index + 1, 0 = empty */
	size_t nslots;	 /* power of two */
};

static uint32_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64, folded */
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
	return (uint32_t)(h ^ (h >> 32));
}

static int strtab_rehash(struct strtab *t, size_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));
	uint32_t i;
	size_t j;

	if (!slots)
		return -ENOMEM;
	for (i = 0; i < t->n; i++) {
		for (j = t->hash[i] & (nslots - 1); slots[j]; j = (j + 1) & (nslots - 1))
			;
		slots[j] = i + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = nslots;
	return 0;
}

/* Index of s[0..len) (valid UTF-8 without NUL) in *idx, adding it if new. 0, -ENOMEM, -E2BIG. */
static int strtab_intern(struct strtab *t, const char *s, size_t len, uint32_t *idx)
{
	uint32_t h = hash_bytes(s, len), i;
	size_t j, o;
	int err;

	if ((size_t)t->n + 1 > t->nslots / 2) {
		if (t->nslots > SIZE_MAX / 4)
			return -ENOMEM;
		err = strtab_rehash(t, t->nslots ? t->nslots * 2 : 1024);
		if (err)
			return err;
	}
	for (j = h & (t->nslots - 1); t->slots[j]; j = (j + 1) & (t->nslots - 1)) {
		i = t->slots[j] - 1;
		o = t->off[i];
		if (t->hash[i] == h && strlen(t->arena.buf + o) == len &&
		    memcmp(t->arena.buf + o, s, len) == 0) {
			*idx = i;
			return 0;
		}
	}
	if (t->n >= UINT32_MAX - 1)
		return -E2BIG;
	if (t->n == t->cap) {
		uint32_t cap =
			t->cap ? (t->cap > UINT32_MAX / 2 ? UINT32_MAX - 1 : t->cap * 2) : 256;
		size_t *off = realloc(t->off, (size_t)cap * sizeof(*off));
		uint32_t *hash;

		if (!off)
			return -ENOMEM;
		t->off = off;
		hash = realloc(t->hash, (size_t)cap * sizeof(*hash));
		if (!hash)
			return -ENOMEM;
		t->hash = hash;
		t->cap = cap;
	}
	o = t->arena.len;
	err = strbuf_add(&t->arena, s, len);
	if (!err)
		err = strbuf_add(&t->arena, "", 1);
	if (err) {
		strbuf_setlen(&t->arena, o);
		return err;
	}
	t->off[t->n] = o;
	t->hash[t->n] = h;
	t->slots[j] = t->n + 1;
	*idx = t->n++;
	return 0;
}

static void strtab_release(struct strtab *t)
{
	strbuf_release(&t->arena);
	free(t->off);
	free(t->hash);
	free(t->slots);
}

/* ---- UTF-8 ---- */

/*
 * Length of the strictly valid UTF-8 sequence at s[0..len) (len >= 1): no overlong forms,
 * surrogates or code points past U+10FFFF. 0 when s[0] does not start one.
 */
static size_t utf8_len(const unsigned char *s, size_t len)
{
	unsigned char b = s[0], lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf) {
		need = 1;
	} else if (b >= 0xe0 && b <= 0xef) {
		need = 2;
		if (b == 0xe0)
			lo = 0xa0; /* overlong */
		else if (b == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (b >= 0xf0 && b <= 0xf4) {
		need = 3;
		if (b == 0xf0)
			lo = 0x90; /* overlong */
		else if (b == 0xf4)
			hi = 0x8f; /* past U+10FFFF */
	} else {
		return 0;
	}
	if (len <= need)
		return 0;
	for (i = 1; i <= need; i++) {
		if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xbf))
			return 0;
	}
	return need + 1;
}

/*
 * Set sb to s[0..len) made valid for a protobuf-c string: each NUL byte and each byte that does
 * not start a valid UTF-8 sequence becomes U+FFFD. 0, -ENOMEM.
 */
static int utf8_clean(struct strbuf *sb, const char *s, size_t len)
{
	static const char repl[] = "\xef\xbf\xbd";
	const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;
	size_t n;
	int err;

	strbuf_reset(sb);
	while (p < end) {
		n = *p ? utf8_len(p, (size_t)(end - p)) : 0;
		if (n) {
			p += n;
			continue;
		}
		err = strbuf_add(sb, run, (size_t)(p - run));
		if (!err)
			err = strbuf_add(sb, repl, 3);
		if (err)
			return err;
		run = ++p;
	}
	return strbuf_add(sb, run, (size_t)(p - run));
}

/* ---- functions: deduplicated by (name, file) string indices ---- */

struct fntab {
	uint32_t *name, *file; /* per function */
	uint32_t n, cap;
	uint32_t *slots; /* function index + 1, 0 = empty */
	size_t nslots;
};

static size_t fn_hash(uint32_t name, uint32_t file)
{
	uint64_t k = ((uint64_t)name << 32 | file) * 0x9e3779b97f4a7c15ull;

	return (size_t)(k ^ (k >> 29));
}

static int fntab_rehash(struct fntab *t, size_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));
	uint32_t i;
	size_t j;

	if (!slots)
		return -ENOMEM;
	for (i = 0; i < t->n; i++) {
		for (j = fn_hash(t->name[i], t->file[i]) & (nslots - 1); slots[j];
		     j = (j + 1) & (nslots - 1))
			;
		slots[j] = i + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = nslots;
	return 0;
}

/* Index of the function (name, file) in *idx, adding it if new. 0, -ENOMEM, -E2BIG. */
static int fntab_intern(struct fntab *t, uint32_t name, uint32_t file, uint32_t *idx)
{
	size_t j;
	uint32_t i;
	int err;

	if ((size_t)t->n + 1 > t->nslots / 2) {
		if (t->nslots > SIZE_MAX / 4)
			return -ENOMEM;
		err = fntab_rehash(t, t->nslots ? t->nslots * 2 : 256);
		if (err)
			return err;
	}
	for (j = fn_hash(name, file) & (t->nslots - 1); t->slots[j];
	     j = (j + 1) & (t->nslots - 1)) {
		i = t->slots[j] - 1;
		if (t->name[i] == name && t->file[i] == file) {
			*idx = i;
			return 0;
		}
	}
	if (t->n >= UINT32_MAX - 1)
		return -E2BIG;
	if (t->n == t->cap) {
		uint32_t cap =
			t->cap ? (t->cap > UINT32_MAX / 2 ? UINT32_MAX - 1 : t->cap * 2) : 128;
		uint32_t *p = realloc(t->name, (size_t)cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		t->name = p;
		p = realloc(t->file, (size_t)cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		t->file = p;
		t->cap = cap;
	}
	t->name[t->n] = name;
	t->file[t->n] = file;
	t->slots[j] = t->n + 1;
	*idx = t->n++;
	return 0;
}

static void fntab_release(struct fntab *t)
{
	free(t->name);
	free(t->file);
	free(t->slots);
}

/* ---- the writer ---- */

struct loc {
	uint32_t fn; /* function index */
	int64_t line;
};

struct writer {
	const struct stacks *st;
	struct gz_sink *sink;
	struct strtab strs;
	struct fntab fns;
	uint32_t *loc_of; /* per label id: location id, 0 = none yet */
	struct loc *locs; /* locs[id - 1] */
	uint32_t nlocs;
	struct strbuf tmp; /* a cleaned string */
	uint64_t *ids;	   /* one sample's location ids */
	size_t ids_cap;
	uint8_t *pack; /* one packed sample */
	size_t pack_cap;
	int64_t period;
	int err;
};

/* Clean s[0..len) and intern it. */
static int intern_clean(struct writer *w, const char *s, size_t len, uint32_t *idx)
{
	int err = utf8_clean(&w->tmp, s, len);

	/* tmp.buf is NULL while nothing was ever added (an empty label). */
	return err ? err : strtab_intern(&w->strs, w->tmp.buf ? w->tmp.buf : "", w->tmp.len, idx);
}

/* The location id of label id, creating its location (and function) on first use. */
static int location_of(struct writer *w, uint32_t id, uint64_t *loc_id)
{
	struct frame_parts fp;
	struct loc *l;
	const char *s;
	size_t len;
	uint32_t name, file = 0;
	int err;

	if (w->loc_of[id]) {
		*loc_id = w->loc_of[id];
		return 0;
	}
	s = stacks__label_bytes(w->st, id, &len);
	if (!s)
		return -EINVAL;
	l = &w->locs[w->nlocs];
	l->line = 0;
	if (frame_label_split(s, len, &fp)) {
		err = intern_clean(w, fp.name, fp.name_len, &name);
		if (!err)
			err = intern_clean(w, fp.file, fp.file_len, &file);
		l->line = fp.line;
	} else {
		err = intern_clean(w, s, len, &name);
	}
	if (!err)
		err = fntab_intern(&w->fns, name, file, &l->fn);
	if (err)
		return err;
	w->loc_of[id] = ++w->nlocs;
	*loc_id = w->nlocs;
	return 0;
}

/* Stack visitor: emit one Sample record. Stops on the first error (kept in w->err). */
static int emit_sample(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct writer *w = arg;
	Perftools__Profiles__Sample s = PERFTOOLS__PROFILES__SAMPLE__INIT;
	int64_t values[2];
	size_t i, size;

	if (n > w->ids_cap) {
		size_t cap = n > 2 * w->ids_cap ? n : 2 * w->ids_cap;
		uint64_t *p = reallocarray(w->ids, cap, sizeof(*p));

		if (!p) {
			w->err = -ENOMEM;
			return 1;
		}
		w->ids = p;
		w->ids_cap = cap;
	}
	for (i = 0; i < n; i++) { /* leaf first */
		w->err = location_of(w, ids[n - 1 - i], &w->ids[i]);
		if (w->err)
			return 1;
	}
	if (count > INT64_MAX || (int64_t)count > INT64_MAX / w->period) {
		w->err = -EOVERFLOW;
		return 1;
	}
	values[0] = (int64_t)count;
	values[1] = (int64_t)count * w->period;
	s.n_location_id = n;
	s.location_id = w->ids;
	s.n_value = 2;
	s.value = values;
	size = perftools__profiles__sample__get_packed_size(&s);
	if (size > w->pack_cap) {
		size_t cap = size > 2 * w->pack_cap ? size : 2 * w->pack_cap;
		uint8_t *p = realloc(w->pack, cap);

		if (!p) {
			w->err = -ENOMEM;
			return 1;
		}
		w->pack = p;
		w->pack_cap = cap;
	}
	perftools__profiles__sample__pack(&s, w->pack);
	sink_varint(w->sink, TAG_PROFILE_SAMPLE);
	sink_varint(w->sink, size);
	sink_append(&w->sink->base, size, w->pack);
	if (w->sink->err) {
		w->err = w->sink->err;
		return 1;
	}
	return 0;
}

/* Piece 3: locations, functions, string table and the scalar fields. */
static int emit_tail(struct writer *w, Perftools__Profiles__Profile *p)
{
	Perftools__Profiles__Location *locs = NULL, **locp = NULL;
	Perftools__Profiles__Line *lines = NULL, **linep = NULL;
	Perftools__Profiles__Function *fns = NULL, **fnp = NULL;
	char **strs = NULL;
	uint32_t i;
	int err = -ENOMEM;

	locs = calloc(w->nlocs ? w->nlocs : 1, sizeof(*locs));
	locp = calloc(w->nlocs ? w->nlocs : 1, sizeof(*locp));
	lines = calloc(w->nlocs ? w->nlocs : 1, sizeof(*lines));
	linep = calloc(w->nlocs ? w->nlocs : 1, sizeof(*linep));
	fns = calloc(w->fns.n ? w->fns.n : 1, sizeof(*fns));
	fnp = calloc(w->fns.n ? w->fns.n : 1, sizeof(*fnp));
	strs = calloc(w->strs.n, sizeof(*strs));
	if (!locs || !locp || !lines || !linep || !fns || !fnp || !strs)
		goto cleanup;
	for (i = 0; i < w->nlocs; i++) {
		perftools__profiles__line__init(&lines[i]);
		lines[i].function_id = w->locs[i].fn + 1;
		lines[i].line = w->locs[i].line;
		linep[i] = &lines[i];
		perftools__profiles__location__init(&locs[i]);
		locs[i].id = i + 1;
		locs[i].n_line = 1;
		locs[i].line = &linep[i];
		locp[i] = &locs[i];
	}
	for (i = 0; i < w->fns.n; i++) {
		perftools__profiles__function__init(&fns[i]);
		fns[i].id = i + 1;
		fns[i].name = w->fns.name[i];
		/*
		 * system_name stays "": pprof treats a function whose system_name equals its name
		 * as not yet demangled and rewrites the name from it with C++ heuristics, which
		 * turns "<module>" and "<lambda>" into "" (any name with '<', '[' or "::").
		 */
		fns[i].filename = w->fns.file[i];
		fnp[i] = &fns[i];
	}
	for (i = 0; i < w->strs.n; i++)
		strs[i] = w->strs.arena.buf + w->strs.off[i];
	p->n_location = w->nlocs;
	p->location = locp;
	p->n_function = w->fns.n;
	p->function = fnp;
	p->n_string_table = w->strs.n;
	p->string_table = strs;
	perftools__profiles__profile__pack_to_buffer(p, &w->sink->base);
	err = w->sink->err;
cleanup:
	free(locs);
	free(locp);
	free(lines);
	free(linep);
	free(fns);
	free(fnp);
	free(strs);
	return err;
}

/* Fixed strings, interned first so that their indices are fixed too. */
enum { STR_EMPTY, STR_SAMPLES, STR_COUNT, STR_CPU, STR_NANOSECONDS, STR_COMMENT, STR_NFIXED };
static const char *const fixed_strings[STR_NFIXED] = {
	"", "samples", "count", "cpu", "nanoseconds", "pysamp-bpf",
};

int pprof_write(const struct stacks *st, const struct pprof_opts *o, struct strbuf *out)
{
	Perftools__Profiles__Profile head = PERFTOOLS__PROFILES__PROFILE__INIT;
	Perftools__Profiles__Profile tail = PERFTOOLS__PROFILES__PROFILE__INIT;
	Perftools__Profiles__ValueType vt[2], period_type, *vtp[2];
	int64_t comment = STR_COMMENT;
	struct writer w = { .st = st };
	struct gz_sink *sink = NULL;
	bool zinit = false;
	size_t nlabels, old_len = out ? out->len : 0;
	uint32_t hz, i, idx;
	int err = 0;

	if (!st || !out)
		return -EINVAL;
	hz = o && o->hz ? o->hz : PPROF_DEFAULT_HZ;
	if (hz > NSEC_PER_SEC || (o && o->duration_ns < 0))
		return -EINVAL;
	w.period = NSEC_PER_SEC / hz;
	strbuf_init(&w.strs.arena, 0);
	strbuf_init(&w.tmp, 0);

	nlabels = stacks__nlabels(st);
	w.loc_of = calloc(nlabels ? nlabels : 1, sizeof(*w.loc_of));
	w.locs = calloc(nlabels ? nlabels : 1, sizeof(*w.locs));
	sink = malloc(sizeof(*sink));
	if (!w.loc_of || !w.locs || !sink) {
		err = -ENOMEM;
		goto cleanup;
	}
	memset(&sink->zs, 0, sizeof(sink->zs));
	sink->base.append = sink_append;
	sink->out = out;
	sink->err = 0;
	sink->n = 0;
	w.sink = sink;
	/* windowBits 15 + 16: a gzip wrapper; zlib's header has no name and mtime 0. */
	if (deflateInit2(&sink->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		err = -ENOMEM;
		goto cleanup;
	}
	zinit = true;
	for (i = 0; i < STR_NFIXED; i++) {
		err = strtab_intern(&w.strs, fixed_strings[i], strlen(fixed_strings[i]), &idx);
		if (err)
			goto cleanup;
	}

	/* 1. sample_type */
	for (i = 0; i < 2; i++) {
		perftools__profiles__value_type__init(&vt[i]);
		vtp[i] = &vt[i];
	}
	vt[0].type = STR_SAMPLES;
	vt[0].unit = STR_COUNT;
	vt[1].type = STR_CPU;
	vt[1].unit = STR_NANOSECONDS;
	head.n_sample_type = 2;
	head.sample_type = vtp;
	perftools__profiles__profile__pack_to_buffer(&head, &sink->base);
	if (sink->err) {
		err = sink->err;
		goto cleanup;
	}

	/* 2. samples */
	err = stacks__foreach_sorted(st, emit_sample, &w);
	if (w.err)
		err = w.err;
	if (err)
		goto cleanup;

	/* 3. the rest */
	perftools__profiles__value_type__init(&period_type);
	period_type.type = STR_CPU;
	period_type.unit = STR_NANOSECONDS;
	tail.time_nanos = o ? o->time_ns : 0;
	tail.duration_nanos = o ? o->duration_ns : 0;
	tail.period_type = &period_type;
	tail.period = w.period;
	tail.n_comment = 1;
	tail.comment = &comment;
	tail.default_sample_type = STR_CPU;
	err = emit_tail(&w, &tail);
	if (err)
		goto cleanup;
	sink_deflate(sink, Z_FINISH);
	err = sink->err;

cleanup:
	if (zinit)
		deflateEnd(&sink->zs);
	if (err)
		strbuf_setlen(out, old_len);
	free(sink);
	free(w.loc_of);
	free(w.locs);
	free(w.ids);
	free(w.pack);
	fntab_release(&w.fns);
	strtab_release(&w.strs);
	strbuf_release(&w.tmp);
	return err;
}
