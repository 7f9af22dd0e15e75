#!/usr/bin/env python3
"""Differential fuzzing: our canonical JSON (src/canon.c) against CPython's
json module, on generated values.  Not part of CI; run it by hand:

    python3 tests/tools/canon_diff_fuzz.py --seconds 60
    python3 tests/tools/canon_diff_fuzz.py --seed 7 --case 12345   # replay one case

What is compared, for every generated document (always an object, the only
top-level value canon_parse accepts):
    ours    canon_parse(line) then canon_append COMPACT and SPACED, and
            canon_action_hash("echo", document)
    Python  json.loads(line), then json.dumps(v, sort_keys=True,
            separators=(",", ":")), json.dumps(v, sort_keys=True), and
            sha256(json.dumps({"action": "echo", "payload": v}, ...compact))
So both sides parse the same bytes and serialise: a difference in either
step shows.  Inputs that SPEC 3.3 refuses on purpose (integers outside int64,
numbers overflowing a double, nesting deeper than 64, lone surrogate escapes,
duplicate keys, \\u0000 in a key) are generated on purpose too, a few
percent of the time, and must come back 422 unsupported_json from us.

Values: integers (small, int64 edges, random 64-bit), floats (random bit
patterns over the whole exponent range, subnormals, powers of ten and their
neighbours, integral values, the fixed/exponent switch at 1e16 and 1e-4,
-0.0) spelled as repr, %.17e, %.25g, upper-case E, explicit +, or the exact
decimal expansion; strings of code points from every plane (ASCII controls,
DEL, quotes and backslashes, 2-, 3- and 4-byte UTF-8, the edges of the
surrogate range, noncharacters, U+10FFFF), written raw or as \\u escapes in
either case, surrogate pairs for astral ones; keys likewise; nesting up to
the depth limit; random whitespace.

How ours runs: a small C driver (compiled here into a temporary directory,
linked with <build>/liboecore.a, so it is the same compiled canon.c the
server uses) reads length-framed documents and prints one line per document.
Prints progress every 10 s and, at the first mismatch, the case (seed and
index, to replay it), the input, both outputs and the first differing byte;
exit 1.  Exit 0 when the time is up without a mismatch.
"""

import argparse
import decimal
import hashlib
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

DRIVER_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "canon.h"

/* In: documents framed as "<length in bytes>\n<bytes>" (a document may
 * hold raw newlines: JSON whitespace).  Out: one line per document:
 *   OK <TAB> compact <TAB> spaced <TAB> action_hash
 *   ERR <TAB> status <TAB> code
 * The canonical forms are ASCII without tabs or newlines (they are escaped),
 * so the line protocol is unambiguous. */
int main(void)
{
    char *line = NULL;
    size_t n;

    if (sodium_init() < 0)
        return 2;
    while (scanf("%zu", &n) == 1 && getchar() == '\n') {
        json_t *v = NULL;
        oe_error err;
        oe_buf c, s;
        char hash[65];

        free(line);
        if ((line = malloc(n + 1)) == NULL || fread(line, 1, n, stdin) != n)
            return 2;
        if (canon_parse(line, n, &v, &err) != 0) {
            printf("ERR\t%d\t%s\n", err.status, err.code);
            fflush(stdout);
            continue;
        }
        oe_buf_init(&c, 1 << 26);
        oe_buf_init(&s, 1 << 26);
        if (canon_append(&c, v, CANON_COMPACT) != 0 || canon_append(&s, v, CANON_SPACED) != 0 ||
            canon_action_hash("echo", 4, v, hash) != 0) {
            printf("ERR\t0\tcanon_append_failed\n");
        } else {
            fputs("OK\t", stdout);
            fwrite(c.data, 1, c.len, stdout);
            fputc('\t', stdout);
            fwrite(s.data, 1, s.len, stdout);
            printf("\t%s\n", hash);
        }
        fflush(stdout);
        oe_buf_free(&c);
        oe_buf_free(&s);
        json_decref(v);
    }
    free(line);
    return 0;
}
"""


def build_driver(build_dir, workdir):
    lib = os.path.join(build_dir, "liboecore.a")
    if not os.path.exists(lib):
        sys.exit("canon_diff_fuzz: %s not found; build first (cmake -S . -B build && "
                 "make -C build oecore) or pass --build" % lib)
    src = os.path.join(workdir, "canon_driver.c")
    exe = os.path.join(workdir, "canon_driver")
    with open(src, "w") as f:
        f.write(DRIVER_C)
    cc = os.environ.get("CC", "cc")
    base = [cc, "-O1", "-g", "-std=c11", "-D_GNU_SOURCE", "-I", os.path.join(REPO, "src"),
            src, lib, "-o", exe]
    attempts = [base + ["-ljansson", "-lsodium", "-lm"]]
    try:
        libs = subprocess.run(["pkg-config", "--libs", "libh2o-evloop", "jansson", "libsodium",
                               "sqlite3", "libpq", "openssl"], capture_output=True, text=True,
                              check=True).stdout.split()
        attempts.append(base + libs + ["-lpthread", "-lm"])
    except (OSError, subprocess.CalledProcessError):
        pass
    # A sanitized build's library needs the sanitizer runtimes too.
    attempts.append(base + ["-fsanitize=address,undefined", "-ljansson", "-lsodium", "-lm"])
    err = ""
    for cmd in attempts:
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode == 0:
            return exe
        err = r.stderr
    sys.exit("canon_diff_fuzz: cannot build the driver:\n" + err[-3000:])


# ---- generation ---------------------------------------------------------

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
MAX_DEPTH = 64  # SPEC 3.3, the top-level object is depth 1

INTERESTING_CPS = [0x00, 0x01, 0x08, 0x09, 0x0a, 0x0c, 0x0d, 0x1f, 0x20, 0x22, 0x2f, 0x5c,
                   0x7e, 0x7f, 0x80, 0x9f, 0xa0, 0xff, 0x100, 0x7ff, 0x800, 0xfff, 0xd7ff,
                   0xe000, 0xfdd0, 0xfeff, 0xfffd, 0xfffe, 0xffff, 0x10000, 0x1f600, 0xeffff,
                   0x10fffe, 0x10ffff, 0x2028, 0x2029]


class Gen:
    def __init__(self, rnd):
        self.r = rnd
        self.reject = None  # the SPEC 3.3 refusal this document must get, if any

    # values ------------------------------------------------------------
    def codepoint(self):
        r = self.r
        k = r.random()
        if k < 0.25:
            return r.randrange(0, 0x80)
        if k < 0.35:
            return r.choice(INTERESTING_CPS)
        if k < 0.5:
            return r.randrange(0x80, 0x800)
        if k < 0.75:
            cp = r.randrange(0x800, 0x10000)
            return cp if not 0xd800 <= cp <= 0xdfff else cp - 0x800
        return r.randrange(0x10000, 0x110000)

    def string(self, maxlen=12):
        return "".join(chr(self.codepoint()) for _ in range(self.r.randrange(0, maxlen + 1)))

    def key(self, maxlen=8):
        """Like string(), without U+0000 (refused inside keys, SPEC 3.3)."""
        return "".join(chr(self.codepoint() or 0x30) for _ in range(self.r.randrange(0, maxlen + 1)))

    def integer(self):
        r = self.r
        k = r.random()
        if k < 0.4:
            return r.randrange(-1000, 1000)
        if k < 0.6:
            return r.choice([0, 1, -1, INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1,
                             2 ** 53, 2 ** 53 + 1, -(2 ** 53) - 1, 10 ** 15, 10 ** 16, 10 ** 18])
        return r.randrange(INT64_MIN, INT64_MAX + 1) >> r.randrange(0, 63)

    def floating(self):
        r = self.r
        while True:
            k = r.random()
            if k < 0.3:  # any bit pattern: the whole exponent range, subnormals
                x = struct.unpack("<d", r.getrandbits(64).to_bytes(8, "little"))[0]
            elif k < 0.45:  # random mantissa, chosen binary exponent
                x = math.ldexp(r.random() + 0.5, r.randrange(-1075, 1024))
            elif k < 0.6:  # powers of ten and neighbours
                x = float("1e%d" % r.randrange(-325, 309))
                x = r.choice([x, math.nextafter(x, math.inf), math.nextafter(x, -math.inf)])
            elif k < 0.7:  # fixed/exponent switch points
                x = r.choice([1e16, 1e-4, 9999999999999998.0, 1e16 - 2, 0.0001, 0.00009999999999999999,
                              1e15, 123456789012345678.0, 5e-324, 2.2250738585072014e-308,
                              1.7976931348623157e308, 0.1, 0.2, 0.3, 1 / 3, 2 / 3, 100.0, -0.0, 0.0])
            elif k < 0.85:  # integral floats
                x = float(r.randrange(-10 ** 17, 10 ** 17))
            else:  # short decimals
                x = float("%d.%de%d" % (r.randrange(0, 1000), r.randrange(0, 1000),
                                        r.randrange(-30, 30)))
            if math.isfinite(x):
                return -x if r.random() < 0.1 else x

    def value(self, depth):
        r = self.r
        k = r.random()
        if depth <= MAX_DEPTH and k < 0.12:
            return {self.key(6): self.value(depth + 1) for _ in range(r.randrange(0, 6))}
        if depth <= MAX_DEPTH and k < 0.22:
            return [self.value(depth + 1) for _ in range(r.randrange(0, 6))]
        if k < 0.4:
            return self.string()
        if k < 0.6:
            return self.integer()
        if k < 0.85:
            return self.floating()
        return r.choice([True, False, None])

    def deep(self, depth):
        """An object nested exactly `depth` levels (itself = 1)."""
        v = self.value(MAX_DEPTH + 1)  # a leaf
        for _ in range(depth - 1):
            v = [v] if self.r.random() < 0.5 else {self.key(3): v}
        return {self.key(3): v}

    def document(self):
        r = self.r
        k = r.random()
        if k < 0.05:
            return self.deep(r.randrange(2, MAX_DEPTH + 1))
        doc = {self.key(8): self.value(2) for _ in range(r.randrange(0, 8))}
        return doc

    # writing ------------------------------------------------------------
    def ws(self):
        if self.r.random() < 0.85:
            return ""
        return "".join(self.r.choice(" \t\r\n") for _ in range(self.r.randrange(1, 3)))

    def write_string(self, s):
        r = self.r
        out = ['"']
        upper = r.random() < 0.3
        for ch in s:
            cp = ord(ch)
            short = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                     "\r": "\\r", "\t": "\\t"}
            if ch in short and r.random() < 0.8:
                out.append(short[ch])
            elif cp < 0x20 or ch in '"\\' or r.random() < 0.15:
                if cp >= 0x10000:
                    hi, lo = 0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff)
                    esc = "\\u%04x\\u%04x" % (hi, lo)
                else:
                    esc = "\\u%04x" % cp
                out.append(esc.upper().replace("\\U", "\\u") if upper else esc)
            elif ch == "/" and r.random() < 0.3:
                out.append("\\/")
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)

    def write_float(self, x):
        r = self.r
        k = r.random()
        if k < 0.5 or x == 0.0:
            s = repr(x)
        elif k < 0.65:
            s = "%.17e" % x
        elif k < 0.75:
            s = "%.25g" % x
        elif k < 0.85:
            s = repr(x).replace("e", "E").replace("E-", "E-").replace("E+", r.choice(["E+", "E"]))
        else:  # the exact decimal value of the double, every digit
            s = format(decimal.Decimal(x), "f")
            if "." not in s:
                s += ".0"
        if "." not in s and "e" not in s.lower() and "inf" not in s and "nan" not in s:
            s += ".0"  # stays a real: 1e2 -> 100.0, but "100" would be an integer
        return s

    def write(self, v):
        ws = self.ws
        if isinstance(v, dict):
            items = list(v.items())
            self.r.shuffle(items)
            return "{" + ws() + ",".join(ws() + self.write_string(k) + ws() + ":" + ws()
                                         + self.write(x) + ws() for k, x in items) + "}"
        if isinstance(v, list):
            return "[" + ws() + ",".join(ws() + self.write(x) + ws() for x in v) + "]"
        if isinstance(v, str):
            return self.write_string(v)
        if v is True:
            return "true"
        if v is False:
            return "false"
        if v is None:
            return "null"
        if isinstance(v, int):
            return str(v)
        return self.write_float(v)

    def rejected_document(self):
        """A document SPEC 3.3 refuses with 422 (Python would accept it)."""
        r = self.r
        k = r.randrange(6)
        base = self.write(self.document())
        inner = base[1:-1].strip()
        sep = "," if inner else ""
        if k == 0:
            n = r.choice([INT64_MAX + 1, INT64_MIN - 1, 10 ** r.randrange(19, 40),
                          -(10 ** r.randrange(19, 40))])
            return "{" + inner + sep + '"big":' + str(n) + "}", "int64"
        if k == 1:
            return "{" + inner + sep + '"inf":' + r.choice(["1e400", "-1e309", "2e308"]) + "}", "overflow"
        if k == 2:
            return "{" + inner + sep + '"deep":' + "[" * 64 + "]" * 64 + "}", "depth"
        if k == 3:
            s = r.choice(["\\ud800", "\\udc00", "\\ud83d\\u0041", "a\\udfff", "\\uDBFF"])
            return "{" + inner + sep + '"s":"' + s + '"}', "lone surrogate"
        if k == 4:
            return "{" + inner + sep + '"dup":1,"d\\u0075p":2}', "duplicate key"
        return "{" + inner + sep + '"a\\u0000b":1}', "NUL in key"


def make_case(seed, i):
    g = Gen(random.Random("%d:%d" % (seed, i)))
    if g.r.random() < 0.04:
        line, why = g.rejected_document()
        return line, why
    return g.write(g.document()), None


def expected(line):
    v = json.loads(line)
    compact = json.dumps(v, sort_keys=True, separators=(",", ":"))
    spaced = json.dumps(v, sort_keys=True)
    ah = hashlib.sha256(json.dumps({"action": "echo", "payload": v}, sort_keys=True,
                                   separators=(",", ":")).encode()).hexdigest()
    return compact, spaced, ah


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def report(seed, i, line, why, ours, want):
    print("MISMATCH  seed %d case %d  (replay: --seed %d --case %d)" % (seed, i, seed, i))
    print("input      %r" % line[:2000])
    if why:
        print("expected   422 unsupported_json (%s)" % why)
        print("ours       %r" % ours[:2000])
        return
    names = ("compact", "spaced", "action_hash")
    if not ours.startswith("OK\t"):
        print("ours       %r" % ours)
        print("python     %r" % (want[0][:2000],))
        return
    got = ours[3:].split("\t")
    for name, g, w in zip(names, got, want):
        if g != w:
            at = first_difference(g, w)
            print("%-10s differs at byte %d" % (name, at))
            print("  ours     ...%r" % g[max(0, at - 60):at + 60])
            print("  python   ...%r" % w[max(0, at - 60):at + 60])
            break


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=None, help="default: from the clock")
    ap.add_argument("--case", type=int, default=None, help="run only this case")
    ap.add_argument("--build", default=os.path.join(REPO, "build"),
                    help="build directory holding liboecore.a (default: build)")
    ap.add_argument("--batch", type=int, default=200)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())

    workdir = tempfile.mkdtemp(prefix="canon-diff-")
    proc = None
    try:
        exe = build_driver(os.path.abspath(args.build), workdir)
        proc = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                bufsize=1 << 20)
        start = time.monotonic()
        last = start
        i = args.case if args.case is not None else 0
        counts = {"accepted": 0, "refused": 0}
        print("canon_diff_fuzz: seed %d, %s" % (
            seed, "case %d" % i if args.case is not None else "%g s" % args.seconds), flush=True)
        while True:
            batch = []
            for _ in range(1 if args.case is not None else args.batch):
                line, why = make_case(seed, i)
                batch.append((i, line, why))
                i += 1
            # Written from a thread: the driver's answers fill its stdout pipe
            # while we are still writing, and we must read them meanwhile.
            data = b"".join(b"%d\n" % len(b) + b for b in (
                line.encode("utf-8", "surrogateescape") for _, line, _ in batch))

            def feed():
                proc.stdin.write(data)
                proc.stdin.flush()
            writer = threading.Thread(target=feed, daemon=True)
            writer.start()
            for case, line, why in batch:
                ours = proc.stdout.readline().decode("ascii", "replace").rstrip("\n")
                if why:
                    if ours != "ERR\t422\tunsupported_json":
                        report(seed, case, line, why, ours, None)
                        return 1
                    counts["refused"] += 1
                    continue
                want = expected(line)
                if ours != "OK\t" + "\t".join(want):
                    report(seed, case, line, why, ours, want)
                    return 1
                counts["accepted"] += 1
            writer.join()
            now = time.monotonic()
            if args.case is not None:
                print("case %d: same bytes" % args.case)
                return 0
            if now - last >= 10:
                last = now
                print("  %6.0f s  %d documents (%d refused as SPEC 3.3 says), no mismatch" % (
                    now - start, counts["accepted"] + counts["refused"], counts["refused"]),
                    flush=True)
            if now - start >= args.seconds:
                break
        proc.stdin.close()
        proc.wait(10)
        print("canon_diff_fuzz: seed %d: %d documents in %.0f s (%d accepted, %d refused), "
              "no mismatch" % (seed, counts["accepted"] + counts["refused"], time.monotonic() - start,
                               counts["accepted"], counts["refused"]))
        return 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
