"""Operations: /metrics in Prometheus text, one JSON access-log line per
request without payloads, and OPENEXEC_ACCESS_LOG."""

import json
import re
import unittest

import harness


def metric(text, name, **labels):
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = ",".join(sorted((m.group(2) or "").split(","))) if m.group(2) else ""
        if got == want:
            return float(m.group(3))
    return None


class MetricsTests(unittest.TestCase):
    def test_metrics_count_requests_outcomes_and_denials(self):
        with harness.Server(env={"OPENEXEC_ALLOWED_ACTIONS": "echo"}) as srv:
            srv.execute("echo", {"secret": "hunter2"}, nonce="m-1")
            srv.execute("echo", {"secret": "hunter2"}, nonce="m-1")
            srv.execute("add", {}, nonce="m-2")
            srv.get("/nope")
            r = srv.get("/metrics")
            self.assertEqual(r.status, 200)
            self.assertTrue(r.headers["content-type"].startswith("text/plain"))
            t = r.body.decode()
            self.assertEqual(metric(t, "openexec_http_requests_total", endpoint="/execute", status="200"), 2)
            self.assertEqual(metric(t, "openexec_http_requests_total", endpoint="/execute", status="403"), 1)
            self.assertEqual(metric(t, "openexec_http_requests_total", endpoint="other", status="404"), 1)
            self.assertEqual(metric(t, "openexec_executions_total", outcome="executed"), 1)
            self.assertEqual(metric(t, "openexec_executions_total", outcome="replayed"), 1)
            self.assertEqual(metric(t, "openexec_executions_total", outcome="denied"), 1)
            self.assertEqual(metric(t, "openexec_denials_total", reason="action_not_allowed"), 1)
            self.assertGreaterEqual(metric(t, "openexec_store_commit_seconds_count"), 3)
            self.assertEqual(metric(t, "openexec_http_request_duration_seconds_count"), 4)
            self.assertGreaterEqual(metric(t, "openexec_open_connections"), 1)
            self.assertEqual(metric(t, "openexec_store_writable"), 1)
            # Every line is a comment or a sample.
            for line in t.splitlines():
                self.assertRegex(line, r"^(# (HELP|TYPE) .*|\w+(\{[^}]*\})? [0-9.e+-]+)$")

    def test_access_log_is_json_without_payloads(self):
        with harness.Server() as srv:
            srv.execute("echo", {"secret": "hunter2"}, nonce="log-1",
                        headers={"X-Request-Id": "trace-42"})
            srv.stop()
            lines = [json.loads(l) for l in srv.log().splitlines()]
            reqs = [l for l in lines if l.get("msg") == "request"]
            self.assertEqual(len(reqs), 1)
            self.assertEqual((reqs[0]["method"], reqs[0]["path"], reqs[0]["status"],
                              reqs[0]["request_id"], reqs[0]["outcome"]),
                             ("POST", "/execute", 200, "trace-42", "executed"))
            self.assertNotIn("hunter2", srv.log())
            self.assertNotIn("log-1", srv.log())

    def test_access_log_lines_stay_whole_under_concurrency(self):
        # Each event loop writes its lines in batches of whole lines; with
        # two loops answering 40 clients at once, every line must still be
        # one whole JSON object, one per request, none lost or merged.
        with harness.Server(threads=2) as srv:
            calls = [(lambda i=i: srv.execute(
                "echo", {"n": i}, nonce="cl-%d" % i,
                headers={"X-Request-Id": "cl-req-%03d-%s" % (i, "x" * 100)}))
                for i in range(40)]
            for _ in range(5):
                rs = harness.fire_together(calls)
                self.assertTrue(all(r.status == 200 for r in rs), rs)
            srv.stop()
            reqs = [json.loads(l) for l in srv.log().splitlines() if '"msg":"request"' in l]
            ids = sorted(r["request_id"] for r in reqs)
            want = sorted("cl-req-%03d-%s" % (i, "x" * 100) for i in range(40)) * 5
            self.assertEqual(ids, sorted(want))
            self.assertEqual(sum(r["outcome"] == "executed" for r in reqs), 40)
            self.assertEqual(sum(r["outcome"] == "replayed" for r in reqs), 160)

    def test_access_log_off(self):
        with harness.Server(env={"OPENEXEC_ACCESS_LOG": "off"}) as srv:
            srv.get("/health")
            srv.stop()
            self.assertNotIn('"msg":"request"', srv.log())

    def test_bad_access_log_value_exits_2(self):
        r = harness.run_cli(["check-config"], env={"OPENEXEC_ACCESS_LOG": "maybe"})
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    harness.main()
