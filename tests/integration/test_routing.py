"""Host and path routing: sites by host, APIs by host + stage + route, mock integrations, and the
API Gateway 403 "Missing Authentication Token" for anything unrouted."""
import json
import os
import unittest

from harness import Portico, RawConn, request

CONF = """\
[server]
workers = 1
listen = ["127.0.0.1:0"]
access_log = "off"

[origins.files]
type = "dir"
root = "@TMP@/www"

[origins.other]
type = "dir"
root = "@TMP@/other"

[[sites]]
name = "www"
hosts = ["www.test", "alias.test"]
origin = "files"

[[sites]]
name = "other"
hosts = ["other.test"]
origin = "other"

[[apis]]
name = "shop"
hosts = ["api.test"]

  [[apis.stages]]
  name = "prod"

  [[apis.stages]]
  name = "dev"

  [[apis.routes]]
  method = "GET"
  path = "/status"
  mock = { status = 200, headers = { "Content-Type" = "application/json", "X-Mock" = "status" }, body = '{"ok":true}' }

  [[apis.routes]]
  method = "POST"
  path = "/items"
  mock = { status = 201, headers = { "Content-Type" = "application/json" }, body = '{"created":true}' }

  [[apis.routes]]
  method = "GET"
  path = "/items/{id}"
  mock = { status = 200, body = 'one item' }

  [[apis.routes]]
  method = "ANY"
  path = "/any"
  mock = { status = 202, body = 'any method' }

  [[apis.routes]]
  method = "GET"
  path = "/files/{proxy+}"
  mock = { status = 200, body = 'greedy' }
"""

MISSING_TOKEN = {"message": "Missing Authentication Token"}


class RoutingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.portico = Portico(CONF, start=False)
        for site, text in (("www", b"www index\n"), ("other", b"other index\n")):
            d = os.path.join(cls.portico.tmpdir, site)
            os.makedirs(d)
            with open(os.path.join(d, "index.html"), "wb") as f:
                f.write(text)
        cls.portico.start()
        cls.port = cls.portico.http_port

    @classmethod
    def tearDownClass(cls):
        cls.portico.close()

    def get(self, target, host, method="GET", **kw):
        return request(self.port, method, target, host=host, **kw)

    def assert_missing_token(self, r):
        self.assertEqual(r.status, 403, r)
        self.assertEqual(json.loads(r.body), MISSING_TOKEN)

    # ---- sites ----
    def test_host_selects_site(self):
        self.assertEqual(self.get("/", "www.test").body, b"www index\n")
        self.assertEqual(self.get("/", "other.test").body, b"other index\n")

    def test_every_host_of_a_site(self):
        self.assertEqual(self.get("/", "alias.test").body, b"www index\n")

    def test_port_in_host_is_ignored(self):
        self.assertEqual(self.get("/", "www.test:%d" % self.port).body, b"www index\n")
        self.assertEqual(self.get("/", "other.test:1").body, b"other index\n")

    def test_host_is_case_insensitive(self):
        self.assertEqual(self.get("/", "WWW.Test").body, b"www index\n")

    def test_unknown_host_is_404(self):
        for host in ("unknown.test", "www.test.evil", "test", "www", "127.0.0.1"):
            with self.subTest(host=host):
                self.assertEqual(self.get("/", host).status, 404)

    def test_absolute_form_target_uses_its_host(self):
        # RFC 9112 3.2.2: with an absolute-form target the Host header is ignored.
        with RawConn(self.port) as c:
            c.send(b"GET http://other.test/ HTTP/1.1\r\nHost: www.test\r\n\r\n")
            r = c.read_response()
        self.assertIn(r.status, (200, 400))
        if r.status == 200:
            self.assertEqual(r.body, b"other index\n")

    def test_two_hosts_headers_is_400(self):
        with RawConn(self.port) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: www.test\r\nHost: other.test\r\n\r\n")
            self.assertEqual(c.read_response().status, 400)

    # ---- APIs ----
    def test_mock_route(self):
        for stage in ("prod", "dev"):
            r = self.get("/%s/status" % stage, "api.test")
            self.assertEqual(r.status, 200)
            self.assertEqual(json.loads(r.body), {"ok": True})
            self.assertEqual(r.header("Content-Type"), "application/json")
            self.assertEqual(r.header("X-Mock"), "status")

    def test_query_is_not_part_of_routing(self):
        self.assertEqual(self.get("/prod/status?x=1&y", "api.test").status, 200)

    def test_method_must_match(self):
        self.assertEqual(self.get("/prod/items", "api.test", method="POST", body=b"{}").status, 201)
        self.assert_missing_token(self.get("/prod/items", "api.test"))
        self.assert_missing_token(self.get("/prod/status", "api.test", method="DELETE"))

    def test_any_method(self):
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            with self.subTest(method=method):
                r = self.get("/prod/any", "api.test", method=method, body=b"" if method != "GET" else None)
                self.assertEqual((r.status, r.body), (202, b"any method"))

    def test_path_parameter_route(self):
        r = self.get("/prod/items/42", "api.test")
        self.assertEqual((r.status, r.body), (200, b"one item"))
        self.assert_missing_token(self.get("/prod/items/42/more", "api.test"))

    def test_greedy_route(self):
        for path in ("/prod/files/a", "/prod/files/a/b/c.txt"):
            with self.subTest(path=path):
                self.assertEqual(self.get(path, "api.test").body, b"greedy")
        self.assert_missing_token(self.get("/prod/files", "api.test"))

    def test_unknown_stage_is_403(self):
        self.assert_missing_token(self.get("/staging/status", "api.test"))

    def test_no_stage_is_403(self):
        self.assert_missing_token(self.get("/", "api.test"))

    def test_stage_without_resource_is_403(self):
        self.assert_missing_token(self.get("/prod", "api.test"))
        self.assert_missing_token(self.get("/prod/", "api.test"))

    def test_unknown_route_is_403(self):
        self.assert_missing_token(self.get("/prod/nope", "api.test"))
        self.assert_missing_token(self.get("/prod/statusx", "api.test"))

    def test_head_on_api(self):
        with RawConn(self.port) as c:
            c.send(b"HEAD /prod/any HTTP/1.1\r\nHost: api.test\r\n\r\n")
            r = c.read_response(head_only=True)
            self.assertEqual(r.status, 202)
            c.send(b"GET /prod/status HTTP/1.1\r\nHost: api.test\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)


if __name__ == "__main__":
    unittest.main()
