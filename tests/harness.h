/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * harness.h - minimal unit-test harness (redis testhelp.h style).
 *
 * T_CHECK(cond) records a pass or a failure with file:line; T_DONE() prints
 * "N passed, N failed" and returns the exit status for main().
 */
#ifndef PYSAMP_TEST_HARNESS_H
#define PYSAMP_TEST_HARNESS_H

#include <stdio.h>

static int t_passed;
static int t_failed;

#define T_CHECK(cond)                                                                  \
	do {                                                                           \
		if (cond) {                                                            \
			t_passed++;                                                    \
		} else {                                                               \
			t_failed++;                                                    \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                \
		}                                                                      \
	} while (0)

#define T_CHECK_EQ_INT(a, b)                                                           \
	do {                                                                           \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);               \
		if (t_a_ == t_b_) {                                                    \
			t_passed++;                                                    \
		} else {                                                               \
			t_failed++;                                                    \
			fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n",     \
				__FILE__, __LINE__, #a, #b, t_a_, t_b_);               \
		}                                                                      \
	} while (0)

#define T_CHECK_EQ_STR(a, b)                                                           \
	do {                                                                           \
		const char *t_a_ = (a), *t_b_ = (b);                                   \
		if (t_a_ && t_b_ && strcmp(t_a_, t_b_) == 0) {                         \
			t_passed++;                                                    \
		} else {                                                               \
			t_failed++;                                                    \
			fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", \
				__FILE__, __LINE__, #a, #b, t_a_ ? t_a_ : "(null)",    \
				t_b_ ? t_b_ : "(null)");                               \
		}                                                                      \
	} while (0)

#define T_DONE()                                                                       \
	(printf("%d passed, %d failed\n", t_passed, t_failed), t_failed ? 1 : 0)

#endif /* PYSAMP_TEST_HARNESS_H */
