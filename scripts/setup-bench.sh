#!/usr/bin/env bash
# Installs what the benchmarks need beyond scripts/setup.sh: the peers of bench/store.py.
# Idempotent and non-interactive: installs only what is missing, with sudo when not root.
#   ClickHouse (Debian clickhouse-server 18.16): bench/store.py starts its own server by hand.
#   MariaDB's Python client: mysqlclient from PyPI (the C connector, built against
#   libmariadb-dev from setup.sh), PyMySQL (pure Python) if that build fails.
#   DuckDB comes with setup.sh (it is also the tests' query oracle).
set -euo pipefail

packages=(clickhouse-server clickhouse-client)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-bench: installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # The package's own service start is refused in containers; the bench starts its own server.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" || {
    for p in "${missing[@]}"; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || { echo "setup-bench: $p did not install" >&2; exit 1; }
    done
  }
fi

# MariaDB's Python client, into whichever python3 is first on PATH.
if ! python3 -c 'import MySQLdb' 2>/dev/null && ! python3 -c 'import pymysql' 2>/dev/null; then
  echo "setup-bench: installing mysqlclient from PyPI"
  python3 -m pip install --quiet mysqlclient 2>/dev/null || python3 -m pip install --quiet --break-system-packages mysqlclient 2>/dev/null || {
    echo "setup-bench: mysqlclient did not build; installing PyMySQL instead"
    python3 -m pip install --quiet PyMySQL 2>/dev/null || python3 -m pip install --quiet --break-system-packages PyMySQL
  }
fi
python3 -c 'import MySQLdb' 2>/dev/null || python3 -c 'import pymysql' || { echo "setup-bench: no MariaDB client for $(command -v python3)" >&2; exit 1; }
