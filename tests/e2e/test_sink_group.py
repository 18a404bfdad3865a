"""The ClickHouse sink scaled out on Kafka (a real broker, a real ClickHouse 18.16): two
`mare sink clickhouse` processes with the same config form one consumer group and split the raw
topic's 4 partitions, each writing and saving only its own (its metrics show its share); one
killed -9 mid-stream, the other takes its partitions over from the positions saved in ClickHouse,
and every reading is there exactly once (count, FINAL and argMax). A third sink into another
database is a group of its own and reads every partition. Kafka's session timeout is set low
(3 s) so that the takeover is quick."""
import json
import os
import re
import signal
import time

import pytest

from clickhouse_server import ClickHouse
from harness import mare, wait_for
from kafka_server import KafkaCluster
from sink_helpers import T0, SinkProcess, buoy, produce_on_kafka
from sink_helpers import no_sink_outlives_its_test  # noqa: F401 (autouse: kills the sinks a failed test leaves)
from test_kafka import on_kafka
from test_sink_clickhouse import readings_exactly_once

PARTITIONS = 4
# Two sensors per partition (murmur2 of the key, as every Kafka producer): each sink gets half.
SENSORS = [2, 11, 4, 16, 5, 6, 1, 3]


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    # A member's session as short as 3 s (the broker's floor is 6 s by default).
    with KafkaCluster(tmp_path_factory.mktemp("kafka"), properties={"group.min.session.timeout.ms": 1000}) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def ch(tmp_path_factory):
    with ClickHouse(tmp_path_factory.mktemp("ch")) as server:
        yield server


def kafka_sets(kafka, prefix):
    return on_kafka(kafka, prefix, 'log.kafka.client."session.timeout.ms"="3000"')


class Sink(SinkProcess):
    """`mare sink clickhouse` on the Kafka log, the raw topic alone, small batches."""

    def __init__(self, data_dir, kafka, prefix, ch, database):
        data_dir.mkdir(exist_ok=True)
        super().__init__("clickhouse", data_dir, [
            *kafka_sets(kafka, prefix), f"sink.clickhouse.url={ch.url}", f"sink.clickhouse.database={database}",
            "sink.clickhouse.rollups=false", "sink.clickhouse.batch=250", 'sink.clickhouse.max_delay="100ms"',
            'sink.clickhouse.retry_max="500ms"'])

    def m(self, what):
        return self.metric(f'mare_sink_clickhouse_{what}{{topic="raw"}}') or 0



def saved(ch, database):
    """partition -> the next offset saved in sink_offsets."""
    try:
        rows = ch.query(f"SELECT `partition`, max(next_offset) FROM {database}.sink_offsets WHERE topic = 'raw' "
                        f"GROUP BY `partition`")
    except RuntimeError:
        return {}
    return {int(p): int(n) for p, n in rows}


def ends(tmp_path, kafka, prefix):
    """partition -> end offset of raw."""
    out = mare("log", "partitions", "raw", "--data-dir", tmp_path,
               *[a for s in kafka_sets(kafka, prefix) for a in ("--set", s)]).stdout
    got = {}
    for line in out.splitlines():
        words = line.split()
        if words and words[0].isdigit():
            got[int(words[0])] = int(words[2])
    return got


def readings(start, n):
    return [buoy(i, SENSORS[i % 8], T0 + i // 8) for i in range(start, start + n)]


def two_sinks_delivering(kafka, ch, tmp_path, prefix, db, first):
    """The topic (its partitions made before the sinks start), sinks `a` and `b` splitting it,
    and `first` delivered."""
    mare("log", "produce", "raw", "--partitions", PARTITIONS, "--data-dir", tmp_path,
         *[a for s in kafka_sets(kafka, prefix) for a in ("--set", s)],
         input="".join(f"{r['sensor_id']}\t{json.dumps(r)}\n" for r in first[:8]))
    a = Sink(tmp_path / "a", kafka, prefix, ch, db)
    b = Sink(tmp_path / "b", kafka, prefix, ch, db)
    # Its log line comes just after the metric.
    wait_for(lambda: a.m("assigned_partitions") == 2 and b.m("assigned_partitions") == 2 and len(a.owned()) == 2
             and len(b.owned()) == 2, timeout=60, what="the two sinks to split the 4 partitions")
    assert sorted(a.owned() + b.owned()) == list(range(PARTITIONS))
    produce_on_kafka(kafka, prefix + "raw", first[8:])
    wait_for(lambda: sum(saved(ch, db).values()) == len(first), what="the first readings delivered")
    return a, b


def test_two_sinks_share_the_partitions_and_one_killed_leaves_every_reading_once(kafka, ch, tmp_path):
    prefix, db = "grp.", "grp"
    first = readings(0, 4000)
    # Both write, each its own partitions only.
    a, b = two_sinks_delivering(kafka, ch, tmp_path, prefix, db, first)
    wait_for(lambda: a.m("records_read_total") + b.m("records_read_total") == len(first),
             what="each record read by one sink")
    assert a.m("rows_written_total") > 0 and b.m("rows_written_total") > 0
    assert a.m("rows_written_total") + b.m("rows_written_total") == len(first)
    wait_for(lambda: a.m("lag_records") == 0 and b.m("lag_records") == 0, what="lag 0 on both")

    # A sink into another database is in another group: it gets every partition (not half of
    # the readings), and the first two keep their shares.
    other = db + "_other"
    c = Sink(tmp_path / "c", kafka, prefix, ch, other)
    wait_for(lambda: sum(saved(ch, other).values()) == len(first), what="the other database's sink to read every partition")
    assert c.m("assigned_partitions") == PARTITIONS
    assert a.m("assigned_partitions") == 2 and b.m("assigned_partitions") == 2
    readings_exactly_once(ch, other, readings(0, len(first)))
    c.stop()

    # More readings; `a` killed -9 while it writes them: `b` takes its partitions over.
    more = readings(len(first), 40000)
    before, a_parts, b_rebalances = a.m("rows_written_total"), a.owned(), b.m("rebalances_total")
    produce_on_kafka(kafka, prefix + "raw", more)
    wait_for(lambda: a.m("rows_written_total") >= before + 2000, what="the sink to be mid-stream")
    killed_at = time.monotonic()
    a.kill9()
    at_kill = saved(ch, db)  # before the survivor's session-timeout takeover
    end = ends(tmp_path, kafka, prefix)
    assert any(at_kill.get(p, 0) < end[p] for p in a_parts), f"killed mid-stream: {at_kill} of {end}"
    wait_for(lambda: b.m("assigned_partitions") == PARTITIONS, timeout=30, what="the survivor to own every partition")
    # Informational (not asserted: the machine's load moves it): the session timeout (3 s), the
    # survivor finishing its own batches, and its duplicate filters of the partitions it takes
    # (those it kept are not rebuilt).
    owns = re.findall(r"owns partitions \S+ of raw \([^)]*\)", b.output())
    print(f"takeover: {time.monotonic() - killed_at:.1f} s from the kill to the survivor owning every partition; "
          f"its last assignment: {owns[-1] if owns else '?'}")
    assert b.m("rebalances_total") > b_rebalances
    total = len(first) + len(more)
    wait_for(lambda: saved(ch, db) == end, timeout=60, what="every position saved")
    assert sum(end.values()) == total
    readings_exactly_once(ch, db, readings(0, total))
    wait_for(lambda: b.m("lag_records") == 0, what="lag 0")
    b.stop()
    # Kafka's own tools see the group and its offsets (informational: ClickHouse holds the true ones).
    groups = mare("log", "groups", "raw", "--data-dir", tmp_path,
                  *[a for s in kafka_sets(kafka, prefix) for a in ("--set", s)]).stdout
    assert "clickhouse-raw" in groups, groups


def rows(ch, database):
    """The readings table's rows, copies not merged away yet included (no FINAL)."""
    return int(ch.query(f"SELECT count() FROM {database}.readings")[0][0])


def test_a_member_stopped_past_its_session_writes_nothing_stale_and_resumes_where_the_other_saved(kafka, ch, tmp_path):
    """Lost partitions: `a` stopped (SIGSTOP) mid-stream for longer than its session, `b` takes
    its partitions over and delivers everything. Continued, `a` learns that it lost them (not a
    revocation: it may not finish what it read) and writes at most what it held when stopped,
    never reading on. Then `b` leaves: `a` takes every partition, among them those whose saved
    positions `b` moved on while `a` was away. It resumes from those (writing exactly the
    readings appended since, none again), and its duplicate filters, rebuilt from Kafka at those
    positions, know what `b` wrote: copies of it are dropped."""
    prefix, db = "lost.", "lost"
    first = readings(0, 2000)
    a, b = two_sinks_delivering(kafka, ch, tmp_path, prefix, db, first)

    more = readings(len(first), 40000)  # enough that `a` is still at it when stopped, at any speed
    before, a_parts = a.m("rows_written_total"), a.owned()
    produce_on_kafka(kafka, prefix + "raw", more)
    wait_for(lambda: a.m("rows_written_total") >= before + 1000, what="the sink to be mid-stream")
    os.kill(a.proc.pid, signal.SIGSTOP)
    try:
        at_stop, end = saved(ch, db), ends(tmp_path, kafka, prefix)
        held = sum(end[p] - at_stop.get(p, 0) for p in a_parts)  # the most `a` can have read unsaved
        assert held > 0, f"stopped mid-stream: {at_stop} of {end}"
        wait_for(lambda: b.m("assigned_partitions") == PARTITIONS, timeout=30, what="the survivor to own every partition")
        wait_for(lambda: saved(ch, db) == end, timeout=60, what="the survivor to deliver every reading")
        delivered = rows(ch, db)
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)
    wait_for(lambda: [sorted(map(int, p.split(","))) for p in re.findall(r"lost partitions (\S+) of raw", a.output())]
             == [sorted(a_parts)], timeout=30, what="the stopped sink to learn that it lost its partitions")
    wait_for(lambda: a.m("assigned_partitions") == 2 and b.m("assigned_partitions") == 2, timeout=60,
             what="the two sinks to split the partitions again")
    wait_for(lambda: a.m("lag_records") == 0 and b.m("lag_records") == 0, what="lag 0 on both")
    stale = rows(ch, db) - delivered
    assert stale <= held, f"{stale} rows written by the stopped sink after it continued, of {held} it could hold"
    assert saved(ch, db) == end
    readings_exactly_once(ch, db, readings(0, len(first) + len(more)))

    # `b` leaves; `a` takes every partition, its own from before the stop among them, whose
    # positions `b` moved on while `a` was away.
    a_rows, a_dropped = a.m("rows_written_total"), a.m("duplicates_dropped_total")
    b.stop()
    wait_for(lambda: a.m("assigned_partitions") == PARTITIONS, timeout=30, what="the stopped sink to own every partition")
    # New readings, and copies of the last ones `b` wrote (appended within the horizon of them).
    new, copies = readings(len(first) + len(more), 2000), more[-400:]
    produce_on_kafka(kafka, prefix + "raw", [r for pair in zip(new, copies + [None] * len(new)) for r in pair if r])
    end = ends(tmp_path, kafka, prefix)
    wait_for(lambda: saved(ch, db) == end, timeout=60, what="every position saved")
    # Counted once ClickHouse answered the insert, which can come after the position is saved.
    wait_for(lambda: a.m("rows_written_total") - a_rows >= len(new), what="the rows counted")
    assert a.m("rows_written_total") - a_rows == len(new), "no rewind: nothing written again"
    assert a.m("duplicates_dropped_total") - a_dropped == len(copies)
    readings_exactly_once(ch, db, readings(0, len(first) + len(more) + len(new)))
    a.stop()
