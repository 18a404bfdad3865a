// StatementThreads: the threads that streamed answers' statements run on (AnswerStream), kept
// and reused: a new thread for each statement cost a clone, a fresh stack and a join per query.
//
//   StatementThreads threads(limits.max_concurrent);
//   std::future<void> ran = threads.Run([&] { ... });   // ran.wait(): fn has returned
#pragma once

#include <cstddef>
#include <functional>
#include <future>

#include "common/kept_threads.h"

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

  size_t threads() const { return threads_.threads(); }  // alive, idle or running

 private:
  KeptThreads threads_;
};

}  // namespace mare::query
