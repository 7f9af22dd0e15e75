"""POST /execute in demo mode over the real server and a real SQLite file:
built-ins, replay, nonce reuse, allow-list, the legacy receipt, body errors,
and exactly-once under concurrency."""

import hashlib
import json
import os
import re
import time
import unittest

import harness


def legacy_receipt(exec_id, result):
    return hashlib.sha256((exec_id + ":" + json.dumps(result, sort_keys=True)).encode()).hexdigest()


class ExecuteTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server().start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def db_count(self, nonce):
        return harness.executions_count(self.srv, nonce)

    def assert_error(self, r, status, code, detail=None):
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertEqual(body["error"], code, r)
        if detail is not None:
            self.assertEqual(body["detail"], detail)

    def test_echo(self):
        r = self.srv.execute("echo", {"msg": "hi", "n": [1, 2.5, None]}, nonce="echo-1")
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(list(body)[:5], ["id", "action", "result", "approved", "receipt"])
        self.assertEqual(body["action"], "echo")
        self.assertEqual(body["result"], {"echo": {"msg": "hi", "n": [1, 2.5, None]}})
        self.assertIs(body["approved"], True)
        self.assertEqual(body["receipt"], legacy_receipt(body["id"], body["result"]))

    def test_ids_are_uuid4_and_ordered_by_time(self):
        # Every attempt's id (an execution's and a denial's) is a version-4
        # UUID whose first 48 bits are its time in milliseconds, so ids made
        # later sort later: the receipts' exec_id index grows at its end
        # (docs/performance.md).  The other 74 bits stay random.
        uuid4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        ids = []
        for i in range(6):
            before_ms = int(time.time() * 1000)
            if i % 2:
                r = self.srv.execute("no-such-action", {}, nonce="ids-%d" % i)
                self.assertEqual(r.status, 400, r)
            else:
                r = self.srv.execute("echo", {"i": i}, nonce="ids-%d" % i)
                self.assertEqual(r.status, 200, r)
            after_ms = int(time.time() * 1000)
            exec_id = r.json()["id"]
            self.assertRegex(exec_id, uuid4)
            self.assertEqual(r.json()["signed_receipt"]["receipt"]["exec_id"], exec_id)
            made_ms = int(exec_id.replace("-", "")[:12], 16)
            self.assertTrue(before_ms - 1 <= made_ms <= after_ms + 1,
                            (before_ms, made_ms, after_ms))
            ids.append(exec_id)
            time.sleep(0.003)
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(set(id_[15:] for id_ in ids)), len(ids), "random tails repeat")

    def test_payload_missing_or_null_is_empty_object(self):
        for nonce, payload in (("p-missing", None), ("p-null", "null")):
            raw = '{"action":"echo","nonce":"%s"%s}' % (
                nonce, "" if payload is None else ',"payload":null')
            r = self.srv.post("/execute", raw)
            self.assertEqual(r.json()["result"], {"echo": {}}, r)

    def test_add_integers_exact(self):
        r = self.srv.execute("add", {"a": 2**62, "b": 2**62 - 1})
        self.assertEqual(r.json()["result"], {"sum": 2**63 - 1})
        r = self.srv.execute("add", {"a": 9007199254740993, "b": 0})
        self.assertEqual(r.body.count(b'"sum":9007199254740993'), 1, r)

    def test_add_defaults_and_floats(self):
        self.assertEqual(self.srv.execute("add", {}).json()["result"], {"sum": 0})
        self.assertEqual(self.srv.execute("add", {"a": 5}).json()["result"], {"sum": 5})
        r = self.srv.execute("add", {"a": 1, "b": 0.5, "c": "ignored"})
        self.assertEqual(r.json()["result"], {"sum": 1.5})
        r = self.srv.execute("add", {"a": 1.0, "b": 2})
        self.assertIn(b'"sum":3.0', r.body)

    def test_add_rejects_non_numbers(self):
        for payload in ({"a": "1", "b": 2}, {"a": True}, {"b": None}, {"a": [1]}, {"a": {}}):
            r = self.srv.execute("add", payload)
            self.assert_error(r, 422, "invalid_arguments")

    def test_add_overflow_is_422(self):
        self.assert_error(self.srv.execute("add", {"a": 2**63 - 1, "b": 1}), 422, "invalid_arguments")
        self.assert_error(self.srv.execute("add", {"a": -2**63, "b": -1}), 422, "invalid_arguments")
        self.assert_error(self.srv.execute("add", {"a": 1.7e308, "b": 1.7e308}), 422, "invalid_arguments")
        r = self.srv.execute("add", {"a": -2**63, "b": 2**63 - 1})
        self.assertEqual(r.json()["result"], {"sum": -1})

    def test_rejected_add_does_not_consume_nonce(self):
        self.assert_error(self.srv.execute("add", {"a": "x"}, nonce="fix-me"), 422, "invalid_arguments")
        r = self.srv.execute("add", {"a": 1, "b": 2}, nonce="fix-me")
        self.assertEqual(r.status, 200, r)

    def test_unknown_action(self):
        r = self.srv.execute("rm_rf", {}, nonce="unknown-1")
        self.assert_error(r, 400, "unknown_action", "Unknown action: rm_rf")
        # A rejection does not consume the nonce.
        self.assertEqual(self.srv.execute("echo", {}, nonce="unknown-1").status, 200)

    def test_replay_is_byte_identical_with_header(self):
        first = self.srv.execute("echo", {"x": 1}, nonce="replay-1")
        self.assertEqual(first.status, 200)
        self.assertNotIn("idempotent-replayed", first.headers)
        for _ in range(3):
            again = self.srv.execute("echo", {"x": 1}, nonce="replay-1")
            self.assertEqual(again.status, 200)
            self.assertEqual(again.body, first.body)
            self.assertEqual(again.headers.get("idempotent-replayed"), "true")
        self.assertEqual(self.db_count("replay-1"), 1)

    def test_replay_with_equivalent_json_is_a_replay(self):
        first = self.srv.post("/execute", '{"action":"echo","nonce":"eq-1","payload":{"a":1,"b":[1E2]}}')
        again = self.srv.post("/execute", '{"payload":{"b":[100.0],"a":1},"nonce":"eq-1","action":"echo","extra":1}')
        self.assertEqual(again.status, 200)
        self.assertEqual(again.body, first.body)

    def test_replay_with_other_payload_is_422(self):
        self.assertEqual(self.srv.execute("echo", {"x": 1}, nonce="reuse-1").status, 200)
        r = self.srv.execute("echo", {"x": 2}, nonce="reuse-1")
        self.assert_error(r, 422, "nonce_reused", "Nonce already used for a different request")
        r = self.srv.execute("add", {"x": 1}, nonce="reuse-1")
        self.assert_error(r, 422, "nonce_reused")

    def test_nonce_is_compared_as_bytes(self):
        a = self.srv.execute("echo", {"k": 1}, nonce="caf\u00e9")
        b = self.srv.execute("echo", {"k": 1}, nonce="cafe\u0301")
        self.assertEqual(a.status, 200)
        self.assertEqual(b.status, 200)
        self.assertNotEqual(a.json()["id"], b.json()["id"])
        c = self.srv.post("/execute", '{"action":"echo","nonce":"n\\u0000ul","payload":{}}')
        d = self.srv.post("/execute", '{"action":"echo","nonce":"n","payload":{}}')
        self.assertEqual(c.status, 200)
        self.assertNotEqual(c.json()["id"], d.json()["id"])

    def test_action_holding_u0000_is_unknown_and_quoted_whole(self):
        # "echo\u0000" is a string of five characters, not echo: an unknown
        # action (SPEC 3's order), quoted as it is in the Compat text, with a
        # rejected receipt; the nonce stays free.
        r = self.srv.post("/execute", '{"action":"echo\\u0000","nonce":"nul-act-1","payload":{}}')
        self.assert_error(r, 400, "unknown_action", "Unknown action: echo\u0000")
        receipt = r.json()["signed_receipt"]["receipt"]
        self.assertEqual((receipt["action"], receipt["outcome"]), ("echo\u0000", "rejected"))
        self.assertEqual(self.db_count("nul-act-1"), 0)
        self.assertEqual(self.srv.execute("echo", {}, nonce="nul-act-1").status, 200)

    def test_body_errors(self):
        cases = [
            (b"", 400, "invalid_json"),
            (b"{", 400, "invalid_json"),
            (b"[1]", 400, "not_an_object"),
            (b'"x"', 400, "not_an_object"),
            (b'{"action":"echo","nonce":"x","payload":NaN}', 400, "invalid_json"),
            (b'{"action":"echo","nonce":"x"}\x00', 400, "invalid_json"),
            (b'{"action":"echo","nonce":"\xff"}', 400, "invalid_json"),
            (b'{"action":"echo","action":"add","nonce":"x"}', 422, "unsupported_json"),
            (b'{"action":"echo","nonce":"x","payload":{"a":1e400}}', 422, "unsupported_json"),
            (b'{"action":"echo","nonce":"x","payload":{"a":9223372036854775808}}', 422, "unsupported_json"),
            (b'{"action":"echo","nonce":"x","payload":{"a":"\\ud800"}}', 422, "unsupported_json"),
            (b'{"action":"echo","nonce":"x","payload":{"a\\u0000":1}}', 422, "unsupported_json"),
            (b'{"action":"echo","nonce":"x","payload":' + b"[" * 70 + b"]" * 70 + b"}", 422, "unsupported_json"),
            (b'{"nonce":"x"}', 422, "invalid_request"),
            (b'{"action":1,"nonce":"x"}', 422, "invalid_request"),
            (b'{"action":"echo"}', 422, "invalid_request"),
            (b'{"action":"echo","nonce":""}', 422, "invalid_request"),
            (b'{"action":"","nonce":"x"}', 422, "invalid_request"),
            (b'{"action":"echo","nonce":"x","payload":[1]}', 422, "invalid_request"),
            (b'{"action":"echo","nonce":"x","payload":"s"}', 422, "invalid_request"),
            (b'{"action":"echo","nonce":"x","approval_artifact":"s"}', 422, "invalid_request"),
            (b'{"action":"echo","nonce":"' + b"n" * 257 + b'"}', 422, "invalid_request"),
            (b'{"action":"' + b"a" * 129 + b'","nonce":"x"}', 422, "invalid_request"),
        ]
        for body, status, code in cases:
            r = self.srv.post("/execute", body)
            self.assertEqual((r.status, r.json()["error"]), (status, code), body[:80])
        # Length limits are inclusive.
        r = self.srv.post("/execute", b'{"action":"echo","nonce":"' + b"n" * 256 + b'"}')
        self.assertEqual(r.status, 200, r)
        r = self.srv.post("/execute", b'{"action":"' + b"a" * 128 + b'","nonce":"x128"}')
        self.assert_error(r, 400, "unknown_action")

    def test_fifty_concurrent_requests_one_nonce_execute_once(self):
        nonce = "concurrent-" + os.urandom(4).hex()
        results = harness.fire_together(
            [lambda: self.srv.execute("echo", {"v": 42}, nonce=nonce)] * 50)
        self.assertEqual([r.status for r in results], [200] * 50)
        self.assertEqual(len({r.body for r in results}), 1, "every answer is the one execution's")
        self.assertEqual(self.db_count(nonce), 1)

    def test_concurrent_different_requests_one_nonce(self):
        nonce = "race-" + os.urandom(4).hex()
        results = harness.fire_together(
            [(lambda i=i: self.srv.execute("echo", {"v": i % 2}, nonce=nonce)) for i in range(20)])
        ok = [r for r in results if r.status == 200]
        reused = [r for r in results if r.status == 422]
        # The ten that asked what the winner asked get its answer; the other
        # ten asked for something else and are refused.
        self.assertEqual((len(ok), len(reused)), (10, 10))
        self.assertEqual(len({r.body for r in ok}), 1)
        self.assertTrue(all(r.json()["error"] == "nonce_reused" for r in reused))
        self.assertEqual(self.db_count(nonce), 1)


class AllowListTests(unittest.TestCase):
    def test_action_outside_allow_list_is_403(self):
        with harness.Server(env={"OPENEXEC_ALLOWED_ACTIONS": "echo"}) as srv:
            r = srv.execute("add", {"a": 1}, nonce="al-1")
            self.assertEqual(r.status, 403)
            body = r.json()
            self.assertEqual(list(body), ["detail", "error", "id", "signed_receipt"])
            self.assertEqual((body["detail"], body["error"]),
                             ("Action 'add' is not in the execution allow-list",
                              "action_not_allowed"))
            self.assertEqual(body["signed_receipt"]["receipt"]["outcome"], "denied")
            self.assertEqual(srv.execute("echo", {}, nonce="al-2").status, 200)
            # allow-list comes before the registry
            r = srv.execute("nope", {}, nonce="al-3")
            self.assertEqual(r.json()["error"], "action_not_allowed")
            # a denial does not consume the nonce... but the allow-list still applies
            self.assertEqual(srv.execute("echo", {}, nonce="al-1").status, 200)

    def test_action_holding_u0000_is_not_the_allowed_one(self):
        with harness.Server(env={"OPENEXEC_ALLOWED_ACTIONS": "echo"}) as srv:
            r = srv.post("/execute", '{"action":"echo\\u0000x","nonce":"al-nul","payload":{}}')
            self.assertEqual(r.status, 403, r)
            self.assertEqual((r.json()["detail"], r.json()["error"]),
                             ("Action 'echo\u0000x' is not in the execution allow-list",
                              "action_not_allowed"))

    def test_replay_precedes_allow_list(self):
        with tempfile_dir() as d:
            with harness.Server(workdir=d) as srv:
                first = srv.execute("add", {"a": 1}, nonce="pre-1")
            with harness.Server(workdir=d, env={"OPENEXEC_ALLOWED_ACTIONS": "echo"}) as srv:
                again = srv.execute("add", {"a": 1}, nonce="pre-1")
                self.assertEqual(again.status, 200)
                self.assertEqual(again.body, first.body)


class LegacyReceiptTests(unittest.TestCase):
    def test_receipt_verifies_with_string_and_object(self):
        with harness.Server() as srv:
            body = srv.execute("add", {"a": 1, "b": 2}, nonce="lr-1").json()
            result_json = json.dumps(body["result"], sort_keys=True)
            r = srv.post("/receipts/verify", {"exec_id": body["id"], "result": result_json,
                                              "receipt": body["receipt"]})
            self.assertEqual((r.status, r.body), (200, b'{"valid":true}'))
            r = srv.post("/receipts/verify", {"exec_id": body["id"], "result": body["result"],
                                              "receipt": body["receipt"]})
            self.assertEqual(r.body, b'{"valid":true}')
            r = srv.post("/receipts/verify", {"exec_id": body["id"], "result": {"sum": 4},
                                              "receipt": body["receipt"]})
            self.assertEqual(r.body, b'{"valid":false}')
            r = srv.post("/receipts/verify", {"exec_id": "other", "result": result_json,
                                              "receipt": body["receipt"]})
            self.assertEqual(r.body, b'{"valid":false}')

    def test_receipt_verify_bad_bodies(self):
        with harness.Server() as srv:
            self.assertEqual(srv.post("/receipts/verify", "{").json()["error"], "invalid_json")
            r = srv.post("/receipts/verify", {"exec_id": "x", "receipt": "y"})
            self.assertEqual((r.status, r.json()["error"]), (422, "invalid_request"))
            r = srv.post("/receipts/verify", {"exec_id": "x", "result": [1], "receipt": "y"})
            self.assertEqual((r.status, r.json()["error"]), (422, "invalid_request"))


def tempfile_dir():
    import tempfile
    return tempfile.TemporaryDirectory()


if __name__ == "__main__":
    harness.main()
