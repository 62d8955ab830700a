# SPDX-License-Identifier: BSD-2-Clause
"""Bounded memory: a program that produces thousands of distinct stacks,
profiled with a small --max-stacks and --history-memory, keeps the agent's
tables small (the rarest stacks are folded into [pruned], and counted) while
every sample stays counted: the profile served over HTTP adds up to the
agent's own sample counter. SIGHUP rewrites -o FILE with what was collected."""
import os
import signal
import time

from itest import HZ, Profile, http_get, parse_prometheus, single
from svc import Service

# 2,000 generated functions called in turn: every sample lands in a new stack.
CODE = """
import time
src = "\\n".join("def f%d(n):\\n    x = 0\\n    for i in range(n):\\n        x += i\\n    return x" % i
                for i in range(2000))
ns = {}
exec(src, ns)
fs = [ns["f%d" % i] for i in range(2000)]
while True:
    for f in fs:
        f(3000)
"""


@single
def bounded_memory(ctx, interp):
    path = os.path.join(ctx.tmp, "manystacks.py")
    with open(path, "w") as f:
        f.write(CODE)
    import subprocess
    p = subprocess.Popen([interp.path, path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx._procs.append(p)
    out = os.path.join(ctx.tmp, "bounded.folded")
    h = ctx.start_agent(["-p", str(p.pid), "-F", "999", "--window", "1", "--max-stacks", "200",
                         "--history-memory", "1", "-o", out])
    time.sleep(20)  # 20 windows of ~90 KB: past the 1 MB history budget
    st, _, body = http_get(h["port"], "/metrics")
    m = parse_prometheus(body)
    st, _, folded = http_get(h["port"], "/?seconds=3600")
    st2, _, body2 = http_get(h["port"], "/metrics")
    m2 = parse_prometheus(body2)
    prof = Profile(folded)
    total = prof.total()
    lo, hi = m[("pysamp_samples_total", "")], m2[("pysamp_samples_total", "")]
    ctx.check(lo <= total <= hi, "served profile holds %d samples; the agent counted %d-%d",
              total, lo, hi)
    ctx.check(m2[("pysamp_stacks_pruned_total", "")] > 0, "nothing pruned with --max-stacks 200")
    pruned = sum(s.count for s in prof.stacks if s.frames == [] and "[pruned]" in s.line)
    ctx.check(any("[pruned]" in s.line for s in prof.stacks), "no [pruned] stack served")
    ctx.check(m2[("pysamp_history_bytes", "")] <= 3 << 20, "history holds %d bytes with a 1 MB "
              "budget", m2[("pysamp_history_bytes", "")])
    ctx.check(m2[("pysamp_history_compactions_total", "")] > 0, "the history never compacted")
    t = int(time.time()) - 3
    st, _, one = http_get(h["port"], "/?from=%d&until=%d" % (t, t + 1))
    n_one = len([l for l in one.splitlines() if l.strip()])
    ctx.check(0 < n_one <= 200 + 1, "%d unique stacks in the window at %d (cap 200, + [pruned])",
              n_one, t)
    ctx.note("pruned samples %d of %d" % (pruned, total))
    os.kill(h["proc"].pid, signal.SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline and not os.path.exists(out):
        time.sleep(0.2)
    ctx.check(os.path.exists(out), "SIGHUP did not write -o %s", out)
    run = ctx.profile_async_stop(h, signal.SIGTERM)
    ctx.check(run.rc == 0, "agent exit status %s:\n%s", run.rc, run.stderr[-600:])
    final = Profile(run.output or "")
    ctx.check(final.total() >= hi, "-o at exit holds %d samples, fewer than the %d counted before",
              final.total(), hi)
