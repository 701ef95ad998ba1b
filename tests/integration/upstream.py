"""A scripted HTTP/1.1 upstream for Portico's `http` origins (raw sockets, one thread per
connection), so tests control every byte: hop-by-hop headers, chunking, delays, truncation.

Every request is recorded (method, target, headers in wire order, body, connection id). The
response is scripted by the request's query string:
  status=N         status code (default 200)
  delay_ms=N       wait before sending the head
  size=N           body of N bytes of a fixed pattern instead of the JSON echo
  chunked=1        send the body chunked (no Content-Length)
  cc=VALUE         Cache-Control (default "no-store": responses are not cached)
  hdr_NAME=VALUE   add response header NAME
  hop=1            add hop-by-hop headers (Connection: X-Hop-Drop, X-Hop-Drop, Keep-Alive,
                   Proxy-Connection, Upgrade) next to X-Hop-Keep
  hold=1           send the head and the first 1000 body bytes, then wait for `release`
  truncate=1       announce Content-Length: size but send 10 bytes, then close
  close=1          Connection: close and close after the response
The default body is a JSON echo of the request: {"method", "target", "headers", "body"}.
"""
import hashlib
import json
import socket
import threading
import time
import urllib.parse

PATTERN = bytes(range(256))


def pattern_bytes(n):
    """n bytes of the fixed pattern the upstream sends for size=n."""
    reps = n // len(PATTERN) + 1
    return (PATTERN * reps)[:n]


class UpstreamRequest:
    def __init__(self, method, target, version, headers, body, conn_id):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value)
        self.body = body
        self.conn_id = conn_id
        parsed = urllib.parse.urlsplit(target)
        self.path = parsed.path
        self.query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))

    def header(self, name, default=None):
        n = name.lower()
        vals = [v for k, v in self.headers if k.lower() == n]
        return vals[-1] if vals else default

    def header_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def has_header(self, name):
        return bool(self.header_all(name))


class Upstream:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.requests = []
        self.release = threading.Event()  # lets hold=1 responses finish
        self._cond = threading.Condition()
        self._conns = {}
        self._next_id = 0
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    # ---- inspection ----
    def wait_requests(self, n, timeout=5.0):
        """Blocks until at least n requests were received; returns the list (may be shorter on
        timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return list(self.requests)

    def last(self):
        with self._cond:
            return self.requests[-1] if self.requests else None

    def connection_count(self):
        with self._cond:
            return self._next_id

    def reset(self):
        with self._cond:
            self.requests = []
        self.release.clear()

    def close(self):
        self._closed = True
        self.release.set()
        try:
            self.sock.close()
        except OSError:
            pass
        with self._cond:
            conns = list(self._conns.values())
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    # ---- server ----
    def _accept_loop(self):
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._cond:
                self._next_id += 1
                cid = self._next_id
                self._conns[cid] = conn
            threading.Thread(target=self._serve, args=(conn, cid), daemon=True).start()

    def _serve(self, conn, cid):
        conn.settimeout(30)
        buf = b""
        try:
            while not self._closed:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ", 2)
                headers = []
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers.append((k.strip(), v.strip()))
                req = UpstreamRequest(method, target, version, headers, b"", cid)
                body, buf = self._read_body(conn, req, buf)
                req.body = body
                with self._cond:
                    self.requests.append(req)
                    self._cond.notify_all()
                if not self._respond(conn, req):
                    return
        except (OSError, ValueError):
            return
        finally:
            with self._cond:
                self._conns.pop(cid, None)
            conn.close()

    @staticmethod
    def _read_body(conn, req, buf):
        def need(n):
            nonlocal buf
            while len(buf) < n:
                chunk = conn.recv(65536)
                if not chunk:
                    raise ValueError("eof in body")
                buf += chunk

        te = req.header("Transfer-Encoding")
        if te and te.lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in buf:
                    need(len(buf) + 1)
                line, buf = buf.split(b"\r\n", 1)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:  # trailers up to the empty line
                        while b"\r\n" not in buf:
                            need(len(buf) + 1)
                        t, buf = buf.split(b"\r\n", 1)
                        if t == b"":
                            return body, buf
                need(size + 2)
                body += buf[:size]
                buf = buf[size + 2:]
        n = int(req.header("Content-Length", "0"))
        need(n)
        return buf[:n], buf[n:]

    def _respond(self, conn, req):
        """Sends the scripted response; returns False when the connection must close."""
        q = req.query
        if "delay_ms" in q:
            time.sleep(int(q["delay_ms"]) / 1000.0)
        status = int(q.get("status", "200"))
        if "size" in q:
            body = pattern_bytes(int(q["size"]))
            ctype = "application/octet-stream"
        else:
            body = json.dumps({
                "method": req.method, "target": req.target, "version": req.version,
                "headers": req.headers, "body": req.body.decode("latin-1"),
                "body_sha256": hashlib.sha256(req.body).hexdigest(), "conn": req.conn_id,
            }).encode()
            ctype = "application/json"
        close = q.get("close") == "1"
        headers = [("Content-Type", ctype), ("Cache-Control", q.get("cc", "no-store"))]
        for k, v in q.items():
            if k.startswith("hdr_"):
                headers.append((k[4:], v))
        if q.get("hop") == "1":
            headers += [("Connection", "X-Hop-Drop"), ("X-Hop-Drop", "1"), ("Keep-Alive", "timeout=5"),
                        ("Proxy-Connection", "keep-alive"), ("Upgrade", "foo/1"), ("X-Hop-Keep", "1")]
        if close:
            headers.append(("Connection", "close"))
        chunked = q.get("chunked") == "1"
        if q.get("truncate") == "1":
            headers.append(("Content-Length", str(len(body))))
            conn.sendall(self._head(status, headers) + body[:10])
            return False
        if status in (204, 304) or 100 <= status < 200:
            pass  # no body, and no framing headers (RFC 9110 8.6)
        elif chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        else:
            headers.append(("Content-Length", str(len(body))))
        conn.sendall(self._head(status, headers))
        if req.method == "HEAD" or status in (204, 304):
            return not close
        if chunked:
            step = 4096
            for i in range(0, len(body), step):
                part = body[i:i + step]
                conn.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
                if q.get("hold") == "1" and i == 0:
                    self.release.wait(10)
            conn.sendall(b"0\r\n\r\n")
        elif q.get("hold") == "1":
            conn.sendall(body[:1000])
            self.release.wait(10)
            conn.sendall(body[1000:])
        else:
            conn.sendall(body)
        return not close

    @staticmethod
    def _head(status, headers):
        reasons = {200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified", 404: "Not Found",
                   500: "Internal Server Error", 503: "Service Unavailable"}
        lines = ["HTTP/1.1 %d %s" % (status, reasons.get(status, "Status"))]
        lines += ["%s: %s" % kv for kv in headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
