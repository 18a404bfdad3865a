#!/usr/bin/env bash
# `make run`: starts `mare run` with config/mare.toml and `mare simulate` feeding it ten
# simulated buoys over UDP, and stops both on Ctrl-C.
set -euo pipefail
mare=${1:-build/bin/mare}
cd "$(dirname "$0")/.."

"$mare" run --config config/mare.toml &
run_pid=$!
stop() {
  kill -TERM "${sim_pid:-}" 2>/dev/null || true
  kill -TERM "$run_pid" 2>/dev/null || true
  wait "$run_pid" 2>/dev/null || true
}
trap stop INT TERM EXIT

for _ in $(seq 1 100); do
  curl -sf http://127.0.0.1:8080/healthz > /dev/null 2>&1 && break
  if ! kill -0 "$run_pid" 2>/dev/null; then echo "mare run exited; see above" >&2; exit 1; fi
  sleep 0.1
done

cat <<'MSG'

  mare is running, with 10 simulated buoys sending one reading per second over UDP.
    dashboard:       http://127.0.0.1:8080/
    metrics:         curl -s http://127.0.0.1:8080/metrics | grep mare_source
    latest readings: build/bin/mare log tail raw -n 3
    SQL:             build/bin/mare query "SELECT * FROM readings LATEST ON ts PARTITION BY sensor_id"
                     build/bin/mare query "SELECT time_bucket('1m', ts) AS minute, sensor_id, avg(temperature) FROM readings GROUP BY minute, sensor_id ORDER BY minute DESC LIMIT 10"
    send your own:   echo '{"timestamp":"2024-01-21 10:06:04","sensor_id":99,"temperature":20.9}' | nc -q0 127.0.0.1 20002
  Ctrl-C stops everything.

MSG
"$mare" simulate --target udp://127.0.0.1:20001 &
sim_pid=$!
wait "$run_pid"
