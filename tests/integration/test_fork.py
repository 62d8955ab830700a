# SPDX-License-Identifier: BSD-2-Clause
"""-p PID follows forks: a child forked by a profiled process is profiled
under its own pid from its first moments, with its own functions."""
import os
import re
import subprocess

from itest import HZ, per_interpreter

CODE = '''
import os, sys, time
def parent_work():
    end = time.time() + 3
    while time.time() < end:
        pass
def child_work():
    end = time.time() + 2.5
    while time.time() < end:
        pass
sys.stdout.write("ready\\n")
sys.stdout.flush()
time.sleep(0.5)
pid = os.fork()
if pid == 0:
    child_work()
    os._exit(0)
sys.stdout.write("%d\\n" % pid)
sys.stdout.flush()
parent_work()
os.waitpid(pid, 0)
'''


@per_interpreter
def fork_followed(ctx, interp):
    script = os.path.join(ctx.tmp, "forker.py")
    with open(script, "w") as f:
        f.write(CODE)
    proc = subprocess.Popen([interp.path, script], stdout=subprocess.PIPE)
    # Profile once the interpreter runs (before that its libraries are not mapped).
    ctx.check(proc.stdout.readline().strip() == b"ready", "the target did not start")
    try:
        run = ctx.profile([proc.pid], duration=None, hz=HZ, verbose=True, timeout=30)
        child = int(proc.stdout.readline() or 0)
    finally:
        proc.wait(30)
    prof = ctx.expect_success(run)
    parent_n = sum(s.count for s in prof.for_pid(proc.pid) if s.has_label("parent_work", script))
    child_n = sum(s.count for s in prof.for_pid(child) if s.has_label("child_work", script))
    ctx.check(child > 0, "the target did not report its child's pid")
    ctx.check(parent_n >= 20, "only %d samples of parent_work in the parent", parent_n)
    ctx.check(child_n >= 20, "only %d samples of child_work in the child (pid %d)", child_n, child)
    m = re.search(r"unknown_pid\s+(\d+)", run.stderr)
    ctx.check(m is not None and int(m.group(1)) == 0, "samples dropped as unknown pid: %s",
              m.group(1) if m else "not reported")
