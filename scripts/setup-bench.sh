#!/usr/bin/env bash
# Installs what the benchmarks need beyond scripts/setup.sh: the peers of bench/store.py,
# bench/kafka.py and bench/forecast.py. Idempotent and non-interactive: installs only what is missing, with sudo when
# not root.
#   ClickHouse (Debian clickhouse-server 18.16): bench/store.py starts its own server by hand.
#   MariaDB's Python client: mysqlclient from PyPI (the C connector, built against
#   libmariadb-dev from setup.sh), PyMySQL (pure Python) if that build fails.
#   DuckDB comes with setup.sh (it is also the tests' query oracle).
#   PySpark 3.5 from PyPI (bundles Spark; runs on setup.sh's Java 17) and confluent-kafka, for
#   bench/kafka.py. Spark's Kafka connector is fetched by Maven from bench/spark/pom.xml when
#   the bench runs, like the broker's jars (setup.sh installs maven, the JRE and kcat).
#   elasticsearch-py 7.13.4 (bench/sinks.py) and statsforecast 2.1.1 (bench/forecast.py) from PyPI, into
#   a venv of their own (below).
set -euo pipefail
source "$(dirname "$0")/install.sh"

packages=(clickhouse-server clickhouse-client)

install_debian_packages setup-bench "${packages[@]}"

# MariaDB's Python client, into whichever python3 is first on PATH.
if ! python3 -c 'import MySQLdb' 2>/dev/null && ! python3 -c 'import pymysql' 2>/dev/null; then
  pip_install setup-bench mysqlclient 2>/dev/null || {
    echo "setup-bench: mysqlclient did not build; installing PyMySQL instead"
    pip_install setup-bench PyMySQL
  }
fi
python3 -c 'import MySQLdb' 2>/dev/null || python3 -c 'import pymysql' || { echo "setup-bench: no MariaDB client for $(command -v python3)" >&2; exit 1; }

# bench/kafka.py: Spark Structured Streaming as the peer, a Kafka client to produce and watch.
# PySpark's version must equal the connector's in bench/spark/pom.xml (3.5.7: the newest 3.5
# connector on Maven Central).
PYSPARK_VERSION=3.5.7
if [ "$(python3 -c 'import pyspark; print(pyspark.__version__)' 2>/dev/null)" != "$PYSPARK_VERSION" ]; then
  pip_install setup-bench "pyspark==$PYSPARK_VERSION"
fi
python3 -c 'import pyspark' || { echo "setup-bench: pyspark is still missing for $(command -v python3)" >&2; exit 1; }
need_python_module setup-bench confluent_kafka confluent-kafka
# bench/notebook.py: psycopg 3 reads QuestDB (and mare, once it speaks it) over the PostgreSQL
# wire protocol; QuestDB's jar comes from Maven Central when the bench first runs.
need_python_module setup-bench psycopg "psycopg[binary]"
# The peers whose Python packages cannot live beside the tests' (python3's numpy 2, pandas 3)
# get a venv each, under MARE_BENCH_VENVS (default ~/.cache/mare/bench-venvs), which
# bench/peer_python.py finds: bench/sinks.py (for its Elasticsearch half) and bench/forecast.py
# run again under their venv's python when python3 lacks their peer's package.
#   elasticsearch/: elasticsearch-py 7.13.4, bench/sinks.py's Elasticsearch peer
#   (helpers.parallel_bulk): the newest that talks to the tests' 7.10.2 node (7.14 and later
#   refuse a node whose build flavor is not "default", as the one elasticsearch-cluster-runner
#   starts). It cannot import beside numpy 2 (np.float_): its venv has no numpy at all.
#   statsforecast/: statsforecast 2.1.1, bench/forecast.py's peer (AutoETS, AutoARIMA, MSTL,
#   SeasonalNaive), pinned, as its models' defaults move between releases (and with them the
#   table); it brings an older pandas (2.3), statsmodels, scipy and pyarrow.
BENCH_VENVS=${MARE_BENCH_VENVS:-${XDG_CACHE_HOME:-$HOME/.cache}/mare/bench-venvs}

# peer_venv NAME MODULE PACKAGE==VERSION: the venv NAME holding PACKAGE at VERSION, MODULE importable.
peer_venv() {
  local venv=$BENCH_VENVS/$1 package=${3%%==*} version=${3#*==}
  [ -x "$venv/bin/python" ] || { echo "setup-bench: creating the venv $venv"; python3 -m venv "$venv"; }
  if [ "$("$venv/bin/python" -m pip show "$package" 2>/dev/null | sed -n 's/^Version: //p')" != "$version" ]; then
    echo "setup-bench: installing $3 into $venv"
    "$venv/bin/python" -m pip install --quiet "$3"
  fi
  "$venv/bin/python" -c "import $2" || { echo "setup-bench: $2 does not import in $venv" >&2; exit 1; }
}
peer_venv elasticsearch elasticsearch elasticsearch==7.13.4
peer_venv statsforecast statsforecast statsforecast==2.1.1
