# SPDX-License-Identifier: BSD-2-Clause
"""CPU-bound benchmark target for bench/overhead.py: a fixed amount of work
run under a deep Python stack, timed by the process itself.

    workload.py [--depth N] [--iters N] [--slices N]

Recurses through dive() to DEPTH frames, then, in hot() at the bottom, warms
up (ITERS/10 iterations) and serves commands on stdin:
  * prints "READY pid=N depth=D" (flushed) and blocks reading a line;
  * "go": runs ITERS iterations of a pure-bytecode loop, in SLICES equal
    slices, and prints "RESULT {json}" with the wall time (perf_counter) and
    the process CPU time (process_time) of the whole loop and of each slice;
    then back to READY;
  * EOF or anything else: exits (so it never outlives the harness that feeds
    its stdin).

While working, the stack is, root first: <module>, main, dive x DEPTH, hot,
i.e. DEPTH + 3 Python frames. Runs on CPython 2.7 and 3.6+.
"""
from __future__ import print_function, division

import json
import os
import sys
import time

if sys.version_info[0] == 2:
    RANGE = xrange  # noqa: F821 (Python 2 only)
else:
    RANGE = range

wall_clock = getattr(time, "perf_counter", time.time)


def _os_cpu():
    t = os.times()
    return t[0] + t[1]


cpu_clock = getattr(time, "process_time", _os_cpu)


def hot(iters, slices, depth):
    x = 1
    for i in RANGE(max(1, iters // 10)):  # warm-up: same loop, same frame
        x = (x * 31 + i) & 0xffff
    per = max(1, iters // slices)
    while True:
        sys.stdout.write("READY pid=%d depth=%d\n" % (os.getpid(), depth))
        sys.stdout.flush()
        if sys.stdin.readline().strip() != "go":
            return x
        walls, cpus = [], []
        c0 = cpu_clock()
        t0 = wall_clock()
        for _ in RANGE(slices):
            sc = cpu_clock()
            st = wall_clock()
            for i in RANGE(per):
                x = (x * 31 + i) & 0xffff
            walls.append(wall_clock() - st)
            cpus.append(cpu_clock() - sc)
        t1 = wall_clock()
        c1 = cpu_clock()
        res = {"wall": t1 - t0, "cpu": c1 - c0, "iters": per * slices,
               "slice_wall": walls, "slice_cpu": cpus, "frames": depth + 3,
               "python": sys.version.split()[0]}
        sys.stdout.write("RESULT " + json.dumps(res) + "\n")
        sys.stdout.flush()


def dive(n, iters, slices, depth):
    if n > 1:
        return dive(n - 1, iters, slices, depth)
    return hot(iters, slices, depth)


def main():
    opts = {"--depth": 48, "--iters": 10000000, "--slices": 20}
    args = sys.argv[1:]
    while args:
        opt = args.pop(0)
        if opt in opts and args:
            try:
                opts[opt] = int(args.pop(0))
            except ValueError:
                opts[opt] = 0
            if opts[opt] < 1:
                sys.stderr.write("workload.py: %s must be an integer >= 1\n" % opt)
                return 2
        else:
            sys.stderr.write("usage: workload.py [--depth N] [--iters N] [--slices N]\n")
            return 2
    depth = opts["--depth"]
    sys.setrecursionlimit(max(1000, depth + 100))
    dive(depth, opts["--iters"], opts["--slices"], depth)
    return 0


if __name__ == "__main__":
    sys.exit(main())
