/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pyproc.h - one profiled CPython process: where its interpreter lives, which
 * version it is, the layout to walk it with, and its symbol caches.
 *
 * Detection reads ELF symbols and mapped files only, never the process name:
 * a renamed interpreter or a program embedding libpython is found the same
 * way. The version is decided by an ordered list of fallbacks:
 *   1. _Py_DebugOffsets at _PyRuntime in process memory (3.13+)
 *   2. Py_Version (3.11+), from process memory or the file
 *   3. the libpythonX.Y name of the mapped library
 *   4. which C API symbols the object defines
 */
#ifndef PYSAMP_PYPROC_H
#define PYSAMP_PYPROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/types.h>

#include "pysamp_abi.h"
#include "pyoffsets.h"

struct pyproc {
	pid_t pid;
	char comm[32];		    /* /proc/PID/comm at attach time */
	char path[512];		    /* object holding the interpreter, as in maps */
	uint64_t bias;		    /* load bias of that object */
	uint32_t version_hex;	    /* PY_VERSION_HEX, or major/minor only (0xMMmm0000) */
	const char *version_source; /* which fallback decided the version (static string) */
	/* Type object addresses, to tell live objects from freed memory (0 = unknown). */
	uint64_t type_code;	   /* PyCode_Type */
	uint64_t type_str;	   /* PyUnicode_Type (3.x) / PyString_Type (2.7) */
	uint64_t type_bytes;	   /* PyBytes_Type (3.x) / PyString_Type (2.7) */
	struct py_offsets off;	   /* layout in use (copied from a table or debug offsets) */
	uint64_t interp_head_addr; /* address of the PyInterpreterState * heading the list */
	struct pysamp_proc bpf;	   /* walk configuration for the py_procs map */
	uint64_t exe_dev;	   /* identity of /proc/PID/exe at inspection, */
	uint64_t exe_ino;	   /* to notice an exec */
};

/*
 * Inspect process pid. On success returns a new object (free with
 * pyproc__free). On failure returns NULL with errno set (ESRCH: no such
 * process; ENOEXEC: no CPython interpreter found; ENOTSUP: a CPython this
 * build cannot walk; EACCES/EPERM: not allowed) and a one-line reason in why.
 */
struct pyproc *pyproc__new(pid_t pid, char *why, size_t whylen);

/*
 * Files known not to hold an interpreter, by (device, inode) as /proc/PID/maps gives them, so
 * that an exec storm of non-Python programs (each inspected a few times after its exec) does
 * not parse libc's and every other library's symbol table again and again. Bounded: past
 * PYPROC_VERDICTS_MAX entries it starts over. Owned by the caller; not thread-safe.
 */
#define PYPROC_VERDICTS_MAX 4096

struct pyproc_verdicts {
	struct pyproc_verdict_key {
		uint64_t inode;
		uint32_t dev_major, dev_minor;
	} *v; /* open addressing, inode 0 = empty */
	size_t cap, n;
	uint64_t hits, misses;
};

/* Release the table; v may be reused (it is a zeroed value when initialised). */
void pyproc_verdicts_release(struct pyproc_verdicts *v);

/*
 * As pyproc__new, skipping the mapped files verdicts says hold no interpreter and recording
 * the ones found to hold none. verdicts may be NULL.
 */
struct pyproc *pyproc__new_cached(pid_t pid, struct pyproc_verdicts *verdicts, char *why,
				  size_t whylen);

/*
 * The description of child, a fork of the process parent describes (same
 * memory layout). NULL with errno on failure. Free with pyproc__free.
 */
struct pyproc *pyproc__fork(const struct pyproc *parent, pid_t child);

/* Free; accepts NULL. */
void pyproc__free(struct pyproc *pp);

/* true while the process exists and is not a zombie. */
bool pyproc__alive(const struct pyproc *pp);

/*
 * true when the process has exec'd another program since pyproc__new (its
 * /proc/PID/exe is another file): its layout must be inspected again.
 */
bool pyproc__execed(const struct pyproc *pp);

#endif /* PYSAMP_PYPROC_H */
