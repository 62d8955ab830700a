/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dump.c - "pysamp-bpf dump": every thread's current Python stack, read from userspace.
 *
 * The walk is the BPF sampler's (bpf/pysamp.bpf.c scan_threads and walk_python) done with
 * process_vm_readv and the same struct py_offsets: interpreter list -> thread states ->
 * frame chain, shim frames skipped by their owner byte, 3.14 tag bits cleared from the code
 * pointer. Each frame is symbolized by the agent's symbolizer, given the fingerprint BPF
 * would have taken, so a code object that changes while it is read is refused the same way.
 *
 * Beyond what BPF needs, a dump also says which kernel thread each thread state is (glibc's
 * struct pthread holds the TID), what the kernel says it is doing, and who holds the GIL; the
 * version knowledge for the GIL sits in one table below, apart from the rest.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "dump.h"
#include "elfsym.h"
#include "log.h"
#include "procmaps.h"
#include "pyproc.h"
#include "remote.h"
#include "stacks.h"
#include "symbolize.h"
#include "util.h"

#define NONE PYSAMP_OFF_NONE

/* Bytes of a name kept, as symbolize.c keeps them (SYM_NAME_MAX), so both truncate alike. */
#define NAME_BYTES 512
/* Frame-chain steps per thread: shim frames come at most one per Python frame. */
#define WALK_STEPS (2 * DUMP_MAX_FRAMES + 64)
/* Slots of an address set: a power of two, over twice what one walk inserts. */
#define SET_BITS  16
#define SET_SLOTS (1u << SET_BITS)
/* Largest x86_64 user-space address + 1. */
#define USER_ADDR_END (1ULL << 47)

#define UNREADABLE "<unreadable frame>"

_Static_assert(SET_SLOTS >= 2 * WALK_STEPS, "address set too small for a frame walk");
_Static_assert(SET_SLOTS >= 2 * (DUMP_MAX_THREADS + PYSAMP_MAX_INTERPS), "address set too small");

/* ---- small helpers ---- */

static uint64_t get64(const uint8_t *buf, uint32_t off)
{
	uint64_t v;

	memcpy(&v, buf + off, sizeof(v));
	return v;
}

/* A plausible pointer to a CPython struct: user space, 8-aligned. */
static bool ptr_ok(uint64_t p)
{
	return p >= 4096 && p < USER_ADDR_END && (p & 7) == 0;
}

/* Read a small /proc file into buf (NUL-terminated); its length or -errno (-ESRCH if gone). */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	do {
		n = read(fd, buf, size - 1);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		n = errno == ESRCH ? -ESRCH : -errno;
	else
		buf[n] = '\0';
	close(fd);
	return n;
}

/*
 * Set of addresses seen during one walk, to stop at a cycle in a corrupt or changing list.
 * Slots of an older epoch are empty, so starting a new walk costs nothing. A walk must
 * insert fewer than SET_SLOTS / 2 addresses (the callers' step bounds ensure it).
 */
struct addrset_slot {
	uint64_t addr;
	uint32_t epoch;
};

struct addrset {
	struct addrset_slot *v;
	uint32_t epoch;
};

static int addrset_init(struct addrset *s)
{
	s->v = calloc(SET_SLOTS, sizeof(*s->v));
	s->epoch = 1;
	return s->v ? 0 : -ENOMEM;
}

static void addrset_release(struct addrset *s)
{
	free(s->v);
	s->v = NULL;
}

static void addrset_restart(struct addrset *s)
{
	if (++s->epoch == 0) {
		memset(s->v, 0, SET_SLOTS * sizeof(*s->v));
		s->epoch = 1;
	}
}

/* true when addr was seen in this walk; records it otherwise. */
static bool addrset_seen(struct addrset *s, uint64_t addr)
{
	size_t i = (size_t)((addr * 0x9e3779b97f4a7c15ULL) >> (64 - SET_BITS));

	for (;; i = (i + 1) & (SET_SLOTS - 1)) {
		struct addrset_slot *slot = &s->v[i];

		if (slot->epoch != s->epoch) {
			slot->addr = addr;
			slot->epoch = s->epoch;
			return false;
		}
		if (slot->addr == addr)
			return true;
	}
}

/* ---- the process's kernel threads ---- */

struct task {
	pid_t tid;    /* host */
	pid_t ns_tid; /* in the target's PID namespace (== tid without one) */
	char state;
	char comm[64];
};

struct tasks {
	struct task *v;
	size_t n;
};

/* The last number of the "NSpid:" line of a status file, 0 when absent. */
static pid_t nspid_last(const char *status)
{
	const char *p = strstr(status, "\nNSpid:");
	unsigned long v = 0;

	if (!p)
		return 0;
	p += strlen("\nNSpid:");
	while (*p && *p != '\n') {
		char *end;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p < '0' || *p > '9')
			break;
		v = strtoul(p, &end, 10);
		p = end;
	}
	return v > 0 && v <= INT_MAX ? (pid_t)v : 0;
}

/* Whether the process lives in a PID namespace of its own (its NSpid has several ids). */
static bool in_pid_namespace(pid_t pid)
{
	char path[64], buf[4096];
	const char *p;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return false;
	p = strstr(buf, "\nNSpid:");
	if (!p)
		return false;
	p += strlen("\nNSpid:");
	p += strspn(p, " \t");
	p += strspn(p, "0123456789"); /* the id in our namespace */
	p += strspn(p, " \t");
	return *p >= '0' && *p <= '9'; /* and one in another */
}

/*
 * "TID (comm) S ..." from a stat file: comm may hold anything, ')' included, so it ends at
 * the last ')'. Returns false for a malformed line.
 */
static bool parse_stat(const char *buf, struct task *t)
{
	const char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
	size_t n;

	if (!open_paren || !close_paren || close_paren < open_paren || close_paren[1] != ' ' ||
	    !close_paren[2])
		return false;
	n = (size_t)(close_paren - open_paren - 1);
	if (n >= sizeof(t->comm))
		n = sizeof(t->comm) - 1;
	memcpy(t->comm, open_paren + 1, n);
	t->comm[n] = '\0';
	t->state = close_paren[2];
	return true;
}

static int task_cmp(const void *a, const void *b)
{
	const struct task *x = a, *y = b;

	return (x->ns_tid > y->ns_tid) - (x->ns_tid < y->ns_tid);
}

/* Every kernel thread of pid (at most DUMP_MAX_TASKS), sorted by ns_tid. 0 or -errno. */
static int tasks_read(struct tasks *ts, pid_t pid)
{
	bool nspid = in_pid_namespace(pid);
	char path[96], buf[4096];
	struct dirent *de;
	size_t cap = 0;
	DIR *dir;

	ts->v = NULL;
	ts->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((de = readdir(dir)) != NULL && ts->n < DUMP_MAX_TASKS) {
		struct task t = { 0 };
		uint32_t tid;

		if (parse_u32(de->d_name, 1, INT_MAX, &tid))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%u/stat", (int)pid, tid);
		if (read_small(path, buf, sizeof(buf)) <= 0 || !parse_stat(buf, &t))
			continue; /* exited meanwhile */
		t.tid = (pid_t)tid;
		t.ns_tid = t.tid;
		if (nspid) {
			snprintf(path, sizeof(path), "/proc/%d/task/%u/status", (int)pid, tid);
			if (read_small(path, buf, sizeof(buf)) <= 0)
				continue;
			t.ns_tid = nspid_last(buf);
			if (!t.ns_tid)
				continue;
		}
		if (ts->n == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			struct task *nv = realloc(ts->v, ncap * sizeof(*nv));

			if (!nv) {
				closedir(dir);
				free(ts->v);
				ts->v = NULL;
				ts->n = 0;
				return -ENOMEM;
			}
			ts->v = nv;
			cap = ncap;
		}
		ts->v[ts->n++] = t;
	}
	closedir(dir);
	if (ts->n)
		qsort(ts->v, ts->n, sizeof(*ts->v), task_cmp);
	return 0;
}

static const struct task *tasks_find(const struct tasks *ts, pid_t ns_tid)
{
	struct task key = { .ns_tid = ns_tid };

	if (!ts->n || ns_tid <= 0)
		return NULL;
	return bsearch(&key, ts->v, ts->n, sizeof(*ts->v), task_cmp);
}

/*
 * The kernel thread id behind a thread state, in the target's PID namespace, 0 when it cannot
 * be told. PyThreadState.thread_id is pthread_self(), the address of the thread's glibc
 * struct pthread. On x86_64 its tcbhead_t starts with tcb and dtv, then self == that address
 * at +0x10 (checked, so another libc gives 0), and the kernel TID is at +0x2d0: glibc's own
 * THREAD_GETMEM(THREAD_SELF, tid), "mov %fs:0x2d0" in raise() and pthread_kill() for many
 * releases; measured on glibc 2.36 (see the reference's cpython-offsets/tables/glibc.txt for
 * the header). The result is used only when that TID is one of the process's threads.
 */
#define GLIBC_TCB_SELF	  0x10
#define GLIBC_PTHREAD_TID 0x2d0

static pid_t thread_ns_tid(pid_t pid, uint64_t thread_id)
{
#if defined(__x86_64__)
	uint64_t self = 0;
	uint32_t tid = 0;

	if (!ptr_ok(thread_id) || remote_read_u64(pid, thread_id + GLIBC_TCB_SELF, &self) ||
	    self != thread_id || remote_read_u32(pid, thread_id + GLIBC_PTHREAD_TID, &tid))
		return 0;
	return tid > 0 && tid <= INT_MAX ? (pid_t)tid : 0;
#else
	(void)pid;
	(void)thread_id;
	return 0;
#endif
}

/*
 * ---- Who holds the GIL: version knowledge kept apart (it belongs in pyoffsets.c) ----
 *
 * 2.7 and 3.6 record the holder in the exported _PyThreadState_Current (NULL while the GIL is
 * free). From 3.7 the GIL is a struct _gil_runtime_state {unsigned long interval; PyThreadState
 * *last_holder; int locked; ...} (last_holder at 8 and locked at 16 in every version, measured
 * for 3.7-3.13): inside _PyRuntime up to 3.11, then per interpreter behind the pointer
 * interp->ceval.gil (PEP 684, 3.12), whose offset 3.13+ publish in _Py_DebugOffsets. Offsets
 * measured on the interpreters of shared/reference/cpython-frames.md (tables/<version>.txt);
 * py-spy's tables say 3.7.0-3.7.3 differ, which is why every holder is checked to be a live
 * thread state of the process before it is believed.
 */
enum gil_where {
	GIL_UNKNOWN = 0,
	GIL_CURRENT_SYMBOL, /* PyThreadState *_PyThreadState_Current */
	GIL_RUNTIME,	    /* _PyRuntime + off is the GIL struct */
	GIL_INTERP_POINTER, /* *(interp + off) is the GIL struct */
	GIL_DEBUG_OFFSETS,  /* as GIL_INTERP_POINTER, off from _Py_DebugOffsets */
};

static const struct gil_layout {
	uint32_t major, minor;
	enum gil_where where;
	uint32_t off;
} gil_layouts[] = {
	{ 2, 7, GIL_CURRENT_SYMBOL, 0 },
	{ 3, 6, GIL_CURRENT_SYMBOL, 0 }, /* an _Py_atomic_address */
	{ 3, 7, GIL_RUNTIME, 1264 },	 /* _PyRuntimeState.ceval.gil */
	{ 3, 8, GIL_RUNTIME, 1152 },
	{ 3, 9, GIL_RUNTIME, 352 },
	{ 3, 10, GIL_RUNTIME, 352 },
	{ 3, 11, GIL_RUNTIME, 360 },
	{ 3, 12, GIL_INTERP_POINTER, 384 }, /* PyInterpreterState.ceval.gil */
	{ 3, 13, GIL_DEBUG_OFFSETS, 112 },  /* _Py_DebugOffsets.interpreter_state.ceval_gil */
	{ 3, 14, GIL_DEBUG_OFFSETS, 120 },  /* (3.14 inserted threads_main before it; headers) */
};

#define GIL_LAST_HOLDER 8  /* struct _gil_runtime_state.last_holder */
#define GIL_LOCKED	16 /* struct _gil_runtime_state.locked */

struct gil {
	enum gil_where where;
	uint64_t addr; /* _PyThreadState_Current, or the GIL struct (GIL_RUNTIME) */
	uint32_t off;  /* interp->ceval.gil (GIL_INTERP_POINTER, GIL_DEBUG_OFFSETS) */
};

/* The address of a symbol of the interpreter's ELF object in the process, 0 if not found. */
static uint64_t interpreter_symbol(const struct pyproc *pp, const char *name)
{
	struct elf_file *ef = NULL;
	struct procmaps maps;
	uint64_t vaddr = 0;
	char path[4200];

	procmaps_init(&maps);
	if (procmaps_read(&maps, pp->pid))
		goto out;
	for (size_t i = 0; i < maps.n && !ef; i++) {
		if (strcmp(maps.v[i].path, pp->path) != 0)
			continue;
		/* As pyproc.c opens it: through map_files (other mount namespaces, deleted files). */
		snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)pp->pid,
			 (unsigned long long)maps.v[i].start, (unsigned long long)maps.v[i].end);
		ef = elf_file__open(path);
		if (!ef) {
			snprintf(path, sizeof(path), "/proc/%d/root%s", (int)pp->pid, pp->path);
			ef = elf_file__open(path);
		}
		break;
	}
	if (ef && elf_file__symbol(ef, name, &vaddr, NULL) == 0)
		vaddr += pp->bias;
	else
		vaddr = 0;
out:
	elf_file__free(ef);
	procmaps_release(&maps);
	return vaddr;
}

static void gil_init(struct gil *g, const struct pyproc *pp)
{
	const struct py_offsets *o = &pp->off;
	/* Not o->major/minor: one offsets table serves 3.8 and 3.9, whose GILs differ. */
	uint32_t major = (pp->version_hex >> 24) & 0xff, minor = (pp->version_hex >> 16) & 0xff;
	const struct gil_layout *l = NULL;
	uint64_t runtime = 0;

	memset(g, 0, sizeof(*g));
	for (size_t i = 0; i < sizeof(gil_layouts) / sizeof(gil_layouts[0]); i++)
		if (gil_layouts[i].major == major && gil_layouts[i].minor == minor)
			l = &gil_layouts[i];
	if (!l)
		return;
	if (o->runtime_interp_head != NONE)
		runtime = pp->interp_head_addr - o->runtime_interp_head;
	switch (l->where) {
	case GIL_CURRENT_SYMBOL:
		g->addr = interpreter_symbol(pp, "_PyThreadState_Current");
		if (g->addr)
			g->where = l->where;
		break;
	case GIL_RUNTIME:
		if (runtime) {
			g->addr = runtime + l->off;
			g->where = l->where;
		}
		break;
	case GIL_INTERP_POINTER:
		g->off = l->off;
		g->where = l->where;
		break;
	case GIL_DEBUG_OFFSETS: {
		uint8_t dbg[16];
		uint64_t v = 0, version = 0;

		if (!runtime || remote_read(pp->pid, runtime, dbg, sizeof(dbg)) ||
		    memcmp(dbg, "xdebugpy", 8) != 0 ||
		    remote_read_u64(pp->pid, runtime + l->off, &v))
			break;
		memcpy(&version, dbg + 8, sizeof(version));
		if (((version >> 24) & 0xff) != major || ((version >> 16) & 0xff) != minor ||
		    v == 0 || v > (1u << 20))
			break;
		g->off = (uint32_t)v;
		g->where = GIL_INTERP_POINTER;
		break;
	}
	default:
		break;
	}
}

/*
 * The thread state holding interp's GIL: 0 with *holder (0 when the GIL is free), -ENOENT
 * when it cannot be told, -ESRCH when the process is gone.
 */
static int gil_holder(const struct gil *g, pid_t pid, uint64_t interp, uint64_t *holder)
{
	uint8_t st[GIL_LOCKED + 4];
	uint64_t gil = g->addr;
	int32_t locked;
	int err;

	switch (g->where) {
	case GIL_CURRENT_SYMBOL:
		err = remote_read_u64(pid, g->addr, holder);
		return err == -ESRCH ? err : err ? -ENOENT : 0;
	case GIL_INTERP_POINTER:
		err = remote_read_u64(pid, interp + g->off, &gil);
		if (err)
			return err == -ESRCH ? err : -ENOENT;
		break;
	case GIL_RUNTIME:
		break;
	default:
		return -ENOENT;
	}
	if (!ptr_ok(gil))
		return -ENOENT;
	err = remote_read(pid, gil, st, sizeof(st));
	if (err)
		return err == -ESRCH ? err : -ENOENT;
	memcpy(&locked, st + GIL_LOCKED, sizeof(locked));
	if (locked != 0 && locked != 1)
		return -ENOENT; /* not a GIL: wrong layout */
	*holder = locked ? get64(st, GIL_LAST_HOLDER) : 0;
	return 0;
}

/* ---- the walk ---- */

struct walk {
	const struct pyproc *pp;
	struct dump *d;
	struct symbolizer *sy;
	struct addrset threads_seen; /* interpreters and thread states */
	struct addrset frames_seen;  /* frames of the current thread */
	struct dump_frame *scratch;  /* DUMP_MAX_FRAMES, the thread being walked */
	size_t frames_left;	     /* of DUMP_MAX_TOTAL_FRAMES */
	uint64_t *holders; /* per thread: its interpreter's GIL holder, UINT64_MAX unknown */
	size_t cap;	   /* of d->threads and holders */
	struct gil gil;
};

/* Intern s[0..len) into the dump's strings. 0 or -ENOMEM/-E2BIG. */
static int intern(struct walk *w, const char *s, size_t len, uint32_t *id)
{
	return stacks__intern(w->d->strings, s, len, id);
}

/*
 * Name, file and line of code object code executing ip, into *out (out->unreadable when the
 * object cannot be read). 0, or -ESRCH (process gone) / -ENOMEM.
 *
 * The symbolizer gives "NAME (FILE:LINE)" with the same reads and line-table decoding as the
 * agent's labels; LINE is unambiguous (after the last ':'), and NAME is read here too so that
 * a file holding " (" splits right.
 */
static int frame_symbolize(struct walk *w, uint64_t code, uint64_t ip, struct dump_frame *out)
{
	const struct pyproc *pp = w->pp;
	const struct py_offsets *o = &pp->off;
	uint8_t obj[PYSAMP_OBJ_BUF * 4];
	char name[NAME_BYTES];
	const char *label, *colon, *file, *p;
	struct pysamp_frame f;
	size_t len, name_len;
	bool have_name = false;
	int32_t first;
	long line;
	uint32_t id;
	int err;

	memset(out, 0, sizeof(*out));
	out->unreadable = true;
	if (!ptr_ok(code) || o->code_size > sizeof(obj) || o->code_size < 16)
		return 0;
	err = remote_read(pp->pid, code, obj, o->code_size);
	if (err)
		return err == -ESRCH ? err : 0;
	if (!symbolize_object_live(get64(obj, 0), get64(obj, 8), pp->type_code))
		return 0;
	memcpy(&first, obj + o->code_firstlineno, sizeof(first));
	f.code = code;
	f.ip = ip;
	f.code_fp = pysamp_code_fp(get64(obj, o->code_name), get64(obj, o->code_filename),
				   get64(obj, o->code_linetable), (uint32_t)first);
	err = symbolizer__frame(w->sy, &f, &id);
	if (err)
		return err;
	label = stacks__label_bytes(w->d->strings, id, &len);
	if (!label || len < 5 || label[len - 1] != ')')
		return 0; /* "[unknown]": gone, freed, or changed while read */
	colon = memrchr(label, ':', len - 1);
	if (!colon)
		return 0;
	p = colon + 1;
	if (*p == '-')
		p++;
	if (p == label + len - 1 || (size_t)(label + len - 1 - p) > 10 ||
	    strspn(p, "0123456789") != (size_t)(label + len - 1 - p))
		return 0;
	line = strtol(colon + 1, NULL, 10);
	if (line < INT32_MIN || line > INT32_MAX)
		return 0;

	/* The name as the symbolizer chose it: co_qualname when readable and not empty. */
	if (o->code_qualname != NONE) {
		uint64_t q = get64(obj, o->code_qualname);

		have_name =
			q &&
			symbolize_read_str(pp->pid, o, q, pp->type_str, name, sizeof(name)) == 0 &&
			name[0];
	}
	if (!have_name)
		have_name = symbolize_read_str(pp->pid, o, get64(obj, o->code_name), pp->type_str,
					       name, sizeof(name)) == 0;
	if (have_name && !name[0])
		snprintf(name, sizeof(name), "?");
	name_len = have_name ? strlen(name) : 0;
	if (have_name && name_len + 2 <= (size_t)(colon - label) &&
	    memcmp(label, name, name_len) == 0 && label[name_len] == ' ' &&
	    label[name_len + 1] == '(') {
		file = label + name_len + 2;
	} else {
		/* Read differently this time: names hold no " (" in practice. */
		p = memmem(label, (size_t)(colon - label), " (", 2);
		if (!p)
			return 0;
		name_len = (size_t)(p - label);
		file = p + 2;
	}
	/*
	 * Copy before interning: interning may move the label storage. The label is bounded by
	 * the symbolizer (name + file + line, under 2 KiB).
	 */
	{
		char copy[NAME_BYTES + 1024 + 64];
		size_t file_len = (size_t)(colon - file), file_off = (size_t)(file - label);

		if (len > sizeof(copy))
			return 0;
		memcpy(copy, label, len);
		err = intern(w, copy, name_len, &out->name);
		if (!err)
			err = intern(w, copy + file_off, file_len, &out->file);
		if (err)
			return err;
	}
	out->line = (int32_t)line;
	out->unreadable = false;
	return 0;
}

/* Append a frame to the thread being walked; false when it is full (the stack is cut). */
static bool push_frame(struct walk *w, size_t *n, const struct dump_frame *f)
{
	if (*n >= DUMP_MAX_FRAMES || !w->frames_left)
		return false;
	w->scratch[(*n)++] = *f;
	w->frames_left--;
	return true;
}

/* Frames of thread state t->tstate, whose top frame is frame. 0, -ESRCH or -ENOMEM. */
static int walk_frames(struct walk *w, struct dump_thread *t, uint64_t frame)
{
	const struct py_offsets *o = &w->pp->off;
	const struct dump_frame bad = { .unreadable = true };
	uint8_t buf[PYSAMP_OBJ_BUF];
	size_t n = 0, steps = 0;
	int err = 0;

	if (o->frame_size > sizeof(buf))
		return 0;
	addrset_restart(&w->frames_seen);
	while (frame) {
		struct dump_frame f;
		uint64_t code, ip, back;
		bool shim;

		if (steps++ >= WALK_STEPS) {
			t->truncated = true;
			break;
		}
		if (!ptr_ok(frame) || addrset_seen(&w->frames_seen, frame)) {
			t->truncated = !push_frame(w, &n, &bad);
			break;
		}
		err = remote_read(w->pp->pid, frame, buf, o->frame_size);
		if (err == -ESRCH)
			return err;
		if (err) {
			t->truncated = !push_frame(w, &n, &bad);
			err = 0;
			break;
		}
		back = get64(buf, o->frame_back);
		code = get64(buf, o->frame_code) & ~o->code_tag_mask;
		ip = get64(buf, o->frame_ip);
		/* As walk_python: no code, or an interpreter shim (owner >= owner_skip). */
		shim = !code || (o->frame_owner != NONE && buf[o->frame_owner] >= o->owner_skip);
		if (!shim) {
			err = frame_symbolize(w, code, ip, &f);
			if (err)
				return err;
			if (!push_frame(w, &n, &f)) {
				t->truncated = true;
				break;
			}
		}
		frame = back;
	}
	if (!n)
		return 0;
	t->frames = malloc(n * sizeof(*t->frames));
	if (!t->frames)
		return -ENOMEM;
	memcpy(t->frames, w->scratch, n * sizeof(*t->frames));
	t->nframes = n;
	return 0;
}

/*
 * Add thread state ts of interpreter number interp (0 = head of the list) to the dump and
 * store the next thread state in *next (0 at the end, or when the link cannot be read).
 * 0, -ESRCH or -ENOMEM.
 */
static int walk_thread(struct walk *w, uint64_t ts, uint32_t interp, uint64_t holder,
		       uint64_t *next)
{
	const struct py_offsets *o = &w->pp->off;
	struct dump *d = w->d;
	struct dump_thread *t;
	uint8_t buf[512];
	uint32_t size = 0;
	uint64_t frame;
	int err;

	*next = 0;
	size = o->tstate_next > size ? o->tstate_next : size;
	size = o->tstate_thread_id > size ? o->tstate_thread_id : size;
	size = o->tstate_frame > size ? o->tstate_frame : size;
	size += 8;
	if (size > sizeof(buf))
		return 0;
	err = remote_read(w->pp->pid, ts, buf, size);
	if (err)
		return err == -ESRCH ? err : 0; /* the list ends here */

	if (d->nthreads == w->cap) {
		size_t ncap = w->cap ? 2 * w->cap : 16;
		struct dump_thread *nt = realloc(d->threads, ncap * sizeof(*nt));
		uint64_t *nh;

		if (!nt)
			return -ENOMEM;
		d->threads = nt;
		nh = realloc(w->holders, ncap * sizeof(*nh));
		if (!nh)
			return -ENOMEM;
		w->holders = nh;
		w->cap = ncap;
	}
	t = &d->threads[d->nthreads];
	memset(t, 0, sizeof(*t));
	t->tstate = ts;
	t->thread_id = get64(buf, o->tstate_thread_id);
	t->interp = interp;
	t->gil = -1;
	w->holders[d->nthreads] = holder;
	d->nthreads++;
	*next = get64(buf, o->tstate_next);

	frame = get64(buf, o->tstate_frame);
	if (frame && o->cframe_current != NONE) {
		/* 3.11/3.12: tstate->cframe->current_frame */
		if (!ptr_ok(frame)) {
			frame = 1; /* reported as an unreadable frame */
		} else {
			err = remote_read_u64(w->pp->pid, frame + o->cframe_current, &frame);
			if (err == -ESRCH)
				return err;
			if (err)
				frame = 1;
		}
	}
	return walk_frames(w, t, frame);
}

/* Every interpreter's thread states, in list order (newest first). 0 or -errno with why. */
static int walk_interpreters(struct walk *w, char *why, size_t whylen)
{
	const struct pyproc *pp = w->pp;
	const struct py_offsets *o = &pp->off;
	uint64_t interp = 0;
	uint32_t ni;
	int err;

	w->d->ninterps = 0;
	err = remote_read_u64(pp->pid, pp->interp_head_addr, &interp);
	if (err) {
		if (err == -ESRCH)
			set_errf(why, whylen, "the process exited during the dump");
		else
			set_errf(why, whylen, "cannot read its memory at 0x%" PRIx64 ": %s",
				 pp->interp_head_addr, strerror(-err));
		return err;
	}
	if (!interp) {
		set_errf(why, whylen,
			 "Python %s has no interpreter state (not initialised yet, or finalised)",
			 w->d->python);
		return -ENOENT;
	}
	addrset_restart(&w->threads_seen);
	for (ni = 0; interp && ni < PYSAMP_MAX_INTERPS; ni++) {
		uint64_t ts = 0, holder = UINT64_MAX, h;

		if (!ptr_ok(interp) || addrset_seen(&w->threads_seen, interp))
			break;
		w->d->ninterps = ni + 1;
		err = gil_holder(&w->gil, pp->pid, interp, &h);
		if (err == -ESRCH)
			goto gone;
		if (!err)
			holder = h;
		err = remote_read_u64(pp->pid, interp + o->interp_tstate_head, &ts);
		if (err == -ESRCH)
			goto gone;
		while (!err && ts) {
			if (w->d->nthreads >= DUMP_MAX_THREADS) {
				w->d->threads_truncated = true;
				break;
			}
			if (!ptr_ok(ts) || addrset_seen(&w->threads_seen, ts))
				break;
			err = walk_thread(w, ts, ni, holder, &ts);
			if (err == -ESRCH)
				goto gone;
			if (err)
				goto fail;
		}
		if (w->d->threads_truncated)
			break;
		err = remote_read_u64(pp->pid, interp + o->interp_next, &interp);
		if (err == -ESRCH)
			goto gone;
		if (err)
			break;
	}
	return 0;
gone:
	set_errf(why, whylen, "the process exited during the dump");
	return -ESRCH;
fail:
	set_errf(why, whylen, "%s", strerror(-err));
	return err;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/*
 * After the walk: oldest thread first, interpreters numbered from the main one (the last in
 * the list), kernel threads matched, the main thread and the GIL holder marked.
 */
static int finish(struct walk *w, const struct tasks *tasks)
{
	struct dump *d = w->d;
	uint64_t *sorted = NULL;
	size_t n = d->nthreads;

	for (size_t i = 0; i < n / 2; i++) {
		struct dump_thread t = d->threads[i];
		uint64_t h = w->holders[i];

		d->threads[i] = d->threads[n - 1 - i];
		d->threads[n - 1 - i] = t;
		w->holders[i] = w->holders[n - 1 - i];
		w->holders[n - 1 - i] = h;
	}
	if (n) {
		sorted = malloc(n * sizeof(*sorted));
		if (!sorted)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++)
			sorted[i] = d->threads[i].tstate;
		qsort(sorted, n, sizeof(*sorted), u64_cmp);
	}
	for (size_t i = 0; i < n; i++) {
		struct dump_thread *t = &d->threads[i];
		uint64_t h = w->holders[i];
		const struct task *k;

		t->interp = d->ninterps ? d->ninterps - 1 - t->interp : 0;
		/* A holder that is no thread state of the process is not believed. */
		if (h != UINT64_MAX && (!h || bsearch(&h, sorted, n, sizeof(*sorted), u64_cmp)))
			t->gil = t->tstate == h;
		k = tasks_find(tasks, thread_ns_tid(d->pid, t->thread_id));
		if (!k)
			continue;
		t->tid = k->tid;
		t->ns_tid = k->ns_tid;
		snprintf(t->os_name, sizeof(t->os_name), "%s", k->comm);
		t->os_state = k->state;
		t->state = k->state == 'R' ? DUMP_STATE_ACTIVE : DUMP_STATE_IDLE;
		t->main = t->tid == d->pid;
	}
	free(sorted);
	return 0;
}

static void version_string(uint32_t v, char *out, size_t len)
{
	unsigned major = (v >> 24) & 0xff, minor = (v >> 16) & 0xff, micro = (v >> 8) & 0xff;
	unsigned level = (v >> 4) & 0xf, serial = v & 0xf;
	static const char *const levels[] = { "a", "b", "rc" }; /* 0xa, 0xb, 0xc */

	if (level < 0xa || level == 0xd || level == 0xe) /* only major.minor known */
		snprintf(out, len, "%u.%u", major, minor);
	else if (level == 0xf)
		snprintf(out, len, "%u.%u.%u", major, minor, micro);
	else
		snprintf(out, len, "%u.%u.%u%s%u", major, minor, micro, levels[level - 0xa],
			 serial);
}

/* State letter of /proc/PID/stat: 0 when unreadable, -ESRCH when there is no such process. */
static int process_state(pid_t pid)
{
	char path[64], buf[1024];
	struct task t;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = read_small(path, buf, sizeof(buf));
	if (n == -ESRCH)
		return -ESRCH;
	if (n <= 0 || !parse_stat(buf, &t))
		return 0;
	return (unsigned char)t.state;
}

struct dump *dump__new(pid_t pid, char *why, size_t whylen)
{
	struct walk w = { 0 };
	struct tasks tasks = { 0 };
	struct pyproc *pp = NULL;
	struct dump *d = NULL;
	int err, state;

	set_errf(why, whylen, "unknown error");
	state = process_state(pid);
	if (state == -ESRCH || state == 'Z' || state == 'X') {
		set_errf(why, whylen,
			 state == -ESRCH ? "no such process" : "the process has exited (a zombie)");
		err = -ESRCH;
		goto fail;
	}
	pp = pyproc__new(pid, why, whylen);
	if (!pp) {
		err = errno ? -errno : -ENOEXEC;
		goto fail;
	}
	d = calloc(1, sizeof(*d));
	if (!d || !(d->strings = stacks__new())) {
		err = -ENOMEM;
		set_errf(why, whylen, "out of memory");
		goto fail;
	}
	d->pid = pid;
	snprintf(d->comm, sizeof(d->comm), "%s", pp->comm);
	snprintf(d->path, sizeof(d->path), "%s", pp->path);
	version_string(pp->version_hex, d->python, sizeof(d->python));

	w.pp = pp;
	w.d = d;
	w.frames_left = DUMP_MAX_TOTAL_FRAMES;
	w.sy = symbolizer__new(pp, d->strings);
	w.scratch = malloc(DUMP_MAX_FRAMES * sizeof(*w.scratch));
	if (!w.sy || !w.scratch || addrset_init(&w.threads_seen) || addrset_init(&w.frames_seen)) {
		err = -ENOMEM;
		set_errf(why, whylen, "out of memory");
		goto fail;
	}
	gil_init(&w.gil, pp);
	err = walk_interpreters(&w, why, whylen);
	if (err)
		goto fail;
	err = tasks_read(&tasks, pid);
	if (err == -ENOMEM) {
		set_errf(why, whylen, "out of memory");
		goto fail;
	}
	err = finish(&w, &tasks);
	if (err) {
		set_errf(why, whylen, "out of memory");
		goto fail;
	}
	goto out;
fail:
	dump__free(d);
	d = NULL;
out:
	free(tasks.v);
	free(w.holders);
	free(w.scratch);
	addrset_release(&w.threads_seen);
	addrset_release(&w.frames_seen);
	symbolizer__free(w.sy);
	pyproc__free(pp);
	if (!d)
		errno = -err;
	return d;
}

void dump__free(struct dump *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nthreads; i++)
		free(d->threads[i].frames);
	free(d->threads);
	stacks__free(d->strings);
	free(d);
}

const char *dump__str(const struct dump *d, uint32_t id, size_t *len)
{
	const char *s = stacks__label_bytes(d->strings, id, len);

	if (!s) {
		if (len)
			*len = 0;
		return "";
	}
	return s;
}

/* ---- output ---- */

/* Length of the valid UTF-8 sequence at p (at most left bytes), 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t left)
{
	unsigned char c = p[0];
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (left < n)
		return 0;
	for (size_t k = 1; k < n; k++)
		if ((p[k] & 0xc0) != 0x80)
			return 0;
	if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || /* overlong, surrogate */
	    (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))	/* overlong, > U+10FFFF */
		return 0;
	return n;
}

/* s[0..len) with control characters and invalid UTF-8 bytes written as \xNN. */
static void put_text(FILE *f, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		size_t n = utf8_len(p, (size_t)(end - p));

		if (n == 1 && (*p < 0x20 || *p == 0x7f))
			n = 0;
		if (n) {
			fwrite(p, 1, n, f);
			p += n;
		} else {
			fprintf(f, "\\x%02x", *p++);
		}
	}
}

static void put_cstr(FILE *f, const char *s)
{
	put_text(f, s, strlen(s));
}

int dump__write_text(const struct dump *d, FILE *f)
{
	fprintf(f, "Process %d \"", (int)d->pid);
	put_cstr(f, d->comm);
	fprintf(f, "\": Python %s (", d->python);
	put_cstr(f, d->path);
	fprintf(f, ")\n");
	if (d->threads_truncated)
		fprintf(f, "(only the first %d thread states are shown)\n", DUMP_MAX_THREADS);
	for (size_t i = 0; i < d->nthreads; i++) {
		const struct dump_thread *t = &d->threads[i];

		if (t->tid)
			fprintf(f, "\nThread %d", (int)t->tid);
		else
			fprintf(f, "\nThread 0x%" PRIx64, t->thread_id);
		if (t->state != DUMP_STATE_UNKNOWN)
			fprintf(f, " (%s)", t->state == DUMP_STATE_ACTIVE ? "active" : "idle");
		if (t->os_name[0]) {
			fputs(" \"", f);
			put_cstr(f, t->os_name);
			fputc('"', f);
		}
		if (t->main)
			fputs(" [main]", f);
		if (t->gil == 1)
			fputs(" [holds GIL]", f);
		if (t->interp)
			fprintf(f, " [subinterpreter %u]", t->interp);
		fputc('\n', f);
		if (t->truncated)
			fprintf(f, "  ... (outer frames not shown: only the innermost %zu are)\n",
				t->nframes);
		if (!t->nframes && !t->truncated)
			fputs("  (no Python frames)\n", f);
		for (size_t k = t->nframes; k-- > 0;) {
			const struct dump_frame *fr = &t->frames[k];
			const char *s;
			size_t len;

			if (fr->unreadable) {
				fputs("  " UNREADABLE "\n", f);
				continue;
			}
			fputs("  File \"", f);
			s = dump__str(d, fr->file, &len);
			put_text(f, s, len);
			fprintf(f, "\", line %d, in ", (int)fr->line);
			s = dump__str(d, fr->name, &len);
			put_text(f, s, len);
			fputc('\n', f);
		}
	}
	if (fflush(f) || ferror(f))
		return -EIO;
	return 0;
}

/* A JSON string of s[0..len), invalid UTF-8 bytes replaced by U+FFFD; NULL on ENOMEM. */
static json_object *json_str(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	json_object *j;
	char *buf, *o;

	if (len > (SIZE_MAX - 1) / 3 || len > INT_MAX / 3)
		return NULL;
	buf = malloc(3 * len + 1);
	if (!buf)
		return NULL;
	o = buf;
	while (p < end) {
		size_t n = utf8_len(p, (size_t)(end - p));

		if (n) {
			memcpy(o, p, n);
			o += n;
			p += n;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			p++;
		}
	}
	j = json_object_new_string_len(buf, (int)(o - buf));
	free(buf);
	return j;
}

/* A member of a JSON object being built: val NULL means null when known is false. */
struct json_member {
	const char *key;
	json_object *val;
	bool known; /* a value was meant: NULL val is then an allocation failure */
};

/*
 * Add the members to obj (NULL: allocation failed) in order. Returns 0 or -ENOMEM; every val
 * is consumed either way (added, or released).
 */
static int json_add_all(json_object *obj, struct json_member *m, size_t n)
{
	int err = 0;

	for (size_t i = 0; i < n; i++) {
		if (!err && m[i].known && !m[i].val)
			err = -ENOMEM;
		if (obj && !err && json_object_object_add(obj, m[i].key, m[i].val) == 0)
			continue; /* obj owns val now */
		err = -ENOMEM;
		json_object_put(m[i].val);
	}
	return err;
}

static json_object *json_frame(const struct dump *d, const struct dump_frame *fr)
{
	json_object *o = json_object_new_object();
	const char *name, *file;
	size_t name_len, file_len;

	if (!o)
		return NULL;
	if (fr->unreadable) {
		struct json_member m[] = {
			{ "name", json_object_new_string(UNREADABLE), true },
			{ "file", NULL, false },
			{ "line", NULL, false },
		};

		if (json_add_all(o, m, sizeof(m) / sizeof(m[0])))
			goto fail;
		return o;
	}
	name = dump__str(d, fr->name, &name_len);
	file = dump__str(d, fr->file, &file_len);
	{
		struct json_member m[] = {
			{ "name", json_str(name, name_len), true },
			{ "file", json_str(file, file_len), true },
			{ "line", json_object_new_int(fr->line), true },
		};

		if (json_add_all(o, m, sizeof(m) / sizeof(m[0])))
			goto fail;
	}
	return o;
fail:
	json_object_put(o);
	return NULL;
}

static json_object *json_thread(const struct dump *d, const struct dump_thread *t)
{
	json_object *o = json_object_new_object(), *frames = json_object_new_array();
	char os_state[2] = { t->os_state, '\0' };
	const char *state = t->state == DUMP_STATE_ACTIVE ? "active" : "idle";
	bool has_state = t->state != DUMP_STATE_UNKNOWN, has_name = t->os_name[0] != '\0';
	struct json_member m[] = {
		{ "tid", t->tid ? json_object_new_int(t->tid) : NULL, t->tid != 0 },
		{ "ns_tid", t->ns_tid ? json_object_new_int(t->ns_tid) : NULL, t->ns_tid != 0 },
		{ "thread_id", json_object_new_uint64(t->thread_id), true },
		{ "main", json_object_new_boolean(t->main), true },
		{ "name", has_name ? json_str(t->os_name, strlen(t->os_name)) : NULL, has_name },
		{ "state", has_state ? json_object_new_string(state) : NULL, has_state },
		{ "os_state", t->os_state ? json_str(os_state, 1) : NULL, t->os_state != 0 },
		{ "gil", t->gil >= 0 ? json_object_new_boolean(t->gil) : NULL, t->gil >= 0 },
		{ "interpreter", json_object_new_int((int)t->interp), true },
		{ "truncated", json_object_new_boolean(t->truncated), true },
		{ "frames", frames, true },
	};

	if (json_add_all(o, m, sizeof(m) / sizeof(m[0])))
		goto fail;
	/* Innermost last, as Python prints a traceback. */
	for (size_t k = t->nframes; k-- > 0;) {
		json_object *jf = json_frame(d, &t->frames[k]);

		if (!jf || json_object_array_add(frames, jf)) {
			json_object_put(jf);
			goto fail;
		}
	}
	return o;
fail:
	json_object_put(o);
	return NULL;
}

int dump__write_json(const struct dump *d, FILE *f)
{
	json_object *root = json_object_new_object(), *threads = json_object_new_array();
	struct json_member m[] = {
		{ "pid", json_object_new_int(d->pid), true },
		{ "python", json_object_new_string(d->python), true },
		{ "comm", json_str(d->comm, strlen(d->comm)), true },
		{ "path", json_str(d->path, strlen(d->path)), true },
		{ "threads_truncated", json_object_new_boolean(d->threads_truncated), true },
		{ "threads", threads, true },
	};
	const char *text;
	int err = -ENOMEM;

	if (json_add_all(root, m, sizeof(m) / sizeof(m[0])))
		goto out;
	for (size_t i = 0; i < d->nthreads; i++) {
		json_object *t = json_thread(d, &d->threads[i]);

		if (!t || json_object_array_add(threads, t)) {
			json_object_put(t);
			goto out;
		}
	}
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
							    JSON_C_TO_STRING_SPACED |
							    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text)
		goto out;
	fputs(text, f);
	fputc('\n', f);
	err = fflush(f) || ferror(f) ? -EIO : 0;
out:
	json_object_put(root);
	return err;
}

/* ---- the command ---- */

static void dump_usage(FILE *f)
{
	fprintf(f,
		"Usage: pysamp-bpf dump -p PID [--json]\n"
		"\n"
		"Print the current Python stack of every thread of a running CPython process\n"
		"(2.7, 3.6-3.13+) like a traceback, innermost call last. The stacks are read\n"
		"from the process's memory (process_vm_readv): no BPF, and the process is\n"
		"neither stopped nor changed, so a hung or idle one works too.\n"
		"\n"
		"  -p, --pid PID   the process to dump\n"
		"      --json      print one JSON object instead of text\n"
		"  -v, --verbose   also say how the interpreter and its version were found\n"
		"  -h, --help      this help\n"
		"\n"
		"Each thread starts with 'Thread TID (idle|active) \"NAME\" [main] [holds GIL]':\n"
		"the kernel's thread id and name; active means running or runnable, idle\n"
		"sleeping or blocked. Reading another user's process needs root (or\n"
		"CAP_SYS_PTRACE).\n");
}

int dump_main(int argc, char **argv)
{
	enum { OPT_JSON = 256 };
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint32_t pid = 0;
	bool json = false;
	int c, verbose = 0, err;
	struct dump *d;
	char why[512];

	opterr = 0;
	optind = 0; /* a full getopt reset: the agent's parser may have run */
	while ((c = getopt_long(argc, argv, ":p:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (pid) {
				log_error("dump: only one -p PID can be given");
				return 1;
			}
			if (parse_u32(optarg, 1, INT_MAX, &pid)) {
				log_error("dump: invalid PID '%s': expected one positive number",
					  optarg);
				return 1;
			}
			break;
		case OPT_JSON:
			json = true;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			dump_usage(stdout);
			return 0;
		case ':':
			log_error("dump: option '%s' needs a value (see 'pysamp-bpf dump --help')",
				  argv[optind - 1]);
			return 1;
		default:
			if (optopt)
				log_error(
					"dump: unknown option '-%c' (see 'pysamp-bpf dump --help')",
					optopt);
			else
				log_error(
					"dump: unknown option '%s' (see 'pysamp-bpf dump --help')",
					argv[optind - 1]);
			return 1;
		}
	}
	if (optind < argc) {
		log_error("dump: unexpected argument '%s'", argv[optind]);
		return 1;
	}
	if (!pid) {
		log_error("dump: no process given: use -p PID (see 'pysamp-bpf dump --help')");
		return 1;
	}
	if (verbose)
		log_set_level(verbose >= 2 ? LOG_DEBUG : LOG_INFO);

	d = dump__new((pid_t)pid, why, sizeof(why));
	if (!d) {
		err = errno;
		log_error("cannot dump pid %u: %s%s%s", pid,
			  err == ENOEXEC ? "not a Python process: " : "", why,
			  (err == EPERM || err == EACCES) && geteuid() != 0
				  ? " (reading another process needs root or CAP_SYS_PTRACE)"
				  : "");
		return 1;
	}
	err = json ? dump__write_json(d, stdout) : dump__write_text(d, stdout);
	dump__free(d);
	if (err) {
		log_error("cannot write the dump of pid %u: %s", pid, strerror(-err));
		return 1;
	}
	return 0;
}
