"""Signals: SIGHUP reloads the conf (a good one takes effect for new requests while in-flight
ones finish; a bad one is refused and logged with file:line), SIGTERM drains and exits 0."""
import json
import signal
import socket
import threading
import time
import unittest

from harness import Closed, Portico, RawConn, Upstream, metric, request, scrape, wait_until

CONF = """\
[server]
workers = 1
listen = ["127.0.0.1:{http}"]
header_timeout_ms = 2000
idle_timeout_ms = 10000
drain_timeout_ms = {drain}
access_log = "off"

[admin]
listen = "127.0.0.1:{admin}"

[origins.up]
type = "http"
endpoint = "{upstream}"
timeout_ms = 10000

[[sites]]
name = "slow"
hosts = ["slow.test"]
origin = "up"
default_ttl_s = 0

[[apis]]
name = "svc"
hosts = [{api_hosts}]

  [[apis.stages]]
  name = "prod"

  [[apis.routes]]
  method = "GET"
  path = "/version"
  mock = {{ status = 200, body = '{body}' }}
"""


class Background:
    """A request run on a thread; .result() is the Response (or raises what it raised)."""

    def __init__(self, fn):
        self._out = {}
        self._t = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._t.start()

    def _run(self, fn):
        try:
            self._out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 -- re-raised in result()
            self._out["error"] = e

    def result(self, timeout=10):
        self._t.join(timeout)
        if self._t.is_alive():
            raise AssertionError("background request still running after %.0f s" % timeout)
        if "error" in self._out:
            raise self._out["error"]
        return self._out["value"]


class LifecycleTest(unittest.TestCase):
    def setUp(self):
        self.upstream = Upstream()
        self.addCleanup(self.upstream.close)

    def conf(self, body="v1", http=0, admin=0, drain=5000, api_hosts=('"api.test"',)):
        return CONF.format(http=http, admin=admin, drain=drain, upstream=self.upstream.endpoint, body=body,
                           api_hosts=", ".join(api_hosts))

    def start(self, **kw):
        p = Portico(self.conf(**kw))
        self.addCleanup(p.close)
        return p

    def pinned(self, p, **kw):
        """The conf again, with the ports the running instance got (a reload keeps them)."""
        return self.conf(http=p.http_port, admin=p.admin_port, **kw)

    def version(self, p, host="api.test"):
        r = request(p.http_port, "GET", "/prod/version", host=host)
        return r.body.decode() if r.status == 200 else r.status

    def reloads(self, p, result):
        return metric(scrape(p.admin_port), "portico_config_reloads_total", result=result)

    # ---- SIGHUP ----
    def test_sighup_applies_a_valid_conf(self):
        p = self.start()
        self.assertEqual(self.version(p), "v1")
        keep = RawConn(p.http_port)
        self.addCleanup(keep.close)
        keep.send(b"GET /prod/version HTTP/1.1\r\nHost: api.test\r\n\r\n")
        self.assertEqual(keep.read_response().body, b"v1")

        p.write_conf(self.pinned(p, body="v2", api_hosts=('"api.test"', '"new.test"')))
        p.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: self.version(p) == "v2", 5), "reload never took effect")
        self.assertEqual(self.version(p, host="new.test"), "v2")
        # The connection opened before the reload was not dropped.
        keep.send(b"GET /prod/version HTTP/1.1\r\nHost: api.test\r\n\r\n")
        self.assertEqual(keep.read_response().status, 200)
        self.assertEqual(self.reloads(p, "ok"), 1)
        self.assertEqual(self.reloads(p, "error"), 0)
        self.assertEqual(p.errors(), [])
        self.assertEqual(p.stop(), 0)

    def test_sighup_lets_in_flight_requests_finish(self):
        p = self.start()
        bg = Background(lambda: request(p.http_port, "GET", "/inflight?delay_ms=1000&size=20000",
                                        host="slow.test", timeout=10))
        self.assertTrue(self.upstream.wait_requests(1, 5), "request never reached the upstream")
        p.write_conf(self.pinned(p, body="v2"))
        p.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: self.version(p) == "v2", 5))
        r = bg.result()
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), 20000)

    def test_sighup_refuses_an_invalid_conf(self):
        p = self.start()
        self.assertEqual(self.version(p), "v1")
        bad = self.pinned(p, body="v2").replace("drain_timeout_ms", "bogus_key = 1\ndrain_timeout_ms")
        line = bad.splitlines().index("bogus_key = 1") + 1
        p.write_conf(bad)
        mark = len(p.stderr.snapshot())
        p.send_signal(signal.SIGHUP)
        where = "%s:%d" % (p.conf_path, line)
        err = p.stderr.wait_json(lambda o: o.get("level") == "error" and where in json.dumps(o), 5, start=mark)
        self.assertIsNotNone(err, "no JSON error naming %s; stderr:\n%s" % (where, "\n".join(p.stderr.snapshot())))
        self.assertIn("bogus_key", json.dumps(err))
        self.assertTrue(wait_until(lambda: self.reloads(p, "error") == 1, 3))
        self.assertEqual(self.version(p), "v1")  # the old conf keeps serving
        self.assertEqual(self.reloads(p, "ok"), 0)
        self.assertIsNone(p.proc.poll())
        # A good conf afterwards is applied.
        p.write_conf(self.pinned(p, body="v3"))
        p.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: self.version(p) == "v3", 5))
        self.assertEqual(self.reloads(p, "ok"), 1)

    def test_sighup_with_an_unparsable_file(self):
        p = self.start()
        p.write_conf("[server\nthis is not toml\n")
        p.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: self.reloads(p, "error") == 1, 5))
        self.assertEqual(self.version(p), "v1")

    def test_repeated_reloads(self):
        p = self.start()
        for i in range(5):
            p.write_conf(self.pinned(p, body="r%d" % i))
            p.send_signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: self.version(p) == "r%d" % i, 5), "reload %d" % i)
        self.assertEqual(self.reloads(p, "ok"), 5)
        self.assertEqual(p.stop(), 0)

    # ---- SIGTERM ----
    def test_sigterm_drains_in_flight_requests(self):
        p = self.start()
        port = p.http_port
        bg = Background(lambda: request(port, "GET", "/drain?delay_ms=800&size=50000", host="slow.test",
                                        timeout=10))
        self.assertTrue(self.upstream.wait_requests(1, 5), "request never reached the upstream")
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)

        def refused():
            try:
                with RawConn(port, timeout=1) as c:
                    c.send(b"GET /prod/version HTTP/1.1\r\nHost: api.test\r\n\r\n")
                    c.read_response(timeout=1)
                    return False  # still answering new connections
            except (ConnectionRefusedError, Closed, ConnectionResetError, BrokenPipeError):
                return True
            except socket.timeout:
                return False
        self.assertTrue(wait_until(refused, 2), "new connections still served after SIGTERM")
        r = bg.result()
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), 50000)
        self.assertEqual(p.wait_exit(timeout=5), 0)  # one SIGTERM only
        self.assertLess(time.monotonic() - t0, 5)

    def test_sigterm_drain_is_bounded(self):
        p = self.start(drain=300)
        bg = Background(lambda: request(p.http_port, "GET", "/forever?delay_ms=6000", host="slow.test", timeout=10))
        self.assertTrue(self.upstream.wait_requests(1, 5))
        t0 = time.monotonic()
        self.assertEqual(p.stop(timeout=5), 0)
        self.assertLess(time.monotonic() - t0, 3)
        try:
            r = bg.result()
        except Exception:  # noqa: BLE001 -- the connection may simply be closed
            return
        self.assertGreaterEqual(r.status, 500)

    def test_sigterm_with_idle_connections(self):
        p = self.start()
        idle = RawConn(p.http_port)
        self.addCleanup(idle.close)
        idle.send(b"GET /prod/version HTTP/1.1\r\nHost: api.test\r\n\r\n")
        self.assertEqual(idle.read_response().status, 200)
        t0 = time.monotonic()
        self.assertEqual(p.stop(timeout=5), 0)
        self.assertLess(time.monotonic() - t0, 2)
        self.assertTrue(idle.is_closed(2))


if __name__ == "__main__":
    unittest.main()
