// The Kafka log's appends to several partitions together (Log::AppendTogether, HTTP ingest's
// requests), all or nothing: one transaction of a transactional producer per group of calls.
//
// Calls that arrive while a transaction commits wait, and the next transaction holds all of
// them (a group commit): one commit's round trips are shared by the requests in flight, and a
// failed transaction fails every call in it, with nothing of any of them visible to
// read_committed consumers, except that a call whose records the brokers refuse for good (over
// the topic's max.message.bytes, say) does not fail the others: they run again without it, in
// a new transaction. The producer is made by Start (HTTP ingest's, before the process reads the
// log back) or at the first call, so a process that never appends together (mare stream, mare
// store) has none.
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

  // Makes the producer now, if there is none: its start fences a predecessor with the same
  // transactional.id and aborts the transaction it left open, so that read_committed readers
  // of its partitions (this process's own start among them) need not wait for the brokers'
  // transaction timeout. Its failure is the next call's to retry.
  Status Start();

  // As Log::AppendTogether to a topic's Kafka name: every part is committed, in one
  // transaction with those of concurrent calls, or none is, and every result is then the error.
  Status Append(const std::string& name, std::span<const PartitionRecords> parts, std::vector<Status>* results);

 private:
  struct Call {
    const std::string* name;
    std::span<const PartitionRecords> parts;
    Status status;
    bool done = false;
    // The leader's: the first error with which the brokers refused a record of this call for
    // good (not a broker away or a timeout) in the transaction being run.
    rd_kafka_resp_err_t refused = RD_KAFKA_RESP_ERR_NO_ERROR;
  };
  struct Outcome {
    Status status;
    bool aborted = false;  // nothing of it is committed: its calls may run again
  };

  // Sets every call's status: their transaction's outcome, but for calls refused in part
  // (Call::refused), which are split off (see the .cc).
  void Commit(const std::vector<Call*>& calls);
  // One transaction holding every call's parts.
  Outcome Transaction(const std::vector<Call*>& calls);
  // What happens after a transaction that could not commit: aborted (nothing stored), or the
  // producer dropped (a fatal error, an abort that did not finish).
  Outcome Abort(const std::string& why);
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
  rd_kafka_resp_err_t delivery_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;  // the first but purges
  rd_kafka_resp_err_t refused_ = RD_KAFKA_RESP_ERR_NO_ERROR;         // a record refused for good
  // The transaction being run (a record's opaque is its call's index in it, with the
  // transaction's number, so that the late report of a purged record touches no call).
  const std::vector<Call*>* running_ = nullptr;
  uint32_t transaction_ = 0;

  metrics::Counter* produced_;
  metrics::Counter* failed_;
  metrics::Counter* commits_;
  metrics::Counter* aborts_;
  metrics::Counter* unknown_;
  metrics::Counter* rerun_;
};

}  // namespace mare::log::kafka
