// ConsumerThread: the thread a consumer of the log runs on (the rollup processor, the store's
// feeder): it steps until stopped or until a step fails, and keeps the first error, the lag
// and the records consumed, for its owner's healthy(), lag() and consumed().
//
//   thread_.Start([this] { return Step(); }, [](const Status& s) { spdlog::error(...); });
//   ...
//   Status s = thread_.Stop([this] { return Flush(); });  // once, if no step failed
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "common/status.h"
#include "log/log.h"

namespace mare::log {

class ConsumerThread {
 public:
  ConsumerThread() = default;
  ConsumerThread(const ConsumerThread&) = delete;
  ConsumerThread& operator=(const ConsumerThread&) = delete;
  ~ConsumerThread();  // joins; the owner calls Stop first, while what step uses still exists

  // Calls step() until Stop, or until it fails: then on_error(status) is called on the thread,
  // the status kept and the thread unhealthy. Each step is expected to wait at most a poll's
  // timeout, so that Stop is prompt.
  void Start(std::function<Status()> step, std::function<void(const Status&)> on_error);

  // Stops and joins the thread. The first time, and only if no step failed, runs finish()
  // (the last emission, flush or checkpoint), whose error is kept too. Returns the first error.
  // Idempotent.
  Status Stop(const std::function<Status()>& finish);

  bool healthy() const { return healthy_.load(); }
  int64_t lag() const { return lag_.load(); }
  void set_lag(int64_t lag) { lag_.store(lag); }
  int64_t consumed() const { return consumed_.load(); }
  void set_consumed(int64_t consumed) { consumed_.store(consumed); }

 private:
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> healthy_{true};
  std::atomic<int64_t> lag_{0};
  std::atomic<int64_t> consumed_{0};
  std::mutex stop_mu_;
  bool stopped_ = false;
  Status error_;
};

}  // namespace mare::log
