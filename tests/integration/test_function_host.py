"""deploy/function-host/server.js on its own: the Lambda Invoke API contract that Portico's
`lambda` origin relies on (no Portico involved)."""
import base64
import json
import signal
import time
import unittest

from harness import FunctionHost, RawConn, request

INVOKE = "/2015-03-31/functions/%s/invocations"


def invoke(port, name, event, **kw):
    body = event if isinstance(event, (bytes, str)) else json.dumps(event)
    return request(port, "POST", INVOKE % name, host="127.0.0.1", body=body,
                   headers={"Content-Type": "application/json"}, **kw)


class FunctionHostTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.host = FunctionHost()
        cls.port = cls.host.port

    @classmethod
    def tearDownClass(cls):
        cls.host.close()

    def test_hello(self):
        event = {"httpMethod": "GET", "pathParameters": {"name": "Ann"},
                 "stageVariables": {"greeting": "howdy"}, "requestContext": {"stage": "prod"}}
        r = invoke(self.port, "hello", event)
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("X-Amz-Function-Error"))
        out = r.json()
        self.assertEqual(out["statusCode"], 200)
        self.assertEqual(out["headers"]["Content-Type"], "application/json")
        self.assertEqual(json.loads(out["body"]), {"message": "howdy, Ann", "stage": "prod", "method": "GET"})

    def test_hello_default_greeting(self):
        r = invoke(self.port, "hello", {"httpMethod": "POST", "pathParameters": {"name": "Bo"},
                                        "stageVariables": None, "requestContext": {"stage": "dev"}})
        self.assertEqual(json.loads(r.json()["body"])["message"], "hello, Bo")

    def test_billing_is_deterministic(self):
        ev = {"pathParameters": {"id": "42"}, "queryStringParameters": {"month": "2024-01"}}
        a = json.loads(invoke(self.port, "billing", ev).json()["body"])
        b = json.loads(invoke(self.port, "billing", ev).json()["body"])
        self.assertEqual(a, b)
        self.assertEqual(a["id"], "42")
        self.assertEqual(a["month"], "2024-01")
        self.assertIsInstance(a["amount"], (int, float))
        cur = json.loads(invoke(self.port, "billing", {"pathParameters": {"id": "42"}}).json()["body"])
        self.assertEqual(cur["month"], time.strftime("%Y-%m", time.gmtime()))

    def test_echo_returns_event_and_honours_query(self):
        ev = {"httpMethod": "GET", "queryStringParameters": {"status": "201", "header_X-Test": "yes"}}
        out = invoke(self.port, "echo", ev).json()
        self.assertEqual(out["statusCode"], 201)
        self.assertEqual(out["headers"]["X-Test"], "yes")
        self.assertEqual(json.loads(out["body"]), ev)

    def test_function_error(self):
        r = invoke(self.port, "fail", {})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("X-Amz-Function-Error"), "Unhandled")
        out = r.json()
        self.assertEqual(out["errorType"], "Error")
        self.assertEqual(out["errorMessage"], "intentional failure")

    def test_malformed_and_notjson(self):
        self.assertEqual(invoke(self.port, "malformed", {}).json(), {"hello": "world"})
        r = invoke(self.port, "notjson", {})
        self.assertEqual(r.status, 200)
        with self.assertRaises(ValueError):
            json.loads(r.body)

    def test_binary(self):
        out = invoke(self.port, "binary", {}).json()
        self.assertTrue(out["isBase64Encoded"])
        self.assertTrue(base64.b64decode(out["body"]).startswith(b"\x89PNG\r\n\x1a\n"))

    def test_multi(self):
        out = invoke(self.port, "multi", {}).json()
        self.assertEqual(out["multiValueHeaders"]["Set-Cookie"], ["a=1", "b=2"])
        self.assertEqual(out["multiValueHeaders"]["X-Multi"], ["x", "y"])

    def test_sleep(self):
        t0 = time.monotonic()
        r = invoke(self.port, "sleep", {"queryStringParameters": {"ms": "200"}})
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)
        self.assertEqual(r.json()["statusCode"], 200)

    def test_unknown_function(self):
        r = invoke(self.port, "nosuch", {})
        self.assertEqual(r.status, 404)
        self.assertEqual(r.header("x-amzn-ErrorType"), "ResourceNotFoundException")
        out = r.json()
        self.assertEqual(out["Type"], "User")
        self.assertTrue(out["message"].startswith("Function not found: "), out)

    def test_invalid_name(self):
        for name in ("a.b", "..%2Fserver", "%2e%2e"):
            r = invoke(self.port, name, {})
            self.assertIn(r.status, (400, 404), name)

    def test_invalid_json(self):
        r = invoke(self.port, "echo", b"{not json")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.header("x-amzn-ErrorType"), "InvalidRequestContentException")

    def test_unknown_route_and_method(self):
        self.assertEqual(request(self.port, "GET", "/", host="127.0.0.1").status, 404)
        self.assertEqual(request(self.port, "GET", INVOKE % "echo", host="127.0.0.1").status, 405)

    def test_payload_too_large_declared(self):
        with RawConn(self.port) as c:
            c.send("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (INVOKE % "echo", 7 << 20))
            r = c.read_response()
            self.assertEqual(r.status, 413)
            self.assertEqual(r.header("x-amzn-ErrorType"), "RequestTooLargeException")

    def test_payload_too_large_streamed(self):
        with RawConn(self.port) as c:
            c.send("POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % (INVOKE % "echo"))
            chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
            try:
                for _ in range(7 * 16):  # 7 MiB
                    c.send(chunk)
                c.send(b"0\r\n\r\n")
            except OSError:
                pass  # the host may stop reading once it has answered
            r = c.read_response()
            self.assertEqual(r.status, 413)

    def test_payload_too_large_refused_before_continue(self):
        with RawConn(self.port) as c:
            c.send("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
                   % (INVOKE % "echo", 7 * 1024 * 1024))
            r = c.read_response()
            self.assertEqual(r.status, 413)

    def test_keep_alive(self):
        with RawConn(self.port) as c:
            for _ in range(3):
                body = b'{"a":1}'
                c.send(b"POST " + (INVOKE % "echo").encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: "
                       + str(len(body)).encode() + b"\r\n\r\n" + body)
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(json.loads(r.json()["body"]), {"a": 1})


class FunctionHostLifecycleTest(unittest.TestCase):
    def test_sigterm_finishes_inflight_and_exits_0(self):
        host = FunctionHost()
        self.addCleanup(host.close)
        c = RawConn(host.port)
        self.addCleanup(c.close)
        body = json.dumps({"queryStringParameters": {"ms": "300"}}).encode()
        c.send(b"POST " + (INVOKE % "sleep").encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: "
               + str(len(body)).encode() + b"\r\n\r\n" + body)
        time.sleep(0.1)  # let the invocation start (the host must not drop it)
        host.proc.send_signal(signal.SIGTERM)
        r = c.read_response(timeout=5)
        self.assertEqual(r.status, 200)
        self.assertEqual(host.stop(timeout=6), 0)

    def test_banner_is_exactly_one_line(self):
        host = FunctionHost()
        self.addCleanup(host.close)
        self.assertEqual(host.stop(signal.SIGINT), 0)
        self.assertEqual(len(host.stdout.snapshot()), 1)


if __name__ == "__main__":
    unittest.main()
