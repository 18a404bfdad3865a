"""kill -9 mid-stream, restart: every reading whose append was acknowledged is in the log
exactly once, in order; the log recovers and verifies."""
import collections
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request

from harness import MareRun, key_partition, log_records, mare

SENSORS = 8
BATCH = 40


def sender(run, acked, stop, errors, first_seq):
    """POSTs batches of readings with increasing sequence numbers per sensor; records the
    sequence numbers of every batch the server acknowledged with 200."""
    seq = first_seq
    t0 = 1705831564
    while not stop.is_set():
        batch = []
        for _ in range(BATCH):
            sensor = seq % SENSORS + 1
            batch.append({"timestamp": t0 + seq, "sensor_id": sensor, "seq": seq, "temperature": 15 + (seq % 100) / 10})
            seq += 1
        body = "\n".join(json.dumps(r) for r in batch).encode()
        req = urllib.request.Request(f"{run.http_url}/api/v1/ingest", data=body, method="POST",
                                     headers={"Content-Type": "application/x-ndjson"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                answer = json.loads(r.read())
                if r.status == 200 and answer["accepted"] == BATCH:
                    acked.extend(x["seq"] for x in batch)
                else:
                    errors.append(answer)
        except (urllib.error.URLError, ConnectionError, OSError):
            return  # the server died: stop sending


def test_kill9_loses_nothing_acknowledged(tmp_path):
    data = tmp_path / "data"
    all_acked = []
    for round_ in range(3):
        run = MareRun(data).start()
        acked, errors, stop = [], [], threading.Event()
        t = threading.Thread(target=sender, args=(run, acked, stop, errors, round_ * 10_000_000))
        t.start()
        time.sleep(1.0 + 0.3 * round_)
        run.kill9()
        stop.set()
        t.join(timeout=30)
        assert not errors
        assert len(acked) > 200, f"round {round_}: only {len(acked)} readings acknowledged before the kill"
        all_acked.extend(acked)

    # Restart once more: recovery must succeed and the log must verify.
    run = MareRun(data)
    with run:
        pass
    mare("log", "verify", "--data-dir", data)

    records = log_records(data)
    seqs = [r["value"]["seq"] for r in records]
    counts = collections.Counter(seqs)
    duplicated = [s for s, n in counts.items() if n > 1]
    assert not duplicated, f"{len(duplicated)} readings appear more than once"
    missing = set(all_acked) - set(seqs)
    assert not missing, f"{len(missing)} acknowledged readings are missing, e.g. {sorted(missing)[:5]}"
    # Per sensor, offsets follow the order the readings were sent in.
    by_partition = collections.defaultdict(list)
    for r in sorted(records, key=lambda r: (r["partition"], r["offset"])):
        by_partition[(r["partition"], r["key"])].append(r["value"]["seq"])
    for key, s in by_partition.items():
        assert s == sorted(s), f"sensor {key} out of order"
    offsets = collections.defaultdict(list)
    for r in records:
        offsets[r["partition"]].append(r["offset"])
    for p, o in offsets.items():
        o.sort()
        assert o == list(range(o[0], o[0] + len(o))), f"partition {p} has gaps in its offsets"


def test_corrupt_segment_is_reported_and_repaired_on_request(tmp_path):
    data = tmp_path / "data"
    run = MareRun(data)
    with run:
        for i in range(3):  # three batches in sensor 1's partition
            body = "\n".join(json.dumps({"timestamp": 1705831564 + i * 100 + j, "sensor_id": 1, "seq": i * 100 + j})
                             for j in range(100))
            status, answer = run.post(body)
            assert status == 200 and answer["accepted"] == 100
    segment = data / "log" / "topics" / "raw" / str(key_partition("1", 4)) / ("0" * 20 + ".log")
    content = bytearray(segment.read_bytes())
    content[len(content) * 5 // 6] ^= 0xFF  # inside the third batch's records
    segment.write_bytes(content)

    refused = subprocess.run(MareRun(data).args(), capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0
    assert str(segment) in refused.stdout + refused.stderr
    assert "--repair-log" in refused.stdout + refused.stderr
    verify = mare("log", "verify", "--data-dir", data, check=False)
    assert verify.returncode == 1 and str(segment) in verify.stdout + verify.stderr

    with MareRun(data, flags=["--repair-log"]):
        pass
    mare("log", "verify", "--data-dir", data)
    assert sorted(r["value"]["seq"] for r in log_records(data)) == list(range(200))
