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
#include "log.h"
#include "pyproc.h"
#include "symbolize.h"

#define POLL_MS 20	   /* ring buffer poll: the sampler does not wake us per sample */
#define ALIVE_CHECK_MS 500 /* fallback for lost exit/exec events */

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
static int add_target(struct agent *a, struct pyproc *pp, bool is_fork)
{
	struct target *t;
	pid_t pid = pp->pid;
	int err;

	if (!is_fork)
		pp->bpf.generation = ++a->generation;
	err = targets__add_take(a->targets, pp, &t);
	if (err)
		return err;
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
		if (!pp || add_target(a, pp, true)) {
			(void)loader_proc_del(&a->ld, (pid_t)ev->pid);
			break;
		}
		log_info("pid %u: fork of %u, profiled", ev->pid, ev->ppid);
		break;
	case PYSAMP_EV_EXIT:
		add_dying(a, (pid_t)ev->pid);
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

/* Samples ring buffer callback: symbolize one sample and count its stack. */
static int on_sample(void *ctx, void *data, size_t size)
{
	struct agent *a = ctx;
	const struct pysamp_sample *s = data;
	const struct pysamp_frame *frames;
	struct target *t;
	size_t n = 0;
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
	a->ids[n++] = t->root_id;
	if (a->opts.threads) {
		snprintf(label, sizeof(label), "thread %u", s->tid);
		if (intern_str(a->st, label, &id))
			goto nomem;
		a->ids[n++] = id;
	}
	if (s->status == PYSAMP_STACK_TRUNCATED)
		a->ids[n++] = a->truncated_id;
	if (s->status == PYSAMP_STACK_ERROR)
		a->samples_error++;
	for (uint32_t i = s->nframes; i-- > 0;) {
		if (symbolizer__frame(t->sy, &frames[i], &id))
			goto nomem;
		a->ids[n++] = id;
	}
	if (stacks__add(a->st, a->ids, n, 1))
		goto nomem;
	t->samples++;
	a->samples++;
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

/* Inspect processes that exec'd, when due. */
static void inspect_pending(struct agent *a)
{
	uint64_t now = now_ms();
	size_t keep = 0;

	for (size_t i = 0; i < a->npending; i++) {
		struct pending *p = &a->pending[i];
		struct pyproc *pp;
		char why[512] = "";
		int err;

		if (p->due_ms > now) {
			a->pending[keep++] = *p;
			continue;
		}
		/* The old image's samples were all consumed before this point. */
		targets__remove(a->targets, p->pid);
		pp = pyproc__new(p->pid, why, sizeof(why));
		err = pp ? 0 : -errno;
		if (pp) {
			err = add_target(a, pp, false);
			if (!err)
				log_info("pid %d: Python %u.%u, profiled%s", (int)p->pid,
					 (targets__get(a->targets, p->pid)->pp->version_hex >> 24) & 0xff,
					 (targets__get(a->targets, p->pid)->pp->version_hex >> 16) & 0xff,
					 p->was_target ? " again after exec" : "");
			continue;
		}
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
		struct pyproc *pp;
		char why[512] = "", *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == self || !isdigit((unsigned char)de->d_name[0]))
			continue;
		seen++;
		pp = pyproc__new((pid_t)pid, why, sizeof(why));
		if (!pp) {
			if (errno == ENOTSUP) {
				a->procs_refused++;
				log_warn("pid %ld: %s", pid, why);
			}
			continue;
		}
		if (add_target(a, pp, false) == 0)
			log_info("pid %ld: Python %u.%u, profiled",
				 pid, (targets__get(a->targets, (pid_t)pid)->pp->version_hex >> 24) & 0xff,
				 (targets__get(a->targets, (pid_t)pid)->pp->version_hex >> 16) & 0xff);
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
	loader_init(&a->ld);
	a->st = stacks__new();
	a->targets = a->st ? targets__new(a->st, o->merge) : NULL;
	a->ids = calloc(PYSAMP_MAX_FRAMES + 4, sizeof(*a->ids));
	if (!a->st || !a->targets || !a->ids ||
	    intern_str(a->st, "[truncated]", &a->truncated_id)) {
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
			if (!pps[i])
				continue;
			if (err)
				pyproc__free(pps[i]);
			else if (add_target(a, pps[i], false) == -EEXIST)
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
	/* Drain what is already in the ring buffers. */
	while (loader_poll(&a->ld, 0) > 0)
		;
	reap_dying(a);
	return 0;
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

	fprintf(stderr, "pysamp-bpf: %llu samples in %zu unique stacks\n",
		(unsigned long long)a->samples, a->st ? stacks__nstacks(a->st) : 0);
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
		"  %-22s %llu\n  %-22s %llu\n  %-22s %llu\n  %-22s %zu\n",
		"stack_read_error", (unsigned long long)a->samples_error, "unknown_pid",
		(unsigned long long)a->samples_unknown_pid, "malformed",
		(unsigned long long)a->samples_malformed, "dropped_nomem",
		(unsigned long long)a->samples_nomem, "processes_added",
		(unsigned long long)a->procs_added, "processes_exited",
		(unsigned long long)a->procs_exited, "processes_refused",
		(unsigned long long)a->procs_refused, "processes_tracked",
		targets__count(a->targets));
	targets__foreach(a->targets, report_target, NULL);
}

void agent_release(struct agent *a)
{
	loader_release(&a->ld);
	targets__free(a->targets);
	stacks__free(a->st);
	free(a->ids);
	free(a->pending);
	free(a->dying);
	memset(a, 0, sizeof(*a));
}
