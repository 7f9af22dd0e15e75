"""Packaging and the documents that ship with it.

PackageTests builds the Debian package from this source tree the way
docs/packaging.md says (a temporary build directory, cpack), installs it
with apt on this machine, runs the installed /usr/bin/openexec, and removes
it again, also when something failed.  It needs root and apt (CI has both);
it skips when an openexec package is already installed (it will not replace
an operator's installation) or when OE_SKIP_PACKAGE_TEST=1.  About a
minute on two cores, mostly compiling.

ShippedDocsTests needs nothing: the man page renders and names every
subcommand and environment variable the binary knows, every subcommand has
--help, SKILL.md's front matter is complete and current, and the systemd
unit passes `systemd-analyze verify`.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import harness

SRC = harness.SOURCE_DIR
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")


def binary_env_vars():
    """Every OPENEXEC_* / CLAWSHIELD_* name compiled into the binary."""
    with open(harness.BIN, "rb") as f:
        data = f.read()
    return sorted({m.decode() for m in re.findall(rb"\b(?:OPENEXEC|CLAWSHIELD)_[A-Z_]+[A-Z]", data)})


def subcommands():
    """The commands `openexec --help` lists."""
    out = harness.run_cli(["--help"]).stdout.decode()
    block = out.split("commands:", 1)[1].split("\n\n", 1)[0]
    return [m.group(1) for m in re.finditer(r"^  ([a-z][a-z-]+)\b", block, re.M)]


def package_installed(name):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True)
    return r.returncode == 0 and "install ok installed" in r.stdout


class ShippedDocsTests(unittest.TestCase):
    def test_every_subcommand_has_help(self):
        cmds = subcommands()
        self.assertIn("serve", cmds)
        for cmd in cmds:
            r = harness.run_cli([cmd, "--help"])
            self.assertEqual(r.returncode, 0, cmd)
            self.assertTrue(r.stdout.startswith(b"usage: openexec " + cmd.encode()), (cmd, r.stdout[:80]))
            self.assertEqual(r.stderr, b"", cmd)

    def test_man_page_documents_every_subcommand_and_variable(self):
        with open(os.path.join(SRC, "docs", "openexec.1"), encoding="utf-8") as f:
            man = f.read()
        commands = man.split(".SH COMMANDS", 1)[1].split(".SH ", 1)[0]
        for cmd in subcommands():
            self.assertRegex(commands, r"\n\.B %s\b" % re.escape(cmd.replace("-", "\\-")),
                             "openexec(1) COMMANDS lacks %s" % cmd)
        environment = man.split(".SH ENVIRONMENT", 1)[1].split(".SH ", 1)[0]
        for var in binary_env_vars():
            self.assertIn("\n.B %s\n" % var, environment, "openexec(1) ENVIRONMENT lacks %s" % var)
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "FILES", "SEE ALSO"):
            self.assertIn(".SH %s" % section, man)
        version = harness.run_cli(["--version"]).stdout.decode().split()[1]
        self.assertIn('"openexec %s"' % version, man.split("\n", 2)[1], "the .TH line names this version")

    def test_man_page_renders_without_warnings(self):
        if shutil.which("groff") is None:
            self.skipTest("groff is not installed")
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", os.path.join(SRC, "docs", "openexec.1")],
                           capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_skill_manifest(self):
        with open(os.path.join(SRC, "SKILL.md"), encoding="utf-8") as f:
            text = f.read()
        m = re.match(r"^---\n(.*?)\n---\n", text, re.S)
        self.assertIsNotNone(m, "SKILL.md starts with YAML front matter")
        front = m.group(1)
        version = harness.run_cli(["--version"]).stdout.decode().split()[1]
        try:
            import yaml
        except ImportError:
            yaml = None
        if yaml is not None:
            meta = yaml.safe_load(front)
            for key in ("name", "slug", "version", "category", "runtime", "entrypoint", "description"):
                self.assertTrue(meta.get(key), key)
            self.assertEqual(meta["slug"], "openexec")
            self.assertEqual(str(meta["version"]), version)
            self.assertIs(meta["requires_network"], False)
            self.assertEqual(meta["modes"], ["demo", "clawshield"])
            self.assertTrue(meta["entrypoint"].startswith("openexec "))
            self.assertEqual(meta["env"]["required"], [])
            documented = [e["name"] for e in meta["env"]["optional"]]
            for e in meta["env"]["optional"]:
                self.assertTrue(e.get("description"), e["name"])
        else:
            self.assertRegex(front, r"(?m)^version: %s$" % re.escape(version))
            self.assertRegex(front, r"(?m)^requires_network: false\b")
            self.assertRegex(front, r"(?m)^modes: \[demo, clawshield\]")
            documented = re.findall(r"(?m)^\s+- name: ([A-Z_]+)$", front)
        self.assertEqual(sorted(set(binary_env_vars()) - set(documented)), [],
                         "variables the binary reads but SKILL.md does not list")
        self.assertIn("openexec serve", text)
        self.assertIn(".deb", text)

    def test_systemd_unit_verifies(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is not installed")
        with open(os.path.join(SRC, "contrib", "openexec.service"), encoding="utf-8") as f:
            unit = f.read()
        for line in ("DynamicUser=yes", "StateDirectory=openexec", "ProtectSystem=strict",
                     "NoNewPrivileges=yes", "IPAddressDeny=any", "CapabilityBoundingSet=\n",
                     "ExecStart=/usr/bin/openexec serve"):
            self.assertIn(line, unit)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "openexec.service")
            with open(path, "w") as f:
                f.write(unit.replace("/usr/bin/openexec", os.path.abspath(harness.BIN)))
            r = subprocess.run(["systemd-analyze", "verify", "--man=no", path],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


@unittest.skipIf(os.environ.get("OE_SKIP_PACKAGE_TEST") == "1", "OE_SKIP_PACKAGE_TEST=1")
@unittest.skipUnless(hasattr(os, "geteuid") and os.geteuid() == 0, "installing a package needs root")
@unittest.skipUnless(shutil.which("apt-get") and shutil.which("dpkg-deb") and shutil.which("cpack"),
                     "needs apt-get, dpkg-deb and cpack")
class PackageTests(unittest.TestCase):
    def setUp(self):
        if package_installed("openexec"):
            self.skipTest("an openexec package is already installed here; not replacing it")
        if os.path.exists("/usr/bin/openexec"):
            self.skipTest("/usr/bin/openexec exists outside any package; not replacing it")
        self.tmp = tempfile.mkdtemp(prefix="oe-pkg-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def run_ok(self, cmd, timeout=600, **kw):
        started = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
        took = time.monotonic() - started
        if took > 2:
            sys.stderr.write("  [%.1fs] %s\n" % (took, " ".join(cmd[:4])))
        self.assertEqual(r.returncode, 0, "%s failed:\n%s\n%s" % (" ".join(cmd), r.stdout[-3000:], r.stderr[-3000:]))
        return r.stdout

    def build_deb(self):
        build = os.path.join(self.tmp, "build")
        self.run_ok(["cmake", "-S", SRC, "-B", build, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                     "-DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON"])
        jobs = str(os.cpu_count() or 2)
        # Only what the package holds: the binary and the man page.
        self.run_ok(["cmake", "--build", build, "-j", jobs, "--target", "openexec", "oe_man_page"])
        self.run_ok(["cpack", "-G", "DEB"], cwd=build)
        debs = [f for f in os.listdir(build) if re.fullmatch(r"openexec_[0-9.]+_[a-z0-9]+\.deb", f)]
        self.assertEqual(len(debs), 1, os.listdir(build))
        return os.path.join(build, debs[0])

    def test_deb_builds_installs_runs_and_removes(self):
        deb = self.build_deb()
        fields = self.run_ok(["dpkg-deb", "-f", deb, "Package", "Version", "Depends", "Section"])
        self.assertIn("Package: openexec", fields)
        for lib in ("libh2o-evloop0.13", "libjansson4", "libsodium23", "libsqlite3-0", "libpq5", "libssl3"):
            self.assertRegex(fields, r"Depends:.*\b%s\b" % re.escape(lib))
        listing = self.run_ok(["dpkg-deb", "-c", deb])
        for path in ("./usr/bin/openexec", "./usr/share/man/man1/openexec.1.gz",
                     "./usr/lib/systemd/system/openexec.service", "./usr/share/doc/openexec/README.md",
                     "./usr/share/doc/openexec/SKILL.md", "./usr/share/doc/openexec/docs/openapi.json",
                     "./usr/share/doc/openexec/examples/client.py"):
            self.assertIn(path, listing)

        self.addCleanup(self.remove_package)
        self.run_ok(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                     "-o", "DPkg::Lock::Timeout=120", deb], env=APT_ENV)
        self.assertTrue(package_installed("openexec"))
        self.assertRegex(self.run_ok(["/usr/bin/openexec", "--version"]), r"^openexec \d+\.\d+\.\d+\n$")
        with open("/usr/lib/systemd/system/openexec.service") as f:
            self.assertIn("ExecStart=/usr/bin/openexec serve\n", f.read())
        if shutil.which("man"):
            self.assertEqual(self.run_ok(["man", "-w", "openexec"]).strip(),
                             "/usr/share/man/man1/openexec.1.gz")
        if shutil.which("systemd-analyze"):
            self.run_ok(["systemd-analyze", "verify", "/usr/lib/systemd/system/openexec.service"])
        self.serve_installed()

    def serve_installed(self):
        run = os.path.join(self.tmp, "run")
        os.mkdir(run)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENEXEC_", "CLAWSHIELD_"))}
        proc = subprocess.Popen(["/usr/bin/openexec", "serve", "--port", "0"], cwd=run, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        try:
            port = None
            for line in proc.stderr:
                m = harness.LISTEN_RE.search(line)
                if m:
                    port = int(m.group(2))
                    break
            self.assertIsNotNone(port, "the installed server did not start")
            base = "http://127.0.0.1:%d" % port
            if shutil.which("curl"):
                health = json.loads(self.run_ok(["curl", "-sS", "--fail", "--max-time", "10", base + "/health"]))
            else:
                with urllib.request.urlopen(base + "/health", timeout=10) as r:
                    health = json.loads(r.read())
            self.assertEqual(health["status"], "healthy")
            with urllib.request.urlopen(base + "/version", timeout=10) as r:
                self.assertEqual(json.loads(r.read())["version"],
                                 harness.run_cli(["--version"]).stdout.decode().split()[1])
            # The default store is ./openexec.db in the working directory.
            self.assertTrue(os.path.exists(os.path.join(run, "openexec.db")))
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(30), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()

    def remove_package(self):
        subprocess.run(["apt-get", "purge", "-y", "-q", "-o", "DPkg::Lock::Timeout=120", "openexec"],
                       env=APT_ENV, capture_output=True, timeout=300)
        if package_installed("openexec"):
            subprocess.run(["dpkg", "--purge", "openexec"], capture_output=True, timeout=300)
        self.assertFalse(package_installed("openexec"), "the package was removed")
        self.assertFalse(os.path.exists("/usr/bin/openexec"))


if __name__ == "__main__":
    harness.main()
