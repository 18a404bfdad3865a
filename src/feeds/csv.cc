#include "feeds/csv.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <deque>

#include "reading/timestamp.h"

namespace mare::feeds {

namespace {

constexpr size_t kNone = static_cast<size_t>(-1);

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

char DetectDelimiter(std::string_view header) {
  size_t commas = 0, semicolons = 0, tabs = 0;
  bool quoted = false;
  for (char c : header) {
    if (c == '"') quoted = !quoted;
    if (quoted) continue;
    commas += c == ',';
    semicolons += c == ';';
    tabs += c == '\t';
  }
  if (semicolons > commas && semicolons >= tabs) return ';';
  if (tabs > commas && tabs > semicolons) return '\t';
  return ',';
}

class CsvReader : public ArchiveReader {
 public:
  explicit CsvReader(const ArchiveOptions& options) : options_(options) {}

  Status Open(const std::string& path) {
    path_ = path;
    MARE_RETURN_IF_ERROR(lines_.Open(path));
    std::string header;
    do {
      if (!lines_.Next(&header)) {
        MARE_RETURN_IF_ERROR(lines_.status());
        return Status::InvalidArgument(path + ": no CSV header line");
      }
    } while (Trim(header).empty());
    if (header.substr(0, 3) == "\xEF\xBB\xBF") header.erase(0, 3);  // UTF-8 byte order mark
    header_line_ = lines_.line_number();
    delimiter_ = DetectDelimiter(header);
    std::vector<std::string> names;
    if (!SplitCsvLine(header, delimiter_, &names)) return Status::InvalidArgument(path + ": unterminated quote in header");
    MARE_RETURN_IF_ERROR(MapColumns(names));
    MARE_RETURN_IF_ERROR(TypeColumns());
    // Second pass: back to the first row after the header.
    lines_ = LineReader();
    MARE_RETURN_IF_ERROR(lines_.Open(path));
    std::string skip;
    while (lines_.line_number() < header_line_ && lines_.Next(&skip)) {
    }
    return Status::OK();
  }

  Row Next(Reading* out) override {
    while (lines_.Next(&row_)) {
      line_ = lines_.line_number();
      if (Trim(row_).empty()) continue;
      if (!SplitCsvLine(row_, delimiter_, &cells_)) {
        why_ = "unterminated quote";
        return Row::kSkipped;
      }
      if (cells_.size() != column_count_) {
        why_ = fmt::format("expected {} cells, found {}", column_count_, cells_.size());
        return Row::kSkipped;
      }
      Result<int64_t> time = RowTime();
      if (!time) {
        why_ = fmt::format("unparseable date: {}", time.status().message());
        return Row::kSkipped;
      }
      out->Clear();
      out->time_micros = *time;
      out->sensor_id = options_.sensor_id;
      if (sensor_column_ != kNone && !IsMissing(Trim(cells_[sensor_column_]))) {
        std::string_view cell = Trim(cells_[sensor_column_]);
        uint64_t id = 0;
        auto [ptr, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), id);
        if (ec != std::errc() || ptr != cell.data() + cell.size() || id > kMaxSensorId) {
          why_ = fmt::format("invalid sensor_id '{}': expected an integer from 0 to {}", cell, kMaxSensorId);
          return Row::kSkipped;
        }
        out->sensor_id = id;
      }
      out->location = options_.location;
      double lat = 0, lon = 0;
      if (lat_column_ != kNone && lon_column_ != kNone && NumberAt(lat_column_, &lat) && NumberAt(lon_column_, &lon) &&
          lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180) {
        out->location = Location{lat, lon};
      }
      for (const Field& f : fields_) {
        if (f.numeric) {
          double v = 0;
          if (NumberAt(f.column, &v)) out->numbers.push_back({f.name, v});
        } else {
          std::string_view cell = Trim(cells_[f.column]);
          if (!IsMissing(cell)) out->texts.push_back({f.name, std::string(cell)});
        }
      }
      return Row::kReading;
    }
    status_ = lines_.status();
    return Row::kEnd;
  }

 private:
  struct Field {
    size_t column;
    std::string_view name;
    bool numeric = true;
  };

  Status MapColumns(const std::vector<std::string>& headers) {
    column_count_ = headers.size();
    std::vector<std::string> names;
    for (const std::string& h : headers) names.push_back(ToFieldName(Trim(h)));
    auto find = [&](std::initializer_list<std::string_view> wanted) {
      for (std::string_view w : wanted) {
        for (size_t i = 0; i < names.size(); ++i) {
          if (names[i] == w) return i;
        }
      }
      return kNone;
    };
    time_column_ = find({"timestamp", "datetime", "ts"});
    if (time_column_ == kNone) {
      size_t date = find({"date"}), time = find({"time"});
      if (date != kNone && time != kNone) {
        time_column_ = date;
        time_of_day_column_ = time;
      } else {
        time_column_ = time != kNone ? time : date;
      }
    }
    if (time_column_ == kNone) {
      return Status::InvalidArgument(
          fmt::format("{}: no time column (name one timestamp, time, ts, datetime or date)", path_));
    }
    sensor_column_ = find({"sensor_id"});
    lat_column_ = find({"lat", "latitude"});
    lon_column_ = find({"lon", "lng", "long", "longitude"});
    std::vector<std::string> taken = {"timestamp", "sensor_id", "location"};
    for (size_t i = 0; i < names.size(); ++i) {
      if (i == time_column_ || i == time_of_day_column_ || i == sensor_column_ || i == lat_column_ ||
          i == lon_column_) {
        continue;
      }
      std::string name = names[i];
      for (int n = 2; std::find(taken.begin(), taken.end(), name) != taken.end(); ++n) {
        name = fmt::format("{}_{}", names[i], n);
      }
      taken.push_back(name);
      fields_.push_back({i, owned_names_.emplace_back(std::move(name))});
    }
    return Status::OK();
  }

  // A field column is numeric unless some present value in it is not a number.
  Status TypeColumns() {
    std::string line;
    while (lines_.Next(&line)) {
      if (Trim(line).empty() || !SplitCsvLine(line, delimiter_, &cells_) || cells_.size() != column_count_) continue;
      for (Field& f : fields_) {
        if (!f.numeric) continue;
        std::string_view cell = Trim(cells_[f.column]);
        double v = 0;
        if (!IsMissing(cell) && !ParseNumber(cell, &v)) f.numeric = false;
      }
    }
    return lines_.status();
  }

  Result<int64_t> RowTime() {
    std::string_view cell = Trim(cells_[time_column_]);
    if (time_of_day_column_ == kNone) return ParseTimestampLoose(cell);
    std::string_view time = Trim(cells_[time_of_day_column_]);
    if (time.size() >= 10 && time[4] == '-') return ParseTimestampLoose(time);  // already a full timestamp
    joined_.assign(cell);
    joined_.push_back(' ');
    joined_.append(time);
    return ParseTimestampLoose(joined_);
  }

  bool IsMissing(std::string_view cell) const {
    if (cell.empty() || EqualsNoCase(cell, "NA") || EqualsNoCase(cell, "NaN") || EqualsNoCase(cell, "null")) {
      return true;
    }
    if (options_.missing_codes.empty()) return false;
    double v = 0;
    if (!ParseNumber(cell, &v)) return false;
    return std::find(options_.missing_codes.begin(), options_.missing_codes.end(), v) != options_.missing_codes.end();
  }

  bool NumberAt(size_t column, double* value) const {
    std::string_view cell = Trim(cells_[column]);
    return !IsMissing(cell) && ParseNumber(cell, value);
  }

  ArchiveOptions options_;
  std::string path_;
  LineReader lines_;
  size_t header_line_ = 0;
  char delimiter_ = ',';
  size_t column_count_ = 0;
  size_t time_column_ = kNone;
  size_t time_of_day_column_ = kNone;
  size_t sensor_column_ = kNone;
  size_t lat_column_ = kNone;
  size_t lon_column_ = kNone;
  std::vector<Field> fields_;
  std::deque<std::string> owned_names_;  // a deque: the fields' string_views stay valid
  std::string row_;
  std::string joined_;
  std::vector<std::string> cells_;
};

}  // namespace

bool SplitCsvLine(std::string_view line, char delimiter, std::vector<std::string>* cells) {
  cells->clear();
  std::string* cell = &cells->emplace_back();
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cell->push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cell->push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == delimiter) {
      cell = &cells->emplace_back();
    } else {
      cell->push_back(c);
    }
  }
  return !quoted;
}

Result<std::unique_ptr<ArchiveReader>> OpenCsvArchive(const std::string& path, const ArchiveOptions& options) {
  auto reader = std::make_unique<CsvReader>(options);
  MARE_RETURN_IF_ERROR(reader->Open(path));
  return std::unique_ptr<ArchiveReader>(std::move(reader));
}

}  // namespace mare::feeds
