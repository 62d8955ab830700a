# SPDX-License-Identifier: BSD-2-Clause
"""lt_dump.py - dump CPython's own line numbers, as ground truth for user/linetable.c.

Runs unchanged under CPython 2.7 and 3.6 to 3.13. It compiles a sample of the
running interpreter's standard library (every top-level module, or the first
--max-files of them), this script itself, and a few generated sources that
stress the line tables (large line gaps, long lines of bytecode, lines going
backwards, wide columns, EXTENDED_ARG). It walks every nested code object and
writes, for each instruction, the line the interpreter itself gives:

  3.10+   co.co_lines(), the ranges CPython iterates at run time;
  <= 3.9  the line in effect at the instruction according to
          dis.findlinestarts() (the last line start at or before it).

Every value is also compared with the C function PyCode_Addr2Line(), called
through ctypes, which is what a frame's f_lineno comes from; a disagreement
is reported on stderr and makes the exit status 1.

--random N adds N code objects with random line tables (well-formed enough
that CPython's own decoder stays inside them), installed with
code.replace() or the CodeType constructor, checked at every byte offset up
to a little past the table; there the truth is PyCode_Addr2Line(), checked
against co_lines() on 3.10+ (except that co_lines() of 3.10 and 3.11 shows
every negative line as None, where PyCode_Addr2Line() returns the number).

Instructions: 2.7 has 1- or 3-byte instructions (walked with
dis.HAVE_ARGUMENT); 3.6+ is checked every 2 bytes, cache entries included.

Output format (text, one record per line, fields separated by one space):

  # ...                             comment
  V 1                               format version; first non-comment line
  P <version>                       interpreter that wrote the dump (free text)
  C <fmt> <firstlineno> <hex> <label>
                                    a code object: fmt is enum linetable_format
                                    (0 = 2.7 lnotab, 1 = 3.6-3.9 lnotab,
                                    2 = 3.10 PEP 626, 3 = 3.11+ locations);
                                    hex is the raw co_lnotab / co_linetable,
                                    "-" when empty; label (file:name:line,
                                    printable ASCII) runs to the end of line
  O <offset> <line>                 the instruction at byte offset <offset> of
                                    the last C has line <line>; -1 = no line
                                    (or past the end of the table, 3.10+)
  E <ncode> <noffsets>              end of dump, with the totals

Usage: python lt_dump.py [-o FILE] [--max-files N] [--random N] [--seed S]
"""
from __future__ import print_function

import binascii
import dis
import os
import random
import sys
import types

try:
    import ctypes
except ImportError:  # pragma: no cover - every tested build has it
    ctypes = None

VER = sys.version_info[:2]
if VER < (3, 0):
    FMT = 0
elif VER < (3, 10):
    FMT = 1
elif VER < (3, 11):
    FMT = 2
else:
    FMT = 3


def addr2line_func():
    """PyCode_Addr2Line through ctypes, or None."""
    if ctypes is None:
        return None
    try:
        f = ctypes.pythonapi.PyCode_Addr2Line
    except (AttributeError, OSError):
        return None
    f.argtypes = [ctypes.py_object, ctypes.c_int]
    f.restype = ctypes.c_int
    return f


ADDR2LINE = addr2line_func()


def to_bytes(ints):
    return bytes(bytearray(ints))


def line_table(co):
    if FMT >= 2:
        return co.co_linetable
    return co.co_lnotab


def instruction_offsets(co):
    code = bytearray(co.co_code)
    if FMT == 0:
        offs = []
        i = 0
        while i < len(code):
            offs.append(i)
            i += 3 if code[i] >= dis.HAVE_ARGUMENT else 1
        return offs
    return list(range(0, len(code), 2))


def lines_from_ranges(ranges, offsets):
    """Line per offset from contiguous (start, end, line) ranges, -1 outside."""
    out = []
    j = 0
    for off in offsets:
        while j < len(ranges) and ranges[j][1] <= off:
            j += 1
        if j < len(ranges) and ranges[j][0] <= off:
            line = ranges[j][2]
            out.append(-1 if line is None else line)
        else:
            out.append(-1)
    return out


def lines_from_starts(co, offsets):
    """Line in effect at each offset per dis.findlinestarts (<= 3.9)."""
    starts = list(dis.findlinestarts(co))
    out = []
    j = 0
    line = -1
    for off in offsets:
        while j < len(starts) and starts[j][0] <= off:
            line = starts[j][1]
            j += 1
        out.append(line)
    return out


def truth(co, offsets):
    if FMT >= 2:
        return lines_from_ranges(list(co.co_lines()), offsets)
    return lines_from_starts(co, offsets)


def walk(co):
    yield co
    for c in co.co_consts:
        if isinstance(c, types.CodeType):
            for sub in walk(c):
                yield sub


def label_of(co):
    raw = "%s:%s:%d" % (os.path.basename(co.co_filename), co.co_name, co.co_firstlineno)
    return "".join(ch if " " <= ch <= "~" else "?" for ch in raw)


class Dumper(object):
    def __init__(self, out):
        self.out = out
        self.ncode = 0
        self.noffsets = 0
        self.disagree = 0

    def emit(self, co, tab, firstlineno, label, offsets, lines):
        hexs = binascii.hexlify(tab).decode("ascii") or "-"
        self.out.write("C %d %d %s %s\n" % (FMT, firstlineno, hexs, label))
        for off, line in zip(offsets, lines):
            if ADDR2LINE is not None:
                c_line = ADDR2LINE(co, off)
                if c_line != line:
                    self.disagree += 1
                    if self.disagree <= 20:
                        print("lt_dump: %s offset %d: truth %d, PyCode_Addr2Line %d"
                              % (label, off, line, c_line), file=sys.stderr)
            self.out.write("O %d %d\n" % (off, line))
        self.ncode += 1
        self.noffsets += len(offsets)

    def code(self, co):
        offsets = instruction_offsets(co)
        self.emit(co, line_table(co), co.co_firstlineno, label_of(co), offsets,
                  truth(co, offsets))


def stdlib_files(max_files):
    libdir = os.path.dirname(os.__file__)
    names = sorted(n for n in os.listdir(libdir) if n.endswith(".py"))
    if max_files is not None:
        names = names[:max_files]
    return [os.path.join(libdir, n) for n in names]


def generated_sources():
    """Sources that push the tables to their edges; not all parse everywhere."""
    srcs = []
    # Line gaps above 127 and 255 (several lnotab pairs) and far above 63
    # (3.11+ multi-chunk varints), both up and back down.
    srcs.append(("gaps", "def f(a):\n    a += 1\n" + "\n" * 300 + "    a += 2\n" +
                 "\n" * 70000 + "    return (a,\n" + "\n" * 200 + "        a)\n"))
    # One line with lots of bytecode: address increments beyond 255.
    srcs.append(("longline", "x = [" + ", ".join("y%d" % i for i in range(400)) + "]\n"))
    # Over 65536 constants: EXTENDED_ARG in 2.7 and 3.x.
    srcs.append(("extarg", "x = [" + ", ".join(str(i) for i in range(70000)) + "]\n"))
    # Lines that go backwards: loops, multi-line calls, decorators, conditionals.
    srcs.append(("back", "\n".join([
        "import os",
        "def deco(f):",
        "    return f",
        "@deco",
        "def g(a,",
        "      b=2):",
        "    for i in range(a):",
        "        while b:",
        "            b -= (1 if",
        "                  i else",
        "                  2)",
        "    x = os.path.join(",
        "        'a',",
        "        'b') if a else None",
        "    try:",
        "        return [k for k in",
        "                range(3) if k]",
        "    except Exception as e:",
        "        raise ValueError(",
        "            e)",
        "    finally:",
        "        del x",
        "class K(object):",
        "    y = lambda self: (",
        "        1)",
        "    def m(self):",
        "        with open('x') as f, \\",
        "             open('y') as h:",
        "            yield f",
        ""])))
    # Wide columns (3.11+ long form) and a deep nest.
    srcs.append(("wide", "x = (" + " " * 300 + "1 +\n" + " " * 200 + "2)\n" +
                 "def h():\n    return " + "(" * 50 + "1" + ")" * 50 + "\n"))
    # Syntax only some versions accept.
    srcs.append(("async", "async def a(x):\n    async with x as y:\n"
                 "        async for z in y:\n            await z\n"))
    srcs.append(("match", "def mt(v):\n    match v:\n        case [1, *r]:\n"
                 "            return r\n        case {'k': k} if k:\n            return k\n"
                 "        case _:\n            return None\n"))
    srcs.append(("exc_group", "def eg():\n    try:\n        pass\n    except* ValueError:\n"
                 "        x = 1\n    return x\n"))
    return srcs


def compile_source(src, name):
    try:
        return compile(src, name, "exec", 0, True)
    except (SyntaxError, ValueError, TypeError, OverflowError, MemoryError,
            RuntimeError):  # RecursionError is a RuntimeError
        return None


# ---- random line tables -------------------------------------------------

def s8(v):
    return v & 0xff


def random_lnotab(rng):
    """Random (addr_incr, line_incr) pairs; any bytes are safe for CPython."""
    n = rng.randint(0, 24)
    tab = []
    for _ in range(n):
        tab.append(rng.choice([0, 0, 1, 2, 6, rng.randint(0, 255), 255]))
        tab.append(rng.choice([0, 1, 2, rng.randint(0, 255), 127, 128, 255]))
    if n and rng.random() < 0.2:
        tab.append(rng.randint(0, 255))   # odd trailing byte
    return tab


def random_pep626(rng):
    """3.10 pairs; the last range is non-empty, else CPython reads past the end."""
    n = rng.randint(1, 24)
    tab = []
    for i in range(n):
        sd = rng.choice([0, 2, 2, 4, 6, rng.randint(0, 254), 254])
        if i == n - 1 and sd == 0:
            sd = 2
        ld = rng.choice([0, 1, 2, -1, -128, rng.randint(-127, 127), 127])
        tab.extend([sd, s8(ld)])
    return tab


def varint(v):
    out = []
    while True:
        chunk = v & 63
        v >>= 6
        if v:
            out.append(chunk | 64)
        else:
            out.append(chunk)
            return out


def svarint(v):
    return varint((-v << 1) | 1 if v < 0 else v << 1)


def random_locations(rng):
    """3.11+ entries, each starting with a byte with bit 7 set."""
    n = rng.randint(1, 24)
    tab = []
    for _ in range(n):
        code = rng.choice([0, 5, 9, 10, 11, 12, 13, 13, 14, 14, 15])
        ln = rng.randint(0, 7)
        tab.append(0x80 | (code << 3) | ln)
        if code <= 9:
            tab.append(rng.randint(0, 127))
        elif code <= 12:
            tab.extend([rng.randint(0, 127), rng.randint(0, 127)])
        elif code <= 14:
            delta = rng.choice([0, 1, -1, 63, -64, rng.randint(-5000, 5000),
                                rng.randint(-(1 << 20), 1 << 20)])
            tab.extend(svarint(delta))
            if code == 14:
                for _ in range(3):
                    tab.extend(varint(rng.choice([0, 5, 200, rng.randint(0, 100000)])))
    return tab


def replace_table(co, tab, firstlineno):
    if VER >= (3, 10):
        return co.replace(co_linetable=tab, co_firstlineno=firstlineno)
    if VER >= (3, 8):
        return co.replace(co_lnotab=tab, co_firstlineno=firstlineno)
    args = [co.co_argcount]
    if VER >= (3, 0):
        args.append(co.co_kwonlyargcount)
    args += [co.co_nlocals, co.co_stacksize, co.co_flags, co.co_code, co.co_consts,
             co.co_names, co.co_varnames, co.co_filename, co.co_name, firstlineno, tab,
             co.co_freevars, co.co_cellvars]
    return types.CodeType(*args)


def table_span(tab):
    """Bytes of code the table describes (lnotab: the last address)."""
    if FMT <= 2:
        return sum(tab[0:len(tab) - len(tab) % 2:2])
    span = 0
    for i, b in enumerate(tab):
        if i == 0 or b & 0x80:
            span += ((b & 7) + 1) * 2
    return span


def dump_random(d, n, seed):
    if ADDR2LINE is None and FMT <= 1:
        print("lt_dump: no ctypes, skipping random tables", file=sys.stderr)
        return
    rng = random.Random(seed)
    base = compile("pass\n", "<random>", "exec", 0, True)
    gen = {0: random_lnotab, 1: random_lnotab, 2: random_pep626, 3: random_locations}[FMT]
    for k in range(n):
        tab = gen(rng)
        firstlineno = rng.choice([1, 0, rng.randint(1, 100000)])
        co = replace_table(base, to_bytes(tab), firstlineno)
        offsets = list(range(0, table_span(tab) + 8))
        if ADDR2LINE is None:
            lines = truth(co, offsets)
        else:
            # lnotab has no end and findlinestarts stops at co_code's end, and
            # 3.10/3.11 co_lines() turns every negative line into None:
            # PyCode_Addr2Line is the truth for these tables.
            lines = [ADDR2LINE(co, off) for off in offsets]
            if FMT >= 2:
                ranges_truth = truth(co, offsets)
                for off, want, got in zip(offsets, lines, ranges_truth):
                    if want == got or (VER < (3, 12) and want < 0 and got == -1):
                        continue
                    d.disagree += 1
                    print("lt_dump: random table %d offset %d: co_lines %d, "
                          "PyCode_Addr2Line %d" % (k, off, got, want), file=sys.stderr)
        d.emit(co, to_bytes(tab), firstlineno, "<random>:%d:%d" % (seed, k), offsets, lines)


def main(argv):
    out_path = None
    max_files = None
    nrandom = 300
    seed = 1
    args = list(argv[1:])
    while args:
        a = args.pop(0)
        if a == "-o":
            out_path = args.pop(0)
        elif a == "--max-files":
            max_files = int(args.pop(0))
        elif a == "--random":
            nrandom = int(args.pop(0))
        elif a == "--seed":
            seed = int(args.pop(0))
        else:
            print(__doc__.strip().splitlines()[-1], file=sys.stderr)
            return 2

    out = open(out_path, "w") if out_path else sys.stdout
    d = Dumper(out)
    out.write("# lt_dump.py ground truth, see tests/tools/lt_dump.py\n")
    out.write("V 1\n")
    out.write("P %s\n" % sys.version.split()[0])

    sources = []
    for path in stdlib_files(max_files) + [os.path.abspath(__file__)]:
        with open(path, "rb") as f:
            sources.append((path, f.read()))
    sources += [("<%s>" % name, src) for name, src in generated_sources()]

    skipped = []
    for name, src in sources:
        co = compile_source(src, name)
        if co is None:
            skipped.append(os.path.basename(name))
            continue
        for c in walk(co):
            d.code(c)
    dump_random(d, nrandom, seed)

    out.write("E %d %d\n" % (d.ncode, d.noffsets))
    if out_path:
        out.close()
    print("lt_dump: python %s fmt %d: %d sources (%d skipped), %d code objects, "
          "%d offsets, %d disagreements with PyCode_Addr2Line%s"
          % (sys.version.split()[0], FMT, len(sources), len(skipped), d.ncode, d.noffsets,
             d.disagree, "" if ADDR2LINE else " (not available)"), file=sys.stderr)
    if skipped:
        print("lt_dump: did not compile here: %s" % " ".join(skipped), file=sys.stderr)
    return 1 if d.disagree else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
