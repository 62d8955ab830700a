# SPDX-License-Identifier: BSD-2-Clause
"""One member of a fleet: a process that works in a function whose name
carries its own tag, in bursts (10 ms of CPU, 30 ms asleep), until stopped.

    fleet_member.py TAG [--fork] --out TRUTH.json [--ready FILE]

With --fork the process forks once after getting ready; the child works in
its own function (child_<TAG>) and reports its pid in the parent's truth.
"""
from __future__ import print_function, division

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tgtlib  # noqa: E402
from tgtlib import RANGE  # noqa: E402


def burst(target, tag_work):
    while not target.should_stop():
        tag_work()
        time.sleep(0.03)


def make_work(name):
    src = "def %s():\n    end = _t() + 0.01\n    x = 0\n    while _t() < end:\n" \
          "        for i in _R(500):\n            x = (x * 7 + i) & 0xffff\n    return x\n" % name
    ns = {"_t": time.time, "_R": RANGE}
    exec(compile(src, "<fleet>", "exec"), ns)
    return ns[name]


def main():
    target = tgtlib.Target(__doc__)
    target.add_argument("tag")
    target.add_argument("--fork", action="store_true")
    args = target.parse()
    name = "work_" + args.tag.replace("-", "_").replace(".", "_")
    child = None
    target.ready()
    if args.fork:
        child = os.fork()
        if child == 0:
            work = make_work("child_" + args.tag.replace("-", "_").replace(".", "_"))
            end = time.time() + 60
            while time.time() < end and os.getppid() != 1:
                work()
                time.sleep(0.03)
            os._exit(0)
    burst(target, make_work(name))
    truth = tgtlib.base_truth()
    truth.update({"target": "fleet_member", "label": name, "child": child,
                  "child_label": ("child_" + name[5:]) if child else None})
    if child:
        try:
            os.kill(child, 15)
            os.waitpid(child, 0)
        except OSError:
            pass
    target.finish(truth)


if __name__ == "__main__":
    main()
