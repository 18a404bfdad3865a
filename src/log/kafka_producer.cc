#include "log/kafka_producer.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>

#include "log/kafka_client.h"
#include "log/kafka_record.h"
#include "log/log_metrics.h"

namespace mare::log::kafka {

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

namespace {

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

}  // namespace

Result<std::unique_ptr<Producer>> Producer::Open(const KafkaLogOptions& options) {
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
  return std::unique_ptr<Producer>(new Producer(options, *rk));
}

Producer::Producer(const KafkaLogOptions& options, rd_kafka_t* rk) : delivery_timeout_us_(options.delivery_timeout_us), rk_(rk) {
  metrics::Registry* r = options.metrics ? options.metrics : &metrics::Registry::Global();
  produced_ = &r->GetCounter(log_metrics::kKafkaRecordsProduced);
  failed_ = &r->GetCounter(log_metrics::kKafkaAppendsFailed);
  poller_ = std::thread([this] {
    while (!stop_.load()) rd_kafka_poll(rk_, 100);  // runs the delivery callbacks
  });
}

Producer::~Producer() {
  rd_kafka_flush(rk_, Ms(delivery_timeout_us_));
  stop_.store(true);
  poller_.join();
  rd_kafka_destroy(rk_);
}

Status Producer::Append(const std::string& name, int32_t partition, std::span<const Record> records,
                      int64_t* first_offset) {
  if (records.empty()) return Status::OK();
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

void Producer::AppendAsync(const std::string& name, int32_t partition, std::span<const Record> records,
                         std::function<void(const Status&)> done) {
  if (records.empty()) {
    done(Status::OK());
    return;
  }
  auto* d = new Delivery;
  d->remaining = records.size() + 1;  // + this call's own hold, released once all are queued
  d->then = [this, name, partition, n = records.size(), done = std::move(done)](rd_kafka_resp_err_t err) {
    done(Outcome(err, name, partition, n));
  };
  size_t queued = 0;
  rd_kafka_resp_err_t err = Enqueue(name, partition, records, d, &queued);
  Settle(d, records.size() - queued + 1, err, -1);  // may run `then` and delete d
}

// Queues records for one partition, each reporting to d; *queued counts those queued before
// an error stopped it (the error is returned).
rd_kafka_resp_err_t Producer::Enqueue(const std::string& name, int32_t partition, std::span<const Record> records,
                                    Delivery* d, size_t* queued) {
  // One append at a time into the producer's queue, so its records get consecutive offsets.
  std::lock_guard lock(append_mu_);
  for (const Record& r : records) {
    char ts[24];
    auto [end, ec] = std::to_chars(ts, ts + sizeof ts, r.timestamp_us);
    rd_kafka_resp_err_t err;
    for (;;) {
      err = rd_kafka_producev(rk_, RD_KAFKA_V_TOPIC(name.c_str()), RD_KAFKA_V_PARTITION(partition),
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
Status Producer::Outcome(rd_kafka_resp_err_t err, const std::string& name, int32_t partition, size_t n) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    produced_->Add(n);
    return Status::OK();
  }
  failed_->Add();
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char why[512];
    rd_kafka_fatal_error(rk_, why, sizeof why);
    return Status::IOError(fmt::format("kafka: produce to {} partition {}: fatal: {}", name, partition, why));
  }
  return KafkaError(err, fmt::format("produce to {} partition {} (nothing of this append is acknowledged)", name, partition));
}

}  // namespace mare::log::kafka
