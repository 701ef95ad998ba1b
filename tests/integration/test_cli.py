"""The command line: --version, -t (conf check with file:line errors), -c, and no-args demo."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import (PORTICO_BIN, SOURCE_DIR, LineCollector, Portico, catches_signals, request, run_portico,
                     wait_until)

VALID_CONF = """\
[server]
workers = 1
listen = ["127.0.0.1:0"]
access_log = "off"

[admin]
listen = "127.0.0.1:0"

[origins.files]
type = "dir"
root = "@TMP@"

[[sites]]
name = "www"
hosts = ["www.test"]
origin = "files"
"""


def project_version():
    with open(os.path.join(SOURCE_DIR, "CMakeLists.txt")) as f:
        m = re.search(r"project\(portico\s+VERSION\s+([0-9.]+)", f.read())
    return m.group(1)


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="portico-cli-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text.replace("@TMP@", self.tmp))
        return path

    def test_version(self):
        rc, out, err = run_portico(["--version"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "portico %s\n" % project_version())

    def test_check_valid_conf(self):
        path = self.write("ok.toml", VALID_CONF)
        rc, out, err = run_portico(["-t", "-c", path])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.strip(), "%s: configuration ok" % path)

    def test_check_embedded_demo_conf(self):
        rc, out, err = run_portico(["-t"], cwd=SOURCE_DIR)
        self.assertEqual(rc, 0, err)
        self.assertIn("configuration ok", out)

    def test_check_reference_example_parses(self):
        # Every key of the reference example is part of the contract, the TLS block included:
        # its certificate (made by deploy/demo.sh, never committed) is generated here; the dir
        # root is made absolute so the check does not depend on the working directory.
        with open(os.path.join(SOURCE_DIR, "deploy", "portico.example.toml")) as f:
            text = f.read()
        crt, key = self.write("localhost.crt", ""), self.write("localhost.key", "")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-keyout", key,
                        "-out", crt, "-subj", "/CN=localhost"],
                       check=True, capture_output=True, timeout=30)
        self.assertIn('cert = "deploy/demo/tls/localhost.crt"', text)
        text = text.replace('"deploy/demo/tls/localhost.crt"', '"%s"' % crt) \
                   .replace('"deploy/demo/tls/localhost.key"', '"%s"' % key)
        text = text.replace('root = "deploy/demo/site"',
                            'root = "%s"' % os.path.join(SOURCE_DIR, "deploy", "demo", "site"))
        path = self.write("example.toml", text)
        # Secrets come from the environment: the example names these variables.
        env = dict(os.environ, PORTICO_ADMIN_TOKEN="t", AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="s")
        rc, out, err = run_portico(["-t", "-c", path], env=env)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.strip(), "%s: configuration ok" % path)

    def test_check_reports_every_error_with_file_line_key(self):
        conf = VALID_CONF.replace('workers = 1\n', 'workers = 1\nbogus_key = 1\n') \
                         .replace('listen = ["127.0.0.1:0"]', 'listen = ["not an address"]') \
                         .replace('access_log = "off"', 'access_log = "off"\nidle_timeout_ms = "soon"')
        path = self.write("bad.toml", conf)
        lines = conf.splitlines()
        line_of = lambda prefix: next(i + 1 for i, l in enumerate(lines) if l.startswith(prefix))
        rc, out, err = run_portico(["-t", "-c", path])
        self.assertEqual(rc, 1, (out, err))
        self.assertNotIn("configuration ok", out)
        errs = [l for l in err.splitlines() if l.strip()]
        expected = [
            "%s:%d: server.bogus_key: unknown key" % (path, line_of("bogus_key")),
            "%s:%d: server.listen[0]: " % (path, line_of("listen = [\"not")),
            "%s:%d: server.idle_timeout_ms: " % (path, line_of("idle_timeout_ms")),
        ]
        for e in expected:
            self.assertTrue(any(l.startswith(e) for l in errs), "missing %r in stderr:\n%s" % (e, err))

    def test_check_unknown_origin_reference(self):
        path = self.write("ref.toml", VALID_CONF.replace('origin = "files"', 'origin = "nope"'))
        rc, out, err = run_portico(["-t", "-c", path])
        self.assertEqual(rc, 1)
        with open(path) as f:
            line = next(i + 1 for i, l in enumerate(f.read().splitlines()) if 'origin = "nope"' in l)
        self.assertRegex(err, r"(?m)^%s:%d: sites.*origin: " % (re.escape(path), line))

    def test_check_toml_syntax_error(self):
        path = self.write("syntax.toml", "[server]\nworkers = 1\nlisten = [\n")
        rc, out, err = run_portico(["-t", "-c", path])
        self.assertEqual(rc, 1)
        self.assertRegex(err, r"(?m)^%s:\d+: " % re.escape(path))

    def test_check_missing_file(self):
        path = os.path.join(self.tmp, "absent.toml")
        rc, out, err = run_portico(["-t", "-c", path])
        self.assertEqual(rc, 1)
        self.assertIn(path, err)

    def test_unknown_flag(self):
        rc, out, err = run_portico(["--no-such-flag"])
        self.assertNotEqual(rc, 0)
        self.assertTrue(err.strip())

    def test_listener_accepts_as_soon_as_it_is_logged(self):
        # Tests and scripts read the port from the "listening" line and connect (or signal) at
        # once: by then the sockets listen and SIGHUP/SIGTERM have their handlers (the default
        # action of SIGHUP would kill the process).
        for _ in range(3):
            p = Portico(VALID_CONF, tmpdir=self.tmp, wait_accept=False)
            try:
                self.assertTrue(catches_signals(p.pid, (signal.SIGHUP, signal.SIGTERM)),
                                "listening announced before the signal handlers were installed")
                for kind, port in sorted(p.ports.items()):
                    with socket.create_connection(("127.0.0.1", port), timeout=2):
                        pass
            except ConnectionRefusedError:
                self.fail("%s listener on port %d refused a connection after its listening line" % (kind, port))
            finally:
                p.close()

    def test_run_with_conf_serves_and_exits_0_on_sigterm(self):
        with open(os.path.join(self.tmp, "index.html"), "w") as f:
            f.write("<p>cli</p>")
        p = Portico(VALID_CONF, tmpdir=self.tmp)
        self.addCleanup(p.close)
        r = request(p.http_port, "GET", "/", host="www.test")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"<p>cli</p>")
        self.assertEqual(request(p.admin_port, "GET", "/healthz").status, 200)
        self.assertEqual(p.stop(signal.SIGTERM), 0)
        for obj in p.stderr.json_lines():  # every log line is a JSON object with level and msg
            self.assertIn("level", obj)
            self.assertIn("msg", obj)
        for line in p.stderr.snapshot():  # when running, every log line is JSON (-t prints text)
            try:
                json.loads(line)
            except ValueError:
                self.fail("non-JSON line on stderr: %r" % line)


def port_busy(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def port_free_to_connect(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


class DemoTest(unittest.TestCase):
    def test_no_args_runs_embedded_demo(self):
        # The embedded demo listens on its documented fixed ports; skip if they are taken.
        if port_busy(8080) or port_busy(9901):
            self.skipTest("127.0.0.1:8080 or :9901 is in use")
        proc = subprocess.Popen([PORTICO_BIN], cwd=SOURCE_DIR, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        out = LineCollector(proc.stdout, "stdout")
        err = LineCollector(proc.stderr, "stderr")
        deadline = time.monotonic() + 10
        seen = set()
        while seen != {"http", "admin"} and time.monotonic() < deadline:
            obj = err.wait_json(lambda o: o.get("msg") == "listening" and o.get("listener") not in seen,
                                max(0.0, deadline - time.monotonic()))
            if obj is None:
                break
            seen.add(obj.get("listener"))
        self.assertEqual(seen, {"http", "admin"}, "\n".join(err.snapshot()))
        self.assertTrue(wait_until(lambda: not port_free_to_connect(8080), 5))
        r = request(8080, "GET", "/", host="localhost")
        self.assertEqual(r.status, 200)
        with open(os.path.join(SOURCE_DIR, "deploy", "demo", "site", "index.html"), "rb") as f:
            self.assertEqual(r.body, f.read())
        r = request(8080, "GET", "/prod/status", host="api.localhost")
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body), {"ok": True})
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=10), 0)
        out.join()


if __name__ == "__main__":
    unittest.main()
