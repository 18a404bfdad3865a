// Ingest: what every source does with the bytes it receives. Parse and validate them, count
// accepted and rejected readings per source and reason, keep rejects in the dead-letter file,
// and append the accepted readings to the raw topic, keyed and partitioned by sensor.
//
// Each source thread owns a Worker and feeds it many buffers (Add), then appends them in one
// go (Flush): one log batch per partition per flush, however many datagrams it covered. Views
// into the added buffers are kept until Flush, so buffers must not change before it.
//
//   auto worker = ingest.NewWorker("udp");
//   for (each datagram) worker->Add(datagram);
//   Status s = worker->Flush();   // OK: every accepted reading is acknowledged by the log
//
// A reading already accepted (same sensor and timestamp, within options.dedup_horizon_us of the
// sensor's newest) is a duplicate: it is not appended again but rejected as "duplicate", and,
// if its values differ from the first copy's, kept in the dead-letter file with both (the first
// copy wins). The windows (dedup_window.h, one per partition, each behind its own mutex) are
// rebuilt from the raw topic's tail when the first worker is made, so this holds across restarts.
//
// A worker made with Acks::kAsync (UDP, whose senders are never told) does not wait for the
// log in Flush: the readings are handed over (copied) and counted as accepted, or as lost,
// when the log reports on them; the worker waits for the last reports when destroyed.
//
// A worker made with Flushes::kAllOrNothing (HTTP, whose request is answered as a whole)
// appends a flush's partitions together (Log::AppendTogether): on the embedded log and on Kafka
// (a transaction) a flush is then in the log whole or not at all, even if the process is
// killed in the middle of it.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "log/log.h"
#include "reading/parser.h"
#include "reading/dead_letter.h"
#include "sources/dedup_window.h"

namespace mare {

struct IngestOptions {
  ParserOptions parser;
  std::string topic = "raw";
  // How far behind its sensor's newest reading a reading is still recognised as a duplicate
  // (config ingest.dedup_horizon; the rollups' lateness by default, rollup.lateness); 0: off.
  int64_t dedup_horizon_us = 600'000'000;
  // Readings kept per sensor at most (config ingest.dedup_max_per_sensor): 16 bytes each.
  size_t dedup_max_per_sensor = 65'536;
};

// What happened to the readings of one request (the HTTP source reports it to the client).
// Offsets are into the buffer that was added (one Add per report).
struct IngestReport {
  struct Error {
    const char* reason;
    std::string detail;
    size_t offset;  // of the rejected reading in the buffer that was added
  };
  uint64_t accepted = 0;        // valid readings; after Flush(report), those the log acknowledged
  uint64_t unacknowledged = 0;  // valid readings whose partition's append failed in Flush(report)
  uint64_t rejected = 0;
  std::array<uint64_t, kRejectReasonCount> by_reason{};
  std::vector<Error> errors;  // the first max_errors rejects
  size_t max_errors = 10;
  // Where every reading (valid or not, in order) starts, and, ascending, where each
  // unacknowledged one starts: so a client can be told exactly what to send again.
  std::vector<size_t> reading_offsets;
  std::vector<size_t> unacknowledged_offsets;
  const char* buffer = nullptr;  // the buffer added
};

class Ingest {
 public:
  // Whether Flush waits for the log to acknowledge the readings (kWait) or not (kAsync).
  enum class Acks { kWait, kAsync };
  // Whether a flush's partitions are appended one by one (kEach) or together (kAllOrNothing).
  enum class Flushes { kEach, kAllOrNothing };

  Ingest(log::Log* log, IngestOptions options, DeadLetter* dead_letter, metrics::Registry* registry);

  class Worker : private ReadingSink {
   public:
    // Parses the readings in `data` (readable kParsePadding bytes past its end) and queues the
    // accepted ones. `report`, if given, receives counts and the first errors.
    void Add(std::string_view data, IngestReport* report = nullptr);
    // Queues readings a source parsed itself from another format (the line protocol's), whose
    // JSON text, what the log keeps, lies in `buffer`: `produce` hands each one, in order, to the
    // sink it is given, as ReadingParser would (OnReading, the reading's raw within `buffer`, or
    // OnReject), so that they are deduplicated, counted, dead-lettered and appended as Add's.
    // `report` as for Add, its offsets into `buffer`.
    void AddParsed(std::string_view buffer, const std::function<void(ReadingSink&)>& produce,
                   IngestReport* report = nullptr);
    // Rejects a whole buffer without parsing it (an oversized datagram, say).
    void Reject(std::string_view raw, RejectReason reason, std::string detail, IngestReport* report = nullptr);
    // Appends the queued readings to the log, one batch per partition. On error the readings
    // of the partitions whose append failed are not acknowledged, but those of the others are
    // (unless appended together, when the log then keeps none): `report`, if given, is told
    // which (it must be the one given to Add). Under Acks::kAsync it returns OK once they are
    // handed to the log.
    Status Flush(IngestReport* report = nullptr);
    ~Worker();
    size_t queued() const { return queue_.size(); }

   private:
    friend class Ingest;
    Worker(Ingest* ingest, std::string source, Acks acks, Flushes flushes);
    // The outcome of a partition's append, in the report and the dedup windows.
    void Appended(size_t partition, const Status& s, uint64_t* appended, IngestReport* report);
    void Settled(const Status& status, size_t readings);  // an asynchronous append's outcome
    void OnReading(const Reading& reading) override;
    void OnReject(const mare::Reject& reject) override;
    void Count(RejectReason reason, std::string_view detail, std::string_view raw);
    // Admits the queued readings to the partitions' windows and fills by_partition_ with those
    // to append; duplicates are counted and conflicts dead-lettered.
    void Deduplicate(IngestReport* report);
    void Duplicate(size_t index, bool conflict, IngestReport* report);
    // A waited-for append of the partition failed: its new readings (queue_, outcomes_) are
    // forgotten, so a resend must be taken.
    void ForgetClaims(size_t partition);

    struct Queued {
      int64_t timestamp_us;
      int32_t partition;
      uint8_t key_len;
      char key[11];
      std::string_view value;
      uint32_t numbers_at;    // in numbers_
      uint32_t number_count;
      uint32_t sensor_id;
      uint64_t values_hash;
    };
    struct Claim {  // a reading admitted to a window, to forget if its append fails
      uint32_t sensor_id;
      int64_t timestamp_us;
      uint64_t values_hash;
    };
    Ingest* ingest_;
    std::string source_;
    ReadingParser parser_;
    std::vector<Queued> queue_;
    std::vector<NumberField> numbers_;  // the queued readings' numeric fields (views into the buffers)
    std::vector<std::vector<log::Record>> by_partition_;
    std::vector<std::vector<uint32_t>> queued_by_partition_;  // indices into queue_
    std::vector<std::vector<Claim>> claims_;                  // per partition, this flush's (Acks::kAsync only)
    std::vector<DedupWindow::Outcome> outcomes_;              // per queued reading
    IngestReport* report_ = nullptr;
    const char* buffer_start_ = nullptr;
    int64_t now_us_ = 0;
    size_t received_local_ = 0;
    metrics::Counter& received_;
    metrics::Counter& accepted_;
    metrics::Counter& append_errors_;
    metrics::Counter& lost_;
    std::array<metrics::Counter*, kRejectReasonCount> rejected_;
    const Acks acks_;
    const Flushes flushes_;
    std::vector<log::PartitionRecords> parts_;  // kAllOrNothing: this flush's
    std::vector<Status> part_status_;
    std::mutex in_flight_mu_;
    std::condition_variable in_flight_done_;
    size_t in_flight_ = 0;                  // asynchronous appends not settled yet
    std::atomic<int64_t> last_error_log_us_{0};
    std::atomic<uint64_t> lost_unlogged_{0};  // readings lost since the last error logged
  };

  std::unique_ptr<Worker> NewWorker(const std::string& source, Acks acks = Acks::kWait,
                                    Flushes flushes = Flushes::kEach);
  const IngestOptions& options() const { return options_; }
  // Readings held by the dedup windows, all partitions together.
  size_t DedupReadings();

 private:
  struct DedupShard {
    std::mutex mu;
    DedupWindow window;
    DedupShard(int64_t horizon_us, size_t max_per_sensor) : window(horizon_us, max_per_sensor) {}
  };
  void RebuildDedup();
  // The first copy of a reading, read back from the log for a conflict's dead-letter entry.
  std::string FirstCopy(int32_t partition, std::string_view key, int64_t timestamp_us);

  log::Log* log_;
  IngestOptions options_;
  int32_t partitions_;
  log::Partitioner partitioner_;
  DeadLetter* dead_letter_;
  metrics::Registry* registry_;
  std::vector<std::unique_ptr<DedupShard>> dedup_;  // one per partition; empty when off
  std::atomic<int64_t> last_lookup_us_{0};
  std::once_flag prepared_;  // log_->PrepareAppendTogether, for the first kAllOrNothing worker
  std::once_flag rebuilt_;
};

}  // namespace mare
