/* SPDX-License-Identifier: BSD-2-Clause */
/* ratelimit.c - token buckets per client, in a small hash table with LRU reuse. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

#define KEY_MAX 64

struct bucket {
	char key[KEY_MAX]; /* "" = free */
	double tokens;
	uint64_t last_ms;  /* last refill */
	uint64_t seen;     /* LRU clock */
};

struct ratelimit {
	double rate, burst;
	size_t cap;	   /* slots, a power of two >= 2 * max_clients */
	size_t max, used;
	uint64_t clock, refused;
	struct bucket *b;
};

struct ratelimit *ratelimit__new(double rate, double burst, size_t max_clients)
{
	struct ratelimit *rl;
	size_t cap = 16;

	if (!(rate > 0) || !(burst >= 1) || !max_clients || max_clients > (1u << 20)) {
		errno = EINVAL;
		return NULL;
	}
	while (cap < 2 * max_clients)
		cap <<= 1;
	rl = calloc(1, sizeof(*rl));
	if (!rl)
		return NULL;
	rl->b = calloc(cap, sizeof(*rl->b));
	if (!rl->b) {
		free(rl);
		return NULL;
	}
	rl->rate = rate;
	rl->burst = burst;
	rl->cap = cap;
	rl->max = max_clients;
	return rl;
}

void ratelimit__free(struct ratelimit *rl)
{
	if (!rl)
		return;
	free(rl->b);
	free(rl);
}

static uint64_t hash_key(const char *k)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ull;
	return h;
}

/* Remove slot i from its probe sequence (backward-shift deletion for linear probing). */
static void slot_remove(struct ratelimit *rl, size_t i)
{
	size_t mask = rl->cap - 1, j = i;

	rl->b[i].key[0] = '\0';
	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!rl->b[j].key[0])
			break;
		home = hash_key(rl->b[j].key) & mask;
		/* b[j] stays when its home lies cyclically in (hole, j]; otherwise fill the hole */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		rl->b[i] = rl->b[j];
		rl->b[j].key[0] = '\0';
		i = j;
	}
	rl->used--;
}

static void evict_lru(struct ratelimit *rl)
{
	size_t victim = 0;
	uint64_t oldest = UINT64_MAX;

	for (size_t i = 0; i < rl->cap; i++)
		if (rl->b[i].key[0] && rl->b[i].seen < oldest) {
			oldest = rl->b[i].seen;
			victim = i;
		}
	if (oldest != UINT64_MAX)
		slot_remove(rl, victim);
}

static struct bucket *lookup(struct ratelimit *rl, const char *key, uint64_t now_ms)
{
	size_t mask = rl->cap - 1, i;

	for (;;) {
		for (i = hash_key(key) & mask; rl->b[i].key[0]; i = (i + 1) & mask)
			if (!strcmp(rl->b[i].key, key))
				return &rl->b[i];
		if (rl->used < rl->max)
			break;
		evict_lru(rl); /* O(cap), only when a new client arrives at a full table */
	}
	strcpy(rl->b[i].key, key);
	rl->b[i].tokens = rl->burst;
	rl->b[i].last_ms = now_ms;
	rl->used++;
	return &rl->b[i];
}

bool ratelimit__take(struct ratelimit *rl, const char *client, uint64_t now_ms,
		     uint32_t *retry_after_s)
{
	char key[KEY_MAX];
	struct bucket *b;
	double need;

	snprintf(key, sizeof(key), "%s", client && *client ? client : "-");
	b = lookup(rl, key, now_ms);
	b->seen = ++rl->clock;
	if (now_ms > b->last_ms) {
		b->tokens = fmin(rl->burst, b->tokens + (double)(now_ms - b->last_ms) * rl->rate / 1000);
		b->last_ms = now_ms;
	}
	if (b->tokens >= 1) {
		b->tokens -= 1;
		return true;
	}
	rl->refused++;
	if (retry_after_s) {
		need = ceil((1 - b->tokens) / rl->rate);
		*retry_after_s = need < 1 ? 1 : need > 3600 ? 3600 : (uint32_t)need;
	}
	return false;
}

uint64_t ratelimit__refused(const struct ratelimit *rl)
{
	return rl->refused;
}

void ratelimit_peer_host(const char *peer, char *out, size_t outlen)
{
	const char *end;
	size_t n;

	if (!outlen)
		return;
	if (!peer)
		peer = "";
	if (peer[0] == '[' && (end = strchr(peer, ']'))) {
		peer++;
	} else if (!(end = strrchr(peer, ':')) || strchr(peer, ':') != end) {
		end = peer + strlen(peer); /* no port, or a bare IPv6 address */
	}
	n = (size_t)(end - peer);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, peer, n);
	out[n] = '\0';
}
