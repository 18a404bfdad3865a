#include "log/open_log.h"

#include <limits>

#include "log/embedded_log.h"
#include "log/kafka_log.h"
#include "reading/parser.h"

namespace mare::log {
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

FsyncPolicy Policy(const std::string& name) {
  if (name == "batch") return FsyncPolicy::kBatch;
  if (name == "never") return FsyncPolicy::kNever;
  return FsyncPolicy::kInterval;
}

}  // namespace

Result<std::unique_ptr<Log>> OpenLog(const Config& c, const OpenLogOptions& o) {
  if (c.log.kind == "kafka") {
    KafkaLogOptions k;
    k.brokers = c.log.kafka.brokers;
    k.replication_factor = static_cast<int32_t>(c.log.kafka.replication_factor);
    k.compression = c.log.kafka.compression;
    k.topic_prefix = c.log.kafka.topic_prefix;
    k.client_id = o.client_id;
    k.delivery_timeout_us = c.log.kafka.delivery_timeout_us;
    k.request_timeout_us = c.log.kafka.request_timeout_us;
    k.client = c.log.kafka.client;
    k.metrics = o.metrics;
    k.event_time_reader = [](std::string_view topic) -> std::unique_ptr<EventTimeReader> {
      if (topic == "raw") return std::make_unique<ReadingTime>();
      return nullptr;
    };
    return OpenKafkaLog(k);
  }
  EmbeddedLogOptions e;
  e.dir = c.LogDir();
  e.fsync = Policy(c.log.fsync);
  e.fsync_interval_us = c.log.fsync_interval_us;
  e.segment_bytes = c.log.segment_bytes;
  e.segment_age_us = c.log.segment_age_us;
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

}  // namespace mare::log
