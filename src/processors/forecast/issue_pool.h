// IssuePool: the forecast processor's worker threads, which issue the series whose hours
// closed in one batch side by side. Run(task) calls task(worker) on every worker at once (the
// caller's thread is worker 0) and returns when all have returned; the task shares the work out.
//
//   IssuePool pool(4);                                    // 3 threads + the caller
//   pool.Run([&](size_t worker) { while (auto u = Next()) Issue(*u, worker); });
//
// A pool of 1 starts no thread: Run calls task(0) and nothing else.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mare::forecast {

class IssuePool {
 public:
  explicit IssuePool(size_t workers);  // at least 1
  ~IssuePool();
  IssuePool(const IssuePool&) = delete;
  IssuePool& operator=(const IssuePool&) = delete;

  size_t workers() const { return threads_.size() + 1; }
  // One Run at a time, from one thread (the processor's).
  void Run(const std::function<void(size_t worker)>& task);

 private:
  void Loop(size_t worker);

  std::mutex mu_;
  std::condition_variable start_, done_;
  const std::function<void(size_t)>* task_ = nullptr;  // guarded by mu_
  uint64_t generation_ = 0;                             // guarded by mu_: bumped by each Run
  size_t running_ = 0;                                  // guarded by mu_: helpers in the current task
  bool stop_ = false;                                   // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace mare::forecast
