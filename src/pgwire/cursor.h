// Cursor: one statement of mare's SQL running on a thread of its own while the connection
// hands its rows to the client, so that an Execute with a row limit can stop mid-answer
// (PortalSuspended) and resume, and an answer of any size is held one executor batch at a time
// (kStreamBatchRows): the statement waits in its sink until the connection has sent the batch.
//
//   Cursor cursor(store, sql, options);
//   if (!cursor.WaitColumns()) return Fail(cursor.error());
//   Cursor::Batch b;
//   while (cursor.Next(&b)) { send rows b.begin..b.end of *b.columns; cursor.Done(); }
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "query/executor.h"
#include "store/store.h"

namespace mare::pgwire {

class Cursor {
 public:
  // Starts the statement. The store outlives the cursor. describe_only: stop once the columns
  // are known (Describe of a prepared statement), reading nothing.
  Cursor(store::Store& store, std::string sql, query::QueryOptions options, bool describe_only = false);
  // Cancels the statement if it still runs and waits for its thread.
  ~Cursor();
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  // Waits for the answer's columns; false if the statement failed first (error()).
  bool WaitColumns();
  const std::vector<std::string>& names() const { return names_; }
  const std::vector<query::Type>& types() const { return types_; }

  struct Batch {
    const std::vector<query::ResultColumn>* columns = nullptr;
    size_t begin = 0, end = 0;
  };
  // The batch being handed over (the same one until Done), waiting for it; false once the
  // statement ended: complete unless failed().
  bool Next(Batch* batch);
  // The current batch is sent: the statement goes on.
  void Done();
  // Stops the statement at its next block, or once the batch being handed over is Done (any thread).
  void Cancel();
  bool cancelled() const;

  bool failed() const;
  const query::SqlError& error() const { return error_; }
  // Rows the statement produced (once Next said false).
  size_t rows() const { return summary_.rows; }

 private:
  class Sink;
  void Run(store::Store& store, std::string sql, query::QueryOptions options);

  const bool describe_only_;
  std::atomic<bool> cancel_{false};
  mutable std::mutex mu_;
  std::condition_variable changed_;
  bool began_ = false;
  bool has_batch_ = false;
  bool done_ = false;
  bool failed_ = false;
  Batch batch_;
  std::vector<std::string> names_;
  std::vector<query::Type> types_;
  query::SqlError error_;
  query::ResultTable summary_;
  std::thread thread_;
};

}  // namespace mare::pgwire
