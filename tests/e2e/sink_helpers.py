"""What the e2e tests of the sinks that copy the log to a server (Elasticsearch, ClickHouse) share:
the readings they produce, waiting, the dead-letter file, mare's own SQL answers, and a
`mare sink <kind>` process; and the MariaDB sink's tests, their `mare sink mariadb` process."""
import datetime
import json
import os
import re
import signal
import subprocess
import time

import pytest

from harness import MARE, free_port, mare, scrape_metric, wait_for

T0 = 1705831200  # 2024-01-21T10:00:00Z


def produce(data_dir, readings):
    """Appends readings to the raw topic of the data dir's embedded log (created if absent)."""
    lines = [f"{r['sensor_id']}\t{r if isinstance(r, str) else json.dumps(r)}" for r in readings]
    mare("log", "produce", "raw", "--data-dir", data_dir, input="\n".join(lines) + "\n")


def produce_on_kafka(kafka, topic, readings):
    """Appends readings to a Kafka topic (kafka_server.KafkaCluster's) with kcat, in one go
    (`mare log produce` appends a line at a time: seconds for thousands), partitioned as mare
    and the Java client do (murmur2)."""
    kafka.produce(topic, [f"{r['sensor_id']}\t{json.dumps(r)}" for r in readings], partitioner="murmur2_random")


def read_dead_letters(path):
    """[(source, reason, detail, raw)] of a dead-letter file (docs/formats/dead-letter.md)."""
    out = []
    if not os.path.exists(path):
        return out
    data = open(path, "rb").read()
    i = 0
    while i < len(data):
        end = data.index(b"\n", i)
        _time, source, reason, length, detail = data[i:end].decode().split(" ", 4)
        raw = data[end + 1:end + 1 + int(length)]
        out.append((source, reason, detail, raw.decode()))
        i = end + 1 + int(length) + 1
    return out


def buoy(seq, sensor, t):
    """A reading whose numbers depend on its place; sensors 1-2 off Banyuls, 3 off Iceland, 4 unplaced."""
    r = {"timestamp": t, "sensor_id": sensor, "seq": seq,
         "temperature": round(12 + ((seq * 37) % 101) / 10 + sensor, 2), "pressure": 990 + seq % 40,
         "status": "ok" if seq % 5 else "degraded"}
    if sensor in (1, 2):
        r["location"] = {"lat": 42.48 + sensor / 100, "lon": 3.13 + (seq % 7) / 1000}
    elif sensor == 3:
        r["location"] = {"lat": 63.4, "lon": -20.3}
    return r


def epoch_ms(text):
    return int(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def kill_all(started):
    """Kills (-9) and reaps the processes of `started` still running, emptying it."""
    while started:
        proc = started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# The processes the helpers here start (and a test module may add its own): after each test of a
# module that imports the fixture below, those still running are killed.
STARTED = []


@pytest.fixture(autouse=True)
def no_sink_outlives_its_test():
    """A failing assertion must not leave a sink (or any process in STARTED) running."""
    yield
    kill_all(STARTED)


class SinkProcess:
    """A `mare sink <kind>` process following a data dir's log, with --set `sets`. `started`
    collects the processes for a fixture to kill when a test fails."""

    def __init__(self, kind, data_dir, sets, started=STARTED):
        self.metrics_port = free_port()
        self.out = open(os.path.join(str(data_dir), "sink.out"), "ab")
        args = [MARE, "sink", kind, "--data-dir", str(data_dir), "--metrics-listen", f"127.0.0.1:{self.metrics_port}"]
        for s in sets:
            args += ["--set", s]
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=subprocess.STDOUT)
        self.kind = kind
        self.data_dir = str(data_dir)
        started.append(self.proc)

    def metric(self, name):
        return scrape_metric(self.metrics_port, name)

    def output(self):
        with open(os.path.join(self.data_dir, "sink.out"), "rb") as f:
            return f.read().decode(errors="replace")

    def owned(self, topic="raw"):
        """The partitions of `topic` its last assignment gave it, from its log line (on Kafka)."""
        lines = re.findall(rf"owns partitions (\S+) of {re.escape(topic)} ", self.output())
        return [] if not lines or lines[-1] == "none" else sorted(int(p) for p in lines[-1].split(","))

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self):
        self.proc.terminate()
        assert self.proc.wait(timeout=30) == 0, self.output()

    def deliver_across_an_outage(self, server, delivered, first, more):
        """With readings 0..first-1 in the log: once the sink has delivered them, `server` is
        killed and `more` readings are produced; the sink must notice (up 0, two errors or more,
        a lag of at most `more`) and keep running, and once `server` is back deliver every
        reading and say so. `delivered()` counts what the server holds."""
        def metric(what):
            return self.metric(f'mare_sink_{self.kind}_{what}{{topic="raw"}}')
        wait_for(lambda: delivered() == first, what="the first readings delivered")
        server.stop(kill=True)
        try:
            produce(self.data_dir, [buoy(i, 1 + i % 4, T0 + i) for i in range(first, first + more)])
            wait_for(lambda: metric("up") == 0 and (metric("errors_total") or 0) >= 2, what="the sink to notice")
            # The lag counts what the sink saw of the log's end: all, or part, of what is not delivered.
            wait_for(lambda: 0 < (metric("lag_records") or 0) <= more, what="a lag while down")
            assert self.proc.poll() is None
        finally:
            server.start()
        wait_for(lambda: delivered() == first + more, timeout=120, what="every reading delivered after the restart")
        assert metric("up") == 1
        assert "reachable again" in self.output()


class MariaDBSink:
    """`mare sink mariadb` following a data dir's log into `db` (the rollups; the raw readings
    with `readings`), `batch` rows per transaction, its output kept for stop()."""

    def __init__(self, data_dir, db, batch, readings=False, started=STARTED):
        self.metrics_port = free_port()
        self.labels = 'sink="mariadb_readings"' if readings else 'sink="mariadb"'
        args = [MARE, "sink", "mariadb", *(["--readings"] if readings else []), "--data-dir", str(data_dir),
                "--metrics-listen", f"127.0.0.1:{self.metrics_port}", "--set", f"sink.mariadb.port={db.port}",
                "--set", f"sink.mariadb.batch={batch}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        started.append(self.proc)

    def metric(self, name):
        return scrape_metric(self.metrics_port, name)

    def wait_caught_up(self, records, timeout=60):
        """Until the sink has read `records` and has nothing left to write."""
        read, lag = f"mare_sink_records_read_total{{{self.labels}}}", f"mare_sink_lag_records{{{self.labels}}}"
        deadline = time.time() + timeout
        while time.time() < deadline:
            if (self.metric(read) or 0) >= records and self.metric(lag) == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"sink did not catch up: read {self.metric(read)} of {records}, lag {self.metric(lag)}")

    def stop(self, sig=signal.SIGTERM):
        """(exit code, output)."""
        self.proc.send_signal(sig)
        out = self.proc.communicate(timeout=30)[0].decode()
        return self.proc.returncode, out
