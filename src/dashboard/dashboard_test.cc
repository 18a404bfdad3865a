// The dashboard's server side: rejects counted per sensor from a dead-letter file written piece
// by piece, the embedded files, each sensor's health, the pipeline's health read from the
// registry, and the HTTP routes (the page, a snapshot, the live stream) on a real server.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/metrics.h"
#include "common/scratch_dir.h"
#include "common/time.h"
#include "dashboard/assets.h"
#include "dashboard/dashboard.h"
#include "dashboard/pipeline.h"
#include "dashboard/rejects.h"
#include "dashboard/sensor_health.h"
#include "dashboard/static_files.h"
#include "log/log_metrics.h"
#include "processors/forecast/forecast_metrics.h"
#include "processors/rollup/rollup_metrics.h"
#include "query/query_metrics.h"
#include "reading/dead_letter_metrics.h"
#include "server/http_server.h"
#include "sinks/mariadb/sink_metrics.h"
#include "sources/source_metrics.h"
#include "store/store_metrics.h"

namespace mare::dashboard {
namespace {

// The pipeline view reads the registry through the names the components register their metrics
// with: what each component counts shows in its place, refreshed gauges included.
TEST(PipelineHealth, ShowsWhatTheComponentsCount) {
  metrics::Registry r;
  r.GetCounter(source_metrics::kReadingsReceived, {{"source", "udp"}}).Add(10);
  r.GetCounter(source_metrics::kReadingsAccepted, {{"source", "udp"}}).Add(7);
  r.GetCounter(source_metrics::kReadingsRejected, {{"source", "udp"}, {"reason", "not_json"}}).Add(2);
  r.GetCounter(source_metrics::kReadingsRejected, {{"source", "udp"}, {"reason", "missing_sensor_id"}}).Add(1);
  r.GetCounter(source_metrics::kReadingsReceived, {{"source", "tcp"}}).Add(5);
  r.GetGauge(source_metrics::kOpenConnections, {{"source", "tcp"}}).Set(3);
  r.GetCounter(source_metrics::kUdpDatagramsDropped).Add(4);
  r.GetCounter(dead_letter_metrics::kReadingsWritten).Add(3);
  auto& disk = r.GetGauge(log_metrics::kDiskBytes, {{"topic", "raw"}});
  r.AddRefresher([&disk] { disk.Set(4096); });
  r.GetCounter(log_metrics::kRecordsAppended, {{"topic", "raw"}}).Add(7);
  r.GetGauge(log_metrics::kEndOffset, {{"topic", "raw"}, {"partition", "0"}}).Set(4);
  r.GetGauge(log_metrics::kEndOffset, {{"topic", "raw"}, {"partition", "1"}}).Set(3);
  r.GetGauge(rollup_metrics::kLagRecords).Set(5);
  r.GetGauge(forecast_metrics::kLagRecords).Set(2);
  r.GetGauge(store_metrics::kForecastLagRecords).Set(1);
  r.GetCounter(rollup_metrics::kMessagesEmitted).Add(11);
  r.GetCounter(rollup_metrics::kLateReadingsDropped).Add(1);
  r.GetGauge(store_metrics::kDiskRows).Set(100);
  r.GetGauge(store_metrics::kMemtableRows).Set(20);
  r.GetGauge(store_metrics::kDiskBytes).Set(12345);
  r.GetGauge(sink_metrics::kOpenConnections, {{"sink", "mariadb"}}).Set(1);
  r.GetCounter(sink_metrics::kRowsWritten, {{"sink", "mariadb"}}).Add(9);
  r.GetCounter(query_metrics::kRequests, {{"status", "invalid"}}).Add(2);

  PipelineHealth health(&r, {});
  health.Sample(NowMicros(), 0);
  const std::string json = health.Json();
  for (const char* want : {
           R"("accepted_total":7,"received_total":15,"rejected_total":3)",
           R"({"source":"udp","received":10,"accepted":7,"rejected":3,"accepted_per_s":0,"rejected_per_s":0,"connections":null})",
           R"({"source":"tcp","received":5,"accepted":0,"rejected":0,"accepted_per_s":0,"rejected_per_s":0,"connections":3})",
           R"("rejects_by_reason":{"missing_sensor_id":1,"not_json":2})",
           R"("udp_kernel_drops":4)",
           R"("dead_letter":{"written":3,"dropped":0,"unattributed":0})",
           R"({"topic":"raw","bytes":4096,"records_appended":7,"end_offset":7,"segments_deleted":0})",
           R"("lags":[{"consumer":"rollup","records":5},{"consumer":"forecast","records":2},{"consumer":"store forecasts","records":1}])",
           R"("open_windows":0,"emitted":11,"dropped_late":1,"readings":0)",
           R"("rows":120,"memtable_rows":20,"segments":0,"bytes":12345)",
           R"({"sink":"mariadb","enabled":true,"connected":true,"rows_written":9,"errors":0,"lag_records":0})",
           R"("queries":{"ok":0,"invalid":2,"failed":0})",
       }) {
    EXPECT_NE(json.find(want), std::string::npos) << want << "\n" << json;
  }
}

// Every source that is on is listed, whichever it is (the line protocol's and MQTT's too),
// with its rates over the last samples; one that started since counts from 0.
TEST(PipelineHealth, ShowsEachSourceWithItsRates) {
  metrics::Registry r;
  auto& http_accepted = r.GetCounter(source_metrics::kReadingsAccepted, {{"source", "line_http"}});
  r.GetCounter(source_metrics::kReadingsReceived, {{"source", "line_http"}}).Add(100);
  http_accepted.Add(100);
  r.GetCounter(source_metrics::kReadingsReceived, {{"source", "line_tcp"}});
  r.GetGauge(source_metrics::kOpenConnections, {{"source", "line_tcp"}}).Set(0);
  PipelineHealth health(&r, {});
  const int64_t t0 = 1705834800000000;
  health.Sample(t0, 0);
  EXPECT_NE(health.Json().find(R"({"source":"line_tcp","received":0,"accepted":0,"rejected":0,"accepted_per_s":0,)"
                               R"("rejected_per_s":0,"connections":0})"),
            std::string::npos)
      << health.Json();

  http_accepted.Add(50);
  r.GetCounter(source_metrics::kReadingsReceived, {{"source", "line_http"}}).Add(60);
  r.GetCounter(source_metrics::kReadingsRejected, {{"source", "line_http"}, {"reason", "not_json"}}).Add(10);
  r.GetCounter(source_metrics::kReadingsReceived, {{"source", "mqtt"}}).Add(20);
  r.GetCounter(source_metrics::kReadingsAccepted, {{"source", "mqtt"}}).Add(20);
  r.GetGauge(source_metrics::kMqttUp).Set(1);
  health.Sample(t0 + 5'000'000, 0);
  const std::string json = health.Json();
  for (const char* want : {
           R"({"source":"line_http","received":160,"accepted":150,"rejected":10,"accepted_per_s":10,"rejected_per_s":2,)"
           R"("connections":null})",
           R"({"source":"line_tcp","received":0,"accepted":0,"rejected":0,"accepted_per_s":0,"rejected_per_s":0,)"
           R"("connections":0})",
           R"({"source":"mqtt","received":20,"accepted":20,"rejected":0,"accepted_per_s":4,"rejected_per_s":0,)"
           R"("connections":1})",
           R"("accepted_per_s":14,"rejected_per_s":2,"sources")",
       }) {
    EXPECT_NE(json.find(want), std::string::npos) << want << "\n" << json;
  }
}

TEST(Rejects, FindsTheSensorIdInRawBytes) {
  uint32_t id = 0;
  EXPECT_TRUE(FindSensorId(R"({"timestamp":"x","sensor_id":17,"t":1})", &id));
  EXPECT_EQ(id, 17u);
  EXPECT_TRUE(FindSensorId(R"({"a":"sensor_id", "sensor_id" :  4})", &id));
  EXPECT_EQ(id, 4u);
  EXPECT_FALSE(FindSensorId(R"({"sensor_id":"seven"})", &id));
  EXPECT_FALSE(FindSensorId("not json at all", &id));
}

TEST(Rejects, CountsEntriesAsTheyAreAppended) {
  ScratchDir dir("mare-dashboard-test");
  std::string path = dir.path() + "/dead-letter.log";
  auto entry = [](const std::string& time, const std::string& reason, const std::string& raw) {
    return time + " udp " + reason + " " + std::to_string(raw.size()) + " some detail\n" + raw + "\n";
  };
  std::string a = entry("2024-01-21T10:00:00.000000Z", "invalid_number", R"({"sensor_id":3,"temperature":"x"})");
  std::string b = entry("2024-01-21T10:30:00.000000Z", "not_json", "{{{\nbroken");
  std::string c = entry("2024-01-21T10:59:00.000000Z", "future_timestamp", R"({"sensor_id":3})");
  const int64_t now = 1705834800000000;  // 2024-01-21T11:00:00Z
  {
    std::ofstream f(path, std::ios::binary);
    f << a << b << c.substr(0, c.size() - 5);  // the last entry is still being written
  }
  RejectCounts counts(path);
  counts.Scan(now);
  ASSERT_EQ(counts.sensors().count(3), 1u);
  EXPECT_EQ(counts.sensors().at(3).total, 1);
  EXPECT_EQ(counts.unattributed(), 1);
  {
    std::ofstream f(path, std::ios::binary | std::ios::app);
    f << c.substr(c.size() - 5);
  }
  counts.Scan(now);
  EXPECT_EQ(counts.sensors().at(3).total, 2);
  EXPECT_EQ(counts.sensors().at(3).last_reason, "future_timestamp");
  EXPECT_EQ(counts.Since(3, now - 1800 * 1000000LL), 1);  // only 10:59 is in the last half hour
  EXPECT_EQ(counts.unattributed(), 1);
  // Deleted and started again: counted from the new file.
  std::filesystem::remove(path);
  {
    std::ofstream f(path, std::ios::binary);
    f << a;
  }
  counts.Scan(now);
  EXPECT_EQ(counts.sensors().at(3).total, 1);
  EXPECT_EQ(counts.unattributed(), 0);
}

TEST(Assets, EmbedsTheBuiltDashboard) {
  auto assets = Assets();
  const Asset* index = FindAsset(assets, "/");
  ASSERT_NE(index, nullptr);
  EXPECT_STREQ(index->path, "/index.html");
  EXPECT_FALSE(index->immutable);
  std::string html = Inflate(*index);
  EXPECT_NE(html.find("<main id=\"view\">"), std::string::npos);
  EXPECT_NE(html.find("/assets/"), std::string::npos) << "index.html loads the hashed bundle";
  bool js = false;
  for (const Asset& a : assets) {
    EXPECT_EQ(Inflate(a).size(), a.size) << a.path;
    if (std::string_view(a.path).ends_with(".js")) {
      js = true;
      EXPECT_TRUE(a.immutable) << a.path;
      EXPECT_EQ(std::string_view(a.content_type).substr(0, 15), "text/javascript");
    }
  }
  EXPECT_TRUE(js);
  EXPECT_EQ(FindAsset(assets, "/nope.js"), nullptr);
}

class DashboardStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::Store::Open({.dir = dir_.path() + "/store", .compaction_thread = false}, &registry_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }

  // Sensor 1: one reading a second until now, status ok. Sensor 2: the same, but its last
  // status is "stuck". Sensor 3: went quiet ten minutes ago.
  void Fill(int64_t now) {
    store_->Write([&](store::Store::Batch& b) {
      for (int i = 120; i >= 0; --i) {
        for (uint32_t sensor = 1; sensor <= 3; ++sensor) {
          Reading r;
          r.sensor_id = sensor;
          r.timestamp_us = now - i * 1'000'000LL - (sensor == 3 ? 600'000'000LL : 0);
          r.numbers.push_back({"temperature", 10.0 + sensor + i / 100.0});
          r.texts.push_back({"status", sensor == 2 && i < 3 ? "stuck" : "ok"});
          r.has_location = true;
          r.lat = 42.5 + sensor / 100.0;
          r.lon = 3.2;
          b.Add(r);
        }
      }
    });
  }

  ScratchDir dir_{"mare-dashboard-test"};
  metrics::Registry registry_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(DashboardStoreTest, SensorHealthFromTheStore) {
  int64_t now = NowMicros();
  Fill(now);
  SensorHealth health(store_.get(), dir_.path() + "/dead-letter.log");
  health.ScanRejects(now);
  std::string json = health.Json(now);
  auto sensor = [&](int id) {
    size_t at = json.find("{\"sensor_id\":" + std::to_string(id) + ",");
    EXPECT_NE(at, std::string::npos) << json;
    return json.substr(at, json.find("\"health\"", at) + 20 - at);
  };
  EXPECT_NE(sensor(1).find("\"health\":\"ok\""), std::string::npos) << sensor(1);
  EXPECT_NE(sensor(1).find("\"temperature\":11"), std::string::npos) << sensor(1);
  EXPECT_NE(sensor(1).find("\"position\":{\"lat\":42.51,\"lon\":3.2}"), std::string::npos) << sensor(1);
  EXPECT_NE(sensor(2).find("\"health\":\"fault\""), std::string::npos) << sensor(2);
  EXPECT_NE(sensor(2).find("\"faults_1h\":3"), std::string::npos) << sensor(2);
  EXPECT_NE(sensor(3).find("\"health\":\"stale\""), std::string::npos) << sensor(3);
}

TEST_F(DashboardStoreTest, ServesThePageASnapshotAndTheLiveStream) {
  int64_t now = NowMicros();
  Fill(now);
  HttpServer server(2);
  auto dashboard = Dashboard::Start(&server, store_.get(), &registry_,
                                    {.max_live_streams = 2, .tick_us = 200'000, .dead_letter_path = dir_.path() + "/dead-letter.log"});
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  httplib::Client client("127.0.0.1", server.port());
  client.set_decompress(false);

  httplib::Headers gzip = {{"Accept-Encoding", "gzip, deflate, br"}};
  auto page = client.Get("/", gzip);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(page->get_header_value("Cache-Control"), "no-cache");
  auto plain = client.Get("/index.html");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->get_header_value("Content-Encoding"), "");
  EXPECT_NE(plain->body.find("<title>mare</title>"), std::string::npos);
  EXPECT_EQ(client.Get("/assets/missing.js")->status, 404);

  auto snapshot = client.Get("/api/v1/live/snapshot");
  ASSERT_TRUE(snapshot);
  EXPECT_EQ(snapshot->status, 200);
  EXPECT_NE(snapshot->body.find("\"sensors\":[{\"sensor_id\":1,"), std::string::npos) << snapshot->body;
  EXPECT_NE(snapshot->body.find("\"pipeline\":{"), std::string::npos);
  auto pipeline = client.Get("/api/v1/pipeline");
  ASSERT_TRUE(pipeline);
  EXPECT_NE(pipeline->body.find("\"history\":["), std::string::npos);

  EXPECT_EQ(client.Get("/api/v1/live?sensor=x")->status, 400);

  // The stream: snapshots, and readings of sensor 1 after `since` (the last 3).
  std::string since = FormatTimestamp(now - 3'000'000);
  std::string events;
  httplib::Client streamer("127.0.0.1", server.port());
  streamer.set_read_timeout(5, 0);
  auto res = streamer.Get("/api/v1/live?sensor=1&since=" + since, [&](const char* data, size_t n) {
    events.append(data, n);
    return events.find("event: snapshot", events.find("event: snapshot") + 1) == std::string::npos;  // two snapshots
  });
  EXPECT_NE(events.find("retry: 3000"), std::string::npos);
  size_t readings = events.find("event: readings\ndata: {\"sensor_id\":1,\"columns\":");
  ASSERT_NE(readings, std::string::npos) << events;
  EXPECT_NE(events.find("\"row_count\":3", readings), std::string::npos) << events;
  EXPECT_EQ(events.find("event: readings", readings + 1), std::string::npos) << "readings are sent once";
}

}  // namespace
}  // namespace mare::dashboard
