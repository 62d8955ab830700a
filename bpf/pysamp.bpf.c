/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * pysamp.bpf.c - CPU-clock sampler that walks CPython frame chains in-kernel.
 *
 * on_cpu_sample runs on every perf_event tick of every CPU. When the
 * interrupted task belongs to a process in py_procs, it finds the thread's
 * PyThreadState (matching PyThreadState.thread_id against the task's thread
 * pointer) and tail-calls walk_python, which copies up to
 * PYSAMP_FRAMES_PER_PROG frames per run as (code object, instruction,
 * code fingerprint) and continues by tail call. The finished sample goes to
 * userspace through the samples ring buffer. No CPython version logic lives
 * here: every offset comes from struct pysamp_proc.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "pysamp_abi.h"
#include "core_fixes.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 cfg_debug = 0;
/* Report every exec on the host (--all), not only those of tracked processes. */
const volatile __u32 cfg_track_all = 0;

/*
 * tstates[tid]: the thread's PyThreadState, or 0 when a full scan found
 * none at miss_ns (a thread that is not a Python thread, e.g. a native
 * worker; it is scanned again after NOT_PYTHON_TTL_NS, since a C thread can
 * become a Python thread through PyGILState_Ensure).
 */
struct tstate_slot {
	__u64 tstate;
	__u64 miss_ns;
	__u32 pid;
	__u32 generation;
};

#define NOT_PYTHON_TTL_NS (1000ULL * 1000 * 1000)

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct pysamp_proc);
} py_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct tstate_slot);
} tstates SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pysamp_scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PYSAMP_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

#define RINGBUF_BYTES	   (8 << 20)
#define RINGBUF_WAKE_BYTES (RINGBUF_BYTES / 4)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RINGBUF_BYTES);
} samples SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 << 10);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, PYSAMP_NPROGS);
	__type(key, __u32);
	__type(value, __u32);
} walk_progs SEC(".maps");

#define dbg(fmt, ...)                                                                              \
	do {                                                                                       \
		if (cfg_debug)                                                                     \
			bpf_printk(fmt, ##__VA_ARGS__);                                            \
	} while (0)

static __always_inline void stat_add(__u32 which, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);

	if (v)
		*v += n;
}

static __always_inline void stat_inc(__u32 which)
{
	stat_add(which, 1);
}

/* Read a user pointer-sized word; 0 on failure with *err set. */
static __always_inline __u64 read_u64(__u64 addr, int *err)
{
	__u64 v = 0;

	if (bpf_probe_read_user(&v, sizeof(v), (const void *)addr)) {
		*err = 1;
		return 0;
	}
	return v;
}

/*
 * Fields of the object copied into s->obj. Offsets come from userspace:
 * pointers are 8-aligned and ints 4-aligned in every CPython layout, so the
 * low bits are dropped, which also bounds the index for the verifier.
 */
static __always_inline __u64 obj_u64(const struct pysamp_scratch *s, __u32 off)
{
	return s->obj[(off >> 3) & (PYSAMP_OBJ_BUF / 8 - 1)];
}

static __always_inline __u32 obj_u32(const struct pysamp_scratch *s, __u32 off)
{
	const __u32 *w = (const __u32 *)s->obj;

	return w[(off >> 2) & (PYSAMP_OBJ_BUF / 4 - 1)];
}

static __always_inline __u8 obj_u8(const struct pysamp_scratch *s, __u32 off)
{
	const __u8 *b = (const __u8 *)s->obj;

	return b[off & (PYSAMP_OBJ_BUF - 1)];
}

/*
 * The thread state cached for tid if it still belongs to thread pointer tp
 * (> 0), 0 when a scan is needed, -1 when tid is known not to be a Python
 * thread (counted).
 */
static __always_inline __s64 cached_tstate(const struct pysamp_proc *proc, __u32 pid, __u32 tid,
					   __u64 tp)
{
	struct tstate_slot *slot = bpf_map_lookup_elem(&tstates, &tid);
	int err = 0;

	if (!slot || slot->pid != pid || slot->generation != proc->generation)
		return 0;
	if (!slot->tstate) {
		if (bpf_ktime_get_ns() - slot->miss_ns >= NOT_PYTHON_TTL_NS)
			return 0;
		stat_inc(PYSAMP_STAT_NOT_PYTHON_CACHED);
		return -1;
	}
	if (read_u64(slot->tstate + proc->tstate_thread_id, &err) != tp || err)
		return 0;
	stat_inc(PYSAMP_STAT_TSTATE_CACHE_HIT);
	return (__s64)slot->tstate;
}

/* Position the thread-state scan at the first interpreter's first thread. */
static __always_inline int scan_init(struct pysamp_scratch *s, const struct pysamp_proc *proc,
				     __u64 tp)
{
	int err = 0;

	s->scan_interp = read_u64(proc->interp_head_addr, &err);
	if (err) {
		stat_inc(PYSAMP_STAT_INTERP_READ_FAIL);
		return -1;
	}
	if (!s->scan_interp) {
		stat_inc(PYSAMP_STAT_NO_TSTATE); /* interpreter not initialised (yet) */
		return -1;
	}
	s->scan_ts = read_u64(s->scan_interp + proc->interp_tstate_head, &err);
	if (err) {
		stat_inc(PYSAMP_STAT_INTERP_READ_FAIL);
		return -1;
	}
	s->scan_ninterp = 1;
	s->scan_tp = tp;
	s->scan_runs = 0;
	return 0;
}

/*
 * Advance the scan by up to PYSAMP_MAX_THREAD_SCAN thread states, following
 * interp->next into subinterpreters. Returns the thread state whose
 * thread_id is s->scan_tp, 0 when not found yet (s->scan_ts != 0: more to
 * scan) or at all, -1 on a read error (counted).
 *
 * Verifier workaround: the scan position lives in the scratch map, not in
 * registers, so that the verifier sees one state per iteration instead of
 * one per combination of earlier branch outcomes.
 */
static __always_inline __s64 scan_step(struct pysamp_scratch *s, const struct pysamp_proc *proc)
{
	__u64 v = 0;

	for (int i = 0; i < PYSAMP_MAX_THREAD_SCAN; i++) {
		__u64 ts = s->scan_ts;

		if (!ts) {
			if (s->scan_ninterp >= PYSAMP_MAX_INTERPS)
				return 0;
			s->scan_ninterp++;
			if (bpf_probe_read_user(&v, sizeof(v),
						(const void *)(s->scan_interp + proc->interp_next)))
				goto read_fail;
			if (!v)
				return 0;
			s->scan_interp = v;
			if (bpf_probe_read_user(&v, sizeof(v),
						(const void *)(v + proc->interp_tstate_head)))
				goto read_fail;
			s->scan_ts = v;
			continue;
		}
		if (bpf_probe_read_user(&v, sizeof(v), (const void *)(ts + proc->tstate_thread_id)))
			goto read_fail;
		if (v == s->scan_tp)
			return (__s64)ts;
		if (bpf_probe_read_user(&v, sizeof(v), (const void *)(ts + proc->tstate_next)))
			goto read_fail;
		s->scan_ts = v;
	}
	return 0;
read_fail:
	stat_inc(PYSAMP_STAT_TSTATE_READ_FAIL);
	return -1;
}

static __always_inline void emit(struct pysamp_scratch *s)
{
	__u32 n = s->hdr.nframes;
	__u64 size, flags = BPF_RB_NO_WAKEUP;

	if (n > PYSAMP_MAX_FRAMES)
		n = PYSAMP_MAX_FRAMES;
	size = sizeof(struct pysamp_sample) + (__u64)n * sizeof(struct pysamp_frame);
	/*
	 * Waking the consumer costs an irq_work (a self-IPI, a VM exit under
	 * virtualisation): measured at ~4.5 us per sample on a 6.18 guest,
	 * more than the whole walk. The agent polls on a timer instead, and
	 * is woken only when the buffer is a quarter full.
	 */
	if (bpf_ringbuf_query(&samples, BPF_RB_AVAIL_DATA) > RINGBUF_WAKE_BYTES)
		flags = BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&samples, &s->hdr, size, flags)) {
		stat_inc(PYSAMP_STAT_RINGBUF_FULL);
		return;
	}
	stat_inc(PYSAMP_STAT_EMITTED);
	stat_add(PYSAMP_STAT_FRAMES, n);
}

static __always_inline bool proc_config_ok(const struct pysamp_proc *p)
{
	return p->frame_read_size && p->frame_read_size <= PYSAMP_OBJ_BUF && p->code_read_size &&
	       p->code_read_size <= PYSAMP_OBJ_BUF && p->code_name >= p->code_read_off &&
	       p->code_filename >= p->code_read_off && p->code_linetable >= p->code_read_off &&
	       p->code_firstlineno >= p->code_read_off && p->frame_back <= PYSAMP_OBJ_BUF - 8 &&
	       p->frame_code <= PYSAMP_OBJ_BUF - 8 && p->frame_ip <= PYSAMP_OBJ_BUF - 8 &&
	       p->code_name <= PYSAMP_OBJ_BUF - 8 && p->code_filename <= PYSAMP_OBJ_BUF - 8 &&
	       p->code_linetable <= PYSAMP_OBJ_BUF - 8 &&
	       p->code_firstlineno <= PYSAMP_OBJ_BUF - 4 &&
	       (!(p->flags & PYSAMP_PF_OWNER) || p->frame_owner <= PYSAMP_OBJ_BUF - 1);
}

SEC("perf_event")
int walk_python(struct bpf_perf_event_data *ctx)
{
	const struct pysamp_proc *proc;
	struct pysamp_scratch *s;
	__u32 zero = 0, n, size;
	__u64 frame;

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s) {
		stat_inc(PYSAMP_STAT_NO_SCRATCH);
		return 0;
	}
	proc = bpf_map_lookup_elem(&py_procs, &s->hdr.pid);
	if (!proc) {
		/* The process left the table between the two programs. */
		stat_inc(PYSAMP_STAT_OTHER_PROC);
		return 0;
	}
	frame = s->frame;

	/*
	 * Verifier workaround: the frame count lives in the scratch map, not in
	 * a register. A register count is tracked precisely, so the paths that
	 * keep a frame and those that skip one never merge and every iteration
	 * doubles the states to explore; a value loaded from a map is unknown
	 * to the verifier, so the paths converge.
	 */
	for (int i = 0; i < PYSAMP_FRAMES_PER_PROG; i++) {
		struct pysamp_frame *out;
		__u64 code, ip, back, fp = 0;
		__u32 skip;

		if (!frame)
			break;
		size = proc->frame_read_size;
		if (size > PYSAMP_OBJ_BUF || size == 0)
			break; /* checked in on_cpu_sample; restated for the verifier */
		if (bpf_probe_read_user(s->obj, size, (const void *)frame)) {
			stat_inc(PYSAMP_STAT_FRAME_READ_FAIL);
			s->hdr.status = PYSAMP_STACK_ERROR;
			frame = 0;
			break;
		}
		back = obj_u64(s, proc->frame_back);
		code = obj_u64(s, proc->frame_code) & ~proc->code_tag_mask;
		ip = obj_u64(s, proc->frame_ip);
		/* Interpreter shim frames (owner >= owner_skip) carry no Python code. */
		skip = !code || ((proc->flags & PYSAMP_PF_OWNER) &&
				 obj_u8(s, proc->frame_owner) >= proc->owner_skip);
		if (!skip) {
			struct pysamp_fp_slot *slot =
				&s->fp_cache[(code >> 4) & (PYSAMP_FP_CACHE - 1)];
			__u32 base = proc->code_read_off;

			if (slot->tag == s->hdr.ktime_ns && slot->code == code) {
				fp = slot->fp;
			} else {
				size = proc->code_read_size;
				if (size > PYSAMP_OBJ_BUF || size == 0)
					break;
				if (bpf_probe_read_user(s->obj, size,
							(const void *)(code + base))) {
					stat_inc(PYSAMP_STAT_CODE_READ_FAIL);
				} else {
					fp = pysamp_code_fp(
						obj_u64(s, proc->code_name - base),
						obj_u64(s, proc->code_filename - base),
						obj_u64(s, proc->code_linetable - base),
						obj_u32(s, proc->code_firstlineno - base));
					slot->code = code;
					slot->fp = fp;
					slot->tag = s->hdr.ktime_ns;
				}
			}
		}
		n = s->hdr.nframes;
		if (n >= PYSAMP_MAX_FRAMES)
			break;
		out = &s->frames[n & (PYSAMP_MAX_FRAMES - 1)];
		out->code = code;
		out->ip = ip;
		out->code_fp = fp;
		s->hdr.nframes = n + (skip ? 0 : 1);
		frame = back;
	}
	n = s->hdr.nframes;
	s->frame = frame;
	s->runs++;

	if (frame && n < PYSAMP_MAX_FRAMES && s->runs < PYSAMP_MAX_TAIL_CALLS) {
		bpf_tail_call(ctx, &walk_progs, PYSAMP_PROG_WALK);
		stat_inc(PYSAMP_STAT_TAIL_CALL_FAIL);
		s->hdr.status = PYSAMP_STACK_ERROR;
	}
	if (frame && s->hdr.status == PYSAMP_STACK_COMPLETE) {
		s->hdr.status = PYSAMP_STACK_TRUNCATED;
		stat_inc(PYSAMP_STAT_TRUNCATED);
	}
	emit(s);
	return 0;
}

/*
 * Fill in the sample header for thread state ts and hand over to the walker.
 * Returns only when there is nothing to walk or the tail call failed.
 */
static __always_inline int start_walk(void *ctx, struct pysamp_scratch *s,
				      const struct pysamp_proc *proc, __u32 pid, __u32 tid, __u64 ts)
{
	__u64 frame;
	int err = 0;

	frame = read_u64(ts + proc->tstate_frame, &err);
	if (!err && frame && (proc->flags & PYSAMP_PF_CFRAME))
		frame = read_u64(frame + proc->cframe_current, &err);
	if (err) {
		stat_inc(PYSAMP_STAT_TSTATE_READ_FAIL);
		return 0;
	}
	if (!frame) {
		stat_inc(PYSAMP_STAT_NO_FRAME);
		return 0;
	}

	s->hdr.ktime_ns = bpf_ktime_get_ns();
	s->hdr.tstate = ts;
	s->hdr.pid = pid;
	s->hdr.tid = tid;
	s->hdr.cpu = bpf_get_smp_processor_id();
	s->hdr.nframes = 0;
	s->hdr.status = PYSAMP_STACK_COMPLETE;
	s->hdr.generation = proc->generation;
	s->frame = frame;
	s->runs = 0;
	dbg("pysamp: pid %u tid %u tstate %llx", pid, tid, ts);

	bpf_tail_call(ctx, &walk_progs, PYSAMP_PROG_WALK);
	stat_inc(PYSAMP_STAT_TAIL_CALL_FAIL);
	return 0;
}

/*
 * Continues on_cpu_sample when the thread's state is not cached: scans the
 * thread list PYSAMP_MAX_THREAD_SCAN entries per run, for up to
 * PYSAMP_MAX_SCAN_RUNS runs, then starts the walk.
 */
SEC("perf_event")
int scan_threads(struct bpf_perf_event_data *ctx)
{
	const struct pysamp_proc *proc;
	struct pysamp_scratch *s;
	struct tstate_slot fresh = {};
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id, zero = 0;
	__s64 ts;

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s) {
		stat_inc(PYSAMP_STAT_NO_SCRATCH);
		return 0;
	}
	proc = bpf_map_lookup_elem(&py_procs, &pid);
	if (!proc) {
		stat_inc(PYSAMP_STAT_OTHER_PROC);
		return 0;
	}
	ts = scan_step(s, proc);
	if (ts < 0)
		return 0;
	fresh.pid = pid;
	fresh.generation = proc->generation;
	if (ts > 0) {
		fresh.tstate = (__u64)ts;
		bpf_map_update_elem(&tstates, &tid, &fresh, BPF_ANY);
		return start_walk(ctx, s, proc, pid, tid, (__u64)ts);
	}
	if (s->scan_ts && ++s->scan_runs < PYSAMP_MAX_SCAN_RUNS) {
		bpf_tail_call(ctx, &walk_progs, PYSAMP_PROG_SCAN);
		stat_inc(PYSAMP_STAT_TAIL_CALL_FAIL);
		return 0;
	}
	/* Not a Python thread (or beyond the scan limit): do not rescan for a while. */
	fresh.miss_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&tstates, &tid, &fresh, BPF_ANY);
	stat_inc(s->scan_ts ? PYSAMP_STAT_THREAD_SCAN_LIMIT : PYSAMP_STAT_NO_TSTATE);
	return 0;
}

SEC("perf_event")
int on_cpu_sample(struct bpf_perf_event_data *ctx)
{
	const struct pysamp_proc *proc;
	struct pysamp_scratch *s;
	struct task_struct *task;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id, zero = 0;
	__u64 tp;
	__s64 ts;

	stat_inc(PYSAMP_STAT_TICKS);
	if (tid == 0) {
		stat_inc(PYSAMP_STAT_IDLE);
		return 0;
	}
	proc = bpf_map_lookup_elem(&py_procs, &pid);
	if (!proc) {
		stat_inc(PYSAMP_STAT_OTHER_PROC);
		return 0;
	}
	stat_inc(PYSAMP_STAT_TARGET);
	if (!proc_config_ok(proc)) {
		stat_inc(PYSAMP_STAT_BAD_CONFIG);
		return 0;
	}
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s) {
		stat_inc(PYSAMP_STAT_NO_SCRATCH);
		return 0;
	}

	task = (struct task_struct *)bpf_get_current_task();
	tp = task_thread_pointer(task);
	if (!tp) {
		stat_inc(PYSAMP_STAT_FSBASE_FAIL);
		return 0;
	}
	ts = cached_tstate(proc, pid, tid, tp);
	if (ts < 0)
		return 0;
	if (ts > 0)
		return start_walk(ctx, s, proc, pid, tid, (__u64)ts);
	if (scan_init(s, proc, tp))
		return 0;
	bpf_tail_call(ctx, &walk_progs, PYSAMP_PROG_SCAN);
	stat_inc(PYSAMP_STAT_TAIL_CALL_FAIL);
	return 0;
}

static __always_inline void send_event(__u32 type, __u32 pid, __u32 ppid)
{
	struct pysamp_event ev = {
		.ktime_ns = bpf_ktime_get_ns(),
		.type = type,
		.pid = pid,
		.ppid = ppid,
	};

	/* Lifecycle events are rare: wake the agent for each. */
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), 0))
		stat_inc(PYSAMP_STAT_EVENTS_LOST);
}

/*
 * A tracked process forked (gunicorn, multiprocessing, celery prefork): the
 * child has the same memory layout, so it is sampled from its first tick with
 * a copy of the parent's configuration; the agent hears of it by event.
 */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 cpid = BPF_CORE_READ(child, pid);
	const struct pysamp_proc *proc;
	struct pysamp_proc copy;

	if (cpid != (__u32)BPF_CORE_READ(child, tgid))
		return 0; /* a new thread, not a new process */
	proc = bpf_map_lookup_elem(&py_procs, &ptgid);
	if (!proc)
		return 0;
	__builtin_memcpy(&copy, proc, sizeof(copy));
	if (bpf_map_update_elem(&py_procs, &cpid, &copy, BPF_NOEXIST) == 0)
		send_event(PYSAMP_EV_FORK, cpid, ptgid);
	return 0;
}

/* A new program: a tracked process's layout is void; --all wants every exec. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	bool tracked = bpf_map_delete_elem(&py_procs, &tgid) == 0;

	if (tracked || cfg_track_all)
		send_event(PYSAMP_EV_EXEC, tgid, 0);
	return 0;
}

/*
 * --all: a process that is not profiled maps a file named libpython*
 * executable - a program that loads the interpreter late with dlopen (no exec
 * to notice). The syscall tracepoint fires on mmap calls only; the file is
 * found from the descriptor (current->files->fdt->fd[fd]).
 */
SEC("tracepoint/syscalls/sys_enter_mmap")
int on_mmap(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct task_struct *task;
	struct fdtable *fdt;
	struct file **fds, *file = NULL;
	const unsigned char *name;
	unsigned long prot = ctx->args[2];
	long fd = (long)ctx->args[4];
	char buf[12] = {};

	if (!cfg_track_all || fd < 0 || !(prot & 0x4 /* PROT_EXEC */))
		return 0;
	if (bpf_map_lookup_elem(&py_procs, &tgid))
		return 0;
	task = bpf_get_current_task_btf();
	fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd >= (long)BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	name = BPF_CORE_READ(file, f_path.dentry, d_name.name);
	if (bpf_probe_read_kernel_str(buf, sizeof(buf), name) < 10)
		return 0;
	if (buf[0] != 'l' || buf[1] != 'i' || buf[2] != 'b' || buf[3] != 'p' || buf[4] != 'y' ||
	    buf[5] != 't' || buf[6] != 'h' || buf[7] != 'o' || buf[8] != 'n')
		return 0;
	send_event(PYSAMP_EV_PYLIB, tgid, 0);
	return 0;
}

/* The thread-group leader of a tracked process exits: stop sampling it. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	__u32 pid = BPF_CORE_READ(p, pid), tgid = BPF_CORE_READ(p, tgid);

	if (pid != tgid)
		return 0;
	if (bpf_map_delete_elem(&py_procs, &tgid) == 0)
		send_event(PYSAMP_EV_EXIT, tgid, 0);
	return 0;
}
