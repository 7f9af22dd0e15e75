#!/usr/bin/env python3
"""client.py - an OpenExec client in Python's standard library.

Runs one action exactly once, the way a careful client should:

  1. picks a fresh nonce for the logical request (uuid4);
  2. POSTs /execute, and on a timeout, a dropped connection, 503 or 409
     request_in_progress sends the SAME bytes again (same nonce), with
     exponential backoff and jitter, honouring Retry-After, a bounded number
     of times.  The server runs a nonce at most once, so a retry can never
     run the action twice: at worst it gets the first answer back;
  3. sends the request once more on purpose and shows that the answer is
     the stored one, byte for byte, with Idempotent-Replayed: true;
  4. verifies the signed receipt: by POST /receipts/verify, and offline
     (SPEC 5.2): the Ed25519 signature on the checkpoint with the log's key
     from GET /receipts/key, the RFC 6962 inclusion proof of the receipt
     recomputed with SHA-256, and that the receipt describes this request
     (exec_id, action, action_hash, nonce, result).  The signature check
     uses python3-cryptography when it is installed (Debian:
     python3-cryptography); without it the proof is still recomputed and
     the signature is left to the server's /receipts/verify.

In production, fetch the key once and pin it (configuration, not a request
per call): a key fetched from the server you are checking proves little.

Usage:
  client.py [--url URL] [--action echo] [--payload JSON] [--nonce N]
            [--timeout S] [--attempts N]
Environment: OPENEXEC_URL (default http://127.0.0.1:5000), OPENEXEC_TIMEOUT
(seconds per attempt, default 10), OPENEXEC_ATTEMPTS (default 5).
Exit status: 0 executed and verified, 1 refused or not verified, 2 usage.
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import random
import sys
import time
import urllib.parse
import uuid

RETRY_STATUSES = {503}           # nothing was attempted: always safe to retry
MAX_BACKOFF = 5.0                # seconds
MAX_RETRY_AFTER = 30.0


def log(msg):
    print(msg, file=sys.stderr)


class Client:
    def __init__(self, url, timeout):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https"):
            raise ValueError("URL must be http:// or https://")
        self.scheme, self.host, self.port = u.scheme, u.hostname, u.port
        self.base = u.path.rstrip("/")
        self.timeout = timeout

    def request(self, method, path, body=None):
        """One attempt; returns (status, headers, body bytes).  Raises
        OSError / http.client.HTTPException on network trouble."""
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=self.timeout)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, self.base + path, body=body, headers=headers)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def get_json(self, path):
        status, _, body = self.request("GET", path)
        if status != 200:
            raise RuntimeError("GET %s: HTTP %d %s" % (path, status, body[:200]))
        return json.loads(body)

    def post_json(self, path, obj):
        status, _, body = self.request("POST", path, json.dumps(obj).encode())
        return status, json.loads(body)


def execute_with_retries(client, body, attempts):
    """POSTs body to /execute until an answer that is final, at most
    `attempts` times.  body is bytes and is sent unchanged every time: the
    same nonce is what makes the retry safe."""
    for attempt in range(1, attempts + 1):
        delay = min(MAX_BACKOFF, 0.2 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
        try:
            status, headers, answer = client.request("POST", "/execute", body)
        except (OSError, http.client.HTTPException) as e:
            why = "timed out" if "timed out" in str(e) else "%s: %s" % (type(e).__name__, e)
        else:
            code = None
            if status == 409:
                try:
                    code = json.loads(answer).get("error")
                except ValueError:
                    pass
            if status not in RETRY_STATUSES and code != "request_in_progress":
                return status, headers, answer
            why = "HTTP %d%s" % (status, " " + code if code else "")
            ra = headers.get("retry-after", "")
            if ra.isdigit():
                delay = min(MAX_RETRY_AFTER, float(ra))
        if attempt == attempts:
            log("attempt %d/%d: %s; giving up" % (attempt, attempts, why))
            break
        log("attempt %d/%d: %s; retrying with the same nonce in %.1fs"
            % (attempt, attempts, why, delay))
        time.sleep(delay)
    return None, None, None


# ---- offline verification (SPEC 5.2, RFC 6962 / RFC 9162) -----------------

def sha256(b):
    return hashlib.sha256(b).digest()


def canon(obj):
    """OpenExec's canonical JSON: exactly Python's compact sorted dumps."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def root_from_inclusion(leaf, index, size, hashes):
    """RFC 9162 2.1.3.2: the root that the inclusion proof leads to."""
    if index >= size:
        raise ValueError("index %d outside tree of size %d" % (index, size))
    fn, sn, r = index, size - 1, leaf
    for p in hashes:
        if sn == 0:
            raise ValueError("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = sha256(b"\x01" + p + r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("inclusion proof too short")
    return r


def raw_ed25519_key(pem):
    """The 32 key bytes of an Ed25519 SubjectPublicKeyInfo PEM."""
    b64 = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
    der = base64.b64decode(b64)
    prefix = bytes.fromhex("302a300506032b6570032100")  # SEQ { SEQ { OID 1.3.101.112 } BIT STRING }
    if len(der) != 44 or not der.startswith(prefix):
        raise ValueError("not an Ed25519 public key")
    return der[12:]


def verify_offline(signed, key_info):
    """Raises ValueError unless signed (a SignedReceipt) checks out against
    key_info (GET /receipts/key).  Returns a note on the signature check."""
    receipt, inc, note = signed["receipt"], signed["inclusion"], signed["checkpoint"]
    origin = key_info["origin"]
    pub = raw_ed25519_key(key_info["public_key_pem"])

    body, sep, sigs = note.partition("\n\n")
    if not sep:
        raise ValueError("checkpoint has no signature block")
    lines = body.split("\n")
    if len(lines) < 3 or lines[0] != origin:
        raise ValueError("checkpoint is not of log %r" % origin)
    size, root = int(lines[1]), base64.b64decode(lines[2], validate=True)
    signed_text = (body + "\n").encode()
    key_hash = sha256(origin.encode() + b"\n\x01" + pub)[:4]
    sig = None
    for line in sigs.split("\n"):
        if line.startswith("\u2014 %s " % origin):
            blob = base64.b64decode(line.rsplit(" ", 1)[1], validate=True)
            if blob[:4] == key_hash and len(blob) == 68:
                sig = blob[4:]
    if sig is None:
        raise ValueError("no signature by the log's key on the checkpoint")
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.exceptions import InvalidSignature
    except ImportError:
        note_sig = "signature not checked offline (python3-cryptography missing)"
    else:
        try:
            Ed25519PublicKey.from_public_bytes(pub).verify(sig, signed_text)
        except InvalidSignature:
            raise ValueError("checkpoint signature does not verify")
        note_sig = "Ed25519 checkpoint signature ok"

    if inc["size"] != size or receipt["seq"] != inc["index"] or receipt["log"] != origin:
        raise ValueError("receipt, proof and checkpoint disagree")
    leaf = sha256(b"\x00" + canon(receipt).encode())
    hashes = [base64.b64decode(h, validate=True) for h in inc["hashes"]]
    if root_from_inclusion(leaf, inc["index"], size, hashes) != root:
        raise ValueError("inclusion proof does not lead to the signed root")
    return note_sig


def check_receipt_matches(receipt, answer, action, payload, nonce):
    """The receipt must describe this request and this answer."""
    want = {
        "exec_id": answer["id"],
        "action": action,
        "action_hash": hashlib.sha256(
            canon({"action": action, "payload": payload or {}}).encode()).hexdigest(),
        "nonce_sha256": hashlib.sha256(nonce.encode()).hexdigest(),
        "outcome": "executed",
        "status": 200,
        "result_sha256": hashlib.sha256(
            json.dumps(answer["result"], sort_keys=True).encode()).hexdigest(),
        "error": None,
    }
    for k, v in want.items():
        if receipt.get(k) != v:
            raise ValueError("receipt %s is %r, expected %r" % (k, receipt.get(k), v))


def main():
    ap = argparse.ArgumentParser(description="Execute one action on OpenExec, retry safely, verify the receipt.")
    ap.add_argument("--url", default=os.environ.get("OPENEXEC_URL", "http://127.0.0.1:5000"))
    ap.add_argument("--action", default="echo")
    ap.add_argument("--payload", default='{"hello": "world"}', help="JSON object")
    ap.add_argument("--nonce", default=None, help="default: a fresh uuid4")
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("OPENEXEC_TIMEOUT", "10")))
    ap.add_argument("--attempts", type=int, default=int(os.environ.get("OPENEXEC_ATTEMPTS", "5")))
    args = ap.parse_args()
    try:
        payload = json.loads(args.payload)
        client = Client(args.url, args.timeout)
    except ValueError as e:
        ap.error(str(e))
    if args.attempts < 1:
        ap.error("--attempts must be at least 1")
    nonce = args.nonce or str(uuid.uuid4())
    body = json.dumps({"action": args.action, "payload": payload, "nonce": nonce}).encode()
    print("nonce: %s" % nonce)

    status, headers, answer = execute_with_retries(client, body, args.attempts)
    if status is None:
        log("no final answer after %d attempts; it is safe to retry later with nonce %s"
            % (args.attempts, nonce))
        return 1
    first = answer
    doc = json.loads(answer)
    if status != 200:
        print("refused: HTTP %d %s: %s" % (status, doc.get("error"), doc.get("detail")))
        return 1
    print("executed: id %s result %s%s" % (doc["id"], json.dumps(doc["result"]),
          " (replayed: an earlier attempt had run it)" if headers.get("idempotent-replayed") else ""))

    # A deliberate retry with the same nonce: the stored answer, byte for byte.
    status2, headers2, again = execute_with_retries(client, body, args.attempts)
    if status2 != status or again != first or headers2.get("idempotent-replayed") != "true":
        print("replay differs from the first answer")
        return 1
    print("replay: identical bytes (%d), Idempotent-Replayed: true" % len(again))

    signed = doc["signed_receipt"]
    st, verdict = client.post_json("/receipts/verify", {"signed_receipt": signed})
    if st != 200 or verdict.get("valid") is not True:
        print("server says the signed receipt is NOT valid: %d %s" % (st, verdict))
        return 1
    st, legacy = client.post_json("/receipts/verify", {"exec_id": doc["id"], "result": doc["result"],
                                                       "receipt": doc["receipt"]})
    if st != 200 or legacy.get("valid") is not True:
        print("server says the legacy receipt is NOT valid: %d %s" % (st, legacy))
        return 1
    print("server verify: signed receipt valid, legacy receipt valid")

    try:
        key_info = client.get_json("/receipts/key")
        note = verify_offline(signed, key_info)
        check_receipt_matches(signed["receipt"], doc, args.action, payload, nonce)
    except (ValueError, KeyError, TypeError) as e:
        print("offline verification FAILED: %s" % e)
        return 1
    print("offline verify: %s; inclusion proof of seq %d in %d entries ok; receipt matches this request"
          % (note, signed["inclusion"]["index"], signed["inclusion"]["size"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
