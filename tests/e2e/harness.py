"""Starts and stops a real `mare run` for end-to-end tests, on free loopback ports, in a
temporary data directory, and reads back what its log holds."""
import calendar
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.parse
import urllib.request

MARE = os.environ.get("MARE_BIN", os.path.join(os.path.dirname(__file__), "../../build/bin/mare"))
# Real data the tests read: tests/data in the repository (its README says what each file is).
TEST_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")


def murmur2(data):
    """Kafka's murmur2 of bytes (the Java client's Utils.murmur2), as its signed 32-bit int."""
    m, mask = 0x5BD1E995, 0xFFFFFFFF
    h = (0x9747B28C ^ len(data)) & mask
    whole = len(data) // 4 * 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    tail = data[whole:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h = ((h ^ tail[0]) * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h >= 1 << 31 else h


def key_partition(key, partitions):
    """The partition a Kafka producer's default partitioner gives a keyed record."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


_given_ports = set()
# ctest runs test files two at a time: a port one process found free may be found free by the
# other before the first binds it. A file per port, created exclusively, reserves it across
# processes; reservations older than _PORT_HOLD_S are stale (the port is bound by then or freed).
_PORT_DIR = os.path.join("/tmp", f"mare-test-ports-{os.getuid()}")
_PORT_HOLD_S = 600


def _reserve(port):
    os.makedirs(_PORT_DIR, exist_ok=True)
    path = os.path.join(_PORT_DIR, str(port))
    try:
        if time.time() - os.stat(path).st_mtime > _PORT_HOLD_S:
            os.unlink(path)
    except FileNotFoundError:
        pass
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        return True
    except FileExistsError:
        return False


def free_port(kind=socket.SOCK_STREAM):
    """A port free now and not given before by this process or another test run beside it: the
    kernel may hand the same free port to two calls in a row (a MareRun's TCP and HTTP ports
    once collided that way)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given_ports and _reserve(port):
            _given_ports.add(port)
            return port


def stop_process(proc, kill=False):
    """Stops a test server's process: SIGTERM (a clean shutdown) or SIGKILL, a minute to end,
    then SIGKILL. Does nothing for a process already gone (or None)."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def scrape_metric(port, name):
    """One sample of /metrics on 127.0.0.1:port (name with its labels), or None if absent or
    the process does not answer."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


class MareRun:
    """A `mare run` process. Use as a context manager, or start()/stop()/kill9()."""

    def __init__(self, data_dir, extra=(), flags=(), preexec_fn=None, tls_ca=None, tls_client=None, start_timeout=20):
        self.data_dir = str(data_dir)
        self.tls_ca = tls_ca  # the CA of http.tls_cert, when the server speaks HTTPS
        self.tls_client = tls_client  # (cert, key) the harness presents when http.tls_client_ca is set
        self.preexec_fn = preexec_fn  # run in the child before exec (resource limits, say)
        self.start_timeout = start_timeout  # seconds start() waits for /healthz
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.tcp_port = free_port()
        self.http_port = free_port()
        self.pgwire_port = free_port()
        self.unix_path = os.path.join(self.data_dir, "ingest.sock")
        self.extra = list(extra)
        self.flags = list(flags)
        self.proc = None
        self.output = os.path.join(self.data_dir, "mare-run.out")

    def args(self):
        sets = [
            f'sources.udp.listen="127.0.0.1:{self.udp_port}"',
            f'sources.tcp.listen="127.0.0.1:{self.tcp_port}"',
            f'http.listen="127.0.0.1:{self.http_port}"',
            f'pgwire.listen="127.0.0.1:{self.pgwire_port}"',
        ] + self.extra
        out = [MARE, "run", "--data-dir", self.data_dir, *self.flags]
        for s in sets:
            out += ["--set", s]
        return out

    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        self.log_file = open(self.output, "ab")
        self.proc = subprocess.Popen(self.args(), stdout=self.log_file, stderr=subprocess.STDOUT,
                                     preexec_fn=self.preexec_fn, restore_signals=self.preexec_fn is None)
        deadline = time.time() + self.start_timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mare run exited with {self.proc.returncode}:\n{self.read_output()}")
            try:
                with self.urlopen(f"{self.http_url}/healthz", timeout=1) as r:
                    if r.status == 200 and os.path.exists(self.unix_path):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("mare run did not become healthy:\n" + self.read_output())

    def stop(self):
        """Graceful stop (SIGTERM); returns the exit code."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            # Generous: the last flush and the processors' final checkpoints run in the
            # sanitizer build too, on a machine other tests load.
            self.proc.wait(timeout=90)
        self.log_file.close()
        return self.proc.returncode

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log_file.close()

    def read_output(self):
        with open(self.output, "rb") as f:
            return f.read().decode(errors="replace")

    @property
    def http_url(self):
        return f"{'https' if self.tls_ca else 'http'}://127.0.0.1:{self.http_port}"

    def urlopen(self, req, timeout):
        """urllib.request.urlopen, trusting tls_ca for an HTTPS server."""
        context = ssl.create_default_context(cafile=self.tls_ca) if self.tls_ca else None
        if context and self.tls_client:
            context.load_cert_chain(*self.tls_client)
        return urllib.request.urlopen(req, timeout=timeout, context=context)

    def metrics(self):
        with self.urlopen(f"{self.http_url}/metrics", timeout=5) as r:
            return r.read().decode()

    def metric(self, name_and_labels):
        for line in self.metrics().splitlines():
            if line.startswith(name_and_labels + " "):
                return float(line.split()[-1])
        return None

    def query_rows(self, sql, timeout=30):
        """The rows of `sql`, asked through the query API (JSON)."""
        url = f"{self.http_url}/api/v1/query?" + urllib.parse.urlencode({"q": sql, "format": "json"})
        with self.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read())["rows"]

    def wait_readings(self, n, where="TRUE", timeout=60):
        """Returns once the store holds exactly `n` readings (of those `where` holds); past
        `timeout`, raises with the count it holds."""
        def count():
            return self.query_rows(f"SELECT count(*) FROM readings WHERE {where}")[0][0]
        wait_for(lambda: count() == n, timeout, step=0.2,
                 what=lambda: f"{n} readings where {where} in the store (it holds {count()})")

    def post(self, body):
        req = urllib.request.Request(f"{self.http_url}/api/v1/ingest", data=body.encode() if isinstance(body, str) else body,
                                     method="POST", headers={"Content-Type": "application/x-ndjson"})
        try:
            with self.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        rc = self.stop()
        assert rc == 0, f"mare run exited with {rc}:\n{self.read_output()}"


def mare(*args, check=True, timeout=300, input=None):
    """Runs a mare subcommand; returns the CompletedProcess (text)."""
    p = subprocess.run([MARE, *map(str, args)], capture_output=True, text=True, timeout=timeout, input=input)
    if check and p.returncode != 0:
        raise AssertionError(f"mare {' '.join(map(str, args))} exited {p.returncode}\nstdout:{p.stdout[-3000:]}\nstderr:{p.stderr[-3000:]}")
    return p


def log_records(data_dir, topic="raw"):
    """Every record of the topic, as dicts with partition, offset, timestamp, key, value."""
    p = mare("log", "tail", topic, "--from-beginning", "--format", "ndjson", "--data-dir", data_dir)
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def raw_values(records):
    """The reading JSON of each record, as compact text, to compare with what was sent."""
    return [json.dumps(r["value"], separators=(",", ":"), sort_keys=True) for r in records]


def canonical(line):
    return json.dumps(json.loads(line), separators=(",", ":"), sort_keys=True)


def buoy_readings(days):
    """Day -> readings of the first `days` days of NDBC 44005 (2012): sensor 1 its air
    temperature, sensor 2 its water temperature, each as `temperature`; 99/999 are missing."""
    by_day = {}
    first = None
    with open(os.path.join(TEST_DATA, "ndbc_44005_2012.txt")) as f:
        for line in f:
            if line.startswith(("#", "YY")):
                continue
            t = line.split()
            ts = calendar.timegm(tuple(int(x) for x in t[:5]) + (0,))
            first = first if first is not None else ts // 86400 * 86400
            day = (ts - first) // 86400
            if day >= days:
                break
            for sensor, column in ((1, 13), (2, 14)):
                v = float(t[column])
                if v < 90:
                    by_day.setdefault(day, []).append({"timestamp": ts, "sensor_id": sensor, "temperature": v})
    return [by_day.get(d, []) for d in range(days)]


def wait_for(predicate, timeout=60, what="condition", step=0.1):
    """predicate()'s first truthy value, polled every `step` seconds; past `timeout` an
    AssertionError naming `what` (a string, or a callable asked then for a diagnostic) and the
    last value. Tests wait for conditions like this, never for a fixed time."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(step)
    last = predicate()
    if last:
        return last
    raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what} (last: {last!r})")


def wait_equal(fetch, want, what="value", timeout=60, step=0.3):
    """Polls fetch() until it returns `want`; past `timeout` an AssertionError naming `what`
    with the last value and the one expected."""
    deadline = time.time() + timeout
    while True:
        got = fetch()
        if got == want:
            return got
        assert time.time() < deadline, f"{what}: {got!r} after {timeout} s, expected {want!r}"
        time.sleep(step)
