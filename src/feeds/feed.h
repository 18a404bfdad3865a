// A feed's fan-out: every reading goes, as one NDJSON line, to every target, batched the way
// each transport wants; the feed keeps the counts its progress and summary lines report.
//
//   Result<std::unique_ptr<Feed>> feed = Feed::Open("simulate", {"udp://127.0.0.1:20001"}, {});
//   (*feed)->Add(reading);   // once per reading
//   (*feed)->EndTick();      // after the readings that share a timestamp
//   (*feed)->Flush();        // before pausing, and at the end
//   fmt::print(stderr, "{}\n", (*feed)->Summary());
//
// Batching, per target ("batch" is --batch, 0 when not given):
//   udp          datagrams of `batch` readings (default 1), sent with sendmmsg at the end of
//                each tick (or every 64 datagrams in flat-out mode);
//   tcp, unix,   one write per `batch` readings (default: each line as it comes; 1000 per
//   file         write in flat-out mode);
//   http         one POST per `batch` readings (default: the readings of one tick).
// In feed mode (replay --feed-interval) nothing is sent until Flush(): then one POST / one
// write, or UDP datagrams of `batch` readings.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "feeds/reading_json.h"
#include "feeds/sender.h"

namespace mare::feeds {

struct BatchPolicy {
  size_t batch = 0;        // readings per datagram / write / POST; 0 = the transport's default
  bool flat_out = false;   // no pacing: favour throughput
  bool feed_mode = false;  // send only on Flush()
};

class Feed {
 public:
  // Parses and opens every target; an error names the first one that cannot be reached.
  // `command` prefixes progress and summary lines ("simulate", "replay").
  // `sender` goes to the http(s) targets.
  static Result<std::unique_ptr<Feed>> Open(std::string command, const std::vector<std::string>& targets,
                                            const BatchPolicy& policy, const SenderOptions& sender = {});

  void Add(const Reading& reading);
  void EndTick();
  void Flush();

  // Prints a progress line to stderr if the last one is at least `interval` old.
  void MaybeReportProgress(int64_t interval_micros = 5 * 1'000'000);

  uint64_t readings() const { return readings_; }
  uint64_t send_errors() const;  // readings a target failed to take, summed over targets
  size_t target_count() const { return targets_.size(); }
  // Why a target refused the feed for good (Sender::refused); OK while none has. The feed's
  // loop stops on it.
  const Status& refusal() const { return refusal_; }
  // "simulate: sent 600 readings to 1 target(s), 0 send errors"
  std::string Summary() const;

 private:
  struct Target {
    std::unique_ptr<Sender> sender;
    LineBatch pending;
    size_t flush_at = 1;       // send when this many readings are pending (SIZE_MAX: never)
    bool flush_on_tick = false;
    uint64_t errors = 0;
    int64_t last_error_report = 0;
    uint64_t errors_reported = 0;
  };

  Feed(std::string command, std::vector<Target> targets)
      : command_(std::move(command)), targets_(std::move(targets)) {}
  void SendPending(Target& target);

  std::string command_;
  std::vector<Target> targets_;
  Status refusal_;
  std::string line_;
  uint64_t readings_ = 0;
  int64_t started_ = 0;
  int64_t last_progress_ = 0;
  uint64_t readings_at_last_progress_ = 0;
};

// What a finished feed reports.
struct FeedOutcome {
  uint64_t readings = 0;
  uint64_t send_errors = 0;
  uint64_t skipped_rows = 0;  // replay only
  Status archive_status;      // replay only: an I/O error that ended the file early
  std::string summary;        // the summary line, without '\n'
};

// Set by SIGINT / SIGTERM once InstallStopHandlers() has run; a second signal kills as usual.
std::atomic<bool>& StopRequested();
void InstallStopHandlers();

// Sleeps until MonotonicMicros() reaches `deadline`, in short steps so a stop request is
// noticed within 50 ms. Returns false if stopped.
bool SleepUntil(int64_t deadline_micros, const std::atomic<bool>& stop);

}  // namespace mare::feeds
