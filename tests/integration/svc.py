# SPDX-License-Identifier: BSD-2-Clause
"""Small named services for the fleet-agent tests: a script file per service,
whose name becomes the process's application name, burning CPU in a function
named after the service until killed."""
import os
import subprocess

CODE = """
import time
def hot_%(fn)s():
    x = 0
    while True:
        for _ in range(20000):
            x = (x * 31 + 7) & 0xffffff
        time.sleep(%(sleep)f)
hot_%(fn)s()
"""


class Service(object):
    def __init__(self, ctx, name, interp, sleep=0.0, argv_prefix=None, args=()):
        self.name = name
        self.fn = name.replace("-", "_").replace(".", "_")
        self.hot = "hot_" + self.fn
        path = os.path.join(ctx.tmp, name + ".py")
        with open(path, "w") as f:
            f.write(CODE % {"fn": self.fn, "sleep": sleep})
        env = dict(os.environ)
        env.pop("PYTHONHOME", None)
        env.pop("PYTHONPATH", None)
        cmd = list(argv_prefix or [interp.path]) + [path] + list(args)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=env, close_fds=True)
        self.pid = self.proc.pid
        ctx._procs.append(self)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)

    # The Ctx cleanup calls kill() on every registered process.
    def kill(self):
        self.stop()
