/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * store_ingest.c - store__ingest throughput and bytes on disk per sample.
 *
 * Build: make .output/store_ingest (make bench-collector builds and runs it).
 * Run:
 *   .output/store_ingest [-d DIR] [-n STEADY] [-s STACKS] [-f FRAMES] [-D DEPTH]
 *                        [-b BUCKETS] [-k SERIES] [-S SAMPLES_PER_BUCKET]
 *
 * Phase 1 (throughput): one profile of STACKS distinct stacks of depth DEPTH +- 5 drawn from
 * FRAMES distinct frames, first ingested as new stacks (5 rounds, each 2000 fresh stacks over the
 * same frames), then STEADY times into successive 10 s buckets as an agent does. Lines/s is
 * stacks ingested per second of wall time (and of CPU time, the machine being shared).
 *
 * Phase 2 (size): SERIES series, BUCKETS successive buckets each (8640 = one day); every bucket
 * of every series gets SAMPLES_PER_BUCKET samples drawn from a Zipf(1.1) law over the STACKS
 * stacks (each series ranks them differently), so a bucket holds the few hundred stacks a real
 * 10 s profile has, most with small counts. Bytes per sample = live database bytes / samples.
 * Then (phase 3) store__compact as of 2 days later, 10000 pairs per call: everything moves into
 * 1 min buckets; the time it takes and the size after.
 *
 * With -Q, instead (queries over hour rollups):
 *   .output/store_ingest -Q [-d DIR] [-R] [-k SERIES] [-b BUCKETS] [-s POPULATION] [-p STACKS]
 *                        [-S SAMPLES] [-V VARIANTS] [-r REPEAT]
 * SERIES series of one app (labels host=h0..), BUCKETS 10 s buckets each (8640: a day), each a
 * profile of STACKS stacks of a shared POPULATION (as bench/collector.py draws them: the first
 * STACKS/3 in every profile, the rest Pareto(0.6) over the population, counts ~1/rank adding up to
 * SAMPLES), drawn afresh for every bucket (VARIANTS 0) or cycling through VARIANTS profiles per
 * series as bench/collector.py does (3), plus one bucket more that starts the next hour (an hour
 * is rolled up once its series has moved on). Then store__compact as of a minute after the day,
 * 20000 pairs per call as the collector does, until done (this builds the hour rollups; the 10 s
 * buckets stay). Then the median of REPEAT runs of store__query and store__timeline_step over
 * the day (all series), with and without rollups, with edges on hours or not, and over one hour;
 * results with and without rollups are checked to be equal. -R reuses DIR/q from an earlier run
 * (no ingest, no compaction).
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "stacks.h"
#include "store.h"

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static double now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void die(const char *what, int err)
{
	fprintf(stderr, "store_ingest: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

struct shape {
	int nstacks, nframes, depth;
	char **frames;
	uint32_t **stk; /* frame indexes per stack, root first */
	int *len;
};

/* nstacks random stacks over nframes frames; the root is one of 4 process frames. */
static void shape_build(struct shape *sh, uint64_t seed)
{
	uint64_t rng = seed;
	int i, j;

	sh->stk = calloc((size_t)sh->nstacks, sizeof(*sh->stk));
	sh->len = calloc((size_t)sh->nstacks, sizeof(*sh->len));
	if (!sh->stk || !sh->len)
		die("calloc", ENOMEM);
	for (i = 0; i < sh->nstacks; i++) {
		sh->len[i] = sh->depth - 5 + (int)(rng_next(&rng) % 11);
		if (sh->len[i] < 1)
			sh->len[i] = 1;
		sh->stk[i] = calloc((size_t)sh->len[i], sizeof(uint32_t));
		if (!sh->stk[i])
			die("calloc", ENOMEM);
		sh->stk[i][0] = (uint32_t)(rng_next(&rng) % 4);
		/* A shared trunk then random frames: call trees share prefixes. */
		for (j = 1; j < sh->len[i]; j++)
			sh->stk[i][j] = j < 4 ? (uint32_t)(4 + j)
					      : (uint32_t)(8 + rng_next(&rng) %
								       (uint64_t)(sh->nframes - 8));
	}
}

static void shape_free(struct shape *sh)
{
	int i;

	for (i = 0; i < sh->nstacks; i++)
		free(sh->stk[i]);
	free(sh->stk);
	free(sh->len);
}

static char **frames_build(int n)
{
	char **f = calloc((size_t)n, sizeof(*f));
	int i;

	if (!f)
		die("calloc", ENOMEM);
	for (i = 0; i < n; i++) {
		int r = i < 4 ? asprintf(&f[i], "python3 [%d]", 4000 + i)
			      : asprintf(&f[i], "Handler.method_%d (/srv/app/pkg/module_%d.py:%d)",
					 i, i % 37, 10 + i * 7 % 900);
		if (r < 0)
			die("asprintf", ENOMEM);
	}
	return f;
}

/* Profile with count[i] samples of stack i (skipping zeros). */
static struct stacks *profile(const struct shape *sh, const uint64_t *count)
{
	struct stacks *st = stacks__new();
	uint32_t ids[64];
	int i, j, err;

	if (!st)
		die("stacks__new", ENOMEM);
	for (i = 0; i < sh->nstacks; i++) {
		if (!count[i])
			continue;
		for (j = 0; j < sh->len[i] && j < 64; j++) {
			const char *name = sh->frames[sh->stk[i][j]];

			err = stacks__intern(st, name, strlen(name), &ids[j]);
			if (err)
				die("stacks__intern", err);
		}
		err = stacks__add(st, ids, (size_t)j, count[i]);
		if (err)
			die("stacks__add", err);
	}
	return st;
}

static uint64_t file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) ? 0 : (uint64_t)sb.st_size;
}

/* live = (page_count - freelist_count) * page_size, read from outside the store. */
static uint64_t live_bytes(const char *dir)
{
	char path[4400];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v[3] = { 0, 0, 0 };
	const char *q[3] = { "PRAGMA page_count", "PRAGMA freelist_count", "PRAGMA page_size" };
	int i;

	snprintf(path, sizeof(path), "%s/profiles.db", dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		die("sqlite3_open", EIO);
	for (i = 0; i < 3; i++) {
		if (sqlite3_prepare_v2(db, q[i], -1, &st, NULL) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			v[i] = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return (uint64_t)(v[0] - v[1]) * (uint64_t)v[2];
}

/* ---- -Q: queries over hour rollups ---- */

struct qopt {
	const char *dir;
	bool reuse;
	int nseries, buckets, population, per_profile, samples, variants, repeat, depth;
};

/* A Pareto(alpha) variate (Python's random.paretovariate). */
static double pareto(uint64_t *rng, double alpha)
{
	double u = 1.0 - (double)(rng_next(rng) >> 11) / 9007199254740992.0;

	return pow(u, -1.0 / alpha);
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/*
 * One window of one host (bench/collector.py make_profile): the hot stacks and a Pareto tail,
 * ranked, counts ~ total / (rank + 1). idx has room for nstacks entries, count for as many.
 */
static void draw_profile(uint64_t *rng, const struct qopt *o, uint32_t *idx, uint64_t *count)
{
	int n = 0, i, j, hot = o->per_profile / 3;
	double wsum = 0;

	for (i = 0; i < hot && i < o->population; i++)
		idx[n++] = (uint32_t)i;
	while (n < o->per_profile && n < o->population) {
		double x = pareto(rng, 0.6);
		uint32_t k = x >= o->population - 1 ? (uint32_t)o->population - 1 : (uint32_t)x;

		for (j = 0; j < n && idx[j] != k; j++)
			;
		if (j == n)
			idx[n++] = k;
	}
	qsort(idx, (size_t)n, sizeof(*idx), u32_cmp);
	for (i = 0; i < n; i++)
		wsum += 1.0 / (i + 1);
	for (i = 0; i < n; i++) {
		uint64_t c = (uint64_t)((double)o->samples * (1.0 / (i + 1)) / wsum);

		count[i] = c ? c : 1;
	}
	for (; i < o->per_profile; i++)
		count[i] = 0;
}

/* The profile of stacks idx[i] with count[i], into st (cleared); frame ids are frame indexes. */
static void fill_profile(struct stacks *st, const struct shape *sh, const uint32_t *idx,
			 const uint64_t *count, int n)
{
	uint32_t id;
	int i, e;

	stacks__clear(st);
	for (i = 0; i < sh->nframes; i++) {
		e = stacks__intern(st, sh->frames[i], strlen(sh->frames[i]), &id);
		if (e || id != (uint32_t)i)
			die("stacks__intern", e ? e : EINVAL);
	}
	for (i = 0; i < n; i++) {
		if (!count[i])
			continue;
		e = stacks__add(st, sh->stk[idx[i]], (size_t)sh->len[idx[i]], count[i]);
		if (e)
			die("stacks__add", e);
	}
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct tlsum {
	uint64_t points;
	uint64_t samples;
	uint64_t hash;
};

static int tl_visit(void *arg, int64_t t, int64_t width, uint64_t count)
{
	struct tlsum *ts = arg;

	ts->points++;
	ts->samples += count;
	ts->hash = (ts->hash ^ (uint64_t)t ^ ((uint64_t)width << 40) ^ count) * 0x100000001b3ULL;
	return 0;
}

struct qres {
	uint64_t total, nstacks, hash;
};

static int qhash_visit(const uint32_t *ids, size_t n, uint64_t count, void *arg)
{
	struct qres *r = arg;
	size_t i;

	for (i = 0; i < n; i++)
		r->hash = (r->hash ^ ids[i]) * 0x100000001b3ULL;
	r->hash = (r->hash ^ count) * 0x100000001b3ULL;
	return 0;
}

/* Median wall time of repeat store__query runs; the result's fingerprint in *res. */
static double time_query(struct store *s, bool rollups, int64_t from, int64_t until, int repeat,
			 struct qres *res)
{
	double t[32], t0;
	int i, e;

	e = store__set_rollups(s, rollups);
	if (e)
		die("store__set_rollups", e);
	for (i = 0; i < repeat && i < 32; i++) {
		struct stacks *st = stacks__new();

		if (!st)
			die("stacks__new", ENOMEM);
		t0 = now_wall();
		e = store__query(s, "bench", NULL, from, until, st);
		t[i] = now_wall() - t0;
		if (e)
			die("store__query", e);
		if (i == 0) {
			memset(res, 0, sizeof(*res));
			res->total = stacks__total(st);
			res->nstacks = stacks__nstacks(st);
			/* frame ids follow first appearance: sorted order makes them comparable */
			e = stacks__foreach_sorted(st, qhash_visit, res);
			if (e)
				die("stacks__foreach_sorted", e);
		}
		stacks__free(st);
	}
	qsort(t, (size_t)i, sizeof(*t), dcmp);
	return t[i / 2];
}

static double time_timeline(struct store *s, bool rollups, int64_t from, int64_t until,
			    int64_t step, int repeat, struct tlsum *res)
{
	double t[32], t0;
	int i, e;

	e = store__set_rollups(s, rollups);
	if (e)
		die("store__set_rollups", e);
	for (i = 0; i < repeat && i < 32; i++) {
		memset(res, 0, sizeof(*res));
		t0 = now_wall();
		e = step ? store__timeline_step(s, "bench", NULL, from, until, step, tl_visit, res)
			 : store__timeline2(s, "bench", NULL, from, until, tl_visit, res);
		t[i] = now_wall() - t0;
		if (e)
			die("timeline", e);
	}
	qsort(t, (size_t)i, sizeof(*t), dcmp);
	return t[i / 2];
}

static void query_case(struct store *s, const char *name, int64_t from, int64_t until, int repeat)
{
	struct qres a, b;
	double ta = time_query(s, true, from, until, repeat, &a);
	double tb = time_query(s, false, from, until, repeat, &b);

	printf("query %-34s %8.1f ms with rollups, %8.1f ms without (%.1fx); %" PRIu64
	       " stacks, %" PRIu64 " samples%s\n",
	       name, ta * 1e3, tb * 1e3, tb / ta, a.nstacks, a.total,
	       a.total == b.total && a.nstacks == b.nstacks && a.hash == b.hash ? ""
										: "  MISMATCH");
	if (a.total != b.total || a.nstacks != b.nstacks || a.hash != b.hash)
		exit(1);
}

static void timeline_case(struct store *s, const char *name, int64_t from, int64_t until,
			  int64_t step, int repeat)
{
	struct tlsum a, b;
	double ta = time_timeline(s, true, from, until, step, repeat, &a);
	double tb = time_timeline(s, false, from, until, step, repeat, &b);

	printf("timeline %-31s %8.1f ms with rollups, %8.1f ms without (%.1fx); %" PRIu64
	       " points, %" PRIu64 " samples%s\n",
	       name, ta * 1e3, tb * 1e3, tb / ta, a.points, a.samples,
	       a.points == b.points && a.samples == b.samples && a.hash == b.hash ? ""
										  : "  MISMATCH");
	if (a.points != b.points || a.samples != b.samples || a.hash != b.hash)
		exit(1);
}

static void print_stats(struct store *s, const char *when, uint64_t samples)
{
	struct store_stats ss;
	int e = store__stats(s, &ss);

	if (e)
		die("store__stats", e);
	printf("%s: live %" PRIu64 " bytes (%.3f bytes/sample), db file %" PRIu64
	       " bytes; tier 0 %" PRIu64 " rows %" PRIu64 " pairs; rollups %" PRIu64 " (%" PRIu64
	       " pairs, %" PRIu64 " bytes, %.1f pairs each), %" PRIu64 " queued\n",
	       when, ss.live_bytes, samples ? (double)ss.live_bytes / (double)samples : 0.0,
	       ss.db_bytes, ss.tiers[0].rows, ss.tiers[0].entries, ss.rollups, ss.rollup_entries,
	       ss.rollup_bytes, ss.rollups ? (double)ss.rollup_entries / (double)ss.rollups : 0.0,
	       ss.rollup_queue);
}

static int query_bench(const struct qopt *o)
{
	const int64_t base = (int64_t)1700000000 / 3600 * 3600,
		      end = base + (int64_t)o->buckets * 10;
	struct shape sh = { .nstacks = o->population, .nframes = 400, .depth = o->depth };
	char path[4200], err[256] = "", dbpath[4300];
	uint64_t rng = 4242, *count, *vcount = NULL, samples = 0, lines = 0;
	uint32_t *idx, *vidx = NULL;
	double t0, c0, tin = 0, t1, wall, cpu;
	struct stacks *st;
	struct store *s;
	struct stat sb;
	int r, k, e, calls = 0, v;
	bool more;

	snprintf(path, sizeof(path), "%s/q", o->dir);
	snprintf(dbpath, sizeof(dbpath), "%s/profiles.db", path);
	if (!o->reuse || stat(dbpath, &sb)) {
		sh.frames = frames_build(sh.nframes);
		shape_build(&sh, 99);
		idx = calloc((size_t)o->per_profile, sizeof(*idx));
		count = calloc((size_t)o->per_profile, sizeof(*count));
		if (o->variants) {
			vidx = calloc((size_t)(o->nseries * o->variants * o->per_profile),
				      sizeof(*vidx));
			vcount = calloc((size_t)(o->nseries * o->variants * o->per_profile),
					sizeof(*vcount));
		}
		st = stacks__new();
		if (!idx || !count || !st || (o->variants && (!vidx || !vcount)))
			die("calloc", ENOMEM);
		for (k = 0; o->variants && k < o->nseries * o->variants; k++)
			draw_profile(&rng, o, vidx + (size_t)k * (size_t)o->per_profile,
				     vcount + (size_t)k * (size_t)o->per_profile);
		s = store__open(path, err, sizeof(err));
		if (!s) {
			fprintf(stderr, "store_ingest: %s\n", err);
			return 1;
		}
		t0 = now_wall();
		c0 = now_cpu();
		/* The last bucket starts the next hour, as live agents have sent it by then. */
		for (r = 0; r <= o->buckets; r++) {
			for (k = 0; k < o->nseries; k++) {
				char labels[32];
				const uint32_t *pi = idx;
				const uint64_t *pc = count;

				if (o->variants) {
					v = k * o->variants + r % o->variants;
					pi = vidx + (size_t)v * (size_t)o->per_profile;
					pc = vcount + (size_t)v * (size_t)o->per_profile;
				} else {
					draw_profile(&rng, o, idx, count);
				}
				fill_profile(st, &sh, pi, pc, o->per_profile);
				snprintf(labels, sizeof(labels), "host=h%d", k);
				t1 = now_wall();
				e = store__ingest(s, "bench", labels, base + (int64_t)r * 10,
						  base + (int64_t)r * 10 + 10, 100, st);
				tin += now_wall() - t1;
				if (e)
					die("store__ingest", e);
				samples += stacks__total(st);
				lines += stacks__nstacks(st);
			}
			if (r % 360 == 359) {
				fprintf(stderr, "\ringest: hour %d of %d", (r + 1) / 360,
					o->buckets / 360);
				fflush(stderr);
			}
		}
		wall = now_wall() - t0;
		cpu = now_cpu() - c0;
		fprintf(stderr, "\n");
		printf("ingest: %d series x %d buckets, %" PRIu64
		       " lines (%.1f per profile), %" PRIu64
		       " samples: %.1f s wall (%.1f s cpu); store__ingest %.1f s: %.0f lines/s\n",
		       o->nseries, o->buckets + 1, lines,
		       (double)lines / o->nseries / (o->buckets + 1), samples, wall, cpu, tin,
		       (double)lines / tin);
		print_stats(s, "before compaction", samples);
		t0 = now_wall();
		c0 = now_cpu();
		do {
			e = store__compact(s, end + 60, 20000, &more);
			if (e)
				die("store__compact", e);
			calls++;
		} while (more);
		wall = now_wall() - t0;
		cpu = now_cpu() - c0;
		printf("compact: %d calls (20000 pairs each), %.1f s wall (%.1f s cpu)\n", calls,
		       wall, cpu);
		print_stats(s, "after compaction", samples);
		store__free(s);
		stacks__free(st);
		free(idx);
		free(count);
		free(vidx);
		free(vcount);
		for (k = 0; k < sh.nframes; k++)
			free(sh.frames[k]);
		free(sh.frames);
		shape_free(&sh);
	}
	s = store__open(path, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "store_ingest: %s\n", err);
		return 1;
	}
	print_stats(s, "queries on", 0);
	/* Warm the page cache the way a running collector has it. */
	time_query(s, false, base, end, 1, &(struct qres){ 0 });
	query_case(s, "day, hour edges", base, end, o->repeat);
	query_case(s, "day, 30 min edges", base + 1800, end - 1800 + 7, o->repeat);
	query_case(s, "day, 1 min edges", base + 3540, end - 3540, o->repeat);
	query_case(s, "day, 59 min edges", base + 60, end - 60, o->repeat);
	query_case(s, "last hour", end - 3600, end, o->repeat);
	query_case(s, "last 60 min, 30 min edges", end - 5400, end - 1800, o->repeat);
	timeline_case(s, "day, step 60", base, end, 60, o->repeat);
	timeline_case(s, "day, step 300", base, end, 300, o->repeat);
	timeline_case(s, "day, step 3600", base, end, 3600, o->repeat);
	timeline_case(s, "day 30 min edges, step 60", base + 1800, end - 1800 + 7, 60, o->repeat);
	timeline_case(s, "day, step 10", base, end, 10, o->repeat);
	{
		struct tlsum ts;
		double t = time_timeline(s, true, base, end, 0, o->repeat, &ts);

		printf("timeline2 (every bucket)             %8.1f ms; %" PRIu64 " points\n",
		       t * 1e3, ts.points);
	}
	store__free(s);
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	char tmpl[] = "/tmp/store_ingest.XXXXXX", err[256] = "", path[4200];
	int steady = 300, nseries = 4, buckets = 8640, spb = 4000, opt, i, k, r, e;
	struct shape sh = { .nstacks = 2000, .nframes = 300, .depth = 20 };
	uint64_t *count, rng = 42, lines, samples, base = 1700000000;
	double t0, c0, wall, cpu, *cdf, zsum;
	struct store *s;
	struct stacks *st;
	struct store_stats ss;
	bool more, qmode = false, kset = false, sset = false;
	int calls;
	struct qopt qo = {
		.nseries = 100, .population = 5000, .per_profile = 300, .variants = 0, .repeat = 5
	};

	log_set_level(LOG_WARN);
	while ((opt = getopt(argc, argv, "d:n:s:f:D:b:k:S:QRp:V:r:")) != -1) {
		switch (opt) {
		case 'Q':
			qmode = true;
			break;
		case 'R':
			qo.reuse = true;
			break;
		case 'p':
			qo.per_profile = atoi(optarg);
			break;
		case 'V':
			qo.variants = atoi(optarg);
			break;
		case 'r':
			qo.repeat = atoi(optarg);
			break;
		case 'd':
			dir = optarg;
			break;
		case 'n':
			steady = atoi(optarg);
			break;
		case 's':
			sh.nstacks = atoi(optarg);
			sset = true;
			break;
		case 'f':
			sh.nframes = atoi(optarg);
			break;
		case 'D':
			sh.depth = atoi(optarg);
			break;
		case 'b':
			buckets = atoi(optarg);
			break;
		case 'k':
			nseries = atoi(optarg);
			kset = true;
			break;
		case 'S':
			spb = atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-d DIR] [-n STEADY] [-s STACKS] [-f FRAMES] "
				"[-D DEPTH] [-b BUCKETS] [-k SERIES] [-S SAMPLES]\n"
				"       %s -Q [-d DIR] [-R] [-k SERIES] [-b BUCKETS] "
				"[-s POPULATION] [-p STACKS] [-S SAMPLES] [-V VARIANTS] "
				"[-r REPEAT]\n",
				argv[0], argv[0]);
			return 2;
		}
	}
	if (qmode) {
		int ret;

		qo.dir = dir;
		if (!qo.dir) {
			if (!mkdtemp(tmpl))
				die("mkdtemp", errno);
			qo.dir = tmpl;
		}
		/* -k, -b, -s, -S keep their meaning; -k and -s default to 100 and 5000 here. */
		qo.nseries = kset ? nseries : 100;
		qo.buckets = buckets;
		qo.population = sset ? sh.nstacks : 5000;
		qo.samples = spb;
		qo.depth = sh.depth;
		if (qo.nseries < 1 || qo.buckets < 1 || qo.population < 1 || qo.per_profile < 1 ||
		    qo.samples < 1 || qo.repeat < 1 || qo.variants < 0)
			return 2;
		ret = query_bench(&qo);
		if (qo.dir == tmpl && nftw(qo.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS))
			perror("rm");
		return ret;
	}
	if (sh.nframes < 16 || sh.nstacks < 1 || sh.depth < 1 || steady < 1)
		return 2;
	if (!dir) {
		if (!mkdtemp(tmpl))
			die("mkdtemp", errno);
		dir = tmpl;
	}
	sh.frames = frames_build(sh.nframes);
	count = calloc((size_t)sh.nstacks, sizeof(*count));
	cdf = calloc((size_t)sh.nstacks, sizeof(*cdf));
	if (!count || !cdf)
		die("calloc", ENOMEM);

	/* ---- phase 1: throughput ---- */
	snprintf(path, sizeof(path), "%s/tput", dir);
	s = store__open(path, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "store_ingest: %s\n", err);
		return 1;
	}
	for (i = 0; i < sh.nstacks; i++)
		count[i] = 1 + rng_next(&rng) % 50;
	lines = 0;
	t0 = now_wall();
	c0 = now_cpu();
	for (r = 0; r < 5; r++) {
		struct shape fresh = sh;

		shape_build(&fresh, 1000 + (uint64_t)r);
		st = profile(&fresh, count);
		e = store__ingest(s, "bench", "round=new", (int64_t)base + r * 10,
				  (int64_t)base + r * 10 + 10, 100, st);
		if (e)
			die("store__ingest", e);
		lines += stacks__nstacks(st);
		stacks__free(st);
		shape_free(&fresh);
	}
	wall = now_wall() - t0;
	cpu = now_cpu() - c0;
	printf("first-time stacks: %" PRIu64 " lines in %.3f s: %.0f lines/s (cpu %.0f lines/s)\n",
	       lines, wall, (double)lines / wall, (double)lines / cpu);

	shape_build(&sh, 7);
	st = profile(&sh, count);
	e = store__ingest(s, "bench", "agent=1", (int64_t)base - 10, (int64_t)base, 100, st);
	if (e)
		die("store__ingest", e);
	lines = 0;
	t0 = now_wall();
	c0 = now_cpu();
	for (r = 0; r < steady; r++) {
		e = store__ingest(s, "bench", "agent=1", (int64_t)base + r * 10,
				  (int64_t)base + r * 10 + 10, 100, st);
		if (e)
			die("store__ingest", e);
		lines += stacks__nstacks(st);
	}
	wall = now_wall() - t0;
	cpu = now_cpu() - c0;
	printf("steady: %d ingests x %zu stacks (depth %d+-5, %d frames): %.3f s: %.0f lines/s "
	       "(cpu %.0f lines/s)\n",
	       steady, stacks__nstacks(st), sh.depth, sh.nframes, wall, (double)lines / wall,
	       (double)lines / cpu);
	stacks__free(st);
	store__free(s);

	/* ---- phase 2: bytes per sample ---- */
	snprintf(path, sizeof(path), "%s/size", dir);
	s = store__open(path, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "store_ingest: %s\n", err);
		return 1;
	}
	zsum = 0;
	for (i = 0; i < sh.nstacks; i++) {
		zsum += 1.0 / pow(i + 1, 1.1);
		cdf[i] = zsum;
	}
	samples = 0;
	lines = 0;
	t0 = now_wall();
	for (r = 0; r < buckets; r++) {
		for (k = 0; k < nseries; k++) {
			char labels[32];

			memset(count, 0, (size_t)sh.nstacks * sizeof(*count));
			for (i = 0; i < spb; i++) {
				double u =
					(double)(rng_next(&rng) >> 11) / 9007199254740992.0 * zsum;
				int lo = 0, hi = sh.nstacks - 1;

				while (lo < hi) {
					int mid = (lo + hi) / 2;

					if (cdf[mid] < u)
						lo = mid + 1;
					else
						hi = mid;
				}
				/* each series ranks the stacks differently */
				count[(lo * 7 + k * 131) % sh.nstacks]++;
			}
			st = profile(&sh, count);
			snprintf(labels, sizeof(labels), "host=h%d", k);
			e = store__ingest(s, "size", labels, (int64_t)base + r * 10,
					  (int64_t)base + r * 10 + 10, 99, st);
			if (e)
				die("store__ingest", e);
			samples += stacks__total(st);
			lines += stacks__nstacks(st);
			stacks__free(st);
		}
	}
	wall = now_wall() - t0;
	e = store__stats(s, &ss);
	if (e)
		die("store__stats", e);
	printf("size: tier 0: %" PRIu64 " rows, %" PRIu64 " pairs, %" PRIu64 " samples; %" PRIu64
	       " stacks, %" PRIu64 " frames; cache %" PRIu64 " hits %" PRIu64 " misses\n",
	       ss.tiers[0].rows, ss.tiers[0].entries, ss.tiers[0].samples, ss.stacks, ss.frames,
	       ss.cache_hits, ss.cache_misses);
	store__free(s); /* checkpoints the WAL into the database */
	snprintf(path, sizeof(path), "%s/size/profiles.db", dir);
	{
		uint64_t db = file_size(path), live;

		snprintf(path, sizeof(path), "%s/size", dir);
		live = live_bytes(path);
		printf("size: %d series x %d buckets x %d samples (%.1f stacks/bucket, %.2f "
		       "samples/stack-row): %" PRIu64 " samples in %.1f s\n",
		       nseries, buckets, spb, (double)lines / nseries / buckets,
		       (double)samples / (double)lines, samples, wall);
		printf("size: live %" PRIu64 " bytes, db file %" PRIu64 " bytes: %.3f bytes/sample "
		       "(file %.3f), %.1f bytes per (bucket, stack) row\n",
		       live, db, (double)live / (double)samples, (double)db / (double)samples,
		       (double)live / (double)lines);
	}

	/* ---- phase 3: downsample the day into 1 min buckets ---- */
	snprintf(path, sizeof(path), "%s/size", dir);
	s = store__open(path, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "store_ingest: %s\n", err);
		return 1;
	}
	t0 = now_wall();
	c0 = now_cpu();
	calls = 0;
	do {
		e = store__compact(s, (int64_t)base + (int64_t)buckets * 10 + 2 * 86400 + 60, 10000,
				   &more);
		if (e)
			die("store__compact", e);
		calls++;
	} while (more);
	wall = now_wall() - t0;
	cpu = now_cpu() - c0;
	e = store__stats(s, &ss);
	if (e)
		die("store__stats", e);
	printf("compact: %d calls, %.2f s (cpu %.2f s): %" PRIu64 " rows (%" PRIu64
	       " pairs) moved, %.0f pairs/s; tier 1: %" PRIu64 " rows, %" PRIu64 " pairs\n",
	       calls, wall, cpu, ss.moved_rows, ss.moved_entries, (double)ss.moved_entries / wall,
	       ss.tiers[1].rows, ss.tiers[1].entries);
	printf("compact: live %" PRIu64 " bytes (%.3f bytes/sample), db file %" PRIu64
	       " bytes, %" PRIu64 " pages vacuumed\n",
	       ss.live_bytes, (double)ss.live_bytes / (double)samples, ss.db_bytes,
	       ss.vacuumed_pages);
	store__free(s);

	for (i = 0; i < sh.nframes; i++)
		free(sh.frames[i]);
	free(sh.frames);
	shape_free(&sh);
	free(count);
	free(cdf);
	if (dir == tmpl && nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS))
		perror("rm");
	return 0;
}
