/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * formats.c - time, memory and size of every output format for one large profile.
 *
 *   .output/bench_formats [-n STACKS] [-s SEED]
 *
 * Builds a profile of STACKS (default 100,000) unique stacks, up to 40 deep, frames from a pool
 * of 20,000 labels shaped like the agent's ("pkg.mod.Class.fn_N (/srv/app/pkg/mod_M.py:LINE)"):
 * 8 threads each walk a call tree (a sample keeps a random prefix of at least half of the
 * thread's previous stack and adds 1-6 frames), skewed counts; the same samples in time order
 * (10 ms apart per thread) are the trace the chrome format needs. Each format is then written in its own
 * child process (fork), so that its peak memory is its own: wall time of outfmt_write, peak RSS
 * of the child minus its RSS before writing, and output bytes. Figures are also printed as ratios
 * to the folded writer measured in the same run.
 * Goal (issue 5): each under 1 s and 200 MB on this machine.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "outfmt.h"
#include "stacks.h"
#include "trace.h"
#include "util.h"

#define POOL	20000
#define ROOTS	50
#define MAXDEPTH 40

struct result {
	double seconds;
	long rss_kb;
	uint64_t bytes;
	int err;
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static long rss_kb(void)
{
	long kb = 0;
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

static int build(size_t nstacks, struct stacks **out, struct trace **tr)
{
	struct stacks *st = stacks__new();
	static uint32_t pool[POOL], roots[ROOTS];
	static uint32_t ids[MAXDEPTH + 1];
	char label[160];
	int err = 0;

	*tr = trace__new(nstacks);
	if (!st || !*tr)
		return -ENOMEM;
	for (uint32_t i = 0; !err && i < POOL; i++) {
		int n = snprintf(label, sizeof(label), "pkg%u.mod%u.Class%u.fn_%u (/srv/app/pkg%u/mod_%u.py:%u)",
				 i % 23, i % 311, i % 7, i, i % 23, i % 311, 10 + i % 900);

		err = stacks__intern(st, label, (size_t)n, &pool[i]);
	}
	for (uint32_t i = 0; !err && i < ROOTS; i++) {
		int n = snprintf(label, sizeof(label), "python3 [%u]", 1000 + i);

		err = stacks__intern(st, label, (size_t)n, &roots[i]);
	}
	/*
	 * Each of 8 threads walks: its next stack keeps a random prefix of at least half of its
	 * last one and adds 1-6 random frames, as consecutive samples of a program do; so the call
	 * tree shares prefixes like a real one, and the trace has spans to merge.
	 */
	{
		static uint32_t cur[8][MAXDEPTH + 1];
		size_t len[8] = { 0 };
		uint64_t ts = 0;

		for (int th = 0; th < 8; th++) {
			cur[th][0] = roots[th % ROOTS];
			len[th] = 1;
		}
		while (!err && stacks__nstacks(st) < nstacks) {
			int th = (int)(rnd() % 8);
			size_t keep = len[th] / 2 + rnd() % (len[th] / 2 + 1), add = 1 + rnd() % 6;

			if (keep < 1)
				keep = 1;
			if (keep + add > MAXDEPTH + 1)
				add = MAXDEPTH + 1 - keep;
			for (size_t d = keep; d < keep + add; d++)
				cur[th][d] = pool[rnd() % POOL];
			len[th] = keep + add;
			memcpy(ids, cur[th], len[th] * sizeof(*ids));
			err = stacks__add(st, ids, len[th], 1 + 1000 / (1 + rnd() % 1000));
			ts += 10000000ull / 8;
			if (!err)
				err = trace__add(*tr, ts, 1000 + (uint32_t)(th % ROOTS), (uint32_t)th, st,
						 ids[0], ids + 1, len[th] - 1);
		}
	}
	*out = st;
	return err;
}

static struct result run(enum outfmt f, size_t nstacks, uint64_t seed)
{
	struct result r = { 0 };
	int fds[2];
	pid_t pid;

	if (pipe(fds))
		return (struct result){ .err = -errno };
	pid = fork();
	if (pid == 0) {
		struct outfmt_ctx c = { .title = "bench", .hz = 99 };
		struct stacks *st = NULL;
		struct trace *tr = NULL;
		struct rusage ru;
		struct timespec a, b;
		struct strbuf sb;
		long before;

		close(fds[0]);
		rng_state = seed;
		r.err = build(nstacks, &st, &tr);
		c.trace = tr;
		before = rss_kb();
		strbuf_init(&sb, 0);
		clock_gettime(CLOCK_MONOTONIC, &a);
		if (!r.err)
			r.err = outfmt_write(f, st, &c, &sb);
		clock_gettime(CLOCK_MONOTONIC, &b);
		getrusage(RUSAGE_SELF, &ru);
		r.seconds = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
		r.rss_kb = ru.ru_maxrss - before;
		r.bytes = sb.len;
		if (write(fds[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	if (pid < 0 || read(fds[0], &r, sizeof(r)) != (ssize_t)sizeof(r))
		r.err = -EIO;
	close(fds[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return r;
}

int main(int argc, char **argv)
{
	static const enum outfmt fmts[] = { OUTFMT_FOLDED, OUTFMT_SVG, OUTFMT_SPEEDSCOPE,
					    OUTFMT_CHROME, OUTFMT_PPROF, OUTFMT_JSON };
	static const char *names[] = { "folded", "svg", "speedscope", "chrome", "pprof", "json" };
	struct result base = { 0 };
	size_t nstacks = 100000;
	uint64_t seed = 42;
	int c, failed = 0;

	while ((c = getopt(argc, argv, "n:s:h")) != -1) {
		switch (c) {
		case 'n':
			nstacks = strtoul(optarg, NULL, 10);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: %s [-n STACKS] [-s SEED]\n", argv[0]);
			return 2;
		}
	}
	if (!nstacks || !seed) {
		fprintf(stderr, "bench_formats: -n and -s must be positive\n");
		return 2;
	}
	printf("output formats, %zu unique stacks (the trace: the samples that made them), one child "
	       "per format\n",
	       nstacks);
	printf("%-11s %9s %11s %12s   %s\n", "format", "time (s)", "memory (MB)", "size (MB)",
	       "vs folded: time, memory, size");
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		struct result r = run(fmts[i], nstacks, seed);

		if (r.err) {
			printf("%-11s failed: %s\n", names[i], strerror(-r.err));
			failed = 1;
			continue;
		}
		if (fmts[i] == OUTFMT_FOLDED)
			base = r;
		printf("%-11s %9.3f %11.1f %12.1f   %.2fx %.2fx %.2fx%s\n", names[i], r.seconds,
		       (double)r.rss_kb / 1024, (double)r.bytes / 1e6,
		       base.seconds > 0 ? r.seconds / base.seconds : 0.0,
		       base.rss_kb > 0 ? (double)r.rss_kb / (double)base.rss_kb : 0.0,
		       base.bytes ? (double)r.bytes / (double)base.bytes : 0.0,
		       r.seconds < 1.0 && r.rss_kb < 200 * 1024 ? "" : "  (goal: < 1 s, < 200 MB)");
	}
	return failed;
}
