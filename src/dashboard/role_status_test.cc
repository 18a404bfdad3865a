// The role status records (role_status.h): the codec, the newest status of each instance, the
// pipeline view merging other roles' figures with its own and marking a silent one stale, and a
// publisher and a reader meeting on a real (embedded) log.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <chrono>
#include <thread>

#include "common/scratch_dir.h"
#include "common/time.h"
#include "dashboard/pipeline.h"
#include "dashboard/role_status.h"
#include "dashboard/role_status_publisher.h"
#include "dashboard/role_status_reader.h"
#include "log/embedded_log.h"
#include "processors/rollup/rollup_metrics.h"
#include "sources/source_metrics.h"
#include "store/store_metrics.h"

namespace mare::dashboard {
namespace {

RoleStatus Ingest(int64_t time_us, double accepted) {
  RoleStatus s{.role = "ingest", .instance = "h1-10", .host = "h1", .pid = 10, .time_us = time_us, .interval_us = 2'000'000};
  s.metrics.push_back({std::string(source_metrics::kReadingsAccepted.name), {{"source", "http"}}, accepted});
  s.metrics.push_back({std::string(source_metrics::kReadingsReceived.name), {{"source", "http"}}, accepted + 2});
  s.metrics.push_back({std::string(source_metrics::kReadingsRejected.name), {{"source", "http"}, {"reason", "parse \"x\""}}, 2});
  return s;
}

TEST(RoleStatusTest, RoundTrips) {
  RoleStatus s = Ingest(1'700'000'000'123'456, 12345);
  s.stopped = true;
  auto back = DecodeRoleStatus(EncodeRoleStatus(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->Key(), "ingest/h1-10");
  EXPECT_EQ(back->host, "h1");
  EXPECT_EQ(back->pid, 10);
  EXPECT_EQ(back->time_us, s.time_us);
  EXPECT_EQ(back->interval_us, 2'000'000);
  EXPECT_TRUE(back->stopped);
  ASSERT_EQ(back->metrics.size(), 3u);
  EXPECT_EQ(back->metrics[0].name, "mare_source_readings_accepted_total");
  EXPECT_EQ(back->metrics[0].value, 12345);
  EXPECT_EQ(back->metrics[2].labels, (metrics::Labels{{"source", "http"}, {"reason", "parse \"x\""}}));
}

TEST(RoleStatusTest, RefusesWhatItCouldNotHaveWritten) {
  for (const char* bad : {"", "[]", "{", "{\"version\":2,\"role\":\"a\",\"instance\":\"b\",\"time_us\":1,\"metrics\":[]}",
                          "{\"version\":1,\"instance\":\"b\",\"time_us\":1,\"metrics\":[]}",
                          "{\"version\":1,\"role\":\"a\",\"instance\":\"b\",\"metrics\":[]}",
                          "{\"version\":1,\"role\":\"a\",\"instance\":\"b\",\"time_us\":1}",
                          "{\"version\":1,\"role\":\"a\",\"instance\":\"b\",\"time_us\":1,\"metrics\":[{\"name\":\"m\"}]}",
                          "{\"version\":1,\"role\":\"a\",\"instance\":\"b\",\"time_us\":1,\"metrics\":[{\"name\":\"m\",\"value\":1,"
                          "\"labels\":{\"k\":1}}]}"}) {
    auto decoded = DecodeRoleStatus(bad);
    EXPECT_FALSE(decoded.ok()) << bad;
    if (!decoded.ok()) {
      EXPECT_NE(decoded.status().message().find("role status"), std::string::npos);
    }
  }
}

TEST(RoleStatusTest, KeepsTheNewestOfEachInstanceAndForgetsOneThatStopped) {
  std::vector<std::string> values = {EncodeRoleStatus(Ingest(100, 1)), EncodeRoleStatus(Ingest(200, 5)), "not json"};
  RoleStatus stream{.role = "stream", .instance = "a", .time_us = 150};
  values.push_back(EncodeRoleStatus(stream));
  stream.stopped = true;
  stream.time_us = 300;
  values.push_back(EncodeRoleStatus(stream));
  std::vector<std::string> keys = {"ingest/h1-10", "ingest/h1-10", "ingest/h1-10", "stream/a", "stream/a"};
  std::vector<log::ConsumedRecord> records;
  for (size_t i = 0; i < values.size(); ++i) records.push_back({.offset = static_cast<int64_t>(i), .key = keys[i], .value = values[i]});
  std::map<std::string, RoleStatus> latest;
  uint64_t bad = 0;
  ApplyStatuses(records, &latest, &bad);
  EXPECT_EQ(bad, 1u);
  ASSERT_EQ(latest.size(), 1u);
  EXPECT_EQ(latest.at("ingest/h1-10").time_us, 200);
  EXPECT_EQ(latest.at("ingest/h1-10").metrics[0].value, 5);
}

// The pipeline JSON, parsed.
simdjson::dom::element Parse(simdjson::dom::parser& parser, const std::string& json) {
  return parser.parse(json).value();
}

TEST(RoleStatusTest, ThePipelineViewMergesTheOtherRolesAndSaysWhichIsStale) {
  metrics::Registry local;  // `mare store`: its store and nothing else
  local.GetGauge(store_metrics::kDiskRows).Set(700);
  local.GetGauge(store_metrics::kMemtableRows).Set(20);
  local.GetGauge(store_metrics::kLagRecords).Set(3);
  const int64_t now = NowMicros();
  std::vector<RoleStatus> others = {Ingest(now - 1'000'000, 720)};
  RoleStatus a{.role = "stream", .instance = "a", .host = "h2", .pid = 20, .time_us = now - 40'000'000};
  a.metrics = {{std::string(rollup_metrics::kLagRecords.name), {}, 5},
               {std::string(rollup_metrics::kWatermarkSeconds.name), {}, 1'700'000'000},
               {std::string(rollup_metrics::kReadingsCounted.name), {}, 300}};
  RoleStatus b = a;
  b.instance = "b";
  b.time_us = now - 2'000'000;
  b.metrics = {{std::string(rollup_metrics::kLagRecords.name), {}, 7},
               {std::string(rollup_metrics::kWatermarkSeconds.name), {}, 1'700'000'060},
               {std::string(rollup_metrics::kReadingsCounted.name), {}, 400}};
  others.push_back(a);
  others.push_back(b);
  PipelineSettings settings{.rollup_enabled = true, .store_enabled = true};
  settings.role = "store";
  settings.instance = "h3-30";
  settings.other_roles = [&] { return others; };
  PipelineHealth health(&local, settings);
  health.Sample(now, 0);

  simdjson::dom::parser parser;
  auto p = Parse(parser, health.Json());
  EXPECT_EQ(p["accepted_total"].get_double().value(), 720);
  EXPECT_EQ(p["rejected_total"].get_double().value(), 2);
  EXPECT_EQ(p["sources"].at(0)["source"].get_string().value(), "http");
  EXPECT_EQ(p["store"]["rows"].get_double().value(), 720);
  EXPECT_EQ(p["rollup"]["readings"].get_double().value(), 700);          // both members' counts
  EXPECT_EQ(p["rollup"]["watermark"].get_string().value(), "2023-11-14T22:14:20.000000Z");  // the newer
  std::map<std::string, double> lags;
  simdjson::dom::array lag_list = p["lags"].get_array().value();
  for (auto l : lag_list) lags[std::string(l["consumer"].get_string().value())] = l["records"].get_double().value();
  EXPECT_EQ(lags, (std::map<std::string, double>{{"rollup", 12}, {"store", 3}}));
  std::map<std::string, std::pair<double, bool>> roles;
  simdjson::dom::array role_list = p["roles"].get_array().value();
  for (auto r : role_list) {
    roles[std::string(r["role"].get_string().value()) + "/" + std::string(r["instance"].get_string().value())] = {
        r["age_s"].get_double().value(), r["stale"].get_bool().value()};
  }
  EXPECT_EQ(roles, (std::map<std::string, std::pair<double, bool>>{
                       {"store/h3-30", {0, false}}, {"ingest/h1-10", {1, false}}, {"stream/a", {40, true}}, {"stream/b", {2, false}}}));
  // The local registry is left as it was: the others' series went into a copy.
  EXPECT_FALSE(local.Find(source_metrics::kReadingsAccepted).has_value());
}

TEST(RoleStatusTest, APublisherAndAReaderMeetOnTheLog) {
  ScratchDir scratch("mare-role-status");
  auto log = log::OpenEmbeddedLog({.dir = scratch.path()});
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  metrics::Registry ingest_metrics, store_metrics;
  auto& accepted = ingest_metrics.GetCounter(source_metrics::kReadingsAccepted, {{"source", "udp"}});
  accepted.Add(42);
  RoleStatusOptions options{.interval_us = 50'000};
  auto publisher = RoleStatusPublisher::Start(log->get(), &ingest_metrics, "ingest", "h-1", options);
  ASSERT_TRUE(publisher.ok()) << publisher.status().ToString();
  auto self = RoleStatusPublisher::Start(log->get(), &store_metrics, "store", "h-2", options);
  ASSERT_TRUE(self.ok());
  auto reader = RoleStatusReader::Start(log->get(), (*self)->key(), options);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();

  auto wait_for = [&](auto done) {
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20); std::chrono::steady_clock::now() < deadline;) {
      if (done((*reader)->Others())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  };
  accepted.Add(8);  // published at the next interval
  EXPECT_TRUE(wait_for([](const std::vector<RoleStatus>& others) {
    return others.size() == 1 && others[0].Key() == "ingest/h-1" && !others[0].metrics.empty() && others[0].metrics[0].value == 50;
  }));
  (*publisher)->Stop();  // its last word: stopped, so the reader forgets it (and never lists itself)
  EXPECT_TRUE(wait_for([](const std::vector<RoleStatus>& others) { return others.empty(); }));
}

}  // namespace
}  // namespace mare::dashboard
