/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ratelimit.h - a token bucket per client (the collector's request-rate limit).
 *
 * Each client key (an address) gets a bucket of `burst` tokens refilled at `rate` per second;
 * a request takes one token or is refused. At most max_clients buckets are kept: a new client
 * beyond that takes the slot of the least recently seen one (a forgotten client starts with a
 * full bucket, so eviction can only be lenient, never refuse more).
 *
 * Ownership: the limiter copies keys. Not thread-safe (one event loop uses it).
 * Time comes from the caller (monotonic milliseconds), so tests need no clock.
 */
#ifndef PYSAMP_RATELIMIT_H
#define PYSAMP_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ratelimit;

/*
 * rate > 0 tokens per second, burst >= 1, max_clients >= 1. NULL with errno EINVAL (bad
 * argument) or ENOMEM. Free with ratelimit__free.
 */
struct ratelimit *ratelimit__new(double rate, double burst, size_t max_clients)
	__attribute__((warn_unused_result));

/* Accepts NULL. */
void ratelimit__free(struct ratelimit *rl);

/*
 * Take a token for client (any NUL-terminated string; keys longer than 63 bytes are cut) at
 * now_ms. true: allowed. false: refused, and *retry_after_s (when non-NULL) is the whole number
 * of seconds, at least 1, after which a token will be there.
 */
bool ratelimit__take(struct ratelimit *rl, const char *client, uint64_t now_ms,
		     uint32_t *retry_after_s);

/* Requests refused so far. */
uint64_t ratelimit__refused(const struct ratelimit *rl);

/* The address part of an httpd peer string: "1.2.3.4:80" -> "1.2.3.4", "[::1]:80" -> "::1". */
void ratelimit_peer_host(const char *peer, char *out, size_t outlen);

#endif /* PYSAMP_RATELIMIT_H */
