/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pysamp_abi.h - the contract between the BPF sampler and the agent.
 *
 * Compiled by both clang -target bpf (after vmlinux.h) and the host compiler
 * (after <linux/types.h>). Includes nothing itself. Fixed-width fields only,
 * explicit padding, a size assertion per struct; bump PYSAMP_ABI_VERSION on
 * any layout change.
 *
 * The BPF side knows no CPython version: userspace fills one
 * struct pysamp_proc per target process with flat offsets and flags.
 */
#ifndef PYSAMP_ABI_H
#define PYSAMP_ABI_H

#define PYSAMP_ABI_VERSION 6

/*
 * Tail-call budget (the kernel allows 33 per chain): on_cpu_sample -> up to
 * PYSAMP_MAX_SCAN_RUNS scan_threads runs -> up to PYSAMP_MAX_TAIL_CALLS
 * walk_python runs, so 16 + 16 = 32 calls at most.
 */

/* Frames walked by one program run; the walk continues by tail call. */
#define PYSAMP_FRAMES_PER_PROG 64
/* Walker runs per sample (one entry program plus this many tail calls). */
#define PYSAMP_MAX_TAIL_CALLS 16
/* Frames kept per sample; deeper stacks are cut at the root end. */
#define PYSAMP_MAX_FRAMES (PYSAMP_FRAMES_PER_PROG * PYSAMP_MAX_TAIL_CALLS)
/* Thread states examined per scan run, and scan runs per sample (tail calls). */
#define PYSAMP_MAX_THREAD_SCAN 256
#define PYSAMP_MAX_SCAN_RUNS 16
/* Interpreters followed through interp->next (subinterpreters). */
#define PYSAMP_MAX_INTERPS 8
/* Bytes of a frame / code object copied in one read (offsets must fit). */
#define PYSAMP_OBJ_BUF 256
/* Marker for "this field does not exist in this version". */
#define PYSAMP_OFF_NONE 0xffffffffu

/* Code fingerprints remembered within one sample (a power of two). */
#define PYSAMP_FP_CACHE 8

/* Tail-call slots in the walk_progs prog array. */
#define PYSAMP_PROG_WALK 0
#define PYSAMP_PROG_SCAN 1
#define PYSAMP_NPROGS 2

/* struct pysamp_proc.flags */
#define PYSAMP_PF_CFRAME (1u << 0) /* tstate->frame points to a _PyCFrame (3.11, 3.12) */
#define PYSAMP_PF_OWNER	 (1u << 1) /* frames carry an owner byte; skip owner >= owner_skip */

/* How a sample's stack walk ended. */
enum pysamp_stack_status {
	PYSAMP_STACK_COMPLETE = 0,  /* walked to the root frame */
	PYSAMP_STACK_TRUNCATED = 1, /* deeper than PYSAMP_MAX_FRAMES; root end cut */
	PYSAMP_STACK_ERROR = 2,	    /* a read failed mid-walk; frames so far kept */
};

/* Per-CPU counters in the stats map; every early return bumps one. */
enum pysamp_stat {
	PYSAMP_STAT_TICKS = 0,	       /* program runs (all tasks) */
	PYSAMP_STAT_IDLE,	       /* the interrupted task was the idle task */
	PYSAMP_STAT_OTHER_PROC,	       /* the task is not a target */
	PYSAMP_STAT_TARGET,	       /* runs on a target task */
	PYSAMP_STAT_NO_SCRATCH,	       /* per-CPU scratch lookup failed */
	PYSAMP_STAT_FSBASE_FAIL,       /* could not read task->thread.fsbase */
	PYSAMP_STAT_INTERP_READ_FAIL,  /* reading the interpreter list failed */
	PYSAMP_STAT_TSTATE_READ_FAIL,  /* reading a thread state failed */
	PYSAMP_STAT_NO_TSTATE,	       /* thread has no PyThreadState (not a Python thread) */
	PYSAMP_STAT_THREAD_SCAN_LIMIT, /* more than PYSAMP_MAX_THREAD_SCAN thread states */
	PYSAMP_STAT_TSTATE_CACHE_HIT,  /* tid -> tstate cache hit (informational) */
	PYSAMP_STAT_NOT_PYTHON_CACHED, /* thread known to have no tstate (recent scan) */
	PYSAMP_STAT_NO_FRAME,	       /* Python thread with no Python frame (informational) */
	PYSAMP_STAT_FRAME_READ_FAIL,   /* reading a frame failed: stack cut, status ERROR */
	PYSAMP_STAT_CODE_READ_FAIL,    /* reading a code object failed: frame kept unverified */
	PYSAMP_STAT_BAD_CONFIG,	       /* an offset from userspace is out of range */
	PYSAMP_STAT_TAIL_CALL_FAIL,    /* bpf_tail_call returned: stack emitted as ERROR */
	PYSAMP_STAT_TRUNCATED,	       /* stack deeper than PYSAMP_MAX_FRAMES */
	PYSAMP_STAT_RINGBUF_FULL,      /* bpf_ringbuf_output failed: sample lost */
	PYSAMP_STAT_EMITTED,	       /* samples handed to userspace */
	PYSAMP_STAT_FRAMES,	       /* frames handed to userspace */
	PYSAMP_STAT_EVENTS_LOST,       /* events ring buffer full: a lifecycle event lost */
	PYSAMP_STAT_MAX,
};

/*
 * Per-process walk configuration, py_procs[tgid]. Offsets are bytes from the
 * start of the named CPython struct; PYSAMP_OFF_NONE when absent.
 */
struct pysamp_proc {
	__u64 interp_head_addr;	  /* address of the PyInterpreterState * that heads the list */
	__u64 code_tag_mask;	  /* bits cleared from the code pointer (3.14 stackrefs) */
	__u32 flags;		  /* PYSAMP_PF_* */
	__u32 generation;	  /* bumped by userspace when the entry is replaced */
	__u32 interp_next;	  /* PyInterpreterState.next */
	__u32 interp_tstate_head; /* PyInterpreterState.tstate_head / threads.head */
	__u32 tstate_next;	  /* PyThreadState.next */
	__u32 tstate_thread_id;	  /* PyThreadState.thread_id (pthread_self == fsbase) */
	__u32 tstate_frame;	  /* .frame / .cframe / .current_frame */
	__u32 cframe_current;	  /* _PyCFrame.current_frame (with PYSAMP_PF_CFRAME) */
	__u32 frame_back;	  /* f_back / previous */
	__u32 frame_code;	  /* f_code / f_executable */
	__u32 frame_ip;		  /* f_lasti (int) / prev_instr / instr_ptr (8 bytes read) */
	__u32 frame_owner;	  /* owner byte (with PYSAMP_PF_OWNER) */
	__u32 frame_read_size;	  /* bytes of a frame read at once, <= PYSAMP_OBJ_BUF */
	__u32 owner_skip;	  /* frames with owner >= this are interpreter shims */
	__u32 code_filename;	  /* co_filename */
	__u32 code_name;	  /* co_name */
	__u32 code_firstlineno;	  /* co_firstlineno (int) */
	__u32 code_linetable;	  /* co_lnotab / co_linetable */
	__u32 code_read_size;	  /* bytes of a code object read at once, <= PYSAMP_OBJ_BUF */
	__u32 code_read_off;	  /* ... starting at this offset (code_* offsets are absolute) */
};

/* One frame of a sample, leaf first. */
struct pysamp_frame {
	__u64 code;    /* PyCodeObject address */
	__u64 ip;      /* raw f_lasti (low 32 bits) or instruction pointer */
	__u64 code_fp; /* pysamp_code_fp() at sample time, 0 if unread */
};

/* Process lifecycle events (events ring buffer). */
enum pysamp_event_type {
	PYSAMP_EV_EXEC = 1, /* pid exec'd a new program (its py_procs entry, if any, is gone) */
	PYSAMP_EV_FORK = 2, /* tracked ppid forked pid; py_procs[pid] copied from the parent */
	PYSAMP_EV_EXIT = 3, /* tracked pid exited; its py_procs entry is gone */
	PYSAMP_EV_PYLIB = 4, /* untracked pid mapped a libpython* file executable (dlopen) */
};

struct pysamp_event {
	__u64 ktime_ns;
	__u32 type; /* enum pysamp_event_type */
	__u32 pid;  /* tgid, init namespace */
	__u32 ppid; /* parent tgid (FORK) */
	__u32 pad0;
};

_Static_assert(sizeof(struct pysamp_event) == 24, "pysamp_event layout");

/* Header of one ring buffer record; nframes struct pysamp_frame follow. */
struct pysamp_sample {
	__u64 ktime_ns; /* bpf_ktime_get_ns() */
	__u64 tstate;	/* PyThreadState address */
	__u32 pid;	/* tgid, init namespace */
	__u32 tid;	/* thread id, init namespace */
	__u32 cpu;
	__u32 nframes;
	__u32 status;	  /* enum pysamp_stack_status */
	__u32 generation; /* struct pysamp_proc.generation used */
};

/* A code object already fingerprinted in the sample tagged `tag`. */
struct pysamp_fp_slot {
	__u64 code;
	__u64 fp;
	__u64 tag;
};

/* Per-CPU working space for one sample (too large for the BPF stack). */
struct pysamp_scratch {
	struct pysamp_sample hdr;
	struct pysamp_frame frames[PYSAMP_MAX_FRAMES];
	__u64 frame;		       /* next frame to walk */
	__u32 runs;		       /* walker runs so far */
	__u32 scan_ninterp; /* thread-state scan: interpreters visited */
	__u64 scan_interp;  /* thread-state scan: current interpreter */
	__u64 scan_ts;	    /* thread-state scan: next thread state */
	__u64 scan_tp;	    /* thread-state scan: the thread pointer looked for */
	__u32 scan_runs;    /* thread-state scan: runs so far */
	__u32 pad1;
	__u64 obj[PYSAMP_OBJ_BUF / 8]; /* copy of the current frame / code object */
	/*
	 * Fingerprints of code objects met earlier in this same walk (recursion
	 * repeats them). Valid only within one sample: every code object on a
	 * live frame chain is referenced by its frame and cannot be freed while
	 * the thread is interrupted, so no reuse can happen inside one walk.
	 */
	struct pysamp_fp_slot fp_cache[PYSAMP_FP_CACHE];
};

_Static_assert(sizeof(struct pysamp_proc) == 96, "pysamp_proc layout");
_Static_assert(sizeof(struct pysamp_frame) == 24, "pysamp_frame layout");
_Static_assert(sizeof(struct pysamp_sample) == 40, "pysamp_sample layout");

/*
 * Fingerprint of a code object taken from fields that differ between two
 * code objects that happen to reuse one address: name and file objects, line
 * table object and first line. Same function on both sides so that userspace
 * can tell whether the object it reads now is the one the sample saw.
 */
static inline __u64 pysamp_code_fp(__u64 name, __u64 filename, __u64 linetable, __u32 firstlineno)
{
	__u64 h = 0xcbf29ce484222325ULL;

	h = (h ^ name) * 0x100000001b3ULL;
	h = (h ^ filename) * 0x100000001b3ULL;
	h = (h ^ linetable) * 0x100000001b3ULL;
	h = (h ^ firstlineno) * 0x100000001b3ULL;
	return h ? h : 1;
}

#endif /* PYSAMP_ABI_H */
