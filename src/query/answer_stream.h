// A query answer of any size in bounded memory, as CSV, NDJSON or an Arrow stream: the
// statement runs on a thread of its own (one of StatementThreads', or a new one), each batch (kStreamBatchRows rows) is formatted there
// and handed over through a queue of a few MiB, which the reader (the HTTP connection) empties
// as its client reads. A full queue holds the statement back; Cancel (the client is gone)
// stops it at its next batch or block.
//
//   AnswerStream stream(store, sql, options, AnswerFormat::kArrow);
//   if (stream.WaitStarted() == AnswerStream::State::kFailed) return Error(stream.error());
//   std::string chunk;
//   while (stream.Next(&chunk)) Send(chunk);   // then stream.failed(): cut short
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "query/executor.h"
#include "query/statement_threads.h"
#include "store/store.h"

namespace mare::query {

enum class AnswerFormat { kCsv, kNdjson, kArrow };

class AnswerStream {
 public:
  // What the queue may hold before the statement waits for the reader.
  static constexpr size_t kDefaultQueueBytes = 8 << 20;

  // Starts the statement, on one of `threads` when given (they and the store outlive the
  // stream), else on a thread of its own.
  AnswerStream(store::Store& store, std::string sql, QueryOptions options, AnswerFormat format,
               size_t queue_bytes = kDefaultQueueBytes, StatementThreads* threads = nullptr);
  // Cancels the statement if it still runs, and waits for its thread.
  ~AnswerStream();
  AnswerStream(const AnswerStream&) = delete;
  AnswerStream& operator=(const AnswerStream&) = delete;

  enum class State {
    kComplete,  // the whole answer is in the queue: Next hands it over
    kFailed,    // the statement failed before its answer grew past the queue: error() says why
    kStreaming  // the answer is larger than the queue: read it with Next while it runs
  };
  // Waits until one of the states above is reached.
  State WaitStarted();

  // The next piece of the answer, waiting for it; false when there is none left: the answer
  // is complete, or failed() (cut short) or the stream was cancelled.
  bool Next(std::string* chunk);
  // Once WaitStarted said kComplete: the whole answer in one piece (one copy, not a copy per
  // piece appended).
  void TakeAll(std::string* out);
  // Stops the statement at its next batch or block (any thread).
  void Cancel();
  // Cancels the statement if it still runs and waits for its thread: elapsed_ms() is then set.
  void Finish();

  bool failed() const;
  // Why it failed (failed() only).
  const SqlError& error() const { return error_; }
  // Once the statement ended without failing: the names, the rows and the stats.
  const ResultTable& summary() const { return summary_; }
  // How long the statement ran, in ms (after WaitStarted says kComplete or kFailed, or Finish).
  double elapsed_ms() const { return elapsed_ms_; }

 private:
  class Sink;

  // From the statement's thread: queues a piece, waiting while the queue is full; false once
  // cancelled.
  bool Push(std::string chunk);
  void Run(store::Store& store, std::string sql, QueryOptions options);

  const AnswerFormat format_;
  const size_t queue_bytes_;
  std::atomic<bool> cancel_{false};

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::deque<std::string> queue_;
  size_t queued_ = 0;  // bytes in queue_
  bool full_ = false;  // the statement waits for the reader
  bool done_ = false;
  bool failed_ = false;
  // Who waits on changed_ for what: a piece is queued without waking anyone when nobody
  // waits for one (a context switch per batch, for a reader that reads them all at the end).
  bool reader_waits_ = false;  // in Next

  SqlError error_;       // written by the thread before done_
  ResultTable summary_;  // likewise
  double elapsed_ms_ = 0;
  std::thread thread_;       // the statement's own thread, or
  std::future<void> ran_;    // its run on one of StatementThreads'
};

}  // namespace mare::query
