/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * store.h - the collector's profile storage on SQLite: series, interned frames and stacks,
 * sample counts per time bucket, downsampled into coarser tiers as they age, on a bounded disk.
 *
 * On disk (DIR/profiles.db, schema version 3 in PRAGMA user_version):
 *   series(id, app, labels, sample_rate, first_s, last_s, samples)  unique (app, labels)
 *   frames(id, name BLOB unique, seen)             every frame string once
 *   stacks(id, hash, frames BLOB, seen)            frame ids root first as little-endian u32,
 *                                                  hash indexed (64-bit, part of the format)
 *   samples(series_id, bucket, width, total, nstacks, counts_id)
 *                                                  primary key (series_id, bucket, width), WITHOUT
 *                                                  ROWID, indexed on (width, bucket): one row per
 *                                                  series and bucket [bucket, bucket + width) of a
 *                                                  tier; total = its samples, nstacks = its stacks
 *   counts(id, data BLOB)                          the stacks and counts of one samples row (or
 *                                                  rollup): pairs (stack id - previous stack id,
 *                                                  count) as LEB128 varints, stack ids ascending,
 *                                                  counts >= 1
 *   tiers(width, rows, entries, samples)           per bucket width: rows, (stack, count) pairs
 *                                                  and samples held, kept up to date by every write
 *   meta(key, value)                               "dropped_samples", "dropped_rows": what the disk
 *                                                  bound deleted, ever; "rollups", "rollup_entries",
 *                                                  "rollup_bytes": what the rollups table holds
 *                                                  (rows, pairs, bytes of both blobs), kept up to
 *                                                  date by every write
 *   rollups(series_id, hour, total, nstacks, counts_id, minutes BLOB)
 *                                                  primary key (series_id, hour), WITHOUT ROWID: the
 *                                                  sum of the samples rows of the series narrower
 *                                                  than an hour (width < 3600) whose bucket starts
 *                                                  in [hour, hour + 3600), hour a multiple of 3600;
 *                                                  its pairs in counts, its total and number of
 *                                                  stacks, and minutes: 60 LEB128 varints, the
 *                                                  totals of the rows starting in each minute
 *   rollup_todo(hour, series_id)                   primary key (hour, series_id), WITHOUT ROWID: the
 *                                                  hours whose rows changed since their rollup was
 *                                                  built (or that never had one), for compaction
 *
 * Hour rollups are a pre-aggregation, the upper level of a segment tree over the buckets: a query
 * of whole hours reads one blob per series and hour instead of one per bucket. They are always
 * exact: every write that changes the rows narrower than an hour of an hour (an ingest into it,
 * a move into another hour or into a tier an hour wide or wider, expiry, the disk bound) deletes
 * the hour's rollup and queues the hour in the same transaction; moves within the hour keep it
 * (moving 10 s rows into 1 min buckets changes no hour's sum; the per-minute totals follow a row
 * moved into another minute). store__compact builds the rollups of queued hours from the rows in
 * the database, so several writers may share it. An hour with only one such row gets no rollup.
 * Every stack a rollup holds is held by a samples row of its hour, so garbage collection, which
 * looks at the samples only (seen below), never deletes a stack a rollup needs.
 * frames.seen and stacks.seen are never less than the latest bucket start that used them minus
 * one hour; every row using a stack or frame starts at most an hour after its seen. A stack or
 * frame whose seen + 1 h precedes the oldest bucket of the database is unreferenced, which is
 * how compaction collects them without scanning the samples.
 * New databases use auto_vacuum = INCREMENTAL. A version-1 database (one samples row per series,
 * bucket and stack, all 10 s) is converted in place by store__open in one transaction; it keeps
 * auto_vacuum = NONE (changing that needs a full VACUUM), so its freed pages are reused but not
 * handed back to the file system. A version-2 database (or a converted version 1) gets the two
 * rollup tables, every (series, hour) with rows narrower than an hour queued in rollup_todo (one
 * pass over the samples table); compaction then builds the rollups, oldest hour first.
 *
 * Retention: a list of 1..STORE_MAX_TIERS tiers {width_s, keep_s}. Ingests go to the first tier
 * (width STORE_BUCKET_S). A bucket of tier i whose end is at or before now - keep_s(i) moves into
 * tier i + 1: its counts are added to the bucket floor(bucket / width(i+1)) * width(i+1) of the
 * same series and stack; past the last tier's keep_s it is deleted. Rows of a width that is not
 * in the policy (the policy changed) belong to the last tier whose width is not larger.
 *
 * Durability: WAL with synchronous=NORMAL. Every store__ingest is one transaction, so a crash or
 * kill -9 at any point loses at most the ingest in flight and never leaves half of one; an ingest
 * that returned 0 survives a process crash. Compaction is a sequence of steps, each one
 * transaction, so a crash between or inside steps neither loses nor double-counts a sample. After
 * an OS crash or power loss the last few commits may be rolled back (that is what
 * synchronous=NORMAL trades for speed); the database stays consistent either way.
 *
 * Caches: each struct store keeps frame name -> id and stack -> id caches (bounded to about
 * 36 MiB together, reset when full) so that steady ingests do no lookup per stack. They are dropped whenever PRAGMA
 * data_version shows another connection committed, and after a rollback, so several connections
 * and processes may write the same database.
 *
 * Thread-safety: a struct store is one SQLite connection used by one thread at a time. Several
 * processes or connections may open the same directory: writers wait for each other (busy
 * timeout), readers never block.
 *
 * Errors: functions return 0 or -errno. SQLite failures are logged once with log_warn (with
 * sqlite3_errmsg) and come back as -ENOMEM, -EBUSY (locked past the busy timeout), -ENOSPC,
 * -EROFS or, for everything else, -EIO.
 */
#ifndef PYSAMP_STORE_H
#define PYSAMP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stacks.h"

/* Width of an ingest bucket (the first tier) in seconds; bucket starts are multiples of it. */
#define STORE_BUCKET_S 10

/* The schema this code writes; a database with a greater PRAGMA user_version is refused. */
#define STORE_SCHEMA_VERSION 3

/* The span of an hour rollup in seconds (rows of this width or wider are in none). */
#define STORE_ROLLUP_S 3600

/* Most tiers a retention policy may have. */
#define STORE_MAX_TIERS 4

/* Largest width_s or keep_s of a tier: 100 years. */
#define STORE_MAX_SPAN_S ((int64_t)36500 * 86400)

struct store;

/*
 * One retention tier: buckets width_s seconds wide, kept keep_s seconds (by bucket end) before
 * they move to the next tier or, in the last tier, are deleted.
 */
struct store_tier {
	int64_t width_s;
	int64_t keep_s;
};

/* The default policy: 10 s buckets for 2 days, 1 min for 14 days, 1 h for 365 days. */
#define STORE_RETENTION_DEFAULT "10s:2d,1m:14d,1h:365d"

/*
 * Open or create DIR/profiles.db, creating DIR and missing parents with mode 0700. Sets WAL
 * mode (auto_vacuum = INCREMENTAL first when the file is new), synchronous=NORMAL, foreign keys
 * and a busy timeout, then creates the schema (in one transaction), checks its version, or
 * converts a version-1 or version-2 database to version 3 (in one transaction: a crash leaves the
 * old version; rollups are absent at first and built by store__compact).
 * The retention policy starts as STORE_RETENTION_DEFAULT and the disk bound as none.
 * Returns the store, freed with store__free; or NULL with errno set (EINVAL for a bad argument or
 * a newer/unknown schema, EROFS when the database can only be opened read-only, ENOTDIR, EACCES,
 * EIO, ...) and a one-line message in err (errlen bytes; err may be NULL when errlen is 0).
 */
struct store *store__open(const char *dir, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Finalize all statements and close the database. Accepts NULL. */
void store__free(struct store *s);

/*
 * Store one profile of the series (app, labels) covering [from_s, until_s) at sample_rate Hz.
 * app and labels are NUL-terminated and stored verbatim (labels is the canonical "k=v,k2=v2"
 * string, keys sorted, as the caller built it; "" for none). Every stack of st (labels root
 * first, any bytes) is added to the bucket of from_s, that is from_s rounded down to a multiple of
 * STORE_BUCKET_S: agents send aligned 10 s windows, and a profile spanning several buckets goes
 * wholly into the bucket of its from_s. Counts add up with what is already stored. The series'
 * sample_rate becomes this one (the last ingest wins). st is only read. A late ingest into an hour
 * that has a rollup deletes the rollup (store__compact builds it again).
 *
 * Everything happens in one transaction: returns 0 only after COMMIT succeeded; on any failure
 * the transaction is rolled back and nothing of this profile is stored.
 * Returns 0; -EINVAL for NULL arguments, from_s < 0 or until_s < from_s; -EOVERFLOW when a
 * stored count would pass INT64_MAX; -E2BIG when there would be more than UINT32_MAX frames;
 * -ENOMEM; or an SQLite error as described at the top.
 */
int store__ingest(struct store *s, const char *app, const char *labels, int64_t from_s,
		  int64_t until_s, uint32_t sample_rate, const struct stacks *st)
	__attribute__((warn_unused_result));

/*
 * Merge into out every sample of the series whose app equals app and, when labels_match is
 * non-NULL, whose labels contain every non-empty "k=v" item of the comma-separated labels_match
 * (items compare as whole bytes; "" or NULL matches every series of app), in the buckets whose
 * start lies in [from_s, until_s). Frame names are interned into out, so out may already hold
 * other stacks and labels. Buckets of every tier count, by their start. Reads one consistent
 * snapshot. Per series, every whole hour inside [from_s, until_s) that has a rollup is read from
 * it and the rest from the buckets (the result is the same, store__set_rollups).
 * Returns 0; -EINVAL for NULL arguments; -ENOMEM / -EOVERFLOW from stacks__add; -EIO for a
 * malformed row; an SQLite error. On failure out may hold part of the samples.
 */
int store__query(struct store *s, const char *app, const char *labels_match, int64_t from_s,
		 int64_t until_s, struct stacks *out) __attribute__((warn_unused_result));

/*
 * Visitor for store__series. app and labels are borrowed for the duration of the call; first_s
 * and last_s are the starts of the first and last buckets that ever received a profile (compaction
 * leaves them alone), samples the total count stored for the series now (expiry and the disk
 * bound subtract what they delete; downsampling keeps it) and sample_rate the rate of its last
 * ingest. Return 0 to go on, anything else to stop. It must not call store functions on the same
 * store.
 */
typedef int (*store_series_fn)(void *arg, const char *app, const char *labels, int64_t first_s,
			       int64_t last_s, uint64_t samples, uint32_t sample_rate);

/*
 * Call fn for every series, ordered by app then labels (bytewise). Returns 0 after visiting all,
 * the first non-zero value fn returned, or an SQLite error.
 */
int store__series(struct store *s, store_series_fn fn, void *arg)
	__attribute__((warn_unused_result));

/* Visitor for store__timeline; same rules as store_series_fn. */
typedef int (*store_timeline_fn)(void *arg, int64_t t, uint64_t count);

/*
 * Call fn with the bucket start and the summed sample count of every non-empty bucket of the
 * selection (same selection as store__query) in time order. Buckets of every tier count; those
 * of different widths starting at the same time are summed into one call, and the width is not
 * told (store__timeline2 tells it). Returns 0 after visiting all, the first non-zero value fn
 * returned, -EINVAL for NULL arguments, or an SQLite error.
 */
int store__timeline(struct store *s, const char *app, const char *labels_match, int64_t from_s,
		    int64_t until_s, store_timeline_fn fn, void *arg)
	__attribute__((warn_unused_result));

/*
 * Visitor for store__timeline2: like store_timeline_fn plus the width of the bucket in seconds
 * (its tier's), so that a rate is count / width_s / sample_rate. Same rules as store_series_fn.
 */
typedef int (*store_timeline2_fn)(void *arg, int64_t t, int64_t width_s, uint64_t count);

/*
 * Call fn with the start, the width and the summed sample count of every non-empty bucket of the
 * selection (same selection as store__query: a bucket counts when its start lies in
 * [from_s, until_s)), ordered by start then width. Buckets of different tiers may start at the
 * same time (a coarse bucket partly filled by compaction while newer fine buckets of the same span
 * are still young); they come as separate calls. store__timeline gives the same data with such
 * buckets summed per start. Returns 0 after visiting all, the first non-zero value fn returned,
 * -EINVAL for NULL arguments, or an SQLite error.
 */
int store__timeline2(struct store *s, const char *app, const char *labels_match, int64_t from_s,
		     int64_t until_s, store_timeline2_fn fn, void *arg)
	__attribute__((warn_unused_result));

/*
 * A timeline of the selection (as store__query's: buckets whose start lies in [from_s, until_s))
 * at a resolution of step_s seconds, for drawing: fn gets (t, width, count) points ordered by t
 * then width. A bucket at most step_s wide adds its samples to the point (floor(start / step_s) *
 * step_s, step_s); a wider bucket is a point of its own, (start, its width). So points are
 * max(step_s, bucket width) wide, the first and last may hold only part of their span (the
 * buckets starting inside [from_s, until_s)), and, as in store__timeline2, a coarse bucket and
 * finer points of the same span come as separate calls. When step_s is a whole number of minutes
 * and no tier narrower than an hour is wider than step_s, the per-minute totals of the hour
 * rollups stand for their hours' buckets (same result). Reads one consistent snapshot; fn is
 * called after it ended.
 * Returns 0 after visiting all, the first non-zero value fn returned, -EINVAL for NULL arguments
 * or step_s outside 1..STORE_MAX_SPAN_S, -ENOMEM, -EOVERFLOW (a point past UINT64_MAX), -EIO for a
 * malformed rollup, or an SQLite error.
 */
int store__timeline_step(struct store *s, const char *app, const char *labels_match, int64_t from_s,
			 int64_t until_s, int64_t step_s, store_timeline2_fn fn, void *arg)
	__attribute__((warn_unused_result));

/*
 * Whether store__query and store__timeline_step read the hour rollups (true after store__open).
 * With false they read every bucket: slower, same results (for tests and measurements). Compaction
 * builds and upkeeps the rollups either way. Returns 0, or -EINVAL when s is NULL.
 */
int store__set_rollups(struct store *s, bool use) __attribute__((warn_unused_result));

/* ---- retention, compaction, bounded disk ---- */

/*
 * Parse a retention policy such as "10s:2d,1m:14d,1h:365d": comma-separated WIDTH:KEEP pairs,
 * each a whole number followed by a unit s, m, h or d. The result must pass the checks of
 * store__set_retention. Stores at most max tiers in out (max >= STORE_MAX_TIERS takes any valid
 * policy) and their number in *n.
 * Returns 0; -EINVAL for NULL arguments or a bad spec, with a one-line message in err (errlen
 * bytes; err may be NULL when errlen is 0). On failure out and *n are unspecified.
 */
int store_parse_retention(const char *spec, struct store_tier *out, size_t max, size_t *n,
			  char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Use the retention policy tiers[0..n) (copied) from now on; the default is
 * STORE_RETENTION_DEFAULT. Valid means: 1 <= n <= STORE_MAX_TIERS; tiers[0].width_s is
 * STORE_BUCKET_S; widths strictly increase and each is a multiple of the previous one; every
 * width_s and keep_s is in 1..STORE_MAX_SPAN_S. The policy lives in this struct store only (it
 * is not stored in the database); compaction applies it.
 * Returns 0; -EINVAL for NULL arguments or an invalid policy, and then nothing changes.
 */
int store__set_retention(struct store *s, const struct store_tier *tiers, size_t n)
	__attribute__((warn_unused_result));

/*
 * Bound the database's live size, (page_count - freelist_count) * page_size, to max bytes (0, the
 * default, for no bound). Ingests never fail because of the bound; store__compact enforces it
 * afterwards: once the live size exceeds max it deletes the oldest buckets (oldest start first,
 * whatever their tier) until the live size is at most 90 % of max, counts the samples it deleted
 * in the database (store_stats.dropped_samples) and logs one warning per store__compact call that
 * deleted any. Returns 0, or -EINVAL when s is NULL.
 */
int store__set_max_bytes(struct store *s, uint64_t max) __attribute__((warn_unused_result));

/*
 * Do a bounded amount of maintenance as of the time now_s (Unix seconds): move aged buckets to
 * the next tier or delete them past the last one, enforce the disk bound, build hour rollups,
 * delete stacks and frames no sample uses any more, and hand free pages back to the file system
 * (PRAGMA incremental_vacuum, never a full VACUUM) when more than 1/16 of the file is free.
 * Rollups are built for queued hours, oldest first, once complete (hour + 3600 <= now_s - 60)
 * and once their series has a bucket after the hour (series.last_s >= hour + 3600: so an hour
 * being written, as in a backfill of past hours, is not rolled up after every ingest; the last
 * hour of a series that stopped waits until it sends again); and not in the last hour before
 * rows of the hour would move into a tier an hour wide or wider (or into another hour, or
 * expire): there a rollup would soon be deleted again, and such hours leave the queue without
 * one.
 * The work is about max_rows "sample rows", counted as (stack, count) pairs moved, deleted or
 * read into a rollup (a bucket or a rollup is never split, so one big bucket or hour may pass
 * it), plus stacks and frames collected and pages vacuumed; at most about 3/4 of it goes to
 * moving and expiring and about half of the rest to rollups, so the disk bound and the collection
 * progress under a backlog too. Each step is one short transaction, so other writers (and ingests
 * between calls) wait at most one step; call it every second or so from the same thread as the
 * ingests.
 * *more (when more is not NULL) becomes true when the budget ran out with work possibly left,
 * or on an error: call again soon.
 * Returns 0; -EINVAL for a NULL s or max_rows 0; -EIO for a malformed row; an SQLite error. A
 * failed step is rolled back whole and the steps before it stay done.
 */
int store__compact(struct store *s, int64_t now_s, size_t max_rows, bool *more)
	__attribute__((warn_unused_result));

/* What one tier holds (store_stats.tiers). */
struct store_tier_stats {
	int64_t width_s;
	int64_t keep_s;
	uint64_t rows;	  /* samples rows: one per series and bucket */
	uint64_t entries; /* (stack, count) pairs in them */
	uint64_t samples; /* the sum of their counts */
};

/* Sizes and counters for /metrics and /api/stats. */
struct store_stats {
	/*
	 * The files: profiles.db + profiles.db-wal as they are on disk now. The WAL is checkpointed
	 * at ~4 MiB and truncated back to 4 MiB; the disk bound applies to live_bytes.
	 */
	uint64_t file_bytes;
	uint64_t db_bytes;
	uint64_t wal_bytes;
	uint64_t live_bytes; /* (page_count - freelist_count) * page_size */
	uint64_t page_size;
	uint64_t pages;
	uint64_t free_pages;
	uint64_t max_bytes;	 /* the bound (0: none) */
	bool incremental_vacuum; /* false for a database converted from version 1 */
	/* the content, per tier of the current policy */
	size_t ntiers;
	struct store_tier_stats tiers[STORE_MAX_TIERS];
	uint64_t series;
	uint64_t stacks;
	uint64_t frames;
	/* stored in the database: everything the disk bound ever deleted */
	uint64_t dropped_samples;
	uint64_t dropped_rows;
	/* this struct store since store__open */
	uint64_t moved_rows;	/* rows moved into a coarser tier */
	uint64_t expired_rows;	/* rows deleted past the last tier's keep */
	uint64_t trimmed_rows;	/* rows deleted by the disk bound */
	uint64_t moved_entries; /* their (stack, count) pairs, likewise */
	uint64_t expired_entries;
	uint64_t trimmed_entries;
	uint64_t gc_stacks;	 /* unreferenced stacks deleted */
	uint64_t gc_frames;	 /* unreferenced frames deleted */
	uint64_t vacuumed_pages; /* pages handed back by incremental_vacuum */
	uint64_t cache_hits;	 /* frame and stack lookups answered by the caches */
	uint64_t cache_misses;
	uint64_t cache_resets; /* caches dropped: another writer, a rollback, or full */
	/* stored in the database: the hour rollups */
	uint64_t rollups;	 /* (series, hour) rollups */
	uint64_t rollup_entries; /* their (stack, count) pairs */
	uint64_t rollup_bytes;	 /* their blobs: pairs and per-minute totals */
	uint64_t rollup_queue;	 /* hours queued in rollup_todo */
	/* this struct store since store__open */
	uint64_t rollups_built;
	uint64_t rollups_deleted; /* made inexact by a write to their hour, or redundant */
};

/*
 * Fill *out (overwritten whole) from one consistent snapshot. Cheap: a few PRAGMAs, counts of the
 * series, stacks, frames and rollup_todo tables, the maintained tiers table and meta counters; no
 * scan of the samples or rollups.
 * Returns 0; -EINVAL for NULL arguments; an SQLite error.
 */
int store__stats(struct store *s, struct store_stats *out) __attribute__((warn_unused_result));

#endif /* PYSAMP_STORE_H */
