"""A real, throw-away Elasticsearch 8 node for tests: Elasticsearch 8.19.21 inside one JVM, started
through Elasticsearch's own test framework (its MockNode, with the Netty 4 module on the
classpath) from jars on Maven Central, by tests/elasticsearch-8/Es8Node.java, compiled here once
with javac. org.codelibs's runner, which elasticsearch_server.py uses for 7.10.2, stops at 7.x.

It is the server's code: the same REST layer, indices, mappings, bulk and search; what it lacks
is what a distribution adds as modules (x-pack, data streams' APIs, painless, `GET /`), none of
which the sink needs for daily indices. Elasticsearch 8 refuses to run as root: as root, the node
runs as `nobody` (setpriv), in a folder of its own under /tmp that `nobody` may enter, removed
when the node is done. The jars are fetched once by Maven (tests/elasticsearch-8/pom.xml) into
build/elasticsearch-8/lib (MARE_ELASTICSEARCH8_LIB to choose another place); a missing `mvn`,
`javac` or network is an error, never a skip.

    with Elasticsearch8(tmp_path) as es:     # as elasticsearch_server.Elasticsearch
        es.url; es.request("GET", "/_cat/indices")
"""
import os
import shutil
import subprocess
import tempfile
import time

from elasticsearch_server import HEAP, ROOT, Elasticsearch, runner_classpath
from harness import free_port

SOURCE = os.path.join(ROOT, "tests/elasticsearch-8/Es8Node.java")
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def compiled(classpath, classes):
    """Es8Node compiled into `classes` (again when the source is newer than the class)."""
    target = os.path.join(classes, "Es8Node.class")
    if os.path.exists(target) and os.path.getmtime(target) >= os.path.getmtime(SOURCE):
        return classes
    if not shutil.which("javac"):
        raise RuntimeError("javac is not installed: run scripts/setup.sh")
    os.makedirs(os.path.dirname(classes), exist_ok=True)
    building = tempfile.mkdtemp(dir=os.path.dirname(classes))
    p = subprocess.run(["javac", "-cp", classpath, "-d", building, SOURCE], capture_output=True, text=True)
    if p.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        raise RuntimeError(f"javac {SOURCE}:\n{p.stdout}{p.stderr}")
    shutil.rmtree(classes, ignore_errors=True)
    os.replace(building, classes)  # whole, should two builds' tests compile at once
    os.chmod(classes, 0o755)
    return classes


class Elasticsearch8(Elasticsearch):
    NAME = "elasticsearch-8"
    VERSION = "8.19.21"
    POM = os.path.join(ROOT, "tests/elasticsearch-8/pom.xml")
    LIB = os.environ.get("MARE_ELASTICSEARCH8_LIB", os.path.join(ROOT, "build/elasticsearch-8/lib"))
    RUNNER_JAR = "framework"

    def __init__(self, base_dir):
        super().__init__(base_dir)
        self.dir = tempfile.mkdtemp(prefix="mare-es8-")
        os.chmod(self.dir, 0o777)  # pytest's own folders are root's alone
        self.transport_port = None

    def start(self, timeout=180):
        classpath = runner_classpath(self.POM, self.LIB, self.RUNNER_JAR, "Elasticsearch 8's jars")
        classes = compiled(classpath, os.path.join(os.path.dirname(self.LIB), "classes"))
        if os.geteuid() == 0 and not self._nobody_can_read(os.path.join(classes, "Es8Node.class")):
            classpath, classes = self._linked_here(classpath, classes)
        self.port = self.port or free_port()
        self.transport_port = self.transport_port or free_port()
        self.out = open(self._log_path(), "ab")
        tmp = os.path.join(self.dir, "tmp")
        os.makedirs(tmp, mode=0o777, exist_ok=True)
        os.chmod(tmp, 0o777)
        self.proc = subprocess.Popen(
            [*(NOBODY if os.geteuid() == 0 else []), "java", HEAP, "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
             "-Djava.awt.headless=true", f"-Djava.io.tmpdir={tmp}", f"-Des8.home={self.dir}",
             f"-Des8.http_port={self.port}", f"-Des8.transport_port={self.transport_port}",
             "-cp", f"{classes}:{classpath}", "Es8Node"],
            stdout=self.out, stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True)
        try:
            deadline = time.time() + timeout
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.NAME} exited with {self.proc.returncode}:\n{self.server_log()}")
                try:
                    status, health = self.request("GET", "/_cluster/health?wait_for_status=yellow&timeout=5s")
                    if status == 200 and health.get("status") in ("yellow", "green"):
                        return self
                except OSError:
                    pass
                if time.time() > deadline:
                    raise RuntimeError(f"{self.NAME} did not start within {timeout} s:\n{self.server_log()}")
                time.sleep(0.3)
        except BaseException:
            self.stop(kill=True)
            raise

    def _nobody_can_read(self, path):
        return subprocess.run([*NOBODY, "test", "-r", path], capture_output=True).returncode == 0

    def _linked_here(self, classpath, classes):
        """The jars and the class linked (else copied) into the node's own folder, for a checkout
        `nobody` cannot enter (under /root, say)."""
        def place(src, dst):
            if os.path.exists(dst):  # a restart: placed by the first start
                return
            if os.stat(src).st_mode & 0o004:  # others may read it: a link is enough
                try:
                    os.link(src, dst)
                    return
                except OSError:
                    pass
            shutil.copy2(src, dst)
            os.chmod(dst, 0o644)
        lib = os.path.join(self.dir, "lib")
        os.makedirs(lib, exist_ok=True)
        for entry in classpath.split(":"):  # "<lib>/*" (runner_classpath), or jars
            jars = ([os.path.join(os.path.dirname(entry), n) for n in os.listdir(os.path.dirname(entry))]
                    if entry.endswith("/*") else [entry])
            for jar in jars:
                dst = os.path.join(lib, os.path.basename(jar))
                if os.path.isfile(jar) and not os.path.exists(dst):
                    place(jar, dst)
        here = os.path.join(self.dir, "classes")
        shutil.copytree(classes, here, copy_function=place, dirs_exist_ok=True)
        for top in (lib, here):  # the folders only (a linked file is the checkout's; tmp stays 0777)
            for root, dirs, _ in os.walk(top):
                os.chmod(root, 0o755)
        if not self._nobody_can_read(os.path.join(here, "Es8Node.class")):
            raise RuntimeError(f"{self.NAME}: nobody cannot read {here}, nor the checkout's {classes}")
        return os.path.join(lib, "*"), here

    def identity(self):
        # No `GET /` here (a module's): the node's own description says the same.
        status, body = self.request("GET", "/_nodes/_local?filter_path=nodes.*.version,nodes.*.build_flavor")
        assert status == 200, body
        (node,) = body["nodes"].values()
        return "elasticsearch", node["version"]

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
