"""The access log: one JSON line per request with the documented fields, to stdout ("-"), to a
file (appended), or nowhere ("off")."""
import email.utils
import json
import os
import shutil
import tempfile
import time
import unittest
from datetime import datetime

from harness import Portico, RawConn, Upstream, request, wait_until

CONF = """\
[server]
workers = 1
listen = ["127.0.0.1:0"]
access_log = "{log}"

[origins.files]
type = "dir"
root = "@TMP@/www"

[origins.up]
type = "http"
endpoint = "{upstream}"
timeout_ms = 5000

[[sites]]
name = "www"
hosts = ["www.test"]
origin = "files"

[[sites]]
name = "proxied"
hosts = ["up.test"]
origin = "up"
default_ttl_s = 0

[[apis]]
name = "shop"
hosts = ["api.test"]

  [[apis.stages]]
  name = "prod"

  [[apis.routes]]
  method = "GET"
  path = "/status"
  mock = {{ status = 200, body = 'ok' }}
"""

FIELDS = ("time", "client", "method", "target", "host", "status", "bytes_in", "bytes_out", "duration_ms",
          "origin_ms", "route", "cache")
INDEX = b"<p>logged</p>\n"


def parse_time(value):
    """The entry's time: ISO 8601 / RFC 3339, or an HTTP date; returns epoch seconds."""
    if isinstance(value, (int, float)):
        return value / 1000.0 if value > 1e11 else float(value)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return email.utils.parsedate_to_datetime(value).timestamp()


class AccessLogTest(unittest.TestCase):
    def start(self, log="-"):
        self.upstream = Upstream()
        self.addCleanup(self.upstream.close)
        p = Portico(CONF.format(log=log, upstream=self.upstream.endpoint), start=False)
        self.addCleanup(p.close)
        os.makedirs(os.path.join(p.tmpdir, "www"))
        with open(os.path.join(p.tmpdir, "www", "index.html"), "wb") as f:
            f.write(INDEX)
        return p.start()

    def entry(self, p, target, timeout=3):
        """The access-log entry whose target is `target` (waits for it)."""
        found = wait_until(lambda: [e for e in p.access_log() if e.get("target") == target], timeout)
        self.assertTrue(found, "no access-log line for %s; stdout:\n%s" % (target, "\n".join(p.stdout.snapshot())))
        self.assertEqual(len(found), 1, "more than one line for %s" % target)
        return found[0]

    def test_site_request_fields(self):
        p = self.start()
        t0 = time.time()
        r = request(p.http_port, "GET", "/?x=1", host="www.test", headers={"User-Agent": "it"})
        self.assertEqual(r.status, 200)
        e = self.entry(p, "/?x=1")
        for f in FIELDS:
            self.assertIn(f, e)
        self.assertEqual(e["method"], "GET")
        self.assertEqual(e["host"], "www.test")
        self.assertEqual(e["status"], 200)
        self.assertTrue(str(e["client"]).startswith("127.0.0.1"), e["client"])
        self.assertEqual(e["route"], "site:www")
        self.assertIsInstance(e["cache"], str)
        self.assertGreaterEqual(e["bytes_in"], 0)  # a GET has no body; the head may or may not count
        self.assertGreaterEqual(e["bytes_out"], len(INDEX))
        self.assertGreaterEqual(e["duration_ms"], 0)
        self.assertLess(e["duration_ms"], 5000)
        self.assertLess(abs(parse_time(e["time"]) - t0), 60)

    def test_api_mock_has_no_origin_time(self):
        p = self.start()
        request(p.http_port, "GET", "/prod/status", host="api.test")
        e = self.entry(p, "/prod/status")
        self.assertEqual(e["route"], "api:shop/prod")
        self.assertEqual(e["status"], 200)
        self.assertIsNone(e["origin_ms"])

    def test_http_origin_time(self):
        p = self.start()
        request(p.http_port, "POST", "/up?delay_ms=100", host="up.test", body=b"z" * 3000)
        e = self.entry(p, "/up?delay_ms=100")
        self.assertEqual(e["method"], "POST")
        self.assertEqual(e["route"], "site:proxied")
        self.assertIsInstance(e["origin_ms"], (int, float))
        self.assertGreaterEqual(e["origin_ms"], 90)
        self.assertGreaterEqual(e["duration_ms"], e["origin_ms"])
        self.assertGreaterEqual(e["bytes_in"], 3000)
        self.assertTrue(e["cache"])

    def test_errors_are_logged(self):
        p = self.start()
        self.assertEqual(request(p.http_port, "GET", "/u", host="unknown.test").status, 404)
        self.assertEqual(self.entry(p, "/u")["status"], 404)
        self.assertEqual(request(p.http_port, "GET", "/prod/nope", host="api.test").status, 403)
        self.assertEqual(self.entry(p, "/prod/nope")["status"], 403)

    def test_one_line_per_request_on_a_keep_alive_connection(self):
        p = self.start()
        with RawConn(p.http_port) as c:
            for i in range(5):
                c.send(b"GET /?n=%d HTTP/1.1\r\nHost: www.test\r\n\r\n" % i)
            for i in range(5):
                self.assertEqual(c.read_response().status, 200)
        for i in range(5):
            self.entry(p, "/?n=%d" % i)
        for line in p.stdout.snapshot():  # stdout carries nothing but JSON lines
            json.loads(line)

    def test_log_to_file_appends(self):
        tmp = tempfile.mkdtemp(prefix="portico-log-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "access.log")
        with open(path, "w") as f:
            f.write('{"pre":"existing"}\n')
        self.upstream = Upstream()
        self.addCleanup(self.upstream.close)
        q = Portico(CONF.format(log=path, upstream=self.upstream.endpoint), tmpdir=tmp, start=False)
        self.addCleanup(q.close)
        os.makedirs(os.path.join(tmp, "www"))
        with open(os.path.join(tmp, "www", "index.html"), "wb") as f:
            f.write(INDEX)
        q.start()
        for i in range(3):
            request(q.http_port, "GET", "/?file=%d" % i, host="www.test")

        def lines():
            with open(path) as f:
                return [json.loads(l) for l in f if l.strip()]
        self.assertTrue(wait_until(lambda: len(lines()) >= 4, 3), lines())
        got = lines()
        self.assertEqual(got[0], {"pre": "existing"})
        self.assertEqual([e["target"] for e in got[1:]], ["/?file=%d" % i for i in range(3)])
        self.assertEqual(q.access_log(), [])  # not on stdout as well

    def test_off(self):
        p = self.start(log="off")
        for i in range(3):
            self.assertEqual(request(p.http_port, "GET", "/?off=%d" % i, host="www.test").status, 200)
        self.assertEqual(p.stop(), 0)
        self.assertEqual(p.access_log(), [])


if __name__ == "__main__":
    unittest.main()
