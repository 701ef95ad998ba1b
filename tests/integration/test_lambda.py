"""API routes with a `lambda` origin, against deploy/function-host: the API Gateway proxy event
v1.0 Portico sends, how it maps the function's answer back, and the 502 / 504 cases."""
import base64
import json
import threading
import time
import unittest

from harness import FunctionHost, Portico, RawConn, free_port, request

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")

FUNCTIONS = ["echo", "hello", "billing", "fail", "malformed", "notjson", "binary", "multi", "missing"]

CONF_HEAD = """\
[server]
workers = 1
listen = ["127.0.0.1:0"]
access_log = "off"

[origins.sleep_fn]
type = "lambda"
endpoint = "@FN@"
function = "sleep"
timeout_ms = 300

[origins.sleep_long_fn]
type = "lambda"
endpoint = "@FN@"
function = "sleep"
timeout_ms = 5000

[origins.down_fn]
type = "lambda"
endpoint = "http://127.0.0.1:@DEAD@"
function = "echo"
timeout_ms = 1000
"""

CONF_API = """
[[apis]]
name = "fn"
hosts = ["fn.test"]

  [[apis.stages]]
  name = "prod"
  variables = { greeting = "howdy", color = "blue" }

  [[apis.stages]]
  name = "dev"

  [[apis.routes]]
  method = "ANY"
  path = "/echo"
  origin = "echo_fn"

  [[apis.routes]]
  method = "ANY"
  path = "/echo/{a}/{b}"
  origin = "echo_fn"

  [[apis.routes]]
  method = "ANY"
  path = "/proxy/{proxy+}"
  origin = "echo_fn"

  [[apis.routes]]
  method = "GET"
  path = "/hello/{name}"
  origin = "hello_fn"

  [[apis.routes]]
  method = "GET"
  path = "/bill/{id}"
  origin = "billing_fn"

  [[apis.routes]]
  method = "GET"
  path = "/sleep"
  origin = "sleep_fn"

  [[apis.routes]]
  method = "GET"
  path = "/sleep-long"
  origin = "sleep_long_fn"

  [[apis.routes]]
  method = "GET"
  path = "/down"
  origin = "down_fn"
"""


def build_conf():
    conf = CONF_HEAD
    api = CONF_API
    for name in FUNCTIONS:
        conf += '\n[origins.%s_fn]\ntype = "lambda"\nendpoint = "@FN@"\nfunction = "%s"\ntimeout_ms = 5000\n' % (
            name, name)
        if name not in ("echo", "hello", "billing"):
            api += '\n  [[apis.routes]]\n  method = "GET"\n  path = "/%s"\n  origin = "%s_fn"\n' % (name, name)
    return conf + api


def lookup(mapping, name):
    """Case-insensitive lookup in an event's header map."""
    for k, v in (mapping or {}).items():
        if k.lower() == name.lower():
            return v
    return None


class LambdaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fn = FunctionHost()
        try:
            conf = build_conf().replace("@FN@", cls.fn.endpoint).replace("@DEAD@", str(free_port()))
            cls.portico = Portico(conf)
        except BaseException:
            cls.fn.close()
            raise
        cls.port = cls.portico.http_port

    @classmethod
    def tearDownClass(cls):
        cls.portico.close()
        cls.fn.close()

    def call(self, target, method="GET", **kw):
        return request(self.port, method, target, host="fn.test", **kw)

    def event(self, target, method="GET", **kw):
        r = self.call(target, method, **kw)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def assert_internal_error(self, r, statuses=(502,)):
        self.assertIn(r.status, statuses, r)
        self.assertEqual(json.loads(r.body), {"message": "Internal server error"})

    # ---- the event ----
    def test_event_shape(self):
        t0 = time.time()
        with RawConn(self.port) as c:
            c.send(b"GET /prod/echo/x/y?a=1&a=2&b=3&q=a%20b HTTP/1.1\r\nHost: fn.test\r\nX-Custom: v1\r\n"
                   b"X-Multi: m1\r\nX-Multi: m2\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.status, 200, r)
        ev = r.json()
        self.assertEqual(ev["resource"], "/echo/{a}/{b}")
        self.assertEqual(ev["path"], "/echo/x/y")
        self.assertEqual(ev["httpMethod"], "GET")
        self.assertEqual(lookup(ev["headers"], "X-Custom"), "v1")
        self.assertEqual(lookup(ev["headers"], "Host"), "fn.test")
        self.assertEqual(lookup(ev["headers"], "X-Multi"), "m2")
        self.assertEqual(lookup(ev["multiValueHeaders"], "X-Multi"), ["m1", "m2"])
        self.assertEqual(lookup(ev["multiValueHeaders"], "X-Custom"), ["v1"])
        self.assertEqual(ev["queryStringParameters"], {"a": "2", "b": "3", "q": "a b"})
        self.assertEqual(ev["multiValueQueryStringParameters"], {"a": ["1", "2"], "b": ["3"], "q": ["a b"]})
        self.assertEqual(ev["pathParameters"], {"a": "x", "b": "y"})
        self.assertEqual(ev["stageVariables"], {"greeting": "howdy", "color": "blue"})
        self.assertIsNone(ev["body"])
        self.assertIs(ev["isBase64Encoded"], False)
        rc = ev["requestContext"]
        self.assertEqual(rc["stage"], "prod")
        self.assertEqual(rc["resourcePath"], "/echo/{a}/{b}")
        self.assertEqual(rc["httpMethod"], "GET")
        self.assertEqual(rc["path"], "/prod/echo/x/y")
        self.assertEqual(rc["identity"]["sourceIp"], "127.0.0.1")
        # A UUID v4, as API Gateway's.
        self.assertRegex(rc["requestId"],
                         r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        self.assertIsInstance(rc["requestTimeEpoch"], int)
        self.assertLess(abs(rc["requestTimeEpoch"] / 1000.0 - t0), 60)

    def test_request_ids_are_unique(self):
        ids = {self.event("/prod/echo")["requestContext"]["requestId"] for _ in range(5)}
        self.assertEqual(len(ids), 5)

    def test_absent_parts_are_null(self):
        ev = self.event("/dev/echo")
        self.assertIsNone(ev["queryStringParameters"])
        self.assertIsNone(ev["multiValueQueryStringParameters"])
        self.assertIsNone(ev["pathParameters"])
        self.assertIsNone(ev["stageVariables"])
        self.assertIsNone(ev["body"])
        self.assertEqual(ev["resource"], "/echo")
        self.assertEqual(ev["path"], "/echo")
        self.assertEqual(ev["requestContext"]["stage"], "dev")

    def test_text_body(self):
        ev = self.event("/prod/echo", "POST", body=b'{"k": "v"}', headers={"Content-Type": "application/json"})
        self.assertEqual(ev["httpMethod"], "POST")
        self.assertEqual(ev["body"], '{"k": "v"}')
        self.assertIs(ev["isBase64Encoded"], False)

    def test_binary_body_round_trips(self):
        raw = bytes(range(256))
        ev = self.event("/prod/echo", "PUT", body=raw, headers={"Content-Type": "application/octet-stream"})
        got = base64.b64decode(ev["body"]) if ev["isBase64Encoded"] else ev["body"].encode("latin-1")
        self.assertEqual(got, raw)

    def test_chunked_request_body(self):
        with RawConn(self.port) as c:
            c.send(b"POST /prod/echo HTTP/1.1\r\nHost: fn.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.json()["body"], "abcdef")

    def test_greedy_path_parameter(self):
        ev = self.event("/prod/proxy/a/b/c.txt")
        self.assertEqual(ev["resource"], "/proxy/{proxy+}")
        self.assertEqual(ev["pathParameters"], {"proxy": "a/b/c.txt"})
        self.assertEqual(ev["path"], "/proxy/a/b/c.txt")

    # ---- the answer ----
    def test_status_and_headers_from_the_function(self):
        r = self.call("/prod/echo?status=418&header_X-Fn=yes")
        self.assertEqual(r.status, 418)
        self.assertEqual(r.header("X-Fn"), "yes")
        self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertEqual(r.header("Server"), "portico")

    def test_hello(self):
        r = self.call("/prod/hello/Ann")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"message": "howdy, Ann", "stage": "prod", "method": "GET"})
        # The whole answer is known: framed by its length, not chunked.
        self.assertEqual(r.header("Content-Length"), str(len(r.body)))
        self.assertIsNone(r.header("Transfer-Encoding"))
        self.assertEqual(self.call("/dev/hello/Bo").json()["message"], "hello, Bo")

    def test_billing(self):
        a = self.call("/prod/bill/42?month=2024-01").json()
        self.assertEqual((a["id"], a["month"]), ("42", "2024-01"))
        self.assertIsInstance(a["amount"], (int, float))
        self.assertEqual(self.call("/dev/bill/42?month=2024-01").json(), a)

    def test_multi_value_response_headers(self):
        r = self.call("/prod/multi")
        self.assertEqual((r.status, r.body), (200, b"multi"))
        self.assertEqual(sorted(r.header_all("Set-Cookie")), ["a=1", "b=2"])
        multi = [v.strip() for line in r.header_all("X-Multi") for v in line.split(",")]
        self.assertEqual(multi, ["x", "y"])
        self.assertEqual(r.header("X-Single"), "one")
        self.assertEqual(r.header("Content-Type"), "text/plain")

    def test_base64_response_is_decoded(self):
        r = self.call("/prod/binary")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "image/png")
        self.assertEqual(r.body, PNG)
        self.assertEqual(int(r.header("Content-Length", len(r.body))), len(PNG))

    def test_head_gets_no_body(self):
        with RawConn(self.port) as c:
            c.send(b"HEAD /prod/echo HTTP/1.1\r\nHost: fn.test\r\n\r\n")
            r = c.read_response(head_only=True)
            self.assertEqual(r.status, 200)
            c.send(b"GET /prod/multi HTTP/1.1\r\nHost: fn.test\r\n\r\n")
            self.assertEqual(c.read_response().body, b"multi")

    # ---- failures ----
    def test_function_error_is_502(self):
        self.assert_internal_error(self.call("/prod/fail"))

    def test_malformed_answer_is_502(self):
        self.assert_internal_error(self.call("/prod/malformed"))

    def test_non_json_answer_is_502(self):
        self.assert_internal_error(self.call("/prod/notjson"))

    def test_unknown_function(self):
        self.assert_internal_error(self.call("/prod/missing"), statuses=(500, 502))

    def test_unreachable_function_host(self):
        t0 = time.monotonic()
        self.assert_internal_error(self.call("/prod/down"), statuses=(500, 502))
        self.assertLess(time.monotonic() - t0, 3)

    def test_timeout_is_504(self):
        t0 = time.monotonic()
        r = self.call("/prod/sleep?ms=3000")
        self.assertEqual(r.status, 504)
        self.assertEqual(json.loads(r.body), {"message": "Endpoint request timed out"})
        self.assertLess(time.monotonic() - t0, 2.5)

    def test_fast_enough_is_not_a_timeout(self):
        self.assertEqual(self.call("/prod/sleep?ms=10").status, 200)

    def test_invocations_run_concurrently(self):
        statuses = []

        def worker():
            try:
                statuses.append(self.call("/prod/sleep-long?ms=300").status)
            except Exception as e:  # noqa: BLE001 -- reported below
                statuses.append(repr(e))

        threads = [threading.Thread(target=worker) for _ in range(8)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        self.assertEqual(statuses, [200] * 8)
        self.assertLess(time.monotonic() - t0, 2.0, "invocations were serialised")

    def test_portico_survives_failures(self):
        for target in ("/prod/fail", "/prod/notjson", "/prod/sleep?ms=1000", "/prod/malformed"):
            self.call(target)
        self.assertEqual(self.call("/prod/hello/Z").status, 200)


if __name__ == "__main__":
    unittest.main()
