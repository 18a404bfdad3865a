#include "store/forecast_table.h"

#include <fcntl.h>
#include <isa-l/crc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <limits>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "log/file.h"

namespace mare::store {
namespace {

uint32_t JournalCrc(std::string_view bytes) {
  return ::crc32_gzip_refl(0, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

template <typename T>
bool ParseJournalNumber(std::string_view text, T* out, int base = 10) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out, base);
  return ec == std::errc() && end == text.data() + text.size();
}

// One journal line, "<partition> <offset> <crc32 of value, 8 hex digits> <value>\n"; false when
// it is not one (torn, or corrupt).
bool ParseJournalLine(std::string_view line, int32_t* partition, int64_t* offset, std::string_view* value) {
  size_t a = line.find(' ');
  size_t b = a == std::string_view::npos ? a : line.find(' ', a + 1);
  size_t c = b == std::string_view::npos ? b : line.find(' ', b + 1);
  if (c == std::string_view::npos || c - b != 9) return false;
  uint32_t crc = 0;
  if (!ParseJournalNumber(line.substr(0, a), partition) || *partition < 0 || !ParseJournalNumber(line.substr(a + 1, b - a - 1), offset) ||
      *offset < 0 || !ParseJournalNumber(line.substr(b + 1, 8), &crc, 16)) {
    return false;
  }
  *value = line.substr(c + 1);
  return JournalCrc(*value) == crc;
}

}  // namespace

const std::vector<Field>& ForecastTable::Fields() {
  static const std::vector<Field> kFields = {
      {"field", FieldType::kText},    {"issued_at", FieldType::kNumber}, {"value", FieldType::kNumber},
      {"lower", FieldType::kNumber},  {"upper", FieldType::kNumber},     {"model", FieldType::kText},
      {"day_ahead", FieldType::kNumber},
  };
  return kFields;
}

Result<std::unique_ptr<ForecastTable>> ForecastTable::Open(const std::string& dir, bool read_only, int64_t retention_us,
                                                          int64_t now_us) {
  std::unique_ptr<ForecastTable> table(new ForecastTable(dir + "/forecasts.journal", read_only, retention_us));
  MARE_RETURN_IF_ERROR(table->Load(now_us));
  return table;
}

ForecastTable::~ForecastTable() {
  if (fd_ >= 0) ::close(fd_);
}

Status ForecastTable::Load(int64_t now_us) {
  if (!read_only_) {
    // A rewrite that a crash interrupted before its rename: the journal it was to replace is whole.
    std::string tmp = path_ + ".tmp";
    if (::unlink(tmp.c_str()) == 0) spdlog::warn("store: {}: removed, the rewrite it was for never finished", tmp);
  }
  auto contents = log::file::ReadAll(path_);
  if (!contents.ok() && !contents.status().IsNotFound()) return contents.status();
  std::string text = contents.ok() ? std::move(*contents) : std::string();
  size_t at = 0;
  size_t records = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    int32_t partition = 0;
    int64_t offset = 0;
    std::string_view value;
    if (end == std::string::npos || !ParseJournalLine(std::string_view(text).substr(at, end - at), &partition, &offset, &value)) {
      break;
    }
    if (!value.empty()) {  // empty: a position line, which a rewrite puts first
      if (!ReadForecastRows(value, &scratch_).ok()) break;
      Upsert(scratch_, static_cast<int64_t>(end + 1 - at));
    }
    NoteOffset(partition, offset);
    ++records;
    at = end + 1;
  }
  if (at < text.size()) {
    spdlog::warn("store: {}: {} bytes after record {} are torn or corrupt; they are {} and read again from the forecasts topic",
                 path_, text.size() - at, records, read_only_ ? "ignored" : "cut off");
  }
  size_ = static_cast<int64_t>(at);
  if (retention_us_ > 0) DropPast(now_us);
  if (read_only_) return Status::OK();
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return Status::FromErrno("open " + path_, errno);
  if (::ftruncate(fd_, size_) != 0) return Status::FromErrno("truncate " + path_, errno);
  if (dead_bytes_ > 0 && 2 * dead_bytes_ >= size_) MARE_RETURN_IF_ERROR(RewriteJournal());
  return Status::OK();
}

void ForecastTable::NoteOffset(int32_t partition, int64_t offset) {
  std::unique_lock lock(mu_);
  size_t p = static_cast<size_t>(partition);
  if (p >= next_offsets_.size()) next_offsets_.resize(p + 1, 0);
  next_offsets_[p] = std::max(next_offsets_[p], offset + 1);
}

void ForecastTable::Upsert(const std::vector<ForecastRow>& rows, int64_t line_bytes) {
  std::unique_lock lock(mu_);
  if (rows.empty()) {
    dead_bytes_ += line_bytes;  // an issue of no hours: nothing for a rewrite to keep
    return;
  }
  // A record is one issue (docs/formats/forecasts.md): its line is that issue's.
  issues_[IssueKey{rows[0].sensor_id, rows[0].field, rows[0].issued_at_us}].journal_bytes += line_bytes;
  newest_issued_us_ = std::max(newest_issued_us_, rows[0].issued_at_us);
  for (const ForecastRow& r : rows) {
    Issue& issue = issues_[IssueKey{r.sensor_id, r.field, r.issued_at_us}];
    issue.model = r.model;
    issue.day_ahead = r.day_ahead;
    Hour hour{r.target_hour_us, r.value, r.lower, r.upper, r.has_value, r.has_lower, r.has_upper};
    auto it = std::lower_bound(issue.hours.begin(), issue.hours.end(), r.target_hour_us,
                               [](const Hour& h, int64_t t) { return h.target_hour_us < t; });
    if (it != issue.hours.end() && it->target_hour_us == r.target_hour_us) {
      *it = hour;  // the same key again: the later record's row replaces it
    } else {
      issue.hours.insert(it, hour);
      ++rows_;
    }
  }
}

Status ForecastTable::Apply(const std::vector<log::ConsumedRecord>& records, uint64_t* skipped) {
  if (read_only_) return Status::InvalidArgument("store: the forecast table is open read-only");
  if (fd_ < 0) {  // a rewrite renamed the journal but could not open it again
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return Status::FromErrno("open " + path_, errno);
  }
  pending_.clear();
  std::vector<std::vector<ForecastRow>> parsed;
  std::vector<int64_t> line_bytes;
  std::vector<const log::ConsumedRecord*> kept;
  for (const log::ConsumedRecord& r : records) {
    Status s = ReadForecastRows(r.value, &scratch_);
    if (!s.ok()) {
      spdlog::warn("store: skipping forecasts record p{}@{}: {}", r.partition, r.offset, s.message());
      ++*skipped;
      continue;
    }
    size_t line_start = pending_.size();
    fmt::format_to(std::back_inserter(pending_), "{} {} {:08x} ", r.partition, r.offset, JournalCrc(r.value));
    pending_.append(r.value);
    pending_.push_back('\n');
    line_bytes.push_back(static_cast<int64_t>(pending_.size() - line_start));
    parsed.push_back(scratch_);
    kept.push_back(&r);
  }
  if (!pending_.empty()) {
    // Journal first: a row a query saw is never one a restart would lose.
    Status s = log::file::WriteAt(fd_, size_, pending_.data(), pending_.size(), path_);
    if (!s.ok()) {
      // Whatever part got written is cut off again, so that the next attempt appends whole lines.
      if (::ftruncate(fd_, size_) != 0) spdlog::warn("store: truncate {}: {}", path_, std::strerror(errno));
      return s;
    }
    size_ += static_cast<int64_t>(pending_.size());
  }
  for (size_t k = 0; k < parsed.size(); ++k) {
    Upsert(parsed[k], line_bytes[k]);
    NoteOffset(kept[k]->partition, kept[k]->offset);
  }
  return Status::OK();
}

Status ForecastTable::Sync() {
  if (fd_ < 0) return Status::OK();
  if (::fdatasync(fd_) != 0) return Status::FromErrno("fdatasync " + path_, errno);
  return Status::OK();
}

size_t ForecastTable::DropPast(int64_t now_us) {
  constexpr int64_t kHourUs = 3'600'000'000;
  // Found under the shared lock (queries go on: at 10,000 series the table holds millions of
  // issues), erased under the exclusive one; only this (the writer) thread erases, so the
  // iterators stay valid in between.
  std::vector<std::map<IssueKey, Issue>::iterator> past;
  {
    std::shared_lock lock(mu_);
    if (issues_.empty()) return 0;  // (and newest_issued_us_ may be unset)
    // From the newest issue held, or the wall clock if earlier: forecasts of a replayed archive
    // keep their last weeks, and one issue dated in the future cannot take the others with it.
    const int64_t cutoff = std::min(now_us, newest_issued_us_) - retention_us_;
    for (auto it = issues_.begin(); it != issues_.end(); ++it) {
      const Issue& issue = it->second;
      int64_t last = issue.hours.empty() ? it->first.issued_at_us : issue.hours.back().target_hour_us;
      if (last <= cutoff - kHourUs) past.push_back(it);
    }
  }
  if (past.empty()) return 0;
  size_t dropped = 0;
  std::unique_lock lock(mu_);
  for (auto it : past) {
    dropped += it->second.hours.size();
    rows_ -= it->second.hours.size();
    dead_bytes_ += it->second.journal_bytes;
    issues_.erase(it);
  }
  return dropped;
}

Result<size_t> ForecastTable::ApplyRetention(int64_t now_us) {
  if (retention_us_ <= 0) return size_t{0};
  size_t dropped = DropPast(now_us);
  if (!read_only_ && dead_bytes_ > 0 && 2 * dead_bytes_ >= size_) MARE_RETURN_IF_ERROR(RewriteJournal());
  return dropped;
}

Status ForecastTable::RewriteJournal() {
  auto contents = log::file::ReadAll(path_);
  if (!contents.ok()) return contents.status();
  std::string_view text = std::string_view(*contents).substr(0, static_cast<size_t>(size_));
  std::string out;
  // The position first: the lines of a partition may all be gone, its offsets must not.
  for (size_t p = 0; p < next_offsets_.size(); ++p) {
    if (next_offsets_[p] > 0) fmt::format_to(std::back_inserter(out), "{} {} {:08x} \n", p, next_offsets_[p] - 1, JournalCrc(""));
  }
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) break;
    std::string_view line = text.substr(at, end + 1 - at);
    at = end + 1;
    int32_t partition = 0;
    int64_t offset = 0;
    std::string_view value;
    // Every line up to size_ was read or written whole by this table; one that does not parse
    // would not be here.
    if (!ParseJournalLine(line.substr(0, line.size() - 1), &partition, &offset, &value) || value.empty() ||
        !ReadForecastRows(value, &scratch_).ok() || scratch_.empty()) {
      continue;
    }
    // Only this (the writer) thread changes issues_: no lock needed to read it here.
    if (issues_.count(IssueKey{scratch_[0].sensor_id, scratch_[0].field, scratch_[0].issued_at_us}) == 0) continue;
    out.append(line);
  }
  // journal.tmp, fsync, rename over the journal, fsync of the directory: a crash leaves the old
  // journal or the new one, each whole.
  MARE_RETURN_IF_ERROR(log::file::WriteAtomically(path_, out));
  spdlog::info("store: {}: rewritten without the issues past store.forecast_retention: {} bytes, was {}", path_, out.size(), size_);
  ::close(fd_);
  size_ = static_cast<int64_t>(out.size());
  dead_bytes_ = 0;
  fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) return Status::FromErrno("open " + path_, errno);
  return Status::OK();
}

std::vector<int64_t> ForecastTable::next_offsets() const {
  std::shared_lock lock(mu_);
  return next_offsets_;
}

size_t ForecastTable::rows() const {
  std::shared_lock lock(mu_);
  return rows_;
}

std::shared_ptr<Snapshot> ForecastTable::GetSnapshot(const SnapshotFilter& filter) const {
  auto snap = std::make_shared<Snapshot>();
  snap->fields = Fields();
  std::map<std::pair<uint32_t, int64_t>, RowBuffer> buffers;  // (sensor, target hour) -> rows
  auto add = [&](const IssueKey& key, const Issue& issue) {
    for (const Hour& h : issue.hours) {
      if (h.target_hour_us < filter.min_ts || h.target_hour_us > filter.max_ts) continue;
      auto [it, added] = buffers.try_emplace({key.sensor_id, HourOf(h.target_hour_us)}, key.sensor_id);
      RowBuffer& rows = it->second;
      rows.AddRow(h.target_hour_us);
      rows.SetText(forecast_fields::kField, key.field);
      rows.SetNumber(forecast_fields::kIssuedAt, static_cast<double>(key.issued_at_us));
      if (h.has_value) rows.SetNumber(forecast_fields::kValue, h.value);
      if (h.has_lower) rows.SetNumber(forecast_fields::kLower, h.lower);
      if (h.has_upper) rows.SetNumber(forecast_fields::kUpper, h.upper);
      rows.SetText(forecast_fields::kModel, issue.model);
      rows.SetNumber(forecast_fields::kDayAhead, issue.day_ahead ? 1.0 : 0.0);
    }
  };
  {
    std::shared_lock lock(mu_);
    auto scan = [&](std::map<IssueKey, Issue>::const_iterator it, std::map<IssueKey, Issue>::const_iterator end) {
      for (; it != end; ++it) {
        // An issue's target hours follow its origin: one issued after max_ts has none to give.
        if (it->first.issued_at_us > filter.max_ts) continue;
        add(it->first, it->second);
      }
    };
    if (filter.sensors.empty()) {
      scan(issues_.begin(), issues_.end());
    } else {
      std::vector<uint32_t> sensors = filter.sensors;
      std::sort(sensors.begin(), sensors.end());
      sensors.erase(std::unique(sensors.begin(), sensors.end()), sensors.end());
      for (uint32_t sensor : sensors) {
        scan(issues_.lower_bound(IssueKey{sensor, "", std::numeric_limits<int64_t>::min()}),
             sensor == UINT32_MAX ? issues_.end() : issues_.lower_bound(IssueKey{sensor + 1, "", std::numeric_limits<int64_t>::min()}));
      }
    }
  }
  snap->memtable.reserve(buffers.size());
  for (auto& [key, rows] : buffers) {
    rows.SortByTime();  // stable: equal target hours keep the order of field, then issued_at
    snap->memtable.push_back(std::move(rows));
  }
  return snap;
}

}  // namespace mare::store
