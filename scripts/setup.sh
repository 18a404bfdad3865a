#!/usr/bin/env bash
# Installs what building and testing mare needs, from Debian's packages and PyPI.
# Idempotent and non-interactive: installs only what is missing, with sudo when not root.
set -euo pipefail
source "$(dirname "$0")/install.sh"

# Build: compiler, CMake + Ninja, ccache, and the libraries mare links (Eigen: the forecasts' linear
# algebra; flatbuffers: the metadata of Arrow answers, its CMake files wanting flatc beside it).
# Fuzzing (make fuzz, and 30 s per target in make test): Debian's clang and its libFuzzer runtime.
# Tests: python3 + pytest drive the end-to-end tests; curl and netcat talk to a running mare;
# a real MariaDB server and its client check the MariaDB sink (the tests start their own server).
# Kafka: librdkafka for the log's Kafka backend; kcat, a JRE and Maven for the tests, which run
# Apache Kafka's own broker from its jars on Maven Central (tests/kafka/pom.xml, fetched once).
# Elasticsearch sink: libcurl speaks to Elasticsearch; the tests run a real Elasticsearch node from
# its jars on Maven Central the same way (tests/elasticsearch/pom.xml, fetched at first use), and
# a real OpenSearch 3 node (tests/opensearch/pom.xml), which needs a JDK 21 or later: Debian 12 has
# none, so the tests take the newest in /usr/lib/jvm (the machines here ship a Temurin 25), and
# without one an OpenSearch 2 node on Java 17 (tests/opensearch-2/pom.xml).
# ClickHouse sink: the tests start a real clickhouse-server (Debian's 18.16) of their own.
# MQTT source: libmosquitto (MQTT 5 client); the tests run Debian's mosquitto broker and publish
# with mosquitto_pub (mosquitto-clients).
# The PostgreSQL wire protocol's tests: psql (postgresql-client) and, for the JDBC driver from
# Maven Central (tests/pgwire/pom.xml), a JDK to compile their small Java program with javac.
# The wire protocol's TimeZone setting: abseil's time zones over Debian's tz database (tzdata).
packages=(
  g++ make cmake ninja-build ccache pkg-config git
  clang-14 libclang-rt-14-dev
  libsimdjson-dev libfmt-dev libspdlog-dev libcli11-dev libtomlplusplus-dev libcpp-httplib-dev
  libeigen3-dev libflatbuffers-dev flatbuffers-compiler libgtest-dev libgmock-dev libbenchmark-dev libisal-dev libfast-float-dev zlib1g-dev libzstd-dev liblz4-dev libssl-dev libbrotli-dev
  libmariadb-dev mariadb-server mariadb-client
  libcurl4-openssl-dev
  clickhouse-server clickhouse-client
  libmosquitto-dev mosquitto mosquitto-clients
  librdkafka-dev kcat default-jre-headless maven
  postgresql-client default-jdk-headless libabsl-dev tzdata
  python3 python3-pip curl netcat-openbsd procps
  chromium
)
# The dashboard (web/): Node.js and npm build it (npm ci + vite build, run by CMake), and
# Chromium, driven by playwright-core from npm, runs its browser test. A machine that already
# has a node and an npm (NodeSource's, say) keeps them; otherwise Debian's are installed.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

install_debian_packages setup "${packages[@]}"

# pytest for the end-to-end tests, into whichever python3 is first on PATH.
need_python_module setup pytest
# duckdb: the query oracle and a peer of the store benchmark (bench/store.py generates its data with it).
need_python_module setup duckdb
# numpy: the forecast backtest's e2e test recomputes its answers with it.
need_python_module setup numpy
# pyarrow and pandas: the e2e tests read Arrow answers with them, and the Python client (python/) stands on them.
need_python_module setup pyarrow
need_python_module setup pandas
# nbclient, nbformat and ipykernel run notebooks/buoys.ipynb top to bottom in its e2e test;
# matplotlib draws its plots.
need_python_module setup nbclient
need_python_module setup nbformat
need_python_module setup ipykernel
need_python_module setup matplotlib
# psycopg 3 and SQLAlchemy: the PostgreSQL wire protocol's e2e test speaks to mare with them
# (and pandas.read_sql through SQLAlchemy + psycopg).
need_python_module setup psycopg "psycopg[binary]"
need_python_module setup sqlalchemy
# influxdb-client and questdb: the line protocol's e2e test writes to mare with InfluxDB's official
# client (over /api/v2/write) and QuestDB's ILP sender (over TCP); questdb 3.x keeps the classic
# Sender.from_conf("tcp::...") API the test uses.
need_python_module setup influxdb_client influxdb-client
need_python_module setup questdb "questdb>=3,<4"
# paho-mqtt: the kill -9 soak (tests/e2e/soak.py) publishes its MQTT readings at QoS 1 with it, one
# message at a time, and counts as acknowledged exactly those the broker PUBACKed.
need_python_module setup paho.mqtt.client paho-mqtt
# confluent-kafka: the Kafka e2e test holds a transaction open with mare's transactional.id (a
# mare killed mid-request, as librdkafka leaves it) and kills that producer.
need_python_module setup confluent_kafka confluent-kafka
# wheel: building the Python client without fetching a build environment (its e2e test installs it so).
need_python_module setup wheel
# The Python client (python/, package mare), for the notebooks and anyone's scripts: installed
# into the same python3, and again whenever its files differ from what is installed. (Its e2e
# test imports this checkout's python/ itself, whatever is installed.)
client_dir="$(cd "$(dirname "$0")/.." && pwd)/python"
if ! python3 - "$client_dir" <<'PY' 2>/dev/null
import filecmp, os, sys
import mare
src = os.path.join(sys.argv[1], "mare")
names = sorted(n for n in os.listdir(src) if n.endswith(".py"))
installed = os.path.dirname(mare.__file__)
sys.exit(0 if os.path.realpath(installed) != os.path.realpath(src) and
         filecmp.cmpfiles(src, installed, names, shallow=False)[0] == names else 1)
PY
then
  echo "setup: installing the Python client from $client_dir"
  python3 -m pip install --quiet "$client_dir" 2>/dev/null || python3 -m pip install --quiet --break-system-packages "$client_dir"
  python3 -c "import mare" || { echo "setup: the Python client (python/) did not install" >&2; exit 1; }
fi
