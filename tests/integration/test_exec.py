# SPDX-License-Identifier: BSD-2-Clause
"""A target that exec's another interpreter mid-profile (2.7 -> 3.12): the
profiler notices, inspects it again, and labels both programs' frames right."""
import os
import subprocess

from itest import HZ, INTERPRETERS, single

BEFORE = '''
import os, sys, time
def before_exec():
    end = time.time() + 2.5
    x = 0
    while time.time() < end:
        x += 1
before_exec()
os.execv(sys.argv[1], [sys.argv[1], sys.argv[2]])
'''

AFTER = '''
import time
def after_exec():
    end = time.time() + 4
    x = 0
    while time.time() < end:
        x += 1
after_exec()
'''


def _interp(label):
    for it in INTERPRETERS:
        if it.label == label and it.available:
            return it
    return None


@single
def exec_into_other_interpreter(ctx, interp):
    old, new = _interp("2.7"), _interp("3.12")
    if old is None or new is None:
        ctx.fail("needs the 2.7 and 3.12 interpreters")
    before = os.path.join(ctx.tmp, "before.py")
    after = os.path.join(ctx.tmp, "after.py")
    with open(before, "w") as f:
        f.write(BEFORE)
    with open(after, "w") as f:
        f.write(AFTER)
    proc = subprocess.Popen([old.path, before, new.path, after])
    try:
        run = ctx.profile([proc.pid], duration=6, hz=HZ, verbose=True)
    finally:
        proc.wait(30)
    prof = ctx.expect_success(run)
    stacks = prof.for_pid(proc.pid)
    total = prof.total(stacks)
    n_before = sum(s.count for s in stacks if s.has_label("before_exec", before))
    n_after = sum(s.count for s in stacks if s.has_label("after_exec", after))
    unknown = sum(s.count for s in stacks if any(f.text == "[unknown]" for f in s.frames))
    ctx.check(n_before >= 100, "only %d samples in before_exec (2.7)", n_before)
    ctx.check(n_after >= 150, "only %d samples in after_exec (3.12, after exec)", n_after)
    ctx.check(unknown <= 0.05 * max(total, 1), "%d of %d samples have [unknown] frames",
              unknown, total)
    ctx.check("exec'd a new program" in run.stderr, "no message about the exec in -v output")
