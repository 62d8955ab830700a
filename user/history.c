/* SPDX-License-Identifier: BSD-2-Clause */
/* history.c - past windows in bounded memory (merge the oldest when over budget). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"

void history_init(struct history *h, size_t budget_bytes, size_t max_stacks)
{
	memset(h, 0, sizeof(*h));
	h->budget_bytes = budget_bytes;
	h->max_stacks = max_stacks;
}

void history_release(struct history *h)
{
	for (size_t i = 0; i < h->n; i++)
		window__free(h->w[i]);
	free(h->w);
	h->w = NULL;
	h->n = h->cap = h->bytes = 0;
}

/* Replace w[0] and w[1] by their merge. 0 or -errno (nothing changed). */
static int merge_oldest(struct history *h)
{
	struct window *m = window__new(h->w[0]->from_ms);
	int err;

	if (!m)
		return -ENOMEM;
	m->until_ms = h->w[0]->until_ms;
	err = window__absorb(m, h->w[0]);
	if (!err)
		err = window__absorb(m, h->w[1]);
	if (!err && h->max_stacks)
		err = window__prune(m, h->max_stacks);
	if (err) {
		window__free(m);
		return err;
	}
	h->bytes -= window__bytes(h->w[0]) + window__bytes(h->w[1]);
	window__free(h->w[0]);
	window__free(h->w[1]);
	h->w[0] = m;
	h->bytes += window__bytes(m);
	memmove(&h->w[1], &h->w[2], (h->n - 2) * sizeof(*h->w));
	h->n--;
	h->compactions++;
	return 0;
}

int history__append(struct history *h, struct window *w)
{
	if (h->n == h->cap) {
		size_t ncap = h->cap ? h->cap * 2 : 64;
		struct window **nw = realloc(h->w, ncap * sizeof(*nw));

		if (!nw) {
			window__free(w);
			return -ENOMEM;
		}
		h->w = nw;
		h->cap = ncap;
	}
	h->w[h->n++] = w;
	h->bytes += window__bytes(w);
	/* Keep the newest window as it is: it is what pull and push readers ask for. */
	while (h->bytes > h->budget_bytes && h->n > 2) {
		if (merge_oldest(h)) {
			h->compact_failures++;
			break;
		}
	}
	return 0;
}
