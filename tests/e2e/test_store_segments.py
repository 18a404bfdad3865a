"""The store's segment layout with a real archive: replaying a year of hourly NDBC readings into
`mare run` flushes it as one segment file (not one per hour), so the stop is quick; a kill -9
before or after that flush loses no reading and counts none twice; queries over the year's
days answer as the archive says (docs/formats/store.md)."""
import glob
import os
import time

from harness import TEST_DATA, MareRun, mare
from harness import wait_for
from test_store import rows

NDBC = os.path.join(TEST_DATA, "ndbc_44005_2012.txt")
READINGS = 8347  # the archive's hourly observations
SENSOR = 44005   # from the file's name


def replay_year(run):
    mare("replay", NDBC, "--target", f"unix://{run.unix_path}", "--speed", "0")
    wait_for(lambda: run.metric("mare_store_rows_added_total") == READINGS, timeout=60, what="the store to read the year")


def segment_files(data_dir):
    return glob.glob(os.path.join(str(data_dir), "store", "*.seg"))


def check_year(run):
    assert rows(run, "SELECT count(*), min(ts), max(ts) FROM readings") == [[READINGS, "2011-12-31T23:50:00Z", "2012-12-14T05:50:00Z"]]
    # One day inside the year, a range across midnight, one sensor, the latest reading.
    assert rows(run, "SELECT count(*) FROM readings WHERE ts >= '2012-03-01' AND ts < '2012-03-02'") == [[24]]
    assert rows(run, "SELECT count(*) FROM readings WHERE ts >= '2012-03-01 22:00' AND ts < '2012-03-02 02:00'") == [[4]]
    assert rows(run, f"SELECT count(*) FROM readings WHERE sensor_id = {SENSOR}") == [[READINGS]]
    latest = rows(run, "SELECT sensor_id, ts FROM readings LATEST ON ts PARTITION BY sensor_id")
    assert latest == [[SENSOR, "2012-12-14T05:50:00Z"]]


def test_a_replayed_year_is_flushed_as_one_segment_and_stops_quickly(tmp_path):
    run = MareRun(tmp_path, extra=['store.flush_interval="1h"']).start()
    replay_year(run)
    assert segment_files(tmp_path) == [], "nothing flushed before the stop"
    start = time.monotonic()
    assert run.stop() == 0, run.read_output()
    stopped = time.monotonic() - start
    files = segment_files(tmp_path)
    assert len(files) == 1, files
    # One segment per hour took 8 s here (one fsync per hour of the year); one takes well under 1 s
    # unloaded. The bound leaves room for the sanitizer build on a busy machine.
    assert stopped < 15, f"mare run took {stopped:.1f} s to stop"
    with MareRun(tmp_path) as run:
        check_year(run)
        time.sleep(1.5)
        assert run.metric("mare_store_rows_added_total") == 0, "the restart resumed after the flushed position"


def test_a_kill_before_or_after_the_years_flush_loses_and_doubles_nothing(tmp_path):
    # Before: the memtable is lost, the raw log has the year and the store reads it again.
    run = MareRun(tmp_path, extra=['store.flush_interval="1h"']).start()
    replay_year(run)
    run.kill9()
    assert segment_files(tmp_path) == []
    run = MareRun(tmp_path, extra=['store.flush_interval="1s"']).start()
    wait_for(lambda: run.metric("mare_store_rows_added_total") == READINGS, timeout=60, what="the log read again")
    wait_for(lambda: run.metric("mare_store_memtable_rows") == 0 and segment_files(tmp_path), timeout=30, what="a flush")
    check_year(run)
    run.kill9()
    # After: the segment holds the year and its position; nothing is read again.
    with MareRun(tmp_path) as run:
        time.sleep(1.5)
        assert run.metric("mare_store_rows_added_total") == 0
        check_year(run)
    assert len(segment_files(tmp_path)) == 1
