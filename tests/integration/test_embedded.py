# SPDX-License-Identifier: BSD-2-Clause
"""Interpreters found by ELF symbols, not names: a C program embedding
libpython is profiled; a process exporting Python-looking symbols of an
unknown or unsupported version is refused with one clear message."""
import os
import subprocess

from itest import HZ, INTERPRETERS, ROOT, single

SECONDS = 3
CDIR = os.path.join(ROOT, "tests", "targets", "c")


def _interp(label):
    for it in INTERPRETERS:
        if it.label == label:
            return it
    return None


def _build(ctx, src, out, flags):
    cmd = ["gcc", "-O1", "-g", "-o", out, os.path.join(CDIR, src)] + flags
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        ctx.fail("cannot build %s: %s\n%s" % (src, " ".join(cmd), p.stdout.decode("utf-8", "replace")))
    return out


def _embedded(ctx, label, native_spin=False):
    it = _interp(label)
    if it is None or not it.available:
        ctx.fail("interpreter %s is not installed" % label)
    prefix = it.info()["prefix"]
    ver = "%d.%d" % it.version
    cfg = os.path.join(prefix, "bin", "python%s-config" % ver)
    args = [cfg, "--cflags", "--ldflags"]
    if it.version >= (3, 8):
        args.append("--embed")
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        ctx.fail("%s failed: %s" % (" ".join(args), p.stderr.decode()))
    flags = p.stdout.decode().split()
    flags = [f for f in flags if not f.startswith("-W") and f not in ("-O3", "-DNDEBUG")]
    flags += ["-L%s/lib" % prefix, "-Wl,-rpath,%s/lib" % prefix, "-Wno-deprecated-declarations",
              "-pthread"]
    exe = _build(ctx, "embed.c", os.path.join(ctx.tmp, "myapp"), flags)
    env = {"PYTHONHOME": prefix}
    if native_spin:
        env["EMBED_NATIVE_SPIN"] = "1"
    tgt = ctx.target("idle.py", ["--mode", "spin"], name="embedded", interp=it, argv_prefix=[exe],
                     env=env)
    tgt.wait_ready()
    ctx.check(tgt.comm == "myapp", "test setup: comm is %r", tgt.comm)
    run = ctx.profile([tgt.pid], duration=SECONDS, hz=HZ, verbose=True)
    truth = tgt.stop()
    prof = ctx.expect_success(run)
    stacks = prof.for_pid(tgt.pid)
    total = prof.total(stacks)
    ctx.check(total >= 30, "only %d samples in %ds", total, SECONDS)
    ctx.check(all(s.root == "myapp [%d]" % tgt.pid for s in stacks), "root frames %s",
              sorted(set(s.root for s in stacks)))
    n = sum(s.count for s in stacks if s.leaf is not None and s.leaf.label == truth["label"])
    ctx.check(n >= 0.8 * max(total, 1), "only %d of %d samples end in %s", n, total, truth["label"])
    ctx.check("libpython" in run.stderr, "-v does not say the interpreter was found in libpython")
    if native_spin:
        # The native thread is on CPU as much as the Python one; after one scan
        # finds no thread state it must be skipped from the cache, not rescanned
        # at every tick (at most about one scan per second).
        cached = _counter(run.stderr, "not_python_cached")
        scans = _counter(run.stderr, "no_thread_state")
        ctx.check(cached >= 0.5 * total, "not_python_cached %s for %d Python samples", cached, total)
        ctx.check(scans is not None and scans <= 2 * SECONDS + 2, "no_thread_state %s: the "
                  "native thread was scanned again and again", scans)


def _counter(stderr, name):
    for line in stderr.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == name and parts[1].isdigit():
            return int(parts[1])
    return None


@single
def embedded_libpython_312(ctx, interp):
    """A C program named myapp linking libpython3.12."""
    _embedded(ctx, "3.12")


@single
def embedded_native_thread_312(ctx, interp):
    """myapp with a CPU-bound native thread that has no Python thread state."""
    _embedded(ctx, "3.12", native_spin=True)


@single
def embedded_libpython_27(ctx, interp):
    """A C program named myapp linking libpython2.7."""
    _embedded(ctx, "2.7")


def _fake(ctx, name, defines, expect):
    exe = _build(ctx, "fakepy.c", os.path.join(ctx.tmp, name), ["-rdynamic"] + defines)
    proc = subprocess.Popen([exe])
    try:
        run = ctx.profile([proc.pid], duration=2, hz=HZ)
        ctx.expect_error(run, [proc.pid] + expect)
        ctx.check(run.stderr.count("\n") <= 3, "more than one message:\n%s", run.stderr)
    finally:
        proc.kill()
        proc.wait()


@single
def fake_interpreter_unknown_version(ctx, interp):
    """Python symbols but no version information at all."""
    _fake(ctx, "mystery", [], ["unknown version"])


@single
def fake_interpreter_unsupported_version(ctx, interp):
    """Py_Version says 3.5: named as unsupported."""
    _fake(ctx, "py35", ["-DFAKE_VERSION=0x030500f0"], ["3.5", "not supported"])
