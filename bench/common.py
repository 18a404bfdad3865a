"""What several bench scripts start and measure alike: free loopback ports, `mare run` with only
its sources and its durable log (ingest.py, lineproto.py), a file sent over one TCP connection,
QuestDB from its Maven Central jar (lineproto.py, notebook.py), the best-of-rounds table of
ingest rates (ingest.py, http_ingest.py), and the commit for a table's header line. The scripts run from
anywhere (`bench/ingest.py`): Python puts their folder, this one, first on the path."""
import json
import os
import socket
import subprocess
import shutil
import tempfile
import time
import urllib.parse
import urllib.request

QUESTDB_VERSION = "9.2.2"


def help_and_exit_if_asked(doc):
    """For the scripts that read plain positional arguments: -h or --help prints the script's
    docstring (its usage line included) and exits, instead of starting a run."""
    import sys
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        print(doc)
        sys.exit(0)


def commit_note():
    """", commit abc1234" for a table's header line: the commit of the repository holding this
    script (git rev-parse --short HEAD), so that a printed table says what it measured; empty
    outside a git checkout. A BUILD_DIR copied from another commit is not seen: say so by hand."""
    try:
        out = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return f", commit {out.stdout.strip()}" if out.returncode == 0 and out.stdout.strip() else ""


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def best_of_rounds(names, rounds, measure):
    """Each name's best (readings per CPU second, readings per second) over `rounds` rounds, the
    names taking turns within a round so that a change in the machine's load hits them alike.
    measure(name) -> (per_cpu, per_wall)."""
    best = {name: (0.0, 0.0) for name in names}
    for _ in range(rounds):
        for name in names:
            best[name] = max(best[name], tuple(measure(name)))
    return best


def print_rates(title, label, best):
    """The table of best_of_rounds' figures, each row also as a ratio to the first row's CPU rate."""
    print(title)
    width = max(len(label), *(len(name) for name in best))
    header = f"{label:<{width}} {'readings/CPU s':>15} {'readings/s':>12} {'vs first':>8}"
    print(header)
    print("-" * len(header))
    base = next(iter(best.values()))[0]
    for name, (per_cpu, per_wall) in best.items():
        print(f"{name:<{width}} {per_cpu:>15,.0f} {per_wall:>12,.0f} {per_cpu / base:>8.2f}")


def send_file(path, port):
    """Streams the file over one TCP connection to a loopback port."""
    with open(path, "rb") as f, socket.create_connection(("127.0.0.1", port)) as c:
        while chunk := f.read(1 << 20):
            c.sendall(chunk)


class MareSources:
    """`mare run` with only its sources and its durable log (no UDP or unix socket, no rollups,
    no store) on loopback ports, in a data dir of its own; `settings` are more --set overrides.
    Use as a context manager: it answers /metrics on entering and is stopped and removed on
    leaving."""

    def __init__(self, binary, settings=(), prefix="mare-bench-"):
        self.data = tempfile.mkdtemp(prefix=prefix)
        self.tcp_port, self.http_port = free_port(), free_port()
        args = [binary, "run", "--data-dir", self.data]
        for s in [f"sources.tcp.listen=127.0.0.1:{self.tcp_port}", f"http.listen=127.0.0.1:{self.http_port}",
                  "sources.udp.enabled=false", "sources.unix.enabled=false", "rollup.enabled=false",
                  "store.enabled=false", *settings]:
            args += ["--set", s]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self):
        for _ in range(400):
            try:
                self.accepted("tcp")
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        shutil.rmtree(self.data, ignore_errors=True)

    def accepted(self, source):
        """mare_source_readings_accepted_total of the source, from /metrics."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=5).read().decode()
        for line in text.splitlines():
            if line.startswith(f'mare_source_readings_accepted_total{{source="{source}"}} '):
                return int(float(line.split()[-1]))
        return 0

    def wait_accepted(self, source, readings, timeout=600):
        deadline = time.monotonic() + timeout
        while (n := self.accepted(source)) < readings:
            if time.monotonic() > deadline:
                raise RuntimeError(f"mare took only {n} of {readings} readings")
            time.sleep(0.01)


class QuestDBServer:
    """QuestDB from its Maven Central jar (fetched once by Maven into jar_dir), started by hand in
    work/questdb with loopback ports for HTTP, pgwire and ILP/TCP; SQL through HTTP /exec."""
    VERSION = QUESTDB_VERSION

    def __init__(self, work, jar_dir):
        self.dir = os.path.join(work, "questdb")
        self.jar_dir = jar_dir
        self.jar = os.path.join(jar_dir, f"questdb-{self.VERSION}.jar")
        self.http_port, self.pg_port, self.min_port, self.ilp_port = free_port(), free_port(), free_port(), free_port()
        self.proc = None
        self.log = None

    def start(self, progress=lambda msg: None):
        if not os.path.exists(self.jar):
            progress(f"QuestDB: fetching org.questdb:questdb:{self.VERSION} from Maven Central")
            p = subprocess.run(["mvn", "-q", "dependency:copy", f"-Dartifact=org.questdb:questdb:{self.VERSION}",
                                f"-DoutputDirectory={self.jar_dir}"], capture_output=True, text=True)
            if p.returncode != 0 or not os.path.exists(self.jar):
                raise RuntimeError(f"mvn could not fetch QuestDB:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
        os.makedirs(os.path.join(self.dir, "conf"), exist_ok=True)
        with open(os.path.join(self.dir, "conf", "server.conf"), "w") as f:
            f.write(f"http.bind.to=127.0.0.1:{self.http_port}\npg.net.bind.to=127.0.0.1:{self.pg_port}\n"
                    f"http.min.net.bind.to=127.0.0.1:{self.min_port}\nline.tcp.net.bind.to=127.0.0.1:{self.ilp_port}\n"
                    "line.udp.enabled=false\ntelemetry.enabled=false\n")
        self.log = open(os.path.join(self.dir, "stdout.log"), "ab")
        self.proc = subprocess.Popen(["java", "-p", self.jar, "-m", "io.questdb/io.questdb.ServerMain", "-d", self.dir],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.time() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("QuestDB exited:\n" + open(os.path.join(self.dir, "stdout.log")).read()[-3000:])
            try:
                self.exec("SELECT 1")
                return
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("QuestDB did not answer within 120 s")
                time.sleep(0.2)

    def exec(self, sql, timeout=3600):
        url = f"http://127.0.0.1:{self.http_port}/exec?" + urllib.parse.urlencode({"query": sql})
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read())

    def stop(self):
        """SIGTERM, a minute to finish, then SIGKILL; closes its log file."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()
        self.proc, self.log = None, None
