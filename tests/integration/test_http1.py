"""HTTP/1.1 on the wire: keep-alive, pipelining, HTTP/1.0, chunked bodies, 100-continue, HEAD,
Date/Server, protocol errors (400/408/413/417/431), request smuggling, timeouts and back-pressure
towards a slow reader."""
import email.utils
import os
import socket
import time
import unittest

from harness import Closed, Portico, RawConn, Upstream, request

MAX_BODY = 64 * 1024
BIG_FILE = 128 << 20  # served to a client that does not read: must not end up in Portico's memory

CONF = """\
[server]
workers = 1
listen = ["127.0.0.1:0"]
max_header_bytes = 4096
max_body_bytes = %d
header_timeout_ms = 500
idle_timeout_ms = 1500
access_log = "off"

[cache]
memory = "32MiB"
max_object = "1MiB"

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
name = "up"
hosts = ["up.test"]
origin = "up"
default_ttl_s = 0
""" % MAX_BODY

A_TXT = b"alpha file\n"
B_TXT = b"bravo file, a little longer\n"


class Http1Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream = Upstream()
        cls.portico = Portico(CONF.replace("@UPSTREAM@", cls.upstream.endpoint), start=False)
        www = os.path.join(cls.portico.tmpdir, "www")
        os.makedirs(www)
        for name, data in (("index.html", b"<h1>index</h1>\n"), ("a.txt", A_TXT), ("b.txt", B_TXT)):
            with open(os.path.join(www, name), "wb") as f:
                f.write(data)
        with open(os.path.join(www, "big.bin"), "wb") as f:
            f.truncate(BIG_FILE)  # sparse: costs no disk
        cls.portico.start()
        cls.port = cls.portico.http_port

    @classmethod
    def tearDownClass(cls):
        cls.portico.close()
        cls.upstream.close()

    def conn(self, **kw):
        c = RawConn(self.port, **kw)
        self.addCleanup(c.close)
        return c

    def get(self, target, host="www.test", extra=""):
        return ("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (target, host, extra)).encode()

    def assert_alive(self):
        """Portico still answers (after hostile input)."""
        r = request(self.port, "GET", "/a.txt", host="www.test")
        self.assertEqual(r.status, 200)

    _case = 0

    def assert_nothing_forwarded(self, paths):
        """None of `paths` may have reached the upstream."""
        leaked = [q.target for q in self.upstream.wait_requests(0, 0) if q.path in paths]
        self.assertEqual(leaked, [], "refused requests reached the upstream")

    def assert_error_and_close(self, data, statuses=(400,), smuggled=True):
        """Sends data; expects one error response with a status in statuses, then a close (no
        second response: a smuggled request after it must never be answered or forwarded).
        The request path "/x" is made unique per call, so a late leak is blamed on its case."""
        Http1Test._case += 1
        own, smuggled_path = "/x%d" % self._case, "/x%d-smuggled" % self._case
        data = data.replace(b" /x ", (" %s " % own).encode(), 1)
        c = self.conn()
        if smuggled:
            data += self.get(smuggled_path, host="up.test")
        c.send(data)
        r = c.read_response()
        self.assertIn(r.status, statuses, r)
        self.assertTrue(c.is_closed(3), "connection left open after %d" % r.status)
        self.assert_alive()
        self.assert_nothing_forwarded({own, smuggled_path})
        return r

    # ---- basics ----
    def test_date_and_server_headers(self):
        r = request(self.port, "GET", "/a.txt", host="www.test")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, A_TXT)
        self.assertEqual(r.header("Server"), "portico")
        date = email.utils.parsedate_to_datetime(r.header("Date"))
        self.assertLess(abs(date.timestamp() - time.time()), 60)
        r404 = request(self.port, "GET", "/", host="unknown.test")
        self.assertEqual(r404.status, 404)
        self.assertEqual(r404.header("Server"), "portico")
        self.assertIsNotNone(r404.header("Date"))

    def test_keep_alive_by_default(self):
        c = self.conn()
        for target, body in (("/a.txt", A_TXT), ("/b.txt", B_TXT), ("/a.txt", A_TXT)):
            c.send(self.get(target))
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, body))
        self.assertFalse(c.is_closed(0.3))

    def test_pipelined_requests_answered_in_order(self):
        c = self.conn()
        # The first goes to a slow upstream, the others are local files: order must still hold.
        c.send(self.get("/slow?delay_ms=300", host="up.test") + self.get("/a.txt") + self.get("/b.txt")
               + self.get("/nope.txt") + self.get("/a.txt"))
        r1 = c.read_response()
        self.assertEqual(r1.status, 200)
        self.assertEqual(r1.json()["target"], "/slow?delay_ms=300")
        self.assertEqual(c.read_response().body, A_TXT)
        self.assertEqual(c.read_response().body, B_TXT)
        self.assertEqual(c.read_response().status, 404)
        self.assertEqual(c.read_response().body, A_TXT)

    def test_pipelined_after_a_body(self):
        c = self.conn()
        body = b"0123456789"
        c.send(b"POST /post HTTP/1.1\r\nHost: up.test\r\nContent-Length: 10\r\n\r\n" + body + self.get("/a.txt"))
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["body"], body.decode())
        self.assertEqual(c.read_response().body, A_TXT)

    def test_http10_closes(self):
        c = self.conn()
        c.send(b"GET /a.txt HTTP/1.0\r\nHost: www.test\r\n\r\n")
        r = c.read_response()
        self.assertEqual((r.status, r.body), (200, A_TXT))
        self.assertTrue(c.is_closed(3))

    def test_http10_without_host_is_accepted(self):
        c = self.conn()
        c.send(b"GET /a.txt HTTP/1.0\r\n\r\n")
        r = c.read_response()
        self.assertNotEqual(r.status, 400)  # no Host in 1.0 is legal (-> unknown site, 404)

    def test_http10_keep_alive(self):
        c = self.conn()
        for _ in range(2):
            c.send(b"GET /a.txt HTTP/1.0\r\nHost: www.test\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, A_TXT))
            self.assertEqual(r.header("Connection", "").lower(), "keep-alive")
        self.assertFalse(c.is_closed(0.3))

    def test_connection_close(self):
        c = self.conn()
        c.send(self.get("/a.txt", extra="Connection: close\r\n"))
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertIn("close", r.header("Connection", "").lower())
        self.assertTrue(c.is_closed(3))

    def test_head(self):
        c = self.conn()
        c.send(b"HEAD /b.txt HTTP/1.1\r\nHost: www.test\r\n\r\n")
        r = c.read_response(head_only=True)
        self.assertEqual(r.status, 200)
        self.assertEqual(int(r.header("Content-Length")), len(B_TXT))
        # No body bytes may follow: the next response must parse right after the head.
        c.send(self.get("/a.txt"))
        r2 = c.read_response()
        self.assertEqual((r2.status, r2.body), (200, A_TXT))

    # ---- request bodies ----
    def test_chunked_request_body(self):
        c = self.conn()
        c.send(b"POST /chunked HTTP/1.1\r\nHost: up.test\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["body"], "hello world")
        c.send(self.get("/a.txt"))  # framing was right: the connection is still in sync
        self.assertEqual(c.read_response().body, A_TXT)

    def test_chunked_is_case_insensitive(self):
        c = self.conn()
        c.send(b"POST /chunked HTTP/1.1\r\nHost: up.test\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["body"], "abc")

    def test_expect_100_continue(self):
        c = self.conn()
        c.send(b"POST /continue HTTP/1.1\r\nHost: up.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = c.read_response(timeout=3)  # must come before we send the body
        self.assertEqual(interim.status, 100)
        self.assertEqual(interim.version, "HTTP/1.1")
        c.send(b"hello")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["body"], "hello")

    def test_expect_100_continue_too_large_is_refused_first(self):
        c = self.conn()
        c.send(b"POST /continue HTTP/1.1\r\nHost: up.test\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
               % (MAX_BODY * 4))
        r = c.read_response(timeout=3)
        self.assertEqual(r.status, 413)

    def test_expect_other_is_417(self):
        c = self.conn()
        c.send(b"POST /x HTTP/1.1\r\nHost: up.test\r\nContent-Length: 0\r\nExpect: something-else\r\n\r\n")
        self.assertEqual(c.read_response().status, 417)

    # ---- protocol errors ----
    def test_malformed_head_is_400(self):
        self.assert_error_and_close(b"GARBAGE\r\n\r\n", smuggled=False)
        self.assert_error_and_close(b"GET / HTTP/1.1\r\nHost: www.test\r\nBad Header Line\r\n\r\n", smuggled=False)
        self.assert_error_and_close(b"GET / HTTP/9.9\r\nHost: www.test\r\n\r\n", statuses=(400, 505), smuggled=False)

    def test_missing_host_is_400(self):
        self.assert_error_and_close(b"GET /a.txt HTTP/1.1\r\n\r\n", smuggled=False)

    def test_head_too_large_is_431(self):
        big = "X-Big: " + "a" * 5000 + "\r\n"
        self.assert_error_and_close(self.get("/a.txt", extra=big), statuses=(431,), smuggled=False)

    def test_request_line_too_long(self):
        self.assert_error_and_close(self.get("/" + "a" * 5000), statuses=(414, 431), smuggled=False)

    def test_body_too_large_declared_is_413_before_the_body(self):
        c = self.conn()
        t0 = time.monotonic()
        c.send(b"POST /x-413 HTTP/1.1\r\nHost: up.test\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1))
        r = c.read_response(timeout=3)  # no body sent at all: the answer cannot wait for it
        self.assertEqual(r.status, 413)
        self.assertLess(time.monotonic() - t0, 3)
        self.assertTrue(c.is_closed(3))
        self.assert_nothing_forwarded({"/x-413"})

    def test_body_too_large_chunked_is_413(self):
        c = self.conn()
        c.send(b"POST /big-chunked HTTP/1.1\r\nHost: up.test\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (8192, b"z" * 8192)
        try:
            for _ in range(MAX_BODY // 8192 + 4):
                c.send(chunk)
        except OSError:
            pass  # Portico may close once it has answered
        r = c.read_response()
        self.assertEqual(r.status, 413)
        self.assertTrue(c.is_closed(3))
        self.assert_alive()

    # ---- request smuggling: ambiguous framing is refused and the connection closed ----
    def test_content_length_and_transfer_encoding(self):
        self.assert_error_and_close(b"POST /x HTTP/1.1\r\nHost: up.test\r\nContent-Length: 5\r\n"
                                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        self.assert_error_and_close(b"POST /x HTTP/1.1\r\nHost: up.test\r\nTransfer-Encoding: chunked\r\n"
                                    b"Content-Length: 5\r\n\r\n0\r\n\r\n")

    def test_duplicate_content_length(self):
        self.assert_error_and_close(b"POST /x HTTP/1.1\r\nHost: up.test\r\nContent-Length: 5\r\n"
                                    b"Content-Length: 6\r\n\r\nhello!")
        self.assert_error_and_close(b"POST /x HTTP/1.1\r\nHost: up.test\r\nContent-Length: 5\r\n"
                                    b"Content-Length: 5\r\n\r\nhello")
        self.assert_error_and_close(b"POST /x HTTP/1.1\r\nHost: up.test\r\nContent-Length: 5, 5\r\n\r\nhello")

    def test_invalid_content_length(self):
        for value in (b"abc", b"-1", b"+5", b"5 5", b"0x5", b"99999999999999999999999"):
            with self.subTest(value=value):
                self.assert_error_and_close(b"POST /x HTTP/1.1\r\nHost: up.test\r\nContent-Length: " + value
                                            + b"\r\n\r\nhello", statuses=(400, 413))

    def test_bad_transfer_encodings(self):
        for te in (b"chunked, identity", b"identity", b"xchunked", b"chunked, chunked", b"gzip, chunked",
                   b"chunkedx"):
            with self.subTest(te=te):
                self.assert_error_and_close(b"POST /x HTTP/1.1\r\nHost: up.test\r\nTransfer-Encoding: " + te
                                            + b"\r\n\r\n0\r\n\r\n", statuses=(400, 501))

    def test_transfer_encoding_header_tricks(self):
        cases = [
            b"Transfer-Encoding : chunked\r\n",          # whitespace before the colon
            b"Transfer-Encoding:\r\n chunked\r\n",       # obsolete line folding
            b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
        ]
        for h in cases:
            with self.subTest(h=h):
                self.assert_error_and_close(b"POST /x HTTP/1.1\r\nHost: up.test\r\n" + h + b"\r\n0\r\n\r\n",
                                            statuses=(400, 501))

    def test_transfer_encoding_in_http10(self):
        # RFC 9112 6.1: framing to be treated as faulty; the connection must close after this
        # message either way, so whatever follows it is never processed.
        c = self.conn()
        c.send(b"POST /t10 HTTP/1.0\r\nHost: up.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
               + self.get("/t10-smuggled", host="up.test"))
        r = c.read_response()
        self.assertIn(r.status, (200, 400, 501))
        self.assertTrue(c.is_closed(3))
        self.assert_nothing_forwarded({"/t10-smuggled"})

    def test_bad_chunk_sizes(self):
        for body in (b"zz\r\nhello\r\n0\r\n\r\n", b"-5\r\nhello\r\n0\r\n\r\n",
                     b"ffffffffffffffffffff\r\nx\r\n0\r\n\r\n", b"5\r\nhelloXX0\r\n\r\n"):
            with self.subTest(body=body):
                self.assert_error_and_close(b"POST /x HTTP/1.1\r\nHost: up.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                                            + body, statuses=(400, 413))

    # ---- timeouts ----
    def test_header_timeout_is_408(self):
        c = self.conn()
        t0 = time.monotonic()
        c.send(b"GET /a.txt HTTP/1.1\r\nHost: www.test\r\n")  # never finished
        r = c.read_response(timeout=5)
        self.assertEqual(r.status, 408)
        self.assertLess(time.monotonic() - t0, 4)
        self.assertTrue(c.is_closed(3))

    def test_silent_connection_is_closed(self):
        c = self.conn()
        t0 = time.monotonic()
        data = c.read_until_close(5)  # nothing sent at all: closed (a 408 is allowed)
        self.assertTrue(data == b"" or data.startswith(b"HTTP/1.1 408"), data[:100])
        self.assertLess(time.monotonic() - t0, 5)

    def test_slow_trickled_head_is_cut_off(self):
        # A head sent a byte at a time never completes within header_timeout_ms: trickling
        # must not reset the timer.
        c = self.conn()
        t0 = time.monotonic()
        head = b"GET /a.txt HTTP/1.1\r\nHost: www.test\r\nX-Slow: " + b"s" * 100
        got = None
        for i in range(len(head)):
            try:
                c.send(head[i:i + 1])
            except OSError:
                break
            time.sleep(0.05)
            if time.monotonic() - t0 > 4:
                break
        try:
            got = c.read_response(timeout=1)
        except (Closed, socket.timeout):
            pass
        self.assertLess(time.monotonic() - t0, 4.5, "trickled head kept the connection open")
        if got is not None:
            self.assertEqual(got.status, 408)

    def test_idle_keep_alive_connection_is_closed(self):
        c = self.conn()
        c.send(self.get("/a.txt"))
        self.assertEqual(c.read_response().status, 200)
        t0 = time.monotonic()
        # Not before idle_timeout_ms (1.5 s): the header timeout (0.5 s) is not the idle timeout.
        self.assertFalse(c.is_closed(0.9), "idle connection closed after %.2f s" % (time.monotonic() - t0))
        self.assertTrue(c.is_closed(5), "idle connection still open")
        self.assertLess(time.monotonic() - t0, 6)

    def test_header_timeout_after_an_idle_keep_alive_pause(self):
        # Idle deadline (1.5 s) first, then a head that never completes: the earlier header
        # deadline (0.5 s from its first byte) wins, not the idle one.
        c = self.conn()
        c.send(self.get("/a.txt"))
        self.assertEqual(c.read_response().status, 200)
        time.sleep(0.3)
        t0 = time.monotonic()
        c.send(b"GET /a.txt HTTP/1.1\r\nHost: www.test\r\n")  # never finished
        r = c.read_response(timeout=5)
        self.assertEqual(r.status, 408)
        self.assertLess(time.monotonic() - t0, 1.2, "the idle deadline was used, not the header one")
        self.assertTrue(c.is_closed(3))

    # ---- back-pressure ----
    def test_slow_reader_does_not_grow_memory(self):
        base = self.portico.rss_kib()
        c = self.conn(rcvbuf=16384, timeout=10)
        c.send(self.get("/big.bin"))
        peak = base
        for _ in range(10):  # 0.8 s of not reading (less than idle_timeout_ms: no cut-off)
            time.sleep(0.08)
            peak = max(peak, self.portico.rss_kib())
        self.assertLess(peak - base, 48 * 1024, "RSS grew from %d KiB to %d KiB" % (base, peak))
        # Now read it all: the stream is complete and correct.
        r = c.read_response(timeout=30)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), BIG_FILE)
        self.assertEqual(r.body.count(0), BIG_FILE)

    def test_large_upstream_body_to_slow_reader(self):
        base = self.portico.rss_kib()
        c = self.conn(rcvbuf=16384, timeout=10)
        c.send(self.get("/stream?size=%d" % (64 << 20), host="up.test"))
        peak = base
        for _ in range(10):
            time.sleep(0.08)
            peak = max(peak, self.portico.rss_kib())
        self.assertLess(peak - base, 48 * 1024, "RSS grew from %d KiB to %d KiB" % (base, peak))
        r = c.read_response(timeout=30)
        self.assertEqual(len(r.body), 64 << 20)


if __name__ == "__main__":
    unittest.main()
