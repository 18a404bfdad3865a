#include "archive/mysql_table.h"

#include <mysql.h>
#include <simdjson.h>

#include <fmt/format.h>

#include <charconv>
#include <deque>
#include <vector>

#include "archive/csv_format.h"

namespace mare::archive {

Result<MysqlUrl> ParseMysqlUrl(std::string_view url) {
  constexpr std::string_view kScheme = "mysql://";
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument(fmt::format("{}: {} (expected mysql://USER@HOST[:PORT]/DATABASE/TABLE)", url, why));
  };
  if (!url.starts_with(kScheme)) return bad("not a mysql:// URL");
  std::string_view rest = url.substr(kScheme.size());
  MysqlUrl out;
  size_t at = rest.find('@');
  if (at == std::string_view::npos || at == 0) return bad("no user");
  out.user = std::string(rest.substr(0, at));
  if (out.user.find(':') != std::string::npos) return bad("a password in the URL: give it in MARE_MYSQL_PASSWORD instead");
  rest.remove_prefix(at + 1);
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return bad("no database");
  std::string_view host = rest.substr(0, slash);
  rest.remove_prefix(slash + 1);
  if (size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    std::string_view port = host.substr(colon + 1);
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535) return bad("a bad port");
    out.port = p;
    host = host.substr(0, colon);
  }
  if (host.empty()) return bad("no host");
  out.host = std::string(host);
  slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size()) return bad("no table");
  out.database = std::string(rest.substr(0, slash));
  out.table = std::string(rest.substr(slash + 1));
  if (out.table.find('/') != std::string::npos) return bad("more than DATABASE/TABLE after the host");
  return out;
}

namespace {

std::string QuoteIdentifier(std::string_view name) {
  std::string out = "`";
  for (char c : name) {
    if (c == '`') out += '`';
    out += c;
  }
  return out + "`";
}

bool IsNumericType(enum_field_types t) {
  switch (t) {
    case MYSQL_TYPE_DECIMAL:
    case MYSQL_TYPE_NEWDECIMAL:
    case MYSQL_TYPE_TINY:
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_LONGLONG:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_FLOAT:
    case MYSQL_TYPE_DOUBLE:
      return true;
    default:
      return false;
  }
}

class MysqlReader : public MysqlTableReader {
 public:
  explicit MysqlReader(const MysqlTableOptions& options) : options_(options) {}
  ~MysqlReader() override {
    if (result_) mysql_free_result(result_);
    if (db_) mysql_close(db_);
  }

  Status Open() {
    auto url = ParseMysqlUrl(options_.url);
    if (!url) return url.status();
    url_ = *url;
    where_ = fmt::format("mysql://{}@{}:{}/{}/{}", url_.user, url_.host, url_.port, url_.database, url_.table);
    db_ = mysql_init(nullptr);
    if (!db_) return Status::Unavailable("mysql_init failed (out of memory)");
    unsigned timeout = 10;
    mysql_options(db_, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    mysql_options(db_, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!mysql_real_connect(db_, url_.host.c_str(), url_.user.c_str(), options_.password.empty() ? nullptr : options_.password.c_str(),
                            url_.database.c_str(), url_.port, nullptr, 0)) {
      return Error("cannot connect");
    }
    table_ = QuoteIdentifier(url_.table);
    MARE_RETURN_IF_ERROR(MapColumns());
    std::string where;
    if (!options_.resume_from.empty()) {
      std::string escaped(options_.resume_from.size() * 2 + 1, '\0');
      escaped.resize(mysql_real_escape_string(db_, escaped.data(), options_.resume_from.data(), options_.resume_from.size()));
      where = fmt::format(" WHERE {} >= '{}'", QuoteIdentifier(ts_name_), escaped);
    }
    {
      std::string count = fmt::format("SELECT COUNT(*) FROM {}{}", table_, where);
      if (mysql_real_query(db_, count.data(), count.size()) != 0) return Error("cannot count the rows");
      MYSQL_RES* r = mysql_store_result(db_);
      if (!r) return Error("cannot count the rows");
      MYSQL_ROW row = mysql_fetch_row(r);
      if (row && row[0]) total_ = std::strtoll(row[0], nullptr, 10);
      mysql_free_result(r);
    }
    // In time order, streamed (mysql_use_result): memory holds a row, not the table.
    std::string select = fmt::format("SELECT * FROM {}{} ORDER BY {}", table_, where, QuoteIdentifier(ts_name_));
    if (mysql_real_query(db_, select.data(), select.size()) != 0) return Error("cannot read the table");
    result_ = mysql_use_result(db_);
    if (!result_) return Error("cannot read the table");
    return Status::OK();
  }

  Row Next(Reading* out) override {
    MYSQL_ROW row = mysql_fetch_row(result_);
    if (!row) {
      if (mysql_errno(db_) != 0) status_ = Error("reading stopped");
      return Row::kEnd;
    }
    ++line_;
    unsigned long* lengths = mysql_fetch_lengths(result_);
    out->Clear();
    auto cell = [&](size_t i) { return std::string_view(row[i], lengths[i]); };
    if (!row[ts_]) return Skip(fmt::format("no {}", ts_name_));
    last_time_text_.assign(cell(ts_));
    // Checked once the offset is applied: 1900-01-01 01:00 at +02:00 is before 1900 in UTC.
    Result<int64_t> time = CsvCellTime(TrimCell(cell(ts_)), options_.utc_offset_micros);
    if (!time) return Skip(fmt::format("{}: {}", ts_name_, time.status().message()));
    out->time_micros = *time;
    out->sensor_id = options_.sensor_id;
    if (sensor_ >= 0) {
      if (!row[sensor_]) return Skip(fmt::format("no {}", sensor_name_));
      uint64_t id = 0;
      std::string_view s = cell(static_cast<size_t>(sensor_));
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
      if (ec != std::errc() || end != s.data() + s.size() || id > kMaxSensorId) {
        return Skip(fmt::format("{} '{}' is not a number from 0 to {}", sensor_name_, s, kMaxSensorId));
      }
      out->sensor_id = id;
    }
    if (lat_ >= 0 && lon_ >= 0 && row[lat_] && row[lon_]) {
      double lat = 0, lon = 0;
      if (Number(cell(static_cast<size_t>(lat_)), &lat) && Number(cell(static_cast<size_t>(lon_)), &lon)) out->location = Location{lat, lon};
    }
    for (const Column& c : fields_) {
      if (!row[c.index]) continue;  // NULL: no value
      std::string_view v = cell(c.index);
      double d = 0;
      if (c.numeric && Number(v, &d)) {
        out->numbers.push_back({c.name, d});
      } else if (!c.numeric && !v.empty()) {
        out->texts.push_back({c.name, std::string(v)});
      }
    }
    if (json_ >= 0 && row[json_]) {
      std::string_view text = cell(static_cast<size_t>(json_));
      simdjson::dom::element doc;
      if (json_parser_.parse(text.data(), text.size()).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
        return Skip(fmt::format("{} is not a JSON object", json_name_));
      }
      for (auto [key, value] : doc.get_object()) {
        std::string name = ToFieldName(key);
        if (!IsFieldName(name)) continue;
        std::string_view interned = Intern(name);
        if (double d = 0; value.get_double().get(d) == simdjson::SUCCESS) {
          out->numbers.push_back({interned, d});
        } else if (std::string_view s; value.get_string().get(s) == simdjson::SUCCESS) {
          out->texts.push_back({interned, std::string(s)});
        }
      }
    }
    return Row::kReading;
  }

  std::string_view line_unit() const override { return "row"; }  // in the table's time order
  const std::string& last_time_text() const override { return last_time_text_; }
  int64_t total_rows() const override { return total_; }
  const std::string& ts_column() const override { return ts_name_; }

 private:
  struct Column {
    size_t index;
    std::string_view name;  // interned
    bool numeric;
  };

  Status Error(std::string_view what) {
    return Status::Unavailable(fmt::format("{}: {}: {}", where_, what, mysql_error(db_)));
  }

  Row Skip(std::string why) {
    why_ = std::move(why);
    return Row::kSkipped;
  }

  static bool Number(std::string_view s, double* out) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && end == s.data() + s.size();
  }

  std::string_view Intern(std::string_view name) {
    for (const auto& n : names_) {
      if (n == name) return n;
    }
    return names_.emplace_back(name);
  }

  // Finds the roles' columns by name (case-insensitively, as MySQL does) and makes every
  // other column a field.
  Status MapColumns() {
    std::string probe = fmt::format("SELECT * FROM {} LIMIT 0", table_);
    if (mysql_real_query(db_, probe.data(), probe.size()) != 0) return Error("cannot read the table");
    MYSQL_RES* r = mysql_store_result(db_);
    if (!r) return Error("cannot read the table's columns");
    unsigned n = mysql_num_fields(r);
    MYSQL_FIELD* fields = mysql_fetch_fields(r);
    std::vector<std::pair<std::string, enum_field_types>> columns;
    for (unsigned i = 0; i < n; ++i) columns.emplace_back(fields[i].name, fields[i].type);
    mysql_free_result(r);
    auto lower = [](std::string s) {
      for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return s;
    };
    auto find = [&](std::initializer_list<std::string_view> names) -> int {
      for (std::string_view want : names) {
        for (size_t i = 0; i < columns.size(); ++i) {
          if (lower(columns[i].first) == lower(std::string(want))) return static_cast<int>(i);
        }
      }
      return -1;
    };
    auto role = [&](const std::string& given, std::initializer_list<std::string_view> defaults, std::string_view what,
                    int* index) -> Status {
      *index = given.empty() ? find(defaults) : find({given});
      if (!given.empty() && *index < 0) {
        return Status::InvalidArgument(fmt::format("{}: no column '{}' for the {}", where_, given, what));
      }
      return Status::OK();
    };
    int ts = -1;
    MARE_RETURN_IF_ERROR(role(options_.ts_column, {"ts", "timestamp", "time", "datetime"}, "time", &ts));
    if (ts < 0) return Status::InvalidArgument(fmt::format("{}: no time column (ts, timestamp, time, datetime): name one with --ts-column", where_));
    ts_ = static_cast<size_t>(ts);
    ts_name_ = columns[ts_].first;
    MARE_RETURN_IF_ERROR(role(options_.sensor_column, {"sensor_id"}, "sensor id", &sensor_));
    if (sensor_ >= 0) sensor_name_ = columns[static_cast<size_t>(sensor_)].first;
    MARE_RETURN_IF_ERROR(role(options_.lat_column, {"lat", "latitude"}, "latitude", &lat_));
    MARE_RETURN_IF_ERROR(role(options_.lon_column, {"lon", "lng", "longitude"}, "longitude", &lon_));
    if (!options_.json_column.empty()) {
      MARE_RETURN_IF_ERROR(role(options_.json_column, {}, "JSON fields", &json_));
      json_name_ = options_.json_column;
    }
    for (size_t i = 0; i < columns.size(); ++i) {
      int index = static_cast<int>(i);
      if (i == ts_ || index == sensor_ || index == lat_ || index == lon_ || index == json_) continue;
      std::string name = ToFieldName(columns[i].first);
      if (!IsFieldName(name)) continue;
      fields_.push_back({i, Intern(name), IsNumericType(columns[i].second)});
    }
    return Status::OK();
  }

  MysqlTableOptions options_;
  MysqlUrl url_;
  std::string where_, table_;
  MYSQL* db_ = nullptr;
  MYSQL_RES* result_ = nullptr;
  size_t ts_ = 0;
  int sensor_ = -1, lat_ = -1, lon_ = -1, json_ = -1;
  std::string ts_name_, sensor_name_, json_name_;
  std::vector<Column> fields_;
  std::deque<std::string> names_;
  simdjson::dom::parser json_parser_;
  std::string last_time_text_;
  int64_t total_ = -1;
};

}  // namespace

Result<std::unique_ptr<MysqlTableReader>> OpenMysqlTable(const MysqlTableOptions& options) {
  auto reader = std::make_unique<MysqlReader>(options);
  MARE_RETURN_IF_ERROR(reader->Open());
  return std::unique_ptr<MysqlTableReader>(std::move(reader));
}

}  // namespace mare::archive
