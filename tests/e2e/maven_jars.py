"""Jars that Maven fetches for a test or a bench (Kafka's broker, an Elasticsearch node, the JDBC
driver, Spark's Kafka connector): fetched again only when their pom changed, and one fetch at a
time, should tests run in parallel."""
import fcntl
import hashlib
import os
import shutil
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
# The PostgreSQL JDBC driver of test_pgwire.py (fetch_jars.py fetches it ahead of the tests too).
JDBC_POM = os.path.join(ROOT, "tests/pgwire/pom.xml")
JDBC_LIB = os.path.join(ROOT, "build/pgwire/lib")
# One mvn at a time on the machine, whatever its pom: Maven 3.8's local repository (~/.m2) has no
# locking of its own, and two builds' tests may each start a JVM server's first fetch at once.
MAVEN_LOCK = os.path.join(os.path.expanduser("~"), ".m2.mare-lock")


def maven_jars(pom, lib, what):
    """Copies the dependencies of the Maven project `pom` into the folder `lib`, unless the jars
    there came from this very pom; `what` names them in the error. Returns `lib`, absolute."""
    for tool in ("mvn", "java"):
        if not shutil.which(tool):
            raise RuntimeError(f"{tool} is not installed: run scripts/setup.sh")
    with open(pom, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    lib = os.path.abspath(lib)
    stamp = os.path.join(lib, ".pom-sha256")
    os.makedirs(os.path.dirname(lib), exist_ok=True)
    with open(lib.rstrip("/") + ".lock", "w") as lock, open(MAVEN_LOCK, "w") as maven:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (os.path.exists(stamp) and open(stamp).read().strip() == digest):
            fcntl.flock(maven, fcntl.LOCK_EX)
            shutil.rmtree(lib, ignore_errors=True)
            p = subprocess.run(["mvn", "-q", "-B", "-f", pom, "dependency:copy-dependencies", f"-DoutputDirectory={lib}"],
                               capture_output=True, text=True, timeout=900)
            if p.returncode != 0:
                raise RuntimeError(f"mvn could not fetch {what} ({pom}):\n{p.stdout[-3000:]}{p.stderr[-3000:]}")
            with open(stamp, "w") as f:
                f.write(digest + "\n")
    return lib
