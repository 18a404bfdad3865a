// KeptThreads: tasks run at once, each on a kept idle thread or a new one (never queued behind
// another task); threads beyond `keep_idle` end after a while idle. Under mare's HTTP connections
// (server/connection_threads) and streamed statements (query/statement_threads).
//
//   KeptThreads threads(8);
//   if (!threads.TryRun(std::move(fn), /*max_active=*/100)) { /* full or shut down: fn untouched */ }
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mare {

class KeptThreads {
 public:
  explicit KeptThreads(size_t keep_idle);
  ~KeptThreads();  // Shutdown()
  KeptThreads(const KeptThreads&) = delete;
  KeptThreads& operator=(const KeptThreads&) = delete;

  // Runs fn on an idle thread, or a new one, unless `max_active` tasks (0: no limit) are running
  // or about to, or Shutdown was called: then false, and fn is left as it was.
  bool TryRun(std::function<void()>&& fn, size_t max_active = 0);

  // Waits for the running tasks to return (their owners make them end) and ends every thread.
  void Shutdown();

  size_t active() const;   // tasks running or about to
  size_t threads() const;  // alive, idle or running

 private:
  void Loop();
  void JoinExited();  // with mu_ held

  const size_t keep_idle_;
  mutable std::mutex mu_;
  std::condition_variable work_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> threads_;
  std::vector<std::thread::id> exited_;  // idle threads that ended, to join
  size_t waiting_ = 0;                   // threads waiting for a task
  size_t busy_ = 0;                      // threads running one
  bool shutdown_ = false;
};

}  // namespace mare
