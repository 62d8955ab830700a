/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_pprof.c - the pprof writer, read back the way a consumer would: gunzip (zlib), unpack
 * with the protobuf-c code generated from user/profile.proto, rebuild the folded stacks from
 * samples, locations, lines, functions and strings, and compare them with the input.
 *
 * PYSAMP_TEST_PPROF_OUT=FILE also writes the hostile-labels profile to FILE (for
 * tests/integration/test_pprof.py, which feeds it to `go tool pprof`).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "harness.h"
#include "pprof.h"
#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile Profile;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- building input ---- */

/* Add the stack of n labels (NUL-terminated strings) with count. */
static void add_stack(struct stacks *st, const char *const *labels, size_t n, uint64_t count)
{
	uint32_t ids[64];
	size_t i;

	if (n > 64)
		abort();
	for (i = 0; i < n; i++) {
		if (stacks__intern(st, labels[i], strlen(labels[i]), &ids[i]))
			abort();
	}
	if (stacks__add(st, ids, n, count))
		abort();
}

/* As add_stack with labels given as (bytes, length) pairs. */
static void add_stack_bytes(struct stacks *st, const char *const *labels, const size_t *lens,
			    size_t n, uint64_t count)
{
	uint32_t ids[64];
	size_t i;

	if (n > 64)
		abort();
	for (i = 0; i < n; i++) {
		if (stacks__intern(st, labels[i], lens[i], &ids[i]))
			abort();
	}
	if (stacks__add(st, ids, n, count))
		abort();
}

/* ---- reading output ---- */

/* Gunzip buf[0..len) (exactly one gzip member) into a malloc'ed *out. 0 or -1. */
static int gunzip(const char *buf, size_t len, uint8_t **out, size_t *outlen)
{
	z_stream zs;
	size_t cap = len * 4 + 1024, n = 0;
	uint8_t *p = malloc(cap);
	int rc;

	memset(&zs, 0, sizeof(zs));
	if (!p || inflateInit2(&zs, 15 + 16) != Z_OK) {
		free(p);
		return -1;
	}
	zs.next_in = (Bytef *)(uintptr_t)buf; /* zlib without ZLIB_CONST: not written */
	zs.avail_in = (uInt)len;
	do {
		if (n == cap) {
			uint8_t *q = realloc(p, cap * 2);

			if (!q)
				break;
			p = q;
			cap *= 2;
		}
		zs.next_out = p + n;
		zs.avail_out = (uInt)(cap - n);
		rc = inflate(&zs, Z_NO_FLUSH);
		n = cap - zs.avail_out;
	} while (rc == Z_OK);
	inflateEnd(&zs);
	if (rc != Z_STREAM_END || zs.avail_in != 0) {
		free(p);
		return -1;
	}
	*out = p;
	*outlen = n;
	return 0;
}

/* Gunzip and unpack sb->buf[from..len); the serialised size in *size when size is non-NULL. */
static Profile *decode(const struct strbuf *sb, size_t from, size_t *size)
{
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	Profile *p;

	if (gunzip(sb->buf + from, sb->len - from, &raw, &rawlen)) {
		fprintf(stderr, "gunzip failed\n");
		return NULL;
	}
	if (size)
		*size = rawlen;
	p = perftools__profiles__profile__unpack(NULL, rawlen, raw);
	free(raw);
	if (!p)
		fprintf(stderr, "unpack failed\n");
	return p;
}

/* Strict UTF-8 (what Go's decoder accepts), written independently of pprof.c. */
static int valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		uint32_t c;
		int n, i;

		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0) {
			n = 1;
			c = *p & 0x1f;
		} else if ((*p & 0xf0) == 0xe0) {
			n = 2;
			c = *p & 0x0f;
		} else if ((*p & 0xf8) == 0xf0) {
			n = 3;
			c = *p & 0x07;
		} else {
			return 0;
		}
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			c = c << 6 | (p[i] & 0x3f);
		}
		if ((n == 1 && c < 0x80) || (n == 2 && c < 0x800) || (n == 3 && c < 0x10000) ||
		    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
			return 0;
		p += n + 1;
	}
	return 1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *str_at(const Profile *p, int64_t i)
{
	return i >= 0 && (size_t)i < p->n_string_table ? p->string_table[i] : NULL;
}

static const Perftools__Profiles__Function *fn_by_id(const Profile *p, uint64_t id)
{
	size_t i;

	/* ids are 1..n in order (checked in check_tables), so index directly, verify anyway */
	if (id >= 1 && id <= p->n_function && p->function[id - 1]->id == id)
		return p->function[id - 1];
	for (i = 0; i < p->n_function; i++)
		if (p->function[i]->id == id)
			return p->function[i];
	return NULL;
}

static const Perftools__Profiles__Location *loc_by_id(const Profile *p, uint64_t id)
{
	size_t i;

	if (id >= 1 && id <= p->n_location && p->location[id - 1]->id == id)
		return p->location[id - 1];
	for (i = 0; i < p->n_location; i++)
		if (p->location[i]->id == id)
			return p->location[i];
	return NULL;
}

/* The folded label of a location: "name (file:line)" with a file, else "name". NULL if broken. */
static char *loc_label(const Profile *p, const Perftools__Profiles__Location *l)
{
	const Perftools__Profiles__Function *f;
	const char *name, *file;
	char *s = NULL;

	if (!l || l->n_line != 1)
		return NULL;
	f = fn_by_id(p, l->line[0]->function_id);
	if (!f)
		return NULL;
	name = str_at(p, f->name);
	file = str_at(p, f->filename);
	if (!name || !file)
		return NULL;
	if (*file) {
		if (asprintf(&s, "%s (%s:%" PRId64 ")", name, file, l->line[0]->line) < 0)
			return NULL;
	} else {
		if (l->line[0]->line != 0)
			return NULL;
		s = strdup(name);
	}
	return s;
}

/*
 * The checks every profile must pass: string table, sample types, period, unique non-zero ids,
 * one line per location, functions that exist and are unique. period: the expected period.
 */
static void check_tables(const Profile *p, int64_t period)
{
	char **sorted;
	size_t i, j;

	T_CHECK(p->n_string_table >= 1);
	if (p->n_string_table < 1)
		return;
	T_CHECK_EQ_STR(p->string_table[0], "");
	sorted = malloc(p->n_string_table * sizeof(*sorted));
	if (!sorted)
		abort();
	for (i = 0; i < p->n_string_table; i++) {
		if (!valid_utf8(p->string_table[i])) {
			T_CHECK(!"string table entry is not valid UTF-8");
			fprintf(stderr, "  entry %zu\n", i);
		}
		sorted[i] = p->string_table[i];
	}
	qsort(sorted, p->n_string_table, sizeof(*sorted), cmp_str);
	for (i = 1; i < p->n_string_table; i++) {
		if (strcmp(sorted[i - 1], sorted[i]) == 0) {
			T_CHECK(!"duplicate string");
			fprintf(stderr, "  \"%.60s\"\n", sorted[i]);
		}
	}
	free(sorted);

	T_CHECK_EQ_INT(p->n_sample_type, 2);
	if (p->n_sample_type == 2) {
		T_CHECK_EQ_STR(str_at(p, p->sample_type[0]->type), "samples");
		T_CHECK_EQ_STR(str_at(p, p->sample_type[0]->unit), "count");
		T_CHECK_EQ_STR(str_at(p, p->sample_type[1]->type), "cpu");
		T_CHECK_EQ_STR(str_at(p, p->sample_type[1]->unit), "nanoseconds");
	}
	T_CHECK(p->period_type != NULL);
	if (p->period_type) {
		T_CHECK_EQ_STR(str_at(p, p->period_type->type), "cpu");
		T_CHECK_EQ_STR(str_at(p, p->period_type->unit), "nanoseconds");
	}
	T_CHECK_EQ_INT(p->period, period);
	T_CHECK_EQ_STR(str_at(p, p->default_sample_type), "cpu");
	T_CHECK_EQ_INT(p->n_mapping, 0);

	/* Ids 1..n in order (unique and non-zero). */
	for (i = 0; i < p->n_location; i++) {
		const Perftools__Profiles__Location *l = p->location[i];

		if (l->id != i + 1 || l->mapping_id != 0 || l->n_line != 1 ||
		    !fn_by_id(p, l->line[0]->function_id)) {
			T_CHECK(!"bad location");
			fprintf(stderr, "  location %zu id %" PRIu64 "\n", i, l->id);
		}
	}
	for (i = 0; i < p->n_function; i++) {
		const Perftools__Profiles__Function *f = p->function[i];

		if (f->id != i + 1 || !str_at(p, f->name) || !str_at(p, f->filename) ||
		    f->system_name != 0 || f->start_line != 0) {
			T_CHECK(!"bad function");
			fprintf(stderr, "  function %zu id %" PRIu64 "\n", i, f->id);
		}
	}
	/* Functions unique by (name, file); locations unique by (function, line) need not hold
	 * when two labels clean to the same string, so that is checked by the callers. */
	for (i = 0; i < p->n_function; i++) {
		for (j = i + 1; j < p->n_function && p->n_function < 5000; j++) {
			if (p->function[i]->name == p->function[j]->name &&
			    p->function[i]->filename == p->function[j]->filename)
				T_CHECK(!"duplicate function");
		}
	}
	for (i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];

		if (s->n_value != 2 || s->n_location_id == 0 || s->value[0] <= 0 ||
		    s->value[1] != s->value[0] * period || s->n_label != 0) {
			T_CHECK(!"bad sample");
			fprintf(stderr, "  sample %zu\n", i);
		}
	}
}

/* Rebuild the stacks of p (root first) into a new struct stacks. NULL on a broken profile. */
static struct stacks *rebuild(const Profile *p)
{
	struct stacks *st = stacks__new();
	uint32_t *ids = NULL;
	size_t i, j, cap = 0;

	if (!st)
		abort();
	for (i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];

		if (s->n_location_id > cap) {
			cap = s->n_location_id;
			ids = realloc(ids, cap * sizeof(*ids));
			if (!ids)
				abort();
		}
		for (j = 0; j < s->n_location_id; j++) { /* leaf first in the profile */
			char *label = loc_label(p, loc_by_id(p, s->location_id[j]));

			if (!label || stacks__intern(st, label, strlen(label),
						     &ids[s->n_location_id - 1 - j])) {
				free(label);
				goto fail;
			}
			free(label);
		}
		if (s->n_value < 1 || s->value[0] <= 0 ||
		    stacks__add(st, ids, s->n_location_id, (uint64_t)s->value[0]))
			goto fail;
	}
	free(ids);
	return st;
fail:
	free(ids);
	stacks__free(st);
	return NULL;
}

struct cmp_ctx {
	const struct stacks *from, *to;
	size_t mismatches;
};

/* Visitor: the stack ids (labels of from) has the same count in to. */
static int same_count(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct cmp_ctx *c = arg;
	uint32_t mapped[64];
	size_t i;

	if (n > 64) {
		c->mismatches++;
		return 0;
	}
	for (i = 0; i < n; i++) {
		size_t len;
		const char *s = stacks__label_bytes(c->from, ids[i], &len);

		if (!stacks__find_label(c->to, s, len, &mapped[i])) {
			if (c->mismatches++ < 5)
				fprintf(stderr, "  label missing: \"%.80s\"\n", s);
			return 0;
		}
	}
	if (stacks__count(c->to, mapped, n) != count) {
		if (c->mismatches++ < 5)
			fprintf(stderr,
				"  count differs for a stack of %zu frames ending \"%.80s\"\n", n,
				stacks__label(c->from, ids[n - 1]));
	}
	return 0;
}

/* p's stacks are exactly want's: same stacks with the same counts, one sample per stack. */
static void check_stacks(const Profile *p, const struct stacks *want)
{
	struct stacks *got = rebuild(p);
	struct cmp_ctx c = { .from = want, .mismatches = 0 };

	T_CHECK(got != NULL);
	if (!got)
		return;
	c.to = got;
	T_CHECK_EQ_INT(p->n_sample, stacks__nstacks(want));
	T_CHECK_EQ_INT(stacks__nstacks(got), stacks__nstacks(want));
	T_CHECK(stacks__total(got) == stacks__total(want));
	T_CHECK_EQ_INT(stacks__foreach(want, same_count, &c), 0);
	T_CHECK_EQ_INT(c.mismatches, 0);
	stacks__free(got);
}

static int mark_used(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	uint8_t *used = arg;
	size_t i;

	(void)count;
	for (i = 0; i < n; i++)
		used[ids[i]] = 1;
	return 0;
}

/* Number of distinct labels that appear in some stack of st. */
static size_t labels_used(const struct stacks *st)
{
	size_t n = stacks__nlabels(st), i, k = 0;
	uint8_t *used = calloc(n ? n : 1, 1);

	if (!used || stacks__foreach(st, mark_used, used))
		abort();
	for (i = 0; i < n; i++)
		k += used[i];
	free(used);
	return k;
}

/* The function of the location whose rebuilt label is label, or NULL. */
static const Perftools__Profiles__Function *fn_of_label(const Profile *p, const char *label,
							int64_t *line)
{
	size_t i;

	for (i = 0; i < p->n_location; i++) {
		char *s = loc_label(p, p->location[i]);
		int hit = s && strcmp(s, label) == 0;

		free(s);
		if (hit) {
			*line = p->location[i]->line[0]->line;
			return fn_by_id(p, p->location[i]->line[0]->function_id);
		}
	}
	return NULL;
}

static int write_file(const char *path, const struct strbuf *sb)
{
	FILE *f = fopen(path, "wb");
	int ok = f && fwrite(sb->buf, 1, sb->len, f) == sb->len;

	if (f && fclose(f))
		ok = 0;
	return ok ? 0 : -1;
}

/* ---- tests ---- */

static const char *const S1[] = { "python3 [1234]", "<module> (/app/main.py:10)",
				  "main (/app/main.py:5)", "Worker.heavy (/app/w.py:20)" };
static const char *const S2[] = { "python3 [1234]", "<module> (/app/main.py:10)",
				  "main (/app/main.py:6)", "Worker.heavy (/app/w.py:21)" };
static const char *const S3[] = { "python3 [1234]", "thread 7", "[pruned]" };
static const char *const S4[] = { "python3 [1234]", "<module> (/app/main.py:10)" };

static struct stacks *basic_stacks(int reverse)
{
	struct stacks *st = stacks__new();

	if (!st)
		abort();
	if (!reverse) {
		add_stack(st, S1, 4, 50);
		add_stack(st, S2, 4, 30);
		add_stack(st, S3, 3, 3);
		add_stack(st, S4, 2, 1);
	} else {
		add_stack(st, S3, 3, 3);
		add_stack(st, S4, 2, 1);
		add_stack(st, S2, 4, 30);
		add_stack(st, S1, 4, 50);
	}
	return st;
}

static void test_basic(void)
{
	struct stacks *st = basic_stacks(0);
	struct pprof_opts o = { .hz = 99,
				.time_ns = 1700000000123456789LL,
				.duration_ns = 30000000000LL };
	const Perftools__Profiles__Function *f;
	Profile *p;
	struct strbuf sb;
	int64_t line;

	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(pprof_write(st, &o, &sb), 0);
	/* gzip without a name or a time stamp */
	T_CHECK(sb.len > 18);
	T_CHECK((unsigned char)sb.buf[0] == 0x1f && (unsigned char)sb.buf[1] == 0x8b);
	T_CHECK(sb.buf[2] == 8 && sb.buf[3] == 0);
	T_CHECK(sb.buf[4] == 0 && sb.buf[5] == 0 && sb.buf[6] == 0 && sb.buf[7] == 0);
	p = decode(&sb, 0, NULL);
	T_CHECK(p != NULL);
	if (p) {
		check_tables(p, 1000000000LL / 99);
		check_stacks(p, st);
		T_CHECK_EQ_INT(p->period, 10101010);
		T_CHECK_EQ_INT(p->time_nanos, 1700000000123456789LL);
		T_CHECK_EQ_INT(p->duration_nanos, 30000000000LL);
		T_CHECK_EQ_INT(p->n_comment, 1);
		if (p->n_comment == 1)
			T_CHECK_EQ_STR(str_at(p, p->comment[0]), "pysamp-bpf");
		/* 8 distinct labels, 6 functions (heavy and main at two lines each) */
		T_CHECK_EQ_INT(p->n_location, 8);
		T_CHECK_EQ_INT(p->n_function, 6);
		/* "" + 5 fixed + python3, thread, [pruned], <module>, main, heavy, 2 files */
		T_CHECK_EQ_INT(p->n_string_table, 14);
		/* Sorted by count: the first sample is S1, leaf first. */
		T_CHECK_EQ_INT(p->n_sample, 4);
		if (p->n_sample == 4) {
			char *leaf = loc_label(p, loc_by_id(p, p->sample[0]->location_id[0]));
			char *root = loc_label(p, loc_by_id(p, p->sample[0]->location_id[3]));

			T_CHECK_EQ_INT(p->sample[0]->value[0], 50);
			T_CHECK_EQ_INT(p->sample[0]->value[1], 50 * 10101010LL);
			T_CHECK_EQ_STR(leaf, "Worker.heavy (/app/w.py:20)");
			T_CHECK_EQ_STR(root, "python3 [1234]");
			free(leaf);
			free(root);
			T_CHECK_EQ_INT(p->sample[3]->value[0], 1);
		}
		f = fn_of_label(p, "Worker.heavy (/app/w.py:21)", &line);
		T_CHECK(f != NULL);
		if (f) {
			T_CHECK_EQ_STR(str_at(p, f->name), "Worker.heavy");
			T_CHECK_EQ_INT(f->system_name, 0); /* see pprof.h */
			T_CHECK_EQ_STR(str_at(p, f->filename), "/app/w.py");
			T_CHECK_EQ_INT(line, 21);
		}
		f = fn_of_label(p, "python3 [1234]", &line);
		T_CHECK(f != NULL);
		if (f) {
			T_CHECK_EQ_STR(str_at(p, f->name), "python3 [1234]");
			T_CHECK_EQ_INT(f->filename, 0);
			T_CHECK_EQ_INT(f->system_name, 0);
			T_CHECK_EQ_INT(line, 0);
		}
		perftools__profiles__profile__free_unpacked(p, NULL);
	}
	strbuf_release(&sb);

	/* Defaults: o NULL is hz 100, no time, no duration. */
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(pprof_write(st, NULL, &sb), 0);
	p = decode(&sb, 0, NULL);
	T_CHECK(p != NULL);
	if (p) {
		check_tables(p, 10000000);
		check_stacks(p, st);
		T_CHECK_EQ_INT(p->time_nanos, 0);
		T_CHECK_EQ_INT(p->duration_nanos, 0);
		perftools__profiles__profile__free_unpacked(p, NULL);
	}
	strbuf_release(&sb);
	stacks__free(st);
}

static void test_deterministic_and_append(void)
{
	struct stacks *a = basic_stacks(0), *b = basic_stacks(1);
	struct pprof_opts o = { .hz = 250, .time_ns = 1, .duration_ns = 2 };
	struct strbuf sa, sb, sc;

	strbuf_init(&sa, 0);
	strbuf_init(&sb, 0);
	strbuf_init(&sc, 0);
	T_CHECK_EQ_INT(pprof_write(a, &o, &sa), 0);
	T_CHECK_EQ_INT(pprof_write(a, &o, &sb), 0);
	T_CHECK(sa.len == sb.len && memcmp(sa.buf, sb.buf, sa.len) == 0);
	/* Insertion order does not matter. */
	T_CHECK_EQ_INT(pprof_write(b, &o, &sc), 0);
	T_CHECK(sa.len == sc.len && memcmp(sa.buf, sc.buf, sa.len) == 0);
	/* Appends after existing bytes, which are kept. */
	strbuf_reset(&sb);
	T_CHECK_EQ_INT(strbuf_add(&sb, "XYZ", 3), 0);
	T_CHECK_EQ_INT(pprof_write(a, &o, &sb), 0);
	T_CHECK(sb.len == sa.len + 3 && memcmp(sb.buf, "XYZ", 3) == 0 &&
		memcmp(sb.buf + 3, sa.buf, sa.len) == 0);
	strbuf_release(&sa);
	strbuf_release(&sb);
	strbuf_release(&sc);
	stacks__free(a);
	stacks__free(b);
}

static void test_errors(void)
{
	struct stacks *st = basic_stacks(0);
	struct pprof_opts o = { 0 };
	struct strbuf sb;
	size_t full;
	uint32_t id;

	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(pprof_write(NULL, NULL, &sb), -EINVAL);
	T_CHECK_EQ_INT(pprof_write(st, NULL, NULL), -EINVAL);
	o.hz = 1000000001;
	T_CHECK_EQ_INT(pprof_write(st, &o, &sb), -EINVAL);
	o.hz = 0;
	o.duration_ns = -1;
	T_CHECK_EQ_INT(pprof_write(st, &o, &sb), -EINVAL);
	T_CHECK_EQ_INT(sb.len, 0);
	/* hz = 1e9 is a period of 1 ns */
	o.duration_ns = 0;
	o.hz = 1000000000;
	T_CHECK_EQ_INT(pprof_write(st, &o, &sb), 0);

	/* E2BIG: exactly the size fits; one byte less fails and restores the buffer. */
	full = sb.len;
	strbuf_release(&sb);
	strbuf_init(&sb, full);
	T_CHECK_EQ_INT(pprof_write(st, &o, &sb), 0);
	T_CHECK_EQ_INT(sb.len, full);
	strbuf_release(&sb);
	strbuf_init(&sb, full + 2);
	T_CHECK_EQ_INT(strbuf_add(&sb, "ab", 2), 0);
	T_CHECK_EQ_INT(pprof_write(st, &o, &sb), 0);
	strbuf_release(&sb);
	strbuf_init(&sb, full + 1);
	T_CHECK_EQ_INT(strbuf_add(&sb, "ab", 2), 0);
	T_CHECK_EQ_INT(pprof_write(st, &o, &sb), -E2BIG);
	T_CHECK_EQ_INT(sb.len, 2);
	T_CHECK(memcmp(sb.buf, "ab", 2) == 0);
	strbuf_release(&sb);
	strbuf_init(&sb, 10);
	T_CHECK_EQ_INT(pprof_write(st, &o, &sb), -E2BIG);
	T_CHECK_EQ_INT(sb.len, 0);
	strbuf_release(&sb);

	/* EOVERFLOW: count * period past INT64_MAX (period 1 s at 1 Hz). */
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(stacks__intern(st, "huge", 4, &id), 0);
	T_CHECK_EQ_INT(stacks__add(st, &id, 1, (uint64_t)1 << 62), 0);
	o.hz = 1;
	T_CHECK_EQ_INT(pprof_write(st, &o, &sb), -EOVERFLOW);
	T_CHECK_EQ_INT(sb.len, 0);
	/* count itself past INT64_MAX */
	stacks__clear(st);
	T_CHECK_EQ_INT(stacks__intern(st, "huge", 4, &id), 0);
	T_CHECK_EQ_INT(stacks__add(st, &id, 1, (uint64_t)INT64_MAX + 1), 0);
	o.hz = 1000000000;
	T_CHECK_EQ_INT(pprof_write(st, &o, &sb), -EOVERFLOW);
	strbuf_release(&sb);
	stacks__free(st);
}

static void test_empty(void)
{
	struct stacks *st = stacks__new();
	struct strbuf sb;
	Profile *p;
	uint32_t id;

	/* A label interned but in no stack gives no location. */
	T_CHECK_EQ_INT(stacks__intern(st, "unused (/x.py:1)", 16, &id), 0);
	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(pprof_write(st, NULL, &sb), 0);
	p = decode(&sb, 0, NULL);
	T_CHECK(p != NULL);
	if (p) {
		check_tables(p, 10000000);
		T_CHECK_EQ_INT(p->n_sample, 0);
		T_CHECK_EQ_INT(p->n_location, 0);
		T_CHECK_EQ_INT(p->n_function, 0);
		T_CHECK_EQ_INT(p->n_string_table, 6);
		perftools__profiles__profile__free_unpacked(p, NULL);
	}
	strbuf_release(&sb);
	stacks__free(st);
}

/* Hostile labels: the input bytes and what they must read back as. */
struct hostile {
	const char *in;
	size_t len; /* 0: strlen(in) */
	const char *want;
};

#define FFFD "\xef\xbf\xbd"

static const struct hostile HOSTILE[] = {
	{ "a;b;c", 0, "a;b;c" },
	{ "say \"hi\" 'x' \\ %s %n", 0, "say \"hi\" 'x' \\ %s %n" },
	{ "<script>alert(1)</script> (/x.py:3)", 0, "<script>alert(1)</script> (/x.py:3)" },
	{ "bad\xff\xfe name (/p\xc3\x28.py:7)", 0, "bad" FFFD FFFD " name (/p" FFFD "(.py:7)" },
	{ "nul\0byte", 8, "nul" FFFD "byte" },
	{ "overlong \xc0\xaf \xe0\x80\xaf", 0, "overlong " FFFD FFFD " " FFFD FFFD FFFD },
	{ "surrogate \xed\xa0\x80", 0, "surrogate " FFFD FFFD FFFD },
	{ "big \xf4\x90\x80\x80", 0, "big " FFFD FFFD FFFD FFFD },
	{ "cut \xe2\x82", 0, "cut " FFFD FFFD },
	{ "a\xff", 0, "a" FFFD }, /* cleans to the same string as the next one */
	{ "a\xfe", 0, "a" FFFD },
	{ "f (a:b (c.py:12)", 0, "f (a:b (c.py:12)" },
	{ "x (y.py:notanumber)", 0, "x (y.py:notanumber)" },
	{ "g (x.py:007)", 0, "g (x.py:007)" },
	{ "h (x.py:-3)", 0, "h (x.py:-3)" },
	{ "k (x.py:-0)", 0, "k (x.py:-0)" },
	{ "m (x.py:1234567890123456789)", 0, "m (x.py:1234567890123456789)" },
	{ "", 0, "" },
	{ " (a.py:1)", 0, " (a.py:1)" },
	{ "n (:1)", 0, "n (:1)" },
	{ "(a.py:1)", 0, "(a.py:1)" },
	{ "12345678)", 0, "12345678)" },
	{ "q (r.py:5) ", 0, "q (r.py:5) " },
	{ "C:\\dir (x) (C:\\a:b.py:5)", 0, "C:\\dir (x) (C:\\a:b.py:5)" },
	{ "\xcf\x80 (\xc3\xbc.py:1)", 0, "\xcf\x80 (\xc3\xbc.py:1)" },
	{ "emoji \xf0\x9f\x98\x80\n\ttab", 0, "emoji \xf0\x9f\x98\x80\n\ttab" },
};
#define NHOSTILE (sizeof(HOSTILE) / sizeof(HOSTILE[0]))

/* How a few of them must split: (label as read back, name, file, line); file "" = no split. */
static const struct {
	const char *label, *name, *file;
	int64_t line;
} SPLITS[] = {
	{ "f (a:b (c.py:12)", "f", "a:b (c.py", 12 }, /* names end at the first " (" */
	{ "x (y.py:notanumber)", "x (y.py:notanumber)", "", 0 },
	{ "g (x.py:007)", "g (x.py:007)", "", 0 },
	{ "h (x.py:-3)", "h", "x.py", -3 },
	{ "k (x.py:-0)", "k (x.py:-0)", "", 0 },
	{ "m (x.py:1234567890123456789)", "m (x.py:1234567890123456789)", "", 0 },
	{ " (a.py:1)", " (a.py:1)", "", 0 },
	{ "n (:1)", "n (:1)", "", 0 },
	{ "C:\\dir (x) (C:\\a:b.py:5)", "C:\\dir", "x) (C:\\a:b.py", 5 },
	{ "<script>alert(1)</script> (/x.py:3)", "<script>alert(1)</script>", "/x.py", 3 },
	{ "bad" FFFD FFFD " name (/p" FFFD "(.py:7)", "bad" FFFD FFFD " name", "/p" FFFD "(.py",
	  7 },
	{ "\xcf\x80 (\xc3\xbc.py:1)", "\xcf\x80", "\xc3\xbc.py", 1 },
	{ "", "", "", 0 },
};

static void test_hostile(void)
{
	struct stacks *st = stacks__new(), *want = stacks__new();
	const char *env = getenv("PYSAMP_TEST_PPROF_OUT");
	char leaf[64], *longlabel, *longwant;
	struct strbuf sb;
	size_t i, longlen = 200000;
	Profile *p;

	if (!st || !want)
		abort();
	for (i = 0; i < NHOSTILE; i++) {
		const char *in[3], *out[3];
		size_t inlen[3], outlen[3];

		/* Each in its own stack: root, the hostile label, a distinct leaf. */
		snprintf(leaf, sizeof(leaf), "leaf%zu (/srv/leaf.py:%zu)", i, i + 1);
		in[0] = out[0] = "python3 [1]";
		in[1] = HOSTILE[i].in;
		out[1] = HOSTILE[i].want;
		in[2] = out[2] = leaf;
		for (int k = 0; k < 3; k++) {
			inlen[k] = strlen(in[k]);
			outlen[k] = strlen(out[k]);
		}
		if (HOSTILE[i].len)
			inlen[1] = HOSTILE[i].len;
		add_stack_bytes(st, in, inlen, 3, i + 1);
		add_stack_bytes(want, out, outlen, 3, i + 1);
	}
	/* A very long label, a Python frame with a 200 kB name and invalid bytes in it. */
	longlabel = malloc(longlen + 32);
	longwant = malloc(longlen * 3 + 32);
	if (!longlabel || !longwant)
		abort();
	for (i = 0; i < longlen; i++)
		longlabel[i] = i % 1000 == 999 ? '\x80' : 'A' + (char)(i % 26);
	strcpy(longlabel + longlen, " (/long.py:42)");
	{
		size_t k = 0;

		for (i = 0; i < longlen; i++) {
			if (longlabel[i] == '\x80') {
				memcpy(longwant + k, FFFD, 3);
				k += 3;
			} else {
				longwant[k++] = longlabel[i];
			}
		}
		strcpy(longwant + k, " (/long.py:42)");
	}
	{
		const char *in[2] = { "python3 [1]", longlabel },
			   *out[2] = { "python3 [1]", longwant };

		add_stack(st, in, 2, 1000);
		add_stack(want, out, 2, 1000);
	}

	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(pprof_write(st, NULL, &sb), 0);
	p = decode(&sb, 0, NULL);
	T_CHECK(p != NULL);
	if (p) {
		int64_t line;

		check_tables(p, 10000000);
		check_stacks(p, want);
		/* One location per distinct input label, even when two clean to the same bytes. */
		T_CHECK_EQ_INT(p->n_location, labels_used(st));
		for (i = 0; i < sizeof(SPLITS) / sizeof(SPLITS[0]); i++) {
			const Perftools__Profiles__Function *f =
				fn_of_label(p, SPLITS[i].label, &line);

			T_CHECK(f != NULL);
			if (!f) {
				fprintf(stderr, "  no location for \"%s\"\n", SPLITS[i].label);
				continue;
			}
			T_CHECK_EQ_STR(str_at(p, f->name), SPLITS[i].name);
			T_CHECK_EQ_STR(str_at(p, f->filename), SPLITS[i].file);
			T_CHECK_EQ_INT(line, SPLITS[i].line);
		}
		{
			const Perftools__Profiles__Function *f = fn_of_label(p, longwant, &line);

			T_CHECK(f != NULL && strlen(str_at(p, f->name)) == strlen(longwant) - 14);
			T_CHECK_EQ_INT(line, 42);
		}
		perftools__profiles__profile__free_unpacked(p, NULL);
	}
	if (env && *env) {
		T_CHECK_EQ_INT(write_file(env, &sb), 0);
		printf("hostile-labels profile written to %s (%zu bytes)\n", env, sb.len);
	}
	strbuf_release(&sb);
	free(longlabel);
	free(longwant);
	stacks__free(st);
	stacks__free(want);
}

/* 100,000 unique stacks of depth 9 over about 1,100 labels. */
static void test_many(void)
{
	struct stacks *st = stacks__new();
	struct pprof_opts o = { .hz = 99 };
	char names[9][80];
	const char *labels[9];
	struct strbuf sb;
	size_t raw = 0;
	double t0, t1, t2;
	Profile *p;
	int i, k;

	if (!st)
		abort();
	for (i = 0; i < 100000; i++) {
		int d = i;

		snprintf(names[0], sizeof(names[0]), "python3 [4242]");
		snprintf(names[1], sizeof(names[1]), "<module> (/srv/app/main.py:1)");
		for (k = 0; k < 5; k++, d /= 10)
			snprintf(names[2 + k], sizeof(names[0]),
				 "pkg.mod%d.func%d (/srv/app/pkg/mod%d.py:%d)", k, d % 10, k,
				 10 * k + d % 10);
		snprintf(names[7], sizeof(names[0]), "Handler.run (/srv/app/h.py:%d)", i % 100);
		snprintf(names[8], sizeof(names[0]), "leaf%d (/srv/app/leaf.py:%d)", i % 1000,
			 i % 37);
		for (k = 0; k < 9; k++)
			labels[k] = names[k];
		add_stack(st, labels, 9, 1 + (uint64_t)(i % 7));
	}
	T_CHECK_EQ_INT(stacks__nstacks(st), 100000);

	strbuf_init(&sb, 0);
	t0 = now_s();
	T_CHECK_EQ_INT(pprof_write(st, &o, &sb), 0);
	t1 = now_s();
	p = decode(&sb, 0, &raw);
	t2 = now_s();
	printf("pprof_write: 100000 stacks, %zu labels -> %zu bytes gzipped (%zu raw) in %.3f s "
	       "(gunzip + unpack %.3f s)\n",
	       stacks__nlabels(st), sb.len, raw, t1 - t0, t2 - t1);
	T_CHECK(t1 - t0 < 2.0);
	T_CHECK(p != NULL);
	if (p) {
		check_tables(p, 1000000000LL / 99);
		check_stacks(p, st);
		T_CHECK_EQ_INT(p->n_location, stacks__nlabels(st));
		perftools__profiles__profile__free_unpacked(p, NULL);
	}
	strbuf_release(&sb);
	stacks__free(st);
}

int main(void)
{
	test_basic();
	test_deterministic_and_append();
	test_errors();
	test_empty();
	test_hostile();
	test_many();
	return T_DONE();
}
