/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_store.c - SQLite profile storage: round trips, selections, hostile input, failed ingests
 * that leave nothing behind, a writer killed with SIGKILL mid-stream; retention policies,
 * downsampling that keeps every count, expiry, the disk bound, the version 1 -> 3 and 2 -> 3
 * conversions, garbage collection with coherent caches across handles, SIGKILL during compaction,
 * and hour rollups that give the same queries and timelines as the buckets they sum.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
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
		T_CHECK_EQ_INT(sql_exec(dir, "DELETE FROM samples; DELETE FROM rollup_todo;"
					     " DELETE FROM series"),
			       SQLITE_OK);
	}
	rm_rf(dir);
}

/* ---- retention, compaction, bounded disk ---- */

static struct store *open_or_die(const char *dir)
{
	char err[256] = "";
	struct store *s = store__open(dir, err, sizeof(err));

	if (!s) {
		fprintf(stderr, "store__open %s: %s\n", dir, err);
		exit(2);
	}
	return s;
}

static void set_tiers(struct store *s, const char *spec)
{
	struct store_tier t[STORE_MAX_TIERS];
	char err[256] = "";
	size_t n = 0;

	T_CHECK_EQ_INT(store_parse_retention(spec, t, STORE_MAX_TIERS, &n, err, sizeof(err)), 0);
	T_CHECK_EQ_INT(store__set_retention(s, t, n), 0);
}

/* Call store__compact until it says it is done; returns the number of calls. */
static int compact_all(struct store *s, int64_t now, size_t max_rows)
{
	bool more = true;
	int calls = 0;

	while (more && calls < 100000) {
		more = false;
		T_CHECK_EQ_INT(store__compact(s, now, max_rows, &more), 0);
		calls++;
	}
	T_CHECK(!more);
	return calls;
}

/* The rendered result of a query and its total. */
static char *query_render(struct store *s, const char *app, const char *match, int64_t from,
			  int64_t until, uint64_t *total)
{
	struct stacks *out = new_stacks();
	char *r;

	T_CHECK_EQ_INT(store__query(s, app, match, from, until, out), 0);
	r = render(out);
	if (total)
		*total = stacks__total(out);
	stacks__free(out);
	return r;
}

struct tl2 {
	struct strbuf sb;
	uint64_t sum;
	uint64_t widths[8];
	size_t nwidths;
	int misaligned;
	int64_t last_t;
};

static int timeline2_visit(void *arg, int64_t t, int64_t width, uint64_t count)
{
	struct tl2 *tl = arg;
	size_t i;

	if (width <= 0 || t % width || t < tl->last_t)
		tl->misaligned++;
	tl->last_t = t;
	tl->sum += count;
	for (i = 0; i < tl->nwidths && tl->widths[i] != (uint64_t)width; i++)
		;
	if (i == tl->nwidths && i < 8)
		tl->widths[tl->nwidths++] = (uint64_t)width;
	return strbuf_addf(&tl->sb, "%" PRId64 "/%" PRId64 ":%" PRIu64 " ", t, width, count);
}

/* Timeline2 facts of a selection; returns the rendering, caller frees. */
static char *timeline2_of(struct store *s, const char *app, const char *match, int64_t from,
			  int64_t until, struct tl2 *tl)
{
	char *str;

	memset(tl, 0, sizeof(*tl));
	tl->last_t = INT64_MIN;
	strbuf_init(&tl->sb, 0);
	T_CHECK_EQ_INT(store__timeline2(s, app, match, from, until, timeline2_visit, tl), 0);
	str = strbuf_detach(&tl->sb, NULL);
	if (!str)
		exit(2);
	return str;
}

static uint64_t timeline_sum(struct store *s, const char *app, const char *match, int64_t from,
			     int64_t until)
{
	struct tl2 tl;
	char *str = timeline2_of(s, app, match, from, until, &tl);

	free(str);
	T_CHECK_EQ_INT(tl.misaligned, 0);
	return tl.sum;
}

static struct store_stats stats_of(struct store *s)
{
	struct store_stats st;

	T_CHECK_EQ_INT(store__stats(s, &st), 0);
	return st;
}

static uint64_t tiers_samples(const struct store_stats *st)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < st->ntiers; i++)
		n += st->tiers[i].samples;
	return n;
}

/* A random profile over a pool of 16 stacks (prefix names the pool, so pools can differ). */
static struct stacks *pool_profile(uint64_t *rng, const char *prefix, int nstacks)
{
	struct stacks *st = new_stacks();
	char line[128];
	int j;

	for (j = 0; j < nstacks; j++) {
		int k = (int)(rng_next(rng) % 16);

		snprintf(line, sizeof(line), "%s;mod%d;fn%d;leaf%d", prefix, k % 3, k % 7, k);
		add_folded(st, line, rng_next(rng) % 20 + 1);
	}
	return st;
}

static void test_retention_parse(void)
{
	static const struct {
		const char *spec, *msg;
	} bad[] = {
		{ "", "empty" },
		{ "10s", "expected WIDTH:KEEP" },
		{ "10s:", "expected WIDTH:KEEP" },
		{ ":2d", "expected WIDTH:KEEP" },
		{ "10s:2d,", "tier 2 is empty" },
		{ ",10s:2d", "tier 1 is empty" },
		{ "10:2d", "unit s, m, h or d" },
		{ "10s:2x", "unit s, m, h or d" },
		{ "10s:-2d", "expected WIDTH:KEEP" },
		{ "10s:2d 1m:14d", "expected WIDTH:KEEP" },
		{ "10s:2d;1m:14d", "expected WIDTH:KEEP" },
		{ "10s:0d", "between 1s" },
		{ "0s:1d", "between 1s" },
		{ "20s:2d", "must be 10s" },
		{ "1m:2d", "must be 10s" },
		{ "10s:2d,10s:3d", "must exceed" },
		{ "10s:2d,1m:14d,30s:1d", "must exceed" },
		{ "10s:2d,15s:3d", "multiple" },
		{ "10s:2d,1m:14d,90s:1d", "multiple" },
		{ "10s:1d,1m:1d,1h:1d,1d:1d,2d:1d", "more than 4" },
		{ "10s:36501d", "over 100 years" },
		{ "10s:99999999999999999999999d", "over 100 years" },
	};
	struct store_tier t[STORE_MAX_TIERS];
	struct store_stats st;
	char err[256], dir[64];
	struct store *s;
	size_t n = 0, i;

	T_CHECK_EQ_INT(store_parse_retention("10s:2d,1m:14d,1h:365d", t, STORE_MAX_TIERS, &n, err,
					     sizeof(err)),
		       0);
	T_CHECK_EQ_INT(n, 3);
	T_CHECK_EQ_INT(t[0].width_s, 10);
	T_CHECK_EQ_INT(t[0].keep_s, 2 * 86400);
	T_CHECK_EQ_INT(t[1].width_s, 60);
	T_CHECK_EQ_INT(t[1].keep_s, 14 * 86400);
	T_CHECK_EQ_INT(t[2].width_s, 3600);
	T_CHECK_EQ_INT(t[2].keep_s, 365 * 86400);
	T_CHECK_EQ_INT(store_parse_retention(STORE_RETENTION_DEFAULT, t, 3, &n, err, sizeof(err)),
		       0);
	T_CHECK_EQ_INT(n, 3);
	T_CHECK_EQ_INT(store_parse_retention("10s:1h", t, 1, &n, err, sizeof(err)), 0);
	T_CHECK_EQ_INT(n, 1);
	T_CHECK_EQ_INT(t[0].keep_s, 3600);
	T_CHECK_EQ_INT(store_parse_retention("10s:30s,20s:1m,60s:5m,2h:36500d", t, 4, &n, err,
					     sizeof(err)),
		       0);
	T_CHECK_EQ_INT(n, 4);
	T_CHECK_EQ_INT(t[1].width_s, 20);
	T_CHECK_EQ_INT(t[2].width_s, 60);
	T_CHECK_EQ_INT(t[3].width_s, 7200);
	T_CHECK_EQ_INT(t[3].keep_s, STORE_MAX_SPAN_S);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		T_CHECK_EQ_INT(store_parse_retention(bad[i].spec, t, STORE_MAX_TIERS, &n, err,
						     sizeof(err)),
			       -EINVAL);
		if (!strstr(err, bad[i].msg)) {
			T_CHECK(!"retention error message");
			fprintf(stderr, "spec '%s': '%s' lacks '%s'\n", bad[i].spec, err,
				bad[i].msg);
		}
	}
	T_CHECK_EQ_INT(store_parse_retention(STORE_RETENTION_DEFAULT, t, 2, &n, err, sizeof(err)),
		       -EINVAL);
	T_CHECK(strstr(err, "room for 2") != NULL);
	T_CHECK_EQ_INT(store_parse_retention(NULL, t, 4, &n, NULL, 0), -EINVAL);
	T_CHECK_EQ_INT(store_parse_retention("10s:1d", NULL, 4, &n, NULL, 0), -EINVAL);

	/* store__set_retention refuses what the parser refuses and then changes nothing. */
	make_tmpdir(dir, sizeof(dir));
	s = open_or_die(dir);
	st = stats_of(s);
	T_CHECK_EQ_INT(st.ntiers, 3);
	T_CHECK_EQ_INT(st.tiers[2].width_s, 3600);
	T_CHECK_EQ_INT(st.tiers[2].keep_s, 365 * 86400);
	set_tiers(s, "10s:1h,1m:1d");
	T_CHECK_EQ_INT(store__set_retention(s, t, 0), -EINVAL);
	T_CHECK_EQ_INT(store__set_retention(s, t, STORE_MAX_TIERS + 1), -EINVAL);
	T_CHECK_EQ_INT(store__set_retention(NULL, t, 1), -EINVAL);
	T_CHECK_EQ_INT(store__set_retention(s, NULL, 1), -EINVAL);
	t[0] = (struct store_tier){ 10, 100 };
	t[1] = (struct store_tier){ 25, 100 };
	T_CHECK_EQ_INT(store__set_retention(s, t, 2), -EINVAL);
	t[1] = (struct store_tier){ 30, 0 };
	T_CHECK_EQ_INT(store__set_retention(s, t, 2), -EINVAL);
	t[0] = (struct store_tier){ 5, 100 };
	T_CHECK_EQ_INT(store__set_retention(s, t, 1), -EINVAL);
	st = stats_of(s);
	T_CHECK_EQ_INT(st.ntiers, 2);
	T_CHECK_EQ_INT(st.tiers[0].keep_s, 3600);
	T_CHECK_EQ_INT(st.tiers[1].width_s, 60);
	T_CHECK_EQ_INT(st.tiers[1].keep_s, 86400);
	T_CHECK_EQ_INT(store__set_max_bytes(NULL, 1), -EINVAL);
	T_CHECK_EQ_INT(store__compact(s, 0, 0, NULL), -EINVAL);
	T_CHECK_EQ_INT(store__compact(NULL, 0, 10, NULL), -EINVAL);
	T_CHECK_EQ_INT(store__stats(s, NULL), -EINVAL);
	T_CHECK_EQ_INT(store__timeline2(s, "a", NULL, 0, 10, NULL, NULL), -EINVAL);
	/* Compacting an empty database is fine. */
	T_CHECK_EQ_INT(compact_all(s, 1000000, 10), 1);
	store__free(s);
	rm_rf(dir);
}

#define RU_T0 ((int64_t)3600 * 450000) /* hour-aligned */

/* A damaged counts blob or samples row is reported as -EIO and harms nothing else. */
static void test_corrupt(void)
{
	struct stacks *want, *out;
	char dir[64];
	struct store *s;
	bool more;

	make_tmpdir(dir, sizeof(dir));
	s = open_or_die(dir);
	T_CHECK_EQ_INT(ingest_folded(s, "ok", "", 100, "main;a", 3), 0);
	T_CHECK_EQ_INT(ingest_folded(s, "bad", "", 100, "main;b", 4), 0);
	T_CHECK_EQ_INT(sql_exec(dir, "UPDATE counts SET data = x'8080' WHERE id ="
				     " (SELECT counts_id FROM samples x JOIN series s"
				     " ON s.id = x.series_id WHERE s.app = 'bad')"),
		       SQLITE_OK);
	out = new_stacks();
	T_CHECK_EQ_INT(store__query(s, "bad", NULL, 0, 1000, out), -EIO);
	stacks__free(out);
	want = stacks_of("main;a", (uint64_t)3, (const char *)NULL);
	T_CHECK(query_equals(s, "ok", NULL, 0, 1000, want));
	stacks__free(want);
	/* Compaction refuses to move it (and rolls back the step), the other series is intact. */
	T_CHECK_EQ_INT(store__compact(s, 1000000000, 100, &more), -EIO);
	T_CHECK(more);
	want = stacks_of("main;a", (uint64_t)3, (const char *)NULL);
	T_CHECK(query_equals(s, "ok", NULL, 0, 1000, want));
	stacks__free(want);
	/* Totals that disagree with the blob are caught as well. */
	T_CHECK_EQ_INT(sql_exec(dir, "UPDATE samples SET total = total + 1"
				     " WHERE series_id = (SELECT id FROM series WHERE app = 'ok')"),
		       SQLITE_OK);
	T_CHECK_EQ_INT(sql_exec(dir,
				"DELETE FROM samples"
				" WHERE series_id = (SELECT id FROM series WHERE app = 'bad')"),
		       SQLITE_OK);
	T_CHECK_EQ_INT(store__compact(s, 1000000000, 100, &more), -EIO);
	store__free(s);
	T_CHECK(integrity_ok(dir));
	rm_rf(dir);

	/* A malformed row costs its hour the rollup, not the compaction of everything else. */
	make_tmpdir(dir, sizeof(dir));
	s = open_or_die(dir);
	for (int i = 0; i < 4; i++) {
		T_CHECK_EQ_INT(ingest_folded(s, "ok", "", RU_T0 + i * 10, "main;a", 3), 0);
		T_CHECK_EQ_INT(ingest_folded(s, "bad", "", RU_T0 + i * 10, "main;b", 4), 0);
	}
	/* The hour's series must have moved on for a rollup. */
	T_CHECK_EQ_INT(sql_exec(dir, "UPDATE series SET last_s = last_s + 3600"), SQLITE_OK);
	T_CHECK_EQ_INT(sql_exec(dir, "UPDATE counts SET data = x'8080' WHERE id ="
				     " (SELECT max(counts_id) FROM samples x JOIN series s"
				     " ON s.id = x.series_id WHERE s.app = 'bad')"),
		       SQLITE_OK);
	T_CHECK_EQ_INT(compact_all(s, RU_T0 + 7200, 100), 1);
	T_CHECK_EQ_INT(stats_of(s).rollups, 1);
	T_CHECK_EQ_INT(stats_of(s).rollup_queue, 0);
	want = stacks_of("main;a", (uint64_t)12, (const char *)NULL);
	T_CHECK(query_equals(s, "ok", NULL, RU_T0, RU_T0 + 3600, want));
	stacks__free(want);
	out = new_stacks();
	T_CHECK_EQ_INT(store__query(s, "bad", NULL, RU_T0, RU_T0 + 3600, out), -EIO);
	stacks__free(out);
	store__free(s);
	rm_rf(dir);
}

#define DS_T0 ((int64_t)3600 * 400000) /* hour-aligned, year 2015 */

/* Downsampling keeps every total and per-stack count; expiry past the last tier deletes. */
static void test_downsample(void)
{
	static const char *const labels[] = { "env=a", "env=b" };
	struct stacks *ref[2], *st;
	char dir[64], *before[2], *after, *hour_before[3], *tl;
	uint64_t rng = 99, tot_before, tot_after, n;
	int64_t t, now, h;
	struct store_stats ss;
	struct tl2 tl2;
	struct store *s;
	int i, calls;

	make_tmpdir(dir, sizeof(dir));
	s = open_or_die(dir);
	set_tiers(s, "10s:2m,1m:20m,1h:5h");
	for (i = 0; i < 2; i++)
		ref[i] = new_stacks();
	/* 2 h 30 min of 10 s buckets for two series, plus a late profile into an old bucket. */
	for (t = DS_T0; t < DS_T0 + 9000; t += 10) {
		for (i = 0; i < 2; i++) {
			st = pool_profile(&rng, i ? "b" : "a", 3);
			T_CHECK_EQ_INT(store__ingest(s, "ds", labels[i], t + i, t + 10, 100, st),
				       0);
			merge_into(ref[i], st);
			stacks__free(st);
		}
	}
	for (i = 0; i < 2; i++) {
		before[i] = query_render(s, "ds", labels[i], 0, INT64_MAX, NULL);
		T_CHECK(query_equals(s, "ds", labels[i], 0, INT64_MAX, ref[i]));
	}
	for (h = 0; h < 3; h++)
		hour_before[h] =
			query_render(s, "ds", NULL, DS_T0 + h * 3600, DS_T0 + (h + 1) * 3600, NULL);
	free(query_render(s, "ds", NULL, 0, INT64_MAX, &tot_before));
	T_CHECK_EQ_INT(timeline_sum(s, "ds", NULL, 0, INT64_MAX), tot_before);
	ss = stats_of(s);
	T_CHECK_EQ_INT(ss.tiers[0].rows, 1800);
	T_CHECK_EQ_INT(ss.tiers[0].samples, tot_before);
	T_CHECK_EQ_INT(ss.tiers[1].rows + ss.tiers[2].rows, 0);
	T_CHECK(ss.tiers[0].entries >= 1800 && ss.tiers[0].entries <= 1800 * 3);

	/*
	 * 1 min after the last bucket: the last 60 s stay in 10 s buckets, the rest goes to 1 min
	 * buckets and the first 2 h 11 min on to 1 h buckets (hours 0, 1 and part of 2).
	 */
	now = DS_T0 + 9000 + 60;
	calls = compact_all(s, now, 40);
	T_CHECK(calls > 10); /* bounded: 40 pairs per call */
	for (i = 0; i < 2; i++) {
		after = query_render(s, "ds", labels[i], 0, INT64_MAX, NULL);
		T_CHECK_EQ_STR(after, before[i]);
		free(after);
		T_CHECK(query_equals(s, "ds", labels[i], 0, INT64_MAX, ref[i]));
	}
	for (h = 0; h < 3; h++) {
		after = query_render(s, "ds", NULL, DS_T0 + h * 3600, DS_T0 + (h + 1) * 3600, NULL);
		T_CHECK_EQ_STR(after, hour_before[h]);
		free(after);
	}
	free(query_render(s, "ds", NULL, 0, INT64_MAX, &tot_after));
	T_CHECK_EQ_INT(tot_after, tot_before);
	tl = timeline2_of(s, "ds", NULL, 0, INT64_MAX, &tl2);
	T_CHECK_EQ_INT(tl2.sum, tot_before);
	T_CHECK_EQ_INT(tl2.misaligned, 0);
	T_CHECK_EQ_INT(tl2.nwidths, 3);
	free(tl);
	T_CHECK_EQ_INT(timeline_sum(s, "ds", "env=b", 0, INT64_MAX), stacks__total(ref[1]));
	/* Every row is in the tier its age says. */
	{
		char sql[256];

		snprintf(
			sql, sizeof(sql),
			"SELECT count(*) FROM samples WHERE (width = 10 AND bucket + 10 <= %" PRId64
			") OR (width = 60 AND bucket + 60 <= %" PRId64 ")",
			now - 120, now - 1200);
		T_CHECK_EQ_INT(sql_num(dir, sql), 0);
		T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM samples WHERE bucket % width"),
			       0);
	}
	ss = stats_of(s);
	T_CHECK(ss.tiers[0].rows > 0 && ss.tiers[1].rows > 0 && ss.tiers[2].rows > 0);
	T_CHECK_EQ_INT(tiers_samples(&ss), tot_before);
	T_CHECK_EQ_INT(ss.tiers[0].rows + ss.tiers[1].rows + ss.tiers[2].rows,
		       sql_num(dir, "SELECT count(*) FROM samples"));
	T_CHECK_EQ_INT(ss.tiers[0].entries + ss.tiers[1].entries + ss.tiers[2].entries,
		       sql_num(dir, "SELECT sum(nstacks) FROM samples"));
	T_CHECK_EQ_INT(ss.tiers[0].rows, 2 * 6);
	T_CHECK_EQ_INT(ss.tiers[2].rows, 2 * 3);
	T_CHECK(ss.moved_rows > 1700);
	T_CHECK_EQ_INT(ss.expired_rows, 0);
	T_CHECK_EQ_INT(ss.dropped_samples, 0);
	n = ss.moved_rows;
	/* Nothing more to do at the same time. */
	T_CHECK_EQ_INT(compact_all(s, now, 40), 1);
	T_CHECK_EQ_INT(stats_of(s).moved_rows, n);

	/* A late profile into an already downsampled span is added and downsampled again. */
	st = stacks_of("a;late", (uint64_t)5, (const char *)NULL);
	T_CHECK_EQ_INT(store__ingest(s, "ds", "env=a", DS_T0 + 30, DS_T0 + 40, 100, st), 0);
	merge_into(ref[0], st);
	stacks__free(st);
	compact_all(s, now, 1000);
	T_CHECK(query_equals(s, "ds", "env=a", 0, INT64_MAX, ref[0]));
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM samples"
				    " WHERE width = 10 AND bucket <= 1440008930"),
		       0);
	T_CHECK_EQ_INT(sql_num(dir,
			       "SELECT nstacks FROM samples"
			       " WHERE width = 3600 AND bucket = 1440000000"
			       " AND series_id = (SELECT id FROM series WHERE labels = 'env=a')"),
		       17); /* the 16 stacks of the pool and a;late */

	/* Past the last tier's keep everything goes; series stay with 0 samples; GC empties. */
	now = DS_T0 + 9000 + 5 * 3600 + 3600;
	calls = compact_all(s, now, 40);
	T_CHECK(calls > 2);
	free(query_render(s, "ds", NULL, 0, INT64_MAX, &tot_after));
	T_CHECK_EQ_INT(tot_after, 0);
	tl = timeline_of(s, "ds", NULL, 0, INT64_MAX);
	T_CHECK_EQ_STR(tl, "");
	free(tl);
	tl = series_of(s);
	T_CHECK_EQ_STR(tl, "ds|env=a|1440000000|1440008990|0|100\n"
			   "ds|env=b|1440000000|1440008990|0|100\n");
	free(tl);
	ss = stats_of(s);
	T_CHECK_EQ_INT(tiers_samples(&ss), 0);
	T_CHECK_EQ_INT(ss.tiers[0].rows + ss.tiers[1].rows + ss.tiers[2].rows, 0);
	T_CHECK(ss.expired_rows > 0);
	T_CHECK_EQ_INT(ss.stacks, 0);
	T_CHECK_EQ_INT(ss.frames, 0);
	T_CHECK(ss.gc_stacks >= 32);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM counts"), 0);
	T_CHECK_EQ_INT(ss.series, 2);
	store__free(s);
	T_CHECK(integrity_ok(dir));
	for (i = 0; i < 2; i++) {
		free(before[i]);
		stacks__free(ref[i]);
	}
	for (h = 0; h < 3; h++)
		free(hour_before[h]);
	rm_rf(dir);
}

/* Over the bound, the oldest buckets go first, counted persistently; ingest never fails. */
static void test_disk_bound(void)
{
	char dir[64], *tl_before, *tl_after, *p;
	struct store_stats ss, ss2;
	uint64_t rng = 5, tot_before, tot_after, live, bound;
	struct stacks *st;
	struct store *s;
	char line[96];
	int64_t t0 = 1700000000, t;
	int i, j;

	make_tmpdir(dir, sizeof(dir));
	s = open_or_die(dir);
	/* Sample-heavy, as a real database is: 400 buckets of ~270 of 1200 stacks. */
	for (i = 0; i < 400; i++) {
		st = new_stacks();
		for (j = 0; j < 300; j++) {
			snprintf(line, sizeof(line), "main;handler%d;work%d",
				 (int)(rng_next(&rng) % 40), (int)(rng_next(&rng) % 30));
			add_folded(st, line, rng_next(&rng) % 300 + 1);
		}
		T_CHECK_EQ_INT(store__ingest(s, "big", "", t0 + i * 10, t0 + i * 10 + 10, 100, st),
			       0);
		stacks__free(st);
	}
	tl_before = timeline_of(s, "big", NULL, 0, INT64_MAX);
	free(query_render(s, "big", NULL, 0, INT64_MAX, &tot_before));
	ss = stats_of(s);
	T_CHECK(ss.live_bytes > 100000);
	T_CHECK(ss.file_bytes >= ss.live_bytes || ss.wal_bytes > 0);
	T_CHECK(ss.incremental_vacuum);
	T_CHECK_EQ_INT(ss.max_bytes, 0);
	/* No bound: nothing happens (default retention keeps 2 days). */
	compact_all(s, t0 + 4000, 1000);
	T_CHECK_EQ_INT(stats_of(s).trimmed_rows, 0);

	bound = ss.live_bytes / 2;
	T_CHECK_EQ_INT(store__set_max_bytes(s, bound), 0);
	compact_all(s, t0 + 4000, 2000);
	ss = stats_of(s);
	live = ss.live_bytes;
	T_CHECK(live <= bound);
	T_CHECK(live >= bound / 4);
	T_CHECK_EQ_INT(ss.max_bytes, bound);
	free(query_render(s, "big", NULL, 0, INT64_MAX, &tot_after));
	T_CHECK(tot_after < tot_before);
	T_CHECK_EQ_INT(ss.dropped_samples, tot_before - tot_after);
	T_CHECK_EQ_INT(ss.dropped_rows, ss.trimmed_rows);
	T_CHECK(ss.dropped_rows > 10);
	T_CHECK_EQ_INT(tiers_samples(&ss), tot_after);
	/* Oldest first: what is left is exactly the newest part of the timeline. */
	tl_after = timeline_of(s, "big", NULL, 0, INT64_MAX);
	p = strstr(tl_before, tl_after);
	T_CHECK(p != NULL && strlen(p) == strlen(tl_after) && p != tl_before);
	if (!p || strlen(p) != strlen(tl_after))
		fprintf(stderr, "before: %.300s\nafter: %.300s\n", tl_before, tl_after);
	T_CHECK(strtoll(tl_after, NULL, 10) == t0 + (int64_t)ss.dropped_rows * 10);
	/* Free pages went back to the file system. */
	T_CHECK(ss.vacuumed_pages > 0);
	T_CHECK(ss.free_pages <= 64 || ss.free_pages <= ss.pages / 16);
	T_CHECK(ss.db_bytes <= (ss.pages + 1) * ss.page_size);
	free(tl_after);
	/* Under the bound (hysteresis): ingests and compactions do not drop more. */
	t = t0 + 4000;
	T_CHECK_EQ_INT(ingest_folded(s, "big", "", t, "main;new", 7), 0);
	compact_all(s, t + 10, 200);
	T_CHECK_EQ_INT(stats_of(s).dropped_samples, tot_before - tot_after);
	store__free(s);

	/* The count is stored in the database. */
	s = open_or_die(dir);
	ss2 = stats_of(s);
	T_CHECK_EQ_INT(ss2.dropped_samples, tot_before - tot_after);
	T_CHECK_EQ_INT(ss2.dropped_rows, ss.dropped_rows);
	T_CHECK_EQ_INT(ss2.trimmed_rows, 0);
	/* A bound below anything possible: ingest still works, compaction drops everything. */
	T_CHECK_EQ_INT(store__set_max_bytes(s, 1), 0);
	T_CHECK_EQ_INT(ingest_folded(s, "big", "", t + 10, "main;newer", 3), 0);
	compact_all(s, t + 20, 100);
	free(query_render(s, "big", NULL, 0, INT64_MAX, &tot_after));
	T_CHECK_EQ_INT(tot_after, 0);
	ss2 = stats_of(s);
	T_CHECK_EQ_INT(ss2.dropped_samples, tot_before + 7 + 3);
	T_CHECK_EQ_INT(ss2.stacks, 0); /* no bucket left: every stack is unreferenced */
	T_CHECK_EQ_INT(ss2.frames, 0);
	/* The bound removed, ingests are kept again. */
	T_CHECK_EQ_INT(store__set_max_bytes(s, 0), 0);
	T_CHECK_EQ_INT(ingest_folded(s, "big", "", t + 30, "main;kept", 4), 0);
	compact_all(s, t + 40, 100);
	free(query_render(s, "big", NULL, 0, INT64_MAX, &tot_after));
	T_CHECK_EQ_INT(tot_after, 4);
	store__free(s);
	T_CHECK(integrity_ok(dir));
	free(tl_before);
	rm_rf(dir);
}

/* Same as stack_hash in store.c (part of the on-disk format). */
static uint64_t v1_hash(const unsigned char *b, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	h ^= len;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* A version-1 database written by hand is converted in place on open. */
static void test_upgrade_v1(void)
{
	static const char v1_schema[] = "CREATE TABLE series ("
					" id INTEGER PRIMARY KEY,"
					" app TEXT NOT NULL,"
					" labels TEXT NOT NULL,"
					" sample_rate INTEGER NOT NULL,"
					" first_s INTEGER NOT NULL,"
					" last_s INTEGER NOT NULL,"
					" samples INTEGER NOT NULL,"
					" UNIQUE (app, labels));"
					"CREATE TABLE frames ("
					" id INTEGER PRIMARY KEY,"
					" name BLOB NOT NULL UNIQUE);"
					"CREATE TABLE stacks ("
					" id INTEGER PRIMARY KEY,"
					" hash INTEGER NOT NULL,"
					" frames BLOB NOT NULL);"
					"CREATE INDEX stacks_hash ON stacks (hash);"
					"CREATE TABLE samples ("
					" series_id INTEGER NOT NULL REFERENCES series (id),"
					" bucket INTEGER NOT NULL,"
					" stack_id INTEGER NOT NULL REFERENCES stacks (id),"
					" count INTEGER NOT NULL,"
					" PRIMARY KEY (series_id, bucket, stack_id)) WITHOUT ROWID;"
					"PRAGMA user_version = 1;";
	/* stacks: 1 = main;a (frames 1, 2), 2 = main;b (frames 1, 3) */
	static const unsigned char s1[8] = { 1, 0, 0, 0, 2, 0, 0, 0 };
	static const unsigned char s2[8] = { 1, 0, 0, 0, 3, 0, 0, 0 };
	char dir[64], path[128], sql[512], *str;
	struct stacks *want;
	struct store_stats ss;
	struct store *s;
	sqlite3 *db = NULL;

	make_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/profiles.db", dir);
	T_CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	T_CHECK_EQ_INT(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), SQLITE_OK);
	T_CHECK_EQ_INT(sqlite3_exec(db, v1_schema, NULL, NULL, NULL), SQLITE_OK);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO series VALUES (1, 'old', 'env=x', 99, 100, 110, 15);"
		 "INSERT INTO series VALUES (2, 'old', 'env=y', 99, 200, 200, 4);"
		 "INSERT INTO frames VALUES (1, CAST('main' AS BLOB)), (2, CAST('a' AS BLOB)),"
		 " (3, CAST('b' AS BLOB));"
		 "INSERT INTO stacks VALUES (1, %lld, x'0100000002000000'),"
		 " (2, %lld, x'0100000003000000');"
		 "INSERT INTO samples VALUES (1, 100, 1, 5), (1, 100, 2, 7), (1, 110, 1, 3),"
		 " (2, 200, 2, 4);",
		 (long long)v1_hash(s1, 8), (long long)v1_hash(s2, 8));
	T_CHECK_EQ_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	s = open_or_die(dir);
	T_CHECK_EQ_INT(sql_num(dir, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	/* Both series' hour 0 is queued for its rollup. */
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM rollup_todo WHERE hour = 0"), 2);
	want = stacks_of("main;a", (uint64_t)8, "main;b", (uint64_t)7, (const char *)NULL);
	T_CHECK(query_equals(s, "old", "env=x", 0, 1000, want));
	stacks__free(want);
	want = stacks_of("main;b", (uint64_t)4, (const char *)NULL);
	T_CHECK(query_equals(s, "old", "env=y", 0, 1000, want));
	stacks__free(want);
	str = timeline_of(s, "old", NULL, 0, 1000);
	T_CHECK_EQ_STR(str, "100:12 110:3 200:4 ");
	free(str);
	str = series_of(s);
	T_CHECK_EQ_STR(str, "old|env=x|100|110|15|99\nold|env=y|200|200|4|99\n");
	free(str);
	ss = stats_of(s);
	T_CHECK_EQ_INT(ss.tiers[0].rows, 3);
	T_CHECK_EQ_INT(ss.tiers[0].entries, 4);
	T_CHECK_EQ_INT(ss.tiers[0].samples, 19);
	T_CHECK(!ss.incremental_vacuum);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT seen FROM stacks WHERE id = 1"), 110);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT seen FROM stacks WHERE id = 2"), 200);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT min(seen) FROM frames"), 200);
	/* The old stacks are found again by their hash; new data adds up. */
	T_CHECK_EQ_INT(ingest_folded(s, "old", "env=x", 100, "main;a", 1), 0);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM stacks"), 2);
	want = stacks_of("main;a", (uint64_t)9, "main;b", (uint64_t)7, (const char *)NULL);
	T_CHECK(query_equals(s, "old", "env=x", 0, 1000, want));
	stacks__free(want);
	/* Compaction works on it (no incremental vacuum there). */
	set_tiers(s, "10s:1m,1m:1d");
	compact_all(s, 10000, 100);
	want = stacks_of("main;a", (uint64_t)9, "main;b", (uint64_t)11, (const char *)NULL);
	T_CHECK(query_equals(s, "old", NULL, 0, 1000, want));
	stacks__free(want);
	str = timeline_of(s, "old", NULL, 0, 1000);
	T_CHECK_EQ_STR(str, "60:16 180:4 ");
	free(str);
	store__free(s);
	T_CHECK(integrity_ok(dir));
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
	/* Reopening a version-3 database changes nothing. */
	s = open_or_die(dir);
	T_CHECK_EQ_INT(stats_of(s).tiers[1].samples, 20);
	store__free(s);
	rm_rf(dir);
}

/* Two handles ingest while one compacts in small steps: every count stays exact throughout. */
static void test_interleaved(void)
{
	struct store *s1, *s2;
	struct stacks *ref, *st;
	char dir[64];
	uint64_t rng = 1234, tot;
	int64_t t0 = 1800000000, t;
	bool more;
	int i;

	make_tmpdir(dir, sizeof(dir));
	s1 = open_or_die(dir);
	s2 = open_or_die(dir);
	set_tiers(s1, "10s:30s,1m:5m,1h:10d");
	ref = new_stacks();
	for (i = 0; i < 600; i++) {
		t = t0 + i * 10;
		st = pool_profile(&rng, i % 3 ? "p" : "q", 4);
		T_CHECK_EQ_INT(store__ingest(i % 2 ? s2 : s1, "mix", i % 5 ? "k=1" : "k=2", t,
					     t + 10, 100, st),
			       0);
		merge_into(ref, st);
		stacks__free(st);
		if (i % 3 == 0) {
			T_CHECK_EQ_INT(store__compact(s1, t + 10, 9, &more), 0);
		}
		if (i % 100 == 99) {
			T_CHECK(query_equals(s1, "mix", NULL, 0, INT64_MAX, ref));
			T_CHECK(query_equals(s2, "mix", NULL, 0, INT64_MAX, ref));
		}
	}
	compact_all(s1, t0 + 6010, 50);
	T_CHECK(query_equals(s2, "mix", NULL, 0, INT64_MAX, ref));
	T_CHECK(query_equals(s1, "mix", NULL, 0, INT64_MAX, ref));
	T_CHECK_EQ_INT(timeline_sum(s2, "mix", NULL, 0, INT64_MAX), stacks__total(ref));
	{
		struct store_stats ss = stats_of(s2);

		tot = tiers_samples(&ss);
		T_CHECK_EQ_INT(tot, stacks__total(ref));
		T_CHECK(ss.tiers[1].rows > 0 && ss.tiers[2].rows > 0);
		T_CHECK_EQ_INT(ss.moved_rows, 0); /* s2 did not compact */
		T_CHECK(stats_of(s1).moved_rows > 0);
	}
	store__free(s1);
	store__free(s2);
	T_CHECK(integrity_ok(dir));
	stacks__free(ref);
	rm_rf(dir);
}

/* Unreferenced stacks and frames are collected; no cache, of this or another handle, goes stale. */
static void test_gc(void)
{
	const int64_t t0 = 1600000000, day = 86400;
	struct store *s1, *s2;
	struct stacks *want;
	struct store_stats ss;
	char dir[64];

	make_tmpdir(dir, sizeof(dir));
	s1 = open_or_die(dir);
	s2 = open_or_die(dir);
	set_tiers(s1, "10s:1h");
	/* ids: frames root=1 keep=2 x_only=3; stacks root;keep=1 root;x_only=2 (the newest). */
	T_CHECK_EQ_INT(ingest_folded(s1, "gc", "", t0 + 3 * day, "root;keep", 1), 0);
	T_CHECK_EQ_INT(ingest_folded(s1, "gc", "", t0 + 3 * day, "root;keep", 1), 0);
	T_CHECK_EQ_INT(stats_of(s1).cache_hits, 3); /* the second ingest: 2 frames, 1 stack */
	T_CHECK_EQ_INT(ingest_folded(s2, "gc", "", t0, "root;x_only", 5), 0);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT max(id) FROM stacks"), 2);
	/* The old bucket expires; root;x_only and x_only are no longer used by any sample. */
	compact_all(s1, t0 + 3 * day + 10, 100);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM stacks"), 1);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM frames"), 2);
	T_CHECK_EQ_INT(
		sql_num(dir, "SELECT count(*) FROM frames WHERE name = CAST('x_only' AS BLOB)"), 0);
	ss = stats_of(s1);
	T_CHECK_EQ_INT(ss.gc_stacks, 1);
	T_CHECK_EQ_INT(ss.gc_frames, 1);
	T_CHECK_EQ_INT(ss.expired_rows, 1);
	/* s1 reuses the freed ids for new content (SQLite hands out max(id) + 1 again) ... */
	T_CHECK_EQ_INT(ingest_folded(s1, "gc", "", t0 + 3 * day + 10, "root;y_only", 7), 0);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT id FROM stacks WHERE seen = 1600259210"), 2);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT id FROM frames WHERE name = CAST('y_only' AS BLOB)"),
		       3);
	/* ... so s2, which cached root;x_only as stack 2 and x_only as frame 3, must not use them. */
	T_CHECK_EQ_INT(ingest_folded(s2, "gc", "", t0 + 3 * day + 10, "root;x_only", 11), 0);
	/* And s1 ingesting the collected stack again gets it right too. */
	T_CHECK_EQ_INT(ingest_folded(s1, "gc", "", t0 + 3 * day + 20, "root;x_only", 13), 0);
	want = stacks_of("root;keep", (uint64_t)2, "root;y_only", (uint64_t)7, "root;x_only",
			 (uint64_t)24, (const char *)NULL);
	T_CHECK(query_equals(s1, "gc", NULL, 0, INT64_MAX, want));
	T_CHECK(query_equals(s2, "gc", NULL, 0, INT64_MAX, want));
	stacks__free(want);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM stacks"), 3);
	/* s1's caches stay coherent after its own collection: collect again, then reuse. */
	compact_all(s1, t0 + 3 * day + 30, 100);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM stacks"), 3); /* all still in use */
	T_CHECK(stats_of(s1).cache_resets > 0);				/* s2 wrote in between */
	/* Everything expires; collect all; then both handles ingest the same names again. */
	compact_all(s1, t0 + 5 * day, 100);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM stacks"), 0);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM frames"), 0);
	T_CHECK_EQ_INT(ingest_folded(s2, "gc", "", t0 + 5 * day, "root;y_only", 1), 0);
	T_CHECK_EQ_INT(ingest_folded(s1, "gc", "", t0 + 5 * day, "root;keep", 1), 0);
	T_CHECK_EQ_INT(ingest_folded(s1, "gc", "", t0 + 5 * day, "root;y_only", 1), 0);
	want = stacks_of("root;keep", (uint64_t)1, "root;y_only", (uint64_t)2, (const char *)NULL);
	T_CHECK(query_equals(s1, "gc", NULL, 0, INT64_MAX, want));
	T_CHECK(query_equals(s2, "gc", NULL, 0, INT64_MAX, want));
	stacks__free(want);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM stacks"), 2);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM frames"), 3);
	store__free(s1);
	store__free(s2);
	T_CHECK(integrity_ok(dir));
	rm_rf(dir);
}

#define CK_T0 ((int64_t)1500000000)

static void compact_kill_child(const char *dir, int wfd)
{
	char err[256] = "";
	struct store *s = store__open(dir, err, sizeof(err));
	struct store_tier t[3] = { { 10, 20 }, { 60, 120 }, { 3600, 100 * 86400 } };
	struct stacks *st;
	bool more;
	uint32_t i;

	if (!s || store__set_retention(s, t, 3))
		_exit(3);
	for (i = 0; i < 1000000; i++) {
		st = kill_profile(i);
		if (store__ingest(s, "ck", "", CK_T0 + (int64_t)i * 10,
				  CK_T0 + (int64_t)i * 10 + 10, 100, st))
			_exit(4);
		stacks__free(st);
		if (write(wfd, &i, sizeof(i)) != sizeof(i))
			_exit(5);
		do {
			if (store__compact(s, CK_T0 + (int64_t)i * 10 + 10, 25, &more))
				_exit(6);
		} while (more);
	}
	store__free(s);
	_exit(0);
}

/* kill -9 while compacting: no sample lost or counted twice, the tiers table stays right. */
static void test_compact_kill9(void)
{
	char dir[64];
	int fds[2], status = 0, round;
	uint32_t v, got, last, k;
	struct stacks *want, *p;
	struct store_stats ss;
	struct store *s;
	uint64_t total;
	pid_t pid;

	make_tmpdir(dir, sizeof(dir));
	for (round = 0; round < 2; round++) {
		T_CHECK_EQ_INT(pipe(fds), 0);
		fflush(NULL);
		pid = fork();
		if (pid == 0) {
			close(fds[0]);
			compact_kill_child(dir, fds[1]);
		}
		T_CHECK(pid > 0);
		close(fds[1]);
		got = 0;
		last = UINT32_MAX;
		while (got < 60u + 90u * (uint32_t)round &&
		       read(fds[0], &v, sizeof(v)) == (ssize_t)sizeof(v)) {
			last = v;
			got++;
		}
		usleep((useconds_t)(rng_next(&(uint64_t){ 5 + (uint64_t)round }) % 2000));
		T_CHECK_EQ_INT(kill(pid, SIGKILL), 0);
		T_CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
		T_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		while (read(fds[0], &v, sizeof(v)) == (ssize_t)sizeof(v))
			last = v;
		close(fds[0]);
		T_CHECK(last != UINT32_MAX);
		if (last == UINT32_MAX)
			break;
		T_CHECK(integrity_ok(dir));
		s = open_or_die(dir);
		want = new_stacks();
		for (k = 0; k <= last; k++) {
			p = kill_profile(k);
			merge_into(want, p);
			stacks__free(p);
		}
		free(query_render(s, "ck", NULL, 0, INT64_MAX, &total));
		if (total != stacks__total(want)) { /* one more ingest committed, unreported */
			p = kill_profile(last + 1);
			merge_into(want, p);
			stacks__free(p);
		}
		T_CHECK(query_equals(s, "ck", NULL, 0, INT64_MAX, want));
		ss = stats_of(s);
		T_CHECK_EQ_INT(tiers_samples(&ss), stacks__total(want));
		T_CHECK_EQ_INT(ss.tiers[0].rows + ss.tiers[1].rows + ss.tiers[2].rows,
			       sql_num(dir, "SELECT count(*) FROM samples"));
		T_CHECK(ss.tiers[1].rows > 0);
		T_CHECK_EQ_INT(timeline_sum(s, "ck", NULL, 0, INT64_MAX), stacks__total(want));
		T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM counts"),
			       sql_num(dir, "SELECT (SELECT count(*) FROM samples) +"
					    " (SELECT count(*) FROM rollups)"));
		if (getenv("TEST_STORE_VERBOSE"))
			fprintf(stderr, "compact kill round %d: %u reported\n", round, last + 1);
		stacks__free(want);
		store__free(s);
		T_CHECK_EQ_INT(sql_exec(dir, "DELETE FROM samples; DELETE FROM counts;"
					     " DELETE FROM tiers; DELETE FROM rollups;"
					     " DELETE FROM rollup_todo; DELETE FROM meta;"
					     " DELETE FROM series"),
			       SQLITE_OK);
	}
	rm_rf(dir);
}

/* ---- hour rollups ---- */

struct tlrow {
	int64_t t;
	int64_t width;
	uint64_t count;
};

struct tlvec {
	struct tlrow *v;
	size_t n;
	size_t cap;
};

static int tlvec_visit(void *arg, int64_t t, int64_t width, uint64_t count)
{
	struct tlvec *tv = arg;

	if (tv->n == tv->cap) {
		tv->cap = tv->cap ? tv->cap * 2 : 64;
		tv->v = realloc(tv->v, tv->cap * sizeof(*tv->v));
		if (!tv->v)
			exit(2);
	}
	tv->v[tv->n++] = (struct tlrow){ t, width, count };
	return 0;
}

static int tlrow_cmp(const void *a, const void *b)
{
	const struct tlrow *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return (x->width > y->width) - (x->width < y->width);
}

/* "t/width:count " per point, as given (sorted = false) or sorted with equal points summed. */
static char *tlvec_render(struct tlvec *tv, bool sorted)
{
	struct strbuf sb;
	size_t i, j;
	uint64_t c;
	char *str;

	if (sorted && tv->n)
		qsort(tv->v, tv->n, sizeof(*tv->v), tlrow_cmp);
	strbuf_init(&sb, 0);
	for (i = 0; i < tv->n; i = j) {
		c = tv->v[i].count;
		for (j = i + 1; sorted && j < tv->n && tv->v[j].t == tv->v[i].t &&
				tv->v[j].width == tv->v[i].width;
		     j++)
			c += tv->v[j].count;
		if (strbuf_addf(&sb, "%" PRId64 "/%" PRId64 ":%" PRIu64 " ", tv->v[i].t,
				tv->v[i].width, c))
			exit(2);
	}
	str = strbuf_detach(&sb, NULL);
	if (!str)
		exit(2);
	free(tv->v);
	memset(tv, 0, sizeof(*tv));
	return str;
}

static int64_t floor_div(int64_t b, int64_t w)
{
	int64_t m = b % w;

	return m < 0 ? b - m - w : b - m;
}

/* store__timeline_step's points computed from store__timeline2's buckets (the definition). */
static char *timeline_step_ref(struct store *s, const char *app, const char *match, int64_t from,
			       int64_t until, int64_t step)
{
	struct tlvec tv = { 0 };
	size_t i;

	T_CHECK_EQ_INT(store__timeline2(s, app, match, from, until, tlvec_visit, &tv), 0);
	for (i = 0; i < tv.n; i++) {
		if (tv.v[i].width <= step) {
			tv.v[i].t = floor_div(tv.v[i].t, step);
			tv.v[i].width = step;
		}
	}
	return tlvec_render(&tv, true);
}

static char *timeline_step_of(struct store *s, const char *app, const char *match, int64_t from,
			      int64_t until, int64_t step)
{
	struct tlvec tv = { 0 };

	T_CHECK_EQ_INT(store__timeline_step(s, app, match, from, until, step, tlvec_visit, &tv), 0);
	return tlvec_render(&tv, false);
}

/*
 * Queries and timelines of [from, until) with rollups equal those without, and the timelines
 * equal their definition. Returns the number of mismatches.
 */
static int rollups_agree(struct store *s, const char *app, const char *match, int64_t from,
			 int64_t until)
{
	static const int64_t steps[] = { 10, 60, 300, 3600, 90, 120, 7200 };
	char *a, *b, *ref;
	uint64_t ta, tb;
	size_t i;
	int bad = 0;

	T_CHECK_EQ_INT(store__set_rollups(s, false), 0);
	b = query_render(s, app, match, from, until, &tb);
	T_CHECK_EQ_INT(store__set_rollups(s, true), 0);
	a = query_render(s, app, match, from, until, &ta);
	if (strcmp(a, b) != 0) {
		bad++;
		fprintf(stderr,
			"query %s [%" PRId64 ", %" PRId64 ") differs with rollups: %" PRIu64
			" vs %" PRIu64 " samples\n",
			match ? match : "(all)", from, until, ta, tb);
	}
	free(a);
	free(b);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		ref = timeline_step_ref(s, app, match, from, until, steps[i]);
		a = timeline_step_of(s, app, match, from, until, steps[i]);
		T_CHECK_EQ_INT(store__set_rollups(s, false), 0);
		b = timeline_step_of(s, app, match, from, until, steps[i]);
		T_CHECK_EQ_INT(store__set_rollups(s, true), 0);
		if (strcmp(a, ref) != 0 || strcmp(b, ref) != 0) {
			bad++;
			fprintf(stderr,
				"timeline step %" PRId64 " [%" PRId64 ", %" PRId64 ")\n"
				"rollups %.400s\nrows    %.400s\nref     %.400s\n",
				steps[i], from, until, a, b, ref);
		}
		free(ref);
		free(a);
		free(b);
	}
	return bad;
}

/* Every rollup is the sum of its hour's rows narrower than an hour; the counters agree. */
static void rollups_exact(const char *dir, struct store *s)
{
	struct store_stats ss = stats_of(s);

	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM rollups r WHERE r.total !="
				    " (SELECT coalesce(sum(x.total), 0) FROM samples x"
				    "  WHERE x.series_id = r.series_id AND x.width < 3600"
				    "  AND x.bucket >= r.hour AND x.bucket < r.hour + 3600)"
				    " OR r.hour % 3600 OR length(r.minutes) < 60"),
		       0);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM counts"),
		       sql_num(dir, "SELECT (SELECT count(*) FROM samples) +"
				    " (SELECT count(*) FROM rollups)"));
	T_CHECK_EQ_INT(ss.rollups, sql_num(dir, "SELECT count(*) FROM rollups"));
	T_CHECK_EQ_INT(ss.rollup_entries,
		       sql_num(dir, "SELECT coalesce(sum(nstacks), 0) FROM rollups"));
	T_CHECK_EQ_INT(ss.rollup_bytes,
		       sql_num(dir, "SELECT coalesce(sum(length(r.minutes) + length(c.data)), 0)"
				    " FROM rollups r JOIN counts c ON c.id = r.counts_id"));
	T_CHECK_EQ_INT(ss.rollup_queue, sql_num(dir, "SELECT count(*) FROM rollup_todo"));
}

/* Hours that have a rollup, and hours with two or more fine rows that have none. */
static void rollups_mix(const char *dir, int64_t *with, int64_t *without)
{
	*with = sql_num(dir, "SELECT count(*) FROM rollups");
	*without = sql_num(dir, "SELECT count(*) FROM (SELECT series_id, bucket / 3600 AS h"
				" FROM samples WHERE width < 3600 GROUP BY series_id, h"
				" HAVING count(*) > 1) g WHERE NOT EXISTS (SELECT 1 FROM rollups r"
				" WHERE r.series_id = g.series_id AND r.hour = g.h * 3600)");
}

/*
 * Random ingests (some late, into hours already rolled up, from a second handle too), random
 * compactions with small budgets, disk-bound trims and expiry under a policy; after each round,
 * random intervals (hour-aligned edges or not) give the same results with and without rollups.
 */
static void rollups_random(const char *spec, uint64_t seed, int rounds, bool *saw_mix,
			   uint64_t *built, uint64_t *deleted)
{
	static const char *const labels[] = { "k=0", "k=1,j=x", "k=2,j=x" };
	static const char *const matches[] = { NULL, "k=0", "j=x", "k=1", "k=9" };
	static const int64_t aligns[] = { 3600, 600, 60, 10, 1 };
	struct store *s, *s2;
	struct store_stats ss;
	struct stacks *st;
	char dir[64];
	uint64_t rng = seed;
	int64_t now = RU_T0, t, b, from, until, with, without;
	int round, i, k, bad = 0;
	bool more;

	make_tmpdir(dir, sizeof(dir));
	s = open_or_die(dir);
	s2 = open_or_die(dir);
	set_tiers(s, spec);
	set_tiers(s2, spec);
	for (round = 0; round < rounds; round++) {
		/* 10 to 60 minutes more of buckets, each with probability 1/3 per series. */
		t = now;
		now += 600 + (int64_t)(rng_next(&rng) % 6) * 600;
		for (; t < now; t += 10) {
			for (k = 0; k < 3; k++) {
				if (rng_next(&rng) % 3)
					continue;
				st = pool_profile(&rng, k == 2 ? "q" : "p", 2);
				T_CHECK_EQ_INT(store__ingest(k == 1 ? s2 : s, "ru", labels[k],
							     t + (int64_t)(rng_next(&rng) % 10),
							     t + 10, 100, st),
					       0);
				stacks__free(st);
			}
		}
		/* Late ingests into older buckets, possibly rolled up already. */
		for (i = 0; i < 3; i++) {
			b = now - 10 - (int64_t)(rng_next(&rng) % 21600);
			if (b < RU_T0)
				continue;
			st = pool_profile(&rng, "late", 1);
			T_CHECK_EQ_INT(store__ingest(i % 2 ? s2 : s, "ru",
						     labels[rng_next(&rng) % 3], b, b + 10, 100,
						     st),
				       0);
			stacks__free(st);
		}
		/* Compaction in small steps, sometimes cut short, sometimes by the other handle. */
		more = true;
		for (i = 0; more && i < 400; i++) {
			T_CHECK_EQ_INT(store__compact(round % 4 == 3 ? s2 : s, now,
						      rng_next(&rng) % 4 ? 30 : 3000, &more),
				       0);
			if (rng_next(&rng) % 5 == 0)
				break;
		}
		/* Now and then the disk bound deletes the oldest buckets. */
		if (round == rounds / 2) {
			ss = stats_of(s);
			T_CHECK_EQ_INT(store__set_max_bytes(s, ss.live_bytes - ss.live_bytes / 10),
				       0);
			compact_all(s, now, 500);
			T_CHECK_EQ_INT(store__set_max_bytes(s, 0), 0);
		}
		rollups_exact(dir, s);
		rollups_mix(dir, &with, &without);
		if (with > 0 && without > 0)
			*saw_mix = true;
		if (getenv("TEST_STORE_VERBOSE"))
			fprintf(stderr,
				"  round %d: %" PRId64 " hours rolled up, %" PRId64 " not\n", round,
				with, without);
		for (i = 0; i < 6; i++) {
			int64_t al = aligns[rng_next(&rng) % 5], al2 = aligns[rng_next(&rng) % 5];

			from = RU_T0 - 3600 +
			       (int64_t)(rng_next(&rng) % (uint64_t)(now - RU_T0 + 7200));
			from -= from % al;
			until = from + (int64_t)(rng_next(&rng) % 40000);
			until -= until % al2;
			bad += rollups_agree(s, "ru", matches[rng_next(&rng) % 5], from, until);
		}
		bad += rollups_agree(s2, "ru", NULL, 0, INT64_MAX);
	}
	T_CHECK_EQ_INT(bad, 0);
	ss = stats_of(s);
	*built += ss.rollups_built + stats_of(s2).rollups_built;
	*deleted += ss.rollups_deleted + stats_of(s2).rollups_deleted;
	if (getenv("TEST_STORE_VERBOSE"))
		fprintf(stderr,
			"rollups %s: %" PRIu64 " stored, %" PRIu64 " queued; built %" PRIu64
			", deleted %" PRIu64 " (this handle); tiers %" PRIu64 "/%" PRIu64
			"/%" PRIu64 " rows\n",
			spec, ss.rollups, ss.rollup_queue, ss.rollups_built, ss.rollups_deleted,
			ss.tiers[0].rows, ss.tiers[1].rows, ss.ntiers > 2 ? ss.tiers[2].rows : 0);
	store__free(s);
	store__free(s2);
	T_CHECK(integrity_ok(dir));
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
	rm_rf(dir);
}

static void test_rollups_random(void)
{
	uint64_t built = 0, deleted = 0;
	bool mix = false;

	/* The default shape, scaled down: 10 s rows move into 1 min and keep their rollups. */
	rollups_random("10s:40m,1m:4h,1h:1d", 11, 14, &mix, &built, &deleted);
	/* 5 min buckets: moves inside an hour shift the per-minute totals. */
	rollups_random("10s:30m,5m:3h,1h:1d", 12, 10, &mix, &built, &deleted);
	/* 70 s buckets straddle hours; the last tier is narrower than an hour and expires. */
	rollups_random("10s:3h,70s:4h", 13, 10, &mix, &built, &deleted);
	T_CHECK(mix);
	T_CHECK(built > 20);
	T_CHECK(deleted > 5);
}

/* A hand-made case: which hours get rollups, what is reused, what invalidates them. */
static void test_rollups(void)
{
	const int64_t h0 = RU_T0;
	struct store_stats ss;
	struct store *s, *s2;
	struct stacks *want;
	struct tlvec tv = { 0 };
	char dir[64], *str;
	int64_t t;
	int i;

	make_tmpdir(dir, sizeof(dir));
	s = open_or_die(dir);
	/* Hours 0 and 1 full (one row each 10 s, 3 samples), hour 2 half, hour 3 a single row. */
	for (t = h0; t < h0 + 9000; t += 10)
		T_CHECK_EQ_INT(ingest_folded(s, "r", "h=a", t, t % 20 ? "m;x" : "m;y", 3), 0);
	T_CHECK_EQ_INT(ingest_folded(s, "r", "h=a", h0 + 3 * 3600 + 50, "m;z", 7), 0);
	ss = stats_of(s);
	T_CHECK_EQ_INT(ss.rollup_queue, 4);
	/* Hour 2 is not complete until its end is a minute old. */
	compact_all(s, h0 + 3 * 3600 + 59, 1000);
	ss = stats_of(s);
	T_CHECK_EQ_INT(ss.rollups, 2);
	T_CHECK_EQ_INT(ss.rollups_built, 2);
	T_CHECK_EQ_INT(ss.rollup_entries, 4);
	T_CHECK_EQ_INT(ss.rollup_queue, 2);
	/* Hour 3 waits for a later bucket of its series. */
	compact_all(s, h0 + 4 * 3600 + 60, 1000);
	ss = stats_of(s);
	T_CHECK_EQ_INT(ss.rollups, 3);
	T_CHECK_EQ_INT(ss.rollup_queue, 1);
	T_CHECK_EQ_INT(ingest_folded(s, "r", "h=a", h0 + 4 * 3600, "m;z", 1), 0);
	compact_all(s, h0 + 4 * 3600 + 60, 1000);
	ss = stats_of(s);
	T_CHECK_EQ_INT(ss.rollups, 3);	    /* hour 3 has one row: it gets none */
	T_CHECK_EQ_INT(ss.rollup_queue, 1); /* hour 4 */
	T_CHECK_EQ_INT(sql_num(dir, "SELECT total FROM rollups WHERE hour = 1620000000"), 360 * 3);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT total FROM rollups WHERE hour = 1620007200"), 180 * 3);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT length(minutes) FROM rollups WHERE hour = 1620000000"),
		       60);
	rollups_exact(dir, s);
	want = stacks_of("m;x", (uint64_t)540, "m;y", (uint64_t)540, (const char *)NULL);
	T_CHECK(query_equals(s, "r", NULL, h0, h0 + 3600, want));
	T_CHECK(query_equals(s, "r", "h=a", h0, h0 + 3600, want));
	stacks__free(want);
	T_CHECK_EQ_INT(rollups_agree(s, "r", NULL, h0 - 5, h0 + 3 * 3600 + 55), 0);
	T_CHECK_EQ_INT(rollups_agree(s, "r", NULL, h0 + 3600, h0 + 7200), 0);
	T_CHECK_EQ_INT(rollups_agree(s, "r", "h=b", h0, h0 + 7200), 0);
	/* Step 60 over the rolled-up hours: one point per minute of 18 samples. */
	T_CHECK_EQ_INT(store__timeline_step(s, "r", NULL, h0, h0 + 7200, 60, tlvec_visit, &tv), 0);
	T_CHECK_EQ_INT(tv.n, 120);
	T_CHECK(tv.n && tv.v[0].t == h0 && tv.v[0].width == 60 && tv.v[0].count == 18);
	free(tlvec_render(&tv, false));
	T_CHECK_EQ_INT(store__timeline_step(s, "r", NULL, h0, h0 + 9000, 3600, tlvec_visit, &tv),
		       0);
	str = tlvec_render(&tv, false);
	T_CHECK_EQ_STR(str, "1620000000/3600:1080 1620003600/3600:1080 1620007200/3600:540 ");
	free(str);
	/* Bad arguments. */
	T_CHECK_EQ_INT(store__timeline_step(s, "r", NULL, 0, 1, 0, tlvec_visit, &tv), -EINVAL);
	T_CHECK_EQ_INT(store__timeline_step(s, "r", NULL, 0, 1, -60, tlvec_visit, &tv), -EINVAL);
	T_CHECK_EQ_INT(store__timeline_step(s, "r", NULL, 0, 1, 60, NULL, NULL), -EINVAL);
	T_CHECK_EQ_INT(store__timeline_step(s, NULL, NULL, 0, 1, 60, tlvec_visit, &tv), -EINVAL);
	T_CHECK_EQ_INT(store__set_rollups(NULL, true), -EINVAL);

	/* A late ingest (from another handle) deletes the hour's rollup; compaction rebuilds it. */
	s2 = open_or_die(dir);
	T_CHECK_EQ_INT(ingest_folded(s2, "r", "h=a", h0 + 100, "m;late", 5), 0);
	T_CHECK_EQ_INT(stats_of(s2).rollups_deleted, 1);
	T_CHECK_EQ_INT(stats_of(s).rollups, 2);
	T_CHECK_EQ_INT(rollups_agree(s, "r", NULL, h0, h0 + 7200), 0);
	/* s queued hour 0 itself before; it must not trust that after s2 wrote. */
	compact_all(s, h0 + 4 * 3600 + 60, 1000);
	T_CHECK_EQ_INT(ingest_folded(s2, "r", "h=a", h0 + 110, "m;late", 5), 0);
	T_CHECK_EQ_INT(ingest_folded(s, "r", "h=a", h0 + 120, "m;late", 5), 0);
	T_CHECK_EQ_INT(stats_of(s).rollups, 2);
	rollups_exact(dir, s);
	compact_all(s2, h0 + 4 * 3600 + 60, 1000);
	T_CHECK_EQ_INT(stats_of(s).rollups, 3);
	want = stacks_of("m;x", (uint64_t)540, "m;y", (uint64_t)540, "m;late", (uint64_t)15,
			 (const char *)NULL);
	T_CHECK(query_equals(s, "r", NULL, h0, h0 + 3600, want));
	stacks__free(want);
	rollups_exact(dir, s);
	T_CHECK_EQ_INT(rollups_agree(s, "r", NULL, 0, INT64_MAX), 0);

	/* Moving 10 s rows into 1 min buckets keeps the rollups; into 1 h buckets deletes them. */
	set_tiers(s, "10s:1h,1m:3h,1h:30d");
	for (i = 0; i < 3; i++) {
		compact_all(s, h0 + 5 * 3600 + i * 1800, 1000);
		rollups_exact(dir, s);
		T_CHECK_EQ_INT(rollups_agree(s, "r", NULL, 0, INT64_MAX), 0);
		T_CHECK_EQ_INT(rollups_agree(s, "r", NULL, h0 + 1800, h0 + 3 * 3600 + 1800), 0);
		ss = stats_of(s);
		if (i == 0) {
			/* Hours 0 and 1 are 1 h rows now; hour 2 is 1 min rows, rollup kept. */
			T_CHECK_EQ_INT(ss.tiers[0].rows, 1);
			T_CHECK_EQ_INT(ss.tiers[1].rows, 31);
			T_CHECK_EQ_INT(ss.tiers[2].rows, 2);
			T_CHECK_EQ_INT(ss.rollups, 1);
			T_CHECK_EQ_INT(sql_num(dir, "SELECT hour FROM rollups"), h0 + 7200);
		}
	}
	T_CHECK_EQ_INT(ss.rollups, 0); /* hour 2 went into a 1 h row too */
	T_CHECK_EQ_INT(ss.tiers[2].rows, 3);
	/* Gone with the last rows: expiry and garbage collection leave nothing behind. */
	compact_all(s, h0 + 40 * 86400, 1000);
	ss = stats_of(s);
	T_CHECK_EQ_INT(ss.rollups + ss.rollup_entries + ss.rollup_bytes, 0);
	T_CHECK_EQ_INT(ss.stacks, 0);
	T_CHECK_EQ_INT(sql_num(dir, "SELECT count(*) FROM counts"), 0);
	store__free(s2);
	store__free(s);
	T_CHECK(integrity_ok(dir));
	rm_rf(dir);
}

/* A backfill of past hours, compacting all along: each hour is rolled up once, when done. */
static void test_rollups_backfill(void)
{
	const int64_t h0 = RU_T0;
	struct store_stats ss;
	struct store *s;
	char dir[64];
	int64_t t;
	int k;

	make_tmpdir(dir, sizeof(dir));
	s = open_or_die(dir);
	for (t = h0; t < h0 + 2 * 3600 + 600; t += 10) {
		for (k = 0; k < 2; k++)
			T_CHECK_EQ_INT(ingest_folded(s, "bf", k ? "k=1" : "k=0", t, "m;w", 2), 0);
		if (t % 60 == 0)
			compact_all(s, h0 + 86400, 1000);
	}
	ss = stats_of(s);
	T_CHECK_EQ_INT(ss.rollups, 4);
	T_CHECK_EQ_INT(ss.rollups_built, 4);
	T_CHECK_EQ_INT(ss.rollups_deleted, 0);
	T_CHECK_EQ_INT(rollups_agree(s, "bf", NULL, h0 + 100, h0 + 3 * 3600), 0);
	store__free(s);
	rm_rf(dir);
}

/* A version-2 database (no rollup tables) is converted; compaction then builds its rollups. */
static void test_upgrade_v2(void)
{
	const int64_t h0 = RU_T0;
	char dir[64], *before, *after;
	struct store_stats ss;
	struct store *s;
	uint64_t rng = 3;
	struct stacks *st;
	int64_t t;

	make_tmpdir(dir, sizeof(dir));
	s = open_or_die(dir);
	/* 4 hours of two series, and the first bucket of a fifth (so the fourth is rolled up). */
	for (t = h0; t < h0 + 4 * 3600 + 20; t += 10) {
		st = pool_profile(&rng, t % 30 ? "u" : "v", 3);
		T_CHECK_EQ_INT(store__ingest(s, "up", t % 20 ? "k=1" : "k=2", t, t + 10, 100, st),
			       0);
		stacks__free(st);
	}
	compact_all(s, h0 + 4 * 3600 + 60, 5000);
	T_CHECK_EQ_INT(stats_of(s).rollups, 8);
	T_CHECK_EQ_INT(stats_of(s).rollup_queue, 2);
	before = query_render(s, "up", NULL, 0, INT64_MAX, NULL);
	store__free(s);
	/* What version 2 had. */
	T_CHECK_EQ_INT(sql_exec(dir,
				"DELETE FROM counts WHERE id IN (SELECT counts_id FROM rollups);"
				" DROP TABLE rollups; DROP TABLE rollup_todo;"
				" DELETE FROM meta WHERE key LIKE 'rollup%';"
				" PRAGMA user_version = 2"),
		       SQLITE_OK);
	s = open_or_die(dir);
	T_CHECK_EQ_INT(sql_num(dir, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	ss = stats_of(s);
	T_CHECK_EQ_INT(ss.rollups, 0);
	T_CHECK_EQ_INT(ss.rollup_queue, 10);
	after = query_render(s, "up", NULL, 0, INT64_MAX, NULL);
	T_CHECK_EQ_STR(after, before);
	free(after);
	compact_all(s, h0 + 4 * 3600 + 60, 5000);
	ss = stats_of(s);
	T_CHECK_EQ_INT(ss.rollups, 8);
	T_CHECK_EQ_INT(ss.rollup_queue, 2);
	rollups_exact(dir, s);
	after = query_render(s, "up", NULL, 0, INT64_MAX, NULL);
	T_CHECK_EQ_STR(after, before);
	free(after);
	T_CHECK_EQ_INT(rollups_agree(s, "up", "k=2", h0 + 1000, h0 + 3 * 3600 + 1000), 0);
	free(before);
	store__free(s);
	T_CHECK(integrity_ok(dir));
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
	test_retention_parse();
	test_downsample();
	test_disk_bound();
	test_upgrade_v1();
	test_interleaved();
	test_gc();
	test_compact_kill9();
	test_corrupt();
	test_rollups();
	test_rollups_backfill();
	test_upgrade_v2();
	test_rollups_random();
	return T_DONE();
}
