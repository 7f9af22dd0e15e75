"""PostgreSQL going away under a running OpenExec (SPEC 7: fail closed).

These tests own a throwaway cluster of their own (scripts/pg-cluster.sh in a
private directory and port range), because they stop and start it: the
server must answer 503 store_unavailable while the database is gone, say so
on /health and /ready, never answer 200 for something that was not
recorded, and come back by itself when the database does.  The URL's
password must never appear in the server's log.  They run in the
PostgreSQL pass of scripts/test.sh (OE_TEST_PG_URL set).
"""

import os
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

import harness

SCRIPT = os.path.join(harness.SOURCE_DIR, "scripts", "pg-cluster.sh")


def pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        pass
    return True


def wait_until(pred, timeout=15.0, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


@unittest.skipUnless(os.environ.get("OE_TEST_PG_URL"), "runs in the PostgreSQL pass")
class PgFaultTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # One directory per test process; those of processes that are gone
        # (killed before tearDownClass) are cleaned up here.
        base = tempfile.gettempdir()
        for name in os.listdir(base):
            if name.startswith("oe-pgfaults-") and not pid_alive(name.rsplit("-", 1)[1]):
                env = dict(os.environ, OE_PG_DIR=os.path.join(base, name, "cluster"))
                subprocess.run(["sh", SCRIPT, "stop"], env=env, capture_output=True, timeout=120)
                subprocess.run(["rm", "-rf", os.path.join(base, name)])
        cls.tmp = os.path.join(base, "oe-pgfaults-%d" % os.getpid())
        os.makedirs(cls.tmp, exist_ok=True)
        os.chmod(cls.tmp, 0o755)  # the postgres user must reach the cluster inside
        # Below Linux's ephemeral ports (32768-60999): while this cluster is
        # down, a server reconnecting to 127.0.0.1:PORT can be given PORT as
        # its own local port and connect to itself, which then holds the
        # port, and the cluster cannot come "up" again (seen in CI at 56432).
        cls.cluster_env = dict(os.environ, OE_PG_DIR=os.path.join(cls.tmp, "cluster"),
                               OE_PG_PORT="26432")
        cls.url = cls.cluster("start").strip()
        cls.password = urllib.parse.urlsplit(cls.url).password
        assert cls.password and len(cls.password) >= 16

    @classmethod
    def tearDownClass(cls):
        cls.cluster("stop")
        subprocess.run(["rm", "-rf", cls.tmp])

    @classmethod
    def cluster(cls, cmd):
        r = subprocess.run(["sh", SCRIPT, cmd], env=cls.cluster_env, capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("pg-cluster.sh %s: %s" % (cmd, r.stderr))
        return r.stdout

    def setUp(self):
        self.cluster("up")
        self.db = harness.new_pg_database(self.url)
        self.servers = []

    def tearDown(self):
        self.cluster("up")
        for s in self.servers:
            s.cleanup()
            self.assertNotIn(self.password, s.log(), "the password leaked into the log")

    def server(self, **kw):
        s = harness.Server(db_url=self.db, threads=2, **kw)
        self.servers.append(s)
        return s.start()

    def assert_unavailable(self, r):
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json()["error"], "store_unavailable")
        self.assertEqual(r.headers.get("retry-after"), "1")

    def stored(self, nonce):
        return harness.psql(self.db, "SELECT count(*) FROM executions WHERE nonce ="
                            " convert_to('%s', 'UTF8')" % nonce).strip() == "1"

    def test_database_down_fails_closed_and_service_resumes_by_itself(self):
        srv = self.server()
        before = {}
        for i in range(5):
            r = srv.execute("echo", {"i": i}, nonce="before-%d" % i)
            self.assertEqual(r.status, 200, r)
            before["before-%d" % i] = ({"i": i}, r.body)

        self.cluster("down")
        refused = []
        for i in range(10):
            r = srv.execute("echo", {"o": i}, nonce="outage-%d" % i)
            self.assert_unavailable(r)
            refused.append("outage-%d" % i)
        h = srv.get("/health")
        self.assertEqual((h.status, h.json()["status"]), (503, "degraded"))
        ready = srv.get("/ready")
        self.assertEqual(ready.status, 503)
        self.assertIs(ready.json()["ready"], False)
        # A replay needs the database too: refused, never answered wrongly.
        self.assert_unavailable(srv.execute("echo", {"i": 0}, nonce="before-0"))
        time.sleep(2.5)  # several probes and reconnect attempts fail meanwhile
        self.assert_unavailable(srv.execute("echo", {}, nonce="outage-late"))
        self.assertEqual(srv.get("/health").status, 503)

        self.cluster("up")
        self.assertTrue(wait_until(lambda: srv.get("/ready").status == 200, 10),
                        "ready again by itself:\n" + srv.log())
        self.assertEqual(srv.get("/health").json()["status"], "healthy")
        self.assertTrue(wait_until(lambda: srv.execute("echo", {"x": 1}, nonce="after-0").status == 200, 5))
        # Nothing refused during the outage was recorded, and each can run now.
        for nonce in refused:
            self.assertFalse(self.stored(nonce), nonce)
        r = srv.execute("echo", {"o": 0}, nonce="outage-0")
        self.assertEqual(r.status, 200)
        self.assertNotIn("idempotent-replayed", r.headers)
        for nonce, (payload, body) in before.items():
            r = srv.execute("echo", payload, nonce=nonce)
            self.assertEqual((r.status, r.body), (200, body), nonce)
            self.assertEqual(r.headers.get("idempotent-replayed"), "true")
        self.assertTrue(srv.log_has("lost the PostgreSQL"), srv.log())
        self.assertTrue(srv.log_has("is back"), srv.log())

    def test_action_outcome_during_an_outage_is_recorded_when_it_is_back(self):
        # The program runs through the outage; the commit of its outcome is
        # the first write to meet it.  The request waits, and is answered
        # (once, by one run) when the database is back.
        actions, counter = harness.slow_actions(tempfile.mkdtemp(prefix="oe-pgf-act-"), "2")
        self.addCleanup(subprocess.run, ["rm", "-rf", os.path.dirname(actions)])
        srv = self.server(env={"OPENEXEC_ACTIONS_FILE": actions})
        t, results = harness.in_background(
            lambda: srv.execute("slow", {}, nonce="through-outage", timeout=60))
        harness.wait_for_runs(self, counter)
        self.cluster("down")
        self.assertTrue(wait_until(lambda: srv.log_has("lost the PostgreSQL", timeout=0), 10),
                        srv.log())
        time.sleep(0.5)
        self.assertTrue(t.is_alive(), "answered while its outcome was not recorded: %r"
                        % (results,))
        self.cluster("up")
        t.join(30)
        (r,) = results
        self.assertEqual((r.status, r.json()["result"]), (200, {"slept": True}), r)
        again = srv.execute("slow", {}, nonce="through-outage")
        self.assertEqual(again.body, r.body)
        self.assertEqual(harness.count_runs(counter), 1)

    def test_crash_mid_burst_every_200_is_durable(self):
        srv = self.server()
        burst = harness.Burst(srv, clients=8, timeout=20)
        time.sleep(1.0)
        # A crash, not a polite shutdown: committed work must survive by WAL.
        self.cluster("crash")
        time.sleep(1.5)
        answers = burst.stop(30)
        self.cluster("up")
        ok = burst.answered(200)
        self.assertGreater(len(ok), 20, "the burst ran")
        refused = [r for _, r in answers.values() if r.status != 200]
        self.assertTrue(refused, "the crash was noticed")
        for r in refused:
            self.assert_unavailable(r)
        self.assertTrue(wait_until(lambda: srv.get("/ready").status == 200, 10), srv.log())
        # Each event loop reconnects at its next use, within its backoff.
        self.assertTrue(wait_until(lambda: srv.execute("echo", {}).status == 200, 5), srv.log())
        for nonce, (payload, r) in sorted(ok.items()):
            again = srv.execute("echo", payload, nonce=nonce)
            self.assertEqual((again.status, again.body), (200, r.body), nonce)

    def test_restart_while_idle_is_invisible(self):
        srv = self.server()
        self.assertEqual(srv.execute("echo", {}, nonce="idle-1").status, 200)
        self.cluster("down")
        self.cluster("up")
        # Every connection is stale now; the first use reconnects and retries.
        for i in range(4):
            r = srv.execute("echo", {}, nonce="idle-after-%d" % i)
            self.assertEqual(r.status, 200, (r, srv.log()))
        self.assertEqual(srv.get("/health").status, 200)

    def test_start_with_database_down_waits_then_exits_1_without_password(self):
        self.cluster("down")
        with tempfile.TemporaryDirectory() as d:
            t0 = time.time()
            r = harness.run_cli(["serve", "--port", "0"], cwd=d, timeout=60,
                                env={"OPENEXEC_DB_URL": self.db})
            elapsed = time.time() - t0
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertGreater(elapsed, 8, "it waited for the database")
        err = r.stderr.decode()
        self.assertIn("cannot open the store", err)
        self.assertIn("gave up after", err)
        self.assertIn("127.0.0.1", err)
        self.assertNotIn(self.password, err)

    def test_start_before_database_comes_up_then_serves(self):
        self.cluster("down")
        srv = harness.Server(db_url=self.db, threads=2)
        self.servers.append(srv)
        starter = threading.Thread(target=srv.start, kwargs={"timeout": 30})
        starter.start()
        time.sleep(2)
        self.cluster("up")
        starter.join(40)
        self.assertIsNotNone(srv.port, srv.log())
        self.assertEqual(srv.execute("echo", {}, nonce="late-start").status, 200)
        self.assertIn("waiting up to", srv.log())

    def test_wrong_password_is_refused_and_never_printed(self):
        u = urllib.parse.urlsplit(self.db)
        wrong = "Wr0ngSecret" + os.urandom(6).hex()
        bad = urllib.parse.urlunsplit((u.scheme, "openexec:%s@%s:%d" % (wrong, u.hostname, u.port),
                                       u.path, "", ""))
        with tempfile.TemporaryDirectory() as d:
            r = harness.run_cli(["serve", "--port", "0"], cwd=d, timeout=60,
                                env={"OPENEXEC_DB_URL": bad})
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertIn("password authentication failed", err)
        self.assertNotIn(wrong, err)
        self.assertNotIn(self.password, err)

    def serve_once(self, url):
        with tempfile.TemporaryDirectory() as d:
            return harness.run_cli(["serve", "--port", "0"], cwd=d, timeout=60,
                                   env={"OPENEXEC_DB_URL": url})

    def test_foreign_tables_are_refused_untouched(self):
        harness.psql(self.db, "CREATE TABLE executions (id int); INSERT INTO executions VALUES (7)")
        r = self.serve_once(self.db)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"refusing to touch it", r.stderr)
        self.assertEqual(harness.psql(self.db, "SELECT id FROM executions").strip(), "7")
        self.assertEqual(harness.psql(self.db, "SELECT to_regclass('meta') IS NULL").strip(), "t")

    def test_newer_schema_is_refused_untouched(self):
        srv = self.server()
        self.assertEqual(srv.execute("echo", {}, nonce="v1").status, 200)
        self.assertEqual(srv.stop(), 0)
        harness.psql(self.db, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        r = self.serve_once(self.db)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"newer than this build", r.stderr)
        self.assertEqual(harness.psql(self.db, "SELECT count(*) FROM executions").strip(), "1")

    def test_postgres_scheme_and_check_config(self):
        u = urllib.parse.urlsplit(self.db)
        short = urllib.parse.urlunsplit(("postgres",) + tuple(u[1:]))
        srv = self.server(env={"OPENEXEC_DB_URL": short})
        self.assertEqual(srv.execute("echo", {}, nonce="short-scheme").status, 200)
        r = harness.run_cli(["check-config"], env={"OPENEXEC_DB_URL": short})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(self.password.encode(), r.stdout + r.stderr)


if __name__ == "__main__":
    harness.main()
