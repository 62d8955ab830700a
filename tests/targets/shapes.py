# SPDX-License-Identifier: BSD-2-Clause
"""Burn CPU in frames of many shapes, each recording the stack it runs under.

    shapes.py --out TRUTH.json [--duration S] [--ready FILE]

Spots (a function burning CPU, reached in a particular way):
  generator   run_generators -> gen_outer -> gen_inner (generator frames)
  listcomp    a list comprehension (own frame before 3.12, inlined since)
  genexpr     a generator expression consumed by the C function sum()
  sorted_key  a key function called back from the C function sorted()
  map_call    a function called back from the C function map() / list()
  decorated   a function reached through a decorator's closure wrapper
  inherited   Derived.work -> super() -> Base.work
  static      a staticmethod, classmethod
  nested      make_nested.<locals>.middle.<locals>.inner
  coroutine   (3.5+) coro_outer awaits coro_inner, driven by send()

On its first run each spot takes the stack as the interpreter sees it (label,
file, line per frame, root first) from inside the burning frame; the truth
JSON has these under "spots", with the first and last line of the leaf
function ("leaf_lines": before 3.11 Base.work and Derived.work are both
labelled "work", so the label alone does not say which). A correct
profiler's samples whose leaf is a spot's leaf frame have exactly that
stack above the leaf (frames the interpreter keeps for C calls in between,
if any, are invisible to both).
"""
from __future__ import print_function, division

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tgtlib  # noqa: E402
from tgtlib import RANGE  # noqa: E402

SNAP = {}
LEAF_LINES = {}


def code_line_range(code):
    import dis
    lines = [l for _, l in dis.findlinestarts(code) if l is not None]
    return [code.co_firstlineno, max(lines + [code.co_firstlineno])]


def snapshot(name, frame):
    if name in SNAP:
        return
    LEAF_LINES[name] = code_line_range(frame.f_code)
    out = []
    while frame is not None:
        code = frame.f_code
        out.append([tgtlib.code_label(code), code.co_filename, frame.f_lineno])
        frame = frame.f_back
    out.reverse()
    SNAP[name] = out


# -- generators
def gen_inner(n):
    snapshot("generator", sys._getframe())
    x = 0
    for i in RANGE(n):
        x = (x * 13 + i) & 0xffff
        if not i & 1023:
            yield x


def gen_outer(n):
    for v in gen_inner(n):
        yield v


def run_generators(n):
    total = 0
    for v in gen_outer(n):
        total += v
    return total


# -- comprehensions and C callbacks
def snap_value(name, i):
    snapshot(name, sys._getframe(1))
    return i


def run_listcomp(n):
    return len([snap_value("listcomp", i) if not i else ((i * 7) ^ (i >> 3)) & 0xff for i in RANGE(n)])


def run_genexpr(n):
    return sum(snap_value("genexpr", i) if not i else ((i * 5) ^ (i >> 2)) & 0xff for i in RANGE(n))


def sort_key(v):
    snapshot("sorted_key", sys._getframe())
    x = v
    for i in RANGE(40):
        x = (x * 31 + i) & 0xffff
    return x


def run_sorted(n):
    return sorted(RANGE(n // 40), key=sort_key)[0]


def map_func(v):
    snapshot("map_call", sys._getframe())
    x = v
    for i in RANGE(40):
        x = (x * 37 + i) & 0xffff
    return x


def run_map(n):
    return len(list(map(map_func, RANGE(n // 40))))


# -- decorators, classes, closures
def deco(func):
    def wrapper(*args):
        return func(*args)
    return wrapper


@deco
def decorated_work(n):
    snapshot("decorated", sys._getframe())
    x = 0
    for i in RANGE(n):
        x = (x * 17 + i) & 0xffff
    return x


class Base(object):
    def work(self, n):
        snapshot("inherited", sys._getframe())
        x = 0
        for i in RANGE(n):
            x = (x * 19 + i) & 0xffff
        return x


class Derived(Base):
    def work(self, n):
        return super(Derived, self).work(n)

    @staticmethod
    def static_work(n):
        snapshot("static", sys._getframe())
        x = 0
        for i in RANGE(n):
            x = (x * 23 + i) & 0xffff
        return x

    @classmethod
    def class_work(cls, n):
        snapshot("classmethod", sys._getframe())
        x = 0
        for i in RANGE(n):
            x = (x * 29 + i) & 0xffff
        return x


def make_nested():
    def middle():
        def inner(n):
            snapshot("nested", sys._getframe())
            x = 0
            for i in RANGE(n):
                x = (x * 41 + i) & 0xffff
            return x
        return inner
    return middle()


def run_inherited(n):
    return Derived().work(n)


def spots():
    nested = make_nested()
    out = [
        ("generator", run_generators),
        ("listcomp", run_listcomp),
        ("genexpr", run_genexpr),
        ("sorted_key", run_sorted),
        ("map_call", run_map),
        ("decorated", decorated_work),
        ("inherited", run_inherited),
        ("static", Derived.static_work),
        ("classmethod", Derived.class_work),
        ("nested", nested),
    ]
    if sys.version_info >= (3, 5):
        import shapes_async
        shapes_async.snapshot = snapshot
        out.append(("coroutine", shapes_async.run_coroutine))
    return out


def main():
    target = tgtlib.Target(__doc__)
    target.parse()
    todo = spots()
    n = 20000
    rounds = 0
    t0 = None
    while True:
        # One call site for every round: the snapshots, taken in the first
        # round before the ready line, hold for all the later ones.
        for _, fn in todo:
            fn(n)
        if t0 is None:
            missing = [name for name, _ in todo if name not in SNAP]
            if missing:
                sys.exit("spots without a snapshot: %s" % missing)
            leaves = [tuple(SNAP[name][-1][:2]) for name, _ in todo]
            if len(set(leaves)) != len(leaves):
                sys.exit("spot leaf frames are not unique: %s" % leaves)
            target.ready()
            t0 = tgtlib.thread_cpu()
        elif target.should_stop():
            break
        else:
            rounds += 1
    truth = tgtlib.base_truth()
    truth.update({
        "target": "shapes",
        "file": main.__code__.co_filename,
        "spots": dict((name, {"stack": SNAP[name], "leaf_lines": LEAF_LINES[name]}) for name, _ in todo),
        "rounds": rounds,
        "total_cpu": tgtlib.thread_cpu() - t0,
    })
    target.finish(truth)


if __name__ == "__main__":
    main()
