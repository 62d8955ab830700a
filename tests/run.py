#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""run.py - the whole test suite; `make test` runs it after building.

Sections, in order:
  unit        .output/san/test_* (ASan/UBSan builds); each prints "N passed, N failed"
  fuzz        .output/fuzz/fuzz_* for a bounded run (--fuzz-time, default 10 s)
  linetable   tests/tools/lt_dump.py under every interpreter, the dumps checked
              by .output/san/test_linetable --check
  integration tests/integration/test_*.py against ./pysamp-bpf and the real
              interpreters (needs root and BPF)

Independent work runs two at a time (-j); an interpreter's integration
tests run one after another. Every test prints PASS/FAIL/SKIP with its name
as it finishes, details under a failure; the last line is "N passed, N failed".

PYSAMP_REQUIRE_ALL=1 (CI) turns a missing interpreter, a missing binary and
unavailable BPF into failures instead of skips. PYSAMP_INTERPRETERS=
"label=/path/to/python,..." replaces the list of interpreters under test.
"""
import argparse
import collections
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
OUTPUT = os.path.join(ROOT, ".output")
sys.path.insert(0, os.path.join(TESTS, "integration"))

import itest  # noqa: E402

REQUIRE_ALL = os.environ.get("PYSAMP_REQUIRE_ALL", "") not in ("", "0")
PASSED_RE = re.compile(r"(\d+) passed, (\d+) failed")


class Item(object):
    """One named test: fn() -> (status, details list, notes list)."""

    def __init__(self, name, group, fn):
        self.name = name
        self.group = group
        self.fn = fn


class Reporter(object):
    def __init__(self, verbose):
        self.verbose = verbose
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.failed_names = []
        self.skipped = []

    def report(self, name, status, seconds, details=(), notes=()):
        with self.lock:
            self.counts[status] += 1
            if status == "FAIL":
                self.failed_names.append(name)
            if status == "SKIP":
                self.skipped.append(name)
            secs = "" if seconds is None else "  (%.1fs)" % seconds
            reason = ""
            if status == "SKIP" and details:
                reason = ": " + details[0]
                details = details[1:]
            print("%s  %s%s%s" % (status, name, reason, secs))
            if status == "FAIL" or self.verbose:
                for d in details:
                    print(itest.indent(str(d)))
            if self.verbose:
                for n in notes:
                    print(itest.indent("note: " + str(n)))
            sys.stdout.flush()


def run_items(items, jobs, reporter):
    """Run items, groups in parallel (jobs at a time), a group's items in order."""
    groups = collections.OrderedDict()
    for it in items:
        groups.setdefault(it.group, []).append(it)
    queue = list(groups.values())
    qlock = threading.Lock()

    def worker():
        while True:
            with qlock:
                if not queue:
                    return
                group = queue.pop(0)
            for it in group:
                t0 = time.time()
                try:
                    status, details, notes = it.fn()
                except Exception:
                    import traceback
                    status, details, notes = "FAIL", ["runner error:\n" + traceback.format_exc()], []
                reporter.report(it.name, status, time.time() - t0, details, notes)

    threads = [threading.Thread(target=worker) for _ in range(max(1, jobs))]
    for t in threads:
        t.daemon = True
        t.start()
    for t in threads:
        t.join()


def missing(what):
    """A required thing is absent: FAIL under PYSAMP_REQUIRE_ALL, else SKIP."""
    return ("FAIL" if REQUIRE_ALL else "SKIP"), [what], []


def run_cmd(argv, timeout, cwd=ROOT, env=None):
    """(returncode or None on timeout, combined output)."""
    try:
        p = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=timeout, env=env)
        return p.returncode, p.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        out = e.output.decode("utf-8", "replace") if e.output else ""
        return None, out


def describe_rc(rc):
    if rc is None:
        return "timed out"
    if rc < 0:
        return "killed by %s" % itest.signal_name(rc)
    return "exit status %d" % rc


# ---------------------------------------------------------------- unit

def unit_items():
    items = []
    sources = sorted(glob.glob(os.path.join(TESTS, "unit", "test_*.c")))
    bins = sorted(p for p in glob.glob(os.path.join(OUTPUT, "san", "test_*"))
                  if os.path.isfile(p) and os.access(p, os.X_OK) and "." not in os.path.basename(p))
    names = set(os.path.basename(b) for b in bins)
    for src in sources:
        name = os.path.splitext(os.path.basename(src))[0]
        if name not in names:
            items.append(Item("unit/" + name, "unit/" + name,
                              lambda name=name: ("FAIL", ["%s not built (make unit)" % name], [])))
    for b in bins:
        items.append(Item("unit/" + os.path.basename(b), "unit/" + os.path.basename(b),
                          lambda b=b: run_unit(b)))
    return items


def run_unit(path):
    env = dict(os.environ)
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    rc, out = run_cmd([path], timeout=900, env=env)
    m = None
    for m in PASSED_RE.finditer(out):
        pass
    notes = [m.group(0)] if m else []
    if rc == 0 and m and int(m.group(2)) == 0:
        return "PASS", [], notes
    why = describe_rc(rc)
    if not m:
        why += ", no 'N passed, N failed' line"
    elif int(m.group(2)):
        why += ", " + m.group(0)
    return "FAIL", [why, itest.tail(out, 40)], notes


# ---------------------------------------------------------------- fuzz

def fuzz_items(seconds, tmp_root):
    items = []
    sources = sorted(glob.glob(os.path.join(TESTS, "fuzz", "fuzz_*.c")))
    bins = sorted(p for p in glob.glob(os.path.join(OUTPUT, "fuzz", "fuzz_*"))
                  if os.path.isfile(p) and os.access(p, os.X_OK) and "." not in os.path.basename(p))
    names = set(os.path.basename(b) for b in bins)
    for src in sources:
        name = os.path.splitext(os.path.basename(src))[0]
        if name not in names:
            items.append(Item("fuzz/" + name, "fuzz/" + name,
                              lambda name=name: ("FAIL", ["%s not built (make fuzz)" % name], [])))
    for b in bins:
        items.append(Item("fuzz/" + os.path.basename(b), "fuzz/" + os.path.basename(b),
                          lambda b=b: run_fuzz(b, seconds, tmp_root)))
    return items


def run_fuzz(path, seconds, tmp_root):
    name = os.path.basename(path)
    work = tempfile.mkdtemp(prefix=name + ".", dir=tmp_root)
    corpus = os.path.join(work, "corpus")
    os.mkdir(corpus)
    argv = [path, "-max_total_time=%d" % seconds, "-timeout=20", "-rss_limit_mb=2048",
            "-print_final_stats=1", "-artifact_prefix=%s/" % work, corpus]
    # Seed corpora are read, never written: new inputs go to the scratch corpus.
    for seed in (os.path.join(TESTS, "fuzz", "corpus", name), os.path.join(TESTS, "fuzz", name + "_corpus")):
        if os.path.isdir(seed):
            argv.append(seed)
    rc, out = run_cmd(argv, timeout=seconds + 120, cwd=work)
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", out)
    notes = ["%s executions" % runs[-1]] if runs else []
    if rc == 0:
        shutil.rmtree(work, ignore_errors=True)
        return "PASS", [], notes
    return "FAIL", [describe_rc(rc) + "; artifacts in " + work, itest.tail(out, 40)], notes


# ---------------------------------------------------------------- linetable

def linetable_items(tmp_root):
    dump = os.path.join(TESTS, "tools", "lt_dump.py")
    checker = os.path.join(OUTPUT, "san", "test_linetable")
    if not os.path.isfile(dump):
        return [], []
    work = tempfile.mkdtemp(prefix="linetable.", dir=tmp_root)
    files = {}
    dumps = []
    for interp in itest.INTERPRETERS:
        name = "linetable/dump[%s]" % interp.label
        out = os.path.join(work, "lt_%s.txt" % interp.label)

        def fn(interp=interp, out=out):
            if not interp.available:
                return missing("interpreter %s missing" % interp.path)
            rc, text = run_cmd([interp.path, dump, "-o", out], timeout=900)
            if rc == 0 and os.path.isfile(out):
                files[interp.label] = out
                return "PASS", [], [itest.tail(text, 2)]
            return "FAIL", [describe_rc(rc), itest.tail(text, 30)], []
        dumps.append(Item(name, name, fn))

    def check():
        if not os.path.isfile(checker):
            return missing("%s not built" % checker)
        if not files:
            return "SKIP", ["no dumps to check"], []
        paths = [files[k] for k in sorted(files)]
        rc, text = run_cmd([checker, "--check"] + paths, timeout=900)
        m = None
        for m in PASSED_RE.finditer(text):
            pass
        if rc == 0 and (m is None or int(m.group(2)) == 0):
            shutil.rmtree(work, ignore_errors=True)
            return "PASS", [], [itest.tail(text, len(paths) + 1)]
        return "FAIL", [describe_rc(rc) + "; dumps kept in " + work, itest.tail(text, 40)], []
    return dumps, [Item("linetable/check", "linetable/check", check)]


# ---------------------------------------------------------------- integration

def load_integration():
    for path in sorted(glob.glob(os.path.join(TESTS, "integration", "test_*.py"))):
        __import__(os.path.splitext(os.path.basename(path))[0])
    return itest.collect()


def integration_items(cases, tmp_root, keep):
    items = []
    for case in cases:
        name = "integration/" + case.name

        def fn(case=case):
            if case.interp is None:
                return missing("no interpreter available")
            if not case.interp.available:
                return missing("interpreter %s missing" % case.interp.path)
            status, _, details, notes = itest.run_case(case, tmp_root, keep)
            return status, details, notes
        item = Item(name, case.group, fn)
        item.exclusive = case.exclusive
        items.append(item)
    return items


def integration_gate(items, reporter):
    """True if the integration tests can run, else report why not (once) and return False."""
    if not items:
        return True
    if not os.path.isfile(itest.PROFILER) or not os.access(itest.PROFILER, os.X_OK):
        reporter.report("integration/pysamp-bpf", "FAIL", None,
                        ["%s not built: %d integration tests not run" % (itest.PROFILER, len(items))])
        return False
    ok, why = itest.bpf_available()
    if not ok:
        status = "FAIL" if REQUIRE_ALL else "SKIP"
        reporter.report("integration (%d tests)" % len(items), status, None,
                        ["BPF unavailable: %s" % why])
        return False
    return True


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", dest="select", action="append", default=[],
                    help="run only tests whose name contains SUBSTRING (repeatable: any)")
    ap.add_argument("--list", action="store_true", help="list the test names and exit")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="tests run in parallel (default 2)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print notes (measured shares etc.)")
    ap.add_argument("--keep", action="store_true", help="keep scratch directories of passing tests")
    ap.add_argument("--fuzz-time", type=int, default=10, help="seconds per fuzz target (default 10)")
    ap.add_argument("--section", action="append", choices=("unit", "fuzz", "linetable", "integration"),
                    help="run only these sections")
    args = ap.parse_args()

    tmp_root = tempfile.mkdtemp(prefix="pysamp-tests.")
    os.chmod(tmp_root, 0o755)
    cases = load_integration()
    lt_dumps, lt_check = linetable_items(tmp_root)
    sections = collections.OrderedDict([
        ("unit", unit_items()),
        ("fuzz", fuzz_items(args.fuzz_time, tmp_root)),
        ("linetable", lt_dumps + lt_check),
        ("integration", integration_items(cases, tmp_root, args.keep)),
    ])
    for sec in list(sections):
        items = sections[sec]
        if args.section and sec not in args.section:
            items = []
        if args.select:
            items = [it for it in items if any(k in it.name for k in args.select)]
        sections[sec] = items

    if args.list:
        for sec, items in sections.items():
            for it in items:
                print(it.name)
        shutil.rmtree(tmp_root, ignore_errors=True)
        return 0

    reporter = Reporter(args.verbose)
    t0 = time.time()
    print("pysamp-bpf tests: %s; scratch %s%s" % (
        ", ".join("%d %s" % (len(v), k) for k, v in sections.items() if v), tmp_root,
        "; PYSAMP_REQUIRE_ALL" if REQUIRE_ALL else ""))
    sys.stdout.flush()

    run_items(sections["unit"], args.jobs, reporter)
    run_items(sections["fuzz"], args.jobs, reporter)
    lt = sections["linetable"]
    run_items([it for it in lt if it.name != "linetable/check"], args.jobs, reporter)
    run_items([it for it in lt if it.name == "linetable/check"], 1, reporter)
    integ = sections["integration"]
    if integ:
        if os.geteuid() != 0:
            status = "FAIL" if REQUIRE_ALL else "SKIP"
            reporter.report("integration (%d tests)" % len(integ), status, None, ["needs root"])
        elif integration_gate(integ, reporter):
            run_items([it for it in integ if not getattr(it, "exclusive", False)], args.jobs,
                      reporter)
            run_items([it for it in integ if getattr(it, "exclusive", False)], 1, reporter)

    c = reporter.counts
    print("")
    if reporter.failed_names:
        print("failed: %s" % " ".join(reporter.failed_names))
    print("total time %.0fs" % (time.time() - t0))
    if c["SKIP"]:
        print("%d skipped" % c["SKIP"])
    print("%d passed, %d failed" % (c["PASS"], c["FAIL"]))
    if not os.listdir(tmp_root):
        os.rmdir(tmp_root)
    return 1 if c["FAIL"] else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        itest.kill_all_targets()
        print("\ninterrupted")
        sys.exit(130)
