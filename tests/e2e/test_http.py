"""HTTP layer over a real loopback server: endpoints byte for byte (SPEC 2),
routing, HEAD, 404/405, X-Request-Id, body limits, framing, shutdown."""

import json
import re
import threading
import time
import unittest

import harness

MIB = 1024 * 1024

VERSION_RE = re.compile(r'^\{"version":"(\d+\.\d+\.\d+)","timestamp":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?)"\}$')
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class HttpTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server().start()
        cls.version = cls.srv.get("/version").json()["version"]

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def assert_json_error(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.headers["content-type"], "application/json")
        body = r.json()
        self.assertEqual(list(body)[:2], ["detail", "error"], r)
        self.assertEqual(body["error"], code, r)
        self.assertIsInstance(body["detail"], str)
        self.assertIn("x-request-id", r.headers)

    def test_root_is_byte_exact(self):
        r = self.srv.get("/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(r.body, b'{"service":"OpenExec","status":"running","version":"%s"}'
                         % self.version.encode())

    def test_health_open_demo_is_byte_exact(self):
        r = self.srv.get("/health")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b'{"status":"healthy","exec_mode":"demo",'
                         b'"signature_verification":"disabled","restriction":"open",'
                         b'"warning":"No execution allow-list configured",'
                         b'"actions":["add","echo"]}')

    def test_ready(self):
        r = self.srv.get("/ready")
        self.assertEqual((r.status, r.body), (200, b'{"ready":true}'))

    def test_version_shape_and_utc_timestamp(self):
        r = self.srv.get("/version")
        m = VERSION_RE.match(r.body.decode())
        self.assertIsNotNone(m, r.body)
        stamp = m.group(2)
        import datetime
        fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in stamp else "%Y-%m-%dT%H:%M:%S"
        t = datetime.datetime.strptime(stamp, fmt)
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        self.assertLess(abs((now - t).total_seconds()), 30)

    def test_head_has_headers_and_no_body(self):
        for path in ["/", "/health", "/ready", "/version"]:
            g = self.srv.get(path)
            h = self.srv.request("HEAD", path)
            self.assertEqual(h.status, 200, path)
            self.assertEqual(h.body, b"", path)
            self.assertEqual(h.headers["content-type"], "application/json")
            if path != "/version":
                self.assertEqual(h.headers.get("content-length"), str(len(g.body)), path)

    def test_unknown_path_is_404_json(self):
        for path in ["/nope", "/execute/x", "/HEALTH", "/health/"]:
            self.assert_json_error(self.srv.get(path), 404, "not_found")
        self.assert_json_error(self.srv.post("/nope", {}), 404, "not_found")

    def test_wrong_method_is_405_with_allow(self):
        r = self.srv.post("/health", {})
        self.assert_json_error(r, 405, "method_not_allowed")
        self.assertEqual(r.headers["allow"], "GET, HEAD")
        for m in ["GET", "PUT", "DELETE", "PATCH"]:
            r = self.srv.request(m, "/execute")
            self.assert_json_error(r, 405, "method_not_allowed")
            self.assertEqual(r.headers["allow"], "POST")

    def test_request_id_echoed_when_valid(self):
        rid = "abc-DEF_1.2:3"
        r = self.srv.get("/health", headers={"X-Request-Id": rid})
        self.assertEqual(r.headers["x-request-id"], rid)
        r = self.srv.get("/health", headers={"X-Request-Id": "x" * 128})
        self.assertEqual(r.headers["x-request-id"], "x" * 128)
        # Whitespace around a field value is not part of it (RFC 9110 5.5).
        for padded in ["trace-7 ", "trace-7\t", "  trace-7 \t ", "\ttrace-7"]:
            r = self.srv.get("/health", headers={"X-Request-Id": padded})
            self.assertEqual(r.headers["x-request-id"], "trace-7", repr(padded))
        r = self.srv.get("/health", headers={"X-Request-Id": "x" * 128 + " "})
        self.assertEqual(r.headers["x-request-id"], "x" * 128)

    def test_request_id_generated_when_invalid_or_missing(self):
        for bad in [None, "x" * 129, "has space", "semi;colon", "\u00e9".encode().decode("latin-1")]:
            hdrs = {"X-Request-Id": bad} if bad is not None else {}
            r = self.srv.get("/", headers=hdrs)
            self.assertRegex(r.headers["x-request-id"], UUID_RE)
        a = self.srv.get("/").headers["x-request-id"]
        b = self.srv.get("/").headers["x-request-id"]
        self.assertNotEqual(a, b)

    def test_error_answers_carry_request_id(self):
        r = self.srv.get("/nope", headers={"X-Request-Id": "trace-1"})
        self.assertEqual(r.headers["x-request-id"], "trace-1")

    def assert_json_413(self, out):
        head, _, body = out.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 413"), out[:200])
        self.assertIn(b"content-type: application/json", head.lower())
        self.assertIn(b"x-request-id: ", head.lower())
        self.assertEqual(json.loads(body),
                         {"detail": "Request body exceeds 1048576 bytes", "error": "body_too_large"})

    def test_body_over_1mib_is_json_413(self):
        # A body far over the limit is refused as soon as its declared length
        # is read, before the body: send only the head, as a client with
        # Expect would.
        out = self.srv.raw(b"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: "
                           b"application/json\r\nContent-Length: %d\r\n\r\n{" % (50 << 20))
        self.assert_json_413(out)
        # One byte over, on any path: refused once read.
        for path in (b"/execute", b"/receipts/verify", b"/", b"/nope"):
            with self.subTest(path=path):
                out = self.srv.raw(b"POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                   b"Content-Length: %d\r\n\r\n" % (path, MIB + 1)
                                   + b"{" + b" " * MIB)
                self.assert_json_413(out)

    def chunked(self, body, path=b"/execute"):
        """body sent in 64 KiB chunks, on a connection closed after the answer."""
        req = (b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n" % path)
        for i in range(0, len(body), 65536):
            piece = body[i:i + 65536]
            req += b"%x\r\n" % len(piece) + piece + b"\r\n"
        return self.srv.raw(req + b"0\r\n\r\n", timeout=30)

    def test_chunked_body_of_exactly_1mib_is_not_413(self):
        # h2o refuses a chunked body that *reaches* its limit; SPEC 7 allows
        # 1 MiB, in either framing.
        prefix = b'{"action":"echo","nonce":"chunked-1mib","payload":{"s":"'
        suffix = b'"}}'
        body = prefix + b"a" * (MIB - len(prefix) - len(suffix)) + suffix
        self.assertEqual(len(body), MIB)
        out = self.chunked(body)
        self.assertTrue(out.startswith(b"HTTP/1.1 200"), out[:300])
        self.assertEqual(json.loads(out.partition(b"\r\n\r\n")[2])["result"]["echo"],
                         {"s": "a" * (MIB - len(prefix) - len(suffix))})
        self.assert_json_413(self.chunked(body + b" "))

    def test_body_of_exactly_1mib_is_not_413(self):
        prefix = b'{"action":"echo","nonce":"n1mib","payload":{"s":"'
        suffix = b'"}}'
        body = prefix + b"a" * (1024 * 1024 - len(prefix) - len(suffix)) + suffix
        self.assertEqual(len(body), 1024 * 1024)
        r = self.srv.post("/execute", body)
        self.assertNotEqual(r.status, 413, r)

    def test_chunked_body_over_1mib_is_413(self):
        out = self.chunked(b"a" * (17 * 65536))
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out[:200])
        self.assertIn(b'"error":"body_too_large"', out)

    def test_absolute_form_request_target_is_routed_by_its_path(self):
        # RFC 9112 3.2.2: a server must accept "GET http://host/path".
        for target, want in ((b"http://x/health", b'"status":"healthy"'),
                             (b"HTTP://x", b'"service":"OpenExec"'),
                             (b"https://x?from=0", b'"service":"OpenExec"'),
                             (b"http://x/receipts?limit=0", b'"error":"bad_range"'),
                             (b"http://x/nope", b'"error":"not_found"')):
            out = self.srv.raw(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n"
                               b"Connection: close\r\n\r\n")
            self.assertIn(want, out, target)
        body = b'{"action":"echo","payload":{"abs":1},"nonce":"absolute-form-1"}'
        out = self.srv.raw(b"POST http://x/execute HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                           % (len(body), body))
        self.assertTrue(out.startswith(b"HTTP/1.1 200"), out[:300])
        self.assertIn(b'"result":{"echo":{"abs":1}}', out)

    def test_content_length_and_transfer_encoding_is_400_and_close(self):
        req = (b"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
               b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        out = self.srv.raw(req)
        self.assertTrue(out.startswith(b"HTTP/1.1 400"), out[:200])
        self.assertIn(b"connection: close", out.lower())
        # The smuggled second request must not have been answered.
        self.assertEqual(out.count(b"HTTP/1.1"), 1, out)

    def test_conflicting_framing_later_on_a_keepalive_connection(self):
        import socket
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
        try:
            s.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
            first = s.recv(65536)
            self.assertTrue(first.startswith(b"HTTP/1.1 200"), first)
            s.sendall(b"POST /execute HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                      b"Content-Length: 3\r\n\r\n0\r\n\r\nGET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
            out = b""
            while True:
                c = s.recv(65536)
                if not c:
                    break
                out += c
        finally:
            s.close()
        self.assertTrue(out.startswith(b"HTTP/1.1 400"), out)
        self.assertIn(b'"error":"bad_request"', out)
        self.assertEqual(out.count(b"HTTP/1.1"), 1, out)

    def test_pipelined_requests_are_answered_in_order(self):
        req = b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p
                       for p in [b"/ready", b"/nope", b"/"])
        req += b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        out = self.srv.raw(req)
        statuses = re.findall(rb"HTTP/1.1 (\d{3})", out)
        self.assertEqual(statuses, [b"200", b"404", b"200", b"200"])

    def test_garbage_request_line_does_not_kill_server(self):
        for junk in [b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"FOO / HTTP/9.9\r\n\r\n",
                     b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 20000 + b"\r\n\r\n"]:
            self.srv.raw(junk, timeout=3)
        self.assertEqual(self.srv.get("/ready").status, 200)

    def test_many_headers_refused_server_survives(self):
        req = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(
            b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n"
        out = self.srv.raw(req, timeout=3)
        self.assertTrue(out == b"" or not out.startswith(b"HTTP/1.1 200"), out[:100])
        self.assertEqual(self.srv.get("/ready").status, 200)


class ShutdownTests(unittest.TestCase):
    def test_sigterm_exits_zero(self):
        srv = harness.Server().start()
        try:
            self.assertEqual(srv.get("/ready").status, 200)
            self.assertEqual(srv.stop(), 0)
            self.assertIn("stopped cleanly", srv.log())
        finally:
            srv.cleanup()

    def test_sigterm_drains_requests_in_flight(self):
        srv = harness.Server().start()
        results = []
        try:
            def fire(i):
                r = srv.execute("echo", {"i": i}, nonce="drain-%d" % i)
                results.append(r.status)
            threads = [threading.Thread(target=fire, args=(i,)) for i in range(20)]
            for t in threads:
                t.start()
            time.sleep(0.05)
            code = srv.stop()
            for t in threads:
                t.join(10)
            self.assertEqual(code, 0)
            # Every request either completed or was never accepted; none
            # got a broken answer.
            self.assertTrue(all(s == 200 for s in results), results)
        except ConnectionError:
            pass
        finally:
            srv.cleanup()


if __name__ == "__main__":
    harness.main()
