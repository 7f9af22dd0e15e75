#!/usr/bin/env python3
"""oe_verify.py - an independent offline verifier for OpenExec receipt logs.

Written from the documents, not from OpenExec's C code, so the two can be
checked against each other (SPEC 5.2, RFC 6962 section 2.1, RFC 9162
sections 2.1.3-2.1.4, C2SP tlog-checkpoint and signed-note).  Standard
library plus python3-cryptography, nothing else.

What it checks:

  leaf hash   SHA-256(0x00 || canon(receipt)), canon(x) =
              json.dumps(x, sort_keys=True, separators=(",", ":"))
  node hash   SHA-256(0x01 || left || right)
  tree        RFC 6962 MTH: split at the largest power of two < n;
              the empty tree's root is SHA-256("")
  checkpoint  ORIGIN\\nSIZE\\nBASE64(ROOT)\\n, a blank line, then signature
              lines "\\u2014 NAME BASE64(KEYHASH4 || SIG)\\n"; the one that
              counts is named ORIGIN with KEYHASH4 =
              SHA-256(ORIGIN || 0x0A || 0x01 || 32-byte public key)[:4] and
              SIG an Ed25519 signature over the three body lines.  Lines of
              other keys (a witness's cosignature) are ignored, as C2SP says.

Command line (the same interface as `openexec verify-log/verify-receipt`):

  oe_verify.py verify-log --key PUB.pem --checkpoint CP FILE.jsonl
      FILE.jsonl is an export (GET /receipts), one receipt per line.  Line k
      (from 1) must be a JSON object with seq k-1 and log = the checkpoint's
      origin; there must be exactly SIZE lines; their Merkle root must be the
      checkpoint's root.
  oe_verify.py verify-receipt --key PUB.pem FILE.json
      FILE.json is a signed receipt {"receipt","inclusion","checkpoint"}
      (GET /receipts/{id}) or an answer that carries one as "signed_receipt"
      (POST /execute).  Checks the checkpoint's signature, receipt.log =
      origin, receipt.seq = inclusion.index, inclusion.size = checkpoint
      size, and the inclusion proof of the receipt's leaf against the root.
  oe_verify.py consistency --key PUB.pem --old CP1 --new CP2 PROOF.json
      PROOF.json is {"hashes":[...]} (GET /log/consistency?old=M&new=N).
      Both checkpoints must be signed, of the same log, and the proof must
      show CP1's tree is a prefix of CP2's (RFC 9162 2.1.4.2).

Prints "ok" and exits 0 when everything holds; otherwise prints one line
naming the first problem to stderr and exits 1 (2: usage error).

As a module (tests/e2e/test_receipts.py imports it): leaf_hash, node_hash,
merkle_root, inclusion_path, consistency_path, verify_inclusion,
verify_consistency, canon, key_hash, load_public_key, sign_checkpoint,
parse_checkpoint, verify_log, verify_signed_receipt,
verify_consistency_proof; failures raise VerifyError.
"""

import argparse
import base64
import hashlib
import json
import re
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

EM_DASH = "\u2014"
HASH_LEN = 32
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
SIGNED_RECEIPT_KEYS = {"receipt", "inclusion", "checkpoint"}
INCLUSION_KEYS = {"size", "index", "hashes"}
# SPEC 5.2: a receipt's fields, each with the JSON types it may have.
RECEIPT_FIELDS = {"v": (int,), "log": (str,), "seq": (int,), "exec_id": (str,),
                  "time": (str,), "action": (str,), "action_hash": (str,),
                  "nonce_sha256": (str,), "approval_id": (str, type(None)),
                  "outcome": (str,), "status": (int,), "result_sha256": (str, type(None)),
                  "error": (str, type(None))}
OUTCOMES = {"executed", "replayed", "denied", "rejected", "failed", "resolved"}


class VerifyError(Exception):
    """A verification failed; str() is the one-line reason."""


# ---------------------------------------------------------------- Merkle tree
# RFC 6962 section 2.1 (the tree, PATH, PROOF) and RFC 9162 sections
# 2.1.3.2 and 2.1.4.2 (the verification algorithms), transcribed.

def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n):
    """The largest power of two smaller than n (n >= 2)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def merkle_root(leaf_hashes):
    """MTH over a list of leaf hashes, without recursion (logs can be long):
    a stack of (size, hash) of perfect subtrees, merged as leaves arrive,
    then folded from the right, which is the same tree as RFC 6962's
    recursive definition."""
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    stack = []
    for h in leaf_hashes:
        size = 1
        while stack and stack[-1][0] == size:
            s, left = stack.pop()
            h, size = node_hash(left, h), size + s
        stack.append((size, h))
    root = stack.pop()[1]
    while stack:
        root = node_hash(stack.pop()[1], root)
    return root


def inclusion_path(index, leaf_hashes):
    """RFC 6962 2.1.1 PATH(m, D[n]) for m = index, as a list of hashes."""
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError("index out of range")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return inclusion_path(index, leaf_hashes[:k]) + [merkle_root(leaf_hashes[k:])]
    return inclusion_path(index - k, leaf_hashes[k:]) + [merkle_root(leaf_hashes[:k])]


def consistency_path(m, leaf_hashes):
    """RFC 6962 2.1.2 PROOF(m, D[n]) for 0 < m <= n."""
    n = len(leaf_hashes)
    if not 0 < m <= n:
        raise ValueError("sizes out of range")

    def subproof(m, d, b):
        n = len(d)
        if m == n:
            return [] if b else [merkle_root(d)]
        k = _split(n)
        if m <= k:
            return subproof(m, d[:k], b) + [merkle_root(d[k:])]
        return subproof(m - k, d[k:], False) + [merkle_root(d[:k])]

    return subproof(m, leaf_hashes, True)


def verify_inclusion(leaf, index, size, path, root):
    """RFC 9162 2.1.3.2.  True iff path proves leaf (a leaf hash) at index
    in the tree of the given size with the given root."""
    if not (isinstance(index, int) and isinstance(size, int)) or not 0 <= index < size:
        return False
    if any(len(p) != HASH_LEN for p in path) or len(root) != HASH_LEN:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(size1, size2, proof, root1, root2):
    """RFC 9162 2.1.4.2, plus the trivial cases it leaves out: a proof from
    the empty tree, and from a tree to itself, is the empty list."""
    if not 0 <= size1 <= size2:
        return False
    if any(len(p) != HASH_LEN for p in proof):
        return False
    if size1 == 0:
        return proof == [] and root1 == hashlib.sha256(b"").digest()
    if size1 == size2:
        return proof == [] and root1 == root2
    if not proof:
        return False
    if size1 & (size1 - 1) == 0:  # an exact power of 2
        proof = [root1] + list(proof)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root1 and sr == root2 and sn == 0


# ---------------------------------------------------------------- JSON

def _reject_constant(name):
    raise ValueError("%s is not JSON" % name)


def _no_duplicates(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError("duplicate key %r" % k)
        obj[k] = v
    return obj


def _check_values(v):
    """Values canon could not reproduce byte for byte in every
    implementation (SPEC 3.3): lone surrogates, integers beyond int64."""
    if isinstance(v, str):
        if any(0xD800 <= ord(c) <= 0xDFFF for c in v):
            raise ValueError("lone surrogate in a string")
    elif isinstance(v, bool) or v is None or isinstance(v, float):
        pass
    elif isinstance(v, int):
        if not INT64_MIN <= v <= INT64_MAX:
            raise ValueError("integer outside int64")
    elif isinstance(v, list):
        for x in v:
            _check_values(x)
    elif isinstance(v, dict):
        for k, x in v.items():
            _check_values(k)
            _check_values(x)


def parse_json(text):
    """json.loads, but strict: no duplicate keys, no NaN/Infinity, no lone
    surrogates or integers outside int64.  Raises ValueError."""
    obj = json.loads(text, object_pairs_hook=_no_duplicates,
                     parse_constant=_reject_constant)
    _check_values(obj)
    return obj


def canon(obj):
    """SPEC 3.3 canonical JSON, as bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def receipt_leaf_hash(receipt):
    return leaf_hash(canon(receipt))


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def receipt_shape_problem(obj):
    """Why a log entry (a dict) is not shaped as a receipt, or None."""
    for name, types in RECEIPT_FIELDS.items():
        if name not in obj:
            return 'no field "%s"' % name
        v = obj[name]
        if isinstance(v, bool) or not isinstance(v, types):
            return 'field "%s" has the wrong type' % name
    if len(obj) != len(RECEIPT_FIELDS):
        return "fields that are not a receipt's: %s" % ", ".join(
            sorted(obj.keys() - RECEIPT_FIELDS.keys()))
    if obj["v"] != 1:
        return 'version "v" is not 1'
    if obj["outcome"] not in OUTCOMES:
        return 'unknown "outcome"'
    return None


# ---------------------------------------------------------------- keys, notes

def load_public_key(pem):
    """The raw 32-byte Ed25519 public key of an SPKI PEM (str or bytes)."""
    if isinstance(pem, str):
        pem = pem.encode()
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as e:
        raise VerifyError("not a PEM public key: %s" % e)
    if not isinstance(key, Ed25519PublicKey):
        raise VerifyError("not an Ed25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_hash(name, pub_raw):
    """C2SP signed-note key ID of an Ed25519 key (algorithm byte 0x01)."""
    return hashlib.sha256(name.encode() + b"\n\x01" + pub_raw).digest()[:4]


def key_id(pub_raw):
    """SPEC 5.2 key_id: the first 16 hex digits of SHA-256(public key)."""
    return hashlib.sha256(pub_raw).hexdigest()[:16]


def _b64(s, what, length=None):
    """Strict standard base64: alphabet, padding, canonical (re-encodes to
    the same text)."""
    try:
        raw = base64.b64decode(s, validate=True)
    except (ValueError, TypeError):
        raise VerifyError("%s is not base64" % what)
    if base64.b64encode(raw).decode() != s:
        raise VerifyError("%s is not canonical base64" % what)
    if length is not None and len(raw) != length:
        raise VerifyError("%s has %d bytes, not %d" % (what, len(raw), length))
    return raw


def sign_note(text, name, priv):
    """A signed note of text (which ends in a newline) by an Ed25519
    private key object; used by tests to forge and re-sign checkpoints."""
    pub = priv.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)
    sig = priv.sign(text.encode())
    return "%s\n%s %s %s\n" % (text, EM_DASH, name,
                               base64.b64encode(key_hash(name, pub) + sig).decode())


def sign_checkpoint(origin, size, root, priv):
    return sign_note("%s\n%d\n%s\n" % (origin, size, base64.b64encode(root).decode()),
                     origin, priv)


def open_note(note, name, pub_raw):
    """Checks a C2SP signed note for a signature by (name, pub_raw); returns
    the signed text.  Signatures by other keys are ignored; a signature line
    with this key's name and hash that does not verify is an error."""
    if not isinstance(note, str):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise VerifyError("checkpoint is not UTF-8")
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise VerifyError("checkpoint contains a control character")
    if not note.endswith("\n"):
        raise VerifyError("checkpoint does not end with a newline")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise VerifyError("checkpoint has no blank line before its signatures")
    text, sigs = note[:cut + 1], note[cut + 2:]
    want = key_hash(name, pub_raw)
    pub = Ed25519PublicKey.from_public_bytes(pub_raw)
    found = False
    for line in sigs[:-1].split("\n"):
        m = re.fullmatch(EM_DASH + r" (\S+) (\S+)", line)
        if not m:
            raise VerifyError("malformed signature line %r" % line)
        blob = _b64(m.group(2), "signature")
        if len(blob) < 5:
            raise VerifyError("signature line %r is too short" % line)
        if m.group(1) != name or blob[:4] != want:
            continue  # another key: a witness, or another log
        if len(blob) != 4 + 64:
            raise VerifyError("signature by %s is not 64 bytes" % name)
        try:
            pub.verify(blob[4:], text.encode())
        except InvalidSignature:
            raise VerifyError("checkpoint signature by %s does not verify" % name)
        found = True
    if not found:
        raise VerifyError("checkpoint carries no signature by this key "
                          "(expected key hash %s for %r)" % (want.hex(), name))
    return text


class Checkpoint:
    def __init__(self, origin, size, root, note):
        self.origin, self.size, self.root, self.note = origin, size, root, note

    def __repr__(self):
        return "Checkpoint(%r, %d, %s)" % (self.origin, self.size, self.root.hex())


def parse_checkpoint(note, pub_raw):
    """Verifies a C2SP tlog-checkpoint signed by pub_raw under its own
    origin (SPEC 5.2) and returns it as a Checkpoint."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise VerifyError("checkpoint is not UTF-8")
    origin = note.split("\n", 1)[0]
    if not origin:
        raise VerifyError("checkpoint has an empty origin line")
    text = open_note(note, origin, pub_raw)
    lines = text[:-1].split("\n")
    if len(lines) != 3:
        raise VerifyError("checkpoint body has %d lines, not 3 (origin, size, root)"
                          % len(lines))
    if not re.fullmatch(r"0|[1-9][0-9]{0,18}", lines[1]) or int(lines[1]) > INT64_MAX:
        raise VerifyError("checkpoint size %r is not a decimal number" % lines[1])
    root = _b64(lines[2], "checkpoint root hash", HASH_LEN)
    if lines[1] == "0" and root != hashlib.sha256(b"").digest():
        raise VerifyError("a checkpoint of size 0 must carry the empty tree's root")
    return Checkpoint(origin, int(lines[1]), root, note)


# ---------------------------------------------------------------- verifiers

def verify_log(pub_raw, checkpoint_note, data):
    """Verifies an export (bytes, JSON lines) against a checkpoint; returns
    the Checkpoint.  The first problem raises VerifyError naming the line
    (from 1) and the seq it should have had (line - 1)."""
    cp = parse_checkpoint(checkpoint_note, pub_raw)
    if isinstance(data, str):
        data = data.encode()
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    hashes = []
    for i, raw in enumerate(lines):
        where = "line %d (seq %d)" % (i + 1, i)
        if i >= cp.size:
            raise VerifyError("%s: the export has more entries than the "
                              "checkpoint's size %d" % (where, cp.size))
        try:
            obj = parse_json(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise VerifyError("%s: not a JSON receipt: %s" % (where, e))
        if not isinstance(obj, dict):
            raise VerifyError("%s: not a JSON object" % where)
        seq = obj.get("seq")
        if not _is_int(seq):
            raise VerifyError("%s: seq is missing or not an integer" % where)
        if seq != i:
            raise VerifyError("%s: has seq %d (entry missing, inserted or out "
                              "of order)" % (where, seq))
        if obj.get("log") != cp.origin:
            raise VerifyError("%s: log is %r, not the checkpoint's origin %r"
                              % (where, obj.get("log"), cp.origin))
        problem = receipt_shape_problem(obj)
        if problem:
            raise VerifyError("%s: not a receipt: %s" % (where, problem))
        hashes.append(receipt_leaf_hash(obj))
    if len(hashes) < cp.size:
        raise VerifyError("line %d (seq %d): missing: the export ends after %d "
                          "entries, the checkpoint has %d"
                          % (len(hashes) + 1, len(hashes), len(hashes), cp.size))
    root = merkle_root(hashes)
    if root != cp.root:
        raise VerifyError("the Merkle root of the %d entries (%s) is not the "
                          "checkpoint's (%s): an entry was altered"
                          % (len(hashes), base64.b64encode(root).decode(),
                             base64.b64encode(cp.root).decode()))
    return cp


def verify_signed_receipt(pub_raw, obj):
    """Verifies a signed receipt (a dict), or an answer carrying one as
    "signed_receipt"; returns (receipt, Checkpoint)."""
    if isinstance(obj, dict) and "signed_receipt" in obj:
        obj = obj["signed_receipt"]
    if not isinstance(obj, dict):
        raise VerifyError("signed receipt is not a JSON object")
    missing = SIGNED_RECEIPT_KEYS - obj.keys()
    if missing:
        raise VerifyError("signed receipt has no %s" % ", ".join(sorted(missing)))
    extra = obj.keys() - SIGNED_RECEIPT_KEYS
    if extra:
        raise VerifyError("signed receipt has unexpected fields %s" % ", ".join(sorted(extra)))
    receipt, inc, note = obj["receipt"], obj["inclusion"], obj["checkpoint"]
    if not isinstance(note, str):
        raise VerifyError("checkpoint is not a string")
    cp = parse_checkpoint(note, pub_raw)
    if not isinstance(receipt, dict):
        raise VerifyError("receipt is not a JSON object")
    if receipt.get("log") != cp.origin:
        raise VerifyError("receipt.log %r is not the checkpoint's origin %r"
                          % (receipt.get("log"), cp.origin))
    if not isinstance(inc, dict) or inc.keys() != INCLUSION_KEYS:
        raise VerifyError("inclusion is not {size, index, hashes}")
    size, index, hashes = inc["size"], inc["index"], inc["hashes"]
    if not (_is_int(size) and _is_int(index) and isinstance(hashes, list)):
        raise VerifyError("inclusion size/index/hashes have the wrong types")
    if not _is_int(receipt.get("seq")) or receipt["seq"] != index:
        raise VerifyError("receipt.seq %r is not inclusion.index %r"
                          % (receipt.get("seq"), index))
    if size != cp.size:
        raise VerifyError("inclusion.size %d is not the checkpoint's size %d"
                          % (size, cp.size))
    if not 0 <= index < size:
        raise VerifyError("inclusion.index %d is outside a tree of size %d" % (index, size))
    path = []
    for n, h in enumerate(hashes):
        if not isinstance(h, str):
            raise VerifyError("inclusion.hashes[%d] is not a string" % n)
        path.append(_b64(h, "inclusion.hashes[%d]" % n, HASH_LEN))
    if not verify_inclusion(receipt_leaf_hash(receipt), index, size, path, cp.root):
        raise VerifyError("the inclusion proof does not lead from receipt seq %d "
                          "to the checkpoint's root" % index)
    return receipt, cp


def verify_consistency_proof(pub_raw, old_note, new_note, proof_obj):
    """Verifies {"hashes":[...]} between two checkpoints of one log;
    returns (old, new) Checkpoints."""
    old = parse_checkpoint(old_note, pub_raw)
    new = parse_checkpoint(new_note, pub_raw)
    if old.origin != new.origin:
        raise VerifyError("the checkpoints are of different logs (%r, %r)"
                          % (old.origin, new.origin))
    if old.size > new.size:
        raise VerifyError("the old checkpoint (size %d) is larger than the new (size %d)"
                          % (old.size, new.size))
    if isinstance(proof_obj, dict):
        proof_obj = proof_obj.get("hashes")
    if not isinstance(proof_obj, list) or not all(isinstance(h, str) for h in proof_obj):
        raise VerifyError("consistency proof is not {\"hashes\": [base64...]}")
    proof = [_b64(h, "consistency hashes[%d]" % n, HASH_LEN) for n, h in enumerate(proof_obj)]
    if not verify_consistency(old.size, new.size, proof, old.root, new.root):
        raise VerifyError("the consistency proof does not show the tree of size %d "
                          "is a prefix of the tree of size %d" % (old.size, new.size))
    return old, new


# ---------------------------------------------------------------- command line

def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _run(a):
    pub = load_public_key(_read(a.key))
    if a.cmd == "verify-log":
        verify_log(pub, _read(a.checkpoint), _read(a.file))
    elif a.cmd == "verify-receipt":
        try:
            obj = parse_json(_read(a.file).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise VerifyError("%s is not JSON: %s" % (a.file, e))
        verify_signed_receipt(pub, obj)
    else:
        try:
            proof = parse_json(_read(a.file).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise VerifyError("%s is not JSON: %s" % (a.file, e))
        verify_consistency_proof(pub, _read(a.old), _read(a.new), proof)


def main(argv=None):
    p = argparse.ArgumentParser(prog="oe_verify.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("verify-log", help="an export against a checkpoint")
    s.add_argument("--key", required=True)
    s.add_argument("--checkpoint", required=True)
    s.add_argument("file")
    s = sub.add_parser("verify-receipt", help="one signed receipt")
    s.add_argument("--key", required=True)
    s.add_argument("file")
    s = sub.add_parser("consistency", help="a consistency proof between two checkpoints")
    s.add_argument("--key", required=True)
    s.add_argument("--old", required=True)
    s.add_argument("--new", required=True)
    s.add_argument("file")
    a = p.parse_args(argv)
    try:
        _run(a)
    except VerifyError as e:
        print("oe_verify.py: %s: %s" % (a.cmd, e), file=sys.stderr)
        return 1
    except OSError as e:
        print("oe_verify.py: %s: %s: %s" % (a.cmd, e.filename, e.strerror), file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
