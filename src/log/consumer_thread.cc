#include "log/consumer_thread.h"

#include <algorithm>

namespace mare::log {

ConsumerThread::~ConsumerThread() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void ConsumerThread::Start(std::function<Status()> step, std::function<void(const Status&)> on_error) {
  thread_ = std::thread([this, step = std::move(step), on_error = std::move(on_error)] {
    while (!stop_.load()) {
      Status s = step();
      if (!s.ok()) {
        if (on_error) on_error(s);
        std::lock_guard lock(stop_mu_);
        error_ = s;
        healthy_.store(false);
        return;
      }
    }
  });
}

Status ConsumerThread::Stop(const std::function<Status()>& finish) {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(stop_mu_);
  if (stopped_ || !error_.ok()) return error_;
  stopped_ = true;
  Status s = finish ? finish() : Status::OK();
  if (!s.ok()) {
    error_ = s;
    healthy_.store(false);
  }
  return error_;
}

std::optional<int64_t> ConsumerLag(const Consumer& consumer, int32_t partitions) {
  int64_t lag = 0;
  bool known = false;
  for (int32_t p = 0; p < partitions; ++p) {
    int64_t end = consumer.EndOffset(p);
    if (end < 0) continue;
    known = true;
    lag += std::max<int64_t>(0, end - consumer.Position(p));
  }
  if (!known) return std::nullopt;
  return lag;
}

}  // namespace mare::log
