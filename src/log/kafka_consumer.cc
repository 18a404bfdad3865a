#include "log/kafka_consumer.h"

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

#include "common/time.h"
#include "log/kafka_client.h"
#include "log/kafka_record.h"

namespace mare::log::kafka {
namespace {

class KafkaConsumer final : public Consumer {
 public:
  KafkaConsumer(rd_kafka_t* rk, std::string topic, int32_t partitions, int64_t timeout_us,
                std::unique_ptr<EventTimeReader> event_time)
      : rk_(rk),
        topic_(std::move(topic)),
        timeout_us_(timeout_us),
        position_(static_cast<size_t>(partitions), 0),
        last_end_(static_cast<size_t>(partitions), -1),
        committed_(static_cast<size_t>(partitions), -1),
        event_time_(std::move(event_time)) {}

  ~KafkaConsumer() override {
    Release();
    rd_kafka_consumer_close(rk_);
    rd_kafka_destroy(rk_);
  }

  // Reads the group's committed offsets; starts there, or at the oldest retained record.
  Status Init() {
    PartitionList l(static_cast<int>(position_.size()));
    for (size_t p = 0; p < position_.size(); ++p) rd_kafka_topic_partition_list_add(l.list, topic_.c_str(), static_cast<int32_t>(p));
    // A group coordinator still loading (a broker just started) answers "not coordinator" or
    // "load in progress" for a while: retried until the timeout.
    MARE_RETURN_IF_ERROR(RetryTransient(timeout_us_, std::chrono::milliseconds(200), [&](int64_t) -> Attempt {
      rd_kafka_resp_err_t err = rd_kafka_committed(rk_, l.list, Ms(timeout_us_));
      for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < l.list->cnt; ++i) err = l.list->elems[i].err;
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
      Status s = KafkaError(err, "committed offsets of " + topic_);
      bool transient = s.code() == Status::Code::kUnavailable || err == RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS;
      return {std::move(s), transient};
    }));
    for (int i = 0; i < l.list->cnt; ++i) {
      const auto& e = l.list->elems[i];
      committed_[static_cast<size_t>(e.partition)] = e.offset >= 0 ? e.offset : -1;
    }
    for (size_t p = 0; p < position_.size(); ++p) {
      MARE_RETURN_IF_ERROR(Seek(static_cast<int32_t>(p), std::max<int64_t>(0, committed_[p])));
    }
    return Status::OK();
  }

  int64_t Position(int32_t partition) const override { return position_.at(static_cast<size_t>(partition)); }

  Status Seek(int32_t partition, int64_t offset) override {
    if (partition < 0 || static_cast<size_t>(partition) >= position_.size()) {
      return Status::InvalidArgument(fmt::format("kafka: {} has no partition {}", topic_, partition));
    }
    int64_t low = 0, high = 0;
    MARE_RETURN_IF_ERROR(Watermarks(rk_, topic_, partition, timeout_us_, &low, &high));
    position_[static_cast<size_t>(partition)] = std::clamp(offset, low, std::max(low, high));
    last_end_[static_cast<size_t>(partition)] = -1;
    reassign_ = true;
    return Status::OK();
  }

  Status Poll(std::vector<ConsumedRecord>* out, size_t max_records, std::chrono::milliseconds timeout) override {
    out->clear();
    Release();
    if (reassign_) {
      PartitionList l(static_cast<int>(position_.size()));
      for (size_t p = 0; p < position_.size(); ++p) {
        rd_kafka_topic_partition_list_add(l.list, topic_.c_str(), static_cast<int32_t>(p))->offset = position_[p];
      }
      rd_kafka_resp_err_t err = rd_kafka_assign(rk_, l.list);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(err, "assign " + topic_);
      reassign_ = false;
    }
    int wait_ms = static_cast<int>(timeout.count());
    while (held_.size() < max_records) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, held_.empty() ? wait_ms : 0);
      if (m == nullptr) break;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        // The end: past the offsets that hold no record for a reader (transactions' commit and
        // abort markers, aborted records), which Poll never returns. So a reader waiting for a
        // range's last offset, and the lag, see the partition read to its end.
        size_t p = static_cast<size_t>(m->partition);
        if (p < position_.size() && m->offset > position_[p]) position_[p] = m->offset;
        rd_kafka_message_destroy(m);
        continue;
      }
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        Status s = ConsumeError(m);
        rd_kafka_message_destroy(m);
        if (!s.ok()) return s;
        continue;
      }
      size_t p = static_cast<size_t>(m->partition);
      if (p >= position_.size() || m->offset < position_[p]) {  // fetched before a Seek moved on
        rd_kafka_message_destroy(m);
        continue;
      }
      position_[p] = m->offset + 1;
      last_end_[p] = position_[p];
      held_.push_back(m);
    }
    out->reserve(held_.size());
    for (rd_kafka_message_t* m : held_) ToRecord(m, event_time_.get(), &out->emplace_back());
    return Status::OK();
  }

  Status Commit(int32_t partition, int64_t next_offset) override {
    // Just after the last record Poll gave, with the end reached since: past the markers too
    // (nothing a reader is given lies between), so that the group's lag is 0 at the end.
    size_t p = static_cast<size_t>(partition);
    if (p < position_.size() && next_offset == last_end_[p] && position_[p] > next_offset) next_offset = position_[p];
    if (p < committed_.size() && committed_[p] == next_offset) return Status::OK();  // the caller's own, moved
    PartitionList l(1);
    rd_kafka_topic_partition_list_add(l.list, topic_.c_str(), partition)->offset = next_offset;
    // A commit waits at most the request timeout: a synchronous rd_kafka_commit can wait
    // without end while the group's coordinator moves to another broker.
    rd_kafka_queue_t* queue = rd_kafka_queue_new(rk_);
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(rk_, l.list, queue, nullptr, nullptr);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, Ms(timeout_us_));
      if (ev == nullptr) {
        err = RD_KAFKA_RESP_ERR__TIMED_OUT;
      } else {
        err = rd_kafka_event_error(ev);
        const rd_kafka_topic_partition_list_t* done = rd_kafka_event_topic_partition_list(ev);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && done != nullptr && done->cnt > 0) err = done->elems[0].err;
        rd_kafka_event_destroy(ev);
      }
    }
    rd_kafka_queue_destroy(queue);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaError(err, fmt::format("commit {} partition {} at {}", topic_, partition, next_offset));
    }
    committed_.at(static_cast<size_t>(partition)) = next_offset;
    return Status::OK();
  }

  int64_t Committed(int32_t partition) const override { return committed_.at(static_cast<size_t>(partition)); }

  // librdkafka's cached high watermark, updated by every fetch response: no request. (Asking
  // the brokers instead, through a handle whose metadata still names a dead leader, waited
  // the request timeout per partition, and the processors asked every second.)
  int64_t EndOffset(int32_t partition) const override { return CachedEndOffset(rk_, topic_, partition); }

  // One ListOffsets request per partition leader for all of them. mare's topics take the
  // brokers' LogAppendTime, so a message's timestamp is its append time, in milliseconds: the
  // first record appended at t_us or later is the first stamped ceil(t_us / 1000) ms or later.
  Result<std::optional<std::vector<int64_t>>> OffsetsForTimes(
      const std::vector<std::pair<int32_t, int64_t>>& times_us) override {
    std::vector<int64_t> out;
    if (times_us.empty()) return std::optional(std::move(out));
    PartitionList l(static_cast<int>(times_us.size()));
    MARE_RETURN_IF_ERROR(RetryTransient(timeout_us_, std::chrono::milliseconds(200), [&](int64_t left_us) -> Attempt {
      // Asked afresh each try: librdkafka overwrites the timestamps with the answers.
      rd_kafka_topic_partition_list_destroy(l.list);
      l.list = rd_kafka_topic_partition_list_new(static_cast<int>(times_us.size()));
      for (const auto& [p, t] : times_us) {
        // Kafka reads a negative timestamp as "latest" (-1) or "earliest" (-2).
        rd_kafka_topic_partition_list_add(l.list, topic_.c_str(), p)->offset = std::max<int64_t>(0, (t + 999) / 1000);
      }
      rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk_, l.list, Ms(left_us));
      for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < l.list->cnt; ++i) err = l.list->elems[i].err;
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
      Status s = KafkaError(err, "offsets by append time of " + topic_);
      bool transient = (s.code() == Status::Code::kUnavailable || s.code() == Status::Code::kNotFound) &&
                       err != RD_KAFKA_RESP_ERR__TIMED_OUT;
      return {std::move(s), transient};
    }));
    for (const auto& [p, t] : times_us) {
      const rd_kafka_topic_partition_t* e = rd_kafka_topic_partition_list_find(l.list, topic_.c_str(), p);
      if (e == nullptr) return Status::IOError(fmt::format("kafka: no offset by append time for {} partition {}", topic_, p));
      int64_t offset = e->offset;
      if (offset < 0) {  // nothing appended at that time or later: the end
        int64_t low = 0;
        MARE_RETURN_IF_ERROR(Watermarks(rk_, topic_, p, timeout_us_, &low, &offset));
      }
      out.push_back(offset);
    }
    return std::optional(std::move(out));
  }

 private:
  void Release() {
    for (rd_kafka_message_t* m : held_) rd_kafka_message_destroy(m);
    held_.clear();
  }

  // Transient trouble (a broker restarting, a leader moving) is retried by librdkafka: it is
  // worth a line, not an error. Being refused, or a fatal error, is one.
  Status ConsumeError(const rd_kafka_message_t* m) {
    switch (m->err) {
      case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
      case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
      case RD_KAFKA_RESP_ERR__FATAL:
        return KafkaError(m->err, "consume " + topic_);
      default: {
        int64_t now = MonotonicMicros();
        if (now - last_warning_us_ > 10'000'000) {
          spdlog::warn("kafka: consuming {}: {} (retrying)", topic_, rd_kafka_message_errstr(m));
          last_warning_us_ = now;
        }
        return Status::OK();
      }
    }
  }

  rd_kafka_t* rk_;
  std::string topic_;
  int64_t timeout_us_;
  std::vector<int64_t> position_;
  std::vector<int64_t> last_end_;  // the offset after the last record Poll gave since a Seek; -1: none
  std::vector<int64_t> committed_;
  std::unique_ptr<EventTimeReader> event_time_;
  std::vector<rd_kafka_message_t*> held_;
  bool reassign_ = true;
  int64_t last_warning_us_ = 0;
};

}  // namespace

Result<std::unique_ptr<Consumer>> Subscribe(const KafkaLogOptions& options, const std::string& group,
                                            std::string_view topic, int32_t partitions) {
  auto conf = MakeConf(options,
                       {{"auto.offset.reset", "earliest"},
                        {"fetch.wait.max.ms", "100"},
                        {"queued.min.messages", kQueuedMinMessages},
                        {"isolation.level", "read_committed"}},
                       {{"group.id", options.topic_prefix + group},
                        {"enable.partition.eof", "true"},  // Poll moves past what holds no record
                        {"enable.auto.commit", "false"},
                        {"enable.auto.offset.store", "false"}});
  if (!conf.ok()) return conf.status();
  auto rk = NewClient(RD_KAFKA_CONSUMER, *conf);
  if (!rk.ok()) return rk.status();
  rd_kafka_poll_set_consumer(*rk);
  auto consumer = std::make_unique<KafkaConsumer>(*rk, options.topic_prefix + std::string(topic), partitions,
                                                  options.request_timeout_us,
                                                  options.event_time_reader ? options.event_time_reader(topic) : nullptr);
  MARE_RETURN_IF_ERROR(consumer->Init());
  return std::unique_ptr<Consumer>(std::move(consumer));
}

}  // namespace mare::log::kafka
