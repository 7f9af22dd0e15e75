"""Configuration (SPEC 1) and the command line, through the real binary."""

import os
import subprocess
import tempfile
import unittest

import harness


def keypair(tmp):
    r = harness.run_cli(["keygen", "--out", os.path.join(tmp, "cs")], cwd=tmp)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(tmp, "cs.pub")) as f:
        return f.read()


class CliTests(unittest.TestCase):
    def test_help_lists_every_subcommand(self):
        r = harness.run_cli(["--help"])
        self.assertEqual(r.returncode, 0)
        for cmd in [b"serve", b"check-config", b"keygen", b"mint"]:
            self.assertIn(cmd, r.stdout)

    def test_each_subcommand_has_help(self):
        for cmd in ["serve", "check-config", "keygen", "mint"]:
            r = harness.run_cli([cmd, "--help"])
            self.assertEqual(r.returncode, 0, cmd)
            self.assertIn(b"usage: openexec " + cmd.encode(), r.stdout)

    def test_version(self):
        r = harness.run_cli(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout.decode(), r"^openexec \d+\.\d+\.\d+\n$")

    def test_help_for_help_and_version_aliases(self):
        for args in (["help", "--help"], ["help", "-h"], ["help"]):
            r = harness.run_cli(args)
            self.assertEqual(r.returncode, 0, args)
            self.assertIn(b"usage: openexec <command>", r.stdout)
        self.assertIn(b"openexec version", harness.run_cli(["--help"]).stdout)
        self.assertEqual(harness.run_cli(["version"]).stdout,
                         harness.run_cli(["--version"]).stdout)

    def test_unreadable_files_are_named_with_the_reason(self):
        with tempfile.TemporaryDirectory() as tmp:
            keypair(tmp)
            pub = os.path.join(tmp, "cs.pub")
            for args, name in ((["verify-log", "--key", pub, "--checkpoint",
                                 os.path.join(tmp, "nope.cp"), pub], "nope.cp"),
                               (["verify-receipt", "--key", pub, tmp], tmp)):
                r = harness.run_cli(args)
                self.assertEqual(r.returncode, 1, r.stderr)
                err = r.stderr.decode()
                self.assertRegex(err, r"^openexec %s: .*%s: cannot read: \S" % (args[0], name))
                self.assertRegex(err, "No such file or directory|Is a directory")

    def test_unknown_command_and_no_command_exit_2(self):
        self.assertEqual(harness.run_cli(["frobnicate"]).returncode, 2)
        self.assertEqual(harness.run_cli([]).returncode, 2)

    def test_serve_unknown_flag_exit_2(self):
        r = harness.run_cli(["serve", "--bogus"])
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"unknown option", r.stderr)


class ConfigErrorTests(unittest.TestCase):
    def check_fails(self, env, needle, args=None):
        with tempfile.TemporaryDirectory() as tmp:
            cmds = [["serve"] + args] if args else [["check-config"], ["serve"]]
            for cmd in cmds:
                r = harness.run_cli(cmd, env=env, cwd=tmp, timeout=10)
                self.assertEqual(r.returncode, 2, (cmd, r.stderr))
                self.assertIn(needle, r.stderr.decode(), cmd)
                # Nothing was created: the server never started.
                self.assertEqual(os.listdir(tmp), [])

    def test_bad_mode_exits_2_with_message(self):
        self.check_fails({"OPENEXEC_MODE": "production"}, "OPENEXEC_MODE must be 'demo' or 'clawshield'")
        self.check_fails({"OPENEXEC_MODE": "DEMO"}, "OPENEXEC_MODE")

    def test_bad_port(self):
        for p in ["http", "70000", "-1", "5000x"]:
            self.check_fails({"OPENEXEC_PORT": p}, "OPENEXEC_PORT")
        self.check_fails({}, "--port", args=["--port", "99999"])

    def test_bad_db_url_never_echoes_password(self):
        with tempfile.TemporaryDirectory() as tmp:
            r = harness.run_cli(["check-config"], cwd=tmp,
                                env={"OPENEXEC_DB_URL": "mysql://u:s3cret@h/db"})
            self.assertEqual(r.returncode, 2)
            self.assertIn(b"OPENEXEC_DB_URL", r.stderr)
            self.assertNotIn(b"s3cret", r.stderr)

    def test_bad_threads(self):
        self.check_fails({"OPENEXEC_THREADS": "0"}, "OPENEXEC_THREADS")

    def test_bad_log_origin(self):
        # It names the log in checkpoints (no spaces, no '+': signed-note
        # key names) and in receipts (nothing JSON would escape).
        for bad in ["has space", "a+b", 'quo"te', "back\\slash", "caf\u00e9", "x" * 256]:
            with self.subTest(origin=bad):
                self.check_fails({"OPENEXEC_LOG_ORIGIN": bad}, "OPENEXEC_LOG_ORIGIN")

    def test_check_config_ok(self):
        with tempfile.TemporaryDirectory() as tmp:
            r = harness.run_cli(["check-config"], cwd=tmp)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(b"mode: demo", r.stdout)
            self.assertIn(b"store: openexec.db", r.stdout)

    def test_check_config_refuses_what_serve_would_refuse(self):
        # An unusable receipt key, or a key or database that cannot be
        # created: check-config exits 2 naming it, as serve would refuse to
        # start (serve: 2 for a bad key file, a configuration error).
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "bad.key"), "w") as f:
                f.write("garbage\n")
            pub = os.path.join(tmp, "cs.pub")
            keypair(tmp)
            cases = [({"OPENEXEC_RECEIPT_KEY": "bad.key"}, b"receipt key bad.key: "),
                     ({"OPENEXEC_RECEIPT_KEY": pub}, b"PRIVATE KEY"),
                     ({"OPENEXEC_RECEIPT_KEY": "no/such/dir.key"},
                      b"no/such/dir.key: cannot be created: No such file or directory"),
                     ({"OPENEXEC_DB_URL": "sqlite:///no/such/dir.db"},
                      b"cannot be created: No such file or directory"),
                     # A URL naming a directory: serve could not open it.
                     ({"OPENEXEC_DB_URL": "sqlite:///" + tmp + "/",
                       "OPENEXEC_RECEIPT_KEY": os.path.join(tmp, "cs.key")},
                      b"is a directory, not a database file")]
            for env, reason in cases:
                r = harness.run_cli(["check-config"], cwd=tmp, env=env)
                self.assertEqual(r.returncode, 2, (env, r.stderr))
                self.assertIn(reason, r.stderr, env)
                r = harness.run_cli(["check-config", "--json"], cwd=tmp, env=env)
                self.assertEqual(r.returncode, 2, (env, r.stderr))
                self.assertIn(b'"ok":false', r.stdout)
            r = harness.run_cli(["serve", "--port", "0"], cwd=tmp,
                                env={"OPENEXEC_RECEIPT_KEY": "bad.key"})
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(b"receipt key bad.key: ", r.stderr)
            self.assertEqual(sorted(os.listdir(tmp)), ["bad.key", "cs.key", "cs.pub"],
                             "check-config wrote nothing, serve nothing")
            # A usable key file, and a database that can be created: ok.
            r = harness.run_cli(["check-config"], cwd=tmp,
                                env={"OPENEXEC_RECEIPT_KEY": os.path.join(tmp, "cs.key")})
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_check_config_clawshield_without_key_is_2(self):
        with tempfile.TemporaryDirectory() as tmp:
            r = harness.run_cli(["check-config"], cwd=tmp, env={"OPENEXEC_MODE": "clawshield"})
            self.assertEqual(r.returncode, 2)
            self.assertIn(b"CLAWSHIELD_PUBLIC_KEY", r.stderr)

    def test_check_config_clawshield_with_key_is_0(self):
        with tempfile.TemporaryDirectory() as tmp:
            pem = keypair(tmp)
            r = harness.run_cli(["check-config"], cwd=tmp, env={
                "OPENEXEC_MODE": "clawshield", "CLAWSHIELD_PUBLIC_KEY": pem,
                "CLAWSHIELD_TENANT_ID": "t1"})
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(b"clawshield keys: 1", r.stdout)


class ServeConfigTests(unittest.TestCase):
    def test_default_db_is_openexec_db_in_working_directory(self):
        with tempfile.TemporaryDirectory() as tmp:
            srv = harness.Server(workdir=tmp)
            del srv.env["OPENEXEC_DB_URL"]
            with srv:
                self.assertEqual(srv.get("/ready").status, 200)
            self.assertTrue(os.path.exists(os.path.join(tmp, "openexec.db")))

    def test_port_from_environment(self):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        with tempfile.TemporaryDirectory() as tmp:
            srv = harness.Server(workdir=tmp, env={"OPENEXEC_PORT": str(port)})
            srv.args = []
            p = subprocess.Popen([harness.BIN, "serve"], cwd=tmp, env=srv.env,
                                 stderr=subprocess.PIPE)
            try:
                line = p.stderr.readline().decode()
                while "listening" not in line and line:
                    line = p.stderr.readline().decode()
                self.assertIn("listening on 127.0.0.1:%d" % port, line)
            finally:
                p.terminate()
                self.assertEqual(p.wait(10), 0)

    def test_clawshield_without_key_starts_but_not_ready(self):
        with harness.Server(env={"OPENEXEC_MODE": "clawshield"}) as srv:
            r = srv.get("/ready")
            self.assertEqual(r.status, 503)
            body = r.json()
            self.assertEqual(list(body), ["ready", "reason"])
            self.assertIs(body["ready"], False)
            self.assertIn("CLAWSHIELD_PUBLIC_KEY", body["reason"])
            self.assertIn("retry-after", r.headers)
            self.assertIn("CLAWSHIELD_PUBLIC_KEY", srv.log())
            h = srv.get("/health").json()
            self.assertEqual(h["exec_mode"], "clawshield")
            self.assertEqual(h["signature_verification"], "enabled")
            r = srv.execute("echo", {}, artifact={"approval_id": "a"})
            self.assertEqual(r.status, 403)
            self.assertEqual(r.json()["error"], "key_not_configured")
            self.assertEqual(r.json()["detail"], "CLAWSHIELD_PUBLIC_KEY not configured")
            r = srv.execute("echo", {})
            self.assertEqual(r.json()["error"], "approval_required")

    def test_clawshield_with_garbage_key_not_ready(self):
        with harness.Server(env={"OPENEXEC_MODE": "clawshield",
                                 "CLAWSHIELD_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}) as srv:
            r = srv.get("/ready")
            self.assertEqual(r.status, 503)
            self.assertIn("not a usable Ed25519 key", r.json()["reason"])

    def test_clawshield_without_tenant_warns(self):
        with tempfile.TemporaryDirectory() as tmp:
            pem = keypair(tmp)
            with harness.Server(env={"OPENEXEC_MODE": "clawshield",
                                     "CLAWSHIELD_PUBLIC_KEY": pem}) as srv:
                self.assertEqual(srv.get("/ready").status, 200)
                self.assertIn("CLAWSHIELD_TENANT_ID is not set", srv.log())

    def test_clawshield_without_tenant_warns_also_without_a_usable_key(self):
        # SPEC 1's tenant warning is said whatever else is wrong, so an
        # operator fixing the key learns about the tenant at the same time.
        for key in (None, "x"):
            env = {"OPENEXEC_MODE": "clawshield"}
            if key is not None:
                env["CLAWSHIELD_PUBLIC_KEY"] = key
            with self.subTest(key=key), harness.Server(env=env) as srv:
                self.assertEqual(srv.get("/ready").status, 503)
                self.assertIn("CLAWSHIELD_PUBLIC_KEY is not", srv.log())
                self.assertIn("CLAWSHIELD_TENANT_ID is not set", srv.log())
        with harness.Server(env={"CLAWSHIELD_PUBLIC_KEY": "x"}) as srv:  # demo mode
            self.assertNotIn("CLAWSHIELD", srv.log())

    def test_allow_list_trimmed_and_reported(self):
        with harness.Server(env={"OPENEXEC_ALLOWED_ACTIONS": " echo , ,add,, "}) as srv:
            self.assertEqual(srv.get("/health").body,
                             b'{"status":"healthy","exec_mode":"demo","signature_verification":'
                             b'"disabled","restriction":"restricted","allow_list":["echo","add"],'
                             b'"actions":["add","echo"]}')

    def test_allow_list_of_only_blanks_is_open(self):
        with harness.Server(env={"OPENEXEC_ALLOWED_ACTIONS": " , ,"}) as srv:
            self.assertEqual(srv.get("/health").json()["restriction"], "open")

    def test_cannot_bind_exits_1(self):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        try:
            with tempfile.TemporaryDirectory() as tmp:
                r = harness.run_cli(["serve", "--port", str(port)], cwd=tmp, timeout=10)
                self.assertEqual(r.returncode, 1)
                self.assertIn(b"cannot listen", r.stderr)
        finally:
            s.close()


if __name__ == "__main__":
    harness.main()
