#include "processors/rollup/checkpoint_body.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "common/time.h"
#include "reading/timestamp.h"

namespace mare::rollup {
namespace {

template <typename T>
void Put(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian hosts only (x86-64, aarch64)
  out->append(b, sizeof(T));
}

class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  template <typename T>
  bool Get(T* v) {
    if (b_.size() - at_ < sizeof(T)) return false;
    std::memcpy(v, b_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return true;
  }
  bool Bytes(size_t n, std::string_view* v) {
    if (b_.size() - at_ < n) return false;
    *v = b_.substr(at_, n);
    at_ += n;
    return true;
  }
  size_t at() const { return at_; }
  size_t left() const { return b_.size() - at_; }
  bool done() const { return at_ == b_.size(); }

 private:
  std::string_view b_;
  size_t at_ = 0;
};

}  // namespace

void CheckpointBody::Encode(const RollupState& s, int32_t only, std::string* out) {
  out->clear();
  Put<int64_t>(out, s.options_.lateness_us);
  Put<uint32_t>(out, static_cast<uint32_t>(s.options_.resolutions.size()));
  for (const auto& r : s.options_.resolutions) Put<int64_t>(out, r.length_us);
  Put<uint32_t>(out, static_cast<uint32_t>(s.options_.partitions));
  for (size_t p = 0; p < s.next_offset_.size(); ++p) {
    bool mine = only < 0 || static_cast<int32_t>(p) == only;
    Put<int64_t>(out, mine ? s.next_offset_[p] : 0);
    Put<int64_t>(out, mine ? s.newest_ts_[p] : kNoTime);
  }
  Put<uint32_t>(out, static_cast<uint32_t>(s.field_names_.size()));
  for (const auto& name : s.field_names_) {
    Put<uint16_t>(out, static_cast<uint16_t>(name.size()));
    out->append(name);
  }
  uint64_t windows = 0;
  for (const auto& [id, sensor] : s.sensors_) {
    if (only >= 0 && sensor.partition != only) continue;
    for (const auto& list : sensor.windows) windows += list.size();
  }
  Put<uint64_t>(out, windows);
  for (const auto& [id, sensor] : s.sensors_) {
    if (only >= 0 && sensor.partition != only) continue;
    for (size_t r = 0; r < sensor.windows.size(); ++r) {
      for (const RollupState::Window& w : sensor.windows[r]) {
        Put<uint32_t>(out, id);
        Put<int32_t>(out, sensor.partition);
        Put<uint8_t>(out, static_cast<uint8_t>(r));
        Put<int64_t>(out, w.start);
        Put<uint8_t>(out, static_cast<uint8_t>((w.closed ? 1 : 0) | (w.dirty ? 2 : 0) | (w.derived ? 4 : 0) |
                                               (w.close_pending ? 8 : 0)));
        uint16_t n = 0;
        for (const Aggregate& a : w.fields) n += a.count > 0 || a.dirty != 0 ? 1 : 0;
        Put<uint16_t>(out, n);
        for (size_t f = 0; f < w.fields.size(); ++f) {
          const Aggregate& a = w.fields[f];
          if (a.count == 0 && a.dirty == 0) continue;
          Put<uint16_t>(out, static_cast<uint16_t>(f));
          Put<uint8_t>(out, a.dirty);
          Put<int64_t>(out, a.count);
          Put<double>(out, a.mean);
          Put<double>(out, a.m2);
          Put<double>(out, a.min);
          Put<double>(out, a.max);
          Put<int64_t>(out, a.first_ts);
          Put<double>(out, a.first);
          Put<int64_t>(out, a.last_ts);
          Put<double>(out, a.last);
        }
      }
    }
  }
}

Status CheckpointBody::Decode(std::string_view bytes, int32_t only, uint32_t version, RollupState& s) {
  if (version != 1 && version != kCheckpointVersion) {
    return Status::Corruption(fmt::format("rollup checkpoint body: unknown version {}", version));
  }
  Reader in(bytes);
  auto bad = [&](const std::string& what) {
    if (only < 0) s.Clear();
    return Status::Corruption(fmt::format("rollup checkpoint body at byte {}: {}", in.at(), what));
  };
  int64_t lateness;
  uint32_t nres;
  // Counts are checked against the bytes left before anything is sized by them: a damaged
  // count must not ask for gigabytes.
  if (!in.Get(&lateness) || !in.Get(&nres) || nres > in.left() / sizeof(int64_t)) return bad("truncated");
  std::vector<int64_t> lengths(nres);
  for (auto& l : lengths) {
    if (!in.Get(&l)) return bad("truncated");
  }
  std::vector<int64_t> want;
  for (const auto& r : s.options_.resolutions) want.push_back(r.length_us);
  if (lateness != s.options_.lateness_us || lengths != want) {
    std::vector<std::string> names;
    for (int64_t l : lengths) names.push_back(FormatDuration(l));
    return Status::InvalidArgument(fmt::format(
        "the checkpoint was made with resolutions {} and lateness {}; delete it to recompute the rollups from the "
        "oldest retained reading with the new settings",
        fmt::join(names, ","), FormatDuration(lateness)));
  }
  uint32_t partitions;
  if (!in.Get(&partitions)) return bad("truncated");
  if (static_cast<int32_t>(partitions) != s.options_.partitions) {
    return Status::InvalidArgument(fmt::format("the checkpoint has {} raw partitions, the log {}", partitions, s.options_.partitions));
  }
  if (only < 0) s.Clear();
  for (size_t p = 0; p < partitions; ++p) {
    int64_t next, newest;
    if (!in.Get(&next) || !in.Get(&newest)) return bad("truncated");
    // A reading's time is in the years 1900 to 9999: a newest time outside them is damage (and
    // one near the smallest int64 overflowed the watermark, newest - lateness, at the next reading).
    if (newest != kNoTime && !InReadingYears(newest)) return bad("a partition's newest time out of range");
    if (only >= 0 && static_cast<int32_t>(p) != only) continue;
    s.next_offset_[p] = next;
    s.newest_ts_[p] = newest;
    if (newest != kNoTime && (s.newest_ts_all_ == kNoTime || newest > s.newest_ts_all_)) s.newest_ts_all_ = newest;
  }
  // The checkpoint's field ids, as this state's (the same when the state was empty).
  uint32_t nfields;
  if (!in.Get(&nfields) || nfields > in.left() / sizeof(uint16_t)) return bad("truncated");  // a name takes 2 bytes or more
  std::vector<uint16_t> ids(nfields);
  for (uint32_t i = 0; i < nfields; ++i) {
    uint16_t len;
    std::string_view name;
    if (!in.Get(&len) || !in.Bytes(len, &name)) return bad("truncated");
    auto it = s.field_ids_.find(name);
    ids[i] = it != s.field_ids_.end() ? it->second : s.NewField(name);
  }
  uint64_t nwindows;
  if (!in.Get(&nwindows)) return bad("truncated");
  for (uint64_t i = 0; i < nwindows; ++i) {
    uint32_t sensor_id;
    int32_t partition;
    uint8_t r, flags;
    int64_t start;
    uint16_t n;
    if (!in.Get(&sensor_id) || !in.Get(&partition) || !in.Get(&r) || !in.Get(&start) || !in.Get(&flags) || !in.Get(&n)) {
      return bad("truncated");
    }
    if (r >= s.options_.resolutions.size()) return bad("resolution index out of range");
    if (partition < 0 || partition >= s.options_.partitions) return bad("partition out of range");
    if (only >= 0 && partition != only) return bad("a window of another partition");
    if (flags > (version == 1 ? 3 : 15)) return bad("unknown window flags");
    // A window the processor made starts on a multiple of its length, and its end fits in
    // int64 (found by fuzz/rollup_checkpoint: a start near 2^63 overflowed its end).
    int64_t length = s.options_.resolutions[r].length_us;
    if (start > std::numeric_limits<int64_t>::max() - length || WindowStart(start, length) != start) {
      return bad("window start out of range");
    }
    bool derived = flags & 4;
    if (derived && s.child_[r] < 0) return bad("a derived window of a resolution no other divides");
    RollupState::Sensor& sensor = s.SensorFor(sensor_id, partition);
    bool inserted;
    RollupState::Window& w = s.InsertWindow(sensor.windows[r], r, start, &inserted);
    if (!inserted) return bad("a window twice");
    // Version 1 kept every window's aggregates per reading: those go on so (feeds_ancestor,
    // below), and only windows made from now on are derived.
    w.derived = derived;
    w.closed = flags & 1;
    w.dirty = flags & 2;
    w.close_pending = flags & 8;
    if (w.closed) --s.open_windows_;
    for (uint16_t k = 0; k < n; ++k) {
      uint16_t f;
      uint8_t dirty;
      Aggregate a;
      if (!in.Get(&f) || !in.Get(&dirty) || !in.Get(&a.count) || !in.Get(&a.mean) || !in.Get(&a.m2) || !in.Get(&a.min) ||
          !in.Get(&a.max) || !in.Get(&a.first_ts) || !in.Get(&a.first) || !in.Get(&a.last_ts) || !in.Get(&a.last)) {
        return bad("truncated");
      }
      if (f >= ids.size()) return bad("field id out of range");
      if (a.count < 0 || (a.count == 0 && !derived)) return bad("aggregate with no readings");
      // Counts are exact in the doubles the mean is weighted with up to 2^53, and no window
      // holds that many readings; a larger one is damage, and merging it would overflow.
      if (a.count > (int64_t{1} << 53)) return bad("aggregate count beyond 2^53");
      if (dirty > (version == 1 ? 1 : 3)) return bad("unknown aggregate flags");
      f = ids[f];
      a.dirty = dirty;
      if (w.fields.size() <= f) w.fields.resize(static_cast<size_t>(f) + 1);
      w.fields[f] = a;
    }
  }
  if (!in.done()) return bad("trailing bytes");
  // Closed windows do not bound the next close.
  s.next_close_end_ = std::numeric_limits<int64_t>::max();
  for (auto& [id, sensor] : s.sensors_) {
    sensor.hot = {};
    for (size_t r = 0; r < sensor.windows.size(); ++r) {
      for (RollupState::Window& w : sensor.windows[r]) {
        if (!w.closed) s.next_close_end_ = std::min(s.next_close_end_, w.start + s.options_.resolutions[r].length_us);
        if (!w.derived && s.child_[r] < 0) w.feeds_ancestor = s.HasPerReadingAncestor(sensor, r, w.start);
      }
    }
  }
  return Status::OK();
}


// RollupState's checkpoint members are defined here, beside the code they call, so that
// rollup_state.cc does not depend on the body's layout.
void RollupState::Encode(std::string* out) const { CheckpointBody::Encode(*this, -1, out); }

Status RollupState::Decode(std::string_view bytes, uint32_t version) { return CheckpointBody::Decode(bytes, -1, version, *this); }

void RollupState::EncodePartition(int32_t partition, std::string* out) const {
  CheckpointBody::Encode(*this, partition, out);
}

Status RollupState::DecodePartition(int32_t partition, std::string_view bytes, uint32_t version) {
  return CheckpointBody::Decode(bytes, partition, version, *this);
}

}  // namespace mare::rollup
