// The Kafka log's idempotent producer (acks=all): an append returns, or calls back, only once
// the brokers have acknowledged every one of its records, which get consecutive offsets in order.
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "log/kafka_options.h"
#include "log/log.h"

namespace mare::log::kafka {

struct Delivery;

class Producer {
 public:
  static Result<std::unique_ptr<Producer>> Open(const KafkaLogOptions& options);
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // The client, also for metadata and admin requests.
  rd_kafka_t* handle() const { return rk_; }

  // As Log::Append and Log::AppendAsync, to a topic's Kafka name (with the prefix).
  Status Append(const std::string& name, int32_t partition, std::span<const Record> records, int64_t* first_offset);
  void AppendAsync(const std::string& name, int32_t partition, std::span<const Record> records,
                   std::function<void(const Status&)> done);

 private:
  Producer(const KafkaLogOptions& options, rd_kafka_t* rk);
  // Queues records for one partition, each reporting to d; *queued counts those queued before
  // an error stopped it (the error is returned).
  rd_kafka_resp_err_t Enqueue(const std::string& name, int32_t partition, std::span<const Record> records, Delivery* d,
                              size_t* queued);
  // What an append of n records whose worst delivery error was err returns, counted.
  Status Outcome(rd_kafka_resp_err_t err, const std::string& name, int32_t partition, size_t n);

  int64_t delivery_timeout_us_;
  rd_kafka_t* rk_;
  std::thread poller_;
  std::atomic<bool> stop_{false};
  std::mutex append_mu_;
  metrics::Counter* produced_;
  metrics::Counter* failed_;
};

}  // namespace mare::log::kafka
