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

#include <cstddef>
#include <functional>

#include "common/kept_threads.h"

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
  const size_t max_connections_;
  KeptThreads threads_;
};

}  // namespace mare
