# SPDX-License-Identifier: BSD-2-Clause
"""Many idle Python threads and one busy main thread.

    many_threads.py --threads N --out TRUTH.json [--ready FILE]

Starts N threads that block on an Event, then the main thread (last in the
interpreter's thread list, which is newest-first) burns CPU in spin_main()
until stopped. A profiler that gives up after scanning a few hundred thread
states never finds the main thread.
"""
from __future__ import print_function, division

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tgtlib  # noqa: E402
from tgtlib import RANGE, thread_cpu  # noqa: E402


def spin_main(target):
    x = 0
    while not target.should_stop():
        for i in RANGE(20000):
            x = (x * 31 + i) & 0xffff
    return x


def main():
    target = tgtlib.Target(__doc__)
    target.add_argument("--threads", type=int, default=600)
    args = target.parse()
    gate = threading.Event()
    workers = [threading.Thread(target=gate.wait) for _ in range(args.threads)]
    for t in workers:
        t.daemon = True
        t.start()
    target.ready()
    t0 = thread_cpu()
    spin_main(target)
    truth = tgtlib.base_truth()
    truth.update({
        "target": "many_threads",
        "threads": args.threads,
        "file": spin_main.__code__.co_filename,
        "label": tgtlib.code_label(spin_main),
        "total_cpu": thread_cpu() - t0,
    })
    gate.set()
    target.finish(truth)


if __name__ == "__main__":
    main()
