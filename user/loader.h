/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * loader.h - the BPF side's lifecycle: open the embedded skeleton, configure,
 * load, fill the tail-call array, attach one cpu-clock perf event per online
 * CPU, poll the ring buffer, tear everything down.
 */
#ifndef PYSAMP_LOADER_H
#define PYSAMP_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/types.h>

#include "pysamp_abi.h"

struct pysamp_bpf;
struct bpf_link;
struct ring_buffer;

/* Called for every ring buffer record (a struct pysamp_sample + frames). */
typedef int (*loader_sample_fn)(void *ctx, void *data, size_t size);

struct loader {
	struct pysamp_bpf *skel;
	struct bpf_link *lifecycle[4];	/* fork, exec, exit tracepoints; libpython mmap */
	struct bpf_link **links;
	int *pfds;
	int nlinks;
	struct ring_buffer *rb;
	bool track_all;
};

struct loader_opts {
	uint32_t ringbuf_bytes; /* power of two >= page size; 0 = built-in 8 MiB */
	bool debug;		/* enable bpf_printk in the programs */
	bool track_all;		/* report every exec on the host (--all) */
	loader_sample_fn on_sample;
	loader_sample_fn on_event; /* struct pysamp_event records; consumed before samples */
	void *ctx;		   /* passed to on_sample and on_event */
};

/* Zeroed loader that loader_release() accepts. */
void loader_init(struct loader *ld);

/*
 * Open, configure and load the BPF programs, wire the tail-call array and
 * create the ring buffer consumer. Returns 0 or -errno; messages are
 * printed here (the caller only maps the error to an exit status).
 */
int loader_load(struct loader *ld, const struct loader_opts *o) __attribute__((warn_unused_result));

/*
 * Attach the fork/exec/exit tracepoints, then open a software cpu-clock perf
 * event sampling at freq Hz on every online CPU and attach the sampler to
 * each (offline CPUs, ENODEV, are skipped).
 * Returns 0 or -errno (-EOPNOTSUPP/-ENOENT when perf events are unavailable).
 */
int loader_attach(struct loader *ld, uint32_t freq) __attribute__((warn_unused_result));

/* Add or replace / remove the walk configuration of process pid. 0 or -errno. */
int loader_proc_set(struct loader *ld, pid_t pid, const struct pysamp_proc *p)
	__attribute__((warn_unused_result));
int loader_proc_del(struct loader *ld, pid_t pid);

/* Deliver pending samples to on_sample, waiting up to timeout_ms. >= 0 (records) or -errno. */
int loader_poll(struct loader *ld, int timeout_ms);

/* Per-CPU stats summed into out[PYSAMP_STAT_MAX]. 0 or -errno. */
int loader_stats(struct loader *ld, uint64_t out[PYSAMP_STAT_MAX])
	__attribute__((warn_unused_result));

/*
 * Kernel-measured run time of the sampler programs (needs sysctl
 * kernel.bpf_stats_enabled=1 while sampling): total ns and run count.
 */
int loader_run_time(struct loader *ld, uint64_t *ns, uint64_t *cnt)
	__attribute__((warn_unused_result));

/* Detach, close and destroy everything; accepts a loader in any state. */
void loader_release(struct loader *ld);

/* Name of a pysamp_stat counter. Static string. */
const char *loader_stat_name(int stat);

#endif /* PYSAMP_LOADER_H */
