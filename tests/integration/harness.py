"""Black-box harness for Portico's integration tests (Python standard library only).

What it starts, always on loopback and free ports, and always stops again:
  - Portico(conf):     the real binary ($PORTICO_BIN) with a conf written into a temp dir; the
                       listening ports are read from its JSON "listening" log lines.
  - FunctionHost():    deploy/function-host/server.js (the Lambda Invoke API) on --port 0.
  - Upstream():        a scripted threaded HTTP/1.1 server, the fixture for `http` origins.
The clients (request(), RawConn, the Prometheus helpers; wire.py) and the upstream fixture
(upstream.py) are re-exported here, so a test imports everything from `harness`.

Every process is registered and killed at interpreter exit even when a test forgets, so a
failing run leaves nothing behind. Every wait is bounded.
"""
import atexit
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

from upstream import Upstream, UpstreamRequest, pattern_bytes  # noqa: F401  (re-exported)
from wire import Closed, RawConn, Response, metric, parse_metrics, request, scrape  # noqa: F401

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


def catches_signals(pid, signals):
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
            if not wait_until(lambda: catches_signals(self.proc.pid, (signal.SIGHUP, signal.SIGTERM)),
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


def wait_until(predicate, timeout, interval=0.05):
    """Polls predicate() until truthy (returned) or timeout (returns the last falsy value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
