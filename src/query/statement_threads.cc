#include "query/statement_threads.h"

#include <algorithm>
#include <chrono>

namespace mare::query {

namespace {
// An idle thread beyond keep_idle ends after this long without a statement.
constexpr auto kIdleThreadLifetime = std::chrono::seconds(30);
}  // namespace

StatementThreads::StatementThreads(size_t keep_idle) : keep_idle_(std::max<size_t>(1, keep_idle)) {}

StatementThreads::~StatementThreads() {
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

std::future<void> StatementThreads::Run(std::function<void()> fn) {
  std::packaged_task<void()> task(std::move(fn));
  std::future<void> ran = task.get_future();
  std::lock_guard lock(mu_);
  JoinExited();
  tasks_.push_back(std::move(task));
  if (tasks_.size() > waiting_) {
    threads_.emplace_back([this] { Loop(); });
  } else {
    work_.notify_one();
  }
  return ran;
}

size_t StatementThreads::threads() const {
  std::lock_guard lock(mu_);
  return threads_.size() - exited_.size();
}

void StatementThreads::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    ++waiting_;
    bool woken = work_.wait_for(lock, kIdleThreadLifetime, [this] { return shutdown_ || !tasks_.empty(); });
    --waiting_;
    if (!tasks_.empty()) {
      std::packaged_task<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();  // its future is ready once fn has returned
      task = {};
      lock.lock();
      continue;
    }
    if (shutdown_) return;
    if (!woken && threads_.size() - exited_.size() > keep_idle_) {
      exited_.push_back(std::this_thread::get_id());
      return;
    }
  }
}

void StatementThreads::JoinExited() {
  for (std::thread::id id : exited_) {
    auto it = std::find_if(threads_.begin(), threads_.end(), [id](const std::thread& t) { return t.get_id() == id; });
    if (it == threads_.end()) continue;
    it->join();  // it has returned from Loop, or is about to: it touches nothing of ours after
    threads_.erase(it);
  }
  exited_.clear();
}

}  // namespace mare::query
