#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""ingest_server.py - a Pyroscope-ingest-compatible test server (stdlib only, Python 3.11+).

Usage: ingest_server.py --port PORT --out FILE [--status CODE] [--delay SEC] [--token TOKEN]

Listens on 127.0.0.1:PORT (0 = any free port) and prints "listening PORT" on stdout once ready.
Every POST appends one JSON line to FILE (flushed at once), with the query parameters decoded
(absent ones are null):

  {"path", "name", "from", "until", "format", "sampleRate", "spyName", "units",
   "aggregationType", "authorization", "body", "status"}

"authorization" is the Authorization header or null, "body" the request body (UTF-8; other
bytes as \\udcXX surrogates), "status" the status code this server answered.

Answers, in this order of precedence:
  404  the path is not /ingest or /pyroscope/ingest
  401  --token is set and the header is not "Authorization: Bearer TOKEN"
  400  name is missing or invalid as Pyroscope parses it (app [A-Za-z0-9_./-]+, then
       {key=value,...} with keys [A-Za-z0-9_.]+ other than __name__, and a known profile type
       after the last '.' of the app), or a body line with a space whose count after the last
       space is not an integer (format=folded or absent)
  --status CODE, else 200
--delay SEC sleeps before answering. Requests are served concurrently; SIGTERM and SIGINT stop
the server cleanly (exit status 0).
"""
import argparse
import json
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

PARAMS = ("name", "from", "until", "format", "sampleRate", "spyName", "units",
          "aggregationType")
PATHS = ("/ingest", "/pyroscope/ingest")
APP_RE = re.compile(r"[A-Za-z0-9_./-]+")
KEY_RE = re.compile(r"[A-Za-z0-9_.]+")
COUNT_RE = re.compile(r"[+-]?[0-9]+")
# pkg/ingester/pyroscope/ingest_adapter.go: the last '.' part of the app name.
PROFILE_TYPES = {
    "cpu", "itimer", "wall", "inuse_objects", "inuse_space", "alloc_objects", "alloc_space",
    "goroutines", "mutex_count", "mutex_duration", "block_count", "block_duration",
    "lock_count", "lock_duration", "alloc_in_new_tlab_objects", "alloc_in_new_tlab_bytes",
    "alloc_outside_tlab_objects", "alloc_outside_tlab_bytes", "live", "exceptions",
    "seconds", "milliseconds", "microseconds", "nanoseconds", "bytes",
}
MAX_BODY = 256 << 20


def check_name(name):
    """Return None when name parses as Pyroscope's segment.ParseKey would accept it, else why."""
    if name is None:
        return "name is required"
    app, _, rest = name.partition("{")
    app = app.strip()
    if not APP_RE.fullmatch(app):
        return "invalid app name %r" % app
    parts = app.split(".")
    if len(parts) > 1 and parts[-1] not in PROFILE_TYPES:
        return "unknown profile type: %s" % parts[-1]
    # State machine of ParseKey: keys end at '=', values at ',' or '}'; text after '}' ignored.
    key, value, state = "", "", "key"
    for ch in rest + "}":
        if state == "key":
            if ch == "}":
                break
            if ch == "=":
                state, value = "value", ""
            else:
                key += ch
        else:
            if ch in ",}":
                k = key.strip()
                if k == "__name__":
                    return "label key %r is reserved" % k
                if not KEY_RE.fullmatch(k):
                    return "invalid label key %r" % k
                key, state = "", "key"
                if ch == "}":
                    break
            else:
                value += ch
    return None


def check_folded(body):
    """Return None when every line with a space ends in an integer count (Go's Atoi), else why."""
    for n, line in enumerate(body.split(b"\n"), 1):
        line = line.rstrip(b"\r")
        sp = line.rfind(b" ")
        if sp < 0:
            continue
        if not COUNT_RE.fullmatch(line[sp + 1:].decode("latin-1")):
            return "line %d: count is not an integer" % n
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ingest_server/1"

    def log_message(self, fmt, *args):  # quiet: tests read FILE, not stderr
        pass

    def reply(self, status, text=""):
        data = text.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout, abort): expected

    def do_POST(self):
        cfg = self.server.cfg
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self.reply(400, "bad Content-Length")
            return
        body = self.rfile.read(length)
        url = urlsplit(self.path)
        q = {}
        for k, v in parse_qsl(url.query, keep_blank_values=True):
            q.setdefault(k, v)
        auth = self.headers.get("Authorization")

        status = cfg.status
        msg = "" if status == 200 else "status %d (--status)" % status
        if url.path not in PATHS:
            status, msg = 404, "not found"
        elif cfg.token is not None and auth != "Bearer " + cfg.token:
            status, msg = 401, "unauthorized"
        else:
            why = check_name(q.get("name"))
            if why is None and q.get("format", "folded") == "folded":
                why = check_folded(body)
            if why is not None:
                status, msg = 400, why

        rec = {"path": url.path}
        for k in PARAMS:
            rec[k] = q.get(k)
        rec["authorization"] = auth
        rec["body"] = body.decode("utf-8", "surrogateescape")
        rec["status"] = status
        with self.server.lock:
            self.server.out.write(json.dumps(rec) + "\n")
            self.server.out.flush()

        if cfg.delay > 0:
            time.sleep(cfg.delay)
        self.reply(status, msg)

    def do_GET(self):
        self.reply(405, "POST only")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--token")
    cfg = ap.parse_args()

    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer(("127.0.0.1", cfg.port), Handler)
    srv.daemon_threads = True  # a delayed answer never holds up exit
    srv.cfg = cfg
    srv.lock = threading.Lock()
    srv.out = open(cfg.out, "a", encoding="utf-8")

    def stop(signum, frame):
        # shutdown() waits for serve_forever() to return: call it from another thread.
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("listening %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.05)
    finally:
        srv.server_close()
        srv.out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
