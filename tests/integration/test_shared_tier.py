"""The shared tier (L2, a Redis behind every edge's memory tier), black box: two real Portico
processes ("edges" A and B, two workers each) against one real redis-server (redisfix.py).

  - a fill on one edge is a hit on the other without an origin request; Vary variants are
    shared per request header (never the other variant);
  - an object's Redis TTL is its remaining freshness (and an expired object is not served from
    L2); objects above cache.redis_max_object stay in L1; garbage in Redis is a miss;
  - a site purge (whole site, or paths) and an API stage flush on one edge reach the other:
    its L1 copy is dropped too, and the news is counted;
  - concurrent misses on both edges make one origin fetch (cross-edge lock); an uncacheable
    answer releases the waiting edge at once (no 2 s lock wait);
  - Redis killed under load (wrk), then restarted; Redis accepting connections but never
    answering (SIGSTOP): clients always get their 200s, promptly; the tier comes back;
  - the conf: redis_password_env (unset: `portico -t` fails; set: it authenticates), a
    malformed redis URL; redis_cluster = true against a 3-master Redis Cluster.

Each test uses its own URL paths (and purges only sites no other test of its class reads), so
entries never leak between tests. The origin is a scripted upstream (upstream.py) counting
requests per path: an unchanged count is the proof that an answer came from a cache. An edge
writes a fill to Redis once the fill is complete (after its client's answer), so a read on the
other edge first waits (bounded) for the key to be in Redis. Sleeps are only where real time
must pass (a 1 s freshness, the middle of a load run).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness import FunctionHost, Portico, Upstream, metric, pattern_bytes, request, run_portico, scrape, wait_until
from redisfix import RedisCluster, RedisServer, requires_redis

TOKEN = "l2-purge-token"
ENV = {"PORTICO_ADMIN_TOKEN": TOKEN}
HIT, MISS = "Hit from portico", "Miss from portico"
READY_TIMEOUT = 10.0  # s: the tier must be in use (generations loaded, connection up) within this
NEWS_TIMEOUT = 5.0    # s: purge news must reach the other edge within this (poll: every 1 s)
WRK = "/usr/bin/wrk" if os.path.exists("/usr/bin/wrk") else None

CONF = """\
[server]
workers = 2
listen = ["127.0.0.1:0"]
access_log = "off"

[admin]
listen = "127.0.0.1:0"

[cache]
memory = "16MiB"
redis = "@REDIS@"
redis_max_object = "4KiB"
@CACHE_EXTRA@

[origins.up]
type = "http"
endpoint = "@UPSTREAM@"
timeout_ms = 5000
@ORIGINS@

[[sites]]
name = "s"
hosts = ["s.test"]
origin = "up"
default_ttl_s = 0

[[sites]]
name = "pw"
hosts = ["pw.test"]
origin = "up"
default_ttl_s = 0

[[sites]]
name = "pp"
hosts = ["pp.test"]
origin = "up"
default_ttl_s = 0
@APIS@
"""

FN_ORIGIN = """
[origins.counter_fn]
type = "lambda"
endpoint = "@FN@"
function = "counter"
timeout_ms = 5000
"""

APIS = """
[[apis]]
name = "billing"
hosts = ["api.test"]

  [[apis.stages]]
  name = "prod"
  cache = { enabled = true, ttl_s = 300 }

  [[apis.routes]]
  method = "GET"
  path = "/item/{id}"
  origin = "counter_fn"
  cache_key = { path = ["id"] }
"""


def make_conf(redis_url, upstream, fn=None, cache_extra=""):
    conf = CONF.replace("@REDIS@", redis_url).replace("@UPSTREAM@", upstream.endpoint)
    conf = conf.replace("@CACHE_EXTRA@", cache_extra)
    if fn is not None:
        conf = conf.replace("@ORIGINS@", FN_ORIGIN.replace("@FN@", fn.endpoint)).replace("@APIS@", APIS)
    return conf.replace("@ORIGINS@", "").replace("@APIS@", "")


class SharedUpstream(Upstream):
    """upstream.py's scripted server, plus script(path, **params) (query parameters applied to
    every request for `path`, so URLs need no query string) and first_delay_ms=N (only the
    first request for that path waits N ms before answering)."""

    def __init__(self):
        self.scripts = {}
        self._seen = set()
        self._seen_lock = threading.Lock()
        super().__init__()

    def script(self, path, **params):
        self.scripts[path] = {k: str(v) for k, v in params.items()}

    def hits(self, path):
        return len([r for r in self.wait_requests(0, 0) if r.path == path])

    def _respond(self, conn, req):
        if req.path in self.scripts:
            req.query = dict(req.query, **self.scripts[req.path])
        if "first_delay_ms" in req.query:
            with self._seen_lock:
                first = req.path not in self._seen
                self._seen.add(req.path)
            if first:
                time.sleep(int(req.query["first_delay_ms"]) / 1000.0)
        return super()._respond(conn, req)


class Edge:
    """One Portico process and its helpers."""

    def __init__(self, conf, env=None):
        self.portico = Portico(conf, env=dict(ENV, **(env or {})))
        self.port = self.portico.http_port
        self.admin = self.portico.admin_port

    def get(self, target, host="s.test", headers=None, timeout=5.0):
        return request(self.port, "GET", target, host=host, headers=headers, timeout=timeout)

    def metrics(self):
        return scrape(self.admin)

    def m(self, name, **labels):
        return metric(self.metrics(), name, **labels)

    def purge(self, doc):
        return request(self.admin, "POST", "/purge", host="127.0.0.1",
                       headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"},
                       body=json.dumps(doc).encode())

    def ready(self):
        return self.m("portico_l2_ready") == 1

    def alive(self):
        return self.portico.proc.poll() is None

    def close(self):
        self.portico.close()


def wait_ready(test, *edges, timeout=READY_TIMEOUT):
    ok = wait_until(lambda: all(e.ready() for e in edges), timeout, interval=0.1)
    test.assertTrue(ok, "portico_l2_ready did not become 1 on every edge within %.0f s; stderr tail:\n%s" % (
        timeout, "\n".join(l for e in edges for l in e.portico.stderr.snapshot()[-5:])))


_probes = [0]


def wait_shared(test, redis, a, b, timeout=READY_TIMEOUT + 5, needed=6):
    """After Redis came back: waits (bounded) until `needed` fills on A in a row are hits on B.
    portico_l2_ready follows the main thread's connection only; each worker's own connection
    comes back after its reconnect backoff, and until then that worker skips the tier. Every
    probe is a new URL on new connections (so on a worker picked by the kernel)."""
    deadline = time.monotonic() + timeout
    streak = 0
    while streak < needed:
        test.assertLess(time.monotonic(), deadline, "fills on A did not become hits on B within %.0f s" % timeout)
        _probes[0] += 1
        target = "/probe/%d/x?cc=max-age%%3D60" % _probes[0]
        r = a.get(target)
        test.assertEqual(r.status, 200, r)
        stored = wait_until(lambda: redis_keys_for(redis, "/probe/%d/" % _probes[0]), 1.0)
        streak = streak + 1 if stored and b.get(target).header("X-Cache") == HIT else 0


def redis_keys_for(redis, path):
    """The ptc: keys (objects and Vary markers: no generations, no fill locks) whose store key
    names `path`."""
    return [k for k in redis.scan_keys("ptc:*") if not k.startswith(("ptc:gen:", "ptc:lock|")) and path in k]


class EdgePairTest(unittest.TestCase):
    """A redis-server, an upstream and two edges, shared by the class's tests."""
    WITH_FUNCTIONS = False

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer()
        cls.up = SharedUpstream()
        cls.fn = FunctionHost() if cls.WITH_FUNCTIONS else None
        conf = make_conf(cls.redis.url, cls.up, cls.fn)
        cls.a = cls.b = None
        try:
            cls.a = Edge(conf)
            cls.b = Edge(conf)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for e in (cls.a, cls.b):
            if e is not None:
                e.close()
        if cls.fn is not None:
            cls.fn.close()
        cls.up.close()
        cls.redis.close()

    def setUp(self):
        wait_ready(self, self.a, self.b)

    def tearDown(self):
        for name, e in (("A", self.a), ("B", self.b)):
            self.assertTrue(e.alive(), "edge %s exited during the test; stderr tail:\n%s"
                            % (name, "\n".join(e.portico.stderr.snapshot()[-10:])))

    def assertHit(self, r):
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Cache"), HIT, r)

    def assertMiss(self, r):
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Cache"), MISS, r)

    def wait_news(self, edge, before):
        ok = wait_until(lambda: edge.m("portico_l2_purges_received_total") > before, NEWS_TIMEOUT)
        self.assertTrue(ok, "the purge news did not reach the other edge within %.0f s" % NEWS_TIMEOUT)

    def keys(self, fragment):
        return set(redis_keys_for(self.redis, fragment))

    def wait_stored(self, fragment, before=frozenset(), count=1):
        """Waits (bounded) until `count` keys naming `fragment` that are not in `before` are in
        Redis. An edge writes a fill to Redis when the fill completes, fire-and-forget, so a
        client that got the answer may be a few milliseconds ahead of the write: a read on the
        other edge waits for it."""
        ok = wait_until(lambda: len(self.keys(fragment) - set(before)) >= count, 3)
        self.assertTrue(ok, "%d new key(s) for %s did not reach Redis (have %r)"
                        % (count, fragment, sorted(self.keys(fragment))))


@requires_redis
class SharedTierTest(EdgePairTest):
    WITH_FUNCTIONS = True

    # ---- fills and hits ----
    def test_fill_on_one_edge_is_a_hit_on_the_other(self):
        self.up.script("/fill/a", cc="max-age=60")
        hits_b = self.b.m("portico_cache_requests_total", site="s", result="l2_hit")
        writes_a = self.a.m("portico_l2_writes_total")
        first = self.a.get("/fill/a")
        self.assertMiss(first)
        self.wait_stored("/fill/a")
        self.assertGreater(self.a.m("portico_l2_writes_total"), writes_a)
        second = self.b.get("/fill/a")
        self.assertHit(second)
        self.assertEqual(second.body, first.body)
        self.assertEqual(self.up.hits("/fill/a"), 1, "edge B asked the origin")
        self.assertEqual(self.b.m("portico_cache_requests_total", site="s", result="l2_hit") - hits_b, 1)
        third = self.b.get("/fill/a")  # now from B's own L1
        self.assertHit(third)
        self.assertEqual(third.body, first.body)
        self.assertEqual(self.b.m("portico_cache_requests_total", site="s", result="l2_hit") - hits_b, 1)
        self.assertEqual(self.up.hits("/fill/a"), 1)

    def test_vary_variants_are_shared_per_request_header(self):
        self.up.script("/vary/a", cc="max-age=60", hdr_Vary="X-Variant")
        one, two = {"X-Variant": "one"}, {"X-Variant": "two"}
        a_one = self.a.get("/vary/a", headers=one)
        self.assertMiss(a_one)
        self.wait_stored("/vary/a", count=2)  # the variant and the Vary marker
        # B asks for the variant nobody stored: the origin, never A's variant.
        b_two = self.b.get("/vary/a", headers=two)
        self.assertMiss(b_two)
        self.assertIn(["X-Variant", "two"], b_two.json()["headers"], b_two)
        self.assertEqual(self.up.hits("/vary/a"), 2)
        self.wait_stored("/vary/a", count=3)
        # B asks for A's variant: L2, byte for byte.
        b_one = self.b.get("/vary/a", headers=one)
        self.assertHit(b_one)
        self.assertEqual(b_one.body, a_one.body)
        # A asks for B's variant: L2 too (A's L1 has only its own variant).
        a_two = self.a.get("/vary/a", headers=two)
        self.assertHit(a_two)
        self.assertEqual(a_two.body, b_two.body)
        self.assertEqual(self.up.hits("/vary/a"), 2)
        # And each edge keeps answering each variant with its own body.
        for edge in (self.a, self.b):
            for hdrs, want in ((one, a_one.body), (two, b_two.body)):
                r = edge.get("/vary/a", headers=hdrs)
                self.assertHit(r)
                self.assertEqual(r.body, want)
        self.assertEqual(self.up.hits("/vary/a"), 2)

    def test_redis_ttl_is_the_remaining_freshness(self):
        self.up.script("/ttl/a", cc="max-age=1")
        first = self.a.get("/ttl/a")
        filled = time.monotonic()
        self.assertMiss(first)
        keys = wait_until(lambda: redis_keys_for(self.redis, "/ttl/a"), 3)
        self.assertEqual(len(keys), 1, keys)
        self.assertTrue(keys[0].startswith("ptc:") and "|site|s|" in keys[0], keys[0])
        pttl = self.redis.command("PTTL", keys[0])
        self.assertGreater(pttl, 0, "no TTL on %s" % keys[0])
        self.assertLessEqual(pttl, 1000, "the TTL outlives the object's freshness (max-age=1)")
        r = self.b.get("/ttl/a")
        if time.monotonic() - filled < 0.8:  # control: fresh, so from L2 (a very slow run: skipped)
            self.assertHit(r)
            self.assertEqual(r.body, first.body)
            self.assertEqual(self.up.hits("/ttl/a"), 1)
        before = self.up.hits("/ttl/a")
        time.sleep(max(0.0, filled + 1.2 - time.monotonic()))
        # Expired: neither edge serves it from L2 (nor from L1).
        r = self.b.get("/ttl/a")
        self.assertMiss(r)
        self.assertEqual(self.up.hits("/ttl/a"), before + 1)
        self.assertNotEqual(r.body, first.body)

    def test_stale_while_revalidate_copy_is_served_and_refreshed(self):
        self.up.script("/swr/a", cc="max-age=1, stale-while-revalidate=30")
        first = self.a.get("/swr/a")
        self.assertMiss(first)
        keys = wait_until(lambda: redis_keys_for(self.redis, "/swr/a"), 3)
        self.assertEqual(len(keys), 1, keys)
        self.assertGreater(self.redis.command("PTTL", keys[0]), 1000, "the stale allowance is not kept")
        time.sleep(1.2)  # past max-age, inside stale-while-revalidate
        before = self.b.m("portico_cache_requests_total", result="l2_stale_while_revalidate")
        r = self.b.get("/swr/a")
        # B never had it: the stale copy comes from Redis at once, and B refreshes it in the
        # background (one origin request).
        self.assertHit(r)
        self.assertEqual(r.body, first.body)
        self.assertEqual(self.b.m("portico_cache_requests_total", result="l2_stale_while_revalidate"), before + 1)
        self.assertTrue(wait_until(lambda: self.up.hits("/swr/a") == 2, 3), self.up.hits("/swr/a"))

    def test_objects_above_redis_max_object_stay_in_l1(self):
        self.up.script("/big/a", cc="max-age=60", size=10000)  # redis_max_object = 4KiB
        self.up.script("/big/small", cc="max-age=60", size=3000)
        too_large = self.a.m("portico_l2_too_large_total")
        first = self.a.get("/big/a")
        self.assertMiss(first)
        self.assertEqual(first.body, pattern_bytes(10000))
        self.assertHit(self.a.get("/big/a"))  # control: in A's L1
        self.assertGreater(self.a.m("portico_l2_too_large_total"), too_large)
        # A small object of the same site does reach Redis (so its absence below means something).
        self.assertMiss(self.a.get("/big/small"))
        self.wait_stored("/big/small")
        self.assertEqual(redis_keys_for(self.redis, "/big/a"), [])
        r = self.b.get("/big/a")
        self.assertMiss(r)
        self.assertEqual(r.body, pattern_bytes(10000))
        self.assertEqual(self.up.hits("/big/a"), 2)
        self.assertHit(self.b.get("/big/small"))

    def test_garbage_in_redis_is_a_miss(self):
        self.up.script("/garb/junk", cc="max-age=60")
        self.up.script("/garb/cut", cc="max-age=60", size=3000)
        firsts = {}
        for p in ("/garb/junk", "/garb/cut"):
            firsts[p] = self.a.get(p)
            self.assertMiss(firsts[p])
        self.wait_stored("/garb/junk")
        self.wait_stored("/garb/cut")
        junk_key = redis_keys_for(self.redis, "/garb/junk")[0]
        cut_key = redis_keys_for(self.redis, "/garb/cut")[0]
        self.redis.command("SET", junk_key, b"\x00\xffnot an object" * 8, "PX", 60000)
        value = self.redis.command("GET", cut_key)
        self.redis.command("SET", cut_key, value[:-100], "PX", 60000)  # a truncated object
        for p in ("/garb/junk", "/garb/cut"):
            r = self.b.get(p)
            self.assertMiss(r)
            self.assertEqual(self.up.hits(p), 2, p)
            if p == "/garb/cut":
                self.assertEqual(r.body, pattern_bytes(3000))
            else:
                self.assertEqual(r.json()["target"], p)
            self.assertHit(self.b.get(p))
        self.assertTrue(self.b.alive())

    # ---- purges ----
    def test_site_purge_reaches_the_other_edge(self):
        paths = ("/pw/a", "/pw/b")
        bodies = {}
        for p in paths:
            self.up.script(p, cc="max-age=60")
            r = self.a.get(p, host="pw.test")
            self.assertMiss(r)
            bodies[p] = r.body
            self.wait_stored(p)
        old_keys = self.keys("|pw.test|")
        for p in paths:
            self.assertHit(self.b.get(p, host="pw.test"))  # from L2
            r = self.b.get(p, host="pw.test")              # from B's L1
            self.assertHit(r)
            self.assertEqual(r.body, bodies[p])
        received = self.b.m("portico_l2_purges_received_total")
        published = self.a.m("portico_l2_purges_published_total")
        r = self.a.purge({"site": "pw"})
        self.assertEqual(r.status, 200, r)
        self.wait_news(self.b, received)
        self.assertEqual(self.a.m("portico_l2_purges_published_total"), published + 1)
        for p in paths:
            r = self.b.get(p, host="pw.test")
            self.assertMiss(r)
            self.assertNotEqual(r.body, bodies[p])
            self.assertEqual(self.up.hits(p), 2, p)
        # B's refill is under the new generation, which A uses too.
        self.wait_stored("/pw/a", before=old_keys)
        r = self.a.get("/pw/a", host="pw.test")
        self.assertHit(r)
        self.assertEqual(self.up.hits("/pw/a"), 2)

    def test_path_purge_reaches_the_other_edge(self):
        bodies = {}
        for p in ("/pp/a", "/pp/b"):
            self.up.script(p, cc="max-age=60")
            r = self.a.get(p, host="pp.test")
            self.assertMiss(r)
            bodies[p] = r.body
            self.wait_stored(p)
            self.assertHit(self.b.get(p, host="pp.test"))
            self.assertHit(self.b.get(p, host="pp.test"))
        received = self.b.m("portico_l2_purges_received_total")
        r = self.a.purge({"site": "pp", "paths": ["/pp/a"]})
        self.assertEqual(r.status, 200, r)
        self.wait_news(self.b, received)
        r = self.b.get("/pp/a", host="pp.test")
        self.assertMiss(r)
        self.assertNotEqual(r.body, bodies["/pp/a"])
        self.assertEqual(self.up.hits("/pp/a"), 2)
        # L1s stay precise: B's copy of the other path is still served.
        r = self.b.get("/pp/b", host="pp.test")
        self.assertHit(r)
        self.assertEqual(r.body, bodies["/pp/b"])
        self.assertEqual(self.up.hits("/pp/b"), 1)

    def test_stage_flush_reaches_the_other_edge(self):
        def n_of(r):
            self.assertEqual(r.status, 200, r)
            return r.json()["n"]

        first = self.a.get("/prod/item/f1", host="api.test")
        n = n_of(first)
        self.assertNotEqual(first.header("X-Cache"), HIT, first)
        self.wait_stored("|api|billing|prod|")
        old_keys = self.keys("|api|billing|prod|")
        for _ in range(2):  # from L2, then from B's L1
            r = self.b.get("/prod/item/f1", host="api.test")
            self.assertEqual(n_of(r), n, "edge B invoked the function")
            self.assertEqual(r.header("X-Cache"), HIT, r)
        received = self.b.m("portico_l2_purges_received_total")
        r = self.a.purge({"api": "billing", "stage": "prod"})
        self.assertEqual(r.status, 200, r)
        self.wait_news(self.b, received)
        r = self.b.get("/prod/item/f1", host="api.test")
        n2 = n_of(r)
        self.assertNotEqual(n2, n, "edge B still served the flushed answer")
        self.assertNotEqual(r.header("X-Cache"), HIT, r)
        self.wait_stored("|api|billing|prod|", before=old_keys)
        r = self.a.get("/prod/item/f1", host="api.test")  # B's refill, under the new generation
        self.assertEqual(n_of(r), n2)
        self.assertEqual(r.header("X-Cache"), HIT, r)

    # ---- the cross-edge fill lock ----
    def _concurrent(self, calls):
        """Runs the callables at once (a barrier); returns (results, per-call seconds)."""
        results, times = [None] * len(calls), [None] * len(calls)
        barrier = threading.Barrier(len(calls))

        def run(i):
            barrier.wait(5)
            t0 = time.monotonic()
            try:
                results[i] = calls[i]()
            except Exception as e:  # noqa: BLE001  (reported by the assertions)
                results[i] = e
            times[i] = time.monotonic() - t0

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        return results, times

    def test_concurrent_misses_on_both_edges_fetch_once(self):
        self.up.script("/coal/a", cc="max-age=60", delay_ms=500)
        calls = [(lambda e=e: e.get("/coal/a", timeout=10)) for e in (self.a, self.b) * 4]
        results, _ = self._concurrent(calls)
        for r in results:
            self.assertNotIsInstance(r, Exception)
            self.assertEqual(r.status, 200, r)
        self.assertEqual(len({r.body for r in results}), 1, "the edges served different bodies")
        self.assertEqual(self.up.hits("/coal/a"), 1, "concurrent misses on two edges were not coalesced")

    def test_uncacheable_answer_releases_the_other_edge(self):
        # A's fetch takes 0.8 s (the first request only) and is not storable; B asks 0.25 s into
        # it, finds A's lock and waits. A's answer marks the lock "pass": B must fetch then, not
        # after its 2 s lock wait. Expected for B: ~0.55 s; without the pass: >= 2 s.
        self.up.script("/unc/a", cc="no-store", first_delay_ms=800)
        waits = self.b.m("portico_cache_requests_total", site="s", result="l2_lock_wait")
        out = {}

        def on_a():
            out["a"] = self.a.get("/unc/a", timeout=10)

        t = threading.Thread(target=on_a)
        t.start()
        self.assertTrue(wait_until(lambda: self.up.hits("/unc/a") >= 1, 3), "A never reached the origin")
        time.sleep(0.25)
        t0 = time.monotonic()
        rb = self.b.get("/unc/a", timeout=10)
        elapsed = time.monotonic() - t0
        t.join(10)
        self.assertEqual(out["a"].status, 200, out["a"])
        self.assertEqual(rb.status, 200, rb)
        self.assertEqual(self.up.hits("/unc/a"), 2)
        self.assertEqual(self.b.m("portico_cache_requests_total", site="s", result="l2_lock_wait") - waits, 1,
                         "B did not wait on A's lock (the test did not exercise the pass)")
        self.assertLess(elapsed, 1.5, "B waited %.2f s after A's uncacheable answer" % elapsed)


@requires_redis
class RedisFailureTest(EdgePairTest):
    """Redis going away under the edges: clients never see it."""

    @unittest.skipUnless(WRK, "wrk is not installed")
    def test_redis_killed_under_load_then_restarted(self):
        for i in range(20):
            self.up.script("/load/h%d" % i, cc="max-age=60")     # L1 hits after the first
        for i in range(15):
            self.up.script("/load/s%d" % i, cc="max-age=1")      # expire: L2 lookups and fills
            self.up.script("/load/u%d" % i, cc="no-store")       # never stored
        paths = ["/load/h%d" % i for i in range(20)] + ["/load/s%d" % i for i in range(15)] + \
                ["/load/u%d" % i for i in range(15)]
        tmp = tempfile.mkdtemp(prefix="portico-wrk-")
        self.addCleanup(shutil.rmtree, tmp, True)
        script = os.path.join(tmp, "paths.lua")
        with open(script, "w") as f:
            f.write("wrk.headers[\"Host\"] = \"s.test\"\n"
                    "local paths = {%s}\n"
                    "local i = 0\n"
                    "request = function()\n"
                    "  i = i + 1\n"
                    "  return wrk.format(\"GET\", paths[(i %% #paths) + 1])\n"
                    "end\n" % ", ".join('"%s"' % p for p in paths))
        with open(os.path.join(tmp, "wrk.out"), "w+b") as out:
            proc = subprocess.Popen([WRK, "-t2", "-c16", "-d4s", "--timeout", "3s", "-s", script,
                                     "http://127.0.0.1:%d/" % self.a.port],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            try:
                time.sleep(1.5)
                self.redis.kill()
                proc.wait(timeout=20)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)
            out.seek(0)
            text = out.read().decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 0, text)
        m = re.search(r"(\d+) requests in", text)
        self.assertIsNotNone(m, text)
        self.assertGreater(int(m.group(1)), 100, "wrk barely ran:\n" + text)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        self.assertIsNone(non2xx, "error statuses while Redis died:\n" + text)
        socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        self.assertIsNone(socket_errors, "socket errors while Redis died:\n" + text)
        self.assertGreater(self.up.hits("/load/u0"), 1, "the load did not reach the origin")
        # Back on the same port: the edges reconnect and use the tier again.
        self.redis.restart()
        wait_ready(self, self.a, self.b)
        wait_shared(self, self.redis, self.a, self.b)
        self.assertGreater(self.a.m("portico_l2_reconnects_total"), 0)
        self.assertGreater(self.b.m("portico_l2_reconnects_total"), 0)
        self.up.script("/load/after", cc="max-age=60")
        first = self.a.get("/load/after")
        self.assertMiss(first)
        self.wait_stored("/load/after")
        r = self.b.get("/load/after")
        self.assertHit(r)
        self.assertEqual(r.body, first.body)
        self.assertEqual(self.up.hits("/load/after"), 1)

    def test_redis_not_answering(self):
        # Filled before Redis hangs; read back from B afterwards (each answer must be its own
        # path's: replies to commands that timed out must not be taken for later ones).
        before = ["/hang/pre%d" % i for i in range(4)]
        bodies = {}
        for p in before:
            self.up.script(p, cc="max-age=60")
            r = self.a.get(p)
            self.assertMiss(r)
            bodies[p] = r.body
        for p in before:
            self.wait_stored(p)
        timeouts = self.a.m("portico_l2_timeouts_total") + self.b.m("portico_l2_timeouts_total")
        self.redis.pause()
        self.addCleanup(self.redis.resume)
        for i in range(6):
            for edge in (self.a, self.b):
                p = "/hang/d%d" % i
                self.up.script(p, cc="max-age=60")
                t0 = time.monotonic()
                r = edge.get(p, timeout=5)
                elapsed = time.monotonic() - t0
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["target"], p)
                self.assertLess(elapsed, 1.0, "%s took %.2f s while Redis hung" % (p, elapsed))
        noticed = self.a.m("portico_l2_timeouts_total") + self.b.m("portico_l2_timeouts_total") > timeouts or \
            not self.a.ready() or not self.b.ready()
        self.assertTrue(noticed, "no L2 timeout counted and the tier still ready while Redis hung")
        self.redis.resume()
        wait_ready(self, self.a, self.b)
        wait_shared(self, self.redis, self.a, self.b)
        for p in before:
            r = self.b.get(p)
            self.assertHit(r)
            self.assertEqual(r.body, bodies[p], "B answered %s with another body" % p)
            self.assertEqual(self.up.hits(p), 1)
        self.up.script("/hang/after", cc="max-age=60")
        first = self.a.get("/hang/after")
        self.assertMiss(first)
        self.wait_stored("/hang/after")
        r = self.b.get("/hang/after")
        self.assertHit(r)
        self.assertEqual(r.body, first.body)


@requires_redis
class ConfTest(unittest.TestCase):
    """cache.redis, cache.redis_password_env."""

    @classmethod
    def setUpClass(cls):
        cls.up = SharedUpstream()
        cls.tmp = tempfile.mkdtemp(prefix="portico-l2conf-")

    @classmethod
    def tearDownClass(cls):
        cls.up.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check(self, conf, env):
        path = os.path.join(self.tmp, "c%d.toml" % len(os.listdir(self.tmp)))
        with open(path, "w") as f:
            f.write(conf)
        return run_portico(["-t", "-c", path], env=env)

    def test_check_rejects_unset_password_env_and_bad_url(self):
        env = {k: v for k, v in os.environ.items() if k != "PTC_L2_UNSET_PW"}
        ok = make_conf("redis://127.0.0.1:6399/0", self.up, cache_extra='redis_password_env = "PTC_L2_UNSET_PW"')
        rc, out, err = self.check(ok, dict(env, PTC_L2_UNSET_PW="x"))
        self.assertEqual(rc, 0, err)  # control: set, the same conf is fine (no Redis needed)
        self.assertIn("configuration ok", out)
        rc, out, err = self.check(ok, env)
        self.assertEqual(rc, 1, (out, err))
        self.assertTrue([l for l in err.splitlines() if "redis_password_env" in l and "PTC_L2_UNSET_PW" in l],
                        "no line names redis_password_env:\n" + err)
        rc, out, err = self.check(make_conf("http://x", self.up), env)
        self.assertEqual(rc, 1, (out, err))
        self.assertRegex(err, r"(?m)cache\.redis: ", err)

    def test_password_from_env(self):
        pw = "l2-s3cret"
        redis = RedisServer(password=pw)
        self.addCleanup(redis.close)
        conf = make_conf(redis.url, self.up, cache_extra='redis_password_env = "PTC_L2_PW"')
        a = Edge(conf, env={"PTC_L2_PW": pw})
        self.addCleanup(a.close)
        b = Edge(conf, env={"PTC_L2_PW": pw})
        self.addCleanup(b.close)
        wrong = Edge(conf, env={"PTC_L2_PW": "not-" + pw})
        self.addCleanup(wrong.close)
        wait_ready(self, a, b)
        self.up.script("/auth/a", cc="max-age=60")
        first = a.get("/auth/a")
        self.assertEqual(first.header("X-Cache"), MISS, first)
        self.assertTrue(wait_until(lambda: redis_keys_for(redis, "/auth/a"), 3), "no key in Redis")
        r = b.get("/auth/a")
        self.assertEqual(r.header("X-Cache"), HIT, r)
        self.assertEqual(r.body, first.body)
        self.assertEqual(self.up.hits("/auth/a"), 1)
        # A wrong password: the tier is never used, and clients do not notice.
        r = wrong.get("/auth/a")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Cache"), MISS, r)
        self.assertFalse(wrong.ready())
        self.assertEqual(self.up.hits("/auth/a"), 2)


@requires_redis
class ClusterTest(unittest.TestCase):
    """redis_cluster = true: two edges seeded with one node of a 3-master cluster."""

    def test_cluster_fill_hit_and_purge(self):
        cluster = RedisCluster(3)
        self.addCleanup(cluster.close)
        up = SharedUpstream()
        self.addCleanup(up.close)
        conf = make_conf(cluster.url, up, cache_extra="redis_cluster = true")
        a = Edge(conf)
        self.addCleanup(a.close)
        b = Edge(conf)
        self.addCleanup(b.close)
        if not wait_until(lambda: a.ready() and b.ready(), READY_TIMEOUT, interval=0.1):
            # Only a build without the cluster client skips; any other failure fails.
            errors = [json.dumps(o) for e in (a, b) for o in e.portico.errors()]
            if any("cluster" in l.lower() and ("not supported" in l.lower() or "not implemented" in l.lower())
                   for l in errors):
                self.skipTest("this build has no Redis Cluster client: " + "; ".join(errors[:3]))
            self.fail("the tier never became ready against the cluster; stderr:\n%s"
                      % "\n".join(a.portico.stderr.snapshot()[-10:]))
        paths = ["/cl/%d" % i for i in range(6)]  # keys spread over the masters
        bodies = {}
        for p in paths:
            up.script(p, cc="max-age=60")
            r = a.get(p)
            self.assertEqual(r.header("X-Cache"), MISS, r)
            bodies[p] = r.body
        self.assertTrue(wait_until(lambda: all(any(p in k for k in cluster.scan_keys("ptc:*")) for p in paths), 3),
                        "not every object reached the cluster")
        for p in paths:
            r = b.get(p)
            self.assertEqual(r.header("X-Cache"), HIT, (p, r))
            self.assertEqual(r.body, bodies[p])
            self.assertEqual(up.hits(p), 1)
        received = b.m("portico_l2_purges_received_total")
        r = a.purge({"site": "s"})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(wait_until(lambda: b.m("portico_l2_purges_received_total") > received, NEWS_TIMEOUT),
                        "the purge news did not reach B through the cluster")
        r = b.get(paths[0])
        self.assertEqual(r.header("X-Cache"), MISS, r)
        self.assertEqual(up.hits(paths[0]), 2)


if __name__ == "__main__":
    unittest.main()
