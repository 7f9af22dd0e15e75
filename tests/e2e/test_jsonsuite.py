"""JSONTestSuite (../shared/testdata) through the real server, as its README
prescribes: every n_ body is a 4xx (400 invalid_json, or the 413/422 the SPEC
names), every y_ value embedded in a valid request executes (200) unless it is
one of the documented 422 unsupported_json rejections, a whole y_ body that is
not an object is 400 not_an_object, and i_ may go either way.  Nothing may
crash, hang or answer 5xx."""

import json
import os
import unittest

import harness

SUITE = os.path.join(harness.SHARED_DIR, "testdata", "JSONTestSuite", "test_parsing")

def files(prefix):
    return sorted(f for f in os.listdir(SUITE) if f.startswith(prefix))


class JsonTestSuite(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isdir(SUITE):
            raise unittest.SkipTest("missing " + SUITE)
        cls.srv = harness.Server().start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def read(self, name):
        with open(os.path.join(SUITE, name), "rb") as f:
            return f.read()

    def test_suite_is_complete(self):
        self.assertEqual(len(os.listdir(SUITE)), 318)

    def test_n_bodies_are_client_errors(self):
        for name in files("n_"):
            with self.subTest(name):
                r = self.srv.post("/execute", self.read(name))
                self.assertIn(r.status, (400, 413, 422), name)
                code = r.json()["error"]
                if r.status == 400:
                    self.assertIn(code, ("invalid_json", "not_an_object"), name)
                if r.status == 422:
                    self.assertEqual(code, "unsupported_json", name)

    def test_y_values_embedded_execute(self):
        for i, name in enumerate(files("y_")):
            with self.subTest(name):
                data = self.read(name)
                body = b'{"action":"echo","nonce":"y-%d","payload":{"v":' % i + data + b"}}"
                r = self.srv.post("/execute", body)
                if r.status == 422:
                    self.assertEqual(r.json()["error"], "unsupported_json", name)
                    self.assertTrue(self.is_documented_rejection(data), name)
                    continue
                self.assertEqual(r.status, 200, (name, r))
                # What was echoed is the value Python reads from the file.
                self.assertEqual(r.json()["result"]["echo"]["v"], json.loads(data), name)

    def is_documented_rejection(self, data):
        """Duplicate keys, integers outside int64, overflowing numbers, lone
        surrogates or NUL in a key: what SPEC 3.3 rejects."""
        def pairs(items):
            keys = [k for k, _ in items]
            if len(keys) != len(set(keys)) or any("\x00" in k for k in keys):
                raise ValueError("dup or nul key")
            return dict(items)
        def check_int(s):
            v = int(s)
            if not -2**63 <= v < 2**63:
                raise ValueError("int64")
            return v
        def check_float(s):
            v = float(s)
            if v in (float("inf"), float("-inf")):
                raise ValueError("overflow")
            return v
        try:
            text = data.decode("utf-8")
            value = json.loads(text, object_pairs_hook=pairs, parse_int=check_int,
                               parse_float=check_float)
            json.dumps(value).encode("utf-8")  # lone surrogates cannot be encoded
        except (ValueError, UnicodeEncodeError):
            return True
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False

    def test_y_bodies_that_are_not_objects_are_400(self):
        for name in files("y_"):
            with self.subTest(name):
                data = self.read(name)
                value = json.loads(data)
                r = self.srv.post("/execute", data)
                if isinstance(value, dict):
                    self.assertIn(r.status, (422,), (name, r))
                else:
                    self.assertEqual((r.status, r.json()["error"]), (400, "not_an_object"), name)

    def test_i_bodies_do_not_break_anything(self):
        for i, name in enumerate(files("i_")):
            with self.subTest(name):
                data = self.read(name)
                r = self.srv.post("/execute", data)
                self.assertLess(r.status, 500, name)
                body = b'{"action":"echo","nonce":"i-%d","payload":{"v":' % i + data + b"}}"
                r = self.srv.post("/execute", body)
                self.assertIn(r.status, (200, 400, 422), (name, r))
        self.assertEqual(self.srv.get("/ready").status, 200)


if __name__ == "__main__":
    harness.main()
