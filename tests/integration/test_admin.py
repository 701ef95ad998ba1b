"""The admin listener: /healthz, and /metrics as Prometheus text whose counters move exactly as
the traffic that was sent."""
import os
import time
import unittest

from harness import Closed, Portico, RawConn, Upstream, metric, parse_metrics, request, scrape, wait_until

CONF = """\
[server]
workers = 1
listen = ["127.0.0.1:0"]
access_log = "off"

[admin]
listen = "127.0.0.1:0"

[origins.files]
type = "dir"
root = "@TMP@/www"

[origins.up]
type = "http"
endpoint = "@UPSTREAM@"
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
  mock = { status = 200, body = 'ok' }
"""


class AdminTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream = Upstream()
        cls.portico = Portico(CONF.replace("@UPSTREAM@", cls.upstream.endpoint), start=False)
        www = os.path.join(cls.portico.tmpdir, "www")
        os.makedirs(www)
        with open(os.path.join(www, "index.html"), "wb") as f:
            f.write(b"hello metrics\n")
        cls.portico.start()
        cls.port = cls.portico.http_port
        cls.admin = cls.portico.admin_port

    @classmethod
    def tearDownClass(cls):
        cls.portico.close()
        cls.upstream.close()

    @staticmethod
    def requests_total(samples, **labels):
        return metric(samples, "portico_requests_total", **labels)

    def test_healthz(self):
        r = request(self.admin, "GET", "/healthz", host="127.0.0.1")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body.strip(), b"ok")

    def test_unknown_admin_path_is_404(self):
        self.assertEqual(request(self.admin, "GET", "/nope", host="127.0.0.1").status, 404)

    def test_admin_is_not_on_the_traffic_listener(self):
        r = request(self.port, "GET", "/metrics", host="127.0.0.1")
        self.assertEqual(r.status, 404)
        self.assertNotIn(b"portico_requests_total", r.body)

    def test_metrics_format_and_types(self):
        request(self.port, "GET", "/", host="up.test")  # at least one origin observation
        r = request(self.admin, "GET", "/metrics", host="127.0.0.1")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type", "").startswith("text/plain"), r.header("Content-Type"))
        samples, types = parse_metrics(r.body.decode("utf-8"))
        self.assertEqual(types.get("portico_requests_total"), "counter")
        self.assertEqual(types.get("portico_bytes_received_total"), "counter")
        self.assertEqual(types.get("portico_bytes_sent_total"), "counter")
        self.assertEqual(types.get("portico_open_connections"), "gauge")
        self.assertEqual(types.get("portico_origin_duration_seconds"), "histogram")
        for name, labels, _ in samples:
            if name == "portico_requests_total":
                self.assertEqual(set(labels), {"kind", "name", "stage", "code"}, labels)
                self.assertRegex(labels["code"], r"^[1-5]xx$")

    def test_request_counters_move_exactly(self):
        before = scrape(self.admin)
        for _ in range(3):
            self.assertEqual(request(self.port, "GET", "/", host="www.test").status, 200)
        self.assertEqual(request(self.port, "GET", "/missing", host="www.test").status, 404)
        self.assertEqual(request(self.port, "GET", "/prod/status", host="api.test").status, 200)
        self.assertEqual(request(self.port, "GET", "/prod/nope", host="api.test").status, 403)
        api_4xx = dict(kind="api", name="shop", stage="prod", code="4xx")

        def counted():
            s = scrape(self.admin)
            return s if self.requests_total(s, **api_4xx) >= self.requests_total(before, **api_4xx) + 1 else None
        after = wait_until(counted, 3)
        self.assertTrue(after, "api 4xx never counted")
        delta = lambda **l: self.requests_total(after, **l) - self.requests_total(before, **l)
        self.assertEqual(delta(kind="site", name="www", stage="", code="2xx"), 3)
        self.assertEqual(delta(kind="site", name="www", stage="", code="4xx"), 1)
        self.assertEqual(delta(kind="api", name="shop", stage="prod", code="2xx"), 1)
        self.assertEqual(delta(kind="api", name="shop", stage="prod", code="4xx"), 1)

    def test_byte_counters(self):
        before = scrape(self.admin)
        body = b"x" * 5000
        r = request(self.port, "POST", "/bytes", host="up.test", body=body)
        self.assertEqual(r.status, 200)

        def moved():
            s = scrape(self.admin)
            rx = metric(s, "portico_bytes_received_total") - metric(before, "portico_bytes_received_total")
            tx = metric(s, "portico_bytes_sent_total") - metric(before, "portico_bytes_sent_total")
            return (rx, tx) if rx >= len(body) and tx >= len(r.body) else None
        self.assertTrue(wait_until(moved, 3), "byte counters did not move by the request/response sizes")

    def test_open_connections_gauge(self):
        base = metric(scrape(self.admin), "portico_open_connections")
        conns = []
        for _ in range(3):
            c = RawConn(self.port)
            c.send(b"GET / HTTP/1.1\r\nHost: www.test\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)
            conns.append(c)
        try:
            self.assertGreaterEqual(metric(scrape(self.admin), "portico_open_connections"), base + 3)
        finally:
            for c in conns:
                c.close()
        self.assertTrue(wait_until(lambda: metric(scrape(self.admin), "portico_open_connections") <= base, 3),
                        "gauge did not come back down after the connections closed")

    def test_origin_duration_histogram(self):
        def count():
            return metric(scrape(self.admin), "portico_origin_duration_seconds_count", origin="up")
        c0 = count()
        self.assertEqual(request(self.port, "GET", "/timed?delay_ms=50", host="up.test").status, 200)
        self.assertTrue(wait_until(lambda: count() >= c0 + 1, 3), "origin duration not observed")
        s = scrape(self.admin)
        buckets = sorted(((float(l["le"]), v) for n, l, v in s
                          if n == "portico_origin_duration_seconds_bucket" and l.get("origin") == "up"),
                         key=lambda b: b[0])
        self.assertTrue(buckets, "no buckets for origin=up")
        self.assertEqual(buckets[-1][0], float("inf"))
        self.assertEqual(buckets[-1][1], metric(s, "portico_origin_duration_seconds_count", origin="up"))
        self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets), "buckets not cumulative")
        self.assertGreaterEqual(metric(s, "portico_origin_duration_seconds_sum", origin="up"), 0.05)

    def test_admin_survives_garbage(self):
        with RawConn(self.admin) as c:
            c.send(b"\x00\x01garbage\r\n\r\n")
            try:
                r = c.read_response(timeout=3)
            except Closed:
                r = None  # a plain close is also fine
            if r is not None:
                self.assertEqual(r.status, 400)
        self.assertEqual(request(self.admin, "GET", "/healthz", host="127.0.0.1").status, 200)

    def test_repeated_scrapes(self):
        t0 = time.monotonic()
        for _ in range(20):
            self.assertEqual(request(self.admin, "GET", "/metrics", host="127.0.0.1").status, 200)
        self.assertLess(time.monotonic() - t0, 5)


if __name__ == "__main__":
    unittest.main()
