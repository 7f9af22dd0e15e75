"""The client examples (examples/curl.sh, client.py, client.mjs) against the
real server, directly and through a fault-injecting proxy.

Each example must: execute with a fresh nonce, retry the identical request
(same nonce) on a dropped answer, a 503 and a timeout, show the deliberate
replay is byte-identical, and verify the signed receipt (on the server, and
offline where the example does).  The server's own receipt log is the
witness that the action ran exactly once: one "executed" entry for the
nonce, every retry after it a "replayed" entry.  A proxy that only ever
answers 503 shows the retries are bounded and the example gives up with
exit status 1.

The Node.js example is skipped only when `node` is not installed.
"""

import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import unittest

import harness

EXAMPLES = os.path.join(harness.SOURCE_DIR, "examples")
NODE = shutil.which("node")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")
CURL = shutil.which("curl")
# A slower server (valgrind, sanitizers) gets proportionally longer timeouts.
SCALE = float(os.environ.get("OE_E2E_TIME_SCALE", "1"))


class FaultProxy:
    """A one-request-per-connection HTTP proxy on loopback.  Requests to
    POST /execute take the next fault from `faults` (then pass through):
      "drop" - forward, then close without answering (the answer is lost);
      "hang" - forward, then say nothing for `hang` seconds;
      "503"  - answer 503 busy with Retry-After: 1, forward nothing.
    With always_503 every /execute gets "503".  Records every request."""

    def __init__(self, upstream_port, faults=(), always_503=False, hang=4.0):
        self.upstream_port = upstream_port
        self.faults = list(faults)
        self.always_503 = always_503
        self.hang = hang
        self.requests = []          # (method, path, body)
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def close(self):
        self.closed = True
        self.sock.close()

    def accept_loop(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    @staticmethod
    def read_request(conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            body += chunk
        return method, path, headers, body

    def handle(self, conn):
        try:
            req = self.read_request(conn)
            if req is None:
                return
            method, path, headers, body = req
            fault = "pass"
            with self.lock:
                self.requests.append((method, path, body))
                if method == "POST" and path == "/execute":
                    if self.always_503:
                        fault = "503"
                    elif self.faults:
                        fault = self.faults.pop(0)
            if fault == "503":
                msg = b'{"detail":"Busy (injected by the test proxy)","error":"busy"}'
                conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                             b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(msg), msg))
                return
            answer = self.forward(method, path, headers, body)
            if fault == "drop":
                return
            if fault == "hang":
                time.sleep(self.hang)
                return
            self.send(conn, *answer)
        except OSError:
            pass
        finally:
            conn.close()

    def forward(self, method, path, headers, body):
        """Asks the real server; returns (status, reason, headers, body)."""
        up = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        fwd = {k: v for k, v in headers.items() if k in ("content-type", "x-request-id")}
        up.request(method, path, body=body if body or method == "POST" else None, headers=fwd)
        r = up.getresponse()
        answer = r.read()
        out_headers = [(k, v) for k, v in r.getheaders()
                       if k.lower() not in ("connection", "content-length", "transfer-encoding")]
        up.close()
        return r.status, r.reason, out_headers, answer

    @staticmethod
    def send(conn, status, reason, headers, answer):
        head = "HTTP/1.1 %d %s\r\n" % (status, reason)
        head += "".join("%s: %s\r\n" % kv for kv in headers)
        head += "Connection: close\r\nContent-Length: %d\r\n\r\n" % len(answer)
        conn.sendall(head.encode("latin-1") + answer)

    def execute_bodies(self):
        with self.lock:
            return [b for m, p, b in self.requests if m == "POST" and p == "/execute"]


class ExampleTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server().start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    # ---- running an example

    def command(self, which, payload=None):
        if which == "python":
            cmd = [PYTHON, os.path.join(EXAMPLES, "client.py")]
            return cmd + (["--payload", payload] if payload else [])
        if which == "node":
            if NODE is None:
                self.skipTest("node is not installed")
            cmd = [NODE, os.path.join(EXAMPLES, "client.mjs")]
            return cmd + (["--payload", payload] if payload else [])
        if CURL is None:
            self.skipTest("curl is not installed")
        return ["sh", os.path.join(EXAMPLES, "curl.sh")] + (["echo", payload] if payload else [])

    def run_example(self, which, port, payload=None, timeout=10 * SCALE, attempts=5):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OPENEXEC_", "CLAWSHIELD_"))}
        env.update(OPENEXEC_URL="http://127.0.0.1:%d" % port, OPENEXEC_TIMEOUT=str(int(timeout)),
                   OPENEXEC_ATTEMPTS=str(attempts), OPENEXEC_BIN=harness.BIN)
        started = time.monotonic()
        r = subprocess.run(self.command(which, payload), env=env, capture_output=True,
                           timeout=120 * SCALE, stdin=subprocess.DEVNULL)
        out, err = r.stdout.decode(), r.stderr.decode()
        return r.returncode, out, err, time.monotonic() - started

    def ledger(self, nonce):
        """The outcomes of the receipts for this nonce, oldest first."""
        digest = hashlib.sha256(nonce.encode()).hexdigest()
        r = self.srv.get("/receipts?limit=10000")
        self.assertEqual(r.status, 200)
        return [json.loads(line)["outcome"] for line in r.body.decode().splitlines()
                if json.loads(line)["nonce_sha256"] == digest]

    @staticmethod
    def nonce_of(out):
        for line in out.splitlines():
            if line.startswith("nonce: "):
                return line[len("nonce: "):]
        raise AssertionError("the example printed no nonce:\n" + out)

    def check_success(self, which, rc, out, err):
        self.assertEqual(rc, 0, "%s example failed:\n%s\n%s" % (which, out, err))
        self.assertIn("executed: id ", out)
        self.assertIn("replay: identical bytes", out)
        self.assertIn("server verify: signed receipt valid", out)
        self.assertRegex(out, r"offline verify: (ok|Ed25519 checkpoint signature ok)")

    # ---- the scenarios

    def direct(self, which):
        payload = '{"msg":"hi %s","n":[1,2,3]}' % which
        rc, out, err, _ = self.run_example(which, self.srv.port, payload)
        self.check_success(which, rc, out, err)
        self.assertEqual(self.ledger(self.nonce_of(out)), ["executed", "replayed"])

    def through_faults(self, which):
        proxy = FaultProxy(self.srv.port, faults=["drop", "503", "hang"], hang=4 * SCALE)
        try:
            rc, out, err, took = self.run_example(which, proxy.port, timeout=max(1, round(SCALE)))
        finally:
            proxy.close()
        self.check_success(which, rc, out, err)
        bodies = proxy.execute_bodies()
        # three failed attempts, the answer, the deliberate replay
        self.assertGreaterEqual(len(bodies), 5, err)
        self.assertEqual(len(set(bodies)), 1, "every retry sends the same bytes (same nonce)")
        nonce = self.nonce_of(out)
        self.assertEqual(json.loads(bodies[0])["nonce"], nonce)
        outcomes = self.ledger(nonce)
        self.assertEqual(outcomes[0], "executed", outcomes)
        self.assertEqual(outcomes.count("executed"), 1, "ran exactly once: %s" % outcomes)
        self.assertEqual(set(outcomes[1:]), {"replayed"}, outcomes)
        self.assertLess(took, 60 * SCALE)

    def gives_up(self, which):
        proxy = FaultProxy(self.srv.port, always_503=True)
        try:
            rc, out, err, took = self.run_example(which, proxy.port, timeout=2, attempts=3)
        finally:
            proxy.close()
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(len(proxy.execute_bodies()), 3, "exactly OPENEXEC_ATTEMPTS attempts")
        self.assertIn("no final answer after 3 attempts", err)
        self.assertLess(took, 30 * SCALE)
        self.assertEqual(self.ledger(self.nonce_of(out)), [], "a 503 attempt reached nothing")

    def test_python_direct(self):
        self.direct("python")

    def test_python_retries_through_faults(self):
        self.through_faults("python")

    def test_python_gives_up(self):
        self.gives_up("python")

    def test_node_direct(self):
        self.direct("node")

    def test_node_retries_through_faults(self):
        self.through_faults("node")

    def test_node_gives_up(self):
        self.gives_up("node")

    def test_curl_direct(self):
        self.direct("curl")

    def test_curl_retries_through_faults(self):
        self.through_faults("curl")

    def test_curl_gives_up(self):
        self.gives_up("curl")

    def test_offline_checks_catch_a_forged_receipt(self):
        """client.py's offline verifier is no rubber stamp: a receipt with
        one changed field, or a checkpoint with one flipped signature bit,
        fails (client.mjs: test_node_rejects_a_forged_answer)."""
        import importlib.util
        spec = importlib.util.spec_from_file_location("oe_client", os.path.join(EXAMPLES, "client.py"))
        client = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(client)
        r = self.srv.execute("echo", {"k": 1})
        signed = r.json()["signed_receipt"]
        key = self.srv.get("/receipts/key").json()
        client.verify_offline(signed, key)
        forged = json.loads(json.dumps(signed))
        forged["receipt"]["status"] = 201
        with self.assertRaises(ValueError):
            client.verify_offline(forged, key)
        # One flipped bit in the checkpoint's signature.
        bad_sig = json.loads(json.dumps(signed))
        body, sep, sig_line = bad_sig["checkpoint"].rstrip("\n").rpartition("\n")
        prefix, _, blob = sig_line.rpartition(" ")
        raw = bytearray(base64.b64decode(blob))
        raw[10] ^= 1
        bad_sig["checkpoint"] = body + sep + prefix + " " + base64.b64encode(bytes(raw)).decode() + "\n"
        try:
            import cryptography  # noqa: F401  (the signature check needs it)
        except ImportError:
            return
        with self.assertRaises(ValueError):
            client.verify_offline(bad_sig, key)

    def test_node_rejects_a_forged_answer(self):
        if NODE is None:
            self.skipTest("node is not installed")
        self.forged_answer_rejected("node")

    def test_python_rejects_a_forged_answer(self):
        self.forged_answer_rejected("python")

    def forged_answer_rejected(self, which):
        """A proxy that rewrites the receipt inside /execute answers (and the
        server's /receipts/verify verdict, so only the offline check can
        notice): the example must fail."""
        proxy = ForgingProxy(self.srv.port)
        try:
            rc, out, err, _ = self.run_example(which, proxy.port)
        finally:
            proxy.close()
        self.assertEqual(rc, 1, out + err)
        self.assertIn("offline verification FAILED", out)


class ForgingProxy(FaultProxy):
    """Passes everything through, but changes the receipt's status in every
    /execute answer and makes every /receipts/verify say valid."""

    def handle(self, conn):
        try:
            req = self.read_request(conn)
            if req is None:
                return
            method, path, headers, body = req
            if path == "/receipts/verify":
                status, reason, extra, answer = 200, "OK", [], b'{"valid":true}'
            else:
                status, reason, extra, answer = self.forward(method, path, headers, body)
                if path == "/execute" and status == 200:
                    answer = answer.replace(b'"status":200', b'"status":201', 1)
            self.send(conn, status, reason, extra, answer)
        except OSError:
            pass
        finally:
            conn.close()


if __name__ == "__main__":
    harness.main()
