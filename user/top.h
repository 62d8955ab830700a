/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * top.h - `pysamp-bpf top`: a live terminal view of the functions using the CPU, refreshed every
 * second (like top(1), for Python functions).
 *
 * It runs the agent with one-second windows; each sealed window updates the table: functions
 * (or lines) by self and total share of the samples, all processes or one. Keys: q quit, s/t
 * sort by self/total, p next process, a all processes, l functions/lines, c last second /
 * cumulative. On a terminal it uses the alternate screen and restores the terminal on every
 * exit path; otherwise (a pipe) it prints one plain table per second.
 */
#ifndef PYSAMP_TOP_H
#define PYSAMP_TOP_H

/* The subcommand: argv[0] is "top". Exit status: 0, or 1 with a message on stderr. */
int top_main(int argc, char **argv);

#endif /* PYSAMP_TOP_H */
