/* SPDX-License-Identifier: BSD-2-Clause */
/* test_pyproc.c - the (device, inode) cache of files that hold no interpreter. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "pyproc.h"

static pid_t spawn_python(const char *path)
{
	pid_t pid = fork();

	if (pid == 0) {
		execl(path, path, "-c", "import time; time.sleep(30)", (char *)NULL);
		_exit(127);
	}
	return pid;
}

int main(void)
{
	struct pyproc_verdicts v = { 0 };
	struct pyproc *pp;
	char why[512];
	uint64_t misses;
	const char *py = "/root/.pyenv/versions/3.11.7/bin/python3.11";
	pid_t child;

	/* This test program holds no interpreter: every mapped ELF file gets a verdict. */
	errno = 0;
	pp = pyproc__new_cached(getpid(), &v, why, sizeof(why));
	T_CHECK(pp == NULL);
	T_CHECK_EQ_INT(errno, ENOEXEC);
	T_CHECK(v.misses >= 2); /* at least the program and libc */
	T_CHECK_EQ_INT(v.hits, 0);
	misses = v.misses;
	/* Again: answered from the cache, no file opened. */
	errno = 0;
	pp = pyproc__new_cached(getpid(), &v, why, sizeof(why));
	T_CHECK(pp == NULL);
	T_CHECK_EQ_INT(errno, ENOEXEC);
	T_CHECK_EQ_INT(v.misses, misses);
	T_CHECK_EQ_INT(v.hits, misses);
	T_CHECK(v.n <= PYPROC_VERDICTS_MAX);

	/* A real interpreter is still found with libc & co. cached as "not Python". */
	if (access(py, X_OK) != 0)
		py = "/usr/bin/python3.11";
	child = spawn_python(py);
	T_CHECK(child > 0);
	if (child > 0) {
		struct timespec ts = { 0, 300 * 1000 * 1000 };

		nanosleep(&ts, NULL); /* let ld.so map libpython */
		pp = pyproc__new_cached(child, &v, why, sizeof(why));
		T_CHECK(pp != NULL);
		if (!pp)
			fprintf(stderr, "pyproc__new_cached(%s): %s\n", py, why);
		T_CHECK(pp && (pp->version_hex >> 16) == 0x30b);
		T_CHECK(v.hits >= misses); /* libpython is tried first: no more lookups needed */
		pyproc__free(pp);
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	pyproc_verdicts_release(&v);
	T_CHECK(v.v == NULL && v.n == 0);
	return T_DONE();
}
