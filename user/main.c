/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * main.c - pysamp-bpf: sample the CPU stacks of CPython processes with eBPF
 * and print them as folded stacks.
 *
 * Owns struct pysamp_ctx (all run state) and the signal flag; maps errors to
 * the exit status once.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "folded.h"
#include "loader.h"
#include "log.h"
#include "pyproc.h"
#include "stacks.h"
#include "symbolize.h"
#include "util.h"

#define PYSAMP_VERSION "0.1.0"
#define DEFAULT_HZ     99
#define MAX_HZ	       10000
#define POLL_MS	       20 /* ring buffer poll: the sampler does not wake us per sample */
#define ALIVE_CHECK_MS 500

static volatile sig_atomic_t exiting;

struct target {
	struct pyproc *pp;
	struct symbolizer *sy;
	uint32_t root_id;
	bool gone;
	uint64_t samples;
};

struct pysamp_opts {
	int *pids;
	size_t npids;
	uint32_t hz;
	uint64_t duration_ms; /* 0 = until stopped */
	const char *output;   /* NULL = stdout */
	int verbose;
	bool threads;
	bool merge;
};

struct pysamp_ctx {
	struct pysamp_opts opts;
	struct loader ld;
	struct stacks *st;
	struct target *targets;
	size_t ntargets;
	uint32_t *ids; /* scratch for one stack, root first */
	uint32_t truncated_id;
	uint64_t samples;	      /* samples aggregated */
	uint64_t samples_unknown_pid; /* samples of processes no longer tracked */
	uint64_t samples_malformed;   /* records of the wrong size */
	uint64_t samples_nomem;	      /* samples dropped for lack of memory */
	uint64_t samples_error;	      /* stacks cut by a read error (kept) */
};

static void on_signal(int sig)
{
	(void)sig;
	exiting = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pysamp-bpf -p PID[,PID...] [-F HZ] [-d SECONDS] [-o FILE] [-v] [--threads] "
		"[--merge]\n"
		"\n"
		"Sample the on-CPU Python stacks of running CPython processes (2.7, 3.6-3.13+) "
		"from\n"
		"the kernel with eBPF and print them as folded stacks (flamegraph.pl input).\n"
		"\n"
		"  -p, --pid PID[,PID...]   processes to profile (repeatable)\n"
		"  -F, --frequency HZ       samples per second per CPU (default %d)\n"
		"  -d, --duration SECONDS   stop after this long (10, 1.5, 500ms, 2m); default:\n"
		"                           until Ctrl-C, SIGTERM, or every target has exited\n"
		"  -o, --output FILE        write folded stacks to FILE (default stdout)\n"
		"      --threads            add a 'thread TID' frame under the process frame\n"
		"      --merge              merge processes: root frame is the command name only\n"
		"  -v, --verbose            report sampler statistics at exit; -vv for debug logs\n"
		"  -h, --help               this help\n"
		"      --version            print the version\n"
		"\n"
		"Output: one line per unique stack, 'COMM [PID];frame;...;frame COUNT', root "
		"first,\n"
		"frames as 'qualname (file:line)'. Needs root (CAP_BPF, CAP_PERFMON, "
		"CAP_SYS_PTRACE).\n",
		DEFAULT_HZ);
}

static int parse_args(int argc, char **argv, struct pysamp_opts *o)
{
	enum { OPT_THREADS = 256, OPT_MERGE, OPT_VERSION };
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "frequency", required_argument, NULL, 'F' },
		{ "duration", required_argument, NULL, 'd' },
		{ "output", required_argument, NULL, 'o' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "threads", no_argument, NULL, OPT_THREADS },
		{ "merge", no_argument, NULL, OPT_MERGE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int c, err;

	o->hz = DEFAULT_HZ;
	while ((c = getopt_long(argc, argv, "p:F:d:o:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			err = parse_pid_list(optarg, &o->pids, &o->npids);
			if (err) {
				log_error(
					"invalid PID list '%s': expected PID[,PID...] of positive "
					"numbers",
					optarg);
				return -EINVAL;
			}
			break;
		case 'F':
			err = parse_u32(optarg, 1, MAX_HZ, &o->hz);
			if (err) {
				log_error("invalid frequency '%s': expected 1-%d Hz", optarg,
					  MAX_HZ);
				return -EINVAL;
			}
			break;
		case 'd':
			err = parse_duration_ms(optarg, &o->duration_ms);
			if (err || o->duration_ms == 0) {
				log_error("invalid duration '%s': expected e.g. 10, 2.5, 500ms, 1m",
					  optarg);
				return -EINVAL;
			}
			break;
		case 'o':
			o->output = optarg;
			break;
		case 'v':
			o->verbose++;
			break;
		case OPT_THREADS:
			o->threads = true;
			break;
		case OPT_MERGE:
			o->merge = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case OPT_VERSION:
			printf("pysamp-bpf %s (BPF ABI %d)\n", PYSAMP_VERSION, PYSAMP_ABI_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return -EINVAL;
	}
	if (!o->npids) {
		log_error("no process given: use -p PID (see --help)");
		return -EINVAL;
	}
	return 0;
}

static struct target *target_of(struct pysamp_ctx *ctx, uint32_t pid)
{
	for (size_t i = 0; i < ctx->ntargets; i++)
		if ((uint32_t)ctx->targets[i].pp->pid == pid)
			return &ctx->targets[i];
	return NULL;
}

static int intern_str(struct stacks *st, const char *s, uint32_t *id)
{
	return stacks__intern(st, s, strlen(s), id);
}

/* Ring buffer callback: symbolize one sample and count its stack. */
static int on_sample(void *data_ctx, void *data, size_t size)
{
	struct pysamp_ctx *ctx = data_ctx;
	const struct pysamp_sample *s = data;
	const struct pysamp_frame *frames;
	struct target *t;
	size_t n = 0;
	char label[64];
	uint32_t id;

	if (size < sizeof(*s) || s->nframes > PYSAMP_MAX_FRAMES ||
	    size < sizeof(*s) + (size_t)s->nframes * sizeof(*frames)) {
		ctx->samples_malformed++;
		return 0;
	}
	t = target_of(ctx, s->pid);
	if (!t || t->gone || s->generation != t->pp->bpf.generation) {
		ctx->samples_unknown_pid++;
		return 0;
	}
	frames = (const struct pysamp_frame *)(s + 1);
	ctx->ids[n++] = t->root_id;
	if (ctx->opts.threads) {
		snprintf(label, sizeof(label), "thread %u", s->tid);
		if (intern_str(ctx->st, label, &id))
			goto nomem;
		ctx->ids[n++] = id;
	}
	if (s->status == PYSAMP_STACK_TRUNCATED)
		ctx->ids[n++] = ctx->truncated_id;
	if (s->status == PYSAMP_STACK_ERROR)
		ctx->samples_error++;
	for (uint32_t i = s->nframes; i-- > 0;) {
		if (symbolizer__frame(t->sy, &frames[i], &id))
			goto nomem;
		ctx->ids[n++] = id;
	}
	if (stacks__add(ctx->st, ctx->ids, n, 1))
		goto nomem;
	t->samples++;
	ctx->samples++;
	return 0;
nomem:
	ctx->samples_nomem++;
	return 0;
}

static int add_targets(struct pysamp_ctx *ctx)
{
	char why[512], label[64];
	int err;

	ctx->targets = calloc(ctx->opts.npids, sizeof(*ctx->targets));
	if (!ctx->targets)
		return -ENOMEM;
	for (size_t i = 0; i < ctx->opts.npids; i++) {
		int pid = ctx->opts.pids[i];
		struct target *t = &ctx->targets[ctx->ntargets];

		why[0] = '\0';
		t->pp = pyproc__new(pid, why, sizeof(why));
		if (!t->pp) {
			log_error("pid %d: %s", pid, why[0] ? why : strerror(errno));
			continue;
		}
		t->sy = symbolizer__new(t->pp, ctx->st);
		if (!t->sy) {
			pyproc__free(t->pp);
			return -ENOMEM;
		}
		if (ctx->opts.merge)
			snprintf(label, sizeof(label), "%s", t->pp->comm);
		else
			snprintf(label, sizeof(label), "%s [%d]", t->pp->comm, pid);
		err = intern_str(ctx->st, label, &t->root_id);
		if (err) {
			symbolizer__free(t->sy);
			pyproc__free(t->pp);
			return err;
		}
		ctx->ntargets++;
	}
	return ctx->ntargets ? 0 : -ENOENT;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The target exec'd: inspect it again. Samples queued so far are drained
 * with the old layout first; the new layout gets a new generation, which
 * also invalidates the sampler's cached thread states.
 */
static void reinspect(struct pysamp_ctx *ctx, struct target *t)
{
	struct pyproc *pp;
	struct symbolizer *sy;
	char why[512] = "", label[64];
	pid_t pid = t->pp->pid;
	uint32_t gen = t->pp->bpf.generation + 1;

	(void)loader_poll(&ctx->ld, 0);
	pp = pyproc__new(pid, why, sizeof(why));
	sy = pp ? symbolizer__new(pp, ctx->st) : NULL;
	if (!pp || !sy) {
		log_warn("pid %d exec'd a new program and is no longer profiled: %s", (int)pid,
			 why[0] ? why : strerror(errno));
		symbolizer__free(sy);
		pyproc__free(pp);
		t->gone = true;
		(void)loader_proc_del(&ctx->ld, pid);
		return;
	}
	pp->bpf.generation = gen;
	if (ctx->opts.merge)
		snprintf(label, sizeof(label), "%s", pp->comm);
	else
		snprintf(label, sizeof(label), "%s [%d]", pp->comm, (int)pid);
	if (intern_str(ctx->st, label, &t->root_id) || loader_proc_set(&ctx->ld, pid, &pp->bpf)) {
		log_warn("pid %d exec'd a new program and could not be re-added", (int)pid);
		symbolizer__free(sy);
		pyproc__free(pp);
		t->gone = true;
		(void)loader_proc_del(&ctx->ld, pid);
		return;
	}
	symbolizer__free(t->sy);
	pyproc__free(t->pp);
	t->pp = pp;
	t->sy = sy;
	log_info("pid %d exec'd a new program: profiling it again as Python %u.%u", (int)pid,
		 (pp->version_hex >> 24) & 0xff, (pp->version_hex >> 16) & 0xff);
}

/* Stop tracking exited targets, re-inspect exec'd ones; true while any remains. */
static bool check_alive(struct pysamp_ctx *ctx)
{
	size_t alive = 0;

	for (size_t i = 0; i < ctx->ntargets; i++) {
		struct target *t = &ctx->targets[i];

		if (t->gone)
			continue;
		if (pyproc__alive(t->pp)) {
			if (pyproc__execed(t->pp))
				reinspect(ctx, t);
			alive += !t->gone;
			continue;
		}
		/* Samples still queued were taken while it lived: drain them first. */
		(void)loader_poll(&ctx->ld, 0);
		t->gone = true;
		(void)loader_proc_del(&ctx->ld, t->pp->pid);
		log_info("pid %d exited; %llu samples collected from it", (int)t->pp->pid,
			 (unsigned long long)t->samples);
	}
	return alive > 0;
}

static int sample_loop(struct pysamp_ctx *ctx)
{
	uint64_t start = now_ms(), last_check = start;

	while (!exiting) {
		uint64_t now;
		int n = loader_poll(&ctx->ld, POLL_MS);

		if (n < 0) {
			log_error("polling the ring buffer failed: %s", strerror(-n));
			return n;
		}
		now = now_ms();
		if (ctx->opts.duration_ms && now - start >= ctx->opts.duration_ms)
			break;
		if (now - last_check >= ALIVE_CHECK_MS) {
			last_check = now;
			if (!check_alive(ctx)) {
				log_info("every target has exited");
				break;
			}
		}
	}
	/* Drain what is already in the ring buffer. */
	while (loader_poll(&ctx->ld, 0) > 0)
		;
	return 0;
}

static int write_output(struct pysamp_ctx *ctx)
{
	char tmp[4096];
	FILE *f;
	int err;

	if (!ctx->opts.output) {
		err = folded_write(ctx->st, stdout);
		if (err)
			log_error("cannot write to stdout: %s", strerror(-err));
		return err;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", ctx->opts.output) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f) {
		err = -errno;
		log_error("cannot create '%s': %s", tmp, strerror(-err));
		return err;
	}
	err = folded_write(ctx->st, f);
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, ctx->opts.output))
		err = -errno;
	if (err) {
		log_error("cannot write '%s': %s", ctx->opts.output, strerror(-err));
		unlink(tmp);
	}
	return err;
}

static void report(struct pysamp_ctx *ctx)
{
	uint64_t st[PYSAMP_STAT_MAX], ns = 0, cnt = 0;

	fprintf(stderr, "pysamp-bpf: %llu samples in %zu unique stacks\n",
		(unsigned long long)ctx->samples, stacks__nstacks(ctx->st));
	if (!ctx->opts.verbose)
		return;
	if (loader_stats(&ctx->ld, st) == 0) {
		fprintf(stderr, "pysamp-bpf: BPF sampler counters:\n");
		for (int i = 0; i < PYSAMP_STAT_MAX; i++)
			fprintf(stderr, "  %-22s %llu\n", loader_stat_name(i),
				(unsigned long long)st[i]);
	}
	if (loader_run_time(&ctx->ld, &ns, &cnt) == 0 && cnt)
		fprintf(stderr, "  %-22s %.0f (kernel.bpf_stats_enabled)\n", "ns_per_sample",
			(double)ns / (double)cnt);
	fprintf(stderr, "pysamp-bpf: agent counters:\n");
	fprintf(stderr, "  %-22s %llu\n  %-22s %llu\n  %-22s %llu\n  %-22s %llu\n",
		"stack_read_error", (unsigned long long)ctx->samples_error, "unknown_pid",
		(unsigned long long)ctx->samples_unknown_pid, "malformed",
		(unsigned long long)ctx->samples_malformed, "dropped_nomem",
		(unsigned long long)ctx->samples_nomem);
	for (size_t i = 0; i < ctx->ntargets; i++) {
		const struct symbolizer_stats *ss = symbolizer__stats(ctx->targets[i].sy);

		fprintf(stderr,
			"  pid %d: %llu samples; frames %llu, cache hits %llu, code reads %llu, "
			"stale %llu, unreadable %llu\n",
			(int)ctx->targets[i].pp->pid, (unsigned long long)ctx->targets[i].samples,
			(unsigned long long)ss->frames, (unsigned long long)ss->hits,
			(unsigned long long)ss->code_reads, (unsigned long long)ss->stale,
			(unsigned long long)ss->read_fail);
	}
}

static void ctx_release(struct pysamp_ctx *ctx)
{
	loader_release(&ctx->ld);
	for (size_t i = 0; i < ctx->ntargets; i++) {
		symbolizer__free(ctx->targets[i].sy);
		pyproc__free(ctx->targets[i].pp);
	}
	free(ctx->targets);
	free(ctx->ids);
	stacks__free(ctx->st);
	free(ctx->opts.pids);
}

int main(int argc, char **argv)
{
	struct pysamp_ctx ctx;
	struct loader_opts lo = { 0 };
	struct sigaction sa;
	int err;

	memset(&ctx, 0, sizeof(ctx));
	loader_init(&ctx.ld);
	err = parse_args(argc, argv, &ctx.opts);
	if (err)
		goto cleanup;
	log_set_level(ctx.opts.verbose >= 2 ? LOG_DEBUG : ctx.opts.verbose ? LOG_INFO : LOG_WARN);
	libbpf_set_print(log_libbpf_print);

	if (geteuid() != 0) {
		log_error("must run as root (BPF programs, perf events and reading other "
			  "processes' memory need CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE)");
		err = -EPERM;
		goto cleanup;
	}

	ctx.st = stacks__new();
	ctx.ids = calloc(PYSAMP_MAX_FRAMES + 4, sizeof(*ctx.ids));
	if (!ctx.st || !ctx.ids || intern_str(ctx.st, "[truncated]", &ctx.truncated_id)) {
		log_error("out of memory");
		err = -ENOMEM;
		goto cleanup;
	}
	err = add_targets(&ctx);
	if (err) {
		if (err == -ENOENT)
			log_error("no Python process to profile");
		else
			log_error("cannot set up targets: %s", strerror(-err));
		goto cleanup;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	lo.on_sample = on_sample;
	lo.ctx = &ctx;
	lo.debug = ctx.opts.verbose >= 3;
	err = loader_load(&ctx.ld, &lo);
	if (err)
		goto cleanup;
	for (size_t i = 0; i < ctx.ntargets; i++) {
		err = loader_proc_set(&ctx.ld, ctx.targets[i].pp->pid, &ctx.targets[i].pp->bpf);
		if (err) {
			log_error("pid %d: cannot add to the sampler: %s",
				  (int)ctx.targets[i].pp->pid, strerror(-err));
			goto cleanup;
		}
	}
	err = loader_attach(&ctx.ld, ctx.opts.hz);
	if (err)
		goto cleanup;
	log_info("sampling %zu process(es) at %u Hz%s", ctx.ntargets, ctx.opts.hz,
		 ctx.opts.duration_ms ? "" : " until Ctrl-C");

	err = sample_loop(&ctx);
	if (err)
		goto cleanup;
	err = write_output(&ctx);
	report(&ctx);
cleanup:
	ctx_release(&ctx);
	return err ? 1 : 0;
}
