/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * core_fixes.bpf.h - per-architecture and per-kernel differences, kept out of
 * the sampler logic. Include after vmlinux.h and bpf_core_read.h.
 */
#ifndef PYSAMP_CORE_FIXES_BPF_H
#define PYSAMP_CORE_FIXES_BPF_H

/*
 * The thread pointer of a user task: what glibc's pthread_self() returns and
 * what CPython stores in PyThreadState.thread_id.
 *  - x86_64: thread_struct.fsbase (named fs before v4.7, commit 296f781a4b7801ad
 *    "x86/asm/64: Rename thread_struct's fs and gs to fsbase and gsbase").
 *  - arm64: thread_struct.uw.tp_value (since v4.15, commit fe48bc9d2d2b
 *    "arm64: Expose TPIDR_EL0 in struct thread_struct").
 */
struct thread_struct___pre47 {
	unsigned long fs;
};

static __always_inline __u64 task_thread_pointer(struct task_struct *task)
{
#if defined(__TARGET_ARCH_x86)
	if (bpf_core_field_exists(task->thread.fsbase))
		return BPF_CORE_READ(task, thread.fsbase);
	{
		struct thread_struct___pre47 *t = (void *)&task->thread;

		return BPF_CORE_READ(t, fs);
	}
#elif defined(__TARGET_ARCH_arm64)
	return BPF_CORE_READ(task, thread.uw.tp_value);
#else
#error "pysamp-bpf: task_thread_pointer() not written for this architecture"
#endif
}

#endif /* PYSAMP_CORE_FIXES_BPF_H */
