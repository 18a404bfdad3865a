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
#   elasticsearch-py 7.13.4 from PyPI, for bench/sinks.py; statsforecast 2.1.1, for bench/forecast.py.
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
# bench/forecast.py: statsforecast (AutoETS, AutoARIMA, MSTL, SeasonalNaive) as the peer of the
# forecast backtest. Pinned, as its models' defaults move between releases (and with them the
# table); 2.1.1 installs on Python 3.11 from wheels (it brings pandas 2.3 in place of a newer one, statsmodels, scipy).
STATSFORECAST_VERSION=2.1.1
if [ "$(python3 -c 'import statsforecast; print(statsforecast.__version__)' 2>/dev/null)" != "$STATSFORECAST_VERSION" ]; then
  pip_install setup-bench "statsforecast==$STATSFORECAST_VERSION"
fi
python3 -c 'import statsforecast' || { echo "setup-bench: statsforecast is still missing for $(command -v python3)" >&2; exit 1; }
# bench/sinks.py: the official Elasticsearch client's helpers.parallel_bulk as the Elasticsearch
# sink's peer. 7.13.4: the newest that talks to the tests' 7.10.2 node (7.14 and later refuse a
# node whose build flavor is not "default", as the one elasticsearch-cluster-runner starts);
# checked by its version, as it cannot be imported beside numpy 2 (bench/sinks.py keeps it from
# importing numpy).
ES_PY_VERSION=7.13.4
if [ "$(python3 -m pip show elasticsearch 2>/dev/null | sed -n 's/^Version: //p')" != "$ES_PY_VERSION" ]; then
  pip_install setup-bench "elasticsearch==$ES_PY_VERSION"
fi
