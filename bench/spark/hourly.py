#!/usr/bin/env python3
"""The observatory's way, as bench/kafka.py's peer: Spark Structured Streaming (PySpark,
master local[2]) computing hourly count/min/max/mean per sensor and numeric field from a Kafka
topic of readings (mare's raw format: one JSON reading per message), in event time (the
reading's own timestamp) with a watermark, written in update mode to a Kafka topic: one message
per (sensor, hour) whenever a batch changed it, keyed by the sensor id, e.g.

    {"sensor_id": 7, "window_start": "2024-01-21T10:00:00.000Z", "count": 3600,
     "temperature_count": 3600, "temperature_min": 12.1, "temperature_max": 14.9, "temperature_mean": 13.5, ...}

Run by bench/kafka.py, which times it; it prints one JSON object per line on stdout:
  {"event": "ready", "jvm_pid": ...}          the session is up (JVM start-up is not timed)
  {"event": "warm", ...}                       with --warmup TOPIC: the same query ran over TOPIC (untimed)
  {"event": "started", "cpu": ...}             the query is started
  {"event": "done", "cpu": ..., ...}           --trigger available-now: every reading consumed and written
In the latency modes (--trigger 5s, --trigger 0s) it runs until its standard input closes, after
printing {"event": "running"} once the first batch has completed.
"cpu" is the CPU seconds used so far by this driver and Spark's JVM together."""
import argparse
import glob
import json
import os
import sys
import time


def cpu_seconds(pid):
    """utime + stime of a process (every thread), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def say(**kv):
    print(json.dumps(kv), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--input", required=True, help="topic of readings")
    ap.add_argument("--output", required=True, help="topic for the hourly results (must exist)")
    ap.add_argument("--fields", required=True, help="numeric fields, comma-separated")
    ap.add_argument("--jars", required=True, help="directory of the Kafka connector's jars (bench/spark/pom.xml)")
    ap.add_argument("--checkpoint", required=True, help="a fresh directory for the query's checkpoint")
    ap.add_argument("--trigger", default="available-now", help="available-now, or a processing-time interval: 5s, 0s")
    ap.add_argument("--watermark", default="10 minutes", help="allowed lateness (mare's rollup.lateness is 10 min)")
    ap.add_argument("--shuffle-partitions", type=int, default=2)
    ap.add_argument("--expect", type=int, default=0, help="available-now: fail unless this many readings were read")
    ap.add_argument("--warmup", help="a topic of readings to run the same query over first, untimed (noop sink)")
    args = ap.parse_args()

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    jars = sorted(glob.glob(os.path.join(args.jars, "*.jar")))
    if not any("spark-sql-kafka" in j for j in jars):
        sys.exit(f"no spark-sql-kafka jar in {args.jars}: run scripts/setup-bench.sh")
    spark = (SparkSession.builder.master("local[2]").appName("mare-bench-hourly")
             .config("spark.jars", ",".join(jars))
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.shuffle.partitions", str(args.shuffle_partitions))
             # Its scratch files beside the checkpoint, in bench/kafka.py's temporary directory.
             .config("spark.local.dir", os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "local"))
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.streaming.numRecentProgressUpdates", "100000")
             .getOrCreate())
    spark.sparkContext.setLogLevel("WARN")
    jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()

    def cpu():
        return cpu_seconds(os.getpid()) + cpu_seconds(jvm_pid)

    say(event="ready", jvm_pid=jvm_pid, spark=spark.version)

    fields = [f for f in args.fields.split(",") if f]
    schema = StructType([StructField("timestamp", StringType()), StructField("sensor_id", LongType())] +
                        [StructField(f, DoubleType()) for f in fields])

    def hourly_of(topic):
        """The query: readings of topic -> (key, value) rows of hourly results."""
        readings = (spark.readStream.format("kafka")
                    .option("kafka.bootstrap.servers", args.bootstrap)
                    .option("subscribe", topic)
                    .option("startingOffsets", "earliest")
                    .load()
                    .select(F.from_json(F.col("value").cast("string"), schema).alias("r"))
                    .select("r.*")
                    # The observatory's "2024-01-21 10:06:04.095931" is UTC (the session's zone).
                    .withColumn("ts", F.to_timestamp("timestamp")))
        aggs = [F.count(F.lit(1)).alias("count")]
        for f in fields:
            aggs += [F.count(f).alias(f + "_count"), F.min(f).alias(f + "_min"), F.max(f).alias(f + "_max"),
                     F.avg(f).alias(f + "_mean")]
        hourly = (readings.withWatermark("ts", args.watermark)
                  .groupBy(F.window("ts", "1 hour").alias("w"), "sensor_id")
                  .agg(*aggs))
        columns = [F.col("sensor_id"), F.date_format("w.start", "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").alias("window_start"),
                   F.col("count")] + [F.col(c) for f in fields for c in (f + "_count", f + "_min", f + "_max", f + "_mean")]
        return hourly.select(F.col("sensor_id").cast("string").alias("key"), F.to_json(F.struct(*columns)).alias("value"))

    if args.warmup:
        # The same query over another topic, discarding its rows: the JVM's JIT warm, as in a
        # streaming job that has been running for a while.
        t = time.time()
        (hourly_of(args.warmup).writeStream.format("noop").outputMode("update").trigger(availableNow=True)
         .option("checkpointLocation", args.checkpoint + "-warmup").start().awaitTermination())
        say(event="warm", wall=time.time() - t)

    writer = (hourly_of(args.input).writeStream.format("kafka")
              .option("kafka.bootstrap.servers", args.bootstrap)
              .option("topic", args.output)
              .option("checkpointLocation", args.checkpoint)
              .outputMode("update"))
    if args.trigger == "available-now":
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=args.trigger.replace("s", " seconds") if args.trigger[-1] == "s" else args.trigger)

    t0, c0 = time.time(), cpu()
    query = writer.start()
    say(event="started", time=t0, cpu=c0)
    if args.trigger == "available-now":
        query.awaitTermination()
        t1, c1 = time.time(), cpu()
        progress = query.recentProgress
        rows = sum(p["numInputRows"] for p in progress)
        say(event="done", time=t1, cpu=c1, wall=t1 - t0, cpu_used=c1 - c0, input_rows=rows, batches=len(progress),
            batch_ms=[p["durationMs"].get("triggerExecution", 0) for p in progress])
        if args.expect and rows != args.expect:
            sys.exit(f"spark read {rows} readings, expected {args.expect}")
    else:
        deadline = time.time() + 120
        while query.lastProgress is None and time.time() < deadline:
            if query.exception():
                raise query.exception()
            time.sleep(0.1)
        say(event="running")
        sys.stdin.read()  # until bench/kafka.py closes it
        progress = query.recentProgress
        query.stop()
        busy = [p for p in progress if p["numInputRows"] > 0]
        say(event="stopped", batches=len(busy),
            batch_ms=[p["durationMs"].get("triggerExecution", 0) for p in busy],
            input_rows=sum(p["numInputRows"] for p in progress))
    spark.stop()


if __name__ == "__main__":
    main()
