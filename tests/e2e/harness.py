"""End-to-end harness: the real openexec binary on a loopback port.

Each Server runs in its own temporary directory with its own SQLite file
(OPENEXEC_DB_URL is set explicitly), binds port 0 and reads the port it got
from its "listening on" log line, so tests can run in parallel.  Nothing here
mocks OpenExec: requests go over real TCP with http.client, and stopping a
server sends SIGTERM and checks it exits 0.

With OE_TEST_PG_URL set (scripts/test.sh's second pass) the suite runs
against PostgreSQL instead: each working directory gets a fresh database of
that cluster, recorded in the directory, so test files running at the same
time (and reusing nonces like "echo-1") never see each other's rows, and a
server restarted in the same directory finds its data again.
"""

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

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

    def log_has(self, text, timeout=5):
        """Whether the server's log shows `text` within `timeout` seconds.
        The log reaches us through a pipe and a thread, so a line the
        server wrote just before answering may not be read yet when the
        answer arrives."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

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
        """Sends raw bytes on a new connection; returns what came back.

        A server that answers before reading the whole request (413, 400)
        and closes resets the connection if data is still arriving: sending
        then fails, and the reset ends the reading.  What it answered before
        is still in our receive queue, and that is what is returned."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            try:
                s.sendall(data)
            except (ConnectionResetError, BrokenPipeError):
                pass
            chunks = []
            while True:
                try:
                    c = s.recv(65536)
                except (socket.timeout, ConnectionResetError):
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
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        self._drain_log()
        return code

    def _drain_log(self):
        # The process has exited, but the pump thread may not yet have read
        # its last lines from the pipe: wait for it to reach EOF so log()
        # shows everything the server wrote.
        pump = getattr(self, "_pump", None)
        if pump is not None:
            pump.join(10)
            if not pump.is_alive() and self.proc.stderr is not None:
                self.proc.stderr.close()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self._drain_log()

    def cleanup(self):
        self.kill()
        if self.own_dir:
            drop_pg_database(self.dir)
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


def default_db_url(directory):
    """The store every e2e test uses: SQLite in the test's directory, or,
    when the suite runs against the PostgreSQL named by OE_TEST_PG_URL, a
    database of that cluster that belongs to the directory."""
    if os.environ.get("OE_TEST_PG_URL"):
        return pg_database_url(directory)
    return "sqlite:///" + os.path.join(directory, "openexec.db")


PG_MARKER = ".oe-test-pg-database"


def pg_url_with_database(url, name):
    """url with its database replaced by name."""
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))


def psql(url, sql, check=True):
    """Runs sql with psql on url; returns stdout (unaligned, tuples only)."""
    r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url,
                        "-c", sql], capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError("psql failed: " + r.stderr)
    return r.stdout


def new_pg_database(base_url=None):
    """Creates an empty database in the OE_TEST_PG_URL cluster; its URL."""
    base_url = base_url or os.environ["OE_TEST_PG_URL"]
    name = "oe_" + os.urandom(8).hex()
    psql(base_url, "CREATE DATABASE " + name)
    return pg_url_with_database(base_url, name)


def pg_database_url(directory):
    """The database of a test directory, created on first use and recorded
    in the directory, so a second server there finds the first one's rows."""
    marker = os.path.join(directory, PG_MARKER)
    base = os.environ["OE_TEST_PG_URL"]
    try:
        with open(marker) as f:
            return pg_url_with_database(base, f.read().strip())
    except FileNotFoundError:
        pass
    url = new_pg_database(base)
    with open(marker, "w") as f:
        f.write(urllib.parse.urlsplit(url).path.lstrip("/"))
    return url


def executions_count(server, nonce=None, prefix=None):
    """How many executions rows the server's store holds for one nonce (or
    for the nonces that start with prefix), read from the SQLite file or the
    PostgreSQL database the server was given; works after it stopped."""
    url = server.env["OPENEXEC_DB_URL"]
    key = (nonce if nonce is not None else prefix).encode()
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(os.path.join(server.dir, url[len("sqlite:///"):]))
        try:
            where = "nonce = ?" if nonce is not None else "substr(nonce, 1, %d) = ?" % len(key)
            return db.execute("SELECT count(*) FROM executions WHERE " + where,
                              (key,)).fetchone()[0]
        finally:
            db.close()
    where = ("nonce = decode('%s', 'hex')" if nonce is not None else
             "substring(nonce from 1 for %d) = decode('%%s', 'hex')" % len(key)) % key.hex()
    return int(psql(url, "SELECT count(*) FROM executions WHERE " + where).strip())


def sqlite_receipt_log_to_schema_5(db):
    """Rewrites the receipt log tables of a stopped server's SQLite database
    (an open sqlite3 connection) into their layout before schema 6: receipts,
    tree nodes and signed heads keyed by (log_id, position) in WITHOUT ROWID
    tables instead of one packed integer.  Leaves PRAGMA user_version alone."""
    mask = "((1 << 44) - 1)"
    db.executescript(
        "CREATE TABLE receipts_v5 (log_id INTEGER NOT NULL, seq INTEGER NOT NULL,"
        " exec_id TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (log_id, seq)) WITHOUT ROWID;"
        " INSERT INTO receipts_v5 SELECT log_seq >> 44, log_seq & %(m)s, exec_id, body"
        " FROM receipts;"
        " DROP TABLE receipts; ALTER TABLE receipts_v5 RENAME TO receipts;"
        " CREATE INDEX receipts_by_exec_id ON receipts(exec_id);"
        " CREATE TABLE tlog_nodes_v5 (log_id INTEGER NOT NULL, leaf INTEGER NOT NULL,"
        " level INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (log_id, leaf, level))"
        " WITHOUT ROWID;"
        " INSERT INTO tlog_nodes_v5 SELECT log_node >> 50, (log_node >> 6) & %(m)s,"
        " log_node & 63, hash FROM tlog_nodes;"
        " DROP TABLE tlog_nodes; ALTER TABLE tlog_nodes_v5 RENAME TO tlog_nodes;"
        " CREATE TABLE checkpoints_v5 (log_id INTEGER NOT NULL, size INTEGER NOT NULL,"
        " note TEXT NOT NULL, PRIMARY KEY (log_id, size)) WITHOUT ROWID;"
        " INSERT INTO checkpoints_v5 SELECT log_size >> 44, log_size & %(m)s, note"
        " FROM checkpoints;"
        " DROP TABLE checkpoints; ALTER TABLE checkpoints_v5 RENAME TO checkpoints;"
        % {"m": mask})


def drop_pg_database(directory):
    """Drops the database of a test directory, if it has one."""
    base = os.environ.get("OE_TEST_PG_URL")
    try:
        with open(os.path.join(directory, PG_MARKER)) as f:
            name = f.read().strip()
    except OSError:
        return
    if base and re.fullmatch(r"oe_[0-9a-f]+", name):
        psql(base, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name, check=False)


def run_cli(args, env=None, cwd=None, timeout=30, input=None):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("OPENEXEC_", "CLAWSHIELD_"))}
    e.update(env or {})
    return subprocess.run([BIN] + args, env=e, cwd=cwd, capture_output=True,
                          timeout=timeout, input=input)


def main():
    unittest.main(verbosity=2)


def fire_together(calls):
    """Runs every callable at the same moment (a barrier), each on its own
    thread; returns their results in order (an exception counts as one)."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i):
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as e:  # the assertion on results reports it
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def slow_actions(directory, sleep):
    """actions.json in directory with one operator action, `slow`:
    tests/actions/slow.sh, which sleeps `sleep` seconds and counts its runs;
    returns (the file's path, the counter's path)."""
    counter = os.path.join(directory, "runs")
    path = os.path.join(directory, "actions.json")
    with open(path, "w") as f:
        json.dump({"actions": {"slow": {
            "exec": [os.path.join(SOURCE_DIR, "tests", "actions", "slow.sh")],
            "timeout_ms": 60000, "env": {"SLEEP": sleep, "COUNTER_FILE": counter}}}}, f)
    return path, counter


def count_runs(path):
    """How many runs a counting action (COUNTER_FILE) recorded in path."""
    try:
        with open(path) as f:
            return len(f.read().splitlines())
    except FileNotFoundError:
        return 0


def wait_for_runs(test, counter, runs=1):
    """Waits (5 s at most) until the action counted `runs` runs."""
    for _ in range(250):
        if count_runs(counter) >= runs:
            break
        time.sleep(0.02)
    test.assertEqual(count_runs(counter), runs, "the action started")


def in_background(call):
    """Runs call on its own thread, for a request the test will cut off (it
    kills the server) or race with; returns (thread, results): results gets
    call's value, or the exception it raised."""
    results = []

    def run():
        try:
            results.append(call())
        except Exception as e:  # a killed server: the test looks elsewhere
            results.append(e)

    t = threading.Thread(target=run)
    t.start()
    return t, results


class Burst:
    """`clients` threads, each sending echo executions with fresh nonces
    (burst-K-I) to srv until stop(); for crash tests.  answers maps each
    nonce that got an HTTP answer to (payload, Response); a request that got
    none (the server or its database went away) is simply not there."""

    def __init__(self, srv, clients, timeout):
        self.answers = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(srv, k, timeout))
                         for k in range(clients)]
        for t in self._threads:
            t.start()

    def _client(self, srv, k, timeout):
        i = 0
        while not self._stop.is_set():
            nonce = "burst-%d-%d" % (k, i)
            payload = {"k": k, "i": i}
            i += 1
            try:
                r = srv.execute("echo", payload, nonce=nonce, timeout=timeout)
            except (OSError, http.client.HTTPException):
                continue
            with self._lock:
                self.answers[nonce] = (payload, r)

    def stop(self, join_timeout):
        self._stop.set()
        for t in self._threads:
            t.join(join_timeout)
        return self.answers

    def answered(self, status=200):
        """The nonces answered with status: {nonce: (payload, Response)}."""
        with self._lock:
            return {n: (p, r) for n, (p, r) in self.answers.items() if r.status == status}


@contextlib.contextmanager
def small_tmpfs(test, size="4m", prefix="oe-tmpfs-"):
    """A fresh directory on a tmpfs of `size`, unmounted and removed on the
    way out: a disk that fills up for real.  Skips the test where mounting
    is not allowed (it needs root)."""
    d = tempfile.mkdtemp(prefix=prefix)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", d],
                       capture_output=True)
    if r.returncode != 0:
        os.rmdir(d)
        test.skipTest("cannot mount a tmpfs here (needs root)")
    try:
        yield d
    finally:
        subprocess.run(["umount", d])
        os.rmdir(d)


def fill_disk(path):
    """Writes zeros to path until its file system is full.  Unbuffered:
    a buffered file would raise ENOSPC again when it is closed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        chunk = b"\0" * 65536
        while True:
            try:
                if os.write(fd, chunk) == 0:
                    break
            except OSError:
                if len(chunk) == 1:
                    break
                chunk = chunk[:len(chunk) // 2]  # fill the last partial block too
    finally:
        os.close(fd)
