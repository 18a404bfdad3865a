#include "sources/dedup_window.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <string_view>

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

__extension__ typedef unsigned __int128 U128;

// The two halves of a 64 x 64 -> 128 bit product folded together: one multiply that mixes
// every bit of both operands into the result (wyhash's "mum").
uint64_t Mum(uint64_t a, uint64_t b) {
  U128 r = static_cast<U128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

// Field names and texts are short: a name of 8 to 16 bytes (most are) costs two loads and one
// multiply (overlapping loads, as wyhash does), inlined, since this runs for every field of
// every reading.
[[gnu::always_inline]] inline uint64_t HashBytes(std::string_view s, uint64_t seed) {
  const char* p = s.data();
  const size_t n = s.size();
  uint64_t a, b;
  if (n >= 8 && n <= 16) [[likely]] {
    a = Load8(p);
    b = Load8(p + n - 8);
  } else if (n > 16) {
    for (size_t i = 0; i + 16 < n; i += 16) seed = Mum(seed ^ Load8(p + i) ^ 0xa0761d6478bd642fULL, Load8(p + i + 8) ^ 0xe7037ed1a0b428dbULL);
    a = Load8(p + n - 16);
    b = Load8(p + n - 8);
  } else if (n >= 4) {
    a = Load4(p);
    b = Load4(p + n - 4);
  } else if (n > 0) {
    a = static_cast<uint64_t>(static_cast<unsigned char>(p[0])) << 16 |
        static_cast<uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8 | static_cast<unsigned char>(p[n - 1]);
    b = 0;
  } else {
    a = b = 0;
  }
  return Mum(a ^ seed ^ 0xff51afd7ed558ccdULL, b ^ n ^ 0xc4ceb9fe1a85ec53ULL);
}

uint64_t Bits(double v) { return v == 0 ? 0 : std::bit_cast<uint64_t>(v); }  // -0.0 is 0.0

}  // namespace

uint64_t ValuesHash(const Reading& r) {
  // A sum of one hash per field: field names are unique in a reading, so the sum is the same
  // in any order. A field's hash is its name's, mixed with its value by one more multiply.
  uint64_t h = 0;
  for (const NumberField& f : r.numbers) h += Mum(HashBytes(f.name, 1) ^ Bits(f.value), 0x9e3779b97f4a7c15ULL);
  for (const TextField& f : r.texts) h += Mum(HashBytes(f.value, HashBytes(f.name, 2)), 0x8ebc6af09c88c6e3ULL);
  // Neither operand is 0 for a valid latitude and longitude (each constant is a double past 1e100).
  if (r.has_location) h += Mum(Bits(r.lat) ^ 0x5851f42d4c957f2dULL, Bits(r.lon) ^ 0x589965cc75374cc3ULL);
  return h;
}

DedupWindow::DedupWindow(int64_t horizon_us, size_t max_per_sensor)
    : horizon_us_(horizon_us), max_per_sensor_(std::max<size_t>(max_per_sensor, 1)) {}

DedupWindow::Sensor* DedupWindow::Find(uint32_t sensor_id) {
  if (slots_.empty()) return nullptr;
  const size_t mask = slots_.size() - 1;
  for (size_t i = Slot(sensor_id);; i = (i + 1) & mask) {
    const uint64_t slot = slots_[i];
    if (slot == 0) return nullptr;
    if (slot >> 32 == sensor_id) return &sensors_[static_cast<uint32_t>(slot) - 1];
  }
}

DedupWindow::Sensor& DedupWindow::Get(uint32_t sensor_id) {
  if ((sensors_.size() + 1) * 2 > slots_.size()) Grow();
  const size_t mask = slots_.size() - 1;
  for (size_t i = Slot(sensor_id);; i = (i + 1) & mask) {
    const uint64_t slot = slots_[i];
    if (slot >> 32 == sensor_id && slot != 0) return sensors_[static_cast<uint32_t>(slot) - 1];
    if (slot == 0) {
      sensors_.emplace_back();
      slots_[i] = static_cast<uint64_t>(sensor_id) << 32 | sensors_.size();
      return sensors_.back();
    }
  }
}

void DedupWindow::Grow() {
  std::vector<uint64_t> old = std::move(slots_);
  const size_t size = std::max<size_t>(old.size() * 2, 16);
  slots_.assign(size, 0);
  slot_shift_ = 64 - std::countr_zero(size);
  for (uint64_t slot : old) {
    if (slot == 0) continue;
    size_t i = Slot(static_cast<uint32_t>(slot >> 32));
    while (slots_[i] != 0) i = (i + 1) & (size - 1);
    slots_[i] = slot;
  }
}

DedupWindow::Outcome DedupWindow::Admit(uint32_t sensor_id, int64_t ts, uint64_t hash) {
  Sensor& s = Get(sensor_id);
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
  Sensor* found = Find(sensor_id);
  if (found == nullptr) return;
  Sensor& s = *found;
  auto at = std::lower_bound(s.entries.begin() + s.head, s.entries.end(), ts,
                             [](const Entry& e, int64_t t) { return e.timestamp_us < t; });
  if (at == s.entries.end() || at->timestamp_us != ts || at->values_hash != hash) return;
  s.entries.erase(at);
  --readings_;
}

size_t DedupWindow::MemoryBytes() const {
  size_t bytes = slots_.capacity() * sizeof(uint64_t) + sensors_.capacity() * sizeof(Sensor);
  for (const Sensor& s : sensors_) bytes += s.entries.capacity() * sizeof(Entry);
  return bytes;
}

}  // namespace mare
