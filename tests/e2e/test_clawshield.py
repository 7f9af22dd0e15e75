"""Clawshield mode end to end: artifacts minted the way ClawShield mints them
(tests/tools/clawshield.py, python3-cryptography) against the real server.
Every denial of SPEC 4 with its code and Compat text, single use (also under
concurrency and with characters moved between approval_id and tenant_id),
replays, and key rotation."""

import datetime
import json
import os
import sys
import tempfile
import time
import unittest

import harness

sys.path.insert(0, os.path.join(harness.SOURCE_DIR, "tests", "tools"))
import clawshield  # noqa: E402

PRIV, PUB = clawshield.keygen()
PRIV2, PUB2 = clawshield.keygen()


def iso(dt):
    return dt.isoformat()


class ClawshieldTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server(env={
            "OPENEXEC_MODE": "clawshield",
            "CLAWSHIELD_PUBLIC_KEY": PUB + PUB2,  # rotation: two blocks
            "CLAWSHIELD_TENANT_ID": "acme"}).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def mint(self, action="echo", payload=None, tenant="acme", key=PRIV, **kw):
        return clawshield.mint(key, tenant, action, payload if payload is not None else {}, **kw)

    def run_with(self, art, action="echo", payload=None, nonce=None):
        return self.srv.execute(action, payload if payload is not None else {},
                                nonce=nonce or os.urandom(8).hex(), artifact=art)

    def assert_denied(self, r, code, detail=None):
        self.assertEqual(r.status, 403, r)
        body = r.json()
        self.assertEqual(body["error"], code, r)
        if detail is not None:
            self.assertEqual(body["detail"], detail)

    def test_health_and_ready(self):
        h = self.srv.get("/health").json()
        self.assertEqual((h["exec_mode"], h["signature_verification"]), ("clawshield", "enabled"))
        self.assertEqual(self.srv.get("/ready").status, 200)

    def test_valid_artifact_executes(self):
        r = self.run_with(self.mint(payload={"amount": 5}), payload={"amount": 5})
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json()["approved"], True)
        self.assertEqual(r.json()["result"], {"echo": {"amount": 5}})

    def test_second_key_verifies(self):
        r = self.run_with(self.mint(key=PRIV2))
        self.assertEqual(r.status, 200, r)

    def test_missing_artifact(self):
        self.assert_denied(self.srv.execute("echo", {}), "approval_required",
                           "ClawShield mode requires an approval artifact")
        r = self.srv.post("/execute", {"action": "echo", "nonce": "x", "approval_artifact": None})
        self.assert_denied(r, "approval_required")

    def test_empty_or_partial_artifact_is_invalid(self):
        self.assert_denied(self.run_with({}), "invalid_artifact")
        art = self.mint()
        del art["expires_at"]
        self.assert_denied(self.run_with(art), "invalid_artifact")
        art = self.mint()
        art["issued_at"] = 12
        self.assert_denied(self.run_with(art), "invalid_artifact")

    def test_bad_signature(self):
        art = self.mint()
        art["signature"] = art["signature"][:-4] + "AAA="
        self.assert_denied(self.run_with(art), "invalid_signature",
                           "Invalid signature: approval artifact is not authentic")
        forged = clawshield.mint(clawshield.keygen()[0], "acme", "echo", {})
        self.assert_denied(self.run_with(forged), "invalid_signature")
        art = self.mint()
        art["approval_id"] += "x"  # any signed field changed
        self.assert_denied(self.run_with(art), "invalid_signature")

    def test_signature_checked_before_tenant(self):
        art = self.mint(tenant="evil")
        art["signature"] = self.mint()["signature"]
        self.assert_denied(self.run_with(art), "invalid_signature")

    def test_tenant_mismatch(self):
        self.assert_denied(self.run_with(self.mint(tenant="evil")), "tenant_mismatch",
                           "Tenant mismatch: expected acme, got evil")

    def test_action_hash_mismatch(self):
        art = self.mint(payload={"amount": 5})
        self.assert_denied(self.run_with(art, payload={"amount": 500}), "action_hash_mismatch",
                           "Action hash mismatch: approval does not match this request")
        self.assert_denied(self.run_with(art, action="add", payload={"amount": 5}),
                           "action_hash_mismatch")

    def test_expiry(self):
        now = clawshield.utcnow_naive()
        past = self.mint(issued_at=iso(now - datetime.timedelta(seconds=60)),
                         expires_at=iso(now - datetime.timedelta(seconds=1)))
        self.assert_denied(self.run_with(past), "approval_expired", "Approval artifact expired")
        self.assert_denied(self.run_with(self.mint(expires_at="not a time")), "expires_at_invalid",
                           "Invalid expires_at timestamp")
        self.assert_denied(self.run_with(self.mint(expires_at="")), "expires_at_missing",
                           "Missing expires_at in approval artifact")
        offset = self.mint(expires_at=iso(now + datetime.timedelta(hours=1)) + "+01:00")
        self.assertEqual(self.run_with(offset).status, 403)  # now+1h in +01:00 = now UTC: expired
        z = self.mint(expires_at=iso(now + datetime.timedelta(seconds=60)) + "Z")
        self.assertEqual(self.run_with(z).status, 200)

    def test_issued_in_the_future(self):
        now = clawshield.utcnow_naive()
        art = self.mint(issued_at=iso(now + datetime.timedelta(seconds=400)),
                        expires_at=iso(now + datetime.timedelta(seconds=900)))
        self.assert_denied(self.run_with(art), "approval_not_yet_valid")
        art = self.mint(issued_at=iso(now + datetime.timedelta(seconds=200)),
                        expires_at=iso(now + datetime.timedelta(seconds=900)))
        self.assertEqual(self.run_with(art).status, 200)

    def test_approval_is_single_use(self):
        art = self.mint()
        self.assertEqual(self.run_with(art, nonce="su-1").status, 200)
        self.assert_denied(self.run_with(art, nonce="su-2"), "approval_already_used")
        # The same approval_id signed again (new times) is still the same approval.
        again = self.mint(approval_id=art["approval_id"])
        self.assert_denied(self.run_with(again, nonce="su-3"), "approval_already_used")
        # The refused attempts did not consume their nonces.
        self.assertEqual(self.run_with(self.mint(), nonce="su-2").status, 200)

    def test_single_use_under_concurrency(self):
        art = self.mint()
        results = harness.fire_together(
            [(lambda i=i: self.run_with(art, nonce="conc-%d-%s" % (i, art["approval_id"])))
             for i in range(20)])
        ok = [r for r in results if r.status == 200]
        used = [r for r in results if r.status == 403 and r.json()["error"] == "approval_already_used"]
        self.assertEqual((len(ok), len(used)), (1, 19))

    def test_denial_does_not_use_up_approval(self):
        self.assertEqual(self.run_with(self.mint(payload={"a": 1}), payload={"a": 1},
                                       nonce="du-1").status, 200)
        art = self.mint(payload={"a": 2})
        r = self.run_with(art, payload={"a": 2}, nonce="du-1")
        self.assertEqual((r.status, r.json()["error"]), (422, "nonce_reused"))
        self.assertEqual(self.run_with(art, payload={"a": 2}, nonce="du-2").status, 200)

    def test_used_approval_is_denied_before_the_action_judges_its_arguments(self):
        # SPEC 3: the approval, single use included, comes before execution,
        # so a used-up approval is denied even where add would refuse the
        # payload (422), and the receipt says so.
        good, bad = {"a": 1, "b": 2}, {"a": 1, "b": "x"}
        art = self.mint(action="add", payload=good)
        self.assertEqual(self.run_with(art, action="add", payload=good).status, 200)
        again = self.mint(action="add", payload=bad, approval_id=art["approval_id"])
        r = self.run_with(again, action="add", payload=bad)
        self.assert_denied(r, "approval_already_used")
        self.assertEqual(r.json()["signed_receipt"]["receipt"]["outcome"], "denied")
        # An unused approval: the action's own answer, twice (a rejected
        # attempt does not use the approval up).
        fresh = self.mint(action="add", payload=bad)
        for _ in range(2):
            r = self.run_with(fresh, action="add", payload=bad)
            self.assertEqual((r.status, r.json()["error"]), (422, "invalid_arguments"), r)
            self.assertEqual(r.json()["signed_receipt"]["receipt"]["outcome"], "rejected")

    def test_replay_needs_the_same_valid_approval(self):
        art = self.mint(payload={"v": 1}, ttl=2)
        first = self.run_with(art, payload={"v": 1}, nonce="rp-1")
        self.assertEqual(first.status, 200)
        again = self.run_with(art, payload={"v": 1}, nonce="rp-1")
        self.assertEqual((again.status, again.body), (200, first.body))
        self.assertEqual(again.headers.get("idempotent-replayed"), "true")
        # No artifact, a forged one, another approval: refused.
        self.assert_denied(self.srv.execute("echo", {"v": 1}, nonce="rp-1"), "approval_required")
        bad = dict(art, signature=self.mint()["signature"])
        self.assert_denied(self.run_with(bad, payload={"v": 1}, nonce="rp-1"), "invalid_signature")
        other = self.mint(payload={"v": 1})
        self.assert_denied(self.run_with(other, payload={"v": 1}, nonce="rp-1"), "approval_mismatch")
        # Expiry does not apply to replays.
        time.sleep(2.2)
        late = self.run_with(art, payload={"v": 1}, nonce="rp-1")
        self.assertEqual((late.status, late.body), (200, first.body))

    def test_approval_id_holding_u0000_is_invalid(self):
        # Both stores keep the id as text; a NUL would make "p\0one" and "p"
        # the same id to the replay binding and to single use.  Refused
        # after every other check, and its receipt names no cut-off id.
        prefix = "nul-" + os.urandom(4).hex()
        r = self.run_with(self.mint(approval_id=prefix + "\u0000one"))
        self.assert_denied(r, "invalid_artifact",
                           "Invalid approval artifact: approval_id must not contain U+0000")
        self.assertIsNone(r.json()["signed_receipt"]["receipt"]["approval_id"])
        art = self.mint(approval_id=prefix + "\u0000one", payload={"other": 1})
        self.assert_denied(self.run_with(art), "action_hash_mismatch")
        # Nothing was used up: the id's prefix alone is a fresh approval.
        self.assertEqual(self.run_with(self.mint(approval_id=prefix)).status, 200)

    def test_tenant_holding_u0000_is_shown_whole(self):
        # Quoted as it is: the answer's JSON escapes the NUL as \u0000.
        r = self.run_with(self.mint(tenant="acme\u0000evil"))
        self.assert_denied(r, "tenant_mismatch", "Tenant mismatch: expected acme, got acme\u0000evil")
        self.assertIn(b'got acme\\u0000evil"', r.body)

    def test_empty_approval_id_is_an_id_like_any_other(self):
        art = self.mint(approval_id="", payload={"e": 1})
        first = self.run_with(art, payload={"e": 1}, nonce="empty-id-1")
        self.assertEqual(first.status, 200, first)
        self.assertEqual(first.json()["signed_receipt"]["receipt"]["approval_id"], "")
        again = self.run_with(art, payload={"e": 1}, nonce="empty-id-1")
        self.assertEqual((again.status, again.body), (200, first.body))
        other = self.mint(approval_id="not-empty", payload={"e": 1})
        self.assert_denied(self.run_with(other, payload={"e": 1}, nonce="empty-id-1"),
                           "approval_mismatch")
        # Single use holds for "" as for any id.
        self.assert_denied(self.run_with(self.mint(approval_id="", payload={"e": 2}),
                                         payload={"e": 2}), "approval_already_used")

    def test_openexec_mint_artifacts_verify(self):
        with tempfile.TemporaryDirectory() as d:
            key = os.path.join(d, "cs.key")
            with open(key, "w") as f:
                f.write(PRIV)
            r = harness.run_cli(["mint", "--key", key, "--tenant", "acme", "--action", "add",
                                 "--payload", '{"a":2,"b":3.5}'])
            self.assertEqual(r.returncode, 0, r.stderr)
            art = json.loads(r.stdout)
            res = self.run_with(art, action="add", payload={"a": 2, "b": 3.5})
            self.assertEqual(res.status, 200, res)
            self.assertEqual(res.json()["result"], {"sum": 5.5})


class MovedCharactersTests(unittest.TestCase):
    def test_moving_characters_between_id_and_tenant_is_the_same_approval(self):
        with harness.Server(env={"OPENEXEC_MODE": "clawshield",
                                 "CLAWSHIELD_PUBLIC_KEY": PUB}) as srv:
            now = clawshield.utcnow_naive()
            times = dict(issued_at=now.isoformat(),
                         expires_at=(now + datetime.timedelta(seconds=300)).isoformat())
            a = clawshield.mint(PRIV, "c", "echo", {}, approval_id="ab", **times)
            b = dict(a, approval_id="a", tenant_id="bc")  # same signed bytes
            self.assertEqual(srv.execute("echo", {}, nonce="mv-1", artifact=a).status, 200)
            r = srv.execute("echo", {}, nonce="mv-2", artifact=b)
            self.assertEqual((r.status, r.json()["error"]), (403, "approval_already_used"))

    def test_moving_characters_between_issued_at_and_expires_at_never_executes(self):
        """SQLite keys a used approval by (expires_at, message SHA-256): that
        is as unique as the message only if no other split of the signed
        issued_at + expires_at is also a pair of valid times.  Try every
        split of a used approval's signed bytes, with fractions and
        offsets: none may execute."""
        with harness.Server(env={"OPENEXEC_MODE": "clawshield",
                                 "CLAWSHIELD_PUBLIC_KEY": PUB}) as srv:
            now = clawshield.utcnow_naive()
            later = now + datetime.timedelta(seconds=299)
            pairs = [(now.isoformat(), later.isoformat()),
                     (now.strftime("%Y-%m-%dT%H:%M:%S.1234"), later.strftime("%Y-%m-%dT%H:%M:%S")),
                     (now.isoformat() + "-00:00", later.isoformat() + "+00:00"),
                     (now.strftime("%Y-%m-%dT%H:%M:%SZ"), later.strftime("%Y-%m-%dT%H:%M:%S.5Z"))]
            for n, (issued, expires) in enumerate(pairs):
                art = clawshield.mint(PRIV, "acme", "echo", {}, issued_at=issued,
                                      expires_at=expires)
                first = srv.execute("echo", {}, nonce="split-%d" % n, artifact=art)
                self.assertEqual(first.status, 200, (issued, expires, first))
                both = issued + expires
                for k in range(len(both) + 1):
                    if k == len(issued):
                        continue
                    moved = dict(art, issued_at=both[:k], expires_at=both[k:])
                    r = srv.execute("echo", {}, nonce="split-%d-%d" % (n, k), artifact=moved)
                    self.assertEqual(r.status, 403, (moved, r))


class ApprovalsBeforeSchema5Tests(unittest.TestCase):
    def test_approvals_used_before_the_upgrade_stay_used(self):
        """Approvals recorded before SQLite schema 5 have no expiry on record;
        after the upgrade they must still be used up, by approval_id and by
        their signed message (characters moved between id and tenant)."""
        d = tempfile.mkdtemp(prefix="oe-cs-upgrade-")
        self.addCleanup(__import__("shutil").rmtree, d, True)
        url = harness.default_db_url(d)
        if not url.startswith("sqlite:///"):
            self.skipTest("schema 5 is SQLite's")
        env = {"OPENEXEC_MODE": "clawshield", "CLAWSHIELD_PUBLIC_KEY": PUB}
        now = clawshield.utcnow_naive()
        times = dict(issued_at=now.isoformat(),
                     expires_at=(now + datetime.timedelta(seconds=300)).isoformat())
        used = clawshield.mint(PRIV, "c", "echo", {}, approval_id="ab", **times)
        with harness.Server(workdir=d, env=env) as srv:
            self.assertEqual(srv.execute("echo", {}, nonce="old-1", artifact=used).status, 200)
            self.assertEqual(srv.stop(), 0)
        import sqlite3
        db = sqlite3.connect(url[len("sqlite:///"):])
        harness.sqlite_receipt_log_to_schema_5(db)
        db.executescript(
            "CREATE TABLE approvals_v4 (message_sha256 BLOB PRIMARY KEY,"
            " approval_id TEXT NOT NULL UNIQUE, nonce BLOB NOT NULL, used_us INTEGER NOT NULL);"
            " INSERT INTO approvals_v4 SELECT message_sha256, approval_id, nonce, used_us"
            " FROM approvals_used;"
            " DROP TABLE approvals_used; ALTER TABLE approvals_v4 RENAME TO approvals_used;"
            " PRAGMA user_version = 4;")
        db.close()
        with harness.Server(workdir=d, env=env) as srv:
            self.assertIn("upgraded from version 4 to", srv.log())
            for n, art in enumerate([used, dict(used, approval_id="a", tenant_id="bc"),
                                     clawshield.mint(PRIV, "c", "echo", {}, approval_id="ab")]):
                r = srv.execute("echo", {}, nonce="old-again-%d" % n, artifact=art)
                self.assertEqual((r.status, r.json().get("error")),
                                 (403, "approval_already_used"), art)
            fresh = clawshield.mint(PRIV, "c", "echo", {})
            self.assertEqual(srv.execute("echo", {}, nonce="new-1", artifact=fresh).status, 200)
            r = srv.execute("echo", {}, nonce="new-2", artifact=fresh)
            self.assertEqual((r.status, r.json().get("error")), (403, "approval_already_used"))


if __name__ == "__main__":
    harness.main()
