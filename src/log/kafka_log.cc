#include "log/kafka_log.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "common/time.h"

namespace mare::log {
namespace {

constexpr char kEventTimeHeader[] = "mare.ts";

int Ms(int64_t us) { return static_cast<int>(std::clamp<int64_t>(us / 1000, 1, INT32_MAX)); }

Status KafkaError(rd_kafka_resp_err_t err, std::string_view what) {
  std::string m = fmt::format("kafka: {}: {}", what, rd_kafka_err2str(err));
  switch (err) {
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
      return Status::Unavailable(std::move(m));
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      return Status::NotFound(std::move(m));
    default:
      return Status::IOError(std::move(m));
  }
}

// librdkafka's log lines and client errors, into mare's log. Errors such as a broker being
// unreachable repeat every few hundred milliseconds while they last: at most one line per 10 s.
void LogLine(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
  if (level <= 3) spdlog::error("kafka {}: {}: {}", rd_kafka_name(rk), facility, text);
  else if (level <= 4) spdlog::warn("kafka {}: {}: {}", rd_kafka_name(rk), facility, text);
  else spdlog::debug("kafka {}: {}: {}", rd_kafka_name(rk), facility, text);
}

std::atomic<int64_t> last_error_line_us{0};

void ErrorLine(rd_kafka_t* rk, int err, const char* reason, void*) {
  int64_t now = MonotonicMicros();
  int64_t last = last_error_line_us.load();
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char why[512];
    rd_kafka_fatal_error(rk, why, sizeof why);
    spdlog::error("kafka {}: fatal: {}", rd_kafka_name(rk), why);
  } else if (now - last > 10'000'000 && last_error_line_us.compare_exchange_strong(last, now)) {
    spdlog::warn("kafka {}: {} ({})", rd_kafka_name(rk), reason, rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)));
  }
}

struct ConfSetting {
  std::string key, value;
};

// mare's defaults, then the configured client settings, then what mare must have its way on.
Result<rd_kafka_conf_t*> MakeConf(const KafkaLogOptions& o, const std::vector<ConfSetting>& defaults,
                                  const std::vector<ConfSetting>& forced) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) -> Status {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      return Status::InvalidArgument(fmt::format("kafka client setting {}: {}", k, err));
    }
    return Status::OK();
  };
  std::vector<ConfSetting> all = {{"bootstrap.servers", o.brokers},
                                  {"client.id", o.client_id},
                                  {"socket.keepalive.enable", "true"},
                                  {"reconnect.backoff.max.ms", "1000"},
                                  // Learn of a partition's new leader within seconds, not 5 min.
                                  {"topic.metadata.refresh.interval.ms", "10000"}};
  all.insert(all.end(), defaults.begin(), defaults.end());
  for (const auto& [k, v] : o.client) all.push_back({k, v});
  all.insert(all.end(), forced.begin(), forced.end());
  for (const auto& s : all) {
    Status st = set(s.key, s.value);
    if (!st.ok()) {
      rd_kafka_conf_destroy(conf);
      return st;
    }
  }
  rd_kafka_conf_set_log_cb(conf, LogLine);
  rd_kafka_conf_set_error_cb(conf, ErrorLine);
  return conf;
}

Result<rd_kafka_t*> NewClient(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);  // owns conf on success
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return Status::InvalidArgument(std::string("kafka: ") + err);
  }
  return rk;
}

struct PartitionList {
  rd_kafka_topic_partition_list_t* list;
  explicit PartitionList(int size) : list(rd_kafka_topic_partition_list_new(size)) {}
  ~PartitionList() { rd_kafka_topic_partition_list_destroy(list); }
  PartitionList(const PartitionList&) = delete;
  PartitionList& operator=(const PartitionList&) = delete;
};

// A topic just created by another process may not have its leaders everywhere yet: what is
// transient (no leader, not the leader, unknown yet) is retried until the timeout.
Status Watermarks(rd_kafka_t* rk, const std::string& topic, int32_t partition, int64_t timeout_us, int64_t* low,
                  int64_t* high) {
  int64_t deadline = MonotonicMicros() + timeout_us;
  for (;;) {
    int64_t left = std::max<int64_t>(deadline - MonotonicMicros(), 1000);
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, low, high, Ms(left));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::OK();
    Status s = KafkaError(err, fmt::format("offsets of {} partition {}", topic, partition));
    bool transient = s.code() == Status::Code::kUnavailable || s.code() == Status::Code::kNotFound;
    if (!transient || err == RD_KAFKA_RESP_ERR__TIMED_OUT || MonotonicMicros() + 200'000 > deadline) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// One Append's records on their way: the delivery callback counts them down.
// Consumers prefetch up to this many messages per partition (librdkafka's default, 100,000,
// is reached by a consumer catching up, and librdkafka 2.0 then pauses fetching for about a
// second: catching up went at half speed). Memory stays bounded by queued.max.messages.kbytes
// (64 MiB by default). Both can be set in [log.kafka.client].
constexpr const char* kQueuedMinMessages = "1000000";

// The outcome of one append's records, filled in by the delivery reports. A synchronous
// append waits on `done`; an asynchronous one sets `then`, which runs once (on the thread that
// delivered the last record) and deletes the Delivery.
struct Delivery {
  std::mutex mu;
  std::condition_variable done;
  size_t remaining = 0;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  int64_t first_offset = INT64_MAX;
  std::function<void(rd_kafka_resp_err_t)> then;
};

// Counts n records of d as delivered (err and offset those of the one record reported, or of
// records never queued).
void Settle(Delivery* d, size_t n, rd_kafka_resp_err_t err, int64_t offset) {
  bool last, async;
  {
    std::lock_guard lock(d->mu);
    async = static_cast<bool>(d->then);  // read here: a synchronous d is gone once notified
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (d->err == RD_KAFKA_RESP_ERR_NO_ERROR) d->err = err;
    } else if (offset >= 0) {
      d->first_offset = std::min<int64_t>(d->first_offset, offset);
    }
    d->remaining -= n;
    last = d->remaining == 0;
    if (last && !async) d->done.notify_all();
  }
  if (last && async) {
    d->then(d->err);
    delete d;
  }
}

void Delivered(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  Settle(static_cast<Delivery*>(m->_private), 1, m->err, m->offset);
}

// A consumer's cached high watermark of a partition, updated by every fetch response, so no
// request; -1 while unknown.
int64_t CachedEndOffset(rd_kafka_t* rk, const std::string& topic, int32_t partition) {
  int64_t low = -1, high = -1;
  if (rd_kafka_get_watermark_offsets(rk, topic.c_str(), partition, &low, &high) != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
  return high >= 0 ? high : -1;
}

// The event time of a message: header mare.ts, else what the reader finds in the value, else
// the fallback (the broker's timestamp).
int64_t MessageEventTime(const rd_kafka_message_t* m, std::string_view value, int64_t fallback, EventTimeReader* reader) {
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const void* v = nullptr;
    size_t size = 0;
    if (rd_kafka_header_get_last(headers, kEventTimeHeader, &v, &size) == RD_KAFKA_RESP_ERR_NO_ERROR && v) {
      const char* s = static_cast<const char*>(v);
      int64_t ts = 0;
      auto [end, ec] = std::from_chars(s, s + size, ts);
      if (ec == std::errc() && end == s + size) return ts;
    }
  }
  int64_t ts = 0;
  if (reader && reader->Read(value, &ts)) return ts;
  return fallback;
}

// A message as a ConsumedRecord (views into the message).
void ToRecord(const rd_kafka_message_t* m, EventTimeReader* reader, ConsumedRecord* r) {
  r->partition = m->partition;
  r->offset = m->offset;
  r->key = std::string_view(static_cast<const char*>(m->key), m->key_len);
  r->value = std::string_view(static_cast<const char*>(m->payload), m->len);
  rd_kafka_timestamp_type_t type;
  int64_t ms = rd_kafka_message_timestamp(m, &type);
  r->append_time_us = ms >= 0 ? ms * 1000 : 0;
  r->timestamp_us = MessageEventTime(m, r->value, r->append_time_us, reader);
}

class KafkaConsumer final : public Consumer {
 public:
  KafkaConsumer(rd_kafka_t* rk, std::string topic, int32_t partitions, int64_t timeout_us,
                std::unique_ptr<EventTimeReader> event_time)
      : rk_(rk),
        topic_(std::move(topic)),
        timeout_us_(timeout_us),
        position_(static_cast<size_t>(partitions), 0),
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
    int64_t deadline = MonotonicMicros() + timeout_us_;
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_committed(rk_, l.list, Ms(timeout_us_));
      for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < l.list->cnt; ++i) err = l.list->elems[i].err;
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      Status s = KafkaError(err, "committed offsets of " + topic_);
      bool transient = s.code() == Status::Code::kUnavailable || err == RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS;
      if (!transient || MonotonicMicros() + 200'000 > deadline) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
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
      held_.push_back(m);
    }
    out->reserve(held_.size());
    for (rd_kafka_message_t* m : held_) ToRecord(m, event_time_.get(), &out->emplace_back());
    return Status::OK();
  }

  Status Commit(int32_t partition, int64_t next_offset) override {
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

 private:
  void Release() {
    for (rd_kafka_message_t* m : held_) rd_kafka_message_destroy(m);
    held_.clear();
  }

  // Transient trouble (a broker restarting, a leader moving) is retried by librdkafka: it is
  // worth a line, not an error. Being refused, or a fatal error, is one.
  Status ConsumeError(const rd_kafka_message_t* m) {
    switch (m->err) {
      case RD_KAFKA_RESP_ERR__PARTITION_EOF:
        return Status::OK();
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
  std::vector<int64_t> committed_;
  std::unique_ptr<EventTimeReader> event_time_;
  std::vector<rd_kafka_message_t*> held_;
  bool reassign_ = true;
  int64_t last_warning_us_ = 0;
};

// A transactional member of a consumer group (log.h's GroupMember). Two clients: a consumer
// subscribed to the input topic under the group, whose rebalances call the handlers, and a
// transactional producer (transactional.id = group + "-" + member) whose transactions also
// carry the consumer's offsets (send_offsets_to_transaction with the group's metadata, so a
// member the group has moved on from cannot commit: KIP-447). A third, short-lived consumer
// reads compacted topics back for ReadLatest.
class KafkaGroupMember final : public GroupMember {
 public:
  KafkaGroupMember(KafkaLogOptions options, GroupOptions group)
      : options_(std::move(options)),
        group_(std::move(group)),
        topic_(options_.topic_prefix + group_.topic),
        event_time_(options_.event_time_reader ? options_.event_time_reader(group_.topic) : nullptr) {}

  ~KafkaGroupMember() override {
    Release();
    if (consumer_) {
      closing_ = true;  // the revocation on close needs no handler: the member is going away
      rd_kafka_consumer_close(consumer_);
      rd_kafka_destroy(consumer_);
    }
    if (producer_) {
      if (in_transaction_) rd_kafka_error_destroy(rd_kafka_abort_transaction(producer_, Ms(options_.request_timeout_us)));
      rd_kafka_destroy(producer_);
    }
  }

  Status Init(int32_t partitions) {
    partitions_ = partitions;
    position_.assign(static_cast<size_t>(partitions), -1);
    MARE_RETURN_IF_ERROR(NewProducer());

    auto cconf = MakeConf(options_,
                          {{"enable.partition.eof", "false"},
                           {"auto.offset.reset", "earliest"},
                           {"fetch.wait.max.ms", "100"},
                           {"queued.min.messages", kQueuedMinMessages},
                           {"session.timeout.ms", "10000"},
                           {"heartbeat.interval.ms", "1000"}},
                          {{"group.id", options_.topic_prefix + group_.group},
                           {"isolation.level", "read_committed"},
                           {"enable.auto.commit", "false"},
                           {"enable.auto.offset.store", "false"},
                           {"partition.assignment.strategy", "range"}});
    if (!cconf.ok()) return cconf.status();
    rd_kafka_conf_set_opaque(*cconf, this);
    rd_kafka_conf_set_rebalance_cb(*cconf, &KafkaGroupMember::Rebalance);
    auto c = NewClient(RD_KAFKA_CONSUMER, *cconf);
    if (!c.ok()) return c.status();
    consumer_ = *c;
    rd_kafka_poll_set_consumer(consumer_);
    PartitionList topics(1);
    rd_kafka_topic_partition_list_add(topics.list, topic_.c_str(), RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer_, topics.list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(err, "subscribe to " + topic_);
    return Status::OK();
  }

  Status Poll(std::vector<ConsumedRecord>* out, size_t max_records, std::chrono::milliseconds timeout) override {
    out->clear();
    Release();
    int wait_ms = static_cast<int>(timeout.count());
    while (held_.size() < max_records && error_.ok()) {
      uint64_t generation = rebalances_;
      rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_, held_.empty() ? wait_ms : 0);
      if (rebalances_ != generation) Release();  // read before the handlers replaced the state
      if (m == nullptr) break;
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        Status s = m->err == RD_KAFKA_RESP_ERR__FATAL ? KafkaError(m->err, "consume " + topic_) : Status::OK();
        if (s.ok()) Warn(fmt::format("consuming {}: {} (retrying)", topic_, rd_kafka_message_errstr(m)));
        rd_kafka_message_destroy(m);
        MARE_RETURN_IF_ERROR(s);
        continue;
      }
      size_t p = static_cast<size_t>(m->partition);
      if (p >= position_.size() || position_[p] < 0 || m->offset < position_[p]) {  // not ours, or before a rewind
        rd_kafka_message_destroy(m);
        continue;
      }
      position_[p] = m->offset + 1;
      held_.push_back(m);
    }
    MARE_RETURN_IF_ERROR(error_);
    out->reserve(held_.size());
    for (rd_kafka_message_t* m : held_) ToRecord(m, event_time_.get(), &out->emplace_back());
    return Status::OK();
  }

  std::vector<int32_t> Assignment() const override {
    std::vector<int32_t> out;
    for (size_t p = 0; p < position_.size(); ++p) {
      if (position_[p] >= 0) out.push_back(static_cast<int32_t>(p));
    }
    return out;
  }

  int64_t Position(int32_t partition) const override {
    return partition >= 0 && partition < partitions_ ? position_[static_cast<size_t>(partition)] : -1;
  }

  int64_t EndOffset(int32_t partition) const override { return CachedEndOffset(consumer_, topic_, partition); }

  Status Produce(std::string_view topic, int32_t partition, std::span<const Record> records) override {
    if (records.empty() || failed_) return Status::OK();  // a failed transaction is aborted at commit
    MARE_RETURN_IF_ERROR(Begin());
    if (failed_) return Status::OK();
    std::string name = options_.topic_prefix + std::string(topic);
    for (const Record& r : records) {
      char ts[24];
      auto [end, ec] = std::to_chars(ts, ts + sizeof ts, r.timestamp_us);
      for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            producer_, RD_KAFKA_V_TOPIC(name.c_str()), RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(const_cast<char*>(r.key.data()), r.key.size()),
            RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
            RD_KAFKA_V_HEADER(kEventTimeHeader, ts, (end - ts)), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {  // the transaction is in error: abort it at commit
          failed_ = true;
          failure_ = fmt::format("produce to {} partition {}: {}", name, partition, rd_kafka_err2str(err));
          return Status::OK();
        }
        rd_kafka_poll(producer_, 10);  // room is made as deliveries complete
      }
    }
    rd_kafka_poll(producer_, 0);
    return Status::OK();
  }

  Status CommitTransaction(const std::vector<std::pair<int32_t, int64_t>>& next_offsets) override {
    if (next_offsets.empty() && !in_transaction_ && !failed_) return Status::OK();
    MARE_RETURN_IF_ERROR(Begin());
    if (!failed_) {
      PartitionList offsets(static_cast<int>(next_offsets.size()));
      for (const auto& [p, next] : next_offsets) rd_kafka_topic_partition_list_add(offsets.list, topic_.c_str(), p)->offset = next;
      rd_kafka_consumer_group_metadata_t* metadata = rd_kafka_consumer_group_metadata(consumer_);
      rd_kafka_error_t* error = rd_kafka_send_offsets_to_transaction(producer_, offsets.list, metadata, Ms(options_.request_timeout_us));
      rd_kafka_consumer_group_metadata_destroy(metadata);
      // The commit flushes every record produced in the transaction; retriable errors (a
      // timeout, a coordinator moving) are retried as the API asks, on the same transaction.
      for (int attempt = 0; error == nullptr; ++attempt) {
        error = rd_kafka_commit_transaction(producer_, Ms(options_.delivery_timeout_us));
        if (error == nullptr) {
          in_transaction_ = false;
          return Status::OK();
        }
        if (!rd_kafka_error_is_retriable(error) || attempt >= 5) break;
        rd_kafka_error_destroy(error);
        error = nullptr;
      }
      failure_ = rd_kafka_error_string(error);
      rd_kafka_error_destroy(error);
    }
    // Anything short of fatal (a broker away, the transaction timed out, refused): abort, and
    // go back to what was last committed. The records since are read again; nothing is lost.
    spdlog::warn("kafka: transaction of group {} aborted ({}); rewinding to its last commit", group_.group, failure_);
    failed_ = false;
    int64_t deadline = MonotonicMicros() + 4 * options_.delivery_timeout_us;
    char fatal[512];
    while (in_transaction_ && rd_kafka_fatal_error(producer_, fatal, sizeof fatal) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_error_t* error = rd_kafka_abort_transaction(producer_, Ms(options_.request_timeout_us));
      if (error == nullptr) {
        in_transaction_ = false;
        break;
      }
      std::string why = rd_kafka_error_string(error);
      rd_kafka_error_destroy(error);
      if (MonotonicMicros() > deadline) return Status::IOError(fmt::format("kafka: abort transaction of {}: {}", group_.group, why));
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    // A producer in fatal error (the brokers lost track of its transaction, say after a
    // restart) cannot go on: a new one, with the same transactional.id, can.
    if (rd_kafka_fatal_error(producer_, fatal, sizeof fatal) != RD_KAFKA_RESP_ERR_NO_ERROR) MARE_RETURN_IF_ERROR(ReplaceProducer());
    in_transaction_ = false;
    std::vector<int32_t> mine = Assignment();
    group_.handlers.revoked(mine);
    return Assign(mine, /*rewind=*/true);
  }

  Status ReadLatest(std::string_view topic, const std::vector<int32_t>& partitions,
                    std::map<std::pair<int32_t, std::string>, std::string>* out) override {
    out->clear();
    if (partitions.empty()) return Status::OK();
    std::string name = options_.topic_prefix + std::string(topic);
    auto conf = MakeConf(options_, {{"fetch.wait.max.ms", "50"}},
                         {{"group.id", options_.topic_prefix + group_.group + "-restore"},
                          {"enable.partition.eof", "true"},
                          {"isolation.level", "read_committed"},
                          {"enable.auto.commit", "false"},
                          {"enable.auto.offset.store", "false"}});
    if (!conf.ok()) return conf.status();
    auto rk = NewClient(RD_KAFKA_CONSUMER, *conf);
    if (!rk.ok()) return rk.status();
    rd_kafka_t* reader = *rk;
    rd_kafka_poll_set_consumer(reader);
    PartitionList list(static_cast<int>(partitions.size()));
    for (int32_t p : partitions) rd_kafka_topic_partition_list_add(list.list, name.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    Status s = Status::OK();
    rd_kafka_resp_err_t err = rd_kafka_assign(reader, list.list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) s = KafkaError(err, "assign " + name);
    // Up to the end of each partition: for read_committed, its last stable offset, so a
    // transaction still open (a member that died mid-commit) is not waited for, and not read.
    size_t at_end = 0;
    std::vector<bool> ended(static_cast<size_t>(partitions_), false);
    int64_t deadline = MonotonicMicros() + 6 * options_.request_timeout_us;
    while (s.ok() && at_end < partitions.size()) {
      if (MonotonicMicros() > deadline) {
        s = Status::Unavailable(fmt::format("kafka: reading {} back took too long", name));
        break;
      }
      rd_kafka_message_t* m = rd_kafka_consumer_poll(reader, 200);
      if (m == nullptr) continue;
      size_t p = static_cast<size_t>(m->partition);
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (p < ended.size() && !ended[p]) {
          ended[p] = true;
          ++at_end;
        }
      } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        (*out)[{m->partition, std::string(static_cast<const char*>(m->key), m->key_len)}] =
            std::string(static_cast<const char*>(m->payload), m->len);
      } else if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        s = KafkaError(m->err, "read " + name);
      } else {
        Warn(fmt::format("reading {}: {} (retrying)", name, rd_kafka_message_errstr(m)));
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(reader);
    rd_kafka_destroy(reader);
    return s;
  }

 private:
  static void Rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void* opaque) {
    auto* self = static_cast<KafkaGroupMember*>(opaque);
    ++self->rebalances_;
    std::vector<int32_t> list;
    for (int i = 0; i < parts->cnt; ++i) list.push_back(parts->elems[i].partition);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && !self->closing_) {
      spdlog::info("kafka: group {} assigned partitions {} of {}", self->group_.group, fmt::join(list, ","), self->topic_);
      Status s = self->Assign(list);
      if (!s.ok() && self->error_.ok()) self->error_ = s;
      return;
    }
    // Revoked (or a rebalance error): what is not committed about these partitions is dropped.
    if (self->in_transaction_) {
      rd_kafka_error_destroy(rd_kafka_abort_transaction(self->producer_, Ms(self->options_.delivery_timeout_us)));
      self->in_transaction_ = false;
    }
    if (!self->closing_) {
      spdlog::info("kafka: group {} revoked partitions {} of {}", self->group_.group, fmt::join(list, ","), self->topic_);
      self->group_.handlers.revoked(list);
    }
    for (int32_t p : list) {
      if (p >= 0 && p < self->partitions_) self->position_[static_cast<size_t>(p)] = -1;
    }
    rd_kafka_assign(rk, nullptr);
  }

  // Reads the committed offsets once stable (read_committed: the coordinator holds the answer
  // while a transaction on them is pending), lets the handler restore, and starts there.
  // rewind: the partitions are ours already; move them with a seek rather than re-assigning
  // them outside a rebalance callback (which librdkafka's assignment state does not expect).
  Status Assign(const std::vector<int32_t>& list, bool rewind = false) {
    PartitionList l(static_cast<int>(list.size()));
    for (int32_t p : list) rd_kafka_topic_partition_list_add(l.list, topic_.c_str(), p);
    rd_kafka_resp_err_t err;
    int64_t deadline = MonotonicMicros() + 4 * options_.delivery_timeout_us;
    while ((err = rd_kafka_committed(consumer_, l.list, Ms(options_.request_timeout_us))) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (err == RD_KAFKA_RESP_ERR__FATAL || MonotonicMicros() > deadline) {
        return KafkaError(err, "committed offsets of group " + group_.group);
      }
      Warn(fmt::format("kafka: committed offsets of group {}: {} (retrying)", group_.group, rd_kafka_err2str(err)));
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    std::vector<int64_t> committed;
    for (int i = 0; i < l.list->cnt; ++i) {
      if (l.list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(l.list->elems[i].err, "committed offsets of group " + group_.group);
      committed.push_back(l.list->elems[i].offset >= 0 ? l.list->elems[i].offset : -1);
    }
    auto from = group_.handlers.assigned(list, committed);
    if (!from.ok()) return from.status();
    for (size_t i = 0; i < list.size(); ++i) {
      int64_t at = (*from)[i];
      l.list->elems[i].offset = at;
      position_[static_cast<size_t>(list[i])] = at;
    }
    ++rebalances_;
    if (!rewind) {
      err = rd_kafka_assign(consumer_, l.list);
      return err == RD_KAFKA_RESP_ERR_NO_ERROR ? Status::OK() : KafkaError(err, "assign " + topic_);
    }
    // A seek also drops what was fetched before it. A partition a rebalance is taking away
    // meanwhile may refuse: its revocation, in the next Poll, resets it anyway.
    rd_kafka_error_t* error = rd_kafka_seek_partitions(consumer_, l.list, Ms(options_.request_timeout_us));
    if (error != nullptr) {
      Warn(fmt::format("kafka: rewinding {}: {}", topic_, rd_kafka_error_string(error)));
      rd_kafka_error_destroy(error);
    }
    return Status::OK();
  }

  // The transactional producer. Its init fences an earlier incarnation with the same
  // transactional.id (the same member restarted), aborting that one's open transaction.
  Status NewProducer() {
    std::string txn_id = options_.topic_prefix + group_.group + "-" + group_.member;
    auto conf = MakeConf(options_,
                         {{"compression.codec", options_.compression}, {"linger.ms", "5"},
                          // An abandoned transaction (its member killed) blocks read_committed
                          // readers of its partitions until it times out: keep that short.
                          {"transaction.timeout.ms", "10000"}},
                         {{"enable.idempotence", "true"}, {"acks", "all"}, {"transactional.id", txn_id}});
    if (!conf.ok()) return conf.status();
    auto p = NewClient(RD_KAFKA_PRODUCER, *conf);
    if (!p.ok()) return p.status();
    producer_ = *p;
    in_transaction_ = false;
    int64_t deadline = MonotonicMicros() + 4 * options_.delivery_timeout_us;
    for (;;) {
      rd_kafka_error_t* error = rd_kafka_init_transactions(producer_, Ms(options_.request_timeout_us));
      if (error == nullptr) return Status::OK();
      Status s = TxnError(error, "init transactions");
      if (s.code() != Status::Code::kUnavailable || MonotonicMicros() > deadline) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }

  // After a fatal producer error: a new producer, unless another member took our
  // transactional.id (two members with one --member name: the later one wins).
  Status ReplaceProducer() {
    char why[512] = "";
    rd_kafka_resp_err_t err = rd_kafka_fatal_error(producer_, why, sizeof why);
    if (err == RD_KAFKA_RESP_ERR__FENCED || err == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
        err == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH) {
      return Status::IOError(fmt::format("kafka: member {} of group {} was fenced by another with the same name: {}",
                                         group_.member, group_.group, why));
    }
    spdlog::warn("kafka: the transactional producer of group {} failed ({}); starting a new one", group_.group, why);
    rd_kafka_purge(producer_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_destroy(producer_);
    producer_ = nullptr;
    return NewProducer();
  }

  Status Begin() {
    if (in_transaction_ || failed_) return Status::OK();
    rd_kafka_error_t* error = rd_kafka_begin_transaction(producer_);
    if (error == nullptr) {
      in_transaction_ = true;
      return Status::OK();
    }
    failure_ = rd_kafka_error_string(error);
    rd_kafka_error_destroy(error);
    failed_ = true;  // the commit aborts, or replaces a producer in fatal error
    return Status::OK();
  }

  Status TxnError(rd_kafka_error_t* error, std::string_view what) {
    if (error == nullptr) return Status::OK();
    std::string m = fmt::format("kafka: {} ({}): {}", what, group_.group, rd_kafka_error_string(error));
    bool retriable = rd_kafka_error_is_retriable(error);
    rd_kafka_error_destroy(error);
    return retriable ? Status::Unavailable(std::move(m)) : Status::IOError(std::move(m));
  }

  void Release() {
    for (rd_kafka_message_t* m : held_) rd_kafka_message_destroy(m);
    held_.clear();
  }

  void Warn(const std::string& line) {
    int64_t now = MonotonicMicros();
    if (now - last_warning_us_ > 10'000'000) {
      spdlog::warn("{}", line);
      last_warning_us_ = now;
    }
  }

  KafkaLogOptions options_;
  GroupOptions group_;
  std::string topic_;
  std::unique_ptr<EventTimeReader> event_time_;
  int32_t partitions_ = 0;
  rd_kafka_t* producer_ = nullptr;
  rd_kafka_t* consumer_ = nullptr;
  std::vector<int64_t> position_;  // -1: not assigned
  std::vector<rd_kafka_message_t*> held_;
  bool in_transaction_ = false;
  bool failed_ = false;  // the transaction met an error: CommitTransaction aborts and rewinds
  std::string failure_;
  bool closing_ = false;
  uint64_t rebalances_ = 0;
  Status error_;
  int64_t last_warning_us_ = 0;
};

class KafkaLog final : public Log {
 public:
  KafkaLog(const KafkaLogOptions& options, rd_kafka_t* producer) : options_(options), producer_(producer) {
    metrics::Registry* r = options.metrics ? options.metrics : &metrics::Registry::Global();
    produced_ = &r->GetCounter("mare_log_kafka_produced_records_total", "Records acknowledged by the Kafka brokers");
    failed_ = &r->GetCounter("mare_log_kafka_failed_appends_total", "Appends the Kafka brokers did not acknowledge");
    poller_ = std::thread([this] {
      while (!stop_.load()) rd_kafka_poll(producer_, 100);  // runs the delivery callbacks
    });
  }

  ~KafkaLog() override {
    rd_kafka_flush(producer_, Ms(options_.delivery_timeout_us));
    stop_.store(true);
    poller_.join();
    rd_kafka_destroy(producer_);
  }

  // Metadata of every topic: asking for one topic by name could make a broker auto-create it.
  Status Connect() {
    std::map<std::string, int32_t> topics;
    return ListTopics(&topics);
  }

  Status CreateTopic(const TopicConfig& config) override {
    if (Partitions(config.name) > 0) return Status::OK();  // an existing topic keeps its settings
    std::string name = Name(config.name);
    char err[512];
    rd_kafka_NewTopic_t* topic =
        rd_kafka_NewTopic_new(name.c_str(), config.partitions, options_.replication_factor, err, sizeof err);
    if (topic == nullptr) return Status::InvalidArgument(fmt::format("kafka: topic {}: {}", name, err));
    std::string retention_ms = config.retention_us > 0 && !config.compact ? std::to_string(config.retention_us / 1000) : "-1";
    std::string retention_bytes = config.retention_bytes > 0 ? std::to_string(config.retention_bytes) : "-1";
    rd_kafka_NewTopic_set_config(topic, "retention.ms", retention_ms.c_str());
    rd_kafka_NewTopic_set_config(topic, "retention.bytes", retention_bytes.c_str());
    rd_kafka_NewTopic_set_config(topic, "message.timestamp.type", "LogAppendTime");
    if (config.compact) rd_kafka_NewTopic_set_config(topic, "cleanup.policy", "compact");
    // acks=all then means on two brokers at least, while one of three may be down.
    rd_kafka_NewTopic_set_config(topic, "min.insync.replicas", options_.replication_factor >= 3 ? "2" : "1");
    rd_kafka_AdminOptions_t* admin = rd_kafka_AdminOptions_new(producer_, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(admin, Ms(options_.request_timeout_us), err, sizeof err);
    rd_kafka_AdminOptions_set_operation_timeout(admin, Ms(options_.request_timeout_us), err, sizeof err);
    rd_kafka_queue_t* queue = rd_kafka_queue_new(producer_);
    rd_kafka_CreateTopics(producer_, &topic, 1, admin, queue);
    rd_kafka_event_t* event = rd_kafka_queue_poll(queue, Ms(options_.request_timeout_us) + 5000);
    Status s;
    if (event == nullptr) {
      s = Status::Unavailable("kafka: create topic " + name + ": no answer");
    } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      s = KafkaError(rd_kafka_event_error(event), "create topic " + name);
    } else {
      size_t n = 0;
      const rd_kafka_topic_result_t** results =
          rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &n);
      for (size_t i = 0; i < n; ++i) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
          const char* why = rd_kafka_topic_result_error_string(results[i]);
          s = Status::InvalidArgument(fmt::format("kafka: create topic {} ({} partitions, replication factor {}): {}", name,
                                                  config.partitions, options_.replication_factor,
                                                  why ? why : rd_kafka_err2str(e)));
        }
      }
    }
    if (event) rd_kafka_event_destroy(event);
    rd_kafka_queue_destroy(queue);
    rd_kafka_AdminOptions_destroy(admin);
    rd_kafka_NewTopic_destroy(topic);
    MARE_RETURN_IF_ERROR(s);
    // Created on the controller; wait until the brokers' metadata has it with a leader per partition.
    int64_t deadline = MonotonicMicros() + options_.request_timeout_us;
    for (;;) {
      int32_t ready = 0;
      MARE_RETURN_IF_ERROR(TopicPartitions(name, &ready, /*with_leaders=*/true));
      if (ready > 0) break;
      if (MonotonicMicros() > deadline) return Status::Unavailable("kafka: topic " + name + " created but has no leaders yet");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    {
      // Another broker's metadata may not have the topic yet: remember it from here.
      std::lock_guard lock(mu_);
      partitions_[name] = config.partitions;
    }
    spdlog::info("kafka: created topic {} ({} partitions, replication factor {}, retention.ms {})", name, config.partitions,
                 options_.replication_factor, retention_ms);
    return Status::OK();
  }

  std::vector<std::string> Topics() const override {
    std::map<std::string, int32_t> topics;
    std::vector<std::string> out;
    if (!ListTopics(&topics).ok()) return out;
    for (const auto& [name, n] : topics) {
      if (name.starts_with("__") || !name.starts_with(options_.topic_prefix)) continue;
      out.push_back(name.substr(options_.topic_prefix.size()));
    }
    return out;
  }

  int32_t Partitions(std::string_view topic) const override {
    std::string name = Name(topic);
    {
      std::lock_guard lock(mu_);
      auto it = partitions_.find(name);
      if (it != partitions_.end()) return it->second;
    }
    int32_t n = 0;
    if (!TopicPartitions(name, &n, false).ok() || n == 0) return 0;
    std::lock_guard lock(mu_);
    partitions_[name] = n;  // a topic's partition count never shrinks; mare never grows it
    return n;
  }

  Result<std::vector<PartitionInfo>> Describe(std::string_view topic) const override {
    int32_t n = Partitions(topic);
    if (n == 0) return Status::NotFound(fmt::format("kafka: no topic {}", Name(topic)));
    std::vector<PartitionInfo> out;
    std::string name = Name(topic);
    for (int32_t p = 0; p < n; ++p) {
      PartitionInfo& info = out.emplace_back();
      info.partition = p;
      MARE_RETURN_IF_ERROR(Watermarks(producer_, name, p, options_.request_timeout_us, &info.start_offset, &info.end_offset));
    }
    return out;
  }

  Status Append(std::string_view topic, int32_t partition, std::span<const Record> records,
                int64_t* first_offset) override {
    if (records.empty()) return Status::OK();
    std::string name = Name(topic);
    Delivery d;
    d.remaining = records.size();
    size_t queued = 0;
    rd_kafka_resp_err_t err = Enqueue(name, partition, records, &d, &queued);
    if (queued < records.size()) Settle(&d, records.size() - queued, RD_KAFKA_RESP_ERR_NO_ERROR, -1);
    std::unique_lock lock(d.mu);
    d.done.wait(lock, [&] { return d.remaining == 0; });
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) err = d.err;
    Status s = Outcome(err, name, partition, records.size());
    if (s.ok() && first_offset) *first_offset = d.first_offset;
    return s;
  }

  void AppendAsync(std::string_view topic, int32_t partition, std::span<const Record> records,
                   std::function<void(const Status&)> done) override {
    if (records.empty()) {
      done(Status::OK());
      return;
    }
    std::string name = Name(topic);
    auto* d = new Delivery;
    d->remaining = records.size() + 1;  // + this call's own hold, released once all are queued
    d->then = [this, name, partition, n = records.size(), done = std::move(done)](rd_kafka_resp_err_t err) {
      done(Outcome(err, name, partition, n));
    };
    size_t queued = 0;
    rd_kafka_resp_err_t err = Enqueue(name, partition, records, d, &queued);
    Settle(d, records.size() - queued + 1, err, -1);  // may run `then` and delete d
  }

  Result<std::unique_ptr<Consumer>> Subscribe(const std::string& group, const std::string& topic) override {
    int32_t n = Partitions(topic);
    if (n == 0) return Status::NotFound(fmt::format("kafka: no topic {}", Name(topic)));
    auto conf = MakeConf(options_,
                         {{"enable.partition.eof", "false"},
                          {"auto.offset.reset", "earliest"},
                          {"fetch.wait.max.ms", "100"},
                          {"queued.min.messages", kQueuedMinMessages},
                          {"isolation.level", "read_committed"}},
                         {{"group.id", options_.topic_prefix + group},
                          {"enable.auto.commit", "false"},
                          {"enable.auto.offset.store", "false"}});
    if (!conf.ok()) return conf.status();
    auto rk = NewClient(RD_KAFKA_CONSUMER, *conf);
    if (!rk.ok()) return rk.status();
    rd_kafka_poll_set_consumer(*rk);
    auto consumer = std::make_unique<KafkaConsumer>(
        *rk, Name(topic), n, options_.request_timeout_us,
        options_.event_time_reader ? options_.event_time_reader(topic) : nullptr);
    MARE_RETURN_IF_ERROR(consumer->Init());
    return std::unique_ptr<Consumer>(std::move(consumer));
  }

  Result<std::unique_ptr<GroupMember>> JoinGroup(const GroupOptions& options) override {
    int32_t n = Partitions(options.topic);
    if (n == 0) return Status::NotFound(fmt::format("kafka: no topic {}", Name(options.topic)));
    auto member = std::make_unique<KafkaGroupMember>(options_, options);
    MARE_RETURN_IF_ERROR(member->Init(n));
    return std::unique_ptr<GroupMember>(std::move(member));
  }

  std::vector<std::string> Groups(std::string_view topic) const override {
    std::vector<std::string> out;
    std::string name = Name(topic);
    char err[512];
    rd_kafka_queue_t* queue = rd_kafka_queue_new(producer_);
    rd_kafka_AdminOptions_t* admin = rd_kafka_AdminOptions_new(producer_, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
    rd_kafka_AdminOptions_set_request_timeout(admin, Ms(options_.request_timeout_us), err, sizeof err);
    rd_kafka_ListConsumerGroups(producer_, admin, queue);
    std::vector<std::string> groups;
    if (rd_kafka_event_t* e = rd_kafka_queue_poll(queue, Ms(options_.request_timeout_us) + 5000)) {
      if (const auto* result = rd_kafka_event_ListConsumerGroups_result(e)) {
        size_t n = 0;
        const rd_kafka_ConsumerGroupListing_t** valid = rd_kafka_ListConsumerGroups_result_valid(result, &n);
        for (size_t i = 0; i < n; ++i) {
          std::string g = rd_kafka_ConsumerGroupListing_group_id(valid[i]);
          if (g.starts_with(options_.topic_prefix)) groups.push_back(g);
        }
      }
      rd_kafka_event_destroy(e);
    }
    rd_kafka_AdminOptions_destroy(admin);
    for (const std::string& g : groups) {
      rd_kafka_ListConsumerGroupOffsets_t* request = rd_kafka_ListConsumerGroupOffsets_new(g.c_str(), nullptr);
      admin = rd_kafka_AdminOptions_new(producer_, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
      rd_kafka_AdminOptions_set_request_timeout(admin, Ms(options_.request_timeout_us), err, sizeof err);
      rd_kafka_ListConsumerGroupOffsets(producer_, &request, 1, admin, queue);
      if (rd_kafka_event_t* e = rd_kafka_queue_poll(queue, Ms(options_.request_timeout_us) + 5000)) {
        if (const auto* result = rd_kafka_event_ListConsumerGroupOffsets_result(e)) {
          size_t n = 0;
          const rd_kafka_group_result_t** results = rd_kafka_ListConsumerGroupOffsets_result_groups(result, &n);
          bool on_topic = false;
          for (size_t i = 0; i < n && !on_topic; ++i) {
            const rd_kafka_topic_partition_list_t* parts = rd_kafka_group_result_partitions(results[i]);
            for (int j = 0; parts && j < parts->cnt; ++j) {
              if (parts->elems[j].topic == name && parts->elems[j].offset >= 0) on_topic = true;
            }
          }
          if (on_topic) out.push_back(g.substr(options_.topic_prefix.size()));
        }
        rd_kafka_event_destroy(e);
      }
      rd_kafka_AdminOptions_destroy(admin);
      rd_kafka_ListConsumerGroupOffsets_destroy(request);
    }
    rd_kafka_queue_destroy(queue);
    std::sort(out.begin(), out.end());
    return out;
  }

  // Every Append returned only once acknowledged, so what was appended is already durable.
  // (Waiting here for other callers' appends in flight would stall the caller through a broker
  // outage for nothing: those appends are not acknowledged until their own Append returns.)
  Status Sync() override { return Status::OK(); }

 private:
  std::string Name(std::string_view topic) const { return options_.topic_prefix + std::string(topic); }

  Status ListTopics(std::map<std::string, int32_t>* out) const {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(producer_, /*all_topics=*/1, nullptr, &md, Ms(options_.request_timeout_us));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaError(err, fmt::format("metadata from {}", options_.brokers));
    }
    for (int i = 0; i < md->topic_cnt; ++i) {
      if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) (*out)[md->topics[i].topic] = md->topics[i].partition_cnt;
    }
    rd_kafka_metadata_destroy(md);
    return Status::OK();
  }

  // The topic's partition count (0 if absent); with_leaders: 0 also while a partition has none.
  Status TopicPartitions(const std::string& name, int32_t* n, bool with_leaders) const {
    *n = 0;
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(producer_, 1, nullptr, &md, Ms(options_.request_timeout_us));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(err, fmt::format("metadata from {}", options_.brokers));
    for (int i = 0; i < md->topic_cnt; ++i) {
      const rd_kafka_metadata_topic_t& t = md->topics[i];
      if (t.topic != name || t.err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      bool ok = t.partition_cnt > 0;
      for (int p = 0; with_leaders && p < t.partition_cnt; ++p) ok = ok && t.partitions[p].leader >= 0;
      if (ok) *n = t.partition_cnt;
    }
    rd_kafka_metadata_destroy(md);
    return Status::OK();
  }

  // Queues records for one partition, each reporting to d; *queued counts those queued before
  // an error stopped it (the error is returned).
  rd_kafka_resp_err_t Enqueue(const std::string& name, int32_t partition, std::span<const Record> records, Delivery* d,
                              size_t* queued) {
    // One append at a time into the producer's queue, so its records get consecutive offsets.
    std::lock_guard lock(append_mu_);
    for (const Record& r : records) {
      char ts[24];
      auto [end, ec] = std::to_chars(ts, ts + sizeof ts, r.timestamp_us);
      rd_kafka_resp_err_t err;
      for (;;) {
        err = rd_kafka_producev(producer_, RD_KAFKA_V_TOPIC(name.c_str()), RD_KAFKA_V_PARTITION(partition),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_KEY(const_cast<char*>(r.key.data()), r.key.size()),
                                RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
                                RD_KAFKA_V_HEADER(kEventTimeHeader, ts, (end - ts)), RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the poller makes room
      }
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return err;
      ++*queued;
    }
    return RD_KAFKA_RESP_ERR_NO_ERROR;
  }

  // What an append of n records whose worst delivery error was err returns, counted.
  Status Outcome(rd_kafka_resp_err_t err, const std::string& name, int32_t partition, size_t n) {
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      produced_->Add(n);
      return Status::OK();
    }
    failed_->Add();
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char why[512];
      rd_kafka_fatal_error(producer_, why, sizeof why);
      return Status::IOError(fmt::format("kafka: produce to {} partition {}: fatal: {}", name, partition, why));
    }
    return KafkaError(err, fmt::format("produce to {} partition {} (nothing of this append is acknowledged)", name, partition));
  }

  KafkaLogOptions options_;
  rd_kafka_t* producer_;
  std::thread poller_;
  std::atomic<bool> stop_{false};
  std::mutex append_mu_;
  mutable std::mutex mu_;
  mutable std::map<std::string, int32_t, std::less<>> partitions_;
  metrics::Counter* produced_;
  metrics::Counter* failed_;
};

}  // namespace

Result<std::unique_ptr<Log>> OpenKafkaLog(const KafkaLogOptions& options) {
  if (options.brokers.empty()) return Status::InvalidArgument("kafka: no brokers given (log.kafka.brokers)");
  std::string timeout_ms = std::to_string(options.delivery_timeout_us / 1000);
  auto conf = MakeConf(options,
                       {{"compression.codec", options.compression},
                        {"linger.ms", "2"},
                        {"message.timeout.ms", timeout_ms},
                        {"socket.timeout.ms", std::to_string(options.request_timeout_us / 1000)}},
                       // Acknowledged must mean durable, once and in order: not for configuration to undo.
                       {{"enable.idempotence", "true"}, {"acks", "all"}});
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_dr_msg_cb(*conf, Delivered);
  auto rk = NewClient(RD_KAFKA_PRODUCER, *conf);
  if (!rk.ok()) return rk.status();
  auto log = std::make_unique<KafkaLog>(options, *rk);
  Status s = log->Connect();
  if (!s.ok()) return Status::Unavailable(s.message() + " (is Kafka running at " + options.brokers + "?)");
  return std::unique_ptr<Log>(std::move(log));
}

}  // namespace mare::log
