#include "log/kafka_log.h"

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <thread>

#include <unistd.h>

#include "common/time.h"
#include "log/kafka_client.h"
#include "log/kafka_consumer.h"
#include "log/kafka_group_member.h"
#include "log/kafka_producer.h"
#include "log/kafka_transactions.h"

namespace mare::log {
namespace kafka {
namespace {

std::string Host() {
  char host[256] = "host";
  ::gethostname(host, sizeof host - 1);
  return host;
}

class KafkaLog final : public Log {
 public:
  KafkaLog(const KafkaLogOptions& options, std::unique_ptr<Producer> producer)
      : options_(options), producer_(std::move(producer)), client_(producer_->handle()) {}

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
    std::string retention_ms = config.retention_us > 0 ? std::to_string(config.retention_us / 1000) : "-1";
    std::string retention_bytes = config.retention_bytes > 0 ? std::to_string(config.retention_bytes) : "-1";
    rd_kafka_NewTopic_set_config(topic, "retention.ms", retention_ms.c_str());
    rd_kafka_NewTopic_set_config(topic, "retention.bytes", retention_bytes.c_str());
    rd_kafka_NewTopic_set_config(topic, "message.timestamp.type", "LogAppendTime");
    // compact with a retention: the newest record of each key, for as long as the retention
    // (the rollups); compact alone: the newest of each key forever (the rollup state).
    bool also_delete = config.retention_us > 0 || config.retention_bytes > 0;
    if (config.compact) rd_kafka_NewTopic_set_config(topic, "cleanup.policy", also_delete ? "compact,delete" : "compact");
    // acks=all then means on two brokers at least, while one of three may be down.
    rd_kafka_NewTopic_set_config(topic, "min.insync.replicas", options_.replication_factor >= 3 ? "2" : "1");
    rd_kafka_AdminOptions_t* admin = rd_kafka_AdminOptions_new(client_, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(admin, Ms(options_.request_timeout_us), err, sizeof err);
    rd_kafka_AdminOptions_set_operation_timeout(admin, Ms(options_.request_timeout_us), err, sizeof err);
    rd_kafka_queue_t* queue = rd_kafka_queue_new(client_);
    rd_kafka_CreateTopics(client_, &topic, 1, admin, queue);
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
      MARE_RETURN_IF_ERROR(Watermarks(client_, name, p, options_.request_timeout_us, &info.start_offset, &info.end_offset));
    }
    return out;
  }

  Status Append(std::string_view topic, int32_t partition, std::span<const Record> records,
                int64_t* first_offset) override {
    return producer_->Append(Name(topic), partition, records, first_offset);
  }

  void AppendAsync(std::string_view topic, int32_t partition, std::span<const Record> records,
                   std::function<void(const Status&)> done) override {
    producer_->AppendAsync(Name(topic), partition, records, std::move(done));
  }

  // In one transaction, all or nothing (kafka_transactions.h), unless atomic_ingest is off. One
  // part too: a partition's records can go in several produce requests, of which a plain append
  // can keep some.
  Status AppendTogether(std::string_view topic, std::span<const PartitionRecords> parts,
                        std::vector<Status>* results) override {
    if (!options_.atomic_ingest) return Log::AppendTogether(topic, parts, results);
    for (size_t i = 0; i < parts.size(); ++i) {
      for (size_t j = i + 1; j < parts.size(); ++j) {
        if (parts[i].partition == parts[j].partition) {
          Status twice = Status::InvalidArgument(fmt::format("kafka: partition {} twice in one append", parts[i].partition));
          results->assign(parts.size(), twice);
          return twice;
        }
      }
    }
    return Transactions()->Append(Name(topic), parts, results);
  }

  Status PrepareAppendTogether() override {
    if (!options_.atomic_ingest) return Status::OK();
    return Transactions()->Start();
  }

  Result<std::unique_ptr<Consumer>> Subscribe(const std::string& group, const std::string& topic) override {
    int32_t n = Partitions(topic);
    if (n == 0) return Status::NotFound(fmt::format("kafka: no topic {}", Name(topic)));
    return kafka::Subscribe(options_, group, topic, n);
  }

  bool HasGroups() const override { return true; }

  Result<std::unique_ptr<GroupMember>> JoinGroup(const GroupOptions& options) override {
    int32_t n = Partitions(options.topic);
    if (n == 0) return Status::NotFound(fmt::format("kafka: no topic {}", Name(options.topic)));
    return kafka::JoinGroup(options_, options, n);
  }

  std::vector<std::string> Groups(std::string_view topic) const override {
    std::vector<std::string> out;
    std::string name = Name(topic);
    char err[512];
    rd_kafka_queue_t* queue = rd_kafka_queue_new(client_);
    rd_kafka_AdminOptions_t* admin = rd_kafka_AdminOptions_new(client_, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
    rd_kafka_AdminOptions_set_request_timeout(admin, Ms(options_.request_timeout_us), err, sizeof err);
    rd_kafka_ListConsumerGroups(client_, admin, queue);
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
      admin = rd_kafka_AdminOptions_new(client_, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
      rd_kafka_AdminOptions_set_request_timeout(admin, Ms(options_.request_timeout_us), err, sizeof err);
      rd_kafka_ListConsumerGroupOffsets(client_, &request, 1, admin, queue);
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

  TransactionalAppender* Transactions() {
    std::call_once(transactions_made_, [this] {
      std::string id = options_.transactional_id.empty() ? options_.client_id + "-" + Host() : options_.transactional_id;
      transactions_ = std::make_unique<TransactionalAppender>(options_, options_.topic_prefix + id);
    });
    return transactions_.get();
  }

  Status ListTopics(std::map<std::string, int32_t>* out) const {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(client_, /*all_topics=*/1, nullptr, &md, Ms(options_.request_timeout_us));
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
    rd_kafka_resp_err_t err = rd_kafka_metadata(client_, 1, nullptr, &md, Ms(options_.request_timeout_us));
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

  KafkaLogOptions options_;
  std::unique_ptr<Producer> producer_;
  std::once_flag transactions_made_;
  std::unique_ptr<TransactionalAppender> transactions_;  // at the first AppendTogether or its Prepare
  rd_kafka_t* client_;  // the producer's, for metadata and admin requests
  mutable std::mutex mu_;
  mutable std::map<std::string, int32_t, std::less<>> partitions_;
};

}  // namespace
}  // namespace kafka

Result<std::unique_ptr<Log>> OpenKafkaLog(const KafkaLogOptions& options) {
  if (options.brokers.empty()) return Status::InvalidArgument("kafka: no brokers given (log.kafka.brokers)");
  const int64_t since = MonotonicMicros();  // a refusal met by any of the clients made from here
  auto producer = kafka::Producer::Open(options);
  if (!producer.ok()) return producer.status();
  auto log = std::make_unique<kafka::KafkaLog>(options, std::move(*producer));
  Status s = log->Connect();
  if (!s.ok()) MARE_RETURN_IF_ERROR(kafka::RefusalSince(since));
  if (s.code() == Status::Code::kUnavailable) {
    return Status::Unavailable(s.message() + " (is Kafka running at " + options.brokers + "?)");
  }
  MARE_RETURN_IF_ERROR(s);  // not a broker away: waiting will not mend it
  return std::unique_ptr<Log>(std::move(log));
}

}  // namespace mare::log
