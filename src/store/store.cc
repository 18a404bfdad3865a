#include "store/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <bit>
#include <charconv>
#include <system_error>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/free_memory.h"
#include "common/usable_cpus.h"
#include "common/time.h"
#include "log/file.h"
#include "store/store_metrics.h"

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

// HourOf, clamped at the ends of int64 (a filter's open bounds).
int64_t HourFloor(int64_t ts) {
  if (ts < std::numeric_limits<int64_t>::min() + kHourMicros) return std::numeric_limits<int64_t>::min();
  return HourOf(ts);
}

bool BeforeInStore(const std::shared_ptr<const Segment>& a, const std::shared_ptr<const Segment>& b) {
  if (a->first_hour() != b->first_hour()) return a->first_hour() < b->first_hour();
  return a->info().id < b->info().id;
}

int Tier(int64_t rows) {
  int tier = 0;
  while (rows >= 4096) {
    rows /= 4;
    ++tier;
  }
  return tier;
}

// Appends the rows of the block of seg that m names (an entry of its index) to rows.
Status AppendBlockRows(const Segment& seg, const BlockMeta& m, RowBuffer* rows) {
  std::string bytes;
  std::vector<int64_t> ts;
  MARE_RETURN_IF_ERROR(seg.ReadBlock(m, &bytes));
  MARE_RETURN_IF_ERROR(DecodeBlockTimestamps(m, bytes, &ts));
  std::vector<ColumnValues> columns(m.columns.size());
  for (size_t c = 0; c < m.columns.size(); ++c) {
    MARE_RETURN_IF_ERROR(DecodeBlockColumn(m, bytes, m.columns[c].field, m.columns[c].type, &columns[c]));
  }
  for (size_t r = 0; r < ts.size(); ++r) {
    rows->AddRow(ts[r]);
    for (size_t c = 0; c < m.columns.size(); ++c) {
      const ColumnValues& v = columns[c];
      if (!v.valid.empty() && !v.valid[r]) continue;
      if (m.columns[c].type == FieldType::kNumber) {
        rows->SetNumber(m.columns[c].field, v.numbers[r]);
      } else {
        rows->SetText(m.columns[c].field, v.texts[r]);
      }
    }
  }
  return Status::OK();
}

// Appends the rows of block i of seg (pinned) to rows.
Status AppendBlockRows(const Segment& seg, size_t i, RowBuffer* rows) { return AppendBlockRows(seg, seg.blocks()[i], rows); }

}  // namespace

Store::Store(const StoreOptions& options, metrics::Registry* registry)
    : options_(options), index_cache_(std::make_shared<IndexCache>(options.index_cache_bytes, registry)) {
  rows_added_ = &registry->GetCounter(store_metrics::kRowsAdded);
  flushes_ = &registry->GetCounter(store_metrics::kFlushes);
  compactions_ = &registry->GetCounter(store_metrics::kCompactions);
  bytes_written_ = &registry->GetCounter(store_metrics::kBytesWritten);
  retention_dropped_ = &registry->GetCounter(store_metrics::kRowsExpired);
  replaced_ = &registry->GetCounter(store_metrics::kReadingsReplaced);
  blocks_reopened_ = &registry->GetCounter(store_metrics::kBlocksReopened);
  flush_seconds_ = &registry->GetHistogram(store_metrics::kFlushSeconds, {},
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
  auto forecasts = ForecastTable::Open(options.dir, options.read_only, options.forecast_retention_us, NowMicros());
  if (!forecasts.ok()) return forecasts.status();
  store->forecasts_ = std::move(*forecasts);
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
    auto seg = Segment::Open(path, &schema_, index_cache_);
    if (!seg) return seg.status();
    // Now, while its index is loaded: one index at a time in memory, however many segments.
    // (A superseded one counts too; below, in that rare case, the live ones are read again.)
    NoteBlocks(**seg);
    found.push_back((*seg)->Unpinned());
  }
  std::vector<uint64_t> superseded;
  for (const auto& s : found) {
    superseded.insert(superseded.end(), s->info().supersedes.begin(), s->info().supersedes.end());
    next_segment_id_ = std::max<uint64_t>(next_segment_id_, s->info().id + 1);
  }
  std::sort(superseded.begin(), superseded.end());
  bool removed = false, skipped = false;
  for (const auto& s : found) {
    if (std::binary_search(superseded.begin(), superseded.end(), s->info().id)) {
      // A merge finished (its output is here) but the crash came before its inputs were gone.
      skipped = true;
      if (!options_.read_only) {
        ::unlink(s->path().c_str());
        removed = true;
      }
      continue;
    }
    segments_.push_back(s);
    MaxInto(&raw_offsets_, s->info().raw_offsets);
  }
  if (removed) MARE_RETURN_IF_ERROR(log::file::SyncDir(options_.dir));
  if (skipped) {
    // disk_max_ts_ must be exact: a LATEST ON without WHERE reads only the hours from the
    // oldest of the sensors' newest times (GetSnapshot).
    disk_max_ts_.clear();
    for (const auto& s : segments_) {
      auto pinned = s->Pin();
      if (!pinned.ok()) return pinned.status();
      NoteBlocks(**pinned);
    }
  }
  std::vector<uint64_t> live;
  for (const auto& s : segments_) live.push_back(s->info().id);
  std::sort(live.begin(), live.end());
  for (const auto& s : segments_) {
    // A hide naming a segment that is gone was applied when that segment was merged.
    for (const BlockRef& h : s->info().hides) {
      if (std::binary_search(live.begin(), live.end(), h.segment)) hidden_[h.segment].push_back(h.block);
    }
  }
  for (auto& [id, blocks] : hidden_) {
    std::sort(blocks.begin(), blocks.end());
    blocks.erase(std::unique(blocks.begin(), blocks.end()), blocks.end());
  }
  // The figures of the sensors of hidden blocks, for the sensor list: their segments' indexes
  // are read again (only those: blocks stay hidden until a merge of their segment).
  for (const auto& s : segments_) {
    auto h = hidden_.find(s->info().id);
    if (h == hidden_.end()) continue;
    auto pinned = s->Pin();
    if (!pinned.ok()) return pinned.status();
    std::vector<uint32_t> sensors;
    for (uint32_t b : h->second) {
      if (b < (*pinned)->file_index(0) || b >= (*pinned)->file_index(0) + (*pinned)->block_count()) continue;
      sensors.push_back((*pinned)->blocks()[b - (*pinned)->file_index(0)].sensor_id);
    }
    NoteHiddenSensors(**pinned, std::move(sensors));
  }
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
  if (!hidden_in_batch_.empty()) NoteHiddenOfBatch();  // before a reader can see the hides
  rows_added_->Add(batch.added_);
}

void Store::Batch::Add(const Reading& reading) {
  store_->AddLocked(reading);
  ++added_;
}

void Store::Batch::AddRows(RowBuffer&& rows, size_t replaced_inside) {
  added_ += rows.size() + replaced_inside;
  store_->AddRowsLocked(std::move(rows), replaced_inside);
}

Store::MemBuffer* Store::BufferFor(uint32_t sensor, int64_t ts, BufferKey* key) {
  Recent* recent = nullptr;
  if (sensor < kRecentSensors) {
    if (sensor >= recent_.size()) recent_.resize(sensor + 1);
    recent = &recent_[sensor];
  }
  key->sensor = sensor;
  if (recent != nullptr && recent->buffer != nullptr && ts >= recent->hour &&
      static_cast<uint64_t>(ts) - static_cast<uint64_t>(recent->hour) < static_cast<uint64_t>(kHourMicros)) {
    key->hour = recent->hour;
    return recent->buffer;
  }
  key->hour = HourOf(ts);
  auto [entry, created] = memtable_.try_emplace(*key, sensor);
  MemBuffer* found = &entry->second;
  if (created) {
    auto d = disk_max_ts_.find(sensor);
    if (d != disk_max_ts_.end()) found->disk_max_ts = d->second;
  }
  if (recent != nullptr) *recent = {key->hour, found};
  return found;
}

void Store::StartRow(const BufferKey& key, int64_t ts, MemBuffer* buffer) {
  RowBuffer& rows = buffer->rows;
  std::optional<size_t> row = rows.Find(ts);
  if (!row && ts <= buffer->disk_max_ts && PullBlockWith(key, ts, buffer)) row = rows.Find(ts);
  if (row) {
    // One reading per sensor and time: the later replaces the earlier, whole.
    rows.ReplaceRow(*row);
    replaced_->Add();
  } else {
    rows.AddRow(ts);
    // Every change of the count is made under the exclusive lock, held here (others only read
    // it): a plain store, not a locked read-modify-write, whose fence made each reading wait
    // for its rows' stores to reach memory (most of the writer's time in a bulk load).
    size_t before = memtable_rows_.load(std::memory_order_relaxed);
    memtable_rows_.store(before + 1, std::memory_order_relaxed);
    if (before == 0) memtable_since_us_ = MonotonicMicros();
  }
}

void Store::AddLocked(const Reading& r) {
  BufferKey key{};
  MemBuffer* buffer = BufferFor(r.sensor_id, r.timestamp_us, &key);
  StartRow(key, r.timestamp_us, buffer);
  RowBuffer& rows = buffer->rows;
  if (r.has_location) {
    rows.SetNumber(lat_field_, r.lat);
    rows.SetNumber(lon_field_, r.lon);
  }
  for (const auto& f : r.numbers) rows.SetNumber(FieldId(f.name, FieldType::kNumber), f.value);
  for (const auto& f : r.texts) rows.SetText(FieldId(f.name, FieldType::kText), f.value);
}

void Store::AddRowsLocked(RowBuffer&& in, size_t replaced_inside) {
  if (replaced_inside > 0) replaced_->Add(replaced_inside);
  const size_t n = in.size();
  if (n == 0) return;
  const std::vector<int64_t>& ts = in.ts();
  const uint32_t sensor = in.sensor_id();
  BufferKey key{};
  MemBuffer* buffer = BufferFor(sensor, ts.front(), &key);
  RowBuffer& rows = buffer->rows;
  // The common case of an archive in time order: none of these rows can be a second copy of
  // one held (in the memtable: all are newer than its newest; on disk: than the sensor's newest
  // there), so they are appended whole, the buffer itself taken when the memtable has none.
  const bool one_hour = ts.back() >= key.hour && ts.back() - key.hour < kHourMicros;
  if (one_hour && ts.front() > buffer->disk_max_ts && (rows.size() == 0 || ts.front() > rows.ts()[rows.newest()]) &&
      in.StrictlyIncreasing()) {
    size_t before = memtable_rows_.load(std::memory_order_relaxed);
    memtable_rows_.store(before + n, std::memory_order_relaxed);
    if (before == 0) memtable_since_us_ = MonotonicMicros();
    if (rows.size() == 0) {
      rows = std::move(in);
    } else {
      // An hour arriving in pieces (a bulk load's ranges of lines): room for the rows it will
      // likely hold, those so far over the share of the hour they span, rather than the
      // vectors' doubling, which left a third of an import's memtable allocated, faulted in and
      // unused (3,600 rows of an hour in a buffer of 5,258). Never more than doubling would.
      const size_t total = rows.size() + n;
      if (const size_t room = rows.ts().capacity(); room < total) {
        const double span = static_cast<double>(ts.back() - key.hour + 1) / static_cast<double>(kHourMicros);  // (0, 1]
        const size_t likely = static_cast<size_t>(static_cast<double>(total) / span * 1.02) + 1;
        rows.Reserve(std::clamp(likely, total, std::max(total, 2 * room)));
      }
      rows.AppendNewer(std::move(in));
    }
    return;
  }
  // Otherwise as Add would, reading after reading in the buffer's order.
  const auto& columns = in.columns();
  for (size_t i = 0; i < n; ++i) {
    buffer = BufferFor(sensor, ts[i], &key);
    StartRow(key, ts[i], buffer);
    for (uint32_t f = 0; f < columns.size(); ++f) {
      const RowBuffer::Column& c = columns[f];
      if (!c.used || !c.present[i]) continue;
      if (c.type == FieldType::kNumber) {
        buffer->rows.SetNumber(f, c.numbers[i]);
      } else {
        buffer->rows.SetText(f, c.texts[i]);
      }
    }
  }
}

bool Store::Hidden(uint64_t segment, size_t file_index) const {
  auto h = hidden_.find(segment);
  return h != hidden_.end() && std::binary_search(h->second.begin(), h->second.end(), static_cast<uint32_t>(file_index));
}

bool Store::PullBlockWith(const BufferKey& key, int64_t ts, MemBuffer* buffer) {
  for (const auto& resident : segments_) {
    if (resident->first_hour() > key.hour) break;  // segments_ is ordered by first hour
    if (resident->last_hour() < key.hour) continue;
    auto pinned = resident->Pin();
    if (!pinned.ok()) {
      spdlog::error("store: could not look for sensor {} at {} on disk to replace that reading: {}", key.sensor,
                    FormatTimestamp(ts), pinned.status().ToString());
      return false;
    }
    const std::shared_ptr<const Segment>& seg = *pinned;
    auto blocks = seg->blocks();
    // Blocks are in (hour, sensor, min_ts) order: the sensor's blocks of the hour are one run.
    auto first = std::lower_bound(blocks.begin(), blocks.end(), key, [](const BlockMeta& m, const BufferKey& k) {
      int64_t h = HourOf(m.min_ts);
      return h != k.hour ? h < k.hour : m.sensor_id < k.sensor;
    });
    for (auto it = first; it != blocks.end() && HourOf(it->min_ts) == key.hour && it->sensor_id == key.sensor; ++it) {
      if (ts < it->min_ts || ts > it->max_ts) continue;
      size_t i = static_cast<size_t>(it - blocks.begin());
      if (Hidden(seg->info().id, seg->file_index(i))) continue;
      std::string bytes;
      std::vector<int64_t> times;
      Status s = seg->ReadBlock(i, &bytes);
      if (s.ok()) s = DecodeBlockTimestamps(*it, bytes, &times);
      if (s.ok() && !std::binary_search(times.begin(), times.end(), ts)) continue;
      size_t before = buffer->rows.size();
      if (s.ok()) s = AppendBlockRows(*seg, i, &buffer->rows);
      if (!s.ok()) {
        // Keeping the reading matters more than keeping it once: it is stored beside the old copy.
        spdlog::error("store: could not read the block that holds sensor {} at {} to replace that reading: {}", key.sensor,
                      FormatTimestamp(ts), s.ToString());
        return false;
      }
      // Rows back in memory age like new ones: the feeder flushes them on its interval.
      if (memtable_rows_.fetch_add(buffer->rows.size() - before) == 0) memtable_since_us_ = MonotonicMicros();
      auto& hidden = hidden_[seg->info().id];
      hidden.insert(std::upper_bound(hidden.begin(), hidden.end(), static_cast<uint32_t>(seg->file_index(i))),
                    static_cast<uint32_t>(seg->file_index(i)));
      buffer->hides.push_back(BlockRef{seg->info().id, static_cast<uint32_t>(seg->file_index(i))});
      HiddenInBatch& noted = hidden_in_batch_[seg->info().id];
      noted.view = seg;
      noted.sensors.push_back(key.sensor);
      blocks_reopened_->Add();
      return true;  // live segments hold a reading once: no other block has it
    }
  }
  return false;
}

void Store::NoteBlocks(const Segment& segment) {
  // From the sensor summary when there is one (a segment written and opened unpinned has no
  // blocks() to walk): a sensor's last_ts there is the greatest max_ts of its blocks.
  if (const SensorSummary* sensors = segment.sensors(); sensors != nullptr) {
    for (size_t i = 0; i < sensors->size(); ++i) {
      const SensorStats& e = sensors->entry(i);
      if (e.rows == 0) continue;
      auto [it, added] = disk_max_ts_.try_emplace(e.sensor_id, e.last_ts);
      if (!added) it->second = std::max(it->second, e.last_ts);
    }
    return;
  }
  for (const BlockMeta& m : segment.blocks()) {
    auto [it, added] = disk_max_ts_.try_emplace(m.sensor_id, m.max_ts);
    if (!added) it->second = std::max(it->second, m.max_ts);
  }
}

void Store::NoteHiddenSensors(const Segment& view, std::vector<uint32_t> sensors) {
  std::sort(sensors.begin(), sensors.end());
  sensors.erase(std::unique(sensors.begin(), sensors.end()), sensors.end());
  auto h = hidden_.find(view.info().id);
  std::vector<SensorFigures> figures = SummarizeSensors(view.blocks(), view.block_count() > 0 ? view.file_index(0) : 0, sensors,
                                                        h == hidden_.end() ? nullptr : &h->second, lat_field_, lon_field_);
  // Merged into the segment's list, both by sensor id: the new figures replace the old.
  auto& list = hidden_sensors_[view.info().id];
  std::vector<SensorFigures> merged;
  merged.reserve(list.size() + figures.size());
  auto a = list.begin();
  for (auto& f : figures) {
    for (; a != list.end() && a->stats.sensor_id < f.stats.sensor_id; ++a) merged.push_back(std::move(*a));
    if (a != list.end() && a->stats.sensor_id == f.stats.sensor_id) ++a;
    merged.push_back(std::move(f));
  }
  for (; a != list.end(); ++a) merged.push_back(std::move(*a));
  list = std::move(merged);
}

void Store::NoteHiddenOfBatch() {
  for (auto& [id, noted] : hidden_in_batch_) NoteHiddenSensors(*noted.view, std::move(noted.sensors));
  hidden_in_batch_.clear();
}

void Store::AppendVisible(const std::shared_ptr<const Segment>& view, const std::vector<uint32_t>* hidden_blocks,
                          std::vector<std::shared_ptr<const Segment>>* out) {
  if (hidden_blocks == nullptr || view->blocks().empty()) {
    out->push_back(view);
    return;
  }
  size_t begin = view->file_index(0), end = begin + view->blocks().size();
  for (uint32_t hidden : *hidden_blocks) {
    if (hidden < begin) continue;
    if (hidden >= end) break;
    if (auto run = view->Range(begin, hidden)) out->push_back(std::move(run));
    begin = hidden + 1;
  }
  if (auto run = view->Range(begin, end)) out->push_back(std::move(run));
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

Status Store::FinishSegment(SegmentWriter* writer, uint64_t id, std::vector<uint64_t> supersedes,
                            std::vector<int64_t> raw_offsets, std::vector<BlockRef> hides, bool cache,
                            std::shared_ptr<const Segment>* out) {
  SegmentInfo info;
  info.id = id;
  info.hides = std::move(hides);
  info.supersedes = std::move(supersedes);
  info.raw_offsets = std::move(raw_offsets);
  uint64_t bytes = 0;
  MARE_RETURN_IF_ERROR(writer->Finish(std::move(info), schema_, &bytes));
  bytes_written_->Add(bytes);
  const std::string path = options_.dir + "/" + SegmentFileName(id);
  if (!cache && index_cache_) {
    // Not queried yet: opened without holding its whole index (a day's merge output's is ~130
    // MB at 10,000 sensors), which its first query reads into the cache.
    auto seg = Segment::OpenUnpinned(path, &schema_, index_cache_);
    if (!seg) return seg.status();
    *out = *seg;
    return Status::OK();
  }
  auto seg = Segment::Open(path, &schema_, index_cache_, cache);
  if (!seg) return seg.status();
  *out = *seg;
  return Status::OK();
}

Status Store::WriteBuffers(std::vector<RowBuffer*> buffers, std::vector<uint64_t> supersedes, std::vector<int64_t> raw_offsets,
                           std::vector<BlockRef> hides, bool cache, std::shared_ptr<const Segment>* out) {
  std::erase_if(buffers, [](const RowBuffer* rows) { return rows->size() == 0; });
  if (buffers.empty()) return Status::InvalidArgument("store: a segment with no rows");
  std::sort(buffers.begin(), buffers.end(), [](const RowBuffer* a, const RowBuffer* b) {
    int64_t ha = HourOf(a->ts().front()), hb = HourOf(b->ts().front());
    return ha != hb ? ha < hb : a->sensor_id() < b->sensor_id();
  });
  uint64_t id = next_segment_id_.fetch_add(1);
  SegmentWriter writer(options_.dir, id);
  // The blocks are encoded on every core (encoding is most of a flush's time, and a bulk
  // import's last flush has the machine to itself), then written in their order, as one at a
  // time wrote them.
  struct Part {
    const RowBuffer* rows;
    size_t begin, end;
  };
  std::vector<Part> parts;
  for (RowBuffer* rows : buffers) {
    for (size_t begin = 0; begin < rows->size(); begin += kMaxBlockRows) {
      parts.push_back({rows, begin, std::min(rows->size(), begin + kMaxBlockRows)});
    }
  }
  std::vector<EncodedBlock> blocks(parts.size());
  std::atomic<size_t> next{0};
  auto encode = [&] {
    for (size_t i; (i = next.fetch_add(1)) < parts.size();) blocks[i] = EncodeBlock(*parts[i].rows, parts[i].begin, parts[i].end);
  };
  constexpr size_t kBlocksPerThread = 8;  // fewer blocks are not worth a thread
  const size_t helpers = std::min<size_t>(UsableCpus() - 1, parts.size() / kBlocksPerThread);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < helpers; ++t) {
    try {
      threads.emplace_back(encode);
    } catch (const std::system_error&) {
      break;  // no thread to be had (a pids limit): this one encodes what is left, as before
    }
  }
  encode();
  for (auto& t : threads) t.join();
  for (EncodedBlock& block : blocks) MARE_RETURN_IF_ERROR(writer.Add(std::move(block)));
  return FinishSegment(&writer, id, std::move(supersedes), std::move(raw_offsets), std::move(hides), cache, out);
}

Status Store::Flush(const std::vector<int64_t>& raw_offsets, int64_t before_hour) {
  int64_t start = MonotonicMicros();
  // The writer is the only thread that changes the memtable, so it may read it unlocked here;
  // sorting changes it, so that happens under the lock.
  std::vector<RowBuffer*> buffers;
  std::vector<BlockRef> hides;
  std::vector<int64_t> days;
  bool cache = false;
  {
    std::unique_lock lock(mu_);
    int64_t first_hour = std::numeric_limits<int64_t>::max();
    for (auto& [key, buffer] : memtable_) {
      if (key.hour >= before_hour || buffer.rows.size() == 0) continue;
      buffer.rows.SortByTime();
      buffers.push_back(&buffer.rows);
      hides.insert(hides.end(), buffer.hides.begin(), buffer.hides.end());
      days.push_back(DayOf(key.hour));
      first_hour = std::min(first_hour, key.hour);
    }
    // Queries reading these hours (a segment of them or of the hour before is cached) will read
    // this one too: its index goes into the cache now rather than at their next miss. Nobody
    // reading them (a steady ingest alone): it stays out, and the cache does not grow with the day.
    if (!buffers.empty()) {
      for (const auto& s : segments_) cache = cache || (s->last_hour() >= first_hour - kHourMicros && s->cached());
    }
  }
  std::sort(days.begin(), days.end());
  days.erase(std::unique(days.begin(), days.end()), days.end());
  // One segment, however many hours: it is complete or absent, so the position it records
  // never covers rows that are not on disk.
  std::shared_ptr<const Segment> written;
  if (!buffers.empty()) MARE_RETURN_IF_ERROR(WriteBuffers(std::move(buffers), {}, raw_offsets, std::move(hides), cache, &written));
  std::vector<int64_t> position;
  {
    std::shared_lock lock(mu_);
    position = raw_offsets_;
  }
  MaxInto(&position, raw_offsets);
  // The segment records the position too (the store opens at the greater of both): once it is
  // written its rows are stored, and keeping them in the memtable for a retry would store them
  // twice. So a failed position file (a full disk) fails the flush only when no segment was.
  Status position_written = log::file::WriteAtomically(options_.dir + "/" + kPositionFile, FormatPosition(position));
  if (!position_written.ok() && !written) return position_written;
  {
    std::unique_lock lock(mu_);
    for (auto it = memtable_.begin(); it != memtable_.end();) {
      if (it->first.hour < before_hour) {
        memtable_rows_ -= it->second.rows.size();
        it = memtable_.erase(it);
        recent_.clear();
      } else {
        ++it;
      }
    }
    raw_offsets_ = position;
    int64_t now = MonotonicMicros();
    std::erase_if(last_write_us_, [&](const auto& e) { return now - e.second >= options_.compaction_quiet_us; });
    for (int64_t day : days) last_write_us_[day] = now;
    // In the same critical section as the memtable's rows go: no query misses them in between.
    if (written) {
      NoteBlocks(*written);
      segments_.push_back(written->Unpinned());
      std::sort(segments_.begin(), segments_.end(), BeforeInStore);
    }
  }
  flushes_->Add();
  flush_seconds_->Observe(static_cast<double>(MonotonicMicros() - start) / 1e6);
  return position_written;
}

std::vector<Store::TakenHour> Store::TakeHoursBefore(int64_t before_hour) {
  std::map<int64_t, TakenHour> by_hour;
  std::unique_lock lock(mu_);
  for (auto it = memtable_.begin(); it != memtable_.end();) {
    if (it->first.hour < before_hour) {
      TakenHour& h = by_hour[it->first.hour];
      h.hour = it->first.hour;
      memtable_rows_ -= it->second.rows.size();
      h.buffers.push_back(std::move(it->second.rows));
      h.hides.insert(h.hides.end(), it->second.hides.begin(), it->second.hides.end());
      it = memtable_.erase(it);
      recent_.clear();
    } else {
      ++it;
    }
  }
  std::vector<TakenHour> out;
  for (auto& [hour, h] : by_hour) out.push_back(std::move(h));
  return out;
}

Status Store::WriteTaken(std::vector<TakenHour>* hours) {
  std::vector<RowBuffer*> buffers;
  std::vector<BlockRef> hides;
  for (auto& h : *hours) {
    hides.insert(hides.end(), h.hides.begin(), h.hides.end());
    for (auto& b : h.buffers) {
      if (b.size() == 0) continue;
      b.SortByTime();
      buffers.push_back(&b);
    }
  }
  if (buffers.empty()) return Status::OK();
  std::shared_ptr<const Segment> seg;
  MARE_RETURN_IF_ERROR(WriteBuffers(std::move(buffers), {}, {}, std::move(hides), /*cache=*/false, &seg));
  Install({seg}, {});
  flushes_->Add();
  return Status::OK();
}

void Store::Install(const std::vector<std::shared_ptr<const Segment>>& added, const std::vector<uint64_t>& removed) {
  std::unique_lock lock(mu_);
  InstallLocked(added, removed);
}

void Store::InstallLocked(const std::vector<std::shared_ptr<const Segment>>& added, const std::vector<uint64_t>& removed) {
  std::erase_if(segments_, [&](const auto& s) { return std::find(removed.begin(), removed.end(), s->info().id) != removed.end(); });
  for (uint64_t id : removed) {
    hidden_.erase(id);  // their hidden blocks are gone with them
    hidden_sensors_.erase(id);
  }
  for (const auto& s : added) {
    NoteBlocks(*s);  // just written (FinishSegment): pinned, or unpinned with its sensor summary
    segments_.push_back(s->Unpinned());
  }
  std::sort(segments_.begin(), segments_.end(), BeforeInStore);
}

Status Store::MergeSegments(std::vector<std::shared_ptr<const Segment>> inputs, bool* merged_out) {
  if (merged_out) *merged_out = false;
  // Inputs in the order they were written, so that readings with equal timestamps (stores
  // written before one reading per time was kept) keep their arrival order through the sort.
  std::sort(inputs.begin(), inputs.end(), [](const auto& a, const auto& b) { return a->info().id < b->info().id; });
  // An output replacing a segment that queries read (cached) is cached at once, as a flush's is;
  // otherwise it waits for its first query, like the inputs it replaces.
  const bool cache = std::any_of(inputs.begin(), inputs.end(), [](const auto& s) { return s->cached(); });
  std::vector<uint64_t> ids;
  std::vector<int64_t> offsets;
  for (const auto& seg : inputs) {
    ids.push_back(seg->info().id);
    MaxInto(&offsets, seg->info().raw_offsets);
  }
  // What is hidden now: those blocks are left out. Hides that the inputs carry for blocks of
  // other live segments pass to the output, which replaces the inputs.
  std::unordered_map<uint64_t, std::vector<uint32_t>> hidden;
  std::vector<BlockRef> carried;
  {
    std::shared_lock lock(mu_);
    // A block whose replacement is still only in the memtable must stay on disk: a crash then
    // loses the memtable and its hide, and the old block is the only copy of its other rows.
    std::vector<BlockRef> durable;
    for (const auto& s : segments_) durable.insert(durable.end(), s->info().hides.begin(), s->info().hides.end());
    std::sort(durable.begin(), durable.end());
    for (uint64_t id : ids) {
      auto h = hidden_.find(id);
      if (h == hidden_.end()) continue;
      for (uint32_t block : h->second) {
        if (!std::binary_search(durable.begin(), durable.end(), BlockRef{id, block})) return Status::OK();  // after the flush
      }
      hidden[id] = h->second;
    }
    for (const auto& seg : inputs) {
      for (const BlockRef& h : seg->info().hides) {
        if (std::find(ids.begin(), ids.end(), h.segment) != ids.end()) continue;
        bool live = std::any_of(segments_.begin(), segments_.end(), [&](const auto& s) { return s->info().id == h.segment; });
        if (live) carried.push_back(h);
      }
    }
  }
  auto is_hidden = [&](const Segment& seg, size_t file_index) {
    auto h = hidden.find(seg.info().id);
    return h != hidden.end() && std::binary_search(h->second.begin(), h->second.end(), static_cast<uint32_t>(file_index));
  };
  uint64_t id = next_segment_id_.fetch_add(1);
  SegmentWriter writer(options_.dir, id);
  // Every input lists its blocks by hour: merge one hour at a time, each input's index read
  // entry by entry (Segment::Cursor) and the output's spilled as it goes (SegmentWriter), so
  // that memory holds an hour's entries, however much of the day the inputs already hold.
  struct Input {
    std::unique_ptr<Segment::Cursor> cursor;
    BlockMeta next;           // its next entry, not yet taken
    size_t next_index = 0;    // that entry's index in its file
    bool more = false;
    std::vector<BlockMeta> hour;  // its visible entries of the hour being merged
  };
  std::vector<Input> in(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto cursor = inputs[i]->Entries();
    if (!cursor.ok()) return cursor.status();
    in[i].cursor = std::move(*cursor);
    auto more = in[i].cursor->Next(&in[i].next, &in[i].next_index);
    if (!more.ok()) return more.status();
    in[i].more = *more;
  }
  while (true) {
    int64_t hour = std::numeric_limits<int64_t>::max();
    for (const Input& x : in) {
      if (x.more) hour = std::min(hour, HourOf(x.next.min_ts));
    }
    if (hour == std::numeric_limits<int64_t>::max()) break;
    // The hour's visible blocks by sensor, as (input, entry of its hour), in the order they were written.
    std::map<uint32_t, std::vector<std::pair<size_t, size_t>>> by_sensor;
    for (size_t i = 0; i < in.size(); ++i) {
      Input& x = in[i];
      x.hour.clear();
      while (x.more && HourOf(x.next.min_ts) == hour) {
        if (!is_hidden(*inputs[i], x.next_index)) {
          by_sensor[x.next.sensor_id].emplace_back(i, x.hour.size());
          x.hour.push_back(std::move(x.next));
        }
        auto more = x.cursor->Next(&x.next, &x.next_index);
        if (!more.ok()) return more.status();
        x.more = *more;
      }
    }
    for (const auto& [sensor, blocks] : by_sensor) {
      if (blocks.size() == 1) {
        // The sensor's only block of the hour (an import's hours are whole in one flush, so
        // nearly every block): its bytes and statistics go over as they are, checked by their
        // CRC, without decoding and encoding them again.
        auto [i, k] = blocks.front();
        EncodedBlock block;
        MARE_RETURN_IF_ERROR(inputs[i]->ReadBlock(in[i].hour[k], &block.bytes));
        block.meta = std::move(in[i].hour[k]);
        MARE_RETURN_IF_ERROR(writer.Add(std::move(block)));
        continue;
      }
      RowBuffer rows(sensor);
      for (auto [i, k] : blocks) MARE_RETURN_IF_ERROR(AppendBlockRows(*inputs[i], in[i].hour[k], &rows));
      rows.SortByTime();
      for (size_t begin = 0; begin < rows.size(); begin += kMaxBlockRows) {
        MARE_RETURN_IF_ERROR(writer.Add(EncodeBlock(rows, begin, std::min(rows.size(), begin + kMaxBlockRows))));
      }
    }
  }
  in.clear();
  std::shared_ptr<const Segment> merged;
  if (writer.blocks() > 0 || !carried.empty()) {
    if (writer.blocks() == 0) return Status::OK();  // every block replaced, yet its hides still needed: keep the inputs
    MARE_RETURN_IF_ERROR(FinishSegment(&writer, id, ids, offsets, carried, cache, &merged));
  }
  {
    std::unique_lock lock(mu_);
    // The writer may have hidden an input's block meanwhile (its rows moved to the memtable):
    // the output would bring the old reading back. Give up; a later merge sees the hide.
    bool changed = false;
    for (uint64_t in : ids) {
      auto now = hidden_.find(in);
      auto then = hidden.find(in);
      changed = changed || (now == hidden_.end() ? 0 : now->second.size()) != (then == hidden.end() ? 0 : then->second.size());
    }
    if (changed) {
      lock.unlock();
      if (merged) {
        ::unlink(merged->path().c_str());
        MARE_RETURN_IF_ERROR(log::file::SyncDir(options_.dir));
      }
      return Status::OK();
    }
    InstallLocked(merged ? std::vector<std::shared_ptr<const Segment>>{merged} : std::vector<std::shared_ptr<const Segment>>{}, ids);
  }
  // The merged segment names its inputs, so a crash from here on still leaves one live copy.
  // (With no output, every input block was hidden by a segment that stays: deleting is safe.)
  for (const auto& seg : inputs) ::unlink(seg->path().c_str());
  MARE_RETURN_IF_ERROR(log::file::SyncDir(options_.dir));
  compactions_->Add();
  if (merged_out) *merged_out = true;
  return Status::OK();
}

Status Store::Compact(bool all) {
  std::lock_guard compaction(compaction_mu_);
  // all: until nothing is left to merge (a day merged may then be packed with its neighbours).
  for (bool again = true; again;) {
    std::vector<std::vector<std::shared_ptr<const Segment>>> work;
    {
      std::shared_lock lock(mu_);
      int64_t now = MonotonicMicros();
      // Quiet: no flush wrote into any day of these hours for compaction_quiet_us.
      auto quiet = [&](int64_t first_hour, int64_t last_hour) {
        if (all) return true;
        for (auto it = last_write_us_.lower_bound(DayOf(first_hour)); it != last_write_us_.end() && it->first <= last_hour; ++it) {
          if (now - it->second < options_.compaction_quiet_us) return false;
        }
        return true;
      };
      // 1. A day's segments (those within one UTC day): merged all at once when the day is quiet,
      //    else by tiers of similar size, as flushes come.
      std::map<int64_t, std::vector<std::shared_ptr<const Segment>>> days;
      for (const auto& s : segments_) {
        if (DayOf(s->first_hour()) == DayOf(s->last_hour())) days[DayOf(s->first_hour())].push_back(s);
      }
      std::vector<uint64_t> taken;
      auto take = [&](const std::vector<std::shared_ptr<const Segment>>& inputs) {
        work.push_back(inputs);
        for (const auto& s : inputs) taken.push_back(s->info().id);
      };
      for (const auto& [day, list] : days) {
        if (list.size() < 2) continue;
        if (quiet(day, day + kDayMicros - kHourMicros)) {
          // A few late readings do not rewrite a whole big day: its largest segment joins only
          // when the others hold an eighth of its rows.
          auto largest = std::max_element(list.begin(), list.end(), [](const auto& a, const auto& b) { return a->rows() < b->rows(); });
          int64_t others = 0;
          for (const auto& s : list) others += s->rows();
          others -= (*largest)->rows();
          if (others * 8 >= (*largest)->rows()) {
            take(list);
          } else if (list.size() >= 3) {
            std::vector<std::shared_ptr<const Segment>> rest = list;
            rest.erase(rest.begin() + (largest - list.begin()));
            take(rest);
          }
          continue;
        }
        std::map<int, std::vector<std::shared_ptr<const Segment>>> tiers;
        for (const auto& s : list) tiers[Tier(s->rows())].push_back(s);
        for (auto& [tier, same] : tiers) {
          if (same.size() >= std::max<size_t>(2, options_.compaction_fanin)) {
            take(same);
            break;
          }
        }
      }
      // 2. Small quiet segments, whatever days they span, in order of time: packed into segments
      //    of up to compaction_pack_rows (an archive's sparse hours, a day of a few readings).
      const int64_t pack = std::max<int64_t>(options_.compaction_pack_rows, 4);
      std::vector<std::shared_ptr<const Segment>> group;
      int64_t group_rows = 0;
      auto close_group = [&] {
        if (group.size() >= 2) take(group);
        group.clear();
        group_rows = 0;
      };
      for (const auto& s : segments_) {
        if (s->rows() >= pack / 4 || std::find(taken.begin(), taken.end(), s->info().id) != taken.end() ||
            !quiet(s->first_hour(), s->last_hour())) {
          continue;
        }
        if (group_rows + s->rows() > pack) close_group();
        group.push_back(s);
        group_rows += s->rows();
      }
      close_group();
    }
    again = false;
    for (auto& inputs : work) {
      bool merged = false;
      MARE_RETURN_IF_ERROR(MergeSegments(std::move(inputs), &merged));
      // What the merge held (its inputs' and output's indexes: up to a day's, ~1.5 KB a sensor
      // and hour) is free now; without this the RSS kept each day's highest merge.
      if (merged) ReturnFreeMemory();
      again = again || (all && merged);
      std::lock_guard lock(stop_mu_);
      if (stopping_) return Status::OK();
    }
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
  // Hour h is past when h + 1h <= cutoff, that is when h < HourOf(cutoff).
  int64_t floor = HourOf(now_us - options_.retention_us);
  std::lock_guard compaction(compaction_mu_);
  std::vector<std::shared_ptr<const Segment>> expired, rewrite;
  int64_t dropped = 0;
  Status unreadable;
  {
    std::unique_lock lock(mu_);
    retention_floor_ = std::max(retention_floor_, floor);
    for (auto& s : segments_) {
      if (s->first_hour() >= floor) continue;
      auto pinned = s->Pin();
      if (!pinned.ok()) {
        // Queries do not see the past hours anyway (retention_floor_); the file stays until it can be read.
        if (unreadable.ok()) unreadable = pinned.status();
        continue;
      }
      auto rest = (*pinned)->View(floor, std::numeric_limits<int64_t>::max());
      if (rest == nullptr) {
        expired.push_back(s);
        dropped += s->rows();
        continue;
      }
      // Queries no longer see the past hours; the file keeps them until it goes or is rewritten.
      dropped += s->rows() - rest->rows();
      auto kept = rest->WithSensors();  // the view's own sensor summary, while its index is here
      if (auto o = hidden_sensors_.find(s->info().id); o != hidden_sensors_.end()) {
        std::vector<uint32_t> sensors;
        for (const auto& e : o->second) sensors.push_back(e.stats.sensor_id);
        NoteHiddenSensors(*kept, std::move(sensors));
      }
      s = kept->Unpinned();
      if (2 * (s->file_rows() - s->rows()) >= s->file_rows()) rewrite.push_back(s);
    }
    std::sort(segments_.begin(), segments_.end(), BeforeInStore);
    for (auto it = memtable_.begin(); it != memtable_.end();) {
      if (it->first.hour < floor) {
        dropped += static_cast<int64_t>(it->second.rows.size());
        memtable_rows_ -= it->second.rows.size();
        it = memtable_.erase(it);
        recent_.clear();
      } else {
        ++it;
      }
    }
  }
  if (!expired.empty()) {
    // The position must outlive the segments that carry it.
    MARE_RETURN_IF_ERROR(log::file::WriteAtomically(options_.dir + "/" + kPositionFile, FormatPosition(raw_offsets())));
    std::vector<uint64_t> ids;
    for (const auto& s : expired) ids.push_back(s->info().id);
    Install({}, ids);
    for (const auto& s : expired) ::unlink(s->path().c_str());
    MARE_RETURN_IF_ERROR(log::file::SyncDir(options_.dir));
  }
  retention_dropped_->Add(static_cast<uint64_t>(dropped));
  // A rewrite carries its input's position, and names it as superseded: crash-safe as a merge.
  for (const auto& s : rewrite) MARE_RETURN_IF_ERROR(MergeSegments({s}));
  if (!unreadable.ok()) return unreadable;
  return dropped;
}

std::shared_ptr<Snapshot> Store::GetSnapshot(const SnapshotFilter& filter) const {
  auto snap = std::make_shared<Snapshot>();
  snap->fields = schema_.Fields();
  int64_t first_hour = HourFloor(filter.min_ts);
  int64_t last_hour = HourFloor(filter.max_ts);
  auto wanted = [&](uint32_t sensor) {
    return filter.sensors.empty() || std::find(filter.sensors.begin(), filter.sensors.end(), sensor) != filter.sensors.end();
  };
  // The segments of the filter's hours and their hidden blocks as of now, taken under the lock
  // with the memtable (one consistent state); their indexes are loaded after it, so that reading
  // them from disk holds up neither the writer nor other queries. Files stay readable while held.
  std::vector<LazySegment> candidates;
  {
    std::shared_lock lock(mu_);
    first_hour = std::max(first_hour, retention_floor_);
    int64_t segments_from = first_hour;
    if (filter.latest_only) {
      // Each sensor's newest reading on disk lies at disk_max_ts_ (exact, resident): no hour
      // before the oldest of those, over the sensors asked for, holds a sensor's newest reading
      // on disk. So a LATEST ON without WHERE (the dashboard's, every second) loads the indexes
      // of the recent segments only, not of every day stored. The memtable is not narrowed.
      int64_t oldest = std::numeric_limits<int64_t>::max();
      if (filter.sensors.empty()) {
        for (const auto& [sensor, ts] : disk_max_ts_) oldest = std::min(oldest, ts);
      } else {
        for (uint32_t sensor : filter.sensors) {
          if (auto d = disk_max_ts_.find(sensor); d != disk_max_ts_.end()) oldest = std::min(oldest, d->second);
        }
      }
      if (oldest != std::numeric_limits<int64_t>::max()) segments_from = std::max(segments_from, HourOf(oldest));
    }
    for (const auto& s : segments_) {
      if (s->first_hour() > last_hour) break;  // segments_ is ordered by first hour
      if (s->last_hour() < segments_from) continue;
      LazySegment c{s, std::nullopt, {}, segments_from, last_hour};
      if (auto h = hidden_.find(s->info().id); h != hidden_.end()) c.hidden = h->second;
      if (filter.lazy) {
        if (auto o = hidden_sensors_.find(s->info().id); o != hidden_sensors_.end()) c.sensor_overrides = o->second;
      }
      candidates.push_back(std::move(c));
    }
    for (const auto& [key, buffer] : memtable_) {
      const RowBuffer& rows = buffer.rows;
      if (key.hour < first_hour || key.hour > last_hour || !wanted(key.sensor)) continue;
      if (filter.latest_only && rows.size() > 0) {
        size_t newest = rows.newest();
        snap->memtable.emplace_back(rows.sensor_id());
        snap->memtable.back().AppendRows(rows, newest, newest + 1);
        continue;
      }
      snap->memtable.push_back(rows);
    }
  }
  if (filter.lazy) {
    snap->lazy = std::move(candidates);
  } else {
    for (const auto& c : candidates) {
      snap->status = PinVisible(c, &snap->segments);
      if (!snap->status.ok()) {
        snap->segments.clear();
        break;
      }
    }
  }
  for (auto& rows : snap->memtable) rows.SortByTime();
  return snap;
}

Status Store::PinVisible(const LazySegment& c, std::vector<std::shared_ptr<const Segment>>* out) {
  auto pinned = c.segment->Pin();
  if (!pinned.ok()) return pinned.status();
  const std::shared_ptr<const Segment>& s = *pinned;
  const std::vector<uint32_t>* hidden = c.hidden ? &*c.hidden : nullptr;
  if (s->first_hour() >= c.first_hour && s->last_hour() <= c.last_hour) {
    AppendVisible(s, hidden, out);
  } else if (auto view = s->View(c.first_hour, c.last_hour)) {
    AppendVisible(view, hidden, out);
  }
  return Status::OK();
}

Store::Stats Store::GetStats() const {
  Stats stats;
  std::shared_lock lock(mu_);
  for (const auto& s : segments_) {
    ++stats.segments;
    stats.blocks += static_cast<int64_t>(s->block_count());
    stats.rows += s->rows();
    if (auto h = hidden_.find(s->info().id); h != hidden_.end()) {
      auto pinned = s->Pin();  // only a segment with hidden blocks: their rows are in its index
      for (size_t i = 0; i < s->block_count(); ++i) {
        if (Hidden(s->info().id, s->file_index(i))) {
          --stats.blocks;
          if (pinned.ok()) stats.rows -= (*pinned)->blocks()[i].rows;
        }
      }
    }
    stats.bytes += static_cast<int64_t>(s->file_bytes());
    if (s->sensors() != nullptr) stats.sensor_summary_bytes += static_cast<int64_t>(s->sensors()->MemoryBytes());
  }
  for (const auto& [id, list] : hidden_sensors_) {
    for (const auto& o : list) stats.sensor_summary_bytes += static_cast<int64_t>(sizeof(o) + o.fields.capacity() * sizeof(uint32_t));
  }
  stats.memtable_rows = static_cast<int64_t>(memtable_rows_.load());
  return stats;
}

}  // namespace mare::store
