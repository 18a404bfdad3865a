#include "store/import.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "archive/archive.h"
#include "archive/csv_blocks.h"
#include "archive/csv_column_types.h"
#include "archive/csv_format.h"
#include "archive/csv_plain_row.h"
#include "common/utf8.h"

namespace mare::store {
namespace {

// madvise's MADV_POPULATE_READ (Linux 5.14), which older headers lack.
#ifdef MADV_POPULATE_READ
constexpr int kPopulateRead = MADV_POPULATE_READ;
#else
constexpr int kPopulateRead = 22;
#endif

size_t TakenRows(const std::vector<Store::TakenHour>& hours) {
  size_t rows = 0;
  for (const auto& h : hours) {
    for (const auto& b : h.buffers) rows += b.size();
  }
  return rows;
}

// The field columns' types over the lines of data[from, end of data), the first of them line
// first_line (CsvColumnTypes), read by two threads, half the lines each; the pages read are
// given back every release_bytes, as the import's parsers do, so that the mapped file counts in
// the resident memory only by that much. progress: the bytes read, every few MB.
archive::CsvColumnTypes TypeCsvColumns(std::string_view data, size_t from, size_t first_line, const archive::CsvColumns& columns,
                                       char delimiter, size_t release_bytes, const ImportProgressFn& progress) {
  archive::CsvColumnTypes types(columns, delimiter), second(columns, delimiter);
  if (columns.fields.empty() || from >= data.size()) return types;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  char* base = const_cast<char*>(data.data());
  int64_t bytes_done = static_cast<int64_t>(from);  // under progress_mu
  std::mutex progress_mu;
  // Reads [begin, end) (whole lines; its first is line `line`) into *out; the lines read.
  auto scan = [&](size_t begin, size_t end, size_t line, archive::CsvColumnTypes* out) {
    size_t released = (begin + page - 1) / page * page;  // whole pages of this part only
    size_t p = begin;
    const size_t first_line_here = line;
    size_t reported = begin;  // bytes of this part counted in bytes_done
    while (p < end && !out->all_text()) {
      if (progress && p > reported) {
        // Added and read under the lock, so that the two parts' reports never go backwards.
        std::lock_guard lock(progress_mu);
        bytes_done += static_cast<int64_t>(p - reported);
        reported = p;
        progress({.pass = ImportProgress::Pass::kTypes, .bytes_done = bytes_done, .bytes_total = static_cast<int64_t>(data.size())});
      }
      // Whole lines of a few MB at a time, mapped in one call rather than a fault every few
      // pages (see ImportCsv), then typed (CsvColumnTypes::AddLines: plain runs of lines in
      // blocks of 64 bytes, the others line by line).
      const size_t first = p / page * page;
      size_t stop = std::min(end, first + (8u << 20));
      if (stop < end) {
        if (const void* nl = ::memrchr(data.data() + p, '\n', stop - p); nl != nullptr) {
          stop = static_cast<size_t>(static_cast<const char*>(nl) - data.data()) + 1;
        } else {
          const void* later = std::memchr(data.data() + stop, '\n', end - stop);
          stop = later == nullptr ? end : static_cast<size_t>(static_cast<const char*>(later) - data.data()) + 1;
        }
      }
      ::madvise(base + first, stop - first, kPopulateRead);
      line += out->AddLines(data.substr(p, stop - p), line);
      p = stop;
      if (const size_t until = std::min(p, end) / page * page; until > released && until - released >= release_bytes) {
        ::madvise(base + released, until - released, MADV_DONTNEED);  // only unmapped: a later read maps them again
        released = until;
      }
    }
    return line - first_line_here;
  };
  size_t mid = from + (data.size() - from) / 2;
  if (const void* nl = std::memchr(data.data() + mid, '\n', data.size() - mid); nl != nullptr) {
    mid = static_cast<size_t>(static_cast<const char*>(nl) - data.data()) + 1;
  } else {
    mid = data.size();
  }
  // The second half's lines count from 0 here; the first half's count places them (when the
  // first half stopped early, every field is text and nothing of the second is taken).
  std::thread half([&] { scan(mid, data.size(), 0, &second); });
  const size_t first_half_lines = scan(from, mid, first_line, &types);
  half.join();
  types.Merge(second, first_line + first_half_lines);
  if (progress) {
    progress({.pass = ImportProgress::Pass::kTypes, .bytes_done = static_cast<int64_t>(data.size()),
              .bytes_total = static_cast<int64_t>(data.size())});
  }
  return types;
}

// Marks the text columns whose names the store already holds as numbers (before the import
// adds any of its own: a file's text column never adds a number field of its name).
void MarkNumbersStored(const Schema& schema, std::vector<ImportedTextColumn>* columns) {
  for (ImportedTextColumn& c : *columns) c.store_has_numbers = schema.Find(c.name, FieldType::kNumber).has_value();
}

}  // namespace

Status RequireRegularCsvFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno("stat " + path, errno);
  if (S_ISREG(st.st_mode)) return Status::OK();
  return Status::InvalidArgument(fmt::format(
      "{}: not a regular file ({}): a CSV is read twice, its columns' types and then its rows, so it cannot come "
      "through a pipe; write it to a file first",
      path, S_ISFIFO(st.st_mode) ? "a named pipe" : S_ISDIR(st.st_mode) ? "a directory" : "a device or socket"));
}

Status ImportCsv(const std::string& path, Store* store, const ImportOptions& options, ImportReport* report,
                 const ImportProgressFn& progress) {
  MARE_RETURN_IF_ERROR(RequireRegularCsvFile(path));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return Status::FromErrno("stat " + path, errno);
  }
  size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return archive::NoCsvHeaderError(path);
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return Status::FromErrno("mmap " + path, errno);
  ::madvise(map, size, MADV_SEQUENTIAL);
  std::string_view data(static_cast<const char*>(map), size);
  // The file's pages stay mapped, and resident, once read: those the writer is done with (every
  // reading's text is copied into the store by then) are given back as the parser moves on.
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  size_t released = 0;  // [0, released) of the mapping is given back
  struct Unmap {
    void* p;
    size_t n;
    ~Unmap() { ::munmap(p, n); }
  } unmap{map, size};

  auto next_line = [&](size_t* pos, std::string_view* line) {
    if (*pos >= data.size()) return false;
    size_t end = data.find('\n', *pos);
    if (end == std::string_view::npos) end = data.size();
    *line = data.substr(*pos, end - *pos);
    if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
    *pos = end + 1;
    return true;
  };

  size_t pos = 0;
  int64_t line_no = 0;
  std::string_view header;
  do {
    if (!next_line(&pos, &header)) return archive::NoCsvHeaderError(path);
    ++line_no;
  } while (archive::TrimCell(header).empty());
  if (line_no == 1 && header.starts_with("\xEF\xBB\xBF")) header.remove_prefix(3);  // UTF-8 byte order mark
  const char delimiter = archive::DetectCsvDelimiter(header);
  std::vector<std::string> names;
  if (!archive::SplitCsvLine(header, delimiter, &names)) {
    return archive::CsvHeaderQuoteError(path, static_cast<size_t>(line_no));
  }
  Result<archive::CsvColumns> mapped = archive::MapCsvColumns(names, path);
  if (!mapped) return mapped.status();
  const archive::CsvColumns& columns = *mapped;
  // A file without a sensor_id column has the station number in its name, else 1: the archive
  // reader's default when `mare import` gives no --sensor-id. A number too big for an id is
  // refused, as `mare import` refuses it for the archive reader.
  const uint64_t station = archive::StationFromFileName(path).value_or(1);
  if (columns.sensor == archive::kNoColumn && station > archive::kMaxSensorId) {
    return Status::InvalidArgument(fmt::format("{}: station {} in the file name is not a sensor id (0 to {}): give the file a sensor_id column",
                                               path, station, archive::kMaxSensorId));
  }
  const uint32_t default_sensor = static_cast<uint32_t>(station);
  const size_t lone_coordinate = archive::LoneCoordinateColumn(columns);
  // Each field column numbers or text, decided over the whole file before any row is stored
  // (the archive reader's rule): a column with a text cell is text, its numbers included, so
  // that the store never has a number and a text field of one name from one file.
  const archive::CsvColumnTypes types =
      TypeCsvColumns(data, pos, static_cast<size_t>(line_no) + 1, columns, delimiter, options.release_bytes, progress);
  for (size_t k = 0; k < columns.fields.size(); ++k) {
    if (types.text(k)) report->text_columns.push_back({{columns.fields[k].name, types.first_text(k), types.first_text_line(k)}});
  }
  MarkNumbersStored(store->schema(), &report->text_columns);
  // Threads: two parse byte ranges of the file (whole lines, at most batch_rows of them) into
  // batches of column buffers, one per sensor and hour of the range (a line repeating an
  // earlier one's sensor and time in the range replaces its row); one adds the batches to the
  // store in the file's order (so a reading later in the file replaces an earlier one of the
  // same sensor and time, as one at a time would), a buffer at a time (Batch::AddRows: one
  // lookup, a copy per column); one more encodes and writes completed hours out. Batches
  // cycle through a pool.
  struct ParsedBatch {
    std::vector<RowBuffer> chunks;  // one per sensor and hour, column indexes the store's field ids
    std::vector<size_t> replaced;   // per chunk: its lines that replaced an earlier line's row
    uint64_t seq = 0;          // the range's place in the file
    int64_t max_hour = std::numeric_limits<int64_t>::min();  // of this batch (the writer keeps the file's)
    int64_t min_hour = std::numeric_limits<int64_t>::max();  // of this batch
    int64_t bytes_done = 0;    // the range's end
    int64_t rows = 0, imported = 0, skipped = 0;
    std::vector<std::string> errors;  // the range's first few skipped rows, "line N: why"
  };
  // Never more than flush_rows a batch, so that the rows held stay bounded by flush_rows. Large
  // enough that a sensor's hour comes in few chunks (bench/store.py's 100 sensors: 2,621 rows a
  // chunk), which the store then takes whole instead of appending them one after the other.
  const size_t batch_rows = std::clamp<size_t>(options.flush_rows, 1, 262'144);
  constexpr int kParsers = 2;
  std::vector<ParsedBatch> pool(4);
  std::mutex mu;
  std::condition_variable cv;
  std::deque<ParsedBatch*> free_batches;
  std::map<uint64_t, ParsedBatch*> full;  // parsed, by seq, until the writer's turn
  for (auto& b : pool) free_batches.push_back(&b);
  int parsers_left = kParsers;
  uint64_t next_seq = 0;       // of the next range handed out
  size_t consumed = 0;  // the file's bytes up to the end of the last batch the writer added
  size_t pos_all = pos;          // where the next range begins
  size_t range_bytes = 0;  // the last range's size, to map the next one's pages ahead
  int64_t line_all = line_no;   // the lines before it
  int64_t peak_mapped_bytes = 0;
  Status writer_status;

  std::mutex flush_mu;
  std::condition_variable flush_cv;
  std::deque<std::vector<Store::TakenHour>> flush_queue;
  size_t writes_pending = 0;  // taken hours not yet written (queued or being written)
  size_t rows_pending = 0;    // their readings
  int64_t pending_max_hour = std::numeric_limits<int64_t>::min();
  bool adding_done = false;
  Status flush_status;
  std::thread flusher([&] {
    while (true) {
      std::vector<Store::TakenHour> hours;
      {
        std::unique_lock lock(flush_mu);
        flush_cv.wait(lock, [&] { return !flush_queue.empty() || adding_done; });
        if (flush_queue.empty()) return;
        hours = std::move(flush_queue.front());
        flush_queue.pop_front();
      }
      flush_cv.notify_all();
      if (flush_status.ok()) flush_status = store->WriteTaken(&hours);
      size_t rows = TakenRows(hours);
      std::vector<Store::TakenHour>().swap(hours);  // freed before they stop counting as held
      {
        std::lock_guard lock(flush_mu);
        --writes_pending;
        rows_pending -= rows;
      }
      flush_cv.notify_all();
    }
  });

  size_t peak_held_rows = 0;
  std::thread writer([&] {
    int64_t next_progress = 0;
    uint64_t seq = 0;  // the batch whose turn it is
    int64_t max_hour = std::numeric_limits<int64_t>::min();  // of the file so far
    while (true) {
      ParsedBatch* b;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return (!full.empty() && full.begin()->first == seq) || (parsers_left == 0 && full.empty()); });
        if (full.empty()) return;
        b = full.begin()->second;
        full.erase(full.begin());
        ++seq;
      }
      // The range's counts and reasons, in the file's order.
      report->rows += b->rows;
      report->imported += b->imported;
      report->skipped += b->skipped;
      for (auto& e : b->errors) {
        if (report->errors.size() < 10) report->errors.push_back(std::move(e));
      }
      max_hour = std::max(max_hour, b->max_hour);
      if (writer_status.ok()) {
        {
          // A reading of an hour on its way to disk would not find a copy of itself there (the
          // store keeps one per sensor and time): wait for those hours to land first.
          std::unique_lock lock(flush_mu);
          if (b->min_hour <= pending_max_hour) flush_cv.wait(lock, [&] { return writes_pending == 0; });
          if (writes_pending == 0) pending_max_hour = std::numeric_limits<int64_t>::min();
        }
        store->Write([&](Store::Batch& batch) {
          // Distinct sensors and hours: their order within the batch does not matter.
          for (size_t c = 0; c < b->chunks.size(); ++c) batch.AddRows(std::move(b->chunks[c]), b->replaced[c]);
        });
        {
          std::lock_guard lock(flush_mu);
          peak_held_rows = std::max(peak_held_rows, store->memtable_rows() + rows_pending);
        }
        if (store->memtable_rows() >= options.flush_rows) {
          // Hours before the newest are complete when the file is in time order (a row that
          // comes later for one makes another segment, merged at the end). A third thread
          // encodes and writes them while this one goes on adding.
          auto taken = store->TakeHoursBefore(max_hour);
          if (store->memtable_rows() >= options.flush_rows) {
            // The newest hour alone holds that many (many sensors, or a file out of time
            // order): it goes too, so that what stays is under flush_rows.
            auto rest = store->TakeHoursBefore(std::numeric_limits<int64_t>::max());
            for (auto& h : rest) taken.push_back(std::move(h));
          }
          // One write at a time: the memtable (under flush_rows and a batch) and the hours
          // being written (as many) are all the readings held, whatever the file's size.
          std::unique_lock lock(flush_mu);
          flush_cv.wait(lock, [&] { return writes_pending == 0; });
          for (const auto& h : taken) pending_max_hour = std::max(pending_max_hour, h.hour);
          ++writes_pending;
          rows_pending += TakenRows(taken);
          flush_queue.push_back(std::move(taken));
          flush_cv.notify_all();
        }
        if (progress && b->bytes_done >= next_progress) {
          progress({.bytes_done = b->bytes_done, .bytes_total = static_cast<int64_t>(data.size()), .readings = report->imported});
          next_progress = b->bytes_done + static_cast<int64_t>(data.size() / 100);
        }
      }
      b->chunks.clear();
      b->replaced.clear();
      {
        std::lock_guard lock(mu);
        consumed = static_cast<size_t>(b->bytes_done);
        free_batches.push_back(b);
      }
      cv.notify_all();
    }
  });

  // The time is one cell (not a date and a time, nor civil parts): see the time cache below.
  const bool plain_time = columns.time != archive::kNoColumn && columns.time_of_day == archive::kNoColumn;
  // The store's field ids of the location and of each field column, number or text (a
  // column's cells may be either): interned at a column's first value of that kind, so that a
  // column of text alone gets no number field.
  const uint32_t lat_id = store->schema().Intern(kLatField, FieldType::kNumber);
  const uint32_t lon_id = store->schema().Intern(kLonField, FieldType::kNumber);
  constexpr uint32_t kUnset = std::numeric_limits<uint32_t>::max();
  auto parse = [&] {
    std::vector<std::string_view> cells;
    std::string storage, joined;
    std::string last_time_text;
    int64_t last_time = 0;
    std::vector<uint32_t> number_ids(columns.fields.size(), kUnset), text_ids(columns.fields.size(), kUnset);
    // A line's field values, checked whole before any goes into its chunk (a bad cell skips the line).
    struct Value {
      enum Kind : uint8_t { kMissing, kNumber, kText } kind = kMissing;
      double number = 0;
      std::string_view text;
    };
    std::vector<Value> values(columns.fields.size());
    // The one-pass reading of plain lines, and whether the last time's text may be compared by it.
    const archive::PlainRowLayout plain_layout(columns, delimiter);
    // (A plain line's field cells are numbers: a file with a text column is read by the rules.)
    const bool plain_usable = plain_layout.usable && !types.any_text() && columns.fields.size() <= 62;
    bool plain_rows = options.plain_rows && plain_usable;
    int plain_pause = 0;
    // A plain line's location and fields, as RowBuffer::AddNumberRow takes them: the store's
    // ids (a field's once it has had a value: plain_interned) and values, the location first.
    std::vector<double> plain_values(columns.fields.size() + 2);
    std::vector<uint32_t> plain_ids(columns.fields.size() + 2, kUnset);
    plain_ids[0] = lat_id;
    plain_ids[1] = lon_id;
    uint64_t plain_interned = 0;
    bool last_time_plain = false;
    const char plain_specials[] = {delimiter, '"', '\r', '\n', '\0'};
    // The chunk of each (sensor, hour) of the batch: the sensor's last one first (an archive
    // gives a sensor line after line of one hour), else a map. gen tells this batch's entries.
    struct Recent {
      int64_t hour = 0;
      uint32_t chunk = 0;
      uint64_t gen = 0;
    };
    constexpr uint32_t kRecentSensors = 1 << 16;
    std::vector<Recent> recent;
    struct KeyHash {
      size_t operator()(const std::pair<uint32_t, int64_t>& k) const {
        return std::hash<uint64_t>()(static_cast<uint64_t>(k.second) * 1000003ULL + k.first);
      }
    };
    std::unordered_map<std::pair<uint32_t, int64_t>, uint32_t, KeyHash> chunk_of;
    uint64_t gen = 0;
    int64_t hour_of_last = HourOf(0);  // the hour start_row found last
    // Each new chunk's room: the rows per chunk of this parser's last range, a little more (all
    // chunks together then reserve about a range's rows, however they are spread).
    size_t rows_per_chunk = 0;
    while (true) {
      ParsedBatch* out;
      size_t pos, end, populated;  // populated: the end of the range's pages mapped ahead
      int64_t line_no;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return !free_batches.empty() || pos_all >= data.size(); });
        if (pos_all >= data.size()) {
          if (--parsers_left == 0) cv.notify_all();
          return;
        }
        out = free_batches.front();
        free_batches.pop_front();
        if (size_t until = consumed / page * page; until > released && until - released >= options.release_bytes) {
          // Only unmaps them from this process: the next access would read the file again.
          ::madvise(static_cast<char*>(map) + released, until - released, MADV_DONTNEED);
          released = until;
        }
        // The next range: at most batch_rows lines (blank ones too). Its pages are mapped in one
        // call rather than a fault every few pages (an error, from a kernel before 5.14, leaves
        // it to the faults), before the lines are counted: as many bytes as the last range had
        // here, the rest, if any, once the range's end is known (outside the lock). Counting
        // first took those faults one at a time, under the lock.
        pos = end = pos_all;
        line_no = line_all;
        populated = std::min(data.size(), pos + range_bytes);
        if (pos < populated) ::madvise(static_cast<char*>(map) + pos / page * page, populated - pos / page * page, kPopulateRead);
        size_t lines = 0;
        end = static_cast<size_t>(archive::SkipCsvLines(data.data() + end, data.data() + data.size(), batch_rows, &lines) - data.data());
        range_bytes = end - pos;
        line_all += static_cast<int64_t>(lines);
        pos_all = end;
        out->seq = next_seq++;
        peak_mapped_bytes = std::max(peak_mapped_bytes, static_cast<int64_t>(std::max(end, populated) - released));
      }
      if (end > populated) {
        const size_t first = populated / page * page;
        ::madvise(static_cast<char*>(map) + first, end - first, kPopulateRead);
      }
      out->chunks.clear();
      out->replaced.clear();
      out->errors.clear();
      out->rows = out->imported = out->skipped = 0;
      chunk_of.clear();
      ++gen;
      int64_t batch_min_hour = std::numeric_limits<int64_t>::max(), batch_max_hour = std::numeric_limits<int64_t>::min();
      auto skip = [&](std::string message) {
        ++out->skipped;
        if (out->errors.size() < 10) out->errors.push_back(fmt::format("line {}: {}", line_no, message));
      };
      // The line's row into its chunk: a second line of the same sensor and time in this range
      // replaces the first's row whole (the later wins, as the store's rule says).
      // The row's chunk, and a row in it: a new one (true), or an earlier line's of the same
      // time, cleared to be written again (false). Counts the reading.
      auto start_row = [&](int64_t ts, uint32_t sensor_id, RowBuffer** chunk_out) {
        // The hour of the row before holds this one too, nearly always (an archive's rows come
        // in time order): HourOf's 64-bit remainder only when it does not (unsigned: a time
        // before it wraps to a large difference).
        if (static_cast<uint64_t>(ts) - static_cast<uint64_t>(hour_of_last) >= uint64_t{kHourMicros}) hour_of_last = HourOf(ts);
        const int64_t hour = hour_of_last;
        uint32_t index;
        Recent* r = nullptr;
        if (sensor_id < kRecentSensors) {
          if (sensor_id >= recent.size()) recent.resize(sensor_id + 1);
          r = &recent[sensor_id];
        }
        if (r != nullptr && r->gen == gen && r->hour == hour) {
          index = r->chunk;
        } else {
          auto [it, added] = chunk_of.try_emplace({sensor_id, hour}, static_cast<uint32_t>(out->chunks.size()));
          if (added) {
            out->chunks.emplace_back(sensor_id).Reserve(rows_per_chunk);
            out->replaced.push_back(0);
          }
          index = it->second;
          if (r != nullptr) *r = {hour, index, gen};
        }
        RowBuffer& chunk = out->chunks[index];
        *chunk_out = &chunk;
        ++out->imported;
        batch_max_hour = std::max(batch_max_hour, hour);
        batch_min_hour = std::min(batch_min_hour, hour);
        // Newer than every row of the chunk, the common case, tested here (Find is out of line).
        const bool newest = chunk.size() == 0 || ts > chunk.ts()[chunk.newest()];
        if (std::optional<size_t> row = newest ? std::nullopt : chunk.Find(ts)) {
          chunk.ReplaceRow(*row);
          ++out->replaced[index];
          return false;
        }
        return true;
      };
      auto add_row = [&](int64_t ts, uint32_t sensor_id, bool has_location, double lat_v, double lon_v) {
        RowBuffer* c;
        if (start_row(ts, sensor_id, &c)) c->AddRow(ts);
        RowBuffer& chunk = *c;
        if (has_location) {
          chunk.SetNumber(lat_id, lat_v);
          chunk.SetNumber(lon_id, lon_v);
        }
        for (size_t k = 0; k < columns.fields.size(); ++k) {
          const Value& v = values[k];
          if (v.kind == Value::kNumber) {
            if (number_ids[k] == kUnset) number_ids[k] = store->schema().Intern(columns.fields[k].name, FieldType::kNumber);
            chunk.SetNumber(number_ids[k], v.number);
          } else if (v.kind == Value::kText) {
            if (text_ids[k] == kUnset) text_ids[k] = store->schema().Intern(columns.fields[k].name, FieldType::kText);
            chunk.SetText(text_ids[k], v.text);
          }
        }
      };
      int64_t plain_tries = 0, plain_misses = 0;
      while (pos < end) {
        if (plain_rows) {
          // A plain line in one pass (archive/csv_plain_row.h); any other by the rules below.
          ++plain_tries;
          archive::PlainRow row;
          uint64_t present = 0;
          const char* next = archive::ParsePlainRow(data.data() + pos, data.data() + end, plain_layout,
                                                    last_time_plain ? std::string_view(last_time_text) : std::string_view(), &row,
                                                    plain_values.data(), &present);
          if (next != nullptr) {
            pos = static_cast<size_t>(next - data.data());
            ++line_no;
            ++out->rows;
            int64_t ts = last_time;
            if (!row.same_time && row.time != last_time_text) {
              Result<int64_t> time = archive::CsvCellTime(row.time);
              if (!time) {
                skip(archive::CsvTimeCellReason(row.time, time.status()));
                continue;
              }
              ts = last_time = *time;
              last_time_text.assign(row.time);
              last_time_plain = true;
            }
            // The location and the fields in one call (RowBuffer::AddNumberRow): bits 0 and 1 of
            // the mask the location, bit k + 2 field k.
            const bool has_location = row.lat_lon && std::fabs(plain_values[0]) <= 90 && std::fabs(plain_values[1]) <= 180;
            for (uint64_t fresh = present & ~plain_interned; fresh != 0; fresh &= fresh - 1) {
              const int k = std::countr_zero(fresh);
              plain_ids[k + 2] = number_ids[k] = store->schema().Intern(columns.fields[k].name, FieldType::kNumber);
              plain_interned |= uint64_t{1} << k;
            }
            const uint64_t mask = (present << 2) | (has_location ? 3 : 0);
            RowBuffer* chunk;
            if (start_row(ts, row.sensor, &chunk)) {
              chunk->AddNumberRow(ts, plain_ids, plain_values.data(), mask);
            } else {
              for (uint64_t m = mask; m != 0; m &= m - 1) {
                const int k = std::countr_zero(m);
                chunk->SetNumber(plain_ids[k], plain_values[k]);
              }
            }
            continue;
          }
          ++plain_misses;
        }
        std::string_view line;
        next_line(&pos, &line);
        ++line_no;
        if (archive::TrimCell(line).empty()) continue;
        ++out->rows;
        if (!archive::SplitCsvCells(line, delimiter, &cells, &storage)) {
          skip(std::string(archive::kUnterminatedQuoteReason));
          continue;
        }
        if (cells.size() != columns.count) {
          skip(archive::CellCountReason(cells.size(), columns.count));
          continue;
        }
        // Archives give many sensors the same time, line after line (100 at bench/store.py's):
        // a time cell equal to the line before's is that line's time, without parsing it again.
        std::string_view time_text = plain_time ? archive::TrimCell(cells[columns.time]) : std::string_view();
        const bool same_time = plain_time && !time_text.empty() && time_text == last_time_text;
        Result<int64_t> time = same_time ? Result<int64_t>(last_time) : archive::CsvRowTime(cells, columns, &joined);
        if (plain_time && !same_time && time) {
          last_time_text.assign(time_text);
          last_time = *time;
          // (A quoted cell may hold what a plain row's time never does: ParsePlainRow's rule.)
          last_time_plain = last_time_text.find_first_of(plain_specials) == std::string::npos;
        }
        if (!time) {
          skip(archive::CsvTimeReason(cells, columns, time.status()));
          continue;
        }
        const int64_t ts = *time;
        uint32_t sensor_id = default_sensor;
        if (columns.sensor != archive::kNoColumn && archive::IsMissingCell(cells[columns.sensor])) {
          skip(std::string(archive::kMissingSensorIdReason));  // the default is for files without the column
          continue;
        }
        if (columns.sensor != archive::kNoColumn) {
          std::string_view sensor = archive::TrimCell(cells[columns.sensor]);
          if (!archive::ParseSensorIdCell(sensor, &sensor_id)) {
            skip(archive::SensorIdReason(sensor));
            continue;
          }
        }
        if (lone_coordinate != archive::kNoColumn && !archive::IsMissingCell(cells[lone_coordinate])) {
          skip(archive::LoneCoordinateReason(columns, archive::TrimCell(cells[lone_coordinate])));
          continue;
        }
        // A location when both cells are valid coordinates; else none (the row is kept).
        bool has_location = false;
        double lat_v = 0, lon_v = 0;
        if (columns.lat != archive::kNoColumn && columns.lon != archive::kNoColumn) {
          std::string_view lat = archive::TrimCell(cells[columns.lat]), lon = archive::TrimCell(cells[columns.lon]);
          // (A cell that is a number is never a missing one: no separate test for that.)
          has_location = archive::ParseNumber(lat, &lat_v) && archive::ParseNumber(lon, &lon_v) && std::fabs(lat_v) <= 90 &&
                         std::fabs(lon_v) <= 180;
        }
        bool bad_text = false;
        for (size_t k = 0; k < columns.fields.size(); ++k) {
          const archive::CsvColumns::Field& f = columns.fields[k];
          std::string_view cell = archive::TrimCell(cells[f.column]);
          Value& v = values[k];
          // A number first, the common case: a finite number is never a missing cell. (A cell of
          // a number column is a number or missing: the types were read from these very lines.)
          if (!types.text(k) && archive::ParseNumber(cell, &v.number)) {
            v.kind = Value::kNumber;
          } else if (archive::IsMissingCell(cell)) {
            v.kind = Value::kMissing;
          } else if (size_t at = FirstNonUtf8(cell); at != cell.size()) {
            // Text goes out in JSON answers, which must be UTF-8: refused here, as ingest does.
            skip(archive::NonUtf8Reason(f.name, at));
            bad_text = true;
            break;
          } else {
            v.kind = Value::kText;
            v.text = cell;  // copied into the chunk by add_row, before `storage` (quoted cells) is reused
          }
        }
        if (bad_text) continue;
        add_row(ts, sensor_id, has_location, lat_v, lon_v);
      }
      // A file whose lines are mostly not plain (text columns, quotes) skips the one-pass try
      // for its next ranges, trying again every 16th.
      if (options.plain_rows && plain_usable) {
        if (plain_misses * 2 > plain_tries) {
          plain_rows = false;
          plain_pause = 16;
        } else if (!plain_rows && --plain_pause <= 0) {
          plain_rows = true;
        }
      }
      if (!out->chunks.empty()) rows_per_chunk = static_cast<size_t>(out->imported) / out->chunks.size() + 8;
      out->max_hour = batch_max_hour;
      out->min_hour = batch_min_hour;
      out->bytes_done = static_cast<int64_t>(end);
      {
        std::lock_guard lock(mu);
        full.emplace(out->seq, out);
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> parsers;
  for (int i = 0; i < kParsers; ++i) parsers.emplace_back(parse);
  for (auto& t : parsers) t.join();
  writer.join();
  {
    std::lock_guard lock(flush_mu);
    adding_done = true;
  }
  flush_cv.notify_all();
  flusher.join();
  report->peak_held_rows = static_cast<int64_t>(peak_held_rows);
  report->peak_mapped_bytes = peak_mapped_bytes;
  MARE_RETURN_IF_ERROR(writer_status);
  MARE_RETURN_IF_ERROR(flush_status);
  MARE_RETURN_IF_ERROR(store->Flush({}));
  MARE_RETURN_IF_ERROR(store->Compact(true));
  if (progress) {
    progress({.bytes_done = static_cast<int64_t>(data.size()), .bytes_total = static_cast<int64_t>(data.size()), .readings = report->imported});
  }
  return Status::OK();
}

Status ImportArchive(archive::ArchiveReader* reader, Store* store, const ImportOptions& options, ImportReport* report,
                     const ImportProgressFn& progress) {
  for (archive::TextColumn& c : reader->text_columns()) report->text_columns.push_back({std::move(c)});
  MarkNumbersStored(store->schema(), &report->text_columns);
  constexpr size_t kBatch = 8192;
  std::vector<archive::Reading> batch(kBatch);
  Reading r;
  int64_t next_progress = 0;
  auto add = [&](size_t n) {
    store->Write([&](Store::Batch& b) {
      for (size_t i = 0; i < n; ++i) {
        const archive::Reading& a = batch[i];
        r.Clear();
        r.timestamp_us = a.time_micros;
        r.sensor_id = static_cast<uint32_t>(a.sensor_id);  // readers refuse ids above 2^32 - 1
        if (a.location) {
          r.has_location = true;
          r.lat = a.location->lat;
          r.lon = a.location->lon;
        }
        for (const auto& f : a.numbers) {
          if (std::isfinite(f.value)) r.numbers.push_back({f.name, f.value});
        }
        for (const auto& f : a.texts) r.texts.push_back({f.name, f.value});
        b.Add(r);
      }
    });
  };
  size_t n = 0;
  while (true) {
    ++report->rows;
    archive::ArchiveReader::Row row = reader->Next(&batch[n]);
    if (row == archive::ArchiveReader::Row::kEnd) {
      --report->rows;
      break;
    }
    std::string why;
    if (row == archive::ArchiveReader::Row::kSkipped) {
      why = reader->why();
    } else {
      for (const auto& f : batch[n].texts) {
        // Text goes out in JSON answers, which must be UTF-8: refused here, as ingest does.
        if (size_t at = FirstNonUtf8(f.value); at != f.value.size()) {
          why = archive::NonUtf8Reason(f.name, at);
          break;
        }
      }
    }
    if (!why.empty()) {
      ++report->skipped;
      if (report->errors.size() < 10) report->errors.push_back(fmt::format("{} {}: {}", reader->line_unit(), reader->line(), why));
      continue;
    }
    ++report->imported;
    if (++n < kBatch) continue;
    add(n);
    n = 0;
    report->peak_held_rows = std::max(report->peak_held_rows, static_cast<int64_t>(store->memtable_rows()));
    // Archives come in any order (NDBC's realtime files newest first): every hour goes out.
    if (store->memtable_rows() >= options.flush_rows) {
      MARE_RETURN_IF_ERROR(store->Flush({}));
      if (options.after_flush) MARE_RETURN_IF_ERROR(options.after_flush());
    }
    if (progress && report->imported >= next_progress) {
      progress({.readings = report->imported});
      next_progress = report->imported + 100'000;
    }
  }
  add(n);
  MARE_RETURN_IF_ERROR(store->Flush({}));
  if (options.after_flush) MARE_RETURN_IF_ERROR(options.after_flush());  // what was read is stored, even if the reader failed
  MARE_RETURN_IF_ERROR(reader->status());
  MARE_RETURN_IF_ERROR(store->Compact(true));
  if (progress) progress({.readings = report->imported});
  return Status::OK();
}

}  // namespace mare::store
