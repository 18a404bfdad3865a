#!/usr/bin/env python3
"""Where the time goes when pandas reads mare over the PostgreSQL wire protocol with psycopg
(issue 16's second path into a DataFrame, bench/notebook.py): `SELECT *` of READINGS rows
fetched with psycopg's `fetchall` and made a DataFrame, in text and in binary result format,
with the CPU seconds the client (this process) and `mare run` each spent on it. On two cores the
fetch takes at least the larger of the two, whatever the other does: when the client's share
dwarfs mare's, no server could bring this path near DuckDB's `.df()` or mare's Arrow answer.

Usage: bench/pgwire_client.py [BUILD_DIR] [READINGS] [ROUNDS]    (build, 2000000, 2)"""
import os
import socket
import subprocess
import sys
import tempfile
import time

import pandas as pd
import psycopg

from common import free_port, help_and_exit_if_asked

help_and_exit_if_asked(__doc__)
args = sys.argv[1:]
BUILD = args[0] if len(args) > 0 else "build"
READINGS = int(args[1]) if len(args) > 1 else 2_000_000
ROUNDS = int(args[2]) if len(args) > 2 else 2
MARE = os.path.join(BUILD, "bin", "mare")


def cpu_seconds(pid):
    """User + system CPU seconds of process `pid` so far (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_csv(path):
    """READINGS readings of 100 sensors, one a second each, in the bench data set's columns."""
    with open(path, "w") as f:
        f.write("ts,sensor_id,temperature,humidity,pressure,lon,lat\n")
        for i in range(READINGS):
            s, sec = i % 100 + 1, i // 100
            f.write(f"{1704067200 + sec},{s},{15 + i % 97 / 10:.2f},{60 + i % 31 / 3:.2f},"
                    f"{1000 + i % 53 / 5:.2f},{3.1 + s / 1000:.6f},{42.4 + s / 1000:.6f}\n")


def main():
    with tempfile.TemporaryDirectory(prefix="mare-pgwire-client-") as tmp:
        csv, data = os.path.join(tmp, "r.csv"), os.path.join(tmp, "data")
        write_csv(csv)
        subprocess.run([MARE, "import", csv, "--data-dir", data, "--quiet"], check=True, capture_output=True)
        pg, http = free_port(), free_port()
        mare = subprocess.Popen([MARE, "run", "--data-dir", data, "--set", f'pgwire.listen="127.0.0.1:{pg}"',
                                 "--set", f'http.listen="127.0.0.1:{http}"', "--set", "sources.udp.enabled=false",
                                 "--set", "sources.tcp.enabled=false"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", pg), 1).close()
                    break
                except OSError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.2)
            print(f"psycopg {psycopg.__version__} fetchall -> DataFrame of SELECT * ({READINGS:,} rows), "
                  f"load average {os.getloadavg()[0]:.2f} at the start")
            print(f"{'result format':<15}{'wall s':>9}{'client CPU s':>14}{'mare CPU s':>12}{'client/mare':>13}")
            with psycopg.connect(host="127.0.0.1", port=pg, user="bench", dbname="mare", autocommit=True) as conn:
                for _ in range(ROUNDS):
                    for binary in (False, True):
                        m0, c0, w0 = cpu_seconds(mare.pid), time.process_time(), time.perf_counter()
                        cur = conn.cursor(binary=binary)
                        cur.execute("SELECT * FROM readings")
                        frame = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
                        wall, client, server = (time.perf_counter() - w0, time.process_time() - c0,
                                                cpu_seconds(mare.pid) - m0)
                        assert len(frame) == READINGS, len(frame)
                        print(f"{'binary' if binary else 'text':<15}{wall:>9.2f}{client:>14.2f}{server:>12.2f}"
                              f"{client / server:>12.1f}x")
            print(f"load average {os.getloadavg()[0]:.2f} at the end")
        finally:
            mare.terminate()
            mare.wait()


if __name__ == "__main__":
    main()
