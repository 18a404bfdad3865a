// POST /api/v1/ingest against a real HTTP server and the real embedded log, behind a log that
// can fail one partition's appends (as a full disk or a broker away fails one partition and
// not the next): the answer names exactly the readings not acknowledged, and sending those
// again stores every reading once (issue 13, "a 503 can be partly stored").
#include "sources/http_source.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <simdjson.h>
#include <fmt/format.h>

#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/scratch_dir.h"
#include "log/embedded_log.h"
#include "log/log_with_topics.h"
#include "log/format.h"
#include "log/forwarding_log.h"
#include "log/partitioner.h"
#include "server/http_server.h"

namespace mare {
namespace {

// The real log, except that appends to `failing` partition fail while it is set.
class PartitionFailingLog : public log::ForwardingLog {
 public:
  using ForwardingLog::ForwardingLog;
  std::atomic<int32_t> failing{-1};

  Status Append(std::string_view topic, int32_t partition, std::span<const log::Record> records,
                int64_t* first_offset) override {
    if (partition == failing.load()) return Status::FromErrno("write segment", ENOSPC);
    return ForwardingLog::Append(topic, partition, records, first_offset);
  }
};

class HttpSourceTest : public testing::Test {
 protected:
  void SetUp() override {
    auto l = log::OpenLogWithTopics({.dir = scratch_.path() + "/log", .metrics = &registry_},
                                    {{.name = "raw", .partitions = 3}});
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    log_ = std::make_unique<PartitionFailingLog>(std::move(*l));
    ingest_ = std::make_unique<Ingest>(log_.get(), IngestOptions{}, nullptr, &registry_);
    server_ = std::make_unique<HttpServer>(HttpServerOptions{}, &registry_);
    source_ = std::make_unique<HttpSource>(ingest_.get(), server_.get(), 2);
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
    // Two sensors in partition 0 (kept) and two in partition 1 (failing).
    for (int64_t s = 1; kept_.size() < 2 || lost_.size() < 2; ++s) {
      int32_t p = log::PartitionFor(log::Partitioner::kMurmur2, s, 3);
      if (p == 0 && kept_.size() < 2) kept_.push_back(s);
      if (p == 1 && lost_.size() < 2) lost_.push_back(s);
    }
  }
  void TearDown() override { server_->Stop(); }

  static std::string Reading(int64_t sensor, int second) {
    return fmt::format(R"({{"timestamp":"2024-01-21 10:06:{:02}","sensor_id":{},"temperature":{}.5}})", second, sensor, second);
  }
  httplib::Result Post(const std::string& body) {
    httplib::Client client("127.0.0.1", server_->port());
    return client.Post("/api/v1/ingest", body, "application/x-ndjson");
  }
  // Every reading value in raw, with how often it is there.
  std::map<std::string, int> Stored() {
    auto c = log_->Subscribe("test", "raw");
    EXPECT_TRUE(c.ok());
    std::map<std::string, int> all;
    std::vector<log::ConsumedRecord> batch;
    for (int i = 0; i < 20; ++i) {
      EXPECT_TRUE((*c)->Poll(&batch, 1000, std::chrono::milliseconds(10)).ok());
      if (batch.empty()) break;
      for (auto& r : batch) ++all[std::string(r.value)];
    }
    return all;
  }

  ScratchDir scratch_{"mare-http-source-test"};
  metrics::Registry registry_;
  std::unique_ptr<PartitionFailingLog> log_;
  std::unique_ptr<Ingest> ingest_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<HttpSource> source_;
  std::vector<int64_t> kept_, lost_;
};

TEST_F(HttpSourceTest, AnswerNamesExactlyTheUnacknowledgedReadingsAndResendingThemStoresEachOnce) {
  // Lines: 1 kept, 2 lost, 3 bad, 4 an array [kept, lost, bad, lost, kept], 5 lost, 6 kept.
  std::vector<std::string> lines = {
      Reading(kept_[0], 1),
      Reading(lost_[0], 2),
      "{not json",
      "[" + Reading(kept_[1], 3) + "," + Reading(lost_[1], 4) + ",{\"sensor_id\":1}," + Reading(lost_[0], 5) + "," +
          Reading(kept_[0], 6) + "]",
      Reading(lost_[1], 7),
      Reading(kept_[1], 8),
  };
  std::string body;
  for (auto& l : lines) body += l + "\n";

  log_->failing = 1;
  auto res = Post(body);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->get_header_value("Retry-After"), "1");
  simdjson::dom::parser parser;
  simdjson::dom::element answer = parser.parse(res->body);
  EXPECT_EQ(int64_t(answer["accepted"]), 4) << res->body;
  EXPECT_EQ(int64_t(answer["unacknowledged"]), 4) << res->body;
  EXPECT_EQ(int64_t(answer["rejected"]), 2) << res->body;
  std::vector<int64_t> missing_lines;
  for (auto l : answer["unacknowledged_lines"].get_array()) missing_lines.push_back(int64_t(l));
  EXPECT_EQ(missing_lines, (std::vector<int64_t>{2, 4, 5})) << res->body;
  std::map<int64_t, std::vector<int64_t>> items;
  for (auto entry : answer["unacknowledged_items"].get_array()) {
    for (auto i : entry["items"].get_array()) items[int64_t(entry["line"])].push_back(int64_t(i));
  }
  EXPECT_EQ(items, (std::map<int64_t, std::vector<int64_t>>{{4, {1, 3}}})) << res->body;
  EXPECT_NE(std::string_view(answer["error"]).find("4 of 8 valid readings are not acknowledged"), std::string_view::npos);

  // What the log holds is what the answer says: the kept partition's readings, once.
  auto stored = Stored();
  EXPECT_EQ(stored.size(), 4u);
  for (int second : {1, 3, 6, 8}) EXPECT_EQ(stored[Reading(second == 1 || second == 6 ? kept_[0] : kept_[1], second)], 1);

  // A client resends what the answer names, once the log takes appends again.
  log_->failing = -1;
  std::string again;
  for (int64_t line : missing_lines) {
    std::string_view text = lines[static_cast<size_t>(line - 1)];
    if (!items.count(line)) {
      again += std::string(text) + "\n";
      continue;
    }
    simdjson::dom::parser line_parser;
    simdjson::dom::array array = line_parser.parse(std::string(text)).get_array();
    for (int64_t i : items[line]) again += simdjson::minify(array.at(static_cast<size_t>(i))) + "\n";
  }
  res = Post(again);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  stored = Stored();
  EXPECT_EQ(stored.size(), 8u);
  for (auto& [value, times] : stored) EXPECT_EQ(times, 1) << value;
}

TEST_F(HttpSourceTest, AllPartitionsFailingAcknowledgeNothing) {
  log_->failing = 0;
  auto res = Post(Reading(kept_[0], 1) + "\n" + Reading(kept_[1], 2) + "\n");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  simdjson::dom::parser parser;
  simdjson::dom::element answer = parser.parse(res->body);
  EXPECT_EQ(int64_t(answer["accepted"]), 0);
  EXPECT_EQ(int64_t(answer["unacknowledged"]), 2);
  EXPECT_EQ(simdjson::minify(answer["unacknowledged_lines"]), "[1,2]");
  EXPECT_EQ(simdjson::minify(answer["unacknowledged_items"]), "[]");
  EXPECT_TRUE(Stored().empty());
}

TEST_F(HttpSourceTest, SuccessSaysNothingOfUnacknowledged) {
  auto res = Post(Reading(kept_[0], 1) + "\n" + Reading(lost_[0], 2) + "\n");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "{\"accepted\":2,\"rejected\":0,\"reasons\":{},\"errors\":[]}\n");
}

// kill -9 while a request's readings were being written: the request, spread over three
// partitions, had its first two partitions' batches written and not the third's (the files
// are cut as the kill would have left them). At the restart nothing of it is in the log, and
// the request before it is whole (issue 13: an unanswered request all or nothing).
TEST(HttpSourceCrash, ARequestCutShortByAKillLeavesNothingOfItAtTheRestart) {
  ScratchDir scratch("mare-http-source-crash");
  log::EmbeddedLogOptions o;
  o.dir = scratch.path() + "/log";
  metrics::Registry registry;
  o.metrics = &registry;
  std::vector<int64_t> sensors;  // one sensor per partition
  for (int64_t s = 1; sensors.size() < 3; ++s) {
    if (log::PartitionFor(log::Partitioner::kMurmur2, s, 3) == static_cast<int32_t>(sensors.size())) sensors.push_back(s);
  }
  auto body = [&](int second) {
    std::string b;
    for (int64_t s : sensors) {
      b += fmt::format(R"({{"timestamp":"2024-01-21 10:06:{:02}","sensor_id":{},"temperature":1.5}})", second, s) + "\n";
    }
    return b;
  };
  {
    auto l = log::OpenEmbeddedLog(o);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    ASSERT_TRUE((*l)->CreateTopic({.name = "raw", .partitions = 3}).ok());
    Ingest ingest(l->get(), IngestOptions{}, nullptr, &registry);
    HttpServer server(HttpServerOptions{}, &registry);
    HttpSource source(&ingest, &server, 1);
    ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
    httplib::Client client("127.0.0.1", server.port());
    for (int second : {1, 2}) {
      auto res = client.Post("/api/v1/ingest", body(second), "application/x-ndjson");
      ASSERT_TRUE(res);
      EXPECT_EQ(res->status, 200) << res->body;
    }
    server.Stop();
  }
  // Each partition holds two batches, the requests' shares; the second request's share of
  // partition 2, written last, is what the kill prevented.
  for (int p = 0; p < 3; ++p) {
    std::string path = fmt::format("{}/topics/raw/{}/{}", o.dir, p, log::format::SegmentFileName(0));
    ASSERT_EQ(std::filesystem::file_size(path) % 2, 0u);
    size_t half = std::filesystem::file_size(path) / 2;  // the two batches are alike in size
    std::string head(log::format::kBatchHeaderSize, '\0');
    FILE* f = std::fopen(path.c_str(), "rb");
    ASSERT_EQ(std::fread(head.data(), 1, head.size(), f), head.size());
    std::fclose(f);
    EXPECT_NE(log::format::GetU16(head.data() + log::format::kAttributesAt) & log::format::kAttrGroup, 0)
        << "partition " << p << ": a request's share is a group's batch";
    if (p == 2) {
      ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(half)), 0);
    }
  }
  auto l = log::OpenEmbeddedLog(o);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  auto c = (*l)->Subscribe("test", "raw");
  ASSERT_TRUE(c.ok());
  std::vector<log::ConsumedRecord> batch;
  std::vector<std::string> stored;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE((*c)->Poll(&batch, 1000, std::chrono::milliseconds(10)).ok());
    if (batch.empty()) break;
    for (auto& r : batch) stored.emplace_back(r.value);
  }
  std::sort(stored.begin(), stored.end());
  std::vector<std::string> first;  // the first request's readings, each line
  const std::string text = body(1);
  for (size_t at = 0; at < text.size();) {
    size_t nl = text.find('\n', at);
    first.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  std::sort(first.begin(), first.end());
  EXPECT_EQ(stored, first);
}

// curl --data @file strips the file's newlines, whatever -H says: the readings arrive run together.
TEST_F(HttpSourceTest, ReadingsRunTogetherOnOneLineGetAHint) {
  auto res = Post(Reading(kept_[0], 1) + Reading(kept_[1], 2));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("\"rejected\":1"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("\"hint\":\"readings run together on one line"), std::string::npos) << res->body;
  // One bad reading on its own line is only a reject.
  res = Post("{\"sensor_id\":1}\n");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body.find("hint"), std::string::npos) << res->body;
}

}  // namespace
}  // namespace mare
