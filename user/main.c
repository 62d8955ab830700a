/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * main.c - pysamp-bpf: sample the CPU stacks of CPython processes with eBPF
 * and print them as folded stacks, serve them over HTTP (--listen) and push
 * them to a collector (--push).
 *
 * Owns the options, the outputs (serve, push, export) and the signal flags;
 * maps errors to the exit status once.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "agent.h"
#include "dump.h"
#include "export.h"
#include "filter.h"
#include "folded.h"
#include "log.h"
#include "outfmt.h"
#include "procinfo.h"
#include "push.h"
#include "serve.h"
#include "top.h"
#include "util.h"

#define PYSAMP_VERSION "0.1.0"
#define DEFAULT_HZ     99
#define MAX_HZ	       10000
#define FLUSH_MS       5000 /* time given to the last pushes at exit */
#define TRACE_MAX_SAMPLES (4u << 20) /* --format chrome keeps at most this many (96 MiB) */
static volatile sig_atomic_t exiting;
static volatile sig_atomic_t reloading;

struct pysamp_opts {
	int *pids;
	size_t npids;
	bool all;
	uint32_t hz;
	uint64_t duration_ms; /* 0 = until stopped */
	const char *output;   /* NULL = stdout */
	int verbose;
	bool threads;
	enum window_group group;
	uint32_t window_s;
	uint32_t max_stacks;
	uint32_t history_mb;
	const char *listen;
	const char *push_url;
	const char *push_token_file;
	const char *spool_dir;
	uint32_t spool_mb;
	const char *labels[EXPORT_MAX_LABELS];
	size_t nlabels;
	struct filter *filter;
	struct appname_rules *rules;
	enum outfmt format;
	const char *title;
	bool reverse;
	struct trace *trace; /* --format chrome: every sample in time order */
	struct timespec start; /* CLOCK_REALTIME when sampling began */
};

/* What the agent's hooks reach. */
struct outputs {
	const struct pysamp_opts *o;
	struct agent *agent;
	struct serve *serve;
	struct push *push;
	struct export export;
	bool progress;		   /* a status line on stderr (a --duration run on a terminal) */
	struct timespec progress_start;
	double progress_next;	   /* seconds since start of the next redraw */
};

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reloading = 1;
	else
		exiting = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pysamp-bpf {-p PID[,PID...] | --all} [options]\n"
		"       pysamp-bpf top {-p PID[,PID...] | --all} [-F HZ]   live view\n"
		"       pysamp-bpf dump -p PID [--json]   every thread's Python stack, now\n"
		"\n"
		"Sample the on-CPU Python stacks of running CPython processes (2.7, 3.6-3.13+) from\n"
		"the kernel with eBPF; print them as folded stacks (flamegraph.pl input), serve\n"
		"them over HTTP, and push them to a Pyroscope-compatible collector.\n"
		"\n"
		"Targets:\n"
		"  -p, --pid PID[,PID...]   processes to profile (repeatable); their forks too\n"
		"      --all                every Python process on the host, now and later\n"
		"                           (exec, fork; containers included)\n"
		"      --include SPEC       with --all, profile only matching processes; SPEC is\n"
		"                           comm:GLOB, app:GLOB, cgroup:GLOB, pid:N[,N] or\n"
		"                           container:ID-PREFIX (repeatable: any may match)\n"
		"      --exclude SPEC       never profile matching processes (repeatable)\n"
		"      --app-name RULE      name processes: GLOB=NAME matched against the command\n"
		"                           line (first match wins), or NAME for all; default:\n"
		"                           derived from the command line (script, -m module)\n"
		"Sampling:\n"
		"  -F, --frequency HZ       samples per second per CPU (default %d)\n"
		"  -d, --duration SECONDS   stop after this long (10, 1.5, 500ms, 2m); default:\n"
		"                           until Ctrl-C, SIGTERM, or (-p) every target has exited\n"
		"      --window SECONDS     profile window: pushed and served as a unit (default 10)\n"
		"      --max-stacks N       unique stacks per window before the rarest are folded\n"
		"                           into [pruned] (default 20000)\n"
		"      --history-memory MB  memory for past windows; the oldest are merged beyond\n"
		"                           it (default 64)\n"
		"Output:\n"
		"  -o, --output FILE        at exit (and on SIGHUP) write the profile to FILE\n"
		"                           (default stdout at exit)\n"
		"  -f, --format FMT         folded (default; flamegraph.pl), svg (interactive\n"
		"                           flame graph), speedscope, chrome (a timeline of every\n"
		"                           thread for chrome://tracing or ui.perfetto.dev),\n"
		"                           pprof (go tool pprof, Pyroscope, Parca), json (tree)\n"
		"      --title TEXT         title of the svg / name of the speedscope profile\n"
		"      --reverse            svg: icicle graph (root at the top)\n"
		"      --threads            add a 'thread TID' frame under the process frame\n"
		"      --group HOW          root frame: process ('COMM [PID]', default), comm, app,\n"
		"                           none\n"
		"      --merge              same as --group comm\n"
		"      --listen [ADDR:]PORT serve GET / (folded; ?seconds=, pid=, app=, group=),\n"
		"                           /export (for pysamp-collector --poll), /metrics\n"
		"                           (Prometheus) and /healthz (default address 127.0.0.1)\n"
		"      --push URL           send every window to a Pyroscope ingest API (our\n"
		"                           pysamp-collector or Grafana Pyroscope)\n"
		"      --push-token-file F  bearer token for --push (re-read on SIGHUP)\n"
		"      --spool-dir DIR      keep unsent windows on disk too (survives restarts)\n"
		"      --spool-memory MB    memory for unsent windows (default 64)\n"
		"      --label KEY=VALUE    extra label on pushed and exported profiles (repeatable)\n"
		"  -v, --verbose            report sampler statistics at exit; -vv for debug logs\n"
		"  -h, --help               this help\n"
		"      --version            print the version\n"
		"\n"
		"Signals: SIGINT/SIGTERM stop, push the last window and write the output; SIGHUP\n"
		"rewrites -o FILE and re-reads the token file. Needs root (CAP_BPF, CAP_PERFMON,\n"
		"CAP_SYS_PTRACE).\n",
		DEFAULT_HZ);
}

static int parse_args(int argc, char **argv, struct pysamp_opts *o)
{
	enum {
		OPT_THREADS = 256,
		OPT_MERGE,
		OPT_VERSION,
		OPT_ALL,
		OPT_INCLUDE,
		OPT_EXCLUDE,
		OPT_APP_NAME,
		OPT_WINDOW,
		OPT_MAX_STACKS,
		OPT_HISTORY_MEM,
		OPT_GROUP,
		OPT_LISTEN,
		OPT_PUSH,
		OPT_PUSH_TOKEN,
		OPT_SPOOL_DIR,
		OPT_SPOOL_MEM,
		OPT_LABEL,
		OPT_TITLE,
		OPT_REVERSE,
	};
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "frequency", required_argument, NULL, 'F' },
		{ "duration", required_argument, NULL, 'd' },
		{ "output", required_argument, NULL, 'o' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "threads", no_argument, NULL, OPT_THREADS },
		{ "merge", no_argument, NULL, OPT_MERGE },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "include", required_argument, NULL, OPT_INCLUDE },
		{ "exclude", required_argument, NULL, OPT_EXCLUDE },
		{ "app-name", required_argument, NULL, OPT_APP_NAME },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ "max-stacks", required_argument, NULL, OPT_MAX_STACKS },
		{ "history-memory", required_argument, NULL, OPT_HISTORY_MEM },
		{ "group", required_argument, NULL, OPT_GROUP },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "push", required_argument, NULL, OPT_PUSH },
		{ "push-token-file", required_argument, NULL, OPT_PUSH_TOKEN },
		{ "spool-dir", required_argument, NULL, OPT_SPOOL_DIR },
		{ "spool-memory", required_argument, NULL, OPT_SPOOL_MEM },
		{ "label", required_argument, NULL, OPT_LABEL },
		{ "format", required_argument, NULL, 'f' },
		{ "title", required_argument, NULL, OPT_TITLE },
		{ "reverse", no_argument, NULL, OPT_REVERSE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	char msg[256];
	int c, err;

	o->hz = DEFAULT_HZ;
	o->window_s = 10;
	o->max_stacks = 20000;
	o->history_mb = 64;
	o->spool_mb = 64;
	o->filter = filter__new();
	o->rules = appname_rules__new();
	if (!o->filter || !o->rules) {
		log_error("out of memory");
		return -ENOMEM;
	}
	while ((c = getopt_long(argc, argv, "p:F:d:o:f:vh", longopts, NULL)) != -1) {
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
		case 'f':
			if (outfmt_parse(optarg, &o->format)) {
				log_error("unknown --format '%s': expected one of %s", optarg,
					  outfmt_names());
				return -EINVAL;
			}
			break;
		case OPT_TITLE:
			o->title = optarg;
			break;
		case OPT_REVERSE:
			o->reverse = true;
			break;
		case 'v':
			o->verbose++;
			break;
		case OPT_THREADS:
			o->threads = true;
			break;
		case OPT_MERGE:
			o->group = WINDOW_GROUP_COMM;
			break;
		case OPT_GROUP:
			if (!strcmp(optarg, "process"))
				o->group = WINDOW_GROUP_PROCESS;
			else if (!strcmp(optarg, "comm"))
				o->group = WINDOW_GROUP_COMM;
			else if (!strcmp(optarg, "app"))
				o->group = WINDOW_GROUP_APP;
			else if (!strcmp(optarg, "none"))
				o->group = WINDOW_GROUP_NONE;
			else {
				log_error("invalid --group '%s': expected process, comm, app or none",
					  optarg);
				return -EINVAL;
			}
			break;
		case OPT_INCLUDE:
		case OPT_EXCLUDE:
			if (filter__add(o->filter, c == OPT_INCLUDE, optarg, msg, sizeof(msg))) {
				log_error("invalid --%s: %s", c == OPT_INCLUDE ? "include" : "exclude",
					  msg);
				return -EINVAL;
			}
			break;
		case OPT_APP_NAME:
			if (appname_rules__add(o->rules, optarg)) {
				log_error("invalid --app-name '%s': expected GLOB=NAME or NAME, with a "
					  "NAME of [A-Za-z0-9_./-]",
					  optarg);
				return -EINVAL;
			}
			break;
		case OPT_WINDOW:
			if (parse_u32(optarg, 1, 3600, &o->window_s)) {
				log_error("invalid --window '%s': expected 1-3600 seconds", optarg);
				return -EINVAL;
			}
			break;
		case OPT_MAX_STACKS:
			if (parse_u32(optarg, 100, 10000000, &o->max_stacks)) {
				log_error("invalid --max-stacks '%s': expected 100-10000000", optarg);
				return -EINVAL;
			}
			break;
		case OPT_HISTORY_MEM:
			if (parse_u32(optarg, 1, 1 << 20, &o->history_mb)) {
				log_error("invalid --history-memory '%s': expected MB, 1-1048576",
					  optarg);
				return -EINVAL;
			}
			break;
		case OPT_SPOOL_MEM:
			if (parse_u32(optarg, 1, 1 << 20, &o->spool_mb)) {
				log_error("invalid --spool-memory '%s': expected MB, 1-1048576",
					  optarg);
				return -EINVAL;
			}
			break;
		case OPT_LISTEN:
			o->listen = optarg;
			break;
		case OPT_PUSH:
			o->push_url = optarg;
			break;
		case OPT_PUSH_TOKEN:
			o->push_token_file = optarg;
			break;
		case OPT_SPOOL_DIR:
			o->spool_dir = optarg;
			break;
		case OPT_LABEL:
			if (o->nlabels == EXPORT_MAX_LABELS) {
				log_error("too many --label options (at most %d)", EXPORT_MAX_LABELS);
				return -EINVAL;
			}
			if (export_check_label(optarg, msg, sizeof(msg))) {
				log_error("invalid --label: %s", msg);
				return -EINVAL;
			}
			o->labels[o->nlabels++] = optarg;
			break;
		case OPT_ALL:
			o->all = true;
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
	if (!o->npids && !o->all) {
		log_error("no process given: use -p PID or --all (see --help)");
		return -EINVAL;
	}
	if ((o->push_token_file || o->spool_dir) && !o->push_url) {
		log_error("--push-token-file and --spool-dir need --push URL");
		return -EINVAL;
	}
	return 0;
}

/* Write all of buf to fd. 0 or -errno. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * The profile in --format, to -o FILE (written to FILE.tmp, then renamed: a reader never sees
 * half a file) or stdout.
 */
static int write_stacks(const struct pysamp_opts *o, const struct stacks *st, int64_t from_ms,
			int64_t until_ms)
{
	struct outfmt_ctx c = { .title = o->title, .reverse = o->reverse, .hz = o->hz,
				.trace = o->trace };
	struct timespec rt, mono;
	char tmp[PATH_MAX];
	struct strbuf sb;
	int fd, err;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	c.realtime_offset_ns = (int64_t)(rt.tv_sec - mono.tv_sec) * 1000000000 +
			       (rt.tv_nsec - mono.tv_nsec);
	c.time_ns = from_ms ? from_ms * 1000000 :
			      (int64_t)o->start.tv_sec * 1000000000 + o->start.tv_nsec;
	c.duration_ns = (until_ms ? until_ms * 1000000 :
				    (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec) - c.time_ns;
	if (c.duration_ns < 0)
		c.duration_ns = 0;
	strbuf_init(&sb, 0);
	err = outfmt_write(o->format, st, &c, &sb);
	if (err) {
		log_error("cannot format the profile: %s", strerror(-err));
		strbuf_release(&sb);
		return err;
	}
	if (o->trace && trace__dropped(o->trace))
		log_warn("chrome trace: %llu samples beyond its %zu-sample cap were left out",
			 (unsigned long long)trace__dropped(o->trace), trace__samples(o->trace));
	if (!o->output) {
		err = write_all(STDOUT_FILENO, sb.buf, sb.len);
		if (err)
			log_error("cannot write to stdout: %s", strerror(-err));
		strbuf_release(&sb);
		return err;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", o->output) >= (int)sizeof(tmp)) {
		strbuf_release(&sb);
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		log_error("cannot create '%s': %s", tmp, strerror(-err));
		strbuf_release(&sb);
		return err;
	}
	err = write_all(fd, sb.buf, sb.len);
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, o->output))
		err = -errno;
	if (err) {
		log_error("cannot write '%s': %s", o->output, strerror(-err));
		unlink(tmp);
	}
	strbuf_release(&sb);
	return err;
}

static int write_output(const struct pysamp_opts *o, const struct agent *a)
{
	struct window_query q = { .group = o->group };
	struct stacks *st = stacks__new();
	int64_t from, until;
	int err;

	err = st ? agent_query(a, 0, INT64_MAX, true, &q, st, &from, &until) : -ENOMEM;
	if (err)
		log_error("cannot gather the profile: %s", strerror(-err));
	else
		err = write_stacks(o, st, from, until);
	stacks__free(st);
	return err;
}

/* Hooks: run on the agent's loop. */
static void on_window(void *ctx, const struct window *w)
{
	struct outputs *out = ctx;

	if (out->push)
		export_window(&out->export, w);
}

/*
 * A --duration run on a terminal: one status line on stderr, redrawn each second (elapsed,
 * samples, processes), ended with a newline when sampling stops.
 */
static void progress(struct outputs *out, bool last)
{
	const struct agent *a = out->agent;
	struct timespec now;
	double elapsed;

	if (!out->progress)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	elapsed = (double)(now.tv_sec - out->progress_start.tv_sec) +
		  (double)(now.tv_nsec - out->progress_start.tv_nsec) / 1e9;
	if (!last && elapsed < out->progress_next)
		return;
	out->progress_next = (double)(int)elapsed + 1;
	fprintf(stderr, "\r\033[Kpysamp-bpf: %.0f/%.0f s, %llu samples, %zu processes%s",
		elapsed, (double)out->o->duration_ms / 1000, (unsigned long long)a->samples,
		a->targets ? targets__count(a->targets) : (size_t)0, last ? "\n" : "");
}

static void on_tick(void *ctx)
{
	struct outputs *out = ctx;

	progress(out, false);
	if (out->serve)
		(void)serve__poll(out->serve);
	if (out->push)
		(void)push__poll(out->push);
	if (reloading) {
		reloading = 0;
		log_info("SIGHUP: reloading");
		if (out->push)
			(void)push__reload(out->push);
		if (out->o->output)
			(void)write_output(out->o, out->agent);
	}
}

static int enqueue_push(void *ctx, const struct push_item *it)
{
	return push__enqueue(ctx, it);
}

static int open_outputs(struct outputs *out, struct pysamp_opts *o, struct agent *a)
{
	char err[512] = "";
	char host[256] = "unknown";

	out->o = o;
	out->agent = a;
	if (gethostname(host, sizeof(host) - 1))
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	if (o->push_url) {
		struct push_opts po = {
			.url = o->push_url,
			.token_file = o->push_token_file,
			.spool_dir = o->spool_dir,
			.spool_mem_bytes = (size_t)o->spool_mb << 20,
			.user_agent = "pysamp-bpf/" PYSAMP_VERSION,
		};

		out->push = push__new(&po, err, sizeof(err));
		if (!out->push) {
			log_error("--push %s: %s", o->push_url, err);
			return -EINVAL;
		}
	}
	{
		/* Pushed (--push) and served (GET /export) profiles are built the same way. */
		struct export_opts eo = {
			.enqueue = out->push ? enqueue_push : NULL,
			.ctx = out->push,
			.sample_rate = o->hz,
			.host = host,
			.labels = o->labels,
			.nlabels = o->nlabels,
		};

		export_init(&out->export, &eo);
	}
	if (o->listen) {
		struct serve_opts so = {
			.listen = o->listen,
			.agent = a,
			.push = out->push,
			.export = &out->export,
		};

		out->serve = serve__new(&so, err, sizeof(err));
		if (!out->serve) {
			log_error("--listen %s: %s", o->listen, err);
			return -EINVAL;
		}
		log_info("serving on port %u: GET / (folded), /metrics, /healthz",
			 serve__port(out->serve));
	}
	return 0;
}

static void close_outputs(struct outputs *out)
{
	serve__free(out->serve);
	push__free(out->push);
	memset(out, 0, sizeof(*out));
}

int main(int argc, char **argv)
{
	struct pysamp_opts opts;
	struct outputs outs;
	struct agent_opts ao;
	struct agent agent;
	struct sigaction sa;
	int err;

	log_set_prog("pysamp-bpf");
	/* Subcommands: a live view, and a one-shot traceback of a process. */
	if (argc > 1 && !strcmp(argv[1], "top"))
		return top_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "dump"))
		return dump_main(argc - 1, argv + 1);
	memset(&opts, 0, sizeof(opts));
	memset(&outs, 0, sizeof(outs));
	memset(&agent, 0, sizeof(agent));
	err = parse_args(argc, argv, &opts);
	if (err)
		goto cleanup;
	log_set_level(opts.verbose >= 2 ? LOG_DEBUG : opts.verbose ? LOG_INFO : LOG_WARN);
	libbpf_set_print(log_libbpf_print);

	if (geteuid() != 0) {
		log_error("must run as root (BPF programs, perf events and reading other "
			  "processes' memory need CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE)");
		err = -EPERM;
		goto cleanup;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN); /* a reader going away is an error return, not a death */

	/* Outputs first: a bad address or collector URL fails before any BPF work. */
	err = open_outputs(&outs, &opts, &agent);
	if (err)
		goto cleanup;
	if (opts.format == OUTFMT_CHROME) {
		opts.trace = trace__new(TRACE_MAX_SAMPLES);
		if (!opts.trace) {
			err = -ENOMEM;
			log_error("out of memory");
			goto cleanup;
		}
	}
	clock_gettime(CLOCK_REALTIME, &opts.start);
	ao = (struct agent_opts){
		.pids = opts.pids,
		.npids = opts.npids,
		.all = opts.all,
		.hz = opts.hz,
		.duration_ms = opts.duration_ms,
		.verbose = opts.verbose,
		.threads = opts.threads,
		.window_ms = opts.window_s * 1000,
		.max_stacks = opts.max_stacks,
		.history_bytes = (size_t)opts.history_mb << 20,
		.filter = opts.filter,
		.rules = opts.rules,
		.trace = opts.trace,
		.on_window = on_window,
		.on_tick = on_tick,
		.hook_ctx = &outs,
	};
	err = agent_start(&agent, &ao);
	if (err)
		goto cleanup;
	outs.progress = opts.duration_ms && isatty(STDERR_FILENO) && !opts.verbose;
	clock_gettime(CLOCK_MONOTONIC, &outs.progress_start);
	err = agent_run(&agent, &exiting);
	progress(&outs, true);
	if (err)
		goto cleanup;
	if (outs.push) {
		int left = push__flush(outs.push, FLUSH_MS);

		if (left > 0)
			log_warn("push: %d profile(s) not delivered at exit%s", left,
				 opts.spool_dir ? " (kept in the spool directory)" : "");
	}
	if (!opts.listen && !opts.push_url)
		err = write_output(&opts, &agent);
	else if (opts.output)
		err = write_output(&opts, &agent);
	agent_report(&agent);
cleanup:
	close_outputs(&outs);
	agent_release(&agent);
	filter__free(opts.filter);
	appname_rules__free(opts.rules);
	trace__free(opts.trace);
	free(opts.pids);
	return err ? 1 : 0;
}
