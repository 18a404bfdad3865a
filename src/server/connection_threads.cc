#include "server/connection_threads.h"

#include <algorithm>

namespace mare {

namespace {
thread_local bool refusing = false;
}  // namespace

ConnectionThreads::ConnectionThreads(size_t max_connections, size_t keep_idle)
    : max_connections_(std::max<size_t>(1, max_connections)), threads_(keep_idle) {}

ConnectionThreads::~ConnectionThreads() { shutdown(); }

bool ConnectionThreads::Refusing() { return refusing; }

size_t ConnectionThreads::active() const { return threads_.active(); }

void ConnectionThreads::enqueue(std::function<void()> fn) {
  if (threads_.TryRun(std::move(fn), max_connections_)) return;
  // No room (or shutting down): the task runs here and now, told to refuse (it must not block).
  refusing = true;
  fn();
  refusing = false;
}

void ConnectionThreads::shutdown() { threads_.Shutdown(); }

}  // namespace mare
