#include "sinks/clickhouse/clickhouse_sink.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <numeric>
#include <span>

#include "common/time.h"
#include "sinks/clickhouse/clickhouse_sink_metrics.h"
#include "sinks/clickhouse/insert_error.h"
#include "sinks/clickhouse/native_block.h"
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
  // How its rows are laid out as a Native block, in its key's order.
  virtual Result<clickhouse::NativeBlock> Block() const = 0;
  // Appends the record as one row: Corruption when unreadable, InvalidArgument when the table
  // cannot hold it.
  virtual Status Append(const log::ConsumedRecord& record, std::string* out) = 0;
};

class ReadingRows : public RowMaker {
 public:
  explicit ReadingRows(const ClickHouseSinkOptions& o) : reader_(o.max_reading_bytes), table_(o.numeric_fields) {}
  const char* table() const override { return "readings"; }
  std::vector<std::string> Create(std::string_view database) const override { return {table_.Create(database)}; }
  std::string ColumnList() const override { return table_.ColumnList(); }
  std::vector<std::pair<std::string, std::string>> Columns() const override { return table_.columns(); }
  Result<clickhouse::NativeBlock> Block() const override {
    return clickhouse::NativeBlock::Make(table_.columns(), clickhouse::ReadingsTable::kKeyColumns);
  }
  Status Append(const log::ConsumedRecord& record, std::string* out) override {
    auto read = reader_.Read(record);  // from the numbers the log carries, when it does
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
  Result<clickhouse::NativeBlock> Block() const override {
    return clickhouse::NativeBlock::Make(table_.columns(), clickhouse::RollupsTable::kKeyColumns);
  }
  Status Append(const log::ConsumedRecord& record, std::string* out) override {
    Status s = reader_.Read(record.value, &message_);
    if (!s.ok()) return Status::Corruption(fmt::format("rollup record: {}: {}", s.message(), record.value.substr(0, 200)));
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

// A batch of rows: one RowBinary body with where each row ends, and the raw records (for the
// dead-letter file), in the order read; once complete, the rows in the table's key order and as
// one Native block. Kept from batch to batch, so that their buffers are reused.
struct RowBatch {
  std::string body;
  std::vector<size_t> row_ends;
  std::string raws;
  std::vector<size_t> raw_ends;
  // Arrange's: the rows in key order (order[i] is the i-th row by key), and all of them in that
  // order as a Native block (empty when they could not be laid out: then sent in RowBinary).
  bool complete = false;
  std::vector<uint32_t> order;
  std::string native;

  size_t rows() const { return row_ends.size(); }
  // The record of the row at `place` in key order.
  std::string_view Raw(size_t place) const {
    size_t row = order[place];
    size_t from = row == 0 ? 0 : raw_ends[row - 1];
    return std::string_view(raws).substr(from, raw_ends[row] - from);
  }
  // The rows at places [begin, end) in key order, RowBinary, into *out.
  void RowBinary(size_t begin, size_t end, std::string* out) const {
    out->clear();
    for (size_t i = begin; i < end; ++i) {
      size_t row = order[i];
      size_t from = row == 0 ? 0 : row_ends[row - 1];
      out->append(body, from, row_ends[row] - from);
    }
  }
  void Clear() {
    body.clear();
    row_ends.clear();
    raws.clear();
    raw_ends.clear();
    complete = false;
    order.clear();
    native.clear();
  }
};

// One topic into one table. Pipelined: the next batch is encoded (Add) while the sealed one is put
// in key order, laid out as a Native block and taken by ClickHouse (Flush), sent as ranges of rows: the whole batch first; a range ClickHouse refuses for its data is split in
// two until the refused rows are alone. In key order, because ClickHouse sorts each insert by
// the key unless it already is, and in Native, because it then only copies columns: together
// they take most of the server's work on an insert away (docs/formats/clickhouse.md).
class TableDestination : public Destination {
 public:
  TableDestination(const ClickHouseSinkOptions& o, std::string topic, std::unique_ptr<RowMaker> maker,
                   clickhouse::NativeBlock block, DeadLetter* dl, metrics::Registry* r)
      : options_(o),
        topic_(std::move(topic)),
        maker_(std::move(maker)),
        dead_letter_(dl),
        client_({.url = o.url, .user = o.user, .password = o.password, .timeout_us = o.timeout_us, .gzip = o.gzip}),
        insert_path_(InsertPath("Native")),
        insert_row_binary_path_(InsertPath("RowBinary")),
        block_(block),
        split_block_(std::move(block)),
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
      size_t before = pending_.body.size();
      Status s = maker_->Append(r, &pending_.body);
      if (!s.ok()) {
        pending_.body.resize(before);
        DeadLetterRecord(r.value, s.IsCorruption() ? "unreadable" : "clickhouse_unrepresentable", s.message());
        continue;
      }
      pending_.row_ends.push_back(pending_.body.size());
      pending_.raws.append(r.value);
      pending_.raw_ends.push_back(pending_.raws.size());
    }
  }

  bool Pipelined() const override { return true; }

  void Seal(int) override {
    sealed_.Clear();  // flushed: nothing of it is left to send
    std::swap(pending_, sealed_);
  }

  void Forget(int) override {
    sending_ = false;
    ranges_.clear();
    sealed_.Clear();
  }

  Status Flush(int) override {
    if (tables_missing_) {
      MARE_RETURN_IF_ERROR(CreateTable());
      tables_missing_ = false;
    }
    if (!sending_) {
      sending_ = true;
      // On the writer's thread: the reader, which reads and encodes the next batch meanwhile, is
      // the longer stage (bench/sinks.py).
      Arrange(&sealed_);
      ranges_.clear();
      if (sealed_.rows() > 0) ranges_.push_back({0, sealed_.rows()});
    }
    while (!ranges_.empty()) {
      auto [begin, end] = ranges_.back();
      auto r = SendRows(begin, end);
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
        DeadLetterRecord(sealed_.Raw(begin), "clickhouse_rejected", e.message);
      } else {
        size_t mid = begin + (end - begin) / 2;
        ranges_.push_back({mid, end});  // the first half is sent first
        ranges_.push_back({begin, mid});
      }
    }
    sending_ = false;
    sealed_.Clear();
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
  std::string InsertPath(std::string_view format) const {
    return fmt::format("/?query={}", UrlEscape(fmt::format("INSERT INTO {}.{} {} FORMAT {}", QuoteName(options_.database),
                                                           maker_->table(), maker_->ColumnList(), format)));
  }

  // Puts the batch's rows in key order and lays them out as one Native block, once.
  void Arrange(RowBatch* b) {
    if (b->complete) return;
    b->complete = true;
    if (b->rows() == 0) return;
    Status s = block_.Order(b->body, b->row_ends, &b->order);
    if (s.ok()) s = block_.Encode(b->body, b->row_ends, b->order, &b->native);
    if (!s.ok()) {
      // The sink's own rows: a bug, not the data's fault. They still go, as read, in RowBinary.
      spdlog::error("clickhouse sink: table {}: the batch cannot be laid out in Native ({}); sending it in RowBinary",
                    maker_->table(), s.ToString());
      b->order.resize(b->rows());
      std::iota(b->order.begin(), b->order.end(), 0);
      b->native.clear();
    }
  }

  // The rows at places [begin, end) of the sealed batch (key order) as one insert.
  Result<HttpClient::Response> SendRows(size_t begin, size_t end) {
    if (!sealed_.native.empty()) {
      if (begin == 0 && end == sealed_.rows()) return Send(insert_path_, sealed_.native);
      auto part = std::span<const uint32_t>(sealed_.order).subspan(begin, end - begin);
      if (split_block_.Encode(sealed_.body, sealed_.row_ends, part, &split_).ok()) return Send(insert_path_, split_);
    }
    sealed_.RowBinary(begin, end, &split_);  // as in Arrange
    return Send(insert_row_binary_path_, split_);
  }

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

  void DeadLetterRecord(std::string_view raw, std::string_view reason, std::string_view detail) {
    dead_lettered_.Add();
    if (dead_letter_) dead_letter_->Add("clickhouse", reason, fmt::format("table {}: {}", maker_->table(), detail), raw);
  }

  const ClickHouseSinkOptions options_;
  const std::string topic_;
  std::unique_ptr<RowMaker> maker_;
  DeadLetter* dead_letter_;
  HttpClient client_;
  const std::string insert_path_;              // FORMAT Native
  const std::string insert_row_binary_path_;  // FORMAT RowBinary
  // The writer's: one for whole batches (Arrange), one for their parts after a refusal, as each
  // keeps the buffers of its last block.
  clickhouse::NativeBlock block_;
  clickhouse::NativeBlock split_block_;
  std::string split_;  // the writer's: a part of the sealed batch
  bool tables_missing_ = false;
  // Add's (the follower's reader thread), then Flush's (its writer thread).
  RowBatch pending_;
  RowBatch sealed_;
  bool sending_ = false;  // Flush began on the sealed batch: ranges_ says what is left of it
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
  const LogFollowerMetrics names{chm::kRecordsRead, chm::kErrors, chm::kLagRecords, chm::kBatchSeconds,
                                 chm::kDuplicatesDropped, chm::kPartitions, chm::kRebalances};
  auto impl = std::make_unique<Impl>();
  auto follow = [&](const std::string& topic, std::unique_ptr<RowMaker> maker) -> Status {
    auto block = maker->Block();
    if (!block.ok()) return block.status();
    LogFollowerOptions fo{.name = "clickhouse sink",
                          .topic = topic,
                          .consumer = options.consumer,
                          .server = options.url,
                          .destination = options.url + "/" + options.database,
                          .batch = options.batch,
                          .max_delay_us = options.max_delay_us,
                          .retry_initial_us = options.retry_initial_us,
                          .retry_max_us = options.retry_max_us,
                          .revoke_timeout_us = options.revoke_timeout_us,
                          .dedup = topic == "raw" ? options.raw_dedup : log::DuplicateFilterOptions{}};
    impl->followers.push_back(std::make_unique<LogFollower>(
        std::move(fo),
        std::make_unique<TableDestination>(options, topic, std::move(maker), std::move(*block), dead_letter, registry),
        log, names, registry));
    return Status::OK();
  };
  if (options.readings) MARE_RETURN_IF_ERROR(follow("raw", std::make_unique<ReadingRows>(options)));
  if (options.rollups) MARE_RETURN_IF_ERROR(follow("rollups", std::make_unique<RollupRows>()));
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
