#include "log/kafka_transactions.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <deque>
#include <thread>
#include <utility>

#include "common/time.h"
#include "log/kafka_client.h"
#include "log/kafka_record.h"
#include "log/log_metrics.h"
#include "log/refusal_split.h"

namespace mare::log::kafka {

// How long requests are refused after the brokers fenced the producer, before a new one takes
// the transactional.id back: long enough for two processes sharing an id to show in their logs.
constexpr std::chrono::seconds kFencedPause{5};

namespace {

// The brokers' (or librdkafka's) refusal of a record itself, which sending it again will not
// mend: not a broker away, a leader moving or a timeout.
bool RefusedForGood(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:  // over the topic's max.message.bytes, or librdkafka's
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
      return true;
    default:
      return false;
  }
}

}  // namespace

TransactionalAppender::TransactionalAppender(const KafkaLogOptions& options, std::string transactional_id)
    : options_(options), transactional_id_(std::move(transactional_id)) {
  metrics::Registry* r = options.metrics ? options.metrics : &metrics::Registry::Global();
  produced_ = &r->GetCounter(log_metrics::kKafkaRecordsProduced);
  failed_ = &r->GetCounter(log_metrics::kKafkaAppendsFailed);
  commits_ = &r->GetCounter(log_metrics::kKafkaTransactions, {{"outcome", "committed"}});
  aborts_ = &r->GetCounter(log_metrics::kKafkaTransactions, {{"outcome", "aborted"}});
  unknown_ = &r->GetCounter(log_metrics::kKafkaTransactions, {{"outcome", "unknown"}});
  rerun_ = &r->GetCounter(log_metrics::kKafkaAppendsRerun);
}

TransactionalAppender::~TransactionalAppender() {
  // Every call has returned (the log outlives its callers): no transaction is open.
  if (producer_) rd_kafka_destroy(producer_);
}

Status TransactionalAppender::Start() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !leading_; });
  leading_ = true;  // the producer is the leader's alone
  lock.unlock();
  Status s = StartProducer();
  lock.lock();
  leading_ = false;
  cv_.notify_all();
  return s;
}

Status TransactionalAppender::Append(const std::string& name, std::span<const PartitionRecords> parts,
                                     std::vector<Status>* results) {
  Call call{&name, parts, Status::OK()};
  std::unique_lock lock(mu_);
  waiting_.push_back(&call);
  // The first caller leads: it runs transactions for everyone waiting until its own is done,
  // then hands over to a waiter, if any.
  cv_.wait(lock, [&] { return call.done || !leading_; });
  while (!call.done) {
    leading_ = true;
    std::vector<Call*> calls(waiting_.begin(), waiting_.end());
    waiting_.clear();
    lock.unlock();
    Commit(calls);
    lock.lock();
    for (Call* c : calls) c->done = true;
    leading_ = false;
    cv_.notify_all();
  }
  lock.unlock();
  results->assign(parts.size(), call.status);
  return call.status;
}

void TransactionalAppender::Delivered(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  // Delivery reports run inside the leader's calls (commit, abort, poll).
  auto* self = static_cast<TransactionalAppender*>(opaque);
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
  // A purge (the abort's) says nothing of why: the error that made it is kept.
  if (self->delivery_error_ == RD_KAFKA_RESP_ERR_NO_ERROR && m->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE &&
      m->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
    self->delivery_error_ = m->err;
  }
  const auto tag = reinterpret_cast<uintptr_t>(m->_private);
  const size_t i = static_cast<uint32_t>(tag);
  if (!RefusedForGood(m->err) || self->running_ == nullptr || static_cast<uint32_t>(tag >> 32) != self->transaction_) {
    return;
  }
  self->refused_ = m->err;
  if (i >= self->running_->size()) return;
  Call* c = (*self->running_)[i];
  if (c->refused == RD_KAFKA_RESP_ERR_NO_ERROR) c->refused = m->err;
}

Status TransactionalAppender::StartProducer() {
  if (!fenced_.ok()) {
    if (std::chrono::steady_clock::now() < fenced_until_) return fenced_;
    fenced_ = Status::OK();
  }
  if (producer_) return Status::OK();
  std::string timeout_ms = std::to_string(options_.delivery_timeout_us / 1000);
  // A transaction left open (mare killed mid-request, on a node it does not come back to) holds
  // read_committed readers of its partitions until the brokers abort it: as long as an append
  // may take, and 5 s more. librdkafka refuses a socket timeout above it (+100 ms).
  const int64_t txn_timeout_ms = options_.delivery_timeout_us / 1000 + 5000;
  const int64_t socket_timeout_ms = std::min(options_.request_timeout_us / 1000, txn_timeout_ms);
  auto conf = MakeConf(options_,
                       {{"compression.codec", options_.compression},
                        // The commit sends at once whatever is queued: a linger only delays it.
                        {"linger.ms", "0"},
                        {"message.timeout.ms", timeout_ms},
                        {"socket.timeout.ms", std::to_string(socket_timeout_ms)},
                        {"transaction.timeout.ms", std::to_string(txn_timeout_ms)}},
                       {{"enable.idempotence", "true"}, {"acks", "all"}, {"transactional.id", transactional_id_}});
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_dr_msg_cb(*conf, Delivered);
  rd_kafka_conf_set_opaque(*conf, this);
  auto p = NewClient(RD_KAFKA_PRODUCER, *conf);
  if (!p.ok()) return p.status();
  producer_ = *p;
  // Fences an earlier producer with this transactional.id and aborts its open transaction. A
  // coordinator still loading (brokers just started) answers "not ready" for a while.
  Status s = RetryTransient(options_.delivery_timeout_us, std::chrono::milliseconds(500), [&](int64_t left_us) -> Attempt {
    Status t = TxnError(rd_kafka_init_transactions(producer_, Ms(std::min(left_us, options_.request_timeout_us))),
                        "init transactions");
    bool transient = t.code() == Status::Code::kUnavailable;
    return {std::move(t), transient};
  });
  if (!s.ok()) DropProducer();
  return s;
}

bool TransactionalAppender::Fatal() const {
  char why[512];
  return rd_kafka_fatal_error(producer_, why, sizeof why) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

void TransactionalAppender::DropProducer() {
  if (producer_ == nullptr) return;
  char why[512] = "";
  rd_kafka_resp_err_t err = rd_kafka_fatal_error(producer_, why, sizeof why);
  if (err == RD_KAFKA_RESP_ERR__FENCED || err == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
      err == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH) {
    // Another process took the transactional.id (the same node and http.listen), or the brokers
    // timed out a transaction of this one: a pause, then a new producer takes the id back.
    fenced_ = Status::IOError(fmt::format(
        "kafka: the brokers fenced transactional.id {} (another process with the same node and http.listen took it, "
        "or they timed out a transaction of this one): requests refused for {} s, then a new producer takes it back: {}",
        transactional_id_, std::chrono::duration_cast<std::chrono::seconds>(kFencedPause).count(), why));
    fenced_until_ = std::chrono::steady_clock::now() + kFencedPause;
    spdlog::error("{}", fenced_.message());
  }
  rd_kafka_purge(producer_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_destroy(producer_);
  producer_ = nullptr;
}

Status TransactionalAppender::TxnError(rd_kafka_error_t* error, const char* what) {
  if (error == nullptr) return Status::OK();
  std::string m = fmt::format("kafka: {} ({}): {}", what, transactional_id_, rd_kafka_error_string(error));
  // Unavailable only for what asking again may mend (a timeout): a transaction to abort, or a
  // fatal error, is not.
  bool retriable = rd_kafka_error_is_retriable(error) && !rd_kafka_error_txn_requires_abort(error) &&
                   !rd_kafka_error_is_fatal(error);
  rd_kafka_error_destroy(error);
  return retriable ? Status::Unavailable(std::move(m)) : Status::IOError(std::move(m));
}

// A transaction aborted because the brokers refused records of one call for good (a reading over
// the topic's max.message.bytes) would fail every call grouped with it. Checking each call's
// records against the limit before it joins cannot be exact: the brokers judge a compressed
// batch, which librdkafka may fill with several calls' records, against a topic setting that
// can change at any time. So the calls run again, split as refusal_split.h says (nothing of an
// aborted transaction is stored, so each record is stored once).
void TransactionalAppender::Commit(const std::vector<Call*>& calls) {
  std::deque<std::vector<Call*>> groups{calls};
  for (bool first = true; !groups.empty(); first = false) {
    std::vector<Call*> group = std::move(groups.front());
    groups.pop_front();
    if (!first) rerun_->Add(group.size());
    for (Call* c : group) c->refused = RD_KAFKA_RESP_ERR_NO_ERROR;
    running_ = &group;
    ++transaction_;  // the reports of earlier transactions' records, purged, now touch no call
    Outcome o = Transaction(group);
    running_ = nullptr;
    if (o.aborted && refused_ != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // librdkafka 2.0 keeps the partition's sequence numbers past the refused records: the
      // next transaction would fail ("skipped sequence numbers"), whoever's it is, unless a new
      // producer (a new epoch) runs it.
      DropProducer();
    }
    if (!o.aborted || refused_ == RD_KAFKA_RESP_ERR_NO_ERROR || group.size() == 1) {
      for (Call* c : group) c->status = o.status;
      continue;
    }
    std::vector<bool> named(group.size());
    for (size_t i = 0; i < group.size(); ++i) named[i] = group[i]->refused != RD_KAFKA_RESP_ERR_NO_ERROR;
    RefusalSplit split = SplitAfterRefusal(named);
    if (split.fails) {
      Call* c = group[*split.fails];
      c->status = Status::Unavailable(KafkaError(c->refused, fmt::format("produce to {}", *c->name)).message() +
                                      " (the brokers refused it for good, so its transaction is aborted: nothing of "
                                      "this request is stored; the other requests in it ran again without it)");
    }
    for (const std::vector<size_t>& again : split.run_again) {
      std::vector<Call*> next;
      for (size_t i : again) next.push_back(group[i]);
      groups.push_back(std::move(next));
    }
  }
}

TransactionalAppender::Outcome TransactionalAppender::Transaction(const std::vector<Call*>& calls) {
  size_t records = 0;
  for (const Call* c : calls) {
    for (const PartitionRecords& part : c->parts) records += part.records.size();
  }
  if (records == 0) return {};
  // Cleared before the producer's start: a start that fails must not leave the previous
  // transaction's refusal standing, which would split this group as if one of it were refused.
  delivery_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;
  refused_ = RD_KAFKA_RESP_ERR_NO_ERROR;
  Status s = StartProducer();
  if (!s.ok()) {
    failed_->Add();
    return {Status::Unavailable(s.message() + " (nothing of this request is stored)"), true};
  }
  rd_kafka_poll(producer_, 0);  // the reports of an aborted transaction's purged records
  delivery_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;  // and again: those reports say nothing of this one
  refused_ = RD_KAFKA_RESP_ERR_NO_ERROR;
  s = TxnError(rd_kafka_begin_transaction(producer_), "begin transaction");
  if (!s.ok()) return Abort(s.message());
  for (size_t i = 0; i < calls.size(); ++i) {
    Call* c = calls[i];
    // The call's index and this transaction's number, for the delivery report.
    void* tag = reinterpret_cast<void*>(static_cast<uintptr_t>(transaction_) << 32 | i);
    for (const PartitionRecords& part : c->parts) {
      for (const Record& r : part.records) {
        char ts[24];
        auto [end, ec] = std::to_chars(ts, ts + sizeof ts, r.timestamp_us);
        rd_kafka_resp_err_t err;
        for (;;) {
          err = rd_kafka_producev(producer_, RD_KAFKA_V_TOPIC(c->name->c_str()), RD_KAFKA_V_PARTITION(part.partition),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_KEY(const_cast<char*>(r.key.data()), r.key.size()),
                                  RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
                                  RD_KAFKA_V_HEADER(kEventTimeHeader, ts, (end - ts)), RD_KAFKA_V_OPAQUE(tag),
                                  RD_KAFKA_V_END);
          if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
          rd_kafka_poll(producer_, 1);  // delivery reports make room
        }
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          if (RefusedForGood(err)) c->refused = refused_ = err;
          return Abort(KafkaError(err, fmt::format("produce to {} partition {}", *c->name, part.partition)).message());
        }
      }
    }
  }
  // Waits for every record's delivery (each fails by message.timeout.ms at the latest), then
  // commits. A delivery that failed makes the transaction one to abort.
  const int64_t wait_us = options_.delivery_timeout_us + options_.request_timeout_us;
  rd_kafka_error_t* error = rd_kafka_commit_transaction(producer_, Ms(wait_us));
  // The transaction's error: librdkafka 2.0 purges the refused record with the others, so that
  // its own delivery report may not say why.
  if (error != nullptr && RefusedForGood(rd_kafka_error_code(error))) refused_ = rd_kafka_error_code(error);
  s = TxnError(error, "commit transaction");
  if (s.code() == Status::Code::kUnavailable && !Fatal()) {
    // Retriable (timed out): the commit goes on in the background; asking again waits for it.
    s = TxnError(rd_kafka_commit_transaction(producer_, Ms(options_.request_timeout_us)), "commit transaction");
  }
  if (s.ok()) {
    commits_->Add();
    produced_->Add(records);
    return {s, false};
  }
  if (s.code() == Status::Code::kUnavailable || Fatal()) {
    // Still no answer, or a fatal error (librdkafka's can follow a commit the brokers did make):
    // the commit may have reached the coordinator, which then completes it. The next producer's
    // start settles it either way, but not in a way this call can learn.
    unknown_->Add();
    failed_->Add();
    DropProducer();
    return {Status::Unavailable(s.message() +
                                " (the outcome is unknown: the request may be stored whole, or not at all; never in part)"),
            false};
  }
  if (delivery_error_ != RD_KAFKA_RESP_ERR_NO_ERROR) {
    s = KafkaError(delivery_error_, fmt::format("produce to {}", *calls.front()->name));
  }
  return Abort(s.message());
}

TransactionalAppender::Outcome TransactionalAppender::Abort(const std::string& why) {
  failed_->Add();
  if (producer_ != nullptr && !Fatal()) {
    // Aborting needs the coordinator: tried until it answers, or for as long as an append may
    // take. Nothing was committed either way; an abort that did not finish is the next
    // producer's start's (or the brokers' transaction timeout's) to finish.
    Status s = RetryTransient(options_.delivery_timeout_us, std::chrono::milliseconds(200), [&](int64_t left_us) -> Attempt {
      Status t = TxnError(rd_kafka_abort_transaction(producer_, Ms(std::min(left_us, options_.request_timeout_us))),
                          "abort transaction");
      bool transient = t.code() == Status::Code::kUnavailable && !Fatal();
      return {std::move(t), transient};
    });
    if (!s.ok()) {
      spdlog::warn("{}; a new producer will finish it", s.message());
      DropProducer();
    }
  } else {
    DropProducer();  // fatal: a new one (unless fenced) for the next call
  }
  aborts_->Add();
  Status out = Status::Unavailable(why + " (the transaction is aborted: nothing of this request is stored)");
  return {fenced_.ok() ? out : Status::IOError(fenced_.message() + "; " + out.message()), true};
}

}  // namespace mare::log::kafka
