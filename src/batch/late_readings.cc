#include "batch/late_readings.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <limits>
#include <sstream>

#include "reading/parser.h"

namespace mare::batch {
namespace {

class FirstReading : public ReadingSink {
 public:
  void OnReading(const Reading& r) override {
    if (found) return;
    found = true;
    sensor = r.sensor_id;
    ts = r.timestamp_us;
  }
  void OnReject(const Reject&) override {}
  bool found = false;
  uint32_t sensor = 0;
  int64_t ts = 0;
};

}  // namespace

Status LateReadings::Load(const std::vector<std::string>& paths) {
  ReadingParser parser;
  PaddedBuffer buffer;
  for (const std::string& path : paths) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      if (errno == ENOENT) continue;
      return Status::FromErrno("open " + path, errno);
    }
    std::stringstream all;
    all << in.rdbuf();
    std::string text = all.str();
    size_t at = 0;
    while (at < text.size()) {
      size_t eol = text.find('\n', at);
      if (eol == std::string::npos) break;  // a torn last entry
      std::string_view header(text.data() + at, eol - at);
      // <time> <source> <reason> <length> <detail>
      size_t s1 = header.find(' '), s2 = s1 == std::string_view::npos ? s1 : header.find(' ', s1 + 1);
      size_t s3 = s2 == std::string_view::npos ? s2 : header.find(' ', s2 + 1);
      if (s3 == std::string_view::npos) return Status::Corruption(path + ": not a dead-letter entry at byte " + std::to_string(at));
      std::string_view reason = header.substr(s2 + 1, s3 - s2 - 1);
      size_t s4 = header.find(' ', s3 + 1);
      std::string_view length_text = header.substr(s3 + 1, (s4 == std::string_view::npos ? header.size() : s4) - s3 - 1);
      size_t length = 0;
      auto [p, ec] = std::from_chars(length_text.data(), length_text.data() + length_text.size(), length);
      if (ec != std::errc() || eol + 1 + length > text.size()) break;  // torn
      std::string_view raw(text.data() + eol + 1, length);
      at = eol + 1 + length + 1;
      if (reason != "late") continue;
      buffer.Assign(raw);
      FirstReading first;
      parser.Parse(buffer.view(), std::numeric_limits<int64_t>::max() / 2, first);
      if (!first.found) {
        ++unreadable_;
        continue;
      }
      by_sensor_[first.sensor].push_back(first.ts);
      ++size_;
    }
  }
  for (auto& [sensor, times] : by_sensor_) std::sort(times.begin(), times.end());
  return Status::OK();
}

size_t LateReadings::Count(uint32_t sensor, int64_t from_us, int64_t to_us) const {
  auto it = by_sensor_.find(sensor);
  if (it == by_sensor_.end()) return 0;
  const auto& t = it->second;
  return static_cast<size_t>(std::lower_bound(t.begin(), t.end(), to_us) - std::lower_bound(t.begin(), t.end(), from_us));
}

}  // namespace mare::batch
