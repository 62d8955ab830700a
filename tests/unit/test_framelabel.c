/* SPDX-License-Identifier: BSD-2-Clause */
/* test_framelabel.c - splitting "qualname (path:LINE)" labels, hostile ones included. */
#include <string.h>

#include "framelabel.h"
#include "harness.h"

static int split(const char *s, struct frame_parts *p)
{
	return frame_label_split(s, strlen(s), p);
}

static void check(const char *s, const char *name, const char *file, long line)
{
	struct frame_parts p;

	int ok = split(s, &p);

	T_CHECK(ok);
	if (!ok)
		return;
	T_CHECK(p.name_len == strlen(name) && !memcmp(p.name, name, p.name_len));
	T_CHECK(p.file_len == strlen(file) && !memcmp(p.file, file, p.file_len));
	T_CHECK_EQ_INT(p.line, line);
}

int main(void)
{
	struct frame_parts p;

	check("main (/srv/app.py:12)", "main", "/srv/app.py", 12);
	check("Cls.meth.<locals>.f (a b/c (d).py:7)", "Cls.meth.<locals>.f", "a b/c (d).py", 7);
	check("<module> (<frozen importlib._bootstrap>:1)", "<module>",
	      "<frozen importlib._bootstrap>", 1);
	check("f (C:\\x.py:3)", "f", "C:\\x.py", 3);
	check("g (x.py:-1)", "g", "x.py", -1);
	T_CHECK(!split(" (x.py:1)", &p));
	T_CHECK(!split("n (:1)", &p));
	check("f (a:b (c.py:12)", "f", "a:b (c.py", 12);
	check("f (/home/u/My Project (2)/x.py:5)", "f", "/home/u/My Project (2)/x.py", 5);
	/* not Python frames */
	T_CHECK(!split("python3 [1234]", &p));
	T_CHECK(!split("[pruned]", &p));
	T_CHECK(!split("x (y.py:notanumber)", &p));
	T_CHECK(!split("x (y.py:)", &p));
	T_CHECK(!split("x(y.py:1)", &p));
	check("x (y.py:-2)", "x", "y.py", -2);
	check("x (y.py:0)", "x", "y.py", 0);
	T_CHECK(!split("x (y.py:007)", &p));
	T_CHECK(!split("x (y.py:-0)", &p));
	T_CHECK(!split("x (y.py:12345678901)", &p));
	T_CHECK(!split("(:1)", &p));
	T_CHECK(!split("", &p));
	T_CHECK(!frame_label_split(NULL, 0, &p));
	/* never reads past len */
	T_CHECK(!frame_label_split("f (x.py:1)", 9, &p));
	T_CHECK(frame_label_split("f (x.py:1)tail", 10, &p) && p.line == 1);
	return T_DONE();
}
