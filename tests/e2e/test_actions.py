"""Operator exec actions (SPEC 6) with real programs from tests/actions/:
success, failure, timeout, huge output, a grandchild that outlives its
parent, bad output, a scrubbed environment, parallel runs, a full pool,
the actions file's validation, and the crash test: kill -9 while an action
runs, restart, outcome_unknown, pending, resolve."""

import json
import os
import signal
import sqlite3
import tempfile
import threading
import time
import unittest

import harness
from harness import count_runs, slow_actions, wait_for_runs

ACTIONS = os.path.join(harness.SOURCE_DIR, "tests", "actions")


def script(name):
    return os.path.join(ACTIONS, name)


def write_actions(directory, actions, builtins=None):
    doc = {"actions": actions}
    if builtins is not None:
        doc["builtins"] = builtins
    path = os.path.join(directory, "actions.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def kill_while_running(test, directory, env, counter, nonce):
    """A server in directory runs `slow` for nonce and is killed (SIGKILL)
    while the program runs.  Returns the dead server's environment."""
    srv = harness.Server(workdir=directory, env=env).start()
    t, _ = harness.in_background(lambda: srv.execute("slow", {}, nonce=nonce, timeout=30))
    wait_for_runs(test, counter)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    t.join(10)
    return srv.env


class ExecActionTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="oe-actions-")
        cls.counter = os.path.join(cls.tmp, "runs")
        cls.pidfile = os.path.join(cls.tmp, "grandchild.pid")
        os.environ["OE_TEST_PASSED_THROUGH"] = "yes"
        path = write_actions(cls.tmp, {
            "echo_stdin": {"exec": [script("echo_stdin.sh")], "timeout_ms": 5000,
                           "env": {"COUNTER_FILE": cls.counter}},
            "fail": {"exec": [script("fail.sh")]},
            "slow": {"exec": [script("slow.sh")], "timeout_ms": 500},
            "slow1": {"exec": [script("slow.sh")], "timeout_ms": 10000, "env": {"SLEEP": "1"}},
            "huge": {"exec": [script("huge.sh")], "max_output_bytes": 65536},
            "forker": {"exec": [script("forker.sh")], "env": {"PID_FILE": cls.pidfile}},
            "notjson": {"exec": [script("notjson.sh")]},
            "env": {"exec": [script("env.sh")], "env": ["OE_TEST_PASSED_THROUGH", "UNSET_VAR_X"]},
        })
        cls.srv = harness.Server(env={"OPENEXEC_ACTIONS_FILE": path,
                                      "SECRET_IN_SERVER_ENV": "x"}).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def test_health_lists_registered_actions(self):
        self.assertEqual(self.srv.get("/health").json()["actions"],
                         ["add", "echo", "echo_stdin", "env", "fail", "forker", "huge",
                          "notjson", "slow", "slow1"])

    def test_success_reads_payload_on_stdin(self):
        before = count_runs(self.counter)
        r = self.srv.execute("echo_stdin", {"amount": 5, "to": "caf\u00e9"}, nonce="ok-1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["result"], {"got": {"amount": 5, "to": "caf\u00e9"}})
        self.assertEqual(r.json()["signed_receipt"]["receipt"]["outcome"], "executed")
        again = self.srv.execute("echo_stdin", {"amount": 5, "to": "caf\u00e9"}, nonce="ok-1")
        self.assertEqual(again.body, r.body)
        self.assertEqual(count_runs(self.counter), before + 1, "a replay never runs again")

    def assert_failed(self, r, needle):
        self.assertEqual(r.status, 502, r)
        body = r.json()
        self.assertEqual(body["error"], "action_failed")
        self.assertIn(needle, body["detail"])
        self.assertEqual(body["signed_receipt"]["receipt"]["outcome"], "failed")
        return body

    def test_failure_is_502_consumes_nonce_and_hides_stderr(self):
        r = self.srv.execute("fail", {}, nonce="fail-1")
        self.assert_failed(r, "exit code 3")
        self.assertNotIn(b"secret-token", r.body)
        again = self.srv.execute("fail", {}, nonce="fail-1")
        self.assertEqual((again.status, again.body), (502, r.body))
        self.assertEqual(again.headers.get("idempotent-replayed"), "true")
        self.assertTrue(self.srv.log_has("secret-token-do-not-leak"), self.srv.log())

    def test_timeout_kills_the_process(self):
        t = time.time()
        r = self.srv.execute("slow", {}, nonce="slow-1")
        self.assert_failed(r, "timed out after 500 ms")
        self.assertLess(time.time() - t, 5)

    def test_huge_output_is_cut_off(self):
        self.assert_failed(self.srv.execute("huge", {}, nonce="huge-1"), "output exceeded 65536")

    def test_output_that_is_not_an_object_fails(self):
        self.assert_failed(self.srv.execute("notjson", {}, nonce="nj-1"), "not a JSON object")

    def test_grandchild_that_outlives_its_parent_is_killed(self):
        t = time.time()
        r = self.srv.execute("forker", {}, nonce="fork-1")
        self.assertEqual(r.status, 200, r)
        self.assertLess(time.time() - t, 5, "the leftover grandchild did not hold us up")
        with open(self.pidfile) as f:
            pid = int(f.read())
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            self.fail("grandchild %d survived" % pid)

    def test_environment_is_scrubbed(self):
        names = self.srv.execute("env", {}, nonce="env-1").json()["result"]["env"]
        self.assertIn("PATH", names)
        self.assertIn("OE_TEST_PASSED_THROUGH", names)
        self.assertNotIn("SECRET_IN_SERVER_ENV", names)
        self.assertNotIn("OPENEXEC_DB_URL", names)
        self.assertLessEqual(set(names), {"PATH", "OE_TEST_PASSED_THROUGH", "PWD", "SHLVL", "_"})

    def test_distinct_nonces_run_in_parallel(self):
        results = []
        t = time.time()

        def fire(i):
            results.append(self.srv.execute("slow1", {"i": i}, nonce="par-%d" % i))

        threads = [threading.Thread(target=fire, args=(i,)) for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        self.assertEqual([r.status for r in results], [200] * 4)
        self.assertLess(time.time() - t, 3.5, "four 1 s actions ran concurrently")

    def test_same_nonce_while_running_is_409(self):
        results = {}

        def first():
            results["first"] = self.srv.execute("slow1", {}, nonce="inprog-1")

        th = threading.Thread(target=first)
        th.start()
        time.sleep(0.4)
        r = self.srv.execute("slow1", {}, nonce="inprog-1")
        self.assertEqual((r.status, r.json()["error"]), (409, "request_in_progress"))
        self.assertEqual(r.headers.get("retry-after"), "1")
        r = self.srv.execute("slow1", {"other": 1}, nonce="inprog-1")
        self.assertEqual((r.status, r.json()["error"]), (422, "nonce_reused"))
        th.join(10)
        self.assertEqual(results["first"].status, 200)

    def test_builtins_stay(self):
        self.assertEqual(self.srv.execute("echo", {"x": 1}).status, 200)


class PoolTests(unittest.TestCase):
    def test_full_pool_answers_503_busy(self):
        with tempfile.TemporaryDirectory() as d:
            path = write_actions(d, {"slow1": {"exec": [script("slow.sh")],
                                               "env": {"SLEEP": "1"}}})
            with harness.Server(env={"OPENEXEC_ACTIONS_FILE": path,
                                     "OPENEXEC_ACTION_WORKERS": "1",
                                     "OPENEXEC_ACTION_QUEUE": "1"}) as srv:
                th = threading.Thread(target=lambda: srv.execute("slow1", {}, nonce="p-1"))
                th.start()
                time.sleep(0.3)
                r = srv.execute("slow1", {}, nonce="p-2")
                self.assertEqual((r.status, r.json()["error"]), (503, "busy"))
                self.assertEqual(r.headers.get("retry-after"), "1")
                th.join(10)
                # Nothing was consumed: the same nonce works now.
                self.assertEqual(srv.execute("slow1", {}, nonce="p-2").status, 200)


class ActionsFileTests(unittest.TestCase):
    def refused(self, actions, needle, builtins=None, raw=None):
        with tempfile.TemporaryDirectory() as d:
            if raw is not None:
                path = os.path.join(d, "actions.json")
                with open(path, "w") as f:
                    f.write(raw)
            else:
                path = write_actions(d, actions, builtins)
            for cmd in (["check-config"], ["serve", "--port", "0"]):
                r = harness.run_cli(cmd, env={"OPENEXEC_ACTIONS_FILE": path}, cwd=d, timeout=10)
                self.assertEqual(r.returncode, 2, (cmd, r.stderr))
                self.assertIn(needle, r.stderr.decode())

    def test_bad_files_are_refused_with_file_action_and_field(self):
        self.refused({"x": {"exec": []}}, "action 'x': field 'exec'")
        self.refused({"x": {"exec": ["relative/path"]}}, "absolute path")
        self.refused({"x": {"exec": ["/nonexistent/prog"]}}, "does not exist")
        self.refused({"x": {"exec": [script("fail.sh")], "timeout_ms": 0}}, "field 'timeout_ms'")
        self.refused({"x": {"exec": [script("fail.sh")], "max_output_bytes": "1"}},
                     "field 'max_output_bytes'")
        self.refused({"x": {"exec": [script("fail.sh")], "shell": True}}, "field 'shell'")
        self.refused({"x": {"exec": [script("fail.sh")], "env": ["A=B"]}}, "field 'env'")
        self.refused({"echo": {"exec": [script("fail.sh")]}}, "already a built-in")
        self.refused(None, "actions.json", raw="{not json")
        self.refused(None, "unknown top-level field", raw='{"actions":{},"x":1}')

    def test_builtins_can_be_disabled(self):
        with tempfile.TemporaryDirectory() as d:
            path = write_actions(d, {"echo": {"exec": [script("echo_stdin.sh")]}}, builtins=False)
            with harness.Server(env={"OPENEXEC_ACTIONS_FILE": path}) as srv:
                self.assertEqual(srv.get("/health").json()["actions"], ["echo"])
                self.assertEqual(srv.execute("add", {}).json()["error"], "unknown_action")
                self.assertEqual(srv.execute("echo", {"v": 1}).json()["result"], {"got": {"v": 1}})


class SameNonceRaceTests(unittest.TestCase):
    def test_one_nonce_sent_at_once_runs_once_and_is_never_refused(self):
        # Requests racing for one nonce can reach the writer in the same
        # commit: one claim wins, the others become request_in_progress
        # attempts there; none of that may fail the commit (a 503 for all
        # of them, and for every other request that shared it).
        with tempfile.TemporaryDirectory() as d:
            path, counter = slow_actions(d, "0.2")
            nonces, senders = 12, 6
            with harness.Server(workdir=d, threads=2,
                                env={"OPENEXEC_ACTIONS_FILE": path}) as srv:
                for n in range(nonces):
                    answers = harness.fire_together(
                        [lambda n=n: srv.execute("slow", {}, nonce="race-%d" % n, timeout=30)]
                        * senders)
                    got = sorted((a.status, a.json().get("error")) for a in answers)
                    self.assertIn((200, None), got, got)
                    for status, error in got:
                        self.assertIn((status, error), [(200, None), (409, "request_in_progress")],
                                      (got, srv.log()[-2000:]))
                self.assertEqual(count_runs(counter), nonces, "each nonce ran exactly once")
                self.assertFalse(srv.log_has("cannot be written", timeout=0.5))


class CrashTests(unittest.TestCase):
    def test_kill9_while_running_gives_outcome_unknown_never_a_second_run(self):
        with tempfile.TemporaryDirectory() as d:
            path, counter = slow_actions(d, "20")
            env = {"OPENEXEC_ACTIONS_FILE": path}
            dead_env = kill_while_running(self, d, env, counter, "crash-1")

            # Right after the crash, before any restart: what an operator
            # looks at first.  The claim is still "running" (nothing has
            # marked it yet), and pending must show it, not nothing.
            p = harness.run_cli(["pending", "--json"], env=dead_env, cwd=d)
            self.assertEqual(p.returncode, 0, p.stderr)
            rows = [json.loads(l) for l in p.stdout.decode().splitlines()]
            self.assertEqual([(x["nonce"], x["action"], x["state"]) for x in rows],
                             [("crash-1", "slow", "running")], rows)
            p = harness.run_cli(["pending"], env=dead_env, cwd=d)
            lines = p.stdout.decode().splitlines()
            self.assertEqual(lines[0].split("\t"),
                             ["NONCE", "EXEC_ID", "ACTION", "CLAIMED_AT", "STATE"])
            nonce, _, action, _, state = lines[1].split("\t")
            self.assertEqual((nonce, action, state), ('"crash-1"', "slow", "running"), lines)

            with harness.Server(workdir=d, env=env) as again:
                for _ in range(3):
                    r = again.execute("slow", {}, nonce="crash-1")
                    self.assertEqual((r.status, r.json()["error"]), (409, "outcome_unknown"))
                self.assertTrue(again.log_has("outcome is unknown"), again.log())
                # A different request with that nonce is still nonce_reused.
                r = again.execute("slow", {"x": 1}, nonce="crash-1")
                self.assertEqual(r.json()["error"], "nonce_reused")
                db = "sqlite:///" + os.path.join(d, "openexec.db")
                dbenv = dict(env, OPENEXEC_DB_URL=again.env["OPENEXEC_DB_URL"])
                p = harness.run_cli(["pending", "--json"], env=dbenv, cwd=d)
                self.assertEqual(p.returncode, 0, p.stderr)
                rows = [json.loads(l) for l in p.stdout.decode().splitlines()]
                self.assertEqual([(x["nonce"], x["action"], x["state"]) for x in rows],
                                 [("crash-1", "slow", "unknown")])
                self.assertTrue(db)
            # resolve takes the instance's lease: the server is stopped now.
            r = harness.run_cli(["resolve", "crash-1", "--outcome", "succeeded", "--result",
                                 '{"refund_id":"r-9"}'], env=dbenv, cwd=d)
            self.assertEqual(r.returncode, 0, r.stderr)
            with harness.Server(workdir=d, env=env) as third:
                r = third.execute("slow", {}, nonce="crash-1")
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["result"], {"refund_id": "r-9"})
                self.assertEqual(r.headers.get("idempotent-replayed"), "true")
                self.assertEqual(r.json()["signed_receipt"]["receipt"]["outcome"], "resolved")
                v = third.post("/receipts/verify", {"signed_receipt": r.json()["signed_receipt"]})
                self.assertEqual(v.json(), {"valid": True})
                p = harness.run_cli(["pending", "--json"], env=dbenv, cwd=d)
                self.assertEqual(p.stdout, b"")
            self.assertEqual(count_runs(counter), 1, "the action never ran a second time")
            r = harness.run_cli(["resolve", "crash-1", "--outcome", "failed"], env=dbenv, cwd=d)
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"not unknown", r.stderr)

    def test_resolve_outside_the_servers_environment_creates_nothing(self):
        # Run from the wrong directory, resolve must not start a new store
        # or a new log (a key of its own) before finding no such nonce.
        with tempfile.TemporaryDirectory() as d:
            r = harness.run_cli(["resolve", "x-1", "--outcome", "failed"], cwd=d)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(b"receipt key openexec.db.key does not exist", r.stderr)
            self.assertEqual(os.listdir(d), [])
            # A key but no SQLite database: refused the same way.
            self.assertEqual(harness.run_cli(["keygen", "--out", "k"], cwd=d).returncode, 0)
            env = {"OPENEXEC_RECEIPT_KEY": os.path.join(d, "k.key"),
                   "OPENEXEC_DB_URL": "sqlite:///" + os.path.join(d, "gone.db")}
            r = harness.run_cli(["resolve", "x-1", "--outcome", "failed"], env=env, cwd=d)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(b"gone.db does not exist", r.stderr)
            self.assertEqual(sorted(os.listdir(d)), ["k.key", "k.pub"])

    def test_claims_of_an_instance_that_never_returns_become_unknown(self):
        # The instance that ran the action is gone for good (here: its
        # receipt key was retired, so no instance will ever take its log's
        # lease again).  Its claim must not answer request_in_progress
        # forever: the next instance marks it unknown, like a restart would.
        with tempfile.TemporaryDirectory() as d:
            path, counter = slow_actions(d, "20")
            env = {"OPENEXEC_ACTIONS_FILE": path,
                   "OPENEXEC_RECEIPT_KEY": os.path.join(d, "retired.key")}
            kill_while_running(self, d, env, counter, "orphan-1")

            env["OPENEXEC_RECEIPT_KEY"] = os.path.join(d, "new.key")
            with harness.Server(workdir=d, env=env) as other:
                r = other.execute("slow", {}, nonce="orphan-1")
                self.assertEqual((r.status, r.json()["error"]), (409, "outcome_unknown"), r.body)
                self.assertTrue(other.log_has("of instances that are gone were running"),
                                other.log())
                dbenv = dict(env, OPENEXEC_DB_URL=other.env["OPENEXEC_DB_URL"])
            p = harness.run_cli(["pending", "--json"], env=dbenv, cwd=d)
            self.assertEqual(p.returncode, 0, p.stderr)
            rows = [json.loads(l) for l in p.stdout.decode().splitlines()]
            self.assertEqual([(x["nonce"], x["action"]) for x in rows], [("orphan-1", "slow")])
            self.assertEqual(count_runs(counter), 1, "the action never ran a second time")

    def test_an_outcome_decided_meanwhile_is_never_overwritten(self):
        # While the action runs, its claim is marked unknown behind the
        # instance's back (what another instance does when it believes this
        # one gone).  The late result must not overwrite that: its request
        # is answered outcome_unknown like every replay, and nothing else
        # suffers (no failed commit, no unwritable store).
        with tempfile.TemporaryDirectory() as d:
            path, counter = slow_actions(d, "2")
            with harness.Server(workdir=d, env={"OPENEXEC_ACTIONS_FILE": path}) as srv:
                t, result = harness.in_background(
                    lambda: srv.execute("slow", {}, nonce="late-1", timeout=30))
                wait_for_runs(self, counter)
                self.mark_running_unknown(srv)
                t.join(30)
                self.assertEqual((result[0].status, result[0].json()["error"]),
                                 (409, "outcome_unknown"), result[0])
                self.assertEqual(result[0].json()["signed_receipt"]["receipt"]["outcome"],
                                 "rejected")
                r = srv.execute("slow", {}, nonce="late-1")
                self.assertEqual((r.status, r.json().get("error")), (409, "outcome_unknown"))
                self.assertEqual(srv.execute("echo", {}).status, 200)
                self.assertFalse(srv.log_has("cannot be written", timeout=0.5), srv.log())
                self.assertEqual(count_runs(counter), 1)

    @staticmethod
    def mark_running_unknown(srv):
        sql = "UPDATE executions SET state = 2 WHERE state = 0"
        url = srv.env["OPENEXEC_DB_URL"]
        if url.startswith("postgresql"):
            harness.psql(url, sql)
            return
        db = sqlite3.connect(os.path.join(srv.dir, "openexec.db"), timeout=10)
        with db:
            db.execute(sql)
        db.close()


if __name__ == "__main__":
    harness.main()
