/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * push.h - send folded profiles to a Pyroscope-compatible ingest endpoint (POST /ingest) with
 * libcurl, from the caller's single-threaded poll loop.
 *
 * Items are queued in memory (capped), overflow to an optional disk spool (capped), and are sent
 * in enqueue order, one request at a time. Network failures, timeouts, 408, 429 and 5xx keep the
 * item at the head and back off (1 s doubling to 60 s, +-20% jitter); other 4xx drop it. Only
 * push__flush(), meant for exit, waits on the network; spool files are read and written
 * synchronously (one item at a time, by push__enqueue() on overflow and push__poll() before
 * sending a spooled item).
 *
 * Spool directory: one file per item, "<20-digit sequence>.push", written to a temporary name
 * and renamed; files are validated (header, sizes, checksum) before use, and bad ones are deleted
 * and counted. The directory is locked (flock on "<dir>/.lock") so that two agents cannot share
 * it. Other file names are left alone.
 *
 * libcurl's proxy variables (https_proxy, http_proxy, no_proxy) apply. Ignore SIGPIPE in the
 * process: requests use CURLOPT_NOSIGNAL.
 *
 * Not thread-safe: one thread uses a given struct push. push__new() calls curl_global_init(), so
 * create the first push object before starting any thread.
 */
#ifndef PYSAMP_PUSH_H
#define PYSAMP_PUSH_H

#include <stddef.h>
#include <stdint.h>

struct push_opts {
	/* "http[s]://host[:port][/path]": "/ingest" is appended to the path unless it already ends
	 * with "/ingest". A query and user:password@ are kept (the password is never logged). */
	const char *url;
	/* NULL, or a file whose first line (trimmed) is a bearer token, sent as
	 * "Authorization: Bearer <token>"; read again by push__reload(). */
	const char *token_file;
	const char *spool_dir;	 /* NULL: memory only. Else created (mkdir -p, 0700) if missing */
	size_t spool_mem_bytes;	 /* memory queue cap, name + body bytes (0 = 64 MiB) */
	size_t spool_disk_bytes; /* disk spool cap, file bytes (0 = 1 GiB) */
	uint32_t timeout_ms;	 /* per request (0 = 10000); connecting gets min(this, 5000) */
	const char *user_agent;	 /* e.g. "pysamp-bpf/0.1.0"; NULL: libcurl sends none */
	uint32_t backoff_min_ms; /* tests only: first retry delay (0 = 1000); the cap is 60x this */
};

struct push_item {
	const char *name; /* the name= value, unescaped, e.g. "myapp.cpu{host=h1}"; non-empty,
			   * at most PUSH_NAME_MAX bytes; push URL-encodes it */
	uint64_t from_s, until_s; /* Unix seconds */
	uint32_t sample_rate;	  /* Hz */
	const char *body; /* folded text, "a;b;c 12\n" lines (any bytes; may be NULL if len 0) */
	size_t len;
};

#define PUSH_NAME_MAX 4096

/*
 * Counters, all since push__new() except where "now" is said. Every enqueued item ends up exactly
 * once in sent, rejected or one of the dropped_* counters, unless it is still queued, or lost in
 * memory by push__free() without push__flush().
 */
struct push_stats {
	uint64_t enqueued;	     /* push__enqueue() successes */
	uint64_t sent;		     /* 2xx answers */
	uint64_t retries;	     /* requests that re-sent an item after a failed attempt */
	uint64_t failed_attempts;    /* connection errors, timeouts, 5xx, 408, 429 (and 1xx/3xx) */
	uint64_t rejected;	     /* permanent 4xx: dropped, the server's message logged */
	uint64_t dropped_overflow;   /* memory and disk spool both full: oldest dropped first */
	uint64_t dropped_disk_error; /* lost writing or reading the spool (ENOSPC, EIO, ...) */
	uint64_t dropped_corrupt;    /* spool files that failed validation (deleted) */
	uint64_t dropped_unsent;     /* left in memory when push__flush() gave up, no spool dir */
	uint64_t spooled_to_disk;    /* items written to the spool */
	uint64_t loaded_from_disk;   /* valid spool files found by push__new() */
	uint64_t queued_items;	     /* now, memory + disk, the request in flight included */
	uint64_t queued_bytes;	     /* now: name + body bytes in memory, plus spool file bytes */
	uint64_t bytes_sent;	     /* body bytes of the items sent */
	int64_t last_success_unix;   /* time of the last 2xx; 0 = never */
	int last_http_status;	     /* last response status; 0 = none yet, or a connection error */
};

struct push;

/*
 * Parse o->url, read the token file, create/lock/load the spool directory, set up libcurl.
 * Nothing is sent until push__poll(). o and its strings are copied.
 *
 * Returns the object (free with push__free()), or NULL with errno set and a one-line message in
 * err (errlen bytes; err may be NULL when errlen is 0): EINVAL for a malformed URL or an empty or
 * malformed token, EPROTONOSUPPORT for a scheme other than http/https, the open/read errno of the
 * token file, mkdir/open errors of the spool directory, EBUSY when another process holds the
 * spool directory, ENOMEM.
 */
struct push *push__new(const struct push_opts *o, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Abort the request in flight and free p. Items still in memory are lost (call push__flush()
 * first); spool files stay for the next start. Accepts NULL.
 */
void push__free(struct push *p);

/*
 * Queue a copy of *it (nothing is borrowed after the call). When the memory queue would pass its
 * cap, its oldest items move to the spool, or are dropped (dropped_overflow) without one; when
 * the spool would pass its cap, its oldest files are deleted (dropped_overflow); a failed spool
 * write drops that item (dropped_disk_error). None of those is an error of this call.
 *
 * Returns 0; -EINVAL for a NULL or empty name, or a NULL body with len > 0; -ENAMETOOLONG past
 * PUSH_NAME_MAX; -E2BIG when the item alone (name + body) exceeds the memory cap, or its body
 * 256 MiB; -ENOMEM. Nothing is queued on failure.
 */
int push__enqueue(struct push *p, const struct push_item *it) __attribute__((warn_unused_result));

/*
 * Advance the request in flight and start the next one when it is due. Never blocks (DNS runs in
 * libcurl's resolver thread). Call it every loop iteration.
 *
 * Returns 0, or -errno for an internal failure (-ENOMEM, -EIO for a libcurl multi error); network
 * and HTTP errors are never returned, they are counted in the stats.
 */
int push__poll(struct push *p);

/*
 * At exit: send until the queue is empty or timeout_ms has passed, sleeping in curl_multi_poll.
 * A backoff in progress is cut short: the head item is tried at once. Then the request in flight
 * is aborted, and what is left in memory is written to the spool (sent on the next start), or,
 * without a spool, dropped and counted in dropped_unsent.
 *
 * Returns the number of items not delivered (0 = all sent), spooled ones included. p stays usable.
 */
int push__flush(struct push *p, uint32_t timeout_ms);

/*
 * SIGHUP: re-read the token file (no-op without one). On failure the old token is kept and a
 * warning is logged. Returns 0 or the -errno of the read (-EINVAL for an empty/malformed token).
 */
int push__reload(struct push *p);

/* Counters, borrowed: valid and updated in place until push__free(). */
const struct push_stats *push__stats(const struct push *p);

#endif /* PYSAMP_PUSH_H */
