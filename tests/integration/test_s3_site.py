"""The `s3` origin: a static site served from an S3-compatible bucket (the CloudFront in front of
S3 analog), black box through the real binary against a real S3 API server (npm s3rver, see
s3server.py) and, where the exact bytes on the wire matter, against the scripted upstream.

Covered, one test (or a few) per point:
  1. index documents ("/" and "/docs/") with the object's Content-Type, ETag, Last-Modified;
     the second GET is a Hit;
  2. error pages for S3's 404 (cached for the page's ttl_s), and a short plain-text 404 (never
     S3's XML error document) where the site has none;
  3. credentials S3 refuses (403): a plain 403, nothing of S3's XML or wording;
  4. S3's own fields (x-amz-request-id, x-amz-id-2, x-amz-*) never reach the client, user
     metadata (x-amz-meta-*) only with expose_metadata = true;
  5. If-None-Match / If-Modified-Since -> 304, on a miss and on a hit;
  6. ranges answered from a stored object (206, suffix range, 416);
  7. an object larger than max_object: streamed intact and not stored, a range of it fetched as
     a range from the store, and a slow client does not make Portico buffer it;
  8. gzip / br compression of compressible types (Vary, weak ETag, stored variants), and what
     is never compressed (q=0, already encoded, images, small bodies);
  9. stale-if-error when the store is down, 502/504 for what was never stored;
 10. the shape of the SigV4 request (path-style, signed headers, the signature itself, region,
     no query string);
 11. `portico -t` refuses an s3 origin whose credentials variable is unset.

s3rver 3.7.1 checks a SigV4 request's access key but not its signature, so point 3 uses an
unknown access key (InvalidAccessKeyId) together with a wrong secret; point 10 verifies the
signature itself on the scripted upstream. Each test uses its own object keys. Sleeps are only
where real time must pass (an error page's ttl_s, a 1 s max-age, the slow client's pacing).
"""
import datetime
import email.utils
import gzip
import hashlib
import hmac
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import Portico, RawConn, Upstream, request, run_portico, wait_until
from s3server import S3rver

KEY_ENV, SECRET_ENV = "PORTICO_TEST_S3_KEY", "PORTICO_TEST_S3_SECRET"
HIT, MISS = "Hit from portico", "Miss from portico"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MIB = 1 << 20

SITE_CONF = """\
[server]
workers = 1
listen = ["127.0.0.1:0"]
access_log = "off"

[cache]
memory = "64MiB"
max_object = "1MiB"

[origins.bucket]
type = "s3"
endpoint = "@S3@"
bucket = "site"
region = "us-east-1"
access_key_env = "PORTICO_TEST_S3_KEY"
secret_key_env = "PORTICO_TEST_S3_SECRET"

[origins.bucket_meta]
type = "s3"
endpoint = "@S3@"
bucket = "site"
region = "us-east-1"
access_key_env = "PORTICO_TEST_S3_KEY"
secret_key_env = "PORTICO_TEST_S3_SECRET"
expose_metadata = true

[origins.bucket_refused]
type = "s3"
endpoint = "@S3@"
bucket = "site"
region = "us-east-1"
access_key_env = "PORTICO_TEST_S3_BAD_KEY"
secret_key_env = "PORTICO_TEST_S3_BAD_SECRET"

[[sites]]
name = "www"
hosts = ["www.test"]
origin = "bucket"
index = "index.html"
compress = true
error_pages = [ { status = 404, path = "/404.html", ttl_s = 3 }, { status = 403, path = "/403.html", ttl_s = 2 } ]

[[sites]]
name = "plain"
hosts = ["plain.test"]
origin = "bucket"
compress = true

[[sites]]
name = "meta"
hosts = ["meta.test"]
origin = "bucket_meta"

[[sites]]
name = "refused"
hosts = ["refused.test"]
origin = "bucket_refused"
error_pages = [ { status = 403, path = "/403.html", ttl_s = 2 } ]

[[sites]]
name = "refused-plain"
hosts = ["refused-plain.test"]
origin = "bucket_refused"
"""

NOT_FOUND_PAGE = b"<!doctype html><h1>custom 404: no such page</h1>\n"
FORBIDDEN_PAGE = b"<!doctype html><h1>custom 403: forbidden</h1>\n"
S3_WORDING = (b"<?xml", b"<Error>", b"NoSuchKey", b"AccessDenied", b"InvalidAccessKeyId", b"Signature",
              b"RequestId", b"S3RVER")


def css_text(n):
    """n bytes of plausible, compressible, deterministic CSS."""
    rnd = random.Random(n)
    out, i = [], 0
    while sum(map(len, out)) < n:
        out.append(".c%d { color: #%06x; margin: %dpx %dpx }\n" % (i, rnd.randrange(1 << 24), i % 17, i % 5))
        i += 1
    return "".join(out).encode()[:n]


def s3_env(key="S3RVER", secret="S3RVER"):
    return {KEY_ENV: key, SECRET_ENV: secret,
            "PORTICO_TEST_S3_BAD_KEY": "NOSUCHKEYID", "PORTICO_TEST_S3_BAD_SECRET": "wrong-secret"}


def header_names(resp):
    return [k.lower() for k, _ in resp.headers]


class S3SiteTest(unittest.TestCase):
    """Points 1-8 against one s3rver and one Portico."""

    @classmethod
    def setUpClass(cls):
        cls.s3 = S3rver()
        try:
            cls.etags = {}
            cls.objects = {}
            cls.put("index.html", b"<!doctype html><h1>home</h1>\n", "text/html; charset=utf-8")
            cls.put("docs/index.html", b"<!doctype html><h1>docs</h1>\n", "text/html")
            cls.put("404.html", NOT_FOUND_PAGE, "text/html")
            cls.put("403.html", FORBIDDEN_PAGE, "text/html")
            cls.portico = Portico(SITE_CONF.replace("@S3@", cls.s3.endpoint), env=s3_env())
        except BaseException:
            cls.s3.close()
            raise
        cls.port = cls.portico.http_port

    @classmethod
    def tearDownClass(cls):
        cls.portico.close()
        cls.s3.close()

    @classmethod
    def put(cls, key, data, content_type="application/octet-stream", **kw):
        answer = cls.s3.put(key, data, content_type=content_type, **kw)
        cls.etags[key] = answer.get("etag")
        cls.objects[key] = data
        return answer

    def get(self, target, host="www.test", **kw):
        kw.setdefault("timeout", 10.0)
        return request(self.port, "GET", target, host=host, **kw)

    def assertCache(self, resp, value):
        self.assertEqual(resp.header("X-Cache"), value, resp)

    def assertNoS3Wording(self, resp):
        for word in S3_WORDING:
            self.assertNotIn(word.lower(), resp.body.lower(), resp)
        self.assertNotIn("xml", resp.header("Content-Type", "").lower(), resp)

    # ---- 1. index documents ----
    def test_index_documents(self):
        for target, key, ctype in (("/", "index.html", "text/html; charset=utf-8"),
                                   ("/docs/", "docs/index.html", "text/html")):
            with self.subTest(target=target):
                r = self.get(target)
                self.assertEqual((r.status, r.body), (200, self.objects[key]), r)
                self.assertEqual(r.header("Content-Type"), ctype)
                self.assertEqual(r.header("ETag"), self.etags[key])
                self.assertIsNotNone(email.utils.parsedate_to_datetime(r.header("Last-Modified")))
                self.assertCache(r, MISS)
                again = self.get(target)
                self.assertEqual((again.status, again.body), (200, self.objects[key]))
                self.assertCache(again, HIT)
                self.assertEqual(again.header("ETag"), self.etags[key])

    # ---- 2. error pages ----
    def test_error_page_for_missing_object_is_served_and_cached_for_its_ttl(self):
        first = self.get("/missing-page.html")
        t0 = time.monotonic()
        self.assertEqual((first.status, first.body), (404, NOT_FOUND_PAGE), first)
        self.assertNoS3Wording(first)
        second = self.get("/missing-page.html")
        self.assertEqual((second.status, second.body), (404, NOT_FOUND_PAGE))
        self.assertCache(second, HIT)
        # The object appears: the stored error page still answers until ttl_s = 3 has passed
        # (ages count whole seconds, so 1 s after the fill the entry is at most 2 s old).
        self.put("missing-page.html", b"now it exists\n", "text/plain")
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
        self.assertEqual(self.get("/missing-page.html").status, 404)

        def object_served():
            resp = self.get("/missing-page.html")
            return resp if resp.status == 200 else None
        r = wait_until(object_served, 4.0, interval=0.2)
        self.assertIsNotNone(r, "the error page was still served %.1f s after it was stored"
                             % (time.monotonic() - t0))
        self.assertGreaterEqual(time.monotonic() - t0, 1.5)
        self.assertEqual(r.body, b"now it exists\n")

    def test_missing_object_without_error_page_is_plain_text(self):
        r = self.get("/no-such-object.txt", host="plain.test")
        self.assertEqual(r.status, 404, r)
        self.assertLess(len(r.body), 200, r)
        self.assertTrue(r.header("Content-Type", "").startswith("text/plain"), r)
        self.assertNoS3Wording(r)

    # ---- 3. credentials S3 refuses ----
    def test_refused_credentials_give_a_plain_403(self):
        for host, target in (("refused-plain.test", "/index.html"), ("refused.test", "/index.html"),
                             ("refused.test", "/")):
            with self.subTest(host=host, target=target):
                r = self.get(target, host=host)
                self.assertEqual(r.status, 403, r)
                self.assertNoS3Wording(r)
                # The site's 403 page comes from the same (refusing) origin: when it cannot be
                # had, the answer is a line of text.
                if r.body != FORBIDDEN_PAGE:
                    self.assertLess(len(r.body), 200, r)
                    self.assertTrue(r.header("Content-Type", "").startswith("text/plain"), r)

    # ---- 4. metadata ----
    def test_user_metadata_is_hidden_by_default(self):
        self.put("meta-hidden.txt", b"with metadata\n", "text/plain", metadata={"author": "bob"})
        r = self.get("/meta-hidden.txt")
        self.assertEqual((r.status, r.body), (200, b"with metadata\n"))
        names = header_names(r)
        self.assertFalse([n for n in names if n.startswith("x-amz-")], r.headers)

    def test_user_metadata_is_passed_with_expose_metadata(self):
        self.put("meta-shown.txt", b"with metadata\n", "text/plain", metadata={"author": "bob"})
        r = self.get("/meta-shown.txt", host="meta.test")
        self.assertEqual((r.status, r.body), (200, b"with metadata\n"))
        self.assertEqual(r.header("x-amz-meta-author"), "bob", r.headers)
        self.assertNotIn("x-amz-request-id", header_names(r))
        self.assertNotIn("x-amz-id-2", header_names(r))

    # ---- 5. conditional requests ----
    def test_if_none_match_on_miss_and_hit(self):
        self.put("cond-inm.txt", b"conditional by etag\n", "text/plain")
        etag = self.etags["cond-inm.txt"]
        r = self.get("/cond-inm.txt", headers={"If-None-Match": etag})
        self.assertEqual((r.status, r.body), (304, b""), r)
        self.assertEqual(r.header("ETag"), etag)
        r = self.get("/cond-inm.txt", headers={"If-None-Match": etag})
        self.assertEqual(r.status, 304, r)
        self.assertCache(r, HIT)
        r = self.get("/cond-inm.txt", headers={"If-None-Match": '"other"'})
        self.assertEqual((r.status, r.body), (200, b"conditional by etag\n"))

    def test_if_modified_since_on_miss_and_hit(self):
        self.put("cond-ims.txt", b"conditional by date\n", "text/plain")
        direct = request(self.s3.port, "GET", "/site/cond-ims.txt", host="127.0.0.1")
        last_modified = direct.header("Last-Modified")
        self.assertTrue(last_modified, direct)
        r = self.get("/cond-ims.txt", headers={"If-Modified-Since": last_modified})
        self.assertEqual((r.status, r.body), (304, b""), r)
        r = self.get("/cond-ims.txt", headers={"If-Modified-Since": last_modified})
        self.assertEqual(r.status, 304, r)
        self.assertCache(r, HIT)
        r = self.get("/cond-ims.txt", headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
        self.assertEqual((r.status, r.body), (200, b"conditional by date\n"))

    # ---- 6. ranges of a stored object ----
    def test_ranges_of_a_stored_object(self):
        data = os.urandom(4096)
        self.put("range.bin", data)
        self.assertEqual(self.get("/range.bin").body, data)
        self.assertCache(self.get("/range.bin"), HIT)
        r = self.get("/range.bin", headers={"Range": "bytes=0-99"})
        self.assertEqual((r.status, r.body), (206, data[:100]), r)
        self.assertEqual(r.header("Content-Range"), "bytes 0-99/4096")
        self.assertCache(r, HIT)
        r = self.get("/range.bin", headers={"Range": "bytes=-10"})
        self.assertEqual((r.status, r.body), (206, data[-10:]), r)
        self.assertEqual(r.header("Content-Range"), "bytes 4086-4095/4096")
        r = self.get("/range.bin", headers={"Range": "bytes=5000-6000"})
        self.assertEqual(r.status, 416, r)
        self.assertEqual(r.header("Content-Range"), "bytes */4096")

    # ---- 7. objects larger than max_object ----
    BIG_SIZE = 20 * MIB

    @classmethod
    def big(cls):
        """The 20 MiB random object, uploaded on first use."""
        if "big.bin" not in cls.objects:
            cls.put("big.bin", os.urandom(cls.BIG_SIZE))
        return cls.objects["big.bin"]

    def test_large_object_streams_intact_and_is_not_stored(self):
        data = self.big()
        for attempt in range(2):
            r = self.get("/big.bin", timeout=30.0)
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), len(data))
            self.assertEqual(hashlib.sha256(r.body).digest(), hashlib.sha256(data).digest())
            self.assertCache(r, MISS)

    def test_range_of_a_large_object_is_fetched_as_a_range(self):
        data = self.big()
        before = len(self.s3.served("big.bin"))
        r = self.get("/big.bin", headers={"Range": "bytes=10485760-10486783"}, timeout=30.0)
        self.assertEqual(r.status, 206, r)
        self.assertEqual(r.body, data[10485760:10486784])
        self.assertEqual(r.header("Content-Range"), "bytes 10485760-10486783/%d" % len(data))
        ranged = wait_until(lambda: [s for s in self.s3.served("big.bin")[before:] if s[0] == 206], 3.0)
        self.assertTrue(ranged, "s3rver never answered a ranged GET: %r" % self.s3.served("big.bin")[before:])
        if os.environ.get("PORTICO_TEST_VERBOSE"):
            print("s3rver answered for big.bin: %r" % self.s3.served("big.bin"))

    def test_slow_client_does_not_buffer_a_large_object(self):
        self.big()
        self.assertEqual(self.get("/").status, 200)  # warm
        baseline = self.portico.rss_kib()
        peak = baseline
        received = 0
        with RawConn(self.port, timeout=10.0, rcvbuf=64 * 1024) as c:
            c.send(b"GET /big.bin HTTP/1.1\r\nHost: www.test\r\n\r\n")
            start = time.monotonic()
            while time.monotonic() - start < 2.0:
                c.sock.settimeout(5.0)
                chunk = c.sock.recv(64 * 1024)
                if not chunk:
                    break
                received += len(chunk)
                peak = max(peak, self.portico.rss_kib())
                ahead = received / MIB - (time.monotonic() - start)  # ~1 MiB/s
                if ahead > 0:
                    time.sleep(ahead)
            peak = max(peak, self.portico.rss_kib())
        self.assertGreater(received, 256 * 1024, "the response did not flow")
        self.assertLess(received, 6 * MIB, "the client was not slow")
        if os.environ.get("PORTICO_TEST_VERBOSE"):
            print("slow client: %d bytes read, RSS %d -> peak %d KiB" % (received, baseline, peak))
        self.assertLess(peak - baseline, 12 * 1024,
                        "RSS grew by %d KiB while a client read %d bytes" % (peak - baseline, received))
        self.assertEqual(self.get("/").status, 200)

    # ---- 8. compression ----
    def test_gzip_for_compressible_type(self):
        data = css_text(64 * 1024)
        self.put("gz/style.css", data, "text/css")
        r = self.get("/gz/style.css", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Encoding"), "gzip", r)
        self.assertEqual(gzip.decompress(r.body), data)
        self.assertIn("accept-encoding", r.header("Vary", "").lower())
        self.assertTrue(r.header("ETag", "").startswith("W/"), r.headers)
        again = self.get("/gz/style.css", headers={"Accept-Encoding": "gzip"})
        self.assertCache(again, HIT)
        self.assertEqual(again.header("Content-Encoding"), "gzip")
        self.assertEqual(gzip.decompress(again.body), data)

    def test_brotli_for_compressible_type(self):
        data = css_text(64 * 1024 + 1).replace(b".c", b".b")
        self.put("br/app.js", data, "application/javascript")
        r = self.get("/br/app.js", headers={"Accept-Encoding": "br"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Encoding"), "br", r)
        self.assertIn("accept-encoding", r.header("Vary", "").lower())
        decoded = brotli_decode(r.body)
        if decoded is not None:
            self.assertEqual(decoded, data)
        else:  # no decoder here: at least not the identity body, and smaller
            self.assertNotEqual(r.body, data)
            self.assertLess(len(r.body), len(data) // 2)

    def test_identity_when_not_accepted(self):
        data = css_text(64 * 1024 + 2).replace(b".c", b".i")
        self.put("id/style.css", data, "text/css")
        for ae in ("gzip;q=0", None, "identity"):
            with self.subTest(accept_encoding=ae):
                r = self.get("/id/style.css", headers={"Accept-Encoding": ae} if ae else None)
                self.assertEqual((r.status, r.body), (200, data))
                self.assertIn(r.header("Content-Encoding", "identity"), ("identity",))
                self.assertIn("accept-encoding", r.header("Vary", "").lower(), r.headers)

    def test_already_encoded_object_is_passed_through(self):
        plain = css_text(64 * 1024 + 3)
        packed = gzip.compress(plain, mtime=0)
        self.put("pre/app.js", packed, "application/javascript", content_encoding="gzip")
        for ae in ("gzip", "gzip, br", "br"):
            with self.subTest(accept_encoding=ae):
                r = self.get("/pre/app.js", headers={"Accept-Encoding": ae})
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("Content-Encoding"), "gzip")
                self.assertEqual(r.body, packed)

    def test_image_is_not_compressed(self):
        png = b"\x89PNG\r\n\x1a\n" + bytes(64 * 1024)  # compresses very well, must not be
        self.put("img/pic.png", png, "image/png")
        r = self.get("/img/pic.png", headers={"Accept-Encoding": "gzip, br"})
        self.assertEqual((r.status, r.body), (200, png))
        self.assertIsNone(r.header("Content-Encoding"), r.headers)

    def test_small_text_is_not_compressed(self):
        small = css_text(500)
        self.put("small/tiny.css", small, "text/css")
        r = self.get("/small/tiny.css", headers={"Accept-Encoding": "gzip, br"})
        self.assertEqual((r.status, r.body), (200, small))
        self.assertIsNone(r.header("Content-Encoding"), r.headers)


def brotli_decode(data):
    """The decoded bytes, or None when neither the brotli module nor the CLI is installed."""
    try:
        import brotli  # noqa: F401  (optional)
        return brotli.decompress(data)
    except ImportError:
        pass
    exe = shutil.which("brotli")
    if exe is None:
        return None
    p = subprocess.run([exe, "-d", "-c"], input=data, capture_output=True, timeout=10)
    return p.stdout if p.returncode == 0 else b"<brotli -d failed>"


# ---- 9. the store goes away ----------------------------------------------------------------------

STALE_CONF = """\
[server]
workers = 1
listen = ["127.0.0.1:0"]
access_log = "off"

[origins.bucket]
type = "s3"
endpoint = "@S3@"
bucket = "site"
access_key_env = "PORTICO_TEST_S3_KEY"
secret_key_env = "PORTICO_TEST_S3_SECRET"
timeout_ms = 3000

[[sites]]
name = "www"
hosts = ["www.test"]
origin = "bucket"
stale_if_error_s = 60
"""


class S3UnreachableTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s3 = S3rver()
        try:
            cls.portico = Portico(STALE_CONF.replace("@S3@", cls.s3.endpoint), env=s3_env())
        except BaseException:
            cls.s3.close()
            raise
        cls.port = cls.portico.http_port

    @classmethod
    def tearDownClass(cls):
        cls.portico.close()
        cls.s3.close()

    def get(self, target):
        return request(self.port, "GET", target, host="www.test", timeout=10.0)

    def test_stale_copy_when_store_is_down_and_error_for_the_rest(self):
        self.s3.put("fresh.txt", b"served stale\n", content_type="text/plain", cache_control="max-age=1")
        r = self.get("/fresh.txt")
        self.assertEqual((r.status, r.body), (200, b"served stale\n"))
        self.s3.stop()
        try:
            time.sleep(1.2)
            stale = self.get("/fresh.txt")
            self.assertEqual((stale.status, stale.body), (200, b"served stale\n"), stale)
            never = self.get("/never-stored.txt")
            self.assertIn(never.status, (502, 504), never)
            self.assertLess(len(never.body), 200)
        finally:
            self.s3.start()
        # The store is back: the object is fetched again.
        r = self.get("/fresh.txt")
        self.assertEqual((r.status, r.body), (200, b"served stale\n"))


# ---- 10 (and 4, 7 on the wire). The requests Portico makes, seen by a scripted upstream -----------

WIRE_KEY, WIRE_SECRET, WIRE_REGION = "AKIDPORTICOTEST", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYPORTICO", "eu-west-3"

WIRE_CONF = """\
[server]
workers = 1
listen = ["127.0.0.1:0"]
access_log = "off"

[cache]
max_object = "1MiB"

[origins.bucket]
type = "s3"
endpoint = "@UP@"
bucket = "site"
region = "eu-west-3"
access_key_env = "PORTICO_TEST_S3_KEY"
secret_key_env = "PORTICO_TEST_S3_SECRET"

[origins.bucket_meta]
type = "s3"
endpoint = "@UP@"
bucket = "site"
region = "eu-west-3"
access_key_env = "PORTICO_TEST_S3_KEY"
secret_key_env = "PORTICO_TEST_S3_SECRET"
expose_metadata = true

[[sites]]
name = "www"
hosts = ["www.test"]
origin = "bucket"

[[sites]]
name = "meta"
hosts = ["meta.test"]
origin = "bucket_meta"
"""

S3_FIELDS = [("x-amz-request-id", "4442587FB7D0A2F9"), ("x-amz-id-2", "vlR7PnpV2Ce81l0PRw6jlUpck7Jo5ZsQjryTjKlc5aLWGVHPZLj5NeC6qMa0emYBDXOo6QBU0Wo="),
             ("x-amz-version-id", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"), ("x-amz-server-side-encryption", "AES256"),
             ("x-amz-meta-author", "bob")]


class ObjectUpstream(Upstream):
    """upstream.py's server answering like a bucket for the paths in `objects`
    ({path: (body, [(name, value)...])}), Range (one range) included; other paths get the echo."""

    def __init__(self):
        self.objects = {}
        super().__init__()

    def _respond(self, conn, req):
        if req.path not in self.objects:
            return super()._respond(conn, req)
        body, extra = self.objects[req.path]
        headers = [("Content-Type", "application/octet-stream"), ("ETag", '"%s"' % hashlib.md5(body).hexdigest()),
                   ("Last-Modified", "Mon, 02 Nov 2026 10:00:00 GMT"), ("Accept-Ranges", "bytes")] + list(extra)
        status, first, last = 200, 0, len(body) - 1
        m = re.match(r"^bytes=(\d+)-(\d+)$", req.header("Range", ""))
        if m:
            status, first, last = 206, int(m.group(1)), min(int(m.group(2)), len(body) - 1)
            headers.append(("Content-Range", "bytes %d-%d/%d" % (first, last, len(body))))
        part = body[first:last + 1]
        headers.append(("Content-Length", str(len(part))))
        conn.sendall(self._head(status, headers))
        if req.method != "HEAD":
            conn.sendall(part)
        return True


def sigv4_signature(req, secret, amz_date, scope):
    """The AWS SigV4 signature of a body-less request as received (its SignedHeaders)."""
    auth = req.header("Authorization")
    signed = re.search(r"SignedHeaders=([^,\s]+)", auth).group(1)
    canonical_headers = "".join("%s:%s\n" % (name, " ".join(req.header(name, "").split()))
                                for name in signed.split(";"))
    path, _, query = req.target.partition("?")
    canonical = "\n".join([req.method, path, query, canonical_headers, signed,
                           req.header("x-amz-content-sha256")])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class S3WireTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = ObjectUpstream()
        conf = WIRE_CONF.replace("@UP@", cls.up.endpoint)
        cls.portico = Portico(conf, env=s3_env(WIRE_KEY, WIRE_SECRET))
        cls.port = cls.portico.http_port

    @classmethod
    def tearDownClass(cls):
        cls.portico.close()
        cls.up.close()

    def get(self, target, host="www.test", **kw):
        return request(self.port, "GET", target, host=host, timeout=10.0, **kw)

    def requests_for(self, path):
        return [r for r in self.up.wait_requests(0, 0) if r.path == path]

    def test_request_is_sigv4_signed_path_style_without_query(self):
        r = self.get("/a.txt?list-type=2&acl&x=1")
        self.assertEqual(r.status, 200, r)
        seen = self.requests_for("/site/a.txt")
        self.assertEqual(len(seen), 1, [x.target for x in self.up.wait_requests(0, 0)])
        req = seen[0]
        self.assertEqual(req.method, "GET")
        self.assertEqual(req.target, "/site/a.txt")
        self.assertEqual(req.header("x-amz-content-sha256"), EMPTY_SHA256)
        amz_date = req.header("x-amz-date", "")
        self.assertRegex(amz_date, r"^\d{8}T\d{6}Z$")
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        self.assertLess(abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()), 300)
        auth = req.header("Authorization", "")
        m = re.match(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, ?"
                     r"SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$", auth)
        self.assertIsNotNone(m, auth)
        self.assertEqual(m.group(1), WIRE_KEY)
        self.assertEqual(m.group(2), amz_date[:8])
        self.assertEqual(m.group(3), WIRE_REGION)
        signed = m.group(4).split(";")
        for name in ("host", "x-amz-content-sha256", "x-amz-date"):
            self.assertIn(name, signed)
        self.assertEqual(signed, sorted(signed))
        scope = "%s/%s/s3/aws4_request" % (amz_date[:8], WIRE_REGION)
        self.assertEqual(m.group(5), sigv4_signature(req, WIRE_SECRET, amz_date, scope))
        self.assertNotIn(WIRE_SECRET, repr(req.headers))

    def test_s3_fields_are_dropped_and_metadata_only_on_request(self):
        self.up.objects["/site/fields.txt"] = (b"fields\n", S3_FIELDS)
        r = self.get("/fields.txt")
        self.assertEqual((r.status, r.body), (200, b"fields\n"))
        self.assertFalse([n for n in header_names(r) if n.startswith("x-amz-")], r.headers)
        r = self.get("/fields.txt", host="meta.test")
        self.assertEqual((r.status, r.body), (200, b"fields\n"))
        self.assertEqual(r.header("x-amz-meta-author"), "bob", r.headers)
        self.assertEqual([n for n in header_names(r) if n.startswith("x-amz-")], ["x-amz-meta-author"], r.headers)

    def test_range_of_a_large_object_reaches_the_store(self):
        body = hashlib.sha256(b"big").digest() * (12 * MIB // 32)  # 12 MiB > max_object
        self.up.objects["/site/big12.bin"] = (body, [])
        r = self.get("/big12.bin", headers={"Range": "bytes=10485760-10486783"})
        self.assertEqual(r.status, 206, r)
        self.assertEqual(r.body, body[10485760:10486784])
        self.assertEqual(r.header("Content-Range"), "bytes 10485760-10486783/%d" % len(body))
        ranges = [x.header("Range") for x in self.requests_for("/site/big12.bin")]
        self.assertIn("bytes=10485760-10486783", ranges)


# ---- 11. credentials variables must be set ------------------------------------------------------

CHECK_CONF = """\
[server]
workers = 1
listen = ["127.0.0.1:0"]
access_log = "off"

[origins.bucket]
type = "s3"
endpoint = "http://127.0.0.1:9"
bucket = "site"
access_key_env = "PORTICO_TEST_S3_UNSET_KEY"
secret_key_env = "PORTICO_TEST_S3_SECRET"

[[sites]]
name = "www"
hosts = ["www.test"]
origin = "bucket"
"""


class S3ConfCheckTest(unittest.TestCase):
    def test_missing_credentials_variable_fails_the_check(self):
        tmp = tempfile.mkdtemp(prefix="portico-s3conf-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "s3.toml")
        with open(path, "w") as f:
            f.write(CHECK_CONF)
        env = {k: v for k, v in os.environ.items() if k != "PORTICO_TEST_S3_UNSET_KEY"}
        env[SECRET_ENV] = "set"
        rc, out, err = run_portico(["-t", "-c", path], env=env)
        self.assertEqual(rc, 1, (out, err))
        self.assertNotIn("configuration ok", out)
        self.assertIn("access_key_env", err)
        self.assertIn("PORTICO_TEST_S3_UNSET_KEY", err)
        # With the variable set the same file is fine.
        env["PORTICO_TEST_S3_UNSET_KEY"] = "AKID"
        rc, out, err = run_portico(["-t", "-c", path], env=env)
        self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    unittest.main()
