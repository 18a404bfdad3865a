#include "processors/forecast/issue_pool.h"

namespace mare::forecast {

IssuePool::IssuePool(size_t workers) {
  for (size_t w = 1; w < workers; ++w) threads_.emplace_back([this, w] { Loop(w); });
}

IssuePool::~IssuePool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  start_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void IssuePool::Run(const std::function<void(size_t worker)>& task) {
  if (threads_.empty()) {
    task(0);
    return;
  }
  {
    std::lock_guard lock(mu_);
    task_ = &task;
    running_ = threads_.size();
    ++generation_;
  }
  start_.notify_all();
  task(0);
  std::unique_lock lock(mu_);
  done_.wait(lock, [this] { return running_ == 0; });
  task_ = nullptr;
}

void IssuePool::Loop(size_t worker) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(size_t)>* task;
    {
      std::unique_lock lock(mu_);
      start_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      task = task_;
    }
    (*task)(worker);
    {
      std::lock_guard lock(mu_);
      --running_;
    }
    done_.notify_one();
  }
}

}  // namespace mare::forecast
