#include "processors/rollup/rollup_state.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "common/time.h"

namespace mare::rollup {

RollupState::RollupState(RollupStateOptions options) : options_(std::move(options)), parser_(std::make_unique<RecordParser>()) {
  if (options_.partitions < 1) options_.partitions = 1;
  size_t n = options_.resolutions.size();
  child_.assign(n, -1);
  parents_.assign(n, {});
  for (size_t r = 0; r < n; ++r) {
    int64_t length = options_.resolutions[r].length_us;
    for (size_t c = 0; c < n && options_.nest; ++c) {
      int64_t l = options_.resolutions[c].length_us;
      if (l < length && length % l == 0 && (child_[r] < 0 || l > options_.resolutions[static_cast<size_t>(child_[r])].length_us)) {
        child_[r] = static_cast<int>(c);
      }
    }
    if (child_[r] >= 0) parents_[static_cast<size_t>(child_[r])].push_back(r);
    else per_reading_.push_back(r);
    ascending_.push_back(r);
  }
  std::sort(ascending_.begin(), ascending_.end(), [this](size_t a, size_t b) {
    return options_.resolutions[a].length_us < options_.resolutions[b].length_us;
  });
  full_.resize(n + 1);
  Clear();
}

RollupState::~RollupState() = default;

void RollupState::Clear() {
  next_offset_.assign(static_cast<size_t>(options_.partitions), 0);
  newest_ts_.assign(static_cast<size_t>(options_.partitions), kNoTime);
  newest_ts_all_ = kNoTime;
  next_close_end_ = std::numeric_limits<int64_t>::max();
  sensors_.clear();
  last_sensor_ = nullptr;
  sensor_cache_.assign(kSensorCache, {});
  field_names_.clear();
  writer_.ClearFields();
  field_ids_.clear();
  field_hint_.clear();
  readings_ = dropped_late_ = invalid_ = 0;
  open_windows_ = held_windows_ = 0;
}

int64_t RollupState::watermark_us() const {
  return newest_ts_all_ == kNoTime ? kNoTime : newest_ts_all_ - options_.lateness_us;
}

int64_t RollupState::partition_watermark_us(int32_t partition) const {
  int64_t newest = newest_ts_[static_cast<size_t>(partition)];
  return newest == kNoTime ? kNoTime : newest - options_.lateness_us;
}

void RollupState::Reject(std::string_view reason, std::string_view detail, std::string_view raw) {
  if (reject_) reject_(reason, detail, raw);
}

bool RollupState::AddRecord(const log::ConsumedRecord& record) {
  uint32_t sensor_id = 0;
  auto [end, ec] = std::from_chars(record.key.data(), record.key.data() + record.key.size(), sensor_id);
  bool key_ok = ec == std::errc() && end == record.key.data() + record.key.size() && !record.key.empty();
  if (key_ok) Prefetch(sensor_id);
  // The numbers ingest parsed travel with the record in the embedded log; others are parsed here.
  if (!key_ok || !(record.has_numbers || parser_->Numbers(record.value, &numbers_))) {
    if (record.partition >= 0 && record.partition < options_.partitions) {
      next_offset_[static_cast<size_t>(record.partition)] = record.offset + 1;
    }
    ++invalid_;
    Reject("invalid", fmt::format("raw partition {} offset {}: key or value is not a reading", record.partition, record.offset),
           record.value);
    return false;
  }
  return Add(record.partition, record.offset, record.timestamp_us, sensor_id,
             record.has_numbers ? record.numbers : std::span<const NumberField>(numbers_), record.value);
}

RollupState::Sensor* RollupState::FindSensor(uint32_t sensor_id) {
  CachedSensor& c = sensor_cache_[sensor_id % kSensorCache];
  if (c.sensor != nullptr && c.id == sensor_id) return c.sensor;
  auto it = sensors_.find(sensor_id);
  if (it == sensors_.end()) return nullptr;
  c = {sensor_id, &it->second};  // the map's nodes never move
  return c.sensor;
}

RollupState::Sensor& RollupState::SensorFor(uint32_t sensor_id, int32_t partition) {
  if (last_sensor_ != nullptr && last_sensor_id_ == sensor_id) return *last_sensor_;
  Sensor* sensor = FindSensor(sensor_id);
  if (sensor == nullptr) {
    sensor = &sensors_[sensor_id];
    sensor->partition = partition;
    sensor->windows.resize(options_.resolutions.size());
    sensor_cache_[sensor_id % kSensorCache] = {sensor_id, sensor};
  }
  last_sensor_id_ = sensor_id;
  last_sensor_ = sensor;
  return *sensor;
}

// Starts loading the aggregates the sensor's next reading most likely updates (those of its
// newest window of each resolution: a few hundred bytes each, rarely still in the CPU's
// caches with many sensors), so that they arrive while the reading is parsed.
void RollupState::Prefetch(uint32_t sensor_id) {
  const Sensor* sensor = last_sensor_;
  if (sensor == nullptr || last_sensor_id_ != sensor_id) {
    last_sensor_ = FindSensor(sensor_id);
    if (last_sensor_ == nullptr) return;  // a new sensor: nothing to load
    last_sensor_id_ = sensor_id;
    sensor = last_sensor_;
  }
  for (size_t r : per_reading_) {
    const char* bytes;
    size_t size;
    if (r == per_reading_[0] && sensor->hot.window != nullptr) {
      __builtin_prefetch(sensor->hot.window, 1);
      bytes = reinterpret_cast<const char*>(sensor->hot.fields);
      size = sensor->hot.nfields * sizeof(Aggregate);
    } else {
      const auto& list = sensor->windows[r];
      if (list.empty()) continue;
      bytes = reinterpret_cast<const char*>(list.back().fields.data());
      size = list.back().fields.size() * sizeof(Aggregate);
    }
    for (size_t at = 0; at < size; at += 64) __builtin_prefetch(bytes + at, 1);
  }
}

RollupState::Window& RollupState::InsertWindow(std::vector<Window>& list, size_t r, int64_t start, bool* inserted) {
  *inserted = false;
  if (!list.empty() && list.back().start == start) return list.back();
  auto it = std::lower_bound(list.begin(), list.end(), start, [](const Window& w, int64_t s) { return w.start < s; });
  if (it != list.end() && it->start == start) return *it;
  *inserted = true;
  it = list.insert(it, Window{});
  it->start = start;
  it->derived = child_[r] >= 0;
  ++open_windows_;
  ++held_windows_;
  next_close_end_ = std::min(next_close_end_, start + options_.resolutions[r].length_us);
  return *it;
}

RollupState::Window* RollupState::FindWindow(std::vector<Window>& list, int64_t start) {
  if (!list.empty() && list.back().start == start) return &list.back();
  auto it = std::lower_bound(list.begin(), list.end(), start, [](const Window& w, int64_t s) { return w.start < s; });
  return it != list.end() && it->start == start ? &*it : nullptr;
}

RollupState::Window& RollupState::WindowFor(Sensor& sensor, size_t r, int64_t start) {
  bool inserted;
  Window& w = InsertWindow(sensor.windows[r], r, start, &inserted);
  if (!inserted) return w;
  if (r == per_reading_.front()) sensor.hot = {};  // the list's windows moved
  // The coarser windows derived from it hold it: they exist as long as it does. (Only other
  // resolutions' lists change here, so w stays valid.)
  for (size_t p : parents_[r]) WindowFor(sensor, p, WindowStart(start, options_.resolutions[p].length_us));
  if (!w.derived) w.feeds_ancestor = HasPerReadingAncestor(sensor, r, start);
  return w;
}

// Whether a coarser window holding [start, ...) of resolution r is updated per reading: only
// windows restored from a version 1 checkpoint are, among derived resolutions.
bool RollupState::HasPerReadingAncestor(Sensor& sensor, size_t r, int64_t start) {
  for (size_t p : parents_[r]) {
    int64_t s = WindowStart(start, options_.resolutions[p].length_us);
    Window* w = FindWindow(sensor.windows[p], s);
    if (w != nullptr && !w->derived) return true;
    if (HasPerReadingAncestor(sensor, p, s)) return true;
  }
  return false;
}

void RollupState::AddToAncestors(Sensor& sensor, size_t r, int64_t ts, std::span<const NumberField> numbers,
                                 uint16_t max_id) {
  for (size_t p : parents_[r]) {
    Window* w = FindWindow(sensor.windows[p], WindowStart(ts, options_.resolutions[p].length_us));
    if (w != nullptr && !w->derived) {
      w->dirty = true;
      if (w->fields.size() <= max_id) w->fields.resize(static_cast<size_t>(max_id) + 1);
      for (size_t i = 0; i < numbers.size(); ++i) w->fields[ids_[i]].Add(ts, numbers[i].value);
    }
    AddToAncestors(sensor, p, ts, numbers, max_id);
  }
}

namespace {

template <typename Word>
Word Load(const char* p) {
  Word w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

// a == b, for short names without a call to memcmp: overlapping word loads, all within both.
inline bool SameName(std::string_view a, std::string_view b) {
  size_t n = a.size();
  if (n != b.size()) return false;
  const char* x = a.data();
  const char* y = b.data();
  if (n >= 8) {
    if (n > 32) return std::memcmp(x, y, n) == 0;
    uint64_t diff = (Load<uint64_t>(x) ^ Load<uint64_t>(y)) | (Load<uint64_t>(x + n - 8) ^ Load<uint64_t>(y + n - 8));
    if (n > 16) {
      diff |= (Load<uint64_t>(x + 8) ^ Load<uint64_t>(y + 8)) | (Load<uint64_t>(x + n - 16) ^ Load<uint64_t>(y + n - 16));
    }
    return diff == 0;
  }
  if (n >= 4) return ((Load<uint32_t>(x) ^ Load<uint32_t>(y)) | (Load<uint32_t>(x + n - 4) ^ Load<uint32_t>(y + n - 4))) == 0;
  for (size_t i = 0; i < n; ++i) {
    if (x[i] != y[i]) return false;
  }
  return true;
}

}  // namespace

uint16_t RollupState::FieldId(std::string_view name, size_t position) {
  auto it = field_ids_.find(name);
  uint16_t id = it != field_ids_.end() ? it->second : NewField(name);
  if (position >= field_hint_.size()) field_hint_.resize(position + 1);
  field_hint_[position] = {field_names_[id], id};
  return id;
}

uint16_t RollupState::NewField(std::string_view name) {
  auto id = static_cast<uint16_t>(field_names_.size());
  field_names_.emplace_back(name);
  writer_.AddField(name);
  field_ids_.emplace(field_names_.back(), id);
  return id;
}

bool RollupState::Add(int32_t partition, int64_t offset, int64_t ts_us, uint32_t sensor_id,
                      std::span<const NumberField> numbers, std::string_view raw) {
  size_t p = static_cast<size_t>(partition);
  next_offset_[p] = offset + 1;
  int64_t newest = newest_ts_[p];
  if (newest != kNoTime && ts_us < newest - options_.lateness_us) {
    ++dropped_late_;
    int64_t behind = newest - options_.lateness_us - ts_us;
    Reject("late",
           fmt::format("event time {} is {} older than the watermark {} of raw partition {} (offset {}; allowed lateness {})",
                       FormatTimestamp(ts_us), FormatDuration(behind), FormatTimestamp(newest - options_.lateness_us),
                       partition, offset, FormatDuration(options_.lateness_us)),
           raw);
    return false;
  }
  if (newest == kNoTime || ts_us > newest) {
    newest_ts_[p] = ts_us;
    if (newest_ts_all_ == kNoTime || ts_us > newest_ts_all_) newest_ts_all_ = ts_us;
  }
  ++readings_;
  if (numbers.empty()) return true;
  if (numbers.size() > ids_.size()) ids_.resize(numbers.size());
  uint16_t max_id = 0;
  size_t hints = field_hint_.size();
  for (size_t i = 0; i < numbers.size(); ++i) {
    ids_[i] = i < hints && SameName(field_hint_[i].name, numbers[i].name) ? field_hint_[i].id
                                                                          : FieldId(numbers[i].name, i);
    max_id = std::max(max_id, ids_[i]);
  }
  Sensor& sensor = SensorFor(sensor_id, partition);
  // Only the resolutions no other divides; the coarser windows derive from them (at emission).
  // Windows are found without WindowStart's 64-bit division when the reading falls in the
  // last one used (unsigned: a ts before the start wraps to a large difference).
  for (size_t r : per_reading_) {
    uint64_t length = static_cast<uint64_t>(options_.resolutions[r].length_us);
    Hot& hot = sensor.hot;
    Window* w;
    Aggregate* fields;
    if (r == per_reading_[0] && hot.window != nullptr &&
        static_cast<uint64_t>(ts_us) - static_cast<uint64_t>(hot.start) < length && max_id < hot.nfields) [[likely]] {
      w = hot.window;
      fields = hot.fields;
    } else {
      auto& list = sensor.windows[r];
      w = !list.empty() && static_cast<uint64_t>(ts_us) - static_cast<uint64_t>(list.back().start) < length
              ? &list.back()
              : &WindowFor(sensor, r, WindowStart(ts_us, static_cast<int64_t>(length)));
      if (w->fields.size() <= max_id) w->fields.resize(static_cast<size_t>(max_id) + 1);
      fields = w->fields.data();
      if (r == per_reading_[0]) hot = {w, fields, w->start, static_cast<uint32_t>(w->fields.size())};
    }
    w->dirty = true;
    for (size_t i = 0; i < numbers.size(); ++i) fields[ids_[i]].Add(ts_us, numbers[i].value);
    if (w->feeds_ancestor) [[unlikely]] AddToAncestors(sensor, r, ts_us, numbers, max_id);
  }
  return true;
}

void RollupState::AdvanceWatermark() { CloseUpTo(watermark_us()); }

void RollupState::AdvanceIdleWatermark(int64_t idle_us) {
  int64_t wm = watermark_us();
  if (wm == kNoTime || idle_us <= 0) return;
  CloseUpTo(idle_us > std::numeric_limits<int64_t>::max() - wm ? std::numeric_limits<int64_t>::max() : wm + idle_us);
}

void RollupState::CloseUpTo(int64_t wm) {
  if (wm == kNoTime || wm < next_close_end_) return;
  int64_t next = std::numeric_limits<int64_t>::max();
  for (auto& [id, sensor] : sensors_) {
    for (size_t r = 0; r < sensor.windows.size(); ++r) {
      int64_t length = options_.resolutions[r].length_us;
      for (Window& w : sensor.windows[r]) {
        if (w.closed) continue;
        if (w.start + length <= wm) {
          w.closed = true;
          w.dirty = true;
          if (w.derived) {
            w.close_pending = true;  // which fields have readings is known at emission
          } else {
            for (Aggregate& a : w.fields) a.dirty |= a.count > 0 ? Aggregate::kToEmit : 0;
          }
          --open_windows_;
        } else {
          next = std::min(next, w.start + length);
        }
      }
    }
  }
  next_close_end_ = next;
}

std::vector<Aggregate>& RollupState::Full(Sensor& sensor, size_t r, Window& w, size_t depth) {
  if (!w.derived) return w.fields;
  std::vector<Aggregate>& full = full_[depth];
  full = w.fields;
  size_t c = static_cast<size_t>(child_[r]);
  auto& kids = sensor.windows[c];
  int64_t end = w.start + options_.resolutions[r].length_us;
  auto it = std::lower_bound(kids.begin(), kids.end(), w.start, [](const Window& k, int64_t s) { return k.start < s; });
  for (; it != kids.end() && it->start < end; ++it) {
    const std::vector<Aggregate>& k = Full(sensor, c, *it, depth + 1);
    if (full.size() < k.size()) full.resize(k.size());
    for (size_t f = 0; f < k.size(); ++f) full[f].Merge(k[f]);
  }
  return full;
}

// Marks the derived windows holding a finer window that got readings since the last Emit: the
// fields that got readings are to emit. Finer resolutions first, so that it goes up the chain.
void RollupState::PropagateChanges(Sensor& sensor) {
  for (size_t r : ascending_) {
    if (parents_[r].empty()) continue;
    for (Window& c : sensor.windows[r]) {
      if (!c.dirty) continue;
      size_t changed_end = 0;  // 1 + the last field id changed
      for (size_t f = 0; f < c.fields.size(); ++f) {
        if (c.fields[f].dirty & Aggregate::kChanged) changed_end = f + 1;
      }
      if (changed_end == 0) continue;
      for (size_t p : parents_[r]) {
        Window* w = FindWindow(sensor.windows[p], WindowStart(c.start, options_.resolutions[p].length_us));
        if (w == nullptr || !w->derived) continue;  // one restored from version 1 got the readings itself
        w->dirty = true;
        if (w->fields.size() < changed_end) w->fields.resize(changed_end);
        for (size_t f = 0; f < changed_end; ++f) {
          if (c.fields[f].dirty & Aggregate::kChanged) w->fields[f].dirty |= Aggregate::kToEmit | Aggregate::kChanged;
        }
      }
      for (Aggregate& a : c.fields) a.dirty &= static_cast<uint8_t>(~Aggregate::kChanged);
    }
  }
}

void RollupState::EmitSensor(uint32_t sensor_id, Sensor& sensor, RollupMessages* out) {
  for (size_t r = 0; r < sensor.windows.size(); ++r) {
    for (Window& w : sensor.windows[r]) {
      if (!w.dirty) continue;
      w.dirty = false;
      if (!w.derived) {
        EmitWindow(sensor_id, r, w, w.fields, out);
        continue;
      }
      std::vector<Aggregate>& full = Full(sensor, r, w, 0);
      for (size_t f = 0; f < full.size(); ++f) {
        bool emit = (f < w.fields.size() && (w.fields[f].dirty & Aggregate::kToEmit)) || (w.close_pending && full[f].count > 0);
        full[f].dirty = emit ? Aggregate::kToEmit : 0;
        if (f < w.fields.size()) w.fields[f].dirty &= static_cast<uint8_t>(~Aggregate::kToEmit);
      }
      w.close_pending = false;
      EmitWindow(sensor_id, r, w, full, out);
    }
  }
}

// Forgets the windows no reading can reach any more: closed, and ended at or before their
// partition's watermark; a derived one only after the finer windows inside it. A finer window
// evicted is merged into the derived windows holding it: finer resolutions go first, and a
// list's windows in order, so those merges happen in window order.
bool RollupState::EvictSensor(Sensor& sensor) {
  int64_t evict_before = partition_watermark_us(sensor.partition);
  bool empty = true;
  for (size_t r : ascending_) {
    auto& list = sensor.windows[r];
    int64_t length = options_.resolutions[r].length_us;
    const std::vector<Window>* kids = child_[r] >= 0 ? &sensor.windows[static_cast<size_t>(child_[r])] : nullptr;
    auto keep = std::find_if(list.begin(), list.end(), [&](const Window& w) {
      int64_t end = w.start + length;
      return !(w.closed && evict_before != kNoTime && end <= evict_before &&
               (kids == nullptr || kids->empty() || kids->front().start >= end));
    });
    for (auto it = list.begin(); it != keep && !parents_[r].empty(); ++it) {
      std::vector<Aggregate>& full = Full(sensor, r, *it, 0);
      for (size_t p : parents_[r]) {
        Window* w = FindWindow(sensor.windows[p], WindowStart(it->start, options_.resolutions[p].length_us));
        if (w == nullptr || !w->derived) continue;
        if (w->fields.size() < full.size()) w->fields.resize(full.size());
        for (size_t f = 0; f < full.size(); ++f) w->fields[f].Merge(full[f]);
      }
    }
    held_windows_ -= keep - list.begin();
    if (keep != list.begin() && r == per_reading_.front()) sensor.hot = {};  // the list's windows move
    list.erase(list.begin(), keep);
    if (!list.empty()) empty = false;
  }
  return empty;
}

size_t RollupState::Emit(std::vector<RollupMessage>* out) {
  RollupMessages messages;
  size_t n = Emit(&messages);
  for (size_t i = 0; i < n; ++i) {
    out->push_back({messages.partition(i), messages.timestamp_us(i), std::string(messages.key(i)),
                    std::string(messages.value(i))});
  }
  return n;
}

size_t RollupState::Emit(RollupMessages* out) {
  uint64_t before = out->added();
  for (auto it = sensors_.begin(); it != sensors_.end();) {
    Sensor& sensor = it->second;
    PropagateChanges(sensor);
    EmitSensor(it->first, sensor, out);
    if (EvictSensor(sensor)) {
      if (last_sensor_ == &sensor) last_sensor_ = nullptr;
      CachedSensor& c = sensor_cache_[it->first % kSensorCache];
      if (c.sensor == &sensor) c = {};
      it = sensors_.erase(it);
    } else {
      ++it;
    }
  }
  return static_cast<size_t>(out->added() - before);
}

}  // namespace mare::rollup
