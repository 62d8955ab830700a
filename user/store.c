/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * store.c - profile storage on SQLite.
 *
 * Every statement is prepared once in store__open and used as bind, step, reset; caller data only
 * ever reaches SQLite through bindings. Writers hold the write lock (BEGIN IMMEDIATE) for their
 * whole transaction, so no other writer can slip in between a lookup and an insert.
 *
 * Why one counts blob per (series, bucket, width) rather than a row per stack: a 10 s bucket
 * holds hundreds of stacks with small counts, and a row costs ~17 bytes of keys, record header
 * and cell pointer where a varint pair costs ~2-3; it also makes an ingest a handful of row
 * writes whatever the number of stacks. The narrow samples table (totals) stays apart from the
 * blobs (counts) so timelines, compaction scans and stats never read the blobs.
 *
 * Frames and stacks are interned through two in-memory caches (content -> id, plus the seen
 * value the row holds). A cache is only valid for what this connection last saw: it is dropped
 * when PRAGMA data_version says another connection committed (checked under the write lock at
 * the start of every ingest), after any rolled-back write, and pruned of what garbage collection
 * deleted. Reads never use them.
 *
 * Label matching ("k=v" items of the canonical labels string) runs inside SQLite as the
 * connection-local function pysamp_labels_match(labels, match), so a selection is one query.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <sqlite3.h>

#include "log.h"
#include "stacks.h"
#include "store.h"
#include "util.h"

#define BUSY_TIMEOUT_MS 5000
/* PRAGMA cache_size in KiB (negative in the pragma). */
#define PAGE_CACHE_KIB 16384
/* The WAL file is truncated to this after a checkpoint (SQLite checkpoints at ~4 MiB). */
#define WAL_LIMIT_BYTES (4 << 20)
/* seen is raised only when an ingest's bucket passes it by more than this (see store.h). */
#define SEEN_SLACK_S 3600
/* Cache bounds: past either the cache is dropped and refilled. */
#define STACK_CACHE_ENTRIES ((size_t)1 << 17)
#define STACK_CACHE_BYTES   ((size_t)16 << 20)
#define FRAME_CACHE_ENTRIES ((size_t)1 << 16)
#define FRAME_CACHE_BYTES   ((size_t)8 << 20)
/* Free pages are handed back when more than max(this, page_count / 16) are free. */
#define VACUUM_MIN_FREE 64

/* Tables of version 2 (also used by the conversion from version 1). */
#define SAMPLES_DEF(name)                                                                          \
	"CREATE TABLE " name " ("                                                                  \
	" series_id INTEGER NOT NULL REFERENCES series (id),"                                      \
	" bucket INTEGER NOT NULL,"                                                                \
	" width INTEGER NOT NULL,"                                                                 \
	" total INTEGER NOT NULL,"                                                                 \
	" nstacks INTEGER NOT NULL,"                                                               \
	" counts_id INTEGER NOT NULL,"                                                             \
	" PRIMARY KEY (series_id, bucket, width)) WITHOUT ROWID;"
#define AGE_INDEX_DEF "CREATE INDEX samples_age ON samples (width, bucket);"
#define COUNTS_DEF    "CREATE TABLE counts (id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
#define TIERS_DEF                                                                                  \
	"CREATE TABLE tiers ("                                                                     \
	" width INTEGER PRIMARY KEY,"                                                              \
	" rows INTEGER NOT NULL,"                                                                  \
	" entries INTEGER NOT NULL,"                                                               \
	" samples INTEGER NOT NULL) WITHOUT ROWID;"
#define META_DEF "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
#define SEEN_INDEX_DEF                                                                             \
	"CREATE INDEX stacks_seen ON stacks (seen);"                                               \
	"CREATE INDEX frames_seen ON frames (seen);"

/* Fresh databases only: a version-0 database holding any of these tables is refused. */
static const char schema_sql[] =
	"CREATE TABLE series ("
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
	" name BLOB NOT NULL UNIQUE,"
	" seen INTEGER NOT NULL);"
	"CREATE TABLE stacks ("
	" id INTEGER PRIMARY KEY,"
	" hash INTEGER NOT NULL,"
	" frames BLOB NOT NULL,"
	" seen INTEGER NOT NULL);"
	"CREATE INDEX stacks_hash ON stacks (hash);" SEEN_INDEX_DEF SAMPLES_DEF("samples")
		AGE_INDEX_DEF COUNTS_DEF TIERS_DEF META_DEF;

enum stmt_id {
	ST_BEGIN_WRITE,
	ST_BEGIN_READ,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_DATA_VERSION,
	ST_PAGE_COUNT,
	ST_FREELIST_COUNT,
	ST_SERIES_UPSERT,
	ST_SERIES_ADD,
	ST_SERIES_SUB,
	ST_FRAME_GET,
	ST_FRAME_PUT,
	ST_FRAME_SEEN,
	ST_FRAME_NAME,
	ST_STACK_GET,
	ST_STACK_PUT,
	ST_STACK_SEEN,
	ST_STACK_FRAMES,
	ST_ROW_GET,
	ST_ROW_PUT,
	ST_ROW_SET,
	ST_ROW_DEL,
	ST_COUNTS_GET,
	ST_COUNTS_PUT,
	ST_COUNTS_SET,
	ST_COUNTS_DEL,
	ST_TIER_ADD,
	ST_META_ADD,
	ST_WIDTH_NEXT,
	ST_WIDTH_OLDEST,
	ST_AGED,
	ST_GC_STACKS,
	ST_GC_FRAMES,
	ST_QUERY,
	ST_SERIES_LIST,
	ST_TIMELINE,
	ST_TIMELINE2,
	ST_COUNT,
};

/* The selection shared by query and timelines: ?1 app, ?2 labels_match or NULL, [?3, ?4). */
#define SELECTION_FROM " FROM series s JOIN samples x ON x.series_id = s.id"
#define SELECTION_WHERE                                                                            \
	" WHERE s.app = ?1 AND (?2 IS NULL OR pysamp_labels_match(s.labels, ?2))"                  \
	" AND x.bucket >= ?3 AND x.bucket < ?4"

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[ST_BEGIN_READ] = "BEGIN DEFERRED",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_DATA_VERSION] = "PRAGMA data_version",
	[ST_PAGE_COUNT] = "PRAGMA page_count",
	[ST_FREELIST_COUNT] = "PRAGMA freelist_count",
	[ST_SERIES_UPSERT] =
		"INSERT INTO series (app, labels, sample_rate, first_s, last_s, samples)"
		" VALUES (?1, ?2, ?3, ?4, ?4, 0)"
		" ON CONFLICT (app, labels) DO UPDATE SET"
		" sample_rate = excluded.sample_rate,"
		" first_s = min(first_s, excluded.first_s),"
		" last_s = max(last_s, excluded.last_s)"
		" RETURNING id",
	/* The WHERE makes an overflowing addition change no row, which ingest reports. */
	[ST_SERIES_ADD] = "UPDATE series SET samples = samples + ?2"
			  " WHERE id = ?1 AND samples <= 9223372036854775807 - ?2",
	[ST_SERIES_SUB] = "UPDATE series SET samples = max(samples - ?2, 0) WHERE id = ?1",
	[ST_FRAME_GET] = "SELECT id, seen FROM frames WHERE name = ?1",
	[ST_FRAME_PUT] = "INSERT INTO frames (name, seen) VALUES (?1, ?2)",
	[ST_FRAME_SEEN] = "UPDATE frames SET seen = ?2 WHERE id = ?1 AND seen < ?2",
	[ST_FRAME_NAME] = "SELECT name FROM frames WHERE id = ?1",
	[ST_STACK_GET] = "SELECT id, frames, seen FROM stacks WHERE hash = ?1",
	[ST_STACK_PUT] = "INSERT INTO stacks (hash, frames, seen) VALUES (?1, ?2, ?3)",
	[ST_STACK_SEEN] = "UPDATE stacks SET seen = ?2 WHERE id = ?1 AND seen < ?2",
	[ST_STACK_FRAMES] = "SELECT frames FROM stacks WHERE id = ?1",
	[ST_ROW_GET] = "SELECT total, nstacks, counts_id FROM samples"
		       " WHERE series_id = ?1 AND bucket = ?2 AND width = ?3",
	[ST_ROW_PUT] = "INSERT INTO samples (series_id, bucket, width, total, nstacks, counts_id)"
		       " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_ROW_SET] = "UPDATE samples SET total = ?4, nstacks = ?5"
		       " WHERE series_id = ?1 AND bucket = ?2 AND width = ?3",
	[ST_ROW_DEL] = "DELETE FROM samples WHERE series_id = ?1 AND bucket = ?2 AND width = ?3",
	[ST_COUNTS_GET] = "SELECT data FROM counts WHERE id = ?1",
	[ST_COUNTS_PUT] = "INSERT INTO counts (data) VALUES (?1)",
	[ST_COUNTS_SET] = "UPDATE counts SET data = ?2 WHERE id = ?1",
	[ST_COUNTS_DEL] = "DELETE FROM counts WHERE id = ?1",
	[ST_TIER_ADD] =
		"INSERT INTO tiers (width, rows, entries, samples) VALUES (?1, ?2, ?3, ?4)"
		" ON CONFLICT (width) DO UPDATE SET rows = rows + excluded.rows,"
		" entries = entries + excluded.entries, samples = samples + excluded.samples",
	[ST_META_ADD] = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
			" ON CONFLICT (key) DO UPDATE SET value = value + excluded.value",
	[ST_WIDTH_NEXT] = "SELECT min(width) FROM samples WHERE width > ?1",
	[ST_WIDTH_OLDEST] = "SELECT min(bucket) FROM samples WHERE width = ?1",
	/* Index order (width, bucket, series_id): no sorting. */
	[ST_AGED] = "SELECT series_id, bucket, total, nstacks, counts_id FROM samples"
		    " WHERE width = ?1 AND bucket >= ?2 AND bucket <= ?3"
		    " ORDER BY bucket, series_id LIMIT ?4",
	[ST_GC_STACKS] = "DELETE FROM stacks WHERE id IN"
			 " (SELECT id FROM stacks WHERE seen < ?1 LIMIT ?2)",
	[ST_GC_FRAMES] = "DELETE FROM frames WHERE id IN"
			 " (SELECT id FROM frames WHERE seen < ?1 LIMIT ?2)",
	[ST_QUERY] = "SELECT c.data" SELECTION_FROM
		     " JOIN counts c ON c.id = x.counts_id" SELECTION_WHERE,
	[ST_SERIES_LIST] = "SELECT app, labels, first_s, last_s, samples, sample_rate"
			   " FROM series ORDER BY app, labels",
	[ST_TIMELINE] = "SELECT x.bucket, sum(x.total)" SELECTION_FROM SELECTION_WHERE
			" GROUP BY x.bucket ORDER BY x.bucket",
	[ST_TIMELINE2] = "SELECT x.bucket, x.width, sum(x.total)" SELECTION_FROM SELECTION_WHERE
			 " GROUP BY x.bucket, x.width ORDER BY x.bucket, x.width",
};

/* content -> (id, seen), open addressing; id 0 marks an empty slot. Keys live in one arena. */
struct cache_slot {
	uint64_t hash;
	int64_t id;
	int64_t seen;
	uint32_t off;
	uint32_t len;
};

struct cache {
	struct cache_slot *slot;
	size_t cap; /* power of two, or 0 */
	size_t n;
	unsigned char *keys;
	size_t keys_len;
	size_t keys_cap;
	size_t max_entries;
	size_t max_bytes;
	uint64_t resets; /* dropped because full */
};

/* One (stack, count) pair of a counts blob. */
struct tally {
	int64_t stack;
	uint64_t count;
};

struct tvec {
	struct tally *v;
	size_t n;
	size_t cap;
};

/* A samples row picked by compaction. */
struct agerow {
	int64_t series;
	int64_t bucket;
	int64_t total;
	int64_t nstacks;
	int64_t counts_id;
	int64_t target; /* its bucket in the next tier */
};

struct rowvec {
	struct agerow *v;
	size_t n;
	size_t cap;
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT];
	char *path;
	char *wal_path;
	int64_t page_size;
	bool incremental; /* auto_vacuum = INCREMENTAL */
	int64_t data_version;
	struct store_tier tiers[STORE_MAX_TIERS];
	size_t ntiers;
	uint64_t max_bytes;
	bool trimming; /* over the bound, deleting down to 90 % */
	struct cache frames;
	struct cache stacks;
	/* Scratch reused by ingest, query and compaction. */
	unsigned char *blob; /* an encoded stack */
	size_t blob_cap;
	unsigned char *enc; /* an encoded counts blob */
	size_t enc_cap;
	uint32_t *ids;
	size_t ids_cap;
	struct tvec tv;
	struct rowvec rows;
	/* store_stats counters of this handle */
	uint64_t moved_rows, expired_rows, trimmed_rows;
	uint64_t moved_entries, expired_entries, trimmed_entries;
	uint64_t gc_stacks, gc_frames, vacuumed_pages;
	uint64_t cache_hits, cache_misses, cache_resets;
};

static const struct store_tier default_tiers[] = {
	{ 10, 2 * 86400 },
	{ 60, 14 * 86400 },
	{ 3600, 365 * 86400 },
};

static int rc_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		return ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return EBUSY;
	case SQLITE_FULL:
		return ENOSPC;
	case SQLITE_READONLY:
		return EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return EACCES;
	default:
		return EIO;
	}
}

/* Log the connection's last error for what and return it as -errno. */
static int db_fail(struct store *s, int rc, const char *what)
{
	log_warn("store: %s failed: %s", what, sqlite3_errmsg(s->db));
	return -rc_errno(rc);
}

/* Reset a statement after use and drop its bindings (they may point at caller memory). */
static void stmt_done(sqlite3_stmt *stmt)
{
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
}

/* Step a statement that returns no row, then reset it. */
static int step_done(struct store *s, enum stmt_id id)
{
	sqlite3_stmt *stmt = s->stmt[id];
	int rc = sqlite3_step(stmt), err = 0;

	if (rc != SQLITE_DONE)
		err = db_fail(s, rc, stmt_sql[id]);
	stmt_done(stmt);
	return err;
}

/* Bind ?1..?n of statement id to v[0..n). On failure the statement is reset. */
static int bind_i64(struct store *s, enum stmt_id id, const int64_t *v, int n)
{
	sqlite3_stmt *stmt = s->stmt[id];
	int i, rc;

	for (i = 0; i < n; i++) {
		rc = sqlite3_bind_int64(stmt, i + 1, v[i]);
		if (rc != SQLITE_OK) {
			stmt_done(stmt);
			return db_fail(s, rc, stmt_sql[id]);
		}
	}
	return 0;
}

/* Bind ?1..?n and step a statement that returns no row. */
static int run_i64(struct store *s, enum stmt_id id, const int64_t *v, int n)
{
	int err = bind_i64(s, id, v, n);

	return err ? err : step_done(s, id);
}

/*
 * Bind ?1..?n, step once and reset: 1 with the first ncol columns in out when a row came whose
 * first column is not NULL, 0 otherwise, or -errno.
 */
static int get_i64(struct store *s, enum stmt_id id, const int64_t *v, int n, int64_t *out,
		   int ncol)
{
	sqlite3_stmt *stmt = s->stmt[id];
	int rc, i, ret = 0;

	ret = bind_i64(s, id, v, n);
	if (ret)
		return ret;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
		for (i = 0; i < ncol; i++)
			out[i] = sqlite3_column_int64(stmt, i);
		ret = 1;
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		ret = db_fail(s, rc, stmt_sql[id]);
	}
	stmt_done(stmt);
	return ret;
}

#define NARGS(...)	((int)(sizeof((const int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)))
#define RUN(s, id, ...) run_i64((s), (id), (const int64_t[]){ __VA_ARGS__ }, NARGS(__VA_ARGS__))
#define GET(s, id, out, ncol, ...)                                                                 \
	get_i64((s), (id), (const int64_t[]){ __VA_ARGS__ }, NARGS(__VA_ARGS__), (out), (ncol))
#define GET0(s, id, out) get_i64((s), (id), NULL, 0, (out), 1)

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 64;
	void *q;

	if (need <= *cap)
		return p;
	while (n < need) {
		if (n > SIZE_MAX / 2 / elem)
			return NULL;
		n *= 2;
	}
	q = realloc(p, n * elem);
	if (!q)
		return NULL;
	*cap = n;
	return q;
}

/* 64-bit hash of an encoded stack (FNV-1a, then fmix64). Stored on disk: never change it. */
static uint64_t stack_hash(const unsigned char *b, size_t len)
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

/* ---- caches ---- */

static void cache_release(struct cache *c)
{
	free(c->slot);
	free(c->keys);
	c->slot = NULL;
	c->keys = NULL;
	c->cap = c->n = c->keys_len = c->keys_cap = 0;
}

static struct cache_slot *cache_find(struct cache *c, uint64_t h, const void *key, size_t len)
{
	size_t mask, j;

	if (!c->cap)
		return NULL;
	mask = c->cap - 1;
	for (j = h & mask; c->slot[j].id; j = (j + 1) & mask) {
		if (c->slot[j].hash == h && c->slot[j].len == len &&
		    memcmp(c->keys + c->slot[j].off, key, len) == 0)
			return &c->slot[j];
	}
	return NULL;
}

static void cache_place(struct cache_slot *slot, size_t cap, const struct cache_slot *e)
{
	size_t mask = cap - 1, j;

	for (j = e->hash & mask; slot[j].id; j = (j + 1) & mask)
		;
	slot[j] = *e;
}

/*
 * Remember key -> (id, seen); the key must not be cached yet. The cache is a hint: when it is
 * full it starts over, and when memory is short the entry is simply not cached.
 */
static void cache_add(struct cache *c, uint64_t h, const void *key, size_t len, int64_t id,
		      int64_t seen)
{
	struct cache_slot e = { .hash = h, .id = id, .seen = seen, .len = (uint32_t)len };
	struct cache_slot *slot;
	unsigned char *keys;
	size_t cap, i;

	if (id <= 0 || len > c->max_bytes / 4)
		return;
	if (c->n + 1 > c->max_entries || c->keys_len + len > c->max_bytes) {
		cache_release(c);
		c->resets++;
	}
	if ((c->n + 1) * 4 > c->cap * 3) {
		cap = c->cap ? c->cap * 2 : 1024;
		slot = calloc(cap, sizeof(*slot));
		if (!slot)
			return;
		for (i = 0; i < c->cap; i++)
			if (c->slot[i].id)
				cache_place(slot, cap, &c->slot[i]);
		free(c->slot);
		c->slot = slot;
		c->cap = cap;
	}
	keys = grow(c->keys, &c->keys_cap, c->keys_len + len, 1);
	if (!keys)
		return;
	c->keys = keys;
	memcpy(c->keys + c->keys_len, key, len);
	e.off = (uint32_t)c->keys_len;
	c->keys_len += len;
	cache_place(c->slot, c->cap, &e);
	c->n++;
}

/* Forget the entries whose seen is below seen_min (what garbage collection may have deleted). */
static void cache_prune(struct cache *c, int64_t seen_min)
{
	struct cache old = *c;
	size_t i;

	c->slot = NULL;
	c->keys = NULL;
	c->cap = c->n = c->keys_len = c->keys_cap = 0;
	for (i = 0; i < old.cap; i++) {
		if (old.slot[i].id && old.slot[i].seen >= seen_min)
			cache_add(c, old.slot[i].hash, old.keys + old.slot[i].off, old.slot[i].len,
				  old.slot[i].id, old.slot[i].seen);
	}
	cache_release(&old);
}

static void caches_reset(struct store *s)
{
	if (s->frames.n || s->stacks.n)
		s->cache_resets++;
	cache_release(&s->frames);
	cache_release(&s->stacks);
}

static void txn_rollback(struct store *s)
{
	/* SQLite may have rolled back already (after SQLITE_FULL, SQLITE_IOERR, ...). */
	if (!sqlite3_get_autocommit(s->db) && step_done(s, ST_ROLLBACK))
		log_warn("store: rollback failed");
	/* The caches may hold ids or seen values that were just rolled back. */
	caches_reset(s);
}

/* BEGIN IMMEDIATE, then drop the caches if another connection committed since we last looked. */
static int txn_begin_write(struct store *s)
{
	int64_t v = -1;
	int err = step_done(s, ST_BEGIN_WRITE);

	if (err)
		return err;
	err = GET0(s, ST_DATA_VERSION, &v);
	if (err < 0) {
		txn_rollback(s);
		return err;
	}
	/* No answer (never seen) counts as a change: the caches are only a hint. */
	if (!err || v != s->data_version) {
		caches_reset(s);
		s->data_version = v;
	}
	return 0;
}

/* COMMIT, or roll back when that fails. */
static int txn_commit(struct store *s)
{
	int err = step_done(s, ST_COMMIT);

	if (err)
		txn_rollback(s);
	return err;
}

/* ---- counts blobs ---- */

static size_t uvarint_put(unsigned char *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

static bool uvarint_get(const unsigned char **pp, const unsigned char *end, uint64_t *v)
{
	const unsigned char *p = *pp;
	uint64_t x = 0;
	unsigned int shift = 0;

	while (p < end) {
		unsigned char c = *p++;

		if (shift == 63 && c > 1)
			return false;
		x |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*v = x;
			*pp = p;
			return true;
		}
		shift += 7;
		if (shift > 63)
			return false;
	}
	return false;
}

static int tvec_push(struct tvec *t, int64_t stack, uint64_t count)
{
	struct tally *v = grow(t->v, &t->cap, t->n + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	t->v = v;
	v[t->n].stack = stack;
	v[t->n].count = count;
	t->n++;
	return 0;
}

static int tally_cmp(const void *a, const void *b)
{
	const struct tally *x = a, *y = b;

	return (x->stack > y->stack) - (x->stack < y->stack);
}

/*
 * Sort by stack and add up duplicates; every count and the total (in *total) must stay within
 * INT64_MAX, else -EOVERFLOW.
 */
static int tvec_normalize(struct tvec *t, uint64_t *total)
{
	uint64_t sum = 0;
	size_t i, j;
	bool sorted = true;

	for (i = 1; i < t->n && sorted; i++)
		sorted = t->v[i - 1].stack < t->v[i].stack;
	if (!sorted)
		qsort(t->v, t->n, sizeof(*t->v), tally_cmp);
	for (i = 0, j = 0; i < t->n; i++) {
		if (j && t->v[j - 1].stack == t->v[i].stack) {
			if (t->v[i].count > (uint64_t)INT64_MAX - t->v[j - 1].count)
				return -EOVERFLOW;
			t->v[j - 1].count += t->v[i].count;
		} else {
			t->v[j++] = t->v[i];
		}
	}
	t->n = j;
	for (i = 0; i < t->n; i++) {
		if (t->v[i].count > (uint64_t)INT64_MAX - sum)
			return -EOVERFLOW;
		sum += t->v[i].count;
	}
	*total = sum;
	return 0;
}

/* Encode the normalized t into s->enc; its length goes to *len. */
static int counts_encode(struct store *s, const struct tvec *t, size_t *len)
{
	unsigned char *p;
	int64_t prev = 0;
	size_t i, n = 0;

	if (t->n > (SIZE_MAX - 1) / 20)
		return -E2BIG;
	p = grow(s->enc, &s->enc_cap, t->n * 20 + 1, 1);
	if (!p)
		return -ENOMEM;
	s->enc = p;
	for (i = 0; i < t->n; i++) {
		n += uvarint_put(p + n, (uint64_t)(t->v[i].stack - prev));
		n += uvarint_put(p + n, t->v[i].count);
		prev = t->v[i].stack;
	}
	if (n > INT32_MAX)
		return -E2BIG;
	*len = n;
	return 0;
}

/*
 * Append the pairs of the counts blob b[0..len) to t; their number and sum go to *entries and
 * *sum. -EIO for a malformed blob (truncated, stacks not ascending, a zero count, a sum past
 * INT64_MAX).
 */
static int counts_decode(const unsigned char *b, size_t len, struct tvec *t, uint64_t *entries,
			 uint64_t *sum)
{
	const unsigned char *p = b, *end = b ? b + len : b; /* SQLite gives NULL for x'' */
	uint64_t delta, count, n = 0, total = 0;
	int64_t stack = 0;
	int err;

	while (p < end) {
		if (!uvarint_get(&p, end, &delta) || !uvarint_get(&p, end, &count) || !delta ||
		    !count || delta > (uint64_t)(INT64_MAX - stack) ||
		    count > (uint64_t)INT64_MAX - total) {
			log_warn("store: malformed counts blob");
			return -EIO;
		}
		stack += (int64_t)delta;
		total += count;
		n++;
		err = tvec_push(t, stack, count);
		if (err)
			return err;
	}
	*entries = n;
	*sum = total;
	return 0;
}

/* Append the pairs of counts row cid to t and check them against the row's total and nstacks. */
static int counts_load(struct store *s, int64_t cid, int64_t want_total, int64_t want_n,
		       struct tvec *t)
{
	sqlite3_stmt *get = s->stmt[ST_COUNTS_GET];
	uint64_t n = 0, sum = 0;
	int rc, err;

	err = bind_i64(s, ST_COUNTS_GET, &cid, 1);
	if (err)
		return err;
	rc = sqlite3_step(get);
	if (rc == SQLITE_ROW) {
		err = counts_decode(sqlite3_column_blob(get, 0),
				    (size_t)sqlite3_column_bytes(get, 0), t, &n, &sum);
		if (!err && (n != (uint64_t)want_n || sum != (uint64_t)want_total)) {
			log_warn("store: counts %lld disagree with their samples row",
				 (long long)cid);
			err = -EIO;
		}
	} else if (rc == SQLITE_DONE) {
		log_warn("store: samples row refers to missing counts %lld", (long long)cid);
		err = -EIO;
	} else {
		err = db_fail(s, rc, stmt_sql[ST_COUNTS_GET]);
	}
	stmt_done(get);
	return err;
}

/* Bind ?nth to the s->enc[0..len) blob and step statement id. */
static int run_blob(struct store *s, enum stmt_id id, int nth, size_t len)
{
	int rc = sqlite3_bind_blob(s->stmt[id], nth, s->enc ? (const void *)s->enc : "", (int)len,
				   SQLITE_STATIC);

	if (rc != SQLITE_OK) {
		stmt_done(s->stmt[id]);
		return db_fail(s, rc, "bind counts");
	}
	return step_done(s, id);
}

static int tier_add(struct store *s, int64_t width, int64_t rows, int64_t entries, int64_t samples)
{
	if (!rows && !entries && !samples)
		return 0;
	return RUN(s, ST_TIER_ADD, width, rows, entries, samples);
}

/*
 * Add the pairs of t (normalized, summing to total) to the samples row (series, bucket, width),
 * creating it when missing, and keep the tiers table up to date. t is used as scratch.
 */
static int row_add(struct store *s, int64_t series, int64_t bucket, int64_t width, struct tvec *t,
		   uint64_t total)
{
	int64_t row[3] = { 0, 0, 0 }; /* total, nstacks, counts_id */
	uint64_t sum = total;
	size_t len;
	int have, err;

	have = GET(s, ST_ROW_GET, row, 3, series, bucket, width);
	if (have < 0)
		return have;
	if (have) {
		err = counts_load(s, row[2], row[0], row[1], t);
		if (!err)
			err = tvec_normalize(t, &sum);
		if (err)
			return err;
	}
	err = counts_encode(s, t, &len);
	if (err)
		return err;
	if (have) {
		err = bind_i64(s, ST_COUNTS_SET, &row[2], 1);
		if (!err)
			err = run_blob(s, ST_COUNTS_SET, 2, len);
		if (!err)
			err = RUN(s, ST_ROW_SET, series, bucket, width, (int64_t)sum,
				  (int64_t)t->n);
	} else {
		err = run_blob(s, ST_COUNTS_PUT, 1, len);
		if (!err)
			err = RUN(s, ST_ROW_PUT, series, bucket, width, (int64_t)sum, (int64_t)t->n,
				  (int64_t)sqlite3_last_insert_rowid(s->db));
	}
	if (err)
		return err;
	return tier_add(s, width, have ? 0 : 1, (int64_t)t->n - row[1], (int64_t)sum - row[0]);
}

/* Delete a samples row and its counts. */
static int row_delete(struct store *s, int64_t series, int64_t bucket, int64_t width, int64_t cid)
{
	int err = RUN(s, ST_ROW_DEL, series, bucket, width);

	return err ? err : RUN(s, ST_COUNTS_DEL, cid);
}

/* ---- label matching, files, schema ---- */

/* Is item[0..ilen) one of the comma-separated items of labels[0..llen)? */
static bool has_item(const char *labels, size_t llen, const char *item, size_t ilen)
{
	const char *p = labels, *end = labels + llen, *comma;

	while (p <= end) {
		comma = memchr(p, ',', (size_t)(end - p));
		if (!comma)
			comma = end;
		if ((size_t)(comma - p) == ilen && memcmp(p, item, ilen) == 0)
			return true;
		p = comma + 1;
	}
	return false;
}

/* SQL pysamp_labels_match(labels, match): 1 when labels holds every non-empty item of match. */
static void labels_match_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *labels, *match, *p, *end, *comma;
	size_t llen;

	(void)argc;
	labels = (const char *)sqlite3_value_text(argv[0]);
	llen = (size_t)sqlite3_value_bytes(argv[0]);
	match = (const char *)sqlite3_value_text(argv[1]);
	if (!labels || !match) {
		if (sqlite3_value_type(argv[0]) == SQLITE_NULL ||
		    sqlite3_value_type(argv[1]) == SQLITE_NULL)
			sqlite3_result_null(ctx);
		else
			sqlite3_result_error_nomem(ctx);
		return;
	}
	end = match + sqlite3_value_bytes(argv[1]);
	for (p = match; p < end; p = comma + 1) {
		comma = memchr(p, ',', (size_t)(end - p));
		if (!comma)
			comma = end;
		if (comma > p && !has_item(labels, llen, p, (size_t)(comma - p))) {
			sqlite3_result_int(ctx, 0);
			return;
		}
	}
	sqlite3_result_int(ctx, 1);
}

/* mkdir -p path with mode 0700 for what gets created; path must end up a directory. */
static int mkdir_p(const char *path)
{
	char *copy = strdup(path), *p;
	struct stat sb;
	int err = 0;

	if (!copy)
		return -ENOMEM;
	for (p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0700) && errno != EEXIST) {
			err = -errno;
			goto cleanup;
		}
		*p = '/';
	}
	if (mkdir(copy, 0700) && errno != EEXIST) {
		err = -errno;
		goto cleanup;
	}
	if (stat(copy, &sb)) {
		err = -errno;
		goto cleanup;
	}
	if (!S_ISDIR(sb.st_mode))
		err = -ENOTDIR;
cleanup:
	free(copy);
	return err;
}

/* Run constant SQL (never caller data). */
static int exec_sql(struct store *s, const char *sql)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : db_fail(s, rc, sql);
}

/* The first column of the first row of a constant query, as an integer or text. */
static int pragma_get(struct store *s, const char *sql, int64_t *num, char *txt, size_t txtlen)
{
	sqlite3_stmt *stmt = NULL;
	int rc, err = 0;

	rc = sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return db_fail(s, rc, sql);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		err = rc == SQLITE_DONE ? -EIO : db_fail(s, rc, sql);
		goto cleanup;
	}
	if (num)
		*num = sqlite3_column_int64(stmt, 0);
	if (txt)
		snprintf(txt, txtlen, "%s", (const char *)sqlite3_column_text(stmt, 0) ?: "");
cleanup:
	sqlite3_finalize(stmt);
	return err;
}

static int prepare(struct store *s, const char *sql, sqlite3_stmt **stmt)
{
	int rc = sqlite3_prepare_v2(s->db, sql, -1, stmt, NULL);

	return rc == SQLITE_OK ? 0 : db_fail(s, rc, sql);
}

/* Write one converted version-1 bucket: t holds its pairs. */
static int upgrade_flush(struct store *s, sqlite3_stmt *put_counts, sqlite3_stmt *put_row,
			 int64_t series, int64_t bucket, struct tvec *t, int64_t *tier)
{
	uint64_t total;
	size_t len;
	int rc, err;

	if (!t->n)
		return 0;
	err = tvec_normalize(t, &total);
	if (!err)
		err = counts_encode(s, t, &len);
	if (err)
		return err;
	rc = sqlite3_bind_blob(put_counts, 1, s->enc, (int)len, SQLITE_STATIC);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(put_counts);
		sqlite3_reset(put_counts);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK)
		return db_fail(s, rc, "convert counts");
	rc = sqlite3_bind_int64(put_row, 1, series);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(put_row, 2, bucket);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(put_row, 3, (int64_t)total);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(put_row, 4, (int64_t)t->n);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(put_row, 5, sqlite3_last_insert_rowid(s->db));
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(put_row);
		sqlite3_reset(put_row);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK)
		return db_fail(s, rc, "convert samples");
	if (tier[0] == INT64_MAX || tier[2] > INT64_MAX - (int64_t)total)
		return -EOVERFLOW;
	tier[0]++;
	tier[1] += (int64_t)t->n;
	tier[2] += (int64_t)total;
	t->n = 0;
	return 0;
}

/*
 * Version 1 -> 2, inside the caller's transaction: one counts blob per (series, bucket) in place
 * of a row per stack; seen columns (stacks: the latest bucket that used them; frames,
 * conservatively: the latest of all); the tiers and meta tables.
 */
static int upgrade_v1(struct store *s)
{
	static const char pre_sql[] =
		"ALTER TABLE stacks ADD COLUMN seen INTEGER NOT NULL DEFAULT 0;"
		"UPDATE stacks SET seen = m.b FROM"
		" (SELECT stack_id, max(bucket) AS b FROM samples GROUP BY stack_id) AS m"
		" WHERE m.stack_id = stacks.id;"
		"ALTER TABLE frames ADD COLUMN seen INTEGER NOT NULL DEFAULT 0;"
		"UPDATE frames SET seen = (SELECT coalesce(max(seen), 0) FROM stacks);" COUNTS_DEF
			SAMPLES_DEF("samples_v2");
	static const char post_sql[] =
		"DROP TABLE samples;"
		"ALTER TABLE samples_v2 RENAME TO samples;" AGE_INDEX_DEF SEEN_INDEX_DEF TIERS_DEF
			META_DEF;
	sqlite3_stmt *rd = NULL, *put_counts = NULL, *put_row = NULL;
	int64_t series = -1, bucket = -1, sid, count, tier[3] = { 0, 0, 0 };
	struct tvec *t = &s->tv;
	int rc, err;

	t->n = 0;
	err = exec_sql(s, pre_sql);
	if (!err)
		err = prepare(s,
			      "SELECT series_id, bucket, stack_id, count FROM samples"
			      " ORDER BY series_id, bucket, stack_id",
			      &rd);
	if (!err)
		err = prepare(s, "INSERT INTO counts (data) VALUES (?1)", &put_counts);
	if (!err)
		err = prepare(s,
			      "INSERT INTO samples_v2"
			      " (series_id, bucket, width, total, nstacks, counts_id)"
			      " VALUES (?1, ?2, 10, ?3, ?4, ?5)",
			      &put_row);
	if (err)
		goto cleanup;
	while ((rc = sqlite3_step(rd)) == SQLITE_ROW) {
		sid = sqlite3_column_int64(rd, 2);
		count = sqlite3_column_int64(rd, 3);
		if (sqlite3_column_int64(rd, 0) != series ||
		    sqlite3_column_int64(rd, 1) != bucket) {
			err = upgrade_flush(s, put_counts, put_row, series, bucket, t, tier);
			if (err)
				goto cleanup;
			series = sqlite3_column_int64(rd, 0);
			bucket = sqlite3_column_int64(rd, 1);
		}
		if (count <= 0 || sid <= 0)
			continue;
		err = tvec_push(t, sid, (uint64_t)count);
		if (err)
			goto cleanup;
	}
	if (rc != SQLITE_DONE) {
		err = db_fail(s, rc, "read version 1 samples");
		goto cleanup;
	}
	err = upgrade_flush(s, put_counts, put_row, series, bucket, t, tier);
	if (err)
		goto cleanup;
	sqlite3_finalize(rd);
	rd = NULL;
	err = exec_sql(s, post_sql);
	if (err || !tier[0])
		goto cleanup;
	err = prepare(s,
		      "INSERT INTO tiers (width, rows, entries, samples) VALUES (10, ?1, ?2, ?3)",
		      &rd);
	for (int i = 0; !err && i < 3; i++) {
		rc = sqlite3_bind_int64(rd, i + 1, tier[i]);
		if (rc != SQLITE_OK)
			err = db_fail(s, rc, "bind tiers");
	}
	if (!err) {
		rc = sqlite3_step(rd);
		if (rc != SQLITE_DONE)
			err = db_fail(s, rc, "insert tiers");
	}
cleanup:
	sqlite3_finalize(rd);
	sqlite3_finalize(put_counts);
	sqlite3_finalize(put_row);
	t->n = 0;
	return err;
}

/* Create the schema of a fresh database, check the version of an existing one, or convert it. */
static int schema_setup(struct store *s, char *errbuf, size_t errlen)
{
	int64_t version = -1;
	char sql[64];
	int err;

	err = exec_sql(s, "BEGIN IMMEDIATE");
	if (err)
		return err;
	err = pragma_get(s, "PRAGMA user_version", &version, NULL, 0);
	if (err)
		goto fail;
	if (version > STORE_SCHEMA_VERSION || version < 0) {
		set_errf(errbuf, errlen, "unsupported schema version %lld (this build knows %d)",
			 (long long)version, STORE_SCHEMA_VERSION);
		err = -EINVAL;
		goto fail;
	}
	if (version == STORE_SCHEMA_VERSION)
		return exec_sql(s, "COMMIT");
	if (version == 0)
		err = exec_sql(s, schema_sql);
	else
		err = upgrade_v1(s);
	if (err)
		goto fail;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
	err = exec_sql(s, sql);
	if (err)
		goto fail;
	err = exec_sql(s, "COMMIT");
	if (err)
		goto fail;
	if (version == 1)
		log_info("store: converted the database to schema version %d",
			 STORE_SCHEMA_VERSION);
	return 0;
fail:
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return err;
}

struct store *store__open(const char *dir, char *err, size_t errlen)
{
	struct store *s = NULL;
	char mode[16], sql[192];
	int64_t av = 0;
	int rc, ret = 0, i;

	if (!dir || !*dir) {
		set_errf(err, errlen, "empty database directory");
		errno = EINVAL;
		return NULL;
	}
	ret = mkdir_p(dir);
	if (ret) {
		set_errf(err, errlen, "cannot create directory '%s': %s", dir, strerror(-ret));
		goto fail;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		ret = -ENOMEM;
		set_errf(err, errlen, "out of memory");
		goto fail;
	}
	if (asprintf(&s->path, "%s/profiles.db", dir) < 0) {
		s->path = NULL;
		ret = -ENOMEM;
		set_errf(err, errlen, "out of memory");
		goto fail;
	}
	if (asprintf(&s->wal_path, "%s-wal", s->path) < 0) {
		s->wal_path = NULL;
		ret = -ENOMEM;
		set_errf(err, errlen, "out of memory");
		goto fail;
	}
	memcpy(s->tiers, default_tiers, sizeof(default_tiers));
	s->ntiers = sizeof(default_tiers) / sizeof(default_tiers[0]);
	s->frames.max_entries = FRAME_CACHE_ENTRIES;
	s->frames.max_bytes = FRAME_CACHE_BYTES;
	s->stacks.max_entries = STACK_CACHE_ENTRIES;
	s->stacks.max_bytes = STACK_CACHE_BYTES;
	s->data_version = -1;
	rc = sqlite3_open_v2(s->path, &s->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		ret = -(s->db && sqlite3_system_errno(s->db) ? sqlite3_system_errno(s->db)
							     : rc_errno(rc));
		set_errf(err, errlen, "cannot open '%s': %s", s->path,
			 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	/* SQLite silently falls back to read-only when the file is not writable. */
	if (sqlite3_db_readonly(s->db, "main") == 1) {
		ret = -EROFS;
		set_errf(err, errlen, "'%s' is read-only", s->path);
		goto fail;
	}
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	/* Before anything writes the file: only a database without tables takes it. */
	ret = exec_sql(s, "PRAGMA auto_vacuum = INCREMENTAL");
	if (!ret)
		ret = pragma_get(s, "PRAGMA journal_mode = WAL", NULL, mode, sizeof(mode));
	if (!ret && strcmp(mode, "wal") != 0)
		ret = -EIO;
	if (!ret) {
		snprintf(sql, sizeof(sql),
			 "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
			 " PRAGMA cache_size = -%d; PRAGMA journal_size_limit = %d",
			 PAGE_CACHE_KIB, WAL_LIMIT_BYTES);
		ret = exec_sql(s, sql);
	}
	if (ret) {
		set_errf(err, errlen, "cannot set up '%s': %s", s->path, sqlite3_errmsg(s->db));
		goto fail;
	}
	ret = schema_setup(s, err, errlen);
	if (ret == -EINVAL)
		goto fail; /* message already set */
	if (!ret)
		ret = pragma_get(s, "PRAGMA page_size", &s->page_size, NULL, 0);
	if (!ret)
		ret = pragma_get(s, "PRAGMA auto_vacuum", &av, NULL, 0);
	if (ret) {
		set_errf(err, errlen, "cannot create schema in '%s': %s", s->path,
			 sqlite3_errmsg(s->db));
		goto fail;
	}
	s->incremental = av == 2;
	rc = sqlite3_create_function_v2(s->db, "pysamp_labels_match", 2,
					SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY,
					NULL, labels_match_fn, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		ret = -rc_errno(rc);
		set_errf(err, errlen, "cannot register function: %s", sqlite3_errmsg(s->db));
		goto fail;
	}
	for (i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					&s->stmt[i], NULL);
		if (rc != SQLITE_OK) {
			ret = -rc_errno(rc);
			set_errf(err, errlen, "cannot prepare statement in '%s': %s", s->path,
				 sqlite3_errmsg(s->db));
			goto fail;
		}
	}
	return s;
fail:
	store__free(s);
	errno = ret ? -ret : EIO;
	return NULL;
}

void store__free(struct store *s)
{
	int i;

	if (!s)
		return;
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	if (sqlite3_close(s->db) != SQLITE_OK)
		log_warn("store: close failed: %s", sqlite3_errmsg(s->db));
	cache_release(&s->frames);
	cache_release(&s->stacks);
	free(s->path);
	free(s->wal_path);
	free(s->blob);
	free(s->enc);
	free(s->ids);
	free(s->tv.v);
	free(s->rows.v);
	free(s);
}

/* ---- ingest ---- */

struct ingest_ctx {
	struct store *s;
	const struct stacks *st;
	uint32_t *frame_ids; /* st label id -> frames.id, 0 until interned */
	int64_t series_id;
	int64_t bucket;
};

/* Raise the seen of row id (ST_FRAME_SEEN or ST_STACK_SEEN) to bucket when it lags too far. */
static int seen_raise(struct store *s, enum stmt_id which, int64_t id, int64_t *seen,
		      int64_t bucket)
{
	int err;

	if (*seen >= bucket - SEEN_SLACK_S)
		return 0;
	err = RUN(s, which, id, bucket);
	if (!err)
		*seen = bucket;
	return err;
}

/* The frames.id of name[0..len), inserted when new; its seen covers bucket. */
static int frame_intern(struct store *s, const char *name, size_t len, int64_t bucket, uint32_t *id)
{
	sqlite3_stmt *get = s->stmt[ST_FRAME_GET], *put = s->stmt[ST_FRAME_PUT];
	uint64_t h = stack_hash((const unsigned char *)name, len);
	struct cache_slot *hit;
	int64_t rowid, seen;
	int rc, err = 0;

	if (len > INT32_MAX)
		return -E2BIG;
	hit = cache_find(&s->frames, h, name, len);
	if (hit) {
		s->cache_hits++;
		*id = (uint32_t)hit->id;
		return seen_raise(s, ST_FRAME_SEEN, hit->id, &hit->seen, bucket);
	}
	s->cache_misses++;
	rc = sqlite3_bind_blob(get, 1, name, (int)len, SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		err = db_fail(s, rc, "bind frame");
		goto cleanup;
	}
	rc = sqlite3_step(get);
	if (rc == SQLITE_ROW) {
		rowid = sqlite3_column_int64(get, 0);
		seen = sqlite3_column_int64(get, 1);
		stmt_done(get);
		err = seen_raise(s, ST_FRAME_SEEN, rowid, &seen, bucket);
		if (err)
			return err;
		goto found;
	}
	if (rc != SQLITE_DONE) {
		err = db_fail(s, rc, stmt_sql[ST_FRAME_GET]);
		goto cleanup;
	}
	stmt_done(get);
	rc = sqlite3_bind_blob(put, 1, name, (int)len, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(put, 2, bucket);
	if (rc != SQLITE_OK) {
		stmt_done(put);
		return db_fail(s, rc, "bind frame");
	}
	err = step_done(s, ST_FRAME_PUT);
	if (err)
		return err;
	rowid = sqlite3_last_insert_rowid(s->db);
	seen = bucket;
found:
	if (rowid <= 0 || rowid > UINT32_MAX)
		return -E2BIG;
	*id = (uint32_t)rowid;
	cache_add(&s->frames, h, name, len, rowid, seen);
	return 0;
cleanup:
	stmt_done(get);
	return err;
}

/* The stacks.id of the encoded stack b[0..len), inserted when new; its seen covers bucket. */
static int stack_intern(struct store *s, const unsigned char *b, size_t len, int64_t bucket,
			int64_t *id)
{
	sqlite3_stmt *get = s->stmt[ST_STACK_GET], *put = s->stmt[ST_STACK_PUT];
	uint64_t uh = stack_hash(b, len);
	int64_t h = (int64_t)uh, rowid = 0, seen = 0;
	struct cache_slot *hit;
	int rc, err = 0;

	if (len > INT32_MAX)
		return -E2BIG;
	hit = cache_find(&s->stacks, uh, b, len);
	if (hit) {
		s->cache_hits++;
		*id = hit->id;
		return seen_raise(s, ST_STACK_SEEN, hit->id, &hit->seen, bucket);
	}
	s->cache_misses++;
	err = bind_i64(s, ST_STACK_GET, &h, 1);
	if (err)
		return err;
	while ((rc = sqlite3_step(get)) == SQLITE_ROW) {
		if ((size_t)sqlite3_column_bytes(get, 1) == len &&
		    memcmp(sqlite3_column_blob(get, 1), b, len) == 0) {
			rowid = sqlite3_column_int64(get, 0);
			seen = sqlite3_column_int64(get, 2);
			break;
		}
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		err = db_fail(s, rc, stmt_sql[ST_STACK_GET]);
	stmt_done(get);
	if (err)
		return err;
	if (rowid) {
		err = seen_raise(s, ST_STACK_SEEN, rowid, &seen, bucket);
		if (err)
			return err;
	} else {
		rc = sqlite3_bind_int64(put, 1, h);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_blob(put, 2, b, (int)len, SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int64(put, 3, bucket);
		if (rc != SQLITE_OK) {
			stmt_done(put);
			return db_fail(s, rc, "bind stack");
		}
		err = step_done(s, ST_STACK_PUT);
		if (err)
			return err;
		rowid = sqlite3_last_insert_rowid(s->db);
		seen = bucket;
	}
	*id = rowid;
	cache_add(&s->stacks, uh, b, len, rowid, seen);
	return 0;
}

static int ingest_stack(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct ingest_ctx *c = arg;
	struct store *s = c->s;
	unsigned char *b;
	const char *name;
	size_t i, len;
	uint32_t fid;
	int64_t stack_id;
	int err;

	if (n > SIZE_MAX / 4)
		return -E2BIG;
	b = grow(s->blob, &s->blob_cap, n * 4, 1);
	if (!b)
		return -ENOMEM;
	s->blob = b;
	for (i = 0; i < n; i++) {
		fid = c->frame_ids[ids[i]];
		if (!fid) {
			name = stacks__label_bytes(c->st, ids[i], &len);
			if (!name)
				return -EINVAL;
			err = frame_intern(s, name, len, c->bucket, &fid);
			if (err)
				return err;
			c->frame_ids[ids[i]] = fid;
		}
		b[4 * i] = (unsigned char)fid;
		b[4 * i + 1] = (unsigned char)(fid >> 8);
		b[4 * i + 2] = (unsigned char)(fid >> 16);
		b[4 * i + 3] = (unsigned char)(fid >> 24);
	}
	err = stack_intern(s, b, n * 4, c->bucket, &stack_id);
	if (err)
		return err;
	/* count <= the total, checked against INT64_MAX before the transaction began. */
	return tvec_push(&s->tv, stack_id, count);
}

/* Create or update the series row; its id goes to *id. */
static int series_upsert(struct store *s, const char *app, const char *labels, uint32_t sample_rate,
			 int64_t bucket, int64_t *id)
{
	sqlite3_stmt *up = s->stmt[ST_SERIES_UPSERT];
	int rc, err = 0;

	rc = sqlite3_bind_text(up, 1, app, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(up, 2, labels, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(up, 3, sample_rate);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(up, 4, bucket);
	if (rc != SQLITE_OK) {
		err = db_fail(s, rc, "bind series");
		goto cleanup;
	}
	rc = sqlite3_step(up);
	if (rc != SQLITE_ROW) {
		err = db_fail(s, rc, stmt_sql[ST_SERIES_UPSERT]);
		goto cleanup;
	}
	*id = sqlite3_column_int64(up, 0);
	/* RETURNING finishes its writes when stepped to the end. */
	rc = sqlite3_step(up);
	if (rc != SQLITE_DONE)
		err = db_fail(s, rc, stmt_sql[ST_SERIES_UPSERT]);
cleanup:
	stmt_done(up);
	return err;
}

int store__ingest(struct store *s, const char *app, const char *labels, int64_t from_s,
		  int64_t until_s, uint32_t sample_rate, const struct stacks *st)
{
	struct ingest_ctx c = { .s = s, .st = st };
	uint64_t total, sum;
	int err;

	if (!s || !app || !labels || !st || from_s < 0 || until_s < from_s)
		return -EINVAL;
	total = stacks__total(st);
	if (total > INT64_MAX)
		return -EOVERFLOW;
	c.bucket = from_s - from_s % STORE_BUCKET_S;
	c.frame_ids = calloc(stacks__nlabels(st) ?: 1, sizeof(*c.frame_ids));
	if (!c.frame_ids)
		return -ENOMEM;

	err = txn_begin_write(s);
	if (err)
		goto cleanup;
	s->tv.n = 0;
	err = series_upsert(s, app, labels, sample_rate, c.bucket, &c.series_id);
	if (!err)
		err = stacks__foreach(st, ingest_stack, &c);
	if (!err)
		err = tvec_normalize(&s->tv, &sum);
	if (!err && s->tv.n)
		err = row_add(s, c.series_id, c.bucket, STORE_BUCKET_S, &s->tv, sum);
	if (!err) {
		err = RUN(s, ST_SERIES_ADD, c.series_id, (int64_t)total);
		if (!err && sqlite3_changes(s->db) == 0)
			err = -EOVERFLOW;
	}
	if (err) {
		txn_rollback(s);
		goto cleanup;
	}
	err = txn_commit(s);
cleanup:
	free(c.frame_ids);
	return err;
}

/* ---- reading ---- */

/* uint64 key (never 0) -> uint64 value, open addressing; key 0 marks an empty slot. */
struct u64map {
	uint64_t *keys;
	uint64_t *vals;
	size_t cap; /* power of two */
	size_t n;
};

static size_t u64map_slot(const struct u64map *m, uint64_t key)
{
	size_t mask = m->cap - 1, j = (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 32) & mask;

	while (m->keys[j] && m->keys[j] != key)
		j = (j + 1) & mask;
	return j;
}

static bool u64map_get(const struct u64map *m, uint64_t key, uint64_t *val)
{
	size_t j;

	if (!m->cap)
		return false;
	j = u64map_slot(m, key);
	if (!m->keys[j])
		return false;
	*val = m->vals[j];
	return true;
}

/* The value slot of key, inserted as 0 when missing. */
static uint64_t *u64map_ref(struct u64map *m, uint64_t key)
{
	struct u64map big = { 0 };
	size_t i, j;

	if ((m->n + 1) * 4 > m->cap * 3) {
		big.cap = m->cap ? m->cap * 2 : 256;
		big.keys = calloc(big.cap, sizeof(*big.keys));
		big.vals = calloc(big.cap, sizeof(*big.vals));
		if (!big.keys || !big.vals) {
			free(big.keys);
			free(big.vals);
			return NULL;
		}
		for (i = 0; i < m->cap; i++) {
			if (!m->keys[i])
				continue;
			j = u64map_slot(&big, m->keys[i]);
			big.keys[j] = m->keys[i];
			big.vals[j] = m->vals[i];
		}
		big.n = m->n;
		free(m->keys);
		free(m->vals);
		*m = big;
	}
	j = u64map_slot(m, key);
	if (!m->keys[j]) {
		m->keys[j] = key;
		m->vals[j] = 0;
		m->n++;
	}
	return &m->vals[j];
}

static void u64map_release(struct u64map *m)
{
	free(m->keys);
	free(m->vals);
}

/* Bind the selection parameters ?1..?4 shared by query and timeline. */
static int bind_selection(struct store *s, sqlite3_stmt *stmt, const char *app,
			  const char *labels_match, int64_t from_s, int64_t until_s)
{
	int rc;

	rc = sqlite3_bind_text(stmt, 1, app, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = labels_match ? sqlite3_bind_text(stmt, 2, labels_match, -1, SQLITE_STATIC)
				  : sqlite3_bind_null(stmt, 2);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(stmt, 3, from_s);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(stmt, 4, until_s);
	return rc == SQLITE_OK ? 0 : db_fail(s, rc, "bind selection");
}

/* Intern the name of frames.id fid into out, through the map. */
static int frame_out(struct store *s, struct u64map *map, uint32_t fid, struct stacks *out,
		     uint32_t *id)
{
	sqlite3_stmt *get = s->stmt[ST_FRAME_NAME];
	uint64_t v, *slot;
	int rc, err;

	if (u64map_get(map, fid, &v)) {
		*id = (uint32_t)v;
		return 0;
	}
	if (!fid) {
		log_warn("store: stack refers to frame 0");
		return -EIO;
	}
	rc = sqlite3_bind_int64(get, 1, fid);
	if (rc != SQLITE_OK) {
		err = db_fail(s, rc, "bind frame id");
		goto cleanup;
	}
	rc = sqlite3_step(get);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			log_warn("store: stack refers to missing frame %u", fid);
		err = rc == SQLITE_DONE ? -EIO : db_fail(s, rc, stmt_sql[ST_FRAME_NAME]);
		goto cleanup;
	}
	err = stacks__intern(out, sqlite3_column_blob(get, 0), (size_t)sqlite3_column_bytes(get, 0),
			     id);
	if (!err) {
		slot = u64map_ref(map, fid);
		if (slot)
			*slot = *id;
		else
			err = -ENOMEM;
	}
cleanup:
	stmt_done(get);
	return err;
}

/* Add count samples of stacks.id sid to out. */
static int stack_out(struct store *s, struct u64map *fmap, int64_t sid, uint64_t count,
		     struct stacks *out)
{
	sqlite3_stmt *get = s->stmt[ST_STACK_FRAMES];
	const unsigned char *b;
	size_t len, n, i;
	uint32_t *ids, fid;
	int rc, err;

	err = bind_i64(s, ST_STACK_FRAMES, &sid, 1);
	if (err)
		return err;
	rc = sqlite3_step(get);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			log_warn("store: counts refer to missing stack %lld", (long long)sid);
		err = rc == SQLITE_DONE ? -EIO : db_fail(s, rc, stmt_sql[ST_STACK_FRAMES]);
		goto cleanup;
	}
	b = sqlite3_column_blob(get, 0);
	len = (size_t)sqlite3_column_bytes(get, 0);
	if (!b || !len || len % 4) {
		log_warn("store: malformed stack %lld", (long long)sid);
		err = -EIO;
		goto cleanup;
	}
	n = len / 4;
	ids = grow(s->ids, &s->ids_cap, n, sizeof(*ids));
	if (!ids) {
		err = -ENOMEM;
		goto cleanup;
	}
	s->ids = ids;
	for (i = 0; i < n; i++) {
		fid = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
		      (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24;
		/* frame_out steps another statement; b stays valid (get is untouched). */
		err = frame_out(s, fmap, fid, out, &ids[i]);
		if (err)
			goto cleanup;
	}
	err = stacks__add(out, ids, n, count);
cleanup:
	stmt_done(get);
	return err;
}

/* Sum the counts blobs of the selection per stack into map. */
static int query_sum(struct store *s, struct u64map *map)
{
	sqlite3_stmt *q = s->stmt[ST_QUERY];
	uint64_t n, sum, *slot;
	size_t i;
	int rc, err;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		s->tv.n = 0;
		err = counts_decode(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0),
				    &s->tv, &n, &sum);
		if (err)
			return err;
		for (i = 0; i < s->tv.n; i++) {
			slot = u64map_ref(map, (uint64_t)s->tv.v[i].stack);
			if (!slot)
				return -ENOMEM;
			if (*slot > UINT64_MAX - s->tv.v[i].count)
				return -EOVERFLOW;
			*slot += s->tv.v[i].count;
		}
	}
	return rc == SQLITE_DONE ? 0 : db_fail(s, rc, "query samples");
}

int store__query(struct store *s, const char *app, const char *labels_match, int64_t from_s,
		 int64_t until_s, struct stacks *out)
{
	struct u64map sums = { 0 }, fmap = { 0 };
	size_t i;
	int err;

	if (!s || !app || !out)
		return -EINVAL;
	err = step_done(s, ST_BEGIN_READ);
	if (err)
		return err;
	err = bind_selection(s, s->stmt[ST_QUERY], app, labels_match, from_s, until_s);
	if (!err)
		err = query_sum(s, &sums);
	stmt_done(s->stmt[ST_QUERY]);
	for (i = 0; !err && i < sums.cap; i++) {
		if (sums.keys[i])
			err = stack_out(s, &fmap, (int64_t)sums.keys[i], sums.vals[i], out);
	}
	if (!err)
		err = step_done(s, ST_COMMIT);
	if (err && !sqlite3_get_autocommit(s->db) && step_done(s, ST_ROLLBACK))
		log_warn("store: rollback failed");
	u64map_release(&sums);
	u64map_release(&fmap);
	s->tv.n = 0;
	return err;
}

int store__series(struct store *s, store_series_fn fn, void *arg)
{
	sqlite3_stmt *q;
	int rc, ret = 0;

	if (!s || !fn)
		return -EINVAL;
	q = s->stmt[ST_SERIES_LIST];
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *app = (const char *)sqlite3_column_text(q, 0);
		const char *labels = (const char *)sqlite3_column_text(q, 1);

		if (!app || !labels) {
			ret = -ENOMEM;
			break;
		}
		ret = fn(arg, app, labels, sqlite3_column_int64(q, 2), sqlite3_column_int64(q, 3),
			 (uint64_t)sqlite3_column_int64(q, 4),
			 (uint32_t)sqlite3_column_int64(q, 5));
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = db_fail(s, rc, "list series");
	stmt_done(q);
	return ret;
}

/* Both timelines: fn1 gets (t, count) rows of ST_TIMELINE, fn2 (t, width, count) of ST_TIMELINE2. */
static int timeline(struct store *s, const char *app, const char *labels_match, int64_t from_s,
		    int64_t until_s, store_timeline_fn fn1, store_timeline2_fn fn2, void *arg)
{
	sqlite3_stmt *q;
	int rc, ret;

	if (!s || !app || (!fn1 && !fn2))
		return -EINVAL;
	q = s->stmt[fn1 ? ST_TIMELINE : ST_TIMELINE2];
	ret = bind_selection(s, q, app, labels_match, from_s, until_s);
	if (ret)
		goto cleanup;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (fn1)
			ret = fn1(arg, sqlite3_column_int64(q, 0),
				  (uint64_t)sqlite3_column_int64(q, 1));
		else
			ret = fn2(arg, sqlite3_column_int64(q, 0), sqlite3_column_int64(q, 1),
				  (uint64_t)sqlite3_column_int64(q, 2));
		if (ret)
			goto cleanup;
	}
	if (rc != SQLITE_DONE)
		ret = db_fail(s, rc, "timeline");
cleanup:
	stmt_done(q);
	return ret;
}

int store__timeline(struct store *s, const char *app, const char *labels_match, int64_t from_s,
		    int64_t until_s, store_timeline_fn fn, void *arg)
{
	if (!fn)
		return -EINVAL;
	return timeline(s, app, labels_match, from_s, until_s, fn, NULL, arg);
}

int store__timeline2(struct store *s, const char *app, const char *labels_match, int64_t from_s,
		     int64_t until_s, store_timeline2_fn fn, void *arg)
{
	if (!fn)
		return -EINVAL;
	return timeline(s, app, labels_match, from_s, until_s, NULL, fn, arg);
}

/* ---- retention ---- */

static int tiers_check(const struct store_tier *t, size_t n, char *err, size_t errlen)
{
	size_t i;

	if (n < 1 || n > STORE_MAX_TIERS) {
		set_errf(err, errlen, "%zu retention tiers (1 to %d allowed)", n, STORE_MAX_TIERS);
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		if (t[i].width_s < 1 || t[i].width_s > STORE_MAX_SPAN_S || t[i].keep_s < 1 ||
		    t[i].keep_s > STORE_MAX_SPAN_S) {
			set_errf(
				err, errlen,
				"tier %zu: width and keep must be between 1s and %llds (100 years)",
				i + 1, (long long)STORE_MAX_SPAN_S);
			return -EINVAL;
		}
		if (i == 0 && t[0].width_s != STORE_BUCKET_S) {
			set_errf(err, errlen, "tier 1: width must be %ds, the ingest bucket",
				 STORE_BUCKET_S);
			return -EINVAL;
		}
		if (i && t[i].width_s <= t[i - 1].width_s) {
			set_errf(err, errlen,
				 "tier %zu: width %llds must exceed the previous %llds", i + 1,
				 (long long)t[i].width_s, (long long)t[i - 1].width_s);
			return -EINVAL;
		}
		if (i && t[i].width_s % t[i - 1].width_s) {
			set_errf(err, errlen,
				 "tier %zu: width %llds must be a multiple of the previous %llds",
				 i + 1, (long long)t[i].width_s, (long long)t[i - 1].width_s);
			return -EINVAL;
		}
	}
	return 0;
}

/* A whole number and a unit (s, m, h, d) at *pp, in seconds; advances *pp. */
static int parse_span(const char **pp, int64_t *out)
{
	const char *p = *pp;
	int64_t v = 0, mul;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > STORE_MAX_SPAN_S)
			return -ERANGE;
		v = v * 10 + (*p - '0');
	}
	switch (*p) {
	case 's':
		mul = 1;
		break;
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 86400;
		break;
	default:
		return -EINVAL;
	}
	if (v > STORE_MAX_SPAN_S / mul)
		return -ERANGE;
	*out = v * mul;
	*pp = p + 1;
	return 0;
}

int store_parse_retention(const char *spec, struct store_tier *out, size_t max, size_t *n,
			  char *err, size_t errlen)
{
	struct store_tier t[STORE_MAX_TIERS];
	const char *p = spec, *item;
	size_t k = 0, len;
	int r;

	if (!spec || !out || !n) {
		set_errf(err, errlen, "no retention policy");
		return -EINVAL;
	}
	if (!*spec) {
		set_errf(err, errlen, "empty retention policy (expected WIDTH:KEEP,..., as in %s)",
			 STORE_RETENTION_DEFAULT);
		return -EINVAL;
	}
	for (;;) {
		item = p;
		len = strcspn(p, ",");
		if (!len) {
			set_errf(err, errlen, "retention tier %zu is empty", k + 1);
			return -EINVAL;
		}
		if (k == STORE_MAX_TIERS) {
			set_errf(err, errlen, "more than %d retention tiers", STORE_MAX_TIERS);
			return -EINVAL;
		}
		r = parse_span(&p, &t[k].width_s);
		if (!r && *p++ != ':')
			r = -EINVAL;
		if (!r)
			r = parse_span(&p, &t[k].keep_s);
		if (!r && *p && *p != ',')
			r = -EINVAL;
		if (r == -ERANGE) {
			set_errf(err, errlen, "retention tier %zu '%.*s': duration over 100 years",
				 k + 1, (int)len, item);
			return -EINVAL;
		}
		if (r) {
			set_errf(err, errlen,
				 "retention tier %zu '%.*s': expected WIDTH:KEEP, each a whole "
				 "number"
				 " and a unit s, m, h or d (as in 1m:14d)",
				 k + 1, (int)len, item);
			return -EINVAL;
		}
		k++;
		if (!*p)
			break;
		p++;
	}
	r = tiers_check(t, k, err, errlen);
	if (r)
		return r;
	if (k > max) {
		set_errf(err, errlen, "%zu retention tiers, room for %zu", k, max);
		return -EINVAL;
	}
	memcpy(out, t, k * sizeof(*t));
	*n = k;
	return 0;
}

int store__set_retention(struct store *s, const struct store_tier *tiers, size_t n)
{
	if (!s || !tiers || tiers_check(tiers, n, NULL, 0))
		return -EINVAL;
	memcpy(s->tiers, tiers, n * sizeof(*tiers));
	s->ntiers = n;
	return 0;
}

int store__set_max_bytes(struct store *s, uint64_t max)
{
	if (!s)
		return -EINVAL;
	s->max_bytes = max;
	if (!max)
		s->trimming = false;
	return 0;
}

/* ---- compaction ---- */

static int64_t sat_sub(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_sub_overflow(a, b, &r))
		return b > 0 ? INT64_MIN : INT64_MAX;
	return r;
}

/* b rounded down to a multiple of w (w > 0), for any sign of b. */
static int64_t floor_to(int64_t b, int64_t w)
{
	int64_t m = b % w;

	return m < 0 ? b - m - w : b - m;
}

/* The tier rows of this width belong to: the last whose width is not larger. */
static size_t tier_of(const struct store *s, int64_t width)
{
	size_t k = 0;

	while (k + 1 < s->ntiers && s->tiers[k + 1].width_s <= width)
		k++;
	return k;
}

/* The oldest bucket of the database: 1 with its width and start, 0 when there is none. */
static int oldest_bucket(struct store *s, int64_t *width, int64_t *bucket)
{
	int64_t w = INT64_MIN, b = 0;
	int r, found = 0;

	while ((r = GET(s, ST_WIDTH_NEXT, &w, 1, w)) == 1) {
		r = GET(s, ST_WIDTH_OLDEST, &b, 1, w);
		if (r < 0)
			return r;
		if (r && (!found || b < *bucket)) {
			*bucket = b;
			*width = w;
			found = 1;
		}
	}
	return r < 0 ? r : found;
}

static int live_size(struct store *s, uint64_t *live)
{
	int64_t pages = 0, free_pages = 0;
	int r = GET0(s, ST_PAGE_COUNT, &pages);

	if (r >= 0)
		r = GET0(s, ST_FREELIST_COUNT, &free_pages);
	if (r < 0)
		return r;
	*live = pages > free_pages ? (uint64_t)(pages - free_pages) * (uint64_t)s->page_size : 0;
	return 0;
}

/*
 * Rows of width w starting in [lo, hi], oldest first, into s->rows until their pairs reach budget
 * (at least one row). *more: rows were left.
 */
static int aged_collect(struct store *s, int64_t w, int64_t lo, int64_t hi, size_t budget,
			bool *more)
{
	sqlite3_stmt *q = s->stmt[ST_AGED];
	int64_t limit = budget >= (size_t)INT64_MAX ? INT64_MAX : (int64_t)budget + 1;
	struct agerow *v;
	size_t used = 0;
	int rc, err;

	s->rows.n = 0;
	*more = false;
	err = bind_i64(s, ST_AGED, (const int64_t[]){ w, lo, hi, limit }, 4);
	if (err)
		return err;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (s->rows.n && used >= budget) {
			*more = true;
			break;
		}
		v = grow(s->rows.v, &s->rows.cap, s->rows.n + 1, sizeof(*v));
		if (!v) {
			err = -ENOMEM;
			break;
		}
		s->rows.v = v;
		v += s->rows.n;
		v->series = sqlite3_column_int64(q, 0);
		v->bucket = sqlite3_column_int64(q, 1);
		v->total = sqlite3_column_int64(q, 2);
		v->nstacks = sqlite3_column_int64(q, 3);
		v->counts_id = sqlite3_column_int64(q, 4);
		v->target = v->bucket;
		if (v->total < 0 || v->nstacks < 0) {
			log_warn("store: malformed samples row");
			err = -EIO;
			break;
		}
		s->rows.n++;
		used += v->nstacks > 0 && (uint64_t)v->nstacks < SIZE_MAX / 2 ? (size_t)v->nstacks
									      : 1;
	}
	if (!err && rc != SQLITE_ROW && rc != SQLITE_DONE)
		err = db_fail(s, rc, stmt_sql[ST_AGED]);
	stmt_done(q);
	return err;
}

/* The pairs of the rows collected, for the budget. */
static size_t rows_work(const struct rowvec *rv)
{
	size_t i, n = 0;

	for (i = 0; i < rv->n; i++)
		n += rv->v[i].nstacks > 0 ? (size_t)rv->v[i].nstacks : 1;
	return n;
}

static int agerow_cmp(const void *a, const void *b)
{
	const struct agerow *x = a, *y = b;

	if (x->series != y->series)
		return x->series < y->series ? -1 : 1;
	if (x->target != y->target)
		return x->target < y->target ? -1 : 1;
	return (x->bucket > y->bucket) - (x->bucket < y->bucket);
}

/* One transaction: move up to budget pairs of width-w rows starting at or before cut to w2. */
static int move_step(struct store *s, int64_t w, int64_t cut, int64_t w2, size_t budget,
		     size_t *used, bool *more)
{
	struct rowvec *rv = &s->rows;
	int64_t total = 0, entries = 0;
	uint64_t sum;
	size_t i, j;
	int err;

	*used = 0;
	err = txn_begin_write(s);
	if (err)
		return err;
	err = aged_collect(s, w, INT64_MIN, cut, budget, more);
	if (err || !rv->n)
		goto end;
	for (i = 0; i < rv->n; i++)
		rv->v[i].target = floor_to(rv->v[i].bucket, w2);
	qsort(rv->v, rv->n, sizeof(*rv->v), agerow_cmp);
	for (i = 0; !err && i < rv->n; i = j) {
		s->tv.n = 0;
		for (j = i; !err && j < rv->n && rv->v[j].series == rv->v[i].series &&
			    rv->v[j].target == rv->v[i].target;
		     j++) {
			const struct agerow *r = &rv->v[j];

			err = counts_load(s, r->counts_id, r->total, r->nstacks, &s->tv);
			if (!err)
				err = row_delete(s, r->series, r->bucket, w, r->counts_id);
			total += r->total;
			entries += r->nstacks;
		}
		if (!err)
			err = tvec_normalize(&s->tv, &sum);
		if (!err)
			err = row_add(s, rv->v[i].series, rv->v[i].target, w2, &s->tv, sum);
	}
	if (!err)
		err = tier_add(s, w, -(int64_t)rv->n, -entries, -total);
end:
	if (err) {
		txn_rollback(s);
		return err;
	}
	err = txn_commit(s);
	if (err)
		return err;
	*used = rows_work(rv);
	s->moved_rows += rv->n;
	s->moved_entries += (uint64_t)entries;
	return 0;
}

/* What a deletion removed (for the counters, and the disk bound's one warning per call). */
struct dropped {
	uint64_t rows;
	uint64_t entries;
	uint64_t samples;
	int64_t from;
	int64_t until;
};

/*
 * Inside a transaction: delete up to budget pairs of width-w rows starting in [lo, hi], oldest
 * first. With stop_at > 0, stop as soon as the live size is at most stop_at (*reached).
 */
static int drop_rows(struct store *s, int64_t w, int64_t lo, int64_t hi, size_t budget,
		     uint64_t stop_at, struct dropped *d, bool *more, bool *reached)
{
	struct rowvec *rv = &s->rows;
	uint64_t live;
	size_t i;
	int err;

	*reached = false;
	err = aged_collect(s, w, lo, hi, budget, more);
	for (i = 0; !err && i < rv->n; i++) {
		const struct agerow *r = &rv->v[i];

		err = row_delete(s, r->series, r->bucket, w, r->counts_id);
		if (!err)
			err = RUN(s, ST_SERIES_SUB, r->series, r->total);
		if (err)
			break;
		if (!d->rows || r->bucket < d->from)
			d->from = r->bucket;
		if (!d->rows || sat_sub(r->bucket, -w) > d->until)
			d->until = sat_sub(r->bucket, -w);
		d->rows++;
		d->entries += (uint64_t)r->nstacks;
		d->samples += (uint64_t)r->total;
		if (stop_at) {
			err = live_size(s, &live);
			if (!err && live <= stop_at) {
				*reached = true;
				*more = i + 1 < rv->n;
				break;
			}
		}
	}
	return err;
}

static int tier_sub(struct store *s, int64_t w, const struct dropped *d)
{
	return tier_add(s, w, -(int64_t)d->rows, -(int64_t)d->entries, -(int64_t)d->samples);
}

/* One transaction: delete width-w rows ending before cut (past the last tier). */
static int expire_step(struct store *s, int64_t w, int64_t cut, size_t budget, size_t *used,
		       bool *more)
{
	struct dropped d = { 0 };
	bool reached;
	int err;

	*used = 0;
	err = txn_begin_write(s);
	if (err)
		return err;
	err = drop_rows(s, w, INT64_MIN, cut, budget, 0, &d, more, &reached);
	if (!err)
		err = tier_sub(s, w, &d);
	if (err) {
		txn_rollback(s);
		return err;
	}
	err = txn_commit(s);
	if (err)
		return err;
	*used = d.entries > d.rows ? (size_t)d.entries : (size_t)d.rows;
	s->expired_rows += d.rows;
	s->expired_entries += d.entries;
	return 0;
}

static int meta_add(struct store *s, const char *key, int64_t v)
{
	sqlite3_stmt *stmt = s->stmt[ST_META_ADD];
	int rc = sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);

	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(stmt, 2, v);
	if (rc != SQLITE_OK) {
		stmt_done(stmt);
		return db_fail(s, rc, "bind meta");
	}
	return step_done(s, ST_META_ADD);
}

/*
 * The disk bound: while over it (or, once started, over 90 % of it), delete the oldest buckets,
 * one transaction per bucket start. What went is added to *dl.
 */
static int trim(struct store *s, size_t budget, size_t *used, bool *pending, struct dropped *dl)
{
	uint64_t live, stop_at = s->max_bytes - s->max_bytes / 10;
	int64_t w = 0, b = 0;
	struct dropped d;
	bool more, reached;
	int r, err;

	*used = 0;
	*pending = false;
	if (!s->max_bytes) {
		s->trimming = false;
		return 0;
	}
	err = live_size(s, &live);
	if (err)
		return err;
	if (live > s->max_bytes)
		s->trimming = true;
	while (s->trimming && *used < budget) {
		memset(&d, 0, sizeof(d));
		err = txn_begin_write(s);
		if (err)
			return err;
		err = live_size(s, &live);
		if (!err && live <= stop_at) {
			s->trimming = false;
			goto commit;
		}
		r = err ? err : oldest_bucket(s, &w, &b);
		if (r <= 0) {
			err = r;
			s->trimming = false; /* nothing left to delete */
			goto commit;
		}
		err = drop_rows(s, w, b, b, budget - *used, stop_at, &d, &more, &reached);
		if (!err)
			err = tier_sub(s, w, &d);
		if (!err && d.samples)
			err = meta_add(s, "dropped_samples", (int64_t)d.samples);
		if (!err && d.rows)
			err = meta_add(s, "dropped_rows", (int64_t)d.rows);
		if (!err && reached)
			s->trimming = false;
	commit:
		if (err) {
			txn_rollback(s);
			return err;
		}
		err = txn_commit(s);
		if (err)
			return err;
		if (d.rows) {
			if (!dl->rows || d.from < dl->from)
				dl->from = d.from;
			if (!dl->rows || d.until > dl->until)
				dl->until = d.until;
			dl->rows += d.rows;
			dl->entries += d.entries;
			dl->samples += d.samples;
		}
		s->trimmed_rows += d.rows;
		s->trimmed_entries += d.entries;
		*used += d.entries > d.rows ? (size_t)d.entries : (size_t)d.rows;
		if (!d.rows)
			break;
	}
	*pending = s->trimming;
	return 0;
}

/* One transaction: delete up to budget stacks, then frames, that no sample can use any more. */
static int gc_step(struct store *s, size_t budget, size_t *used, bool *more)
{
	int64_t w, b = 0, lim, nstacks = 0, nframes = 0;
	int r, err;

	*used = 0;
	*more = false;
	err = txn_begin_write(s);
	if (err)
		return err;
	r = oldest_bucket(s, &w, &b);
	if (r < 0) {
		err = r;
		goto end;
	}
	lim = r ? sat_sub(b, SEEN_SLACK_S) : INT64_MAX;
	err = RUN(s, ST_GC_STACKS, lim, (int64_t)budget);
	if (err)
		goto end;
	nstacks = sqlite3_changes64(s->db);
	if ((size_t)nstacks < budget) {
		err = RUN(s, ST_GC_FRAMES, lim, (int64_t)(budget - (size_t)nstacks));
		if (err)
			goto end;
		nframes = sqlite3_changes64(s->db);
	}
end:
	if (err) {
		txn_rollback(s);
		return err;
	}
	err = txn_commit(s);
	if (err)
		return err;
	if (nstacks)
		cache_prune(&s->stacks, lim);
	if (nframes)
		cache_prune(&s->frames, lim);
	s->gc_stacks += (uint64_t)nstacks;
	s->gc_frames += (uint64_t)nframes;
	*used = (size_t)(nstacks + nframes);
	*more = *used >= budget;
	return 0;
}

/*
 * Hand free pages back when more than max(VACUUM_MIN_FREE, 1/16 of the file) are free; *more
 * when that is still the case after budget pages.
 */
static int vacuum_step(struct store *s, size_t budget, size_t *used, bool *more)
{
	int64_t pages = 0, free_pages = 0, after = 0, n;
	char sql[64];
	int r, err;

	*used = 0;
	*more = false;
	if (!s->incremental)
		return 0;
	r = GET0(s, ST_PAGE_COUNT, &pages);
	if (r >= 0)
		r = GET0(s, ST_FREELIST_COUNT, &free_pages);
	if (r < 0)
		return r;
	if (free_pages <= VACUUM_MIN_FREE || free_pages <= pages / 16)
		return 0;
	n = (uint64_t)free_pages < budget ? free_pages : (int64_t)budget;
	snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%lld)", (long long)n);
	err = exec_sql(s, sql);
	if (err)
		return err;
	r = GET0(s, ST_FREELIST_COUNT, &after);
	if (r < 0)
		return r;
	if (after < free_pages) {
		s->vacuumed_pages += (uint64_t)(free_pages - after);
		*used = (size_t)(free_pages - after);
	}
	*more = after > VACUUM_MIN_FREE && after > (pages - (free_pages - after)) / 16 &&
		after < free_pages;
	/* The file shrinks when the WAL is checkpointed; do it now if no reader is in the way. */
	sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return 0;
}

static void fmt_time(char *buf, size_t len, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm))
		snprintf(buf, len, "%lld", (long long)t);
}

int store__compact(struct store *s, int64_t now_s, size_t max_rows, bool *more)
{
	size_t cap1, spent = 0, left, used = 0, k;
	struct dropped dl = { 0 };
	bool m = false, pending = false;
	int64_t w = 0, cut;
	char from[40], until[40];
	int r, err = 0;

	if (!s || !max_rows)
		return -EINVAL;
	if (more)
		*more = false;
	/* 1. Downsampling and expiry, finest width first, with up to 3/4 of the budget. */
	cap1 = max_rows - max_rows / 4;
	while (!err && !pending && (r = GET(s, ST_WIDTH_NEXT, &w, 1, w)) != 0) {
		if (r < 0) {
			err = r;
			break;
		}
		k = tier_of(s, w);
		cut = sat_sub(sat_sub(now_s, s->tiers[k].keep_s), w);
		do {
			if (spent >= cap1) {
				pending = true;
				break;
			}
			if (k + 1 < s->ntiers)
				err = move_step(s, w, cut, s->tiers[k + 1].width_s, cap1 - spent,
						&used, &m);
			else
				err = expire_step(s, w, cut, cap1 - spent, &used, &m);
			spent += used;
		} while (!err && m);
	}
	left = max_rows - (spent < max_rows ? spent : max_rows);
	/* 2. The disk bound. */
	if (!err) {
		err = trim(s, left, &used, &m, &dl);
		left -= used < left ? used : left;
		pending |= m;
	}
	/* 3. Unreferenced stacks and frames. */
	m = false;
	while (!err && left) {
		err = gc_step(s, left, &used, &m);
		left -= used < left ? used : left;
		if (!m)
			break;
	}
	pending |= m;
	/* 4. Free pages back to the file system. */
	if (!err && left) {
		err = vacuum_step(s, left, &used, &m);
		pending |= m;
	}
	if (dl.rows) {
		fmt_time(from, sizeof(from), dl.from);
		fmt_time(until, sizeof(until), dl.until);
		log_warn("store: over the disk bound of %llu bytes: dropped %llu samples"
			 " (%llu buckets) from %s to %s",
			 (unsigned long long)s->max_bytes, (unsigned long long)dl.samples,
			 (unsigned long long)dl.rows, from, until);
	}
	if (more)
		*more = pending || err;
	return err;
}

/* ---- stats ---- */

static uint64_t file_size(const char *path)
{
	struct stat sb;

	return path && !stat(path, &sb) ? (uint64_t)sb.st_size : 0;
}

static int stats_read(struct store *s, struct store_stats *out)
{
	sqlite3_stmt *q = NULL;
	int64_t v = 0;
	size_t k;
	int rc, err;

	err = GET0(s, ST_PAGE_COUNT, &v);
	if (err < 0)
		return err;
	out->pages = (uint64_t)v;
	err = GET0(s, ST_FREELIST_COUNT, &v);
	if (err < 0)
		return err;
	out->free_pages = (uint64_t)v;
	err = prepare(s, "SELECT width, rows, entries, samples FROM tiers", &q);
	if (err)
		return err;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct store_tier_stats *t = &out->tiers[tier_of(s, sqlite3_column_int64(q, 0))];

		t->rows +=
			(uint64_t)(sqlite3_column_int64(q, 1) > 0 ? sqlite3_column_int64(q, 1) : 0);
		t->entries +=
			(uint64_t)(sqlite3_column_int64(q, 2) > 0 ? sqlite3_column_int64(q, 2) : 0);
		t->samples +=
			(uint64_t)(sqlite3_column_int64(q, 3) > 0 ? sqlite3_column_int64(q, 3) : 0);
	}
	if (rc != SQLITE_DONE)
		err = db_fail(s, rc, "read tiers");
	sqlite3_finalize(q);
	for (k = 0; k < out->ntiers; k++) {
		out->tiers[k].width_s = s->tiers[k].width_s;
		out->tiers[k].keep_s = s->tiers[k].keep_s;
	}
	if (!err)
		err = pragma_get(s, "SELECT count(*) FROM series", &v, NULL, 0);
	out->series = (uint64_t)v;
	if (!err)
		err = pragma_get(s, "SELECT count(*) FROM stacks", &v, NULL, 0);
	out->stacks = (uint64_t)v;
	if (!err)
		err = pragma_get(s, "SELECT count(*) FROM frames", &v, NULL, 0);
	out->frames = (uint64_t)v;
	if (!err)
		err = pragma_get(s,
				 "SELECT coalesce((SELECT value FROM meta"
				 " WHERE key = 'dropped_samples'), 0)",
				 &v, NULL, 0);
	out->dropped_samples = (uint64_t)v;
	if (!err)
		err = pragma_get(s,
				 "SELECT coalesce((SELECT value FROM meta"
				 " WHERE key = 'dropped_rows'), 0)",
				 &v, NULL, 0);
	out->dropped_rows = (uint64_t)v;
	return err;
}

int store__stats(struct store *s, struct store_stats *out)
{
	int err;

	if (!s || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->ntiers = s->ntiers;
	err = step_done(s, ST_BEGIN_READ);
	if (err)
		return err;
	err = stats_read(s, out);
	if (!err)
		err = step_done(s, ST_COMMIT);
	if (err && !sqlite3_get_autocommit(s->db) && step_done(s, ST_ROLLBACK))
		log_warn("store: rollback failed");
	if (err)
		return err;
	out->db_bytes = file_size(s->path);
	out->wal_bytes = file_size(s->wal_path);
	out->file_bytes = out->db_bytes + out->wal_bytes;
	out->page_size = (uint64_t)s->page_size;
	out->live_bytes =
		out->pages > out->free_pages ? (out->pages - out->free_pages) * out->page_size : 0;
	out->max_bytes = s->max_bytes;
	out->incremental_vacuum = s->incremental;
	out->moved_rows = s->moved_rows;
	out->expired_rows = s->expired_rows;
	out->trimmed_rows = s->trimmed_rows;
	out->moved_entries = s->moved_entries;
	out->expired_entries = s->expired_entries;
	out->trimmed_entries = s->trimmed_entries;
	out->gc_stacks = s->gc_stacks;
	out->gc_frames = s->gc_frames;
	out->vacuumed_pages = s->vacuumed_pages;
	out->cache_hits = s->cache_hits;
	out->cache_misses = s->cache_misses;
	out->cache_resets = s->cache_resets + s->frames.resets + s->stacks.resets;
	return 0;
}
