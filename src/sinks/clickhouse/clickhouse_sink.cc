#include "sinks/clickhouse/clickhouse_sink.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "common/time.h"
#include "sinks/clickhouse/clickhouse_sink_metrics.h"
#include "sinks/clickhouse/insert_error.h"
#include "sinks/clickhouse/row_binary.h"
#include "sinks/clickhouse/tables.h"
#include "sinks/http_client.h"
#include "sinks/log_follower.h"
#include "sinks/rollup_message.h"
#include "sinks/raw_reading.h"

namespace mare::sinks {
namespace {

namespace chm = clickhouse_sink_metrics;
using clickhouse::QuoteName;
using clickhouse::QuoteText;

// How one topic's records become rows of one table.
class RowMaker {
 public:
  virtual ~RowMaker() = default;
  virtual const char* table() const = 0;
  // The statements that make the table (after the database exists).
  virtual std::vector<std::string> Create(std::string_view database) const = 0;
  virtual std::string ColumnList() const = 0;
  // Columns that must exist: (name, type); those missing from an older table are added.
  virtual std::vector<std::pair<std::string, std::string>> Columns() const { return {}; }
  // Appends the record as one row: Corruption when unreadable, InvalidArgument when the table
  // cannot hold it.
  virtual Status Append(std::string_view record, std::string* out) = 0;
};

class ReadingRows : public RowMaker {
 public:
  explicit ReadingRows(const ClickHouseSinkOptions& o) : reader_(o.max_reading_bytes), table_(o.numeric_fields) {}
  const char* table() const override { return "readings"; }
  std::vector<std::string> Create(std::string_view database) const override { return {table_.Create(database)}; }
  std::string ColumnList() const override { return table_.ColumnList(); }
  std::vector<std::pair<std::string, std::string>> Columns() const override { return table_.columns(); }
  Status Append(std::string_view record, std::string* out) override {
    auto read = reader_.Read(record);
    if (!read.ok()) return read.status();
    return table_.Append(**read, out);
  }

 private:
  RawReadingReader reader_;
  clickhouse::ReadingsTable table_;
};

class RollupRows : public RowMaker {
 public:
  const char* table() const override { return "rollups"; }
  std::vector<std::string> Create(std::string_view database) const override { return {table_.Create(database)}; }
  std::string ColumnList() const override { return table_.ColumnList(); }
  Status Append(std::string_view record, std::string* out) override {
    Status s = reader_.Read(record, &message_);
    if (!s.ok()) return Status::Corruption(fmt::format("rollup record: {}: {}", s.message(), record.substr(0, 200)));
    return table_.Append(message_, out);
  }

 private:
  RollupReader reader_;
  RollupMessage message_;
  clickhouse::RollupsTable table_;
};

std::string UrlEscape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.') {
      out.push_back(static_cast<char>(c));
    } else {
      fmt::format_to(std::back_inserter(out), "%{:02X}", c);
    }
  }
  return out;
}

// One topic into one table. Each batch is kept as one RowBinary body with where each row ends
// (and the raw records, for the dead-letter file), and sent as ranges of rows: the whole batch
// first; a range ClickHouse refuses for its data is split in two until the refused rows are alone.
class TableDestination : public Destination {
 public:
  TableDestination(const ClickHouseSinkOptions& o, std::string topic, std::unique_ptr<RowMaker> maker, DeadLetter* dl,
                   metrics::Registry* r)
      : options_(o),
        topic_(std::move(topic)),
        maker_(std::move(maker)),
        dead_letter_(dl),
        client_({.url = o.url, .user = o.user, .password = o.password, .timeout_us = o.timeout_us, .gzip = o.gzip}),
        insert_path_(fmt::format("/?query={}", UrlEscape(fmt::format("INSERT INTO {}.{} {} FORMAT RowBinary",
                                                                     QuoteName(o.database), maker_->table(),
                                                                     maker_->ColumnList())))),
        written_(r->GetCounter(chm::kRowsWritten, {{"topic", topic_}})),
        dead_lettered_(r->GetCounter(chm::kRowsDeadLettered, {{"topic", topic_}})),
        inserts_(r->GetCounter(chm::kInserts, {{"topic", topic_}})),
        up_(r->GetGauge(chm::kUp, {{"topic", topic_}})),
        request_bytes_(r->GetCounter(chm::kRequestBytes, {{"topic", topic_}})) {}

  Status Prepare(int32_t partitions, std::map<int32_t, int64_t>* next) override {
    MARE_RETURN_IF_ERROR(Query("CREATE DATABASE IF NOT EXISTS " + QuoteName(options_.database)).status());
    MARE_RETURN_IF_ERROR(Query(clickhouse::CreateSinkOffsets(options_.database)).status());
    MARE_RETURN_IF_ERROR(CreateTable());
    auto rows = Query(fmt::format("SELECT `partition`, max(next_offset) FROM {}.sink_offsets WHERE consumer = {} AND "
                                  "topic = {} GROUP BY `partition` FORMAT TabSeparated",
                                  QuoteName(options_.database), QuoteText(options_.consumer), QuoteText(topic_)));
    if (!rows.ok()) return rows.status();
    for (int32_t p = 0; p < partitions; ++p) (*next)[p] = 0;
    std::string_view text = *rows;
    while (!text.empty()) {
      size_t eol = text.find('\n');
      std::string_view line = text.substr(0, eol);
      text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
      size_t tab = line.find('\t');
      int32_t p = -1;
      int64_t n = -1;
      if (tab == std::string_view::npos || std::from_chars(line.data(), line.data() + tab, p).ec != std::errc() ||
          std::from_chars(line.data() + tab + 1, line.data() + line.size(), n).ec != std::errc()) {
        return Status::Corruption(fmt::format("sink_offsets: unreadable row '{}'", line));
      }
      if (p < partitions) (*next)[p] = n;
    }
    return Status::OK();
  }

  void Add(const std::vector<log::ConsumedRecord>& records) override {
    for (const log::ConsumedRecord& r : records) {
      size_t before = body_.size();
      Status s = maker_->Append(r.value, &body_);
      if (!s.ok()) {
        body_.resize(before);
        DeadLetterRecord(r.value, s.IsCorruption() ? "unreadable" : "clickhouse_unrepresentable", s.message());
        continue;
      }
      row_ends_.push_back(body_.size());
      raws_.append(r.value);
      raw_ends_.push_back(raws_.size());
    }
  }

  Status Flush() override {
    if (tables_missing_) {
      MARE_RETURN_IF_ERROR(CreateTable());
      tables_missing_ = false;
    }
    if (!sending_) {
      sending_ = true;
      ranges_.clear();
      if (!row_ends_.empty()) ranges_.push_back({0, row_ends_.size()});
    }
    while (!ranges_.empty()) {
      auto [begin, end] = ranges_.back();
      size_t from = begin == 0 ? 0 : row_ends_[begin - 1];
      auto r = Send(insert_path_, std::string_view(body_).substr(from, row_ends_[end - 1] - from));
      if (!r.ok()) return r.status();
      if (r->status == 200) {
        ranges_.pop_back();
        inserts_.Add();
        written_.Add(end - begin);
        continue;
      }
      InsertError e = ReadInsertError(r->status, r->body);
      if (e.code == kUnknownTable) tables_missing_ = true;
      if (!e.rows_refused) return Status::Unavailable(fmt::format("insert into {}: {}", maker_->table(), e.message));
      ranges_.pop_back();
      if (end - begin == 1) {
        DeadLetterRecord(Raw(begin), "clickhouse_rejected", e.message);
      } else {
        size_t mid = begin + (end - begin) / 2;
        ranges_.push_back({mid, end});  // the first half is sent first
        ranges_.push_back({begin, mid});
      }
    }
    sending_ = false;
    body_.clear();
    row_ends_.clear();
    raws_.clear();
    raw_ends_.clear();
    return Status::OK();
  }

  Status SavePositions(const std::map<int32_t, int64_t>& next) override {
    std::string rows;
    auto now = static_cast<uint32_t>(NowMicros() / 1'000'000);
    for (const auto& [p, n] : next) {
      row_binary::AppendString(&rows, options_.consumer);
      row_binary::AppendString(&rows, topic_);
      row_binary::AppendFixed<uint32_t>(&rows, static_cast<uint32_t>(p));
      row_binary::AppendFixed<int64_t>(&rows, n);
      row_binary::AppendFixed<uint32_t>(&rows, now);
    }
    std::string path = fmt::format(
        "/?query={}", UrlEscape(fmt::format("INSERT INTO {}.sink_offsets FORMAT RowBinary", QuoteName(options_.database))));
    auto r = Send(path, rows);
    if (!r.ok()) return r.status();
    if (r->status != 200) return Status::Unavailable("save position: " + ReadInsertError(r->status, r->body).message);
    return Status::OK();
  }

 private:
  Result<HttpClient::Response> Send(const std::string& path, std::string_view body) {
    uint64_t before = client_.bytes_sent();
    auto r = client_.Send("POST", path, body, "application/octet-stream");
    request_bytes_.Add(client_.bytes_sent() - before);
    up_.Set(r.ok() ? 1 : 0);
    return r;
  }

  // A statement; its answer's text, or Unavailable with ClickHouse's message.
  Result<std::string> Query(const std::string& sql) {
    auto r = Send("/", sql);
    if (!r.ok()) return r.status();
    if (r->status != 200) {
      return Status::Unavailable(fmt::format("{}: {}", sql.substr(0, 80), ReadInsertError(r->status, r->body).message));
    }
    return std::move(r->body);
  }

  Status CreateTable() {
    for (const std::string& sql : maker_->Create(options_.database)) MARE_RETURN_IF_ERROR(Query(sql).status());
    auto wanted = maker_->Columns();
    if (wanted.empty()) return Status::OK();
    // A table made by an earlier start with other numeric fields gets the new ones' columns
    // (18.16 has no ADD COLUMN IF NOT EXISTS).
    auto have = Query(fmt::format("SELECT name FROM system.columns WHERE database = {} AND table = {} FORMAT TabSeparated",
                                  QuoteText(options_.database), QuoteText(maker_->table())));
    if (!have.ok()) return have.status();
    std::string previous = "sensor_id";
    for (const auto& [name, type] : wanted) {
      // TabSeparated escapes names; those the sink makes are plain words, so a line compares as is.
      bool present = ("\n" + *have).find("\n" + name + "\n") != std::string::npos;
      if (!present) {
        MARE_RETURN_IF_ERROR(Query(fmt::format("ALTER TABLE {}.{} ADD COLUMN {} {} AFTER {}", QuoteName(options_.database),
                                               maker_->table(), QuoteName(name), type, QuoteName(previous)))
                                 .status());
      }
      previous = name;
    }
    return Status::OK();
  }

  std::string_view Raw(size_t row) const {
    size_t from = row == 0 ? 0 : raw_ends_[row - 1];
    return std::string_view(raws_).substr(from, raw_ends_[row] - from);
  }

  void DeadLetterRecord(std::string_view raw, std::string_view reason, std::string_view detail) {
    dead_lettered_.Add();
    if (dead_letter_) dead_letter_->Add("clickhouse", reason, fmt::format("table {}: {}", maker_->table(), detail), raw);
  }

  const ClickHouseSinkOptions options_;
  const std::string topic_;
  std::unique_ptr<RowMaker> maker_;
  DeadLetter* dead_letter_;
  HttpClient client_;
  const std::string insert_path_;
  bool tables_missing_ = false;
  bool sending_ = false;  // Flush began on the pending batch: ranges_ says what is left of it

  // The pending batch, reused from batch to batch.
  std::string body_;               // its rows, RowBinary
  std::vector<size_t> row_ends_;   // where each row ends in body_
  std::string raws_;               // the records they came from
  std::vector<size_t> raw_ends_;
  std::vector<std::pair<size_t, size_t>> ranges_;  // rows [first, second) still to send, last sent first

  metrics::Counter& written_;
  metrics::Counter& dead_lettered_;
  metrics::Counter& inserts_;
  metrics::Gauge& up_;
  metrics::Counter& request_bytes_;
};

}  // namespace

struct ClickHouseSink::Impl {
  std::vector<std::unique_ptr<LogFollower>> followers;  // raw, then rollups
  bool stopped = false;
};

ClickHouseSink::ClickHouseSink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<ClickHouseSink>> ClickHouseSink::Start(const ClickHouseSinkOptions& options, log::Log* log,
                                                              DeadLetter* dead_letter, metrics::Registry* registry) {
  if (!options.readings && !options.rollups) {
    return Status::InvalidArgument("sink.clickhouse: neither readings nor rollups is on: nothing to follow");
  }
  if (options.readings && log->Partitions("raw") == 0) return Status::NotFound("no topic raw in the log");
  if (options.rollups && log->Partitions("rollups") == 0) return Status::NotFound("no topic rollups in the log");
  const LogFollowerMetrics names{chm::kRecordsRead, chm::kErrors, chm::kLagRecords, chm::kBatchSeconds};
  auto impl = std::make_unique<Impl>();
  auto follow = [&](const std::string& topic, std::unique_ptr<RowMaker> maker) {
    LogFollowerOptions fo{.name = "clickhouse sink",
                          .topic = topic,
                          .consumer = options.consumer,
                          .server = options.url,
                          .batch = options.batch,
                          .max_delay_us = options.max_delay_us,
                          .retry_initial_us = options.retry_initial_us,
                          .retry_max_us = options.retry_max_us};
    impl->followers.push_back(std::make_unique<LogFollower>(
        std::move(fo), std::make_unique<TableDestination>(options, topic, std::move(maker), dead_letter, registry), log,
        names, registry));
  };
  if (options.readings) follow("raw", std::make_unique<ReadingRows>(options));
  if (options.rollups) follow("rollups", std::make_unique<RollupRows>());
  for (auto& f : impl->followers) MARE_RETURN_IF_ERROR(f->Start());  // the destructor stops those started
  return std::unique_ptr<ClickHouseSink>(new ClickHouseSink(std::move(impl)));
}

void ClickHouseSink::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  for (auto& f : impl_->followers) f->Stop();
}

ClickHouseSink::~ClickHouseSink() { Stop(); }

std::vector<SinkHealth> ClickHouseSink::health() const {
  std::vector<SinkHealth> out;
  for (const auto& f : impl_->followers) out.push_back(f->health());
  return out;
}

}  // namespace mare::sinks
