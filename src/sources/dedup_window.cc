#include "sources/dedup_window.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <string_view>

#include "common/mix64.h"

namespace mare {
namespace {

uint64_t Load8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

uint64_t Load4(const char* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

// Field names and texts are short: a name of up to 16 bytes costs two loads and two multiplies
// (overlapping loads, as wyhash does), since this runs for every field of every reading.
uint64_t HashBytes(std::string_view s, uint64_t seed) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t a = 0, b = 0;
  if (n > 16) {
    for (size_t i = 0; i + 16 < n; i += 16) seed = (seed ^ Load8(p + i)) * 0xff51afd7ed558ccdULL ^ Load8(p + i + 8);
    a = Load8(p + n - 16);
    b = Load8(p + n - 8);
  } else if (n >= 8) {
    a = Load8(p);
    b = Load8(p + n - 8);
  } else if (n >= 4) {
    a = Load4(p);
    b = Load4(p + n - 4);
  } else if (n > 0) {
    a = static_cast<uint64_t>(static_cast<unsigned char>(p[0])) << 16 |
        static_cast<uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8 | static_cast<unsigned char>(p[n - 1]);
  }
  return ((a ^ seed) * 0xff51afd7ed558ccdULL) ^ ((b + n) * 0xc4ceb9fe1a85ec53ULL);
}

uint64_t Bits(double v) { return v == 0 ? 0 : std::bit_cast<uint64_t>(v); }  // -0.0 is 0.0

}  // namespace

uint64_t ValuesHash(const Reading& r) {
  // A sum of one hash per field: field names are unique in a reading, so the sum is the same
  // in any order.
  uint64_t h = 0;
  for (const NumberField& f : r.numbers) h += Mix64(HashBytes(f.name, 1) + Bits(f.value));
  for (const TextField& f : r.texts) h += Mix64(HashBytes(f.value, HashBytes(f.name, 2)));
  if (r.has_location) h += Mix64(Mix64(Bits(r.lat)) ^ Bits(r.lon) ^ 0x5851f42d4c957f2dULL);
  return h;
}

DedupWindow::DedupWindow(int64_t horizon_us, size_t max_per_sensor)
    : horizon_us_(horizon_us), max_per_sensor_(std::max<size_t>(max_per_sensor, 1)) {}

DedupWindow::Outcome DedupWindow::Admit(uint32_t sensor_id, int64_t ts, uint64_t hash) {
  Sensor& s = sensors_[sensor_id];
  auto begin = s.entries.begin() + s.head;
  if (s.size() > 0) {
    int64_t newest = s.entries.back().timestamp_us;
    if (ts < s.floor_us || ts < newest - horizon_us_) return Outcome::kLate;
    if (ts > newest) {
      s.entries.push_back({ts, hash});
      ++readings_;
      Evict(s);
      return Outcome::kNew;
    }
  } else if (ts < s.floor_us) {
    return Outcome::kLate;
  }
  auto at = std::lower_bound(begin, s.entries.end(), ts, [](const Entry& e, int64_t t) { return e.timestamp_us < t; });
  if (at != s.entries.end() && at->timestamp_us == ts) {
    return at->values_hash == hash ? Outcome::kDuplicate : Outcome::kConflict;
  }
  s.entries.insert(at, {ts, hash});
  ++readings_;
  Evict(s);
  return Outcome::kNew;
}

void DedupWindow::Evict(Sensor& s) {
  const int64_t oldest_kept = s.entries.back().timestamp_us - horizon_us_;
  while (s.head < s.entries.size() && s.entries[s.head].timestamp_us < oldest_kept) {
    ++s.head;
    --readings_;
  }
  while (s.size() > max_per_sensor_) {
    ++s.head;
    --readings_;
    s.floor_us = s.entries[s.head].timestamp_us;  // what is older than the oldest kept is unknown
  }
  // Drop the evicted prefix once it is a quarter of the vector: amortised O(1) per reading, and
  // the vector stays within 4/3 of the readings kept (its capacity within 8/3).
  if (s.head >= 64 && s.head * 4 >= s.entries.size()) {
    s.entries.erase(s.entries.begin(), s.entries.begin() + s.head);
    s.head = 0;
  }
}

void DedupWindow::Forget(uint32_t sensor_id, int64_t ts, uint64_t hash) {
  auto it = sensors_.find(sensor_id);
  if (it == sensors_.end()) return;
  Sensor& s = it->second;
  auto at = std::lower_bound(s.entries.begin() + s.head, s.entries.end(), ts,
                             [](const Entry& e, int64_t t) { return e.timestamp_us < t; });
  if (at == s.entries.end() || at->timestamp_us != ts || at->values_hash != hash) return;
  s.entries.erase(at);
  --readings_;
}

size_t DedupWindow::MemoryBytes() const {
  size_t bytes = sensors_.bucket_count() * sizeof(void*);
  for (const auto& [id, s] : sensors_) bytes += sizeof(id) + sizeof(s) + 2 * sizeof(void*) + s.entries.capacity() * sizeof(Entry);
  return bytes;
}

}  // namespace mare
