# SPDX-License-Identifier: BSD-2-Clause
"""Deep stacks: 1000 frames captured whole, 1500 cut at the root end with [truncated]."""
import collections

from itest import HZ, per_interpreter

MAX_FRAMES = 1024
SECONDS = 4


def _describe(frames, n=4):
    def fmt(f):
        return "%s@%s" % (f[0], f[2]) if isinstance(f, (list, tuple)) else "%s@%s" % (f.label, f.line)
    if len(frames) <= 2 * n:
        return " ; ".join(fmt(f) for f in frames)
    return " ; ".join(fmt(f) for f in frames[:n]) + " ; ... ; " + " ; ".join(fmt(f) for f in frames[-n:])


def _check_depth(ctx, interp, depth):
    tgt = ctx.target("recurse.py", [depth], name="recurse%d" % depth).wait_ready()
    run = ctx.profile([tgt.pid], duration=SECONDS, hz=HZ)
    truth = tgt.stop()
    prof = ctx.expect_success(run)
    stacks = prof.for_pid(tgt.pid)
    total = prof.total(stacks)
    if not ctx.check(total >= 50, "only %d samples in %ds", total, SECONDS):
        ctx.require()

    want = truth["stack"]  # root first, as the interpreter sees it from spin()
    path = truth["file"]
    expect_trunc = len(want) > MAX_FRAMES
    kept = want[-MAX_FRAMES:] if expect_trunc else want
    leaf = truth["leaf"]
    rec = truth["recursive"]

    spin_samples = 0
    bad = collections.Counter()
    examples = []
    for s in stacks:
        py = s.frames
        # Whatever the leaf, a stack is truncated iff it had more than MAX_FRAMES frames.
        if s.truncated and len(py) != MAX_FRAMES:
            bad["[truncated] stack keeps %d frames, not %d" % (len(py), MAX_FRAMES)] += s.count
        if not s.truncated and len(py) > MAX_FRAMES:
            bad["%d frames without [truncated]" % len(py)] += s.count
        if not py or py[-1].label != leaf:
            continue
        spin_samples += s.count
        if s.truncated != expect_trunc:
            bad["[truncated] %s, expected %s" % (s.truncated, expect_trunc)] += s.count
        nrec = sum(1 for f in py if f.label == rec)
        want_rec = sum(1 for f in kept if f[0] == rec)
        if nrec != want_rec:
            bad["%d frames of %s, expected %d" % (nrec, rec, want_rec)] += s.count
        got = [(f.label, f.path, f.line) for f in py[:-1]]
        exp = [tuple(f) for f in kept[:-1]]
        if got != exp:
            first = next((i for i, (a, b) in enumerate(zip(got, exp)) if a != b), min(len(got), len(exp)))
            reason = "frames differ from the interpreter's own stack (%d vs %d frames, first difference " \
                     "at %d: %s vs %s)" % (len(got) + 1, len(exp) + 1, first,
                                           got[first] if first < len(got) else "-",
                                           exp[first] if first < len(exp) else "-")
            bad[reason] += s.count
            if len(examples) < 2:
                examples.append(_describe(py))
        if py[-1].path != path:
            bad["leaf path %r" % py[-1].path] += s.count

    ctx.check(spin_samples >= 0.8 * total, "only %d of %d samples have %s as the leaf", spin_samples,
              total, leaf)
    for reason, n in bad.most_common(8):
        ctx.check(False, "%d samples: %s", n, reason)
    for e in examples:
        ctx.note("example: %s", e)
    ctx.note("%d samples, %d with leaf %s; expected %s" % (total, spin_samples, leaf, _describe(kept)))


@per_interpreter
def recursion_1000(ctx, interp):
    _check_depth(ctx, interp, 1000)


@per_interpreter
def recursion_1500(ctx, interp):
    _check_depth(ctx, interp, 1500)
