/* SPDX-License-Identifier: BSD-2-Clause */
/* agent.c - target discovery and lifecycle, sample aggregation, report. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "filter.h"
#include "log.h"
#include "procinfo.h"
#include "pyproc.h"
#include "symbolize.h"

#define POLL_MS 20	   /* ring buffer poll: the sampler does not wake us per sample */
#define ALIVE_CHECK_MS 500 /* fallback for lost exit/exec events */
#define DEFAULT_WINDOW_MS     10000
#define DEFAULT_MAX_STACKS    20000
#define DEFAULT_HISTORY_BYTES ((size_t)64 << 20)

/* After an exec, the new program's libraries are mapped by ld.so (and maybe
 * later by dlopen): look at it a few times before giving up. */
static const uint32_t retry_ms[] = { 20, 100, 500, 2000 };

struct pending {
	pid_t pid;
	uint32_t attempt;	/* index into retry_ms of the next try */
	uint64_t due_ms;
	uint64_t since_ms;	/* time of the exec */
	bool was_target;	/* it was being profiled before the exec */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int64_t agent_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int grow_array(void **v, size_t *cap, size_t need, size_t elem)
{
	size_t ncap;
	void *nv;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	while (ncap < need)
		ncap *= 2;
	nv = realloc(*v, ncap * elem);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

/*
 * Profile pp from now on (ownership moves in). A fork keeps its parent's
 * generation: the kernel already samples it with the parent's configuration,
 * and those first samples are valid. 0 or -errno (pp freed).
 */
static int add_target(struct agent *a, struct pyproc *pp, bool is_fork,
		      const struct procinfo *pi)
{
	struct series_meta *m;
	struct target *t;
	pid_t pid = pp->pid;
	int err;

	if (!is_fork)
		pp->bpf.generation = ++a->generation;
	err = targets__add_take(a->targets, pp, &t);
	if (err)
		return err;
	m = &t->meta;
	m->serial = ++a->serial;
	if (pi) {
		m->nspid = pi->nspid;
		snprintf(m->comm, sizeof(m->comm), "%.16s", pi->comm[0] ? pi->comm : pp->comm);
		snprintf(m->app, sizeof(m->app), "%s", pi->app);
		snprintf(m->container, sizeof(m->container), "%s", pi->container);
	}
	snprintf(m->python, sizeof(m->python), "%u.%u", (pp->version_hex >> 24) & 0xff,
		 (pp->version_hex >> 16) & 0xff);
	err = loader_proc_set(&a->ld, pid, &t->pp->bpf);
	if (err) {
		log_warn("pid %d: cannot add to the sampler: %s", (int)pid, strerror(-err));
		targets__remove(a->targets, pid);
		return err;
	}
	a->procs_added++;
	return 0;
}

static void add_pending(struct agent *a, pid_t pid, bool was_target)
{
	uint64_t now = now_ms();

	for (size_t i = 0; i < a->npending; i++) {
		if (a->pending[i].pid == pid) { /* exec'd again: start over */
			a->pending[i].attempt = 0;
			a->pending[i].due_ms = now + retry_ms[0];
			a->pending[i].since_ms = now;
			a->pending[i].was_target |= was_target;
			return;
		}
	}
	if (grow_array((void **)&a->pending, &a->cap_pending, a->npending + 1,
		       sizeof(*a->pending))) {
		log_warn("pid %d exec'd, but there is no memory to inspect it", (int)pid);
		return;
	}
	a->pending[a->npending++] = (struct pending){
		.pid = pid,
		.due_ms = now + retry_ms[0],
		.since_ms = now,
		.was_target = was_target,
	};
}

static void add_dying(struct agent *a, pid_t pid)
{
	for (size_t i = 0; i < a->ndying; i++)
		if (a->dying[i] == pid)
			return;
	if (grow_array((void **)&a->dying, &a->cap_dying, a->ndying + 1, sizeof(*a->dying))) {
		targets__remove(a->targets, pid); /* no memory to wait: drop now */
		return;
	}
	a->dying[a->ndying++] = pid;
}

/* Events ring buffer callback: consumed before the samples of the same poll. */
static int on_event(void *ctx, void *data, size_t size)
{
	struct agent *a = ctx;
	const struct pysamp_event *ev = data;
	struct target *parent;
	struct pyproc *pp;

	if (size < sizeof(*ev))
		return 0;
	switch (ev->type) {
	case PYSAMP_EV_EXEC:
		if (targets__get(a->targets, (pid_t)ev->pid)) {
			log_info("pid %u exec'd a new program: inspecting it again", ev->pid);
			add_pending(a, (pid_t)ev->pid, true);
		} else if (a->opts.all) {
			add_pending(a, (pid_t)ev->pid, false);
		}
		break;
	case PYSAMP_EV_FORK:
		parent = targets__get(a->targets, (pid_t)ev->ppid);
		if (!parent) {
			(void)loader_proc_del(&a->ld, (pid_t)ev->pid);
			break;
		}
		pp = pyproc__fork(parent->pp, (pid_t)ev->pid);
		if (!pp) {
			(void)loader_proc_del(&a->ld, (pid_t)ev->pid);
			break;
		}
		{
			/* Named like its parent when /proc is not readable yet (or any more). */
			struct procinfo pi = { 0 };
			struct series_meta pm = parent->meta;

			if (procinfo_read((pid_t)ev->pid, a->opts.rules, &pi)) {
				pi.pid = pi.nspid = (pid_t)ev->pid;
				snprintf(pi.comm, sizeof(pi.comm), "%s", pm.comm);
				snprintf(pi.app, sizeof(pi.app), "%s", pm.app);
				snprintf(pi.container, sizeof(pi.container), "%s", pm.container);
			}
			if (a->opts.filter && !filter__allows(a->opts.filter, &pi)) {
				pyproc__free(pp);
				(void)loader_proc_del(&a->ld, (pid_t)ev->pid);
				a->procs_filtered++;
				break;
			}
			if (add_target(a, pp, true, &pi)) {
				(void)loader_proc_del(&a->ld, (pid_t)ev->pid);
				break;
			}
		}
		log_info("pid %u: fork of %u, profiled", ev->pid, ev->ppid);
		break;
	case PYSAMP_EV_EXIT:
		add_dying(a, (pid_t)ev->pid);
		break;
	case PYSAMP_EV_PYLIB:
		/* dlopen of libpython: inspect once ld.so is done (same retries as exec). */
		if (a->opts.all && !targets__get(a->targets, (pid_t)ev->pid))
			add_pending(a, (pid_t)ev->pid, false);
		break;
	default:
		break;
	}
	return 0;
}

static int intern_str(struct stacks *st, const char *s, uint32_t *id)
{
	return stacks__intern(st, s, strlen(s), id);
}

/* cur's label ids changed (new window, or pruned): every cached id is stale. */
static void relabel(struct agent *a)
{
	a->win_gen++;
	targets__set_stacks(a->targets, a->cur->st);
}

/* Keep the open window under its stack cap: fold the least-counted half into [pruned]. */
static void maybe_prune(struct agent *a)
{
	if (stacks__nstacks(a->cur->st) <= a->opts.max_stacks)
		return;
	if (window__prune(a->cur, a->opts.max_stacks / 2)) {
		a->prune_failures++;
		return;
	}
	relabel(a);
}

/* Samples ring buffer callback: symbolize one sample and count its stack. */
static int on_sample(void *ctx, void *data, size_t size)
{
	struct agent *a = ctx;
	const struct pysamp_sample *s = data;
	const struct pysamp_frame *frames;
	struct target *t;
	size_t n = 0, py;
	char label[64];
	uint32_t id;

	if (size < sizeof(*s) || s->nframes > PYSAMP_MAX_FRAMES ||
	    size < sizeof(*s) + (size_t)s->nframes * sizeof(*frames)) {
		a->samples_malformed++;
		return 0;
	}
	t = targets__get(a->targets, (pid_t)s->pid);
	if (!t || s->generation != t->pp->bpf.generation) {
		a->samples_unknown_pid++;
		return 0;
	}
	frames = (const struct pysamp_frame *)(s + 1);
	if (t->win_gen != a->win_gen) {
		if (window__series(a->cur, &t->meta, &t->root))
			goto nomem;
		t->win_gen = a->win_gen;
	}
	a->ids[n++] = t->root;
	if (a->opts.threads) {
		snprintf(label, sizeof(label), "thread %u", s->tid);
		if (intern_str(a->cur->st, label, &id))
			goto nomem;
		a->ids[n++] = id;
	}
	py = n; /* the frames the timeline keeps start here: [truncated], then Python's */
	if (s->status == PYSAMP_STACK_TRUNCATED) {
		if (a->truncated_gen != a->win_gen) {
			if (intern_str(a->cur->st, "[truncated]", &a->truncated_id))
				goto nomem;
			a->truncated_gen = a->win_gen;
		}
		a->ids[n++] = a->truncated_id;
	}
	if (s->status == PYSAMP_STACK_ERROR)
		a->samples_error++;
	for (uint32_t i = s->nframes; i-- > 0;) {
		if (symbolizer__frame(t->sy, &frames[i], &id))
			goto nomem;
		a->ids[n++] = id;
	}
	if (stacks__add(a->cur->st, a->ids, n, 1))
		goto nomem;
	if (a->opts.trace) /* a full trace counts its own drops */
		(void)trace__add(a->opts.trace, s->ktime_ns, s->pid, s->tid, a->cur->st, a->ids[0],
				 a->ids + py, n - py);
	t->samples++;
	a->samples++;
	maybe_prune(a);
	return 0;
nomem:
	a->samples_nomem++;
	return 0;
}

/* Exited targets: every sample they queued has been consumed by now. */
static void reap_dying(struct agent *a)
{
	for (size_t i = 0; i < a->ndying; i++) {
		struct target *t = targets__get(a->targets, a->dying[i]);

		if (!t)
			continue;
		log_info("pid %d exited; %llu samples collected from it", (int)a->dying[i],
			 (unsigned long long)t->samples);
		targets__remove(a->targets, a->dying[i]);
		a->procs_exited++;
	}
	a->ndying = 0;
}

/*
 * Profile pid if it runs a CPython interpreter and the filter lets it in. With a filter the
 * process is named first (cheap), so excluded processes are never inspected. Returns 0,
 * -ECANCELED when filtered out (counted), or pyproc__new's -errno with the reason in why.
 */
static int try_add(struct agent *a, pid_t pid, char *why, size_t whylen)
{
	bool filtering = a->opts.filter && !filter__empty(a->opts.filter);
	struct procinfo pi;
	struct pyproc *pp;
	struct target *t;
	int err;

	if (filtering) {
		err = procinfo_read(pid, a->opts.rules, &pi);
		if (err) {
			snprintf(why, whylen, "cannot read /proc/%d: %s", (int)pid, strerror(-err));
			return err;
		}
		if (!filter__allows(a->opts.filter, &pi)) {
			a->procs_filtered++;
			return -ECANCELED;
		}
	}
	pp = pyproc__new_cached(pid, &a->verdicts, why, whylen);
	if (!pp)
		return -errno;
	if (!filtering && procinfo_read(pid, a->opts.rules, &pi)) {
		pyproc__free(pp);
		snprintf(why, whylen, "process %d exited while being inspected", (int)pid);
		return -ESRCH;
	}
	err = add_target(a, pp, false, &pi);
	if (err)
		return err;
	t = targets__get(a->targets, pid);
	log_info("pid %d: Python %s, app '%s'%s%s, profiled", (int)pid, t->meta.python,
		 t->meta.app, t->meta.container[0] ? ", container " : "", t->meta.container);
	return 0;
}

/* Inspect processes that exec'd, when due. */
static void inspect_pending(struct agent *a)
{
	uint64_t now = now_ms();
	size_t keep = 0;

	for (size_t i = 0; i < a->npending; i++) {
		struct pending *p = &a->pending[i];
		char why[512] = "";
		int err;

		if (p->due_ms > now) {
			a->pending[keep++] = *p;
			continue;
		}
		/* The old image's samples were all consumed before this point. */
		targets__remove(a->targets, p->pid);
		err = try_add(a, p->pid, why, sizeof(why));
		if (!err || err == -ECANCELED)
			continue;
		if (err == -ENOEXEC && ++p->attempt < sizeof(retry_ms) / sizeof(retry_ms[0])) {
			p->due_ms = p->since_ms + retry_ms[p->attempt];
			a->pending[keep++] = *p;
			continue;
		}
		if (err == -ENOTSUP) {
			a->procs_refused++;
			log_warn("pid %d: %s", (int)p->pid, why);
		} else if (p->was_target && err != -ESRCH) {
			/* Common and harmless (a Python program running a subprocess). */
			log_info("pid %d exec'd a program that is not profiled: %s", (int)p->pid,
				 why[0] ? why : strerror(-err));
		}
	}
	a->npending = keep;
}

static void check_one(struct target *t, void *arg)
{
	struct agent *a = arg;

	if (!pyproc__alive(t->pp)) {
		add_dying(a, t->pp->pid);
	} else if (pyproc__execed(t->pp)) {
		/* An exec event was lost (events_lost): same path as the event. */
		(void)loader_proc_del(&a->ld, t->pp->pid);
		add_pending(a, t->pp->pid, true);
	}
}

/* Every process with a CPython interpreter, at start (--all). */
static void discover_all(struct agent *a)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t self = getpid();
	size_t seen = 0;

	if (!d) {
		log_warn("cannot list /proc: %s", strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char why[512] = "", *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == self || !isdigit((unsigned char)de->d_name[0]))
			continue;
		seen++;
		if (try_add(a, (pid_t)pid, why, sizeof(why)) == -ENOTSUP) {
			a->procs_refused++;
			log_warn("pid %ld: %s", pid, why);
		}
	}
	closedir(d);
	log_info("--all: %zu of %zu processes have a CPython interpreter",
		 targets__count(a->targets), seen);
}

int agent_start(struct agent *a, const struct agent_opts *o)
{
	struct loader_opts lo = { 0 };
	size_t usable = 0;
	int err;

	a->opts = *o;
	if (!a->opts.window_ms)
		a->opts.window_ms = DEFAULT_WINDOW_MS;
	if (!a->opts.max_stacks)
		a->opts.max_stacks = DEFAULT_MAX_STACKS;
	if (!a->opts.history_bytes)
		a->opts.history_bytes = DEFAULT_HISTORY_BYTES;
	loader_init(&a->ld);
	history_init(&a->hist, a->opts.history_bytes, a->opts.max_stacks);
	a->start_unix_ms = (uint64_t)agent_wall_ms();
	a->cur = window__new((int64_t)a->start_unix_ms);
	a->next_seal_ms = ((int64_t)a->start_unix_ms / a->opts.window_ms + 1) * a->opts.window_ms;
	a->win_gen = 1;
	a->targets = a->cur ? targets__new(a->cur->st) : NULL;
	a->ids = calloc(PYSAMP_MAX_FRAMES + 4, sizeof(*a->ids));
	if (!a->cur || !a->targets || !a->ids) {
		log_error("out of memory");
		return -ENOMEM;
	}

	/* Inspect the PIDs first: a bad PID is reported before any BPF work. */
	{
		struct pyproc **pps = calloc(o->npids ? o->npids : 1, sizeof(*pps));

		if (!pps)
			return -ENOMEM;
		for (size_t i = 0; i < o->npids; i++) {
			char why[512] = "";

			pps[i] = pyproc__new(o->pids[i], why, sizeof(why));
			if (!pps[i])
				log_error("pid %d: %s", o->pids[i], why[0] ? why : strerror(errno));
			else
				usable++;
		}
		if (!usable && !o->all) {
			free(pps);
			log_error("no Python process to profile");
			return -ENOENT;
		}
		lo.on_sample = on_sample;
		lo.on_event = on_event;
		lo.ctx = a;
		lo.debug = o->verbose >= 3;
		lo.track_all = o->all;
		err = loader_load(&a->ld, &lo);
		for (size_t i = 0; i < o->npids; i++) {
			struct procinfo pi;

			if (!pps[i])
				continue;
			if (err || procinfo_read(o->pids[i], o->rules, &pi))
				pyproc__free(pps[i]); /* exited meanwhile */
			else if (add_target(a, pps[i], false, &pi) == -EEXIST)
				continue;
		}
		free(pps);
		if (err)
			return err;
	}
	if (o->all)
		discover_all(a);
	err = loader_attach(&a->ld, o->hz);
	if (err)
		return err;
	log_info("sampling %zu process(es)%s at %u Hz%s", targets__count(a->targets),
		 o->all ? " and every new Python process" : "", o->hz,
		 o->duration_ms ? "" : " until Ctrl-C");
	return 0;
}

/* Deliver what the sampler queued so far (bounded: the sampler keeps producing). */
static void drain(struct agent *a)
{
	for (int i = 0; i < 16 && loader_poll(&a->ld, 0) > 0; i++)
		;
}

/*
 * Close the open window at until_ms, hand it to on_window and the history, and open the next
 * one from until_ms. Without memory for a new window the old one stays open (counted samples
 * are never dropped here).
 */
static void seal(struct agent *a, int64_t until_ms)
{
	struct window *next = window__new(until_ms);

	if (!next) {
		log_warn("no memory for a new window; the current one stays open");
		return;
	}
	a->cur->until_ms = until_ms > a->cur->from_ms ? until_ms : a->cur->from_ms;
	if (a->opts.on_window)
		a->opts.on_window(a->opts.hook_ctx, a->cur);
	if (history__append(&a->hist, a->cur))
		log_warn("no memory to keep the window just closed in the history");
	a->windows++;
	a->cur = next;
	relabel(a);
}

/* Seal at each window boundary of the wall clock. */
static void maybe_seal(struct agent *a)
{
	int64_t wall = agent_wall_ms(), w = a->opts.window_ms;

	if (wall < a->next_seal_ms)
		return;
	drain(a);
	seal(a, a->next_seal_ms);
	/* After a clock jump forward, start again from the current boundary. */
	if (wall - a->cur->from_ms >= w)
		a->cur->from_ms = wall / w * w;
	a->next_seal_ms = a->cur->from_ms + w;
}

int agent_run(struct agent *a, volatile sig_atomic_t *stop)
{
	uint64_t start = now_ms(), last_check = start;

	while (!*stop) {
		uint64_t now;
		int n = loader_poll(&a->ld, POLL_MS);

		if (n < 0) {
			log_error("polling the ring buffer failed: %s", strerror(-n));
			return n;
		}
		reap_dying(a);
		inspect_pending(a);
		maybe_seal(a);
		if (a->opts.on_tick)
			a->opts.on_tick(a->opts.hook_ctx);
		now = now_ms();
		if (a->opts.duration_ms && now - start >= a->opts.duration_ms)
			break;
		if (now - last_check >= ALIVE_CHECK_MS) {
			last_check = now;
			targets__foreach(a->targets, check_one, a);
			if (!a->opts.all && !targets__count(a->targets) && !a->npending &&
			    !a->ndying) {
				log_info("every target has exited");
				break;
			}
		}
	}
	/* Drain what is already in the ring buffers, then close the last window. */
	drain(a);
	reap_dying(a);
	seal(a, agent_wall_ms());
	return 0;
}

int agent_query(const struct agent *a, int64_t from_ms, int64_t until_ms, bool include_open,
		const struct window_query *q, struct stacks *out, int64_t *got_from,
		int64_t *got_until)
{
	int64_t lo = 0, hi = 0;

	for (size_t i = 0; i <= a->hist.n; i++) {
		const struct window *w = i < a->hist.n ? a->hist.w[i] : a->cur;
		int64_t wu = i < a->hist.n ? w->until_ms : agent_wall_ms();
		int err;

		if (i == a->hist.n && (!include_open || !w))
			break;
		if (w->from_ms >= until_ms || wu <= from_ms)
			continue;
		err = window__query(w, q, out);
		if (err)
			return err;
		if (!lo || w->from_ms < lo)
			lo = w->from_ms;
		if (wu > hi)
			hi = wu;
	}
	*got_from = lo;
	*got_until = hi;
	return 0;
}

void agent_pruned(const struct agent *a, uint64_t *stacks, uint64_t *samples)
{
	uint64_t ps = a->cur ? a->cur->pruned_stacks : 0;
	uint64_t pn = a->cur ? a->cur->pruned_samples : 0;

	for (size_t i = 0; i < a->hist.n; i++) {
		ps += a->hist.w[i]->pruned_stacks;
		pn += a->hist.w[i]->pruned_samples;
	}
	*stacks = ps;
	*samples = pn;
}

static void report_target(struct target *t, void *arg)
{
	const struct symbolizer_stats *ss = symbolizer__stats(t->sy);

	(void)arg;
	fprintf(stderr,
		"  pid %d: %llu samples; frames %llu, cache hits %llu, code reads %llu, "
		"stale %llu, unreadable %llu\n",
		(int)t->pp->pid, (unsigned long long)t->samples, (unsigned long long)ss->frames,
		(unsigned long long)ss->hits, (unsigned long long)ss->code_reads,
		(unsigned long long)ss->stale, (unsigned long long)ss->read_fail);
}

void agent_report(struct agent *a)
{
	uint64_t st[PYSAMP_STAT_MAX], ns = 0, cnt = 0;

	uint64_t pst = 0, psa = 0;

	agent_pruned(a, &pst, &psa);
	fprintf(stderr, "pysamp-bpf: %llu samples from %llu processes in %llu windows",
		(unsigned long long)a->samples, (unsigned long long)a->procs_added,
		(unsigned long long)a->windows);
	if (pst)
		fprintf(stderr, "; %llu rare stacks (%llu samples) folded into [pruned]",
			(unsigned long long)pst, (unsigned long long)psa);
	fputc('\n', stderr);
	if (!a->opts.verbose || !a->ld.skel)
		return;
	if (loader_stats(&a->ld, st) == 0) {
		fprintf(stderr, "pysamp-bpf: BPF sampler counters:\n");
		for (int i = 0; i < PYSAMP_STAT_MAX; i++)
			fprintf(stderr, "  %-22s %llu\n", loader_stat_name(i),
				(unsigned long long)st[i]);
	}
	if (loader_run_time(&a->ld, &ns, &cnt) == 0 && cnt)
		fprintf(stderr, "  %-22s %.0f (kernel.bpf_stats_enabled)\n", "ns_per_sample",
			(double)ns / (double)cnt);
	fprintf(stderr, "pysamp-bpf: agent counters:\n");
	fprintf(stderr,
		"  %-22s %llu\n  %-22s %llu\n  %-22s %llu\n  %-22s %llu\n"
		"  %-22s %llu\n  %-22s %llu\n  %-22s %llu\n  %-22s %zu\n"
		"  %-22s %llu\n  %-22s %zu\n  %-22s %zu\n  %-22s %llu\n",
		"stack_read_error", (unsigned long long)a->samples_error, "unknown_pid",
		(unsigned long long)a->samples_unknown_pid, "malformed",
		(unsigned long long)a->samples_malformed, "dropped_nomem",
		(unsigned long long)a->samples_nomem, "processes_added",
		(unsigned long long)a->procs_added, "processes_exited",
		(unsigned long long)a->procs_exited, "processes_refused",
		(unsigned long long)a->procs_refused, "processes_tracked",
		targets__count(a->targets), "processes_filtered",
		(unsigned long long)a->procs_filtered, "history_windows", a->hist.n,
		"history_bytes", a->hist.bytes, "history_compactions",
		(unsigned long long)a->hist.compactions);
	fprintf(stderr, "  %-22s %llu of %llu\n", "non_python_file_hits",
		(unsigned long long)a->verdicts.hits,
		(unsigned long long)(a->verdicts.hits + a->verdicts.misses));
	targets__foreach(a->targets, report_target, NULL);
}

void agent_release(struct agent *a)
{
	loader_release(&a->ld);
	targets__free(a->targets);
	window__free(a->cur);
	history_release(&a->hist);
	pyproc_verdicts_release(&a->verdicts);
	free(a->ids);
	free(a->pending);
	free(a->dying);
	memset(a, 0, sizeof(*a));
}
