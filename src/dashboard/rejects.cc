#include "dashboard/rejects.h"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <string_view>
#include <vector>

#include "reading/timestamp.h"

namespace mare::dashboard {

bool FindSensorId(std::string_view raw, uint32_t* sensor) {
  size_t at = 0;
  while ((at = raw.find("\"sensor_id\"", at)) != std::string_view::npos) {
    size_t i = at + 11;
    at = i;
    while (i < raw.size() && (raw[i] == ' ' || raw[i] == '\t')) ++i;
    if (i >= raw.size() || raw[i] != ':') continue;
    ++i;
    while (i < raw.size() && (raw[i] == ' ' || raw[i] == '\t')) ++i;
    uint32_t v = 0;
    auto [end, ec] = std::from_chars(raw.data() + i, raw.data() + raw.size(), v);
    if (ec != std::errc() || end == raw.data() + i) return false;
    *sensor = v;
    return true;
  }
  return false;
}

void RejectCounts::Reset() {
  offset_ = 0;
  sensors_.clear();
  unattributed_ = 0;
}

int64_t RejectCounts::Since(uint32_t sensor, int64_t since_us) const {
  auto it = sensors_.find(sensor);
  if (it == sensors_.end()) return 0;
  int64_t n = 0;
  for (auto t = it->second.recent.rbegin(); t != it->second.recent.rend() && *t >= since_us; ++t) ++n;
  return n;
}

void RejectCounts::Scan(int64_t now_us, int64_t keep_us) {
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0) {
    Reset();
    inode_ = 0;
    return;
  }
  if (st.st_ino != inode_ || static_cast<uint64_t>(st.st_size) < offset_) {
    Reset();
    inode_ = st.st_ino;
  }
  if (static_cast<uint64_t>(st.st_size) > offset_) {
    FILE* f = std::fopen(path_.c_str(), "rb");
    if (f == nullptr) return;
    // At most 8 MiB a scan (or one whole entry, if a single entry is larger): a big file is
    // caught up over a few seconds instead of in one long pause.
    size_t want = static_cast<size_t>(std::min<uint64_t>(static_cast<uint64_t>(st.st_size) - offset_, std::max<uint64_t>(8u << 20, need_)));
    std::vector<char> buf(want);
    if (std::fseek(f, static_cast<long>(offset_), SEEK_SET) == 0) buf.resize(std::fread(buf.data(), 1, buf.size(), f));
    std::fclose(f);
    std::string_view text(buf.data(), buf.size());
    size_t pos = 0;
    // <time> <source> <reason> <length> <detail>\n<length raw bytes>\n
    for (;;) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string_view::npos) break;
      std::string_view header = text.substr(pos, eol - pos);
      size_t s1 = header.find(' ');
      size_t s2 = s1 == std::string_view::npos ? s1 : header.find(' ', s1 + 1);
      size_t s3 = s2 == std::string_view::npos ? s2 : header.find(' ', s2 + 1);
      if (s3 == std::string_view::npos) break;  // damaged: stop here and wait for more
      size_t s4 = header.find(' ', s3 + 1);
      std::string_view len_text = header.substr(s3 + 1, (s4 == std::string_view::npos ? header.size() : s4) - s3 - 1);
      size_t length = 0;
      auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), length);
      if (ec != std::errc() || end != len_text.data() + len_text.size()) break;
      if (eol + 1 + length + 1 > text.size()) {  // still being written, or past this scan's read
        need_ = eol + 1 + length + 1 - pos;
        break;
      }
      std::string_view raw = text.substr(eol + 1, length);
      int64_t when = 0;
      std::string why;
      if (!ParseTimestampText(header.substr(0, s1), &when, &why)) when = now_us;
      uint32_t sensor = 0;
      if (FindSensorId(raw, &sensor)) {
        Sensor& s = sensors_[sensor];
        ++s.total;
        s.recent.push_back(when);
        s.last_reason = std::string(header.substr(s2 + 1, s3 - s2 - 1));
      } else {
        ++unattributed_;
      }
      pos = eol + 1 + length + 1;
    }
    offset_ += pos;
  }
  for (auto& [id, s] : sensors_) {
    while (!s.recent.empty() && s.recent.front() < now_us - keep_us) s.recent.pop_front();
  }
}

}  // namespace mare::dashboard
