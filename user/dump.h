/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dump.h - "pysamp-bpf dump": a one-shot snapshot of every thread's Python stack.
 *
 * Reads the target entirely from userspace with process_vm_readv (no BPF, no ptrace, the
 * process is not stopped), with the layout pyproc/pyoffsets give the BPF sampler: the
 * interpreter list, each PyThreadState, and its frame chain walked the way bpf/pysamp.bpf.c
 * walks it (f_back / previous, shim frames skipped by their owner byte, 3.14 tag bits
 * cleared). Frames are symbolized by the symbolizer the agent uses. The target keeps running
 * and is untrusted: every loop is bounded, every pointer checked, and a frame that cannot be
 * read becomes an unreadable frame instead of failing the dump.
 */
#ifndef PYSAMP_DUMP_H
#define PYSAMP_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct stacks;

/* Bounds on what one dump reads from the target. */
#define DUMP_MAX_THREADS      8192	 /* thread states, all interpreters together */
#define DUMP_MAX_FRAMES	      8192	 /* Python frames kept per thread (innermost) */
#define DUMP_MAX_TOTAL_FRAMES (1u << 20) /* Python frames kept per dump */
#define DUMP_MAX_TASKS	      65536	 /* kernel threads of the process looked at */

/* What the kernel says a thread is doing (from /proc/PID/task/TID/stat). */
enum dump_state {
	DUMP_STATE_UNKNOWN = 0, /* its kernel thread was not found */
	DUMP_STATE_IDLE,	/* sleeping or blocked (state S, D, T, ...) */
	DUMP_STATE_ACTIVE,	/* running or runnable (state R) */
};

struct dump_frame {
	uint32_t name; /* label id in dump.strings: co_qualname (3.11+) or co_name */
	uint32_t file; /* label id: co_filename */
	int32_t line;
	bool unreadable; /* frame or code object could not be read: name/file/line unset */
};

struct dump_thread {
	uint64_t tstate;    /* PyThreadState address */
	uint64_t thread_id; /* PyThreadState.thread_id (pthread_self(), threading.get_ident()) */
	pid_t tid;	    /* kernel thread id as the host sees it, 0 when unknown */
	pid_t ns_tid;	    /* the same in the target's PID namespace, 0 when unknown */
	char os_name[64];   /* kernel thread name (comm), raw bytes, NUL-terminated; "" unknown */
	char os_state;	    /* kernel state letter ('R', 'S', ...), 0 when unknown */
	enum dump_state state;
	bool main;	 /* the process's initial thread (tid == pid) */
	int gil;	 /* 1 holds the GIL, 0 does not, -1 unknown for this version/moment */
	uint32_t interp; /* 0 for the main interpreter, 1.. for subinterpreters */
	struct dump_frame *frames; /* innermost first */
	size_t nframes;
	bool truncated; /* deeper than DUMP_MAX_FRAMES (or the dump's budget): outer frames cut */
};

struct dump {
	pid_t pid;
	char comm[32];		     /* process name */
	char python[32];	     /* "3.12.1", or "3.9" when only major.minor are known */
	char path[512];		     /* object holding the interpreter */
	struct stacks *strings;	     /* interned names and files (owned) */
	struct dump_thread *threads; /* oldest first: the main thread leads */
	size_t nthreads;
	uint32_t ninterps;
	bool threads_truncated; /* more than DUMP_MAX_THREADS thread states */
};

/*
 * Snapshot every thread of process pid. Returns a new dump (free with dump__free), or NULL
 * with errno set and a one-line reason in why (whylen bytes): ESRCH no such process, or it
 * exited during the dump; ENOEXEC no CPython in it; ENOTSUP a CPython this build cannot walk;
 * EACCES/EPERM not allowed to read it; ENOENT no interpreter state (not initialised yet, or
 * finalised); ENOMEM. Keeps no state between calls: separate calls may run concurrently.
 */
struct dump *dump__new(pid_t pid, char *why, size_t whylen);

/* Free; accepts NULL. */
void dump__free(struct dump *d);

/*
 * The text of a frame's name or file id (borrowed from d, valid until dump__free), its length
 * in *len when len is non-NULL; "" for an id d does not hold. Check dump_frame.unreadable
 * first: an unreadable frame's ids mean nothing.
 */
const char *dump__str(const struct dump *d, uint32_t id, size_t *len);

/*
 * Print d like a Python traceback: a "Process" line, then per thread a header
 * `Thread TID (idle|active) "name" [main] [holds GIL]` and `  File "path", line N, in name`
 * lines, outermost first, innermost last. Control characters and invalid UTF-8 are written
 * as \xNN, so the output is valid UTF-8. Returns 0 or -errno (EIO when f fails).
 */
int dump__write_text(const struct dump *d, FILE *f) __attribute__((warn_unused_result));

/*
 * Print d as one JSON object (json-c): {"pid", "python", "comm", "path", "threads": [{"tid",
 * "ns_tid", "thread_id", "main", "name", "state", "os_state", "gil", "interpreter",
 * "truncated", "frames": [{"name", "file", "line"}, ... innermost last]}]}. Unknown values are
 * null; an unreadable frame is {"name": "<unreadable frame>", "file": null, "line": null}.
 * Strings are valid UTF-8 (invalid bytes become U+FFFD). Returns 0 or -errno.
 */
int dump__write_json(const struct dump *d, FILE *f) __attribute__((warn_unused_result));

/*
 * The "pysamp-bpf dump" command: argv[0] is "dump", then -p/--pid PID, --json, -v,
 * -h/--help. Prints the dump to stdout, errors to stderr. Returns the exit status: 0 on
 * success, 1 on any failure. Uses getopt_long (resets optind); not thread-safe.
 */
int dump_main(int argc, char **argv);

#endif /* PYSAMP_DUMP_H */
