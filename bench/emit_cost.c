/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * emit_cost.c - BPF-side cost per sample of handing a stack to userspace
 * through the ring buffer versus aggregating it in-kernel in stack-id maps.
 *
 * Loads bpf/emitbench.bpf.c, fills its per-CPU scratch (struct
 * pysamp_scratch) with a stack of N realistic frames and times each program
 * with BPF_PROG_TEST_RUN and `repeat` (the kernel reports the mean run time).
 * Each round runs every cell once, interleaved; the table shows the median
 * over rounds. See bench/README-emit.txt.
 *
 * Columns (ns per sample, kernel-measured mean of `iters` runs):
 *   baseline     scratch lookup + the counters both designs bump
 *   hash_only    baseline + the stack-id hash over N frames
 *   ringbuf      bpf_ringbuf_output, flags 0 as in the sampler; the ring is
 *                drained between test-run calls (never more than 90% full),
 *                so no wakeup is paid except by the first record of a call
 *   rb+wakeup    the same with BPF_RB_FORCE_WAKEUP: every record queues the
 *                wakeup irq_work, as when a consumer is always caught up
 *   rb+consumer  flags 0 with a consumer thread on another CPU draining and
 *                reading every record: the adaptive wakeups plus the
 *                cross-CPU cache traffic of a live agent
 *   rb+cons-nw   the same with BPF_RB_NO_WAKEUP (a polling consumer): the
 *                cross-CPU part alone
 *   map-new      hash + stacks insert + counts insert (each run a new id);
 *                maps emptied between calls so that they never fill
 *   map-repeat   hash + stacks lookup hit + counts increment
 */
#include <linux/types.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pysamp_abi.h"
#include "emitbench.skel.h"

#define MAX_DEPTHS 16
#define MAX_ROUNDS 101
#define NCLASSES 8		/* stacks_8 .. stacks_1024 */
#define STACKS_BYTES (128u << 20)	/* value bytes per used stacks class */
#define COUNTS_ENTRIES (1u << 17)
#define WARMUP_RUNS 1000u
#define HEAP 0x7f5c3a200000ULL	/* where the fake code objects live */
#define BPF_STATS_SYSCTL "/proc/sys/kernel/bpf_stats_enabled"
#define CONSUMER_TIMEOUT_NS (10ULL * 1000000000ULL)

enum cell {
	CELL_BASE,
	CELL_HASH,
	CELL_RB,
	CELL_RBW,
	CELL_RBC,
	CELL_RBN,
	CELL_NEW,
	CELL_REP,
	CELL_MAX,
};

static const char *const cell_names[CELL_MAX] = {
	"baseline", "hash_only", "ringbuf", "rb+wakeup", "rb+consumer", "rb+cons-nw", "map-new",
	"map-repeat",
};

struct bench_opts {
	__u32 iters;			/* samples per cell per round */
	__u32 rounds;
	__u32 ring_mb;
	int cpu;			/* where the test runs execute */
	__u32 depths[MAX_DEPTHS];
	__u32 ndepths;
	bool consumer;
	bool verbose;
};

/* Ring buffer callback state; owned by whichever thread drains. */
struct rb_sink {
	atomic_ullong records;
	bool touch;			/* read every frame, as a real consumer would */
	__u64 sum;
};

struct consumer {
	pthread_t thread;
	struct ring_buffer *rb;
	atomic_bool stop;
	int cpu;
	int err;
	bool running;
};

struct bench {
	struct bench_opts o;
	struct emitbench_bpf *skel;
	struct ring_buffer *rb;
	struct rb_sink sink;
	struct consumer cons;
	struct bpf_map *stacks[NCLASSES];
	__u32 stacks_cap[NCLASSES];
	int ncpus;
	size_t scratch_vsz;
	void *scratch_buf;		/* ncpus copies of struct pysamp_scratch */
	void *keybuf;			/* map_clear's key list */
	size_t keybuf_size;
	__u8 pkt[64];
	__u64 checks_failed;
	double res[MAX_DEPTHS][CELL_MAX][MAX_ROUNDS];
};

static bool verbose_libbpf;

__attribute__((format(printf, 2, 0)))
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !verbose_libbpf)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

__attribute__((format(printf, 1, 2)))
static void bench_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("emit_cost: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

__attribute__((warn_unused_result))
static int parse_u32(const char *s, __u32 min, __u32 max, __u32 *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		return -EINVAL;
	*out = (__u32)v;
	return 0;
}

/* "5,20,50" -> depths; each in 1..PYSAMP_MAX_FRAMES. */
__attribute__((warn_unused_result))
static int parse_depths(const char *s, struct bench_opts *o)
{
	char buf[256], *tok, *save = NULL;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	o->ndepths = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o->ndepths >= MAX_DEPTHS ||
		    parse_u32(tok, 1, PYSAMP_MAX_FRAMES, &o->depths[o->ndepths]))
			return -EINVAL;
		o->ndepths++;
	}
	return o->ndepths ? 0 : -EINVAL;
}

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

static __u32 depth_class(__u32 n)
{
	__u32 c = 0, k = 8;

	while (k < n) {
		k <<= 1;
		c++;
	}
	return c;
}

/* Bytes one sample takes in the ring: 8-byte record header, rounded to 8. */
static __u64 ring_record_bytes(__u32 n)
{
	__u64 len = sizeof(struct pysamp_sample) + (__u64)n * sizeof(struct pysamp_frame);

	return (8 + len + 7) & ~7ULL;
}

static __u64 xorshift64(__u64 *state)
{
	__u64 x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

/*
 * Fill every CPU's scratch with a depth-n stack: distinct code objects on a
 * 64-bit heap, 3.12-style instruction pointers into each code object's
 * bytecode, fingerprints computed as the sampler does.
 */
__attribute__((warn_unused_result))
static int scratch_fill(struct bench *b, __u32 n)
{
	struct pysamp_scratch *s;
	__u64 rng = 0x2545f4914f6cdd1dULL;
	__u32 zero = 0;

	memset(b->scratch_buf, 0, b->scratch_vsz * (size_t)b->ncpus);
	for (int cpu = 0; cpu < b->ncpus; cpu++) {
		s = (void *)((char *)b->scratch_buf + b->scratch_vsz * (size_t)cpu);
		s->hdr.ktime_ns = now_ns();
		s->hdr.tstate = 0x55d0c3a1e2b0ULL;
		s->hdr.pid = (__u32)getpid();
		s->hdr.tid = (__u32)gettid();
		s->hdr.cpu = (__u32)cpu;
		s->hdr.nframes = n;
		s->hdr.status = PYSAMP_STACK_COMPLETE;
		s->hdr.generation = 1;
		for (__u32 i = 0; i < PYSAMP_MAX_FRAMES; i++) {
			struct pysamp_frame *f = &s->frames[i];
			__u64 code = HEAP + i * 0x1f0ULL + ((xorshift64(&rng) & 7) << 4);
			__u64 name = HEAP + 0x1000000 + (xorshift64(&rng) & 0xffff0);
			__u64 file = HEAP + 0x2000000 + (xorshift64(&rng) & 0xffff0);
			__u64 ltab = HEAP + 0x3000000 + (xorshift64(&rng) & 0xffff0);
			__u32 line = (__u32)(xorshift64(&rng) % 5000);

			f->code = code;
			f->ip = code + 0xd0 + 2 * (xorshift64(&rng) % 400);
			f->code_fp = pysamp_code_fp(name, file, ltab, line);
		}
		s->runs = 1;
	}
	return bpf_map__update_elem(b->skel->maps.scratch, &zero, sizeof(zero), b->scratch_buf,
				    b->scratch_vsz * (size_t)b->ncpus, BPF_ANY);
}

/* Sum of one per-CPU stats slot. */
__attribute__((warn_unused_result))
static int stats_sum(struct bench *b, __u32 idx, __u64 *out)
{
	__u64 *vals = calloc((size_t)b->ncpus, sizeof(*vals));
	int err;

	if (!vals)
		return -ENOMEM;
	err = bpf_map__lookup_elem(b->skel->maps.stats, &idx, sizeof(idx), vals,
				   sizeof(*vals) * (size_t)b->ncpus, 0);
	*out = 0;
	for (int i = 0; !err && i < b->ncpus; i++)
		*out += vals[i];
	free(vals);
	return err;
}

/*
 * Delete every key of a hash map; *nkeys gets how many there were. Keys are
 * collected first and then batch-deleted: restarting get_next_key from NULL
 * after each delete would rescan the empty buckets each time.
 */
__attribute__((warn_unused_result))
static int map_clear(struct bench *b, const struct bpf_map *map, __u32 *nkeys)
{
	__u32 ksz = bpf_map__key_size(map), max = bpf_map__max_entries(map), n = 0;
	size_t need = (size_t)ksz * (max + 1);
	int fd = bpf_map__fd(map), err;
	char *prev = NULL;

	if (need > b->keybuf_size) {
		void *p = realloc(b->keybuf, need);

		if (!p)
			return -ENOMEM;
		b->keybuf = p;
		b->keybuf_size = need;
	}
	while (n <= max) {
		char *next = (char *)b->keybuf + (size_t)n * ksz;

		err = bpf_map_get_next_key(fd, prev, next);
		if (err == -ENOENT)
			break;
		if (err)
			return err;
		prev = next;
		n++;
	}
	*nkeys = n;
	if (n) {
		__u32 count = n;

		err = bpf_map_delete_batch(fd, b->keybuf, &count, NULL);
		if (err)
			return err;
		if (count != n)
			return -EIO;
	}
	return 0;
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct rb_sink *sink = ctx;
	const struct pysamp_sample *h = data;

	if (sink->touch && size >= sizeof(*h)) {
		const struct pysamp_frame *f = (const void *)(h + 1);
		__u32 n = h->nframes;
		__u64 sum = h->ktime_ns;

		if (n > (size - sizeof(*h)) / sizeof(*f))
			n = (__u32)((size - sizeof(*h)) / sizeof(*f));
		for (__u32 i = 0; i < n; i++)
			sum += f[i].code ^ f[i].ip ^ f[i].code_fp;
		sink->sum += sum;
	}
	atomic_fetch_add_explicit(&sink->records, 1, memory_order_release);
	return 0;
}

static void *consumer_main(void *arg)
{
	struct consumer *c = arg;

	while (!atomic_load_explicit(&c->stop, memory_order_acquire)) {
		int n = ring_buffer__consume(c->rb);

		if (n < 0) {
			c->err = n;
			break;
		}
	}
	return NULL;
}

__attribute__((warn_unused_result))
static int consumer_start(struct bench *b)
{
	struct consumer *c = &b->cons;
	pthread_attr_t attr;
	cpu_set_t set;
	int err;

	c->rb = b->rb;
	c->err = 0;
	atomic_store(&c->stop, false);
	b->sink.touch = true;
	err = -pthread_attr_init(&attr);
	if (err)
		return err;
	CPU_ZERO(&set);
	CPU_SET(c->cpu, &set);
	err = -pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	if (!err)
		err = -pthread_create(&c->thread, &attr, consumer_main, c);
	pthread_attr_destroy(&attr);
	if (!err)
		c->running = true;
	return err;
}

static int consumer_stop(struct bench *b)
{
	struct consumer *c = &b->cons;

	if (!c->running)
		return 0;
	atomic_store_explicit(&c->stop, true, memory_order_release);
	pthread_join(c->thread, NULL);
	c->running = false;
	b->sink.touch = false;
	return c->err;
}

/* Wait until the consumer has taken `want` records in total. */
__attribute__((warn_unused_result))
static int consumer_wait(struct bench *b, __u64 want)
{
	__u64 deadline = now_ns() + CONSUMER_TIMEOUT_NS;

	while (atomic_load_explicit(&b->sink.records, memory_order_acquire) < want) {
		if (b->cons.err)
			return b->cons.err;
		if (now_ns() > deadline)
			return -ETIMEDOUT;
		sched_yield();
	}
	return 0;
}

static bool cell_is_ring(enum cell c)
{
	return c == CELL_RB || c == CELL_RBW || c == CELL_RBC || c == CELL_RBN;
}

static bool cell_has_consumer(enum cell c)
{
	return c == CELL_RBC || c == CELL_RBN;
}

static int cell_prog_fd(const struct bench *b, enum cell c)
{
	switch (c) {
	case CELL_BASE:
		return bpf_program__fd(b->skel->progs.baseline);
	case CELL_HASH:
		return bpf_program__fd(b->skel->progs.hash_only);
	case CELL_RB:
	case CELL_RBW:
	case CELL_RBC:
	case CELL_RBN:
		return bpf_program__fd(b->skel->progs.emit_ringbuf);
	case CELL_NEW:
	case CELL_REP:
		return bpf_program__fd(b->skel->progs.emit_stackmap);
	default:
		return -1;
	}
}

/* Runs per test-run call that keep the ring or the maps from filling. */
static __u32 cell_limit(const struct bench *b, enum cell c, __u32 n)
{
	__u64 lim = b->o.iters;

	if (cell_is_ring(c))
		lim = ((__u64)b->o.ring_mb << 20) * 9 / 10 / ring_record_bytes(n);
	else if (c == CELL_NEW)
		lim = (__u64)(b->stacks_cap[depth_class(n)] < COUNTS_ENTRIES
				      ? b->stacks_cap[depth_class(n)]
				      : COUNTS_ENTRIES) * 9 / 10;
	if (lim > b->o.iters)
		lim = b->o.iters;
	return lim ? (__u32)lim : 1;
}

/*
 * After a test-run call of `rep` runs: drain the ring or empty the maps, and
 * check that every run produced what it should. `consumed` is the running
 * total of records expected by the consumer thread.
 */
__attribute__((warn_unused_result))
static int cell_after(struct bench *b, enum cell c, __u32 n, __u32 rep, __u64 *consumed)
{
	__u32 nstacks = 0, ncounts = 0;
	int err;

	switch (c) {
	case CELL_RB:
	case CELL_RBW:
		err = ring_buffer__consume(b->rb);
		if (err < 0)
			return err;
		if ((__u32)err != rep)
			b->checks_failed++;
		return 0;
	case CELL_RBC:
	case CELL_RBN:
		*consumed += rep;
		return consumer_wait(b, *consumed);
	case CELL_NEW:
		err = map_clear(b, b->stacks[depth_class(n)], &nstacks);
		if (!err)
			err = map_clear(b, b->skel->maps.counts, &ncounts);
		if (err)
			return err;
		if (nstacks != rep || ncounts != rep)
			b->checks_failed++;
		return 0;
	default:
		return 0;
	}
}

__attribute__((warn_unused_result))
static int test_run(int fd, struct bench *b, __u32 rep, __u32 *mean_ns)
{
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = b->pkt, .data_size_in = sizeof(b->pkt),
		    .repeat = rep);
	int err;

	err = bpf_prog_test_run_opts(fd, &t);
	if (err)
		return err;
	if (t.retval != 0)
		return -EPROTO;
	*mean_ns = t.duration;
	return 0;
}

/* One cell of one round: warm-up call, then `iters` timed runs. */
__attribute__((warn_unused_result))
static int cell_run(struct bench *b, enum cell c, __u32 n, double *ns)
{
	__u32 limit = cell_limit(b, c, n), rep, mean, nstacks, ncounts, key_runs;
	__u64 done = 0, consumed = 0, total_ns = 0, count = 0;
	int fd = cell_prog_fd(b, c), err = 0, err2;

	b->skel->bss->bench_new_stack = c == CELL_NEW;
	b->skel->bss->bench_rb_flags = c == CELL_RBW   ? BPF_RB_FORCE_WAKEUP
				       : c == CELL_RBN ? BPF_RB_NO_WAKEUP
						       : 0;
	if (c == CELL_NEW || c == CELL_REP) {
		err = map_clear(b, b->stacks[depth_class(n)], &nstacks);
		if (!err)
			err = map_clear(b, b->skel->maps.counts, &ncounts);
		if (err)
			return err;
	}
	if (cell_has_consumer(c)) {
		consumed = atomic_load(&b->sink.records);
		err = consumer_start(b);
		if (err)
			return err;
	}

	rep = limit < WARMUP_RUNS ? limit : WARMUP_RUNS;
	err = test_run(fd, b, rep, &mean);
	if (!err)
		err = cell_after(b, c, n, rep, &consumed);
	key_runs = rep;
	while (!err && done < b->o.iters) {
		rep = b->o.iters - done < limit ? (__u32)(b->o.iters - done) : limit;
		err = test_run(fd, b, rep, &mean);
		if (err)
			break;
		total_ns += (__u64)mean * rep;
		done += rep;
		key_runs += rep;
		err = cell_after(b, c, n, rep, &consumed);
	}

	if (cell_has_consumer(c)) {
		err2 = consumer_stop(b);
		if (!err)
			err = err2;
	}
	if (!err && c == CELL_REP) {
		/* One stack, one counts entry holding every run. */
		__u32 ksz = bpf_map__key_size(b->skel->maps.counts);
		char *key = calloc(1, ksz);

		if (!key)
			return -ENOMEM;
		err = bpf_map_get_next_key(bpf_map__fd(b->skel->maps.counts), NULL, key);
		if (!err)
			err = bpf_map__lookup_elem(b->skel->maps.counts, key, ksz, &count,
						   sizeof(count), 0);
		free(key);
		if (!err)
			err = map_clear(b, b->stacks[depth_class(n)], &nstacks);
		if (!err)
			err = map_clear(b, b->skel->maps.counts, &ncounts);
		if (!err && (count != key_runs || nstacks != 1 || ncounts != 1))
			b->checks_failed++;
	}
	b->skel->bss->bench_new_stack = 0;
	b->skel->bss->bench_rb_flags = 0;
	if (err)
		return err;
	*ns = (double)total_ns / (double)done;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, __u32 n)
{
	double tmp[MAX_ROUNDS];

	memcpy(tmp, v, n * sizeof(*v));
	qsort(tmp, n, sizeof(*tmp), cmp_double);
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

/* Size the ring and the stacks classes actually used, before load. */
__attribute__((warn_unused_result))
static int bench_configure(struct bench *b)
{
	struct emitbench_bpf *skel = b->skel;
	bool used[NCLASSES] = {};
	int err;

	b->stacks[0] = skel->maps.stacks_8;
	b->stacks[1] = skel->maps.stacks_16;
	b->stacks[2] = skel->maps.stacks_32;
	b->stacks[3] = skel->maps.stacks_64;
	b->stacks[4] = skel->maps.stacks_128;
	b->stacks[5] = skel->maps.stacks_256;
	b->stacks[6] = skel->maps.stacks_512;
	b->stacks[7] = skel->maps.stacks_1024;
	for (__u32 i = 0; i < b->o.ndepths; i++)
		used[depth_class(b->o.depths[i])] = true;
	for (__u32 c = 0; c < NCLASSES; c++) {
		__u32 frames = 8u << c, cap = 1;

		if (used[c]) {
			/* Value bytes capped at STACKS_BYTES, power of two, 4096..65536. */
			cap = 65536;
			while (cap > 4096 && (__u64)cap * frames * sizeof(struct pysamp_frame) >
						     STACKS_BYTES)
				cap >>= 1;
		}
		b->stacks_cap[c] = cap;
		err = bpf_map__set_max_entries(b->stacks[c], cap);
		if (err)
			return err;
	}
	err = bpf_map__set_max_entries(skel->maps.counts, COUNTS_ENTRIES);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.samples, b->o.ring_mb << 20);
	return err;
}

static void print_prog_info(const struct bpf_program *prog)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len)) {
		printf("  %-14s (no info)\n", bpf_program__name(prog));
		return;
	}
	printf("  %-14s xlated %5u B  jited %5u B  verifier processed %7u insns\n",
	       bpf_program__name(prog), info.xlated_prog_len, info.jited_prog_len,
	       info.verified_insns);
}

static void read_sysctl(const char *path, char *out, size_t size)
{
	FILE *f = fopen(path, "r");

	snprintf(out, size, "?");
	if (!f)
		return;
	if (fgets(out, (int)size, f))
		out[strcspn(out, "\n")] = 0;
	fclose(f);
}

static void print_cell(double v, bool valid)
{
	if (valid)
		printf(" %11.1f", v);
	else
		printf(" %11s", "n/a");
}

static void print_tables(const struct bench *b)
{
	static const char *const net_names[] = {
		"ringbuf", "rb+wakeup", "rb+consumer", "rb+cons-nw", "map-new", "map-repeat",
		"hash", "map-ops", "new/rb", "repeat/rb", "repeat/rbc",
	};
	double med[MAX_DEPTHS][CELL_MAX], net[MAX_DEPTHS][CELL_MAX], ops[MAX_DEPTHS];
	__u32 rep_wins = 0, new_wins = 0, ops_wins = 0, rep_wins_w = 0, new_wins_w = 0;
	double wake_min = 1e9, wake_max = 0;
	double rmin = 1e9, rmax = 0, nmin = 1e9, nmax = 0, v[MAX_ROUNDS];
	bool rbc = b->o.consumer;

	/* Net costs are medians of per-round differences, robust to drift between rounds. */
	for (__u32 d = 0; d < b->o.ndepths; d++) {
		for (int c = 0; c < CELL_MAX; c++) {
			med[d][c] = median(b->res[d][c], b->o.rounds);
			for (__u32 r = 0; r < b->o.rounds; r++)
				v[r] = b->res[d][c][r] - b->res[d][CELL_BASE][r];
			net[d][c] = median(v, b->o.rounds);
		}
		for (__u32 r = 0; r < b->o.rounds; r++)
			v[r] = b->res[d][CELL_REP][r] - b->res[d][CELL_HASH][r];
		ops[d] = median(v, b->o.rounds);
	}

	printf("\nns per sample, median of %u rounds x %u samples (kernel-measured mean per run)\n",
	       b->o.rounds, b->o.iters);
	printf("%6s %6s", "frames", "rec_B");
	for (int c = 0; c < CELL_MAX; c++)
		printf(" %11s", cell_names[c]);
	printf("\n");
	for (__u32 d = 0; d < b->o.ndepths; d++) {
		printf("%6u %6llu", b->o.depths[d],
		       (unsigned long long)(sizeof(struct pysamp_sample) +
					    b->o.depths[d] * sizeof(struct pysamp_frame)));
		for (int c = 0; c < CELL_MAX; c++)
			print_cell(med[d][c], rbc || !cell_has_consumer((enum cell)c));
		printf("\n");
	}

	printf("\nnet of baseline, ns per sample (map-ops = map-repeat - hash_only; medians of "
	       "per-round differences) and ratios of net costs\n%6s",
	       "frames");
	for (size_t i = 0; i < sizeof(net_names) / sizeof(net_names[0]); i++)
		printf(" %11s", net_names[i]);
	printf("\n");
	for (__u32 d = 0; d < b->o.ndepths; d++) {
		const double *m = net[d];
		double rb = m[CELL_RB], nw = m[CELL_NEW], rp = m[CELL_REP];

		printf("%6u", b->o.depths[d]);
		print_cell(rb, true);
		print_cell(m[CELL_RBW], true);
		print_cell(m[CELL_RBC], rbc);
		print_cell(m[CELL_RBN], rbc);
		print_cell(nw, true);
		print_cell(rp, true);
		print_cell(m[CELL_HASH], true);
		print_cell(ops[d], true);
		printf(" %11.2f %11.2f", nw / rb, rp / rb);
		if (rbc)
			printf(" %11.2f\n", rp / m[CELL_RBC]);
		else
			printf(" %11s\n", "n/a");

		rep_wins += rp < rb;
		new_wins += nw < rb;
		ops_wins += ops[d] < rb;
		rep_wins_w += rp < m[CELL_RBW];
		new_wins_w += nw < m[CELL_RBW];
		wake_min = m[CELL_RBW] - rb < wake_min ? m[CELL_RBW] - rb : wake_min;
		wake_max = m[CELL_RBW] - rb > wake_max ? m[CELL_RBW] - rb : wake_max;
		rmin = rp / rb < rmin ? rp / rb : rmin;
		rmax = rp / rb > rmax ? rp / rb : rmax;
		nmin = nw / rb < nmin ? nw / rb : nmin;
		nmax = nw / rb > nmax ? nw / rb : nmax;
	}

	/* One line, against the plain ring buffer (the BPF cost proper). */
	printf("\nconclusion: ");
	if (!rep_wins && !new_wins)
		printf("the ring buffer costs less per sample than the stack maps at every depth "
		       "measured (map-repeat %.1f-%.1fx, map-new %.1f-%.1fx its net cost); the map "
		       "operations alone, without the hash, beat it at %u of %u depths",
		       rmin, rmax, nmin, nmax, ops_wins, b->o.ndepths);
	else if (rep_wins == b->o.ndepths && !new_wins)
		printf("a repeated stack in the maps costs less than the ring buffer at every "
		       "depth (%.2f-%.2fx its net cost) but a new stack costs more (%.1f-%.1fx); "
		       "which wins depends on the share of new stacks",
		       rmin, rmax, nmin, nmax);
	else
		printf("mixed: map-repeat beats the ring buffer at %u of %u depths (%.2f-%.2fx), "
		       "map-new at %u (%.2f-%.2fx), map operations without the hash at %u",
		       rep_wins, b->o.ndepths, rmin, rmax, new_wins, nmin, nmax, ops_wins);
	printf(".\nBut with flags 0 and a consumer that keeps up (the agent at profiling rates) "
	       "every record also queues a wakeup, %.0f-%.0f ns here (rb+wakeup); against that, "
	       "map-repeat is cheaper at %u of %u depths and map-new at %u\n",
	       wake_min, wake_max, rep_wins_w, b->o.ndepths, new_wins_w);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: emit_cost [-n ITERS] [-r ROUNDS] [-f DEPTHS] [-b RING_MB] [-c CPU] "
		"[--no-consumer] [-v]\n"
		"  -n, --iters N      samples per cell per round (default 200000)\n"
		"  -r, --rounds N     rounds; the table shows the median (default 5)\n"
		"  -f, --frames LIST  stack depths, comma-separated (default 5,20,50,200,1024)\n"
		"  -b, --ring-mb N    ring size in MiB, a power of two (default 8, the sampler's)\n"
		"  -c, --cpu N        CPU the test runs execute on (default 0)\n"
		"      --no-consumer  skip the rb+consumer and rb+cons-nw columns\n"
		"  -v, --verbose      libbpf debug output\n");
}

__attribute__((warn_unused_result))
static int parse_args(int argc, char **argv, struct bench_opts *o)
{
	static const struct option longopts[] = {
		{ "iters", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "frames", required_argument, NULL, 'f' },
		{ "ring-mb", required_argument, NULL, 'b' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "no-consumer", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	__u32 v;
	int opt;

	*o = (struct bench_opts){ .iters = 200000, .rounds = 5, .ring_mb = 8, .consumer = true,
				  .depths = { 5, 20, 50, 200, 1024 }, .ndepths = 5 };
	while ((opt = getopt_long(argc, argv, "n:r:f:b:c:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (parse_u32(optarg, 1, 100000000, &o->iters))
				goto bad;
			break;
		case 'r':
			if (parse_u32(optarg, 1, MAX_ROUNDS, &o->rounds))
				goto bad;
			break;
		case 'f':
			if (parse_depths(optarg, o))
				goto bad;
			break;
		case 'b':
			if (parse_u32(optarg, 1, 1024, &o->ring_mb) ||
			    (o->ring_mb & (o->ring_mb - 1)))
				goto bad;
			break;
		case 'c':
			if (parse_u32(optarg, 0, CPU_SETSIZE - 1, &v))
				goto bad;
			o->cpu = (int)v;
			break;
		case 'C':
			o->consumer = false;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc)
		goto usage_err;
	return 0;
bad:
	bench_warn("invalid value '%s' for -%c", optarg, opt);
usage_err:
	usage(stderr);
	return -EINVAL;
}

/* Pick a CPU for the consumer thread: any other one we may run on. */
static int other_cpu(int cpu)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return -1;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (i != cpu && CPU_ISSET(i, &set))
			return i;
	return -1;
}

int main(int argc, char **argv)
{
	struct bench *b = NULL;
	struct utsname uts;
	char jit[16], stats0[16], stats1[16];
	__u32 stats_on = 0, stats_flips = 0;
	cpu_set_t set;
	__u32 mean = 0;
	__u64 rb_full = 0;
	int err;

	b = calloc(1, sizeof(*b));
	if (!b) {
		bench_warn("out of memory");
		return 1;
	}
	err = parse_args(argc, argv, &b->o);
	if (err)
		goto cleanup;
	verbose_libbpf = b->o.verbose;
	libbpf_set_print(libbpf_print);

	b->cons.cpu = other_cpu(b->o.cpu);
	if (b->o.consumer && b->cons.cpu < 0) {
		bench_warn("no second CPU for the consumer thread; rb+consumer skipped");
		b->o.consumer = false;
	}
	CPU_ZERO(&set);
	CPU_SET(b->o.cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		err = -errno;
		bench_warn("cannot pin to cpu %d: %s", b->o.cpu, strerror(-err));
		goto cleanup;
	}

	b->ncpus = libbpf_num_possible_cpus();
	if (b->ncpus <= 0) {
		err = b->ncpus ? b->ncpus : -EINVAL;
		bench_warn("cannot count possible cpus: %s", strerror(-err));
		goto cleanup;
	}
	b->scratch_vsz = (sizeof(struct pysamp_scratch) + 7) & ~(size_t)7;
	b->scratch_buf = calloc((size_t)b->ncpus, b->scratch_vsz);
	if (!b->scratch_buf) {
		err = -ENOMEM;
		bench_warn("out of memory");
		goto cleanup;
	}
	b->pkt[12] = 0x08; /* ethertype IPv4; content is irrelevant */

	b->skel = emitbench_bpf__open();
	if (!b->skel) {
		err = -errno;
		bench_warn("cannot open 'emitbench' skeleton: %s", strerror(-err));
		goto cleanup;
	}
	err = bench_configure(b);
	if (err) {
		bench_warn("cannot size maps: %s", strerror(-err));
		goto cleanup;
	}
	err = emitbench_bpf__load(b->skel);
	if (err) {
		bench_warn("cannot load 'emitbench' skeleton: %s", strerror(-err));
		goto cleanup;
	}
	b->rb = ring_buffer__new(bpf_map__fd(b->skel->maps.samples), on_record, &b->sink, NULL);
	if (!b->rb) {
		err = -errno;
		bench_warn("cannot create ring buffer consumer: %s", strerror(-err));
		goto cleanup;
	}

	/* SCHED_CLS test runs must accept repeat and report a duration here. */
	err = scratch_fill(b, 5);
	if (!err)
		err = test_run(bpf_program__fd(b->skel->progs.baseline), b, 10000, &mean);
	if (err || !mean) {
		err = err ? err : -EOPNOTSUPP;
		bench_warn("BPF_PROG_TEST_RUN with repeat on 'baseline' failed: %s",
			   strerror(-err));
		goto cleanup;
	}

	uname(&uts);
	read_sysctl("/proc/sys/net/core/bpf_jit_enable", jit, sizeof(jit));
	printf("emit_cost: kernel %s, %d possible cpus, runs on cpu %d, consumer on cpu %d\n",
	       uts.release, b->ncpus, b->o.cpu, b->o.consumer ? b->cons.cpu : -1);
	printf("ring %u MiB (drained between test-run calls, <= 90%% full); bpf_jit_enable=%s\n",
	       b->o.ring_mb, jit);
	printf("stacks maps (preallocated hash, key 16 B):");
	for (__u32 c = 0; c < NCLASSES; c++)
		if (b->stacks_cap[c] > 1)
			printf(" stacks_%u x %u", 8u << c, b->stacks_cap[c]);
	printf("; counts x %u (key 24 B)\n", COUNTS_ENTRIES);
	print_prog_info(b->skel->progs.baseline);
	print_prog_info(b->skel->progs.hash_only);
	print_prog_info(b->skel->progs.emit_ringbuf);
	print_prog_info(b->skel->progs.emit_stackmap);
	fflush(stdout);

	for (__u32 r = 0; r < b->o.rounds; r++) {
		read_sysctl(BPF_STATS_SYSCTL, stats0, sizeof(stats0));
		for (__u32 d = 0; d < b->o.ndepths; d++) {
			__u32 n = b->o.depths[d];

			err = scratch_fill(b, n);
			if (err) {
				bench_warn("cannot fill scratch: %s", strerror(-err));
				goto cleanup;
			}
			for (int c = 0; c < CELL_MAX; c++) {
				if (cell_has_consumer((enum cell)c) && !b->o.consumer)
					continue;
				err = cell_run(b, (enum cell)c, n, &b->res[d][c][r]);
				if (err) {
					bench_warn("'%s' at %u frames failed: %s", cell_names[c], n,
					      strerror(-err));
					goto cleanup;
				}
			}
		}
		read_sysctl(BPF_STATS_SYSCTL, stats1, sizeof(stats1));
		stats_on += strcmp(stats0, "0") || strcmp(stats1, "0");
		stats_flips += strcmp(stats0, stats1) != 0;
		fprintf(stderr, "emit_cost: round %u/%u done\n", r + 1, b->o.rounds);
	}

	err = stats_sum(b, PYSAMP_STAT_RINGBUF_FULL, &rb_full);
	if (err) {
		bench_warn("cannot read stats: %s", strerror(-err));
		goto cleanup;
	}
	print_tables(b);
	printf("failed outputs: ringbuf %llu, stacks insert %llu, counts insert %llu "
	       "(counts races %llu); consistency checks failed: %llu\n",
	       (unsigned long long)rb_full, (unsigned long long)b->skel->bss->bench_stack_fail,
	       (unsigned long long)b->skel->bss->bench_count_fail,
	       (unsigned long long)b->skel->bss->bench_count_race,
	       (unsigned long long)b->checks_failed);
	printf("kernel.bpf_stats_enabled (adds clock reads to every run, baseline included) "
	       "was on in %u of %u rounds and changed during %u\n",
	       stats_on, b->o.rounds, stats_flips);
	if (stats_flips)
		printf("warning: another process toggled bpf_stats_enabled mid-round; rerun when "
		       "the machine is idle\n");
	if (rb_full || b->skel->bss->bench_stack_fail || b->skel->bss->bench_count_fail ||
	    b->checks_failed)
		err = -EIO;

cleanup:
	if (b) {
		if (consumer_stop(b))
			bench_warn("consumer thread failed");
		ring_buffer__free(b->rb);
		emitbench_bpf__destroy(b->skel);
		free(b->scratch_buf);
		free(b->keybuf);
		free(b);
	}
	return err ? 1 : 0;
}
