/* SPDX-License-Identifier: BSD-2-Clause */
/* test_elfsym.c - ELF lookups on this test binary and on hostile files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elfsym.h"
#include "harness.h"
#include "procmaps.h"

/* Referenced so that it is a defined symbol with known contents. */
const char pysamp_test_marker[] = "elfsym-marker-1234";

static void test_self(void)
{
	struct elf_file *ef = elf_file__open("/proc/self/exe");
	struct procmaps m;
	uint64_t vaddr = 0, size = 0, base = 0, bias = 0, addr, secsize;
	char buf[sizeof(pysamp_test_marker)];

	T_CHECK(ef != NULL);
	if (!ef)
		return;
	T_CHECK_EQ_INT(elf_file__symbol(ef, "pysamp_test_marker", &vaddr, &size), 0);
	T_CHECK_EQ_INT(size, sizeof(pysamp_test_marker));
	T_CHECK_EQ_INT(elf_file__read(ef, vaddr, buf, sizeof(buf)), 0);
	T_CHECK(memcmp(buf, pysamp_test_marker, sizeof(buf)) == 0);
	T_CHECK(elf_file__has_symbol(ef, "main"));
	T_CHECK(!elf_file__has_symbol(ef, "no_such_symbol_here"));
	/* Undefined (imported) symbols do not count as defined. */
	T_CHECK(!elf_file__has_symbol(ef, "process_vm_readv"));
	T_CHECK_EQ_INT(elf_file__section(ef, ".text", &addr, &secsize), 0);
	T_CHECK(secsize > 0);
	T_CHECK_EQ_INT(elf_file__section(ef, ".no_such", &addr, &secsize), -ENOENT);

	/* The runtime address computed like pyproc does matches the real one. */
	T_CHECK_EQ_INT(elf_file__base_vaddr(ef, &base), 0);
	procmaps_init(&m);
	T_CHECK_EQ_INT(procmaps_read(&m, getpid()), 0);
	for (size_t i = 0; i < m.n; i++) {
		if (strstr(m.v[i].path, "test_elfsym") && m.v[i].offset == 0) {
			bias = m.v[i].start - base;
			break;
		}
	}
	T_CHECK_EQ_INT(bias + vaddr, (uintptr_t)pysamp_test_marker);
	procmaps_release(&m);
	/* Out of every segment. */
	T_CHECK_EQ_INT(elf_file__read(ef, 0xffffffffffff0000ULL, buf, 8), -EFAULT);
	elf_file__free(ef);
}

static void test_hostile(void)
{
	char path[] = "/tmp/pysamp-elfsym-XXXXXX";
	int fd = mkstemp(path);
	static const char junk[] = "\x7f" "ELF" "garbage that is not a real header";
	struct elf_file *ef;

	T_CHECK(fd >= 0);
	if (fd < 0)
		return;
	T_CHECK(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
	close(fd);
	ef = elf_file__open(path);
	T_CHECK(ef == NULL);
	T_CHECK_EQ_INT(errno, ENOEXEC);
	unlink(path);
	T_CHECK(elf_file__open("/nonexistent/file") == NULL);
	T_CHECK_EQ_INT(errno, ENOENT);
	elf_file__free(NULL);
}

int main(void)
{
	test_self();
	test_hostile();
	return T_DONE();
}
