/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dlopen_late.c - a C program that starts without any Python and loads
 * libpython with dlopen later (no exec): `dlopen_late LIBPYTHON DELAY_MS CODE`.
 * It idles DELAY_MS, then dlopens LIBPYTHON, initialises the interpreter
 * and runs CODE. Needs no Python headers (symbols looked up with dlsym).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
	void (*init)(void);
	int (*run)(const char *);
	struct timespec ts;
	long delay;
	void *lib;

	if (argc != 4) {
		fprintf(stderr, "usage: %s LIBPYTHON DELAY_MS CODE\n", argv[0]);
		return 2;
	}
	delay = strtol(argv[2], NULL, 10);
	ts.tv_sec = delay / 1000;
	ts.tv_nsec = (delay % 1000) * 1000000L;
	nanosleep(&ts, NULL);
	lib = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
	if (!lib) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	*(void **)&init = dlsym(lib, "Py_Initialize");
	*(void **)&run = dlsym(lib, "PyRun_SimpleString");
	if (!init || !run) {
		fprintf(stderr, "dlsym: %s\n", dlerror());
		return 1;
	}
	init();
	return run(argv[3]) == 0 ? 0 : 1;
}
