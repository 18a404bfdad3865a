"""A real, throw-away ClickHouse server for tests: Debian's clickhouse-server (18.16) on 127.0.0.1,
free ports and a temporary directory holding its config, data and logs, started and stopped by
the test (scripts/setup.sh installs the package; a missing one is an error, never a skip).
Queries go through its HTTP interface, as the sink's do.

    with ClickHouse(tmp_path) as ch:
        ch.url                                  # "http://127.0.0.1:PORT"
        ch.query("SELECT count() FROM mare.readings FINAL")   # rows as lists of strings
        ch.stop(); ch.start()                   # the same data, the same ports
"""
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from harness import free_port, stop_process

SERVER = shutil.which("clickhouse-server") or "/usr/sbin/clickhouse-server"

CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>information</level><log>{dir}/server.log</log><errorlog>{dir}/error.log</errorlog>
    <size>100M</size><count>1</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <path>{dir}/data/</path>
  <tmp_path>{dir}/tmp/</tmp_path>
  <user_files_path>{dir}/user_files/</user_files_path>
  <format_schema_path>{dir}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
</yandex>
"""

USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
"""


class ClickHouse:
    def __init__(self, base_dir):
        self.dir = os.path.join(str(base_dir), "clickhouse")
        self.http_port = free_port()
        self.tcp_port = free_port()
        self.proc = None
        self.out = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout=60):
        if not os.path.exists(SERVER):
            raise RuntimeError("clickhouse-server is not installed: run scripts/setup.sh")
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "config.xml"), "w") as f:
            f.write(CONFIG.format(dir=self.dir, http_port=self.http_port, tcp_port=self.tcp_port))
        with open(os.path.join(self.dir, "users.xml"), "w") as f:
            f.write(USERS)
        self.out = open(os.path.join(self.dir, "stdout.log"), "ab")
        self.proc = subprocess.Popen([SERVER, f"--config-file={self.dir}/config.xml"], cwd=self.dir, stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"clickhouse-server exited with {self.proc.returncode}:\n{self.server_log()}")
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop(kill=True)
        raise RuntimeError(f"clickhouse-server did not answer within {timeout} s:\n{self.server_log()}")

    def server_log(self):
        text = ""
        for name in ("stdout.log", "error.log"):
            path = os.path.join(self.dir, name)
            if os.path.exists(path):
                with open(path, "rb") as f:
                    text += f.read().decode(errors="replace")[-3000:]
        return text

    def stop(self, kill=False):
        """SIGTERM (a clean shutdown) or SIGKILL; the data stays for start()."""
        stop_process(self.proc, kill)
        self.proc = None
        if self.out:
            self.out.close()
            self.out = None

    def request(self, sql, data=None, timeout=60):
        """(HTTP status, answer text) of one statement; `data` (bytes) is sent after it, as an
        INSERT's rows."""
        url = self.url + "/"
        body = sql.encode()
        if data is not None:
            url += "?" + urllib.parse.urlencode({"query": sql})
            body = data
        req = urllib.request.Request(url, data=body, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def query(self, sql):
        """Rows as lists of strings (TabSeparated); an error answer raises."""
        status, text = self.request(sql + " FORMAT TabSeparated")
        if status != 200:
            raise RuntimeError(f"clickhouse: {sql}: HTTP {status}: {text}")
        return [line.split("\t") for line in text.splitlines()]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
