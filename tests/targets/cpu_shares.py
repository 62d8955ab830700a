# SPDX-License-Identifier: BSD-2-Clause
"""Spend CPU in named functions in uneven, measured proportions.

    cpu_shares.py --out TRUTH.json [--duration S] [--ready FILE]

By design roughly 60% of the main thread's CPU goes to Worker.heavy, 30% to
Worker.medium and 10% to make_light.<locals>.light (the labels are plain
names before 3.11). Calls are a few milliseconds each, in shuffled order with
jittered lengths so that a fixed-rate sampler cannot alias with them. The
ground truth is what the thread CPU clock measures around each call, from
the ready line to the stop. Worker.heavy spends nearly all its time on the
line marked HOT; its number is found from this file's source at run time.
"""
from __future__ import print_function, division

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tgtlib  # noqa: E402
from tgtlib import RANGE, thread_cpu  # noqa: E402


class Worker(object):
    def __init__(self, seed):
        self.seed = seed

    def heavy(self, n):
        acc = self.seed
        for i in RANGE(n):
            acc = ((acc * 1103515245 + 12345) ^ (acc >> 13) ^ (i * 7) ^ (acc << 3)) & 0x7fffffff  # HOT
        return acc

    def medium(self, n):
        acc = 0
        for i in RANGE(n):
            acc = (acc + i * i) % 1000003
        return acc


def make_light():
    def light(n):
        s = 0
        for i in RANGE(n):
            s += i & 7
        return s
    return light


# Target CPU seconds per call; the ratio is the designed share.
DESIGN = (("heavy", 0.006), ("medium", 0.003), ("light", 0.001))


def calibrate(fn, seconds):
    """Iterations of fn that take about `seconds` of thread CPU time."""
    n = 1000
    while True:
        t0 = thread_cpu()
        fn(n)
        dt = thread_cpu() - t0
        if dt >= 0.02 or n >= 1 << 26:
            break
        n *= 2
    return max(1, int(n * seconds / max(dt, 1e-6)))


def run(target):
    worker = Worker(12345)
    fns = {"heavy": worker.heavy, "medium": worker.medium, "light": make_light()}
    base_n = {}
    for key, seconds in DESIGN:
        base_n[key] = calibrate(fns[key], seconds)
    rng = random.Random(4321)
    keys = [k for k, _ in DESIGN]
    cpu = dict((k, 0.0) for k in keys)
    calls = dict((k, 0) for k in keys)

    target.ready()
    start = thread_cpu()
    pstart = tgtlib.process_cpu()
    while not target.should_stop():
        rng.shuffle(keys)
        for key in keys:
            n = int(base_n[key] * rng.uniform(0.5, 1.5)) + 1
            t0 = thread_cpu()
            fns[key](n)  # CALL
            cpu[key] += thread_cpu() - t0
            calls[key] += 1
    total = thread_cpu() - start
    ptotal = tgtlib.process_cpu() - pstart

    truth = tgtlib.base_truth()
    truth.update({
        "target": "cpu_shares",
        "file": worker.heavy.__code__.co_filename,
        "total_cpu": total,
        "process_cpu": ptotal,
        "hot_function": "heavy",
        "hot_line": tgtlib.marker_line(Worker.heavy, "# HOT"),
        "functions": {},
        # Every sample inside one of the functions has this stack above it.
        "caller_stack": [
            ["<module>", truth_file(), source_marker_line("# MAIN")],
            [tgtlib.code_label(main), truth_file(), tgtlib.marker_line(main, "# RUN")],
            [tgtlib.code_label(run), truth_file(), tgtlib.marker_line(run, "# CALL")],
        ],
    })
    for key in cpu:
        func = fns[key]
        code = func.__code__
        truth["functions"][key] = {
            "label": tgtlib.code_label(code),
            "name": code.co_name,
            "firstlineno": code.co_firstlineno,
            "cpu": cpu[key],
            "share": cpu[key] / total if total > 0 else 0.0,
            "calls": calls[key],
            "iterations_per_call": base_n[key],
        }
    truth["other_cpu"] = total - sum(cpu.values())
    return truth


def truth_file():
    return run.__code__.co_filename


def source_marker_line(marker):
    """Line of this module's source containing marker (module level)."""
    with open(os.path.abspath(__file__)) as f:
        hits = [i + 1 for i, text in enumerate(f) if text.rstrip().endswith(marker)]
    if len(hits) != 1:
        raise RuntimeError("marker %r found %d times" % (marker, len(hits)))
    return hits[0]


def main():
    target = tgtlib.Target(__doc__)
    target.parse()
    truth = run(target)  # RUN
    target.finish(truth)


if __name__ == "__main__":
    main()  # MAIN
