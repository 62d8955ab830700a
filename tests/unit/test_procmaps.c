/* SPDX-License-Identifier: BSD-2-Clause */
/* test_procmaps.c - /proc/PID/maps parser on captured and hostile input. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "procmaps.h"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf)
		*len = (size_t)n;
	return buf;
}

static void test_fixture_debian(void)
{
	struct procmaps m;
	size_t len = 0;
	char *text = slurp("tests/fixtures/maps_debian311.txt", &len);

	T_CHECK(text != NULL);
	if (!text)
		return;
	procmaps_init(&m);
	T_CHECK_EQ_INT(procmaps_parse(&m, text, len), 0);
	T_CHECK_EQ_INT(m.n, 44);
	T_CHECK_EQ_INT(m.v[0].start, 0x400000);
	T_CHECK_EQ_INT(m.v[0].end, 0x41f000);
	T_CHECK_EQ_INT(m.v[0].offset, 0);
	T_CHECK_EQ_INT(m.v[0].dev_major, 0xfe);
	T_CHECK_EQ_INT(m.v[0].inode, 247970);
	T_CHECK_EQ_STR(m.v[0].perms, "r--p");
	T_CHECK_EQ_STR(m.v[0].path, "/usr/bin/python3.11");
	T_CHECK_EQ_STR(m.v[1].perms, "r-xp");
	T_CHECK_EQ_INT(m.v[1].offset, 0x1f000);
	procmaps_release(&m);
	free(text);
}

static void test_fixture_pyenv(void)
{
	struct procmaps m;
	size_t len = 0, libs = 0;
	char *text = slurp("tests/fixtures/maps_pyenv312.txt", &len);

	T_CHECK(text != NULL);
	if (!text)
		return;
	procmaps_init(&m);
	T_CHECK_EQ_INT(procmaps_parse(&m, text, len), 0);
	for (size_t i = 0; i < m.n; i++)
		if (strstr(m.v[i].path, "libpython3.12.so"))
			libs++;
	T_CHECK(libs >= 4);
	T_CHECK_EQ_STR(m.v[m.n - 1].path, "[vsyscall]");
	procmaps_release(&m);
	free(text);
}

static void test_odd_lines(void)
{
	static const char text[] =
		"7f00-7f10 rw-p 00000000 00:00 0 \n"
		"\n"
		"7f10-7f20 r-xp 00001000 08:01 42                         /tmp/with space (deleted)\n"
		"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]";
	struct procmaps m;

	procmaps_init(&m);
	T_CHECK_EQ_INT(procmaps_parse(&m, text, strlen(text)), 0);
	T_CHECK_EQ_INT(m.n, 3);
	T_CHECK_EQ_STR(m.v[0].path, "");
	T_CHECK_EQ_STR(m.v[1].path, "/tmp/with space (deleted)");
	T_CHECK_EQ_INT(m.v[1].dev_minor, 1);
	T_CHECK_EQ_INT(m.v[2].start, 0xffffffffff600000ULL);
	procmaps_release(&m);
}

static void test_hostile(void)
{
	static const char *const bad[] = {
		"zz-10 r-xp 0 0:0 0 x",
		"10-5 r-xp 00000000 00:00 0 /end-before-start",
		"10-20 r-x 00000000 00:00 0 /short-perms",
		"10-20 r-xp 00000000 00:00 /no-inode",
		"1111111111111111111-20 r-xp 00000000 00:00 0 /too-many-digits",
		"10-20 r-xp 00000000 00:00 99999999999999999999999 /inode-overflow",
		"10-20",
	};
	struct procmaps m;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		procmaps_init(&m);
		T_CHECK_EQ_INT(procmaps_parse(&m, bad[i], strlen(bad[i])), -EINVAL);
		procmaps_release(&m);
	}
	/* An embedded NUL in the path is refused. */
	{
		static const char nul[] = "10-20 r-xp 00000000 00:00 1 /a\0b";

		procmaps_init(&m);
		T_CHECK_EQ_INT(procmaps_parse(&m, nul, sizeof(nul) - 1), -EINVAL);
		procmaps_release(&m);
	}
}

static void test_live(void)
{
	struct procmaps m;
	bool found = false;

	procmaps_init(&m);
	T_CHECK_EQ_INT(procmaps_read(&m, getpid()), 0);
	T_CHECK(m.n > 5);
	for (size_t i = 0; i < m.n; i++)
		if (strstr(m.v[i].path, "test_procmaps"))
			found = true;
	T_CHECK(found);
	procmaps_release(&m);
	procmaps_init(&m);
	T_CHECK_EQ_INT(procmaps_read(&m, 999999999), -ESRCH);
	procmaps_release(&m);
}

int main(void)
{
	test_fixture_debian();
	test_fixture_pyenv();
	test_odd_lines();
	test_hostile();
	test_live();
	return T_DONE();
}
