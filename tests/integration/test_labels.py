# SPDX-License-Identifier: BSD-2-Clause
"""--all names and finds what a fleet runs: a process in its own PID and mount
namespace (unshare) is profiled and labelled with both its host PID and its
namespace PID; a renamed one (exec -a) and setproctitle-style titles get
application names from their command lines, --app-name rules override them;
--exclude leaves processes out; a C program that loads libpython with dlopen
long after it started (no exec) is found."""
import os
import shutil
import signal
import subprocess
import time

from itest import HZ, INTERPRETERS, Profile, http_get, single
from svc import Service

HERE = os.path.dirname(os.path.abspath(__file__))


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _app_of(ctx, port, pid):
    st, _, body = http_get(port, "/?seconds=4&group=app&pid=%d" % pid)
    ctx.check(st == 200, "GET / status %s", st)
    return sorted(set(l.split(";")[0] for l in body.splitlines() if l.strip()))


@single
def labels_namespaces_names(ctx, interp):
    if not shutil.which("unshare"):
        ctx.fail("unshare (util-linux) is not installed")
    # In its own PID and mount namespace: unshare forks, the child (PID 1 inside) runs Python.
    ns = Service(ctx, "ns_service", interp,
                 argv_prefix=["unshare", "--pid", "--mount", "--fork", "--mount-proc",
                              "--kill-child", interp.path])
    renamed = Service(ctx, "renamed_service", interp,
                      argv_prefix=["bash", "-c", 'exec -a myworker "$@"', "bash", interp.path])
    ruled = Service(ctx, "ruled_service", interp)
    excluded = Service(ctx, "excluded_service", interp)
    h = ctx.start_agent(["--all", "--include", "app:*", "--exclude", "app:excluded_*",
                         "--exclude", "comm:bash", "-F", str(HZ), "--window", "2",
                         "--app-name", "*ruled_service.py*=billing-api"])
    time.sleep(5)
    port = h["port"]
    inner = None
    for _ in range(50):
        kids = _children(ns.pid)
        if kids:
            inner = kids[0]
            break
        time.sleep(0.1)
    ctx.check(inner is not None, "no Python child under unshare (pid %d)", ns.pid)
    st, _, body = http_get(port, "/?seconds=4")
    prof = Profile(body)
    if inner:
        stacks = [s for s in prof.for_pid(inner) if s.has_label(ns.hot)]
        ctx.check(stacks, "the namespaced process (host pid %d) is not profiled", inner)
        ctx.check(all(s.nspid == 1 for s in stacks), "namespaced root frames %s (want ns:1)",
                  sorted(set(s.root for s in stacks))[:3])
        ctx.check(_app_of(ctx, port, inner) == ["ns_service"], "app of the namespaced process: %s",
                  _app_of(ctx, port, inner))
    ctx.check(_app_of(ctx, port, renamed.pid) == ["myworker"], "renamed (exec -a myworker): app %s",
              _app_of(ctx, port, renamed.pid))
    ctx.check(_app_of(ctx, port, ruled.pid) == ["billing-api"], "--app-name rule: app %s",
              _app_of(ctx, port, ruled.pid))
    ctx.check(not prof.for_pid(excluded.pid), "--exclude app:excluded_* was profiled")
    run = ctx.profile_async_stop(h, signal.SIGTERM)
    ctx.check(run.rc == 0, "agent exit status %s", run.rc)
    if inner:
        try:
            os.kill(inner, signal.SIGKILL)
        except OSError:
            pass


@single
def labels_late_dlopen(ctx, interp):
    it = [i for i in INTERPRETERS if i.label == "3.11"]
    if not it or not it[0].available:
        ctx.fail("pyenv 3.11 is needed for this test")
    libdir = os.path.join(os.path.dirname(os.path.dirname(it[0].path)), "lib")
    lib = os.path.join(libdir, "libpython3.11.so.1.0")
    exe = os.path.join(ctx.tmp, "lateloader")
    subprocess.run(["gcc", "-O1", "-o", exe, os.path.join(HERE, "..", "targets", "c", "dlopen_late.c"),
                    "-ldl"], check=True)
    h = ctx.start_agent(["--all", "--include", "comm:lateloader", "-F", str(HZ), "--window", "2"])
    code = ("import time\ndef late_hot():\n    x = 0\n    end = time.time() + 6\n"
            "    while time.time() < end:\n        x = (x * 7 + 1) & 0xffff\nlate_hot()\n")
    env = dict(os.environ)
    env.pop("PYTHONHOME", None)
    p = subprocess.Popen([exe, lib, "3000", code], env=env)
    ctx._procs.append(p)
    time.sleep(8)
    st, _, body = http_get(h["port"], "/?seconds=6")
    prof = Profile(body)
    n = sum(s.count for s in prof.for_pid(p.pid) if s.has_label("late_hot"))
    ctx.check(n > 0, "late_hot of a dlopen'ed libpython (pid %d) not profiled:\n%s", p.pid,
              body[:400])
    p.wait(30)
    run = ctx.profile_async_stop(h, signal.SIGTERM)
    ctx.check(run.rc == 0, "agent exit status %s", run.rc)


@single
def labels_other_root(ctx, interp):
    """A process in its own PID and mount namespace whose root is another directory (as in a
    container): its interpreter's path in /proc/PID/maps does not exist on the host, so the
    agent must read the files through the process (map_files, /proc/PID/root)."""
    static = "/usr/bin/python3.11"
    if not os.access(static, os.X_OK) or not shutil.which("unshare"):
        ctx.fail("needs Debian's %s and unshare" % static)
    root = os.path.join(ctx.tmp, "rootfs")
    for d in ("usr", "lib", "lib64", "bin", "proc", "tmp", "opt/app"):
        if os.path.islink("/" + d):  # merged /usr: /lib -> usr/lib
            os.symlink(os.readlink("/" + d), os.path.join(root, d))
        else:
            os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2(static, os.path.join(root, "opt/app/pyserver"))
    with open(os.path.join(root, "tmp/contained_service.py"), "w") as f:
        f.write("import time\ndef contained_hot():\n    x = 0\n    while True:\n"
                "        x = (x * 31 + 7) & 0xffffff\ncontained_hot()\n")
    binds = " && ".join("mount --bind /%s %s/%s" % (d, root, d) for d in ("usr", "lib", "lib64", "bin")
                        if os.path.isdir("/" + d) and not os.path.islink("/" + d))
    script = ("%s && mount -t proc proc %s/proc && exec chroot %s /opt/app/pyserver "
              "/tmp/contained_service.py" % (binds, root, root))
    p = subprocess.Popen(["unshare", "--pid", "--mount", "--fork", "--kill-child",
                          "sh", "-c", script])
    ctx._procs.append(p)
    # argv[0] is not a python* name: the application is the program, "pyserver".
    h = ctx.start_agent(["--all", "--include", "app:pyserver", "-F", str(HZ), "--window", "2"])
    time.sleep(5)
    inner = None
    for _ in range(50):
        kids = _children(p.pid)
        if kids:
            inner = kids[0]
            break
        time.sleep(0.1)
    ctx.check(inner is not None, "no process under unshare (pid %d)", p.pid)
    ctx.check(not os.path.exists("/opt/app/pyserver"), "/opt/app/pyserver exists on the host")
    st, _, body = http_get(h["port"], "/?seconds=4")
    prof = Profile(body)
    if inner:
        stacks = [s for s in prof.for_pid(inner) if s.has_label("contained_hot")]
        ctx.check(stacks, "the process in another root (host pid %d) is not profiled:\n%s", inner,
                  body[:300])
        ctx.check(all(s.nspid == 1 for s in stacks), "root frames %s (want ns:1)",
                  sorted(set(s.root for s in stacks))[:3])
        ctx.check(all(s.has_label("contained_hot", "/tmp/contained_service.py") for s in stacks),
                  "file names should be the process's own paths: %s", stacks[:1])
    run = ctx.profile_async_stop(h, signal.SIGTERM)
    ctx.check(run.rc == 0, "agent exit status %s", run.rc)
    if inner:
        try:
            os.kill(inner, signal.SIGKILL)
        except OSError:
            pass
