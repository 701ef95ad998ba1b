"""API stages (the Amazon API Gateway REST API analog) in front of function backends, black box
through the real binary and deploy/function-host: the stage cache (cache keys, TTLs, cached
methods, answers that are not stored, per-request invalidation and its three policies, the admin
stage flush), stage variables (which also pick the function), throttling (stage and route token
buckets shared by all workers), CORS, API keys, JWT authorizers (RS256 / ES256 keys made here
with the openssl CLI) and the per-api/stage metrics.

The event shape, the answer mapping (multiValueHeaders, multiValueQueryStringParameters,
isBase64Encoded) and the 502 / 504 cases of a lambda origin are covered by test_lambda.py; here
only what a stage adds on top of them (errors on a cached stage, a cached base64 answer).

Each feature runs its own Portico, so a conf key one feature lacks fails only that feature's
class; all of them share one function host. No two tests share an API stage + path, so cache
entries and throttle buckets never leak between tests. counter.js, status.js, setcookie.js and
claims.js answer with their invocation count n (body and X-Invocation): an n seen before means
the answer came from a cache. Sleeps are only where real time must pass (a 1 s cache TTL).
"""
import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness import FunctionHost, Portico, metric, request, run_portico, scrape, wait_until

TOKEN = "apitest-admin-token"  # the admin token: /purge and per-request invalidation
KEYS = ("key-one", "key-two")
ENV = {"PORTICO_ADMIN_TOKEN": TOKEN, "APITEST_KEYS": ",".join(KEYS)}
AUTH = {"Authorization": "Bearer " + TOKEN}
HIT = "Hit from portico"
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")

FN = None  # the function host shared by every class (setUpModule)


def setUpModule():
    global FN
    FN = FunctionHost()


def tearDownModule():
    if FN is not None:
        FN.close()


def conf_head(workers=1):
    return """\
[server]
workers = %d
listen = ["127.0.0.1:0"]
access_log = "off"

[admin]
listen = "127.0.0.1:0"
token_env = "PORTICO_ADMIN_TOKEN"
""" % workers


def origin(name, function, timeout_ms=5000):
    return '\n[origins.%s]\ntype = "lambda"\nendpoint = "@FN@"\nfunction = "%s"\ntimeout_ms = %d\n' % (
        name, function, timeout_ms)


class StageTestCase(unittest.TestCase):
    """One Portico per class, from conf_head(WORKERS) + ORIGINS + APIS ("@FN@": the function host)."""
    WORKERS = 1
    ORIGINS = ""
    APIS = ""

    @classmethod
    def setUpClass(cls):
        conf = (conf_head(cls.WORKERS) + cls.ORIGINS + cls.APIS).replace("@FN@", FN.endpoint)
        cls.portico = Portico(conf, env=ENV)
        cls.port = cls.portico.http_port
        cls.admin = cls.portico.admin_port

    @classmethod
    def tearDownClass(cls):
        cls.portico.close()

    def call(self, host, target, method="GET", headers=None, body=None):
        return request(self.port, method, target, host=host, headers=headers, body=body)

    def n_of(self, r, status=200):
        """The invocation count in a counter-style answer (asserting its status)."""
        self.assertEqual(r.status, status, r)
        return r.json()["n"]

    def assert_hit(self, r):
        self.assertEqual(r.header("X-Cache"), HIT, r)

    def assert_not_hit(self, r):
        self.assertNotEqual(r.header("X-Cache"), HIT, r)

    def assert_caches(self, host, target, status=200):
        """Control for the negative tests: `target` IS served from the cache (so a miss elsewhere
        is the feature under test, not a cache that does not work at all)."""
        n = self.n_of(self.call(host, target), status)
        r = self.call(host, target)
        self.assertEqual(self.n_of(r, status), n, "control: %s is not cached" % target)
        self.assert_hit(r)

    def assert_message(self, r, status, message):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.json(), {"message": message}, r)


# ---- 1. the stage cache ---------------------------------------------------------------------------

class StageCacheTest(StageTestCase):
    ORIGINS = origin("counter_fn", "counter")
    APIS = """
[[apis]]
name = "billing"
hosts = ["cache.test"]

  [[apis.stages]]
  name = "prod"
  cache = { enabled = true, ttl_s = 300, capacity = "8MiB" }

  [[apis.stages]]
  name = "off"
  cache = { enabled = false, ttl_s = 300 }

  [[apis.stages]]
  name = "zero"
  cache = { enabled = true, ttl_s = 0 }

  [[apis.routes]]
  method = "GET"
  path = "/bill/{id}"
  origin = "counter_fn"
  cache_key = { path = ["id"], query = ["month"], headers = ["Accept-Language"] }

  [[apis.routes]]
  method = "GET"
  path = "/short/{id}"
  origin = "counter_fn"
  cache_key = { path = ["id"] }
  cache_ttl_s = 1

  [[apis.routes]]
  method = "ANY"
  path = "/any/{id}"
  origin = "counter_fn"
  cache_key = { path = ["id"] }

  [[apis.routes]]
  method = "ANY"
  path = "/head/{id}"
  origin = "counter_fn"
  cache_key = { path = ["id"] }
  cache_methods = ["GET", "HEAD"]
"""
    HOST = "cache.test"

    def get(self, target, headers=None, method="GET"):
        return self.call(self.HOST, target, method, headers=headers)

    def test_second_identical_get_is_a_hit(self):
        first = self.get("/prod/bill/hit1?month=2024-01")
        n = self.n_of(first)
        self.assert_not_hit(first)
        self.assertEqual(first.json()["path"], "/bill/hit1")
        second = self.get("/prod/bill/hit1?month=2024-01")
        self.assertEqual(self.n_of(second), n, "the function was invoked again")
        self.assert_hit(second)
        self.assertEqual(second.body, first.body)

    def test_unlisted_query_and_headers_are_not_in_the_key(self):
        n = self.n_of(self.get("/prod/bill/unl?month=2024-01&x=1", {"X-Other": "a", "Accept-Language": "en"}))
        for target, headers in (("/prod/bill/unl?month=2024-01&x=2", {"X-Other": "b", "Accept-Language": "en"}),
                                ("/prod/bill/unl?x=3&month=2024-01", {"Accept-Language": "en"}),
                                ("/prod/bill/unl?month=2024-01", {"Accept-Language": "en", "X-Other": "c"})):
            with self.subTest(target=target, headers=headers):
                r = self.get(target, headers)
                self.assertEqual(self.n_of(r), n)
                self.assert_hit(r)

    def test_listed_path_query_and_header_are_in_the_key(self):
        base = ("/prod/bill/lst?month=2024-01", {"Accept-Language": "en"})
        n = self.n_of(self.get(*base))
        seen = {n}
        for target, headers in (("/prod/bill/lst?month=2024-02", {"Accept-Language": "en"}),
                                ("/prod/bill/lst?month=2024-01", {"Accept-Language": "fr"}),
                                ("/prod/bill/lst2?month=2024-01", {"Accept-Language": "en"})):
            with self.subTest(target=target, headers=headers):
                r = self.get(target, headers)
                m = self.n_of(r)
                self.assertNotIn(m, seen, "served another key's entry")
                self.assert_not_hit(r)
                seen.add(m)
        self.assertEqual(self.n_of(self.get(*base)), n, "the first entry is still cached")

    def test_disabled_stage_cache_never_caches(self):
        self.assert_caches(self.HOST, "/prod/bill/d1?month=2024-01")
        a = self.n_of(self.get("/off/bill/d1?month=2024-01"))
        r = self.get("/off/bill/d1?month=2024-01")
        self.assertNotEqual(self.n_of(r), a)
        self.assert_not_hit(r)

    def test_zero_ttl_never_caches(self):
        self.assert_caches(self.HOST, "/prod/bill/z1?month=2024-01")
        a = self.n_of(self.get("/zero/bill/z1?month=2024-01"))
        r = self.get("/zero/bill/z1?month=2024-01")
        self.assertNotEqual(self.n_of(r), a)
        self.assert_not_hit(r)

    def test_route_cache_ttl_overrides_the_stage(self):
        n = self.n_of(self.get("/prod/short/t1"))
        self.assertEqual(self.n_of(self.get("/prod/short/t1")), n)
        time.sleep(1.2)  # just past the route's 1 s TTL (the stage's is 300 s)
        r = self.get("/prod/short/t1")
        self.assertNotEqual(self.n_of(r), n, "still served after the route's cache_ttl_s")
        self.assert_not_hit(r)

    def test_post_is_never_cached(self):
        a = self.n_of(self.call(self.HOST, "/prod/any/p1", "POST", body=b"{}"))
        b = self.n_of(self.call(self.HOST, "/prod/any/p1", "POST", body=b"{}"))
        self.assertNotEqual(a, b)
        # The same route caches GET (so the POSTs above were not cached by choice).
        g = self.n_of(self.get("/prod/any/p1g"))
        self.assertEqual(self.n_of(self.get("/prod/any/p1g")), g)

    def test_head_not_cached_by_default(self):
        self.assert_caches(self.HOST, "/prod/any/h1get")
        a = self.get("/prod/any/h1", method="HEAD")
        b = self.get("/prod/any/h1", method="HEAD")
        self.assertEqual((a.status, b.status), (200, 200))
        self.assertEqual((a.body, b.body), (b"", b""))
        self.assertIsNotNone(a.header("X-Invocation"), a)
        self.assertNotEqual(a.header("X-Invocation"), b.header("X-Invocation"))
        self.assert_not_hit(b)

    def test_head_cached_with_cache_methods(self):
        a = self.get("/prod/head/h2", method="HEAD")
        b = self.get("/prod/head/h2", method="HEAD")
        self.assertEqual((a.status, b.status), (200, 200))
        self.assertEqual(b.body, b"")
        self.assertIsNotNone(a.header("X-Invocation"), a)
        self.assertEqual(b.header("X-Invocation"), a.header("X-Invocation"))
        self.assert_hit(b)


# ---- 2. answers not cached by default ---------------------------------------------------------

class UncachedAnswersTest(StageTestCase):
    ORIGINS = origin("status_fn", "status") + origin("cookie_fn", "setcookie")
    APIS = """
[[apis]]
name = "errs"
hosts = ["errs.test"]

  [[apis.stages]]
  name = "prod"
  cache = { enabled = true, ttl_s = 300 }

  [[apis.stages]]
  name = "keep"
  cache = { enabled = true, ttl_s = 300, cache_set_cookie = true, cache_errors = true }

  [[apis.routes]]
  method = "GET"
  path = "/cookie"
  origin = "cookie_fn"

  [[apis.routes]]
  method = "GET"
  path = "/status/{code}"
  origin = "status_fn"
  cache_key = { path = ["code"] }
"""
    HOST = "errs.test"

    def twice(self, target, status):
        a = self.call(self.HOST, target)
        b = self.call(self.HOST, target)
        return self.n_of(a, status), self.n_of(b, status), b

    def test_ok_answer_is_cached(self):
        a, b, r = self.twice("/prod/status/200", 200)
        self.assertEqual(a, b)
        self.assert_hit(r)

    def test_set_cookie_not_cached_by_default(self):
        self.assert_caches(self.HOST, "/prod/status/201", 201)
        a, b, r = self.twice("/prod/cookie", 200)
        self.assertNotEqual(a, b)
        self.assertEqual(r.header("Set-Cookie"), "session=%d; Path=/; HttpOnly" % b)

    def test_errors_not_cached_by_default(self):
        self.assert_caches(self.HOST, "/prod/status/202", 202)
        for code in (500, 429):
            with self.subTest(code=code):
                a, b, r = self.twice("/prod/status/%d" % code, code)
                self.assertNotEqual(a, b)
                self.assert_not_hit(r)

    def test_set_cookie_cached_with_cache_set_cookie(self):
        a, b, r = self.twice("/keep/cookie", 200)
        self.assertEqual(a, b)
        self.assert_hit(r)

    def test_errors_cached_with_cache_errors(self):
        for code in (500, 429):
            with self.subTest(code=code):
                a, b, r = self.twice("/keep/status/%d" % code, code)
                self.assertEqual(a, b)
                self.assert_hit(r)


# ---- 3. per-request invalidation (Cache-Control: max-age=0) ---------------------------------------

class InvalidationTest(StageTestCase):
    ORIGINS = origin("counter_fn", "counter")
    APIS = """
[[apis]]
name = "inv"
hosts = ["inv.test"]

  [[apis.stages]]
  name = "warn"
  cache = { enabled = true, ttl_s = 300, require_authorization_to_invalidate = true, unauthorized_invalidation = "ignore_with_warning" }

  [[apis.stages]]
  name = "ignore"
  cache = { enabled = true, ttl_s = 300, require_authorization_to_invalidate = true, unauthorized_invalidation = "ignore" }

  [[apis.stages]]
  name = "fail"
  cache = { enabled = true, ttl_s = 300, require_authorization_to_invalidate = true, unauthorized_invalidation = "fail" }

  [[apis.stages]]
  name = "open"
  cache = { enabled = true, ttl_s = 300, require_authorization_to_invalidate = false }

  [[apis.routes]]
  method = "GET"
  path = "/item/{id}"
  origin = "counter_fn"
  cache_key = { path = ["id"] }
"""
    HOST = "inv.test"
    INVALIDATE = {"Cache-Control": "max-age=0"}

    def get(self, target, headers=None):
        return self.call(self.HOST, target, headers=headers)

    def cached(self, target):
        """Fills the entry and checks that it is served from the cache; returns its n."""
        n = self.n_of(self.get(target))
        r = self.get(target)
        self.assertEqual(self.n_of(r), n)
        self.assert_hit(r)
        return n

    def test_authorized_invalidation_replaces_the_entry(self):
        n = self.cached("/warn/item/a")
        r = self.get("/warn/item/a", dict(self.INVALIDATE, **AUTH))
        fresh = self.n_of(r)
        self.assertNotEqual(fresh, n, "the invalidating request was not sent to the function")
        self.assert_not_hit(r)
        self.assertIsNone(r.header("Warning"), r)
        self.assertEqual(self.n_of(self.get("/warn/item/a")), fresh, "the entry was not replaced")

    def test_unauthorized_invalidation_ignored_with_warning(self):
        n = self.cached("/warn/item/b")
        for extra in ({}, {"Authorization": "Bearer wrong-token"}):
            with self.subTest(authorization=extra):
                r = self.get("/warn/item/b", dict(self.INVALIDATE, **extra))
                self.assertEqual(self.n_of(r), n)
                self.assertIsNotNone(r.header("Warning"), r)
        self.assertEqual(self.n_of(self.get("/warn/item/b")), n)

    def test_unauthorized_invalidation_ignored_silently(self):
        n = self.cached("/ignore/item/c")
        r = self.get("/ignore/item/c", self.INVALIDATE)
        self.assertEqual(self.n_of(r), n)
        self.assertIsNone(r.header("Warning"), r)

    def test_unauthorized_invalidation_fails(self):
        n = self.cached("/fail/item/d")
        self.assertEqual(self.get("/fail/item/d", self.INVALIDATE).status, 403)
        self.assertEqual(self.n_of(self.get("/fail/item/d")), n, "a refused invalidation changed the entry")
        fresh = self.n_of(self.get("/fail/item/d", dict(self.INVALIDATE, **AUTH)))
        self.assertNotEqual(fresh, n, "the admin token must still invalidate")

    def test_anyone_may_invalidate_when_not_required(self):
        n = self.cached("/open/item/e")
        fresh = self.n_of(self.get("/open/item/e", self.INVALIDATE))
        self.assertNotEqual(fresh, n)
        self.assertEqual(self.n_of(self.get("/open/item/e")), fresh)


# ---- 4. stage flush (admin POST /purge) ---------------------------------------------------------

class StageFlushTest(StageTestCase):
    ORIGINS = origin("counter_fn", "counter")
    APIS = """
[[apis]]
name = "billing"
hosts = ["flush.test"]

  [[apis.stages]]
  name = "prod"
  cache = { enabled = true, ttl_s = 300 }

  [[apis.stages]]
  name = "beta"
  cache = { enabled = true, ttl_s = 300 }

  [[apis.routes]]
  method = "GET"
  path = "/item/{id}"
  origin = "counter_fn"
  cache_key = { path = ["id"] }
"""
    HOST = "flush.test"

    def purge(self, payload, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return request(self.admin, "POST", "/purge", host="127.0.0.1", headers=h,
                       body=json.dumps(payload).encode())

    def cached(self, target):
        n = self.n_of(self.call(self.HOST, target))
        self.assertEqual(self.n_of(self.call(self.HOST, target)), n, target)
        return n

    def test_flush_one_stage(self):
        entries = {t: self.cached(t) for t in ("/prod/item/1", "/prod/item/2", "/beta/item/1")}
        stage = {"api": "billing", "stage": "prod"}
        self.assertEqual(self.purge(stage).status, 401)
        self.assertEqual(self.purge(stage, {"Authorization": "Bearer not-" + TOKEN}).status, 401)
        self.assertEqual(self.n_of(self.call(self.HOST, "/prod/item/1")), entries["/prod/item/1"],
                         "an unauthenticated purge flushed the stage")
        r = self.purge(stage, AUTH)
        self.assertEqual(r.status, 200, r)
        self.assertGreaterEqual(r.json().get("purged", 0), 1, r)
        for target in ("/prod/item/1", "/prod/item/2"):
            r = self.call(self.HOST, target)
            self.assertNotEqual(self.n_of(r), entries[target], target)
            self.assert_not_hit(r)
        r = self.call(self.HOST, "/beta/item/1")
        self.assertEqual(self.n_of(r), entries["/beta/item/1"], "the other stage was flushed too")
        self.assert_hit(r)

    def test_flush_unknown_stage_is_a_client_error(self):
        self.assertEqual(self.purge({"api": "billing", "stage": "beta"}, AUTH).status, 200, "control")
        for payload in ({"api": "billing", "stage": "nope"}, {"api": "nope", "stage": "prod"}):
            with self.subTest(payload=payload):
                r = self.purge(payload, AUTH)
                self.assertIn(r.status, (400, 404), r)


# ---- 5. stage variables ---------------------------------------------------------------------

class StageVariablesTest(StageTestCase):
    ORIGINS = origin("per_stage_fn", "${stageVariables.fn}")
    APIS = """
[[apis]]
name = "vars"
hosts = ["vars.test"]

  [[apis.stages]]
  name = "prod"
  variables = { greeting = "hello", fn = "counter" }

  [[apis.stages]]
  name = "dev"
  variables = { greeting = "hi", fn = "echo" }

  [[apis.routes]]
  method = "GET"
  path = "/who"
  origin = "per_stage_fn"
"""

    def test_stage_variables_reach_the_function(self):
        r = self.call("vars.test", "/prod/who")
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["fn"], "counter")
        self.assertEqual(body["stageVariables"], {"greeting": "hello", "fn": "counter"})

    def test_function_chosen_by_stage_variable(self):
        r = self.call("vars.test", "/dev/who")
        self.assertEqual(r.status, 200, r)
        event = r.json()  # echo answers with the event it got
        self.assertNotIn("fn", event)
        self.assertEqual(event["resource"], "/who")
        self.assertEqual(event["requestContext"]["stage"], "dev")
        self.assertEqual(event["stageVariables"], {"greeting": "hi", "fn": "echo"})


# ---- 6. throttling ---------------------------------------------------------------------------

def burst(port, host, target, count):
    """count requests at once, each on its own connection; returns (statuses, responses,
    seconds from the first send to the last answer)."""
    results = [None] * count
    gate = threading.Barrier(count)

    def worker(i):
        try:
            gate.wait(5)
            results[i] = request(port, "GET", target, host=host)
        except Exception as e:  # noqa: BLE001 -- reported by the caller's assertions
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - t0
    statuses = [getattr(r, "status", repr(r)) for r in results]
    return statuses, results, elapsed


class ThrottleTest(StageTestCase):
    WORKERS = 2
    ORIGINS = origin("counter_fn", "counter")
    APIS = """
[[apis]]
name = "thr"
hosts = ["thr.test"]

  [[apis.stages]]
  name = "prod"
  throttle = { rate = 5, burst = 5 }

  [[apis.stages]]
  name = "shared"
  throttle = { rate = 1, burst = 4 }

  [[apis.stages]]
  name = "wide"
  throttle = { rate = 50, burst = 50 }

  [[apis.stages]]
  name = "narrow"
  throttle = { rate = 2, burst = 1 }

  [[apis.routes]]
  method = "GET"
  path = "/a"
  origin = "counter_fn"

  [[apis.routes]]
  method = "GET"
  path = "/free"
  origin = "counter_fn"

  [[apis.routes]]
  method = "GET"
  path = "/strict"
  origin = "counter_fn"
  throttle = { rate = 1, burst = 2 }

  [[apis.routes]]
  method = "GET"
  path = "/scarce"
  origin = "counter_fn"
  throttle = { rate = 0.01, burst = 3 }
"""
    HOST = "thr.test"

    def assert_bucket(self, statuses, elapsed, rate, burst_size):
        ok = statuses.count(200)
        limited = statuses.count(429)
        self.assertEqual(ok + limited, len(statuses), statuses)
        # Tokens available during the burst: burst + rate * elapsed, +1 for rounding.
        self.assertLessEqual(ok, burst_size + 1 + int(rate * elapsed),
                             "%s in %.2f s" % (statuses, elapsed))
        self.assertGreaterEqual(ok, 1, statuses)
        self.assertGreaterEqual(limited, 1, statuses)

    def test_stage_burst_gets_429(self):
        statuses, results, elapsed = burst(self.port, self.HOST, "/prod/a", 12)
        self.assert_bucket(statuses, elapsed, 5, 5)
        limited = [r for r in results if getattr(r, "status", None) == 429]
        for r in limited:
            self.assertEqual(r.json(), {"message": "Too Many Requests"}, r)
            retry = r.header("Retry-After")
            self.assertIsNotNone(retry, r)
            self.assertRegex(retry, r"^\d+$")

    def test_bucket_shared_by_workers(self):
        # workers = 2 and 16 connections: per-worker buckets would let up to 8 through.
        statuses, _, elapsed = burst(self.port, self.HOST, "/shared/a", 16)
        self.assert_bucket(statuses, elapsed, 1, 4)

    def test_stage_refusal_costs_the_route_nothing(self):
        # Route bucket: 3 tokens that do not come back during the test; stage: 1 token per 0.5 s.
        # Requests the stage refuses must leave the route's tokens alone, so exactly 3 requests
        # get through in all (a route charged for refused requests would let 1 through).
        statuses = [self.call(self.HOST, "/narrow/scarce").status for _ in range(3)]
        self.assertEqual(statuses[0], 200, statuses)
        self.assertIn(429, statuses, "control: the stage bucket never refused")
        for _ in range(3):
            time.sleep(0.6)  # the stage has a token again
            statuses.append(self.call(self.HOST, "/narrow/scarce").status)
        self.assertEqual(statuses.count(200), 3, statuses)
        self.assertEqual(statuses[-1], 429, statuses)

    def test_route_throttle_applies_to_its_route_only(self):
        statuses, _, elapsed = burst(self.port, self.HOST, "/wide/strict", 8)
        self.assert_bucket(statuses, elapsed, 1, 2)
        statuses, _, _ = burst(self.port, self.HOST, "/wide/free", 8)
        self.assertEqual(statuses, [200] * 8, "the stage's other route was throttled too")


# ---- 7. CORS ---------------------------------------------------------------------------------

class CorsTest(StageTestCase):
    ORIGINS = origin("counter_fn", "counter")
    APIS = """
[[apis]]
name = "corsapi"
hosts = ["cors.test"]
cors = { allow_origins = ["http://app.test"], allow_methods = ["GET", "POST"], allow_headers = ["Content-Type", "Authorization"], max_age_s = 600 }

  [[apis.stages]]
  name = "prod"

  [[apis.routes]]
  method = "GET"
  path = "/thing"
  origin = "counter_fn"
"""
    HOST = "cors.test"

    @staticmethod
    def tokens(value):
        return {v.strip().lower() for v in (value or "").split(",") if v.strip()}

    def preflight(self, origin_value):
        return self.call(self.HOST, "/prod/thing", "OPTIONS",
                         headers={"Origin": origin_value, "Access-Control-Request-Method": "GET",
                                  "Access-Control-Request-Headers": "content-type"})

    def test_preflight(self):
        before = self.n_of(self.call(self.HOST, "/prod/thing"))
        r = self.preflight("http://app.test")
        self.assertIn(r.status, (200, 204), r)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "http://app.test", r)
        self.assertLessEqual({"get", "post"}, self.tokens(r.header("Access-Control-Allow-Methods")), r)
        self.assertLessEqual({"content-type", "authorization"},
                             self.tokens(r.header("Access-Control-Allow-Headers")), r)
        self.assertEqual(r.header("Access-Control-Max-Age"), "600", r)
        after = self.n_of(self.call(self.HOST, "/prod/thing"))
        self.assertEqual(after, before + 1, "the preflight invoked the function")

    def test_preflight_from_unlisted_origin(self):
        control = self.preflight("http://app.test")
        self.assertEqual(control.header("Access-Control-Allow-Origin"), "http://app.test", control)
        r = self.preflight("http://evil.test")
        self.assertIsNone(r.header("Access-Control-Allow-Origin"), r)

    def test_actual_request_from_allowed_origin(self):
        r = self.call(self.HOST, "/prod/thing", headers={"Origin": "http://app.test"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "http://app.test", r)
        vary = set()
        for line in r.header_all("Vary"):
            vary |= self.tokens(line)
        self.assertIn("origin", vary, r)

    def test_actual_request_from_unlisted_origin(self):
        control = self.call(self.HOST, "/prod/thing", headers={"Origin": "http://app.test"})
        self.assertEqual(control.header("Access-Control-Allow-Origin"), "http://app.test", control)
        r = self.call(self.HOST, "/prod/thing", headers={"Origin": "http://evil.test"})
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.header("Access-Control-Allow-Origin"), r)


# ---- 8. API keys -----------------------------------------------------------------------------

class ApiKeyTest(StageTestCase):
    ORIGINS = origin("counter_fn", "counter")
    APIS = """
[[apis]]
name = "keys"
hosts = ["keys.test"]

  [[apis.stages]]
  name = "prod"
  api_keys_env = "APITEST_KEYS"
  cache = { enabled = true, ttl_s = 300 }

  [[apis.routes]]
  method = "GET"
  path = "/k/{id}"
  origin = "counter_fn"
  cache_key = { path = ["id"] }
  api_key_required = true

  [[apis.routes]]
  method = "GET"
  path = "/open/{id}"
  origin = "counter_fn"
  cache_key = { path = ["id"] }
"""
    HOST = "keys.test"

    def get(self, target, key=None):
        return self.call(self.HOST, target, headers={"x-api-key": key} if key is not None else None)

    def test_missing_key_is_403(self):
        self.assert_message(self.get("/prod/k/m1"), 403, "Forbidden")

    def test_wrong_key_is_403(self):
        for key in ("nope", "key-on", "key-one,key-two", "KEY-ONE", ""):
            with self.subTest(key=key):
                self.assert_message(self.get("/prod/k/w1", key), 403, "Forbidden")

    def test_each_stage_key_is_accepted(self):
        for i, key in enumerate(KEYS):
            with self.subTest(key=key):
                self.assertEqual(self.get("/prod/k/r%d" % i, key).status, 200)

    def test_key_is_checked_before_the_cache(self):
        n = self.n_of(self.get("/prod/k/c1", KEYS[0]))
        r = self.get("/prod/k/c1", KEYS[0])
        self.assertEqual(self.n_of(r), n)
        self.assert_hit(r)
        self.assert_message(self.get("/prod/k/c1"), 403, "Forbidden")
        self.assert_message(self.get("/prod/k/c1", "nope"), 403, "Forbidden")

    def test_route_without_key_requirement(self):
        self.assertEqual(self.get("/prod/open/o1").status, 200)


# ---- 9. JWT authorizers ---------------------------------------------------------------------

ISSUER = "https://issuer.test/"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def openssl(*args, data=None):
    return subprocess.run(["openssl"] + list(args), input=data, capture_output=True, check=True,
                          timeout=30).stdout


def der_ecdsa_to_raw(sig, size=32):
    """ECDSA-Sig-Value (DER SEQUENCE of INTEGER r, s) -> the JWS form, r || s (2 * size bytes)."""
    if sig[0] != 0x30:
        raise AssertionError("not a DER ECDSA signature")
    i = 2 if sig[1] < 0x80 else 2 + (sig[1] & 0x7F)
    out = b""
    for _ in range(2):
        if sig[i] != 0x02:
            raise AssertionError("not a DER INTEGER")
        length = sig[i + 1]
        out += sig[i + 2:i + 2 + length].lstrip(b"\0").rjust(size, b"\0")
        i += 2 + length
    return out


class Signer:
    """An RS256 or ES256 key made with the openssl CLI, its JWK, and JWTs signed with it."""

    def __init__(self, directory, alg, kid):
        self.alg, self.kid = alg, kid
        self.pem = os.path.join(directory, kid + ".pem")
        if alg == "RS256":
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.pem)
            modulus = openssl("rsa", "-in", self.pem, "-noout", "-modulus").decode().strip()
            n = bytes.fromhex(modulus.split("=", 1)[1])
            self.jwk = {"kty": "RSA", "kid": kid, "use": "sig", "alg": alg, "n": b64u(n), "e": "AQAB"}
        else:
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", self.pem)
            point = openssl("pkey", "-in", self.pem, "-pubout", "-outform", "DER")[-65:]
            if point[0] != 0x04:
                raise AssertionError("unexpected P-256 public key encoding")
            self.jwk = {"kty": "EC", "kid": kid, "use": "sig", "alg": alg, "crv": "P-256",
                        "x": b64u(point[1:33]), "y": b64u(point[33:])}

    def token(self, claims, header=None):
        head = {"alg": self.alg, "typ": "JWT", "kid": self.kid}
        head.update(header or {})
        signing_input = (b64u(json.dumps(head).encode()) + "." + b64u(json.dumps(claims).encode())).encode()
        sig = openssl("dgst", "-sha256", "-sign", self.pem, data=signing_input)
        if self.alg == "ES256":
            sig = der_ecdsa_to_raw(sig)
        return signing_input.decode() + "." + b64u(sig)


def claims_for(sub, **extra):
    now = int(time.time())
    c = {"sub": sub, "iss": ISSUER, "aud": "billing", "iat": now, "exp": now + 600, "scope": "read write"}
    c.update(extra)
    return c


JWT_APIS = """
[[apis]]
name = "jwtapi"
hosts = ["jwt.test"]

  [apis.authorizers.users]
  type = "jwt"
  jwks_file = "@JWKS@"
  issuer = "https://issuer.test/"
  audience = ["billing"]

  [[apis.stages]]
  name = "prod"

  [[apis.stages]]
  name = "cached"
  cache = { enabled = true, ttl_s = 300 }

  [[apis.routes]]
  method = "GET"
  path = "/me"
  origin = "claims_fn"
  authorizer = "users"

  [[apis.routes]]
  method = "GET"
  path = "/c/{id}"
  origin = "claims_fn"
  authorizer = "users"
  cache_key = { path = ["id"] }
"""

CHECK_APIS = """
[[apis]]
name = "jwtcheck"
hosts = ["jwt.test"]

  [apis.authorizers.users]
  type = "jwt"
  jwks_file = "@JWKS@"
  issuer = "https://issuer.test/"
  audience = "billing"

  [[apis.stages]]
  name = "prod"
  cache = { enabled = true, ttl_s = 300 }

  [[apis.routes]]
  method = "GET"
  path = "/c/{id}"
  origin = "claims_fn"
  authorizer = "users"
  cache_key = @CACHE_KEY@
"""


class JwtTest(StageTestCase):
    ORIGINS = origin("claims_fn", "claims")
    HOST = "jwt.test"
    check_ids = itertools.count(1)

    @classmethod
    def setUpClass(cls):
        cls.keydir = tempfile.mkdtemp(prefix="portico-jwt-")
        try:
            cls.rsa = Signer(cls.keydir, "RS256", "rsa-1")
            cls.ec = Signer(cls.keydir, "ES256", "ec-1")
            cls.jwks = os.path.join(cls.keydir, "jwks.json")
            with open(cls.jwks, "w") as f:
                json.dump({"keys": [cls.rsa.jwk, cls.ec.jwk]}, f)
            cls.APIS = JWT_APIS.replace("@JWKS@", cls.jwks)
            super().setUpClass()
        except BaseException:
            shutil.rmtree(cls.keydir, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.keydir, ignore_errors=True)

    def get(self, target, token=None, scheme="Bearer "):
        return self.call(self.HOST, target,
                         headers={"Authorization": scheme + token} if token is not None else None)

    def assert_claims(self, r, expected):
        self.assertEqual(r.status, 200, r)
        claims = (r.json().get("authorizer") or {}).get("claims")
        self.assertIsInstance(claims, dict, r)
        for k, v in claims.items():
            self.assertIsInstance(v, str, "claim %s is not a string: %r" % (k, v))
        for k, v in expected.items():
            self.assertEqual(claims.get(k), v, claims)
        self.assertIn("exp", claims)

    def test_rs256_token(self):
        r = self.get("/prod/me", self.rsa.token(claims_for("alice")))
        self.assert_claims(r, {"sub": "alice", "iss": ISSUER, "aud": "billing", "scope": "read write"})

    def test_es256_token(self):
        r = self.get("/prod/me", self.ec.token(claims_for("bob")))
        self.assert_claims(r, {"sub": "bob", "iss": ISSUER, "scope": "read write"})

    def test_audience_list_in_token(self):
        r = self.get("/prod/me", self.rsa.token(claims_for("carol", aud=["other", "billing"])))
        self.assert_claims(r, {"sub": "carol"})

    def test_rejected_tokens(self):
        good = self.rsa.token(claims_for("dave"))
        head, payload, sig = good.split(".")
        forged_payload = b64u(json.dumps(claims_for("mallory")).encode())
        raw_sig = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
        raw_sig[len(raw_sig) // 2] ^= 0x01
        none_head = b64u(json.dumps({"alg": "none", "typ": "JWT", "kid": "rsa-1"}).encode())
        now = int(time.time())
        cases = {
            "no token": None,
            "garbage": "not.a.jwt",
            "payload changed": "%s.%s.%s" % (head, forged_payload, sig),
            "signature changed": "%s.%s.%s" % (head, payload, b64u(bytes(raw_sig))),
            "expired": self.rsa.token(claims_for("dave", iat=now - 1200, exp=now - 600)),
            "wrong audience": self.rsa.token(claims_for("dave", aud="other")),
            "wrong issuer": self.rsa.token(claims_for("dave", iss="https://evil.test/")),
            "unknown kid": self.rsa.token(claims_for("dave"), {"kid": "nope"}),
            "alg none": "%s.%s." % (none_head, payload),
            "es256 token, rsa kid": self.ec.token(claims_for("dave"), {"kid": "rsa-1"}),
        }
        before = self.get("/prod/me", good).json()["n"]
        for name, token in cases.items():
            with self.subTest(case=name):
                self.assert_message(self.get("/prod/me", token), 401, "Unauthorized")
        after = self.get("/prod/me", good).json()["n"]
        self.assertEqual(after, before + 1, "a rejected request invoked the function")

    def test_authorizer_runs_before_the_cache(self):
        n = self.n_of(self.get("/cached/c/1", self.rsa.token(claims_for("erin"))))
        r = self.get("/cached/c/1", self.rsa.token(claims_for("erin")))
        self.assertEqual(self.n_of(r), n)
        self.assert_hit(r)
        self.assert_message(self.get("/cached/c/1"), 401, "Unauthorized")
        now = int(time.time())
        expired = self.rsa.token(claims_for("erin", iat=now - 1200, exp=now - 600))
        self.assert_message(self.get("/cached/c/1", expired), 401, "Unauthorized")
        # No identity in the key: another valid caller gets the same entry (what `-t` warns of).
        self.assertEqual(self.n_of(self.get("/cached/c/1", self.ec.token(claims_for("frank")))), n)

    def check(self, cache_key, jwks_file=None, cwd=None):
        """`portico -t` on a conf whose one route has the authorizer and is cached by its stage."""
        conf = conf_head() + self.ORIGINS.replace("@FN@", FN.endpoint) + CHECK_APIS \
            .replace("@JWKS@", jwks_file or self.jwks).replace("@CACHE_KEY@", cache_key)
        path = os.path.join(self.keydir, "check-%d.toml" % next(self.check_ids))
        with open(path, "w") as f:
            f.write(conf)
        return run_portico(["-t", "-c", path], env=dict(os.environ, **ENV), cwd=cwd)

    def test_check_warns_when_the_cache_key_lacks_the_identity(self):
        rc, out, err = self.check('{ path = ["id"] }')
        self.assertEqual(rc, 0, err)
        self.assertIn("configuration ok", out)
        self.assertRegex(out + err, r"(?i)shared", "no warning about cached answers shared across callers")
        rc, out, err = self.check('{ path = ["id"], headers = ["Authorization"] }')
        self.assertEqual(rc, 0, err)
        self.assertNotRegex(out + err, r"(?i)shared", "warned although the key has the identity")

    def test_relative_jwks_file_resolves_against_the_conf_folder(self):
        os.makedirs(os.path.join(self.keydir, "keys"), exist_ok=True)
        shutil.copy(self.jwks, os.path.join(self.keydir, "keys", "jwks.json"))
        key = '{ path = ["id"], headers = ["Authorization"] }'
        rc, out, err = self.check(key, "keys/jwks.json", cwd="/")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.check(key, "keys/missing.json", cwd="/")
        self.assertNotEqual(rc, 0, "a missing jwks_file was accepted")
        self.assertIn("missing.json", err)


# ---- 10. function errors on a cached stage (the rest: test_lambda.py) -------------------------

class StageFunctionErrorsTest(StageTestCase):
    ORIGINS = origin("fail_fn", "fail") + origin("binary_fn", "binary") + origin("sleep_fn", "sleep", 300)
    APIS = """
[[apis]]
name = "ferr"
hosts = ["ferr.test"]

  [[apis.stages]]
  name = "prod"
  cache = { enabled = true, ttl_s = 300 }

  [[apis.routes]]
  method = "GET"
  path = "/fail"
  origin = "fail_fn"

  [[apis.routes]]
  method = "GET"
  path = "/binary"
  origin = "binary_fn"

  [[apis.routes]]
  method = "GET"
  path = "/sleep"
  origin = "sleep_fn"
"""
    HOST = "ferr.test"

    def failures_logged(self):
        return sum(1 for line in FN.stderr.snapshot() if "fail failed" in line)

    def test_function_error_is_never_cached(self):
        self.assert_caches_binary()
        base = self.failures_logged()
        for _ in range(2):
            r = self.call(self.HOST, "/prod/fail")
            self.assert_message(r, 502, "Internal server error")
            self.assert_not_hit(r)
        self.assertTrue(wait_until(lambda: self.failures_logged() >= base + 2, 3),
                        "the second request did not reach the function")

    def test_timeout_is_never_cached(self):
        self.assert_caches_binary()
        for _ in range(2):
            t0 = time.monotonic()
            r = self.call(self.HOST, "/prod/sleep?ms=2000")
            took = time.monotonic() - t0
            self.assert_message(r, 504, "Endpoint request timed out")
            self.assertGreaterEqual(took, 0.25, "a 504 came from a cache")
            self.assertLess(took, 2.5)

    def assert_caches_binary(self):
        """The stage caches (control), and a base64 answer is stored decoded."""
        a = self.call(self.HOST, "/prod/binary")
        b = self.call(self.HOST, "/prod/binary")
        for r in (a, b):
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, PNG)
            self.assertEqual(r.header("Content-Type"), "image/png")
        self.assert_hit(b)

    def test_base64_answer_cached_decoded(self):
        self.assert_caches_binary()


# ---- 11. metrics -------------------------------------------------------------------------------

class ApiMetricsTest(StageTestCase):
    ORIGINS = (origin("counter_fn", "counter") + origin("fail_fn", "fail") +
               origin("malformed_fn", "malformed") + origin("sleep_fn", "sleep", 300))
    APIS = """
[[apis]]
name = "met"
hosts = ["met.test"]

  [[apis.stages]]
  name = "prod"
  cache = { enabled = true, ttl_s = 300, require_authorization_to_invalidate = true, unauthorized_invalidation = "ignore_with_warning" }

  [[apis.stages]]
  name = "err"

  [[apis.stages]]
  name = "tight"
  throttle = { rate = 1, burst = 1 }

  [[apis.routes]]
  method = "GET"
  path = "/m/{id}"
  origin = "counter_fn"
  cache_key = { path = ["id"] }

  [[apis.routes]]
  method = "GET"
  path = "/fail"
  origin = "fail_fn"

  [[apis.routes]]
  method = "GET"
  path = "/malformed"
  origin = "malformed_fn"

  [[apis.routes]]
  method = "GET"
  path = "/sleep"
  origin = "sleep_fn"
"""
    HOST = "met.test"

    def deltas(self, before, check, timeout=3):
        """Scrapes /metrics until check(delta) is true or timeout, where delta(family, **labels)
        is that sum's increase since `before`; returns (delta, the last scrape) for the asserts."""
        state = {}

        def attempt():
            after = scrape(self.admin)
            state["delta"] = lambda family, /, **l: metric(after, family, **l) - metric(before, family, **l)
            state["after"] = after
            return check(state["delta"])

        wait_until(attempt, timeout)
        return state["delta"], state["after"]

    def test_request_and_cache_metrics(self):
        before = scrape(self.admin)
        self.n_of(self.call(self.HOST, "/prod/m/1"))                                   # miss
        self.n_of(self.call(self.HOST, "/prod/m/1"))                                   # hit
        self.n_of(self.call(self.HOST, "/prod/m/1", headers=dict({"Cache-Control": "max-age=0"}, **AUTH)))
        self.n_of(self.call(self.HOST, "/prod/m/1", headers={"Cache-Control": "max-age=0"}))
        results = ("miss", "hit", "invalidated", "invalidation_ignored")
        cache = "portico_api_cache_requests_total"

        def done(d):
            return (all(d(cache, api="met", stage="prod", result=x) >= 1 for x in results) and
                    d("portico_requests_total", kind="api", name="met", stage="prod", code="2xx") >= 4)

        d, _ = self.deltas(before, done)
        for x in results:
            self.assertGreaterEqual(d(cache, api="met", stage="prod", result=x), 1, x)
        self.assertEqual(d("portico_requests_total", kind="api", name="met", stage="prod", code="2xx"), 4)

    def test_throttle_metrics(self):
        before = scrape(self.admin)
        statuses = [self.call(self.HOST, "/tight/m/9").status for _ in range(4)]
        limited = statuses.count(429)
        self.assertGreaterEqual(limited, 1, statuses)
        d, _ = self.deltas(before, lambda d: (
            d("portico_api_throttled_total", api="met", stage="tight") >= limited and
            d("portico_requests_total", kind="api", name="met", stage="tight", code="4xx") >= limited))
        self.assertEqual(d("portico_api_throttled_total", api="met", stage="tight"), limited)
        self.assertEqual(d("portico_requests_total", kind="api", name="met", stage="tight", code="4xx"), limited)

    def test_function_metrics(self):
        before = scrape(self.admin)
        self.assertEqual(self.call(self.HOST, "/err/m/5").status, 200)
        self.assertEqual(self.call(self.HOST, "/err/fail").status, 502)
        self.assertEqual(self.call(self.HOST, "/err/malformed").status, 502)
        self.assertEqual(self.call(self.HOST, "/err/sleep?ms=2000").status, 504)
        errors = "portico_api_function_errors_total"
        duration = "portico_api_function_duration_seconds_count"
        d, after = self.deltas(before, lambda d: (
            d(duration, api="met", stage="err") >= 1 and d(errors, api="met", stage="err") >= 3 and
            d("portico_requests_total", kind="api", name="met", stage="err", code="5xx") >= 3))
        self.assertGreaterEqual(d(duration, api="met", stage="err"), 1)
        self.assertEqual(d(errors, api="met", stage="err"), 3)
        kinds = {l.get("error") for n, l, v in after
                 if n == errors and l.get("api") == "met" and l.get("stage") == "err" and v > 0}
        self.assertGreaterEqual(len(kinds), 2, "a timeout and a function error share one error label: %s" % kinds)
        self.assertGreaterEqual(d("portico_requests_total", kind="api", name="met", stage="err", code="5xx"), 3)


if __name__ == "__main__":
    unittest.main()
