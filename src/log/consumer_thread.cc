#include "log/consumer_thread.h"

#include <algorithm>
#include <chrono>

namespace mare::log {

ConsumerThread::~ConsumerThread() {
  {
    std::lock_guard lock(mu_);
    stop_.store(true);
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ConsumerThread::Start(Hooks hooks) {
  hooks_ = std::move(hooks);
  thread_ = std::thread([this] { Run(); });
}

void ConsumerThread::Run() {
  int64_t backoff = hooks_.backoff_min_us;
  bool recovering = false;  // a step failed: recover() before the next
  while (!stop_.load()) {
    Status s;
    if (recovering) {
      s = hooks_.recover();
      if (s.ok()) recovering = false;
    }
    if (!recovering) s = hooks_.step();
    if (s.ok()) {
      if (!healthy_.load()) {
        {
          std::lock_guard lock(mu_);
          error_ = Status::OK();
          retries_ = 0;
          healthy_.store(true);
        }
        if (hooks_.on_health_change) hooks_.on_health_change();
      }
      backoff = hooks_.backoff_min_us;
      continue;
    }
    bool will_retry = hooks_.recover && IsTransient(s);
    Fail(s, will_retry);
    if (!will_retry) return;
    recovering = true;
    if (!Sleep(backoff)) return;
    backoff = std::min(backoff * 2, hooks_.backoff_max_us);
  }
}

void ConsumerThread::Fail(const Status& s, bool will_retry) {
  if (hooks_.on_error) hooks_.on_error(s, will_retry);
  {
    std::lock_guard lock(mu_);
    error_ = s;
    ++retries_;
    failed_for_good_ = !will_retry;
    healthy_.store(false);
  }
  if (hooks_.on_health_change) hooks_.on_health_change();
}

bool ConsumerThread::Sleep(int64_t us) {
  std::unique_lock lock(mu_);
  return !wake_.wait_for(lock, std::chrono::microseconds(us), [this] { return stop_.load(); });
}

ConsumerHealth ConsumerThread::health() const {
  std::lock_guard lock(mu_);
  return {.healthy = healthy_.load(), .stopped = failed_for_good_, .reason = error_.ok() ? "" : error_.ToString(),
          .retries = retries_};
}

Status ConsumerThread::Stop(const std::function<Status()>& finish) {
  {
    std::lock_guard lock(mu_);
    stop_.store(true);
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  if (stopped_ || !error_.ok()) return error_;
  stopped_ = true;
  Status s = finish ? finish() : Status::OK();
  if (!s.ok()) {
    error_ = s;
    healthy_.store(false);
  }
  return error_;
}

}  // namespace mare::log
