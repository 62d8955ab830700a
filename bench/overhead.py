#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Overhead benchmark for pysamp-bpf (run by `make bench`; needs root).

In one run, side by side for 99 Hz and 999 Hz (--rates), with every figure a
ratio or rate measured in this run:

  1. slowdown of a CPU-bound Python target (bench/workload.py: a fixed amount
     of bytecode work under a stack of DEPTH+3 ~ 51 frames, timed by the
     target itself) profiled versus not: N pairs, each a baseline and a
     profiled chunk of the same work in one fresh target process (so that
     per-process differences such as address layout cancel), the order
     alternating from pair to pair; the median of the per-pair ratios and
     their min/max, for the wall time of the work (the verdict's measure),
     for the median slice time (robust to bursts of preemption), and for the
     target's CPU time (which includes the interrupt time spent in BPF);
  2. the agent's own CPU time (user+sys, from /proc/PID/task/*/schedstat)
     per second of profiling while the target works, as % of one CPU; also
     its whole-life CPU (startup + report, from wait4 rusage) per run;
  3. the BPF programs' cost per sample of the deep stack (run_time_ns from
     kernel.bpf_stats_enabled, which this script turns on for the run and
     restores at exit, also on Ctrl-C/SIGTERM/error), and frames per sample;
  4. lost / failed samples from the sampler's counters, and samples emitted
     versus expected (rate x target CPU-seconds; the target is one thread).

The tool's own `ns_per_sample` is averaged over every timer tick on every
CPU, most of which are cheap early exits (idle or non-target tasks). To get
the cost of one sample of the target, a calibration run per rate profiles the
target while it is blocked (every tick a non-target one; the cost depends on
the rate, as caches are colder at 99 Hz), giving the cost c0 of a non-target
tick; then, per profiled chunk,
    ns per sample = (total_ns - (ticks - target_ticks) * c0) / target_ticks.
The upper bound total_ns / target_ticks (all ticks charged to the target) is
reported too. The verdict gives a distribution-free confidence interval of
the median slowdown and says when the goal is within the noise.

    python3 bench/overhead.py [--python PATH] [--pairs N] [--seconds S]
                              [--rates 99,999] [--depth N] [--json FILE]
                              [--profiler PATH] [--check]

Stdlib only; runs on the distribution's python3 (3.9+). Exit status: 0 when
the measurement completed (add --check to get 1 when a goal is missed),
2 on error.
"""
import argparse
import json
import math
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
WORKLOAD = os.path.join(HERE, "workload.py")
DEFAULT_PROFILER = os.path.join(REPO, "pysamp-bpf")
DEFAULT_PYTHON = "/root/.pyenv/versions/3.12.1/bin/python"
BPF_STATS = "/proc/sys/kernel/bpf_stats_enabled"

GOAL_SLOWDOWN_PCT = 1.0      # at 99 Hz
GOAL_SLOWDOWN_HZ = 99
GOAL_BPF_NS = 10000.0        # per sample, ~50 frames

# Sampler counters that mean a sample was lost, cut or degraded.
BPF_FAILURES = ["ringbuf_full", "frame_read_fail", "tail_call_fail", "truncated",
                "code_read_fail", "tstate_read_fail", "interp_read_fail",
                "thread_pointer_fail", "no_scratch", "bad_config",
                "thread_scan_limit", "no_thread_state"]
AGENT_FAILURES = ["stack_read_error", "unknown_pid", "malformed", "dropped_nomem"]
SHOWN_FAILURES = ["ringbuf_full", "frame_read_fail", "tail_call_fail", "truncated"]

READY_TIMEOUT = 30.0


class BenchError(Exception):
    pass


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


# ---------------------------------------------------------------- children

LIVE = set()          # Popen objects still to reap
LIVE_LOCK = threading.Lock()


def spawn(argv, **kw):
    p = subprocess.Popen(argv, **kw)
    with LIVE_LOCK:
        LIVE.add(p)
    return p


def forget(p):
    with LIVE_LOCK:
        LIVE.discard(p)


def kill_children():
    """Stop every child still running: SIGINT/SIGTERM first, SIGKILL after 2 s."""
    with LIVE_LOCK:
        procs = list(LIVE)
    for p in procs:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGINT)
            except OSError:
                pass
    deadline = time.monotonic() + 2.0
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                p.kill()
                p.wait(timeout=2.0)
            except (OSError, subprocess.TimeoutExpired):
                pass
        except OSError:
            pass
        forget(p)


class LineReader(threading.Thread):
    """Collects the lines of a child's pipe; lines also go to a queue."""

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.lines = []
        self.q = queue.Queue()
        self.start()

    def run(self):
        try:
            for line in iter(self.pipe.readline, ""):
                line = line.rstrip("\n")
                self.lines.append(line)
                self.q.put(line)
        except (OSError, ValueError):
            pass
        self.q.put(None)

    def wait_for(self, pred, timeout, proc, what):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError("timed out after %.0f s waiting for %s" % (timeout, what))
            try:
                line = self.q.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if line is None:
                proc.wait()
                raise BenchError("%s: exited (status %s) before %s:\n  %s" % (
                    os.path.basename(proc.args[0]), proc.returncode, what,
                    "\n  ".join(self.lines[-15:]) or "(no output)"))
            if pred(line):
                return line


# ---------------------------------------------------------------- /proc

def task_cpu_ns(pid):
    """CPU time (user+sys) of all threads of pid, in ns, from schedstat."""
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return None
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def system_busy_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v[:8]) - idle


def other_profilers(ours):
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in ours:
            continue
        try:
            with open("/proc/%s/comm" % d) as f:
                if f.read().strip() == "pysamp-bpf":
                    found.append(int(d))
        except OSError:
            pass
    return found


# ---------------------------------------------------------------- processes

class Workload:
    """One target process; serves several timed chunks of work."""

    def __init__(self, python, depth, iters, slices):
        self.p = spawn([python, WORKLOAD, "--depth", str(depth), "--iters", str(iters),
                        "--slices", str(slices)],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, bufsize=1)
        self.out = LineReader(self.p.stdout)
        self.pid = self.p.pid

    def wait_ready(self):
        self.out.wait_for(lambda l: l.startswith("READY "), READY_TIMEOUT, self.p,
                          "the workload to be ready")

    def work(self, timeout):
        """Run one chunk of work (the target must be READY); its RESULT."""
        self.p.stdin.write("go\n")
        self.p.stdin.flush()
        line = self.out.wait_for(lambda l: l.startswith("RESULT "), timeout, self.p,
                                 "the workload's result")
        return json.loads(line[len("RESULT "):])

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        forget(self.p)


class Agent:
    def __init__(self, binary, pid, hz, out_path, cap_s):
        self.p = spawn([binary, "-p", str(pid), "-F", str(hz), "-d", str(int(cap_s)),
                        "-v", "-o", out_path],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, universal_newlines=True)
        self.err = LineReader(self.p.stderr)
        self.err.wait_for(lambda l: l.startswith("pysamp-bpf: sampling "), READY_TIMEOUT,
                          self.p, "pysamp-bpf to attach")
        self.pid = self.p.pid

    def cpu_ns(self):
        return task_cpu_ns(self.pid)

    def stop(self):
        """SIGINT, reap with wait4 (whole-life rusage), parse the -v report."""
        rusage = None
        if self.p.returncode is None:
            try:
                os.kill(self.pid, signal.SIGINT)
            except OSError:
                pass
            deadline = time.monotonic() + 15.0
            while True:
                pid, status, ru = os.wait4(self.pid, os.WNOHANG)
                if pid == self.pid:
                    rusage = ru
                    self.p.returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() > deadline:
                    self.p.kill()
                    pid, status, ru = os.wait4(self.pid, 0)
                    self.p.returncode = os.waitstatus_to_exitcode(status)
                    raise BenchError("pysamp-bpf did not stop within 15 s of SIGINT")
                time.sleep(0.01)
        forget(self.p)
        self.err.join(timeout=5)
        if self.p.returncode != 0:
            raise BenchError("pysamp-bpf exited with status %s:\n  %s" % (
                self.p.returncode, "\n  ".join(self.err.lines[-15:])))
        st = parse_report(self.err.lines)
        st["agent_cpu_total_s"] = (rusage.ru_utime + rusage.ru_stime) if rusage else None
        return st


def parse_report(lines):
    """Counters printed by `pysamp-bpf -v` at exit."""
    st = {"bpf": {}, "agent": {}, "ns_per_tick": None, "received": None}
    section = None
    for line in lines:
        if line.startswith("pysamp-bpf: "):
            rest = line[len("pysamp-bpf: "):]
            if rest.startswith("BPF sampler counters"):
                section = "bpf"
            elif rest.startswith("agent counters"):
                section = "agent"
            else:
                section = None
                parts = rest.split()
                if len(parts) >= 4 and parts[1] == "samples" and parts[2] == "in":
                    st["received"] = int(parts[0])
            continue
        parts = line.split()
        if len(parts) >= 2 and line.startswith("  ") and parts[1].isdigit():
            if parts[0] == "ns_per_sample":
                st["ns_per_tick"] = float(parts[1])
            elif section in ("bpf", "agent"):
                st[section][parts[0]] = int(parts[1])
    if "emitted" not in st["bpf"] or "ticks" not in st["bpf"]:
        raise BenchError("could not parse the counters of pysamp-bpf -v:\n  %s"
                         % "\n  ".join(lines[-30:]))
    return st


def folded_depth(path):
    """Sample-weighted mean number of Python frames per stack in a folded file."""
    frames = weight = 0
    try:
        with open(path) as f:
            for line in f:
                stack, _, count = line.rstrip("\n").rpartition(" ")
                if not stack or not count.isdigit():
                    continue
                n = int(count)
                frames += n * (stack.count(";"))  # root frame is 'COMM [PID]'
                weight += n
    except OSError:
        return None
    return frames / weight if weight else None


# ---------------------------------------------------------------- bpf_stats

class BpfStats:
    def __init__(self):
        self.prev = None

    def enable(self):
        try:
            with open(BPF_STATS) as f:
                self.prev = f.read().strip()
            if self.prev != "1":
                with open(BPF_STATS, "w") as f:
                    f.write("1\n")
        except OSError as e:
            self.prev = None
            raise BenchError("cannot enable kernel.bpf_stats_enabled (%s): %s" % (BPF_STATS, e))

    def ensure(self):
        """True if still enabled; re-enables it (another process may have
        turned it off: then that run's BPF times are incomplete)."""
        try:
            with open(BPF_STATS) as f:
                if f.read().strip() == "1":
                    return True
            with open(BPF_STATS, "w") as f:
                f.write("1\n")
            log("warning: kernel.bpf_stats_enabled was turned off by another process; "
                "re-enabled, BPF times of this run discarded")
        except OSError:
            pass
        return False

    def restore(self):
        if self.prev is not None and self.prev != "1":
            try:
                with open(BPF_STATS, "w") as f:
                    f.write(self.prev + "\n")
            except OSError as e:
                log("could not restore kernel.bpf_stats_enabled=%s: %s" % (self.prev, e))
        self.prev = None


# ---------------------------------------------------------------- runs

class Bench:
    def __init__(self, args, tmpdir, stats):
        self.a = args
        self.stats = stats
        self.tmp = tmpdir
        self.iters = None
        self.nrun = 0

    def workload(self, iters):
        wl = Workload(self.a.python, self.a.depth, iters, self.a.slices)
        wl.wait_ready()
        return wl

    def chunk(self, wl, hz, idle_seconds=None):
        """One timed chunk of work on the READY target wl: baseline (hz None)
        or under the profiler at hz. With idle_seconds, profile the blocked
        target instead (calibration of the cost of non-target ticks)."""
        self.nrun += 1
        agent = None
        try:
            stats_ok = self.stats.ensure() if hz else True
            if hz:
                folded = os.path.join(self.tmp, "run%d.folded" % self.nrun)
                cap = idle_seconds + 30 if idle_seconds else 60 + 20 * self.a.seconds
                agent = Agent(self.a.profiler, wl.pid, hz, folded, cap)
            time.sleep(idle_seconds if idle_seconds else self.a.settle)
            a0 = agent.cpu_ns() if agent else None
            j0 = system_busy_jiffies()
            t0 = time.monotonic()
            res = None if idle_seconds else wl.work(timeout=60 + 20 * self.a.seconds)
            t1 = time.monotonic()
            j1 = system_busy_jiffies()
            a1 = agent.cpu_ns() if agent else None
            out = {"hz": hz, "window_s": t1 - t0}
            if res is not None:
                n = len(res["slice_wall"])
                out.update(wall_s=res["wall"], cpu_s=res["cpu"],
                           slice_wall_s=n * statistics.median(res["slice_wall"]),
                           slice_cpu_s=n * statistics.median(res["slice_cpu"]),
                           frames_target=res["frames"], python=res["python"])
            busy = (j1 - j0) / float(os.sysconf("SC_CLK_TCK"))
            own = (res["cpu"] if res else 0.0) + ((a1 - a0) / 1e9 if agent else 0.0)
            out["background_cpus"] = max(0.0, busy - own) / (t1 - t0) if t1 > t0 else None
            if agent:
                st = agent.stop()
                agent = None
                out["agent_cpu_window_s"] = (a1 - a0) / 1e9
                out["agent_cpu_pct"] = 100.0 * (a1 - a0) / 1e9 / (t1 - t0)
                out.update(st)
                if not (self.stats.ensure() and stats_ok):
                    out["ns_per_tick"] = None   # BPF run times incomplete
                out["stack_depth_folded"] = folded_depth(folded)
                try:
                    os.unlink(folded)
                except OSError:
                    pass
            if res is not None:
                wl.wait_ready()
            return out
        finally:
            if agent:
                try:
                    agent.p.send_signal(signal.SIGINT)
                    agent.p.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    agent.p.kill()
                forget(agent.p)

    def pair(self, hz, profiled_first):
        """Baseline and profiled chunks in one fresh target process, so that
        what differs between processes (address layout...) cancels out."""
        wl = self.workload(self.iters)
        try:
            pair = {}
            for which in ((hz, None) if profiled_first else (None, hz)):
                pair["profiled" if which else "baseline"] = self.chunk(wl, which)
            return pair
        finally:
            wl.close()

    def calibrate(self):
        """Pick iters so that a baseline chunk takes about --seconds."""
        probe = 2000000
        wl = self.workload(probe)
        try:
            walls = [self.chunk(wl, None)["wall_s"] for _ in range(3)]
        finally:
            wl.close()
        rate = probe / min(walls)
        self.iters = max(100000, int(rate * self.a.seconds))
        log("workload: %.1f M iterations/s; %d iterations per chunk (~%.1f s)"
            % (rate / 1e6, self.iters, self.a.seconds))
        return self.iters

    def idle_tick_cost(self, rates):
        """Per rate, BPF ns per tick when no tick is the target's: profile the
        target while it is blocked. Cache warmth depends on the rate, so does
        this cost (cold at 99 Hz)."""
        wl = self.workload(1)
        try:
            out = {}
            for hz in rates:
                secs = max(self.a.calib_seconds, 300.0 / hz)  # >= ~300 ticks per CPU
                r = self.chunk(wl, hz, idle_seconds=secs)
                if r["bpf"].get("target_ticks"):
                    log("warning: calibration at %d Hz saw %d target ticks"
                        % (hz, r["bpf"]["target_ticks"]))
                out[hz] = r
                log("non-target tick at %d Hz: %s ns (%d ticks)"
                    % (hz, fmt(r.get("ns_per_tick"), ".0f"), r["bpf"]["ticks"]))
            return out
        finally:
            wl.close()


def bpf_run_cost(r, c0):
    """Per-run BPF cost: total run time, per target sample (upper bound, and
    corrected for the non-target ticks at c0 ns each)."""
    b = r["bpf"]
    if r.get("ns_per_tick") is None or not b.get("target_ticks"):
        return None, None, None
    total = r["ns_per_tick"] * b["ticks"]
    upper = total / b["target_ticks"]
    if c0 is None:
        return total, upper, None
    corrected = (total - (b["ticks"] - b["target_ticks"]) * c0) / b["target_ticks"]
    return total, upper, corrected


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# Slowdown measures: (key in a run, label). The first one gives the verdict.
MEASURES = [("wall_s", "wall time of the fixed work"),
            ("slice_wall_s", "median slice wall time x slices"),
            ("cpu_s", "target CPU time")]


def summarize(pairs_by_hz, c0s):
    summary = {}
    for hz, pairs in pairs_by_hz.items():
        s = {}
        for key, _ in MEASURES:
            ratios = [100.0 * (p["profiled"][key] / p["baseline"][key] - 1.0) for p in pairs]
            s["slowdown_" + key] = {"median": statistics.median(ratios), "min": min(ratios),
                                    "max": max(ratios), "pairs": ratios}
        prof = [p["profiled"] for p in pairs]
        c0 = c0s.get(hz)
        costs = [bpf_run_cost(r, c0) for r in prof]
        tot = {}
        for r in prof:
            for k, v in list(r["bpf"].items()) + list(r["agent"].items()):
                tot[k] = tot.get(k, 0) + v
        emitted = tot.get("emitted", 0)
        expected = sum(hz * r["cpu_s"] for r in prof)
        ns_corr = med(c[2] for c in costs)
        s.update({
            "agent_cpu_pct_median": med(r["agent_cpu_pct"] for r in prof),
            "agent_cpu_pct_max": max(r["agent_cpu_pct"] for r in prof),
            "agent_cpu_total_s_median": med(r["agent_cpu_total_s"] for r in prof),
            "bpf_ns_per_sample_median": ns_corr,
            "bpf_ns_per_sample_runs": [c[2] for c in costs],
            "bpf_ns_per_sample_upper_median": med(c[1] for c in costs),
            "bpf_ns_per_tick_tool_median": med(r["ns_per_tick"] for r in prof),
            "bpf_ns_per_nontarget_tick": c0,
            "model_slowdown_pct": (hz * ns_corr / 1e7) if ns_corr is not None else None,
            "frames_per_sample": (tot.get("frames", 0) / emitted) if emitted else None,
            "stack_depth_folded_median": med(r.get("stack_depth_folded") for r in prof),
            "emitted": emitted,
            "expected": expected,
            "emitted_pct_of_expected": 100.0 * emitted / expected if expected else None,
            "received_by_agent": sum(r["received"] or 0 for r in prof),
            "failures": {k: tot.get(k, 0) for k in BPF_FAILURES + AGENT_FAILURES},
            "no_python_frame": tot.get("no_python_frame", 0),
            "target_ticks": tot.get("target_ticks", 0),
            "background_cpus_median": med(r["background_cpus"] for p in pairs
                                          for r in (p["baseline"], p["profiled"])),
        })
        summary[hz] = s
    return summary


# ---------------------------------------------------------------- report

def fmt(v, spec, none="n/a"):
    return none if v is None else format(v, spec)


def print_table(meta, summary, rates):
    w = 19
    out = [""]
    out.append("pysamp-bpf overhead: Python %s, %d-frame stack, %d pairs x %.1f s per rate, "
               "%d CPUs, kernel %s" % (meta["python_version"], meta["frames"], meta["pairs"],
                                       meta["seconds"], meta["cpus"], meta["kernel"]))
    bg = med(summary[h]["background_cpus_median"] for h in rates)
    out.append("background load (other processes) during the chunks: %s CPUs busy (median)%s"
               % (fmt(bg, ".2f"), "; other pysamp-bpf running: %s" % meta["other_profilers"]
                  if meta["other_profilers"] else ""))
    out.append("")

    def row(label, vals):
        out.append("%-38s" % label + "".join("%*s" % (w, v) for v in vals))

    row("", ["%d Hz" % h for h in rates])
    for i, (key, label) in enumerate(MEASURES):
        sl = [summary[h]["slowdown_" + key] for h in rates]
        row(("target slowdown: " if i == 0 else "  by ") + label,
            ["%+.2f%%" % x["median"] for x in sl])
        row("    min, max of pairs", ["%+.1f, %+.1f%%" % (x["min"], x["max"]) for x in sl])
    row("  model: rate x BPF ns/sample", [fmt(summary[h]["model_slowdown_pct"], ".2f") + "%"
                                          for h in rates])
    row("agent CPU while profiling, % of 1 CPU", [fmt(summary[h]["agent_cpu_pct_median"], ".2f")
                                                  + "%" for h in rates])
    row("  agent CPU per run incl. start/report", [fmt(1e3 * summary[h]["agent_cpu_total_s_median"],
                                                       ".0f") + " ms" for h in rates])
    row("BPF ns per sample (deep stack)", [fmt(summary[h]["bpf_ns_per_sample_median"], ".0f")
                                           for h in rates])
    row("  upper bound: all ticks' ns / samples", [
        fmt(summary[h]["bpf_ns_per_sample_upper_median"], ".0f") for h in rates])
    row("  tool ns_per_sample (per tick)", [fmt(summary[h]["bpf_ns_per_tick_tool_median"], ".0f")
                                            for h in rates])
    row("  ns per non-target tick (calib.)", [fmt(summary[h]["bpf_ns_per_nontarget_tick"], ".0f")
                                              for h in rates])
    row("frames per sample", [fmt(summary[h]["frames_per_sample"], ".1f") for h in rates])
    row("samples emitted / expected", ["%d / %.0f" % (summary[h]["emitted"], summary[h]["expected"])
                                       for h in rates])
    row("  emitted, % of expected", [fmt(summary[h]["emitted_pct_of_expected"], ".1f") + "%"
                                     for h in rates])
    row("  received by the agent", ["%d" % summary[h]["received_by_agent"] for h in rates])
    for k in SHOWN_FAILURES:
        row(k, ["%d" % summary[h]["failures"][k] for h in rates])
    others = []
    for h in rates:
        nz = ["%s=%d" % (k, v) for k, v in summary[h]["failures"].items()
              if v and k not in SHOWN_FAILURES]
        others.append(", ".join(nz) if nz else "none")
    if max(len(o) for o in others) > w - 2:
        row("other failures", ["see below" if o != "none" else "none" for o in others])
        for h, o in zip(rates, others):
            if o != "none":
                out.append("  at %d Hz: %s" % (h, o))
    else:
        row("other failures", others)
    out.append("")
    out.extend(textwrap.wrap(
        "Slowdown: per pair (a baseline and a profiled chunk of the same work in one target "
        "process, order alternating), median and range over pairs; the model line is the BPF "
        "time alone that the target's CPU spends in interrupts. Expected samples: rate x "
        "target CPU-seconds (1 busy thread). BPF ns per sample: (run_time_ns of both programs "
        "- non-target ticks x their calibrated cost) / target samples.", 100))
    return "\n".join(out)


def median_ci(xs, coverage=0.90):
    """Distribution-free confidence interval of the median: the order
    statistics (x(j), x(n+1-j)), whose coverage is 1 - 2 P(Binomial(n, 1/2)
    <= j-1), with the largest j still covering >= coverage (j >= 1: with few
    pairs it is [min, max] at whatever coverage that has). Returns
    (low, high, actual coverage)."""
    xs = sorted(xs)
    n = len(xs)

    def cov(j):
        return 1.0 - 2.0 * sum(math.comb(n, i) for i in range(j)) / 2.0 ** n

    j = 1
    while j + 1 <= (n + 1) // 2 and cov(j + 1) >= coverage:
        j += 1
    return xs[j - 1], xs[n - j], cov(j)


def verdict(summary, rates):
    parts = []
    ok = True
    key = MEASURES[0][0]
    if GOAL_SLOWDOWN_HZ in summary:
        s = summary[GOAL_SLOWDOWN_HZ]["slowdown_" + key]
        lo, hi, cov = median_ci(s["pairs"])
        good = s["median"] <= GOAL_SLOWDOWN_PCT
        ok &= good
        sure = hi <= GOAL_SLOWDOWN_PCT if good else lo > GOAL_SLOWDOWN_PCT
        parts.append("slowdown at %d Hz %+.2f%% (median of %d pairs, %.0f%% CI %+.1f..%+.1f%%; "
                     "goal <= %.0f%%: %s%s)" % (
                         GOAL_SLOWDOWN_HZ, s["median"], len(s["pairs"]), 100 * cov, lo, hi,
                         GOAL_SLOWDOWN_PCT, "met" if good else "MISSED",
                         "" if sure else ", within the noise"))
    else:
        parts.append("slowdown at %d Hz not measured (--rates)" % GOAL_SLOWDOWN_HZ)
    costs = [(summary[h]["bpf_ns_per_sample_median"], h) for h in rates
             if summary[h]["bpf_ns_per_sample_median"] is not None]
    frames = med(summary[h]["frames_per_sample"] for h in rates)
    if len(costs) == len(rates):
        good = max(costs)[0] <= GOAL_BPF_NS
        ok &= good
        parts.append("BPF cost %s (%s frames; goal <= %.0f us: %s)" % (
            ", ".join("%.1f us/sample at %d Hz" % (c / 1e3, h) for c, h in costs),
            fmt(frames, ".0f"), GOAL_BPF_NS / 1e3, "met" if good else "MISSED"))
    else:
        ok = False
        parts.append("BPF cost not measured at every rate")
    return ok, "VERDICT: %s - %s" % ("PASS" if ok else "FAIL", "; ".join(parts))


# ---------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=DEFAULT_PYTHON,
                    help="CPython running the workload (default %(default)s)")
    ap.add_argument("--profiler", default=DEFAULT_PROFILER,
                    help="pysamp-bpf binary (default %(default)s)")
    ap.add_argument("--pairs", type=int, default=11, help="pairs per rate (default 11)")
    ap.add_argument("--seconds", type=float, default=3.0,
                    help="baseline work per chunk, seconds (default 3)")
    ap.add_argument("--rates", default="99,999", help="sampling rates, Hz (default 99,999)")
    ap.add_argument("--depth", type=int, default=48,
                    help="recursion depth; the stack is DEPTH+3 frames (default 48)")
    ap.add_argument("--slices", type=int, default=20,
                    help="timed slices per chunk of work (default 20)")
    ap.add_argument("--settle", type=float, default=0.3,
                    help="pause between attach and work, s (default 0.3)")
    ap.add_argument("--calib-seconds", type=float, default=2.0,
                    help="length of each non-target-tick calibration run (default 2)")
    ap.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    ap.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    a = ap.parse_args(argv)
    try:
        a.rates = [int(x) for x in a.rates.split(",") if x.strip()]
    except ValueError:
        ap.error("--rates: comma-separated integers expected")
    if not a.rates or any(r <= 0 for r in a.rates):
        ap.error("--rates: positive rates expected")
    if a.pairs < 1 or a.slices < 1 or a.seconds <= 0 or a.depth < 1 or a.settle < 0 or a.calib_seconds <= 0:
        ap.error("--pairs, --seconds, --depth, --calib-seconds must be positive")
    return a


def preflight(a):
    if sys.platform != "linux":
        raise BenchError("Linux only")
    if os.geteuid() != 0:
        raise BenchError("must run as root (BPF, perf events, kernel.bpf_stats_enabled): "
                         "sudo make bench")
    if not (os.path.isfile(a.profiler) and os.access(a.profiler, os.X_OK)):
        raise BenchError("profiler binary '%s' not found or not executable: build it with "
                         "`make -C %s pysamp-bpf`" % (a.profiler, REPO))
    if not (os.path.isfile(a.python) and os.access(a.python, os.X_OK)):
        raise BenchError("python '%s' not found or not executable (choose one with --python)"
                         % a.python)
    if not os.path.isfile(WORKLOAD):
        raise BenchError("missing %s" % WORKLOAD)
    if not os.path.exists(BPF_STATS):
        raise BenchError("%s missing: kernel without BPF run-time statistics" % BPF_STATS)


def on_term(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main(argv):
    a = parse_args(argv)
    stats = BpfStats()
    tmpdir = None
    t_start = time.monotonic()
    try:
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGHUP, on_term)
        preflight(a)
        tmpdir = tempfile.mkdtemp(prefix="pysamp-bench.")
        others0 = other_profilers(set())
        if others0:
            log("warning: other pysamp-bpf processes are running (%s); their BPF programs "
                "run on every tick too and inflate the figures" % others0)
        stats.enable()
        b = Bench(a, tmpdir, stats)
        iters = b.calibrate()
        cal = b.idle_tick_cost(a.rates)
        c0s = {h: cal[h].get("ns_per_tick") for h in a.rates}

        pairs_by_hz = {h: [] for h in a.rates}
        for i in range(a.pairs):
            for h in a.rates:
                pair = b.pair(h, profiled_first=(i % 2 == 1))
                pairs_by_hz[h].append(pair)
                bl, pr = pair["baseline"], pair["profiled"]
                log("pair %d/%d at %3d Hz (%s first): wall %.3f -> %.3f s (%+.2f%%), "
                    "slice-median %+.2f%%, cpu %+.2f%%"
                    % (i + 1, a.pairs, h, "profiled" if i % 2 else "baseline", bl["wall_s"],
                       pr["wall_s"], 100.0 * (pr["wall_s"] / bl["wall_s"] - 1),
                       100.0 * (pr["slice_wall_s"] / bl["slice_wall_s"] - 1),
                       100.0 * (pr["cpu_s"] / bl["cpu_s"] - 1)))
        others1 = other_profilers(set())

        summary = summarize(pairs_by_hz, c0s)
        first = pairs_by_hz[a.rates[0]][0]["baseline"]
        meta = {
            "python": a.python, "python_version": first["python"],
            "frames": first["frames_target"], "depth": a.depth, "pairs": a.pairs,
            "seconds": a.seconds, "slices": a.slices, "iters": iters, "rates": a.rates,
            "cpus": os.cpu_count(), "kernel": platform.release(),
            "profiler": a.profiler, "other_profilers": sorted(set(others0 + others1)),
            "elapsed_s": time.monotonic() - t_start,
        }
        print(print_table(meta, summary, a.rates))
        ok, line = verdict(summary, a.rates)
        print(line)
        sys.stdout.flush()
        if a.json:
            doc = {"meta": meta, "goals": {"slowdown_pct_at_99hz": GOAL_SLOWDOWN_PCT,
                                           "bpf_ns_per_sample": GOAL_BPF_NS},
                   "calibration_runs": {str(h): r for h, r in cal.items()},
                   "summary": {str(h): s for h, s in summary.items()},
                   "pairs": {str(h): p for h, p in pairs_by_hz.items()},
                   "verdict": line, "pass": ok}
            d = os.path.dirname(os.path.abspath(a.json))
            os.makedirs(d, exist_ok=True)
            with open(a.json + ".tmp", "w") as f:
                json.dump(doc, f, indent=1, sort_keys=True)
                f.write("\n")
            os.replace(a.json + ".tmp", a.json)
            log("figures written to %s" % a.json)
        log("done in %.0f s" % (time.monotonic() - t_start))
        return 1 if (a.check and not ok) else 0
    except BenchError as e:
        log("error: %s" % e)
        return 2
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        kill_children()
        stats.restore()
        if tmpdir:
            for n in os.listdir(tmpdir):
                try:
                    os.unlink(os.path.join(tmpdir, n))
                except OSError:
                    pass
            try:
                os.rmdir(tmpdir)
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
