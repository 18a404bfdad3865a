#include "common/kept_threads.h"

#include <algorithm>
#include <chrono>

namespace mare {

namespace {
// An idle thread beyond keep_idle ends after this long without a task.
constexpr auto kIdleThreadLifetime = std::chrono::seconds(30);
}  // namespace

KeptThreads::KeptThreads(size_t keep_idle) : keep_idle_(keep_idle) {}

KeptThreads::~KeptThreads() { Shutdown(); }

bool KeptThreads::TryRun(std::function<void()>&& fn, size_t max_active) {
  std::lock_guard lock(mu_);
  JoinExited();
  if (shutdown_ || (max_active > 0 && busy_ + tasks_.size() >= max_active)) return false;
  tasks_.push_back(std::move(fn));
  if (tasks_.size() > waiting_) {
    threads_.emplace_back([this] { Loop(); });
  } else {
    work_.notify_one();
  }
  return true;
}

size_t KeptThreads::active() const {
  std::lock_guard lock(mu_);
  return busy_ + tasks_.size();
}

size_t KeptThreads::threads() const {
  std::lock_guard lock(mu_);
  return threads_.size() - exited_.size();
}

void KeptThreads::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    ++waiting_;
    bool woken = work_.wait_for(lock, kIdleThreadLifetime, [this] { return shutdown_ || !tasks_.empty(); });
    --waiting_;
    if (!tasks_.empty()) {
      auto fn = std::move(tasks_.front());
      tasks_.pop_front();
      ++busy_;
      lock.unlock();
      fn();
      fn = nullptr;  // what the task holds goes now, not when the next one comes
      lock.lock();
      --busy_;
      continue;
    }
    if (shutdown_) return;
    if (!woken && threads_.size() - exited_.size() > keep_idle_) {
      exited_.push_back(std::this_thread::get_id());
      return;
    }
  }
}

void KeptThreads::JoinExited() {
  for (std::thread::id id : exited_) {
    auto it = std::find_if(threads_.begin(), threads_.end(), [id](const std::thread& t) { return t.get_id() == id; });
    if (it == threads_.end()) continue;
    it->join();  // it has returned from Loop, or is about to: it touches nothing of ours after
    threads_.erase(it);
  }
  exited_.clear();
}

void KeptThreads::Shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    shutdown_ = true;
    threads.swap(threads_);
    exited_.clear();
  }
  work_.notify_all();
  for (auto& t : threads) t.join();
}

}  // namespace mare
