#!/usr/bin/env bash
# Installs what the benchmarks need beyond scripts/setup.sh: the peers of bench/store.py.
# Idempotent and non-interactive: installs only what is missing, with sudo when not root.
#   ClickHouse (Debian clickhouse-server 18.16): bench/store.py starts its own server by hand.
#   MariaDB's Python client: mysqlclient from PyPI (the C connector, built against
#   libmariadb-dev from setup.sh), PyMySQL (pure Python) if that build fails.
#   DuckDB comes with setup.sh (it is also the tests' query oracle).
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
