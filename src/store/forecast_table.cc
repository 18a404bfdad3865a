#include "store/forecast_table.h"

#include <fcntl.h>
#include <isa-l/crc.h>
#include <sys/stat.h>
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
  if (read_fd_ >= 0) ::close(read_fd_);
}

namespace {

// Reads a file's lines front to back in 1 MiB chunks, so that a journal of any size is read
// back, or rewritten, in bounded memory.
class LineReader {
 public:
  LineReader(int fd, int64_t size, const std::string& path) : fd_(fd), size_(size), path_(path) {}
  // The next whole line without its '\n', and where it starts; false at the end, where *torn
  // says whether bytes without a '\n' were left.
  Result<bool> Next(std::string_view* line, int64_t* at, bool* torn) {
    *torn = false;
    for (;;) {
      size_t nl = buffer_.find('\n', used_);
      if (nl != std::string::npos) {
        *line = std::string_view(buffer_).substr(used_, nl - used_);
        *at = base_ + static_cast<int64_t>(used_);
        used_ = nl + 1;
        return true;
      }
      if (base_ + static_cast<int64_t>(buffer_.size()) >= size_) {
        *torn = used_ < buffer_.size();
        return false;
      }
      buffer_.erase(0, used_);
      base_ += static_cast<int64_t>(used_);
      used_ = 0;
      size_t have = buffer_.size();
      size_t want = static_cast<size_t>(std::min<int64_t>(kChunk, size_ - base_ - static_cast<int64_t>(have)));
      buffer_.resize(have + want);
      size_t done = 0;
      MARE_RETURN_IF_ERROR(log::file::ReadAt(fd_, base_ + static_cast<int64_t>(have), buffer_.data() + have, want, &done, path_));
      buffer_.resize(have + done);
      if (done < want) size_ = base_ + static_cast<int64_t>(buffer_.size());  // shorter than it was
    }
  }

 private:
  static constexpr int64_t kChunk = 1 << 20;
  const int fd_;
  int64_t size_;
  const std::string& path_;
  std::string buffer_;
  size_t used_ = 0;
  int64_t base_ = 0;  // file position of buffer_[0]
};

}  // namespace

Status ForecastTable::Load(int64_t now_us) {
  if (!read_only_) {
    // A rewrite that a crash interrupted before its rename: the journal it was to replace is whole.
    std::string tmp = path_ + ".tmp";
    if (::unlink(tmp.c_str()) == 0) spdlog::warn("store: {}: removed, the rewrite it was for never finished", tmp);
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return Status::FromErrno("open " + path_, errno);
  }
  // The index points into this very file, whatever a writer beside a read-only opener renames
  // over the path later.
  read_fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (read_fd_ < 0 && errno != ENOENT) return Status::FromErrno("open " + path_, errno);
  int64_t file_size = 0;
  if (read_fd_ >= 0) {
    struct stat st;
    if (::fstat(read_fd_, &st) != 0) return Status::FromErrno("stat " + path_, errno);
    file_size = st.st_size;
  }
  LineReader reader(read_fd_, file_size, path_);
  size_t records = 0;
  int64_t at = 0;
  for (;;) {
    std::string_view line;
    int64_t line_at = 0;
    bool torn = false;
    auto more = reader.Next(&line, &line_at, &torn);
    if (!more.ok()) return more.status();
    if (!*more) break;
    int32_t partition = 0;
    int64_t offset = 0;
    std::string_view value;
    if (!ParseJournalLine(line, &partition, &offset, &value)) break;
    if (!value.empty()) {  // empty: a position line, which a rewrite puts first
      if (!ReadForecastRows(value, &scratch_).ok()) break;
      Upsert(scratch_, LineRef{line_at, static_cast<uint32_t>(line.size() + 1)});
    }
    NoteOffset(partition, offset);
    ++records;
    at = line_at + static_cast<int64_t>(line.size()) + 1;
  }
  if (at < file_size) {
    spdlog::warn("store: {}: {} bytes after record {} are torn or corrupt; they are {} and read again from the forecasts topic",
                 path_, file_size - at, records, read_only_ ? "ignored" : "cut off");
  }
  size_ = at;
  if (retention_us_ > 0) DropPast(now_us);
  if (read_only_) return Status::OK();
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

Status ForecastTable::ReadIssueRows(int fd, const std::string& path, const Issue& issue, std::vector<ForecastRow>* rows) {
  rows->clear();
  std::vector<ForecastRow> part;
  std::string buffer;
  std::string model;  // of the line read last: the issue's newest record
  bool day_ahead = false;
  auto read = [&](const LineRef& l) -> Status {
    buffer.resize(l.bytes);
    size_t done = 0;
    MARE_RETURN_IF_ERROR(log::file::ReadAt(fd, l.at, buffer.data(), l.bytes, &done, path));
    int32_t partition = 0;
    int64_t offset = 0;
    std::string_view value;
    if (done != l.bytes || buffer.empty() || buffer.back() != '\n' ||
        !ParseJournalLine(std::string_view(buffer).substr(0, buffer.size() - 1), &partition, &offset, &value)) {
      return Status::Corruption(fmt::format("{}: the line at byte {} no longer reads back as written (the file was "
                                            "changed since it was read); restart to read it again",
                                            path, l.at));
    }
    MARE_RETURN_IF_ERROR(ReadForecastRows(value, &part));
    if (!part.empty()) {
      model = part.back().model;
      day_ahead = part.back().day_ahead;
    }
    rows->insert(rows->end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
    return Status::OK();
  };
  if (issue.earlier) {
    for (const LineRef& l : *issue.earlier) MARE_RETURN_IF_ERROR(read(l));
  }
  MARE_RETURN_IF_ERROR(read(issue.line));
  if (issue.earlier) {
    // The issue's model and day-ahead flag are its newest record's, on every row.
    for (ForecastRow& r : *rows) {
      r.model = model;
      r.day_ahead = day_ahead;
    }
  }
  // Oldest line first, so the last row of each target hour is the one that stays.
  std::stable_sort(rows->begin(), rows->end(),
                   [](const ForecastRow& a, const ForecastRow& b) { return a.target_hour_us < b.target_hour_us; });
  size_t kept = 0;
  for (size_t i = 0; i < rows->size(); ++i) {
    if (i + 1 < rows->size() && (*rows)[i + 1].target_hour_us == (*rows)[i].target_hour_us) continue;
    if (kept != i) (*rows)[kept] = std::move((*rows)[i]);
    ++kept;
  }
  rows->resize(kept);
  return Status::OK();
}

void ForecastTable::Upsert(const std::vector<ForecastRow>& rows, LineRef line) {
  std::unique_lock lock(mu_);
  if (rows.empty()) {
    dead_bytes_ += line.bytes;  // an issue of no hours: nothing for a rewrite to keep
    return;
  }
  // A record is one issue (docs/formats/forecasts.md): its line is that issue's.
  const ForecastRow& first = rows[0];
  newest_issued_us_ = std::max(newest_issued_us_, first.issued_at_us);
  auto it = issues_.find(IssueKey{first.sensor_id, &first.field, first.issued_at_us});
  if (it == issues_.end()) {
    const std::string* field = &*fields_.insert(first.field).first;
    it = issues_.try_emplace(IssueKey{first.sensor_id, field, first.issued_at_us}).first;
    Issue& issue = it->second;
    std::vector<int64_t> hours;
    hours.reserve(rows.size());
    for (const ForecastRow& r : rows) hours.push_back(r.target_hour_us);
    std::sort(hours.begin(), hours.end());
    issue.line = line;
    issue.first_hour_us = hours.front();
    issue.last_hour_us = hours.back();
    issue.hours = static_cast<uint32_t>(std::unique(hours.begin(), hours.end()) - hours.begin());
    rows_ += issue.hours;
    return;
  }
  // The same issue again (a record read a second time): its rows are the union of its lines'.
  Issue& issue = it->second;
  if (!issue.earlier) issue.earlier = std::make_unique<std::vector<LineRef>>();
  issue.earlier->push_back(issue.line);
  issue.line = line;
  std::vector<ForecastRow> all;
  Status s = ReadIssueRows(read_fd_, path_, issue, &all);
  if (!s.ok() || all.empty()) {
    spdlog::warn("store: {}: counting the rows of an issue read twice: {}", path_, s.ToString());
    return;
  }
  rows_ += all.size() - issue.hours;
  issue.hours = static_cast<uint32_t>(all.size());
  issue.first_hour_us = all.front().target_hour_us;
  issue.last_hour_us = all.back().target_hour_us;
}

Status ForecastTable::Apply(const std::vector<log::ConsumedRecord>& records, uint64_t* skipped) {
  if (read_only_) return Status::InvalidArgument("store: the forecast table is open read-only");
  if (fd_ < 0) {  // a rewrite renamed the journal but could not open it again
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return Status::FromErrno("open " + path_, errno);
  }
  if (read_fd_ < 0) {
    int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno("open " + path_, errno);
    std::unique_lock lock(mu_);
    read_fd_ = fd;
  }
  pending_.clear();
  std::vector<std::vector<ForecastRow>> parsed;
  std::vector<LineRef> lines;
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
    lines.push_back(LineRef{size_ + static_cast<int64_t>(line_start), static_cast<uint32_t>(pending_.size() - line_start)});
    parsed.push_back(scratch_);
    kept.push_back(&r);
  }
  if (!pending_.empty()) {
    // Journal first: a row a query saw is never one a restart would lose (and its rows are
    // read from there).
    Status s = log::file::WriteAt(fd_, size_, pending_.data(), pending_.size(), path_);
    if (!s.ok()) {
      // Whatever part got written is cut off again, so that the next attempt appends whole lines.
      if (::ftruncate(fd_, size_) != 0) spdlog::warn("store: truncate {}: {}", path_, std::strerror(errno));
      return s;
    }
    size_ += static_cast<int64_t>(pending_.size());
  }
  for (size_t k = 0; k < parsed.size(); ++k) {
    Upsert(parsed[k], lines[k]);
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
      if (it->second.last_hour_us <= cutoff - kHourUs) past.push_back(it);
    }
  }
  if (past.empty()) return 0;
  size_t dropped = 0;
  std::unique_lock lock(mu_);
  for (auto it : past) {
    dropped += it->second.hours;
    rows_ -= it->second.hours;
    dead_bytes_ += it->second.journal_bytes();
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
  // Streamed, line by line, into journal.tmp; then fsync, rename over the journal, fsync of the
  // directory: a crash leaves the old journal or the new one, each whole. Queries go on reading
  // the old file until the index is switched to the new one.
  const std::string tmp = path_ + ".tmp";
  int out_fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out_fd < 0) return Status::FromErrno("open " + tmp, errno);
  std::string out;
  int64_t written = 0;
  auto flush = [&]() -> Status {
    MARE_RETURN_IF_ERROR(log::file::WriteAt(out_fd, written, out.data(), out.size(), tmp));
    written += static_cast<int64_t>(out.size());
    out.clear();
    return Status::OK();
  };
  // Each kept line's new place, in the order of the old file (lines keep their order).
  struct Moved {
    int64_t from, to;
  };
  std::vector<Moved> moved;
  Status s = [&]() -> Status {
    // The position first: the lines of a partition may all be gone, its offsets must not.
    for (size_t p = 0; p < next_offsets_.size(); ++p) {
      if (next_offsets_[p] > 0) fmt::format_to(std::back_inserter(out), "{} {} {:08x} \n", p, next_offsets_[p] - 1, JournalCrc(""));
    }
    LineReader reader(read_fd_, size_, path_);
    for (;;) {
      std::string_view line;
      int64_t at = 0;
      bool torn = false;
      auto more = reader.Next(&line, &at, &torn);
      if (!more.ok()) return more.status();
      if (!*more) break;
      int32_t partition = 0;
      int64_t offset = 0;
      std::string_view value;
      // Every line up to size_ was read or written whole by this table; one that does not parse
      // would not be here.
      if (!ParseJournalLine(line, &partition, &offset, &value) || value.empty() || !ReadForecastRows(value, &scratch_).ok() ||
          scratch_.empty()) {
        continue;
      }
      // Only this (the writer) thread changes issues_: no lock needed to read it here.
      if (issues_.count(IssueKey{scratch_[0].sensor_id, &scratch_[0].field, scratch_[0].issued_at_us}) == 0) continue;
      moved.push_back(Moved{at, written + static_cast<int64_t>(out.size())});
      out.append(line);
      out.push_back('\n');
      if (out.size() >= (1u << 20)) MARE_RETURN_IF_ERROR(flush());
    }
    MARE_RETURN_IF_ERROR(flush());
    if (::fdatasync(out_fd) != 0) return Status::FromErrno("fdatasync " + tmp, errno);
    return Status::OK();
  }();
  ::close(out_fd);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) return Status::FromErrno("rename " + tmp, errno);
  size_t slash = path_.rfind('/');
  MARE_RETURN_IF_ERROR(log::file::SyncDir(slash == std::string::npos ? "." : path_.substr(0, slash)));
  spdlog::info("store: {}: rewritten without the issues past store.forecast_retention: {} bytes, was {}", path_, written, size_);
  int new_read_fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  {
    std::unique_lock lock(mu_);
    auto to = [&](LineRef* l) {
      auto m = std::lower_bound(moved.begin(), moved.end(), l->at, [](const Moved& a, int64_t at) { return a.from < at; });
      l->at = m->to;  // every line of a kept issue was kept
    };
    for (auto& [key, issue] : issues_) {
      to(&issue.line);
      if (issue.earlier) {
        for (LineRef& l : *issue.earlier) to(&l);
      }
    }
    if (read_fd_ >= 0) ::close(read_fd_);
    read_fd_ = new_read_fd;  // -1 if it failed: Apply opens it again
  }
  ::close(fd_);
  size_ = written;
  dead_bytes_ = 0;
  fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) return Status::FromErrno("open " + path_, errno);
  if (new_read_fd < 0) return Status::FromErrno("open " + path_, errno);
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
  std::vector<ForecastRow> rows;
  auto add = [&](const IssueKey& key, const Issue& issue) -> Status {
    // An issue's target hours follow its origin: one issued after max_ts has none to give.
    if (key.issued_at_us > filter.max_ts || issue.last_hour_us < filter.min_ts || issue.first_hour_us > filter.max_ts) {
      return Status::OK();
    }
    MARE_RETURN_IF_ERROR(ReadIssueRows(read_fd_, path_, issue, &rows));
    for (const ForecastRow& h : rows) {
      if (h.target_hour_us < filter.min_ts || h.target_hour_us > filter.max_ts) continue;
      auto [it, added] = buffers.try_emplace({key.sensor_id, HourOf(h.target_hour_us)}, key.sensor_id);
      RowBuffer& out = it->second;
      out.AddRow(h.target_hour_us);
      out.SetText(forecast_fields::kField, *key.field);
      out.SetNumber(forecast_fields::kIssuedAt, static_cast<double>(key.issued_at_us));
      if (h.has_value) out.SetNumber(forecast_fields::kValue, h.value);
      if (h.has_lower) out.SetNumber(forecast_fields::kLower, h.lower);
      if (h.has_upper) out.SetNumber(forecast_fields::kUpper, h.upper);
      // The newest line's model and day-ahead flag, as when the rows were kept in memory.
      out.SetText(forecast_fields::kModel, rows.back().model);
      out.SetNumber(forecast_fields::kDayAhead, rows.back().day_ahead ? 1.0 : 0.0);
    }
    return Status::OK();
  };
  snap->status = [&]() -> Status {
    std::shared_lock lock(mu_);
    auto scan = [&](std::map<IssueKey, Issue>::const_iterator it, std::map<IssueKey, Issue>::const_iterator end) -> Status {
      for (; it != end; ++it) MARE_RETURN_IF_ERROR(add(it->first, it->second));
      return Status::OK();
    };
    if (filter.sensors.empty()) return scan(issues_.begin(), issues_.end());
    std::vector<uint32_t> sensors = filter.sensors;
    std::sort(sensors.begin(), sensors.end());
    sensors.erase(std::unique(sensors.begin(), sensors.end()), sensors.end());
    const std::string none;  // sorts before every field name
    for (uint32_t sensor : sensors) {
      MARE_RETURN_IF_ERROR(scan(
          issues_.lower_bound(IssueKey{sensor, &none, std::numeric_limits<int64_t>::min()}),
          sensor == UINT32_MAX ? issues_.end() : issues_.lower_bound(IssueKey{sensor + 1, &none, std::numeric_limits<int64_t>::min()})));
    }
    return Status::OK();
  }();
  if (!snap->status.ok()) {
    snap->memtable.clear();  // incomplete: a reader fails with the status
    return snap;
  }
  snap->memtable.reserve(buffers.size());
  for (auto& [key, out] : buffers) {
    out.SortByTime();  // stable: equal target hours keep the order of field, then issued_at
    snap->memtable.push_back(std::move(out));
  }
  return snap;
}

}  // namespace mare::store
