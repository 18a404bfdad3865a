#!/usr/bin/env python3
"""Fetches the jars of the e2e tests' JVM servers ahead of the tests: Kafka's broker, the
Elasticsearch (7 and 8) and OpenSearch nodes, the PostgreSQL JDBC driver. `make test` runs it while it
compiles, so that Maven's downloads (all of them, on a new machine) overlap the builds instead of
lengthening the first test of each server, which holds the JVM lock meanwhile. A test fetches for
itself when this did not run: maven_jars fetches a pom's jars once, under a lock.

Usage: tests/e2e/fetch_jars.py    (prints what it fetched; exits 1 if a fetch failed)"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from elasticsearch8_server import Elasticsearch8, compiled  # noqa: E402
from elasticsearch_server import Elasticsearch, runner_classpath  # noqa: E402
from kafka_server import kafka_classpath  # noqa: E402
from maven_jars import JDBC_LIB, JDBC_POM, maven_jars  # noqa: E402
from opensearch_server import OpenSearch  # noqa: E402


def main():
    if len(sys.argv) > 1:
        print(__doc__)
        return 0
    fetches = [
        ("Apache Kafka's jars", kafka_classpath),
        ("Elasticsearch's jars", lambda: runner_classpath(Elasticsearch.POM, Elasticsearch.LIB,
                                                         Elasticsearch.RUNNER_JAR, "Elasticsearch's jars")),
        (f"Elasticsearch {Elasticsearch8.VERSION}'s jars", lambda: compiled(
            runner_classpath(Elasticsearch8.POM, Elasticsearch8.LIB, Elasticsearch8.RUNNER_JAR, "Elasticsearch 8's jars"),
            os.path.join(os.path.dirname(Elasticsearch8.LIB), "classes"))),
        (f"OpenSearch {OpenSearch.VERSION}'s jars", lambda: runner_classpath(OpenSearch.POM, OpenSearch.LIB,
                                                                            OpenSearch.RUNNER_JAR, "OpenSearch's jars")),
        ("the PostgreSQL JDBC driver", lambda: maven_jars(JDBC_POM, JDBC_LIB, "the PostgreSQL JDBC driver")),
    ]
    failed = 0
    for what, fetch in fetches:  # one at a time: Maven 3.8's local repository has no locking
        start = time.monotonic()
        try:
            fetch()
            print(f"fetch_jars: {what} ready ({time.monotonic() - start:.1f} s)", flush=True)
        except Exception as e:  # noqa: BLE001 (the test that needs them fails with the reason)
            failed += 1
            print(f"fetch_jars: {what}: {e}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
