// POST /write and /api/v2/write against a real HTTP server and the real embedded log: the
// status codes and bodies InfluxDB's clients expect, the valid lines of a partly bad batch
// kept, gzip bodies, and a log that refuses readings answered 503 with the lines to resend.
#include "sources/line_protocol_http.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <simdjson.h>
#include <zlib.h>

#include <atomic>
#include <string>
#include <vector>

#include "common/scratch_dir.h"
#include "log/log_with_topics.h"
#include "log/forwarding_log.h"

namespace mare {
namespace {

// The real log, except that every append fails while `failing` is set (a full disk).
class RefusingLog : public log::ForwardingLog {
 public:
  using ForwardingLog::ForwardingLog;
  std::atomic<bool> failing{false};

  Status Append(std::string_view topic, int32_t partition, std::span<const log::Record> records,
                int64_t* first_offset) override {
    if (failing.load()) return Status::FromErrno("write segment", ENOSPC);
    return ForwardingLog::Append(topic, partition, records, first_offset);
  }
};

std::string Gzip(std::string_view text) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, text.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

class LineProtocolHttpTest : public testing::Test {
 protected:
  void SetUp() override {
    auto l = log::OpenLogWithTopics({.dir = scratch_.path() + "/log", .metrics = &registry_},
                                    {{.name = "raw", .partitions = 2}});
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    log_ = std::make_unique<RefusingLog>(std::move(*l));
    ingest_ = std::make_unique<Ingest>(log_.get(), IngestOptions{}, nullptr, &registry_);
    server_ = std::make_unique<HttpServer>(HttpServerOptions{}, &registry_);
    LineProtocolOptions options;
    options.max_body_bytes = 4096;
    source_ = std::make_unique<LineProtocolHttp>(ingest_.get(), server_.get(), options, 2);
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
  }
  void TearDown() override { server_->Stop(); }

  httplib::Result Post(const std::string& path, const std::string& body, bool gzip = false) {
    httplib::Client client("127.0.0.1", server_->port());
    httplib::Headers headers;
    if (gzip) headers.emplace("Content-Encoding", "gzip");
    return client.Post(path, headers, gzip ? Gzip(body) : body, "text/plain; charset=utf-8");
  }
  // Every reading value in raw.
  std::vector<std::string> Stored() {
    auto c = log_->Subscribe("test", "raw");
    EXPECT_TRUE(c.ok());
    std::vector<std::string> all;
    std::vector<log::ConsumedRecord> batch;
    for (int i = 0; i < 20; ++i) {
      EXPECT_TRUE((*c)->Poll(&batch, 1000, std::chrono::milliseconds(10)).ok());
      if (batch.empty()) break;
      for (auto& r : batch) all.emplace_back(r.value);
    }
    std::sort(all.begin(), all.end());
    return all;
  }

  ScratchDir scratch_{"mare-line-protocol-http-test"};
  metrics::Registry registry_;
  std::unique_ptr<RefusingLog> log_;
  std::unique_ptr<Ingest> ingest_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<LineProtocolHttp> source_;
};

TEST_F(LineProtocolHttpTest, AllWrittenIs204) {
  auto res = Post("/api/v2/write?org=o&bucket=b&precision=s", "weather,sensor_id=7 temperature=20.9 1705831564\n");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 204);
  EXPECT_EQ(res->body, "");
  EXPECT_EQ(Stored(), (std::vector<std::string>{
                          R"({"timestamp":"2024-01-21 10:06:04.000000","sensor_id":7,"measurement":"weather","temperature":20.9})"}));
  // The same again is a resend mare already holds: written, not an error.
  res = Post("/api/v2/write?precision=s", "weather,sensor_id=7 temperature=20.9 1705831564\n");
  EXPECT_EQ(res->status, 204);
  EXPECT_EQ(Stored().size(), 1u);
}

TEST_F(LineProtocolHttpTest, PartialWriteIs400NamingTheBadLinesAndKeepsTheOthers) {
  std::string body =
      "weather,sensor_id=1 temperature=1 1705831564000\n"
      "weather,sensor_id=2 temperature= 1705831564000\n"
      "weather,sensor_id=3 temperature=3 1705831564000\n"
      "weather,station=x temperature=4 1705831564000\n"
      "weather,sensor_id=5 temperature=\"warm\" 1705831564000\n";
  auto res = Post("/api/v2/write?precision=ms", body);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  simdjson::dom::parser parser;
  simdjson::dom::element answer = parser.parse(res->body);
  EXPECT_EQ(std::string_view(answer["code"]), "invalid");
  std::string_view message = answer["message"];
  EXPECT_NE(message.find("partial write: 3 of 5 lines rejected (2 written): line 2: invalid_line_protocol: "
                         "missing value of field 'temperature' (column 33); line 4: missing_sensor_id"),
            std::string_view::npos)
      << message;
  EXPECT_NE(message.find("line 5: invalid_number"), std::string_view::npos) << message;
  EXPECT_EQ(int64_t(answer["accepted"]), 2);
  EXPECT_EQ(int64_t(answer["rejected"]), 3);
  std::vector<int64_t> lines;
  for (auto e : answer["errors"].get_array()) lines.push_back(int64_t(e["line"]));
  EXPECT_EQ(lines, (std::vector<int64_t>{2, 4, 5}));
  EXPECT_EQ(Stored().size(), 2u);
}

TEST_F(LineProtocolHttpTest, V1AnswersWithItsOwnErrorShapeAndPrecisions) {
  auto res = Post("/write?db=buoys&precision=h", "weather,sensor_id=1 x=1 473842\nbad\n");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  simdjson::dom::parser parser;
  simdjson::dom::element answer = parser.parse(res->body);
  EXPECT_NE(std::string_view(answer["error"]).find("line 2: invalid_line_protocol: missing fields"), std::string_view::npos)
      << res->body;
  EXPECT_EQ(Stored(), (std::vector<std::string>{
                          R"({"timestamp":"2024-01-21 10:00:00.000000","sensor_id":1,"measurement":"weather","x":1})"}));
  res = Post("/write?precision=d", "weather,sensor_id=1 x=1 1\n");
  EXPECT_EQ(res->status, 400);
  res = Post("/api/v2/write?precision=h", "weather,sensor_id=1 x=1 1\n");  // 2.x takes ns, us, ms, s only
  EXPECT_EQ(res->status, 400);
  httplib::Client client("127.0.0.1", server_->port());
  auto ping = client.Get("/ping");
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->status, 204);
}

TEST_F(LineProtocolHttpTest, GzipBodiesAndTheirDecompressedLimit) {
  std::string body;
  for (int i = 0; i < 20; ++i) body += "weather,sensor_id=" + std::to_string(i) + " temperature=1.5 1705831564000000000\n";
  auto res = Post("/api/v2/write", body, true);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 204) << res->body;
  EXPECT_EQ(Stored().size(), 20u);
  // Small compressed, over max_body_bytes (4096) once decompressed: refused whole.
  std::string big;
  for (int i = 0; i < 200; ++i) big += "weather,sensor_id=" + std::to_string(100 + i) + " temperature=1.5 1705831564000000000\n";
  ASSERT_LT(Gzip(big).size(), 4096u);
  res = Post("/api/v2/write", big, true);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_NE(res->body.find("\"code\":\"request too large\""), std::string::npos) << res->body;
  EXPECT_EQ(Stored().size(), 20u);
}

TEST_F(LineProtocolHttpTest, ARefusingLogIs503WithTheLinesToSendAgain) {
  log_->failing = true;
  std::string body = "weather,sensor_id=1 x=1 1705831564000000000\nnope\nweather,sensor_id=2 x=2 1705831564000000000\n";
  auto res = Post("/api/v2/write", body);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->get_header_value("Retry-After"), "1");
  simdjson::dom::parser parser;
  simdjson::dom::element answer = parser.parse(res->body);
  std::vector<int64_t> lines;
  for (auto l : answer["unacknowledged_lines"].get_array()) lines.push_back(int64_t(l));
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 3})) << res->body;
  log_->failing = false;
  res = Post("/api/v2/write", body);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(Stored().size(), 2u);
}

}  // namespace
}  // namespace mare
