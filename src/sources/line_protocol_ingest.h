// LineProtocolWorker: ingest for InfluxDB line protocol. It converts each buffer of lines to
// readings and their JSON form (line_protocol.h) and hands them to an Ingest::Worker, so that
// they are validated, deduplicated, counted, dead-lettered and appended exactly as the other
// sources' readings: those the converter vouches for as they are, the others parsed from their
// JSON by ingest's rules. A line that does not parse is counted and dead-lettered the same way,
// with its reason and its 1-based line number.
//
//   LineProtocolWorker worker(&ingest, options, "line_tcp");
//   worker.Add(lines, Precision::kNanoseconds);   // many times, views kept until Flush
//   Status s = worker.Flush();
//
// LineProtocolSourceOptions, [sources.line_protocol], says where line protocol is taken.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "sources/ingest.h"
#include "sources/line_protocol.h"

namespace mare {

struct LineProtocolSourceOptions {
  LineProtocolOptions parse;
  bool http = true;                           // POST /write and /api/v2/write on mare's HTTP port
  bool tcp = false;                           // lines over TCP (QuestDB's ILP/TCP, Telegraf's socket_writer)
  std::string tcp_listen = "127.0.0.1:9009";  // QuestDB's ILP port
  bool udp = false;                           // lines over UDP, one or more per datagram
  std::string udp_listen = "127.0.0.1:8089";  // InfluxDB 1.x's UDP port
};

// What happened to the lines of one request.
struct LineProtocolReport {
  struct Error {
    uint32_t line;
    const char* reason;
    std::string detail;
  };
  uint64_t lines = 0;           // readings and rejects: every line that was not blank or a comment
  uint64_t accepted = 0;        // after Flush: acknowledged by the log
  uint64_t rejected = 0;        // duplicates included
  uint64_t duplicates = 0;      // readings already accepted before: harmless resends
  uint64_t unacknowledged = 0;  // valid, but their partition's append failed
  std::vector<Error> errors;    // in line order, the first max_errors
  std::vector<uint32_t> unacknowledged_lines;
  size_t max_errors = 100;
};

class LineProtocolWorker {
 public:
  LineProtocolWorker(Ingest* ingest, const LineProtocolOptions& options, const std::string& source,
                     Ingest::Acks acks = Ingest::Acks::kWait, Ingest::Flushes flushes = Ingest::Flushes::kEach);
  // Converts and queues the lines of `data`, which must stay unchanged until Flush. With a
  // report, one Add per Flush.
  void Add(std::string_view data, Precision precision, LineProtocolReport* report = nullptr);
  // Rejects bytes without parsing them (an oversized partial line).
  void Reject(std::string_view raw, RejectReason reason, std::string detail);
  Status Flush(LineProtocolReport* report = nullptr);
  const LineProtocolOptions& options() const { return parser_.options(); }

 private:
  std::unique_ptr<Ingest::Worker> worker_;
  LineProtocolParser parser_;
  ReadingParser readings_;  // for the readings the converter does not vouch for
  Reading reading_;         // the one being handed over
  std::vector<std::unique_ptr<LineBatch>> batches_;  // one per Add since the last Flush, reused
  size_t used_ = 0;
  IngestReport ingest_report_;
};

}  // namespace mare
