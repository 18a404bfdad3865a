#include "store/import.h"

#include <fast_float/fast_float.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "reading/timestamp.h"

namespace mare::store {
namespace {

enum class Role { kTime, kSensor, kLat, kLon, kField };

struct Column {
  Role role = Role::kField;
  std::string name;
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsMissing(std::string_view cell) {
  if (cell.empty()) return true;
  if (cell.size() > 4) return false;
  std::string l = Lower(cell);
  return l == "na" || l == "nan" || l == "null" || l == "n/a";
}

// Splits a line at commas; a line with quotes takes the careful path.
bool Split(std::string_view line, std::vector<std::string_view>* cells, std::string* unquoted_storage) {
  cells->clear();
  if (line.find('"') == std::string_view::npos) {
    size_t start = 0;
    while (true) {
      size_t comma = line.find(',', start);
      if (comma == std::string_view::npos) {
        cells->push_back(line.substr(start));
        return true;
      }
      cells->push_back(line.substr(start, comma - start));
      start = comma + 1;
    }
  }
  // RFC 4180: "a ""quoted"" cell"; the unquoted cells are kept in one buffer.
  unquoted_storage->clear();
  unquoted_storage->reserve(line.size());
  std::vector<std::pair<size_t, size_t>> spans;
  size_t i = 0;
  while (true) {
    size_t begin = unquoted_storage->size();
    if (i < line.size() && line[i] == '"') {
      ++i;
      while (true) {
        if (i >= line.size()) return false;
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            unquoted_storage->push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        unquoted_storage->push_back(line[i++]);
      }
    } else {
      while (i < line.size() && line[i] != ',') unquoted_storage->push_back(line[i++]);
    }
    spans.emplace_back(begin, unquoted_storage->size() - begin);
    if (i >= line.size()) break;
    if (line[i] != ',') return false;
    ++i;
  }
  for (auto [b, n] : spans) cells->push_back(std::string_view(unquoted_storage->data() + b, n));
  return true;
}

}  // namespace

Status ImportCsv(const std::string& path, Store* store, const ImportOptions& options, ImportReport* report,
                 const std::function<void(int64_t, int64_t, int64_t)>& progress) {
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
    return Status::InvalidArgument(path + " is empty: expected a header line");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return Status::FromErrno("mmap " + path, errno);
  ::madvise(map, size, MADV_SEQUENTIAL);
  std::string_view data(static_cast<const char*>(map), size);
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
  std::string_view header;
  next_line(&pos, &header);
  std::vector<std::string_view> cells;
  std::string storage;
  if (!Split(header, &cells, &storage)) return Status::InvalidArgument(path + ":1: the header has an unterminated quote");
  std::vector<Column> columns;
  int time_col = -1, sensor_col = -1, lat_col = -1, lon_col = -1;
  for (size_t c = 0; c < cells.size(); ++c) {
    std::string name = Lower(cells[c]);
    while (!name.empty() && name.back() == ' ') name.pop_back();
    while (!name.empty() && name.front() == ' ') name.erase(name.begin());
    Column col{Role::kField, name};
    if ((name == "ts" || name == "timestamp" || name == "time" || name == "datetime") && time_col < 0) {
      col.role = Role::kTime;
      time_col = static_cast<int>(c);
    } else if (name == "sensor_id" && sensor_col < 0) {
      col.role = Role::kSensor;
      sensor_col = static_cast<int>(c);
    } else if ((name == "lat" || name == "latitude") && lat_col < 0) {
      col.role = Role::kLat;
      lat_col = static_cast<int>(c);
    } else if ((name == "lon" || name == "lng" || name == "longitude") && lon_col < 0) {
      col.role = Role::kLon;
      lon_col = static_cast<int>(c);
    } else {
      bool valid = !name.empty() && (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
                   std::all_of(name.begin(), name.end(), [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_'; });
      if (!valid || name.size() > 64) {
        return Status::InvalidArgument(fmt::format("{}:1: column \"{}\" is not a field name ([A-Za-z_][A-Za-z0-9_]*, at most 64 bytes)", path, cells[c]));
      }
    }
    columns.push_back(std::move(col));
  }
  if (time_col < 0) return Status::InvalidArgument(path + ":1: no time column (ts, timestamp, time or datetime) in the header");
  if (sensor_col < 0) return Status::InvalidArgument(path + ":1: no sensor_id column in the header");

  // Two threads: this one parses lines into batches of readings; the other adds them to the
  // store and writes completed hours out. Batches cycle through a small pool.
  struct ParsedBatch {
    std::vector<Reading> readings;
    size_t count = 0;
    int64_t max_hour = std::numeric_limits<int64_t>::min();
    int64_t bytes_done = 0;
    int64_t readings_done = 0;
    std::deque<std::string> owned;  // unquoted text cells (stable addresses)
  };
  constexpr size_t kBatchRows = 32'768;
  std::vector<ParsedBatch> pool(4);
  for (auto& b : pool) b.readings.resize(kBatchRows);
  std::mutex mu;
  std::condition_variable cv;
  std::deque<ParsedBatch*> full, free_batches;
  for (auto& b : pool) free_batches.push_back(&b);
  bool parsing_done = false;
  Status writer_status;

  std::mutex flush_mu;
  std::condition_variable flush_cv;
  std::deque<std::vector<Store::TakenHour>> flush_queue;
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
    }
  });

  std::thread writer([&] {
    int64_t next_progress = 0;
    while (true) {
      ParsedBatch* b;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return !full.empty() || parsing_done; });
        if (full.empty()) return;
        b = full.front();
        full.pop_front();
      }
      if (writer_status.ok()) {
        store->Write([&](Store::Batch& batch) {
          for (size_t i = 0; i < b->count; ++i) batch.Add(b->readings[i]);
        });
        if (store->memtable_rows() >= options.flush_rows) {
          // Hours before the newest are complete when the file is in time order (a row that
          // comes later for one makes another segment, merged at the end). A third thread
          // encodes and writes them while this one goes on adding.
          auto taken = store->TakeHoursBefore(b->max_hour);
          if (store->memtable_rows() >= 2 * options.flush_rows) {
            auto rest = store->TakeHoursBefore(std::numeric_limits<int64_t>::max());
            for (auto& h : rest) taken.push_back(std::move(h));
          }
          std::unique_lock lock(flush_mu);
          flush_cv.wait(lock, [&] { return flush_queue.size() < 2; });
          flush_queue.push_back(std::move(taken));
          flush_cv.notify_all();
        }
        if (progress && b->bytes_done >= next_progress) {
          progress(b->bytes_done, static_cast<int64_t>(data.size()), b->readings_done);
          next_progress = b->bytes_done + static_cast<int64_t>(data.size() / 100);
        }
      }
      {
        std::lock_guard lock(mu);
        free_batches.push_back(b);
      }
      cv.notify_all();
    }
  });

  std::string why;
  int64_t line_no = 1;
  int64_t max_hour = std::numeric_limits<int64_t>::min();
  auto skip = [&](std::string message) {
    ++report->skipped;
    if (report->errors.size() < 10) report->errors.push_back(fmt::format("line {}: {}", line_no, message));
  };
  while (pos < data.size()) {
    ParsedBatch* out;
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return !free_batches.empty(); });
      out = free_batches.front();
      free_batches.pop_front();
    }
    out->count = 0;
    out->owned.clear();
    {
      for (size_t n = 0; n < kBatchRows && pos < data.size(); ++n) {
        std::string_view line;
        next_line(&pos, &line);
        ++line_no;
        if (line.empty()) continue;
        ++report->rows;
        if (!Split(line, &cells, &storage)) {
          skip("unterminated quote");
          continue;
        }
        if (cells.size() != columns.size()) {
          skip(fmt::format("{} cells, the header has {}", cells.size(), columns.size()));
          continue;
        }
        Reading& reading = out->readings[out->count];
        reading.Clear();
        std::string_view time_cell = cells[static_cast<size_t>(time_col)];
        if (!ParseTimestampText(time_cell, &reading.timestamp_us, &why)) {
          auto loose = ParseTimestampLoose(time_cell);
          if (!loose.ok()) {
            skip(fmt::format("time \"{}\": {}", time_cell, why));
            continue;
          }
          reading.timestamp_us = *loose;
        }
        std::string_view sensor = cells[static_cast<size_t>(sensor_col)];
        auto [end, ec] = std::from_chars(sensor.data(), sensor.data() + sensor.size(), reading.sensor_id);
        if (ec != std::errc() || end != sensor.data() + sensor.size()) {
          skip(fmt::format("sensor_id \"{}\" is not a number from 0 to 4294967295", sensor));
          continue;
        }
        bool has_lat = false, has_lon = false;
        bool bad = false;
        for (size_t c = 0; c < cells.size() && !bad; ++c) {
          const Column& col = columns[c];
          if (col.role == Role::kTime || col.role == Role::kSensor) continue;
          std::string_view cell = cells[c];
          if (IsMissing(cell)) continue;
          double v;
          auto r = fast_float::from_chars(cell.data(), cell.data() + cell.size(), v);
          bool number = r.ec == std::errc() && r.ptr == cell.data() + cell.size() && std::isfinite(v);
          if (col.role == Role::kLat || col.role == Role::kLon) {
            if (!number || (col.role == Role::kLat ? std::fabs(v) > 90 : std::fabs(v) > 180)) {
              skip(fmt::format("{} \"{}\" is not a {}", col.name, cell, col.role == Role::kLat ? "latitude" : "longitude"));
              bad = true;
              break;
            }
            (col.role == Role::kLat ? reading.lat : reading.lon) = v;
            (col.role == Role::kLat ? has_lat : has_lon) = true;
          } else if (number) {
            reading.numbers.push_back({col.name, v});
          } else {
            // A text cell's view must outlive this line: quoted cells live in `storage`, which
            // the next line reuses, so those are kept in the batch's own strings.
            if (cell.data() >= data.data() && cell.data() < data.data() + data.size()) {
              reading.texts.push_back({col.name, cell});
            } else {
              out->owned.emplace_back(cell);
              reading.texts.push_back({col.name, out->owned.back()});
            }
          }
        }
        if (bad) continue;
        reading.has_location = has_lat && has_lon;
        ++out->count;
        ++report->imported;
        max_hour = std::max(max_hour, HourOf(reading.timestamp_us));
      }
    }
    out->max_hour = max_hour;
    out->bytes_done = static_cast<int64_t>(std::min(pos, data.size()));
    out->readings_done = report->imported;
    {
      std::lock_guard lock(mu);
      full.push_back(out);
    }
    cv.notify_all();
  }
  {
    std::lock_guard lock(mu);
    parsing_done = true;
  }
  cv.notify_all();
  writer.join();
  {
    std::lock_guard lock(flush_mu);
    adding_done = true;
  }
  flush_cv.notify_all();
  flusher.join();
  MARE_RETURN_IF_ERROR(writer_status);
  MARE_RETURN_IF_ERROR(flush_status);
  MARE_RETURN_IF_ERROR(store->Flush({}));
  MARE_RETURN_IF_ERROR(store->Compact(true));
  if (progress) progress(static_cast<int64_t>(data.size()), static_cast<int64_t>(data.size()), report->imported);
  return Status::OK();
}

}  // namespace mare::store
