"""Faults the running server must survive by itself, against the real `mare run` (issue 13):
an HTTP batch of which one partition's share cannot be stored (then none of it is); a full disk."""
import errno
import json
import os
import resource
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request


from harness import MareRun, free_port, key_partition, log_records, wait_for

PARTITIONS = 4
FILE_LIMIT = 256 * 1024  # bytes any file of mare run may reach (RLIMIT_FSIZE)


def limited_files():
    # A write past the limit fails with EFBIG (SIGXFSZ ignored, so it does not kill): one
    # partition's segment fills while the others still take appends, as on a disk that fills
    # between two partitions' writes.
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, resource.RLIM_INFINITY))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def reading(sensor, n, pad=""):
    r = {"timestamp": f"2024-01-21 10:{n // 60 % 60:02}:{n % 60:02}", "sensor_id": sensor, "temperature": 20 + n % 7}
    if pad:
        r["note"] = pad
    return json.dumps(r, separators=(",", ":"))


def fill_partition(m, sensor):
    """Fills the sensor's partition to its file limit (limited_files): big batches, then single
    readings, then small ones, until not even one small reading fits."""
    n = 10_000
    for count, pad in ((20, "x" * 1000), (1, "x" * 1000), (1, "")):
        for _ in range(1000):
            n += count
            status, _ = m.post("\n".join(reading(sensor, n + i, pad) for i in range(count)) + "\n")
            if status == 503:
                break
        else:
            raise AssertionError("the partition never filled")


def test_a_batch_one_partition_cannot_store_is_stored_not_at_all_and_named_whole(tmp_path):
    # The full partition is the highest of the batch's, written last: the shares of the others,
    # written before it, are taken back (the batch is one group of the embedded log).
    sensors = {}
    for s in range(1, 100):
        sensors.setdefault(key_partition(str(s), PARTITIONS), []).append(s)
    full, ok = sensors[3][0], sensors[1][:2]
    with MareRun(tmp_path, extra=[f"log.partitions={PARTITIONS}", "log.fsync=\"never\""], preexec_fn=limited_files) as m:
        fill_partition(m, full)

        lines = [reading(ok[0], 1), reading(full, 2), reading(ok[1], 3),
                 "[" + ",".join([reading(full, 4), reading(ok[0], 5), reading(full, 6)]) + "]", reading(full, 7)]
        status, answer = m.post("\n".join(lines) + "\n")
        assert status == 503, answer
        answer = json.loads(answer)
        assert answer["accepted"] == 0 and answer["unacknowledged"] == 7, answer
        assert answer["unacknowledged_lines"] == [1, 2, 3, 4, 5], answer
        assert answer["unacknowledged_items"] == [{"line": 4, "items": [0, 1, 2]}], answer

        # Space returns (the limit lifted on the running process); the client resends what it was told.
        resource.prlimit(m.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        again = []
        items = {e["line"]: e["items"] for e in answer["unacknowledged_items"]}
        for line in answer["unacknowledged_lines"]:
            text = lines[line - 1]
            if line in items:
                again += [json.dumps(json.loads(text)[i], separators=(",", ":")) for i in items[line]]
            else:
                again.append(text)
        status, answer = m.post("\n".join(again) + "\n")
        assert status == 200 and answer["accepted"] == 7, answer

    stored = [json.dumps(r["value"], separators=(",", ":")) for r in log_records(tmp_path)]
    sent = [reading(ok[0], 1), reading(full, 2), reading(ok[1], 3), reading(full, 4), reading(ok[0], 5),
            reading(full, 6), reading(full, 7)]
    for r in sent:
        assert stored.count(r) == 1, (r, stored.count(r))


def as_root(cmd):
    """cmd as root: directly when we are, else through sudo (as scripts/setup.sh installs)."""
    return cmd if os.geteuid() == 0 else ["sudo", "-n"] + cmd


def mounted_tmpfs(path, size):
    """A tmpfs of `size` at path. A machine where it cannot be mounted fails the test: the disk
    must really fill for it to mean anything."""
    os.makedirs(path, exist_ok=True)
    p = subprocess.run(as_root(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]),
                       capture_output=True, text=True)
    assert p.returncode == 0, f"cannot mount a {size} tmpfs at {path} (needs root or sudo): {p.stderr.strip()}"
    return path


def fill(path):
    """Fills the file system of path to its last byte; returns the filler's path."""
    filler = os.path.join(path, "filler")
    with open(filler, "wb", buffering=0) as f:
        for chunk in (1 << 20, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    return filler


def health(m, path="/readyz"):
    try:
        with urllib.request.urlopen(f"{m.http_url}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_disk_full_recovers_without_restart(tmp_path):
    data = mounted_tmpfs(tmp_path / "data", "24m")
    try:
        sent = 0
        now_ms = int(time.time() * 1000)

        def batch(first, count):
            return "\n".join(json.dumps({"timestamp": now_ms - 60_000 + (first + i) % 50_000, "sensor_id": 1 + (first + i) % 8,
                                         "temperature": 10 + (first + i) % 13}) for i in range(count)) + "\n"

        with MareRun(data, extra=["store.flush_interval=\"3s\"", "rollup.checkpoint_interval=\"500ms\""]) as m:
            status, answer = m.post(batch(0, 500))
            assert status == 200, answer
            sent += 500
            filler = fill(data)

            # Ingest refuses truthfully; the store's flush and the rollups' checkpoint fail.
            status, answer = m.post(batch(sent, 100))
            assert status == 503, answer
            sent += json.loads(answer)["accepted"]
            got = wait_for(lambda: (lambda h: h[0] == 503 and {f["component"] for f in h[1]["failing"]} == {"store", "rollup"} and h)(health(m)), 20)
            assert got, health(m)
            status, body = got
            for f in body["failing"]:
                assert f["state"] == "retrying" and "No space left on device" in f["reason"], body
            assert m.metric("mare_store_consumer_up") == 0 and m.metric("mare_rollup_consumer_up") == 0
            # Not ready, but alive: they recover by themselves, a restart would not help.
            assert health(m, "/healthz") == (200, {"status": "ok", "failing": []})
            assert m.metric("mare_store_lag_records") is not None

            # Space returns: both catch up by themselves, readyz says so.
            os.unlink(filler)
            wait_for(lambda: health(m)[0] == 200, 30, what=lambda: f"/readyz to say ready: {health(m)}")
            assert m.metric("mare_store_consumer_up") == 1 and m.metric("mare_rollup_consumer_up") == 1
            # Readings of their own: the refused batch's accepted items are not a prefix of it, and
            # the store keeps one reading per sensor and time, so reusing its numbers would merge some.
            status, answer = m.post(batch(1000, 300))
            assert status == 200, answer
            sent += 300

            def stored():
                q = urllib.parse.urlencode({"q": "SELECT count(*) AS n FROM readings"})
                with urllib.request.urlopen(f"{m.http_url}/api/v1/query?{q}", timeout=10) as r:
                    return json.loads(r.read())["rows"][0][0]
            wait_for(lambda: stored() == sent, 20, what=lambda: f"the store to hold {sent} readings: {stored()}")

        # Every acknowledged reading counted once in the rollups (the newest revision of each day window).
        assert len(log_records(data)) == sent
        newest = {}
        for r in log_records(data, "rollups"):
            v = r["value"]
            if v["resolution"] == "1d" and v["field"] == "temperature":
                if r["key"] not in newest or v["revision"] > newest[r["key"]]["revision"]:
                    newest[r["key"]] = v
        assert sum(v["count"] for v in newest.values()) == sent
    finally:
        subprocess.run(as_root(["umount", "-l", str(tmp_path / "data")]))


def test_dead_letter_is_bounded_and_keeps_the_newest(tmp_path):
    """Reproduced: eight 60 MB lines over HTTP made the dead-letter file 503 MB, and only the
    first 10,000 rejects ever were kept."""
    with MareRun(tmp_path, extra=['ingest.dead_letter_max_bytes="64KiB"']) as m:
        big = b'{"sensor_id":1,"note":"' + b"x" * (8 << 20) + b'"}\n'
        for i in range(8):
            status, answer = m.post(big.replace(b"x", str(i).encode(), 1))
            assert status == 200 and answer["rejected"] == 1, answer
        for i in range(1000):
            status, _ = m.post(f'{{"bad {i:04}\n')
            assert status == 200
        dead = os.path.join(tmp_path, "dead-letter.log")
        current, rotated = open(dead, "rb").read(), open(dead + ".1", "rb").read()
        assert len(current) + len(rotated) <= 64 << 10
        assert b'"bad 0999' in current
        assert b'"bad 0000' not in current + rotated
        assert m.metric("mare_dead_letter_readings_truncated_total") == 8
        assert m.metric("mare_dead_letter_files_rotated_total") >= 1


def test_a_sink_whose_server_is_away_makes_the_process_unready_not_dead(tmp_path):
    """/readyz names each topic a sink cannot deliver and why; /healthz stays 200, since the sink
    retries by itself (the log keeps the readings meanwhile)."""
    port = free_port()  # nobody listens there
    with MareRun(tmp_path, extra=["sink.clickhouse.enabled=true", f'sink.clickhouse.url="http://127.0.0.1:{port}"']) as m:
        status, answer = m.post('{"timestamp":"2024-01-21 10:06:04","sensor_id":7,"temperature":20.9}\n')
        assert status == 200 and answer["accepted"] == 1, answer
        topics = {"sink.clickhouse/raw", "sink.clickhouse/rollups"}  # the sink follows both by default
        got = wait_for(lambda: (lambda h: h[0] == 503 and {f["component"] for f in h[1]["failing"]} == topics and h)(health(m)), 20)
        assert got, health(m)
        for f in got[1]["failing"]:
            assert f["state"] == "retrying" and f["failures"] >= 1, got
            assert f"127.0.0.1:{port}" in f["reason"], got
        assert health(m, "/healthz") == (200, {"status": "ok", "failing": []})
