"""TLS termination ([server.tls]): SNI certificate selection (exact and wildcard names, chain
files with an intermediate), protocol floor (TLS 1.1 refused, 1.3 by default), session
resumption (tickets and the session cache, as `openssl s_client` reports it, also across a
SIGHUP), redirect_http and HSTS, certificate errors named by `portico -t`, certificate reload on
SIGHUP, the access log and metrics fields, and hostile clients (plain HTTP, random bytes, stalled
or abandoned handshakes, many at once).

Every certificate and key is generated at test time with the openssl CLI into a temp dir (no
private key is ever committed)."""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import Portico, RawConn, metric, request, run_portico, scrape, wait_until

HANDSHAKE_TIMEOUT_MS = 1000  # header_timeout_ms bounds the TLS handshake too
HSTS = 600

CONF = """\
[server]
workers = 1
listen = ["127.0.0.1:0"]
header_timeout_ms = %d
idle_timeout_ms = 5000
access_log = "-"

[server.tls]
listen = ["127.0.0.1:0"]
certificates = [
  { cert = "@TMP@/a.crt", key = "@TMP@/a.key" },
  { cert = "@TMP@/b.crt", key = "@TMP@/b.key" },
]
redirect_http = %s
hsts_max_age_s = %d
%s
[admin]
listen = "127.0.0.1:0"

[origins.files]
type = "dir"
root = "@TMP@/www"

[[sites]]
name = "www"
hosts = ["a.test", "b.test", "x.wild.test"]
origin = "files"
"""

HELLO = b"hello over tls\n"


def openssl(cwd, *args, stdin=None, timeout=30):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, input=stdin, capture_output=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("openssl %s failed: %s" % (" ".join(args), p.stderr.decode(errors="replace")))
    return p


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def make_certs(d):
    """In d: ca.crt (root), a.crt (leaf a.test + *.wild.test, then the intermediate: a chain
    file) with a.key, b.crt/b.key (self-signed RSA, b.test), expired.crt/expired.key, other.key
    (matches nothing)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl(d, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=Portico Test Root", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl(d, "req", "-new", *ec, "-keyout", "int.key", "-out", "int.csr", "-subj", "/CN=Portico Test Intermediate")
    write(os.path.join(d, "int.ext"), "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n")
    openssl(d, "x509", "-req", "-in", "int.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "int.ext", "-out", "int.crt")
    make_leaf(d, "a", "a.test", "DNS:a.test,DNS:*.wild.test")
    openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "b.key", "-out", "b.crt", "-days", "2",
            "-subj", "/CN=b.test", "-addext", "subjectAltName=DNS:b.test")
    openssl(d, "req", "-new", *ec, "-keyout", "expired.key", "-out", "expired.csr", "-subj", "/CN=expired.test")
    openssl(d, "x509", "-req", "-in", "expired.csr", "-signkey", "expired.key", "-days", "-1", "-out", "expired.crt")
    openssl(d, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "other.key")


def make_leaf(d, name, cn, san):
    """A leaf signed by the intermediate; name.crt is the chain file (leaf + intermediate)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl(d, "req", "-new", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
    write(os.path.join(d, name + ".ext"), "subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
          "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n" % san)
    openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", "int.crt", "-CAkey", "int.key", "-CAcreateserial",
            "-days", "2", "-extfile", name + ".ext", "-out", name + ".leaf.crt")
    with open(os.path.join(d, name + ".crt"), "wb") as out:
        for part in (name + ".leaf.crt", "int.crt"):
            with open(os.path.join(d, part), "rb") as f:
                out.write(f.read())


def client_context(d, **kw):
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
    ctx.load_verify_locations(os.path.join(d, "b.crt"))  # self-signed: its own anchor
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


class TlsConn(RawConn):
    """RawConn over TLS (SNI = host, certificate verified against the test CA)."""

    def __init__(self, port, host, ctx, timeout=5.0):
        super().__init__(port, timeout=timeout)
        try:
            self.sock = ctx.wrap_socket(self.sock, server_hostname=host)
        except Exception:
            self.close()
            raise


def s_client(port, *args, stdin=b"", timeout=15):
    """openssl s_client; returns its combined output (no exception on handshake failure)."""
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args),
                       input=stdin, capture_output=True, timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def get_request(host, path="/hello.txt", close=True):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (path, host, "Connection: close\r\n" if close else "")).encode()


class TlsBase(unittest.TestCase):
    redirect = False
    extra = ""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="portico-tls-")
        make_certs(cls.tmp)
        os.makedirs(os.path.join(cls.tmp, "www"))
        with open(os.path.join(cls.tmp, "www", "hello.txt"), "wb") as f:
            f.write(HELLO)
        cls.portico = Portico(CONF % (HANDSHAKE_TIMEOUT_MS, "true" if cls.redirect else "false", HSTS, cls.extra),
                              tmpdir=cls.tmp, expect=("http", "https", "admin"))
        cls.port = cls.portico.ports["https"]
        cls.ctx = client_context(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        cls.portico.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def metrics(self):
        return scrape(self.portico.admin_port)

    def tls_get(self, host, path="/hello.txt", ctx=None):
        with TlsConn(self.port, host, ctx or self.ctx) as c:
            c.send(get_request(host, path))
            resp = c.read_response()
            return resp, c.sock.getpeercert(), c.sock.version()

    def assertAlive(self):
        resp, _, _ = self.tls_get("a.test")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, HELLO)


class TlsTest(TlsBase):
    def test_sni_selects_the_certificate_by_name_and_wildcard(self):
        for host, expect in (("a.test", "a.test"), ("b.test", "b.test"), ("x.wild.test", "a.test")):
            resp, cert, _ = self.tls_get(host)  # verified: the a.test chain needs its intermediate
            self.assertEqual(resp.status, 200, host)
            self.assertEqual(resp.body, HELLO)
            cn = dict(x[0] for x in cert["subject"])["commonName"]
            self.assertEqual(cn, expect, host)

    def test_unknown_name_and_no_sni_get_the_first_certificate(self):
        for args in (["-servername", "nobody.test"], ["-noservername"]):
            _, out = s_client(self.port, *args)
            self.assertIn("subject=CN = a.test", out, args)

    def test_tls13_by_default_with_alpn_http11(self):
        rc, out = s_client(self.port, "-servername", "a.test", "-alpn", "h2,http/1.1")
        self.assertIn("New, TLSv1.3", out)
        self.assertIn("ALPN protocol: http/1.1", out)
        ctx = client_context(self.tmp)
        ctx.set_alpn_protocols(["http/1.1"])
        with TlsConn(self.port, "a.test", ctx) as c:
            self.assertEqual(c.sock.version(), "TLSv1.3")
            self.assertEqual(c.sock.selected_alpn_protocol(), "http/1.1")

    def test_tls12_works_and_tls11_is_refused(self):
        rc, out = s_client(self.port, "-servername", "a.test", "-tls1_2")
        self.assertIn("New, TLSv1.2", out)
        self.assertIn("ECDHE", out)  # forward secrecy
        rc, out = s_client(self.port, "-servername", "a.test", "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
        self.assertNotEqual(rc, 0)
        self.assertRegex(out, r"protocol version|no protocols available|unsupported protocol")
        self.assertNotRegex(out, r"New, TLSv1\.1, Cipher is [A-Z]")
        self.assertAlive()

    def test_no_weak_ciphers_and_no_compression(self):
        rc, out = s_client(self.port, "-tls1_2", "-cipher", "AES128-SHA:DES-CBC3-SHA:@SECLEVEL=0")
        self.assertNotEqual(rc, 0, "a non-forward-secret CBC suite was accepted")
        _, out = s_client(self.port, "-servername", "a.test")
        self.assertIn("Compression: NONE", out)

    def resume(self, *args):
        """Full handshake saving the session, then one offering it: the second s_client's output."""
        sess = os.path.join(self.tmp, "sess-%d.pem" % time.monotonic_ns())
        req = get_request("a.test")
        # -ign_eof: read until the server closes (after the response), so TLS 1.3 tickets, which
        # come after the handshake, are received before the session is saved.
        _, first = s_client(self.port, "-servername", "a.test", "-ign_eof", "-sess_out", sess, *args, stdin=req)
        self.assertIn("New, ", first)
        _, second = s_client(self.port, "-servername", "a.test", "-ign_eof", "-sess_in", sess, *args, stdin=req)
        return second

    def test_resumption_with_tickets_tls13(self):
        out = self.resume()
        self.assertIn("Reused, TLSv1.3", out)
        self.assertIn(HELLO.decode().strip(), out)

    def test_resumption_with_tickets_tls12(self):
        self.assertIn("Reused, TLSv1.2", self.resume("-tls1_2"))

    def test_resumption_with_the_session_cache_tls12(self):
        # -no_ticket: the client asks for no ticket, so only the server's session cache can resume.
        self.assertIn("Reused, TLSv1.2", self.resume("-tls1_2", "-no_ticket"))

    def test_hsts_on_tls_responses_only(self):
        resp, _, _ = self.tls_get("a.test")
        self.assertEqual(resp.header("Strict-Transport-Security"), "max-age=%d" % HSTS)
        plain = request(self.portico.http_port, target="/hello.txt", host="a.test")
        self.assertEqual(plain.status, 200)  # redirect_http = false here
        self.assertIsNone(plain.header("Strict-Transport-Security"))

    def test_keep_alive_and_pipelining_over_tls(self):
        with TlsConn(self.port, "a.test", self.ctx) as c:
            c.send(get_request("a.test", close=False) * 3)
            for _ in range(3):
                r = c.read_response()
                self.assertEqual((r.status, r.body), (200, HELLO))
            c.send(get_request("a.test", path="/missing", close=False))
            self.assertEqual(c.read_response().status, 404)

    def test_access_log_and_metrics_note_protocol_and_resumption(self):
        before = self.metrics()
        out = self.resume()
        self.assertIn("Reused, TLSv1.3", out)
        self.tls_get("b.test", path="/hello.txt?logged=1")

        def entries():
            return [e for e in self.portico.access_log() if e.get("target") == "/hello.txt?logged=1"]
        self.assertTrue(wait_until(entries, 5))
        e = entries()[-1]
        self.assertEqual(e["tls"], "TLSv1.3")
        self.assertIs(e["tls_resumed"], False)
        self.assertTrue(wait_until(lambda: any(x.get("tls_resumed") is True for x in self.portico.access_log()), 5))
        plain = request(self.portico.http_port, target="/hello.txt?plain=1", host="a.test")
        self.assertEqual(plain.status, 200)
        self.assertTrue(wait_until(lambda: [x for x in self.portico.access_log() if x.get("target") == "/hello.txt?plain=1"], 5))
        p = [x for x in self.portico.access_log() if x.get("target") == "/hello.txt?plain=1"][-1]
        self.assertNotIn("tls", p)
        after = self.metrics()
        resumed = metric(after, "portico_tls_handshakes_total", protocol="TLSv1.3", resumed="true") - \
            metric(before, "portico_tls_handshakes_total", protocol="TLSv1.3", resumed="true")
        full = metric(after, "portico_tls_handshakes_total", protocol="TLSv1.3", resumed="false") - \
            metric(before, "portico_tls_handshakes_total", protocol="TLSv1.3", resumed="false")
        self.assertEqual(resumed, 1)
        self.assertEqual(full, 2)

    # ---- hostile and broken clients -------------------------------------------------------------

    def errors_metric(self, reason):
        return metric(self.metrics(), "portico_tls_handshake_errors_total", reason=reason)

    def test_plain_http_on_the_tls_port_gets_400(self):
        before = self.errors_metric("plain_http")
        with RawConn(self.port) as c:
            c.send(get_request("a.test"))
            r = c.read_response()
            self.assertEqual(r.status, 400)
            self.assertIn(b"HTTPS", r.body)
            self.assertTrue(c.is_closed(3))
        self.assertEqual(self.errors_metric("plain_http"), before + 1)
        self.assertAlive()

    def test_random_bytes_are_refused(self):
        before = self.errors_metric("protocol")
        junk = bytes([0x16, 0x03, 0x01, 0x00, 0x40]) + os.urandom(64)  # a record of garbage
        for payload in (junk, b"\x00" + os.urandom(4096), b"\x80" * 100):
            with RawConn(self.port) as c:
                c.send(payload)
                data = c.read_until_close(3)  # at most an alert, then the close
                self.assertLess(len(data), 64)
        self.assertEqual(self.errors_metric("protocol"), before + 3)
        self.assertAlive()

    def test_stalled_handshake_is_closed_after_the_timeout(self):
        before = self.errors_metric("timeout")
        hello = client_hello_prefix()
        with RawConn(self.port) as silent, RawConn(self.port) as partial:
            partial.send(hello[:20])
            started = time.monotonic()
            self.assertTrue(silent.is_closed(HANDSHAKE_TIMEOUT_MS / 1000 + 3))
            self.assertTrue(partial.is_closed(3))
            self.assertGreaterEqual(time.monotonic() - started, HANDSHAKE_TIMEOUT_MS / 1000 * 0.8)
        self.assertTrue(wait_until(lambda: self.errors_metric("timeout") >= before + 2, 3))
        self.assertAlive()

    def test_client_vanishing_mid_handshake(self):
        before = self.errors_metric("closed")
        hello = client_hello_prefix()
        for cut in (0, 11, len(hello) // 2):
            c = RawConn(self.port)
            if cut:
                c.send(hello[:cut])
            c.close()
        self.assertTrue(wait_until(lambda: self.errors_metric("closed") >= before + 3, 5))
        # Vanishing after the handshake, mid-request: nothing breaks either.
        c = TlsConn(self.port, "a.test", self.ctx)
        c.send(b"GET /hello.txt HTTP/1.1\r\nHo")
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
        c.close()
        self.assertAlive()

    def test_many_stalled_handshakes_do_not_delay_real_clients(self):
        m = self.metrics()
        open_before = metric(m, "portico_open_connections")
        accepted_before = metric(m, "portico_connections_total")
        rss_before = self.portico.rss_kib()
        hello = client_hello_prefix()
        stalled = []
        try:
            for i in range(300):
                c = RawConn(self.port)
                stalled.append(c)
                if i % 2:
                    c.send(hello[: 10 + i % 50])
            # All accepted (on a loaded machine the first may already have timed out).
            self.assertTrue(wait_until(
                lambda: metric(self.metrics(), "portico_connections_total") >= accepted_before + 300, 5))
            started = time.monotonic()
            for host in ("a.test", "b.test"):
                resp, _, _ = self.tls_get(host)
                self.assertEqual(resp.status, 200)
            self.assertLess(time.monotonic() - started, 1.0, "a real client waited behind stalled handshakes")
            grown = self.portico.rss_kib() - rss_before
            self.assertLess(grown, 32 * 1024, "300 stalled handshakes cost %d KiB" % grown)
            # All are closed by the handshake timeout, none is kept.
            self.assertTrue(wait_until(
                lambda: metric(self.metrics(), "portico_open_connections") <= open_before,
                HANDSHAKE_TIMEOUT_MS / 1000 + 5))
        finally:
            for c in stalled:
                c.close()
        self.assertAlive()


def client_hello_prefix():
    """The first bytes a real TLS client sends (a ClientHello), captured from Python's ssl."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ssl.create_default_context().wrap_bio(inc, out, server_hostname="a.test")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


class TlsRedirectTest(TlsBase):
    redirect = True
    extra = 'min_version = "TLSv1.3"\n'

    def test_plain_requests_get_301_to_https_same_host_and_path(self):
        r = request(self.portico.http_port, target="/a/b.txt?x=1&y=2", host="a.test")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("Location"), "https://a.test:%d/a/b.txt?x=1&y=2" % self.port)
        self.assertIsNone(r.header("Strict-Transport-Security"))
        # Following it works.
        resp, _, _ = self.tls_get("a.test")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.header("Strict-Transport-Security"), "max-age=%d" % HSTS)

    def test_min_version_tls13_refuses_tls12(self):
        rc, out = s_client(self.port, "-servername", "a.test", "-tls1_2")
        self.assertNotEqual(rc, 0)
        self.assertNotIn("New, TLSv1.2", out)
        rc, out = s_client(self.port, "-servername", "a.test")
        self.assertIn("New, TLSv1.3", out)


class TlsConfTest(unittest.TestCase):
    """`portico -t` names certificate problems; SIGHUP reloads certificates (and refuses bad
    ones); session tickets survive a reload."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="portico-tlsconf-")
        make_certs(cls.tmp)
        os.makedirs(os.path.join(cls.tmp, "www"))
        with open(os.path.join(cls.tmp, "www", "hello.txt"), "wb") as f:
            f.write(HELLO)
        write(os.path.join(cls.tmp, "garbage.pem"), "-----BEGIN CERTIFICATE-----\nnot base64 at all\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def conf(self, certs):
        entries = "".join('  { cert = "%s", key = "%s" },\n' % (c, k) for c, k in certs)
        text = CONF.replace("certificates = [\n  { cert = \"@TMP@/a.crt\", key = \"@TMP@/a.key\" },\n"
                            "  { cert = \"@TMP@/b.crt\", key = \"@TMP@/b.key\" },\n]",
                            "certificates = [\n" + entries + "]")
        return (text % (HANDSHAKE_TIMEOUT_MS, "false", 0, "")).replace("@TMP@", self.tmp)

    def check(self, certs):
        path = os.path.join(self.tmp, "check.toml")
        write(path, self.conf(certs))
        return run_portico(["-t", "-c", path])

    def test_valid_chain_passes(self):
        rc, out, err = self.check([("a.crt", "a.key"), ("b.crt", "b.key")])
        self.assertEqual(rc, 0, err)
        self.assertIn("configuration ok", out)

    def test_certificate_problems_are_named_with_file_line_and_key(self):
        rc, out, err = self.check([("a.crt", "b.key"), ("expired.crt", "expired.key"), ("garbage.pem", "a.key"),
                                   ("b.crt", "garbage.pem")])
        self.assertEqual(rc, 1)
        path = os.path.join(self.tmp, "check.toml")
        lines = [l for l in err.strip().splitlines() if "server.tls" in l]
        text = self.conf([("x", "y")]).splitlines()
        first = next(i for i, l in enumerate(text) if l.strip().startswith("{ cert")) + 1
        self.assertIn("%s:%d: server.tls.certificates[0].key: the private key does not match the certificate" % (path, first), err)
        self.assertIn("%s:%d: server.tls.certificates[1].cert: the certificate expired on " % (path, first + 1), err)
        self.assertIn("%s:%d: server.tls.certificates[2].cert: cannot load the certificate chain" % (path, first + 2), err)
        self.assertIn("%s:%d: server.tls.certificates[3].key: not a PEM private key" % (path, first + 3), err)
        self.assertEqual(len(lines), 4, err)

    def test_same_checks_at_startup(self):
        path = os.path.join(self.tmp, "start.toml")
        write(path, self.conf([("a.crt", "other.key")]))
        rc, out, err = run_portico(["-c", path], timeout=10)  # would run (and time out) if accepted
        self.assertEqual(rc, 1)
        self.assertIn("server.tls.certificates[0].key: the private key does not match", err)

    def test_sighup_reloads_certificates_and_tickets_survive(self):
        work = tempfile.mkdtemp(prefix="portico-tlsreload-")
        for f in ("a.crt", "a.key", "b.crt", "b.key", "ca.crt"):
            shutil.copy(os.path.join(self.tmp, f), os.path.join(work, f))
        conf = self.conf([("%s/a.crt" % work, "%s/a.key" % work), ("%s/b.crt" % work, "%s/b.key" % work)])
        p = Portico(conf, tmpdir=work, expect=("http", "https", "admin"))
        try:
            port = p.ports["https"]
            ctx = client_context(self.tmp)

            def serial(host):
                with TlsConn(port, host, ctx) as c:
                    return c.sock.getpeercert()["serialNumber"]
            old = serial("a.test")
            sess = os.path.join(work, "sess.pem")
            req = get_request("a.test")
            _, out = s_client(port, "-servername", "a.test", "-ign_eof", "-sess_out", sess, stdin=req)
            self.assertIn("New, TLSv1.3", out)

            # A new certificate for a.test (same names, new key) and a SIGHUP.
            make_leaf(self.tmp, "a2", "a.test", "DNS:a.test,DNS:*.wild.test")
            shutil.copy(os.path.join(self.tmp, "a2.crt"), os.path.join(work, "a.crt"))
            shutil.copy(os.path.join(self.tmp, "a2.key"), os.path.join(work, "a.key"))
            mark = len(p.stderr.snapshot())
            p.send_signal(signal.SIGHUP)
            self.assertIsNotNone(p.stderr.wait_json(lambda o: o.get("msg") == "reloaded", 5, mark))
            new = serial("a.test")
            self.assertNotEqual(new, old)
            _, out = s_client(port, "-servername", "a.test", "-ign_eof", "-sess_in", sess, stdin=req)
            self.assertIn("Reused, TLSv1.3", out)

            # A broken key: the reload is refused, the current certificate keeps serving.
            shutil.copy(os.path.join(self.tmp, "other.key"), os.path.join(work, "a.key"))
            mark = len(p.stderr.snapshot())
            p.send_signal(signal.SIGHUP)
            refused = p.stderr.wait_json(lambda o: o.get("msg", "").startswith("reload refused"), 5, mark)
            self.assertIsNotNone(refused)
            self.assertIn("does not match", json.dumps(refused))
            self.assertEqual(serial("a.test"), new)
        finally:
            p.close()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
