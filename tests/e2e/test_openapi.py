"""The OpenAPI document (docs/openapi.json, served at GET /openapi.json)
against the real server, both ways:

- the document is structurally OpenAPI 3.1: required fields, unique
  operationIds, declared path parameters, every $ref resolves, every schema
  uses only keywords this test's validator understands (so no constraint is
  silently ignored), and every example validates against its schema;
- every documented path and method, probed on real servers (demo, clawshield
  without a key and with an allow-list, a full disk when a tmpfs can be
  mounted, a failing operator action when the server supports them), answers
  with a documented status, a documented media type, the documented headers
  and a body that matches the documented schema;
- every route the server has is documented: candidate paths are taken from
  the binary itself (every C string that starts with "/"), from the route
  table in src/server.c, and from a list of usual suspects; each one that
  the server answers with anything but its unknown-path 404 must be a
  documented path, and the methods its 405 names in Allow must be exactly
  the documented ones.  Undocumented paths (/admin, /debug, ...) are 404.

The validator is a small JSON Schema subset written here (standard library
only): $ref, type, enum, const, required, properties, additionalProperties,
items, oneOf, anyOf, allOf, minLength, maxLength, pattern, minimum, maximum,
minItems, maxItems.
"""

import http.client
import json
import os
import posixpath
import re
import shutil
import tempfile
import time
import unittest
import urllib.parse

import harness

DOC_FILE = os.path.join(harness.SOURCE_DIR, "docs", "openapi.json")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Keywords the validator checks, and annotations it may ignore.
ASSERTING = {"$ref", "type", "enum", "const", "required", "properties", "additionalProperties",
             "items", "oneOf", "anyOf", "allOf", "minLength", "maxLength", "pattern",
             "minimum", "maximum", "minItems", "maxItems"}
ANNOTATIONS = {"description", "title", "format", "default", "examples", "example",
               "deprecated", "readOnly", "writeOnly"}


# ---------------------------------------------------------------- validator

class Validator:
    def __init__(self, doc):
        self.doc = doc

    def resolve(self, ref):
        if not ref.startswith("#/"):
            raise KeyError("only local $refs are used: %s" % ref)
        node = self.doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[part]
        return node

    def deref(self, node):
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            node = self.resolve(node["$ref"])
            seen += 1
            if seen > 32:
                raise KeyError("$ref loop")
        return node

    @staticmethod
    def type_ok(value, t):
        return {
            "object": lambda v: isinstance(v, dict),
            "array": lambda v: isinstance(v, list),
            "string": lambda v: isinstance(v, str),
            "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "boolean": lambda v: isinstance(v, bool),
            "null": lambda v: v is None,
        }[t](value)

    def errors(self, value, schema, where="$"):
        """A list of human-readable violations (empty: valid)."""
        out = []
        if schema is True or schema == {}:
            return out
        if schema is False:
            return ["%s: no value allowed here" % where]
        if "$ref" in schema:
            out += self.errors(value, self.resolve(schema["$ref"]), where)
        if "type" in schema:
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not any(self.type_ok(value, t) for t in types):
                return out + ["%s: %r is not of type %s" % (where, short(value), types)]
        if "enum" in schema and value not in schema["enum"]:
            out.append("%s: %r not in %s" % (where, short(value), schema["enum"]))
        if "const" in schema and value != schema["const"]:
            out.append("%s: %r != const %r" % (where, short(value), schema["const"]))
        if isinstance(value, str):
            if "minLength" in schema and len(value) < schema["minLength"]:
                out.append("%s: shorter than %d" % (where, schema["minLength"]))
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                out.append("%s: longer than %d" % (where, schema["maxLength"]))
            if "pattern" in schema and not re.search(schema["pattern"], value):
                out.append("%s: %r does not match %s" % (where, short(value), schema["pattern"]))
        if self.type_ok(value, "number"):
            if "minimum" in schema and value < schema["minimum"]:
                out.append("%s: %r < minimum %r" % (where, value, schema["minimum"]))
            if "maximum" in schema and value > schema["maximum"]:
                out.append("%s: %r > maximum %r" % (where, value, schema["maximum"]))
        if isinstance(value, dict):
            for k in schema.get("required", []):
                if k not in value:
                    out.append("%s: missing required %r" % (where, k))
            props = schema.get("properties", {})
            for k, v in value.items():
                if k in props:
                    out += self.errors(v, props[k], "%s.%s" % (where, k))
                elif "additionalProperties" in schema:
                    ap = schema["additionalProperties"]
                    if ap is False:
                        out.append("%s: undocumented property %r" % (where, k))
                    elif isinstance(ap, dict):
                        out += self.errors(v, ap, "%s.%s" % (where, k))
        if isinstance(value, list):
            if "items" in schema:
                for i, v in enumerate(value):
                    out += self.errors(v, schema["items"], "%s[%d]" % (where, i))
            if "minItems" in schema and len(value) < schema["minItems"]:
                out.append("%s: fewer than %d items" % (where, schema["minItems"]))
            if "maxItems" in schema and len(value) > schema["maxItems"]:
                out.append("%s: more than %d items" % (where, schema["maxItems"]))
        for sub in schema.get("allOf", []):
            out += self.errors(value, sub, where)
        if "anyOf" in schema:
            if not any(not self.errors(value, s, where) for s in schema["anyOf"]):
                out.append("%s: matches none of anyOf" % where)
        if "oneOf" in schema:
            n = sum(1 for s in schema["oneOf"] if not self.errors(value, s, where))
            if n != 1:
                out.append("%s: matches %d of oneOf (want exactly 1)" % (where, n))
        return out


def short(v):
    s = json.dumps(v)
    return s if len(s) <= 80 else s[:77] + "..."


def walk(node, path=""):
    """Yields (json-pointer-ish path, node) for every dict in the document."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, path + "/" + k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, "%s/%d" % (path, i))


def template_regex(path):
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")


def find_operation_path(doc, path):
    """The documented path template that serves `path` (concrete paths win
    over templates, as OpenAPI says), or None."""
    if path in doc["paths"]:
        return path
    for p in doc["paths"]:
        if "{" in p and template_regex(p).match(path):
            return p
    return None


def media_type(content_type):
    return (content_type or "").split(";")[0].strip().lower()


# ---------------------------------------------------------------- servers

def served_document(srv):
    r = srv.get("/openapi.json")
    return r if r.status == 200 else None


class Oversized:
    """A body over the 1 MiB limit (sent as its head only)."""


def too_large(srv, method, path):
    """Declares a body of 2 MiB and sends only its first byte: the server
    answers from the declared length, before reading the body, and closes
    (so http.client would fail writing the rest)."""
    out = srv.raw(b"%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n{" % (method.encode(), path.encode(), 2 << 20))
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return harness.Response(int(lines[0].split()[1]), headers, body)


def wait_for_file(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise AssertionError("%s never appeared" % path)
        time.sleep(0.02)


class OpenAPITests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(DOC_FILE, "rb") as f:
            cls.doc_bytes = f.read()
        cls.doc = json.loads(cls.doc_bytes)
        cls.v = Validator(cls.doc)
        cls.demo = harness.Server().start()
        # clawshield with no key and an allow-list: denials, /ready 503,
        # /health restricted.
        cls.locked = harness.Server(env={"OPENEXEC_MODE": "clawshield",
                                         "CLAWSHIELD_TENANT_ID": "acme",
                                         "OPENEXEC_ALLOWED_ACTIONS": "echo"}).start()
        cls.exercised = {}   # (path template, method) -> set of statuses seen

    @classmethod
    def tearDownClass(cls):
        cls.demo.cleanup()
        cls.locked.cleanup()
        missing = []
        for p, item in cls.doc["paths"].items():
            for m, op in item.items():
                if m in HTTP_METHODS:
                    for s in op["responses"]:
                        if s not in cls.exercised.get((p, m), set()):
                            missing.append("%s %s %s" % (m.upper(), p, s))
        if missing:
            print("\ndocumented answers this run could not provoke (not checked live): "
                  + ", ".join(missing))

    # ---- checking one answer against the document

    def check_answer(self, method, path, r, want_status=None):
        """Asserts that answer r to METHOD path is documented; returns the
        decoded body (JSON value, list of JSON lines, or text)."""
        if want_status is not None:
            self.assertEqual(r.status, want_status, "%s %s: %r" % (method, path, r))
        p = find_operation_path(self.doc, urllib.parse.urlsplit(path).path)
        self.assertIsNotNone(p, "%s is not documented" % path)
        # HEAD is GET without a body (documented in info.description).
        op = self.doc["paths"][p].get("get" if method == "HEAD" else method.lower())
        if op is None and r.status == 405:
            # A method the path does not take: the 405 its operations document.
            return self.check_405(p, r)
        self.assertIsNotNone(op, "%s %s is not documented" % (method, p))
        resp = op["responses"].get(str(r.status))
        self.assertIsNotNone(resp, "%s %s answered %d, which is not documented (%r)"
                             % (method, path, r.status, r))
        resp = self.v.deref(resp)
        self.exercised.setdefault((p, "get" if method == "HEAD" else method.lower()),
                                  set()).add(str(r.status))
        for name, h in resp.get("headers", {}).items():
            h = self.v.deref(h)
            value = r.headers.get(name.lower())
            if h.get("required"):
                self.assertIsNotNone(value, "%s %s %d: header %s missing" % (method, path, r.status, name))
            if value is not None:
                self.assertEqual(self.v.errors(value, h.get("schema", {}), name), [],
                                 "%s %s %d" % (method, path, r.status))
        content = resp.get("content", {})
        if method == "HEAD":
            self.assertEqual(r.body, b"")
            return None
        if not content:
            self.assertEqual(r.body, b"", "%s %s: a body where none is documented" % (method, path))
            return None
        mt = media_type(r.headers.get("content-type"))
        self.assertIn(mt, content, "%s %s %d: Content-Type %s not documented (%s)"
                      % (method, path, r.status, mt, list(content)))
        schema = content[mt].get("schema", {})
        if mt == "application/json":
            value = json.loads(r.body)
            errs = self.v.errors(value, schema)
        elif mt == "application/x-ndjson":
            text = r.body.decode()
            self.assertTrue(text == "" or text.endswith("\n"), "JSON lines end in a newline")
            value = [json.loads(line) for line in text.splitlines()]
            errs = [e for i, item in enumerate(value) for e in self.v.errors(item, schema, "line %d" % (i + 1))]
        else:
            value = r.body.decode()
            errs = self.v.errors(value, schema)
        self.assertEqual(errs, [], "%s %s %d does not match the document: %s"
                         % (method, path, r.status, r.body[:400]))
        return value

    def check_405(self, template, r):
        """A 405 to a method the path does not take: the shape documented
        for 405 on the path's operations."""
        for m, op in self.doc["paths"][template].items():
            if m in HTTP_METHODS:
                self.assertIn("405", op["responses"], "%s %s documents no 405" % (m, template))
                resp = self.v.deref(op["responses"]["405"])
                self.assertEqual(self.v.errors(json.loads(r.body),
                                               resp["content"]["application/json"]["schema"]), [])
                for name in resp.get("headers", {}):
                    self.assertIn(name.lower(), r.headers)
                self.exercised.setdefault((template, m), set()).add("405")
        return json.loads(r.body)

    def call(self, srv, method, path, body=None, want=None, headers=None):
        if isinstance(body, Oversized):
            r = too_large(srv, method, path)
        else:
            r = srv.request(method, path, body=body, headers=headers)
        return r, self.check_answer(method, path, r, want)

    # ---- the document itself

    def test_document_is_openapi_3_1(self):
        d = self.doc
        self.assertRegex(d["openapi"], r"^3\.1\.\d+$")
        self.assertIsInstance(d["info"]["title"], str)
        self.assertIsInstance(d["info"]["version"], str)
        self.assertIsInstance(d["paths"], dict)
        op_ids = []
        for p, item in d["paths"].items():
            self.assertTrue(p.startswith("/"), p)
            ops = {m: op for m, op in item.items() if m in HTTP_METHODS}
            self.assertTrue(ops, "%s has no operation" % p)
            for m, op in ops.items():
                op_ids.append(op["operationId"])
                self.assertTrue(op["responses"], "%s %s" % (m, p))
                for status, resp in op["responses"].items():
                    self.assertRegex(status, r"^([1-5][0-9][0-9]|default)$")
                    self.assertIn("description", self.v.deref(resp), "%s %s %s" % (m, p, status))
                declared = {prm["name"] for prm in map(self.v.deref, op.get("parameters", []))
                            if prm["in"] == "path"}
                self.assertEqual(declared, set(re.findall(r"\{([^}]+)\}", p)),
                                 "%s %s: path parameters" % (m, p))
                for prm in map(self.v.deref, op.get("parameters", [])):
                    self.assertIn(prm["in"], ("query", "path", "header", "cookie"))
                    if prm["in"] == "path":
                        self.assertIs(prm.get("required"), True)
        self.assertEqual(len(op_ids), len(set(op_ids)), "operationIds are unique")
        self.assertEqual(d["paths"]["/execute"]["post"]["operationId"], "execute")

    def test_every_ref_resolves(self):
        refs = 0
        for where, node in walk(self.doc):
            if "$ref" in node:
                refs += 1
                try:
                    self.v.resolve(node["$ref"])
                except (KeyError, IndexError, TypeError):
                    self.fail("%s: $ref %s does not resolve" % (where, node["$ref"]))
        self.assertGreater(refs, 20)

    def schemas(self):
        """Every schema object in the document, with where it is."""
        d = self.doc
        roots = [("components/schemas/" + k, s) for k, s in d["components"]["schemas"].items()]
        for where, node in walk(d):
            if "schema" in node and isinstance(node["schema"], dict):
                roots.append((where + "/schema", node["schema"]))
        seen = []

        def visit(where, s):
            if not isinstance(s, dict):
                return
            seen.append((where, s))
            for k in ("properties",):
                for name, sub in s.get(k, {}).items():
                    visit("%s/%s/%s" % (where, k, name), sub)
            for k in ("items", "additionalProperties"):
                if isinstance(s.get(k), dict):
                    visit("%s/%s" % (where, k), s[k])
            for k in ("oneOf", "anyOf", "allOf"):
                for i, sub in enumerate(s.get(k, [])):
                    visit("%s/%s/%d" % (where, k, i), sub)
        for where, s in roots:
            visit(where, s)
        return seen

    def test_schemas_use_only_checked_keywords(self):
        for where, s in self.schemas():
            unknown = set(s) - ASSERTING - ANNOTATIONS
            self.assertEqual(unknown, set(), "%s uses keywords this test cannot check" % where)
            for pat in ([s["pattern"]] if "pattern" in s else []):
                re.compile(pat)

    def test_examples_match_their_schemas(self):
        n = 0
        for where, node in walk(self.doc["paths"]):
            if "schema" not in node:
                continue
            examples = []
            if "example" in node:
                examples.append(node["example"])
            for ex in node.get("examples", {}).values():
                examples.append(self.v.deref(ex)["value"])
            for ex in examples:
                n += 1
                if isinstance(ex, str) and "x-ndjson" in where:
                    errs = [e for line in ex.splitlines()
                            for e in self.v.errors(json.loads(line), node["schema"])]
                else:
                    errs = self.v.errors(ex, node["schema"])
                self.assertEqual(errs, [], "example at %s" % where)
        self.assertGreater(n, 15)

    def test_error_codes_are_the_specs(self):
        codes = set(self.v.resolve("#/components/schemas/ErrorCode")["enum"])
        spec = os.path.join(harness.SHARED_DIR, "SPEC.md")
        if not os.path.exists(spec):
            self.skipTest("no shared/SPEC.md")
        with open(spec, encoding="utf-8") as f:
            text = f.read()
        table = text[text.index("| status | error | when |"):text.index("## 3.")]
        spec_codes = set()
        for line in table.splitlines()[2:]:
            cells = line.split("|")
            if len(cells) > 3:
                spec_codes |= set(re.findall(r"`([a-z_]+)`", cells[2]))
        self.assertTrue(spec_codes)
        self.assertEqual(spec_codes - codes, set(), "SPEC codes missing from ErrorCode")
        # Each status's schema names exactly the codes the SPEC gives it,
        # plus bad_request (ours, docs/http.md).
        self.assertEqual(codes - spec_codes, {"bad_request"})

    def test_version_is_the_servers(self):
        self.assertEqual(self.doc["info"]["version"], self.demo.get("/version").json()["version"])

    # ---- the server serves it

    def test_served_document_is_the_repo_file(self):
        r = self.demo.get("/openapi.json")
        self.assertEqual(r.status, 200, "GET /openapi.json must serve docs/openapi.json")
        self.assertEqual(media_type(r.headers.get("content-type")), "application/json")
        # The one in docs/, compact as every answer is (SPEC 2): whitespace
        # between tokens dropped, strings and key order as in the file.
        compact = json.dumps(json.loads(self.doc_bytes), separators=(",", ":"),
                             ensure_ascii=False).encode()
        self.assertEqual(r.body, compact, "the embedded document is the one in docs/")
        self.check_answer("GET", "/openapi.json", r)
        h = self.demo.request("HEAD", "/openapi.json")
        self.assertEqual((h.status, h.body), (200, b""))

    # ---- every documented operation, live

    def test_service_endpoints(self):
        for path in ["/", "/health", "/ready", "/version", "/metrics"]:
            self.call(self.demo, "GET", path, want=200)
            self.call(self.demo, "HEAD", path, want=200)
            self.call(self.locked, "GET", path)
        _, health = self.call(self.locked, "GET", "/health", want=200)
        self.assertEqual(health["allow_list"], ["echo"])
        _, ready = self.call(self.locked, "GET", "/ready", want=503)
        self.assertIs(ready["ready"], False)

    def test_execute(self):
        srv = self.demo
        nonce = "oa-" + os.urandom(6).hex()
        r, ok = self.call(srv, "POST", "/execute", {"action": "echo", "payload": {"a": [1, "x", None]},
                                                    "nonce": nonce}, want=200)
        self.assertNotIn("idempotent-replayed", r.headers)
        r2, _ = self.call(srv, "POST", "/execute", {"action": "echo", "payload": {"a": [1, "x", None]},
                                                    "nonce": nonce}, want=200)
        self.assertEqual((r2.body, r2.headers.get("idempotent-replayed")), (r.body, "true"))
        self.call(srv, "POST", "/execute", {"action": "add", "payload": {"a": 2, "b": 0.5},
                                            "nonce": "oa-add-" + nonce}, want=200)
        bodies = {
            400: [b"{nope", b"[1,2]", {"action": "no_such_action", "nonce": "oa-u-" + nonce}],
            422: [{"nonce": "x"}, b'{"action":"echo","nonce":"a","nonce":"b"}',
                  {"action": "add", "payload": {"a": "x"}, "nonce": "oa-bad-" + nonce},
                  {"action": "echo", "payload": {"other": 1}, "nonce": nonce}],
            413: [Oversized()],
        }
        for status, items in bodies.items():
            for body in items:
                _, err = self.call(srv, "POST", "/execute", body, want=status)
        _, err = self.call(srv, "POST", "/execute", {"action": "echo", "payload": {"other": 1},
                                                     "nonce": nonce}, want=422)
        self.assertEqual(err["error"], "nonce_reused")
        self.assertIn("signed_receipt", err)
        self.call(srv, "GET", "/execute", want=405)
        for action in ["add", "echo"]:
            _, denied = self.call(self.locked, "POST", "/execute",
                                  {"action": action, "nonce": "oa-d-" + nonce}, want=403)
            self.assertIn("signed_receipt", denied)
        self.call(self.locked, "POST", "/execute",
                  {"action": "echo", "nonce": "oa-k-" + nonce, "approval_artifact": {}}, want=403)

    def test_receipt_log_endpoints(self):
        srv = self.demo
        nonce = "oa-log-" + os.urandom(6).hex()
        _, ok = self.call(srv, "POST", "/execute", {"action": "echo", "nonce": nonce}, want=200)
        self.call(srv, "POST", "/execute", {"action": "echo", "nonce": nonce + "-2"}, want=200)
        _, sr = self.call(srv, "GET", "/receipts/" + ok["id"], want=200)
        self.assertEqual(sr["receipt"]["exec_id"], ok["id"])
        self.call(srv, "HEAD", "/receipts/" + ok["id"], want=200)
        self.call(srv, "GET", "/receipts/no-such-id", want=404)
        self.call(srv, "POST", "/receipts/" + ok["id"], {}, want=405)
        _, key = self.call(srv, "GET", "/receipts/key", want=200)
        _, cp = self.call(srv, "GET", "/checkpoint", want=200)
        size = int(cp.split("\n")[1])
        self.assertGreaterEqual(size, 2)
        self.call(srv, "GET", "/checkpoint?log=" + urllib.parse.quote(key["origin"]), want=200)
        self.call(srv, "GET", "/checkpoint?log=no-such-log", want=404)
        _, lines = self.call(srv, "GET", "/receipts", want=200)
        self.assertEqual(len(lines), size)
        _, lines = self.call(srv, "GET", "/receipts?from=1&limit=1&log="
                             + urllib.parse.quote(key["origin"]), want=200)
        self.assertEqual([x["seq"] for x in lines], [1])
        _, lines = self.call(srv, "GET", "/receipts?from=%d" % (size + 5), want=200)
        self.assertEqual(lines, [])
        for bad in ["limit=0", "from=-1", "limit=x"]:
            self.call(srv, "GET", "/receipts?" + bad, want=400)
        self.call(srv, "GET", "/receipts?log=no-such-log", want=404)
        _, proof = self.call(srv, "GET", "/log/consistency?old=1&new=%d" % size, want=200)
        self.assertTrue(proof["hashes"])
        self.call(srv, "GET", "/log/consistency?old=%d&new=%d" % (size, size), want=200)
        self.call(srv, "GET", "/log/consistency?old=2&new=1", want=400)
        self.call(srv, "GET", "/log/consistency", want=400)
        self.call(srv, "GET", "/log/consistency?old=1&new=1&log=no-such-log", want=404)
        for path in ["/receipts/key", "/checkpoint", "/receipts", "/log/consistency"]:
            self.call(srv, "DELETE", path, want=405)

        # POST /receipts/verify, both forms
        _, v = self.call(srv, "POST", "/receipts/verify", {"signed_receipt": ok["signed_receipt"]}, want=200)
        self.assertIs(v["valid"], True)
        _, v = self.call(srv, "POST", "/receipts/verify", {"signed_receipt": sr}, want=200)
        self.assertIs(v["valid"], True)
        _, v = self.call(srv, "POST", "/receipts/verify",
                         {"exec_id": ok["id"], "result": ok["result"], "receipt": ok["receipt"]}, want=200)
        self.assertIs(v["valid"], True)
        _, v = self.call(srv, "POST", "/receipts/verify",
                         {"exec_id": ok["id"], "result": json.dumps(ok["result"], sort_keys=True),
                          "receipt": "0" * 64}, want=200)
        self.assertIs(v["valid"], False)
        self.call(srv, "POST", "/receipts/verify", {"signed_receipt": {"receipt": {}}}, want=422)
        self.call(srv, "POST", "/receipts/verify", {}, want=422)
        self.call(srv, "POST", "/receipts/verify", b"nope", want=400)
        self.call(srv, "POST", "/receipts/verify", Oversized(), want=413)
        self.call(srv, "GET", "/receipts/verify", want=405)

    def test_request_bodies_that_succeeded_match_the_request_schemas(self):
        schema = self.doc["paths"]["/execute"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        for good in [{"action": "echo", "nonce": "n"}, {"action": "echo", "nonce": "n", "payload": None,
                                                        "approval_artifact": None, "extra": 1}]:
            self.assertEqual(self.v.errors(good, schema), [])
        for bad in [{"nonce": "n"}, {"action": "", "nonce": "n"}, {"action": "a", "nonce": "n", "payload": []}]:
            self.assertNotEqual(self.v.errors(bad, schema), [], bad)

    @unittest.skipIf(os.environ.get("OE_TEST_PG_URL"), "SQLite file faults")
    def test_store_unavailable_answers(self):
        with harness.small_tmpfs(self, "4m", prefix="oe-oa-full-") as d:
            with harness.Server(workdir=d, threads=1) as srv:
                harness.fill_disk(os.path.join(d, "filler"))
                status = None
                for i in range(400):
                    r = srv.execute("echo", {"blob": "z" * 8000}, nonce="full-%d" % i)
                    status = r.status
                    if status == 503:
                        self.check_answer("POST", "/execute", r, 503)
                        break
                self.assertEqual(status, 503)
                _, h = self.call(srv, "GET", "/health", want=503)
                self.assertEqual(h["status"], "degraded")
                self.call(srv, "GET", "/ready", want=503)
                for path in ["/receipts/key", "/checkpoint", "/receipts", "/metrics", "/"]:
                    self.call(srv, "GET", path)
                os.unlink(os.path.join(d, "filler"))

    def test_operator_action_answers(self):
        """502 action_failed, 409 request_in_progress and 409 outcome_unknown,
        with operator actions (SPEC 6)."""
        d = tempfile.mkdtemp(prefix="oe-oa-actions-")
        path = os.path.join(d, "actions.json")
        with open(path, "w") as f:
            json.dump({"actions": {
                "fails": {"exec": ["/bin/false"], "timeout_ms": 5000},
                # Each touches a marker once it runs, i.e. once its nonce is claimed.
                "slow": {"exec": ["/bin/sh", "-c", "touch \"$0\"; sleep 5; echo '{}'",
                                  os.path.join(d, "slow.started")], "timeout_ms": 30000},
                "stuck": {"exec": ["/bin/sh", "-c", "touch \"$0\"; sleep 60; echo '{}'",
                                   os.path.join(d, "stuck.started")], "timeout_ms": 120000},
            }}, f)
        env = {"OPENEXEC_ACTIONS_FILE": path}
        try:
            srv = harness.Server(env=env, workdir=d).start()
            try:
                if "fails" not in srv.get("/health").json()["actions"]:
                    self.skipTest("this server does not load OPENEXEC_ACTIONS_FILE")
                _, err = self.call(srv, "POST", "/execute", {"action": "fails", "nonce": "f-1"}, want=502)
                self.assertEqual(err["error"], "action_failed")
                # Same nonce while the first is still running: the first
                # request is sent (not awaited); its program has started.
                body = json.dumps({"action": "slow", "nonce": "slow-1"})
                first = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
                first.request("POST", "/execute", body=body, headers={"Content-Type": "application/json"})
                wait_for_file(os.path.join(d, "slow.started"))
                r = srv.post("/execute", body)
                err = self.check_answer("POST", "/execute", r, 409)
                self.assertEqual(err["error"], "request_in_progress")
                done = first.getresponse()
                self.check_answer("POST", "/execute", harness.Response(
                    done.status, {k.lower(): v for k, v in done.getheaders()}, done.read()), 200)
                first.close()
                # Killed while an action runs: outcome_unknown for ever after.
                stuck = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
                stuck.request("POST", "/execute", body=json.dumps({"action": "stuck", "nonce": "stuck-1"}),
                              headers={"Content-Type": "application/json"})
                wait_for_file(os.path.join(d, "stuck.started"))
                srv.kill()
                stuck.close()
            finally:
                srv.kill()
            srv = harness.Server(env=env, workdir=d).start()
            try:
                r = srv.execute("stuck", None, nonce="stuck-1")
                err = self.check_answer("POST", "/execute", r, 409)
                self.assertEqual(err["error"], "outcome_unknown")
            finally:
                srv.kill()
        finally:
            harness.drop_pg_database(d)
            shutil.rmtree(d, ignore_errors=True)

    # ---- every route the server has is documented

    def candidate_paths(self):
        found = set(self.doc["paths"])
        with open(harness.BIN, "rb") as f:
            binary = f.read()
        for m in re.finditer(rb"\x00(/[A-Za-z0-9_./{}-]{0,60})\x00", binary):
            s = m.group(1).decode()
            if not re.search(r"\.(c|h)$", s):
                found.add(s)
        src = os.path.join(harness.SOURCE_DIR, "src", "server.c")
        if os.path.exists(src):
            with open(src, encoding="utf-8") as f:
                found |= set(re.findall(r'\{\s*"(/[^"]*)"\s*,\s*"[A-Z]+"', f.read()))
        found |= {"/admin", "/debug", "/docs", "/redoc", "/swagger.json", "/openapi.yaml", "/api",
                  "/status", "/healthz", "/livez", "/readyz", "/v1/execute", "/execute/", "/env",
                  "/config", "/debug/pprof", "/internal", "/.well-known/openapi.json", "/log",
                  "/receipts/verify/x", "/receipts/key/x", "/favicon.ico", "/index.html", "/shutdown"}
        return sorted(found)

    def test_every_route_is_documented(self):
        srv = self.demo
        generic = srv.get("/no-such-path-" + os.urandom(4).hex())
        self.assertEqual(generic.status, 404)
        generic_body = generic.body

        def is_route(path):
            for method, body in (("GET", None), ("POST", {}), ("DELETE", None)):
                r = srv.request(method, path, body=body)
                if not (r.status == 404 and r.body == generic_body):
                    return r
            return None

        routes = {}
        for cand in self.candidate_paths():
            concrete = re.sub(r"\{[^}]+\}", "probe-" + os.urandom(3).hex(), cand)
            probes = [concrete] + ([concrete + "probe-" + os.urandom(3).hex()]
                                   if concrete.endswith("/") and concrete != "/" else [])
            for p in probes:
                if is_route(p) is not None:
                    routes[p] = cand
        self.assertIn("/execute", routes)
        undocumented = []
        for path in sorted(routes):
            # h2o normalises dot segments ("/." is "/"), so such a string found
            # in the binary is an alias of a route, not a route of its own.
            normal = posixpath.normpath(path) if path != "/" else path
            if normal == "//":
                normal = "/"
            template = find_operation_path(self.doc, normal)
            if template is None:
                undocumented.append(path)
                continue
            path = normal
            documented = {m.upper() for m in self.doc["paths"][template] if m in HTTP_METHODS}
            if "GET" in documented:
                documented.add("HEAD")
            r = srv.request("PATCH", path, body="{}")
            self.assertEqual(r.status, 405, "PATCH %s" % path)
            self.check_405(template, r)
            allowed = {m.strip() for m in r.headers["allow"].split(",")}
            self.assertEqual(allowed, documented, "%s: Allow says %s, the document %s"
                             % (path, sorted(allowed), sorted(documented)))
            for m in documented:
                if m not in ("HEAD",):
                    self.assertTrue(self.doc["paths"][template].get(m.lower()))
        self.assertEqual(undocumented, [], "routes the server answers but the document lacks")
        # And the other way round: every documented path is a route.
        for p in self.doc["paths"]:
            concrete = re.sub(r"\{[^}]+\}", "probe", p)
            self.assertIsNotNone(is_route(concrete), "documented %s is not served" % p)

    def test_undocumented_paths_are_404(self):
        for path in ["/admin", "/debug", "/docs", "/swagger.json", "/openapi.yaml", "/execute/",
                     "/receipts/verify/x", "/v1/execute", "/metrics/"]:
            for method in ("GET", "POST"):
                r = self.demo.request(method, path, body={} if method == "POST" else None)
                self.assertEqual(r.status, 404, "%s %s" % (method, path))
                self.assertEqual(r.json()["error"], "not_found")


if __name__ == "__main__":
    harness.main()
