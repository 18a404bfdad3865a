#include "archive/ndbc.h"

#include <fmt/format.h>

#include <charconv>
#include <deque>

#include "reading/timestamp.h"

namespace mare::archive {

namespace {

struct KnownColumn {
  std::string_view header;
  std::string_view field;
  double missing;
};

constexpr KnownColumn kKnownColumns[] = {
    {"WDIR", "wind_direction", 999},       {"WD", "wind_direction", 999},
    {"WSPD", "wind_speed", 99.0},          {"GST", "wind_gust", 99.0},
    {"WVHT", "wave_height", 99.00},        {"DPD", "dominant_wave_period", 99.00},
    {"APD", "average_wave_period", 99.00}, {"MWD", "mean_wave_direction", 999},
    {"PRES", "pressure", 9999.0},          {"BAR", "pressure", 9999.0},
    {"ATMP", "temperature", 999.0},        {"WTMP", "water_temperature", 999.0},
    {"DEWP", "dew_point", 999.0},          {"VIS", "visibility", 99.0},
    {"TIDE", "tide", 99.00},
};

enum class Kind { kYear, kMonth, kDay, kHour, kMinute, kField };

struct Column {
  Kind kind = Kind::kField;
  std::string_view field;
  bool has_code = false;
  double missing = 0;
};

// "99", "999.0", "99.00", "9999": the all-9s codes of columns NDBC hasn't told us about.
bool IsNinesCode(std::string_view token) {
  size_t nines = 0;
  while (nines < token.size() && token[nines] == '9') ++nines;
  if (nines < 2) return false;
  std::string_view rest = token.substr(nines);
  if (rest.empty()) return true;
  if (rest.front() != '.') return false;
  return rest.find_first_not_of('0', 1) == std::string_view::npos;
}

void SplitWhitespace(std::string_view line, std::vector<std::string_view>* tokens) {
  tokens->clear();
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) tokens->push_back(line.substr(start, i - start));
  }
}

class NdbcReader : public ArchiveReader {
 public:
  explicit NdbcReader(const ArchiveOptions& options) : options_(options) {}

  Status Open(const std::string& path) {
    MARE_RETURN_IF_ERROR(lines_.Open(path));
    std::string header;
    do {
      if (!lines_.Next(&header)) {
        MARE_RETURN_IF_ERROR(lines_.status());
        return Status::InvalidArgument(path + ": no NDBC header line");
      }
    } while (header.find_first_not_of(" \t") == std::string::npos);
    std::vector<std::string_view> names;
    SplitWhitespace(header, &names);
    bool year = false, month = false, day = false, hour = false;
    for (std::string_view name : names) {
      if (!name.empty() && name.front() == '#') name.remove_prefix(1);
      Column c;
      if (name == "YY" || name == "YYYY") {
        c.kind = Kind::kYear;
        year = true;
      } else if (name == "MM") {
        c.kind = Kind::kMonth;
        month = true;
      } else if (name == "DD") {
        c.kind = Kind::kDay;
        day = true;
      } else if (name == "hh") {
        c.kind = Kind::kHour;
        hour = true;
      } else if (name == "mm") {
        c.kind = Kind::kMinute;
      } else {
        for (const KnownColumn& k : kKnownColumns) {
          if (k.header == name) {
            c.field = k.field;
            c.has_code = true;
            c.missing = k.missing;
          }
        }
        if (!c.has_code) c.field = owned_names_.emplace_back(ToFieldName(name));
      }
      columns_.push_back(c);
    }
    if (!year || !month || !day || !hour) {
      return Status::InvalidArgument(
          fmt::format("{}: NDBC header must name YY (or YYYY), MM, DD and hh columns: '{}'", path, header));
    }
    return Status::OK();
  }

  Row Next(Reading* out) override {
    while (lines_.Next(&row_)) {
      line_ = lines_.line_number();
      std::string_view text = row_;
      size_t first = text.find_first_not_of(" \t");
      if (first == std::string_view::npos || text[first] == '#') continue;  // blank, units line
      SplitWhitespace(text, &tokens_);
      if (tokens_.size() != columns_.size()) {
        why_ = fmt::format("expected {} columns, found {}", columns_.size(), tokens_.size());
        return Row::kSkipped;
      }
      int date[5] = {0, 0, 0, 0, 0};  // year, month, day, hour, minute
      bool date_ok = true;
      out->Clear();
      for (size_t i = 0; i < columns_.size(); ++i) {
        const Column& c = columns_[i];
        std::string_view token = tokens_[i];
        if (c.kind != Kind::kField) {
          int v = 0;
          auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
          if (ec != std::errc() || ptr != token.data() + token.size()) date_ok = false;
          date[static_cast<int>(c.kind)] = v;
          continue;
        }
        double value = 0;
        if (token == "MM" || !ParseNumber(token, &value)) continue;
        if (c.has_code ? value == c.missing : IsNinesCode(token)) continue;
        out->numbers.push_back({c.field, value});
      }
      if (date_ok && date[0] < 100) date[0] += 1900;  // two-digit years end in 1998
      Result<int64_t> time = date_ok ? CivilToMicros(date[0], date[1], date[2], date[3], date[4], 0)
                                     : Result<int64_t>(Status::InvalidArgument("bad date"));
      if (!time) {
        why_ = fmt::format("unparseable date in '{}'", row_);
        return Row::kSkipped;
      }
      if (!InReadingYears(*time)) {  // NDBC files are UTC: the written year is the UTC one
        why_ = fmt::format("year {} outside 1900 to 9999 in '{}'", date[0], row_);
        return Row::kSkipped;
      }
      out->time_micros = *time;
      out->sensor_id = options_.sensor_id;
      out->location = options_.location;
      return Row::kReading;
    }
    status_ = lines_.status();
    return Row::kEnd;
  }

 private:
  ArchiveOptions options_;
  LineReader lines_;
  std::vector<Column> columns_;
  std::deque<std::string> owned_names_;  // a deque: the fields' string_views stay valid
  std::string row_;
  std::vector<std::string_view> tokens_;
};

}  // namespace

Result<std::unique_ptr<ArchiveReader>> OpenNdbcArchive(const std::string& path, const ArchiveOptions& options) {
  auto reader = std::make_unique<NdbcReader>(options);
  MARE_RETURN_IF_ERROR(reader->Open(path));
  return std::unique_ptr<ArchiveReader>(std::move(reader));
}

}  // namespace mare::archive
