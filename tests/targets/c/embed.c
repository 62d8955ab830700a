/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * embed.c - a C program that embeds CPython through libpython: it is not
 * named python, its executable defines no Python symbols, and the interpreter
 * is only a shared library it links. Runs argv[1] with sys.argv = argv[1:].
 * With EMBED_NATIVE_SPIN=1 in the environment it also starts a native thread
 * that burns CPU in C and never touches Python (a thread with no thread
 * state). Built by the integration tests against each interpreter's headers.
 */
#include <Python.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static volatile unsigned long native_work;

static void *native_spin(void *arg)
{
	(void)arg;
	for (;;)
		native_work = native_work * 31 + 7;
	return NULL;
}

int main(int argc, char **argv)
{
	FILE *f;
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: %s SCRIPT [ARGS...]\n", argv[0]);
		return 2;
	}
	if (getenv("EMBED_NATIVE_SPIN")) {
		pthread_t th;

		if (pthread_create(&th, NULL, native_spin, NULL) != 0) {
			perror("pthread_create");
			return 2;
		}
	}
	Py_Initialize();
#if PY_MAJOR_VERSION >= 3
	{
		wchar_t **wargv = PyMem_RawMalloc(sizeof(wchar_t *) * (size_t)argc);

		for (int i = 1; i < argc; i++)
			wargv[i - 1] = Py_DecodeLocale(argv[i], NULL);
		PySys_SetArgvEx(argc - 1, wargv, 1);
	}
#else
	PySys_SetArgvEx(argc - 1, argv + 1, 1);
#endif
	f = fopen(argv[1], "r");
	if (!f) {
		perror(argv[1]);
		return 2;
	}
	rc = PyRun_SimpleFileExFlags(f, argv[1], 1, NULL);
	Py_Finalize();
	return rc ? 1 : 0;
}
