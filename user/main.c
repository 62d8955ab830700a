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

#include "agent.h"
#include "folded.h"
#include "log.h"
#include "util.h"

#define PYSAMP_VERSION "0.1.0"
#define DEFAULT_HZ     99
#define MAX_HZ	       10000
static volatile sig_atomic_t exiting;

struct pysamp_opts {
	int *pids;
	size_t npids;
	bool all;
	uint32_t hz;
	uint64_t duration_ms; /* 0 = until stopped */
	const char *output;   /* NULL = stdout */
	int verbose;
	bool threads;
	bool merge;
};

static void on_signal(int sig)
{
	(void)sig;
	exiting = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pysamp-bpf {-p PID[,PID...] | --all} [-F HZ] [-d SECONDS] [-o FILE] [-v]\n"
		"                  [--threads] [--merge]\n"
		"\n"
		"Sample the on-CPU Python stacks of running CPython processes (2.7, 3.6-3.13+) "
		"from\n"
		"the kernel with eBPF and print them as folded stacks (flamegraph.pl input).\n"
		"\n"
		"  -p, --pid PID[,PID...]   processes to profile (repeatable); their forks too\n"
		"      --all                every Python process on the host, including those\n"
		"                           started (exec) or forked while profiling\n"
		"  -F, --frequency HZ       samples per second per CPU (default %d)\n"
		"  -d, --duration SECONDS   stop after this long (10, 1.5, 500ms, 2m); default:\n"
		"                           until Ctrl-C, SIGTERM, or (-p) every target has exited\n"
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
	enum { OPT_THREADS = 256, OPT_MERGE, OPT_VERSION, OPT_ALL };
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "frequency", required_argument, NULL, 'F' },
		{ "duration", required_argument, NULL, 'd' },
		{ "output", required_argument, NULL, 'o' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "threads", no_argument, NULL, OPT_THREADS },
		{ "merge", no_argument, NULL, OPT_MERGE },
		{ "all", no_argument, NULL, OPT_ALL },
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
	return 0;
}

static int write_output(const struct pysamp_opts *o, const struct stacks *st)
{
	char tmp[4096];
	FILE *f;
	int err;

	if (!o->output) {
		err = folded_write(st, stdout);
		if (err)
			log_error("cannot write to stdout: %s", strerror(-err));
		return err;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", o->output) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f) {
		err = -errno;
		log_error("cannot create '%s': %s", tmp, strerror(-err));
		return err;
	}
	err = folded_write(st, f);
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, o->output))
		err = -errno;
	if (err) {
		log_error("cannot write '%s': %s", o->output, strerror(-err));
		unlink(tmp);
	}
	return err;
}

int main(int argc, char **argv)
{
	struct pysamp_opts opts;
	struct agent_opts ao;
	struct agent agent;
	struct sigaction sa;
	int err;

	memset(&opts, 0, sizeof(opts));
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

	ao = (struct agent_opts){
		.pids = opts.pids,
		.npids = opts.npids,
		.all = opts.all,
		.hz = opts.hz,
		.duration_ms = opts.duration_ms,
		.verbose = opts.verbose,
		.threads = opts.threads,
		.merge = opts.merge,
	};
	err = agent_start(&agent, &ao);
	if (err)
		goto cleanup;
	err = agent_run(&agent, &exiting);
	if (err)
		goto cleanup;
	err = write_output(&opts, agent.st);
	agent_report(&agent);
cleanup:
	agent_release(&agent);
	free(opts.pids);
	return err ? 1 : 0;
}
