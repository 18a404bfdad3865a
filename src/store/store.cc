#include "store/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <bit>
#include <charconv>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/time.h"
#include "log/file.h"

namespace mare::store {
namespace {

static_assert(std::endian::native == std::endian::little, "the store's files are little-endian");

constexpr const char* kPositionFile = "position";

std::string FormatPosition(const std::vector<int64_t>& offsets) {
  std::string out = "# mare store: raw topic next offset per partition (docs/formats/store.md)\n";
  for (size_t p = 0; p < offsets.size(); ++p) out += fmt::format("{} = {}\n", p, offsets[p]);
  return out;
}

Result<std::vector<int64_t>> ParsePosition(const std::string& text, const std::string& path) {
  std::vector<int64_t> offsets;
  size_t line_start = 0;
  int line_no = 0;
  while (line_start < text.size()) {
    size_t end = text.find('\n', line_start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + line_start, end - line_start);
    line_start = end + 1;
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find(" = ");
    int64_t p = -1, o = 0;
    if (eq == std::string_view::npos ||
        std::from_chars(line.data(), line.data() + eq, p).ec != std::errc() ||
        std::from_chars(line.data() + eq + 3, line.data() + line.size(), o).ec != std::errc() || p < 0 || p > 65535) {
      return Status::Corruption(fmt::format("{}:{}: expected \"partition = offset\"", path, line_no));
    }
    if (offsets.size() <= static_cast<size_t>(p)) offsets.resize(static_cast<size_t>(p) + 1, -1);
    offsets[static_cast<size_t>(p)] = o;
  }
  return offsets;
}

void MaxInto(std::vector<int64_t>* into, const std::vector<int64_t>& from) {
  if (into->size() < from.size()) into->resize(from.size(), -1);
  for (size_t i = 0; i < from.size(); ++i) (*into)[i] = std::max((*into)[i], from[i]);
}

int Tier(int64_t rows) {
  int tier = 0;
  while (rows >= 4096) {
    rows /= 4;
    ++tier;
  }
  return tier;
}

}  // namespace

Store::Store(const StoreOptions& options, metrics::Registry* registry) : options_(options) {
  rows_added_ = &registry->GetCounter("mare_store_rows_added_total", "Readings added to the store's memtable");
  flushes_ = &registry->GetCounter("mare_store_flushes_total", "Memtable flushes");
  compactions_ = &registry->GetCounter("mare_store_compactions_total", "Segment merges");
  bytes_written_ = &registry->GetCounter("mare_store_bytes_written_total", "Bytes of segments written (flushes and merges)");
  retention_dropped_ = &registry->GetCounter("mare_store_retention_dropped_total", "Readings dropped by the store's retention");
  flush_seconds_ = &registry->GetHistogram("mare_store_flush_seconds", "Time to write a memtable out", {},
                                           {0.001, 0.01, 0.05, 0.1, 0.5, 1, 5});
  lat_field_ = schema_.Intern(kLatField, FieldType::kNumber);
  lon_field_ = schema_.Intern(kLonField, FieldType::kNumber);
}

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options, metrics::Registry* registry) {
  if (options.dir.empty()) return Status::InvalidArgument("store: no directory given");
  std::unique_ptr<Store> store(new Store(options, registry));
  if (!options.read_only) {
    MARE_RETURN_IF_ERROR(log::file::CreateDirs(options.dir));
    std::string lock = options.dir + "/LOCK";
    store->lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (store->lock_fd_ < 0) return Status::FromErrno("open " + lock, errno);
    if (::flock(store->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      return Status::Unavailable("store " + options.dir + " is in use by another process (a running `mare run`, or an import)");
    }
  }
  MARE_RETURN_IF_ERROR(store->Recover());
  if (options.compaction_thread && !options.read_only) store->compaction_thread_ = std::thread([s = store.get()] { s->CompactionLoop(); });
  return store;
}

Store::~Store() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (compaction_thread_.joinable()) compaction_thread_.join();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Status Store::Recover() {
  if (!options_.read_only) MARE_RETURN_IF_ERROR(log::file::CreateDirs(options_.dir));
  auto names = log::file::ListDir(options_.dir);
  if (!names) return names.status();
  std::vector<std::shared_ptr<const Segment>> found;
  for (const auto& name : *names) {
    std::string path = options_.dir + "/" + name;
    if (name.ends_with(".tmp")) {
      if (!options_.read_only) ::unlink(path.c_str());  // a write that never finished
      continue;
    }
    if (!name.ends_with(".seg")) continue;
    auto seg = Segment::Open(path, &schema_);
    if (!seg) return seg.status();
    found.push_back(*seg);
  }
  std::vector<uint64_t> superseded;
  for (const auto& s : found) {
    superseded.insert(superseded.end(), s->info().supersedes.begin(), s->info().supersedes.end());
    next_segment_id_ = std::max<uint64_t>(next_segment_id_, s->info().id + 1);
  }
  std::sort(superseded.begin(), superseded.end());
  bool removed = false;
  for (const auto& s : found) {
    if (std::binary_search(superseded.begin(), superseded.end(), s->info().id)) {
      // A merge finished (its output is here) but the crash came before its inputs were gone.
      if (!options_.read_only) {
        ::unlink(s->path().c_str());
        removed = true;
      }
      continue;
    }
    segments_[s->info().hour].push_back(s);
    MaxInto(&raw_offsets_, s->info().raw_offsets);
  }
  if (removed) MARE_RETURN_IF_ERROR(log::file::SyncDir(options_.dir));
  auto position = log::file::ReadAll(options_.dir + "/" + kPositionFile);
  if (position) {
    auto offsets = ParsePosition(*position, options_.dir + "/" + kPositionFile);
    if (!offsets) return offsets.status();
    MaxInto(&raw_offsets_, *offsets);
  } else if (!position.status().IsNotFound()) {
    return position.status();
  }
  Install({}, {});
  return Status::OK();
}

void Store::Write(const std::function<void(Batch&)>& f) {
  std::unique_lock lock(mu_);
  Batch batch(this);
  f(batch);
  rows_added_->Add(batch.added_);
}

void Store::Batch::Add(const Reading& reading) {
  store_->AddLocked(reading);
  ++added_;
}

void Store::AddLocked(const Reading& r) {
  int64_t hour = HourOf(r.timestamp_us);
  RowBuffer& rows = memtable_.try_emplace(BufferKey{r.sensor_id, hour}, r.sensor_id).first->second;
  rows.AddRow(r.timestamp_us);
  if (r.has_location) {
    rows.SetNumber(lat_field_, r.lat);
    rows.SetNumber(lon_field_, r.lon);
  }
  for (const auto& f : r.numbers) rows.SetNumber(FieldId(f.name, FieldType::kNumber), f.value);
  for (const auto& f : r.texts) rows.SetText(FieldId(f.name, FieldType::kText), f.value);
  if (memtable_rows_.fetch_add(1) == 0) memtable_since_us_ = MonotonicMicros();
}

uint32_t Store::FieldId(std::string_view name, FieldType type) {
  // Parsers hand out names from the same storage reading after reading: try the entry last seen
  // at this pointer first. Its bytes must still be compared: a reused buffer can hold another
  // name of the same length there ("humidity" where "pressure" was).
  for (const auto& f : field_cache_) {
    if (f.last_data == name.data() && f.type == type && f.name == name) return f.id;
  }
  for (auto& f : field_cache_) {
    if (f.type == type && f.name == name) {
      f.last_data = name.data();
      return f.id;
    }
  }
  uint32_t id = schema_.Intern(name, type);
  if (field_cache_.size() < 256) field_cache_.push_back(CachedField{std::string(name), type, id, name.data()});
  return id;
}

int64_t Store::memtable_age_us() const {
  if (memtable_rows_.load() == 0) return 0;
  return MonotonicMicros() - memtable_since_us_.load();
}

std::vector<int64_t> Store::raw_offsets() const {
  std::shared_lock lock(mu_);
  return raw_offsets_;
}

Status Store::WriteBuffers(std::vector<RowBuffer*>& buffers, int64_t hour, std::vector<uint64_t> supersedes,
                           std::vector<int64_t> raw_offsets, std::shared_ptr<const Segment>* out) {
  std::sort(buffers.begin(), buffers.end(), [](const RowBuffer* a, const RowBuffer* b) { return a->sensor_id() < b->sensor_id(); });
  std::vector<EncodedBlock> blocks;
  for (RowBuffer* rows : buffers) {
    for (size_t begin = 0; begin < rows->size(); begin += kMaxBlockRows) {
      blocks.push_back(EncodeBlock(*rows, begin, std::min(rows->size(), begin + kMaxBlockRows)));
    }
  }
  SegmentInfo info;
  info.id = next_segment_id_.fetch_add(1);
  info.hour = hour;
  info.supersedes = std::move(supersedes);
  info.raw_offsets = std::move(raw_offsets);
  uint64_t bytes = 0;
  MARE_RETURN_IF_ERROR(WriteSegment(options_.dir, info, schema_, &blocks, &bytes));
  bytes_written_->Add(bytes);
  auto seg = Segment::Open(options_.dir + "/" + SegmentFileName(info.id), &schema_);
  if (!seg) return seg.status();
  *out = *seg;
  return Status::OK();
}

Status Store::Flush(const std::vector<int64_t>& raw_offsets, int64_t before_hour) {
  int64_t start = MonotonicMicros();
  // The writer is the only thread that changes the memtable, so it may read it unlocked here;
  // sorting changes it, so that happens under the lock.
  std::map<int64_t, std::vector<RowBuffer*>> by_hour;
  {
    std::unique_lock lock(mu_);
    for (auto& [key, rows] : memtable_) {
      if (key.hour >= before_hour) continue;
      rows.SortByTime();
      by_hour[key.hour].push_back(&rows);
    }
  }
  std::vector<std::shared_ptr<const Segment>> written;
  for (auto& [hour, buffers] : by_hour) {
    std::shared_ptr<const Segment> seg;
    Status s = WriteBuffers(buffers, hour, {}, raw_offsets, &seg);
    if (!s.ok()) {
      // Segments already written are complete and name the same position: keep them, since
      // the memtable still holds their rows they would be counted twice. Remove them instead.
      for (const auto& w : written) ::unlink(w->path().c_str());
      return s;
    }
    written.push_back(seg);
  }
  std::vector<int64_t> position;
  {
    std::shared_lock lock(mu_);
    position = raw_offsets_;
  }
  MaxInto(&position, raw_offsets);
  MARE_RETURN_IF_ERROR(log::file::WriteAtomically(options_.dir + "/" + kPositionFile, FormatPosition(position)));
  {
    std::unique_lock lock(mu_);
    for (auto it = memtable_.begin(); it != memtable_.end();) {
      if (it->first.hour < before_hour) {
        memtable_rows_ -= it->second.size();
        it = memtable_.erase(it);
      } else {
        ++it;
      }
    }
    raw_offsets_ = position;
    int64_t now = MonotonicMicros();
    for (const auto& w : written) last_write_us_[w->info().hour] = now;
  }
  Install(written, {});
  flushes_->Add();
  flush_seconds_->Observe(static_cast<double>(MonotonicMicros() - start) / 1e6);
  return Status::OK();
}

std::vector<Store::TakenHour> Store::TakeHoursBefore(int64_t before_hour) {
  std::map<int64_t, TakenHour> by_hour;
  std::unique_lock lock(mu_);
  for (auto it = memtable_.begin(); it != memtable_.end();) {
    if (it->first.hour < before_hour) {
      TakenHour& h = by_hour[it->first.hour];
      h.hour = it->first.hour;
      memtable_rows_ -= it->second.size();
      h.buffers.push_back(std::move(it->second));
      it = memtable_.erase(it);
    } else {
      ++it;
    }
  }
  std::vector<TakenHour> out;
  for (auto& [hour, h] : by_hour) out.push_back(std::move(h));
  return out;
}

Status Store::WriteTaken(std::vector<TakenHour>* hours) {
  std::vector<std::shared_ptr<const Segment>> written;
  for (auto& h : *hours) {
    std::vector<RowBuffer*> buffers;
    for (auto& b : h.buffers) {
      b.SortByTime();
      buffers.push_back(&b);
    }
    std::shared_ptr<const Segment> seg;
    MARE_RETURN_IF_ERROR(WriteBuffers(buffers, h.hour, {}, {}, &seg));
    written.push_back(seg);
  }
  Install(written, {});
  flushes_->Add();
  return Status::OK();
}

void Store::Install(const std::vector<std::shared_ptr<const Segment>>& added, const std::vector<uint64_t>& removed) {
  std::unique_lock lock(mu_);
  for (const auto& s : added) segments_[s->info().hour].push_back(s);
  for (auto it = segments_.begin(); it != segments_.end();) {
    auto& list = it->second;
    std::erase_if(list, [&](const auto& s) { return std::find(removed.begin(), removed.end(), s->info().id) != removed.end(); });
    it = list.empty() ? segments_.erase(it) : std::next(it);
  }
}

Status Store::MergeHour(int64_t hour, const std::vector<std::shared_ptr<const Segment>>& inputs) {
  std::map<uint32_t, RowBuffer> by_sensor;
  std::string bytes;
  std::vector<int64_t> ts;
  std::vector<ColumnValues> columns;
  std::vector<uint64_t> ids;
  std::vector<int64_t> offsets;
  for (const auto& seg : inputs) {
    ids.push_back(seg->info().id);
    MaxInto(&offsets, seg->info().raw_offsets);
    for (size_t b = 0; b < seg->blocks().size(); ++b) {
      const BlockMeta& m = seg->blocks()[b];
      MARE_RETURN_IF_ERROR(seg->ReadBlock(b, &bytes));
      MARE_RETURN_IF_ERROR(DecodeBlockTimestamps(m, bytes, &ts));
      columns.resize(m.columns.size());
      for (size_t c = 0; c < m.columns.size(); ++c) {
        MARE_RETURN_IF_ERROR(DecodeBlockColumn(m, bytes, m.columns[c].field, m.columns[c].type, &columns[c]));
      }
      RowBuffer& rows = by_sensor.try_emplace(m.sensor_id, m.sensor_id).first->second;
      for (size_t i = 0; i < ts.size(); ++i) {
        rows.AddRow(ts[i]);
        for (size_t c = 0; c < m.columns.size(); ++c) {
          const ColumnValues& v = columns[c];
          if (!v.valid.empty() && !v.valid[i]) continue;
          if (m.columns[c].type == FieldType::kNumber) {
            rows.SetNumber(m.columns[c].field, v.numbers[i]);
          } else {
            rows.SetText(m.columns[c].field, v.texts[i]);
          }
        }
      }
    }
  }
  std::vector<RowBuffer*> buffers;
  for (auto& [sensor, rows] : by_sensor) {
    rows.SortByTime();
    buffers.push_back(&rows);
  }
  std::shared_ptr<const Segment> merged;
  MARE_RETURN_IF_ERROR(WriteBuffers(buffers, hour, ids, offsets, &merged));
  Install({merged}, ids);
  // The merged segment names its inputs, so a crash from here on still leaves one live copy.
  for (const auto& seg : inputs) ::unlink(seg->path().c_str());
  MARE_RETURN_IF_ERROR(log::file::SyncDir(options_.dir));
  compactions_->Add();
  return Status::OK();
}

Status Store::Compact(bool all) {
  std::lock_guard compaction(compaction_mu_);
  std::vector<std::pair<int64_t, std::vector<std::shared_ptr<const Segment>>>> work;
  {
    std::shared_lock lock(mu_);
    int64_t now = MonotonicMicros();
    for (const auto& [hour, list] : segments_) {
      if (list.size() < 2) continue;
      auto written = last_write_us_.find(hour);
      bool quiet = written == last_write_us_.end() || now - written->second >= options_.compaction_quiet_us;
      if (all || quiet) {
        work.emplace_back(hour, list);
        continue;
      }
      std::map<int, std::vector<std::shared_ptr<const Segment>>> tiers;
      for (const auto& s : list) tiers[Tier(s->rows())].push_back(s);
      for (auto& [tier, same] : tiers) {
        if (same.size() >= std::max<size_t>(2, options_.compaction_fanin)) {
          work.emplace_back(hour, same);
          break;
        }
      }
    }
  }
  for (const auto& [hour, inputs] : work) {
    MARE_RETURN_IF_ERROR(MergeHour(hour, inputs));
    std::lock_guard lock(stop_mu_);
    if (stopping_) break;
  }
  return Status::OK();
}

void Store::CompactionLoop() {
  while (true) {
    {
      std::unique_lock lock(stop_mu_);
      stop_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
      if (stopping_) return;
    }
    Status s = Compact(false);
    if (!s.ok()) spdlog::error("store: compaction failed (will retry): {}", s.ToString());
  }
}

Result<int64_t> Store::ApplyRetention(int64_t now_us) {
  if (options_.retention_us <= 0) return int64_t{0};
  int64_t cutoff = now_us - options_.retention_us;
  std::lock_guard compaction(compaction_mu_);
  std::vector<std::shared_ptr<const Segment>> expired;
  int64_t dropped = 0;
  {
    std::unique_lock lock(mu_);
    for (const auto& [hour, list] : segments_) {
      if (hour + kHourMicros > cutoff) break;
      for (const auto& s : list) {
        expired.push_back(s);
        dropped += s->rows();
      }
    }
    for (auto it = memtable_.begin(); it != memtable_.end();) {
      if (it->first.hour + kHourMicros <= cutoff) {
        dropped += static_cast<int64_t>(it->second.size());
        memtable_rows_ -= it->second.size();
        it = memtable_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (expired.empty()) {
    retention_dropped_->Add(static_cast<uint64_t>(dropped));
    return dropped;
  }
  // The position must outlive the segments that carry it.
  MARE_RETURN_IF_ERROR(log::file::WriteAtomically(options_.dir + "/" + kPositionFile, FormatPosition(raw_offsets())));
  std::vector<uint64_t> ids;
  for (const auto& s : expired) ids.push_back(s->info().id);
  Install({}, ids);
  for (const auto& s : expired) ::unlink(s->path().c_str());
  MARE_RETURN_IF_ERROR(log::file::SyncDir(options_.dir));
  retention_dropped_->Add(static_cast<uint64_t>(dropped));
  return dropped;
}

std::shared_ptr<Snapshot> Store::GetSnapshot(const SnapshotFilter& filter) const {
  auto snap = std::make_shared<Snapshot>();
  snap->fields = schema_.Fields();
  int64_t first_hour = filter.min_ts == std::numeric_limits<int64_t>::min() ? filter.min_ts : HourOf(filter.min_ts);
  auto wanted = [&](uint32_t sensor) {
    return filter.sensors.empty() || std::find(filter.sensors.begin(), filter.sensors.end(), sensor) != filter.sensors.end();
  };
  {
    std::shared_lock lock(mu_);
    for (auto it = segments_.lower_bound(first_hour); it != segments_.end() && it->first <= filter.max_ts; ++it) {
      snap->segments.insert(snap->segments.end(), it->second.begin(), it->second.end());
    }
    for (const auto& [key, rows] : memtable_) {
      if (key.hour < first_hour || key.hour > filter.max_ts || !wanted(key.sensor)) continue;
      if (filter.latest_only && rows.size() > 0) {
        size_t newest = 0;
        for (size_t i = 1; i < rows.size(); ++i) {
          if (rows.ts()[i] >= rows.ts()[newest]) newest = i;
        }
        snap->memtable.emplace_back(rows.sensor_id());
        snap->memtable.back().AppendRows(rows, newest, newest + 1);
        continue;
      }
      snap->memtable.push_back(rows);
    }
  }
  for (auto& rows : snap->memtable) rows.SortByTime();
  return snap;
}

Store::Stats Store::GetStats() const {
  Stats stats;
  std::shared_lock lock(mu_);
  for (const auto& [hour, list] : segments_) {
    for (const auto& s : list) {
      ++stats.segments;
      stats.blocks += static_cast<int64_t>(s->blocks().size());
      stats.rows += s->rows();
      stats.bytes += static_cast<int64_t>(s->file_bytes());
    }
  }
  stats.memtable_rows = static_cast<int64_t>(memtable_rows_.load());
  return stats;
}

}  // namespace mare::store
