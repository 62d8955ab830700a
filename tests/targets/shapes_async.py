# SPDX-License-Identifier: BSD-2-Clause
"""Coroutine spot of shapes.py (Python 3.5+ syntax, imported only there)."""
import sys

snapshot = None  # set by shapes.py (its SNAP lives in __main__)


async def coro_inner(n):
    snapshot("coroutine", sys._getframe())
    x = 0
    for i in range(n):
        x = (x * 43 + i) & 0xffff
    return x


async def coro_outer(n):
    return await coro_inner(n)


def run_coroutine(n):
    coro = coro_outer(n)
    try:
        coro.send(None)
    except StopIteration as e:
        return e.value
    raise RuntimeError("coroutine did not finish")
