# SPDX-License-Identifier: BSD-2-Clause
"""Interpreters that do not look like "python": exec -a, symlinked and copied binaries."""
import os
import shutil

from itest import HZ, per_interpreter, read_proc

SECONDS = 3


def _profile_spinner(ctx, interp, tgt, expect_comm=None, expect_argv0=None, expect_exe=None):
    tgt.wait_ready()
    if expect_argv0 is not None:
        argv0 = (read_proc(tgt.pid, "cmdline") or b"").split(b"\0")[0].decode()
        ctx.check(argv0 == expect_argv0, "test setup: argv[0] is %r, not %r", argv0, expect_argv0)
    if expect_comm is not None:
        ctx.check(tgt.comm == expect_comm, "test setup: comm is %r, not %r", tgt.comm, expect_comm)
    if expect_exe is not None:
        exe = os.readlink("/proc/%d/exe" % tgt.pid)
        ctx.check(exe == expect_exe, "test setup: exe is %r, not %r", exe, expect_exe)
    ctx.require()
    run = ctx.profile([tgt.pid], duration=SECONDS, hz=HZ)
    truth = tgt.stop()
    prof = ctx.expect_success(run)
    stacks = prof.for_pid(tgt.pid)
    total = prof.total(stacks)
    ctx.check(total >= 30, "only %d samples in %ds", total, SECONDS)
    root = "%s [%d]" % (tgt.comm, tgt.pid)
    roots = sorted(set(s.root for s in prof.stacks))
    ctx.check(roots == [root] or not roots, "root frames %s, expected %r", roots, root)
    n = sum(s.count for s in stacks if s.leaf is not None and s.leaf.label == truth["label"]
            and s.leaf.path == truth["file"])
    ctx.check(n >= 0.8 * max(total, 1), "only %d of %d samples end in %s (%s)", n, total,
              truth["label"], truth["file"])


@per_interpreter
def renamed_exec_a(ctx, interp):
    """bash exec -a gunicorn: argv[0] lies, comm and exe do not change."""
    tgt = ctx.target("idle.py", ["--mode", "spin"], name="gunicorn",
                     argv_prefix=["bash", "-c", 'exec -a gunicorn "$@"', "bash", interp.path])
    _profile_spinner(ctx, interp, tgt, expect_argv0="gunicorn")


@per_interpreter
def renamed_symlink(ctx, interp):
    """A symlink named myserver: comm is myserver, /proc/PID/exe the real binary."""
    real = interp.info()["exe"]
    link = os.path.join(ctx.tmp, "myserver")
    os.symlink(real, link)
    tgt = ctx.target("idle.py", ["--mode", "spin"], name="symlink", argv_prefix=[link])
    _profile_spinner(ctx, interp, tgt, expect_comm="myserver", expect_exe=real)


@per_interpreter
def renamed_copy(ctx, interp):
    """A copy of the binary named myserver: comm and /proc/PID/exe both say myserver."""
    real = interp.info()["exe"]
    bindir = os.path.join(ctx.tmp, "bin")
    os.mkdir(bindir)
    copy = os.path.join(bindir, "myserver")
    shutil.copy2(real, copy)
    tgt = ctx.target("idle.py", ["--mode", "spin"], name="copy", argv_prefix=[copy],
                     env={"PYTHONHOME": interp.info()["prefix"]})
    _profile_spinner(ctx, interp, tgt, expect_comm="myserver", expect_exe=copy)
