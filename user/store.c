/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * store.c - profile storage on SQLite.
 *
 * Every statement is prepared once in store__open and used as bind, step, reset; caller data only
 * ever reaches SQLite through bindings. Frames and stacks are interned by looking them up through
 * their index and inserting on a miss; ingest holds the write lock (BEGIN IMMEDIATE) for its
 * whole transaction, so no other writer can slip in between. Nothing is cached across calls, so
 * a rolled-back ingest leaves no stale ids behind.
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

#include <sqlite3.h>

#include "log.h"
#include "stacks.h"
#include "store.h"
#include "util.h"

#define BUSY_TIMEOUT_MS 5000

/* Fresh databases only: a version-0 database holding any of these tables is refused. */
static const char schema_sql[] = "CREATE TABLE series ("
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
				 " PRIMARY KEY (series_id, bucket, stack_id)) WITHOUT ROWID;";

enum stmt_id {
	ST_BEGIN_WRITE,
	ST_BEGIN_READ,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SERIES_UPSERT,
	ST_SERIES_ADD,
	ST_FRAME_GET,
	ST_FRAME_PUT,
	ST_FRAME_NAME,
	ST_STACK_GET,
	ST_STACK_PUT,
	ST_SAMPLE_ADD,
	ST_QUERY,
	ST_SERIES_LIST,
	ST_TIMELINE,
	ST_COUNT,
};

/* The selection shared by query and timeline: ?1 app, ?2 labels_match or NULL, [?3, ?4). */
#define SELECTION_FROM " FROM series s JOIN samples x ON x.series_id = s.id"
#define SELECTION_WHERE                                                                            \
	" WHERE s.app = ?1 AND (?2 IS NULL OR pysamp_labels_match(s.labels, ?2))"                  \
	" AND x.bucket >= ?3 AND x.bucket < ?4"

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[ST_BEGIN_READ] = "BEGIN DEFERRED",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SERIES_UPSERT] =
		"INSERT INTO series (app, labels, sample_rate, first_s, last_s, samples)"
		" VALUES (?1, ?2, ?3, ?4, ?4, 0)"
		" ON CONFLICT (app, labels) DO UPDATE SET"
		" sample_rate = excluded.sample_rate,"
		" first_s = min(first_s, excluded.first_s),"
		" last_s = max(last_s, excluded.last_s)"
		" RETURNING id",
	[ST_SERIES_ADD] = "UPDATE series SET samples = samples + ?2"
			  " WHERE id = ?1 AND samples <= 9223372036854775807 - ?2",
	[ST_FRAME_GET] = "SELECT id FROM frames WHERE name = ?1",
	[ST_FRAME_PUT] = "INSERT INTO frames (name) VALUES (?1)",
	[ST_FRAME_NAME] = "SELECT name FROM frames WHERE id = ?1",
	[ST_STACK_GET] = "SELECT id, frames FROM stacks WHERE hash = ?1",
	[ST_STACK_PUT] = "INSERT INTO stacks (hash, frames) VALUES (?1, ?2)",
	/* The WHERE makes an overflowing addition change no row, which ingest reports. */
	[ST_SAMPLE_ADD] = "INSERT INTO samples (series_id, bucket, stack_id, count)"
			  " VALUES (?1, ?2, ?3, ?4)"
			  " ON CONFLICT (series_id, bucket, stack_id) DO UPDATE SET"
			  " count = count + excluded.count"
			  " WHERE count <= 9223372036854775807 - excluded.count",
	/* Sum first, then read each stack's blob once. */
	[ST_QUERY] =
		"SELECT k.frames, g.n FROM (SELECT x.stack_id, sum(x.count) AS n" SELECTION_FROM
			SELECTION_WHERE " GROUP BY x.stack_id) g"
		" JOIN stacks k ON k.id = g.stack_id",
	[ST_SERIES_LIST] = "SELECT app, labels, first_s, last_s, samples, sample_rate"
			   " FROM series ORDER BY app, labels",
	[ST_TIMELINE] = "SELECT x.bucket, sum(x.count)" SELECTION_FROM SELECTION_WHERE
			" GROUP BY x.bucket ORDER BY x.bucket",
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT];
	/* Scratch reused by ingest and query: an encoded stack, decoded frame ids. */
	unsigned char *blob;
	size_t blob_cap;
	uint32_t *ids;
	size_t ids_cap;
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

static void txn_rollback(struct store *s)
{
	/* SQLite may have rolled back already (after SQLITE_FULL, SQLITE_IOERR, ...). */
	if (!sqlite3_get_autocommit(s->db) && step_done(s, ST_ROLLBACK))
		log_warn("store: rollback failed");
}

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

/* Create the schema of a fresh database or check the version of an existing one. */
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
	if (version == 0) {
		err = exec_sql(s, schema_sql);
		if (err)
			goto fail;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
		err = exec_sql(s, sql);
		if (err)
			goto fail;
	}
	err = exec_sql(s, "COMMIT");
	if (err)
		goto fail;
	return 0;
fail:
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return err;
}

struct store *store__open(const char *dir, char *err, size_t errlen)
{
	struct store *s = NULL;
	char *path = NULL;
	char mode[16];
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
	if (asprintf(&path, "%s/profiles.db", dir) < 0) {
		path = NULL;
		ret = -ENOMEM;
		set_errf(err, errlen, "out of memory");
		goto fail;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		ret = -ENOMEM;
		set_errf(err, errlen, "out of memory");
		goto fail;
	}
	rc = sqlite3_open_v2(path, &s->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		ret = -(s->db && sqlite3_system_errno(s->db) ? sqlite3_system_errno(s->db)
							     : rc_errno(rc));
		set_errf(err, errlen, "cannot open '%s': %s", path,
			 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	/* SQLite silently falls back to read-only when the file is not writable. */
	if (sqlite3_db_readonly(s->db, "main") == 1) {
		ret = -EROFS;
		set_errf(err, errlen, "'%s' is read-only", path);
		goto fail;
	}
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	ret = pragma_get(s, "PRAGMA journal_mode = WAL", NULL, mode, sizeof(mode));
	if (!ret && strcmp(mode, "wal") != 0)
		ret = -EIO;
	if (!ret)
		ret = exec_sql(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON");
	if (ret) {
		set_errf(err, errlen, "cannot set up '%s': %s", path, sqlite3_errmsg(s->db));
		goto fail;
	}
	ret = schema_setup(s, err, errlen);
	if (ret == -EINVAL)
		goto fail; /* message already set */
	if (ret) {
		set_errf(err, errlen, "cannot create schema in '%s': %s", path,
			 sqlite3_errmsg(s->db));
		goto fail;
	}
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
			set_errf(err, errlen, "cannot prepare statement in '%s': %s", path,
				 sqlite3_errmsg(s->db));
			goto fail;
		}
	}
	free(path);
	return s;
fail:
	free(path);
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
	free(s->blob);
	free(s->ids);
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

/* The frames.id of name[0..len), inserted when new. */
static int frame_intern(struct store *s, const char *name, size_t len, uint32_t *id)
{
	sqlite3_stmt *get = s->stmt[ST_FRAME_GET], *put = s->stmt[ST_FRAME_PUT];
	sqlite3_int64 rowid;
	int rc, err = 0;

	if (len > INT32_MAX)
		return -E2BIG;
	rc = sqlite3_bind_blob(get, 1, name, (int)len, SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		err = db_fail(s, rc, "bind frame");
		goto cleanup;
	}
	rc = sqlite3_step(get);
	if (rc == SQLITE_ROW) {
		rowid = sqlite3_column_int64(get, 0);
		goto found;
	}
	if (rc != SQLITE_DONE) {
		err = db_fail(s, rc, stmt_sql[ST_FRAME_GET]);
		goto cleanup;
	}
	rc = sqlite3_bind_blob(put, 1, name, (int)len, SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		err = db_fail(s, rc, "bind frame");
		goto cleanup;
	}
	err = step_done(s, ST_FRAME_PUT);
	if (err)
		goto cleanup;
	rowid = sqlite3_last_insert_rowid(s->db);
found:
	if (rowid <= 0 || rowid > UINT32_MAX)
		err = -E2BIG;
	else
		*id = (uint32_t)rowid;
cleanup:
	stmt_done(get);
	return err;
}

/* The stacks.id of the encoded stack b[0..len), inserted when new. */
static int stack_intern(struct store *s, const unsigned char *b, size_t len, int64_t *id)
{
	sqlite3_stmt *get = s->stmt[ST_STACK_GET], *put = s->stmt[ST_STACK_PUT];
	int64_t h = (int64_t)stack_hash(b, len);
	int rc, err = 0;

	if (len > INT32_MAX)
		return -E2BIG;
	rc = sqlite3_bind_int64(get, 1, h);
	if (rc != SQLITE_OK) {
		err = db_fail(s, rc, "bind stack hash");
		goto cleanup;
	}
	while ((rc = sqlite3_step(get)) == SQLITE_ROW) {
		if ((size_t)sqlite3_column_bytes(get, 1) == len &&
		    memcmp(sqlite3_column_blob(get, 1), b, len) == 0) {
			*id = sqlite3_column_int64(get, 0);
			goto cleanup;
		}
	}
	if (rc != SQLITE_DONE) {
		err = db_fail(s, rc, stmt_sql[ST_STACK_GET]);
		goto cleanup;
	}
	rc = sqlite3_bind_int64(put, 1, h);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_blob(put, 2, b, (int)len, SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		err = db_fail(s, rc, "bind stack");
		goto cleanup;
	}
	err = step_done(s, ST_STACK_PUT);
	if (!err)
		*id = sqlite3_last_insert_rowid(s->db);
cleanup:
	stmt_done(get);
	return err;
}

static int ingest_stack(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct ingest_ctx *c = arg;
	struct store *s = c->s;
	sqlite3_stmt *add = s->stmt[ST_SAMPLE_ADD];
	unsigned char *b;
	const char *name;
	size_t i, len;
	uint32_t fid;
	int64_t stack_id;
	int rc, err;

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
			err = frame_intern(s, name, len, &fid);
			if (err)
				return err;
			c->frame_ids[ids[i]] = fid;
		}
		b[4 * i] = (unsigned char)fid;
		b[4 * i + 1] = (unsigned char)(fid >> 8);
		b[4 * i + 2] = (unsigned char)(fid >> 16);
		b[4 * i + 3] = (unsigned char)(fid >> 24);
	}
	err = stack_intern(s, b, n * 4, &stack_id);
	if (err)
		return err;

	/* count <= the total, checked against INT64_MAX before the transaction began. */
	rc = sqlite3_bind_int64(add, 1, c->series_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(add, 2, c->bucket);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(add, 3, stack_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(add, 4, (int64_t)count);
	if (rc != SQLITE_OK) {
		stmt_done(add);
		return db_fail(s, rc, "bind sample");
	}
	err = step_done(s, ST_SAMPLE_ADD);
	if (!err && sqlite3_changes(s->db) == 0)
		err = -EOVERFLOW;
	return err;
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
	sqlite3_stmt *add;
	uint64_t total;
	int rc, err;

	if (!s || !app || !labels || !st || from_s < 0 || until_s < from_s)
		return -EINVAL;
	total = stacks__total(st);
	if (total > INT64_MAX)
		return -EOVERFLOW;
	c.bucket = from_s - from_s % STORE_BUCKET_S;
	c.frame_ids = calloc(stacks__nlabels(st) ?: 1, sizeof(*c.frame_ids));
	if (!c.frame_ids)
		return -ENOMEM;

	err = step_done(s, ST_BEGIN_WRITE);
	if (err)
		goto cleanup;
	err = series_upsert(s, app, labels, sample_rate, c.bucket, &c.series_id);
	if (err)
		goto rollback;
	err = stacks__foreach(st, ingest_stack, &c);
	if (err)
		goto rollback;

	add = s->stmt[ST_SERIES_ADD];
	rc = sqlite3_bind_int64(add, 1, c.series_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(add, 2, (int64_t)total);
	if (rc != SQLITE_OK) {
		stmt_done(add);
		err = db_fail(s, rc, "bind series total");
		goto rollback;
	}
	err = step_done(s, ST_SERIES_ADD);
	if (!err && sqlite3_changes(s->db) == 0)
		err = -EOVERFLOW;
	if (err)
		goto rollback;
	err = step_done(s, ST_COMMIT);
	if (!err)
		goto cleanup;
rollback:
	txn_rollback(s);
cleanup:
	free(c.frame_ids);
	return err;
}

/* ---- reading ---- */

/* frames.id -> label id in the output, open addressing; key 0 marks an empty slot. */
struct idmap {
	uint32_t *keys;
	uint32_t *vals;
	size_t cap; /* power of two */
	size_t n;
};

static size_t idmap_slot(const struct idmap *m, uint32_t key)
{
	size_t mask = m->cap - 1, j = (key * 0x9e3779b9U) & mask;

	while (m->keys[j] && m->keys[j] != key)
		j = (j + 1) & mask;
	return j;
}

static bool idmap_get(const struct idmap *m, uint32_t key, uint32_t *val)
{
	size_t j;

	if (!m->cap)
		return false;
	j = idmap_slot(m, key);
	if (!m->keys[j])
		return false;
	*val = m->vals[j];
	return true;
}

static int idmap_put(struct idmap *m, uint32_t key, uint32_t val)
{
	struct idmap big = { 0 };
	size_t i, j;

	if ((m->n + 1) * 4 > m->cap * 3) {
		big.cap = m->cap ? m->cap * 2 : 256;
		big.keys = calloc(big.cap, sizeof(*big.keys));
		big.vals = calloc(big.cap, sizeof(*big.vals));
		if (!big.keys || !big.vals) {
			free(big.keys);
			free(big.vals);
			return -ENOMEM;
		}
		for (i = 0; i < m->cap; i++) {
			if (!m->keys[i])
				continue;
			j = idmap_slot(&big, m->keys[i]);
			big.keys[j] = m->keys[i];
			big.vals[j] = m->vals[i];
		}
		big.n = m->n;
		free(m->keys);
		free(m->vals);
		*m = big;
	}
	j = idmap_slot(m, key);
	if (!m->keys[j])
		m->n++;
	m->keys[j] = key;
	m->vals[j] = val;
	return 0;
}

static void idmap_release(struct idmap *m)
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
static int frame_out(struct store *s, struct idmap *map, uint32_t fid, struct stacks *out,
		     uint32_t *id)
{
	sqlite3_stmt *get = s->stmt[ST_FRAME_NAME];
	int rc, err;

	if (idmap_get(map, fid, id))
		return 0;
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
	if (!err)
		err = idmap_put(map, fid, *id);
cleanup:
	stmt_done(get);
	return err;
}

static int query_rows(struct store *s, struct idmap *map, struct stacks *out)
{
	sqlite3_stmt *q = s->stmt[ST_QUERY];
	const unsigned char *b;
	size_t len, n, i;
	uint32_t *ids, fid;
	int64_t count;
	int rc, err;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		b = sqlite3_column_blob(q, 0);
		len = (size_t)sqlite3_column_bytes(q, 0);
		count = sqlite3_column_int64(q, 1);
		if (!b || len % 4 || count < 0) {
			log_warn("store: malformed stack row");
			return -EIO;
		}
		n = len / 4;
		ids = grow(s->ids, &s->ids_cap, n, sizeof(*ids));
		if (!ids)
			return -ENOMEM;
		s->ids = ids;
		for (i = 0; i < n; i++) {
			fid = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
			      (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24;
			err = frame_out(s, map, fid, out, &ids[i]);
			if (err)
				return err;
			/* frame_out may step other statements; b stays valid (q is untouched). */
		}
		err = stacks__add(out, ids, n, (uint64_t)count);
		if (err)
			return err;
	}
	return rc == SQLITE_DONE ? 0 : db_fail(s, rc, "query samples");
}

int store__query(struct store *s, const char *app, const char *labels_match, int64_t from_s,
		 int64_t until_s, struct stacks *out)
{
	struct idmap map = { 0 };
	int err;

	if (!s || !app || !out)
		return -EINVAL;
	err = step_done(s, ST_BEGIN_READ);
	if (err)
		return err;
	err = bind_selection(s, s->stmt[ST_QUERY], app, labels_match, from_s, until_s);
	if (!err)
		err = query_rows(s, &map, out);
	stmt_done(s->stmt[ST_QUERY]);
	if (!err)
		err = step_done(s, ST_COMMIT);
	if (err)
		txn_rollback(s);
	idmap_release(&map);
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

int store__timeline(struct store *s, const char *app, const char *labels_match, int64_t from_s,
		    int64_t until_s, store_timeline_fn fn, void *arg)
{
	sqlite3_stmt *q;
	int rc, ret;

	if (!s || !app || !fn)
		return -EINVAL;
	q = s->stmt[ST_TIMELINE];
	ret = bind_selection(s, q, app, labels_match, from_s, until_s);
	if (ret)
		goto cleanup;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		ret = fn(arg, sqlite3_column_int64(q, 0), (uint64_t)sqlite3_column_int64(q, 1));
		if (ret)
			goto cleanup;
	}
	if (rc != SQLITE_DONE)
		ret = db_fail(s, rc, "timeline");
cleanup:
	stmt_done(q);
	return ret;
}
