"""The `dir` origin: a local folder served as if it were a bucket: index documents, content
types, error pages, validators, HEAD, and no way out of the root."""
import email.utils
import hashlib
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
root = "@TMP@/root"

[[sites]]
name = "www"
hosts = ["www.test"]
origin = "files"
index = "index.html"
error_pages = [ { status = 404, path = "/404.html", ttl_s = 10 } ]

[[sites]]
name = "plain"
hosts = ["plain.test"]
origin = "files"
"""

SECRET = b"TOPSECRET outside the root\n"
NOT_FOUND_PAGE = b"<h1>custom not found</h1>\n"


class DirOriginTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.portico = Portico(CONF, start=False)
        tmp = cls.portico.tmpdir
        root = os.path.join(tmp, "root")
        cls.files = {
            "index.html": b"<h1>home</h1>\n",
            "404.html": NOT_FOUND_PAGE,
            "style.css": b"body { color: red }\n",
            "app.js": b"console.log(1);\n",
            "img.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
            "data.json": b'{"a":1}\n',
            "docs/index.html": b"<h1>docs</h1>\n",
            "sp ace.txt": b"space in the name\n",
            "emptydir/.keep": b"",
            "large.bin": hashlib.sha256(b"seed").digest() * (1 << 15),  # 1 MiB
        }
        for name, data in cls.files.items():
            path = os.path.join(root, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        os.makedirs(os.path.join(tmp, "outside"))
        with open(os.path.join(tmp, "secret.txt"), "wb") as f:
            f.write(SECRET)
        with open(os.path.join(tmp, "outside", "secret.txt"), "wb") as f:
            f.write(SECRET)
        os.symlink(os.path.join(tmp, "secret.txt"), os.path.join(root, "escape.txt"))
        os.symlink(os.path.join(tmp, "outside"), os.path.join(root, "outdir"))
        cls.root = root
        cls.portico.start()
        cls.port = cls.portico.http_port

    @classmethod
    def tearDownClass(cls):
        cls.portico.close()

    def get(self, target, host="www.test", **kw):
        return request(self.port, "GET", target, host=host, **kw)

    def raw_get(self, target, host="www.test"):
        with RawConn(self.port) as c:
            c.send(b"GET " + target + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n\r\n")
            return c.read_response()

    def test_index_documents(self):
        r = self.get("/")
        self.assertEqual((r.status, r.body), (200, self.files["index.html"]))
        self.assertTrue(r.header("Content-Type", "").startswith("text/html"))
        r = self.get("/docs/")
        self.assertEqual((r.status, r.body), (200, self.files["docs/index.html"]))

    def test_content_types(self):
        expected = {
            "/style.css": ("text/css",),
            "/app.js": ("text/javascript", "application/javascript"),
            "/img.png": ("image/png",),
            "/data.json": ("application/json",),
            "/index.html": ("text/html",),
        }
        for path, types in expected.items():
            with self.subTest(path=path):
                r = self.get(path)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, self.files[path[1:]])
                ctype = r.header("Content-Type", "").split(";")[0].strip()
                self.assertIn(ctype, types)

    def test_missing_file_gets_the_error_page(self):
        r = self.get("/nope.html")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.body, NOT_FOUND_PAGE)

    def test_missing_file_without_error_page(self):
        r = self.get("/nope.html", host="plain.test")
        self.assertEqual(r.status, 404)
        self.assertNotEqual(r.body, NOT_FOUND_PAGE)

    def test_directory_without_index_is_not_listed(self):
        r = self.get("/emptydir/", host="plain.test")
        self.assertIn(r.status, (403, 404))
        self.assertNotIn(b".keep", r.body)

    def test_percent_decoded_names(self):
        r = self.get("/sp%20ace.txt")
        self.assertEqual((r.status, r.body), (200, self.files["sp ace.txt"]))

    def test_query_is_ignored_for_the_file(self):
        r = self.get("/style.css?v=123")
        self.assertEqual((r.status, r.body), (200, self.files["style.css"]))

    def test_large_file(self):
        r = self.get("/large.bin")
        self.assertEqual(r.status, 200)
        self.assertEqual(int(r.header("Content-Length")), len(self.files["large.bin"]))
        self.assertEqual(hashlib.sha256(r.body).digest(), hashlib.sha256(self.files["large.bin"]).digest())

    def test_etag_and_if_none_match(self):
        r = self.get("/style.css")
        etag = r.header("ETag")
        self.assertTrue(etag, r.headers)
        self.assertRegex(etag, r'^(W/)?"[^"]*"$')
        r304 = self.get("/style.css", headers={"If-None-Match": etag})
        self.assertEqual(r304.status, 304)
        self.assertEqual(r304.body, b"")
        self.assertEqual(r304.header("ETag"), etag)
        r200 = self.get("/style.css", headers={"If-None-Match": '"something-else"'})
        self.assertEqual((r200.status, r200.body), (200, self.files["style.css"]))
        rlist = self.get("/style.css", headers={"If-None-Match": '"x", %s' % etag})
        self.assertEqual(rlist.status, 304)

    def test_etag_differs_between_files(self):
        self.assertNotEqual(self.get("/style.css").header("ETag"), self.get("/app.js").header("ETag"))

    def test_last_modified(self):
        r = self.get("/data.json")
        lm = email.utils.parsedate_to_datetime(r.header("Last-Modified"))
        mtime = os.stat(os.path.join(self.root, "data.json")).st_mtime
        self.assertLessEqual(abs(lm.timestamp() - int(mtime)), 1)

    def test_head(self):
        with RawConn(self.port) as c:
            c.send(b"HEAD /img.png HTTP/1.1\r\nHost: www.test\r\n\r\n")
            r = c.read_response(head_only=True)
            self.assertEqual(r.status, 200)
            self.assertEqual(int(r.header("Content-Length")), len(self.files["img.png"]))
            self.assertEqual(r.header("Content-Type"), "image/png")
            c.send(b"GET /data.json HTTP/1.1\r\nHost: www.test\r\n\r\n")
            self.assertEqual(c.read_response().body, self.files["data.json"])

    def test_traversal_never_escapes_the_root(self):
        targets = [
            b"/../secret.txt", b"/docs/../../secret.txt", b"/%2e%2e/secret.txt", b"/%2E%2E/secret.txt",
            b"/docs/%2e%2e/%2e%2e/secret.txt", b"/..%2fsecret.txt", b"/%2e%2e%2fsecret.txt",
            b"/docs/..%2f..%2fsecret.txt", b"/..%5csecret.txt", b"/.%2e/secret.txt",
            b"/index.html%00.txt", b"/%00", b"/escape.txt", b"/outdir/secret.txt",
            b"//..//secret.txt", b"/docs/%252e%252e/%252e%252e/secret.txt",
        ]
        for target in targets:
            with self.subTest(target=target):
                r = self.raw_get(target)
                self.assertNotIn(b"TOPSECRET", r.body)
                self.assertIn(r.status, (400, 403, 404))
        # The symlinks and encoded dot-segments that do point out of the root: 400 or 403.
        for target in (b"/escape.txt", b"/outdir/secret.txt", b"/%2e%2e/secret.txt", b"/index.html%00.txt"):
            with self.subTest(strict=target):
                self.assertIn(self.raw_get(target).status, (400, 403))

    def test_plain_dot_segments_are_refused_or_contained(self):
        r = self.raw_get(b"/../../../../../../etc/passwd")
        self.assertIn(r.status, (400, 403, 404))
        self.assertNotIn(b"root:", r.body)


if __name__ == "__main__":
    unittest.main()
