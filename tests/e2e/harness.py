"""End-to-end harness: the real openexec binary on a loopback port.

Each Server runs in its own temporary directory with its own SQLite file
(OPENEXEC_DB_URL is set explicitly), binds port 0 and reads the port it got
from its "listening on" log line, so tests can run in parallel.  Nothing here
mocks OpenExec: requests go over real TCP with http.client, and stopping a
server sends SIGTERM and checks it exits 0.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

BIN = os.environ.get("OPENEXEC_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "openexec")
SOURCE_DIR = os.environ.get("OE_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED_DIR = os.environ.get("OE_SHARED_DIR") or os.path.join(SOURCE_DIR, "..", "shared")

LISTEN_RE = re.compile(r"listening on (\S+):(\d+)")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # dict, lower-case names
        self.body = body        # bytes

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "Response(%d, %r)" % (self.status, self.body[:300])


class Server:
    """A running openexec serve.  Use as a context manager."""

    def __init__(self, env=None, args=None, db_url=None, workdir=None, threads=None):
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="oe-e2e-")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("OPENEXEC_", "CLAWSHIELD_"))}
        self.env["OPENEXEC_DB_URL"] = db_url or default_db_url(self.dir)
        if threads is not None:
            self.env["OPENEXEC_THREADS"] = str(threads)
        self.env.update(env or {})
        self.args = args or []
        self.proc = None
        self.port = None
        self.log_lines = []
        self._log_lock = threading.Lock()

    def start(self, timeout=15):
        self.proc = subprocess.Popen(
            [BIN, "serve", "--host", "127.0.0.1", "--port", "0"] + self.args,
            cwd=self.dir, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        found = threading.Event()

        def pump():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace")
                with self._log_lock:
                    self.log_lines.append(line)
                m = LISTEN_RE.search(line)
                if m and self.port is None:
                    self.port = int(m.group(2))
                    found.set()
            found.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        if not found.wait(timeout) or self.port is None:
            self.kill()
            raise RuntimeError("server did not start:\n" + self.log())
        return self

    def log(self):
        with self._log_lock:
            return "".join(self.log_lines)

    def request(self, method, path, body=None, headers=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            elif isinstance(body, str):
                body = body.encode()
            hdrs = {"Content-Type": "application/json"} if body is not None else {}
            hdrs.update(headers or {})
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body=body, **kw)

    def execute(self, action, payload=None, nonce=None, artifact=None, **kw):
        body = {"action": action, "nonce": nonce or os.urandom(8).hex()}
        if payload is not None:
            body["payload"] = payload
        if artifact is not None:
            body["approval_artifact"] = artifact
        return self.post("/execute", body, **kw)

    def raw(self, data, timeout=10, read_all=True):
        """Sends raw bytes on a new connection; returns what came back."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            s.sendall(data)
            chunks = []
            while True:
                try:
                    c = s.recv(65536)
                except socket.timeout:
                    break
                if not c:
                    break
                chunks.append(c)
                if not read_all:
                    break
            return b"".join(chunks)
        finally:
            s.close()

    def stop(self, timeout=20):
        """SIGTERM; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self):
        self.kill()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


def default_db_url(directory):
    """The store every e2e test uses: SQLite in the test's directory, or the
    PostgreSQL named by OE_TEST_PG_URL when the suite runs against it."""
    pg = os.environ.get("OE_TEST_PG_URL")
    if pg:
        return pg
    return "sqlite:///" + os.path.join(directory, "openexec.db")


def run_cli(args, env=None, cwd=None, timeout=30, input=None):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("OPENEXEC_", "CLAWSHIELD_"))}
    e.update(env or {})
    return subprocess.run([BIN] + args, env=e, cwd=cwd, capture_output=True,
                          timeout=timeout, input=input)


def main():
    unittest.main(verbosity=2)
