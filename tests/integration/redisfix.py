"""Real Redis for Portico's integration tests (Python standard library only): one redis-server
on a free loopback port, or a Redis Cluster of N masters.

  RedisServer(password=None)   `redis-server --port P --bind 127.0.0.1 --save '' --appendonly no
                               --dir <tmp>` with its output in <tmp>/redis.log (never an inherited
                               pipe: a test must not block on a full pipe, nor keep one open after
                               the process died). Started at construction; waits (bounded) for an
                               answer to PING. kill() (SIGKILL), stop() (SIGTERM, then SIGKILL),
                               restart() on the same port, pause() / resume() (SIGSTOP / SIGCONT:
                               a server that accepts connections and never answers).
  RedisCluster(masters=3)      N such servers with --cluster-enabled, joined by
                               `redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes`,
                               waited for (bounded) until every node reports cluster_state:ok.

Both offer command(*args) (a small RESP client, one connection per call) and cli(*args)
(redis-cli, bounded). Every process is killed at interpreter exit even when a test forgets
(a paused one included), and its temp dir removed. `requires_redis` skips a test class or
method when redis-server (or redis-cli) is not installed.
"""
import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import free_port

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
START_TIMEOUT = 10.0     # s: PING must be answered within this
CLUSTER_TIMEOUT = 20.0   # s: cluster create + cluster_state:ok on every node
COMMAND_TIMEOUT = 2.0    # s: one RESP command

requires_redis = unittest.skipUnless(REDIS_SERVER and REDIS_CLI, "redis-server / redis-cli not installed")

_live = []  # RedisServer instances to kill at exit
_live_lock = threading.Lock()


def _kill_all():
    with _live_lock:
        servers = list(_live)
    for s in servers:
        s.close()


atexit.register(_kill_all)


class RedisError(Exception):
    """An error reply (-ERR ...) or a broken reply."""


# ---- RESP -----------------------------------------------------------------------------------

def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RedisError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RedisError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RedisError("unexpected reply %r" % line[:80])


def resp_command(port, *args, password=None, timeout=COMMAND_TIMEOUT):
    """One command on a fresh connection to 127.0.0.1:port (AUTH first when password is set).
    Raises OSError / socket.timeout / RedisError."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        reader = _Reader(sock)
        if password is not None:
            sock.sendall(_encode(["AUTH", password]))
            reader.reply()
        sock.sendall(_encode(list(args)))
        return reader.reply()


# ---- one server -----------------------------------------------------------------------------

class RedisServer:
    def __init__(self, password=None, extra_args=(), port=None, start=True):
        if not REDIS_SERVER:
            raise unittest.SkipTest("redis-server is not installed")
        self.password = password
        self.extra_args = list(extra_args)
        self.tmpdir = tempfile.mkdtemp(prefix="portico-redis-")
        self.log_path = os.path.join(self.tmpdir, "redis.log")
        self.port = port
        self.proc = None
        self._log = None
        self._paused = False
        with _live_lock:
            _live.append(self)
        if start:
            self.start()

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def start(self):
        """Starts the server (on self.port if set, else on a free port, retried on a lost race)
        and waits for PING."""
        fixed = self.port is not None
        last = ""
        for _ in range(1 if fixed else 3):
            port = self.port if fixed else free_port()
            if self._launch(port):
                self.port = port
                return self
            last = self.log_tail()
        raise AssertionError("redis-server did not answer PING within %.0f s; log:\n%s" % (START_TIMEOUT, last))

    def _launch(self, port):
        args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--dir", self.tmpdir]
        if self.password is not None:
            args += ["--requirepass", self.password]
        args += self.extra_args
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, cwd=self.tmpdir, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        self._paused = False
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # e.g. the port was taken meanwhile
            try:
                if resp_command(port, "PING", password=self.password, timeout=0.5) == "PONG":
                    return True
            except (OSError, RedisError):
                pass
            time.sleep(0.02)
        self.kill()
        return False

    def command(self, *args, timeout=COMMAND_TIMEOUT):
        return resp_command(self.port, *args, password=self.password, timeout=timeout)

    def cli(self, *args, timeout=10):
        """redis-cli against this server (raw output); raises on failure or timeout."""
        return run_cli(self.port, *args, password=self.password, timeout=timeout)

    def scan_keys(self, pattern="*"):
        """Every key matching pattern (redis-cli --scan: a test-only view of the keyspace)."""
        # One key a line: split on "\n" only (str.splitlines() also splits on \x1e, which
        # store keys of Vary variants contain).
        return [k for k in self.cli("--scan", "--pattern", pattern).split("\n") if k]

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL (a crash: no goodbye on any connection)."""
        if self.running():
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._close_log()

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
        if self.running():
            self.resume()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._close_log()
        return self.proc.returncode if self.proc else None

    def restart(self):
        """Starts a new process on the same port (after kill() or stop()); the data is gone
        (no persistence)."""
        if self.running():
            self.stop()
        return self.start()

    def pause(self):
        """SIGSTOP: connections are still accepted by the kernel, nothing is answered."""
        if self.running() and not self._paused:
            self.proc.send_signal(signal.SIGSTOP)
            self._paused = True

    def resume(self):
        if self.running() and self._paused:
            self.proc.send_signal(signal.SIGCONT)
            self._paused = False

    def log_tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""

    def _close_log(self):
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self):
        """Test cleanup: kill and remove the temp dir. Idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.kill()  # SIGKILL also ends a stopped process
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._close_log()
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        with _live_lock:
            if self in _live:
                _live.remove(self)


def run_cli(port, *args, password=None, timeout=10):
    """`redis-cli -h 127.0.0.1 -p port args...` (raw output), bounded by timeout; raises
    AssertionError when it fails or prints an error reply."""
    if not REDIS_CLI:
        raise unittest.SkipTest("redis-cli is not installed")
    cmd = [REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), "--raw"]
    env = dict(os.environ)
    if password is not None:
        env["REDISCLI_AUTH"] = password  # not on the command line (no warning either)
    p = subprocess.run(cmd + [str(a) for a in args], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout, env=env)
    out = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0 or out.startswith(("ERR", "WRONGTYPE", "NOAUTH")):
        raise AssertionError("redis-cli %s -> %d: %s%s" % (" ".join(map(str, args)), p.returncode, out,
                                                          p.stderr.decode("utf-8", "replace")))
    return out


# ---- a cluster ------------------------------------------------------------------------------

class RedisCluster:
    """`masters` nodes (no replicas), each a RedisServer with --cluster-enabled and its bus on a
    free port (port + 10000 may be taken or out of range), slots split evenly by
    `redis-cli --cluster create`. --cluster-require-full-coverage no: a dead master does not take
    the others' slots down with it."""

    def __init__(self, masters=3):
        if not (REDIS_SERVER and REDIS_CLI):
            raise unittest.SkipTest("redis-server / redis-cli not installed")
        self.nodes = []
        try:
            for _ in range(masters):
                bus = free_port()
                self.nodes.append(RedisServer(extra_args=[
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--cluster-port", str(bus), "--cluster-node-timeout", "5000",
                    "--cluster-require-full-coverage", "no"]))
            deadline = time.monotonic() + CLUSTER_TIMEOUT
            cmd = [REDIS_CLI, "--cluster", "create"] + ["127.0.0.1:%d" % n.port for n in self.nodes] + \
                  ["--cluster-replicas", "0", "--cluster-yes"]
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=CLUSTER_TIMEOUT)
            if p.returncode != 0:
                raise AssertionError("redis-cli --cluster create failed (%d): %s%s" % (
                    p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")))
            last = ""
            while True:
                states = []
                for n in self.nodes:
                    try:
                        info = n.command("CLUSTER", "INFO", timeout=1).decode()
                    except (OSError, RedisError) as e:
                        info = str(e)
                    states.append("cluster_state:ok" in info)
                    last = info
                if all(states):
                    break
                if time.monotonic() >= deadline:
                    raise AssertionError("cluster_state never became ok on every node; last CLUSTER INFO:\n" + last)
                time.sleep(0.1)
        except BaseException:
            self.close()
            raise

    @property
    def ports(self):
        return [n.port for n in self.nodes]

    @property
    def url(self):
        """The seed the proxy is given: the first node."""
        return self.nodes[0].url

    def scan_keys(self, pattern="*"):
        """Every key matching pattern over all masters."""
        keys = []
        for n in self.nodes:
            keys += n.scan_keys(pattern)
        return keys

    def close(self):
        for n in self.nodes:
            n.close()
