"""The Elasticsearch sink against a real Elasticsearch node (7.10.2) and a real OpenSearch node
(3.8.0), both from Maven Central's jars, one after the other (the cases run once per server),
the first case also against a real Elasticsearch 8.19.21 node (elasticsearch8_server.py), the
data-stream case on OpenSearch and Elasticsearch 8 alone: readings arrive with the
mappings Kibana needs, a geo_bounding_box query finds them, hourly date_histogram min/max/avg per
sensor equal mare's own SQL (and the 1h rollups), and the forecasts are there, one document per
issue and target hour, equal to the forecasts topic; a kill -9 of the sink mid-stream and a
stopped-then-restarted node leave every reading there exactly once; items refused for now (503:
their index's primary cannot be assigned) and whole bulk requests refused for now (429: the
node's in-flight requests breaker) are sent again while the position holds, and arrive once when
the node takes them; readings into a data stream arrive once, and a resend of all of them is
answered 409 and counted as already there; a document Elasticsearch refuses (a mapping conflict)
goes to the dead-letter file with its reason; on Kafka (one broker for both servers, started by
the first Kafka case), the sink follows the raw topic exactly once across a kill -9, shared by
two sinks, and when one of the two dies mid-stream."""
import json
import os

import pytest

from elasticsearch_server import Elasticsearch
from elasticsearch8_server import Elasticsearch8
from opensearch_server import OpenSearch
from harness import MareRun, log_records, mare, wait_for
from sink_helpers import T0, SinkProcess, buoy, epoch_ms, produce, produce_on_kafka, read_dead_letters
from sink_helpers import no_sink_outlives_its_test  # noqa: F401 (autouse: kills the sinks a failed test leaves)

DAY_INDEX = "readings-2024.01.21"

# What each server says it is: the tests run against what they claim to.
SERVERS = {"elasticsearch": (Elasticsearch, "elasticsearch", "7.10.2"), "opensearch": (OpenSearch, "opensearch", OpenSearch.VERSION),
           "elasticsearch-8": (Elasticsearch8, "elasticsearch", Elasticsearch8.VERSION)}
# The cases but the first run on these two: Elasticsearch 8 (started through its test framework,
# elasticsearch8_server.py) runs the first, which covers the mappings, ids and queries Kibana
# users see, at the cost of one more node start.
ON_TWO = pytest.mark.parametrize("es", ["elasticsearch", "opensearch"], indirect=True)


@pytest.fixture(scope="module", params=list(SERVERS))
def es(request, tmp_path_factory):
    """One node per server kind at a time: pytest runs every case of one kind before it stops that
    node and starts the next."""
    server, distribution, version = SERVERS[request.param]
    with server(tmp_path_factory.mktemp(request.param)) as node:
        assert node.identity() == (distribution, version)
        yield node


def es_sets(es, prefix, extra=()):
    out = [f"sink.elasticsearch.url={es.url}", f"sink.elasticsearch.index_prefix={prefix}", "sink.elasticsearch.replicas=0",
           'sink.elasticsearch.retry_max="500ms"', *extra]
    return out


class Sink(SinkProcess):
    """A `mare sink elasticsearch` process following a data dir's log."""

    def __init__(self, data_dir, es, prefix, extra=()):
        super().__init__("elasticsearch", data_dir, es_sets(es, prefix, extra))


def positions(es, prefix):
    """Sum of the sink's saved next offsets over the raw topic's partitions."""
    es.request("POST", f"/{prefix}-sink-offsets/_refresh")
    status, body = es.request("POST", f"/{prefix}-sink-offsets/_search", {"size": 100, "query": {"term": {"topic": "raw"}}})
    if status != 200:
        return 0
    return sum(h["_source"]["next_offset"] for h in body["hits"]["hits"])


def delivered_once(es, prefix, n):
    """Waits until the saved positions cover the first n records (seq 0 to n-1), then checks each
    is in the index exactly once."""
    wait_for(lambda: positions(es, prefix) == n, timeout=120, what=f"every one of {n} Kafka records delivered")
    assert es.count(f"{prefix}-readings-*") == n
    body = es.search(f"{prefix}-readings-*", {"size": 0, "aggs": {"sum": {"sum": {"field": "seq"}},
                                                                  "twice": {"terms": {"field": "seq", "min_doc_count": 2}}}})
    assert body["aggregations"]["sum"]["value"] == n * (n - 1) / 2
    assert body["aggregations"]["twice"]["buckets"] == []


def test_readings_from_mare_run_have_kibanas_mappings_and_answer_geo_and_hourly_queries(tmp_path, es):
    prefix = "run"
    n = 4 * 3 * 120  # 4 sensors, 3 hours, one reading each 30 s
    readings = [buoy(i, 1 + i % 4, T0 + (i // 4) * 30) for i in range(n)]
    extra = ['store.flush_interval="1s"', "sink.elasticsearch.enabled=true", "sink.elasticsearch.rollups=true",
             "sink.elasticsearch.forecasts=true", *es_sets(es, prefix)]
    with MareRun(tmp_path, extra=extra) as run:
        for k in range(0, n, 400):
            status, body = run.post("\n".join(json.dumps(r) for r in readings[k:k + 400]))
            assert status == 200, body
        wait_for(lambda: es.count(f"{prefix}-readings-*") == n, what=f"{n} readings in Elasticsearch")
        # Counted once the bulk response is read, which can come after a refresh made the documents visible.
        wait_for(lambda: run.metric('mare_sink_elasticsearch_documents_written_total{topic="raw"}') >= n,
                 what="the sink to count what Elasticsearch acknowledged")
        assert run.metric('mare_sink_elasticsearch_up{topic="raw"}') == 1

        # The template's mappings, on the daily index the readings went to.
        status, mapping = es.request("GET", f"/{prefix}-{DAY_INDEX}/_mapping")
        assert status == 200, mapping
        props = mapping[f"{prefix}-{DAY_INDEX}"]["mappings"]["properties"]
        assert {k: props[k]["type"] for k in ("@timestamp", "location", "sensor_id", "temperature", "pressure", "seq", "status")} == {
            "@timestamp": "date", "location": "geo_point", "sensor_id": "keyword", "temperature": "double",
            "pressure": "double", "seq": "double", "status": "keyword"}

        # One document per reading, under its deterministic id, with its values.
        status, doc = es.request("GET", f"/{prefix}-{DAY_INDEX}/_doc/3-{(T0 + 30) * 1_000_000}")
        assert status == 200, doc
        r = readings[6]  # seq 6: sensor 3 at T0 + 30 s
        assert doc["_source"] == {"@timestamp": "2024-01-21T10:00:30.000000Z", "sensor_id": "3", "location": r["location"],
                                  "seq": 6, "temperature": r["temperature"], "pressure": r["pressure"], "status": r["status"]}

        # The Kibana saved objects (deploy/kibana/mare.ndjson) name fields that exist, with the types
        # their aggregations and layers need (Kibana itself cannot run here).
        kinds = {"date_histogram": "date", "terms": "keyword", "avg": "double", "min": "double", "max": "double"}
        ndjson = os.path.join(os.path.dirname(__file__), "../../deploy/kibana/mare.ndjson")
        objects = [json.loads(line) for line in open(ndjson)]
        patterns = {o["id"]: o["attributes"]["title"] for o in objects if o["type"] == "index-pattern"}
        assert patterns == {"mare-readings": "mare-readings-*", "mare-rollups": "mare-rollups-*",
                            "mare-forecasts": "mare-forecasts-*"}
        checked = 0
        for o in objects:
            for r in o["references"]:
                assert r["id"] in patterns, (o["id"], r)
            if o["type"] == "visualization":
                for agg in json.loads(o["attributes"]["visState"])["aggs"]:
                    assert props[agg["params"]["field"]]["type"] == kinds[agg["type"]], (o["id"], agg)
                    checked += 1
            if o["type"] == "map":
                for layer in json.loads(o["attributes"]["layerListJSON"]):
                    source = layer["sourceDescriptor"]
                    if source["type"] == "ES_SEARCH":
                        assert props[source["geoField"]]["type"] == "geo_point"
                        assert props[source["topHitsSplitField"]]["type"] == "keyword"
                        assert all(f in props for f in source["tooltipProperties"])
                        checked += 1
        assert checked == 9  # 3 aggregations of the chart, 5 of the table, the map's layer

        # geo_bounding_box: the Gulf of Lion holds sensors 1 and 2, the box around Iceland sensor 3.
        def in_box(top, left, bottom, right):
            body = es.search(f"{prefix}-readings-*", {"size": 0, "track_total_hits": True, "query": {"geo_bounding_box": {
                "location": {"top_left": {"lat": top, "lon": left}, "bottom_right": {"lat": bottom, "lon": right}}}},
                "aggs": {"sensors": {"terms": {"field": "sensor_id"}}}})
            return body["hits"]["total"]["value"], sorted(b["key"] for b in body["aggregations"]["sensors"]["buckets"])
        assert in_box(43.0, 2.5, 42.0, 4.0) == (n // 2, ["1", "2"])
        assert in_box(67.0, -25.0, 62.0, -12.0) == (n // 4, ["3"])
        assert in_box(10.0, 0.0, 0.0, 10.0) == (0, [])

        # Hourly min/max/avg per sensor: Elasticsearch's date_histogram against mare's SQL.
        body = es.search(f"{prefix}-readings-*", {"size": 0, "aggs": {"s": {"terms": {"field": "sensor_id", "size": 100}, "aggs": {
            "h": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1h"}, "aggs": {
                "min": {"min": {"field": "temperature"}}, "max": {"max": {"field": "temperature"}},
                "avg": {"avg": {"field": "temperature"}}, "n": {"value_count": {"field": "temperature"}}}}}}}})
        from_es = sorted((int(s["key"]), h["key"], h["n"]["value"], h["min"]["value"], h["max"]["value"], h["avg"]["value"])
                         for s in body["aggregations"]["s"]["buckets"] for h in s["h"]["buckets"])
        run.wait_readings(n)
        from_sql = sorted((r[0], epoch_ms(r[1]), r[2], r[3], r[4], r[5]) for r in run.query_rows(
            "SELECT sensor_id, time_bucket('1h', ts) AS hour, count(temperature), min(temperature), max(temperature), "
            "avg(temperature) FROM readings GROUP BY sensor_id, hour"))
        assert len(from_es) == len(from_sql) == 12
        for e, s in zip(from_es, from_sql):
            assert e[:5] == s[:5]
            assert e[5] == pytest.approx(s[5], rel=1e-12)

        # The 1h rollups, each window one document under its key, reach the same numbers.
        def rollups_match():
            es.request("POST", f"/{prefix}-rollups-*/_refresh")
            body = es.search(f"{prefix}-rollups-*", {"size": 100, "query": {"bool": {"filter": [
                {"term": {"resolution": "1h"}}, {"term": {"field": "temperature"}}]}}})
            got = sorted((int(h["_source"]["sensor_id"]), epoch_ms(h["_source"]["window_start"]), h["_source"]["count"],
                          h["_source"]["min"], h["_source"]["max"]) for h in body["hits"]["hits"])
            return got if got == [s[:5] for s in from_sql] else None
        wait_for(rollups_match, timeout=60, what="1h rollups equal to the SQL answers")
        status, mapping = es.request("GET", f"/{prefix}-rollups-2024.01.21/_mapping")
        props = mapping[f"{prefix}-rollups-2024.01.21"]["mappings"]["properties"]
        assert (props["window_start"]["type"], props["sensor_id"]["type"], props["mean"]["type"]) == ("date", "keyword", "double")

        # The forecasts: hours 10:00 and 11:00 closed (12:00 is not final yet), so each sensor's
        # temperature has two issues of 24 hours; each target hour is one document, equal to the
        # topic's record.
        def forecast_documents():
            records = log_records(run.data_dir, "forecasts")
            if len(records) < 8 or es.count(f"{prefix}-forecasts-*") < 24 * len(records):
                return None
            return records
        records = wait_for(forecast_documents, timeout=60, what="8 forecast issues, 192 documents in Elasticsearch")
        assert len(records) == 8 and es.count(f"{prefix}-forecasts-*") == 192
        want = {}
        for r in records:
            v = r["value"]
            issued = epoch_ms(v["issued_at"]) * 1000
            for h in v["hours"]:
                doc = {"@timestamp": h["target_hour"], "sensor_id": str(v["sensor_id"]), "field": v["field"],
                       "issued_at": v["issued_at"], "target_hour": h["target_hour"],
                       "lead_hours": (epoch_ms(h["target_hour"]) * 1000 - issued) // 3_600_000_000,
                       "model": v["model"], "day_ahead": v["day_ahead"]}
                doc.update({k: h[k] for k in ("value", "lower", "upper") if h[k] is not None})
                want[f"{v['sensor_id']}/{v['field']}/{issued}/{epoch_ms(h['target_hour']) * 1000}"] = doc
        body = es.search(f"{prefix}-forecasts-*", {"size": 1000})
        assert {h["_id"]: h["_source"] for h in body["hits"]["hits"]} == want
        assert sorted({h["_index"] for h in body["hits"]["hits"]}) == [f"{prefix}-forecasts-2024.01.21", f"{prefix}-forecasts-2024.01.22"]
        status, mapping = es.request("GET", f"/{prefix}-forecasts-2024.01.21/_mapping")
        props = mapping[f"{prefix}-forecasts-2024.01.21"]["mappings"]["properties"]
        assert {k: props[k]["type"] for k in ("@timestamp", "issued_at", "target_hour", "sensor_id", "field", "model",
                                              "lead_hours", "value", "day_ahead")} == {
            "@timestamp": "date", "issued_at": "date", "target_hour": "date", "sensor_id": "keyword", "field": "keyword",
            "model": "keyword", "lead_hours": "integer", "value": "double", "day_ahead": "boolean"}
        assert run.metric('mare_sink_elasticsearch_documents_written_total{topic="forecasts"}') >= 192


@ON_TWO
def test_kill9_of_the_sink_mid_stream_leaves_every_reading_exactly_once(tmp_path, es):
    prefix = "kill"
    n = 20000
    produce(tmp_path, [buoy(i, 1 + i % 8, T0 + i // 8) for i in range(n)])
    sink = Sink(tmp_path, es, prefix, extra=["sink.elasticsearch.batch=250"])
    wait_for(lambda: (sink.metric('mare_sink_elasticsearch_documents_written_total{topic="raw"}') or 0) >= 4000,
             what="the sink to be mid-stream")
    sink.kill9()
    saved = positions(es, prefix)
    assert 0 < saved < n, f"killed mid-stream: {saved} of {n} positions saved"
    sink = Sink(tmp_path, es, prefix, extra=["sink.elasticsearch.batch=250"])
    wait_for(lambda: positions(es, prefix) == n, timeout=120, what="every position saved")
    assert es.count(f"{prefix}-readings-*") == n
    # Every seq there once: n documents, no seq twice, and their sum that of 0..n-1.
    body = es.search(f"{prefix}-readings-*", {"size": 0, "aggs": {"sum": {"sum": {"field": "seq"}},
                                                                  "twice": {"terms": {"field": "seq", "min_doc_count": 2}}}})
    assert body["aggregations"]["sum"]["value"] == n * (n - 1) / 2
    assert body["aggregations"]["twice"]["buckets"] == []
    wait_for(lambda: sink.metric('mare_sink_elasticsearch_lag_records{topic="raw"}') == 0, what="lag 0")
    sink.stop()


@ON_TWO
def test_node_stopped_then_restarted_loses_nothing(tmp_path, es):
    prefix = "outage"
    first = [buoy(i, 1 + i % 4, T0 + i) for i in range(3000)]
    produce(tmp_path, first)
    sink = Sink(tmp_path, es, prefix, extra=["sink.elasticsearch.batch=500"])
    sink.deliver_across_an_outage(es, lambda: positions(es, prefix), first=3000, more=3000)
    assert es.count(f"{prefix}-readings-*") == 6000
    body = es.search(f"{prefix}-readings-*", {"size": 0, "aggs": {"sum": {"sum": {"field": "seq"}}}})
    assert body["aggregations"]["sum"]["value"] == 6000 * 5999 / 2
    sink.stop()


@ON_TWO
def test_items_refused_for_now_are_sent_again_while_the_position_holds(tmp_path, es):
    """Readings of two days, interleaved in every batch; the second day's index is made first with
    its primary shard bound to a node that does not exist, so each of its items waits out the bulk
    timeout and is answered 503 unavailable_shards_exception, while the first day's are written.
    The sink sends the refused items again and again, its position held; once the shard may be
    assigned, they go through, and every reading is there once."""
    prefix = "unassigned"
    n = 800
    # Groups of 4 (one per sensor) alternate between the days: every partition's batch has both.
    produce(tmp_path, [buoy(i, 1 + i % 4, T0 + i // 8 + (86400 if (i // 4) % 2 else 0)) for i in range(n)])
    blocked = f"{prefix}-readings-2024.01.22"
    status, body = es.request("PUT", f"/{blocked}?wait_for_active_shards=0", {"settings": {
        "number_of_shards": 1, "number_of_replicas": 0, "index.routing.allocation.require._name": "no-such-node"}})
    assert status == 200, body
    sink = Sink(tmp_path, es, prefix, extra=["sink.elasticsearch.batch=200", 'sink.elasticsearch.bulk_timeout="1s"'])

    def metric(what):
        return sink.metric(f'mare_sink_elasticsearch_{what}{{topic="raw"}}') or 0
    # Two rounds of refusals of the two batches in flight (100 blocked items each).
    wait_for(lambda: metric("items_retried_total") >= 400, what="the refused items sent again")
    assert positions(es, prefix) == 0
    assert metric("lag_records") == n
    assert metric("up") == 1  # every request answered: the items, not the node, failed
    assert es.count(f"{prefix}-readings-2024.01.21") >= 200  # the first day's items of both batches
    # (Nothing asked of the blocked index meanwhile: a search or refresh there waits a minute for its shard.)
    out = sink.output()
    assert "503" in out and "unavailable_shards_exception" in out and blocked in out, out[-2000:]

    status, body = es.request("PUT", f"/{blocked}/_settings", {"index.routing.allocation.require._name": None})
    assert status == 200, body
    delivered_once(es, prefix, n)
    assert es.count(blocked) == n // 2
    wait_for(lambda: metric("lag_records") == 0, what="lag 0")
    assert read_dead_letters(os.path.join(str(tmp_path), "dead-letter-elasticsearch.log")) == []
    sink.stop()


@ON_TWO
def test_bulk_requests_answered_429_whole_are_sent_again_while_the_position_holds(tmp_path, es):
    """The node's in-flight requests breaker (network.breaker.inflight_requests.limit, dynamic)
    set below a bulk request of readings but above the sink's template and positions' index:
    every bulk request of readings is answered 429 circuit_breaking_exception whole, as a node
    out of indexing memory answers (indexing_pressure.memory.limit: the same 429, but a node
    setting, which would need two restarts of the node). The sink counts each item as refused
    for now and sends them again and again, its position held, nothing dead-lettered; once the
    limit is lifted every reading is there once."""
    prefix = "toomany"
    n = 800
    produce(tmp_path, [buoy(i, 1 + i % 4, T0 + i // 4) for i in range(n)])

    def breaker(limit):
        status, body = es.request("PUT", "/_cluster/settings", {"transient": {"network.breaker.inflight_requests.limit": limit}})
        assert status == 200, body
    # The breaker counts a request's bytes twice (its overhead): 4 kB lets a request of 2 kB
    # through (the template, 0.7 kB; the positions' index and the positions), not 10 readings
    # (2.4 kB; a batch of 200 is 48 kB).
    breaker("4kb")
    try:
        sink = Sink(tmp_path, es, prefix, extra=["sink.elasticsearch.batch=200"])

        def metric(what):
            return sink.metric(f'mare_sink_elasticsearch_{what}{{topic="raw"}}') or 0
        wait_for(lambda: metric("items_retried_total") >= 2 * n, what="every item refused twice and sent again")
        assert positions(es, prefix) == 0
        wait_for(lambda: metric("lag_records") == n, what="a lag of every record")
        assert metric("up") == 1  # answered, if with a 429
        assert es.count(f"{prefix}-readings-*") == 0
        out = sink.output()
        assert "429" in out and "circuit_breaking_exception" in out and "in_flight_requests" in out, out[-2000:]
    finally:
        breaker(None)
    delivered_once(es, prefix, n)
    wait_for(lambda: metric("lag_records") == 0, what="lag 0")
    assert metric("documents_written_total") == n
    assert read_dead_letters(os.path.join(str(tmp_path), "dead-letter-elasticsearch.log")) == []
    sink.stop()


# Elasticsearch 7.10.2 as the runner has it (its OSS modules) has no data streams: its templates
# refuse "data_stream" (x-pack had them in 7.x).
@pytest.mark.parametrize("es", ["opensearch", "elasticsearch-8"], indirect=True)
def test_readings_into_a_data_stream_arrive_once_and_a_resend_is_already_there(tmp_path, es):
    """index_mode data_stream: the readings go to the data stream <prefix>-readings-stream as
    `create`s, with the mappings of the daily indices. With its positions deleted, a second sink
    sends every reading again: each is answered 409 (its id is there) and counted as already
    there, and the stream still holds each reading once."""
    prefix = "stream"
    n = 2000
    produce(tmp_path, [buoy(i, 1 + i % 4, T0 + i) for i in range(n)])
    sets = ['sink.elasticsearch.index_mode="data_stream"', "sink.elasticsearch.batch=500"]
    sink = Sink(tmp_path, es, prefix, extra=sets)
    delivered_once(es, prefix, n)
    # The stream's one backing index (named .ds-<stream>-[<date>-]000001), with the template's mappings.
    status, mapping = es.request("GET", f"/{prefix}-readings-stream/_mapping")
    assert status == 200, mapping
    (backing,) = mapping
    assert backing.startswith(f".ds-{prefix}-readings-stream-") and backing.endswith("-000001"), backing
    props = mapping[backing]["mappings"]["properties"]
    assert {k: props[k]["type"] for k in ("@timestamp", "location", "sensor_id", "temperature", "status")} == {
        "@timestamp": "date", "location": "geo_point", "sensor_id": "keyword", "temperature": "double", "status": "keyword"}
    status, _ = es.request("GET", f"/{prefix}-readings-2024.01.21")
    assert status == 404  # no daily index
    written = 'mare_sink_elasticsearch_documents_written_total{topic="raw"}'
    already = 'mare_sink_elasticsearch_documents_already_there_total{topic="raw"}'
    assert sink.metric(already) == 0
    sink.stop()

    # The positions deleted one by one (Elasticsearch 8's test node has no _delete_by_query: a module's).
    es.request("POST", f"/{prefix}-sink-offsets/_refresh")
    saved = es.search(f"{prefix}-sink-offsets", {"size": 100})["hits"]["hits"]
    assert saved
    for h in saved:
        status, body = es.request("DELETE", f"/{prefix}-sink-offsets/_doc/{h['_id']}?refresh=true")
        assert status == 200, body
    sink = Sink(tmp_path, es, prefix, extra=sets)
    delivered_once(es, prefix, n)
    wait_for(lambda: sink.metric(already) == n, what="every resent reading counted as already there")
    assert sink.metric(written) == n
    assert sink.metric('mare_sink_elasticsearch_documents_dead_lettered_total{topic="raw"}') == 0
    sink.stop()


@ON_TWO
def test_a_document_elasticsearch_refuses_goes_to_the_dead_letter_file_with_its_reason(tmp_path, es):
    prefix = "mapping"
    readings = [buoy(i, 1, T0 + i) for i in range(12)]
    for r in readings:
        r["wave_height"] = 1.5
    readings[7]["wave_height"] = "calm"  # text where the index already has a double
    records = [json.dumps(r) for r in readings]
    records.insert(3, json.dumps({"sensor_id": 1, "temperature": 3}))  # no timestamp: unreadable
    produce(tmp_path, [json.loads(r) for r in records])
    sink = Sink(tmp_path, es, prefix, extra=["sink.elasticsearch.batch=5"])
    wait_for(lambda: positions(es, prefix) == 13, what="every record passed")
    assert es.count(f"{prefix}-readings-*") == 11
    status, _ = es.request("GET", f"/{prefix}-{DAY_INDEX}/_doc/1-{(T0 + 7) * 1_000_000}")
    assert status == 404
    letters = read_dead_letters(os.path.join(str(tmp_path), "dead-letter-elasticsearch.log"))
    assert [(s, r) for s, r, _, _ in letters] == [("elasticsearch", "unreadable"), ("elasticsearch", "elasticsearch_rejected")]
    assert "missing_timestamp" in letters[0][2]
    assert json.loads(letters[0][3]) == {"sensor_id": 1, "temperature": 3}
    assert letters[1][2].startswith(f"400 {prefix}-{DAY_INDEX} 1-{(T0 + 7) * 1_000_000}: mapper_parsing_exception")
    assert "wave_height" in letters[1][2], letters[1][2]
    assert json.loads(letters[1][3]) == readings[7]
    assert sink.metric('mare_sink_elasticsearch_documents_dead_lettered_total{topic="raw"}') == 2
    sink.stop()


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    """One Kafka broker for the Kafka case on both servers: started by the first that asks for it,
    stopped with the module. A member's session as short as 3 s (the broker's floor is 6 s by
    default), so that a dead sink's partitions are taken over soon."""
    from kafka_server import KafkaCluster
    with KafkaCluster(tmp_path_factory.mktemp("kafka"), properties={"group.min.session.timeout.ms": 1000}) as cluster:
        yield cluster


def saved_positions(es, prefix):
    """partition -> the sink's saved next offset of the raw topic."""
    es.request("POST", f"/{prefix}-sink-offsets/_refresh")
    status, body = es.request("POST", f"/{prefix}-sink-offsets/_search", {"size": 100, "query": {"term": {"topic": "raw"}}})
    return {h["_source"]["partition"]: h["_source"]["next_offset"] for h in body["hits"]["hits"]} if status == 200 else {}


@ON_TWO
def test_on_kafka_the_sink_follows_the_raw_topic_exactly_once_across_a_restart_shared_by_two_and_one_dead(tmp_path, es, kafka):
    # A topic and a consumer group per server (the group's name hashes the URL, which may be the
    # same, and the index prefix): the broker outlives the first server's case.
    prefix = f"kafka-{es.NAME}"
    log_sets = ["log.kind=kafka", f'log.kafka.brokers="{kafka.bootstrap}"', "log.kafka.replication_factor=1",
                f'log.kafka.topic_prefix="{es.NAME}-"', 'log.kafka.client."session.timeout.ms"="3000"']
    sets = [*log_sets, "sink.elasticsearch.batch=300"]

    def produce_kafka(start, end):
        produce_on_kafka(kafka, f"{es.NAME}-raw", [buoy(i, 1 + i % 6, T0 + i) for i in range(start, end)])

    # The topic made by mare (3 partitions) with the first readings, the others added by kcat.
    mare("log", "produce", "raw", "--partitions", "3", *[a for s in log_sets for a in ("--set", s)],
         input="".join(f"{r['sensor_id']}\t{json.dumps(r)}\n" for r in (buoy(i, 1 + i % 6, T0 + i) for i in range(6))))
    produce_kafka(6, 4000)
    sink = Sink(tmp_path, es, prefix, extra=sets)
    written = 'mare_sink_elasticsearch_documents_written_total{topic="raw"}'
    wait_for(lambda: (sink.metric(written) or 0) >= 600, timeout=120, what="the sink to be mid-stream")
    sink.kill9()
    produce_kafka(4000, 5000)
    sink = Sink(tmp_path, es, prefix, extra=sets)
    delivered_once(es, prefix, 5000)
    status, saved = es.request("GET", f"/{prefix}-sink-offsets/_search?size=10")
    assert sorted(h["_id"] for h in saved["hits"]["hits"]) == ["elasticsearch.raw.0", "elasticsearch.raw.1", "elasticsearch.raw.2"]

    # A second sink of the same config joins the group: the two split the partitions (2 and
    # 1), and what is produced next reaches Elasticsearch once, through both.
    (tmp_path / "second").mkdir()
    second = Sink(tmp_path / "second", es, prefix, extra=sets)
    wait_for(lambda: sorted(sink.owned() + second.owned()) == [0, 1, 2] and sink.owned() and second.owned(),
             timeout=60, what="the two sinks to split the partitions")
    produce_kafka(5000, 8000)
    delivered_once(es, prefix, 8000)
    assert (second.metric(written) or 0) > 0, second.output()[-2000:]

    # The one with two partitions killed -9 while it writes more: after its session (3 s) the
    # other takes its partitions over from the saved positions, and every reading is there once.
    dead, survivor = (sink, second) if len(sink.owned()) == 2 else (second, sink)
    dead_parts, before, rebalances = dead.owned(), dead.metric(written), survivor.metric(
        'mare_sink_elasticsearch_rebalances_total{topic="raw"}')
    total = 28000
    produce_kafka(8000, total)
    wait_for(lambda: dead.metric(written) >= before + 1000, what="the sink to be mid-stream")
    dead.kill9()
    at_kill = saved_positions(es, prefix)
    wait_for(lambda: survivor.owned() == [0, 1, 2], timeout=30, what="the survivor to own every partition")
    assert survivor.metric('mare_sink_elasticsearch_rebalances_total{topic="raw"}') > rebalances
    delivered_once(es, prefix, total)
    end = saved_positions(es, prefix)
    assert any(at_kill[p] < end[p] for p in dead_parts), f"killed mid-stream: {at_kill} of {end} ({dead_parts} its)"
    wait_for(lambda: survivor.metric('mare_sink_elasticsearch_lag_records{topic="raw"}') == 0, what="lag 0")
    survivor.stop()
