/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pyoffsets.h - everything pysamp-bpf knows about CPython struct layouts.
 *
 * One table per supported minor version (2.7, 3.6-3.13; 3.8 and 3.9 share one), measured on the
 * interpreters listed in shared/reference/cpython-frames.md, and a decoder
 * of _Py_DebugOffsets (3.13+) that fills the same struct from the target's
 * own description of itself. Userspace-only: BPF receives the flattened
 * struct pysamp_proc built by pyoffsets_to_bpf().
 */
#ifndef PYSAMP_PYOFFSETS_H
#define PYSAMP_PYOFFSETS_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "pysamp_abi.h"
#include "linetable.h"

/* How a frame records the instruction being executed. */
enum py_lasti_kind {
	PY_LASTI_BYTES = 0, /* f_lasti: byte offset into co_code (<= 3.9), -1 before start */
	PY_LASTI_UNITS = 1, /* f_lasti: 2-byte code units (3.10) */
	PY_LASTI_PTR = 2,   /* instruction pointer into co_code_adaptive (3.11+) */
};

/* How strings (co_name, co_filename) are stored. */
enum py_str_kind {
	PY_STR_BYTES = 0,   /* 2.7 PyStringObject: ob_size, char ob_sval[] */
	PY_STR_UNICODE = 1, /* PEP 393 PyUnicodeObject */
};

struct py_offsets {
	uint32_t major, minor;
	uint32_t minor_last; /* a table valid for minor..minor_last (0: minor only) */
	/* _PyRuntime -> interpreters.head; PYSAMP_OFF_NONE for 2.7/3.6 (interp_head symbol) */
	uint32_t runtime_interp_head;
	uint32_t interp_next;
	uint32_t interp_tstate_head;
	uint32_t tstate_next;
	uint32_t tstate_thread_id;
	uint32_t tstate_frame;
	uint32_t cframe_current; /* PYSAMP_OFF_NONE when tstate_frame is the frame itself */
	uint32_t frame_back;
	uint32_t frame_code;
	uint32_t frame_ip;
	uint32_t frame_owner;	/* PYSAMP_OFF_NONE before 3.11 */
	uint32_t frame_size;	/* bytes read per frame */
	uint32_t owner_skip;	/* owner values >= this are shims */
	uint64_t code_tag_mask; /* 3.14 _PyStackRef tag bits */
	uint32_t code_filename;
	uint32_t code_name;
	uint32_t code_qualname; /* PYSAMP_OFF_NONE before 3.11 */
	uint32_t code_firstlineno;
	uint32_t code_linetable;
	uint32_t code_adaptive; /* co_code_adaptive, PY_LASTI_PTR only */
	uint32_t code_size;	/* bytes of PyCodeObject read by userspace */
	enum py_lasti_kind lasti;
	enum linetable_format linetable;
	enum py_str_kind str;
	uint32_t bytes_size; /* ob_size of bytes/str */
	uint32_t bytes_data; /* ob_sval */
	uint32_t unicode_length;
	uint32_t unicode_state;
	uint32_t unicode_ascii_data;   /* sizeof(PyASCIIObject) */
	uint32_t unicode_compact_data; /* sizeof(PyCompactUnicodeObject) */
};

/* Built-in table for major.minor, or NULL when there is none. Borrowed, static. */
const struct py_offsets *pyoffsets_table(uint32_t major, uint32_t minor);

/* Size of the _Py_DebugOffsets prefix pyoffsets_from_debug() needs. */
#define PYOFFSETS_DEBUG_BYTES 1024

/*
 * Fill *out from a copy of the target's _Py_DebugOffsets (buf, len bytes, as
 * found at the start of _PyRuntime). Picks the struct's own layout from its
 * version field (3.13 or 3.14+), checks the values for sanity, and completes
 * what the struct does not describe from built-in knowledge. Returns 0,
 * -EINVAL when the cookie or values are wrong, -ENOTSUP for a free-threaded
 * build or a version before 3.13. why (may be NULL) gets a short reason.
 */
int pyoffsets_from_debug(const uint8_t *buf, size_t len, struct py_offsets *out, char *why,
			 size_t whylen) __attribute__((warn_unused_result));

/*
 * The walk configuration BPF gets for one process, from the offsets and the
 * runtime address of the interpreter list head. Returns 0 or -EINVAL when an
 * offset does not fit the BPF copy buffers.
 */
int pyoffsets_to_bpf(const struct py_offsets *o, uint64_t interp_head_addr, struct pysamp_proc *out)
	__attribute__((warn_unused_result));

#endif /* PYSAMP_PYOFFSETS_H */
