/* SPDX-License-Identifier: BSD-2-Clause */
/* remote.c - process_vm_readv wrappers. */
#include <errno.h>
#include <sys/uio.h>

#include "remote.h"

int remote_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	ssize_t n;

	if (len == 0)
		return 0;
	if (addr == 0 || addr + len < addr)
		return -EFAULT;
	n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return -errno;
	if ((size_t)n != len)
		return -EFAULT;
	return 0;
}

int remote_read_u64(pid_t pid, uint64_t addr, uint64_t *out)
{
	return remote_read(pid, addr, out, sizeof(*out));
}

int remote_read_u32(pid_t pid, uint64_t addr, uint32_t *out)
{
	return remote_read(pid, addr, out, sizeof(*out));
}
