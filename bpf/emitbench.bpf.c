/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * emitbench.bpf.c - per-sample cost of the two ways to hand a stack to userspace.
 *
 * Not part of the agent. bench/emit_cost.c runs these programs with
 * BPF_PROG_TEST_RUN and `repeat` (SCHED_CLS supports both and reports the mean
 * run time in ns) over a per-CPU scratch laid out exactly like the sampler's
 * struct pysamp_scratch, filled by the driver with hdr.nframes frames:
 *
 *   baseline       scratch lookup, depth read and the two success counters
 *                  that both designs bump; subtract it from the others.
 *   emit_ringbuf   the sampler's emit(): bpf_ringbuf_output of the 40-byte
 *                  header plus 24 bytes per frame, straight from the scratch
 *                  (flags from bench_rb_flags, to price the wakeup).
 *   emit_stackmap  in-kernel aggregation as in bcc profile / PyPerf: a 64-bit
 *                  hash over all frames is the stack id; the frames go into a
 *                  stacks hash (one map per power-of-two depth class, so a
 *                  shallow stack does not copy 24 KiB) only when the id is
 *                  new, then counts[{pid, tid, stack id}] is bumped.
 *   hash_only      baseline plus the hash loop, to split emit_stackmap into
 *                  hashing and map work.
 *
 * Per-run settings are .bss globals written by the driver through the
 * mmapped skeleton between runs (a const volatile would need a reload).
 * Bench-only counters are also .bss and are written only on failure paths,
 * so that the success paths stay the code a real sampler would run.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "pysamp_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* errno values (no UAPI headers in BPF code). */
#define E2BIG  7
#define EEXIST 17

/* Stack id: hash of every frame plus the depth, which also names the class. */
struct emitbench_stack_key {
	__u64 hash;
	__u32 nframes;
	__u32 pad;
};

struct emitbench_count_key {
	__u32 pid;
	__u32 tid;
	struct emitbench_stack_key stack;
};

_Static_assert(sizeof(struct emitbench_stack_key) == 16, "emitbench_stack_key layout");
_Static_assert(sizeof(struct emitbench_count_key) == 24, "emitbench_count_key layout");

/* 1: every emit_stackmap run uses a stack id not seen before. */
__u32 bench_new_stack;
/* Runs in new-stack mode; seeds the hash so that each run's id is new. */
__u64 bench_seq;
/* emit_ringbuf's flags: 0 as in the sampler (adaptive wakeup), or BPF_RB_*. */
__u64 bench_rb_flags;
/* hash_only's result, so that the loop is not optimised away. */
__u64 bench_sink;
/* Failure counters (bench only). */
__u64 bench_stack_fail; /* stacks insert failed (map full, ENOMEM) */
__u64 bench_count_fail; /* counts insert failed */
__u64 bench_count_race; /* counts insert lost a race (EEXIST) and retried */

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

/* Same size as the sampler's; the driver may change it before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} samples SEC(".maps");

/*
 * stacks_<K>: frame arrays of stacks with K/2 < depth <= K frames (K = 8 for
 * depth <= 8). Preallocated hashes, as a perf_event program would use; the
 * driver sizes them before load. A hash update copies the whole value, hence
 * the classes.
 */
#define STACK_CLASS(K)                                                                             \
	struct emitbench_stack_##K {                                                               \
		struct pysamp_frame frames[K];                                                     \
	};                                                                                         \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_HASH);                                                   \
		__uint(max_entries, 1024);                                                         \
		__type(key, struct emitbench_stack_key);                                           \
		__type(value, struct emitbench_stack_##K);                                         \
	} stacks_##K SEC(".maps")

STACK_CLASS(8);
STACK_CLASS(16);
STACK_CLASS(32);
STACK_CLASS(64);
STACK_CLASS(128);
STACK_CLASS(256);
STACK_CLASS(512);
STACK_CLASS(1024);

_Static_assert(PYSAMP_MAX_FRAMES == 1024, "stack classes stop at 1024 frames");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 17);
	__type(key, struct emitbench_count_key);
	__type(value, __u64);
} counts SEC(".maps");

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

/* The frame count, clamped as the sampler's emit() does. */
static __always_inline __u32 scratch_depth(const struct pysamp_scratch *s)
{
	__u32 n = s->hdr.nframes;

	return n > PYSAMP_MAX_FRAMES ? PYSAMP_MAX_FRAMES : n;
}

static __always_inline __u64 rotl64(__u64 x, int r)
{
	return (x << r) | (x >> (64 - r));
}

#define FNV_PRIME 0x100000001b3ULL

/*
 * 64-bit stack id over all three words of each of the n frames: code
 * address, instruction and code fingerprint. The fingerprint is included
 * because the stored frames are what userspace symbolizes, and a reused code
 * address must not fold a new function into an old stack.
 *
 * The three words are folded into one (ip rotated, as ip and code share
 * their high bits) and fed to 64-bit FNV-1a, one multiply per frame; each
 * step is a bijection of the running hash, so stacks that differ in one
 * frame cannot collide. A murmur3 finaliser spreads the high bits down for
 * the map's bucket index. The dependency chain (xor, multiply) bounds it at
 * about 4 cycles per frame. A three-lane xxh64-style round per word (six
 * multiplies per frame) measured 2.8 ns per frame against 1.6 here.
 *
 * A real sampler would fold this into the walk loop, where the three words
 * are already in registers; as a separate pass it also pays three loads per
 * frame, so this is an upper bound on the hashing cost.
 */
static __always_inline __u64 stack_hash(const struct pysamp_scratch *s, __u32 n, __u64 seed)
{
	__u64 h = 0xcbf29ce484222325ULL ^ seed;

	for (__u32 i = 0; i < PYSAMP_MAX_FRAMES; i++) {
		const struct pysamp_frame *f;

		if (i >= n)
			break;
		f = &s->frames[i];
		h = (h ^ f->code ^ rotl64(f->ip, 29) ^ f->code_fp) * FNV_PRIME;
	}
	h ^= n;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/*
 * Store the frames under key unless the id is known. Lookup first: the
 * common case in a profile is a stack seen before, and a hash lookup is
 * lockless (and inlined by the JIT) where an update takes the bucket lock.
 * 0 on success or when present, else the update's -errno.
 */
#define STACK_STORE_CASE(K)                                                                        \
	if (n <= K) {                                                                              \
		long err;                                                                          \
                                                                                                   \
		if (bpf_map_lookup_elem(&stacks_##K, key))                                         \
			return 0;                                                                  \
		err = bpf_map_update_elem(&stacks_##K, key, s->frames, BPF_NOEXIST);               \
		return err == -EEXIST ? 0 : err;                                                   \
	}

static __always_inline long stack_store(const struct emitbench_stack_key *key,
					struct pysamp_scratch *s, __u32 n)
{
	STACK_STORE_CASE(8)
	STACK_STORE_CASE(16)
	STACK_STORE_CASE(32)
	STACK_STORE_CASE(64)
	STACK_STORE_CASE(128)
	STACK_STORE_CASE(256)
	STACK_STORE_CASE(512)
	STACK_STORE_CASE(1024)
	return -E2BIG; /* deeper than PYSAMP_MAX_FRAMES: cannot happen after clamping */
}

/* counts[key] += 1, inserting 1 when absent (bcc profile's idiom). */
static __always_inline long count_bump(const struct emitbench_count_key *key)
{
	__u64 one = 1, *c;
	long err;

	c = bpf_map_lookup_elem(&counts, key);
	if (c) {
		__sync_fetch_and_add(c, 1);
		return 0;
	}
	err = bpf_map_update_elem(&counts, key, &one, BPF_NOEXIST);
	if (err != -EEXIST)
		return err;
	/* Another CPU inserted it between the lookup and the update. */
	bench_count_race++;
	c = bpf_map_lookup_elem(&counts, key);
	if (!c)
		return -EEXIST;
	__sync_fetch_and_add(c, 1);
	return 0;
}

SEC("tc")
int baseline(struct __sk_buff *skb)
{
	struct pysamp_scratch *s;
	__u32 zero = 0, n;

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s) {
		stat_inc(PYSAMP_STAT_NO_SCRATCH);
		return 0;
	}
	n = scratch_depth(s);
	stat_inc(PYSAMP_STAT_EMITTED);
	stat_add(PYSAMP_STAT_FRAMES, n);
	return 0;
}

SEC("tc")
int hash_only(struct __sk_buff *skb)
{
	struct pysamp_scratch *s;
	__u32 zero = 0, n;

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s) {
		stat_inc(PYSAMP_STAT_NO_SCRATCH);
		return 0;
	}
	n = scratch_depth(s);
	bench_sink = stack_hash(s, n, 0);
	stat_inc(PYSAMP_STAT_EMITTED);
	stat_add(PYSAMP_STAT_FRAMES, n);
	return 0;
}

/* Same code as emit() in pysamp.bpf.c, with the flags a variable. */
SEC("tc")
int emit_ringbuf(struct __sk_buff *skb)
{
	struct pysamp_scratch *s;
	__u32 zero = 0, n;
	__u64 size;

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s) {
		stat_inc(PYSAMP_STAT_NO_SCRATCH);
		return 0;
	}
	n = scratch_depth(s);
	size = sizeof(struct pysamp_sample) + (__u64)n * sizeof(struct pysamp_frame);
	if (bpf_ringbuf_output(&samples, &s->hdr, size, bench_rb_flags)) {
		stat_inc(PYSAMP_STAT_RINGBUF_FULL);
		return 0;
	}
	stat_inc(PYSAMP_STAT_EMITTED);
	stat_add(PYSAMP_STAT_FRAMES, n);
	return 0;
}

SEC("tc")
int emit_stackmap(struct __sk_buff *skb)
{
	struct emitbench_count_key ck = {};
	struct pysamp_scratch *s;
	__u32 zero = 0, n;
	__u64 seed = 0;

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s) {
		stat_inc(PYSAMP_STAT_NO_SCRATCH);
		return 0;
	}
	n = scratch_depth(s);
	if (bench_new_stack)
		seed = ++bench_seq;
	ck.pid = s->hdr.pid;
	ck.tid = s->hdr.tid;
	ck.stack.hash = stack_hash(s, n, seed);
	ck.stack.nframes = n;
	if (stack_store(&ck.stack, s, n)) {
		bench_stack_fail++;
		return 0;
	}
	if (count_bump(&ck)) {
		bench_count_fail++;
		return 0;
	}
	stat_inc(PYSAMP_STAT_EMITTED);
	stat_add(PYSAMP_STAT_FRAMES, n);
	return 0;
}
