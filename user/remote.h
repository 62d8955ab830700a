/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * remote.h - reads of another process's memory with process_vm_readv.
 *
 * Everything read here is untrusted: callers bound every length they pass.
 * All functions are thread-safe and allocate nothing.
 */
#ifndef PYSAMP_REMOTE_H
#define PYSAMP_REMOTE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Copy len bytes at addr in process pid into buf. Returns 0, or -errno:
 * -EFAULT for a partial or unmapped read, -ESRCH when the process is gone,
 * -EPERM without ptrace rights.
 */
int remote_read(pid_t pid, uint64_t addr, void *buf, size_t len)
	__attribute__((warn_unused_result));

/* Read one little-endian u64 / u32 at addr; as remote_read. */
int remote_read_u64(pid_t pid, uint64_t addr, uint64_t *out) __attribute__((warn_unused_result));
int remote_read_u32(pid_t pid, uint64_t addr, uint32_t *out) __attribute__((warn_unused_result));

#endif /* PYSAMP_REMOTE_H */
