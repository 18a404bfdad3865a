"""A real, throw-away MariaDB server for tests: Debian's mariadbd on 127.0.0.1, a free port and
a temporary datadir, started and stopped by the test (scripts/setup.sh installs the package).
Queries go through the real `mariadb` command-line client."""
import os
import shutil
import signal
import subprocess
import time

from harness import free_port


class MariaDB:
    def __init__(self, base_dir):
        self.dir = os.path.join(str(base_dir), "mariadb")
        self.datadir = os.path.join(self.dir, "data")
        self.socket = os.path.join(self.dir, "sock")
        self.port = free_port()
        self.proc = None

    def _install_db(self):
        """A new data directory. mariadb-install-db failed once in a loaded full run (exit status 1,
        its output not kept): its output goes into the error now, and a failure is tried once more
        from an empty directory, the first one's output printed."""
        cmd = ["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={self.datadir}",
               "--auth-root-authentication-method=normal"]
        for attempt in (1, 2):
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode == 0:
                return
            output = f"mariadb-install-db exited {p.returncode}:\n{p.stdout[-3000:]}{p.stderr[-3000:]}"
            if attempt == 2:
                raise RuntimeError(output)
            print(output + "\n(trying once more)")
            shutil.rmtree(self.datadir, ignore_errors=True)

    def start(self):
        for tool in ("mariadbd", "mariadb-install-db", "mariadb", "mariadb-admin"):
            if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
                raise RuntimeError(f"{tool} is not installed: run scripts/setup.sh")
        os.makedirs(self.dir, exist_ok=True)
        if not os.path.exists(self.datadir):
            self._install_db()
        mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen([mariadbd, "--no-defaults", "--user=root", f"--datadir={self.datadir}",
                                      f"--socket={self.socket}", f"--port={self.port}", "--bind-address=127.0.0.1",
                                      f"--pid-file={self.dir}/pid", "--skip-log-bin", "--innodb-buffer-pool-size=64M",
                                      "--skip-name-resolve"], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mariadbd exited:\n" + open(os.path.join(self.dir, "server.log")).read()[-3000:])
            if subprocess.run(["mariadb-admin", f"--socket={self.socket}", "-uroot", "ping"], capture_output=True).returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError("mariadbd did not answer within 60 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.proc = None
        self.log.close()

    def query(self, sql, database="mare"):
        """Rows as lists of strings, through the mariadb client (tab-separated, no headers)."""
        p = subprocess.run(["mariadb", "-h127.0.0.1", f"-P{self.port}", "-uroot", "-B", "-N", database, "-e", sql],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"mariadb: {p.stderr}")
        return [line.split("\t") for line in p.stdout.splitlines()]

    def query_once_created(self, sql, database="mare"):
        """query(), or None while the database or a table it reads does not exist yet: mare's sink
        creates its tables when it first connects, a while after `mare run` answers."""
        try:
            return self.query(sql, database)
        except RuntimeError as e:
            if "ERROR 1146" in str(e) or "ERROR 1049" in str(e):
                return None
            raise

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
