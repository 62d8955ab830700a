/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fakepy.c - a process that looks like it holds a CPython interpreter (it
 * exports PyCode_Type and Py_Initialize) but is no version the profiler
 * knows. With -DFAKE_VERSION=0x030500f0 it also exports Py_Version. The
 * profiler must refuse it with one clear message, not crash.
 */
#include <signal.h>
#include <unistd.h>

__attribute__((visibility("default"))) char PyCode_Type[416];
#ifdef FAKE_VERSION
__attribute__((visibility("default"))) const unsigned int Py_Version = FAKE_VERSION;
#endif

__attribute__((visibility("default"))) void Py_Initialize(void)
{
	PyCode_Type[0] = 1;
}

int main(void)
{
	Py_Initialize();
	for (;;)
		pause();
	return 0;
}
