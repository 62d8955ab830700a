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
 *
 * Hour rollups (store.h) make long queries cheap: a day over 100 series reads 2,400 rollup blobs
 * of a few thousand pairs instead of 864,000 bucket blobs of ~300. A query through them walks
 * the selected series one by one: the series' rollups of the whole hours in range, in hour
 * order, and between them range scans of its finer rows (the primary key is (series_id, bucket,
 * width)); rows an hour wide or wider, which no rollup holds, come from one scan of the age
 * index per such width. Counts are added up in an array indexed by stack id (ids are rowids, so
 * they span little more than the stacks alive), not a hash map: that is most of a query's CPU.
 * Timelines read each rollup's per-minute totals instead of its hour's buckets.
 *
 * Rollups never go stale: whatever changes an hour's rows deletes its rollup in the same
 * transaction and queues the hour in rollup_todo; compaction rebuilds queued hours from the
 * rows. So an ingest costs one extra lookup per series and hour (a per-connection hint, reset
 * like the caches, skips even that for the following ingests of the hour).
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
/* A query adds counts up in an array indexed by stack id when the ids span at most this many. */
#define DENSE_MAX_IDS ((int64_t)1 << 22)
/*
 * Hour rollups (store.h): the span of one, in seconds. Rows of this width or wider are never
 * part of a rollup. The SQL below spells it out as 3600.
 */
#define ROLLUP_S STORE_ROLLUP_S
_Static_assert(ROLLUP_S == 3600, "the SQL says 3600");
/* Per-minute totals kept with each rollup (for timelines). */
#define ROLLUP_MINUTES (ROLLUP_S / 60)
/* An hour is rolled up once its end lies this far behind the compaction's now_s. */
#define ROLLUP_DELAY_S 60
/* Rollups built per compaction transaction at most, and queue entries looked at per step. */
#define ROLLUPS_PER_STEP  4
#define ROLLUP_TODO_BATCH 64

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
/* Tables of version 3. rollup_todo is a queue (a hint), so it references nothing. */
#define ROLLUPS_DEF                                                                                \
	"CREATE TABLE rollups ("                                                                   \
	" series_id INTEGER NOT NULL REFERENCES series (id),"                                      \
	" hour INTEGER NOT NULL,"                                                                  \
	" total INTEGER NOT NULL,"                                                                 \
	" nstacks INTEGER NOT NULL,"                                                               \
	" counts_id INTEGER NOT NULL,"                                                             \
	" minutes BLOB NOT NULL,"                                                                  \
	" PRIMARY KEY (series_id, hour)) WITHOUT ROWID;"                                           \
	"CREATE TABLE rollup_todo ("                                                               \
	" hour INTEGER NOT NULL,"                                                                  \
	" series_id INTEGER NOT NULL,"                                                             \
	" PRIMARY KEY (hour, series_id)) WITHOUT ROWID;"
/* Version 2 -> 3: every hour that has rows finer than an hour is queued for its rollup. */
#define ROLLUPS_QUEUE_ALL                                                                          \
	"INSERT OR IGNORE INTO rollup_todo (hour, series_id)"                                      \
	" SELECT DISTINCT bucket - ((bucket % 3600) + 3600) % 3600, series_id FROM samples"        \
	" WHERE width < 3600;"

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
		AGE_INDEX_DEF COUNTS_DEF TIERS_DEF META_DEF ROLLUPS_DEF;

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
	ST_ROLLUP_GET,
	ST_ROLLUP_PUT,
	ST_ROLLUP_DEL,
	ST_ROLLUP_MINUTES,
	ST_ROLLUP_SETMIN,
	ST_TODO_PUT,
	ST_TODO_DEL,
	ST_TODO_NEXT,
	ST_TODO_DROP,
	ST_HOUR_ROWS,
	ST_SEL_SERIES,
	ST_ROLLUPS_DATA,
	ST_ROLLUPS_MINUTES,
	ST_GAP_DATA,
	ST_GAP_TOTALS,
	ST_WIDE_DATA,
	ST_WIDE_TOTALS,
	ST_TL_ROWS,
	ST_STACK_RANGE,
	ST_COUNT,
};

/* The selection shared by query and timelines: ?1 app, ?2 labels_match or NULL, [?3, ?4). */
#define SELECTION_FROM " FROM series s JOIN samples x ON x.series_id = s.id"
#define SELECTION_WHERE                                                                            \
	" WHERE s.app = ?1 AND (?2 IS NULL OR pysamp_labels_match(s.labels, ?2))"                  \
	" AND x.bucket >= ?3 AND x.bucket < ?4"
/*
 * The same selection restricted to rows of width ?5 (an hour or wider), found through the age
 * index: the planner would otherwise walk every row of each series.
 */
#define WIDE_FROM  " FROM samples x INDEXED BY samples_age JOIN series s ON s.id = x.series_id"
#define WIDE_WHERE SELECTION_WHERE " AND x.width = ?5"
/* Rows finer than an hour of series ?1 starting in [?2, ?3), in key order. */
#define FINE_WHERE " WHERE x.series_id = ?1 AND x.bucket >= ?2 AND x.bucket < ?3 AND x.width < 3600"

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
	/* counts_id, nstacks and the bytes of both blobs (length() reads no blob content). */
	[ST_ROLLUP_GET] =
		"SELECT r.counts_id, r.nstacks, length(r.minutes) +"
		" coalesce((SELECT length(c.data) FROM counts c WHERE c.id = r.counts_id), 0)"
		" FROM rollups r WHERE r.series_id = ?1 AND r.hour = ?2",
	[ST_ROLLUP_PUT] =
		"INSERT INTO rollups (series_id, hour, total, nstacks, counts_id, minutes)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_ROLLUP_DEL] = "DELETE FROM rollups WHERE series_id = ?1 AND hour = ?2",
	[ST_ROLLUP_MINUTES] = "SELECT minutes FROM rollups WHERE series_id = ?1 AND hour = ?2",
	[ST_ROLLUP_SETMIN] = "UPDATE rollups SET minutes = ?3 WHERE series_id = ?1 AND hour = ?2",
	[ST_TODO_PUT] = "INSERT OR IGNORE INTO rollup_todo (hour, series_id) VALUES (?1, ?2)",
	[ST_TODO_DEL] = "DELETE FROM rollup_todo WHERE hour = ?1 AND series_id = ?2",
	/* Complete hours (<= ?1) past the horizon (> ?2) of series that have moved past them. */
	[ST_TODO_NEXT] = "SELECT t.hour, t.series_id FROM rollup_todo t"
			 " JOIN series s ON s.id = t.series_id"
			 " WHERE t.hour <= ?1 AND t.hour > ?2 AND s.last_s >= t.hour + 3600"
			 " ORDER BY t.hour, t.series_id LIMIT ?3",
	[ST_TODO_DROP] = "DELETE FROM rollup_todo WHERE (hour, series_id) IN"
			 " (SELECT hour, series_id FROM rollup_todo WHERE hour <= ?1 LIMIT ?2)",
	[ST_HOUR_ROWS] =
		"SELECT x.counts_id, x.bucket, x.total, x.nstacks FROM samples x" FINE_WHERE,
	[ST_SEL_SERIES] = "SELECT id FROM series"
			  " WHERE app = ?1 AND (?2 IS NULL OR pysamp_labels_match(labels, ?2))"
			  " ORDER BY id",
	[ST_ROLLUPS_DATA] =
		"SELECT r.hour, c.data FROM rollups r JOIN counts c ON c.id = r.counts_id"
		" WHERE r.series_id = ?1 AND r.hour >= ?2 AND r.hour <= ?3"
		" ORDER BY r.hour",
	[ST_ROLLUPS_MINUTES] = "SELECT hour, minutes FROM rollups"
			       " WHERE series_id = ?1 AND hour >= ?2 AND hour <= ?3 ORDER BY hour",
	[ST_GAP_DATA] =
		"SELECT c.data FROM samples x JOIN counts c ON c.id = x.counts_id" FINE_WHERE,
	[ST_GAP_TOTALS] = "SELECT x.bucket, x.width, x.total FROM samples x" FINE_WHERE,
	[ST_WIDE_DATA] =
		"SELECT c.data" WIDE_FROM " JOIN counts c ON c.id = x.counts_id" WIDE_WHERE,
	[ST_WIDE_TOTALS] = "SELECT x.bucket, x.width, x.total" WIDE_FROM WIDE_WHERE,
	[ST_TL_ROWS] = "SELECT x.bucket, x.width, x.total" SELECTION_FROM SELECTION_WHERE,
	/* Two subqueries: each is one b-tree descent, one aggregate of both would scan. */
	[ST_STACK_RANGE] = "SELECT (SELECT min(id) FROM stacks), (SELECT max(id) FROM stacks)",
};

/* uint64 key (never 0) -> uint64 value, open addressing; key 0 marks an empty slot. */
struct u64map {
	uint64_t *keys;
	uint64_t *vals;
	size_t cap; /* power of two */
	size_t n;
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
	struct u64map acc; /* stack -> count while a rollup is built */
	/* store__set_rollups: queries and timelines read rollups */
	bool use_rollups;
	/*
	 * series -> hour: this connection saw that hour queued in rollup_todo and without a rollup,
	 * so an ingest into it has nothing to do for rollups. Only this connection's rollup builds
	 * break that (they empty the map), or other connections (caches_reset empties it).
	 */
	struct u64map queued;
	/* store_stats counters of this handle */
	uint64_t moved_rows, expired_rows, trimmed_rows;
	uint64_t moved_entries, expired_entries, trimmed_entries;
	uint64_t gc_stacks, gc_frames, vacuumed_pages;
	uint64_t cache_hits, cache_misses, cache_resets;
	uint64_t rollups_built, rollups_deleted;
	/* the same, of the write transaction in progress: added on COMMIT */
	uint64_t txn_built, txn_deleted;
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

/* ---- maps ---- */

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
	m->keys = NULL;
	m->vals = NULL;
	m->cap = m->n = 0;
}

/* Empty the map, keeping its memory. */
static void u64map_clear(struct u64map *m)
{
	if (m->cap)
		memset(m->keys, 0, m->cap * sizeof(*m->keys));
	m->n = 0;
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
	u64map_clear(&s->queued);
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
	s->txn_built = s->txn_deleted = 0;
	return 0;
}

/* COMMIT, or roll back when that fails. */
static int txn_commit(struct store *s)
{
	int err = step_done(s, ST_COMMIT);

	if (err) {
		txn_rollback(s);
		return err;
	}
	s->rollups_built += s->txn_built;
	s->rollups_deleted += s->txn_deleted;
	return 0;
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

/*
 * Append the pairs of counts row cid to t and check them against the row's total and nstacks.
 * -EIO when they disagree, are malformed or missing (then *bad, when bad is not NULL, becomes
 * true: an SQLite failure leaves it alone).
 */
static int counts_load(struct store *s, int64_t cid, int64_t want_total, int64_t want_n,
		       struct tvec *t, bool *bad)
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
	if (err == -EIO && bad && (rc == SQLITE_ROW || rc == SQLITE_DONE))
		*bad = true;
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
		err = counts_load(s, row[2], row[0], row[1], t, NULL);
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

/* ---- hour rollups: upkeep ---- */

/* The start of the hour of t. */
static int64_t hour_of(int64_t t)
{
	return floor_to(t, ROLLUP_S);
}

/* The rollup counters in meta (what store__stats reports without a scan). */
static int rollup_meta(struct store *s, int64_t rows, int64_t entries, int64_t bytes)
{
	int err = rows ? meta_add(s, "rollups", rows) : 0;

	if (!err && entries)
		err = meta_add(s, "rollup_entries", entries);
	if (!err && bytes)
		err = meta_add(s, "rollup_bytes", bytes);
	return err;
}

/* A rollup's per-minute totals as ROLLUP_MINUTES varints; buf holds ROLLUP_MINUTES * 10 bytes. */
static size_t minutes_encode(const uint64_t *min, unsigned char *buf)
{
	size_t i, n = 0;

	for (i = 0; i < ROLLUP_MINUTES; i++)
		n += uvarint_put(buf + n, min[i]);
	return n;
}

/* Exactly ROLLUP_MINUTES varints, else -EIO. */
static int minutes_decode(const unsigned char *b, size_t len, uint64_t *min)
{
	const unsigned char *p = b, *end = b ? b + len : b;
	size_t i;

	for (i = 0; i < ROLLUP_MINUTES; i++) {
		if (!uvarint_get(&p, end, &min[i]) || min[i] > INT64_MAX)
			break;
	}
	if (i < ROLLUP_MINUTES || p != end) {
		log_warn("store: malformed rollup minutes");
		return -EIO;
	}
	return 0;
}

/* Inside a write transaction: delete the rollup of (series, hour), if any, and its counts. */
static int rollup_delete(struct store *s, int64_t series, int64_t hour)
{
	int64_t v[3] = { 0, 0, 0 }; /* counts_id, nstacks, bytes */
	int r = GET(s, ST_ROLLUP_GET, v, 3, series, hour);

	if (r <= 0)
		return r;
	r = RUN(s, ST_ROLLUP_DEL, series, hour);
	if (!r)
		r = RUN(s, ST_COUNTS_DEL, v[0]);
	if (!r)
		r = rollup_meta(s, -1, -v[1], -v[2]);
	if (!r)
		s->txn_deleted++;
	return r;
}

/*
 * Inside a write transaction that changes (or just changed) the rows finer than an hour of
 * (series, hour): delete the hour's rollup, which would no longer be exact, and queue the hour
 * so that compaction builds it again from the rows.
 */
static int rollup_touch(struct store *s, int64_t series, int64_t hour)
{
	uint64_t v, *slot;
	int err;

	if (u64map_get(&s->queued, (uint64_t)series, &v) && (int64_t)v == hour)
		return 0;
	err = rollup_delete(s, series, hour);
	if (!err)
		err = RUN(s, ST_TODO_PUT, hour, series);
	if (err)
		return err;
	slot = u64map_ref(&s->queued, (uint64_t)series);
	if (slot) /* a hint: without memory the next touch looks again */
		*slot = (uint64_t)hour;
	return 0;
}

/*
 * Inside a write transaction: a row of total samples moves inside the hour, from bucket from to
 * bucket to of another minute. The rollup's pairs stay right; its per-minute totals follow.
 */
static int rollup_shift(struct store *s, int64_t series, int64_t hour, int64_t from, int64_t to,
			int64_t total)
{
	sqlite3_stmt *get = s->stmt[ST_ROLLUP_MINUTES], *set = s->stmt[ST_ROLLUP_SETMIN];
	unsigned char buf[ROLLUP_MINUTES * 10];
	uint64_t min[ROLLUP_MINUTES], v;
	size_t mf = (size_t)((from - hour) / 60), mt = (size_t)((to - hour) / 60), len, old = 0;
	int rc, err;

	if (u64map_get(&s->queued, (uint64_t)series, &v) && (int64_t)v == hour)
		return 0; /* no rollup */
	err = bind_i64(s, ST_ROLLUP_MINUTES, (const int64_t[]){ series, hour }, 2);
	if (err)
		return err;
	rc = sqlite3_step(get);
	if (rc == SQLITE_ROW) {
		old = (size_t)sqlite3_column_bytes(get, 0);
		err = minutes_decode(sqlite3_column_blob(get, 0), old, min);
		if (!err && (total < 0 || min[mf] < (uint64_t)total ||
			     min[mt] > (uint64_t)INT64_MAX - (uint64_t)total)) {
			log_warn("store: rollup minutes disagree with their rows");
			err = -EIO;
		}
	} else if (rc != SQLITE_DONE) {
		err = db_fail(s, rc, stmt_sql[ST_ROLLUP_MINUTES]);
	}
	stmt_done(get);
	if (err || rc != SQLITE_ROW)
		return err;
	min[mf] -= (uint64_t)total;
	min[mt] += (uint64_t)total;
	len = minutes_encode(min, buf);
	err = bind_i64(s, ST_ROLLUP_SETMIN, (const int64_t[]){ series, hour }, 2);
	if (err)
		return err;
	rc = sqlite3_bind_blob(set, 3, buf, (int)len, SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		stmt_done(set);
		return db_fail(s, rc, "bind minutes");
	}
	err = step_done(s, ST_ROLLUP_SETMIN);
	return err ? err : rollup_meta(s, 0, 0, (int64_t)len - (int64_t)old);
}

/*
 * Inside a write transaction: build the rollup of (series, hour), which has none, from the rows
 * finer than an hour that start in the hour. *pairs: the (stack, count) pairs read. An hour with
 * fewer than two such rows gets no rollup (it would only copy the row). -EIO with *bad set when
 * a row is malformed: then nothing was written.
 */
static int rollup_build(struct store *s, int64_t series, int64_t hour, size_t *pairs, bool *bad)
{
	sqlite3_stmt *q = s->stmt[ST_HOUR_ROWS];
	uint64_t min[ROLLUP_MINUTES] = { 0 }, total = 0, sum = 0, *slot;
	unsigned char mbuf[ROLLUP_MINUTES * 10];
	int64_t cid, bucket, rtotal, rn;
	size_t i, nrows = 0, len, mlen;
	int rc, err;

	*pairs = 0;
	u64map_clear(&s->acc);
	err = bind_i64(s, ST_HOUR_ROWS, (const int64_t[]){ series, hour, hour + ROLLUP_S }, 3);
	if (err)
		return err;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		cid = sqlite3_column_int64(q, 0);
		bucket = sqlite3_column_int64(q, 1);
		rtotal = sqlite3_column_int64(q, 2);
		rn = sqlite3_column_int64(q, 3);
		if (rtotal < 0 || rn < 0 || (uint64_t)rtotal > (uint64_t)INT64_MAX - total) {
			log_warn("store: malformed samples row");
			*bad = true;
			err = -EIO;
			break;
		}
		s->tv.n = 0;
		err = counts_load(s, cid, rtotal, rn, &s->tv, bad);
		for (i = 0; !err && i < s->tv.n; i++) {
			slot = u64map_ref(&s->acc, (uint64_t)s->tv.v[i].stack);
			if (!slot)
				err = -ENOMEM;
			else
				*slot += s->tv.v[i].count; /* <= total <= INT64_MAX */
		}
		if (err)
			break;
		min[(bucket - hour) / 60] += (uint64_t)rtotal;
		total += (uint64_t)rtotal;
		*pairs += (size_t)rn;
		nrows++;
	}
	if (!err && rc != SQLITE_ROW && rc != SQLITE_DONE)
		err = db_fail(s, rc, stmt_sql[ST_HOUR_ROWS]);
	stmt_done(q);
	if (err || nrows < 2)
		return err;
	s->tv.n = 0;
	for (i = 0; !err && i < s->acc.cap; i++) {
		if (s->acc.keys[i])
			err = tvec_push(&s->tv, (int64_t)s->acc.keys[i], s->acc.vals[i]);
	}
	if (!err)
		err = tvec_normalize(&s->tv, &sum);
	if ((!err && sum != total) || err == -EOVERFLOW) {
		*bad = true; /* cannot be when every row agrees with its counts */
		err = -EIO;
	}
	if (!err)
		err = counts_encode(s, &s->tv, &len);
	if (!err)
		err = run_blob(s, ST_COUNTS_PUT, 1, len);
	if (err)
		return err;
	cid = sqlite3_last_insert_rowid(s->db);
	mlen = minutes_encode(min, mbuf);
	err = bind_i64(s, ST_ROLLUP_PUT,
		       (const int64_t[]){ series, hour, (int64_t)total, (int64_t)s->tv.n, cid }, 5);
	if (err)
		return err;
	rc = sqlite3_bind_blob(s->stmt[ST_ROLLUP_PUT], 6, mbuf, (int)mlen, SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		stmt_done(s->stmt[ST_ROLLUP_PUT]);
		return db_fail(s, rc, "bind minutes");
	}
	err = step_done(s, ST_ROLLUP_PUT);
	if (!err)
		err = rollup_meta(s, 1, (int64_t)s->tv.n, (int64_t)(len + mlen));
	if (!err)
		s->txn_built++;
	return err;
}

/* Inside a write transaction: the rollups' side of moving row r of width w to width w2. */
static int rollup_moved(struct store *s, const struct agerow *r, int64_t w, int64_t w2)
{
	int64_t h = hour_of(r->bucket), h2 = hour_of(r->target);
	int err;

	if (w >= ROLLUP_S)
		return 0;
	/* Into the hour-wide tier or beyond: the rollup would only duplicate the new row. */
	if (w2 >= ROLLUP_S)
		return rollup_touch(s, r->series, h);
	/* Into another hour (a width that does not divide an hour): both hours change. */
	if (h2 != h) {
		err = rollup_touch(s, r->series, h);
		return err ? err : rollup_touch(s, r->series, h2);
	}
	/* Within the hour the pairs stay; only a move into another minute changes the minutes. */
	if ((r->bucket - h) / 60 != (r->target - h) / 60)
		return rollup_shift(s, r->series, h, r->bucket, r->target, r->total);
	return 0;
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
	if (version == 0) {
		err = exec_sql(s, schema_sql);
	} else {
		/* 1 -> 2 -> 3; the rollups are built later, by compaction. */
		if (version == 1)
			err = upgrade_v1(s);
		if (!err)
			err = exec_sql(s, ROLLUPS_DEF ROLLUPS_QUEUE_ALL);
	}
	if (err)
		goto fail;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
	err = exec_sql(s, sql);
	if (err)
		goto fail;
	err = exec_sql(s, "COMMIT");
	if (err)
		goto fail;
	if (version)
		log_info("store: converted the database from schema version %lld to %d",
			 (long long)version, STORE_SCHEMA_VERSION);
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
	s->use_rollups = true;
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
	u64map_release(&s->acc);
	u64map_release(&s->queued);
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
	if (!err && s->tv.n) {
		err = row_add(s, c.series_id, c.bucket, STORE_BUCKET_S, &s->tv, sum);
		if (!err)
			err = rollup_touch(s, c.series_id, hour_of(c.bucket));
	}
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

/*
 * stack -> count while a query adds blobs up: an array over the stack ids [lo, lo + n) (what the
 * stacks table spans, when that is not too many), with the ids that have a count listed in
 * order of appearance; ids outside it (a malformed blob) go to a hash map.
 */
struct sums {
	uint64_t *dense;
	int64_t lo;
	size_t n;
	uint32_t *seen; /* offsets into dense with a count */
	size_t nseen;
	size_t seen_cap;
	struct u64map map;
};

static void sums_release(struct sums *m)
{
	free(m->dense);
	free(m->seen);
	u64map_release(&m->map);
}

/* Size the array for the stack ids in the database (inside the read transaction). */
static int sums_init(struct store *s, struct sums *m)
{
	int64_t v[2] = { 0, -1 };
	int r = GET(s, ST_STACK_RANGE, v, 2);

	memset(m, 0, sizeof(*m));
	if (r <= 0 || v[1] < v[0] || v[1] - v[0] >= DENSE_MAX_IDS)
		return r < 0 ? r : 0;
	m->lo = v[0];
	m->n = (size_t)(v[1] - v[0] + 1);
	m->dense = calloc(m->n, sizeof(*m->dense));
	if (!m->dense)
		m->n = 0; /* the map does it, slower */
	return 0;
}

/*
 * Add the pairs of the counts blob b[0..len) to m. -EIO for a malformed blob (as counts_decode),
 * -EOVERFLOW when a sum would pass UINT64_MAX, -ENOMEM.
 */
static int blob_sum(const unsigned char *b, size_t len, struct sums *m)
{
	const unsigned char *p = b, *end = b ? b + len : b; /* SQLite gives NULL for x'' */
	uint64_t delta, count, total = 0, *slot, off;
	uint32_t *seen;
	int64_t stack = 0;

	while (p < end) {
		/* Most deltas and many counts take one byte. */
		if (*p < 0x80)
			delta = *p++;
		else if (!uvarint_get(&p, end, &delta))
			goto bad;
		if (p < end && *p < 0x80)
			count = *p++;
		else if (!uvarint_get(&p, end, &count))
			goto bad;
		if (!delta || !count || delta > (uint64_t)(INT64_MAX - stack) ||
		    count > (uint64_t)INT64_MAX - total)
			goto bad;
		stack += (int64_t)delta;
		total += count;
		off = (uint64_t)stack - (uint64_t)m->lo;
		if (off < m->n) {
			slot = &m->dense[off];
			if (!*slot) {
				seen = grow(m->seen, &m->seen_cap, m->nseen + 1, sizeof(*seen));
				if (!seen)
					return -ENOMEM;
				m->seen = seen;
				m->seen[m->nseen++] = (uint32_t)off;
			}
		} else {
			slot = u64map_ref(&m->map, (uint64_t)stack);
			if (!slot)
				return -ENOMEM;
		}
		if (*slot > UINT64_MAX - count)
			return -EOVERFLOW;
		*slot += count;
	}
	return 0;
bad:
	log_warn("store: malformed counts blob");
	return -EIO;
}

/* One point of a timeline: the samples of [t, t + width). width 0 marks an empty slot. */
struct point {
	int64_t t;
	int64_t width;
	uint64_t count;
};

/* (t, width) -> count, open addressing. */
struct pmap {
	struct point *v;
	size_t cap; /* power of two, or 0 */
	size_t n;
	size_t last; /* the slot added to last: rows come in runs of one point */
};

static size_t pmap_slot(const struct point *v, size_t cap, int64_t t, int64_t width)
{
	uint64_t h =
		((uint64_t)t * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)width * 0xc2b2ae3d27d4eb4fULL);
	size_t mask = cap - 1, j = (size_t)(h >> 29) & mask;

	while (v[j].width && (v[j].t != t || v[j].width != width))
		j = (j + 1) & mask;
	return j;
}

static int pmap_add(struct pmap *m, int64_t t, int64_t width, uint64_t count)
{
	struct point *big;
	size_t i, j, cap;

	if (!m->cap || m->v[m->last].t != t || m->v[m->last].width != width) {
		if ((m->n + 1) * 4 > m->cap * 3) {
			cap = m->cap ? m->cap * 2 : 256;
			big = calloc(cap, sizeof(*big));
			if (!big)
				return -ENOMEM;
			for (i = 0; i < m->cap; i++) {
				if (m->v[i].width)
					big[pmap_slot(big, cap, m->v[i].t, m->v[i].width)] =
						m->v[i];
			}
			free(m->v);
			m->v = big;
			m->cap = cap;
		}
		j = pmap_slot(m->v, m->cap, t, width);
		if (!m->v[j].width) {
			m->v[j].t = t;
			m->v[j].width = width;
			m->n++;
		}
		m->last = j;
	}
	if (m->v[m->last].count > UINT64_MAX - count)
		return -EOVERFLOW;
	m->v[m->last].count += count;
	return 0;
}

static int point_cmp(const void *a, const void *b)
{
	const struct point *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return (x->width > y->width) - (x->width < y->width);
}

/* What a walk over a selection adds up: stacks' counts (a query) or points (a timeline). */
struct walk {
	struct sums *sums;   /* query */
	struct pmap *points; /* timeline */
	int64_t step;
};

/* The point a bucket of this start and width goes to (store__timeline_step). */
static int walk_point(struct walk *w, int64_t bucket, int64_t width, uint64_t count)
{
	if (width <= w->step)
		return pmap_add(w->points, floor_to(bucket, w->step), w->step, count);
	return pmap_add(w->points, bucket, width, count);
}

/*
 * Step statement id (bound by the caller) to its end and reset it. Each row is a counts blob
 * (column 0) for a query, or (bucket, width, total) for a timeline.
 */
static int walk_stmt(struct store *s, enum stmt_id id, struct walk *w)
{
	sqlite3_stmt *q = s->stmt[id];
	int64_t total;
	int rc, err = 0;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (w->sums) {
			err = blob_sum(sqlite3_column_blob(q, 0),
				       (size_t)sqlite3_column_bytes(q, 0), w->sums);
		} else {
			total = sqlite3_column_int64(q, 2);
			err = total < 0 ? -EIO
					: walk_point(w, sqlite3_column_int64(q, 0),
						     sqlite3_column_int64(q, 1), (uint64_t)total);
		}
		if (err)
			break;
	}
	if (!err && rc != SQLITE_ROW && rc != SQLITE_DONE)
		err = db_fail(s, rc, stmt_sql[id]);
	stmt_done(q);
	return err;
}

/* The rows finer than an hour of series sid that start in [from, until). */
static int walk_gap(struct store *s, int64_t sid, int64_t from, int64_t until, struct walk *w)
{
	enum stmt_id id = w->sums ? ST_GAP_DATA : ST_GAP_TOTALS;
	int err;

	if (from >= until)
		return 0;
	err = bind_i64(s, id, (const int64_t[]){ sid, from, until }, 3);
	return err ? err : walk_stmt(s, id, w);
}

/* The rollup of the hour starting at hour, column 1 of q: its counts blob or its minutes. */
static int walk_rollup(struct walk *w, int64_t hour, sqlite3_stmt *q)
{
	const void *b = sqlite3_column_blob(q, 1);
	size_t len = (size_t)sqlite3_column_bytes(q, 1), i;
	uint64_t min[ROLLUP_MINUTES];
	int err;

	if (w->sums)
		return blob_sum(b, len, w->sums);
	err = minutes_decode(b, len, min);
	for (i = 0; !err && i < ROLLUP_MINUTES; i++) {
		/* Every row in the rollup is at most step wide (timeline_use_rollups). */
		if (min[i])
			err = pmap_add(w->points, floor_to(hour + (int64_t)i * 60, w->step),
				       w->step, min[i]);
	}
	return err;
}

/* Bind ?1 app and ?2 labels_match of statement stmt. */
static int bind_app(struct store *s, sqlite3_stmt *stmt, const char *app, const char *labels_match)
{
	int rc = sqlite3_bind_text(stmt, 1, app, -1, SQLITE_STATIC);

	if (rc == SQLITE_OK)
		rc = labels_match ? sqlite3_bind_text(stmt, 2, labels_match, -1, SQLITE_STATIC)
				  : sqlite3_bind_null(stmt, 2);
	return rc == SQLITE_OK ? 0 : db_fail(s, rc, "bind selection");
}

/* The starts of the whole hours inside [from, until) are [*lo, *hi] (empty when *lo > *hi). */
static void whole_hours(int64_t from, int64_t until, int64_t *lo, int64_t *hi)
{
	int64_t h = floor_to(from, ROLLUP_S);

	if (h < from)
		h = h > INT64_MAX - ROLLUP_S ? INT64_MAX : h + ROLLUP_S;
	*lo = h;
	*hi = sat_sub(until, ROLLUP_S);
}

/*
 * The selection (as store__query's) through the rollups: per series, the rollup of every whole
 * hour inside [from, until) that has one, and the rows finer than an hour everywhere else; then
 * the rows an hour wide or wider, which no rollup holds.
 */
static int walk_rollups(struct store *s, const char *app, const char *labels_match, int64_t from,
			int64_t until, struct walk *w)
{
	enum stmt_id rid = w->sums ? ST_ROLLUPS_DATA : ST_ROLLUPS_MINUTES;
	enum stmt_id wid = w->sums ? ST_WIDE_DATA : ST_WIDE_TOTALS;
	sqlite3_stmt *ser = s->stmt[ST_SEL_SERIES], *ru = s->stmt[rid];
	int64_t lo, hi, sid, cur, hour, width = ROLLUP_S - 1;
	int rc, r, err;

	whole_hours(from, until, &lo, &hi);
	err = bind_app(s, ser, app, labels_match);
	if (err)
		return err;
	while ((rc = sqlite3_step(ser)) == SQLITE_ROW) {
		sid = sqlite3_column_int64(ser, 0);
		cur = from;
		if (lo <= hi) {
			err = bind_i64(s, rid, (const int64_t[]){ sid, lo, hi }, 3);
			if (err)
				break;
			while ((r = sqlite3_step(ru)) == SQLITE_ROW) {
				hour = sqlite3_column_int64(ru, 0);
				err = walk_gap(s, sid, cur, hour, w);
				if (!err)
					err = walk_rollup(w, hour, ru);
				if (err)
					break;
				cur = hour + ROLLUP_S;
			}
			if (!err && r != SQLITE_ROW && r != SQLITE_DONE)
				err = db_fail(s, r, stmt_sql[rid]);
			stmt_done(ru);
		}
		if (!err)
			err = walk_gap(s, sid, cur, until, w);
		if (err)
			break;
	}
	if (!err && rc != SQLITE_ROW && rc != SQLITE_DONE)
		err = db_fail(s, rc, stmt_sql[ST_SEL_SERIES]);
	stmt_done(ser);
	while (!err && (r = GET(s, ST_WIDTH_NEXT, &width, 1, width)) != 0) {
		if (r < 0)
			return r;
		err = bind_selection(s, s->stmt[wid], app, labels_match, from, until);
		if (!err && (rc = sqlite3_bind_int64(s->stmt[wid], 5, width)) != SQLITE_OK)
			err = db_fail(s, rc, "bind width");
		if (!err)
			err = walk_stmt(s, wid, w);
		else
			stmt_done(s->stmt[wid]);
	}
	return err;
}

/* The whole selection row by row, through statement id (ST_QUERY or ST_TL_ROWS). */
static int walk_rows(struct store *s, enum stmt_id id, const char *app, const char *labels_match,
		     int64_t from, int64_t until, struct walk *w)
{
	int err = bind_selection(s, s->stmt[id], app, labels_match, from, until);

	return err ? err : walk_stmt(s, id, w);
}

/* End a read transaction: COMMIT when err is 0, else roll back. Returns err or COMMIT's error. */
static int read_end(struct store *s, int err)
{
	if (!err)
		err = step_done(s, ST_COMMIT);
	if (err && !sqlite3_get_autocommit(s->db) && step_done(s, ST_ROLLBACK))
		log_warn("store: rollback failed");
	return err;
}

int store__query(struct store *s, const char *app, const char *labels_match, int64_t from_s,
		 int64_t until_s, struct stacks *out)
{
	struct u64map fmap = { 0 };
	struct sums sums = { 0 };
	struct walk w = { .sums = &sums };
	int64_t lo, hi;
	size_t i;
	int err;

	if (!s || !app || !out)
		return -EINVAL;
	err = step_done(s, ST_BEGIN_READ);
	if (err)
		return err;
	err = sums_init(s, &sums);
	whole_hours(from_s, until_s, &lo, &hi);
	if (!err && s->use_rollups && lo <= hi)
		err = walk_rollups(s, app, labels_match, from_s, until_s, &w);
	else if (!err)
		err = walk_rows(s, ST_QUERY, app, labels_match, from_s, until_s, &w);
	for (i = 0; !err && i < sums.nseen; i++)
		err = stack_out(s, &fmap, sums.lo + sums.seen[i], sums.dense[sums.seen[i]], out);
	for (i = 0; !err && i < sums.map.cap; i++) {
		if (sums.map.keys[i])
			err = stack_out(s, &fmap, (int64_t)sums.map.keys[i], sums.map.vals[i], out);
	}
	err = read_end(s, err);
	sums_release(&sums);
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

/*
 * Can a timeline of this step read the rollups' per-minute totals? Only when the step is whole
 * minutes and every width finer than an hour in the database is at most step: then every row a
 * rollup holds is one whole point of the step, the point of its minute.
 */
static int timeline_use_rollups(struct store *s, int64_t step, bool *use)
{
	int64_t w = INT64_MIN;
	int r;

	*use = false;
	if (!s->use_rollups || step % 60)
		return 0;
	while ((r = GET(s, ST_WIDTH_NEXT, &w, 1, w)) == 1 && w < ROLLUP_S) {
		if (w > step)
			return 0;
	}
	if (r < 0)
		return r;
	*use = true;
	return 0;
}

int store__timeline_step(struct store *s, const char *app, const char *labels_match, int64_t from_s,
			 int64_t until_s, int64_t step_s, store_timeline2_fn fn, void *arg)
{
	struct pmap pm = { 0 };
	struct walk w = { .points = &pm, .step = step_s };
	int64_t lo, hi;
	size_t i, n = 0;
	bool use = false;
	int err;

	if (!s || !app || !fn || step_s < 1 || step_s > STORE_MAX_SPAN_S)
		return -EINVAL;
	err = step_done(s, ST_BEGIN_READ);
	if (err)
		return err;
	whole_hours(from_s, until_s, &lo, &hi);
	if (lo <= hi)
		err = timeline_use_rollups(s, step_s, &use);
	if (!err && use)
		err = walk_rollups(s, app, labels_match, from_s, until_s, &w);
	else if (!err)
		err = walk_rows(s, ST_TL_ROWS, app, labels_match, from_s, until_s, &w);
	err = read_end(s, err);
	/* The points, in order, after the transaction: fn may take its time. */
	for (i = 0; !err && i < pm.cap; i++) {
		if (pm.v[i].width)
			pm.v[n++] = pm.v[i];
	}
	if (!err && n > 1)
		qsort(pm.v, n, sizeof(*pm.v), point_cmp);
	for (i = 0; !err && i < n; i++)
		err = fn(arg, pm.v[i].t, pm.v[i].width, pm.v[i].count);
	free(pm.v);
	return err;
}

int store__set_rollups(struct store *s, bool use)
{
	if (!s)
		return -EINVAL;
	s->use_rollups = use;
	return 0;
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

			err = counts_load(s, r->counts_id, r->total, r->nstacks, &s->tv, NULL);
			if (!err)
				err = row_delete(s, r->series, r->bucket, w, r->counts_id);
			if (!err)
				err = rollup_moved(s, r, w, w2);
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
		if (!err && w < ROLLUP_S)
			err = rollup_touch(s, r->series, hour_of(r->bucket));
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

/*
 * Hours at or before this get no rollup: the rows of some tier finer than an hour are at most an
 * hour from moving into another hour or a tier an hour wide or wider, or from expiring, and each
 * such move deletes the rollup again. Tiers whose next width divides an hour keep their rows in
 * their hour and do not count.
 */
static int64_t rollup_horizon(const struct store *s, int64_t now_s)
{
	int64_t h = INT64_MIN, cut, w2, keep = 0;
	size_t k;

	for (k = 0; k < s->ntiers && s->tiers[k].width_s < ROLLUP_S; k++) {
		/* Rows reach tier k no younger than the keep of the tiers before. */
		if (s->tiers[k].keep_s > keep)
			keep = s->tiers[k].keep_s;
		w2 = k + 1 < s->ntiers ? s->tiers[k + 1].width_s : 0;
		if (w2 && w2 < ROLLUP_S && ROLLUP_S % w2 == 0)
			continue;
		cut = sat_sub(sat_sub(now_s, keep), s->tiers[k].width_s);
		cut = sat_sub(cut, -ROLLUP_S);
		if (cut > h)
			h = cut;
	}
	return h;
}

struct todo {
	int64_t hour;
	int64_t series;
};

/*
 * One transaction: drop the queued hours at or before the horizon, then take the others oldest
 * first and build the rollups of those that are complete as of now_s and whose series has a
 * bucket after them, up to ROLLUPS_PER_STEP rollups or budget pairs read (at least one rollup).
 * The last condition keeps an hour that is being written, as in a backfill of past hours, from
 * being rolled up again after every ingest; it leaves the last hour of a series that stopped
 * without a rollup until the series sends again. *more: such hours may be left.
 */
static int rollup_step(struct store *s, int64_t now_s, size_t budget, size_t *used, bool *more)
{
	int64_t hmax = floor_to(sat_sub(now_s, ROLLUP_S + ROLLUP_DELAY_S), ROLLUP_S);
	int64_t horizon = rollup_horizon(s, now_s), v[3], dropped = 0;
	sqlite3_stmt *q = s->stmt[ST_TODO_NEXT];
	struct todo todo[ROLLUP_TODO_BATCH];
	size_t n = 0, i, pairs, built = 0;
	bool taken = false, bad;
	int rc = SQLITE_DONE, r, err;

	*used = 0;
	*more = false;
	err = txn_begin_write(s);
	if (err)
		return err;
	err = RUN(s, ST_TODO_DROP, horizon, ROLLUP_TODO_BATCH);
	if (err)
		goto end;
	dropped = sqlite3_changes64(s->db);
	*used += (size_t)dropped;
	taken = dropped > 0;
	if (dropped == ROLLUP_TODO_BATCH) {
		*more = true;
		goto end;
	}
	err = bind_i64(s, ST_TODO_NEXT, (const int64_t[]){ hmax, horizon, ROLLUP_TODO_BATCH }, 3);
	if (err)
		goto end;
	while (n < ROLLUP_TODO_BATCH && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		todo[n].hour = sqlite3_column_int64(q, 0);
		todo[n].series = sqlite3_column_int64(q, 1);
		n++;
	}
	if (n < ROLLUP_TODO_BATCH && rc != SQLITE_DONE)
		err = db_fail(s, rc, stmt_sql[ST_TODO_NEXT]);
	stmt_done(q);
	for (i = 0; !err && i < n; i++) {
		if (built == ROLLUPS_PER_STEP || (built && *used >= budget))
			break;
		err = RUN(s, ST_TODO_DEL, todo[i].hour, todo[i].series);
		if (err)
			break;
		taken = true;
		(*used)++;
		/* Queued by a version-2 upgrade or another build than ours: a rollup is exact. */
		r = GET(s, ST_ROLLUP_GET, v, 3, todo[i].series, todo[i].hour);
		if (r) {
			err = r < 0 ? r : 0;
			continue;
		}
		bad = false;
		err = rollup_build(s, todo[i].series, todo[i].hour, &pairs, &bad);
		if (err && bad) {
			/* Left to the rows, whose queries report it; compaction goes on. */
			log_warn("store: no rollup for hour %lld of series %lld: malformed rows",
				 (long long)todo[i].hour, (long long)todo[i].series);
			err = 0;
		}
		*used += pairs;
		built++;
	}
	if (!err && (i < n || n == ROLLUP_TODO_BATCH))
		*more = true;
end:
	/* This connection's hints say "queued" for hours it may have just taken off the queue. */
	if (taken)
		u64map_clear(&s->queued);
	if (err) {
		txn_rollback(s);
		return err;
	}
	return txn_commit(s);
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
	/* 3. Hour rollups of complete hours, with up to half of what is left (at least one). */
	m = false;
	if (!err && left) {
		size_t cap = left - left / 2, spent_r = 0;

		do {
			err = rollup_step(s, now_s, cap - spent_r, &used, &m);
			spent_r += used;
		} while (!err && m && spent_r < cap);
		left -= spent_r < left ? spent_r : left;
		pending |= m;
	}
	/* 4. Unreferenced stacks and frames. */
	m = false;
	while (!err && left) {
		err = gc_step(s, left, &used, &m);
		left -= used < left ? used : left;
		if (!m)
			break;
	}
	pending |= m;
	/* 5. Free pages back to the file system. */
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
	if (!err)
		err = pragma_get(
			s, "SELECT coalesce((SELECT value FROM meta WHERE key = 'rollups'), 0)", &v,
			NULL, 0);
	out->rollups = v > 0 ? (uint64_t)v : 0;
	if (!err)
		err = pragma_get(s,
				 "SELECT coalesce((SELECT value FROM meta"
				 " WHERE key = 'rollup_entries'), 0)",
				 &v, NULL, 0);
	out->rollup_entries = v > 0 ? (uint64_t)v : 0;
	if (!err)
		err = pragma_get(s,
				 "SELECT coalesce((SELECT value FROM meta"
				 " WHERE key = 'rollup_bytes'), 0)",
				 &v, NULL, 0);
	out->rollup_bytes = v > 0 ? (uint64_t)v : 0;
	if (!err)
		err = pragma_get(s, "SELECT count(*) FROM rollup_todo", &v, NULL, 0);
	out->rollup_queue = (uint64_t)v;
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
	out->rollups_built = s->rollups_built;
	out->rollups_deleted = s->rollups_deleted;
	return 0;
}
