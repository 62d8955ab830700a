# SPDX-License-Identifier: BSD-2-Clause
"""Generators, coroutines, comprehensions, C callbacks, decorators, methods, closures:
each sampled stack equals the stack the interpreter itself reports."""
import collections

from itest import HZ, per_interpreter

SECONDS = 8


def _fmt(frames):
    return " ; ".join("%s@%s" % (f[0], f[2]) for f in frames)


@per_interpreter
def shapes(ctx, interp):
    tgt = ctx.target("shapes.py", name="shapes").wait_ready()
    run = ctx.profile([tgt.pid], duration=SECONDS, hz=HZ)
    truth = tgt.stop()
    prof = ctx.expect_success(run)
    stacks = prof.for_pid(tgt.pid)
    total = prof.total(stacks)
    if not ctx.check(total >= 100, "only %d samples in %ds", total, SECONDS):
        ctx.require()

    counts = []
    for name, spot in sorted(truth["spots"].items()):
        want = [tuple(f) for f in spot["stack"]]
        leaf = want[-1][:2]
        lo, hi = spot["leaf_lines"]
        mine = [s for s in stacks if s.leaf is not None and (s.leaf.label, s.leaf.path) == leaf
                and (s.leaf.line is None or lo <= s.leaf.line <= hi)]
        n = sum(s.count for s in mine)
        counts.append("%s %d" % (name, n))
        if not ctx.check(n >= 5, "spot %s: only %d samples end in %s (expected stack %s)", name, n, leaf[0],
                         _fmt(want)):
            continue
        wrong = collections.Counter()
        for s in mine:
            got = [(f.label, f.path, f.line) for f in s.frames[:-1]]
            if got != want[:-1]:
                wrong[_fmt(got)] += s.count
        for got, k in wrong.most_common(3):
            ctx.check(False, "spot %s: %d of %d samples under %s\n      expected: %s", name, k, n, got,
                      _fmt(want[:-1]))
    ctx.note("samples per spot: %s (of %d)" % (", ".join(counts), total))
