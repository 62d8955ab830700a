/* SPDX-License-Identifier: BSD-2-Clause */
/* test_ratelimit.c - token buckets per client, refill, retry-after, LRU reuse, peer parsing. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "ratelimit.h"

static void test_bucket(void)
{
	struct ratelimit *rl = ratelimit__new(2, 3, 8);
	uint32_t ra = 0;
	int ok = 0;

	T_CHECK(rl != NULL);
	/* A burst of 3, then refused until tokens come back at 2/s. */
	for (int i = 0; i < 10; i++)
		ok += ratelimit__take(rl, "a", 1000, &ra);
	T_CHECK_EQ_INT(ok, 3);
	T_CHECK_EQ_INT(ratelimit__refused(rl), 7);
	T_CHECK_EQ_INT(ra, 1);
	/* Another client has its own bucket. */
	T_CHECK(ratelimit__take(rl, "b", 1000, NULL));
	/* 499 ms: not yet one token; 500 ms: one. */
	T_CHECK(!ratelimit__take(rl, "a", 1499, NULL));
	T_CHECK(ratelimit__take(rl, "a", 1500, NULL));
	T_CHECK(!ratelimit__take(rl, "a", 1500, NULL));
	/* Long idle: refilled to the burst, not beyond. */
	ok = 0;
	for (int i = 0; i < 10; i++)
		ok += ratelimit__take(rl, "a", 100000, NULL);
	T_CHECK_EQ_INT(ok, 3);
	/* A clock that goes back does not mint tokens. */
	T_CHECK(!ratelimit__take(rl, "a", 50000, NULL));
	ratelimit__free(rl);

	/* Slow rate: the retry-after rounds up. */
	rl = ratelimit__new(0.1, 1, 4);
	T_CHECK(ratelimit__take(rl, "x", 0, NULL));
	T_CHECK(!ratelimit__take(rl, "x", 0, &ra));
	T_CHECK_EQ_INT(ra, 10);
	ratelimit__free(rl);
}

static void test_lru(void)
{
	struct ratelimit *rl = ratelimit__new(1, 1, 4);
	char key[32];

	/* Exhaust "hot", then churn through many clients; "hot" stays known while it is used. */
	T_CHECK(ratelimit__take(rl, "hot", 0, NULL));
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "c%d", i);
		T_CHECK(ratelimit__take(rl, key, 0, NULL));
		T_CHECK(!ratelimit__take(rl, key, 0, NULL));
		if (i % 2 == 0)
			T_CHECK(!ratelimit__take(rl, "hot", 0, NULL));
	}
	/* Every slot is still found after thousands of evictions (the probe chains stay whole). */
	for (int i = 997; i < 1000; i++) {
		snprintf(key, sizeof(key), "c%d", i);
		T_CHECK(!ratelimit__take(rl, key, 0, NULL));
	}
	/* A long key is cut, not overflowed. */
	char big[300];
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	T_CHECK(ratelimit__take(rl, big, 0, NULL));
	T_CHECK(!ratelimit__take(rl, big, 0, NULL));
	T_CHECK(ratelimit__take(rl, "", 0, NULL));
	T_CHECK(ratelimit__take(rl, NULL, 5000, NULL));
	ratelimit__free(rl);
}

static void test_args(void)
{
	errno = 0;
	T_CHECK(ratelimit__new(0, 1, 1) == NULL && errno == EINVAL);
	T_CHECK(ratelimit__new(1, 0.5, 1) == NULL);
	T_CHECK(ratelimit__new(1, 1, 0) == NULL);
	T_CHECK(ratelimit__new(-1, 1, 1) == NULL);
	ratelimit__free(NULL);
}

static void test_peer(void)
{
	char h[64];

	ratelimit_peer_host("127.0.0.1:5555", h, sizeof(h));
	T_CHECK_EQ_STR(h, "127.0.0.1");
	ratelimit_peer_host("[::1]:80", h, sizeof(h));
	T_CHECK_EQ_STR(h, "::1");
	ratelimit_peer_host("fe80::1", h, sizeof(h));
	T_CHECK_EQ_STR(h, "fe80::1");
	ratelimit_peer_host("host", h, sizeof(h));
	T_CHECK_EQ_STR(h, "host");
	ratelimit_peer_host(NULL, h, sizeof(h));
	T_CHECK_EQ_STR(h, "");
	ratelimit_peer_host("1234567890:1", h, 4);
	T_CHECK_EQ_STR(h, "123");
}

int main(void)
{
	test_bucket();
	test_lru();
	test_args();
	test_peer();
	return T_DONE();
}
