// The Kafka log's appends to several partitions together (Log::AppendTogether, HTTP ingest's
// requests), all or nothing: one transaction of a transactional producer per group of calls.
//
// Calls that arrive while a transaction commits wait, and the next transaction holds all of
// them (a group commit): one commit's round trips are shared by the requests in flight, and a
// failed transaction fails every call in it, with nothing of any of them visible to
// read_committed consumers. The producer is made at the first call, so a process that never
// appends together (mare stream, mare store) has none.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "log/kafka_options.h"
#include "log/log.h"

namespace mare::log::kafka {

class TransactionalAppender {
 public:
  // transactional_id is Kafka's (with the topic prefix): the same for a process restarted on
  // the same node, whose producer's start then fences its predecessor and aborts the
  // transaction it left open (which read_committed readers would otherwise wait on).
  TransactionalAppender(const KafkaLogOptions& options, std::string transactional_id);
  ~TransactionalAppender();
  TransactionalAppender(const TransactionalAppender&) = delete;
  TransactionalAppender& operator=(const TransactionalAppender&) = delete;

  // As Log::AppendTogether to a topic's Kafka name: every part is committed, in one
  // transaction with those of concurrent calls, or none is, and every result is then the error.
  Status Append(const std::string& name, std::span<const PartitionRecords> parts, std::vector<Status>* results);

 private:
  struct Call {
    const std::string* name;
    std::span<const PartitionRecords> parts;
    Status status;
    bool done = false;
  };

  // One transaction holding every call's parts; the status each call gets.
  Status Commit(const std::vector<Call*>& calls);
  // What happens after a transaction that could not commit: aborted (nothing stored), or the
  // producer dropped (a fatal error, an abort that did not finish).
  Status Abort(const std::string& why);
  Status StartProducer();
  void DropProducer();
  bool Fatal() const;  // the producer is in a fatal error: only a new one can go on
  Status TxnError(rd_kafka_error_t* error, const char* what);
  static void Delivered(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque);

  KafkaLogOptions options_;
  std::string transactional_id_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Call*> waiting_;  // guarded by mu_
  bool leading_ = false;       // a call is running transactions; guarded by mu_

  // The leader's alone.
  rd_kafka_t* producer_ = nullptr;
  // The brokers fenced the producer: another process took the transactional.id, or they timed
  // out a transaction of this one (both end in the same error). Calls fail until fenced_until_,
  // then a new producer takes the id back, so that a timed-out transaction does not stop ingest
  // for good; two processes sharing an id take turns, each saying so in its log.
  Status fenced_;
  std::chrono::steady_clock::time_point fenced_until_;
  rd_kafka_resp_err_t delivery_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;

  metrics::Counter* produced_;
  metrics::Counter* failed_;
  metrics::Counter* commits_;
  metrics::Counter* aborts_;
  metrics::Counter* unknown_;
};

}  // namespace mare::log::kafka
