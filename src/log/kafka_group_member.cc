#include "log/kafka_group_member.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/time.h"
#include "log/kafka_client.h"
#include "log/kafka_record.h"

namespace mare::log::kafka {
namespace {

// A transactional member of a consumer group (log.h's GroupMember). Two clients: a consumer
// subscribed to the input topic under the group, whose rebalances call the handlers, and a
// transactional producer (transactional.id = group + "-" + member) whose transactions also
// carry the consumer's offsets (send_offsets_to_transaction with the group's metadata, so a
// member the group has moved on from cannot commit: KIP-447). A third, short-lived consumer
// reads compacted topics back for ReadLatest. A member without transactions (GroupOptions::
// transactional false: the sinks, whose positions live in their destination) has no producer.
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
    last_end_.assign(static_cast<size_t>(partitions), -1);
    if (group_.transactional) {
      MARE_RETURN_IF_ERROR(NewProducer(group_.start_timeout_us >= 0 ? group_.start_timeout_us : 4 * options_.delivery_timeout_us));
    }

    auto cconf = MakeConf(options_,
                          {{"auto.offset.reset", "earliest"},
                           {"fetch.wait.max.ms", "100"},
                           {"queued.min.messages", kQueuedMinMessages},
                           {"session.timeout.ms", "10000"},
                           {"heartbeat.interval.ms", "1000"}},
                          {{"group.id", options_.topic_prefix + group_.group},
                           {"enable.partition.eof", "true"},  // Poll moves past what holds no record
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
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        // The end: past transactions' markers and aborted records, which are never returned,
        // so that the lag of a partition read to its end is 0.
        size_t p = static_cast<size_t>(m->partition);
        if (p < position_.size() && position_[p] >= 0 && m->offset > position_[p]) position_[p] = m->offset;
        rd_kafka_message_destroy(m);
        continue;
      }
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
      last_end_[p] = position_[p];
      held_.push_back(m);
    }
    MARE_RETURN_IF_ERROR(error_);
    out->reserve(held_.size());
    for (rd_kafka_message_t* m : held_) ToRecord(m, event_time_.get(), &out->emplace_back());
    return Status::OK();
  }

  bool fenced() const override {
    if (producer_ == nullptr) return false;
    char why[256];
    rd_kafka_resp_err_t err = rd_kafka_fatal_error(producer_, why, sizeof why);
    return err == RD_KAFKA_RESP_ERR__FENCED || err == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
           err == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
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
    if (producer_ == nullptr) return Status::InvalidArgument("kafka: member of group " + group_.group + " without transactions cannot produce");
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

  Status CommitTransaction(const std::vector<std::pair<int32_t, int64_t>>& given) override {
    if (given.empty() && !in_transaction_ && !failed_) return Status::OK();
    if (producer_ == nullptr) {
      std::vector<std::pair<int32_t, int64_t>> next_offsets = given;
      for (auto& [p, next] : next_offsets) next = PastMarkers(p, next);
      return CommitOffsets(next_offsets);
    }
    // In a transaction the offsets committed are the caller's own: its state, written in the
    // same transaction, records them, and the rollup's restore checks that the two are equal
    // (moved past the markers, the group was one ahead of the state: "committed offset 124, but
    // its state ... is at offset 123", at the next start).
    const std::vector<std::pair<int32_t, int64_t>>& next_offsets = given;
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
      // Lost (the session expired, or max.poll.interval.ms passed): the group has moved on.
      bool lost = rd_kafka_assignment_lost(rk) != 0;
      spdlog::info("kafka: group {} {} partitions {} of {}", self->group_.group, lost ? "lost" : "revoked",
                   fmt::join(list, ","), self->topic_);
      if (lost && self->group_.handlers.lost) {
        self->group_.handlers.lost(list);
      } else {
        self->group_.handlers.revoked(list);
      }
    }
    for (int32_t p : list) {
      if (p >= 0 && p < self->partitions_) self->position_[static_cast<size_t>(p)] = self->last_end_[static_cast<size_t>(p)] = -1;
    }
    rd_kafka_assign(rk, nullptr);
  }

  // Reads the committed offsets once stable (read_committed: the coordinator holds the answer
  // while a transaction on them is pending), lets the handler restore, and starts there.
  // rewind: the partitions are ours already; move them with a seek rather than re-assigning
  // them outside a rebalance callback (which librdkafka's assignment state does not expect).
  Status Assign(const std::vector<int32_t>& list, bool rewind = false) {
    for (int32_t p : list) {
      // A topic given partitions after the member joined: its state is sized by the count then.
      if (p < 0 || p >= partitions_) {
        return Status::InvalidArgument(fmt::format("kafka: group {} was given partition {} of {}, which had {} partitions when "
                                                      "it joined (partitions added to a running topic): restart it",
                                                      group_.group, p, topic_, partitions_));
      }
    }
    PartitionList l(static_cast<int>(list.size()));
    for (int32_t p : list) rd_kafka_topic_partition_list_add(l.list, topic_.c_str(), p);
    // Without transactions (a sink), the positions that count are the destination's: Kafka's
    // committed offsets are not asked for, which would wait on a coordinator that is away.
    std::vector<int64_t> committed(list.size(), -1);
    if (group_.transactional) {
      MARE_RETURN_IF_ERROR(RetryTransient(4 * options_.delivery_timeout_us, std::chrono::milliseconds(500), [&](int64_t) -> Attempt {
        rd_kafka_resp_err_t err = rd_kafka_committed(consumer_, l.list, Ms(options_.request_timeout_us));
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
        if (err != RD_KAFKA_RESP_ERR__FATAL) {
          Warn(fmt::format("kafka: committed offsets of group {}: {} (retrying)", group_.group, rd_kafka_err2str(err)));
        }
        return {KafkaError(err, "committed offsets of group " + group_.group), err != RD_KAFKA_RESP_ERR__FATAL};
      }));
      for (int i = 0; i < l.list->cnt; ++i) {
        if (l.list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(l.list->elems[i].err, "committed offsets of group " + group_.group);
        committed[static_cast<size_t>(i)] = l.list->elems[i].offset >= 0 ? l.list->elems[i].offset : -1;
      }
    }
    auto from = group_.handlers.assigned(list, committed);
    if (!from.ok()) return from.status();
    for (size_t i = 0; i < list.size(); ++i) {
      int64_t at = (*from)[i];
      l.list->elems[i].offset = at;
      position_[static_cast<size_t>(list[i])] = at;
      last_end_[static_cast<size_t>(list[i])] = -1;
    }
    ++rebalances_;
    if (!rewind) {
      rd_kafka_resp_err_t err = rd_kafka_assign(consumer_, l.list);
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

  // A member without transactions: the offsets into the group, for Kafka's tools (`mare log
  // groups`, kafka-consumer-groups). Asynchronous: the reader never waits on the coordinator,
  // and a commit refused during a rebalance is of no consequence, as the offsets that count are
  // the ones the owner keeps elsewhere.
  Status CommitOffsets(const std::vector<std::pair<int32_t, int64_t>>& next_offsets) {
    PartitionList offsets(static_cast<int>(next_offsets.size()));
    for (const auto& [p, next] : next_offsets) rd_kafka_topic_partition_list_add(offsets.list, topic_.c_str(), p)->offset = next;
    rd_kafka_resp_err_t err = rd_kafka_commit(consumer_, offsets.list, /*async=*/1);
    return err == RD_KAFKA_RESP_ERR_NO_ERROR ? Status::OK() : KafkaError(err, "commit offsets of group " + group_.group);
  }

  // Just after the last record Poll gave, with the end reached since: past the markers too
  // (nothing a reader is given lies between), so that the group's lag is 0 at the end.
  int64_t PastMarkers(int32_t partition, int64_t next) const {
    size_t p = static_cast<size_t>(partition);
    return p < position_.size() && next == last_end_[p] && position_[p] > next ? position_[p] : next;
  }

  // The transactional producer. Its init fences an earlier incarnation with the same
  // transactional.id (the same member restarted), aborting that one's open transaction.
  Status NewProducer(int64_t retry_us) {
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
    return RetryTransient(retry_us, std::chrono::milliseconds(500), [&](int64_t) -> Attempt {
      Status s = TxnError(rd_kafka_init_transactions(producer_, Ms(options_.request_timeout_us)), "init transactions");
      bool transient = s.code() == Status::Code::kUnavailable;
      return {std::move(s), transient};
    });
  }

  // After a fatal producer error: a new producer, unless another member took our
  // transactional.id (two members with one --member name: the later one wins).
  Status ReplaceProducer() {
    char why[512] = "";
    rd_kafka_resp_err_t err = rd_kafka_fatal_error(producer_, why, sizeof why);
    if (err == RD_KAFKA_RESP_ERR__FENCED || err == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
        err == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH) {
      // Not transient: a retry would fence the other member back, and so on for ever.
      return Status::InvalidArgument(fmt::format("kafka: member {} of group {} was fenced by another with the same name: {}",
                                         group_.member, group_.group, why));
    }
    spdlog::warn("kafka: the transactional producer of group {} failed ({}); starting a new one", group_.group, why);
    rd_kafka_purge(producer_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_destroy(producer_);
    producer_ = nullptr;
    return NewProducer(4 * options_.delivery_timeout_us);
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
    // Fatal (not authorised for the transactional.id, an invalid transaction timeout): no
    // retry or new member mends it, so not transient.
    bool fatal = rd_kafka_error_is_fatal(error);
    rd_kafka_error_destroy(error);
    if (fatal) return Status::InvalidArgument(std::move(m));
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
  std::vector<int64_t> last_end_;  // the offset after the last record Poll gave since assigned; -1: none
  std::vector<rd_kafka_message_t*> held_;
  bool in_transaction_ = false;
  bool failed_ = false;  // the transaction met an error: CommitTransaction aborts and rewinds
  std::string failure_;
  bool closing_ = false;
  uint64_t rebalances_ = 0;
  Status error_;
  int64_t last_warning_us_ = 0;
};

}  // namespace

Result<std::unique_ptr<GroupMember>> JoinGroup(const KafkaLogOptions& options, const GroupOptions& group,
                                               int32_t partitions) {
  auto member = std::make_unique<KafkaGroupMember>(options, group);
  MARE_RETURN_IF_ERROR(member->Init(partitions));
  return std::unique_ptr<GroupMember>(std::move(member));
}

}  // namespace mare::log::kafka
