"""A real S3 API server for the `s3` origin's integration tests: npm's s3rver (pinned in
deploy/s3rver/package-lock.json), started on loopback on a free port with a data directory of
its own, and always stopped again (registered with harness's kill-at-exit list).

  S3rver(bucket="site"):  runs deploy/s3rver/setup.sh once per interpreter (npm ci when the
                          tree is missing or older than the lock), then starts
                          `node .../s3rver.js --address 127.0.0.1 --port 0 --directory <tmp>
                          --configure-bucket <bucket>` and reads the port from its banner.
  put(key, data, ...):    uploads one object with `curl --aws-sigv4` (path-style, signed with
                          s3rver's built-in account S3RVER/S3RVER and x-amz-content-sha256).
  stop() / start():       the store goes away and comes back on the same port with the same
                          objects (the data directory is kept until close()).
  served(key):            what s3rver logged for the requests it answered, [(status, size)] for
                          `key`, so a test sees what Portico asked of the store.

Note on s3rver 3.7.1: it checks that a SigV4 request's access key exists (else 403
InvalidAccessKeyId) but does not verify the signature itself, so a wrong secret alone is
accepted; anonymous (unsigned) requests are accepted too. Every wait is bounded.
"""
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading

import harness
from harness import START_TIMEOUT, STOP_TIMEOUT, SOURCE_DIR, LineCollector, wait_until

S3RVER_DIR = os.path.join(SOURCE_DIR, "deploy", "s3rver")
S3RVER_JS = os.path.join(S3RVER_DIR, "node_modules", "s3rver", "bin", "s3rver.js")
SETUP_SH = os.path.join(S3RVER_DIR, "setup.sh")
SETUP_TIMEOUT = 300  # s: a first `npm ci` on a slow machine
PUT_TIMEOUT = 30     # s: one upload (the largest the tests make is 20 MiB)
# s: node loading s3rver's dependencies takes ~2 s on an idle 2-core machine, far more when the
# machine is busy compiling.
S3RVER_START_TIMEOUT = max(START_TIMEOUT, 30.0)

ACCESS_KEY = "S3RVER"  # s3rver's built-in account
SECRET_KEY = "S3RVER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

_setup_lock = threading.Lock()
_setup_done = False
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# koa-logger's response line as s3rver prints it: "info: <key> <status> <time> <size>" (the size
# is empty for a 304). s3rver cuts the first 16 characters of "  --> GET /site/<key> ...", so the
# key is exact for GETs in a 4-letter bucket ("site"), and a suffix of "/<bucket>/<key>" otherwise.
_SERVED = re.compile(r"^info: (.*?) (\d{3}) \S+ ?(\S*)$")


def ensure_installed():
    """Runs deploy/s3rver/setup.sh once per interpreter; raises with its output on failure."""
    global _setup_done
    with _setup_lock:
        if _setup_done:
            return
        try:
            p = subprocess.run(["bash", SETUP_SH], stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=SETUP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError("deploy/s3rver/setup.sh did not finish within %d s" % SETUP_TIMEOUT)
        if p.returncode != 0 or not os.path.isfile(S3RVER_JS):
            raise AssertionError("deploy/s3rver/setup.sh failed (exit %d):\n%s%s" % (
                p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")))
        _setup_done = True


class S3rver:
    def __init__(self, bucket="site"):
        ensure_installed()
        self.node = shutil.which("node")
        if self.node is None:
            raise AssertionError("node is not installed (deploy/install-deps.sh installs it)")
        self.bucket = bucket
        self.dir = tempfile.mkdtemp(prefix="portico-s3rver-")
        self.port = 0
        self.proc = None
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        try:
            self.start()
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        """Starts the server: on a free port the first time, on the same port after stop()."""
        if self.proc is not None and self.proc.poll() is None:
            raise AssertionError("s3rver is already running")
        self.proc = subprocess.Popen(
            [self.node, S3RVER_JS, "--address", "127.0.0.1", "--port", str(self.port),
             "--directory", self.dir, "--configure-bucket", self.bucket],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        harness._register(self.proc)
        self.stdout = LineCollector(self.proc.stdout, "stdout")
        self.stderr = LineCollector(self.proc.stderr, "stderr")
        hit = self.stdout.wait_for(lambda l: l.startswith("S3rver listening on "), S3RVER_START_TIMEOUT)
        m = hit and re.match(r"^S3rver listening on 127\.0\.0\.1:(\d+)$", hit[1])
        if not m:
            self._kill()
            raise AssertionError("s3rver did not start within %.0f s (exit %s); output:\n%s\n%s" % (
                S3RVER_START_TIMEOUT, self.proc.poll(), "\n".join(self.stdout.snapshot()[-10:]),
                "\n".join(self.stderr.snapshot()[-10:])))
        self.port = int(m.group(1))
        if not wait_until(lambda: harness._accepts(self.port), START_TIMEOUT):
            self._kill()
            raise AssertionError("s3rver on port %d never accepted" % self.port)
        return self

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then SIGKILL if it has not exited within timeout. The data stays."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()
        self.stdout.join()
        self.stderr.join()

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def close(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def object_url(self, key):
        return "%s/%s/%s" % (self.endpoint, self.bucket, key.lstrip("/"))

    def put(self, key, data, content_type="application/octet-stream", metadata=None, cache_control=None,
            content_encoding=None):
        """Uploads `data` (bytes) as `key`; returns s3rver's answer headers as a dict with
        lower-case names (the ETag is there). Raises unless s3rver answers 200."""
        headers = ["x-amz-content-sha256: " + hashlib.sha256(data).hexdigest(),
                   "Content-Type: " + content_type, "Expect:"]
        for name, value in (metadata or {}).items():
            headers.append("x-amz-meta-%s: %s" % (name, value))
        if cache_control is not None:
            headers.append("Cache-Control: " + cache_control)
        if content_encoding is not None:
            headers.append("Content-Encoding: " + content_encoding)
        with tempfile.TemporaryDirectory(prefix="portico-s3put-") as tmp:
            body = os.path.join(tmp, "body")
            with open(body, "wb") as f:
                f.write(data)
            cmd = ["curl", "-sS", "--max-time", str(PUT_TIMEOUT), "-o", os.devnull, "-D", "-",
                   "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", "%s:%s" % (self.access_key, self.secret_key),
                   "-T", body]
            for h in headers:
                cmd += ["-H", h]
            cmd.append(self.object_url(key))
            try:
                p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=PUT_TIMEOUT + 5)
            except subprocess.TimeoutExpired:
                raise AssertionError("PUT %s did not finish within %d s" % (key, PUT_TIMEOUT))
        head = p.stdout.decode("latin-1")
        blocks = [b for b in head.split("\r\n\r\n") if b.strip()]
        last = blocks[-1].split("\r\n") if blocks else [""]
        if p.returncode != 0 or not re.match(r"^HTTP/\S+ 200", last[0]):
            raise AssertionError("PUT %s failed (curl exit %d): %s %s" % (
                key, p.returncode, head, p.stderr.decode("utf-8", "replace")))
        out = {}
        for line in last[1:]:
            name, _, value = line.partition(":")
            out[name.strip().lower()] = value.strip()
        return out

    def served(self, key):
        """[(status, size text)] of the responses s3rver logged for `key` so far, in order (size
        text as koa-logger prints it: "1.02kb", "20mb", "" for a 304)."""
        key = key.lstrip("/")
        full = "/%s/%s" % (self.bucket, key)
        out = []
        for line in self.stdout.snapshot():
            m = _SERVED.match(_ANSI.sub("", line))
            if m and (m.group(1) == key or full.endswith("/" + m.group(1))):
                out.append((int(m.group(2)), m.group(3)))
        return out
