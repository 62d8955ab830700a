# SPDX-License-Identifier: BSD-2-Clause
"""Demo target for `make run`: a small program with a known call tree.

parse() gets about half the CPU, score() a third, report() the rest. Runs
for the number of seconds given (default 30) and exits.
"""
import sys
import time


class Parser(object):
    def parse(self, n):
        total = 0
        for i in range(n):
            total += int(str(i)) % 7
        return total


def score(n):
    acc = 0.0
    for i in range(n):
        acc += (i * 0.5) ** 0.5
    return acc


def report(n):
    return ",".join(str(i) for i in range(n))


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    parser = Parser()
    end = time.time() + seconds
    while time.time() < end:
        parser.parse(20000)
        score(40000)
        report(8000)


if __name__ == "__main__":
    main()
