// ForecastTable: the store's copy of the forecasts topic, the rows SQL reads as table
// `forecasts` (one per sensor, field, issue and target hour, as MariaDB's forecast_hour). The
// rows live in a journal (<store dir>/forecasts.journal, docs/formats/store.md) that keeps every
// applied record with its topic offset; memory holds only an index of it (per issue: where its
// lines are, its target hours' span), and a query reads the lines of the issues it needs. So a
// restart reads the journal back and resumes the topic after the last record it holds: rows
// upserted by key, none lost, none twice. With a retention, an issue goes once all its target
// hours are past it, from the index at once and from the journal when the journal is rewritten
// without them (crash-safely: temp file, rename).
//
//   auto table = ForecastTable::Open(dir, /*read_only=*/false, retention_us, NowMicros());
//   (*table)->Apply(records, &skipped);   // records of the forecasts topic, journaled first
//   (*table)->ApplyRetention(NowMicros());                        // now and then (the feeder)
//   auto snap = (*table)->GetSnapshot({.sensors = {7}});          // rows for a query
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <tuple>
#include <vector>

#include "common/status.h"
#include "log/log.h"
#include "reading/forecast_row.h"
#include "store/schema.h"
#include "store/snapshot.h"

namespace mare::store {

// The table's columns besides sensor_id and target_hour (which a snapshot's rows carry as their
// sensor and timestamp): these field ids index Snapshot::fields and its RowBuffers' columns.
namespace forecast_fields {
inline constexpr uint32_t kField = 0;      // text
inline constexpr uint32_t kIssuedAt = 1;   // number: UTC microseconds (exact below 2^53)
inline constexpr uint32_t kValue = 2;      // number
inline constexpr uint32_t kLower = 3;      // number
inline constexpr uint32_t kUpper = 4;      // number
inline constexpr uint32_t kModel = 5;      // text
inline constexpr uint32_t kDayAhead = 6;   // number: 1 or 0
}  // namespace forecast_fields

class ForecastTable {
 public:
  // Reads <dir>/forecasts.journal (absent: an empty table). A torn or corrupt tail (a crash
  // mid-write) ends the journal there: it is cut off unless read_only, and its records are read
  // again from the topic. A journal.tmp left by a rewrite that a crash interrupted is deleted
  // (the journal it was to replace is whole). retention_us > 0: issues past it at now_us are
  // left out (ApplyRetention); 0 keeps every issue.
  static Result<std::unique_ptr<ForecastTable>> Open(const std::string& dir, bool read_only, int64_t retention_us = 0,
                                                     int64_t now_us = 0);
  ~ForecastTable();

  // Appends each record that reads as a forecast to the journal, then upserts its rows; a
  // record that does not is counted in *skipped and left out. One writer thread.
  Status Apply(const std::vector<log::ConsumedRecord>& records, uint64_t* skipped);
  // fdatasync of the journal (its loss costs only a re-read of the topic: it holds its offsets).
  Status Sync();
  // Drops the issues whose every target hour is past the retention (hour h is past once
  // h + 1h <= min(now_us, the newest issued_at held) - retention: the newest issue and those
  // within the retention before it always stay), from what queries see at once; once at least half of
  // the journal's bytes are lines of dropped issues, rewrites it without them (new file,
  // fsync, rename, fsync of the directory). Returns the rows dropped. The writer thread.
  Result<size_t> ApplyRetention(int64_t now_us);
  // Bytes of the journal, and how many of them are lines of issues already dropped.
  int64_t journal_bytes() const { return size_; }
  int64_t dead_journal_bytes() const { return dead_bytes_; }
  // The journal's file (<data dir>/forecasts.journal): what the table holds on disk.
  const std::string& journal_path() const { return path_; }

  // The topic's next offset per partition after what the journal holds (size: the partitions seen).
  std::vector<int64_t> next_offsets() const;
  size_t rows() const;

  // The columns' names and types, by field id (forecast_fields).
  static const std::vector<Field>& Fields();
  // Rows of these sensors and target hours, one RowBuffer per sensor and target hour, ordered
  // by sensor then hour, rows within by field then issued_at. Its status is not OK when a
  // journal line it needs cannot be read back (the file damaged or cut since it was read).
  std::shared_ptr<Snapshot> GetSnapshot(const SnapshotFilter& filter) const;

 private:
  ForecastTable(std::string path, bool read_only, int64_t retention_us)
      : path_(std::move(path)), read_only_(read_only), retention_us_(retention_us) {}
  Status Load(int64_t now_us);
  // Where a record's line is in the journal.
  struct LineRef {
    int64_t at = 0;
    uint32_t bytes = 0;
  };
  // Indexes the rows of one record, whose journal line is `line`.
  void Upsert(const std::vector<ForecastRow>& rows, LineRef line);
  size_t DropPast(int64_t now_us);
  // Writes the journal anew with only the lines of kept issues, after one position line per
  // partition, and goes on appending to it.
  Status RewriteJournal();
  void NoteOffset(int32_t partition, int64_t offset);

  // Ordered by sensor, field name, issued_at. The field points at its name in fields_ (a
  // handful of names, each kept once, where a std::string in every key took 32 bytes of each
  // issue); a lookup's key may point at any string of that name.
  struct IssueKey {
    uint32_t sensor_id;
    const std::string* field;
    int64_t issued_at_us;
    bool operator<(const IssueKey& o) const {
      if (sensor_id != o.sensor_id) return sensor_id < o.sensor_id;
      if (int c = field->compare(*o.field); c != 0) return c < 0;
      return issued_at_us < o.issued_at_us;
    }
  };
  // An issue's place in the journal; its rows are read from there when a query needs them, so
  // memory costs this much per issue, not per row: with its key and the map's node ~114 bytes
  // (bench/forecast_table_memory.py; 162 with a string per key), 10,000 series' hourly issues
  // under the 35 days' retention ~0.96 GB.
  struct Issue {
    LineRef line;  // its newest record's line
    // Older records of the same issue (one read again after a crash): usually none, so a
    // pointer (8 bytes) rather than a vector (24) in every issue; their rows count where
    // line's have none.
    std::unique_ptr<std::vector<LineRef>> earlier;
    int64_t first_hour_us = 0, last_hour_us = 0;  // the span of its target hours
    uint32_t hours = 0;                           // its distinct target hours: its rows
    int64_t journal_bytes() const {
      int64_t n = line.bytes;
      if (earlier) {
        for (const LineRef& l : *earlier) n += l.bytes;
      }
      return n;
    }
  };
  // The rows of an issue as its lines give them, the later line's row for a target hour
  // replacing the earlier's; sorted by target hour. `fd`: the journal as of the index.
  static Status ReadIssueRows(int fd, const std::string& path, const Issue& issue, std::vector<ForecastRow>* rows);

  const std::string path_;
  const bool read_only_;
  const int64_t retention_us_;
  int fd_ = -1;             // the journal, for appending (not read_only)
  int read_fd_ = -1;        // the journal the index points into, for reading (under mu_)
  int64_t size_ = 0;        // of the journal: where the next record goes
  int64_t dead_bytes_ = 0;  // of its lines of dropped issues (or of no rows)

  mutable std::shared_mutex mu_;  // issues_, rows_, next_offsets_, read_fd_ (writer: exclusive; readers: shared)
  std::map<IssueKey, Issue> issues_;
  std::set<std::string> fields_;  // the field names issues_' keys point at (never erased)
  int64_t newest_issued_us_ = std::numeric_limits<int64_t>::min();
  size_t rows_ = 0;
  std::vector<int64_t> next_offsets_;
  std::vector<ForecastRow> scratch_;
  std::string pending_;
};

}  // namespace mare::store
