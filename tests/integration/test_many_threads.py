# SPDX-License-Identifier: BSD-2-Clause
"""A process with 1,500 idle threads: the busy main thread sits at the far end
of the thread list (newest first), past several scan runs, and must still be
found and attributed."""
import re

from itest import HZ, per_interpreter

SECONDS = 3
THREADS = 1500


@per_interpreter
def many_threads(ctx, interp):
    tgt = ctx.target("many_threads.py", ["--threads", THREADS], name="many").wait_ready(timeout=180)
    run = ctx.profile([tgt.pid], duration=SECONDS, hz=HZ, verbose=True)
    truth = tgt.stop()
    prof = ctx.expect_success(run)
    stacks = prof.for_pid(tgt.pid)
    total = prof.total(stacks)
    # The machine may be shared with other tests: ask for a third of a CPU's worth.
    ctx.check(total >= 0.3 * HZ * SECONDS, "only %d samples in %ds (main thread not found?)",
              total, SECONDS)
    hot = sum(s.count for s in stacks if s.leaf is not None and s.leaf.label == truth["label"])
    ctx.check(hot >= 0.9 * max(total, 1), "only %d of %d samples in %s", hot, total, truth["label"])
    m = re.search(r"thread_scan_limit\s+(\d+)", run.stderr)
    ctx.check(m is not None and int(m.group(1)) == 0, "thread_scan_limit: %s",
              m.group(1) if m else "not reported")
