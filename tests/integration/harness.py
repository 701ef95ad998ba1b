"""Black-box harness for Portico's integration tests (Python standard library only).

What it starts, always on loopback and free ports, and always stops again:
  - Portico(conf):     the real binary ($PORTICO_BIN) with a conf written into a temp dir; the
                       listening ports are read from its JSON "listening" log lines.
  - FunctionHost():    deploy/function-host/server.js (the Lambda Invoke API) on --port 0.
  - Upstream():        a scripted threaded HTTP/1.1 server, the fixture for `http` origins.
Plus clients: request() (http.client, one request), RawConn (exact bytes in, parsed responses
out, with timeouts) and helpers to read Prometheus metrics.

Every process is registered and killed at interpreter exit even when a test forgets, so a
failing run leaves nothing behind. Every wait is bounded.
"""
import atexit
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("PORTICO_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
PORTICO_BIN = os.environ.get("PORTICO_BIN") or os.path.join(SOURCE_DIR, "build", "proxy", "portico")
FUNCTION_HOST = os.path.join(SOURCE_DIR, "deploy", "function-host", "server.js")

START_TIMEOUT = 10.0  # s: a process must be listening within this
STOP_TIMEOUT = 10.0   # s: a signalled process must exit within this

_live = []  # processes to kill at exit
_live_lock = threading.Lock()


def _register(proc):
    with _live_lock:
        _live.append(proc)


def _kill_all():
    with _live_lock:
        procs = list(_live)
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass


atexit.register(_kill_all)


def free_port():
    """A port that nothing listens on (bound then closed: connecting to it is refused)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _catches(pid, signals):
    """True when process pid has handlers installed for all of signals (/proc SigCgt)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    mask = int(line.split()[1], 16)
                    return all(mask & (1 << (int(s) - 1)) for s in signals)
    except OSError:
        return False
    return False


class LineCollector:
    """Reads a pipe line by line on a thread; lines can be waited for with a predicate."""

    def __init__(self, stream, name):
        self.lines = []
        self.name = name
        self._cond = threading.Condition()
        self._eof = False
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()
        stream.close()

    def snapshot(self):
        with self._cond:
            return list(self.lines)

    def json_lines(self):
        """Every line that parses as a JSON object."""
        out = []
        for line in self.snapshot():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def wait_for(self, predicate, timeout, start=0):
        """First line at index >= start for which predicate(line) is truthy, or None on
        timeout or end of stream. Returns (index, line)."""
        deadline = time.monotonic() + timeout
        i = start
        with self._cond:
            while True:
                while i < len(self.lines):
                    if predicate(self.lines[i]):
                        return i, self.lines[i]
                    i += 1
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def wait_json(self, predicate, timeout, start=0):
        """Like wait_for over JSON-object lines; returns the parsed object or None."""
        def match(line):
            try:
                obj = json.loads(line)
            except ValueError:
                return False
            return isinstance(obj, dict) and predicate(obj)
        hit = self.wait_for(match, timeout, start)
        return json.loads(hit[1]) if hit else None

    def join(self, timeout=5):
        self._thread.join(timeout)


class Portico:
    """The real binary, run with `-c <tmp>/portico.toml`.

    In conf_text, "@TMP@" is replaced by the temp dir and "@SRC@" by the repository root.
    expect: listener kinds to wait for ("http", "admin"); by default "http" plus "admin"
    when the conf has an [admin] table.
    """

    def __init__(self, conf_text, *, tmpdir=None, expect=None, env=None, start=True, wait_accept=True):
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="portico-it-")
        self._own_tmp = tmpdir is None
        self.conf_path = os.path.join(self.tmpdir, "portico.toml")
        self.proc = None
        self._stopped = False  # set once we signalled or killed it
        self.ports = {}
        self.env = env
        if expect is None:
            expect = ("http", "admin") if re.search(r"^\s*\[admin\]", conf_text, re.M) else ("http",)
        self.expect = tuple(expect)
        self.wait_accept = wait_accept
        self.write_conf(conf_text)
        if start:
            self.start()

    def subst(self, text):
        return text.replace("@TMP@", self.tmpdir).replace("@SRC@", SOURCE_DIR)

    def write_conf(self, conf_text):
        """(Re)writes the conf file atomically (a reload must never see half a file)."""
        tmp = self.conf_path + ".new"
        with open(tmp, "w") as f:
            f.write(self.subst(conf_text))
        os.replace(tmp, self.conf_path)

    def start(self):
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen([PORTICO_BIN, "-c", self.conf_path], cwd=self.tmpdir, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        _register(self.proc)
        self.stdout = LineCollector(self.proc.stdout, "stdout")
        self.stderr = LineCollector(self.proc.stderr, "stderr")
        deadline = time.monotonic() + START_TIMEOUT
        start = 0
        while set(self.expect) - set(self.ports):
            hit = self.stderr.wait_for(lambda l: '"listening"' in l, max(0.0, deadline - time.monotonic()),
                                       start)
            if hit is None:
                self.kill()
                raise AssertionError(
                    "portico did not report listeners %s within %.0f s (exit code %s); stderr:\n%s"
                    % (sorted(set(self.expect) - set(self.ports)), START_TIMEOUT, self.proc.poll(),
                       "\n".join(self.stderr.snapshot()[-20:])))
            start = hit[0] + 1
            try:
                obj = json.loads(hit[1])
            except ValueError:
                continue
            if obj.get("msg") != "listening":
                continue
            kind = obj.get("listener")
            host, _, port = str(obj.get("addr", "")).rpartition(":")
            if kind and port.isdigit() and kind not in self.ports:
                self.ports[kind] = int(port)
        if self.wait_accept:
            # The contract is that a listener accepts once its line is logged (test_cli checks
            # exactly that); here, give it a bounded moment so one race does not fail every test.
            for kind, port in self.ports.items():
                if not wait_until(lambda: _accepts(port), max(0.5, deadline - time.monotonic())):
                    self.kill()
                    raise AssertionError("portico %s listener on port %d never accepted" % (kind, port))
            # Likewise, signals sent by a test must find their handlers installed (until then
            # SIGHUP's default action kills the process).
            if not wait_until(lambda: _catches(self.proc.pid, (signal.SIGHUP, signal.SIGTERM)),
                              max(0.5, deadline - time.monotonic())):
                self.kill()
                raise AssertionError("portico does not catch SIGHUP and SIGTERM")
        return self

    @property
    def http_port(self):
        return self.ports["http"]

    @property
    def admin_port(self):
        return self.ports["admin"]

    @property
    def pid(self):
        return self.proc.pid

    def send_signal(self, sig):
        if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
            self._stopped = True
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Sends sig and returns the exit code; kills (and raises) if it does not exit in time."""
        if self.proc is None:
            return None
        self._stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("portico did not exit within %.0f s of signal %d" % (timeout, sig))
        self.stdout.join()
        self.stderr.join()
        return self.proc.returncode

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Waits (without signalling) for the process to exit; returns the exit code."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("portico did not exit within %.0f s" % timeout)
        self.stdout.join()
        self.stderr.join()
        return self.proc.returncode

    def kill(self):
        self._stopped = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def close(self):
        """Test cleanup: stop (politely, then by force) and remove the temp dir. A process that
        died on its own (a crash) is reported on stderr with its last log lines."""
        try:
            if self.proc is not None and self.proc.poll() is not None and not self._stopped:
                sys.stderr.write("\nportico (pid %d) had exited on its own with code %d; stderr tail:\n%s\n"
                                 % (self.proc.pid, self.proc.returncode, "\n".join(self.stderr.snapshot()[-10:])))
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.kill()
        finally:
            if self._own_tmp:
                shutil.rmtree(self.tmpdir, ignore_errors=True)

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for pid %d" % self.proc.pid)

    def access_log(self):
        """Access-log entries printed so far (JSON lines on stdout with a "status")."""
        return [o for o in self.stdout.json_lines() if "status" in o and "method" in o]

    def errors(self):
        return [o for o in self.stderr.json_lines() if o.get("level") in ("error", "fatal", "critical")]


def run_portico(args, timeout=10, cwd=None, env=None):
    """Runs the binary to completion: (returncode, stdout, stderr) as text."""
    p = subprocess.run([PORTICO_BIN] + list(args), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


class FunctionHost:
    """deploy/function-host/server.js on a free port."""

    def __init__(self):
        node = shutil.which("node")
        if node is None:
            raise AssertionError("node is not installed (deploy/install-deps.sh installs it)")
        self.proc = subprocess.Popen([node, FUNCTION_HOST, "--port", "0"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _register(self.proc)
        self.stdout = LineCollector(self.proc.stdout, "stdout")
        self.stderr = LineCollector(self.proc.stderr, "stderr")
        hit = self.stdout.wait_for(lambda l: l.startswith("function-host listening on "), START_TIMEOUT)
        if hit is None:
            self.close()
            raise AssertionError("function host did not start; stderr:\n" + "\n".join(self.stderr.snapshot()))
        m = re.match(r"^function-host listening on http://127\.0\.0\.1:(\d+)$", hit[1])
        if not m:
            self.close()
            raise AssertionError("unexpected function host banner: %r" % hit[1])
        self.port = int(m.group(1))
        self.endpoint = "http://127.0.0.1:%d" % self.port

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                raise AssertionError("function host did not exit within %.0f s" % timeout)
        return self.proc.returncode

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


# ---- clients ------------------------------------------------------------------------------------

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


def get_raw(port, target, host, extra="", version="HTTP/1.1"):
    return ("GET %s %s\r\nHost: %s\r\n%s\r\n" % (target, version, host, extra)).encode("latin-1")


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


def wait_until(predicate, timeout, interval=0.05):
    """Polls predicate() until truthy (returned) or timeout (returns the last falsy value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


from upstream import Upstream, UpstreamRequest, pattern_bytes  # noqa: E402,F401  (re-exported)
