#include "server/connection_threads.h"

#include <algorithm>
#include <chrono>

namespace mare {

namespace {
thread_local bool refusing = false;
constexpr auto kIdleThreadLifetime = std::chrono::seconds(30);
}  // namespace

ConnectionThreads::ConnectionThreads(size_t max_connections, size_t keep_idle)
    : max_connections_(std::max<size_t>(1, max_connections)), keep_idle_(keep_idle) {}

ConnectionThreads::~ConnectionThreads() { shutdown(); }

bool ConnectionThreads::Refusing() { return refusing; }

size_t ConnectionThreads::active() const {
  std::lock_guard lock(mu_);
  return busy_ + tasks_.size();
}

void ConnectionThreads::enqueue(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    JoinExited();
    if (!shutdown_ && busy_ + tasks_.size() < max_connections_) {
      tasks_.push_back(std::move(fn));
      if (tasks_.size() > waiting_) threads_.emplace_back([this] { Run(); });
      else work_.notify_one();
      return;
    }
  }
  // No room: the task runs here and now, told to refuse (it must not block).
  refusing = true;
  fn();
  refusing = false;
}

void ConnectionThreads::Run() {
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
      fn = nullptr;  // the connection's resources go now, not when the next one comes
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

void ConnectionThreads::JoinExited() {
  for (std::thread::id id : exited_) {
    auto it = std::find_if(threads_.begin(), threads_.end(), [id](const std::thread& t) { return t.get_id() == id; });
    if (it == threads_.end()) continue;
    it->join();  // it has returned from Run, or is about to: it touches nothing of ours after
    threads_.erase(it);
  }
  exited_.clear();
}

void ConnectionThreads::shutdown() {
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
