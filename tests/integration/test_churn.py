# SPDX-License-Identifier: BSD-2-Clause
"""--all under churn: short-lived Python processes (0.5-2 s, every
interpreter) started one after another for 20 s are profiled (>= 95% of
them), and none of them is still tracked once they have exited."""
import os
import random
import re
import signal
import subprocess
import time

from itest import HZ, INTERPRETERS, PROFILER, exclusive

SECONDS = 20

CODE = """
import time
def churn_%(tag)s():
    end = time.time() + %(life)f
    x = 0
    while time.time() < end:
        x = (x * 7 + 1) & 0xffff
churn_%(tag)s()
"""


@exclusive
def all_churn(ctx, interp):
    interps = [it for it in INTERPRETERS if it.available]
    rng = random.Random(11)
    out = os.path.join(ctx.tmp, "churn.folded")
    run_proc = ctx.profile_async([PROFILER, "--all", "-F", str(HZ), "-o", out, "-v"])
    time.sleep(3)
    started = []  # (pid, tag)
    running = []
    deadline = time.time() + SECONDS
    i = 0
    while time.time() < deadline:
        running = [p for p in running if p.poll() is None]
        if len(running) >= 2:
            time.sleep(0.05)
            continue
        it = interps[i % len(interps)]
        tag = "p%d" % i
        life = rng.uniform(0.5, 2.0)
        p = subprocess.Popen([it.path, "-c", CODE % {"tag": tag, "life": life}])
        running.append(p)
        started.append((p, tag, it.label))
        i += 1
    for p, _, _ in started:
        p.wait(30)
    time.sleep(1)
    run = ctx.profile_async_stop(run_proc, signal.SIGINT)
    prof = ctx.expect_success(run)
    missed = [(p.pid, tag, label) for p, tag, label in started
              if not any(s.has_label("churn_" + tag) for s in prof.for_pid(p.pid))]
    n = len(started)
    ctx.check(n >= 15, "only %d processes started", n)
    ctx.check(len(missed) <= 0.05 * n, "%d of %d short-lived processes not captured: %s",
              len(missed), n, missed[:8])
    tracked = set(int(m) for m in re.findall(r"^\s+pid (\d+):", run.stderr, re.M))
    leaked = [p.pid for p, _, _ in started if p.pid in tracked]
    ctx.check(not leaked, "exited processes still tracked at the end: %s", leaked[:8])
    m = re.search(r"processes_exited\s+(\d+)", run.stderr)
    ctx.check(m is not None and int(m.group(1)) >= n - len(missed),
              "processes_exited %s for %d processes", m.group(1) if m else None, n)
