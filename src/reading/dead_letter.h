// DeadLetter: keeps the most recent rejected readings, with their reasons and raw bytes, so
// that someone can see exactly what a sensor sent. Bounded: each entry keeps at most the first
// max_entry_bytes of its raw bytes (with the whole length and a hash), and the file is rotated
// (dead-letter.log -> dead-letter.log.1, the older .1 dropped) whenever it reaches half of
// max_bytes or of max_entries, so both files together hold at most those, the newest kept.
// Thread-safe. Format: docs/formats/dead-letter.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/metrics.h"
#include "common/status.h"

namespace mare {

struct DeadLetterOptions {
  std::string path;               // <data_dir>/dead-letter.log (set from the config's data_dir)
  uint64_t max_entries = 10'000;  // config ingest.dead_letter_max: the two files together; 0 keeps none
  uint64_t max_bytes = 64 << 20;  // config ingest.dead_letter_max_bytes: the two files together
  uint64_t max_entry_bytes = 4096;  // config ingest.dead_letter_entry_bytes: raw bytes kept per entry
};

class DeadLetter {
 public:
  // Opens (creating) the file and counts the entries it already holds; a torn last entry
  // (from a crash mid-write) is cut off. A file already over its share is rotated first.
  static Result<std::unique_ptr<DeadLetter>> Open(const DeadLetterOptions& options, metrics::Registry* registry);
  ~DeadLetter();

  void Add(std::string_view source, std::string_view reason, std::string_view detail, std::string_view raw);

  // Entries in the current file (the rotated one holds as many as it had when rotated).
  uint64_t kept() const { return kept_.load(std::memory_order_relaxed); }
  const std::string& path() const { return options_.path; }

 private:
  DeadLetter(const DeadLetterOptions& options, int fd, uint64_t kept, uint64_t bytes, metrics::Registry* registry);
  Status Rotate();  // under mu_

  const DeadLetterOptions options_;
  int fd_;
  std::atomic<uint64_t> kept_;
  uint64_t bytes_;  // of the current file
  std::mutex mu_;
  std::string scratch_;
  metrics::Counter& written_;
  metrics::Counter& dropped_;
  metrics::Counter& truncated_;
  metrics::Counter& rotations_;
};

}  // namespace mare
