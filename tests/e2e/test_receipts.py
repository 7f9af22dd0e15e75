"""Receipts in a signed Merkle transparency log (SPEC 5.2), end to end.

Three verifiers look at every signed receipt the real server hands out:
POST /receipts/verify, the independent python verifier tests/tools/oe_verify.py
(written from SPEC 5.2, RFC 6962/9162 and C2SP, not from our C code) and
`openexec verify-receipt` / `verify-log`.  The python Merkle code is first
checked against the Certificate Transparency known-answer vectors and the
Go signed-note example, so a bug shared by the server and oe_verify.py cannot
hide behind their agreement.

Covered: one receipt per attempt with the outcome/status/error/exec_id rules
(executed, replayed, denied by allow-list and by approval, rejected), none
for bodies refused before parsing; the key, checkpoint, per-id, export and
consistency endpoints with their ranges; concurrency (one tree, no gaps, no
two roots for one size); restarts, the key file, OPENEXEC_RECEIPT_KEY,
OPENEXEC_LOG_ORIGIN, a restored backup, a second log in the same database;
and tampering: each alteration of issue 6 caught by both offline verifiers,
which must agree on every file.

Runs on PostgreSQL too (OE_TEST_PG_URL): nothing here reads the database,
except the SQLite schema tests (SqlitePackedKeyTests, the upgrade of
KeyAndRestartTests), which rewrite it into older layouts.
"""

import base64
import copy
import datetime
import functools
import hashlib
import http.client
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

import harness

sys.path.insert(0, os.path.join(harness.SOURCE_DIR, "tests", "tools"))
import clawshield  # noqa: E402
import oe_verify as ov  # noqa: E402

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

OE_VERIFY = os.path.join(harness.SOURCE_DIR, "tests", "tools", "oe_verify.py")
PG = bool(os.environ.get("OE_TEST_PG_URL"))

RECEIPT_KEYS = ["v", "log", "seq", "exec_id", "time", "action", "action_hash",
                "nonce_sha256", "approval_id", "outcome", "status",
                "result_sha256", "error"]
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")
UUID4_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")


def h(x):
    return bytes.fromhex(x)


def sha256_hex(b):
    return hashlib.sha256(b if isinstance(b, bytes) else b.encode()).hexdigest()


def b64(b):
    return base64.b64encode(b).decode()


@functools.lru_cache(maxsize=None)
def c_verify_available():
    """True when build/openexec has the offline verifiers (SPEC 5.2)."""
    r = harness.run_cli(["--help"])
    text = (r.stdout + r.stderr).decode(errors="replace")
    return "verify-log" in text and "verify-receipt" in text


# --------------------------------------------------------------------------
# Known answers.  Source: google/certificate-transparency,
# cpp/merkletree/merkle_tree_test.cc (kInputs, kSHA256Roots, kSHA256Paths,
# kSHA256Proofs, and the mutations of VerifierCheck and
# VerifierConsistencyCheck), the same vectors transparency-dev/merkle ships in
# testonly/constants.go.  Paths there number leaves from 1; here from 0.

CT_LEAVES = [h(x) for x in ("", "00", "10", "2021", "3031", "40414243",
                            "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
CT_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
CT_ROOTS = ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]
CT_PATHS = [  # (index from 0, tree size, path)
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CT_PROOFS = [  # (old size, new size, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
# transparency-dev/merkle rfc6962/rfc6962_test.go, TestRFC6962Hasher.
RFC6962_LEAF_L123456 = "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
RFC6962_NODE_N123_N456 = "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
# golang.org/x/mod/sumdb/note, the package documentation's example note
# (the C2SP signed-note format): key "PeterNeumann+c74f20a3+ARpc...",
# private key "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALV...".
NOTE_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
NOTE_PUB = base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")[1:]
NOTE_TEXT = ("If you think cryptography is the answer to your problem,\n"
             "then you don't know what your problem is.\n")
NOTE_SIGNED = NOTE_TEXT + ("\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAc"
                           "ElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")


def reference_root(leaves):
    """RFC 6962 MTH straight from its recursive definition (leaf data)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return ov.leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return ov.node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


class MerkleVectorTests(unittest.TestCase):
    """oe_verify.py's Merkle and note code against published answers."""

    def test_ct_roots_for_sizes_0_to_8(self):
        hashes = [ov.leaf_hash(x) for x in CT_LEAVES]
        self.assertEqual(ov.merkle_root([]).hex(), CT_EMPTY)
        for n in range(1, 9):
            self.assertEqual(ov.merkle_root(hashes[:n]).hex(), CT_ROOTS[n - 1], n)

    def test_rfc6962_hasher_vectors(self):
        self.assertEqual(ov.leaf_hash(b"").hex(), CT_ROOTS[0])
        self.assertEqual(ov.leaf_hash(b"L123456").hex(), RFC6962_LEAF_L123456)
        self.assertEqual(ov.node_hash(b"N123", b"N456").hex(), RFC6962_NODE_N123_N456)

    def test_iterative_root_equals_recursive_definition(self):
        leaves = [os.urandom(i % 7) for i in range(300)]
        hashes = [ov.leaf_hash(x) for x in leaves]
        for n in list(range(0, 70)) + [127, 128, 129, 255, 256, 257, 300]:
            self.assertEqual(ov.merkle_root(hashes[:n]), reference_root(leaves[:n]), n)

    def test_ct_inclusion_paths(self):
        hashes = [ov.leaf_hash(x) for x in CT_LEAVES]
        for index, size, path in CT_PATHS:
            want = [h(x) for x in path]
            self.assertEqual(ov.inclusion_path(index, hashes[:size]), want, (index, size))
            self.assertTrue(ov.verify_inclusion(hashes[index], index, size, want,
                                                h(CT_ROOTS[size - 1])), (index, size))

    def test_every_inclusion_path_verifies_and_ct_mutations_fail(self):
        hashes = [ov.leaf_hash(bytes([i])) for i in range(80)]
        roots = [ov.merkle_root(hashes[:n]) for n in range(81)]
        empty = h(CT_EMPTY)

        def true_statement(i, size, path, root, leaf):
            return (0 <= i < size <= 80 and leaf == hashes[i] and root == roots[size]
                    and path == ov.inclusion_path(i, hashes[:size]))

        for size in range(1, 41):
            root = roots[size]
            for i in range(size):
                path = ov.inclusion_path(i, hashes[:size])
                leaf = hashes[i]
                self.assertTrue(ov.verify_inclusion(leaf, i, size, path, root), (i, size))
                bad = [(i - 1, size, path, root, leaf), (i + 1, size, path, root, leaf),
                       (i ^ 2, size, path, root, leaf), (i, size * 2, path, root, leaf),
                       (i, size // 2, path, root, leaf),
                       (i, size, path, root, ov.leaf_hash(b"WrongLeaf")),
                       (i, size, path, empty, leaf),
                       (i, size, path + [b""], root, leaf), (i, size, path + [root], root, leaf),
                       (i, size, [b""] + path, root, leaf), (i, size, [root] + path, root, leaf)]
                if path:
                    bad.append((i, size, path[:-1], root, leaf))
                for j in range(len(path)):
                    wrong = list(path)
                    wrong[j] = empty
                    bad.append((i, size, wrong, root, leaf))
                for case in bad:
                    if not true_statement(*case):
                        self.assertFalse(ov.verify_inclusion(case[4], *case[:4]),
                                         (i, size, case[:2]))
        for index, size in ((0, 0), (1, 0), (2, 1)):
            self.assertFalse(ov.verify_inclusion(empty, index, size, [], empty))

    def test_ct_consistency_proofs(self):
        hashes = [ov.leaf_hash(x) for x in CT_LEAVES]
        for m, n, proof in CT_PROOFS:
            want = [h(x) for x in proof]
            self.assertEqual(ov.consistency_path(m, hashes[:n]), want, (m, n))
            self.assertTrue(ov.verify_consistency(m, n, want, h(CT_ROOTS[m - 1]),
                                                  h(CT_ROOTS[n - 1])), (m, n))

    def test_every_consistency_proof_verifies_and_ct_mutations_fail(self):
        hashes = [ov.leaf_hash(bytes([i])) for i in range(40)]
        empty = h(CT_EMPTY)
        roots = [ov.merkle_root(hashes[:n]) for n in range(41)]
        self.assertTrue(ov.verify_consistency(0, 0, [], roots[0], roots[0]))
        self.assertTrue(ov.verify_consistency(0, 5, [], roots[0], roots[5]))
        self.assertFalse(ov.verify_consistency(0, 5, [], roots[1], roots[5]))
        self.assertFalse(ov.verify_consistency(1, 0, [], roots[1], roots[0]))
        self.assertFalse(ov.verify_consistency(1, 2, [], roots[1], roots[2]))
        self.assertFalse(ov.verify_consistency(1, 1, [], roots[1], roots[2]))
        self.assertFalse(ov.verify_consistency(1, 1, [empty], roots[1], roots[1]))
        for n in range(1, 41):
            for m in range(1, n + 1):
                proof = ov.consistency_path(m, hashes[:n])
                r1, r2 = roots[m], roots[n]
                self.assertTrue(ov.verify_consistency(m, n, proof, r1, r2), (m, n))
                if not proof:
                    continue
                bad = [(m - 1, n, proof, r1, r2), (m + 1, n, proof, r1, r2),
                       (m ^ 2, n, proof, r1, r2), (m, n * 2, proof, r1, r2),
                       (m, n // 2, proof, r1, r2), (m, n, proof, r1, b"WrongRoot"),
                       (m, n, proof, b"WrongRoot", r2), (m, n, proof, r2, r1),
                       (m, n, [], r1, r2), (m, n, proof + [b""], r1, r2),
                       (m, n, proof + [proof[-1]], r1, r2), (m, n, proof[:-1], r1, r2),
                       (m, n, [b""] + proof, r1, r2), (m, n, [proof[0]] + proof, r1, r2)]
                for j in range(len(proof)):
                    wrong = list(proof)
                    wrong[j] = empty
                    bad.append((m, n, wrong, r1, r2))
                for (bm, bn, bp, b1, b2) in bad:
                    if 0 < bm <= bn <= 40 and b1 == roots[bm] and b2 == roots[bn] and \
                            bp == ov.consistency_path(bm, hashes[:bn]):
                        continue  # the mutation happens to be a true statement
                    self.assertFalse(ov.verify_consistency(bm, bn, bp, b1, b2), (m, n, bm, bn))

    def test_signed_note_vector(self):
        priv = Ed25519PrivateKey.from_private_bytes(NOTE_SEED)
        self.assertEqual(ov.key_hash("PeterNeumann", NOTE_PUB).hex(), "c74f20a3")
        self.assertEqual(ov.sign_note(NOTE_TEXT, "PeterNeumann", priv), NOTE_SIGNED)
        self.assertEqual(ov.open_note(NOTE_SIGNED, "PeterNeumann", NOTE_PUB), NOTE_TEXT)
        with self.assertRaises(ov.VerifyError):
            ov.open_note(NOTE_SIGNED.replace("cryptography", "cryptographY"),
                         "PeterNeumann", NOTE_PUB)
        with self.assertRaises(ov.VerifyError):
            ov.open_note(NOTE_SIGNED, "PeterNeumann",
                         Ed25519PrivateKey.generate().public_key().public_bytes(
                             serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    def test_checkpoint_parsing_is_strict(self):
        priv = Ed25519PrivateKey.generate()
        pub = priv.public_key().public_bytes(serialization.Encoding.Raw,
                                             serialization.PublicFormat.Raw)
        root = h(CT_ROOTS[7])
        good = ov.sign_checkpoint("example/log", 8, root, priv)
        cp = ov.parse_checkpoint(good, pub)
        self.assertEqual((cp.origin, cp.size, cp.root), ("example/log", 8, root))
        # A witness's cosignature (another key) is ignored.
        other = Ed25519PrivateKey.generate()
        cosigned = good + ov.sign_note(good.split("\n\n")[0] + "\n", "witness", other) \
            .split("\n\n")[1]
        self.assertEqual(ov.parse_checkpoint(cosigned, pub).size, 8)
        bad_bodies = ["example/log\n08\n%s\n" % b64(root),
                      "example/log\n-1\n%s\n" % b64(root),
                      "example/log\n8\n%s\n" % b64(root[:31]),
                      "example/log\n8\n%s\nextension\n" % b64(root),
                      "example/log\n8\n%s\n" % b64(root).rstrip("="),
                      "example/log\n0\n%s\n" % b64(root)]
        for body in bad_bodies:
            note = ov.sign_note(body, "example/log", priv)
            with self.assertRaises(ov.VerifyError, msg=body):
                ov.parse_checkpoint(note, pub)
        for note in (good[:-1], good.replace("\u2014", "-"), good.replace("\n\n", "\n"),
                     good.split("\n\n")[0] + "\n\n", good.replace("\n8\n", "\n9\n"),
                     ov.sign_checkpoint("example/log", 8, root, other)):
            with self.assertRaises(ov.VerifyError, msg=repr(note)):
                ov.parse_checkpoint(note, pub)


# --------------------------------------------------------------------------
# Helpers over a running server.

class Server(harness.Server):
    """harness.Server that remembers the largest tree an /execute answer
    cited, so that checkpoint() can wait until GET /checkpoint has caught up
    (it may lag an answer: test_checkpoint_is_published_before_the_answer)."""
    high = 0

    def request(self, method, path, body=None, headers=None, timeout=30):
        r = super().request(method, path, body=body, headers=headers, timeout=timeout)
        if method == "POST" and path == "/execute":
            try:
                size = json.loads(r.body)["signed_receipt"]["inclusion"]["size"]
                self.high = max(self.high, size)
            except (ValueError, KeyError, TypeError):
                pass
        return r


def server_key(srv):
    k = srv.get("/receipts/key").json()
    return ov.load_public_key(k["public_key_pem"]), k


def checkpoint(srv, log=None):
    """GET /checkpoint; for the server's own log, once it covers every
    answer the test has seen (for at most 2 s)."""
    deadline = time.monotonic() + 2
    while True:
        r = srv.get("/checkpoint" + ("?log=" + log if log else ""))
        assert r.status == 200, r
        text = r.body.decode()
        if log or int(text.split("\n")[1]) >= getattr(srv, "high", 0) \
                or time.monotonic() > deadline:
            return text
        time.sleep(0.01)


def export(srv, frm=0, limit=10000, log=None):
    q = "/receipts?from=%d&limit=%d" % (frm, limit) + ("&log=" + log if log else "")
    r = srv.get(q)
    assert r.status == 200, r
    return r.body


def export_all(srv, log=None):
    out, frm = b"", 0
    while True:
        chunk = export(srv, frm, 10000, log)
        out += chunk
        n = chunk.count(b"\n")
        if n < 10000:
            return out
        frm += n


def key_file_path(srv):
    """Where SPEC 1 says the generated executor key lives."""
    if PG:
        return os.path.join(srv.dir, "openexec-receipt.key")
    return os.path.join(srv.dir, "openexec.db") + ".key"


class VerifierMixin:
    """Runs the three verifiers and the two command lines."""

    def tmpfile(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return path

    def run_py(self, args):
        r = subprocess.run([sys.executable, "-B", OE_VERIFY] + args, capture_output=True,
                           timeout=120)
        return r.returncode, (r.stdout + r.stderr).decode(errors="replace").strip()

    def run_c(self, args):
        if not c_verify_available():
            self.fail("openexec has no verify-log/verify-receipt yet (SPEC 5.2)")
        r = harness.run_cli(args, timeout=120)
        return r.returncode, (r.stdout + r.stderr).decode(errors="replace").strip()

    def both(self, args):
        """(python rc, message), (C rc, message) on the same files; they must agree."""
        py, c = self.run_py(args), self.run_c(args)
        self.assertNotIn("Traceback", py[1])
        self.assertEqual(py[0] == 0, c[0] == 0,
                         "the verifiers disagree on %s:\n python: %s\n C: %s" % (args, py, c))
        return py, c

    def pub_file(self, pem):
        return self.tmpfile("pub-%s.pem" % sha256_hex(pem)[:8], pem)

    def assert_receipt_verifies(self, srv, signed, pem):
        """POST /receipts/verify, oe_verify.py and openexec verify-receipt."""
        r = srv.post("/receipts/verify", {"signed_receipt": signed})
        self.assertEqual((r.status, r.json()), (200, {"valid": True}), r)
        ov.verify_signed_receipt(ov.load_public_key(pem), signed)
        path = self.tmpfile("sr.json", json.dumps(signed))
        py, c = self.both(["verify-receipt", "--key", self.pub_file(pem), path])
        self.assertEqual(py[0], 0, py)
        self.assertEqual(c[0], 0, c)

    def assert_receipt_rejected(self, srv, signed, pem, what):
        r = srv.post("/receipts/verify", {"signed_receipt": signed})
        self.assertEqual((r.status, r.json()), (200, {"valid": False}), (what, r))
        with self.assertRaises(ov.VerifyError, msg=what):
            ov.verify_signed_receipt(ov.load_public_key(pem), signed)
        path = self.tmpfile("bad.json", json.dumps(signed))
        py, c = self.both(["verify-receipt", "--key", self.pub_file(pem), path])
        self.assertEqual(py[0], 1, (what, py))
        self.assertNotEqual(c[0], 0, (what, c))
        self.assertTrue(c[1], (what, "the C verifier gave no reason"))
        return py, c

    def assert_log_verifies(self, pem, cp, data):
        ov.verify_log(ov.load_public_key(pem), cp, data)
        py, c = self.both(["verify-log", "--key", self.pub_file(pem),
                           "--checkpoint", self.tmpfile("cp", cp),
                           self.tmpfile("export.jsonl", data)])
        self.assertEqual((py[0], c[0]), (0, 0), (py, c))


class ServerCase(unittest.TestCase, VerifierMixin):
    env = {}

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="oe-rcpt-")
        cls.srv = Server(env=cls.env).start()
        cls.pub, cls.keyinfo = server_key(cls.srv)
        cls.pem = cls.keyinfo["public_key_pem"]
        cls.origin = cls.keyinfo["origin"]

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def size(self):
        return ov.parse_checkpoint(checkpoint(self.srv), self.pub).size

    def entry(self, seq):
        lines = export(self.srv, seq, 1).split(b"\n")
        self.assertEqual(len(lines), 2, lines)
        return json.loads(lines[0])

    def attempt(self, action, payload=None, nonce=None, artifact=None, raw=None):
        """One /execute; asserts it appended exactly one entry."""
        before = self.size()
        if raw is not None:
            r = self.srv.post("/execute", raw)
        else:
            r = self.srv.execute(action, payload, nonce=nonce, artifact=artifact)
        self.assertEqual(self.size(), before + 1, ("not exactly one receipt", r))
        return r, before

    def check_answer(self, r, seq, outcome, status, error, action, payload, nonce,
                     approval_id=None):
        """The SPEC 5.2 rules for an answer to an attempt and its receipt; runs
        every verifier on it; returns the receipt."""
        self.assertEqual(r.status, status, r)
        body = json.loads(r.body)
        signed = body["signed_receipt"]
        self.assertEqual(list(signed), ["receipt", "inclusion", "checkpoint"])
        self.assertEqual(list(signed["inclusion"]), ["size", "index", "hashes"])
        rc = signed["receipt"]
        self.assertEqual(list(rc), RECEIPT_KEYS)
        if status == 200:
            self.assertEqual(list(body), ["id", "action", "result", "approved", "receipt",
                                          "signed_receipt"])
            self.assertEqual(rc["exec_id"], body["id"])
            result_json = json.dumps(body["result"], sort_keys=True)
            self.assertEqual(rc["result_sha256"], sha256_hex(result_json))
            self.assertEqual(body["receipt"], sha256_hex(body["id"] + ":" + result_json))
        else:
            self.assertEqual(list(body), ["detail", "error", "id", "signed_receipt"])
            self.assertEqual(body["error"], error)
            self.assertEqual(rc["exec_id"], body["id"])
            self.assertIsNone(rc["result_sha256"])
        self.assertRegex(rc["exec_id"], UUID4_RE)
        self.assertEqual(rc["v"], 1)
        self.assertEqual(rc["log"], self.origin)
        self.assertEqual(rc["seq"], seq)
        self.assertRegex(rc["time"], TIME_RE)
        t = datetime.datetime.strptime(rc["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
        self.assertLess(abs((t - clawshield.utcnow_naive()).total_seconds()), 300, rc["time"])
        self.assertEqual(rc["action"], action)
        self.assertEqual(rc["action_hash"], clawshield.action_hash(action, payload))
        self.assertEqual(rc["nonce_sha256"], sha256_hex(nonce))
        self.assertEqual(rc["approval_id"], approval_id)
        self.assertEqual(rc["outcome"], outcome)
        self.assertEqual(rc["status"], status)
        self.assertEqual(rc["error"], error)
        self.assertEqual(signed["inclusion"]["index"], seq)
        self.assertGreaterEqual(signed["inclusion"]["size"], seq + 1)
        self.assertEqual(self.entry(seq), rc)
        self.assert_receipt_verifies(self.srv, signed, self.pem)
        return rc

    def assert_not_attempt(self, raw, status, error):
        before = export_all(self.srv)
        cp = checkpoint(self.srv)
        r = self.srv.post("/execute", raw)
        self.assertEqual((r.status, r.json()["error"]), (status, error), r)
        self.assertNotIn("signed_receipt", r.json())
        self.assertNotIn("id", r.json())
        self.assertEqual(export_all(self.srv), before, "a refused body got a receipt")
        self.assertEqual(checkpoint(self.srv), cp)


def receipt_tampers(srv, pub, signed):
    """(what, mutation) pairs, each of which must make the receipt fail."""
    other = Ed25519PrivateKey.generate()
    cp = ov.parse_checkpoint(signed["checkpoint"], pub)
    later = srv.execute("echo", {}).json()["signed_receipt"]["checkpoint"]

    def flip_hash(s, i=0):
        raw = bytearray(base64.b64decode(s["inclusion"]["hashes"][i]))
        raw[0] ^= 8
        s["inclusion"]["hashes"][i] = b64(bytes(raw))

    def set_(path, value):
        def f(s):
            d = s
            for k in path[:-1]:
                d = d[k]
            d[path[-1]] = value
        return f

    rc, inc = signed["receipt"], signed["inclusion"]
    return [
        ("receipt status altered", set_(("receipt", "status"), rc["status"] + 1)),
        ("receipt outcome altered",
         set_(("receipt", "outcome"), "executed" if rc["outcome"] != "executed" else "denied")),
        ("receipt exec_id altered", set_(("receipt", "exec_id"), str(uuid.uuid4()))),
        ("receipt time altered", set_(("receipt", "time"), "2020-01-01T00:00:00.000000Z")),
        ("receipt field added", set_(("receipt", "extra"), 1)),
        ("receipt moved to another log", set_(("receipt", "log"), "other/log")),
        ("proof hash altered", flip_hash),
        ("last proof hash altered", lambda s: flip_hash(s, -1)),
        ("proof hash dropped", lambda s: s["inclusion"]["hashes"].pop()),
        ("proof hash added", lambda s: s["inclusion"]["hashes"].append(b64(cp.root))),
        ("proof hashes reordered", lambda s: s["inclusion"]["hashes"].reverse()),
        ("wrong index", set_(("inclusion", "index"), inc["index"] + 1)),
        ("wrong index and seq", lambda s: (set_(("inclusion", "index"), inc["index"] + 1)(s),
                                           set_(("receipt", "seq"), rc["seq"] + 1)(s))),
        ("wrong size", set_(("inclusion", "size"), inc["size"] + 1)),
        ("wrong checkpoint: a later one", set_(("checkpoint",), later)),
        ("wrong checkpoint: later, size adjusted",
         lambda s: (set_(("checkpoint",), later)(s),
                    set_(("inclusion", "size"),
                         ov.parse_checkpoint(later, pub).size)(s))),
        ("wrong checkpoint: root altered",
         set_(("checkpoint",), signed["checkpoint"].replace(
             "\n%s\n" % b64(cp.root), "\n%s\n" % b64(hashlib.sha256(cp.root).digest())))),
        ("wrong checkpoint: signed by another key",
         set_(("checkpoint",), ov.sign_checkpoint(cp.origin, cp.size, cp.root, other))),
        ("wrong checkpoint: signature line removed",
         set_(("checkpoint",), signed["checkpoint"].split("\n\n")[0] + "\n\n")),
    ]


# --------------------------------------------------------------------------

class DemoReceiptTests(ServerCase):
    """Demo mode with an allow-list that names an unregistered action, so
    that both the allow-list (403) and the registry (400) can refuse."""
    env = {"OPENEXEC_ALLOWED_ACTIONS": "echo,add,nosuch,n\u00f6p\u00e9"}

    def test_key_endpoint(self):
        r = self.srv.get("/receipts/key")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("application/json"))
        k = r.json()
        self.assertEqual(list(k), ["public_key_pem", "key_id", "origin"])
        self.assertEqual(k["key_id"], hashlib.sha256(self.pub).hexdigest()[:16])
        self.assertEqual(k["origin"], "openexec/" + k["key_id"])
        self.assertTrue(k["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----\n"))

    def test_checkpoint_is_text_and_verifies(self):
        r = self.srv.get("/checkpoint")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/plain"), r.headers)
        cp = ov.parse_checkpoint(r.body, self.pub)
        self.assertEqual(cp.origin, self.origin)
        self.assertEqual(cp.size, export_all(self.srv).count(b"\n"))
        head = self.srv.request("HEAD", "/checkpoint")
        self.assertEqual((head.status, head.body), (200, b""))

    def test_checkpoint_is_published_before_the_answer(self):
        """SPEC 5.2: the checkpoint of a commit is signed before its answers
        go out, so a client that got a receipt never sees an older head."""
        stale = []
        for i in range(400):
            r = self.srv.execute("echo", {"pub": i})
            size = r.json()["signed_receipt"]["inclusion"]["size"]
            latest = ov.parse_checkpoint(self.srv.get("/checkpoint").body, self.pub).size
            if latest < size:
                stale.append((size, latest))
        self.assertEqual(stale, [], "GET /checkpoint served a smaller tree than an answer "
                                    "already cited (answer size, served size)")

    def test_executed(self):
        payload = {"msg": "h\u00e9llo \U0001F600", "x": 1.5e-05, "n": [1, None, True]}
        r, seq = self.attempt("echo", payload, nonce="ex-\u00e9-1")
        self.check_answer(r, seq, "executed", 200, None, "echo", payload, "ex-\u00e9-1")
        r, seq = self.attempt("add", {"a": 2, "b": 40}, nonce="ex-add-1")
        self.check_answer(r, seq, "executed", 200, None, "add", {"a": 2, "b": 40}, "ex-add-1")
        self.assertEqual(r.json()["result"], {"sum": 42})

    def test_payload_missing_hashes_as_empty_object(self):
        r, seq = self.attempt(None, raw='{"action":"echo","nonce":"ex-nopayload"}')
        self.check_answer(r, seq, "executed", 200, None, "echo", {}, "ex-nopayload")

    def test_replay_returns_original_bytes_and_is_logged(self):
        first, seq = self.attempt("echo", {"k": 1}, nonce="rp-1")
        rc = self.check_answer(first, seq, "executed", 200, None, "echo", {"k": 1}, "rp-1")
        again, seq2 = self.attempt("echo", {"k": 1}, nonce="rp-1")
        self.assertEqual(seq2, seq + 1)
        self.assertEqual((again.status, again.body), (first.status, first.body))
        self.assertEqual(again.headers.get("idempotent-replayed"), "true")
        entry = self.entry(seq2)
        self.assertEqual(list(entry), RECEIPT_KEYS)
        want = dict(rc, seq=seq2, outcome="replayed", time=entry["time"])
        self.assertEqual(entry, want)
        self.assertRegex(entry["time"], TIME_RE)
        # The replay's own entry is covered by the log.
        self.assert_log_verifies(self.pem, checkpoint(self.srv), export_all(self.srv))
        # GET /receipts/{id} serves the first entry with that id: the execution.
        got = self.srv.get("/receipts/" + rc["exec_id"]).json()
        self.assertEqual(got["receipt"], rc)

    def test_replays_after_the_log_grew_are_byte_identical(self):
        """SQLite stores an answer's head and the place of its receipt, and
        rebuilds the receipt and its inclusion proof on a replay: answers
        proven against 40 different tree sizes (each side of powers of two),
        replayed once the tree has grown past all of them, are the first
        answers' bytes."""
        run = uuid.uuid4().hex
        firsts = [self.srv.execute("echo", {"grow": i}, nonce="grow-%s-%d" % (run, i))
                  for i in range(40)]
        for i, first in enumerate(firsts):
            self.assertEqual(first.status, 200, first)
            again = self.srv.execute("echo", {"grow": i}, nonce="grow-%s-%d" % (run, i))
            self.assertEqual(again.headers.get("idempotent-replayed"), "true", again)
            self.assertEqual(again.body, first.body, "replay of answer %d" % i)
        ov.verify_signed_receipt(self.pub, firsts[0].json()["signed_receipt"])

    def test_denied_by_allow_list(self):
        r, seq = self.attempt("evil", {"x": 1}, nonce="dn-1")
        self.check_answer(r, seq, "denied", 403, "action_not_allowed", "evil", {"x": 1}, "dn-1")
        self.assertEqual(r.json()["detail"], "Action 'evil' is not in the execution allow-list")
        # A denial does not consume the nonce.
        r, seq = self.attempt("echo", {"x": 1}, nonce="dn-1")
        self.check_answer(r, seq, "executed", 200, None, "echo", {"x": 1}, "dn-1")

    def test_rejected_unknown_action(self):
        r, seq = self.attempt("nosuch", None, nonce="rj-1")
        self.check_answer(r, seq, "rejected", 400, "unknown_action", "nosuch", {}, "rj-1")
        self.assertEqual(r.json()["detail"], "Unknown action: nosuch")
        # Non-ASCII in a logged field: both canonical forms must agree.
        r, seq = self.attempt("n\u00f6p\u00e9", {"s": "\u2028\x7f\U0001F600"}, nonce="rj-\u00fc")
        self.check_answer(r, seq, "rejected", 400, "unknown_action", "n\u00f6p\u00e9",
                          {"s": "\u2028\x7f\U0001F600"}, "rj-\u00fc")
        r, seq = self.attempt("echo", None, nonce="rj-1")  # not consumed
        self.assertEqual(r.status, 200, r)

    def test_rejected_invalid_arguments(self):
        r, seq = self.attempt("add", {"a": "x"}, nonce="ia-1")
        self.check_answer(r, seq, "rejected", 422, "invalid_arguments", "add", {"a": "x"}, "ia-1")
        r, seq = self.attempt("add", {"a": 1}, nonce="ia-1")  # not consumed
        self.check_answer(r, seq, "executed", 200, None, "add", {"a": 1}, "ia-1")

    def test_rejected_nonce_reused(self):
        first, seq = self.attempt("echo", {"v": 1}, nonce="nr-1")
        self.assertEqual(first.status, 200, first)
        r, seq = self.attempt("echo", {"v": 2}, nonce="nr-1")
        rc = self.check_answer(r, seq, "rejected", 422, "nonce_reused", "echo", {"v": 2}, "nr-1")
        self.assertNotEqual(rc["exec_id"], first.json()["id"])

    def test_bodies_refused_before_parsing_get_no_receipt(self):
        self.assert_not_attempt("{not json", 400, "invalid_json")
        self.assert_not_attempt(b'{"action":"echo","nonce":"\xff"}', 400, "invalid_json")
        self.assert_not_attempt("[1]", 400, "not_an_object")
        self.assert_not_attempt('{"action":"echo"}', 422, "invalid_request")
        self.assert_not_attempt('{"action":"echo","nonce":""}', 422, "invalid_request")
        self.assert_not_attempt('{"action":"echo","nonce":"%s"}' % ("n" * 257), 422,
                                "invalid_request")
        self.assert_not_attempt('{"action":"echo","nonce":"x","payload":[1]}', 422,
                                "invalid_request")
        self.assert_not_attempt('{"action":"echo","nonce":"x","nonce":"y"}', 422,
                                "unsupported_json")
        before, cp = export_all(self.srv), checkpoint(self.srv)
        # The server answers 413 from the headers and closes, so the body is
        # not sent in full (http.client would fail on the broken pipe).
        got = self.srv.raw(b"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: "
                           b"application/json\r\nContent-Length: 2097152\r\n\r\n{")
        self.assertTrue(got.startswith(b"HTTP/1.1 413 "), got[:200])
        self.assertIn(b'"error":"body_too_large"', got)
        self.assertNotIn(b"signed_receipt", got)
        self.assertEqual(export_all(self.srv), before, "a 413 got a receipt")
        self.assertEqual(checkpoint(self.srv), cp)

    def test_receipt_by_exec_id_proves_against_latest_checkpoint(self):
        r, seq = self.attempt("echo", {"id": 1}, nonce="byid-1")
        exec_id = r.json()["id"]
        for _ in range(3):
            self.srv.execute("echo", {})
        got = self.srv.get("/receipts/" + exec_id)
        self.assertEqual(got.status, 200, got)
        signed = got.json()
        self.assertEqual(list(signed), ["receipt", "inclusion", "checkpoint"])
        self.assertEqual(signed["receipt"], r.json()["signed_receipt"]["receipt"])
        self.assertEqual(signed["checkpoint"], checkpoint(self.srv))
        self.assertEqual(signed["inclusion"]["size"], self.size())
        self.assert_receipt_verifies(self.srv, signed, self.pem)
        # A denied attempt's id (carried by its error body) is found too.
        d, _ = self.attempt("evil", {}, nonce="byid-2")
        got = self.srv.get("/receipts/" + d.json()["id"]).json()
        self.assertEqual(got["receipt"]["outcome"], "denied")
        self.assert_receipt_verifies(self.srv, got, self.pem)
        for missing in (str(uuid.uuid4()), "nonsense"):
            nf = self.srv.get("/receipts/" + missing)
            self.assertEqual((nf.status, nf.json()["error"]), (404, "not_found"), nf)

    def test_receipts_verify_rejects_tampering_and_incomplete_input(self):
        r, _ = self.attempt("echo", {"t": 1}, nonce="tv-1")
        for _ in range(4):
            self.srv.execute("echo", {})
        signed = self.srv.get("/receipts/" + r.json()["id"]).json()
        self.assertGreater(len(signed["inclusion"]["hashes"]), 1)
        for what, change in receipt_tampers(self.srv, self.pub, signed):
            bad = copy.deepcopy(signed)
            change(bad)
            self.assert_receipt_rejected(self.srv, bad, self.pem, what)
        for field in ("inclusion", "checkpoint", "receipt"):
            bad = copy.deepcopy(signed)
            del bad[field]
            v = self.srv.post("/receipts/verify", {"signed_receipt": bad})
            self.assertEqual(v.status, 422, (field, v))
            with self.assertRaises(ov.VerifyError):
                ov.verify_signed_receipt(self.pub, bad)
        # The legacy check (SPEC 5.1) is unchanged.
        body = r.json()
        v = self.srv.post("/receipts/verify", {"exec_id": body["id"], "result": body["result"],
                                               "receipt": body["receipt"]})
        self.assertEqual(v.json(), {"valid": True})

    def test_export_format_and_range(self):
        for i in range(12):
            self.srv.execute("echo", {"i": i}, nonce="exp-%d" % i)
        n = self.size()
        r = self.srv.get("/receipts")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"].split(";")[0].strip(), "application/x-ndjson")
        self.assertTrue(r.body.endswith(b"\n"))
        lines = r.body.split(b"\n")[:-1]
        self.assertEqual(len(lines), n)
        entries = [json.loads(x) for x in lines]
        self.assertEqual([e["seq"] for e in entries], list(range(n)))
        for e in entries:
            self.assertEqual(list(e), RECEIPT_KEYS)
        part = self.srv.get("/receipts?from=%d&limit=3" % (n - 5)).body.split(b"\n")[:-1]
        self.assertEqual(part, lines[n - 5:n - 2])
        self.assertEqual(self.srv.get("/receipts?from=%d" % (n - 2)).body.split(b"\n")[:-1],
                         lines[n - 2:])
        self.assertEqual(self.srv.get("/receipts?limit=1").body.split(b"\n")[:-1], lines[:1])
        for past in (n, n + 1, 10 ** 12):
            r = self.srv.get("/receipts?from=%d" % past)
            self.assertEqual((r.status, r.body), (200, b""), past)
        for q in ("limit=0", "limit=-1", "limit=abc", "limit=", "limit=1.5", "limit=1e3",
                  "from=-1", "from=abc", "from=", "from=0x1", "from=+1", "from=0&limit=0",
                  "limit", "from", "from=0&limit", "limit&from=0"):
            r = self.srv.get("/receipts?" + q)
            self.assertEqual((r.status, r.json()["error"]), (400, "bad_range"), (q, r))

    def test_consistency_between_checkpoints(self):
        cps = []
        for i in range(9):
            r = self.srv.execute("echo", {"c": i})
            cps.append(r.json()["signed_receipt"]["checkpoint"])
        cps.append(checkpoint(self.srv))
        parsed = [ov.parse_checkpoint(c, self.pub) for c in cps]
        for i, old in enumerate(parsed):
            for j in range(i, len(parsed)):
                new = parsed[j]
                r = self.srv.get("/log/consistency?old=%d&new=%d" % (old.size, new.size))
                self.assertEqual(r.status, 200, r)
                self.assertEqual(list(r.json()), ["hashes"])
                if old.size == new.size:
                    self.assertEqual(r.json(), {"hashes": []})
                ov.verify_consistency_proof(self.pub, cps[i], cps[j], r.json())
        # The command line, and a proof that does not fit is refused.
        old, new = cps[0], cps[-1]
        proof = self.srv.get("/log/consistency?old=%d&new=%d"
                             % (parsed[0].size, parsed[-1].size)).json()
        args = ["consistency", "--key", self.pub_file(self.pem), "--old",
                self.tmpfile("old", old), "--new", self.tmpfile("new", new)]
        self.assertEqual(self.run_py(args + [self.tmpfile("p.json", json.dumps(proof))]),
                         (0, "ok"))
        wrong = {"hashes": proof["hashes"][:-1]}
        rc, msg = self.run_py(args + [self.tmpfile("p.json", json.dumps(wrong))])
        self.assertEqual(rc, 1, msg)
        rc, msg = self.run_py(["consistency", "--key", self.pub_file(self.pem),
                               "--old", self.tmpfile("old", new), "--new",
                               self.tmpfile("new", old), self.tmpfile("p.json", '{"hashes":[]}')])
        self.assertEqual(rc, 1, msg)

    def test_consistency_bad_range(self):
        n = self.size()
        if n < 2:
            self.srv.execute("echo", {})
            self.srv.execute("echo", {})
            n = self.size()
        for q in ("old=0&new=1", "old=2&new=1", "old=1&new=%d" % (n + 1), "old=1", "new=2", "",
                  "old&new=2", "old=1&new",
                  "old=a&new=2", "old=-1&new=2", "old=1&new=2.0", "old=1&new=-2",
                  "old=%d&new=%d" % (n + 1, n + 1)):
            r = self.srv.get("/log/consistency?" + q)
            self.assertEqual((r.status, r.json()["error"]), (400, "bad_range"), (q, r))
        r = self.srv.get("/log/consistency?old=%d&new=%d" % (n, n))
        self.assertEqual((r.status, r.json()), (200, {"hashes": []}))

    def test_whole_log_verifies_and_seq_has_no_gaps(self):
        self.srv.execute("echo", {})
        cp = checkpoint(self.srv)
        data = export_all(self.srv)
        seqs = [json.loads(x)["seq"] for x in data.split(b"\n")[:-1]]
        self.assertEqual(seqs, list(range(len(seqs))))
        self.assert_log_verifies(self.pem, cp, data)


# --------------------------------------------------------------------------

PRIV, PUB = clawshield.keygen()


class ClawshieldReceiptTests(ServerCase):
    """Denials by approval, and approval_id: null unless the signature verified."""
    env = {"OPENEXEC_MODE": "clawshield", "CLAWSHIELD_PUBLIC_KEY": PUB,
           "CLAWSHIELD_TENANT_ID": "acme"}

    def mint(self, action="echo", payload=None, tenant="acme", **kw):
        return clawshield.mint(PRIV, tenant, action, payload or {}, **kw)

    def test_executed_carries_approval_id(self):
        art = self.mint(payload={"p": 1})
        r, seq = self.attempt("echo", {"p": 1}, nonce="cs-ok", artifact=art)
        self.check_answer(r, seq, "executed", 200, None, "echo", {"p": 1}, "cs-ok",
                          approval_id=art["approval_id"])

    def test_denials_before_the_signature_have_null_approval_id(self):
        r, seq = self.attempt("echo", {}, nonce="cs-none")
        self.check_answer(r, seq, "denied", 403, "approval_required", "echo", {}, "cs-none")
        r, seq = self.attempt("echo", {}, nonce="cs-empty", artifact={})
        self.check_answer(r, seq, "denied", 403, "invalid_artifact", "echo", {}, "cs-empty")
        forged = clawshield.mint(clawshield.keygen()[0], "acme", "echo", {})
        r, seq = self.attempt("echo", {}, nonce="cs-forged", artifact=forged)
        self.check_answer(r, seq, "denied", 403, "invalid_signature", "echo", {}, "cs-forged")

    def test_denials_after_the_signature_carry_approval_id(self):
        art = self.mint(tenant="evil")
        r, seq = self.attempt("echo", {}, nonce="cs-tenant", artifact=art)
        self.check_answer(r, seq, "denied", 403, "tenant_mismatch", "echo", {}, "cs-tenant",
                          approval_id=art["approval_id"])
        art = self.mint(payload={"a": 1})
        r, seq = self.attempt("echo", {"a": 2}, nonce="cs-hash", artifact=art)
        self.check_answer(r, seq, "denied", 403, "action_hash_mismatch", "echo", {"a": 2},
                          "cs-hash", approval_id=art["approval_id"])
        now = clawshield.utcnow_naive()
        art = self.mint(issued_at=(now - datetime.timedelta(seconds=60)).isoformat(),
                        expires_at=(now - datetime.timedelta(seconds=1)).isoformat())
        r, seq = self.attempt("echo", {}, nonce="cs-exp", artifact=art)
        self.check_answer(r, seq, "denied", 403, "approval_expired", "echo", {}, "cs-exp",
                          approval_id=art["approval_id"])

    def test_single_use_and_replays(self):
        art = self.mint(payload={"once": 1})
        first, seq = self.attempt("echo", {"once": 1}, nonce="cs-once-1", artifact=art)
        rc = self.check_answer(first, seq, "executed", 200, None, "echo", {"once": 1},
                               "cs-once-1", approval_id=art["approval_id"])
        r, seq = self.attempt("echo", {"once": 1}, nonce="cs-once-2", artifact=art)
        self.check_answer(r, seq, "denied", 403, "approval_already_used", "echo", {"once": 1},
                          "cs-once-2", approval_id=art["approval_id"])
        # A replay with the same approval: the original bytes, logged as replayed.
        again, seq = self.attempt("echo", {"once": 1}, nonce="cs-once-1", artifact=art)
        self.assertEqual(again.body, first.body)
        self.assertEqual(self.entry(seq), dict(rc, seq=seq, outcome="replayed",
                                               time=self.entry(seq)["time"]))
        # Another approval for the replay: denied, with a fresh id.
        other = self.mint(payload={"once": 1})
        r, seq = self.attempt("echo", {"once": 1}, nonce="cs-once-1", artifact=other)
        got = self.check_answer(r, seq, "denied", 403, "approval_mismatch", "echo",
                                {"once": 1}, "cs-once-1", approval_id=other["approval_id"])
        self.assertNotEqual(got["exec_id"], rc["exec_id"])
        r, seq = self.attempt("echo", {"once": 1}, nonce="cs-once-1")
        self.check_answer(r, seq, "denied", 403, "approval_required", "echo", {"once": 1},
                          "cs-once-1")
        self.assert_log_verifies(self.pem, checkpoint(self.srv), export_all(self.srv))


# --------------------------------------------------------------------------

ACTION_SCRIPTS = {
    "ok": "cat >/dev/null\necho '{\"ok\":true}'\n",
    "fail": "cat >/dev/null\necho 'secret detail' >&2\nexit 3\n",
    "slow": "cat >/dev/null\nsleep 2\necho '{\"slept\":true}'\n",
}


def write_actions(directory):
    """Operator actions (SPEC 6) as /bin/sh scripts; the actions file path."""
    actions = {}
    for name, body in ACTION_SCRIPTS.items():
        path = os.path.join(directory, name + ".sh")
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body)
        os.chmod(path, 0o755)
        actions[name] = {"exec": [path]}
    path = os.path.join(directory, "actions.json")
    with open(path, "w") as f:
        json.dump({"actions": actions}, f)
    return path


class OperatorActionReceiptTests(ServerCase):
    """The outcomes only operator actions can produce: failed (502) and its
    replay, 409 request_in_progress, 409 outcome_unknown after a crash, and
    the operator's resolved finding."""

    @classmethod
    def setUpClass(cls):
        cls.actions_dir = tempfile.mkdtemp(prefix="oe-rcpt-actions-")
        cls.env = {"OPENEXEC_ACTIONS_FILE": write_actions(cls.actions_dir)}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.actions_dir, ignore_errors=True)

    def test_failed_and_its_replay(self):
        first, seq = self.attempt("fail", {"x": 1}, nonce="op-fail")
        rc = self.check_answer(first, seq, "failed", 502, "action_failed", "fail", {"x": 1},
                               "op-fail")
        self.assertNotIn(b"secret detail", first.body)
        again, seq2 = self.attempt("fail", {"x": 1}, nonce="op-fail")
        self.assertEqual((again.status, again.body), (first.status, first.body))
        entry = self.entry(seq2)
        self.assertEqual(entry, dict(rc, seq=seq2, outcome="replayed", time=entry["time"]))

    def test_in_progress_is_rejected(self):
        box = {}
        t = threading.Thread(target=lambda: box.setdefault(
            "r", self.srv.execute("slow", {"n": 1}, nonce="op-slow")))
        t.start()
        try:
            time.sleep(0.5)
            r, seq = self.attempt("slow", {"n": 1}, nonce="op-slow")
            rc = self.check_answer(r, seq, "rejected", 409, "request_in_progress", "slow",
                                   {"n": 1}, "op-slow")
            r, seq = self.attempt("slow", {"n": 2}, nonce="op-slow")
            self.check_answer(r, seq, "rejected", 422, "nonce_reused", "slow", {"n": 2},
                              "op-slow")
        finally:
            t.join()
        done = box["r"]
        got = self.check_answer(done, done.json()["signed_receipt"]["receipt"]["seq"],
                                "executed", 200, None, "slow", {"n": 1}, "op-slow")
        self.assertNotEqual(got["exec_id"], rc["exec_id"])
        self.assertEqual(done.json()["result"], {"slept": True})

    def test_busy_gets_no_receipt(self):
        """SPEC 5.2: a 503 was not attempted, so it carries no receipt."""
        env = dict(self.env, OPENEXEC_ACTION_WORKERS="1", OPENEXEC_ACTION_QUEUE="1")
        with Server(env=env) as srv:
            box = {}
            t = threading.Thread(target=lambda: box.setdefault(
                "r", srv.execute("slow", {}, nonce="busy-1")))
            t.start()
            try:
                time.sleep(0.5)
                before = checkpoint(srv)
                r = srv.execute("slow", {}, nonce="busy-2")
                self.assertEqual((r.status, r.json()["error"]), (503, "busy"), r)
                self.assertNotIn("signed_receipt", r.json())
                self.assertEqual(checkpoint(srv), before)
            finally:
                t.join()
            self.assertEqual(box["r"].status, 200, box["r"])
            self.assertEqual(ov.parse_checkpoint(checkpoint(srv), server_key(srv)[0]).size, 1)
            # The nonce was not consumed: it runs now.
            self.assertEqual(srv.execute("ok", {}, nonce="busy-2").status, 200)

    def test_outcome_unknown_and_resolved(self):
        d = tempfile.mkdtemp(prefix="oe-rcpt-wd-")
        try:
            self.crash_and_resolve(d)
        finally:
            harness.drop_pg_database(d)
            shutil.rmtree(d, ignore_errors=True)

    def crash_and_resolve(self, d):
        srv = Server(workdir=d, env=self.env).start()
        pub, info = server_key(srv)
        pem = info["public_key_pem"]
        t = threading.Thread(target=lambda: self.swallow(srv.execute, "slow", {}, nonce="op-x"))
        t.start()
        time.sleep(0.7)
        srv.kill()  # SIGKILL while the program runs
        t.join()
        srv = Server(workdir=d, env=self.env).start()
        try:
            r = srv.execute("slow", {}, nonce="op-x")
            self.assertEqual((r.status, r.json()["error"]), (409, "outcome_unknown"), r)
            rc = r.json()["signed_receipt"]["receipt"]
            self.assertEqual((rc["outcome"], rc["status"], rc["error"], rc["exec_id"]),
                             ("rejected", 409, "outcome_unknown", r.json()["id"]))
            self.assert_receipt_verifies(srv, r.json()["signed_receipt"], pem)
            self.assertEqual(srv.stop(), 0)
        finally:
            srv.kill()
        cli_env = {k: v for k, v in srv.env.items() if k.startswith("OPENEXEC_")}
        p = harness.run_cli(["pending", "--json"], env=cli_env, cwd=d)
        self.assertEqual(p.returncode, 0, p)
        pending = [json.loads(x) for x in p.stdout.decode().splitlines() if x.strip()]
        self.assertEqual([x["nonce"] for x in pending], ["op-x"], pending)
        exec_id = pending[0]["exec_id"]
        self.assertNotEqual(exec_id, rc["exec_id"])
        p = harness.run_cli(["resolve", "op-x", "--outcome", "succeeded", "--result",
                             '{"found":1}'], env=cli_env, cwd=d)
        self.assertEqual(p.returncode, 0, p)
        srv = Server(workdir=d, env=self.env).start()
        try:
            log = [json.loads(x) for x in export_all(srv).split(b"\n")[:-1]]
            resolved = log[-1]
            self.assertEqual(list(resolved), RECEIPT_KEYS)
            self.assertEqual((resolved["outcome"], resolved["exec_id"], resolved["action"],
                              resolved["nonce_sha256"], resolved["result_sha256"],
                              resolved["error"]),
                             ("resolved", exec_id, "slow", sha256_hex("op-x"),
                              sha256_hex(json.dumps({"found": 1}, sort_keys=True)), None))
            r = srv.execute("slow", {}, nonce="op-x")
            self.assertEqual((r.status, r.json()["id"], r.json()["result"]),
                             (200, exec_id, {"found": 1}), r)
            entry = json.loads(export(srv, len(log), 1))
            self.assertEqual((entry["outcome"], entry["exec_id"], entry["status"]),
                             ("replayed", exec_id, 200))
            got = srv.get("/receipts/" + exec_id).json()
            self.assertEqual(got["receipt"], resolved)
            self.assert_receipt_verifies(srv, got, pem)
            self.assert_log_verifies(pem, checkpoint(srv), export_all(srv))
        finally:
            srv.kill()

    @staticmethod
    def swallow(fn, *args, **kw):
        try:
            fn(*args, **kw)
        except (OSError, http.client.HTTPException):
            pass  # the server was killed under it


# --------------------------------------------------------------------------

class TamperTests(unittest.TestCase, VerifierMixin):
    """Issue 6: an export of ~50 entries and its checkpoint, altered in every
    way the issue names; both offline verifiers must refuse each alteration,
    name the first bad entry where there is one, and agree on every file."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="oe-tamper-")
        cls.srv = Server(env={"OPENEXEC_ALLOWED_ACTIONS": "echo,add,nosuch"}).start()
        cls.pub, info = server_key(cls.srv)
        cls.pem = info["public_key_pem"]
        cls.answers = []
        for i in range(50):
            kind = i % 5
            if kind == 0:
                r = cls.srv.execute("echo", {"i": i, "s": "\u00e9\U0001F600"}, nonce="t-%d" % i)
            elif kind == 1:
                r = cls.srv.execute("echo", {"i": i - 1, "s": "\u00e9\U0001F600"},
                                    nonce="t-%d" % (i - 1))  # a replay
            elif kind == 2:
                r = cls.srv.execute("evil", {"i": i}, nonce="t-%d" % i)
            elif kind == 3:
                r = cls.srv.execute("nosuch", {"i": i}, nonce="t-%d" % i)
            else:
                r = cls.srv.execute("add", {"a": i, "b": 0.5}, nonce="t-%d" % i)
            cls.answers.append(r)
        cls.cp = checkpoint(cls.srv)
        cls.data = export_all(cls.srv)
        cls.lines = cls.data.split(b"\n")[:-1]
        assert len(cls.lines) == 50, len(cls.lines)

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def verify_files(self, lines=None, cp=None, data=None, pem=None):
        if data is None:
            data = b"".join(x + b"\n" for x in (self.lines if lines is None else lines))
        args = ["verify-log", "--key", self.pub_file(pem or self.pem),
                "--checkpoint", self.tmpfile("cp", self.cp if cp is None else cp),
                self.tmpfile("log.jsonl", data)]
        return self.both(args)

    def assert_refused(self, what, line=None, counts=None, **kw):
        """Both verifiers refuse.  Where line is given, both name it (as the
        line number from 1 or as the seq line - 1); where the problem is the
        number of entries, naming counts=(entries, checkpoint size) will do."""
        py, c = self.verify_files(**kw)
        self.assertEqual(py[0], 1, (what, py))
        self.assertNotEqual(c[0], 0, (what, c))
        self.assertTrue(c[1], (what, "no reason given"))
        if line is not None:
            for name, msg in (("python", py[1]), ("C", c[1])):
                named = (re.search(r"\bline %d\b" % line, msg) or
                         re.search(r"\b(seq|entry) %d\b" % (line - 1), msg))
                if counts and not named:
                    named = all(re.search(r"\b%d\b" % n, msg) for n in counts)
                self.assertTrue(named, "%s: the %s verifier does not name line %d / seq %d%s: %s"
                                % (what, name, line, line - 1,
                                   " or the counts %s" % (counts,) if counts else "", msg))
        return py, c

    @staticmethod
    def edit(line, **changes):
        obj = json.loads(line)
        obj.update(changes)
        return json.dumps(obj, separators=(",", ":")).encode()

    def test_original_is_accepted(self):
        py, c = self.verify_files()
        self.assertEqual((py[0], c[0]), (0, 0), (py, c))
        self.assertEqual(py[1], "ok")
        outcomes = {json.loads(x)["outcome"] for x in self.lines}
        self.assertEqual(outcomes, {"executed", "replayed", "denied", "rejected"})
        # Reformatting a line (key order, spacing, escapes) changes no leaf:
        # the leaf is the canonical form.
        lines = list(self.lines)
        lines[7] = json.dumps(json.loads(lines[7]), indent=1, ensure_ascii=False) \
            .replace("\n", " ").encode()
        py, c = self.verify_files(lines=lines)
        self.assertEqual((py[0], c[0]), (0, 0), (py, c))

    def test_altered_field(self):
        for field, value in (("status", 403), ("outcome", "denied"), ("action", "add"),
                             ("time", "2020-01-01T00:00:00.000000Z"), ("error", None),
                             ("approval_id", "x"), ("result_sha256", "0" * 64)):
            lines = list(self.lines)
            lines[20] = self.edit(lines[20], **{field: value})
            if lines[20] == self.lines[20]:
                lines[20] = self.edit(lines[20], **{field: "changed"})
            py, _ = self.assert_refused("altered " + field, lines=lines)
            self.assertIn("root", py[1])

    def test_entry_that_is_not_a_receipt_is_named(self):
        # Such an entry changes the root too; both verifiers name it.
        removed = json.loads(self.lines[20])
        del removed["time"]
        for what, line in (("added field", self.edit(self.lines[20], extra=True)),
                           ("removed field", json.dumps(removed).encode()),
                           ("version 2", self.edit(self.lines[20], v=2)),
                           ("status as text", self.edit(self.lines[20], status="200")),
                           ("null action", self.edit(self.lines[20], action=None)),
                           ("unknown outcome", self.edit(self.lines[20], outcome="won"))):
            lines = list(self.lines)
            lines[20] = line
            py, c = self.assert_refused(what, line=21, lines=lines)
            self.assertIn("not a receipt", py[1], what)
            self.assertIn("not a receipt", c[1], what)

    def test_altered_field_is_refused_with_lines(self):
        lines = list(self.lines)
        lines[20] = self.edit(lines[20], status=599)
        self.assert_refused("altered status", lines=lines)

    def test_dropped_entry(self):
        for k in (0, 20, 49):
            lines = self.lines[:k] + self.lines[k + 1:]
            self.assert_refused("dropped entry %d" % k, line=k + 1, lines=lines,
                                counts=(49, 50) if k == 49 else None)

    def test_dropped_entry_with_renumbering(self):
        lines = self.lines[:20] + [self.edit(x, seq=json.loads(x)["seq"] - 1)
                                   for x in self.lines[21:]]
        self.assert_refused("dropped and renumbered", line=50, counts=(49, 50), lines=lines)

    def test_swapped_entries(self):
        for a, b in ((20, 21), (0, 49), (10, 30)):
            lines = list(self.lines)
            lines[a], lines[b] = lines[b], lines[a]
            self.assert_refused("swapped %d %d" % (a, b), line=a + 1, lines=lines)

    def test_swapped_entries_with_renumbering(self):
        lines = list(self.lines)
        lines[20], lines[21] = self.edit(lines[21], seq=20), self.edit(lines[20], seq=21)
        py, _ = self.assert_refused("swapped and renumbered", lines=lines)
        self.assertIn("root", py[1])

    def test_inserted_entry(self):
        lines = self.lines[:25] + [self.lines[10]] + self.lines[25:]
        self.assert_refused("inserted copy", line=26, lines=lines)
        forged = self.edit(self.lines[24], seq=25, exec_id=str(uuid.uuid4()))
        lines = self.lines[:25] + [forged] + [self.edit(x, seq=json.loads(x)["seq"] + 1)
                                              for x in self.lines[25:]]
        self.assert_refused("inserted and renumbered", line=51, counts=(51, 50), lines=lines)
        self.assert_refused("appended", line=51, counts=(51, 50),
                            lines=self.lines + [self.edit(self.lines[49], seq=50)])

    def test_truncated_export(self):
        self.assert_refused("last 5 entries cut", line=46, counts=(45, 50),
                            lines=self.lines[:45])
        self.assert_refused("empty export", line=1, counts=(0, 50), lines=[])
        self.assert_refused("cut inside the last line", line=50,
                            data=self.data[:len(self.data) - 40])

    def test_entry_of_another_log(self):
        lines = list(self.lines)
        lines[30] = self.edit(lines[30], log="openexec/0000000000000000")
        self.assert_refused("another log", line=31, lines=lines)

    def test_not_json(self):
        for bad in (b"", b"not json", b"[1]", b'{"seq":7,"seq":7}', b"\xff"):
            lines = list(self.lines)
            lines[7] = bad
            self.assert_refused("line 8 is %r" % bad, line=8, lines=lines)

    def test_checkpoint_changed(self):
        cp = ov.parse_checkpoint(self.cp, self.pub)
        root = b64(cp.root)
        other_root = b64(hashlib.sha256(cp.root).digest())
        self.assert_refused("root changed", cp=self.cp.replace(root, other_root))
        self.assert_refused("size changed", cp=self.cp.replace("\n50\n", "\n49\n"))
        self.assert_refused("size changed", cp=self.cp.replace("\n50\n", "\n51\n"))
        self.assert_refused("origin changed", cp=self.cp.replace(cp.origin + "\n",
                                                                 "openexec/x\n", 1))
        self.assert_refused("signature removed", cp=self.cp.split("\n\n")[0] + "\n\n")
        self.assert_refused("unsigned", cp=self.cp.split("\n\n")[0] + "\n")
        sig = self.cp.split("\n\n")[1]
        blob = bytearray(base64.b64decode(sig.split(" ")[2]))
        blob[10] ^= 1
        self.assert_refused("signature bit flipped",
                            cp=self.cp.split("\n\n")[0] + "\n\n\u2014 %s %s\n"
                            % (cp.origin, b64(bytes(blob))))

    def test_checkpoint_signed_by_another_key(self):
        cp = ov.parse_checkpoint(self.cp, self.pub)
        attacker = Ed25519PrivateKey.generate()
        self.assert_refused("same content, another key",
                            cp=ov.sign_checkpoint(cp.origin, cp.size, cp.root, attacker))
        # An attacker who rewrote an entry and signed the new root.
        lines = list(self.lines)
        lines[20] = self.edit(lines[20], status=200, outcome="executed", error=None)
        root = ov.merkle_root([ov.receipt_leaf_hash(json.loads(x)) for x in lines])
        self.assert_refused("rewritten and re-signed", lines=lines,
                            cp=ov.sign_checkpoint(cp.origin, cp.size, root, attacker))
        # ...which does verify under the attacker's own key: the attack is
        # only caught by the key, so both verifiers must really use it.
        apem = attacker.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        py, c = self.verify_files(lines=lines, pem=apem,
                                  cp=ov.sign_checkpoint(cp.origin, cp.size, root, attacker))
        self.assertEqual((py[0], c[0]), (0, 0), (py, c))
        # The right export, verified with another key.
        self.assert_refused("wrong --key", pem=apem)

    def test_older_checkpoint_with_longer_export(self):
        older = self.answers[39].json()["signed_receipt"]["checkpoint"]
        size = ov.parse_checkpoint(older, self.pub).size
        self.assertEqual(size, 40)
        self.assert_refused("export longer than checkpoint", line=41, counts=(50, 40), cp=older)
        py, c = self.verify_files(lines=self.lines[:40], cp=older)
        self.assertEqual((py[0], c[0]), (0, 0), (py, c))

    def test_single_receipts(self):
        """verify-receipt: each answer verifies; each tamper is refused by
        POST /receipts/verify and both command lines."""
        for n, r in enumerate(self.answers):
            if n % 10 == 0:
                self.assert_receipt_verifies(self.srv, r.json()["signed_receipt"], self.pem)
        # A whole /execute answer is accepted as the file.
        path = self.tmpfile("answer.json", self.answers[12].body)
        py, c = self.both(["verify-receipt", "--key", self.pub_file(self.pem), path])
        self.assertEqual((py[0], c[0]), (0, 0), (py, c))
        exec_id = self.answers[12].json()["id"]
        signed = self.srv.get("/receipts/" + exec_id).json()
        self.assertEqual(signed["inclusion"]["index"], 12)
        self.assertGreater(len(signed["inclusion"]["hashes"]), 3)
        self.assert_receipt_verifies(self.srv, signed, self.pem)
        tampers = receipt_tampers(self.srv, self.pub, signed)
        for what, change in tampers:
            bad = copy.deepcopy(signed)
            change(bad)
            self.assert_receipt_rejected(self.srv, bad, self.pem, what)
        # A receipt from another log, with that log's valid proof and checkpoint.
        with Server() as other:
            other.execute("echo", {})
            r = other.execute("echo", {})
            foreign = r.json()["signed_receipt"]
            self.assert_receipt_rejected(self.srv, foreign, self.pem, "another log's receipt")

    def test_unsigned_fields_beside_a_signed_receipt_are_refused(self):
        """SPEC 5.2: a signed receipt is exactly {receipt, inclusion,
        checkpoint}.  Nothing signs a field beside them, so a verifier that
        accepts one lets anybody attach claims ("approved_by") that look
        verified."""
        signed = self.answers[5].json()["signed_receipt"]
        for what, bad in (("beside the receipt", dict(signed, approved_by="CFO")),
                          ("in the proof", dict(signed, inclusion=dict(signed["inclusion"],
                                                                       note="x")))):
            py, c = self.both(["verify-receipt", "--key", self.pub_file(self.pem),
                               self.tmpfile("extra.json", json.dumps(bad))])
            self.assertEqual(py[0], 1, (what, py))
            self.assertNotEqual(c[0], 0, (what, c))

    def test_missing_inclusion_or_checkpoint(self):
        signed = self.answers[3].json()["signed_receipt"]
        for field in ("inclusion", "checkpoint"):
            bad = copy.deepcopy(signed)
            del bad[field]
            v = self.srv.post("/receipts/verify", {"signed_receipt": bad})
            self.assertEqual(v.status, 422, (field, v))
            py, c = self.both(["verify-receipt", "--key", self.pub_file(self.pem),
                               self.tmpfile("bad.json", json.dumps(bad))])
            self.assertNotEqual(py[0], 0)


# --------------------------------------------------------------------------

class ConcurrentLogTests(unittest.TestCase, VerifierMixin):
    """10005 attempts from 16 connections: one tree without gaps, every
    answer's receipt verifies, no two checkpoints of one size differ, any two
    are consistent; the export's default limit and its clamp."""
    # Enough to pass the export's 10000 clamp; fewer under valgrind
    # (scripts/valgrind-e2e.sh), where the clamp itself is not checked.
    N = 1500 if os.environ.get("OE_E2E_VALGRIND") else 10005

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="oe-conc-")
        cls.srv = Server().start()
        cls.pub, info = server_key(cls.srv)
        cls.pem = info["public_key_pem"]
        cls.signed = [None] * cls.N
        errors = []

        def worker(k, threads):
            conn = http.client.HTTPConnection("127.0.0.1", cls.srv.port, timeout=60)
            try:
                for i in range(k, cls.N, threads):
                    action = ("echo", "echo", "evil", "add")[i % 4]
                    payload = {"a": i, "b": "x"} if i % 8 == 3 else {"a": i}
                    conn.request("POST", "/execute", body=json.dumps(
                        {"action": action, "payload": payload, "nonce": "c-%d" % i}),
                        headers={"Content-Type": "application/json"})
                    r = conn.getresponse()
                    body = r.read()
                    if r.status == 503:
                        errors.append((i, r.status, body))
                        continue
                    cls.signed[i] = json.loads(body)["signed_receipt"]
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(("thread", k, repr(e)))
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(k, 16)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if cls.srv.proc.poll() is not None:
            log = cls.srv.log()
            cls.srv.cleanup()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise RuntimeError("the server died under load (exit %s); its log ends:\n%s"
                               % (cls.srv.proc.returncode, log[-3000:]))
        cls.errors = errors
        cls.srv.high = cls.N
        cls.cp = checkpoint(cls.srv)

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_every_attempt_has_a_receipt(self):
        self.assertEqual(self.errors, [])
        self.assertEqual(ov.parse_checkpoint(self.cp, self.pub).size, self.N)
        seqs = sorted(s["receipt"]["seq"] for s in self.signed)
        self.assertEqual(seqs, list(range(self.N)))

    def test_every_answer_verifies_and_one_size_has_one_root(self):
        roots = {}
        for s in self.signed:
            _, cp = ov.verify_signed_receipt(self.pub, s)
            self.assertEqual(roots.setdefault(cp.size, cp.root), cp.root,
                             "two checkpoints of size %d with different roots" % cp.size)
        sizes = sorted(roots)
        notes = {}
        for s in self.signed:
            notes.setdefault(ov.parse_checkpoint(s["checkpoint"], self.pub).size, s["checkpoint"])
        picks = sizes[:20] + sizes[len(sizes) // 2:len(sizes) // 2 + 10] + sizes[-10:]
        for a, b in zip(picks, picks[1:] + [sizes[-1]]):
            if a > b:
                a, b = b, a
            r = self.srv.get("/log/consistency?old=%d&new=%d" % (a, b))
            self.assertEqual(r.status, 200, r)
            ov.verify_consistency_proof(self.pub, notes[a], notes[b], r.json())

    def test_export_default_limit_and_clamp(self):
        r = self.srv.get("/receipts")
        lines = r.body.split(b"\n")[:-1]
        self.assertEqual(len(lines), 1000)
        self.assertEqual([json.loads(x)["seq"] for x in lines], list(range(1000)))
        for limit in (9999, 10000, 10001, 10 ** 9, 2 ** 63 - 1):
            r = self.srv.get("/receipts?limit=%d" % limit)
            self.assertEqual(r.status, 200, (limit, r))
            self.assertEqual(r.body.count(b"\n"), min(limit, 10000, self.N), limit)
        r = self.srv.get("/receipts?from=%d&limit=10000" % (self.N - 5))
        self.assertEqual([json.loads(x)["seq"] for x in r.body.split(b"\n")[:-1]],
                         list(range(self.N - 5, self.N)))

    def test_whole_log_verifies_with_both_verifiers(self):
        data = export_all(self.srv)
        self.assertEqual(data.count(b"\n"), self.N)
        self.assert_log_verifies(self.pem, self.cp, data)
        # Still caught at this size: one altered entry deep inside.
        lines = data.split(b"\n")
        deep = self.N * 3 // 4
        obj = json.loads(lines[deep])
        obj["status"] = 201
        lines[deep] = json.dumps(obj).encode()
        args = ["verify-log", "--key", self.pub_file(self.pem), "--checkpoint",
                self.tmpfile("cp", self.cp), self.tmpfile("bad.jsonl", b"\n".join(lines))]
        py, c = self.both(args)
        self.assertNotEqual((py[0], c[0]), (0, 0))


# --------------------------------------------------------------------------

class KeyAndRestartTests(unittest.TestCase, VerifierMixin):
    """The key file, OPENEXEC_RECEIPT_KEY, OPENEXEC_LOG_ORIGIN, restarts,
    a restored backup, and a second log in the same database."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="oe-rcpt-key-")
        self.dirs = []

    def tearDown(self):
        for d in self.dirs:
            harness.drop_pg_database(d)
            shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def workdir(self):
        d = tempfile.mkdtemp(prefix="oe-rcpt-wd-")
        self.dirs.append(d)
        return d

    def test_generated_key_file_and_restart(self):
        d = self.workdir()
        srv = Server(workdir=d).start()
        try:
            pub, info = server_key(srv)
            path = key_file_path(srv)
            st = os.stat(path)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, oct(st.st_mode))
            with open(path, "rb") as f:
                priv = serialization.load_pem_private_key(f.read(), password=None)
            self.assertIsInstance(priv, Ed25519PrivateKey)
            self.assertEqual(priv.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw), pub)
            first = [srv.execute("echo", {"r": i}, nonce="rs-%d" % i) for i in range(7)]
            old_cp = checkpoint(srv)
            self.assertEqual(srv.stop(), 0)
        finally:
            srv.kill()
        # The last signed checkpoint is kept next to the key.
        with open(path + ".checkpoint", "rb") as f:
            kept = f.read().decode()
        self.assertEqual(kept, old_cp)
        srv = Server(workdir=d).start()
        try:
            pub2, info2 = server_key(srv)
            self.assertEqual(info2, info, "the key was not reused")
            self.assertEqual(checkpoint(srv), old_cp)
            pem = info["public_key_pem"]
            for r in first:
                self.assert_receipt_verifies(srv, r.json()["signed_receipt"], pem)
                got = srv.get("/receipts/" + r.json()["id"]).json()
                self.assert_receipt_verifies(srv, got, pem)
            # A replay across the restart: the same bytes.
            again = srv.execute("echo", {"r": 3}, nonce="rs-3")
            self.assertEqual(again.body, first[3].body)
            r = srv.execute("echo", {}, nonce="rs-new")
            self.assertEqual(r.json()["signed_receipt"]["receipt"]["seq"], 8)
            new_cp = checkpoint(srv)
            old, new = ov.parse_checkpoint(old_cp, pub), ov.parse_checkpoint(new_cp, pub)
            self.assertEqual((old.size, new.size), (7, 9))
            proof = srv.get("/log/consistency?old=7&new=9").json()
            ov.verify_consistency_proof(pub, old_cp, new_cp, proof)
            self.assertEqual(self.run_py(["consistency", "--key", self.pub_file(pem),
                                          "--old", self.tmpfile("o", old_cp),
                                          "--new", self.tmpfile("n", new_cp),
                                          self.tmpfile("p", json.dumps(proof))]), (0, "ok"))
            self.assert_log_verifies(pem, new_cp, export_all(srv))
            self.assertEqual(srv.stop(), 0)
        finally:
            srv.kill()

    def test_receipt_key_from_openssl(self):
        key = os.path.join(self.tmp, "k.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", key],
                       check=True, capture_output=True)
        with open(key, "rb") as f:
            raw = serialization.load_pem_private_key(f.read(), password=None).public_key() \
                .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        d = self.workdir()
        with Server(workdir=d, env={"OPENEXEC_RECEIPT_KEY": key}) as srv:
            pub, info = server_key(srv)
            self.assertEqual(pub, raw)
            self.assertEqual(info["key_id"], hashlib.sha256(raw).hexdigest()[:16])
            self.assertEqual(info["origin"], "openexec/" + info["key_id"])
            r = srv.execute("echo", {})
            self.assert_receipt_verifies(srv, r.json()["signed_receipt"], info["public_key_pem"])
            self.assertFalse(os.path.exists(key_file_path(srv)), "a key was generated anyway")

    def test_log_origin_override(self):
        d = self.workdir()
        env = {"OPENEXEC_LOG_ORIGIN": "example.com/openexec/prod-1"}
        with Server(workdir=d, env=env) as srv:
            pub, info = server_key(srv)
            self.assertEqual(info["origin"], "example.com/openexec/prod-1")
            # The empty log has a signed size-0 checkpoint, and its empty export verifies.
            empty = checkpoint(srv)
            cp = ov.parse_checkpoint(empty, pub)
            self.assertEqual((cp.size, cp.root), (0, hashlib.sha256(b"").digest()))
            self.assertEqual(export_all(srv), b"")
            self.assert_log_verifies(info["public_key_pem"], empty, b"")
            r = srv.execute("echo", {})
            signed = r.json()["signed_receipt"]
            self.assertEqual(signed["receipt"]["log"], "example.com/openexec/prod-1")
            cp = ov.parse_checkpoint(signed["checkpoint"], pub)
            self.assertEqual(cp.origin, "example.com/openexec/prod-1")
            self.assertIn("\u2014 example.com/openexec/prod-1 ", signed["checkpoint"])
            self.assert_receipt_verifies(srv, signed, info["public_key_pem"])

    @unittest.skipIf(PG, "restores a copy of the SQLite files")
    def test_restored_backup_cannot_fork_the_log(self):
        d = self.workdir()
        backup = os.path.join(self.tmp, "backup")
        os.mkdir(backup)

        def db_files(directory):
            return [n for n in os.listdir(directory)
                    if n.startswith("openexec.db") and not n.startswith("openexec.db.key")]

        with Server(workdir=d) as srv:
            pub, _ = server_key(srv)
            for i in range(3):
                srv.execute("echo", {}, nonce="bk-%d" % i)
            self.assertEqual(srv.stop(), 0)
        for name in db_files(d):
            shutil.copy2(os.path.join(d, name), backup)
        with Server(workdir=d) as srv:
            for i in range(3, 6):
                srv.execute("echo", {}, nonce="bk-%d" % i)
            signed = checkpoint(srv)
            self.assertEqual(srv.stop(), 0)
        for name in db_files(d):
            os.unlink(os.path.join(d, name))
        for name in os.listdir(backup):
            shutil.copy2(os.path.join(backup, name), d)
        again = Server(workdir=d)
        try:
            again.start()
        except RuntimeError:
            self.assertNotEqual(again.proc.returncode, 0)  # refused to start: right
        else:
            # If it serves at all, it must not sign a smaller or a forked tree.
            cp = ov.parse_checkpoint(checkpoint(again), pub)
            self.assertGreaterEqual(cp.size, 6, "a restored backup signed a smaller checkpoint")
            r = again.get("/log/consistency?old=6&new=%d" % cp.size)
            ov.verify_consistency_proof(pub, signed, checkpoint(again), r.json())
        finally:
            again.kill()
        with open(os.path.join(d, "openexec.db.key.checkpoint")) as f:
            self.assertEqual(f.read(), signed)

    def test_second_log_in_the_same_database(self):
        d = self.workdir()
        ka, kb = (os.path.join(self.tmp, n) for n in ("a.pem", "b.pem"))
        for path in (ka, kb):
            with open(path, "w") as f:
                f.write(clawshield.keygen()[0])
        a = Server(workdir=d, env={"OPENEXEC_RECEIPT_KEY": ka}).start()
        b = Server(workdir=d, env={"OPENEXEC_RECEIPT_KEY": kb}).start()
        try:
            _, ia = server_key(a)
            pub_b, ib = server_key(b)
            self.assertNotEqual(ia["origin"], ib["origin"])
            ra = a.execute("echo", {"who": "a"})
            rb = [b.execute("echo", {"who": "b", "i": i}) for i in range(3)]
            self.assertEqual(ra.json()["signed_receipt"]["receipt"]["seq"], 0)
            self.assertEqual([r.json()["signed_receipt"]["receipt"]["seq"] for r in rb], [0, 1, 2])
            # A reads B's log as it is now (allowing 3 s to catch up):
            # checkpoint, export, receipts, proofs.
            deadline = time.monotonic() + 3
            while checkpoint(a, log=ib["origin"]) != checkpoint(b) and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
            with self.subTest("GET /checkpoint?log="):
                self.assertEqual(checkpoint(a, log=ib["origin"]), checkpoint(b))
            with self.subTest("GET /receipts?log="):
                self.assertEqual(export_all(a, log=ib["origin"]), export_all(b))
            with self.subTest("GET /receipts/{id} of another log"):
                got = a.get("/receipts/" + rb[2].json()["id"])
                self.assertEqual(got.status, 200, got)
                self.assertEqual(got.json()["receipt"], rb[2].json()["signed_receipt"]["receipt"])
                ov.verify_signed_receipt(pub_b, got.json())
            with self.subTest("GET /log/consistency?log="):
                p = a.get("/log/consistency?old=1&new=3&log=" + ib["origin"])
                self.assertEqual(p.status, 200, p)
                ov.verify_consistency_proof(pub_b, rb[0].json()["signed_receipt"]["checkpoint"],
                                            checkpoint(b), p.json())
            with self.subTest("a replay at the other log's instance: the same bytes"):
                nonce = "2nd-log-" + uuid.uuid4().hex
                first = b.execute("echo", {"who": "b"}, nonce=nonce)
                again = a.execute("echo", {"who": "b"}, nonce=nonce)
                self.assertEqual(again.headers.get("idempotent-replayed"), "true", again)
                self.assertEqual(again.body, first.body)
                ov.verify_signed_receipt(pub_b, again.json()["signed_receipt"])
            # Each log's key is recorded with it: A verifies B's receipts.
            for r in rb:
                v = a.post("/receipts/verify", {"signed_receipt": r.json()["signed_receipt"]})
                self.assertEqual(v.json(), {"valid": True}, v)
            r = a.get("/checkpoint?log=nosuch/log")
            self.assertEqual(r.status, 404, r)
            for bare in ("/checkpoint?log", "/checkpoint?log=", "/receipts?log"):
                r = a.get(bare)  # no origin is named "": not this instance's log
                self.assertEqual((r.status, r.json()["error"]), (404, "not_found"), (bare, r))
            # A second live instance with A's origin refuses to start.
            dup = Server(workdir=d, env={"OPENEXEC_RECEIPT_KEY": ka})
            with self.assertRaises(RuntimeError):
                dup.start(timeout=10)
            dup.kill()
        finally:
            a.kill()
            b.kill()

    def test_replay_from_a_log_of_an_older_schema_after_the_origin_changed(self):
        # An execution recorded under origin A, in a database of schema 1
        # (which kept only each log's latest head), replayed after the
        # instance restarted as origin B: B must answer with A's own note,
        # which the upgrade to schema 2 carried over, not sign A's head.
        d = self.workdir()
        nonce = "old-schema-" + uuid.uuid4().hex
        with Server(workdir=d, env={"OPENEXEC_LOG_ORIGIN": "example.com/log-a"}) as srv:
            for i in range(5):
                srv.execute("echo", {"warm": i})
            first = srv.execute("echo", {"v": 1}, nonce=nonce)
            self.assertEqual(first.status, 200, first)
            old_head = checkpoint(srv)
            self.assertEqual(srv.stop(), 0)
        downgrade_to_schema_1(d)
        with Server(workdir=d, env={"OPENEXEC_LOG_ORIGIN": "example.com/log-b"}) as srv:
            latest = 6 if harness.default_db_url(d).startswith("sqlite:") else 2
            self.assertIn("upgraded from version 1 to %d" % latest, srv.log())
            pub, info = server_key(srv)
            self.assertEqual(info["origin"], "example.com/log-b")
            again = srv.execute("echo", {"v": 1}, nonce=nonce)
            self.assertEqual(again.status, 200, again)
            self.assertEqual(again.headers.get("idempotent-replayed"), "true")
            self.assertEqual(again.body, first.body)
            signed = again.json()["signed_receipt"]
            self.assertEqual(signed["receipt"]["log"], "example.com/log-a")
            ov.verify_signed_receipt(pub, signed)  # one key, two origins
            # The tree nodes came through the upgrade: a fresh proof of A's
            # entry (leaf 5 of A's 6, from the nodes of levels 0 and 2)
            # against A's latest head still verifies.
            fresh = srv.get("/receipts/" + first.json()["id"]).json()
            self.assertEqual(fresh["checkpoint"], old_head)
            self.assertEqual(fresh["inclusion"]["size"], 6)
            self.assertEqual(len(fresh["inclusion"]["hashes"]), 2)
            ov.verify_signed_receipt(pub, fresh)
            # The replay itself is an entry of B's log, whose head is B's.
            cp = ov.parse_checkpoint(checkpoint(srv), pub)
            self.assertEqual((cp.origin, cp.size), ("example.com/log-b", 1))
            self.assertIn(b'"outcome":"replayed"', export_all(srv))


class SqlitePackedKeyTests(unittest.TestCase, VerifierMixin):
    """SQLite schema 6 keys receipts, tree nodes and signed heads by one
    integer that packs (log, position): the upgrade keeps every log byte for
    byte, and what the keys cannot hold is refused, never wrapped."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="oe-rcpt-v6-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        url = harness.default_db_url(self.tmp)
        self.addCleanup(harness.drop_pg_database, self.tmp)
        if not url.startswith("sqlite:///"):
            self.skipTest("the packed keys are SQLite's (schema 6)")
        self.path = url[len("sqlite:///"):]

    def db_script(self, script, downgrade=False):
        import sqlite3
        db = sqlite3.connect(self.path)
        try:
            if downgrade:
                harness.sqlite_receipt_log_to_schema_5(db)
            db.executescript(script)
        finally:
            db.close()

    def db_value(self, query):
        import sqlite3
        db = sqlite3.connect(self.path)
        try:
            return db.execute(query).fetchone()[0]
        finally:
            db.close()

    def test_upgrade_to_schema_6_keeps_every_log_byte_for_byte(self):
        a, b = ({"OPENEXEC_LOG_ORIGIN": "example.com/v6-" + x} for x in "ab")
        with Server(workdir=self.tmp, env=a) as srv:
            echoes = [srv.execute("echo", {"i": i}, nonce="v6-%d" % i) for i in range(40)]
            others = [srv.execute("nosuch", {}, nonce="v6-unknown"),
                      srv.execute("add", {"a": "x"}, nonce="v6-bad")]
            self.assertEqual([r.status for r in others], [400, 422])
            old_a = (checkpoint(srv), export_all(srv))
            self.assertEqual(srv.stop(), 0)
        with Server(workdir=self.tmp, env=b) as srv:
            in_b = [srv.execute("echo", {"b": i}, nonce="v6-b-%d" % i) for i in range(3)]
            old_b = (checkpoint(srv), export_all(srv))
            self.assertEqual(srv.stop(), 0)
        self.db_script("PRAGMA user_version = 5;", downgrade=True)
        with Server(workdir=self.tmp, env=a) as srv:
            self.assertIn("upgraded from version 5 to 6", srv.log())
            pub, info = server_key(srv)
            self.assertEqual((checkpoint(srv), export_all(srv)), old_a)
            self.assertEqual((checkpoint(srv, log=b["OPENEXEC_LOG_ORIGIN"]),
                              export_all(srv, log=b["OPENEXEC_LOG_ORIGIN"])), old_b)
            self.assert_log_verifies(info["public_key_pem"], *old_a)
            for r in echoes + others + in_b:
                signed = r.json()["signed_receipt"]
                got = srv.get("/receipts/" + r.json()["id"])
                self.assertEqual(got.status, 200, got)
                self.assertEqual(got.json()["receipt"], signed["receipt"])
                v = srv.post("/receipts/verify", {"signed_receipt": signed})
                self.assertEqual(v.json(), {"valid": True}, v)
            for i, first in enumerate(echoes):
                again = srv.execute("echo", {"i": i}, nonce="v6-%d" % i)
                self.assertEqual(again.headers.get("idempotent-replayed"), "true", again)
                self.assertEqual(again.body, first.body)
            # The log goes on where it stopped (42 entries, then 40 replays)
            # and proves consistent with the head from before the upgrade.
            new = srv.execute("echo", {}, nonce="v6-after")
            self.assertEqual(new.json()["signed_receipt"]["receipt"]["seq"], 82)
            p = srv.get("/log/consistency?old=42&new=83")
            self.assertEqual(p.status, 200, p)
            ov.verify_consistency_proof(pub, old_a[0], checkpoint(srv), p.json())
        self.assertEqual(self.db_value("SELECT group_concat(name) FROM pragma_table_info("
                                       "'receipts')"), "log_seq,exec_id,body")

    def test_upgrade_refuses_a_log_id_the_keys_cannot_hold(self):
        with Server(workdir=self.tmp) as srv:
            self.assertEqual(srv.execute("echo", {}, nonce="wide-1").status, 200)
            self.assertEqual(srv.stop(), 0)
        self.db_script("UPDATE logs SET log_id = 8192; UPDATE receipts SET log_id = 8192;"
                       " PRAGMA user_version = 5;", downgrade=True)
        r = harness.run_cli(["serve", "--port", "0"], cwd=self.tmp, timeout=60,
                            env={"OPENEXEC_DB_URL": "sqlite:///" + self.path})
        err = r.stderr.decode()
        self.assertNotEqual(r.returncode, 0, err)
        self.assertIn("every log id below 8192", err)
        # Nothing was written: the file is still at schema 5, whole.
        self.assertEqual(self.db_value("PRAGMA user_version"), 5)
        self.assertEqual(self.db_value("SELECT count(*) FROM receipts WHERE log_id = 8192"), 1)

    def test_a_log_beyond_the_last_key_is_refused_at_start(self):
        with Server(workdir=self.tmp) as srv:
            first = srv.execute("echo", {}, nonce="many-logs-1")
            self.assertEqual(first.status, 200)
            self.assertEqual(srv.stop(), 0)
        # Log 8191 is the last one the keys can hold; the next origin would
        # be 8192.
        self.db_script("INSERT INTO logs(log_id, origin, public_key, lease_expires_us)"
                       " VALUES (8191, 'example.com/last', zeroblob(32), -1);")
        r = harness.run_cli(["serve", "--port", "0"], cwd=self.tmp, timeout=60,
                            env={"OPENEXEC_DB_URL": "sqlite:///" + self.path,
                                 "OPENEXEC_LOG_ORIGIN": "example.com/one-too-many"})
        err = r.stderr.decode()
        self.assertNotEqual(r.returncode, 0, err)
        self.assertIn("the database holds 8191 logs", err)
        self.assertEqual(self.db_value("SELECT count(*) FROM logs"
                                       " WHERE origin = 'example.com/one-too-many'"), 0)
        # The logs it has still work.
        with Server(workdir=self.tmp) as srv:
            again = srv.execute("echo", {}, nonce="many-logs-1")
            self.assertEqual(again.body, first.body)


def downgrade_to_schema_1(directory):
    """Turns the stopped server's database of directory back into schema 1:
    no checkpoints table (the logs' latest heads stay on their rows); on
    SQLite tree nodes keyed by (level, idx) again, whole answer prefixes
    (head, receipt, inclusion proof: rebuilt here from the receipts, by this
    file's own Merkle code) instead of heads that name their receipt, and
    used approvals keyed by message alone; on
    PostgreSQL the unique constraint on executions.exec_id back."""
    url = harness.default_db_url(directory)
    if url.startswith("sqlite:///"):
        import sqlite3
        db = sqlite3.connect(url[len("sqlite:///"):])
        harness.sqlite_receipt_log_to_schema_5(db)
        for nonce, head, size, log, seq in db.execute(
                "SELECT nonce, response, tree_size, receipt_log, receipt_seq FROM executions"
                " WHERE receipt_seq IS NOT NULL").fetchall():
            bodies = [bytes(b) for (b,) in db.execute(
                "SELECT body FROM receipts WHERE log_id = ? AND seq < ? ORDER BY seq",
                (log, size))]
            path = ov.inclusion_path(seq, [ov.receipt_leaf_hash(json.loads(b)) for b in bodies])
            prefix = b'%s{"receipt":%s,"inclusion":{"size":%d,"index":%d,"hashes":[%s]},' \
                b'"checkpoint":' % (bytes(head), bodies[seq], size, seq,
                                    b",".join(b'"%s"' % base64.b64encode(h) for h in path))
            db.execute("UPDATE executions SET response = ? WHERE nonce = ?", (prefix, nonce))
        db.commit()
        db.executescript(
            "ALTER TABLE executions DROP COLUMN receipt_log;"
            " ALTER TABLE executions DROP COLUMN receipt_seq;"
            " CREATE TABLE approvals_v1 (message_sha256 BLOB PRIMARY KEY,"
            " approval_id TEXT NOT NULL UNIQUE, nonce BLOB NOT NULL, used_us INTEGER NOT NULL);"
            " INSERT INTO approvals_v1 SELECT message_sha256, approval_id, nonce, used_us"
            " FROM approvals_used;"
            " DROP TABLE approvals_used; ALTER TABLE approvals_v1 RENAME TO approvals_used;"
            " DROP TABLE checkpoints;"
            " CREATE TABLE tlog_nodes_v1 (log_id INTEGER NOT NULL, level INTEGER NOT NULL,"
            " idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (log_id, level, idx))"
            " WITHOUT ROWID;"
            " INSERT INTO tlog_nodes_v1 SELECT log_id, level, ((leaf + 1) >> level) - 1, hash"
            " FROM tlog_nodes;"
            " DROP TABLE tlog_nodes; ALTER TABLE tlog_nodes_v1 RENAME TO tlog_nodes;"
            " PRAGMA user_version = 1;")
        db.close()
    else:
        harness.psql(url, "DROP TABLE checkpoints;"
                     " ALTER TABLE executions ADD CONSTRAINT executions_exec_id_key"
                     " UNIQUE (exec_id);"
                     " UPDATE meta SET value = '1' WHERE key = 'schema_version'")


# --------------------------------------------------------------------------

DOC = os.path.join(harness.SOURCE_DIR, "docs", "receipts.md")


def doc_blocks(kind):
    """The fenced ```kind blocks of docs/receipts.md."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    return re.findall(r"^```%s\n(.*?)^```$" % re.escape(kind), text, re.S | re.M)


class DocsExampleTests(unittest.TestCase, VerifierMixin):
    """docs/receipts.md's worked example and by-hand verifier are right."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="oe-rcpt-doc-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def example(self):
        (pem,), (jsonl,), (cp,) = doc_blocks("pem"), doc_blocks("jsonl"), doc_blocks("checkpoint")
        return pem, jsonl, cp

    def test_worked_example_verifies(self):
        pem, jsonl, cp = self.example()
        seed_key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
        self.assertEqual(seed_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
            pem)
        raw = ov.load_public_key(pem)
        origin = "openexec/" + ov.key_id(raw)
        got = ov.verify_log(raw, cp, jsonl)
        self.assertEqual((got.origin, got.size), (origin, 3))
        self.assertEqual(ov.sign_checkpoint(origin, 3, got.root, seed_key), cp)
        self.assert_log_verifies(pem, cp, jsonl)
        entries = [json.loads(x) for x in jsonl.splitlines()]
        leaves = [ov.receipt_leaf_hash(e) for e in entries]
        with open(DOC, encoding="utf-8") as f:
            text = f.read()
        for digest in leaves + [ov.node_hash(leaves[0], leaves[1]), got.root,
                                ov.key_hash(origin, raw)]:
            self.assertIn(digest.hex(), text)
        for digest in ov.inclusion_path(1, leaves) + ov.consistency_path(2, leaves):
            self.assertIn(b64(digest), text)
        self.assertEqual(entries[0]["action_hash"], clawshield.action_hash("echo", {"msg": "hi"}))
        self.assertEqual(entries[0]["result_sha256"],
                         sha256_hex(json.dumps({"echo": {"msg": "hi"}}, sort_keys=True)))

    def test_by_hand_snippet(self):
        pem, jsonl, cp = self.example()
        (snippet,) = [b for b in doc_blocks("python") if "def mth" in b]
        for name, data in (("pub.pem", pem), ("cp", cp), ("export.jsonl", jsonl)):
            self.tmpfile(name, data)
        run = subprocess.run([sys.executable, "-c", snippet], cwd=self.tmp, capture_output=True,
                             timeout=60)
        self.assertEqual((run.returncode, run.stdout.decode().strip()),
                         (0, "ok: 3 entries of openexec/56475aa75463474c"), run.stderr)
        lines = jsonl.splitlines()
        self.tmpfile("export.jsonl", "\n".join([lines[0], lines[2], lines[1]]) + "\n")
        run = subprocess.run([sys.executable, "-c", snippet], cwd=self.tmp, capture_output=True,
                             timeout=60)
        self.assertNotEqual(run.returncode, 0)


if __name__ == "__main__":
    harness.main()
