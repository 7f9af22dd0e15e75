#!/usr/bin/env python3
"""gen_canon_vectors.py - writes tests/data/canon_vectors.tsv (SPEC 3.3).

The reference for canonical JSON is CPython itself:
    compact = json.dumps(v, sort_keys=True, separators=(",", ":"))
    spaced  = json.dumps(v, sort_keys=True)
so this script builds values, writes each one as JSON *text* in many
equivalent spellings (keys shuffled, escapes in upper or lower hex, raw UTF-8,
"\\/", extra whitespace, numbers as 1E2 / exact decimal expansions / halfway
points), lets json.loads decide what that text means, and records what
json.dumps makes of it.  tests/unit/test_canon.c feeds every input to
canon_parse + canon_append and compares byte for byte.

Deterministic: a fixed seed, standard library only, run with Debian's python3:
    python3 tests/gen_canon_vectors.py            # rewrites the data file
    python3 tests/gen_canon_vectors.py --check    # exit 1 if it would change

File format: UTF-8, one vector per line, fields separated by TAB (inputs never
contain a raw TAB or newline; ones that need them are hex-encoded):
    eq      INPUT         COMPACT        SPACED
    eqx     INPUT_HEX     COMPACT        SPACED
    hash    ACTION_HEX    PAYLOAD|-      ACTION_HASH_HEX   (- = payload NULL)
    receipt EXEC_ID       RESULT_JSON    RECEIPT_HEX
    reject  INPUT_HEX     STATUS         CODE              WHY
Lines starting with '#' are comments.
"""

import hashlib
import json
import math
import os
import random
import struct
import sys
import uuid
from decimal import Decimal, localcontext

SEED = 0x0E7EC  # "OpenExec"; change only on purpose: the file is checked in
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "canon_vectors.tsv")
MAX_DEPTH = 64

rng = random.Random(SEED)


def compact(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def spaced(v):
    return json.dumps(v, sort_keys=True)


# ---------------------------------------------------------------- values

# Characters chosen to hit every escaping rule and every UTF-8 length.
SPECIAL_CHARS = (
    [chr(c) for c in range(0x20)]
    + ['"', "\\", "/", "\x7f", "\x80", "\x9f", "\xa0", "\xe9", "\xff", "\u0100", "\u07ff",
       "\u0800", "\u2028", "\u2029", "\ufeff", "\ud7ff", "\ue000", "\ufffd", "\ufffe",
       "\uffff", "\U00010000", "\U0001f600", "\U0001f4a9", "\U000e0001", "\U0010fffd",
       "\U0010ffff"]
)
# Keys whose code-point order differs from their UTF-16 order: U+E000..U+FFFF
# sort *before* astral characters by code point (Python, UTF-8 bytes), but
# after them in UTF-16 (surrogates are D800..DFFF).
KEY_ATOMS = ["a", "b", "B", "ab", "a b", "\xe9", "\u00ff", "\u0100", "\ue000", "\uffff",
             "\U00010000", "\U0001f600", "\U0010ffff", "\x7f", "\x01", "~", "", "A", "aa",
             "\u2028", "z\U0001f600", "z\uffff", "z\ue000"]


def rand_char():
    r = rng.random()
    if r < 0.45:
        return chr(rng.randint(0x20, 0x7e))
    if r < 0.60:
        return rng.choice(SPECIAL_CHARS)
    if r < 0.75:
        return chr(rng.randint(0x80, 0x7ff))
    if r < 0.90:
        c = rng.randint(0x800, 0xffff)
        while 0xd800 <= c <= 0xdfff:  # no lone surrogates in accepted input
            c = rng.randint(0x800, 0xffff)
        return chr(c)
    return chr(rng.randint(0x10000, 0x10ffff))


def rand_string(maxlen=10, nul=True):
    s = "".join(rand_char() for _ in range(rng.randint(0, maxlen)))
    if not nul:
        s = s.replace("\0", "0")
    return s


def rand_key():
    if rng.random() < 0.5:
        return "".join(rng.choice(KEY_ATOMS) for _ in range(rng.randint(1, 3)))
    return rand_string(6, nul=False)  # \u0000 in a key is a 422


def bits_to_float(b):
    return struct.unpack("<d", struct.pack("<Q", b))[0]


def rand_finite_float():
    while True:
        x = bits_to_float(rng.getrandbits(64))
        if math.isfinite(x):
            return x


def rand_float():
    r = rng.random()
    if r < 0.35:
        return rand_finite_float()
    if r < 0.70:  # typed-in decimals: the common case in real payloads
        return float("%d.%0*d" % (rng.randint(-10**6, 10**6), rng.randint(1, 6),
                                  rng.randint(0, 99999)))
    if r < 0.85:
        return float("%de%d" % (rng.randint(1, 99999), rng.randint(-30, 30)))
    if r < 0.95:
        return rng.choice(HAND_FLOATS)
    return bits_to_float(rng.getrandbits(52) | (rng.getrandbits(1) << 63))  # subnormal


def rand_int():
    r = rng.random()
    if r < 0.3:
        return rng.randint(-100, 100)
    if r < 0.5:
        return rng.choice(HAND_INTS)
    n = rng.randint(1, 63)
    return rng.getrandbits(n) * rng.choice([1, -1])


def rand_value(depth, maxdepth):
    r = rng.random()
    if depth < maxdepth and r < 0.25:
        return rand_object(depth + 1, maxdepth)
    if depth < maxdepth and r < 0.40:
        return [rand_value(depth + 1, maxdepth) for _ in range(rng.randint(0, 5))]
    r = rng.random()
    if r < 0.35:
        return rand_string()
    if r < 0.60:
        return rand_int()
    if r < 0.85:
        return rand_float()
    return rng.choice([True, False, None])


def rand_object(depth, maxdepth, width=5):
    return {rand_key(): rand_value(depth, maxdepth) for _ in range(rng.randint(0, width))}


HAND_INTS = [0, 1, -1, 2**63 - 1, -2**63, 2**63 - 2, -2**63 + 1, 2**53, 2**53 + 1, -2**53 - 1,
             10**18, -10**18, 2**31, -2**31, 2**32, 4294967295, 999999999999999999]

HAND_FLOATS = [
    0.0, -0.0, 1.0, -1.0, 0.1, 0.2, 0.3, 0.1 + 0.2, 1 / 3, 2 / 3, 0.5, 1.5, 2.5, 100.0, 1e15,
    1e16, 1e17, 9999999999999998.0, 1e16 - 2, 123456789012345678.0, 1.2345678901234568e17,
    0.0001, 0.00001, 1e-4, 1e-5, 1.5e-5, 9.999999999999999e-05, 0.00011, 5e-324, 1e-323,
    2.2250738585072014e-308, 2.225073858507201e-308, 1.7976931348623157e308,
    8.98846567431158e307, math.pi, math.e, float(2**53), float(2**53 + 2), float(2**63),
    float(2**64), 1e22, 1e23, 1e21, 1e100, 1e-100, 1e308, 1e-307, 4.35, 0.3e-5, 123.456,
    -123.456, 5e-1, 1.1, 2.675, 1e-7, 12345.6789, 9007199254740993.0, 0.1e-3, 1.0e-4 * 3,
    299792458.0, 6.02214076e23, 6.62607015e-34, 1.602176634e-19,
]
for v in (1e16, 1e-4, 1e-5, 1e15, 1e-3, 1e308, 2.2250738585072014e-308, 5e-324):
    HAND_FLOATS += [math.nextafter(v, 0.0), math.nextafter(v, math.inf)]


# ---------------------------------------------------------------- spellings

def ws():
    r = rng.random()
    if r < 0.96:
        return ""
    if r < 0.995:
        return " " * rng.randint(1, 3)
    return "".join(rng.choice(" \t\n\r") for _ in range(rng.randint(1, 3)))


def spell_char(c):
    o = ord(c)
    short = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
             "\t": "\\t"}

    def u(x):
        h = "%04x" % x
        return "\\u" + (h.upper() if rng.random() < 0.3 else h)

    if c in short:
        return short[c] if rng.random() < 0.7 else u(o)
    if o < 0x20:
        return u(o)
    if c == "/":
        return "/" if rng.random() < 0.7 else "\\/"
    if o < 0x7f:
        return c if rng.random() < 0.95 else u(o)
    if o < 0x10000:
        return c if rng.random() < 0.6 else u(o)
    if rng.random() < 0.6:
        return c
    o -= 0x10000
    return u(0xd800 | (o >> 10)) + u(0xdc00 | (o & 0x3ff))


def spell_string(s):
    return '"' + "".join(spell_char(c) for c in s) + '"'


def spell_float(x):
    r = rng.random()
    if r < 0.6 or x == 0.0:
        t = repr(x)
    elif r < 0.75:
        t = "%.17e" % x
    elif r < 0.85:
        t = repr(x).upper()
    elif r < 0.9:
        t = str(Decimal(x))  # exact binary value in decimal
    elif math.isfinite(math.nextafter(x, math.inf)):
        # exactly halfway to the next double: both parsers must round to even
        with localcontext() as ctx:
            ctx.prec = 1200
            t = str((Decimal(x) + Decimal(math.nextafter(x, math.inf))) / 2)
    else:
        t = repr(x)
    if not any(ch in t for ch in ".eE"):
        t += ".0"
    return t


def spell(v):
    if isinstance(v, dict):
        items = list(v.items())
        rng.shuffle(items)
        inner = ",".join(ws() + spell_string(k) + ws() + ":" + ws() + spell(x) + ws()
                         for k, x in items)
        return "{" + (inner if items else ws()) + "}"
    if isinstance(v, list):
        inner = ",".join(ws() + spell(x) + ws() for x in v)
        return "[" + (inner if v else ws()) + "]"
    if isinstance(v, str):
        return spell_string(v)
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        if v == 0 and rng.random() < 0.3:
            return "-0"
        return str(v)
    return spell_float(v)


# ---------------------------------------------------------------- vectors

lines = []


def emit_eq(text):
    """Records what CPython makes of `text` (an object)."""
    v = json.loads(text)
    assert isinstance(v, dict)
    c, s = compact(v), spaced(v)
    assert "\t" not in c and "\n" not in c and c.isascii()
    if any(ch in text for ch in "\t\n\r"):
        lines.append("eqx\t%s\t%s\t%s" % (text.encode("utf-8").hex(), c, s))
    else:
        lines.append("eq\t%s\t%s\t%s" % (text, c, s))


def emit_value(v):
    emit_eq(spell(v))


def emit_reject(raw, status, code, why):
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    lines.append("reject\t%s\t%d\t%s\t%s" % (raw.hex(), status, code, why))


def nest(depth, leaf):
    """`depth` nested containers (alternating object/array) around leaf."""
    v = leaf
    for i in reversed(range(depth)):  # level 0, the outermost, is an object
        v = {"k": v} if i % 2 == 0 else [v]
    return v


def hand_values():
    lines.append("# hand-picked values")
    for x in HAND_FLOATS:
        emit_value({"f": x})
    for i in HAND_INTS:
        emit_value({"i": i})
    for c in SPECIAL_CHARS:
        emit_value({"s": c, c if c != "\0" else "nul": [c, c + c]})
    emit_value({})
    emit_value({"": ""})
    emit_value({"a": [], "b": {}, "c": [[]], "d": [{}], "e": None, "f": True, "g": False})
    emit_value({k: i for i, k in enumerate(KEY_ATOMS)})
    emit_value({"\U0001f600": 1, "\uffff": 2, "\ue000": 3, "\U00010000": 4, "\ud7ff": 5})
    emit_value({"a": 1, "a\x7f": 2, "a\x01": 3, "ab": 4, "b": 5, "\xe9": 6})
    # depth: exactly 64 containers is fine
    lines.append("# depth 64 (the maximum)")
    emit_value(nest(64, 1))
    emit_value(nest(62, [[]]))
    emit_value(nest(63, {}))
    # wide containers
    emit_value({"w": list(range(500))})
    emit_value({"k%03d" % i: i for i in range(300)})
    emit_value({rand_key() + str(i): rand_string() for i in range(200)})
    # spellings a decoder must fold to the same value
    for text in ['{"a":-0}', '{"a":-0.0}', '{"a":1E2}', '{"a":1e2}', '{"a":1E+2}', '{"a":100e-2}',
                 '{"a":1e-400}', '{"a":-1e-400}', '{"a":0.1e1}', '{"a":"\\/"}', '{"a":"\\u00E9"}',
                 '{"a":"\\uD83D\\uDE00"}', '{"a":"\\ud83d\\ude00"}', '{"a":"\\u0000"}',
                 '{"a":"x\\u0000y"}', '{"a":-9223372036854775808}', '{"a":9223372036854775807}',
                 '{"a":1.7976931348623157e308}', '{"a":2.4703282292062328e-324}',
                 '{"a":2.4703282292062327e-324}', '{"a":1.00000000000000011102230246251565404236316680908203125}',
                 '{"a":9007199254740993}', '{"a":9007199254740993.0}',
                 ' \t\r\n{ \t\r\n"a" \t\r\n: \t\r\n1 \t\r\n} \t\r\n',
                 '{"a":"\u2028\u2029"}', '{"a":"\x7f"}', '{"b":1,"a":2,"c":{"z":1,"y":2}}']:
        emit_eq(text)


def float_sweeps():
    lines.append("# floats across the whole exponent range")
    pool = [2.0 ** k for k in range(-1074, 1024)]
    for k in range(-323, 309):
        p = float("1e%d" % k)
        pool += [p, math.nextafter(p, 0.0), math.nextafter(p, math.inf)]
    pool += [rand_finite_float() for _ in range(2000)]
    pool += [bits_to_float(rng.getrandbits(52)) for _ in range(300)]  # subnormals
    sci = [float("%de%d" % (rng.randint(1, 10**rng.randint(1, 17)), rng.randint(-340, 310)))
           for _ in range(800)]
    pool += [x for x in sci if math.isfinite(x)]
    pool = [(-x if rng.random() < 0.3 else x) for x in pool]
    for i in range(0, len(pool), 8):
        emit_value({"f": pool[i:i + 8]})
    lines.append("# integers")
    ints = HAND_INTS + [rand_int() for _ in range(400)]
    for i in range(0, len(ints), 10):
        emit_value({"i": ints[i:i + 10]})


def random_values(n):
    lines.append("# random documents")
    for _ in range(n):
        emit_value(rand_object(1, rng.choice([1, 2, 3, 4, 6])))
    lines.append("# random deep documents")
    for _ in range(40):
        d = rng.randint(2, MAX_DEPTH)
        emit_value(nest(d, rand_value(MAX_DEPTH, MAX_DEPTH)))


def hash_vectors(n):
    lines.append("# action_hash = sha256(compact({action, payload}))")
    for i in range(n):
        action = rand_string(20, nul=False) or "echo"
        if i < 5:
            action = ["echo", "add", "deploy", "a" * 128, "\U0001f600" * 32][i]
        payload = None if rng.random() < 0.1 else rand_object(1, 3)
        ptext = "-" if payload is None else spell(payload)
        if any(ch in ptext for ch in "\t\n\r"):
            ptext = spell_plain(payload)
        # hash what the text means (a halfway float spelling rounds to even)
        doc = {"action": action, "payload": {} if payload is None else json.loads(ptext)}
        h = hashlib.sha256(compact(doc).encode("ascii")).hexdigest()
        lines.append("hash\t%s\t%s\t%s" % (action.encode("utf-8").hex(), ptext, h))


def spell_plain(v):
    return json.dumps(v, ensure_ascii=False)


def receipt_vectors(n):
    lines.append("# legacy receipt = sha256(exec_id + ':' + json.dumps(result, sort_keys=True))")
    for _ in range(n):
        exec_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        result = rng.choice([{"echo": rand_object(1, 3)}, {"sum": rand_int()},
                             {"sum": rand_float()}, rand_object(1, 2)])
        rj = spaced(result)
        h = hashlib.sha256((exec_id + ":" + rj).encode("ascii")).hexdigest()
        lines.append("receipt\t%s\t%s\t%s" % (exec_id, rj, h))


def deep(n, close=True):
    return "[" * n + ("]" * n if close else "")


def deep_obj(n, close=True):
    return '{"a":' * n + "1" + ("}" * n if close else "")


def reject_vectors():
    lines.append("# rejections: 400 beats 422 (SPEC 2)")
    U, N, B = "unsupported_json", "not_an_object", "invalid_json"
    cases = [
        ('{"a":1,"a":2}', 422, U, "duplicate key"),
        ('{"a":{"b":1,"b":1}}', 422, U, "nested duplicate key"),
        ('{"\\u0061":1,"a":2}', 422, U, "duplicate key spelled differently"),
        ('{"a":1e400}', 422, U, "real overflow"),
        ('{"a":-1e400}', 422, U, "negative real overflow"),
        ('{"a":1.8e308}', 422, U, "just past DBL_MAX"),
        ('{"a":9223372036854775808}', 422, U, "INT64_MAX+1"),
        ('{"a":-9223372036854775809}', 422, U, "INT64_MIN-1"),
        ('{"a":123456789012345678901234567890}', 422, U, "big integer"),
        ('{"a":"\\ud800"}', 422, U, "lone high surrogate"),
        ('{"a":"\\udc00"}', 422, U, "lone low surrogate"),
        ('{"a":"\\ud800\\u0041"}', 422, U, "high surrogate + non-low"),
        ('{"a":"\\udc00\\ud800"}', 422, U, "reversed pair"),
        ('{"a":"\\ud800x"}', 422, U, "high surrogate then text"),
        ('{"\\ud800":1}', 422, U, "lone surrogate in key"),
        ('{"a\\u0000":1}', 422, U, "NUL in key"),
        ('{"\\u0000":1}', 422, U, "NUL key"),
        (deep_obj(65), 422, U, "depth 65"),
        ('{"a":' + deep(64) + "}", 422, U, "depth 65 via arrays"),
        (deep_obj(3000), 422, U, "depth 3000 (past jansson's own limit)"),
        (deep_obj(3000, close=False), 400, B, "depth 3000, unclosed"),
        (deep_obj(65, close=False), 400, B, "depth 65, unclosed"),
        (deep_obj(65) + "x", 400, B, "depth 65 then garbage"),
        (deep(65), 400, N, "depth 65 array"),
        ('{"a":NaN}', 400, B, "NaN"),
        ('{"a":Infinity}', 400, B, "Infinity"),
        ('{"a":-Infinity}', 400, B, "-Infinity"),
        ('{"a":1}\0', 400, B, "raw NUL after value"),
        ('{"a":"x\0"}', 400, B, "raw NUL in string"),
        ('{"a":1,"a":2,"b":"\0"}', 400, B, "raw NUL after duplicate"),
        (b'{"a":"\xff"}', 400, B, "invalid UTF-8 byte"),
        (b'{"a":"\xc0\xaf"}', 400, B, "overlong 2-byte"),
        (b'{"a":"\xe0\x80\xaf"}', 400, B, "overlong 3-byte"),
        (b'{"a":"\xf0\x80\x80\xaf"}', 400, B, "overlong 4-byte"),
        (b'{"a":"\xed\xa0\x80"}', 400, B, "UTF-8-encoded surrogate"),
        (b'{"a":"\xf4\x90\x80\x80"}', 400, B, "beyond U+10FFFF"),
        (b'{"a":"\xe2\x82"}', 400, B, "truncated sequence"),
        (b'{"a":"\x80"}', 400, B, "lone continuation byte"),
        (b'{"\xff":1}', 400, B, "invalid UTF-8 in key"),
        (b'\xef\xbb\xbf{}', 400, B, "UTF-8 BOM"),
        ('{"a":1,}', 400, B, "trailing comma"),
        ('[1,]', 400, B, "trailing comma in array"),
        ('', 400, B, "empty body"),
        ('   ', 400, B, "whitespace only"),
        (' \t\r\n', 400, B, "whitespace only, all kinds"),
        ('\f{}', 400, B, "form feed is not JSON whitespace"),
        ('\xa0{}', 400, B, "NBSP is not JSON whitespace"),
        ('[1]', 400, N, "array"),
        ('[]', 400, N, "empty array"),
        ('"x"', 400, N, "string"),
        ('1', 400, N, "number"),
        ('-0.0', 400, N, "number"),
        ('true', 400, N, "true"),
        ('null', 400, N, "null"),
        (' [ ] ', 400, N, "array with whitespace"),
        ('[{"a":1,"a":2}]', 400, N, "duplicate inside a non-object"),
        ('[1e400]', 400, N, "overflow inside a non-object"),
        ('["\\ud800"]', 400, N, "lone surrogate inside a non-object"),
        ('{"a":1} {"b":2}', 400, B, "two documents"),
        ('{"a":1}}', 400, B, "extra brace"),
        ('{"a":1} x', 400, B, "trailing garbage"),
        ('{"a":01}', 400, B, "leading zero"),
        ('{"a":-01}', 400, B, "negative leading zero"),
        ('{"a":1.}', 400, B, "bare dot"),
        ('{"a":.5}', 400, B, "no integer part"),
        ('{"a":+1}', 400, B, "plus sign"),
        ('{"a":1e}', 400, B, "empty exponent"),
        ('{"a":0x10}', 400, B, "hex"),
        ('{"a":-}', 400, B, "lone minus"),
        ('{"a":"\\x41"}', 400, B, "bad escape"),
        ('{"a":"\\u12"}', 400, B, "short \\u"),
        ('{"a":"\\u12G4"}', 400, B, "non-hex \\u"),
        ('{"a":"\\ud800\\u12"}', 400, B, "surrogate then short \\u"),
        ('{"a":"\t"}', 400, B, "raw tab in string"),
        ('{"a":"\n"}', 400, B, "raw newline in string"),
        ('{"a":"\x1f"}', 400, B, "raw control char"),
        ("{'a':1}", 400, B, "single quotes"),
        ('{a:1}', 400, B, "bare key"),
        ('{"a" 1}', 400, B, "missing colon"),
        ('{"a":1 "b":2}', 400, B, "missing comma"),
        ('{"a":tru}', 400, B, "truncated literal"),
        ('{"a":truex}', 400, B, "literal with tail"),
        ('{"a":True}', 400, B, "Python literal"),
        ('{"a":[1,2}', 400, B, "mismatched bracket"),
        ('{"a":"x}', 400, B, "unterminated string"),
        ('{"a":1', 400, B, "premature end"),
        ('{', 400, B, "lone brace"),
        ('/*c*/{}', 400, B, "comment"),
        ('{"a":1}//', 400, B, "trailing comment"),
        # a 422 found first must not hide a 400 later in the body
        ('{"a":1,"a":2} x', 400, B, "duplicate, then garbage"),
        ('{"a":1,"a":2', 400, B, "duplicate, then premature end"),
        ('{"a":1,"a":2,}', 400, B, "duplicate, then trailing comma"),
        ('{"a":1,"a":NaN}', 400, B, "duplicate, then NaN"),
        (b'{"a":1,"a":2,"b":"\xff"}', 400, B, "duplicate, then invalid UTF-8"),
        ('{"a":1e400,', 400, B, "overflow, then premature end"),
        ('{"a":1e400,"b":"\\x"}', 400, B, "overflow, then bad escape"),
        ('{"a":99999999999999999999] ', 400, B, "big int, then bad bracket"),
        ('{"a":"\\ud800","b":}', 400, B, "lone surrogate, then missing value"),
        ('{"a\\u0000":1,x}', 400, B, "NUL key, then garbage"),
        ('{"a":1,"a":2}[', 400, B, "duplicate, then second document"),
        ('[{"a":1,"a":2}', 400, B, "duplicate inside unclosed array"),
    ]
    for raw, status, code, why in cases:
        emit_reject(raw, status, code, why)
    lines.append("# generated duplicates (422) and duplicates followed by a syntax error (400)")
    for _ in range(60):
        v = rand_object(1, 3)
        v["dup"] = 1
        text = spell(v)
        body = text[:-1] + (',' if len(v) else '') + '"dup":2}'
        emit_reject(body, 422, U, "generated duplicate")
        emit_reject(body[:-1], 400, B, "generated duplicate, truncated")


def main():
    lines.append("# canon vectors for SPEC 3.3, written by tests/gen_canon_vectors.py; do not edit")
    lines.append("# python %s, seed %#x" % (sys.version.split()[0], SEED))
    hand_values()
    float_sweeps()
    random_values(1200)
    hash_vectors(300)
    receipt_vectors(200)
    reject_vectors()
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if "--check" in sys.argv:
        with open(OUT, "rb") as f:
            old = f.read()
        # the python version comment may differ; compare the rest
        strip = lambda b: b"\n".join(l for l in b.split(b"\n") if not l.startswith(b"# python"))
        if strip(old) != strip(data):
            print("%s is out of date" % OUT, file=sys.stderr)
            return 1
        return 0
    with open(OUT, "wb") as f:
        f.write(data)
    print("wrote %s: %d lines, %d bytes" % (OUT, len(lines), len(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
