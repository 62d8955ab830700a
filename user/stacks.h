/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * stacks.h - stack aggregation: interned frame labels, interned stacks, a count per stack.
 *
 * Labels (frame names, any bytes) get small stable ids; a stack is a sequence of label ids from
 * root to leaf. Both are kept in open-addressing hash tables that double when they fill, so
 * interning and adding are O(1) expected (plus the label or stack length).
 *
 * Thread-safety: none inside. A struct stacks is used by one thread at a time; concurrent calls
 * of the const functions are safe only while nobody modifies the object.
 */
#ifndef PYSAMP_STACKS_H
#define PYSAMP_STACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stacks;

/* Create an empty aggregator. Returns NULL, errno = ENOMEM, on failure. Free with stacks__free. */
struct stacks *stacks__new(void) __attribute__((warn_unused_result));

/* Free st and everything it holds, labels included. Accepts NULL. */
void stacks__free(struct stacks *st);

/*
 * Intern the label label[0..len) (any bytes, NULs included; need not be NUL-terminated; label may
 * be NULL when len is 0) and store its id in *id. The same bytes always give the same id until
 * stacks__clear/stacks__free; ids are dense, starting at 0 in order of first appearance.
 * Returns 0; -E2BIG when len or the number of labels exceeds UINT32_MAX - 1; -ENOMEM.
 * On failure nothing changes and *id is not written. The bytes are copied.
 */
int stacks__intern(struct stacks *st, const char *label, size_t len, uint32_t *id)
	__attribute__((warn_unused_result));

/*
 * The label of id as a NUL-terminated string, borrowed: valid until stacks__clear or
 * stacks__free. NULL for an unknown id. A label holding NUL bytes reads as truncated here;
 * stacks__label_bytes gives the full length.
 */
const char *stacks__label(const struct stacks *st, uint32_t id);

/* As stacks__label, also storing the label's length in bytes in *len (when len is non-NULL). */
const char *stacks__label_bytes(const struct stacks *st, uint32_t id, size_t *len);

/*
 * Add count samples to the stack ids[0..n), root first. The ids are copied; they must not point
 * into st's own storage (such as the ids a visitor received).
 * Returns 0; -EINVAL when n is 0, n exceeds UINT32_MAX or an id was never interned;
 * -EOVERFLOW when the stack's count or the total would pass UINT64_MAX; -E2BIG when the number of
 * stacks would exceed UINT32_MAX - 1; -ENOMEM. On failure nothing changes.
 * A count of 0 is valid and does nothing (no empty stack is recorded).
 */
int stacks__add(struct stacks *st, const uint32_t *ids, size_t n, uint64_t count)
	__attribute__((warn_unused_result));

/* The id of label[0..len) if it was interned (no insertion): true and *id, else false. */
/*
 * As stacks__add, and *ref (when non-NULL) is the stack's reference: its index, stable until
 * stacks__clear, for stacks__stack. With a ref, count 0 adds the stack without samples.
 */
int stacks__add_ref(struct stacks *st, const uint32_t *ids, size_t n, uint64_t count,
		    uint32_t *ref) __attribute__((warn_unused_result));

/*
 * The label ids of stack ref (root first; borrowed until st changes), *n their number and *count
 * (each may be NULL) its samples; NULL for an unknown ref.
 */
const uint32_t *stacks__stack(const struct stacks *st, uint32_t ref, size_t *n, uint64_t *count);

bool stacks__find_label(const struct stacks *st, const char *label, size_t len, uint32_t *id);

/* The count of the stack ids[0..n) (0 when it was never added). */
uint64_t stacks__count(const struct stacks *st, const uint32_t *ids, size_t n);

/* Number of labels interned (ids run from 0 to this minus one). */
size_t stacks__nlabels(const struct stacks *st);

/* Number of unique stacks recorded. */
size_t stacks__nstacks(const struct stacks *st);

/* Sum of all counts added. */
uint64_t stacks__total(const struct stacks *st);

/* Approximate heap bytes held by st (tables, arrays, label storage, the object itself). */
size_t stacks__bytes(const struct stacks *st);

/* Forget all stacks and labels and release their memory; st stays usable and ids restart at 0. */
void stacks__clear(struct stacks *st);

/*
 * Visitor for stacks__foreach_sorted: ids[0..n) root first, borrowed for the duration of the call.
 * Return 0 to continue, anything else to stop. It must not modify st.
 */
typedef int (*stacks_visit_fn)(const uint32_t *ids, size_t n, uint64_t count, void *arg);

/*
 * Call fn for every stack in the order they were first added (cheap: no sorting). Returns 0
 * after visiting all or the first non-zero value returned by fn.
 */
int stacks__foreach(const struct stacks *st, stacks_visit_fn fn, void *arg);

/*
 * Call fn for every stack in a deterministic order that does not depend on insertion order:
 * count descending, then the folded line (raw labels joined by ';') in ascending byte order, and
 * when two different stacks join to the same bytes (a label containing ';'), fewer labels first,
 * then the shorter first differing label first.
 * Returns 0 after visiting all, the first non-zero value returned by fn, or -ENOMEM (it sorts a
 * temporary index of 4 bytes per stack).
 */
int stacks__foreach_sorted(const struct stacks *st, stacks_visit_fn fn, void *arg)
	__attribute__((warn_unused_result));

#endif /* PYSAMP_STACKS_H */
