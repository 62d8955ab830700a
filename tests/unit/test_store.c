/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_store.c - SQLite profile storage: round trips, selections, hostile input, failed ingests
 * that leave nothing behind, and a writer killed with SIGKILL mid-stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "harness.h"
#include "log.h"
#include "stacks.h"
#include "store.h"
#include "util.h"

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_rf(const char *dir)
{
	T_CHECK_EQ_INT(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void make_tmpdir(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/test_store.XXXXXX");
	if (!mkdtemp(buf)) {
		perror("mkdtemp");
		exit(2);
	}
}

static struct stacks *new_stacks(void)
{
	struct stacks *st = stacks__new();

	if (!st) {
		perror("stacks__new");
		exit(2);
	}
	return st;
}

/* Add count samples of the stack "a;b;c" (frames split on ';'). */
static void add_folded(struct stacks *st, const char *line, uint64_t count)
{
	uint32_t ids[64];
	size_t n = 0;
	const char *p = line, *semi;

	for (;;) {
		semi = strchr(p, ';');
		if (!semi)
			semi = p + strlen(p);
		T_CHECK_EQ_INT(stacks__intern(st, p, (size_t)(semi - p), &ids[n]), 0);
		n++;
		if (!*semi || n == 64)
			break;
		p = semi + 1;
	}
	T_CHECK_EQ_INT(stacks__add(st, ids, n, count), 0);
}

/* Add a stack given as raw labels (any bytes) with explicit lengths. */
static void add_raw(struct stacks *st, const char *const *labels, const size_t *lens, size_t n,
		    uint64_t count)
{
	uint32_t ids[16];
	size_t i;

	for (i = 0; i < n; i++)
		T_CHECK_EQ_INT(stacks__intern(st, labels[i], lens[i], &ids[i]), 0);
	T_CHECK_EQ_INT(stacks__add(st, ids, n, count), 0);
}

struct render {
	const struct stacks *st;
	struct strbuf sb;
};

/* "len:bytes|len:bytes count\n" per stack: unambiguous for any label bytes. */
static int render_visit(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct render *r = arg;
	const char *l;
	size_t i, len;

	for (i = 0; i < n; i++) {
		l = stacks__label_bytes(r->st, ids[i], &len);
		if (!l)
			return -EINVAL;
		if ((i && strbuf_add(&r->sb, "|", 1)) || strbuf_addf(&r->sb, "%zu:", len) ||
		    strbuf_add(&r->sb, l, len))
			return -ENOMEM;
	}
	return strbuf_addf(&r->sb, " %" PRIu64 "\n", count);
}

/* Canonical rendering, independent of insertion order; caller frees. */
static char *render(const struct stacks *st)
{
	struct render r = { .st = st };
	char *s;

	strbuf_init(&r.sb, 0);
	T_CHECK_EQ_INT(stacks__foreach_sorted(st, render_visit, &r), 0);
	s = strbuf_detach(&r.sb, NULL);
	if (!s)
		exit(2);
	return s;
}

/* Does a query of (app, match, [from, until)) give exactly what expect holds? */
static int query_equals(struct store *s, const char *app, const char *match, int64_t from,
			int64_t until, const struct stacks *expect)
{
	struct stacks *out = new_stacks();
	char *a, *b;
	int ok, err;

	err = store__query(s, app, match, from, until, out);
	a = render(out);
	b = render(expect);
	ok = err == 0 && strcmp(a, b) == 0;
	if (!ok)
		fprintf(stderr,
			"query %s [%s] [%" PRId64 ",%" PRId64 "): err %d\ngot:\n%s\nwant:\n%s\n",
			app, match ? match : "(null)", from, until, err, a, b);
	free(a);
	free(b);
	stacks__free(out);
	return ok;
}

/* One stack for terse expectations: pairs of (folded line, count), ends at NULL. */
static struct stacks *stacks_of(const char *line, ...)
{
	struct stacks *st = new_stacks();
	va_list ap;

	va_start(ap, line);
	while (line) {
		add_folded(st, line, va_arg(ap, uint64_t));
		line = va_arg(ap, const char *);
	}
	va_end(ap);
	return st;
}

static int ingest_folded(struct store *s, const char *app, const char *labels, int64_t from,
			 const char *line, uint64_t count)
{
	struct stacks *st = stacks_of(line, count, (const char *)NULL);
	int err = store__ingest(s, app, labels, from, from + 10, 100, st);

	stacks__free(st);
	return err;
}

struct merge {
	struct stacks *dst;
	const struct stacks *src;
};

static int merge_visit(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct merge *m = arg;
	uint32_t out[64];
	const char *l;
	size_t i, len;
	int err;

	if (n > 64)
		return -E2BIG;
	for (i = 0; i < n; i++) {
		l = stacks__label_bytes(m->src, ids[i], &len);
		err = stacks__intern(m->dst, l, len, &out[i]);
		if (err)
			return err;
	}
	return stacks__add(m->dst, out, n, count);
}

/* Add every stack of src to dst, by label bytes. */
static void merge_into(struct stacks *dst, const struct stacks *src)
{
	struct merge m = { .dst = dst, .src = src };

	T_CHECK_EQ_INT(stacks__foreach(src, merge_visit, &m), 0);
}

struct timeline {
	struct strbuf sb;
};

static int timeline_visit(void *arg, int64_t t, uint64_t count)
{
	struct timeline *tl = arg;

	return strbuf_addf(&tl->sb, "%" PRId64 ":%" PRIu64 " ", t, count);
}

/* Timeline as "t:count t:count "; caller frees. */
static char *timeline_of(struct store *s, const char *app, const char *match, int64_t from,
			 int64_t until)
{
	struct timeline tl;
	char *str;

	strbuf_init(&tl.sb, 0);
	T_CHECK_EQ_INT(store__timeline(s, app, match, from, until, timeline_visit, &tl), 0);
	str = strbuf_detach(&tl.sb, NULL);
	if (!str)
		exit(2);
	return str;
}

static int series_visit(void *arg, const char *app, const char *labels, int64_t first_s,
			int64_t last_s, uint64_t samples, uint32_t sample_rate)
{
	struct strbuf *sb = arg;

	return strbuf_addf(sb, "%s|%s|%" PRId64 "|%" PRId64 "|%" PRIu64 "|%u\n", app, labels,
			   first_s, last_s, samples, sample_rate);
}

static char *series_of(struct store *s)
{
	struct strbuf sb;
	char *str;

	strbuf_init(&sb, 0);
	T_CHECK_EQ_INT(store__series(s, series_visit, &sb), 0);
	str = strbuf_detach(&sb, NULL);
	if (!str)
		exit(2);
	return str;
}

/* Run a one-number SQL query on the database file directly (for checks from outside). */
static int64_t sql_num(const char *dir, const char *sql)
{
	char path[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	int64_t v = -1;

	snprintf(path, sizeof(path), "%s/profiles.db", dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK &&
	    sqlite3_step(stmt) == SQLITE_ROW)
		v = sqlite3_column_int64(stmt, 0);
	else
		fprintf(stderr, "sql '%s': %s\n", sql, sqlite3_errmsg(db));
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return v;
}

static int sql_exec(const char *dir, const char *sql)
{
	char path[512];
	sqlite3 *db = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/profiles.db", dir);
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		fprintf(stderr, "sql '%s': %s\n", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
	return rc;
}

static int integrity_ok(const char *dir)
{
	char path[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	int ok = 0;

	snprintf(path, sizeof(path), "%s/profiles.db", dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, NULL) == SQLITE_OK &&
	    sqlite3_step(stmt) == SQLITE_ROW)
		ok = strcmp((const char *)sqlite3_column_text(stmt, 0), "ok") == 0;
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return ok;
}

static void test_roundtrip(void)
{
	char dir[64], err[256] = "";
	struct store *s;
	struct stacks *st, *want;
	char *str;

	make_tmpdir(dir, sizeof(dir));
	s = store__open(dir, err, sizeof(err));
	T_CHECK(s != NULL);
	if (!s) {
		fprintf(stderr, "open: %s\n", err);
		rm_rf(dir);
		return;
	}

	st = stacks_of("main;f;g", (uint64_t)3, "main;h", (uint64_t)2, (const char *)NULL);
	T_CHECK_EQ_INT(store__ingest(s, "web", "env=prod,host=a", 100, 110, 100, st), 0);
	stacks__free(st);
	/* Same bucket (105 rounds down to 100): counts add up. */
	T_CHECK_EQ_INT(ingest_folded(s, "web", "env=prod,host=a", 105, "main;f;g", 4), 0);
	st = stacks_of("main;f;g", (uint64_t)1, "main;x", (uint64_t)5, (const char *)NULL);
	T_CHECK_EQ_INT(store__ingest(s, "web", "env=prod,host=b", 110, 120, 99, st), 0);
	stacks__free(st);
	/* Spans two buckets but lands wholly in the bucket of from_s (120). */
	T_CHECK_EQ_INT(ingest_folded(s, "web", "env=dev,host=a", 129, "main;h", 7), 0);
	T_CHECK_EQ_INT(ingest_folded(s, "db", "", 100, "q", 9), 0);

	want = stacks_of("main;f;g", (uint64_t)8, "main;h", (uint64_t)9, "main;x", (uint64_t)5,
			 (const char *)NULL);
	T_CHECK(query_equals(s, "web", NULL, 0, 1000, want));
	T_CHECK(query_equals(s, "web", "", 0, 1000, want));
	stacks__free(want);

	want = stacks_of("main;f;g", (uint64_t)8, "main;h", (uint64_t)2, "main;x", (uint64_t)5,
			 (const char *)NULL);
	T_CHECK(query_equals(s, "web", "env=prod", 0, 1000, want));
	stacks__free(want);
	want = stacks_of("main;f;g", (uint64_t)7, "main;h", (uint64_t)9, (const char *)NULL);
	T_CHECK(query_equals(s, "web", "host=a", 0, 1000, want));
	stacks__free(want);
	want = stacks_of("main;f;g", (uint64_t)7, "main;h", (uint64_t)2, (const char *)NULL);
	T_CHECK(query_equals(s, "web", "env=prod,host=a", 0, 1000, want));
	T_CHECK(query_equals(s, "web", "host=a,env=prod", 0, 1000, want));
	T_CHECK(query_equals(s, "web", ",host=a,,env=prod,", 0, 1000, want));
	/* Interval selection by bucket start: [100, 110) is bucket 100 only. */
	T_CHECK(query_equals(s, "web", NULL, 100, 110, want));
	T_CHECK(query_equals(s, "web", NULL, 91, 101, want));
	stacks__free(want);

	want = new_stacks();
	T_CHECK(query_equals(s, "web", "env=pro", 0, 1000, want)); /* whole items only */
	T_CHECK(query_equals(s, "web", "env=prod,host=c", 0, 1000, want));
	T_CHECK(query_equals(s, "web", NULL, 101, 110, want));
	T_CHECK(query_equals(s, "web", NULL, 130, 1000, want));
	T_CHECK(query_equals(s, "nope", NULL, 0, 1000, want));
	T_CHECK(query_equals(s, "we", NULL, 0, 1000, want));
	stacks__free(want);

	want = stacks_of("main;h", (uint64_t)7, (const char *)NULL);
	T_CHECK(query_equals(s, "web", NULL, 120, 130, want));
	stacks__free(want);
	want = stacks_of("q", (uint64_t)9, (const char *)NULL);
	T_CHECK(query_equals(s, "db", NULL, 0, 1000, want));
	stacks__free(want);

	/* Querying into a non-empty aggregator merges. */
	st = stacks_of("q", (uint64_t)1, "other", (uint64_t)2, (const char *)NULL);
	T_CHECK_EQ_INT(store__query(s, "db", NULL, 0, 1000, st), 0);
	want = stacks_of("q", (uint64_t)10, "other", (uint64_t)2, (const char *)NULL);
	str = render(want);
	{
		char *got = render(st);

		T_CHECK_EQ_STR(got, str);
		free(got);
	}
	free(str);
	stacks__free(want);
	stacks__free(st);

	str = timeline_of(s, "web", NULL, 0, 1000);
	T_CHECK_EQ_STR(str, "100:9 110:6 120:7 ");
	free(str);
	str = timeline_of(s, "web", "env=prod", 0, 1000);
	T_CHECK_EQ_STR(str, "100:9 110:6 ");
	free(str);
	str = timeline_of(s, "web", NULL, 110, 120);
	T_CHECK_EQ_STR(str, "110:6 ");
	free(str);
	str = timeline_of(s, "nope", NULL, 0, 1000);
	T_CHECK_EQ_STR(str, "");
	free(str);

	str = series_of(s);
	T_CHECK_EQ_STR(str, "db||100|100|9|100\n"
			    "web|env=dev,host=a|120|120|7|100\n"
			    "web|env=prod,host=a|100|100|9|100\n"
			    "web|env=prod,host=b|110|110|6|99\n");
	free(str);

	/* Reopen: the same data comes back. */
	store__free(s);
	s = store__open(dir, err, sizeof(err));
	T_CHECK(s != NULL);
	if (s) {
		want = stacks_of("main;f;g", (uint64_t)8, "main;h", (uint64_t)9, "main;x",
				 (uint64_t)5, (const char *)NULL);
		T_CHECK(query_equals(s, "web", NULL, 0, 1000, want));
		stacks__free(want);
		str = timeline_of(s, "web", NULL, 0, 1000);
		T_CHECK_EQ_STR(str, "100:9 110:6 120:7 ");
		free(str);
	}
	store__free(s);
	T_CHECK_EQ_INT(sql_num(dir, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM frames"), 6);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM stacks"), 4);
	T_CHECK(integrity_ok(dir));
	rm_rf(dir);
}

/* Many random profiles over 3 series and 20 buckets against an in-memory reference. */
static void test_random(void)
{
	static const char *const frames[] = { "main", "a", "b", "c", "d", "e", "f", "g" };
	static const char *const labels[] = { "s=0", "s=1", "s=2,t=x" };
	struct stacks *ref[3], *bucket_ref, *st;
	char dir[64], err[256] = "";
	uint64_t rng = 0x1234567;
	uint32_t ids[8];
	struct store *s;
	int i, j, k, ser, depth;
	int64_t from;

	make_tmpdir(dir, sizeof(dir));
	s = store__open(dir, err, sizeof(err));
	T_CHECK(s != NULL);
	if (!s) {
		rm_rf(dir);
		return;
	}
	for (i = 0; i < 3; i++)
		ref[i] = new_stacks();
	bucket_ref = new_stacks(); /* series 1, bucket 50 */
	for (i = 0; i < 200; i++) {
		st = new_stacks();
		ser = (int)(rng_next(&rng) % 3);
		from = (int64_t)(rng_next(&rng) % 20) * 10 + (int64_t)(rng_next(&rng) % 10);
		for (j = 0; j < 10; j++) {
			uint64_t count = rng_next(&rng) % 50 + 1;

			depth = (int)(rng_next(&rng) % 7) + 1;
			for (k = 0; k < depth; k++) {
				const char *f = frames[rng_next(&rng) % 8];

				T_CHECK_EQ_INT(stacks__intern(st, f, strlen(f), &ids[k]), 0);
			}
			T_CHECK_EQ_INT(stacks__add(st, ids, (size_t)depth, count), 0);
		}
		T_CHECK_EQ_INT(store__ingest(s, "rnd", labels[ser], from, from + 10, 100, st), 0);
		merge_into(ref[ser], st);
		if (ser == 1 && from / 10 == 5)
			merge_into(bucket_ref, st);
		stacks__free(st);
	}
	for (i = 0; i < 3; i++) {
		T_CHECK(query_equals(s, "rnd", labels[i], 0, 200, ref[i]));
		stacks__free(ref[i]);
	}
	T_CHECK(query_equals(s, "rnd", "s=1", 50, 60, bucket_ref));
	T_CHECK(query_equals(s, "rnd", "s=1", 41, 51, bucket_ref));
	stacks__free(bucket_ref);
	store__free(s);
	rm_rf(dir);
}

/* Hostile names, labels and frames are stored and returned byte for byte. */
static void test_hostile(void)
{
	static const char app[] = "x'; DROP TABLE series; --";
	static const char labels[] =
		"k=\"v\";DELETE FROM samples,z=\xc3\xbcn\xc3\xaf\xf0\x9f\x98\x80";
	char dir[64], err[256] = "", *big, *str, *want_series;
	const char *l[6];
	size_t len[6], i;
	struct stacks *st, *want;
	struct store *s;

	make_tmpdir(dir, sizeof(dir));
	s = store__open(dir, err, sizeof(err));
	T_CHECK(s != NULL);
	if (!s) {
		rm_rf(dir);
		return;
	}
	big = malloc(64 * 1024);
	if (!big)
		exit(2);
	for (i = 0; i < 64 * 1024; i++)
		big[i] = (char)('A' + i % 26);
	big[100] = '\'';
	big[200] = ';';

	st = new_stacks();
	l[0] = "'; DROP TABLE frames; --";
	l[1] = "a\"b'c`d";
	l[2] = "semi;colon\nnew line\ttab";
	l[3] = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x90\x8d (x.py:1)";
	l[4] = "\xff\xfe not utf-8 \x80";
	l[5] = "";
	for (i = 0; i < 6; i++)
		len[i] = strlen(l[i]);
	add_raw(st, l, len, 6, 3);
	l[0] = big;
	len[0] = 64 * 1024;
	l[1] = "%s%n%x";
	len[1] = strlen(l[1]);
	add_raw(st, l, len, 2, 5);
	len[0] = 64 * 1024 - 1; /* a prefix of the big frame is a different frame */
	add_raw(st, l, len, 2, 7);
	T_CHECK_EQ_INT(store__ingest(s, app, labels, 1000, 1010, 100, st), 0);
	T_CHECK(query_equals(s, app, NULL, 0, 2000, st));
	T_CHECK(query_equals(s, app, "k=\"v\";DELETE FROM samples", 0, 2000, st));
	T_CHECK(query_equals(s, app, "z=\xc3\xbcn\xc3\xaf\xf0\x9f\x98\x80", 0, 2000, st));
	want = new_stacks();
	T_CHECK(query_equals(s, app, "z=%", 0, 2000, want));
	T_CHECK(query_equals(s, "x", NULL, 0, 2000, want));
	T_CHECK(query_equals(s, "x'; DROP TABLE series; -", NULL, 0, 2000, want));
	stacks__free(want);
	str = series_of(s);
	if (asprintf(&want_series, "%s|%s|1000|1000|15|100\n", app, labels) < 0)
		exit(2);
	T_CHECK_EQ_STR(str, want_series);
	free(want_series);
	free(str);
	store__free(s);

	s = store__open(dir, err, sizeof(err));
	T_CHECK(s != NULL);
	if (s)
		T_CHECK(query_equals(s, app, NULL, 0, 2000, st));
	store__free(s);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM sqlite_master WHERE name = 'frames'"), 1);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT max(length(name)) FROM frames"), 64 * 1024);
	T_CHECK(integrity_ok(dir));
	stacks__free(st);
	free(big);
	rm_rf(dir);
}

/* Failed ingests roll back completely; bad arguments and bad databases are refused. */
static void test_failures(void)
{
	char dir[64], path[128], err[256] = "", *before, *after;
	struct stacks *st, *want;
	struct store *s, *s2;
	int64_t nframes, nstacks;
	int fd;

	make_tmpdir(dir, sizeof(dir));
	s = store__open(dir, err, sizeof(err));
	T_CHECK(s != NULL);
	if (!s) {
		rm_rf(dir);
		return;
	}
	T_CHECK_EQ_INT(ingest_folded(s, "app", "", 0, "main;a", INT64_MAX - 10), 0);
	T_CHECK_EQ_INT(ingest_folded(s, "app", "", 10, "main;b", 1), 0);
	before = series_of(s);

	/* New frames and stacks first, then a count that would pass INT64_MAX. */
	st = stacks_of("fresh1;fresh2", (uint64_t)1, "main;a", (uint64_t)11, (const char *)NULL);
	T_CHECK_EQ_INT(store__ingest(s, "app", "", 5, 10, 100, st), -EOVERFLOW);
	stacks__free(st);
	/* A new series whose total would overflow: refused before anything is written. */
	st = stacks_of("x", (uint64_t)INT64_MAX, "y", (uint64_t)INT64_MAX, (const char *)NULL);
	T_CHECK_EQ_INT(store__ingest(s, "other", "", 0, 10, 100, st), -EOVERFLOW);
	stacks__free(st);
	after = series_of(s);
	T_CHECK_EQ_STR(after, before);
	free(after);
	want = stacks_of("main;a", (uint64_t)INT64_MAX - 10, "main;b", (uint64_t)1,
			 (const char *)NULL);
	T_CHECK(query_equals(s, "app", NULL, 0, 100, want));
	stacks__free(want);
	T_CHECK_EQ_INT(
		sql_num(dir, "SELECT count(*) FROM frames WHERE name = CAST('fresh1' AS BLOB)"), 0);

	/* A failure deep inside the transaction (a trigger aborts the sample insert). */
	nframes = sql_num(dir, "SELECT count(*) FROM frames");
	nstacks = sql_num(dir, "SELECT count(*) FROM stacks");
	T_CHECK_EQ_INT(sql_exec(dir,
				"CREATE TRIGGER boom BEFORE INSERT ON samples"
				" WHEN (SELECT app FROM series WHERE id = NEW.series_id) = 'boom'"
				" BEGIN SELECT RAISE(ABORT, 'boom'); END"),
		       SQLITE_OK);
	st = stacks_of("b1;b2", (uint64_t)3, (const char *)NULL);
	T_CHECK_EQ_INT(store__ingest(s, "boom", "k=v", 0, 10, 100, st), -EIO);
	stacks__free(st);
	after = series_of(s);
	T_CHECK_EQ_STR(after, before);
	free(after);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM frames"), nframes);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM stacks"), nstacks);
	T_CHECK_EQ_INT(sql_exec(dir, "DROP TRIGGER boom"), SQLITE_OK);
	/* The store is still usable after a rollback. */
	T_CHECK_EQ_INT(ingest_folded(s, "boom", "k=v", 0, "b1;b2", 3), 0);
	want = stacks_of("b1;b2", (uint64_t)3, (const char *)NULL);
	T_CHECK(query_equals(s, "boom", "k=v", 0, 10, want));
	stacks__free(want);
	free(before);

	/* Two connections on one directory see each other's commits. */
	s2 = store__open(dir, err, sizeof(err));
	T_CHECK(s2 != NULL);
	if (s2) {
		T_CHECK_EQ_INT(ingest_folded(s2, "two", "", 0, "t", 1), 0);
		T_CHECK_EQ_INT(ingest_folded(s, "two", "", 0, "t", 2), 0);
		want = stacks_of("t", (uint64_t)3, (const char *)NULL);
		T_CHECK(query_equals(s, "two", NULL, 0, 10, want));
		T_CHECK(query_equals(s2, "two", NULL, 0, 10, want));
		stacks__free(want);
	}
	store__free(s2);

	/* Bad arguments. */
	st = new_stacks();
	T_CHECK_EQ_INT(store__ingest(s, NULL, "", 0, 10, 100, st), -EINVAL);
	T_CHECK_EQ_INT(store__ingest(s, "a", NULL, 0, 10, 100, st), -EINVAL);
	T_CHECK_EQ_INT(store__ingest(s, "a", "", 0, 10, 100, NULL), -EINVAL);
	T_CHECK_EQ_INT(store__ingest(s, "a", "", -10, 10, 100, st), -EINVAL);
	T_CHECK_EQ_INT(store__ingest(s, "a", "", 20, 10, 100, st), -EINVAL);
	T_CHECK_EQ_INT(store__query(s, NULL, NULL, 0, 10, st), -EINVAL);
	T_CHECK_EQ_INT(store__query(s, "a", NULL, 0, 10, NULL), -EINVAL);
	T_CHECK_EQ_INT(store__timeline(s, "a", NULL, 0, 10, NULL, NULL), -EINVAL);
	T_CHECK_EQ_INT(store__series(s, NULL, NULL), -EINVAL);
	/* An empty profile records the series and nothing else. */
	T_CHECK_EQ_INT(store__ingest(s, "empty", "", 30, 40, 100, st), 0);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT samples + 10 * last_s FROM series WHERE app = 'empty'"),
		       300);
	stacks__free(st);
	store__free(s);
	store__free(NULL);

	/* A newer schema is refused. */
	T_CHECK_EQ_INT(sql_exec(dir, "PRAGMA user_version = 99"), SQLITE_OK);
	errno = 0;
	s = store__open(dir, err, sizeof(err));
	T_CHECK(s == NULL);
	T_CHECK_EQ_INT(errno, EINVAL);
	T_CHECK(strstr(err, "schema version 99") != NULL);
	store__free(s);

	/* A directory that is a file, and a database file that is not a database. */
	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	T_CHECK(fd >= 0);
	T_CHECK_EQ_INT(write(fd, "not a database, really not a database\n", 38), 38);
	close(fd);
	errno = 0;
	s = store__open(path, err, sizeof(err));
	T_CHECK(s == NULL);
	T_CHECK_EQ_INT(errno, ENOTDIR);
	store__free(s);
	snprintf(path, sizeof(path), "%s/bad", dir);
	T_CHECK_EQ_INT(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/bad/profiles.db", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	T_CHECK(fd >= 0);
	for (int i = 0; i < 200; i++)
		T_CHECK_EQ_INT(write(fd, "garbage garbage garbage garbage\n", 32), 32);
	close(fd);
	snprintf(path, sizeof(path), "%s/bad", dir);
	s = store__open(path, err, sizeof(err));
	T_CHECK(s == NULL);
	T_CHECK(err[0] != '\0');
	store__free(s);
	errno = 0;
	T_CHECK(store__open("", err, sizeof(err)) == NULL);
	T_CHECK_EQ_INT(errno, EINVAL);

	/* mkdir -p of a nested directory. */
	snprintf(path, sizeof(path), "%s/x/y/z", dir);
	s = store__open(path, NULL, 0);
	T_CHECK(s != NULL);
	store__free(s);
	rm_rf(dir);
}

#define KILL_STACKS 20

/* The profile a killed writer sends as its i-th ingest. */
static struct stacks *kill_profile(uint32_t i)
{
	struct stacks *st = new_stacks();
	char line[128];
	int j;

	for (j = 0; j < KILL_STACKS; j++) {
		snprintf(line, sizeof(line), "main;mod%d;fn_%u_%d", j % 5, i, j);
		add_folded(st, line, i % 7 + 1);
	}
	return st;
}

static void kill_child(const char *dir, int wfd)
{
	char err[256] = "";
	struct store *s = store__open(dir, err, sizeof(err));
	struct stacks *st;
	uint32_t i;

	if (!s)
		_exit(3);
	for (i = 0; i < 1000000; i++) {
		st = kill_profile(i);
		if (store__ingest(s, "killed", "run=1", (int64_t)i * 10, (int64_t)i * 10 + 10, 100,
				  st))
			_exit(4);
		stacks__free(st);
		if (write(wfd, &i, sizeof(i)) != sizeof(i))
			_exit(5);
	}
	store__free(s);
	_exit(0);
}

/* A writer killed with SIGKILL mid-stream loses nothing it reported and leaves no half ingest. */
static void test_kill9(void)
{
	char dir[64], err[256] = "", *line;
	int fds[2], status = 0, round;
	uint32_t v, got, last;
	struct store *s;
	struct stacks *want;
	pid_t pid;
	int64_t t, n;
	uint64_t count;
	const char *p;

	make_tmpdir(dir, sizeof(dir));
	for (round = 0; round < 3; round++) {
		T_CHECK_EQ_INT(pipe(fds), 0);
		fflush(NULL);
		pid = fork();
		if (pid == 0) {
			close(fds[0]);
			kill_child(dir, fds[1]);
		}
		T_CHECK(pid > 0);
		close(fds[1]);
		got = 0;
		last = UINT32_MAX;
		/* Let it commit a while (round 0 early, later rounds on top of more data). */
		while (got < 30u + 200u * (uint32_t)round &&
		       read(fds[0], &v, sizeof(v)) == (ssize_t)sizeof(v)) {
			last = v;
			got++;
		}
		usleep((useconds_t)(rng_next(&(uint64_t){ 77 + (uint64_t)round }) % 3000));
		T_CHECK_EQ_INT(kill(pid, SIGKILL), 0);
		T_CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
		T_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		while (read(fds[0], &v, sizeof(v)) == (ssize_t)sizeof(v))
			last = v;
		close(fds[0]);
		T_CHECK(last != UINT32_MAX);

		T_CHECK(integrity_ok(dir));
		T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
		s = store__open(dir, err, sizeof(err));
		T_CHECK(s != NULL);
		if (!s)
			break;
		/* Every reported ingest is whole; at most one more (committed, unreported). */
		line = timeline_of(s, "killed", "run=1", 0, INT64_MAX);
		n = 0;
		for (p = line; *p; n++) {
			char *end;

			t = strtoll(p, &end, 10);
			count = strtoull(end + 1, &end, 10);
			p = end + 1;
			if (t != n * 10 || count != (uint64_t)(KILL_STACKS * (n % 7 + 1))) {
				T_CHECK(!"timeline bucket wrong");
				fprintf(stderr, "bucket %" PRId64 " count %" PRIu64 "\n", t, count);
				break;
			}
		}
		T_CHECK(n >= (int64_t)last + 1 && n <= (int64_t)last + 2);
		if (getenv("TEST_STORE_VERBOSE"))
			fprintf(stderr, "kill round %d: %u reported, %" PRId64 " stored\n", round,
				last + 1, n);
		/* The last reported profile, frame by frame. */
		want = kill_profile(last);
		T_CHECK(query_equals(s, "killed", NULL, (int64_t)last * 10, (int64_t)last * 10 + 10,
				     want));
		stacks__free(want);
		free(line);
		store__free(s);
		/* The next child restarts at ingest 0 into the same buckets: clear them. */
		T_CHECK_EQ_INT(sql_exec(dir, "DELETE FROM samples; DELETE FROM series"), SQLITE_OK);
	}
	rm_rf(dir);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	test_roundtrip();
	test_random();
	test_hostile();
	test_failures();
	test_kill9();
	return T_DONE();
}
