"""The dashboard of a pipeline split into processes on Kafka: `mare ingest`, `mare stream` and
`mare store` apart (as on separate machines), the dashboard served by `mare store`. Each role
publishes its status on the status topic (docs/formats/role-status.md), and the pipeline view
of `mare store` shows the ingest role's accepted readings, the rollups' figures and lag and the
store's rows; killed, the stream processor is shown silent ("no status for N s") with its last
figures, and a role stopped on purpose leaves the list. Checked in the /api/v1/pipeline JSON and
in Debian's Chromium."""
import json
import os
import shutil
import signal
import subprocess
import urllib.request

import pytest

from harness import wait_for
from kafka_server import KafkaCluster
from sink_helpers import no_sink_outlives_its_test  # noqa: F401 (autouse: kills the roles a failed test leaves)
from test_dashboard import ARTIFACTS, CHROMIUM, REPO
from test_kafka import on_kafka, post_all, readings
from test_kafka_roles import Proc, Role, wait_shared


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    with KafkaCluster(tmp_path_factory.mktemp("kafka")) as cluster:
        yield cluster


def pipeline(store):
    with urllib.request.urlopen(f"{store.http_url}/api/v1/pipeline", timeout=10) as r:
        return json.loads(r.read())["now"]


def roles(p):
    return {f'{r["role"]}/{r["instance"]}': r for r in p["roles"]}


def browse(node, tmp_path, cfg):
    cfg_path = tmp_path / f'{cfg["shot"]}.json'
    cfg_path.write_text(json.dumps(cfg))
    p = subprocess.run([node, os.path.join(os.path.dirname(__file__), "test_dashboard_split.mjs"), str(cfg_path)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"the browser script failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    seen = json.loads(p.stdout.strip().splitlines()[-1])
    assert "failure" not in seen, seen
    assert seen["errors"] == [], seen["errors"]
    return seen


def test_the_dashboard_of_a_split_pipeline_shows_every_role(kafka, tmp_path):
    node = shutil.which("node")
    assert node, "node is missing (scripts/setup.sh installs it)"
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing (scripts/setup.sh installs Debian's chromium)"
    assert os.path.isdir(os.path.join(REPO, "web/node_modules/playwright-core")), \
        "web/node_modules/playwright-core is missing: the build runs npm ci in web/"
    prefix = "split."
    sets = on_kafka(kafka, prefix)
    rows = readings(range(1, 9), 40, seed=5)
    with Role("ingest", tmp_path / "ingest", sets) as ingest, \
            Role("store", tmp_path / "store", [*sets, 'store.flush_interval="2s"']) as store:
        stream = Proc(["stream", "--member", "a"], tmp_path / "a", sets)
        wait_shared([stream])
        post_all(ingest, rows)
        store.wait_readings(len(rows))

        # The pipeline JSON of `mare store`: the other roles' figures merged with its own.
        def settled():
            p = pipeline(store)
            lags = {l["consumer"]: l["records"] for l in p["lags"]}
            up = {k for k, r in roles(p).items() if not r["stale"]}
            done = (p["accepted_total"] == len(rows) and p["store"]["rows"] == len(rows)
                    and p["rollup"]["readings"] == len(rows) and lags.get("rollup") == 0 and lags.get("store") == 0
                    and {"ingest", "stream", "store"} <= {k.split("/")[0] for k in up})
            return p if done else None
        p = wait_for(settled, 60, what="every role's figures in the pipeline view of mare store")
        # Every source of the ingest role, which the store role runs none of.
        by_source = {s["source"]: s for s in p["sources"]}
        assert {"http", "udp", "tcp", "unix"} <= set(by_source), p["sources"]
        assert by_source["http"]["accepted"] == len(rows) and by_source["udp"]["accepted"] == 0, p["sources"]
        assert p["rollup"]["watermark"] is not None and p["rollup"]["emitted"] > 0, p["rollup"]
        listed = roles(p)
        assert "stream/a" in listed and listed["stream/a"]["age_s"] < 10, listed
        local = [k for k, r in listed.items() if r["local"]]
        assert len(local) == 1 and local[0].startswith("store/"), listed
        print("pipeline roles:", {k: (r["age_s"], r["stale"]) for k, r in listed.items()})

        # The same in the browser: every stage filled.
        seen = browse(node, tmp_path, {"url": store.http_url, "chromium": CHROMIUM, "artifacts": ARTIFACTS,
                                       "shot": "pipeline-split", "waitFor": "stages", "roles": 3})
        assert {r[0] for r in seen["roles"]} == {"ingest", "stream", "store"}, seen["roles"]
        assert all(r[3] == "up" for r in seen["roles"]), seen["roles"]
        sources = {r[0]: r for r in seen["sources"]}
        assert sources["http"][2] == str(len(rows)), seen["sources"]  # accepted
        assert seen["rollups"]["kv"]["readings"] == str(len(rows)), seen["rollups"]
        assert seen["rollups"]["kv"]["watermark"] != "—", seen["rollups"]
        assert seen["store"]["kv"]["readings"] == str(len(rows)), seen["store"]
        lags = dict((l[0], l[1]) for l in seen["lags"])
        assert lags["rollup"] == "0" and lags["store"] == "0", seen["lags"]  # the rollups' from mare stream
        assert seen["staleRoles"] == [], seen["staleRoles"]

        # Killed, the stream processor says nothing more: shown silent, its last figures kept.
        stream.proc.send_signal(signal.SIGKILL)
        stream.proc.wait()
        p = wait_for(lambda: (lambda p: p if roles(p)["stream/a"]["stale"] else None)(pipeline(store)), 30,
                     what="the killed stream processor shown stale")
        # Stale past 10 s; age_s is cut to tenths, so 10.05 s shows as 10.0.
        assert roles(p)["stream/a"]["age_s"] >= 10, roles(p)["stream/a"]
        assert p["rollup"]["readings"] == len(rows), p["rollup"]
        seen = browse(node, tmp_path, {"url": store.http_url, "chromium": CHROMIUM, "artifacts": ARTIFACTS,
                                       "shot": "pipeline-split-stale", "waitFor": "stale"})
        assert len(seen["staleRoles"]) == 1 and seen["staleRoles"][0].startswith("stream a on "), seen["staleRoles"]
        assert "no status for" in seen["staleRoles"][0], seen["staleRoles"]
        assert any("no status for" in n for n in seen["rollups"]["notes"]), seen["rollups"]
        assert seen["rollups"]["kv"]["readings"] == str(len(rows)), seen["rollups"]
        stale_row = [r for r in seen["roles"] if r[0] == "stream"][0]
        assert stale_row[3].startswith("no status for"), seen["roles"]
        print("stale:", seen["staleRoles"][0])

        # Stopped on purpose, the ingest role says so and leaves the list.
        ingest.stop()
        wait_for(lambda: not any(k.startswith("ingest/") for k in roles(pipeline(store))), 30,
                 what="the stopped ingest role gone from the list")
