/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * store.h - the collector's profile storage on SQLite: series, interned frames and stacks,
 * sample counts per 10 s bucket.
 *
 * On disk (DIR/profiles.db, schema version in PRAGMA user_version):
 *   series(id, app, labels, sample_rate, first_s, last_s, samples)  unique (app, labels)
 *   frames(id, name BLOB unique)                  every frame string once
 *   stacks(id, hash, frames BLOB)                 frame ids root first as little-endian u32,
 *                                                 hash indexed (64-bit, part of the format)
 *   samples(series_id, bucket, stack_id, count)   primary key (series_id, bucket, stack_id)
 *
 * Durability: WAL with synchronous=NORMAL. Every store__ingest is one transaction, so a crash or
 * kill -9 at any point loses at most the ingest in flight and never leaves half of one; an ingest
 * that returned 0 survives a process crash. After an OS crash or power loss the last few commits
 * may be rolled back (that is what synchronous=NORMAL trades for speed); the database stays
 * consistent either way.
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

#include <stddef.h>
#include <stdint.h>

#include "stacks.h"

/* Width of a time bucket in seconds; bucket starts are multiples of it (Unix time). */
#define STORE_BUCKET_S 10

/* The schema this code writes; a database with a greater PRAGMA user_version is refused. */
#define STORE_SCHEMA_VERSION 1

struct store;

/*
 * Open or create DIR/profiles.db, creating DIR and missing parents with mode 0700. Sets WAL
 * mode, synchronous=NORMAL, foreign keys and a busy timeout, then creates the schema (in one
 * transaction) or checks its version.
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
 * sample_rate becomes this one (the last ingest wins). st is only read.
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
 * other stacks and labels. Reads one consistent snapshot.
 * Returns 0; -EINVAL for NULL arguments; -ENOMEM / -EOVERFLOW from stacks__add; an SQLite error.
 * On failure out may hold part of the samples.
 */
int store__query(struct store *s, const char *app, const char *labels_match, int64_t from_s,
		 int64_t until_s, struct stacks *out) __attribute__((warn_unused_result));

/*
 * Visitor for store__series. app and labels are borrowed for the duration of the call; first_s
 * and last_s are the starts of the first and last buckets that received a profile, samples the
 * total count stored for the series and sample_rate the rate of its last ingest. Return 0 to go
 * on, anything else to stop. It must not call store functions on the same store.
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
 * selection (same selection as store__query) in time order. Returns 0 after visiting all, the
 * first non-zero value fn returned, -EINVAL for NULL arguments, or an SQLite error.
 */
int store__timeline(struct store *s, const char *app, const char *labels_match, int64_t from_s,
		    int64_t until_s, store_timeline_fn fn, void *arg)
	__attribute__((warn_unused_result));

#endif /* PYSAMP_STORE_H */
