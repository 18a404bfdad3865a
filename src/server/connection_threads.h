// ConnectionThreads: cpp-httplib's task queue for mare's HTTP server, one thread per
// connection, up to a limit. A connection holds its thread from accept to close, so a slow
// client costs one mostly-sleeping thread and never delays the others (cpp-httplib's own
// ThreadPool queues connections behind a fixed number of threads, 20 in `mare run`: twenty
// slow clients stopped every request). Idle threads beyond `keep_idle` end after a while.
//
// Past `max_connections`, enqueue runs the task at once on the accepting thread with
// Refusing() true: the server answers 503 and closes without reading the request.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mare {

class ConnectionThreads : public httplib::TaskQueue {
 public:
  ConnectionThreads(size_t max_connections, size_t keep_idle);
  ~ConnectionThreads() override;

  void enqueue(std::function<void()> fn) override;
  // Waits for every connection to end (the server's stop makes them end).
  void shutdown() override;

  // True on the thread running a task that enqueue had no room for.
  static bool Refusing();

  size_t active() const;  // connections being served or about to be

 private:
  void Run();
  void JoinExited();  // with mu_ held

  const size_t max_connections_;
  const size_t keep_idle_;
  mutable std::mutex mu_;
  std::condition_variable work_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> threads_;
  std::vector<std::thread::id> exited_;  // idle threads that ended, to join
  size_t waiting_ = 0;                   // threads waiting for a task
  size_t busy_ = 0;                      // threads serving a connection
  bool shutdown_ = false;
};

}  // namespace mare
