/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * symbolize.h - turns sampled frames (code object, instruction, fingerprint)
 * of one process into interned "qualname (file:line)" labels.
 *
 * Names, files and line tables are read from the target with
 * process_vm_readv; the target is untrusted, so every length is capped and a
 * read failure gives the "[unknown]" label, never an error on the sampling
 * path. A code object is identified by its address *and* the fingerprint BPF
 * took at sample time, so a freed code object whose address was reused by
 * another function is never given the old function's name.
 */
#ifndef PYSAMP_SYMBOLIZE_H
#define PYSAMP_SYMBOLIZE_H

#include <stdint.h>
#include <linux/types.h>

#include "pysamp_abi.h"
#include "pyproc.h"
#include "stacks.h"

struct symbolizer;

struct symbolizer_stats {
	uint64_t frames;     /* frames symbolized */
	uint64_t hits;	     /* answered from the frame cache */
	uint64_t code_reads; /* code objects read from the target */
	uint64_t stale;	     /* code object changed since the sample: [unknown] */
	uint64_t read_fail;  /* target memory unreadable (exited?): [unknown] */
};

/*
 * New symbolizer for pp (borrowed, must outlive it) interning labels into st
 * (borrowed). NULL with errno on failure. Free with symbolizer__free.
 */
struct symbolizer *symbolizer__new(const struct pyproc *pp, struct stacks *st);
void symbolizer__free(struct symbolizer *sy);

/*
 * Label id for frame f. Returns 0 with *id set (possibly the "[unknown]"
 * label, counted in the stats), or -ENOMEM when even that cannot be interned.
 */
int symbolizer__frame(struct symbolizer *sy, const struct pysamp_frame *f, uint32_t *id)
	__attribute__((warn_unused_result));

/* Forget every cached label id (call after stacks__clear on the stacks). */
void symbolizer__reset_ids(struct symbolizer *sy);

/* Intern into st (borrowed) from now on; cached label ids are forgotten, code info is kept. */
void symbolizer__set_stacks(struct symbolizer *sy, struct stacks *st);

/* Counters since creation. Borrowed. */
const struct symbolizer_stats *symbolizer__stats(const struct symbolizer *sy);

/*
 * true when a PyObject header (ob_refcnt, ob_type) looks like a live object
 * of type want_type (0: any type). Freed memory fails: allocators overwrite
 * the first word with a free-list pointer (or NULL), and glibc's tcache the
 * second with its key.
 */
bool symbolize_object_live(uint64_t refcnt, uint64_t type, uint64_t want_type);

/*
 * Decode a CPython string object's text (exposed for tests): PEP 393 kinds
 * 1/2/4 and 2.7 str, as UTF-8 into out (NUL-terminated, truncated to outlen).
 * With want_type non-zero the object must be a live object of that type.
 * Reads through pid. Returns 0 or -errno (-ESTALE: not a live string).
 */
int symbolize_read_str(pid_t pid, const struct py_offsets *off, uint64_t addr, uint64_t want_type,
		       char *out, size_t outlen) __attribute__((warn_unused_result));

#endif /* PYSAMP_SYMBOLIZE_H */
