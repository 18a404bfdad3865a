"""Issue 19 on Kafka: two `mare ingest` processes each given the same batch append every reading
twice (neither knows what the other accepted), and every consumer of raw still counts each
reading once, keeping the same copy: the rollups (`mare stream`), the store (`mare store`),
MariaDB's readings and rollup tables (`mare sink mariadb`), ClickHouse's and Elasticsearch's
readings (`mare sink clickhouse`, `mare sink elasticsearch`), each dropping the second copy by
the log's own rule ([log] dedup, on by default on Kafka)."""
import time

import pytest

from clickhouse_server import ClickHouse
from elasticsearch_server import Elasticsearch
from harness import wait_equal
from kafka_server import KafkaCluster
from mariadb_server import MariaDB
from sink_helpers import kill_all
from test_kafka import kafka_rollups, on_kafka, post_all, readings, settle
from test_kafka_roles import STARTED, Proc, Role, assert_exact, from_scratch, wait_shared


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    with KafkaCluster(tmp_path_factory.mktemp("kafka")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def ch(tmp_path_factory):
    with ClickHouse(tmp_path_factory.mktemp("ch")) as server:
        yield server


@pytest.fixture(scope="module")
def es(tmp_path_factory):
    with Elasticsearch(tmp_path_factory.mktemp("es")) as node:
        yield node


@pytest.fixture(autouse=True)
def no_leftovers():
    yield
    kill_all(STARTED)


def db_rows(db, sql):
    return db.query_once_created(sql) or []  # the sink creates its tables when it starts


def ch_rows(ch, sql):
    try:
        return ch.query(sql)
    except RuntimeError:
        return []  # the sink creates its database and tables when it starts


def test_two_ingest_processes_given_the_same_batch_count_it_once_everywhere(kafka, ch, es, tmp_path):
    prefix = "dedup."
    sets = on_kafka(kafka, prefix)
    rows = readings(range(1, 9), 40, seed=19)
    with MariaDB(tmp_path) as db:
        with Role("ingest", tmp_path / "ingest-a", sets) as a, Role("ingest", tmp_path / "ingest-b", sets) as b, \
                Role("store", tmp_path / "store", [*sets, 'store.flush_interval="1s"']) as store:
            stream = Proc(["stream", "--member", "a"], tmp_path / "stream", sets)
            sink = Proc(["sink", "mariadb"], tmp_path / "sink",
                        [*sets, f"sink.mariadb.port={db.port}", "sink.mariadb.readings=true"])
            ch_sink = Proc(["sink", "clickhouse"], tmp_path / "ch-sink",
                           [*sets, f"sink.clickhouse.url={ch.url}", "sink.clickhouse.database=dedup",
                            "sink.clickhouse.rollups=false", 'sink.clickhouse.max_delay="100ms"'])
            es_sink = Proc(["sink", "elasticsearch"], tmp_path / "es-sink",
                           [*sets, f"sink.elasticsearch.url={es.url}", "sink.elasticsearch.index_prefix=dedup",
                            "sink.elasticsearch.replicas=0"])
            wait_shared([stream])
            # The same batch to both, interleaved as a retry sent elsewhere would be: each accepts all.
            for i in range(0, len(rows), 40):
                post_all(a, rows[i:i + 40])
                post_all(b, rows[i:i + 40])
            # Both copies are in the log: the consumers are what keeps them from counting twice.
            # (Visible to a read_committed reader once the brokers wrote the last commit's markers,
            # just after its 200.)
            wait_equal(lambda: len(kafka.consume(prefix + "raw")), 2 * len(rows), "records in raw", timeout=20)

            assert_exact(settle(lambda: kafka_rollups(kafka, prefix)), rows)
            wait_equal(lambda: stream.metric("mare_rollup_duplicates_dropped_total"), len(rows), "rollup duplicates")
            assert stream.metric("mare_rollup_readings_counted_total") == len(rows)

            store.wait_readings(len(rows))
            wait_equal(lambda: store.metric("mare_store_duplicates_dropped_total"), len(rows), "store duplicates")
            # Dropped before the store, not replaced in it: the later-wins rule never ran.
            assert store.metric("mare_store_readings_replaced_total") in (0, None)
            assert store.metric("mare_store_rows_added_total") == len(rows)

            # MariaDB: one row per reading (its key holds the log offset: a copy would be a row),
            # and hourly rollups counting each reading once.
            wait_equal(lambda: db_rows(db, "SELECT count(*), count(DISTINCT sensor_id, ts) FROM readings"),
                       [[str(len(rows)), str(len(rows))]], "MariaDB readings")
            want = {(k[0], k[3][:19].replace("T", " ")): v[0] for k, v in from_scratch(rows, ("temperature",)).items()
                    if k[2] == "1h"}
            wait_equal(lambda: {
                (int(s), w[:19]): int(c)
                for s, w, c in db_rows(db, "SELECT sensor_id, window_start, `count` FROM rollup_hour WHERE field = 'temperature'")
            }, want, "MariaDB rollup_hour")
            wait_equal(lambda: sink.metric('mare_sink_duplicates_dropped_total{sink="mariadb_readings"}'),
                       len(rows), "MariaDB duplicates")

            # ClickHouse: every record passed, the copies not written (counted without FINAL, so
            # that a copy written would show before any merge), one row per reading.
            wait_equal(lambda: ch_sink.metric(
                'mare_sink_clickhouse_duplicates_dropped_total{topic="raw"}'), len(rows), "ClickHouse duplicates")
            wait_equal(lambda: ch_rows(ch, "SELECT count(), uniqExact(sensor_id, ts_us) FROM dedup.readings"),
                       [[str(len(rows)), str(len(rows))]], "ClickHouse readings")
            # Counted once ClickHouse answered the insert, which can come after the rows are visible.
            wait_equal(lambda: ch_sink.metric('mare_sink_clickhouse_rows_written_total{topic="raw"}'),
                       len(rows), "ClickHouse rows written")

            # Elasticsearch: the same, one document per reading.
            wait_equal(lambda: es_sink.metric(
                'mare_sink_elasticsearch_duplicates_dropped_total{topic="raw"}'), len(rows), "Elasticsearch duplicates")
            wait_equal(lambda: es.count("dedup-readings-*"), len(rows), "Elasticsearch readings")
            wait_equal(lambda: es_sink.metric(
                'mare_sink_elasticsearch_documents_written_total{topic="raw"}'), len(rows), "Elasticsearch documents written")
            stream.stop()
            sink.stop()
            ch_sink.stop()
            es_sink.stop()


def test_a_stream_processor_killed_between_the_copies_still_drops_the_second(kafka, tmp_path):
    """The consumers' filter is rebuilt from the log, not kept: `mare stream` killed (-9) after
    the first copies, restarted after the second ones were appended, reads back the horizon
    before its checkpoint from Kafka and drops every second copy, as one that never stopped."""
    prefix = "dedup-restart."
    sets = on_kafka(kafka, prefix)
    rows = readings(range(1, 7), 30, seed=23)
    with Role("ingest", tmp_path / "ingest-a", sets) as a, Role("ingest", tmp_path / "ingest-b", sets) as b:
        stream = Proc(["stream", "--member", "a"], tmp_path / "stream", [*sets, 'rollup.checkpoint_interval="200ms"'])
        wait_shared([stream])
        post_all(a, rows)
        wait_equal(lambda: stream.metric("mare_rollup_readings_counted_total"), len(rows), "readings counted")
        # A checkpoint past the first copies, so that the restart resumes after them and knows
        # them only by reading the log back.
        taken = stream.metric("mare_rollup_checkpoint_seconds_count") or 0
        deadline = time.time() + 30
        while (stream.metric("mare_rollup_checkpoint_seconds_count") or 0) <= taken:
            assert time.time() < deadline, "no checkpoint after the first copies"
            time.sleep(0.1)
        stream.proc.kill()
        stream.proc.wait()
        post_all(b, rows)
        # Polled: a 200 comes once the transaction is committed, but its markers, which move the
        # last stable offset a read_committed reader (kcat's default) stops at, follow a moment later.
        wait_equal(lambda: len(kafka.consume(prefix + "raw")), 2 * len(rows), "both copies in raw", timeout=30)
        again = Proc(["stream", "--member", "a"], tmp_path / "stream", [*sets, 'rollup.checkpoint_interval="200ms"'])
        wait_shared([again])
        assert_exact(settle(lambda: kafka_rollups(kafka, prefix)), rows)
        wait_equal(lambda: again.metric("mare_rollup_duplicates_dropped_total"),
                   len(rows), "duplicates dropped after the restart")
        again.stop()
