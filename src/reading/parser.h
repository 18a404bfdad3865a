// ReadingParser: turns NDJSON bytes into validated readings, with simdjson On-Demand.
//
// Each line holds one reading (a JSON object) or several (a JSON array of objects). Every
// reading is validated on its own: a bad one is reported with a reason and never affects the
// others in the same buffer. One parser per thread, reused for every buffer: no allocation per
// reading once warm.
//
//   ReadingParser parser(options);
//   parser.Parse(buffer, now_us, sink);   // sink.OnReading(...) / sink.OnReject(...)
//
// The buffer must stay readable kParsePadding bytes past its end (see PaddedBuffer).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "reading/reading.h"

namespace mare {

constexpr size_t kParsePadding = 64;  // simdjson::SIMDJSON_PADDING

struct ParserOptions {
  size_t max_reading_bytes = 64 * 1024;   // longer lines are rejected as oversized
  size_t max_fields = 64;                 // top-level fields, timestamp and sensor_id included
  size_t max_text_bytes = 1024;
  int64_t max_future_skew_us = 300'000'000;  // readings further ahead of now are rejected
  // Fields that must be numbers when present (a string there is invalid_number, not text).
  std::vector<std::string> numeric_fields = {"temperature", "humidity", "pressure", "water_temperature",
                                             "wave_height", "wind_speed", "wind_direction", "dew_point"};
};

struct Reject {
  RejectReason reason;
  std::string_view raw;  // the offending reading or line
  std::string detail;    // what is wrong and where, for people
};

// The reading rules on names and texts, for a source that parses another format into readings
// itself (the line protocol) and must judge them exactly as ReadingParser does.
// A reading's field name: [A-Za-z_][A-Za-z0-9_]*, at most 64 bytes.
bool IsFieldName(std::string_view name);
// NaN or an infinity spelled out ("nan", "-Inf", ...): invalid_number, as text or as a token.
bool SpellsNonFinite(std::string_view text);

class ReadingSink {
 public:
  virtual ~ReadingSink() = default;
  virtual void OnReading(const Reading& reading) = 0;
  virtual void OnReject(const Reject& reject) = 0;
};

// A byte buffer with kParsePadding readable bytes after its size.
class PaddedBuffer {
 public:
  explicit PaddedBuffer(size_t capacity = 0) { Reserve(capacity); }
  void Reserve(size_t capacity) {
    if (capacity + kParsePadding > storage_.size()) storage_.resize(capacity + kParsePadding);
  }
  // The byte after the copy is zeroed, as in simdjson's own padded strings: what a longer value
  // left there before (a '}' say) must not change how this one parses.
  void Assign(std::string_view bytes) {
    Reserve(bytes.size());
    std::copy(bytes.begin(), bytes.end(), storage_.begin());
    storage_[bytes.size()] = '\0';
    size_ = bytes.size();
  }
  // Adds bytes at the end, growing the storage geometrically, as a body arrives in pieces.
  void Append(const char* bytes, size_t n) {
    if (size_ + n > capacity()) Reserve(std::max(size_ + n, 2 * capacity()));
    std::copy(bytes, bytes + n, storage_.begin() + static_cast<std::ptrdiff_t>(size_));
    size_ += n;
    storage_[size_] = '\0';
  }
  char* data() { return storage_.data(); }
  size_t size() const { return size_; }
  void set_size(size_t n) { size_ = n; }
  size_t capacity() const { return storage_.size() - kParsePadding; }
  std::string_view view() const { return {storage_.data(), size_}; }

 private:
  std::vector<char> storage_;
  size_t size_ = 0;
};

class ReadingParser {
 public:
  explicit ReadingParser(ParserOptions options = {});
  ~ReadingParser();
  ReadingParser(const ReadingParser&) = delete;
  ReadingParser& operator=(const ReadingParser&) = delete;

  // Parses every line of `data`, whose bytes up to data.end() + kParsePadding are readable.
  // Blank lines are skipped; "\r\n" line ends are accepted.
  void Parse(std::string_view data, int64_t now_us, ReadingSink& sink);

  const ParserOptions& options() const { return options_; }

 private:
  struct Impl;
  ParserOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mare
