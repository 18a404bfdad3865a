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

}  // namespace mare::log
