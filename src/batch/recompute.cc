#include "batch/recompute.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>

namespace mare::batch {
namespace {

using rollup::Aggregate;
using rollup::WindowStart;

// Where a run of one sensor's rows is: a block of a segment, or a memtable buffer.
struct Source {
  int64_t hour = 0;
  uint64_t rank = 0;  // segments in id order (older flushes first); the memtable after them all
  uint32_t segment = 0;
  uint32_t index = 0;  // block within the segment, or buffer within the memtable
};

// A source's rows decoded: timestamps and the rolled-up number columns.
struct Decoded {
  std::vector<int64_t> ts;
  std::vector<uint32_t> fields;
  std::vector<store::ColumnValues> columns;
  size_t used = 0;  // of fields/columns (the vectors are reused)
};

// One sensor's windows of one window of the longest resolution, by resolution and start.
class Chunk {
 public:
  Chunk(const std::vector<rollup::Resolution>& resolutions, size_t fields) : resolutions_(resolutions), fields_(fields) {
    size_t n = resolutions.size();
    child_.assign(n, -1);
    for (size_t r = 0; r < n; ++r) {
      int64_t length = resolutions[r].length_us;
      for (size_t c = 0; c < n; ++c) {
        int64_t l = resolutions[c].length_us;
        if (l < length && length % l == 0 &&
            (child_[r] < 0 || l > resolutions[static_cast<size_t>(child_[r])].length_us)) {
          child_[r] = static_cast<int>(c);
        }
      }
      if (child_[r] < 0) per_reading_.push_back(r);
      ascending_.push_back(r);
    }
    std::sort(ascending_.begin(), ascending_.end(),
              [&](size_t a, size_t b) { return resolutions[a].length_us < resolutions[b].length_us; });
    windows_.resize(n);
    current_.assign(n, nullptr);
    current_start_.assign(n, std::numeric_limits<int64_t>::min());
  }

  // The aggregates (by field id) the reading at ts goes to, per resolution updated per reading.
  template <typename F>
  void ForReading(int64_t ts, F&& f) {
    for (size_t r : per_reading_) {
      int64_t length = resolutions_[r].length_us;
      if (current_[r] == nullptr || ts < current_start_[r] || ts - current_start_[r] >= length) {
        current_start_[r] = WindowStart(ts, length);
        auto& aggs = windows_[r][current_start_[r]];
        if (aggs.size() < fields_) aggs.resize(fields_);
        current_[r] = aggs.data();  // map nodes do not move
      }
      f(current_[r]);
    }
  }

  // Derives the coarser resolutions (the left fold of the finer windows in window order, as
  // the stream's RollupState), hands everything to `out` and forgets it.
  void Finish(uint32_t sensor, const std::vector<store::Field>& names, std::vector<BatchRollup>* out) {
    for (size_t r : ascending_) {
      if (child_[r] < 0) continue;
      int64_t length = resolutions_[r].length_us;
      for (const auto& [start, aggs] : windows_[static_cast<size_t>(child_[r])]) {
        auto& parent = windows_[r][WindowStart(start, length)];
        if (parent.size() < fields_) parent.resize(fields_);
        for (size_t f = 0; f < aggs.size(); ++f) parent[f].Merge(aggs[f]);
      }
    }
    for (size_t r = 0; r < windows_.size(); ++r) {
      for (const auto& [start, aggs] : windows_[r]) {
        for (size_t f = 0; f < aggs.size(); ++f) {
          if (aggs[f].count == 0) continue;
          out->push_back({sensor, names[f].name, r, start, aggs[f]});
        }
      }
      windows_[r].clear();
      current_[r] = nullptr;
    }
  }

 private:
  const std::vector<rollup::Resolution>& resolutions_;
  const size_t fields_;
  std::vector<int> child_;  // the finer resolution each is derived from, or -1: per reading
  std::vector<size_t> per_reading_, ascending_;
  std::vector<std::map<int64_t, std::vector<Aggregate>>> windows_;
  std::vector<Aggregate*> current_;
  std::vector<int64_t> current_start_;
};

Status DecodeBlock(const store::Segment& segment, size_t block, const std::vector<char>& rolled, std::string* bytes,
                   Decoded* out) {
  const store::BlockMeta& meta = segment.blocks()[block];
  MARE_RETURN_IF_ERROR(segment.ReadBlock(block, bytes));
  MARE_RETURN_IF_ERROR(store::DecodeBlockTimestamps(meta, *bytes, &out->ts));
  out->used = 0;
  for (const store::ColumnMeta& c : meta.columns) {
    if (c.type != store::FieldType::kNumber || c.field >= rolled.size() || !rolled[c.field]) continue;
    if (out->used == out->columns.size()) {
      out->columns.emplace_back();
      out->fields.push_back(0);
    }
    out->fields[out->used] = c.field;
    store::ColumnValues& values = out->columns[out->used];
    values.Clear();
    MARE_RETURN_IF_ERROR(store::DecodeBlockColumn(meta, *bytes, c.field, store::FieldType::kNumber, &values));
    ++out->used;
  }
  return Status::OK();
}

void DecodeBuffer(const store::RowBuffer& rows, const std::vector<char>& rolled, Decoded* out) {
  out->ts = rows.ts();
  out->used = 0;
  const auto& columns = rows.columns();
  for (uint32_t f = 0; f < columns.size(); ++f) {
    const auto& c = columns[f];
    if (!c.used || c.type != store::FieldType::kNumber || f >= rolled.size() || !rolled[f]) continue;
    if (out->used == out->columns.size()) {
      out->columns.emplace_back();
      out->fields.push_back(0);
    }
    out->fields[out->used] = f;
    store::ColumnValues& values = out->columns[out->used];
    values.Clear();
    values.numbers = c.numbers;
    values.valid = c.present;
    ++out->used;
  }
}

}  // namespace

std::pair<int64_t, int64_t> WidenedPeriod(const std::vector<rollup::Resolution>& resolutions, int64_t from_us, int64_t to_us) {
  int64_t longest = 1;
  for (const auto& r : resolutions) longest = std::max(longest, r.length_us);
  if (to_us <= from_us) return {from_us, from_us};
  return {WindowStart(from_us, longest), WindowStart(to_us - 1, longest) + longest};
}

Result<RecomputeSummary> Recompute(const store::Store& store, const RecomputeOptions& options, const RollupConsumer& emit) {
  const auto& resolutions = options.resolutions;
  if (resolutions.empty()) return Status::InvalidArgument("batch: no resolutions");
  int64_t longest = 0;
  for (const auto& r : resolutions) longest = std::max(longest, r.length_us);
  for (const auto& r : resolutions) {
    if (longest % r.length_us != 0) {
      return Status::InvalidArgument(fmt::format("batch: resolution {} does not divide the longest, {}", r.name,
                                                 rollup::MakeResolution(longest).name));
    }
  }
  RecomputeSummary summary;
  std::tie(summary.from_us, summary.to_us) = WidenedPeriod(resolutions, options.from_us, options.to_us);
  if (summary.to_us <= summary.from_us) return summary;
  const int64_t from = summary.from_us, to = summary.to_us;

  auto snap = store.GetSnapshot({.sensors = options.sensors, .min_ts = from, .max_ts = to - 1});
  if (!snap->status.ok()) return snap->status;
  // The fields rolled up: every number field but the location, as the stream's (ingest's numbers).
  std::vector<char> rolled(snap->fields.size(), 0);
  for (size_t f = 0; f < snap->fields.size(); ++f) {
    const store::Field& field = snap->fields[f];
    rolled[f] = field.type == store::FieldType::kNumber && field.name != store::kLatField && field.name != store::kLonField;
  }
  auto wanted = [&](uint32_t sensor) {
    return options.sensors.empty() || std::find(options.sensors.begin(), options.sensors.end(), sensor) != options.sensors.end();
  };
  std::vector<uint64_t> rank(snap->segments.size());
  for (size_t i = 0; i < snap->segments.size(); ++i) rank[i] = snap->segments[i]->info().id;
  std::map<uint32_t, std::vector<Source>> by_sensor;
  for (size_t i = 0; i < snap->segments.size(); ++i) {
    auto blocks = snap->segments[i]->blocks();
    for (size_t j = 0; j < blocks.size(); ++j) {
      const store::BlockMeta& b = blocks[j];
      if (b.max_ts < from || b.min_ts >= to || !wanted(b.sensor_id)) continue;
      by_sensor[b.sensor_id].push_back({store::HourOf(b.min_ts), rank[i], static_cast<uint32_t>(i), static_cast<uint32_t>(j)});
    }
  }
  for (size_t k = 0; k < snap->memtable.size(); ++k) {
    const store::RowBuffer& rows = snap->memtable[k];
    if (rows.size() == 0) continue;
    by_sensor[rows.sensor_id()].push_back(
        {store::HourOf(rows.ts()[0]), std::numeric_limits<uint64_t>::max(), std::numeric_limits<uint32_t>::max(),
         static_cast<uint32_t>(k)});
  }

  RecomputeProgress progress{.sensors = by_sensor.size()};
  Chunk chunk(resolutions, snap->fields.size());
  std::vector<BatchRollup> out;
  std::vector<Decoded> decoded;
  std::string bytes;
  struct Row {
    int64_t ts;
    uint32_t source;
    uint32_t row;
  };
  std::vector<Row> order;
  Status failed;  // a chunk's hand-over that failed
  for (auto& [sensor, sources] : by_sensor) {
    std::sort(sources.begin(), sources.end(), [](const Source& a, const Source& b) {
      return std::tie(a.hour, a.rank, a.index) < std::tie(b.hour, b.rank, b.index);
    });
    int64_t chunk_start = std::numeric_limits<int64_t>::min();
    auto finish_chunk = [&]() -> Status {
      if (chunk_start == std::numeric_limits<int64_t>::min()) return Status::OK();
      out.clear();
      chunk.Finish(sensor, snap->fields, &out);
      if (out.empty()) return Status::OK();
      progress.rollups += out.size();
      return emit(out);
    };
    for (size_t at = 0; at < sources.size();) {
      // The sources of one hour: several when that hour was flushed more than once and not merged yet.
      size_t end = at;
      while (end < sources.size() && sources[end].hour == sources[at].hour) ++end;
      if (decoded.size() < end - at) decoded.resize(end - at);
      // A reading into the sensor's chunk of windows. The chunk's start is computed (a 64-bit
      // remainder) only when the reading leaves the current chunk, not for every reading. False
      // when handing a finished chunk on failed (its status in `failed`).
      auto visit = [&](int64_t ts, const Decoded& d, uint32_t i) {
        if (ts < from || ts >= to) return true;
        if (chunk_start == std::numeric_limits<int64_t>::min() || ts < chunk_start || ts - chunk_start >= longest) {
          int64_t c = WindowStart(ts, longest);
          if (c != chunk_start) {
            failed = finish_chunk();
            if (!failed.ok()) return false;
            chunk_start = c;
          }
        }
        ++progress.readings;
        chunk.ForReading(ts, [&](Aggregate* aggs) {
          for (size_t k = 0; k < d.used; ++k) {
            const store::ColumnValues& v = d.columns[k];
            if (!v.valid.empty() && !v.valid[i]) continue;
            aggs[d.fields[k]].Add(ts, v.numbers[i]);
          }
        });
        return true;
      };
      for (size_t s = at; s < end; ++s) {
        const Source& src = sources[s];
        Decoded& d = decoded[s - at];
        if (src.segment == std::numeric_limits<uint32_t>::max()) {
          DecodeBuffer(snap->memtable[src.index], rolled, &d);
        } else {
          Status st = DecodeBlock(*snap->segments[src.segment], src.index, rolled, &bytes, &d);
          if (!st.ok()) return Status::Corruption(fmt::format("batch: sensor {}: {}", sensor, st.ToString()));
        }
      }
      if (end - at == 1) {
        // One source for the hour, the common case: its rows are already in time order.
        const Decoded& d = decoded[0];
        for (uint32_t i = 0; i < d.ts.size(); ++i) {
          if (!visit(d.ts[i], d, i)) return failed;
        }
      } else {
        // Each source is in time order, equal times in arrival order, and the sources are in
        // flush order: a stable sort by time keeps arrival order among equal times.
        order.clear();
        for (size_t s = at; s < end; ++s) {
          const Decoded& d = decoded[s - at];
          for (uint32_t i = 0; i < d.ts.size(); ++i) order.push_back({d.ts[i], static_cast<uint32_t>(s - at), i});
        }
        std::stable_sort(order.begin(), order.end(), [](const Row& a, const Row& b) { return a.ts < b.ts; });
        for (const Row& row : order) {
          if (!visit(row.ts, decoded[row.source], row.row)) return failed;
        }
      }
      at = end;
    }
    MARE_RETURN_IF_ERROR(finish_chunk());
    ++progress.sensors_done;
    if (options.progress) options.progress(progress);
  }
  summary.sensors = by_sensor.size();
  summary.readings = progress.readings;
  summary.rollups = progress.rollups;
  return summary;
}

}  // namespace mare::batch
