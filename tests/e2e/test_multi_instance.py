"""Several OpenExec instances on one PostgreSQL database (SPEC 3.2: exactly
once "across instances that share a PostgreSQL database"; SPEC 5.2: one
receipt log per instance in the shared database).

Three real servers share a fresh database of the OE_TEST_PG_URL cluster.
The same request is fired at all of them at the same moment, many times
over; the database itself is then asked how many executions it holds.  A
single-use approval presented to several instances at once must be used
exactly once.  Every instance's log is exported and checked against its
checkpoint with both verifiers (openexec verify-log, tests/tools/oe_verify.py).
Skipped without OE_TEST_PG_URL (scripts/test.sh sets it).
"""

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import harness

sys.path.insert(0, os.path.join(harness.SOURCE_DIR, "tests", "tools"))
import clawshield  # noqa: E402

PG = os.environ.get("OE_TEST_PG_URL")
INSTANCES = 3


def stored_part(body):
    """An answer up to its checkpoint note: the bytes the store keeps for a
    replay (the note is added when the answer is sent)."""
    return body.split(b'"checkpoint":', 1)[0]


@unittest.skipUnless(PG, "needs PostgreSQL (OE_TEST_PG_URL)")
class MultiInstanceTests(unittest.TestCase):
    env = {}

    @classmethod
    def setUpClass(cls):
        cls.db = harness.new_pg_database()
        cls.servers = []
        for _ in range(INSTANCES):
            cls.servers.append(harness.Server(db_url=cls.db, threads=2, env=cls.env).start())

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers:
            s.cleanup()
        harness.psql(PG, "DROP DATABASE IF EXISTS %s WITH (FORCE)"
                     % cls.db.rsplit("/", 1)[1], check=False)

    def setUp(self):
        self.log_marks = [len(s.log()) for s in self.servers]

    def sql(self, query):
        return harness.psql(self.db, query).strip()

    def assert_logs_clean(self):
        """No error logged by any instance during this test (the crossing
        test's deadlocks are logged, and the servers are shared)."""
        for s, mark in zip(self.servers, self.log_marks):
            self.assertNotIn('"level":"error"', s.log()[mark:])


class SameNonceTests(MultiInstanceTests):
    ROUNDS = 50
    THREADS_PER_INSTANCE = 4

    def test_same_nonce_everywhere_executes_exactly_once(self):
        tag = "multi-%s-" % os.urandom(4).hex()
        for rnd in range(self.ROUNDS):
            nonce = tag + str(rnd)
            payload = {"round": rnd}
            calls = [(lambda s=s: s.execute("echo", payload, nonce=nonce))
                     for s in self.servers for _ in range(self.THREADS_PER_INSTANCE)]
            answers = harness.fire_together(calls)
            for r in answers:
                self.assertIsInstance(r, harness.Response, (nonce, r))
                self.assertEqual(r.status, 200, (nonce, r))
            bodies = {stored_part(r.body) for r in answers}
            self.assertEqual(len(bodies), 1, "every answer is the one execution's: %s" % nonce)
            fresh = [r for r in answers if r.headers.get("idempotent-replayed") != "true"]
            self.assertEqual(len(fresh), 1, "exactly one answer is not a replay: %s" % nonce)
            exec_id = answers[0].json()["id"]
            self.assertEqual(
                self.sql("SELECT count(*) || ' ' || min(exec_id) FROM executions"
                         " WHERE nonce = convert_to('%s', 'UTF8')" % nonce),
                "1 " + exec_id)
        self.assertEqual(self.sql("SELECT count(*) FROM executions WHERE"
                                  " convert_from(nonce, 'UTF8') LIKE '%s%%'" % tag),
                         str(self.ROUNDS))
        self.assert_logs_clean()

    def test_same_nonce_other_payloads_one_wins_others_422(self):
        for rnd in range(20):
            nonce = "mixed-%d-%s" % (rnd, os.urandom(4).hex())
            calls = [(lambda s=s, i=i: (i, s.execute("echo", {"from": i}, nonce=nonce)))
                     for i, s in enumerate(self.servers) for _ in range(3)]
            answers = harness.fire_together(calls)
            ok = [(i, r) for i, r in answers if r.status == 200]
            self.assertTrue(ok, nonce)
            winner = ok[0][1].json()["result"]["echo"]["from"]
            for i, r in answers:
                if i == winner:
                    self.assertEqual((r.status, stored_part(r.body)),
                                     (200, stored_part(ok[0][1].body)), nonce)
                else:
                    self.assertEqual(r.status, 422, (nonce, r))
                    self.assertEqual(r.json()["error"], "nonce_reused")
            self.assertEqual(self.sql("SELECT count(*) FROM executions WHERE nonce ="
                                      " convert_to('%s', 'UTF8')" % nonce), "1")
        self.assert_logs_clean()

    def test_crossing_nonces_in_opposite_orders_all_succeed(self):
        # Batches of two instances that take the same keys in opposite
        # orders deadlock in PostgreSQL; the writer must retry, not fail.
        tag = "cross-%s-" % os.urandom(4).hex()
        nonces = [tag + str(k) for k in range(6)]
        payload = {"cross": True}

        def send(s, n):
            # A deadlock between two instances' batches fails one of them
            # closed (503); a client retries, and must then get the answer
            # of whichever claim won.
            for _ in range(20):
                r = s.execute("echo", payload, nonce=n)
                if r.status != 503:
                    return r
                self.assertEqual(r.json()["error"], "store_unavailable")
                time.sleep(0.2)
            return r

        def worker(s, order):
            return [(n, send(s, n)) for n in order]

        calls = []
        for i, s in enumerate(self.servers):
            for t in range(4):
                order = list(nonces)
                random.Random(i * 10 + t).shuffle(order)
                if t % 2:
                    order.reverse()
                calls.append(lambda s=s, order=order: worker(s, order))
        seen = {}
        for result in harness.fire_together(calls):
            self.assertIsInstance(result, list, result)
            for n, r in result:
                self.assertEqual(r.status, 200, (n, r))
                seen.setdefault(n, set()).add(stored_part(r.body))
        self.assertEqual(sorted(seen), sorted(nonces))
        for n, bodies in seen.items():
            self.assertEqual(len(bodies), 1, n)
        self.assertEqual(self.sql("SELECT count(*) FROM executions WHERE"
                                  " convert_from(nonce, 'UTF8') LIKE '%s%%'" % tag), "6")
        for s in self.servers:
            self.assertTrue(wait_until(lambda: s.get("/health").status == 200), s.log())

    def test_replay_at_another_instance_is_byte_identical(self):
        # SPEC 3.2: a replay is byte-identical to the first answer, whichever
        # instance serves it: the others end it with the first instance's
        # own signed checkpoint (stored with the entries it covers), never
        # one signed with their key for a head their log never had.
        nonce = "byte-" + os.urandom(4).hex()
        first = self.servers[0].execute("echo", {"b": 1}, nonce=nonce)
        self.assertEqual(first.status, 200)
        for s in self.servers[1:]:
            again = s.execute("echo", {"b": 1}, nonce=nonce)
            self.assertEqual(again.headers.get("idempotent-replayed"), "true")
            self.assertEqual(again.body, first.body)


def wait_until(pred, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


class ReceiptLogTests(MultiInstanceTests):
    """Each instance appends every attempt it handles to its own log in the
    shared database; each log verifies on its own, with its own key."""

    def traffic(self):
        sent = 0
        for rnd in range(15):
            nonce = "log-%d-%s" % (rnd, os.urandom(3).hex())
            calls = [(lambda s=s: s.execute("echo", {"r": rnd}, nonce=nonce))
                     for s in self.servers for _ in range(2)]
            calls.append(lambda: self.servers[rnd % INSTANCES].execute("nope", {}, nonce=nonce + "x"))
            for r in harness.fire_together(calls):
                self.assertIn(r.status, (200, 400), r)
            sent += len(calls)
        return sent

    def verify(self, tool, key, cp, export):
        r = subprocess.run(tool + ["verify-log", "--key", key, "--checkpoint", cp, export],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, (tool, r.stdout, r.stderr))

    def test_every_attempt_is_in_one_log_and_every_log_verifies(self):
        sent = self.traffic()
        tools = [("openexec", [harness.BIN])]
        oe_verify = os.path.join(harness.SOURCE_DIR, "tests", "tools", "oe_verify.py")
        if os.path.exists(oe_verify):
            tools.append(("oe_verify.py", [sys.executable, oe_verify]))
        sizes, origins = 0, set()
        with tempfile.TemporaryDirectory() as d:
            for i, s in enumerate(self.servers):
                key = s.get("/receipts/key").json()
                self.assertNotIn(key["origin"], origins, "one log per instance")
                origins.add(key["origin"])
                cp = s.get("/checkpoint")
                self.assertEqual(cp.status, 200)
                size = int(cp.body.split(b"\n")[1])
                export = s.get("/receipts?from=0&limit=10000")
                self.assertEqual(export.status, 200)
                self.assertEqual(export.body.count(b"\n"), size)
                for line in export.body.splitlines():
                    self.assertEqual(json.loads(line)["log"], key["origin"])
                files = {}
                for name, data in (("key", key["public_key_pem"].encode()), ("cp", cp.body),
                                   ("export", export.body)):
                    files[name] = os.path.join(d, "%d.%s" % (i, name))
                    with open(files[name], "wb") as f:
                        f.write(data)
                for label, tool in tools:
                    with self.subTest(verifier=label, instance=i):
                        self.verify(tool, files["key"], files["cp"], files["export"])
                # Another instance serves this log's entries too (?log=).
                other = self.servers[(i + 1) % INSTANCES]
                via = other.get("/receipts?from=0&limit=10000&log=" + key["origin"])
                self.assertEqual(via.status, 200)
                self.assertTrue(export.body.startswith(via.body))
                sizes += size
        self.assertEqual(sizes, sent, "every attempt appended exactly one receipt")
        self.assertEqual(int(self.sql("SELECT count(*) FROM receipts")), sent)
        self.assertEqual(int(self.sql("SELECT count(DISTINCT log_id) FROM receipts")), INSTANCES)
        if len(tools) < 2:
            self.skipTest("tests/tools/oe_verify.py is missing: only openexec verify-log ran")


@unittest.skipUnless(PG, "needs PostgreSQL (OE_TEST_PG_URL)")
class StartTogetherTests(unittest.TestCase):
    def setUp(self):
        self.db = harness.new_pg_database()
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.cleanup()

    def test_instances_started_at_once_create_the_schema_once(self):
        # The migration runs under a lock: the first creates the tables, the
        # others wait and find them; nobody fails on "already exists".
        self.servers = [harness.Server(db_url=self.db, threads=1) for _ in range(4)]
        results = harness.fire_together([(lambda s=s: s.start()) for s in self.servers])
        for s, r in zip(self.servers, results):
            self.assertIs(r, s, s.log())
        for s in self.servers:
            self.assertEqual(s.execute("echo", {}).status, 200)
        self.assertEqual(harness.psql(self.db, "SELECT value FROM meta WHERE key ="
                                      " 'schema_version'").strip(), "2")
        logs = [s.log() for s in self.servers]
        self.assertEqual(sum("upgraded from version 0" in l for l in logs), 1, logs)

    def test_second_live_instance_with_the_same_origin_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            key = os.path.join(d, "shared.key")
            env = {"OPENEXEC_LOG_ORIGIN": "example.com/shared", "OPENEXEC_RECEIPT_KEY": key}
            first = harness.Server(db_url=self.db, threads=1, env=env).start()
            self.servers.append(first)
            r = harness.run_cli(["serve", "--port", "0"], cwd=d, timeout=60,
                                env=dict(env, OPENEXEC_DB_URL=self.db))
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(b"another live instance holds log example.com/shared", r.stderr)
            # Another key may not take over the origin either.
            other = harness.Server(db_url=self.db, threads=1,
                                   env={"OPENEXEC_LOG_ORIGIN": "example.com/shared"})
            self.servers.append(other)
            with self.assertRaises(RuntimeError):
                other.start()
            self.assertIn("signed by another key", other.log())
            # Once the first stops, its lease is released and it can come back.
            self.assertEqual(first.stop(), 0)
            again = harness.Server(db_url=self.db, threads=1, env=env).start()
            self.servers.append(again)
            self.assertEqual(again.get("/receipts/key").json()["origin"], "example.com/shared")


@unittest.skipUnless(PG, "needs PostgreSQL (OE_TEST_PG_URL)")
class VanishedInstanceTests(unittest.TestCase):
    """An operator action claimed by an instance that dies and never comes
    back: the others leave it alone while that instance lives, and mark it
    unknown once it is gone (SPEC 3.2), without anyone restarting it."""

    def test_claims_of_a_dead_instance_become_unknown_elsewhere(self):
        db = harness.new_pg_database()
        servers = []
        try:
            with tempfile.TemporaryDirectory() as d:
                actions, counter = harness.slow_actions(d, "20")
                env = {"OPENEXEC_ACTIONS_FILE": actions}
                runner = harness.Server(db_url=db, threads=1, env=env).start()
                servers.append(runner)
                t, _ = harness.in_background(
                    lambda: runner.execute("slow", {}, nonce="vanish-1", timeout=30))
                harness.wait_for_runs(self, counter)

                # A second instance starts while the first lives: untouched.
                other = harness.Server(db_url=db, threads=1, env=env).start()
                servers.append(other)
                r = other.execute("slow", {}, nonce="vanish-1")
                self.assertEqual((r.status, r.json()["error"]), (409, "request_in_progress"))

                runner.proc.send_signal(signal.SIGKILL)
                runner.proc.wait()
                t.join(10)
                # The next instance to look (at its start) sees the holder's
                # process gone and marks the claim unknown for everyone.
                third = harness.Server(db_url=db, threads=1, env=env).start()
                servers.append(third)
                self.assertTrue(third.log_has("of instances that are gone were running"),
                                third.log())
                for srv in (other, third):
                    r = srv.execute("slow", {}, nonce="vanish-1")
                    self.assertEqual((r.status, r.json()["error"]), (409, "outcome_unknown"))
                self.assertEqual(harness.count_runs(counter), 1, "it never ran again")
        finally:
            for s in servers:
                s.cleanup()
            harness.psql(PG, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db.rsplit("/", 1)[1],
                         check=False)


PRIV, PUB = clawshield.keygen()


class SingleUseApprovalTests(MultiInstanceTests):
    env = {"OPENEXEC_MODE": "clawshield", "CLAWSHIELD_PUBLIC_KEY": PUB,
           "CLAWSHIELD_TENANT_ID": "acme"}
    ROUNDS = 30

    def test_one_approval_at_two_instances_at_once_is_used_once(self):
        for rnd in range(self.ROUNDS):
            art = clawshield.mint(PRIV, "acme", "echo", {"pay": rnd}, ttl=300)
            pair = random.Random(rnd).sample(self.servers, 2)
            calls = [(lambda s=s, k=k: s.execute("echo", {"pay": rnd}, artifact=art,
                                                 nonce="appr-%d-%d-%s" % (rnd, k, os.urandom(4).hex())))
                     for k, s in enumerate(pair)]
            answers = harness.fire_together(calls)
            statuses = sorted(r.status for r in answers)
            self.assertEqual(statuses, [200, 403], answers)
            denied = [r for r in answers if r.status == 403][0]
            self.assertEqual(denied.json()["error"], "approval_already_used")
            self.assertEqual(self.sql("SELECT count(*) FROM approvals_used WHERE approval_id = '%s'"
                                      % art["approval_id"]), "1")
            self.assertEqual(self.sql("SELECT count(*) FROM executions WHERE approval_id = '%s'"
                                      % art["approval_id"]), "1")

    def test_one_approval_at_every_instance_many_threads_is_used_once(self):
        art = clawshield.mint(PRIV, "acme", "echo", {"all": 1}, ttl=300)
        calls = [(lambda s=s, k=k: s.execute("echo", {"all": 1}, artifact=art,
                                             nonce="every-%d-%s" % (k, os.urandom(4).hex())))
                 for k, s in enumerate(self.servers * 4)]
        answers = harness.fire_together(calls)
        self.assertEqual(sum(r.status == 200 for r in answers), 1, answers)
        for r in answers:
            if r.status != 200:
                self.assertEqual((r.status, r.json()["error"]), (403, "approval_already_used"))
        self.assertEqual(self.sql("SELECT count(*) FROM executions WHERE approval_id = '%s'"
                                  % art["approval_id"]), "1")
        self.assert_logs_clean()


if __name__ == "__main__":
    harness.main()
