// ConsumerThread: the thread a consumer of the log runs on (the rollup processor, the store's
// feeder). It steps until stopped; a step that fails with a transient error (a full disk, a
// broker away) is retried by itself, and any other error stops it. It keeps its health and
// why, the lag and the records consumed, for its owner's health(), lag() and consumed().
//
//   thread_.Start({.step = [this] { return Step(); },
//                  .recover = [this] { return Rewind(); },   // what a restart would do
//                  .on_error = [](const Status& s) { spdlog::error(...); }});
//   ...
//   Status s = thread_.Stop([this] { return Flush(); });  // once, if it is not failing
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "common/status.h"
#include "log/log.h"

namespace mare::log {

// Whether a consumer is running, and if not why (for /healthz and the owner's metrics).
struct ConsumerHealth {
  bool healthy = true;
  bool stopped = false;  // for good (a permanent error): only a restart brings it back
  std::string reason;    // the last error, while unhealthy
  int64_t retries = 0;   // failed attempts since it was last healthy
};

// IOError (ENOSPC, EIO, EFBIG, ...) and Unavailable: what can pass without a restart.
inline bool IsTransient(const Status& s) {
  return s.code() == Status::Code::kIOError || s.code() == Status::Code::kUnavailable;
}

class ConsumerThread {
 public:
  struct Hooks {
    // One step: waits at most a poll's timeout, so that Stop is prompt.
    std::function<Status()> step;
    // After a transient failure, before steps go on: brings the owner back to a state a
    // restart would give it (exactly-once: nothing skipped, nothing counted twice). Retried
    // with a backoff doubling from backoff_min_us to backoff_max_us until it and the next
    // step succeed. Without it every error stops the thread.
    std::function<Status()> recover;
    // Called on the thread for every failure, transient or not (for the owner's log line).
    std::function<void(const Status&, bool will_retry)> on_error;
    // Called on the thread after every attempt that fails and after the first step that
    // succeeds again (lag metrics, health gauges).
    std::function<void()> on_health_change;
    int64_t backoff_min_us = 100'000;
    int64_t backoff_max_us = 10'000'000;
  };

  ConsumerThread() = default;
  ConsumerThread(const ConsumerThread&) = delete;
  ConsumerThread& operator=(const ConsumerThread&) = delete;
  ~ConsumerThread();  // joins; the owner calls Stop first, while what step uses still exists

  void Start(Hooks hooks);

  // Stops and joins the thread. The first time, and only if it is healthy, runs finish() (the
  // last emission, flush or checkpoint), whose error is kept too. Returns the error that
  // stopped it, or the one it was retrying, or finish()'s. Idempotent.
  Status Stop(const std::function<Status()>& finish);

  bool healthy() const { return healthy_.load(); }
  ConsumerHealth health() const;
  int64_t lag() const { return lag_.load(); }
  void set_lag(int64_t lag) { lag_.store(lag); }
  int64_t consumed() const { return consumed_.load(); }
  void set_consumed(int64_t consumed) { consumed_.store(consumed); }

 private:
  void Run();
  void Fail(const Status& s, bool will_retry);
  bool Sleep(int64_t us);  // false if stopped meanwhile

  Hooks hooks_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> healthy_{true};
  std::atomic<int64_t> lag_{0};
  std::atomic<int64_t> consumed_{0};
  mutable std::mutex mu_;  // guards what follows
  std::condition_variable wake_;
  bool stopped_ = false;   // Stop ran finish (or had nothing to run)
  bool failed_for_good_ = false;
  Status error_;           // the last failure while unhealthy, or finish()'s
  int64_t retries_ = 0;
};

}  // namespace mare::log
