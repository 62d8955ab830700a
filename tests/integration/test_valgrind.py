# SPDX-License-Identifier: BSD-2-Clause
"""A whole agent run under valgrind: no invalid access, no definite leak."""
import os
import shutil

from itest import HZ, ROOT, single

SUPP = os.path.join(ROOT, "tests", "valgrind.supp")


@single
def valgrind_agent_run(ctx, interp):
    if not shutil.which("valgrind"):
        ctx.fail("valgrind is not installed (make deps installs it)")
    tgt = ctx.target("idle.py", ["--mode", "spin"], name="vg").wait_ready()
    vg = ["valgrind", "-q", "--suppressions=" + SUPP, "--error-exitcode=9", "--leak-check=full",
          "--errors-for-leak-kinds=definite"]
    run = ctx.profile([tgt.pid], duration=4, hz=HZ, verbose=True, argv_prefix=vg, timeout=180)
    truth = tgt.stop()
    ctx.check(run.rc != 9, "valgrind reported errors:\n%s", run.stderr[-4000:])
    prof = ctx.expect_success(run)
    total = prof.total(prof.for_pid(tgt.pid))
    ctx.check(total >= 20, "only %d samples under valgrind", total)
    ctx.check(any(s.leaf is not None and s.leaf.label == truth["label"] for s in prof.stacks),
              "no stack ends in %s", truth["label"])
