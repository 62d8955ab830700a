# SPDX-License-Identifier: BSD-2-Clause
"""--format: each output read by the program people read it with. The Chrome
trace's spans follow the target's own phases (phase_alpha for 2 s, then
phase_beta for 2 s: one span each, in that order, of the right length and
at the right time); the SVG flame graph and speedscope's own app, in headless
Chromium, draw the hot function (screenshots in .output/test-artifacts/
formats/); hostile function names (';', quotes, <script>, very long) leave
every format valid. pprof is tested with go tool pprof in test_pprof.py."""
import functools
import http.server
import json
import os
import subprocess
import threading
import xml.etree.ElementTree as ET

from itest import ROOT, exclusive, single

ARTIFACTS = os.path.join(ROOT, ".output", "test-artifacts", "formats")
SPEEDSCOPE = os.path.join(ROOT, "web", "node_modules", "speedscope", "dist", "release")


def _view(ctx, cfg):
    path = os.path.join(ctx.tmp, "view%d.json" % len(os.listdir(ctx.tmp)))
    with open(path, "w") as f:
        json.dump(cfg, f)
    p = subprocess.run(["node", os.path.join(ROOT, "tests", "web", "view_check.mjs"), path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180)
    ctx.check(p.returncode == 0, "view_check.mjs: %s", p.stderr.decode()[-800:])
    ctx.require()
    res = json.loads(p.stdout.decode())
    ctx.check(not res["errors"], "browser errors: %s", res["errors"])
    return res


# Alone on the machine: a thread kept off the CPU by another test's busy processes for more than
# 2.5 sampling periods is (rightly) shown as two spans.
@exclusive
def formats_chrome_trace_phases(ctx, interp):
    t = ctx.target("phases.py", ["--phase-seconds", "2", "--delay", "1.5"], name="phases")
    t.wait_ready()
    run = ctx.profile(t.pid, extra=["-f", "chrome"], timeout=60)
    truth = t.wait_exit(30)
    ctx.check(run.rc == 0, "exit status %s: %s", run.rc, run.stderr[-500:])
    ctx.require()
    doc = json.loads(run.output)
    ev = doc["traceEvents"]
    meta = [e for e in ev if e["ph"] == "M"]
    ctx.check(any(e["name"] == "process_name" and e["pid"] == t.pid for e in meta),
              "no process_name for %d: %s", t.pid, meta)
    spans = [e for e in ev if e["ph"] == "X" and e["pid"] == t.pid]
    for ph in truth["phases"]:
        mine = [e for e in spans if e["name"] == ph["function"]]
        ctx.check(len(mine) == 1, "%s: %d spans (one expected: consecutive samples merge): %s",
                  ph["function"], len(mine), mine[:5])
        if not mine:
            continue
        s = mine[0]
        start, dur = s["ts"] / 1e6, s["dur"] / 1e6
        want = ph["end"] - ph["start"]
        ctx.note("%s: span %.3f s at %+.3f s; the program: %.3f s", ph["function"], dur,
                 start - ph["start"], want)
        ctx.check(abs(dur - want) < 0.15 * want, "%s lasts %.3f s, the program says %.3f s",
                  ph["function"], dur, want)
        ctx.check(abs(start - ph["start"]) < 0.1, "%s starts %.3f s off", ph["function"],
                  start - ph["start"])
        ctx.check(s["args"]["file"].endswith("phases.py") and s["args"]["line"] > 0,
                  "span args %s", s["args"])
    a = [e for e in spans if e["name"] == "phase_alpha"]
    b = [e for e in spans if e["name"] == "phase_beta"]
    if a and b:
        ctx.check(a[0]["ts"] + a[0]["dur"] <= b[0]["ts"] + 1000, "phase_beta before phase_alpha ends")
    # the caller spans the whole run
    main = [e for e in spans if e["name"] == "main"]
    ctx.check(len(main) == 1 and main[0]["dur"] / 1e6 > 3.5, "main spans: %s", main)


@single
def formats_svg_in_chromium(ctx, interp):
    t = ctx.target("cpu_shares.py", [], name="shares").wait_ready()
    run = ctx.profile(t.pid, duration=4, extra=["-f", "svg", "--title", "cpu <shares>"])
    truth = t.stop()
    ctx.check(run.rc == 0, "exit status %s", run.rc)
    ctx.require()
    root = ET.fromstring(run.output.encode())
    ctx.check(root.tag.endswith("svg"), "not an SVG: %s", root.tag)
    path = os.path.join(ctx.tmp, "p.svg")
    with open(path, "w") as f:
        f.write(run.output)
    os.makedirs(ARTIFACTS, exist_ok=True)
    hot = truth["functions"]["heavy"]["label"]
    res = _view(ctx, {"kind": "svg", "url": "file://" + path, "hot": hot,
                      "shot": os.path.join(ARTIFACTS, "flamegraph.png")})
    widths = [f["width"] for f in res["frames"] if f["title"].startswith(hot + " ")]
    share = max(widths or [0]) / max(1, max(f["width"] for f in res["frames"]))
    want = truth["functions"]["heavy"]["share"]
    ctx.note("hot frame %.0f%% of the graph, the program measured %.0f%%", 100 * share, 100 * want)
    ctx.check(widths and abs(share - want) < 0.15, "hot frame width share %.2f vs %.2f", share, want)
    ctx.check(res.get("zoomedWidth", 0) > 0.9 * max(f["width"] for f in res["frames"]),
              "click did not zoom: %s", res.get("zoomedWidth"))
    ctx.check(abs(res.get("matched", 0) - want) < 0.15, "search matched %s", res.get("matched"))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@single
def formats_speedscope_in_chromium(ctx, interp):
    ctx.check(os.path.isfile(os.path.join(SPEEDSCOPE, "index.html")),
              "speedscope is not installed (make installs web/node_modules)")
    ctx.require()
    t = ctx.target("cpu_shares.py", [], name="shares").wait_ready()
    run = ctx.profile(t.pid, duration=3, extra=["-f", "speedscope"])
    truth = t.stop()
    ctx.check(run.rc == 0, "exit status %s", run.rc)
    ctx.require()
    doc = json.loads(run.output)
    ctx.check(doc["profiles"] and doc["profiles"][0]["type"] == "sampled", "profiles: %s",
              str(doc)[:300])
    # speedscope's own app and the file, served from one origin
    site = os.path.join(ctx.tmp, "site")
    os.symlink(SPEEDSCOPE, site)
    with open(os.path.join(ctx.tmp, "profile.speedscope.json"), "w") as f:
        f.write(run.output)
    os.symlink(os.path.join(ctx.tmp, "profile.speedscope.json"),
               os.path.join(ctx.tmp, "site-profile.json"))
    handler = functools.partial(_Quiet, directory=ctx.tmp)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        os.makedirs(ARTIFACTS, exist_ok=True)
        hot = truth["functions"]["heavy"]["name"]
        url = "http://127.0.0.1:%d/site/index.html#profileURL=/site-profile.json&view=sandwich" \
            % srv.server_address[1]
        res = _view(ctx, {"kind": "speedscope", "url": url, "hot": hot,
                          "shot": os.path.join(ARTIFACTS, "speedscope.png")})
    finally:
        srv.shutdown()
    ctx.check(hot in res.get("text", ""), "speedscope does not show %s: %r", hot,
              res.get("text", "")[:500])
    ctx.check(res.get("canvases", 0) >= 1, "speedscope drew no canvas")


HOSTILE = r'''
import sys, time
sys.setrecursionlimit(10000)
NAMES = ['semi;colon', 'quote"\'s', '<script>alert(1)</script>', 'amp&amp;<![CDATA[x]]>',
         'x' * 3000, 'tab\there', 'uni\u00e9\u4e2d\U0001f600']
def make(name):
    def f(n):
        s = 0
        for i in range(n):
            s += i * i
        return s
    try:
        f.__code__ = f.__code__.replace(co_name=name, co_qualname=name)
    except TypeError:
        f.__code__ = f.__code__.replace(co_name=name)
    f.__qualname__ = name
    return f
fs = [make(n) for n in NAMES]
print("READY", flush=True)
end = time.time() + 60
while time.time() < end:
    for f in fs:
        f(20000)
'''


@single
def formats_hostile_names(ctx, interp):
    if interp.version < (3, 8):
        ctx.fail("the default interpreter must be 3.8+ (code.replace): %s", interp)
    path = os.path.join(ctx.tmp, "hostile.py")
    with open(path, "w") as f:
        f.write(HOSTILE)
    p = subprocess.Popen([interp.path, path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ctx._procs.append(p)
    p.stdout.readline()
    outs = {}
    for fmt in ("folded", "svg", "speedscope", "json", "chrome"):
        run = ctx.profile(p.pid, duration=1.5, extra=["-f", fmt])
        ctx.check(run.rc == 0, "%s: exit status %s", fmt, run.rc)
        outs[fmt] = run.output or ""
    p.kill()
    p.wait()
    # folded: one "stack count" per line, the names intact except the separator
    lines = [l for l in outs["folded"].splitlines() if l]
    ctx.check(lines and all(l.rsplit(" ", 1)[1].isdigit() for l in lines), "folded lines")
    ctx.check("<script>alert(1)</script>" in outs["folded"], "names not kept in folded")
    ctx.check(not any("semi;colon" in l for l in lines), "';' inside a frame name not escaped")
    # svg: parses, the names only as text
    try:
        root = ET.fromstring(outs["svg"].encode())
        titles = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title")]
        ctx.check(any(t.startswith("<script>alert(1)</script>") for t in titles),
                  "hostile name not in a tooltip")
        ctx.check(len(root.findall(".//{http://www.w3.org/2000/svg}script")) == 1,
                  "more than our one script element")
    except ET.ParseError as e:
        ctx.check(False, "svg does not parse: %s", e)
    for fmt in ("speedscope", "json", "chrome"):
        try:
            json.loads(outs[fmt])
        except ValueError as e:
            ctx.check(False, "%s is not valid JSON: %s", fmt, e)
    # the agent reads at most 511 bytes of a name (bounded reads of untrusted memory)
    for fmt, text in outs.items():
        ctx.check("x" * 500 in text, "the long name is missing in %s", fmt)
