// DeadLetter: keeps the first N rejected readings, with their reasons and raw bytes, in one
// append-only file, so that someone can see exactly what a sensor sent. Past N, rejects are
// only counted. Thread-safe. Format: docs/formats/dead-letter.md.
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
  uint64_t max_entries = 10'000;  // config ingest.dead_letter_max; past it rejects are only counted
};

class DeadLetter {
 public:
  // Opens (creating) the file and counts the entries it already holds; a torn last entry
  // (from a crash mid-write) is cut off.
  static Result<std::unique_ptr<DeadLetter>> Open(const std::string& path, uint64_t max_entries,
                                                  metrics::Registry* registry);
  ~DeadLetter();

  void Add(std::string_view source, std::string_view reason, std::string_view detail, std::string_view raw);

  uint64_t kept() const { return kept_.load(std::memory_order_relaxed); }
  const std::string& path() const { return path_; }

 private:
  DeadLetter(std::string path, int fd, uint64_t kept, uint64_t max_entries, metrics::Registry* registry);

  std::string path_;
  int fd_;
  std::atomic<uint64_t> kept_;
  const uint64_t max_entries_;
  std::mutex mu_;
  std::string scratch_;
  metrics::Counter& written_;
  metrics::Counter& dropped_;
};

}  // namespace mare
