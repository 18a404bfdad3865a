"""Faults the running server must survive by itself, against the real `mare run` (issue 13):
an HTTP batch of which one partition's share is stored and another's is not."""
import json
import resource
import signal

from harness import MareRun, key_partition, log_records

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


def test_partly_stored_batch_names_exactly_what_to_send_again(tmp_path):
    sensors = {}
    for s in range(1, 100):
        sensors.setdefault(key_partition(str(s), PARTITIONS), []).append(s)
    full, ok = sensors[0][0], sensors[1][:2]
    with MareRun(tmp_path, extra=[f"log.partitions={PARTITIONS}", "log.fsync=\"never\""], preexec_fn=limited_files) as m:
        # Fill the full sensor's partition to its file limit: big batches, then single
        # readings, then small ones, until not even one small reading fits.
        n = 10_000
        for count, pad in ((20, "x" * 1000), (1, "x" * 1000), (1, "")):
            for _ in range(1000):
                n += count
                status, _ = m.post("\n".join(reading(full, n + i, pad) for i in range(count)) + "\n")
                if status == 503:
                    break
            else:
                raise AssertionError("the partition never filled")

        lines = [reading(ok[0], 1), reading(full, 2), reading(ok[1], 3),
                 "[" + ",".join([reading(full, 4), reading(ok[0], 5), reading(full, 6)]) + "]", reading(full, 7)]
        status, answer = m.post("\n".join(lines) + "\n")
        assert status == 503, answer
        answer = json.loads(answer)
        assert answer["accepted"] == 3 and answer["unacknowledged"] == 4, answer
        assert answer["unacknowledged_lines"] == [2, 4, 5], answer
        assert answer["unacknowledged_items"] == [{"line": 4, "items": [0, 2]}], answer

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
        assert status == 200 and answer["accepted"] == 4, answer

    stored = [json.dumps(r["value"], separators=(",", ":")) for r in log_records(tmp_path)]
    sent = [reading(ok[0], 1), reading(full, 2), reading(ok[1], 3), reading(full, 4), reading(ok[0], 5),
            reading(full, 6), reading(full, 7)]
    for r in sent:
        assert stored.count(r) == 1, (r, stored.count(r))
