// LineProtocolPipeline: line protocol from a stream socket (TCP) on two threads: the caller's
// converts the lines (LineProtocolParser), one of the pipeline's own ingests what was converted
// (validated, deduplicated, counted, dead-lettered and appended to the log, as LineProtocolWorker
// does), so that one connection's lines keep both cores of a small machine busy: converting is
// about half of the path's CPU, ingest and the log append the other half.
//
//   LineProtocolPipeline pipeline(&ingest, options, "line_tcp");
//   pipeline.Add(lines, Precision::kNanoseconds);  // converted now: `lines` may change once it returns
//   pipeline.Flush();  // hands what was added since the last Flush to the ingest thread
//   pipeline.Close();  // waits until everything handed over is appended (or its failure logged)
//
// Of a large buffer (from `split_bytes`), the last lines are copied and converted on the ingest
// thread, before the job is ingested: a share of it in sixteenths, that moves with whichever
// thread waits for the other (down one when the caller finds no job free, up one when the ingest
// thread finds none queued), starting at a quarter: the caller's thread also reads the sockets.
// Such a tail ends its job (an Add or Reject after it flushes first), so that the lines are
// ingested in the order added, as by one thread.
//
// Batches are ingested one at a time in the order flushed, each with one Ingest::Worker::Flush.
// Nothing tells a stream's sender that its lines are in the log, so Flush does not wait for the
// append: a failed one is logged (and counted by ingest as lost) on the ingest thread. At most
// `depth` flushed batches wait for it, each holding the JSON of what one flush converted, so
// memory stays bounded and a slow log holds the sockets back (TCP's own flow control).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "sources/ingest.h"
#include "sources/line_protocol.h"

namespace mare {

class LineProtocolPipeline {
 public:
  LineProtocolPipeline(Ingest* ingest, const LineProtocolOptions& options, const std::string& source, size_t depth = 2,
                       size_t split_bytes = 32 * 1024);
  ~LineProtocolPipeline();  // Close()
  // Converts the lines of `data` into the batch being filled.
  void Add(std::string_view data, Precision precision);
  // Rejects bytes without parsing them (an oversized partial line), in the batch being filled.
  void Reject(std::string_view raw, RejectReason reason, std::string detail);
  // Queues the batch being filled for the ingest thread (nothing if it is empty). The next Add
  // or Reject waits while `depth` batches are queued already.
  void Flush();
  // Flushes, then waits until the ingest thread has appended every batch, and stops it.
  void Close();
  const LineProtocolOptions& options() const { return parser_.options(); }

 private:
  // What one Flush hands over: converted readings, and the rejects with their lines copied (the
  // caller's buffer changes once Add returns).
  struct Job {
    struct Rejected {
      std::string raw;
      RejectReason reason;
      std::string detail;
    };
    struct Tail {  // the last lines of an Add, in tail_bytes, converted on the ingest thread
      size_t at, size;
      Precision precision;
      uint32_t first_line;
    };
    LineBatch batch;
    std::vector<Rejected> rejects;
    std::vector<Tail> tails;
    std::string tail_bytes;
    int64_t now_us = 0;  // taken at the job's first Add: the time its lines are converted and judged at
    bool empty() const { return batch.readings.empty() && rejects.empty() && tails.empty(); }
    void Clear();
  };
  Job* Current();  // the job being filled, taken from the free ones (waiting for one) if none is
  void Loop();     // the ingest thread

  LineProtocolParser parser_;           // the caller's thread only
  LineProtocolParser tail_parser_;      // the ingest thread only, as the three below
  std::unique_ptr<Ingest::Worker> worker_;
  ReadingParser readings_;              // for the readings the converter does not vouch for
  Reading reading_;                     // the one being handed over
  const std::string source_;
  const size_t depth_;
  const size_t split_bytes_;
  static constexpr size_t kShares = 16, kMaxTailShare = 12;
  std::atomic<size_t> tail_share_{kShares / 4};  // of a large Add converted on the ingest thread; changed under mu_
  std::vector<std::unique_ptr<Job>> jobs_;  // all, depth_ + 1
  Job* current_ = nullptr;

  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<Job*> queued_;  // flushed, in order; the front one is being ingested
  std::vector<Job*> free_;
  bool closing_ = false;
  std::thread thread_;
};

}  // namespace mare
