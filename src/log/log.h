// The log: an ordered, durable, replayable sequence of records per topic partition, with
// Kafka's semantics, so that the embedded implementation (embedded_log.h) and Apache Kafka
// (kafka_log.h) are interchangeable behind it. It knows records and offsets, not readings.
//
// - A topic has a fixed number of partitions; a record goes to one partition and gets the next
//   offset there (0, 1, 2, ...). Offsets never go back and are never reused.
// - A record is (timestamp, key, value): for readings, the event time, the sensor id in
//   decimal, and the reading's JSON. PartitionFor() (log/partitioner.h) maps a sensor to its
//   partition under the topic's partitioner, so one sensor's readings stay in order.
// - A consumer group commits, per partition, the next offset it will read (Kafka's meaning of
//   a committed offset). A consumer that subscribes starts from the committed offset, or from
//   the oldest retained record when the group has none.
//
//   auto log = OpenEmbeddedLog(options);            // Result<std::unique_ptr<Log>>
//   (*log)->CreateTopic({.name = "raw", .partitions = 4});
//   (*log)->Append("raw", 1, records, &first_offset);
//   auto consumer = (*log)->Subscribe("store", "raw");
//   (*consumer)->Poll(&batch, 1000, std::chrono::milliseconds(100));
//   (*consumer)->Commit(batch.back().partition, batch.back().offset + 1);
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/number_field.h"
#include "log/partitioner.h"

namespace mare::log {

struct Record {
  int64_t timestamp_us = 0;  // event time, UTC microseconds
  std::string_view key;
  std::string_view value;
  // The reading's numeric fields as ingest parsed them, carried beside its JSON so that
  // processors need not parse it again (the embedded log keeps them; Kafka does not).
  bool has_numbers = false;
  std::span<const NumberField> numbers;
};

struct ConsumedRecord {
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_us = 0;    // event time
  int64_t append_time_us = 0;  // when the log accepted the record's batch
  std::string_view key;        // views valid until the consumer's next Poll
  std::string_view value;
  // When has_numbers: every numeric field of the reading in `value`, in its order (as
  // ReadingParser gives them), so the value need not be parsed for them.
  bool has_numbers = false;
  std::span<const NumberField> numbers;
};

// One partition's records in Log::AppendTogether.
struct PartitionRecords {
  int32_t partition = 0;
  std::span<const Record> records;
};

// How the embedded log stores a topic's batches (docs/formats/log.md, "Compressed batches"):
// the number is the codec's in a batch's attribute bits 0-2. Kafka's topics are compressed by
// the producer instead (log.kafka.compression).
enum class Compression : uint8_t { kNone = 0, kZstd = 1 };
// The codec of a configuration value ("none" or "zstd", which the configuration checks).
inline Compression CompressionNamed(std::string_view name) {
  return name == "zstd" ? Compression::kZstd : Compression::kNone;
}

struct TopicConfig {
  std::string name;
  int32_t partitions = 4;
  // Keep the newest record of each key (Kafka's cleanup.policy=compact). With retention_us or
  // retention_bytes set as well, records also go by age or size (cleanup.policy=compact,delete).
  bool compact = false;
  int64_t retention_us = 7LL * 86'400'000'000;  // by append time; 0 keeps forever
  int64_t retention_bytes = 0;                  // per partition; 0 means no size limit
  // How records are placed, for a new topic; an existing one keeps its own (Log::TopicPartitioner).
  Partitioner partitioner = Partitioner::kMurmur2;
  // The codec of the batches appended (and rewritten by compaction) from now on; batches already
  // written stay as they are. Unset: none for a new topic, unchanged for an existing one, so that
  // a reader creating a topic it follows does not turn its writer's choice off.
  std::optional<Compression> compression;
};

struct PartitionInfo {
  int32_t partition = 0;
  int64_t start_offset = 0;  // oldest retained offset
  int64_t end_offset = 0;    // offset the next record will get
  int64_t bytes = 0;         // on disk
  int32_t segments = 0;
  int64_t oldest_append_time_us = 0;  // 0 when empty
  int64_t newest_append_time_us = 0;
};

class Consumer {
 public:
  virtual ~Consumer() = default;
  // Next offset Poll will return for the partition.
  virtual int64_t Position(int32_t partition) const = 0;
  // Moves to an offset (clamped to the retained range).
  virtual Status Seek(int32_t partition, int64_t offset) = 0;
  // Appends up to max_records to *out (cleared first), in offset order within each partition,
  // waiting up to `timeout` for at least one. OK with nothing read on timeout.
  virtual Status Poll(std::vector<ConsumedRecord>* out, size_t max_records, std::chrono::milliseconds timeout) = 0;
  // Durably records next_offset as the group's position for the partition.
  virtual Status Commit(int32_t partition, int64_t next_offset) = 0;
  // The group's committed position, or -1 if it never committed.
  virtual int64_t Committed(int32_t partition) const = 0;
  // The partition's end offset as this consumer last learnt it, without waiting on anything
  // remote (so a lag metric never stalls the consumer while a broker is away); -1 while unknown.
  virtual int64_t EndOffset(int32_t partition) const = 0;
  // For each (partition, time): the oldest offset whose record was appended at that time or
  // later (the partition's end if none), as the log's own index by append time answers it, in
  // one request for all (Kafka's ListOffsets by timestamp). nullopt where the log keeps no such
  // index (the embedded log, whose local reads make a bisection on the records cheap instead).
  virtual Result<std::optional<std::vector<int64_t>>> OffsetsForTimes(
      const std::vector<std::pair<int32_t, int64_t>>& /*times_us*/) {
    return std::optional<std::vector<int64_t>>();
  }

  // Records between next(p) (by default Position(p)) and the end of each of the first
  // `partitions` partitions, as last learnt (EndOffset), summed over those whose end is known;
  // -1 while none is. For lag metrics, which must never wait on a broker.
  int64_t Lag(int32_t partitions, const std::function<int64_t(int32_t)>& next = nullptr) const {
    int64_t lag = 0;
    bool known = false;
    for (int32_t p = 0; p < partitions; ++p) {
      int64_t end = EndOffset(p);
      if (end < 0) continue;
      known = true;
      lag += std::max<int64_t>(0, end - (next ? next(p) : Position(p)));
    }
    return known ? lag : -1;
  }
};

// A member of a consumer group: it shares a topic's partitions with the group's other members
// (on other machines), and writes what it derives from them in transactions, so that the
// records it produces and its input positions are committed together or not at all (Kafka's
// read-process-write exactly-once, KIP-98/KIP-447). Kafka only.
class GroupMember {
 public:
  struct Handlers {
    // Partitions taken away (a rebalance, or a transaction that had to be aborted). The open
    // transaction is already aborted: forget everything not committed about them.
    std::function<void(const std::vector<int32_t>& partitions)> revoked;
    // Partitions given, with the group's committed next offset for each (-1 if none), read
    // once no transaction is pending on them. Returns the offset to read each from.
    std::function<Result<std::vector<int64_t>>(const std::vector<int32_t>& partitions,
                                               const std::vector<int64_t>& committed)>
        assigned;
    // Optional: partitions taken away because the member lost them (its session expired, or it
    // polled too late), instead of `revoked`: others may own and write them already, so nothing
    // more may be written or committed about them. Unset: `revoked` is called for both.
    std::function<void(const std::vector<int32_t>& partitions)> lost;
  };
  virtual ~GroupMember() = default;

  // Records of the assigned partitions, as Consumer::Poll. The handlers run inside it.
  virtual Status Poll(std::vector<ConsumedRecord>* out, size_t max_records, std::chrono::milliseconds timeout) = 0;
  virtual std::vector<int32_t> Assignment() const = 0;
  virtual int64_t Position(int32_t partition) const = 0;   // -1 if not assigned
  virtual int64_t EndOffset(int32_t partition) const = 0;  // as last learnt, -1 while unknown
  // Adds records to the current transaction (begun by the first Produce after a commit).
  virtual Status Produce(std::string_view topic, int32_t partition, std::span<const Record> records) = 0;
  // Commits the transaction together with the input's next offsets (partition, offset). If the
  // transaction had to be aborted instead, the handlers have rewound the member to what was
  // last committed (revoked, then assigned again) and the result is OK: nothing is lost, the
  // rewound records are read again.
  virtual Status CommitTransaction(const std::vector<std::pair<int32_t, int64_t>>& next_offsets) = 0;
  // The newest committed value of every key in some partitions of a topic (a compacted one).
  virtual Status ReadLatest(std::string_view topic, const std::vector<int32_t>& partitions,
                            std::map<std::pair<int32_t, std::string>, std::string>* out) = 0;
  // Whether another member with the same name has taken this one's place (its transactional
  // producer fenced): joining again would fence that one back, and so on for ever.
  virtual bool fenced() const = 0;
};

struct GroupOptions {
  std::string group;   // consumer group, shared by the members
  std::string topic;   // input
  std::string member;  // this member's name, unique in the group (part of its transactional.id)
  GroupMember::Handlers handlers;
  // How long joining retries starting the transactional producer while the brokers answer that
  // they are not ready (just started); -1: 4 x log.kafka.delivery_timeout. A caller that retries
  // with its own backoff (a rejoin, which Stop must be able to interrupt) gives 0: one attempt.
  int64_t start_timeout_us = -1;
  // False for a member that only reads (a sink that saves its positions in its destination):
  // no transactional producer, so no fencing and no need for a unique name; Produce fails, and
  // CommitTransaction only records the offsets in the group (for Kafka's tools), unordered.
  bool transactional = true;
};

class Log {
 public:
  virtual ~Log() = default;

  // Joins a consumer group as a transactional member (Kafka). The embedded log, which one
  // process owns, has no groups: InvalidArgument.
  virtual Result<std::unique_ptr<GroupMember>> JoinGroup(const GroupOptions& options) {
    return Status::InvalidArgument("consumer groups with transactions (" + options.group + ") need log.kind = \"kafka\"");
  }

  // Whether JoinGroup works: consumers in other processes can share a topic's partitions.
  virtual bool HasGroups() const { return false; }

  // Creates the topic if absent; an existing topic keeps its partition count.
  virtual Status CreateTopic(const TopicConfig& config) = 0;
  virtual std::vector<std::string> Topics() const = 0;
  // Number of partitions of a topic, or 0 if there is no such topic.
  virtual int32_t Partitions(std::string_view topic) const = 0;
  virtual Result<std::vector<PartitionInfo>> Describe(std::string_view topic) const = 0;
  // How the topic places a sensor's records: murmur2 of the key as every Kafka producer, except
  // on embedded topics created before mare did, which keep sensor_id mod partitions (their data
  // and the rollup state kept per partition were placed so).
  virtual Partitioner TopicPartitioner(std::string_view) const { return Partitioner::kMurmur2; }

  // Appends the records, in order, to one partition as one batch. When it returns OK the
  // records are acknowledged: written to the operating system (so they survive the process
  // being killed) and, under fsync = "batch", on stable storage. *first_offset, if given,
  // receives the first record's offset.
  virtual Status Append(std::string_view topic, int32_t partition, std::span<const Record> records,
                        int64_t* first_offset = nullptr) = 0;

  // Appends each part's records to its partition, as Append would, but together: the embedded
  // log keeps all of the parts or none, even when the process is killed between their writes
  // (docs/formats/log.md, "Groups"), and Kafka commits them in one transaction. By default (a
  // wrapper's) the parts are appended one by one and a failure or a crash can keep some of
  // them. *results receives, per part, what Append would have returned (an atomic log gives
  // all the same status); the first error is returned. The partitions must differ.
  virtual Status AppendTogether(std::string_view topic, std::span<const PartitionRecords> parts,
                                std::vector<Status>* results) {
    Status first;
    results->assign(parts.size(), Status::OK());
    for (size_t i = 0; i < parts.size(); ++i) {
      (*results)[i] = Append(topic, parts[i].partition, parts[i].records);
      if (first.ok()) first = (*results)[i];
    }
    return first;
  }

  // Readies AppendTogether before its first call, which would otherwise: Kafka makes its
  // transactional producer, whose start fences a predecessor with the same transactional.id
  // (the process killed before this one) and aborts the transaction it left open, so that
  // read_committed readers of those partitions, this process's own start among them, see them
  // to the end at once. A failure is said and left to the first call to mend.
  virtual Status PrepareAppendTogether() { return Status::OK(); }

  // As Append, but returns once the records are queued, without waiting for the log to
  // acknowledge them: `done` runs exactly once with what Append would have returned, when
  // they are acknowledged or have failed, perhaps on another thread and perhaps before
  // AppendAsync returns. The records are copied; their memory may be reused at once. For
  // sources whose senders get no acknowledgement anyway (UDP), so that receiving never waits
  // on a broker's round trip. Appends of one caller to a partition keep their order.
  virtual void AppendAsync(std::string_view topic, int32_t partition, std::span<const Record> records,
                           std::function<void(const Status&)> done) {
    done(Append(topic, partition, records));
  }

  // A consumer of every partition of `topic` for consumer group `group`.
  virtual Result<std::unique_ptr<Consumer>> Subscribe(const std::string& group, const std::string& topic) = 0;

  // Consumer groups with committed positions on the topic.
  virtual std::vector<std::string> Groups(std::string_view topic) const = 0;

  // Forces everything appended so far to stable storage.
  virtual Status Sync() = 0;

  // Runs now what the log does in the background: rolls aged segments, applies retention and
  // compacts compacted topics (the embedded log; Kafka's brokers do this by themselves).
  virtual Status Maintain() { return Status::OK(); }
};

}  // namespace mare::log
