#include "query/statement_threads.h"

#include <algorithm>
#include <memory>

namespace mare::query {

StatementThreads::StatementThreads(size_t keep_idle) : threads_(std::max<size_t>(1, keep_idle)) {}

StatementThreads::~StatementThreads() { threads_.Shutdown(); }

std::future<void> StatementThreads::Run(std::function<void()> fn) {
  // A std::function must be copyable, a packaged_task is not: shared.
  auto task = std::make_shared<std::packaged_task<void()>>(std::move(fn));
  std::future<void> ran = task->get_future();
  std::function<void()> run = [task] { (*task)(); };
  if (!threads_.TryRun(std::move(run))) (*task)();  // shutting down: here and now
  return ran;
}

}  // namespace mare::query
