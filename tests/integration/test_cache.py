"""The HTTP cache, black box through the real binary: hits and misses (X-Cache, Age, Via),
what is and is not stored (RFC 9111 §3), freshness and its clamps (default/min/max TTL),
revalidation with validators, Vary, query normalisation, conditional and range requests on
stored objects, request coalescing, RFC 5861 stale-while-revalidate / stale-if-error,
invalidation by unsafe methods, the admin POST /purge, max_object and cached error pages.

Each test uses its own URL paths, so entries never leak between tests. The origin is a scripted
upstream (upstream.py) whose answer for a path can be changed by the test without changing the
URL (the cache key): CacheUpstream.script(path, ...). Sleeps are only where real time must pass
for an entry to expire (freshness lifetimes of 1 s, slept just past).
"""
import json
import os
import threading
import time
import unittest
import urllib.parse

from harness import Portico, RawConn, Upstream, metric, pattern_bytes, request, scrape, wait_until

TOKEN = "s3cret-purge-token"
EXPIRE = 1.15  # s: just past a 1 s freshness lifetime (Age counts whole seconds)

CONF = """\
[server]
workers = 2
listen = ["127.0.0.1:0"]
access_log = "off"

[admin]
listen = "127.0.0.1:0"

[cache]
memory = "16MiB"
max_object = "64KiB"

[origins.up]
type = "http"
endpoint = "@UPSTREAM@"
timeout_ms = 5000

[origins.fragile]
type = "http"
endpoint = "@UPSTREAM2@"
timeout_ms = 2000

[origins.files]
type = "dir"
root = "@TMP@/www"

[[sites]]
name = "c"
hosts = ["cache.test"]
origin = "up"
default_ttl_s = 0

  [[sites.behaviors]]
  path = "/noq/*"
  query_in_key = false

[[sites]]
name = "ttl"
hosts = ["ttl.test"]
origin = "up"
default_ttl_s = 60

  [[sites.behaviors]]
  path = "/zero/*"
  default_ttl_s = 0

  [[sites.behaviors]]
  path = "/short/*"
  default_ttl_s = 1

  [[sites.behaviors]]
  path = "/clamp/*"
  default_ttl_s = 1
  max_ttl_s = 1

[[sites]]
name = "fragile"
hosts = ["fragile.test"]
origin = "fragile"
default_ttl_s = 0
stale_if_error_s = 60

[[sites]]
name = "errs"
hosts = ["errs.test"]
origin = "up"
default_ttl_s = 0
error_pages = [ { status = 404, path = "/404.html", ttl_s = 1 } ]

[[sites]]
name = "p2"
hosts = ["p2.test"]
origin = "up"
default_ttl_s = 0

[[sites]]
name = "files"
hosts = ["files.test"]
origin = "files"
"""

# No token in the environment: POST /purge must answer 403.
CONF_NO_TOKEN = """\
[server]
workers = 1
listen = ["127.0.0.1:0"]
access_log = "off"

[admin]
listen = "127.0.0.1:0"

[origins.up]
type = "http"
endpoint = "@UPSTREAM@"

[[sites]]
name = "c"
hosts = ["cache.test"]
origin = "up"
"""


class CacheUpstream(Upstream):
    """upstream.py's scripted server, plus:
      - script(path, **params): query parameters applied to every request for `path` (over the
        request's own), so a test changes the origin's answer without changing the cache key;
      - cc=none: no Cache-Control field at all (the base class always sends one);
      - a request whose If-None-Match names the scripted hdr_ETag is answered 304 (with the
        ETag and Cache-Control), as a real origin does for a revalidation;
      - body=TEXT: that literal text/html body (with the scripted status) instead of the echo.
    """

    def __init__(self):
        self.scripts = {}
        super().__init__()

    def script(self, path, **params):
        self.scripts[path] = {k: str(v) for k, v in params.items()}

    def hits(self, path, method=None):
        return len([r for r in self.wait_requests(0, 0) if r.path == path and (method is None or r.method == method)])

    def requests_for(self, path):
        return [r for r in self.wait_requests(0, 0) if r.path == path]

    @staticmethod
    def _head(status, headers):
        headers = [(k, v) for k, v in headers if not (k == "Cache-Control" and v == "none")]
        return Upstream._head(status, headers)

    def _respond(self, conn, req):
        if req.path in self.scripts:
            req.query = dict(req.query, **self.scripts[req.path])
        q = req.query
        etag = q.get("hdr_ETag")
        inm = req.header("If-None-Match")
        if etag and inm and etag in [t.strip() for t in inm.split(",")] and q.get("status", "200") == "200":
            if "delay_ms" in q:
                time.sleep(int(q["delay_ms"]) / 1000.0)
            conn.sendall(self._head(304, [("ETag", etag), ("Cache-Control", q.get("cc", "no-store"))]))
            return True
        if "body" in q:
            if "delay_ms" in q:
                time.sleep(int(q["delay_ms"]) / 1000.0)
            body = q["body"].encode()
            headers = [("Content-Type", "text/html"), ("Cache-Control", q.get("cc", "no-store"))]
            headers += [(k[4:], v) for k, v in q.items() if k.startswith("hdr_")]
            headers.append(("Content-Length", str(len(body))))
            conn.sendall(self._head(int(q.get("status", "200")), headers) + (b"" if req.method == "HEAD" else body))
            return True
        return super()._respond(conn, req)


def qs(**params):
    return "?" + urllib.parse.urlencode(params)


class CacheTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = CacheUpstream()
        cls.up2 = CacheUpstream()
        conf = CONF.replace("@UPSTREAM@", cls.up.endpoint).replace("@UPSTREAM2@", cls.up2.endpoint)
        cls.portico = Portico(conf, env={"PORTICO_ADMIN_TOKEN": TOKEN}, start=False)
        www = os.path.join(cls.portico.tmpdir, "www")
        os.makedirs(www)
        with open(os.path.join(www, "index.html"), "wb") as f:
            f.write(b"static file\n")
        cls.portico.start()
        cls.port = cls.portico.http_port
        cls.admin = cls.portico.admin_port

    @classmethod
    def tearDownClass(cls):
        cls.portico.close()
        cls.up.close()
        cls.up2.close()

    def tearDown(self):
        self.assertIsNone(self.portico.proc.poll(), "portico exited during the test; stderr tail:\n%s"
                          % "\n".join(self.portico.stderr.snapshot()[-10:]))

    # ---- helpers ----
    def get(self, target, host="cache.test", method="GET", **kw):
        return request(self.port, method, target, host=host, **kw)

    def assertXCache(self, r, value):
        self.assertEqual(r.header("X-Cache"), value, r)

    def assertMiss(self, r):
        self.assertXCache(r, "Miss from portico")

    def assertHit(self, r):
        self.assertXCache(r, "Hit from portico")

    def cache_metric(self, samples, result, site="c"):
        return metric(samples, "portico_cache_requests_total", site=site, result=result)

    def purge(self, doc, token=TOKEN, raw=None):
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        body = raw if raw is not None else json.dumps(doc).encode()
        return request(self.admin, "POST", "/purge", host="127.0.0.1", headers=headers, body=body)

    # ---- 1. miss, then hit ----
    def test_miss_then_hit(self):
        self.up.script("/basic", cc="max-age=60")
        before = scrape(self.admin)
        r1 = self.get("/basic")
        self.assertEqual(r1.status, 200)
        self.assertMiss(r1)
        self.assertIn("portico", r1.header("Via", ""))
        r2 = self.get("/basic")
        self.assertEqual(r2.status, 200)
        self.assertHit(r2)
        self.assertEqual(r2.body, r1.body)
        self.assertIsNotNone(r2.header("Age"), "no Age on a hit")
        self.assertRegex(r2.header("Age"), r"^\d+$")
        self.assertLessEqual(int(r2.header("Age")), 1)
        self.assertIn("portico", r2.header("Via", ""))
        self.assertEqual(r2.header("Content-Type"), "application/json")
        self.assertEqual(self.up.hits("/basic"), 1)
        after = scrape(self.admin)
        self.assertEqual(self.cache_metric(after, "miss") - self.cache_metric(before, "miss"), 1)
        self.assertEqual(self.cache_metric(after, "hit") - self.cache_metric(before, "hit"), 1)
        self.assertGreaterEqual(metric(after, "portico_cache_objects"), 1)

    # ---- 2. what is not stored ----
    def test_uncacheable_responses_are_not_stored(self):
        cases = {
            "/ns/no-store": dict(cc="no-store, max-age=60"),
            "/ns/private": dict(cc="private, max-age=60"),
            "/ns/cookie": dict(cc="max-age=60", **{"hdr_Set-Cookie": "sid=1"}),
            "/ns/no-cc": dict(cc="none"),  # default_ttl_s = 0 on this site
        }
        for path, params in cases.items():
            with self.subTest(path=path):
                self.up.script(path, **params)
                r1 = self.get(path)
                r2 = self.get(path)
                self.assertEqual((r1.status, r2.status), (200, 200))
                self.assertMiss(r2)
                self.assertEqual(self.up.hits(path), 2)
        # The Set-Cookie reached the client each time.
        self.assertEqual(self.get("/ns/cookie").header("Set-Cookie"), "sid=1")

    def test_authorization_requests_need_explicit_consent(self):
        auth = {"Authorization": "Bearer user-1"}
        self.up.script("/auth/plain", cc="max-age=60")
        self.get("/auth/plain", headers=auth)
        r = self.get("/auth/plain", headers=auth)
        self.assertMiss(r)
        self.assertEqual(self.up.hits("/auth/plain"), 2, "answer to an authorized request was stored")
        for path, cc in (("/auth/public", "public, max-age=60"), ("/auth/smaxage", "s-maxage=60")):
            with self.subTest(cc=cc):
                self.up.script(path, cc=cc)
                self.assertMiss(self.get(path, headers=auth))
                r = self.get(path, headers=auth)
                self.assertHit(r)
                self.assertEqual(self.up.hits(path), 1)

    def test_request_no_store_is_not_stored(self):
        self.up.script("/reqns", cc="max-age=60")
        self.get("/reqns", headers={"Cache-Control": "no-store"})
        self.assertMiss(self.get("/reqns"))
        self.assertEqual(self.up.hits("/reqns"), 2)

    def test_private_set_cookie_stores_the_rest(self):
        self.up.script("/cookie-private", cc='private="set-cookie", max-age=60', **{"hdr_Set-Cookie": "sid=2"})
        r1 = self.get("/cookie-private")
        self.assertEqual(r1.header("Set-Cookie"), "sid=2")  # the origin's answer reaches its client
        r2 = self.get("/cookie-private")
        self.assertHit(r2)
        self.assertIsNone(r2.header("Set-Cookie"), "a cookie was served from the shared cache")
        self.assertEqual(self.up.hits("/cookie-private"), 1)

    # ---- 3. freshness ----
    def test_upstream_age_counts(self):
        # Age 100 > max-age 60: stale on arrival, so every request goes to the origin.
        self.up.script("/aged/stale", cc="max-age=60", hdr_Age="100")
        # Age 30 < max-age 60: fresh, and a hit reports the inherited age.
        self.up.script("/aged/fresh", cc="max-age=60", hdr_Age="30")
        self.get("/aged/stale")
        self.assertMiss(self.get("/aged/stale"))
        self.assertEqual(self.up.hits("/aged/stale"), 2)
        self.get("/aged/fresh")
        r = self.get("/aged/fresh")
        self.assertHit(r)
        self.assertGreaterEqual(int(r.header("Age")), 30)
        self.assertLess(int(r.header("Age")), 60)

    def test_expires_gives_freshness(self):
        future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 120))
        past = "Thu, 01 Jan 2015 00:00:00 GMT"
        self.up.script("/expires/future", cc="none", hdr_Expires=future)
        self.up.script("/expires/past", cc="none", hdr_Expires=past)
        self.get("/expires/future")
        self.assertHit(self.get("/expires/future"))
        self.assertEqual(self.up.hits("/expires/future"), 1)
        self.get("/expires/past")
        self.assertMiss(self.get("/expires/past"))
        self.assertEqual(self.up.hits("/expires/past"), 2)

    def test_s_maxage_wins_over_max_age(self):
        self.up.script("/sm/long", cc="max-age=1, s-maxage=60")
        self.up.script("/sm/short", cc="max-age=60, s-maxage=1")
        self.assertMiss(self.get("/sm/long"))
        self.assertMiss(self.get("/sm/short"))
        time.sleep(EXPIRE)
        self.assertHit(self.get("/sm/long"))
        self.assertEqual(self.up.hits("/sm/long"), 1)
        self.assertMiss(self.get("/sm/short"))
        self.assertEqual(self.up.hits("/sm/short"), 2)

    def test_expiry_refetches_and_etag_revalidates(self):
        self.up.script("/exp/plain", cc="max-age=1")
        self.up.script("/exp/etag", cc="max-age=1", hdr_ETag='"v1"')
        self.assertMiss(self.get("/exp/plain"))
        first = self.get("/exp/etag")
        self.assertMiss(first)
        self.assertHit(self.get("/exp/plain"))
        self.assertHit(self.get("/exp/etag"))
        time.sleep(EXPIRE)
        r = self.get("/exp/plain")
        self.assertMiss(r)
        self.assertEqual(self.up.hits("/exp/plain"), 2)
        self.assertIsNone(self.up.requests_for("/exp/plain")[-1].header("If-None-Match"))
        r = self.get("/exp/etag")
        self.assertEqual(r.status, 200)
        self.assertXCache(r, "RefreshHit from portico")
        self.assertEqual(r.body, first.body, "a 304 must not change the stored body")
        self.assertEqual(r.header("ETag"), '"v1"')
        reqs = self.up.requests_for("/exp/etag")
        self.assertEqual(len(reqs), 2)
        self.assertEqual(reqs[-1].header("If-None-Match"), '"v1"', "revalidation was not conditional")
        # The 304 made the entry fresh again.
        r = self.get("/exp/etag")
        self.assertHit(r)
        self.assertEqual(r.body, first.body)
        self.assertEqual(self.up.hits("/exp/etag"), 2)

    # ---- 4. Vary ----
    def test_vary_variants_are_stored_separately(self):
        self.up.script("/vary", cc="max-age=60", hdr_Vary="Accept-Encoding")
        gz = {"Accept-Encoding": "gzip"}
        ident = {"Accept-Encoding": "identity"}
        m_gz = self.get("/vary", headers=gz)
        m_id = self.get("/vary", headers=ident)
        self.assertMiss(m_gz)
        self.assertMiss(m_id)
        self.assertEqual(self.up.hits("/vary"), 2)
        self.assertNotEqual(m_gz.body, m_id.body)
        self.assertIn(["Accept-Encoding", "gzip"], m_gz.json()["headers"])
        for hdrs, miss in ((gz, m_gz), (ident, m_id), (gz, m_gz)):
            r = self.get("/vary", headers=hdrs)
            self.assertHit(r)
            self.assertEqual(r.body, miss.body, "wrong variant for %s" % hdrs)
        self.assertEqual(self.up.hits("/vary"), 2)

    def test_vary_star_is_never_served_from_cache(self):
        self.up.script("/varystar", cc="max-age=60", hdr_Vary="*")
        for _ in range(3):
            r = self.get("/varystar")
            self.assertEqual(r.status, 200)
            self.assertMiss(r)
        self.assertEqual(self.up.hits("/varystar"), 3)

    # ---- 5. query ----
    def test_query_order_does_not_matter(self):
        self.up.script("/q/sorted", cc="max-age=60")
        self.assertMiss(self.get("/q/sorted?b=2&a=1"))
        r = self.get("/q/sorted?a=1&b=2")
        self.assertHit(r)
        self.assertEqual(self.up.hits("/q/sorted"), 1)
        self.assertMiss(self.get("/q/sorted?a=1&b=3"))  # another query is another resource
        self.assertEqual(self.up.hits("/q/sorted"), 2)

    def test_percent_encoding_is_normalised(self):
        # %7E is the unreserved "~": the same resource either way.
        self.up.script("/enc/~user", cc="max-age=60")
        self.up.script("/enc/%7Euser", cc="max-age=60")
        self.assertMiss(self.get("/enc/%7Euser"))
        self.assertHit(self.get("/enc/~user"))
        self.assertHit(self.get("/enc/%7euser"))
        self.assertEqual(self.up.hits("/enc/~user") + self.up.hits("/enc/%7Euser"), 1)

    def test_query_not_in_key(self):
        self.up.script("/noq/x", cc="max-age=60")
        first = self.get("/noq/x?v=1")
        self.assertMiss(first)
        r = self.get("/noq/x?v=2")
        self.assertHit(r)
        self.assertEqual(r.json()["target"], "/noq/x?v=1")
        self.assertEqual(self.up.hits("/noq/x"), 1)

    # ---- 6. TTL settings ----
    def test_default_ttl_applies_without_origin_freshness(self):
        self.up.script("/dflt", cc="none")
        self.assertMiss(self.get("/dflt", host="ttl.test"))
        self.assertHit(self.get("/dflt", host="ttl.test"))
        self.assertEqual(self.up.hits("/dflt"), 1)

    def test_default_ttl_zero_stores_only_explicit_freshness(self):
        self.up.script("/zero/none", cc="none")
        self.up.script("/zero/explicit", cc="max-age=60")
        for _ in range(2):
            self.assertMiss(self.get("/zero/none", host="ttl.test"))
        self.assertEqual(self.up.hits("/zero/none"), 2)
        self.assertMiss(self.get("/zero/explicit", host="ttl.test"))
        self.assertHit(self.get("/zero/explicit", host="ttl.test"))
        self.assertEqual(self.up.hits("/zero/explicit"), 1)

    def test_short_default_ttl_and_max_ttl_clamp_expire(self):
        self.up.script("/clamp/long", cc="max-age=3600")
        self.up.script("/short/none", cc="none")
        self.assertMiss(self.get("/clamp/long", host="ttl.test"))
        self.assertMiss(self.get("/short/none", host="ttl.test"))
        self.assertHit(self.get("/clamp/long", host="ttl.test"))
        self.assertHit(self.get("/short/none", host="ttl.test"))
        time.sleep(EXPIRE)
        self.assertMiss(self.get("/clamp/long", host="ttl.test"))
        self.assertMiss(self.get("/short/none", host="ttl.test"))
        self.assertEqual(self.up.hits("/clamp/long"), 2, "max_ttl_s = 1 did not clamp max-age=3600")
        self.assertEqual(self.up.hits("/short/none"), 2)

    # ---- 7. conditional, range and HEAD answered from the cache ----
    def test_conditional_range_and_head_on_hits(self):
        n = 1000
        self.up.script("/rng", cc="max-age=60", size=n, hdr_ETag='"r1"')
        full = self.get("/rng")
        self.assertMiss(full)
        self.assertEqual(full.body, pattern_bytes(n))

        r = self.get("/rng", headers={"If-None-Match": '"r1"'})
        self.assertEqual(r.status, 304)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("ETag"), '"r1"')
        self.assertHit(r)

        r = self.get("/rng", headers={"If-None-Match": '"other"'})
        self.assertEqual((r.status, r.body), (200, pattern_bytes(n)))

        r = self.get("/rng", headers={"Range": "bytes=0-9"})
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header("Content-Range"), "bytes 0-9/%d" % n)
        self.assertEqual(r.body, pattern_bytes(n)[:10])
        self.assertHit(r)

        r = self.get("/rng", headers={"Range": "bytes=-5"})
        self.assertEqual((r.status, r.header("Content-Range")), (206, "bytes %d-%d/%d" % (n - 5, n - 1, n)))
        self.assertEqual(r.body, pattern_bytes(n)[-5:])

        r = self.get("/rng", headers={"Range": "bytes=5000-"})
        self.assertEqual(r.status, 416)
        self.assertEqual(r.header("Content-Range"), "bytes */%d" % n)

        r = self.get("/rng", method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Length"), str(n))
        self.assertEqual(r.body, b"")
        self.assertHit(r)
        self.assertEqual(self.up.hits("/rng"), 1, "conditional/range/HEAD on a hit went to the origin")

    def test_range_and_condition_on_a_miss(self):
        n = 2000
        self.up.script("/rngmiss", cc="max-age=60", size=n)
        r = self.get("/rngmiss", headers={"Range": "bytes=10-19"})
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header("Content-Range"), "bytes 10-19/%d" % n)
        self.assertEqual(r.body, pattern_bytes(n)[10:20])
        q = self.up.requests_for("/rngmiss")[-1]
        self.assertIsNone(q.header("Range"), "the cache must fetch the whole object")
        # ... and stored it whole.
        r = self.get("/rngmiss")
        self.assertHit(r)
        self.assertEqual(r.body, pattern_bytes(n))
        self.assertEqual(self.up.hits("/rngmiss"), 1)

        self.up.script("/inmmiss", cc="max-age=60", hdr_ETag='"m1"')
        r = self.get("/inmmiss", headers={"If-None-Match": '"m1"'})
        self.assertEqual((r.status, r.body), (304, b""))
        self.assertIsNone(self.up.requests_for("/inmmiss")[-1].header("If-None-Match"))
        self.assertEqual(self.get("/inmmiss").status, 200)
        self.assertEqual(self.up.hits("/inmmiss"), 1)

    def test_head_miss_then_get_hit(self):
        self.up.script("/headfirst", cc="max-age=60", size=300)
        r = self.get("/headfirst", method="HEAD")
        self.assertEqual((r.status, r.header("Content-Length"), r.body), (200, "300", b""))
        r = self.get("/headfirst")
        self.assertHit(r)
        self.assertEqual(r.body, pattern_bytes(300))
        self.assertEqual(self.up.hits("/headfirst"), 1)

    # ---- 8. coalescing ----
    def _concurrent(self, target, n=10):
        results = [None] * n

        def worker(i):
            try:
                results[i] = self.get(target, timeout=10)
            except Exception as e:  # noqa: BLE001 -- reported below
                results[i] = e

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        return results, time.monotonic() - t0

    def test_concurrent_misses_are_coalesced(self):
        self.up.script("/coal", cc="max-age=60", delay_ms=300)
        before = metric(scrape(self.admin), "portico_coalesce_followers_total")
        results, _ = self._concurrent("/coal")
        for r in results:
            self.assertNotIsInstance(r, Exception)
            self.assertEqual(r.status, 200, r)
        self.assertEqual(len({r.body for r in results}), 1, "followers got different bodies")
        self.assertEqual(self.up.hits("/coal"), 1, "concurrent misses were not coalesced")
        after = metric(scrape(self.admin), "portico_coalesce_followers_total")
        self.assertGreater(after - before, 0)

    def test_uncacheable_concurrent_requests_are_not_serialised(self):
        delay = 0.3
        self.up.script("/uncoal", cc="no-store", delay_ms=int(delay * 1000))
        results, elapsed = self._concurrent("/uncoal")
        for r in results:
            self.assertNotIsInstance(r, Exception)
            self.assertEqual(r.status, 200, r)
        self.assertEqual(self.up.hits("/uncoal"), 10)
        self.assertLess(elapsed, 5 * delay, "uncacheable requests were serialised (%.2f s)" % elapsed)

    def test_leader_client_going_away_does_not_strand_followers(self):
        self.up.script("/abandon", cc="max-age=60", delay_ms=600)
        followers0 = metric(scrape(self.admin), "portico_coalesce_followers_total")
        leader = RawConn(self.port)
        try:
            leader.send(b"GET /abandon HTTP/1.1\r\nHost: cache.test\r\n\r\n")
            self.assertTrue(wait_until(lambda: self.up.hits("/abandon") >= 1, 3), "leader never fetched")
            box = {}
            t = threading.Thread(target=lambda: box.update(res=self._concurrent("/abandon", 3)))
            t.start()
            joined = wait_until(lambda: metric(scrape(self.admin), "portico_coalesce_followers_total")
                                >= followers0 + 3, 3)
        finally:
            leader.close()  # the leader's client leaves while its fetch is in flight
        t.join(15)
        self.assertTrue(joined, "the 3 requests did not wait for the leader")
        results, elapsed = box["res"]
        for r in results:
            self.assertNotIsInstance(r, Exception)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["target"], "/abandon")
        self.assertLessEqual(self.up.hits("/abandon"), 2)
        self.assertLess(elapsed, 3)

    def test_oversized_concurrent_misses_all_complete(self):
        n = 100000
        self.up.script("/big/coal", cc="max-age=60", size=n, chunked=1, delay_ms=200)
        results, _ = self._concurrent("/big/coal", 5)
        for r in results:
            self.assertNotIsInstance(r, Exception)
            self.assertEqual((r.status, len(r.body)), (200, n))
            self.assertEqual(r.body, pattern_bytes(n))

    # ---- 9. stale-while-revalidate ----
    def test_stale_while_revalidate(self):
        self.up.script("/swr", cc="max-age=1, stale-while-revalidate=30")
        first = self.get("/swr")
        self.assertMiss(first)
        time.sleep(EXPIRE)
        self.up.script("/swr", cc="max-age=1, stale-while-revalidate=30", delay_ms=500)
        t0 = time.monotonic()
        r = self.get("/swr")
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 200)
        self.assertHit(r)
        self.assertEqual(r.body, first.body, "the stale copy was not served")
        self.assertLess(elapsed, 0.4, "stale-while-revalidate waited for the origin")
        self.assertTrue(wait_until(lambda: self.up.hits("/swr") >= 2, 3), "no background revalidation")
        time.sleep(0.7)  # the background fetch (500 ms) completes; no other request may follow
        self.assertEqual(self.up.hits("/swr"), 2)
        # The refreshed entry is fresh: a hit with the new body, no origin request.
        r = self.get("/swr")
        self.assertHit(r)
        self.assertEqual(r.header("Age"), "0")
        self.assertEqual(self.up.hits("/swr"), 2)

    def test_stale_while_revalidate_concurrent_requests_refresh_once(self):
        self.up.script("/swr2", cc="max-age=1, stale-while-revalidate=30")
        first = self.get("/swr2")
        time.sleep(EXPIRE)
        self.up.script("/swr2", cc="max-age=1, stale-while-revalidate=30", delay_ms=300)
        results, elapsed = self._concurrent("/swr2", 6)
        for r in results:
            self.assertNotIsInstance(r, Exception)
            self.assertEqual(r.status, 200)
            self.assertHit(r)
            self.assertEqual(r.body, first.body)
        self.assertLess(elapsed, 1.0)
        self.assertTrue(wait_until(lambda: self.up.hits("/swr2") >= 2, 3), "no background revalidation")
        time.sleep(0.5)  # the background fetch (300 ms) completes
        self.assertEqual(self.up.hits("/swr2"), 2, "more than one background revalidation")

    # ---- 10. stale-if-error ----
    def test_stale_if_error_on_5xx(self):
        self.up.script("/sie", cc="max-age=1, stale-if-error=60")
        self.up.script("/nosie", cc="max-age=1")
        first = self.get("/sie")
        self.assertMiss(first)
        self.assertMiss(self.get("/nosie"))
        time.sleep(EXPIRE)
        self.up.script("/sie", cc="no-store", status=500)
        self.up.script("/nosie", cc="no-store", status=500)
        r = self.get("/sie")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, first.body)
        self.assertIn("Hit", r.header("X-Cache", ""))
        self.assertEqual(self.up.hits("/sie"), 2, "the stale copy was served without asking the origin")
        # Without stale-if-error the error reaches the client.
        self.assertEqual(self.get("/nosie").status, 500)

    def test_stale_if_error_site_default_when_origin_is_down(self):
        self.up2.script("/f", cc="max-age=1")
        first = self.get("/f", host="fragile.test")
        self.assertEqual(first.status, 200)
        self.assertMiss(first)
        self.up2.close()  # connection refused from now on
        time.sleep(EXPIRE)
        r = self.get("/f", host="fragile.test")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, first.body)
        # Nothing stored for this one: the failure is the client's.
        self.assertEqual(self.get("/never-fetched", host="fragile.test").status, 502)

    # ---- 11. unsafe methods ----
    def test_unsafe_method_invalidates(self):
        self.up.script("/inv", cc="max-age=60")
        before = scrape(self.admin)
        self.assertMiss(self.get("/inv"))
        self.assertHit(self.get("/inv"))
        r = self.get("/inv", method="POST", body=b"payload", headers={"Content-Type": "text/plain"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["method"], "POST")
        self.assertEqual(r.json()["body"], "payload")
        self.assertEqual(self.up.hits("/inv", method="POST"), 1)
        self.assertMiss(self.get("/inv"))
        self.assertEqual(self.up.hits("/inv", method="GET"), 2)
        after = scrape(self.admin)
        self.assertEqual(self.cache_metric(after, "invalidated") - self.cache_metric(before, "invalidated"), 1)
        # An error answer to the unsafe request invalidates nothing.
        self.assertHit(self.get("/inv"))
        self.up.script("/inv", cc="max-age=60", status=500)
        self.assertEqual(self.get("/inv", method="DELETE").status, 500)
        self.assertHit(self.get("/inv"))

    def test_unsafe_method_invalidates_every_variant(self):
        self.up.script("/invvary", cc="max-age=60", hdr_Vary="Accept-Encoding")
        gz = {"Accept-Encoding": "gzip"}
        ident = {"Accept-Encoding": "identity"}
        self.assertMiss(self.get("/invvary", headers=gz))
        self.assertMiss(self.get("/invvary", headers=ident))
        self.assertHit(self.get("/invvary", headers=ident))
        self.assertEqual(self.get("/invvary", method="POST", body=b"x").status, 200)
        # Every variant is invalidated, whichever is asked for first afterwards.
        self.assertMiss(self.get("/invvary", headers=gz))
        r = self.get("/invvary", headers=ident)
        self.assertMiss(r)
        self.assertEqual(self.up.hits("/invvary", method="GET"), 4)

    def test_dir_origin_rejects_unsafe_methods(self):
        self.assertEqual(self.get("/index.html", host="files.test").status, 200)
        for method in ("DELETE", "PUT", "POST"):
            with self.subTest(method=method):
                r = self.get("/index.html", host="files.test", method=method,
                             body=b"x" if method != "DELETE" else None)
                self.assertEqual(r.status, 405)
                allow = [m.strip() for m in r.header("Allow", "").split(",")]
                self.assertIn("GET", allow)
                self.assertIn("HEAD", allow)
                self.assertNotIn(method, allow)
        self.assertEqual(self.get("/index.html", host="files.test").body, b"static file\n")

    # ---- 12. purge ----
    def test_purge_authentication(self):
        r = self.purge({"site": "c", "paths": ["/x"]}, token=None)
        self.assertEqual(r.status, 401)
        r = self.purge({"site": "c", "paths": ["/x"]}, token="wrong-token")
        self.assertEqual(r.status, 401)
        r = self.purge({"site": "c", "paths": ["/x"]}, token=TOKEN + "x")
        self.assertEqual(r.status, 401)

    def test_purge_paths_and_prefix(self):
        for p in ("/p/a", "/p/dir/x", "/p/dir/y", "/p/other"):
            self.up.script(p, cc="max-age=60")
            self.assertMiss(self.get(p))
            self.assertHit(self.get(p))
        r = self.purge({"site": "c", "paths": ["/p/a"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["purged"], 1)
        self.assertEqual(r.json()["site"], "c")
        self.assertMiss(self.get("/p/a"))
        self.assertHit(self.get("/p/dir/x"))
        r = self.purge({"site": "c", "paths": ["/p/dir/*"]})
        self.assertEqual((r.status, r.json()["purged"]), (200, 2))
        self.assertMiss(self.get("/p/dir/x"))
        self.assertMiss(self.get("/p/dir/y"))
        self.assertHit(self.get("/p/other"))
        # Purging what is not there is fine and purges nothing.
        r = self.purge({"site": "c", "paths": ["/p/nothing"]})
        self.assertEqual((r.status, r.json()["purged"]), (200, 0))

    def test_purge_whole_site(self):
        for p in ("/w1", "/w2"):
            self.up.script(p, cc="max-age=60")
            self.assertMiss(self.get(p, host="p2.test"))
        self.up.script("/keep", cc="max-age=60")
        self.assertMiss(self.get("/keep"))  # site "c": must survive
        r = self.purge({"site": "p2"})
        self.assertEqual((r.status, r.json()["purged"]), (200, 2))
        self.assertMiss(self.get("/w1", host="p2.test"))
        self.assertMiss(self.get("/w2", host="p2.test"))
        self.assertHit(self.get("/keep"))

    def test_purge_bad_requests(self):
        r = self.purge({"site": "no-such-site", "paths": ["/a"]})
        self.assertEqual(r.status, 404)
        for raw in (b"{not json", b"[1,2]", b'{"paths":["/a"]}', b'{"site":"c","paths":"/a"}',
                    b'{"site":"c","paths":["no-slash"]}'):
            with self.subTest(body=raw):
                self.assertEqual(self.purge(None, raw=raw).status, 400)
        r = request(self.admin, "GET", "/purge", host="127.0.0.1")
        self.assertEqual(r.status, 405)

    def test_purge_disabled_without_token(self):
        saved = os.environ.pop("PORTICO_ADMIN_TOKEN", None)
        try:
            p = Portico(CONF_NO_TOKEN.replace("@UPSTREAM@", self.up.endpoint))
        finally:
            if saved is not None:
                os.environ["PORTICO_ADMIN_TOKEN"] = saved
        try:
            for token in (None, "anything"):
                headers = {"Authorization": "Bearer " + token} if token else {}
                r = request(p.admin_port, "POST", "/purge", host="127.0.0.1", headers=headers,
                            body=json.dumps({"site": "c"}).encode())
                self.assertEqual(r.status, 403)
        finally:
            p.close()

    # ---- 13. max_object ----
    def test_objects_over_max_object_stream_uncached(self):
        n = 100000  # [cache] max_object = 64KiB
        for path, extra in (("/big/cl", {}), ("/big/chunked", {"chunked": 1})):
            with self.subTest(path=path):
                self.up.script(path, cc="max-age=60", size=n, **extra)
                for _ in range(2):
                    r = self.get(path)
                    self.assertEqual(r.status, 200)
                    self.assertEqual(len(r.body), n)
                    self.assertEqual(r.body, pattern_bytes(n))
                    self.assertMiss(r)
                self.assertEqual(self.up.hits(path), 2)
        # Just under the limit is cached.
        self.up.script("/big/fits", cc="max-age=60", size=60000)
        self.get("/big/fits")
        r = self.get("/big/fits")
        self.assertHit(r)
        self.assertEqual(r.body, pattern_bytes(60000))

    # ---- 14. error pages ----
    def test_error_page_is_served_and_cached_for_its_ttl(self):
        page = "<h1>custom not found</h1>"
        self.up.script("/404.html", cc="max-age=600", body=page)
        self.up.script("/e/gone", status=404, cc="no-store")
        pages0 = self.up.hits("/404.html")  # the page is shared with other tests
        r = self.get("/e/gone", host="errs.test")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.body.decode(), page)
        r = self.get("/e/gone", host="errs.test")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.body.decode(), page)
        self.assertHit(r)
        self.assertEqual(self.up.hits("/e/gone"), 1)
        self.assertEqual(self.up.hits("/404.html") - pages0, 1)
        time.sleep(EXPIRE)  # ttl_s = 1
        r = self.get("/e/gone", host="errs.test")
        self.assertEqual((r.status, r.body.decode()), (404, page))
        self.assertEqual(self.up.hits("/e/gone"), 2)

    def test_error_page_after_head_miss(self):
        # The first request for the failing URL is a HEAD: the GET after it must still get the
        # error page's body (a HEAD answer has none, so it cannot fill the entry for a GET).
        page = "<h1>custom not found</h1>"
        self.up.script("/404.html", cc="max-age=600", body=page)
        self.up.script("/e/headfirst", status=404, cc="no-store")
        r = self.get("/e/headfirst", host="errs.test", method="HEAD")
        self.assertEqual((r.status, r.body), (404, b""))
        r = self.get("/e/headfirst", host="errs.test")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.body.decode(), page)
        self.assertEqual(r.header("Content-Length"), str(len(page)))


class LargeObjectTest(unittest.TestCase):
    """Large stored bodies go out in one writev with the head (corked from 512 KiB): hits must
    come back byte-exact, whole, ranged and HEAD, to many readers at once and to slow ones."""

    @classmethod
    def setUpClass(cls):
        cls.up = CacheUpstream()
        conf = CONF.replace("@UPSTREAM@", cls.up.endpoint).replace("@UPSTREAM2@", cls.up.endpoint) \
                   .replace('max_object = "64KiB"', 'max_object = "4MiB"')
        cls.portico = Portico(conf, env={"PORTICO_ADMIN_TOKEN": TOKEN}, start=False)
        os.makedirs(os.path.join(cls.portico.tmpdir, "www"))
        cls.portico.start()
        cls.port = cls.portico.http_port

    @classmethod
    def tearDownClass(cls):
        cls.portico.close()
        cls.up.close()

    def get(self, target, **kw):
        return request(self.port, kw.pop("method", "GET"), target, host="cache.test", **kw)

    def test_large_hits_are_byte_exact(self):
        n = 1536 * 1024
        self.up.script("/large", cc="max-age=60", size=n)
        first = self.get("/large")
        self.assertEqual((first.status, first.header("X-Cache")), (200, "Miss from portico"))
        self.assertEqual(first.body, pattern_bytes(n))
        results = [None] * 8

        def fetch(i):
            results[i] = self.get("/large", timeout=20)

        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for r in results:
            self.assertIsNotNone(r)
            self.assertEqual((r.status, r.header("X-Cache")), (200, "Hit from portico"))
            self.assertEqual(r.header("Content-Length"), str(n))
            self.assertEqual(r.body, pattern_bytes(n))
        r = self.get("/large", headers={"Range": "bytes=200000-299999"})
        self.assertEqual((r.status, r.header("Content-Range")), (206, "bytes 200000-299999/%d" % n))
        self.assertEqual(r.body, pattern_bytes(n)[200000:300000])
        r = self.get("/large", method="HEAD")
        self.assertEqual((r.status, r.header("Content-Length"), r.body), (200, str(n), b""))
        self.assertEqual(self.up.hits("/large"), 1)

    def test_uncorked_hits_back_to_back_and_slow(self):
        # 300 KiB: below the cork threshold. Pipelined requests on one connection (each answer
        # pushed whole, none held back), a ranged one in between, and a reader too slow for the
        # socket buffers (the body's rest queued behind the head).
        n = 300 * 1024
        body = pattern_bytes(n)
        self.up.script("/uncorked", cc="max-age=60", size=n)
        self.assertEqual(self.get("/uncorked").body, body)
        with RawConn(self.port, timeout=10) as c:
            req = b"GET /uncorked HTTP/1.1\r\nHost: cache.test\r\n\r\n"
            ranged = (b"GET /uncorked HTTP/1.1\r\nHost: cache.test\r\n"
                      b"Range: bytes=140000-289999\r\n\r\n")
            c.send(req + ranged + req)
            for expect_status, expect_body in ((200, body), (206, body[140000:290000]),
                                               (200, body)):
                r = c.read_response()
                self.assertEqual((r.status, r.header("X-Cache")), (expect_status, "Hit from portico"))
                self.assertEqual(r.body, expect_body)
            # One more after a pause: nothing of the last answer may still be held back.
            c.send(req)
            r = c.read_response(timeout=2)
            self.assertEqual(r.body, body)
        with RawConn(self.port, timeout=10, rcvbuf=4096) as c:
            c.send(b"GET /uncorked HTTP/1.1\r\nHost: cache.test\r\n\r\n")
            time.sleep(0.5)
            r = c.read_response()
            self.assertEqual((r.status, r.header("X-Cache")), (200, "Hit from portico"))
            self.assertEqual(r.body, body)
        self.assertEqual(self.up.hits("/uncorked"), 1)

    def test_slow_reader_gets_everything(self):
        n = 1024 * 1024
        self.up.script("/slowread", cc="max-age=60", size=n)
        self.assertEqual(self.get("/slowread").status, 200)
        with RawConn(self.port) as c:
            c.send(b"GET /slowread HTTP/1.1\r\nHost: cache.test\r\n\r\n")
            time.sleep(0.5)  # let the socket buffers fill: the rest must be queued, not lost
            r = c.read_response()
        self.assertEqual(r.header("X-Cache"), "Hit from portico")
        self.assertEqual(r.body, pattern_bytes(n))


if __name__ == "__main__":
    unittest.main()
