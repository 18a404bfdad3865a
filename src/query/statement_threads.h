// StatementThreads: the threads that streamed answers' statements run on (AnswerStream), kept
// and reused: a new thread for each statement cost a clone, a fresh stack and a join per query.
//
//   StatementThreads threads(limits.max_concurrent);
//   std::future<void> ran = threads.Run([&] { ... });   // ran.wait(): fn has returned
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace mare::query {

class StatementThreads {
 public:
  // keep_idle: threads kept waiting for the next statement (query.max_concurrent: the
  // QueryGate never lets more run at once). Threads beyond it end once idle for a while.
  explicit StatementThreads(size_t keep_idle);
  // Waits for the statements still running (their streams cancel them) and ends the threads.
  ~StatementThreads();
  StatementThreads(const StatementThreads&) = delete;
  StatementThreads& operator=(const StatementThreads&) = delete;

  // Runs fn on an idle thread, or a new one when none is idle (never queued behind another
  // statement: the gate bounds how many run). The future is ready once fn has returned and
  // the thread touches nothing of fn's any more.
  std::future<void> Run(std::function<void()> fn);

  size_t threads() const;  // alive, idle or running

 private:
  void Loop();
  void JoinExited();  // with mu_ held

  const size_t keep_idle_;
  mutable std::mutex mu_;
  std::condition_variable work_;
  std::deque<std::packaged_task<void()>> tasks_;
  std::vector<std::thread> threads_;
  std::vector<std::thread::id> exited_;  // idle threads that ended, to join
  size_t waiting_ = 0;                   // threads waiting for a task
  bool shutdown_ = false;
};

}  // namespace mare::query
