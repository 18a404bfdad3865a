#include "cli/open_log.h"

#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <limits>
#include <thread>

#include "common/time.h"
#include "dashboard/role_status_publisher.h"
#include "log/embedded_log.h"
#include "log/kafka_log.h"
#include "reading/parser.h"

namespace mare::cli {

using log::EmbeddedLogOptions;
using log::EventTimeReader;
using log::KafkaLogOptions;
using log::Log;
using log::OpenEmbeddedLog;
using log::OpenKafkaLog;

namespace {

// A raw record from a producer other than mare (kcat, a gateway) carries no event-time header:
// its event time is the reading's own timestamp, exactly as ingest would have set it.
class ReadingTime final : public EventTimeReader, ReadingSink {
 public:
  ReadingTime() : parser_(Options()) {}

  bool Read(std::string_view value, int64_t* event_time_us) override {
    buffer_.Assign(value);
    found_ = false;
    parser_.Parse(buffer_.view(), kNoClock, *this);
    if (found_) *event_time_us = time_;
    return found_;
  }

 private:
  // The clock the parser compares timestamps with: far enough ahead that none is "in the future".
  static constexpr int64_t kNoClock = std::numeric_limits<int64_t>::max() / 2;

  static ParserOptions Options() {
    ParserOptions o;
    o.max_reading_bytes = 64LL << 20;
    o.max_fields = 4096;
    o.max_text_bytes = std::numeric_limits<size_t>::max();
    o.max_future_skew_us = 0;
    o.numeric_fields.clear();
    return o;
  }

  void OnReading(const Reading& r) override {
    if (!found_) time_ = r.timestamp_us;
    found_ = true;
  }
  void OnReject(const Reject&) override {}

  ReadingParser parser_;
  PaddedBuffer buffer_;
  bool found_ = false;
  int64_t time_ = 0;
};

// OpenKafkaLog again while the brokers do not answer, up to startup_wait, telling the operator
// every 30 s. A stop signal (blocked by the long-running commands, so only pending) ends it.
Result<std::unique_ptr<Log>> WaitForKafka(const KafkaLogOptions& k) {
  const int64_t start = MonotonicMicros();
  int64_t next_word = start;
  for (;;) {
    auto log = OpenKafkaLog(k);
    if (log.ok() || log.status().code() != Status::Code::kUnavailable) return log;
    const int64_t now = MonotonicMicros();
    if (now - start >= k.startup_wait_us) {
      if (k.startup_wait_us == 0) return log;
      return Status::Unavailable(fmt::format("{}; gave up after waiting {} s (log.kafka.startup_wait)",
                                             log.status().message(), (now - start) / 1'000'000));
    }
    if (now >= next_word) {
      spdlog::warn("{}; waiting for the brokers ({} s of log.kafka.startup_wait {})", log.status().message(),
                   (now - start) / 1'000'000, FormatDuration(k.startup_wait_us));
      next_word = now + 30'000'000;
    }
    for (int i = 0; i < 20; ++i) {  // 2 s between attempts, a stop signal noticed within 0.1 s
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1) {
        return Status::Unavailable(log.status().message() + "; stopped while waiting for the brokers");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace

Result<std::unique_ptr<Log>> OpenLog(const Config& c, const OpenLogOptions& o) {
  if (c.log.kind == "kafka") {
    KafkaLogOptions k = c.log.kafka;
    k.client_id = o.client_id;
    // The process on this node that listens there, whatever its pid: a restart fences its predecessor.
    if (k.transactional_id.empty()) k.transactional_id = "ingest-" + dashboard::HostName() + "-" + c.http.listen;
    k.metrics = o.metrics;
    k.event_time_reader = [](std::string_view topic) -> std::unique_ptr<EventTimeReader> {
      if (topic == "raw") return std::make_unique<ReadingTime>();
      return nullptr;
    };
    if (!o.wait_for_brokers) return OpenKafkaLog(k);
    return WaitForKafka(k);
  }
  EmbeddedLogOptions e = c.log.embedded;
  e.read_only = o.read_only;
  e.repair = o.repair;
  e.metrics = o.metrics;
  return OpenEmbeddedLog(e);
}

std::string DescribeLog(const Config& c) {
  if (c.log.kind == "kafka") {
    return "kafka " + c.log.kafka.brokers + (c.log.kafka.topic_prefix.empty() ? "" : " (topic prefix " + c.log.kafka.topic_prefix + ")");
  }
  return c.LogDir();
}

}  // namespace mare::cli
