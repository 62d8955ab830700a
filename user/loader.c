/* SPDX-License-Identifier: BSD-2-Clause */
/* loader.c - skeleton lifecycle, per-CPU perf events, ring buffer. */
#include <errno.h>
#include <sys/mount.h>
#include <unistd.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loader.h"
#include "log.h"
#include "pysamp.skel.h"

#define LOADER_MAX_CPUS 4096

static const char *const stat_names[PYSAMP_STAT_MAX] = {
	[PYSAMP_STAT_TICKS] = "ticks",
	[PYSAMP_STAT_IDLE] = "idle",
	[PYSAMP_STAT_OTHER_PROC] = "other_process",
	[PYSAMP_STAT_TARGET] = "target_ticks",
	[PYSAMP_STAT_NO_SCRATCH] = "no_scratch",
	[PYSAMP_STAT_FSBASE_FAIL] = "thread_pointer_fail",
	[PYSAMP_STAT_INTERP_READ_FAIL] = "interp_read_fail",
	[PYSAMP_STAT_TSTATE_READ_FAIL] = "tstate_read_fail",
	[PYSAMP_STAT_NO_TSTATE] = "no_thread_state",
	[PYSAMP_STAT_THREAD_SCAN_LIMIT] = "thread_scan_limit",
	[PYSAMP_STAT_TSTATE_CACHE_HIT] = "tstate_cache_hit",
	[PYSAMP_STAT_NOT_PYTHON_CACHED] = "not_python_cached",
	[PYSAMP_STAT_NO_FRAME] = "no_python_frame",
	[PYSAMP_STAT_FRAME_READ_FAIL] = "frame_read_fail",
	[PYSAMP_STAT_CODE_READ_FAIL] = "code_read_fail",
	[PYSAMP_STAT_BAD_CONFIG] = "bad_config",
	[PYSAMP_STAT_TAIL_CALL_FAIL] = "tail_call_fail",
	[PYSAMP_STAT_TRUNCATED] = "truncated",
	[PYSAMP_STAT_RINGBUF_FULL] = "ringbuf_full",
	[PYSAMP_STAT_EMITTED] = "emitted",
	[PYSAMP_STAT_FRAMES] = "frames",
	[PYSAMP_STAT_EVENTS_LOST] = "events_lost",
};

/* Syscall tracepoints are found through tracefs; mount it where it belongs if nobody did. */
static void ensure_tracefs(void)
{
	if (access("/sys/kernel/tracing/events", F_OK) == 0 ||
	    access("/sys/kernel/debug/tracing/events", F_OK) == 0)
		return;
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) != 0)
		log_debug("cannot mount tracefs on /sys/kernel/tracing: %s", strerror(errno));
}

const char *loader_stat_name(int stat)
{
	if (stat < 0 || stat >= PYSAMP_STAT_MAX || !stat_names[stat])
		return "?";
	return stat_names[stat];
}

void loader_init(struct loader *ld)
{
	memset(ld, 0, sizeof(*ld));
}

int loader_load(struct loader *ld, const struct loader_opts *o)
{
	int err, fd, key;

	ld->skel = pysamp_bpf__open();
	if (!ld->skel) {
		err = -errno;
		log_error("cannot open the BPF object: %s", strerror(-err));
		return err;
	}
	ld->skel->rodata->cfg_debug = o->debug ? 1 : 0;
	ld->skel->rodata->cfg_track_all = o->track_all ? 1 : 0;
	ld->track_all = o->track_all;
	bpf_program__set_autoload(ld->skel->progs.on_mmap, o->track_all);
	if (o->ringbuf_bytes) {
		err = bpf_map__set_max_entries(ld->skel->maps.samples, o->ringbuf_bytes);
		if (err) {
			log_error("cannot size the ring buffer to %u bytes: %s", o->ringbuf_bytes,
				  strerror(-err));
			return err;
		}
	}
	err = pysamp_bpf__load(ld->skel);
	if (err) {
		log_error("cannot load the BPF programs: %s%s", strerror(-err),
			  err == -EPERM ? " (run as root: CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN "
					  "are needed)"
					: " (does this kernel have BPF, BTF and ring buffers? run "
					  "with -v for the verifier log)");
		return err;
	}
	{
		const struct {
			int slot;
			struct bpf_program *prog;
		} tail[] = {
			{ PYSAMP_PROG_WALK, ld->skel->progs.walk_python },
			{ PYSAMP_PROG_SCAN, ld->skel->progs.scan_threads },
		};

		for (size_t i = 0; i < sizeof(tail) / sizeof(tail[0]); i++) {
			key = tail[i].slot;
			fd = bpf_program__fd(tail[i].prog);
			if (bpf_map_update_elem(bpf_map__fd(ld->skel->maps.walk_progs), &key, &fd,
						BPF_ANY)) {
				err = -errno;
				log_error("cannot install the tail call to '%s': %s",
					  bpf_program__name(tail[i].prog), strerror(-err));
				return err;
			}
		}
	}
	/* Events first: ring_buffer__consume() reads the rings in this order, so a
	 * fork is known before the child's first sample is seen. */
	ld->rb = ring_buffer__new(bpf_map__fd(ld->skel->maps.events), o->on_event, o->ctx, NULL);
	if (!ld->rb) {
		err = -errno;
		log_error("cannot create the ring buffer consumer: %s", strerror(-err));
		return err;
	}
	err = ring_buffer__add(ld->rb, bpf_map__fd(ld->skel->maps.samples), o->on_sample, o->ctx);
	if (err) {
		log_error("cannot add the samples ring buffer: %s", strerror(-err));
		return err;
	}
	return 0;
}

/* Parse /sys/devices/system/cpu/online ("0-3,5,7-8") into a mask. */
static int online_cpus(bool *online, int max)
{
	char buf[4096], *p, *end;
	int fd, n;

	fd = open("/sys/devices/system/cpu/online", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	for (p = buf; *p && *p != '\n';) {
		long a = strtol(p, &end, 10), b;

		if (end == p || a < 0)
			return -EINVAL;
		b = a;
		p = end;
		if (*p == '-') {
			b = strtol(p + 1, &end, 10);
			if (end == p + 1 || b < a)
				return -EINVAL;
			p = end;
		}
		for (long c = a; c <= b && c < max; c++)
			online[c] = true;
		if (*p == ',')
			p++;
	}
	return 0;
}

int loader_attach(struct loader *ld, uint32_t freq)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.freq = 1,
		.sample_freq = freq,
	};
	bool *online = NULL;
	int ncpus = libbpf_num_possible_cpus(), err = 0, attached = 0;

	if (ncpus <= 0 || ncpus > LOADER_MAX_CPUS)
		return -EINVAL;
	{
		struct bpf_program *tp[] = { ld->skel->progs.on_fork, ld->skel->progs.on_exec,
					     ld->skel->progs.on_exit };

		for (size_t i = 0; i < sizeof(tp) / sizeof(tp[0]); i++) {
			ld->lifecycle[i] = bpf_program__attach(tp[i]);
			if (!ld->lifecycle[i]) {
				err = -errno;
				log_error("cannot attach '%s' (BTF tracepoints need Linux 5.5+): %s",
					  bpf_program__name(tp[i]), strerror(-err));
				return err;
			}
		}
		/* Late dlopen of libpython (--all only): useful, not essential. */
		if (ld->track_all) {
			ensure_tracefs();
			ld->lifecycle[3] = bpf_program__attach(ld->skel->progs.on_mmap);
			if (!ld->lifecycle[3])
				log_warn("cannot attach the syscalls/sys_enter_mmap tracepoint (%s): "
					 "interpreters loaded late with dlopen are found only after "
					 "an exec",
					 strerror(errno));
		}
	}
	online = calloc((size_t)ncpus, sizeof(*online));
	ld->links = calloc((size_t)ncpus, sizeof(*ld->links));
	ld->pfds = malloc((size_t)ncpus * sizeof(*ld->pfds));
	if (!online || !ld->links || !ld->pfds) {
		err = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < ncpus; i++)
		ld->pfds[i] = -1;
	ld->nlinks = ncpus;
	err = online_cpus(online, ncpus);
	if (err) {
		log_error("cannot read the online CPU list: %s", strerror(-err));
		goto out;
	}
	for (int cpu = 0; cpu < ncpus; cpu++) {
		int fd;

		if (!online[cpu])
			continue;
		fd = (int)syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
		if (fd < 0) {
			if (errno == ENODEV)
				continue;
			err = -errno;
			log_error("cannot open a cpu-clock perf event on CPU %d at %u Hz: %s%s",
				  cpu, freq, strerror(-err),
				  err == -EINVAL ? " (above kernel.perf_event_max_sample_rate?)"
						 : "");
			goto out;
		}
		ld->pfds[cpu] = fd;
		ld->links[cpu] = bpf_program__attach_perf_event(ld->skel->progs.on_cpu_sample, fd);
		if (!ld->links[cpu]) {
			err = -errno;
			log_error("cannot attach the sampler to CPU %d: %s", cpu, strerror(-err));
			goto out;
		}
		attached++;
	}
	if (!attached) {
		err = -ENODEV;
		log_error("no online CPU accepted a perf event");
	}
out:
	free(online);
	return err;
}

int loader_proc_set(struct loader *ld, pid_t pid, const struct pysamp_proc *p)
{
	__u32 key = (__u32)pid;

	if (bpf_map_update_elem(bpf_map__fd(ld->skel->maps.py_procs), &key, p, BPF_ANY))
		return -errno;
	return 0;
}

int loader_proc_del(struct loader *ld, pid_t pid)
{
	__u32 key = (__u32)pid;

	if (bpf_map_delete_elem(bpf_map__fd(ld->skel->maps.py_procs), &key))
		return -errno;
	return 0;
}

int loader_poll(struct loader *ld, int timeout_ms)
{
	int n, m;

	/*
	 * The sampler only wakes us when the buffer fills up (see emit() in
	 * pysamp.bpf.c), so a timeout is the normal way out of the wait: consume
	 * whatever arrived meanwhile either way.
	 */
	n = ring_buffer__poll(ld->rb, timeout_ms);
	if (n < 0 && n != -EINTR)
		return n;
	m = ring_buffer__consume(ld->rb);
	if (m < 0)
		return m;
	return (n > 0 ? n : 0) + m;
}

int loader_stats(struct loader *ld, uint64_t out[PYSAMP_STAT_MAX])
{
	int ncpus = libbpf_num_possible_cpus(), fd = bpf_map__fd(ld->skel->maps.stats);
	uint64_t *vals;

	if (ncpus <= 0)
		return -EINVAL;
	vals = calloc((size_t)ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (__u32 k = 0; k < PYSAMP_STAT_MAX; k++) {
		out[k] = 0;
		if (bpf_map_lookup_elem(fd, &k, vals))
			continue;
		for (int c = 0; c < ncpus; c++)
			out[k] += vals[c];
	}
	free(vals);
	return 0;
}

int loader_run_time(struct loader *ld, uint64_t *ns, uint64_t *cnt)
{
	struct bpf_program *progs[] = { ld->skel->progs.on_cpu_sample,
					ld->skel->progs.walk_python, ld->skel->progs.scan_threads };

	*ns = 0;
	*cnt = 0;
	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);

		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(bpf_program__fd(progs[i]), &info, &len))
			return -errno;
		*ns += info.run_time_ns;
		/* A sample is one entry run; walker runs are its continuation. */
		if (i == 0)
			*cnt = info.run_cnt;
	}
	return 0;
}

void loader_release(struct loader *ld)
{
	if (!ld)
		return;
	for (int i = 0; i < ld->nlinks; i++) {
		if (ld->links)
			bpf_link__destroy(ld->links[i]);
		if (ld->pfds && ld->pfds[i] >= 0)
			close(ld->pfds[i]);
	}
	free(ld->links);
	free(ld->pfds);
	for (size_t i = 0; i < sizeof(ld->lifecycle) / sizeof(ld->lifecycle[0]); i++)
		bpf_link__destroy(ld->lifecycle[i]);
	ring_buffer__free(ld->rb);
	pysamp_bpf__destroy(ld->skel);
	loader_init(ld);
}
