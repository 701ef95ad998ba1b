"""Clients for Portico's integration tests (Python standard library only): request() (one
request through http.client), RawConn (exact bytes in, parsed responses out, every read bounded
by a timeout) and the Prometheus text-format helpers used to read /metrics."""
import http.client
import json
import re
import socket
import time


class Response:
    def __init__(self, status, reason, headers, body, version="HTTP/1.1"):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) in wire order
        self.body = body
        self.version = version

    def header(self, name, default=None):
        """The last value of header `name` (case-insensitive)."""
        vals = self.header_all(name)
        return vals[-1] if vals else default

    def header_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %d %r headers=%r body=%r>" % (self.status, self.reason, self.headers, self.body[:200])


def request(port, method="GET", target="/", host="localhost", headers=None, body=None, timeout=5.0):
    """One request on a fresh connection (http.client); returns a Response."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = {"Host": host}
        if headers:
            hdrs.update(headers)
        conn.request(method, target, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.reason, list(r.getheaders()), data,
                        "HTTP/1.1" if r.version == 11 else "HTTP/1.0")
    finally:
        conn.close()


class Closed(Exception):
    """The peer closed the connection before a complete response."""


class RawConn:
    """A raw TCP connection: send exact bytes, read and parse responses with timeouts."""

    def __init__(self, port, timeout=5.0, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(("127.0.0.1", port))
        except OSError:
            self.sock.close()
            raise
        self.timeout = timeout
        self.buf = bytearray()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out waiting for data")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 20)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise Closed("connection closed by peer (%d unread bytes)" % len(self.buf))
        self.buf += chunk

    def _read_until(self, marker, deadline, limit=1 << 20):
        while marker not in self.buf:
            if len(self.buf) > limit:
                raise AssertionError("no %r within %d bytes" % (marker, limit))
            self._fill(deadline)
        i = self.buf.index(marker) + len(marker)
        out = bytes(self.buf[:i])
        del self.buf[:i]
        return out

    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_response(self, head_only=False, timeout=None):
        """Parses the next response (a 1xx interim response is returned as is). head_only: the
        request was HEAD (no body whatever the headers say). Raises Closed or socket.timeout."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        head = self._read_until(b"\r\n\r\n", deadline).decode("latin-1")
        lines = head.split("\r\n")
        m = re.match(r"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise AssertionError("bad status line %r" % lines[0])
        version, status, reason = m.group(1), int(m.group(2)), m.group(3) or ""
        headers = []
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise AssertionError("bad header line %r" % line)
            headers.append((name, value.strip()))
        resp = Response(status, reason, headers, b"", version)
        if head_only or status < 200 or status in (204, 304):
            return resp
        te = resp.header("Transfer-Encoding")
        cl = resp.header("Content-Length")
        if te is not None and te.lower() == "chunked":
            body = bytearray()
            while True:
                size_line = self._read_until(b"\r\n", deadline).decode("latin-1")
                size = int(size_line.split(";")[0].strip(), 16)
                if size == 0:
                    while self._read_until(b"\r\n", deadline) != b"\r\n":
                        pass  # trailers
                    break
                body += self._read_exact(size, deadline)
                if self._read_exact(2, deadline) != b"\r\n":
                    raise AssertionError("bad chunk terminator")
            resp.body = bytes(body)
        elif cl is not None:
            resp.body = self._read_exact(int(cl), deadline)
        else:
            resp.body = self.read_until_close(deadline - time.monotonic())
        return resp

    def read_until_close(self, timeout=None):
        """Everything until EOF; raises socket.timeout if the peer keeps it open."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            try:
                self._fill(deadline)
            except Closed:
                out = bytes(self.buf)
                self.buf = bytearray()
                return out

    def is_closed(self, timeout=2.0):
        """True if the peer closes (EOF or reset) within timeout with no further bytes; raises
        if it sends data instead; False if it is still open."""
        try:
            data = self.read_until_close(timeout)
        except socket.timeout:
            return False
        if data:
            raise AssertionError("expected a close, got more bytes: %r" % data[:200])
        return True


# ---- Prometheus ---------------------------------------------------------------------------------

_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def parse_metrics(text):
    """Prometheus text format -> (samples, types): samples is a list of (name, labels, value);
    types maps a metric family to its # TYPE. Raises on a malformed line."""
    samples, types = [], {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3]
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise AssertionError("malformed metrics line %r" % line)
        labels = {}
        if m.group(3):
            rest = m.group(3)
            pos = 0
            while pos < len(rest):
                lm = _LABEL_RE.match(rest, pos)
                if not lm or lm.end() == pos:
                    raise AssertionError("malformed labels in %r" % line)
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        samples.append((m.group(1), labels, float(m.group(4))))
    return samples, types


def metric(samples, name, /, **labels):
    """Sum of the samples named `name` whose labels include `labels` (0 if none)."""
    total = 0.0
    for n, l, v in samples:
        if n == name and all(l.get(k) == str(val) for k, val in labels.items()):
            total += v
    return total


def scrape(admin_port):
    r = request(admin_port, "GET", "/metrics", host="127.0.0.1")
    if r.status != 200:
        raise AssertionError("GET /metrics -> %d" % r.status)
    return parse_metrics(r.body.decode("utf-8"))[0]
