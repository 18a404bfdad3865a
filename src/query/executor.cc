#include "query/executor.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

#include "common/time.h"
#include "query/block_outcomes.h"
#include "query/chunks.h"
#include "query/eval.h"
#include "query/group_table.h"
#include "query/planner.h"

namespace mare::query {
namespace {

using namespace exec;  // the store's types, as exec_names.h names them

class Executor {
 public:
  // start_us: when the statement arrived (MonotonicMicros), from which query.timeout counts.
  // sink: where the answer goes batch by batch (nullptr: all of it into *result).
  Executor(const Plan& plan, const store::Snapshot& snap, const QueryOptions& options, int64_t start_us, ResultTable* result,
           BatchSink* sink)
      : plan_(plan), snap_(snap), options_(options), result_(result), sink_(sink) {
    streaming_ = sink_ != nullptr && !plan_.latest && !plan_.aggregate && plan_.order.empty();
    int64_t timeout = options.limits.timeout_us;
    if (timeout > 0 && !__builtin_add_overflow(start_us, timeout, &deadline_us_)) return;
    deadline_us_ = std::numeric_limits<int64_t>::max();
  }

  // False, with *error set, when the statement fails while it runs: a limit reached, the store,
  // an error of the statement such as an integer overflow, or its client gone.
  [[nodiscard]] bool Run(SqlError* error) {
    std::vector<Type> types;
    for (const auto& c : plan_.columns) {
      if (!c.hidden) {
        result_->names.push_back(c.name);
        types.push_back(c.type);
      }
      out_.emplace_back(c.type);
    }
    if (sink_ != nullptr && !sink_->Begin(result_->names, types)) return Gone(error);
    CollectSources();
    bool ok = plan_.latest ? RunLatest(error) : plan_.aggregate ? RunAggregate(error) : RunRows(error);
    if (!ok || !SortAndLimit(error)) return false;
    if (sink_ != nullptr) {
      // The rest of the answer (all of it unless streamed), in batches; the caller gets the count.
      for (size_t at = 0; at < result_->rows; at += kStreamBatchRows) {
        if (!Send(result_->columns, at, std::min(result_->rows, at + kStreamBatchRows), error)) return false;
      }
      result_->rows += emitted_;
      result_->columns.clear();
    }
    return true;
  }

 private:
  struct Source {
    uint32_t sensor;
    int64_t min_ts, max_ts;
    const Segment* seg = nullptr;
    size_t block = 0;
    const RowBuffer* mem = nullptr;
    uint8_t outcome = kAny;  // of WHERE over the block's statistics (aggregations)
  };

  // query.timeout: checked between blocks (a few thousand rows each) and around sorts, so a
  // statement stops within about a block's work after its time is up.
  [[nodiscard]] bool CheckTime(SqlError* error) const {
    if (options_.cancel != nullptr && options_.cancel->load(std::memory_order_relaxed)) return Gone(error);
    if (MonotonicMicros() <= deadline_us_) return true;
    return LimitReached(fmt::format("query exceeded query.timeout ({}); narrow the WHERE clause or the time range",
                                    FormatTimeout(options_.limits.timeout_us)),
                        error);
  }

  // query.max_memory: the group tables, the answer's rows and `extra` bytes about to be taken
  // (sort buffers), counted approximately from their capacities.
  [[nodiscard]] bool CheckMemory(size_t extra, SqlError* error) const {
    size_t limit = options_.limits.max_memory;
    if (limit == 0) return true;
    size_t bytes = extra + group_bytes_[0].load(std::memory_order_relaxed) + group_bytes_[1].load(std::memory_order_relaxed);
    for (const auto& c : out_) bytes += c.Bytes();
    return bytes <= limit || MemoryExceeded(limit, error);
  }

  // The group table of thread `slot` (0: main, 1: other) has grown to `bytes`. The answer's rows
  // are not read here: only the main thread appends to them.
  [[nodiscard]] bool CheckGroupMemory(int slot, size_t bytes, SqlError* error) const {
    group_bytes_[slot].store(bytes, std::memory_order_relaxed);
    size_t limit = options_.limits.max_memory;
    if (limit == 0 || group_bytes_[0].load(std::memory_order_relaxed) + group_bytes_[1].load(std::memory_order_relaxed) <= limit) {
      return true;
    }
    return MemoryExceeded(limit, error);
  }

  // The errors of the checks above and of max_rows: limits reached, so not at a position of
  // the statement. Each sets *error and returns false (`return LimitReached(...)`).
  static bool LimitReached(std::string message, SqlError* error) {
    *error = SqlError{std::move(message), Position{0, 0}, SqlError::Kind::kLimit};
    return false;
  }
  static bool MemoryExceeded(size_t limit, SqlError* error) {
    return LimitReached(fmt::format("query exceeded query.max_memory ({}): its groups, rows and sort buffers need more; narrow the "
                                    "WHERE clause, use fewer groups or add a LIMIT",
                                    FormatBytes(limit)),
                        error);
  }
  bool TooManyRows(SqlError* error) const {
    return LimitReached(fmt::format("the result has more than {} rows; add a LIMIT or narrow the WHERE clause", options_.max_rows),
                        error);
  }
  // What stops a statement whose client is gone.
  static bool Gone(SqlError* error) { return StoreFailed("the statement was cancelled: its client went away", error); }

  bool SensorWanted(uint32_t id) const {
    return !plan_.sensors_set || std::find(plan_.sensors.begin(), plan_.sensors.end(), id) != plan_.sensors.end();
  }

  void CollectSources() {
    if (plan_.empty) return;
    size_t blocks = snap_.memtable.size();
    for (const auto& seg : snap_.segments) blocks += seg->blocks().size();
    sources_.reserve(blocks);
    for (const auto& seg : snap_.segments) {
      for (size_t b = 0; b < seg->blocks().size(); ++b) {
        const BlockMeta& m = seg->blocks()[b];
        if (!SensorWanted(m.sensor_id) || m.max_ts < plan_.min_ts || m.min_ts > plan_.max_ts) continue;
        sources_.push_back(Source{m.sensor_id, m.min_ts, m.max_ts, seg.get(), b, nullptr, kAny});
      }
    }
    for (const auto& rows : snap_.memtable) {
      if (rows.size() == 0 || !SensorWanted(rows.sensor_id())) continue;
      if (rows.ts().back() < plan_.min_ts || rows.ts().front() > plan_.max_ts) continue;
      sources_.push_back(Source{rows.sensor_id(), rows.ts().front(), rows.ts().back(), nullptr, 0, &rows, kAny});
    }
    if (plan_.latest) return;  // RunLatest orders what it needs
    // Plain rows by sensor, then time: one sensor's rows come out in time order. Aggregations
    // by hour, then sensor: the order the store keeps blocks in, so that their statistics are
    // read from memory in sequence (the snapshot lists them so, unless an hour has several
    // segments or memtable rows). Blocks of one hour, the only ones that can hold equal
    // timestamps, meet in sensor order either way: first() and last() break ties alike.
    auto by_sensor = [](const Source& a, const Source& b) {
      return a.sensor != b.sensor ? a.sensor < b.sensor : a.min_ts < b.min_ts;
    };
    auto by_hour = [](const Source& a, const Source& b) {
      int64_t ha = store::HourOf(a.min_ts), hb = store::HourOf(b.min_ts);
      if (ha != hb) return ha < hb;
      return a.sensor != b.sensor ? a.sensor < b.sensor : a.min_ts < b.min_ts;
    };
    if (plan_.aggregate) {
      if (!std::is_sorted(sources_.begin(), sources_.end(), by_hour)) std::stable_sort(sources_.begin(), sources_.end(), by_hour);
    } else if (!std::is_sorted(sources_.begin(), sources_.end(), by_sensor)) {
      std::stable_sort(sources_.begin(), sources_.end(), by_sensor);
    }
  }

  // WHERE over a chunk: the selected rows.
  [[nodiscard]] bool Select(ChunkSource& chunk, bool all, std::vector<uint32_t>* sel, SqlError* error) {
    sel->clear();
    size_t n = chunk.rows();
    if (all || !plan_.where) {
      sel->resize(n);
      for (size_t r = 0; r < n; ++r) (*sel)[r] = static_cast<uint32_t>(r);
      return true;
    }
    Vec where;
    if (!Evaluate(*plan_.where, chunk, &where, error)) return false;
    for (size_t r = 0; r < n; ++r) {
      if (where.Selected(r)) sel->push_back(static_cast<uint32_t>(r));
    }
    return true;
  }

  uint8_t BlockOutcome(const Source& s) const {
    if (!plan_.where) return kTrue;
    if (s.seg == nullptr) return kAny;
    return Outcomes(*plan_.where, s.seg->blocks()[s.block]);
  }

  // ---- plain rows ----
  // Without ORDER BY the rows come in their final order: those before OFFSET are counted, not
  // kept, and the scan stops once LIMIT rows are in.
  [[nodiscard]] bool RunRows(SqlError* error) {
    bool early_stop = plan_.order.empty();
    size_t limit = Limit();
    std::vector<uint32_t> sel;
    std::vector<Vec> cols(plan_.columns.size());
    for (const Source& s : sources_) {
      if (early_stop && emitted_ + out_rows_ >= limit) break;
      if (!CheckTime(error)) return false;
      uint8_t outcome = BlockOutcome(s);
      if (!(outcome & kTrue)) {
        ++result_->stats.blocks_skipped;
        continue;
      }
      auto chunk = MakeChunk(s, &result_->stats, error);
      if (chunk == nullptr || !Select(*chunk, outcome == kTrue, &sel, error)) return false;
      size_t from = 0;
      if (early_stop && offset_left_ > 0) {
        from = std::min(sel.size(), offset_left_);
        offset_left_ -= from;
      }
      if (from == sel.size()) continue;
      for (size_t k = 0; k < plan_.columns.size(); ++k) {
        if (!Evaluate(*plan_.columns[k].expr, *chunk, &cols[k], error)) return false;
      }
      size_t n = sel.size() - from;
      if (early_stop) n = std::min(n, limit - emitted_ - out_rows_);
      if (!AddRows(cols, sel.data() + from, n, error)) return false;
      if (streaming_ && out_rows_ >= kStreamBatchRows) {
        if (!Send(out_, 0, out_rows_, error)) return false;
        emitted_ += out_rows_;
        out_rows_ = 0;
        for (auto& c : out_) c.Clear();
      }
    }
    return true;
  }

  // Rows [begin, end) go to the sink. The time it takes (a client reading slowly) is added to
  // the deadline: query.timeout bounds the statement's work, not the client's reading.
  [[nodiscard]] bool Send(const std::vector<ResultColumn>& columns, size_t begin, size_t end, SqlError* error) {
    int64_t start = MonotonicMicros();
    bool more = sink_->Rows(columns, begin, end);
    if (__builtin_add_overflow(deadline_us_, MonotonicMicros() - start, &deadline_us_)) {
      deadline_us_ = std::numeric_limits<int64_t>::max();
    }
    return more ? CheckTime(error) : Gone(error);
  }

  // LIMIT, and OFFSET + LIMIT (the rows the answer needs from its start), as counts of rows;
  // SIZE_MAX for no LIMIT or a sum past it. OFFSET and LIMIT go up to 2^63 - 1 each.
  size_t Limit() const { return plan_.limit == std::numeric_limits<int64_t>::max() ? SIZE_MAX : static_cast<size_t>(plan_.limit); }
  // About what a copy of `rows` of the answer's rows takes (a Gather after a sort).
  size_t GatheredBytes(size_t rows) const {
    if (out_rows_ == 0) return 0;
    size_t bytes = 0;
    for (const auto& c : out_) bytes += c.Bytes();
    return static_cast<size_t>(static_cast<double>(bytes) * static_cast<double>(rows) / static_cast<double>(out_rows_));
  }
  size_t OffsetPlusLimit() const {
    size_t sum;
    return __builtin_add_overflow(offset_left_, Limit(), &sum) ? SIZE_MAX : sum;
  }

  // Whether output row a sorts before row b by ORDER BY (NULLs last, either direction).
  bool Less(uint32_t a, uint32_t b) const {
    for (const auto& k : plan_.order) {
      const ResultColumn& c = out_[static_cast<size_t>(k.column)];
      bool va = c.IsValid(a), vb = c.IsValid(b);
      if (va != vb) return va;
      if (!va) continue;
      int cmp = c.Compare(a, b);
      if (cmp != 0) return k.descending ? cmp > 0 : cmp < 0;
    }
    return false;
  }

  // Rows sel[0..n) of the output columns' vectors join the answer.
  [[nodiscard]] bool AddRows(const std::vector<Vec>& cols, const uint32_t* sel, size_t n, SqlError* error) {
    for (size_t k = 0; k < cols.size(); ++k) out_[k].Append(cols[k], sel, n);
    out_rows_ += n;
    return Prune(error) && CheckMemory(0, error);
  }

  [[nodiscard]] bool AddRow(const std::vector<Value>& row, SqlError* error) {
    for (size_t k = 0; k < row.size(); ++k) out_[k].Append(row[k]);
    ++out_rows_;
    return Prune(error) && CheckMemory(0, error);
  }

  // Keeps the answer within LIMIT (top-k under ORDER BY) or refuses it past max_rows.
  [[nodiscard]] bool Prune(SqlError* error) {
    bool limited = plan_.limit != std::numeric_limits<int64_t>::max();
    // Rows kept are never dropped again but by the top-k below (which keeps OFFSET + LIMIT): past
    // OFFSET + max_rows of them, an answer that LIMIT does not cut to max_rows is too large.
    size_t past_offset = emitted_ + out_rows_ - std::min(out_rows_, offset_left_);
    if (past_offset > options_.max_rows && Limit() > options_.max_rows) return TooManyRows(error);
    if (limited && !plan_.order.empty()) {
      // Top-k: keep the rows that can still make it past OFFSET + LIMIT, in the order they
      // came among equals (as the final stable sort would).
      // Pruned when twice what is kept and more, or when the rows take half of query.max_memory.
      size_t keep = OffsetPlusLimit();
      if (keep < out_rows_ && (out_rows_ - keep >= keep + 65'536 ||
                                (options_.limits.max_memory != 0 && 2 * GatheredBytes(out_rows_) > options_.limits.max_memory))) {
        if (!CheckTime(error) || !CheckMemory(out_rows_ * sizeof(uint32_t) + GatheredBytes(keep), error)) return false;
        std::vector<uint32_t> order(out_rows_);
        std::iota(order.begin(), order.end(), 0u);
        std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                          [&](uint32_t a, uint32_t b) { return Less(a, b) || (!Less(b, a) && a < b); });
        order.resize(keep);
        std::sort(order.begin(), order.end());  // arrival order: the final sort is stable
        for (auto& c : out_) c = c.Gather(order.data(), order.size());
        out_rows_ = keep;
      }
    }
    return true;
  }

  // The source's rows, counted in *stats; nullptr, with *error set, when the store cannot read them.
  std::unique_ptr<ChunkSource> MakeChunk(const Source& s, QueryStats* stats, SqlError* error) {
    if (s.seg != nullptr) {
      ++stats->blocks_decoded;
      stats->rows_scanned += s.seg->blocks()[s.block].rows;
      auto chunk = std::make_unique<BlockChunk>(*s.seg, s.block);
      if (!chunk->Read(error)) return nullptr;
      return chunk;
    }
    stats->memtable_rows += static_cast<int64_t>(s.mem->size());
    stats->rows_scanned += static_cast<int64_t>(s.mem->size());
    return std::make_unique<MemChunk>(*s.mem);
  }

  // ---- LATEST ON ts PARTITION BY sensor_id ----
  [[nodiscard]] bool RunLatest(SqlError* error) {
    std::vector<Source> by_newest;
    if (!plan_.where) {
      // Every row counts: each sensor's newest block (or memtable rows) holds its latest
      // reading. One pass, no sort over all blocks (a year of hours is ~10k blocks a sensor).
      std::unordered_map<uint32_t, size_t> newest;
      for (size_t i = 0; i < sources_.size(); ++i) {
        auto [it, inserted] = newest.try_emplace(sources_[i].sensor, i);
        if (!inserted && sources_[i].max_ts > sources_[it->second].max_ts) it->second = i;
      }
      for (const auto& [sensor, i] : newest) by_newest.push_back(sources_[i]);
    } else {
      by_newest = sources_;
    }
    std::stable_sort(by_newest.begin(), by_newest.end(), [](const Source& a, const Source& b) {
      return a.sensor != b.sensor ? a.sensor < b.sensor : a.max_ts > b.max_ts;
    });
    std::vector<uint32_t> sel;
    std::vector<Vec> cols(plan_.columns.size());
    size_t i = 0;
    while (i < by_newest.size()) {
      uint32_t sensor = by_newest[i].sensor;
      bool found = false;
      int64_t best_ts = 0;
      std::vector<Value> best;
      for (; i < by_newest.size() && by_newest[i].sensor == sensor; ++i) {
        const Source& s = by_newest[i];
        if (found && s.max_ts <= best_ts) continue;
        if (!CheckTime(error)) return false;
        uint8_t outcome = BlockOutcome(s);
        if (!(outcome & kTrue)) {
          ++result_->stats.blocks_skipped;
          continue;
        }
        if (outcome == kTrue && s.seg != nullptr) {
          ++result_->stats.blocks_from_stats;
          StatsRow row(s.seg->blocks()[s.block], s.max_ts, true);
          best.clear();
          for (size_t k = 0; k < plan_.columns.size(); ++k) {
            if (!Evaluate(*plan_.columns[k].expr, row, &cols[k], error)) return false;
            best.push_back(cols[k].Get(0));
          }
          best_ts = s.max_ts;
          found = true;
          continue;
        }
        auto chunk = MakeChunk(s, &result_->stats, error);
        if (chunk == nullptr || !Select(*chunk, outcome == kTrue, &sel, error)) return false;
        if (sel.empty()) continue;
        Vec ts;
        if (!chunk->Column(kTsColumn, FieldType::kNumber, &ts, error)) return false;
        uint32_t pick = sel[0];
        for (uint32_t r : sel) {
          if (ts.i[r] >= ts.i[pick]) pick = r;
        }
        if (found && ts.i[pick] <= best_ts) continue;
        best.clear();
        for (size_t k = 0; k < plan_.columns.size(); ++k) {
          if (!Evaluate(*plan_.columns[k].expr, *chunk, &cols[k], error)) return false;
          best.push_back(cols[k].Get(pick));
        }
        best_ts = ts.i[pick];
        found = true;
      }
      if (found && !AddRow(best, error)) return false;
    }
    return true;
  }

  // ---- aggregation ----
  // Whether a block's statistics can stand for its rows in this aggregation.
  bool StatsUsable() const {
    for (const auto& a : plan_.aggregates) {
      if (a.func == AggFunc::kCountStar) continue;
      if (a.arg->kind != BoundExpr::Kind::kColumn) return false;
      if (a.arg->column == kTsColumn && (a.func == AggFunc::kSum || a.func == AggFunc::kAvg || a.func == AggFunc::kStddevPop ||
                                         a.func == AggFunc::kStddevSamp)) {
        return false;
      }
    }
    return true;
  }

  // 0: the key depends on the sensor and constants only; 1: time_bucket(width, ts); -1: other.
  static int KeyKind(const BoundExpr& e) {
    if (e.kind == BoundExpr::Kind::kConstant) return 0;
    if (e.kind == BoundExpr::Kind::kColumn) return e.column == kSensorColumn ? 0 : -1;
    if (e.kind == BoundExpr::Kind::kCall && e.op == Op::kTimeBucket && e.args[0]->kind == BoundExpr::Kind::kConstant &&
        e.args[1]->kind == BoundExpr::Kind::kColumn && e.args[1]->column == kTsColumn) {
      return 1;
    }
    if (e.kind != BoundExpr::Kind::kCall) return -1;
    int kind = 0;
    for (const auto& a : e.args) {
      int k = KeyKind(*a);
      if (k != 0) return -1;
      kind = std::max(kind, k);
    }
    return kind;
  }

  // What a group accumulates for aggregates over one argument.
  struct Accumulator {
    const BoundExpr* arg = nullptr;  // input scope
    bool need_m2 = false;            // a stddev needs the sum of squared deviations
  };

  // The statistics of a's argument in block m. *hint: where the column was in the block before
  // (blocks mostly have the same columns): tried first, so that only that column's bytes are
  // read from memory.
  Partial StatsFor(const Accumulator& a, const BlockMeta& m, size_t* hint) const {
    Partial p{};
    const BoundExpr& col = *a.arg;
    if (col.column == kTsColumn) {
      double lo = static_cast<double>(m.min_ts), hi = static_cast<double>(m.max_ts);
      return Partial{m.rows, 0, 0, lo, hi, lo, hi, m.min_ts, m.max_ts, nullptr, nullptr};
    }
    if (col.column == kSensorColumn) {
      double id = m.sensor_id;
      return Partial{m.rows, id * m.rows, 0, id, id, id, id, m.min_ts, m.max_ts, nullptr, nullptr};
    }
    auto field = static_cast<uint32_t>(col.column);
    const ColumnMeta* c = *hint < m.columns.size() && m.columns[*hint].field == field ? &m.columns[*hint] : m.Column(field);
    if (c == nullptr || c->type != col.field_type) return p;
    *hint = static_cast<size_t>(c - m.columns.data());
    const auto& s = c->stats;
    return Partial{s.count, s.sum, s.m2, s.min, s.max, s.first, s.last, s.first_ts, s.last_ts, &s.first_text(), &s.last_text()};
  }

  // True when the chunk's rows all fall in one group (so it can be aggregated column-wise).
  bool KeysConstantOver(const Source& s) const {
    for (size_t k = 0; k < plan_.keys.size(); ++k) {
      int kind = key_kinds_[k];
      if (kind < 0) return false;
      if (kind == 1) {
        int64_t width = plan_.keys[k]->args[0]->constant.i;
        if (TimeBucket(width, s.min_ts) != TimeBucket(width, s.max_ts)) return false;
      }
    }
    return true;
  }

  // Folds the selected rows of one argument column into a Partial (rows are in time order).
  static void ColumnPartial(const Vec& v, const std::vector<uint32_t>& sel, const int64_t* ts, bool need_m2, Partial* p,
                            std::string* first_text, std::string* last_text) {
    *p = Partial{0, 0, 0, std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(), 0, 0, 0, 0, nullptr, nullptr};
    int64_t count = 0;
    uint32_t first = 0, last = 0;
    if (v.type == Type::kText) {
      for (uint32_t r : sel) {
        if (!v.IsValid(r)) continue;
        if (count == 0) first = r;
        last = r;
        ++count;
      }
      if (count == 0) return;
      first_text->assign(v.s[first]);
      last_text->assign(v.s[last]);
      *p = Partial{count, 0, 0, 0, 0, 0, 0, ts[first], ts[last], first_text, last_text};
      return;
    }
    double sum = 0, lo = p->min, hi = p->max;
    if (v.type == Type::kDouble && v.valid == nullptr) {
      const double* d = v.d;
      for (uint32_t r : sel) {
        double x = d[r];
        sum += x;
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
      count = static_cast<int64_t>(sel.size());
      if (count > 0) {
        first = sel.front();
        last = sel.back();
      }
    } else {
      for (uint32_t r : sel) {
        if (!v.IsValid(r)) continue;
        double x = v.AsDouble(r);
        if (count == 0) first = r;
        last = r;
        ++count;
        sum += x;
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
    }
    if (count == 0) return;
    double m2 = 0;
    if (need_m2) {
      double mean = sum / static_cast<double>(count);
      for (uint32_t r : sel) {
        if (!v.IsValid(r)) continue;
        double d = v.AsDouble(r) - mean;
        m2 += d * d;
      }
    }
    *p = Partial{count, sum, m2, lo, hi, v.AsDouble(first), v.AsDouble(last), ts[first], ts[last], nullptr, nullptr};
  }

  // Aggregates sources [begin, end) into *g.
  // slot: the thread's (0: main, 1: other), for query.max_memory.
  [[nodiscard]] bool AggregateRange(size_t begin, size_t end, bool stats_usable, GroupTable* g, int slot, SqlError* error) {
    std::vector<uint32_t> sel;
    std::vector<Vec> keys(plan_.keys.size());
    std::vector<Vec> args(accumulators_.size());
    std::string key, first_text, last_text;
    const size_t n_accs = accumulators_.size();
    std::vector<size_t> hints(n_accs);  // StatsFor's
    for (size_t i = begin; i < end; ++i) {
      if (!CheckTime(error) || !CheckGroupMemory(slot, g->Bytes(), error)) return false;
      const Source& s = sources_[i];
      uint8_t outcome = s.outcome;
      if (!(outcome & kTrue)) {
        ++g->stats.blocks_skipped;
        continue;
      }
      bool constant_keys = KeysConstantOver(s);
      if (stats_usable && outcome == kTrue && s.seg != nullptr && constant_keys) {
        const BlockMeta& m = s.seg->blocks()[s.block];
        ++g->stats.blocks_from_stats;
        key.clear();
        for (size_t k = 0; k < plan_.keys.size(); ++k) {
          // The usual keys (sensor_id, time_bucket of ts) straight from the block; others evaluated.
          const BoundExpr& e = *plan_.keys[k];
          if (e.kind == BoundExpr::Kind::kColumn && e.column == kSensorColumn) {
            AppendKeyInt(m.sensor_id, &key);
          } else if (key_kinds_[k] == 1 && e.kind == BoundExpr::Kind::kCall) {
            AppendKeyInt(TimeBucket(e.args[0]->constant.i, m.min_ts), &key);
          } else {
            StatsRow row(m, m.min_ts, false);
            if (!Evaluate(e, row, &keys[k], error)) return false;
            AppendKey(keys[k], 0, &key);
          }
        }
        size_t group = g->For(key);
        g->Rows(group) += m.rows;
        Acc* accs = g->Accs(group);
        for (size_t a = 0; a < n_accs; ++a) {
          Merge(accs[a], g->Text(group, a), StatsFor(accumulators_[a], m, &hints[a]), accumulators_[a].need_m2);
        }
        continue;
      }
      auto chunk = MakeChunk(s, &g->stats, error);
      if (chunk == nullptr || !Select(*chunk, outcome == kTrue, &sel, error)) return false;
      if (sel.empty()) continue;
      for (size_t k = 0; k < plan_.keys.size(); ++k) {
        if (!Evaluate(*plan_.keys[k], *chunk, &keys[k], error)) return false;
      }
      for (size_t a = 0; a < n_accs; ++a) {
        if (accumulators_[a].arg && !Evaluate(*accumulators_[a].arg, *chunk, &args[a], error)) return false;
      }
      Vec ts;
      if (!chunk->Column(kTsColumn, FieldType::kNumber, &ts, error)) return false;
      if (constant_keys) {
        // Every selected row is in one group: fold each argument column in one tight loop.
        key.clear();
        for (const auto& k : keys) AppendKey(k, sel[0], &key);
        size_t group = g->For(key);
        g->Rows(group) += static_cast<int64_t>(sel.size());
        Acc* accs = g->Accs(group);
        for (size_t a = 0; a < n_accs; ++a) {
          Partial p;
          ColumnPartial(args[a], sel, ts.i, accumulators_[a].need_m2, &p, &first_text, &last_text);
          Merge(accs[a], g->Text(group, a), p, accumulators_[a].need_m2);
        }
        continue;
      }
      FoldRows(keys, args, sel, ts.i, g, &key);
    }
    return true;
  }

  // Folds the selected rows into their groups, row by row (keys that vary within the chunk).
  // Its own function, kept out of line: GCC inlines the key and string code of this loop (the
  // hottest of a GROUP BY by minutes) into a small function, but not into AggregateRange once
  // that has its error paths (26% more instructions on such a GROUP BY, callgrind).
  [[gnu::noinline]] void FoldRows(const std::vector<Vec>& keys, const std::vector<Vec>& args, const std::vector<uint32_t>& sel, const int64_t* ts,
                GroupTable* g, std::string* key) const {
    const size_t n_accs = accumulators_.size();
    std::string last_key = "\xff";
    size_t group = 0;
    for (uint32_t r : sel) {
      key->clear();
      for (const auto& k : keys) AppendKey(k, r, key);
      if (*key != last_key) {
        group = g->For(*key);
        last_key = *key;
      }
      ++g->Rows(group);
      Acc* accs = g->Accs(group);
      for (size_t a = 0; a < n_accs; ++a) {
        Acc& acc = accs[a];
        const Vec& v = args[a];
        if (!v.IsValid(r)) continue;
        double x = v.type == Type::kText ? 0 : v.AsDouble(r);
        ++acc.count;
        acc.sum += x;
        acc.min = std::min(acc.min, x);
        acc.max = std::max(acc.max, x);
        if (accumulators_[a].need_m2) {
          double delta = x - acc.mean;
          acc.mean += delta / static_cast<double>(acc.count);
          acc.m2 += delta * (x - acc.mean);
        }
        TextAcc* text = v.type == Type::kText ? g->Text(group, a) : nullptr;
        int64_t t = ts[r];
        if (acc.count == 1 || t < acc.first_ts) {
          acc.first_ts = t;
          acc.first = x;
          if (text != nullptr) text->first.assign(v.s[r]);
        }
        if (acc.count == 1 || t >= acc.last_ts) {
          acc.last_ts = t;
          acc.last = x;
          if (text != nullptr) text->last.assign(v.s[r]);
        }
      }
    }
  }

  static Partial PartialOf(const Acc& a, const TextAcc* text) {
    return Partial{a.count,    a.sum,     a.m2,   a.min, a.max, a.first, a.last, a.first_ts, a.last_ts, text ? &text->first : nullptr,
                   text ? &text->last : nullptr};
  }

  // The groups' keys as columns (slots), group g at row g: decoded from their bytes.
  void DecodeKeys(const GroupTable& g, std::vector<Vec>* out) const {
    size_t n = g.size(), n_keys = plan_.keys.size();
    for (size_t k = 0; k < n_keys; ++k) {
      Vec& v = (*out)[k];
      v.type = plan_.keys[k]->type;
      v.n = n;
      v.own_valid.assign(n, 1);
      if (v.type == Type::kText) {
        v.own_s.assign(n, std::string_view());
      } else if (v.type == Type::kDouble) {
        v.own_d.assign(n, 0);
      } else {
        v.own_i.assign(n, 0);
      }
    }
    std::vector<bool> any_null(n_keys);
    const char* bytes = g.keys().data();
    for (size_t r = 0; r < n; ++r) {
      const char* p = bytes + g.KeyStart(r);
      for (size_t k = 0; k < n_keys; ++k) {
        Vec& v = (*out)[k];
        if (*p++ == '\0') {
          v.own_valid[r] = 0;
          any_null[k] = true;
          continue;
        }
        if (v.type == Type::kText) {
          uint32_t len;
          std::memcpy(&len, p, 4);
          v.own_s[r] = std::string_view(p + 4, len);
          p += 4 + len;
        } else if (v.type == Type::kDouble) {
          std::memcpy(&v.own_d[r], p, 8);
          p += 8;
        } else {
          std::memcpy(&v.own_i[r], p, 8);
          p += 8;
        }
      }
    }
    for (size_t k = 0; k < n_keys; ++k) {
      Vec& v = (*out)[k];
      v.i = v.own_i.data();
      v.d = v.own_d.data();
      v.s = v.own_s.data();
      v.valid = any_null[k] ? v.own_valid.data() : nullptr;
    }
  }

  // Group numbers in the order of their keys, NULLs last.
  std::vector<uint32_t> KeyOrder(const std::vector<Vec>& keys, size_t n) const {
    std::vector<uint32_t> order(n);
    for (size_t g = 0; g < n; ++g) order[g] = static_cast<uint32_t>(g);
    bool plain = keys.size() <= 2;  // integers, timestamps without NULLs: sorted as pairs
    for (const Vec& k : keys) plain = plain && k.valid == nullptr && IsIntegral(k.type);
    if (plain && !keys.empty()) {
      struct Entry {
        int64_t a, b;
        uint32_t g;
      };
      std::vector<Entry> entries(n);
      for (size_t g = 0; g < n; ++g) entries[g] = Entry{keys[0].i[g], keys.size() > 1 ? keys[1].i[g] : 0, static_cast<uint32_t>(g)};
      auto less = [](const Entry& x, const Entry& y) { return x.a != y.a ? x.a < y.a : x.b < y.b; };
      if (!std::is_sorted(entries.begin(), entries.end(), less)) std::sort(entries.begin(), entries.end(), less);
      for (size_t g = 0; g < n; ++g) order[g] = entries[g].g;
      return order;
    }
    auto less = [&](uint32_t x, uint32_t y) {
      for (const Vec& k : keys) {
        bool vx = k.IsValid(x), vy = k.IsValid(y);
        if (vx != vy) return vx;
        if (!vx) continue;
        int c = 0;
        if (k.type == Type::kText) {
          c = k.s[x].compare(k.s[y]);
        } else if (k.type == Type::kDouble) {
          c = k.d[x] < k.d[y] ? -1 : (k.d[x] > k.d[y] ? 1 : 0);
        } else {
          c = k.i[x] < k.i[y] ? -1 : (k.i[x] > k.i[y] ? 1 : 0);
        }
        if (c != 0) return c < 0;
      }
      return false;
    };
    if (!std::is_sorted(order.begin(), order.end(), less)) std::sort(order.begin(), order.end(), less);
    return order;
  }

  // Rows [r] of each column, gathered into `order`.
  static void Gather(const Vec& in, const std::vector<uint32_t>& order, Vec* out) {
    size_t n = order.size();
    out->type = in.type;
    out->n = n;
    out->valid = nullptr;
    if (in.valid != nullptr) {
      out->own_valid.resize(n);
      for (size_t r = 0; r < n; ++r) out->own_valid[r] = in.valid[order[r]];
      out->valid = out->own_valid.data();
    }
    if (in.type == Type::kText) {
      out->own_s.resize(n);
      for (size_t r = 0; r < n; ++r) out->own_s[r] = in.s[order[r]];
      out->s = out->own_s.data();
    } else if (in.type == Type::kDouble) {
      out->own_d.resize(n);
      for (size_t r = 0; r < n; ++r) out->own_d[r] = in.d[order[r]];
      out->d = out->own_d.data();
    } else {
      out->own_i.resize(n);
      for (size_t r = 0; r < n; ++r) out->own_i[r] = in.i[order[r]];
      out->i = out->own_i.data();
    }
  }

  [[nodiscard]] bool RunAggregate(SqlError* error) {
    key_kinds_.clear();
    for (const auto& k : plan_.keys) key_kinds_.push_back(KeyKind(*k));
    bool stats_usable = StatsUsable();
    for (int kind : key_kinds_) stats_usable = stats_usable && kind >= 0;
    // count(*) is each group's row count. Other aggregates get one accumulator per distinct
    // argument: min(x), max(x) and avg(x) read x's count, sum, min and max, so they share one.
    accumulators_.clear();
    std::vector<size_t> acc_of;  // aggregate -> its accumulator (count(*): none)
    bool texts = false;
    for (const auto& agg : plan_.aggregates) {
      if (agg.func == AggFunc::kCountStar) {
        acc_of.push_back(SIZE_MAX);
        continue;
      }
      const BoundExpr* arg = agg.arg.get();
      size_t a = 0;
      for (; a < accumulators_.size(); ++a) {
        const BoundExpr* other = accumulators_[a].arg;
        if (arg->kind == BoundExpr::Kind::kColumn && other->kind == BoundExpr::Kind::kColumn && arg->column == other->column &&
            arg->field_type == other->field_type) {
          break;
        }
      }
      if (a == accumulators_.size()) accumulators_.push_back(Accumulator{arg, false});
      accumulators_[a].need_m2 = accumulators_[a].need_m2 || agg.func == AggFunc::kStddevPop || agg.func == AggFunc::kStddevSamp;
      acc_of.push_back(a);
      texts = texts || agg.type == Type::kText;
    }
    const size_t n_accs = accumulators_.size(), n_aggs = plan_.aggregates.size();

    // Two threads when there is enough to do: split the sources at half the work, counted in
    // rows to decode. A block taken from its statistics is about the work of 100 rows.
    std::vector<int64_t> work(sources_.size());
    int64_t total_work = 0;
    for (size_t i = 0; i < sources_.size(); ++i) {
      Source& s = sources_[i];
      s.outcome = BlockOutcome(s);
      if (!(s.outcome & kTrue)) continue;
      bool from_stats = stats_usable && s.outcome == kTrue && s.seg != nullptr && KeysConstantOver(s);
      work[i] = from_stats ? 100 : s.seg ? s.seg->blocks()[s.block].rows : static_cast<int64_t>(s.mem->size());
      total_work += work[i];
    }
    size_t split = sources_.size();
    if (options_.threads > 1 && total_work >= 200'000 && sources_.size() >= 8) {
      int64_t half = 0;
      for (split = 0; split < sources_.size() && half < total_work / 2; ++split) half += work[split];
    }
    GroupTable main_groups(n_accs, texts), other_groups(n_accs, texts);
    // Keys constant over most blocks (sensor_id, hourly or longer buckets): about a group per
    // block at most. The main table makes room for the other's too, which it merges.
    if (std::all_of(key_kinds_.begin(), key_kinds_.end(), [](int kind) { return kind >= 0; })) {
      main_groups.Reserve(sources_.size());
      other_groups.Reserve(sources_.size() - split);
    }
    // A jthread: joined however this function ends (the other thread reads the executor and
    // other_groups), a std::bad_alloc in the main thread's part included.
    std::jthread other;
    if (split < sources_.size()) {
      other = std::jthread([&] {
        SqlError other_error;
        try {
          if (!AggregateRange(split, sources_.size(), stats_usable, &other_groups, 1, &other_error)) other_groups.error = other_error;
        } catch (const std::exception& e) {  // std::bad_alloc: an exception must not leave a thread
          other_groups.error = SqlError{e.what(), Position{0, 0}, SqlError::Kind::kStore};
        }
      });
    }
    bool ok = AggregateRange(0, split, stats_usable, &main_groups, 0, error);
    if (other.joinable()) other.join();
    if (!ok) return false;
    if (other_groups.error) {
      *error = *other_groups.error;
      return false;
    }
    // Merge the other thread's groups into the main ones.
    main_groups.Reserve(main_groups.size() + other_groups.size());
    for (size_t g = 0; g < other_groups.size(); ++g) {
      size_t into = main_groups.For(other_groups.Key(g), other_groups.Hash(g));
      main_groups.Rows(into) += other_groups.Rows(g);
      Acc* to = main_groups.Accs(into);
      const Acc* from = other_groups.Accs(g);
      for (size_t a = 0; a < n_accs; ++a) {
        Merge(to[a], main_groups.Text(into, a), PartialOf(from[a], other_groups.Text(g, a)), accumulators_[a].need_m2);
      }
    }
    for (const QueryStats* st : {&main_groups.stats, &other_groups.stats}) {
      result_->stats.blocks_skipped += st->blocks_skipped;
      result_->stats.blocks_from_stats += st->blocks_from_stats;
      result_->stats.blocks_decoded += st->blocks_decoded;
      result_->stats.memtable_rows += st->memtable_rows;
      result_->stats.rows_scanned += st->rows_scanned;
    }
    if (plan_.keys.empty() && main_groups.size() == 0) main_groups.For("");  // one row, even over no rows
    if (!CheckTime(error) || !CheckGroupMemory(0, main_groups.Bytes(), error) || !CheckGroupMemory(1, 0, error)) return false;

    // The slot scope, groups in the order of their keys (deterministic whatever the threads
    // did): keys, then aggregate results.
    size_t n = main_groups.size();
    std::vector<Vec> keys(plan_.keys.size());
    DecodeKeys(main_groups, &keys);
    std::vector<uint32_t> order = KeyOrder(keys, n);
    std::vector<Vec> slots(plan_.keys.size() + n_aggs);
    for (size_t k = 0; k < plan_.keys.size(); ++k) Gather(keys[k], order, &slots[k]);
    for (size_t a = 0; a < n_aggs; ++a) {
      bool rows_only = acc_of[a] == SIZE_MAX;
      FinishColumn(plan_.aggregates[a], main_groups.rows(), rows_only ? nullptr : main_groups.accs() + acc_of[a],
                   texts && !rows_only ? main_groups.texts() + acc_of[a] : nullptr, n_accs, order, &slots[plan_.keys.size() + a]);
    }
    GroupChunk chunk(&slots, n);
    Vec having;
    if (plan_.having && !Evaluate(*plan_.having, chunk, &having, error)) return false;
    std::vector<Vec> cols(plan_.columns.size());
    for (size_t k = 0; k < plan_.columns.size(); ++k) {
      if (!Evaluate(*plan_.columns[k].expr, chunk, &cols[k], error)) return false;
    }
    // Written by index, not push_back: GCC does not inline push_back into this function (one
    // call per group: 1.8% more instructions on an hourly GROUP BY of 10M readings, callgrind).
    std::vector<uint32_t> sel(n);
    size_t kept = 0;
    for (size_t g = 0; g < n; ++g) {
      if (!plan_.having || having.Selected(g)) sel[kept++] = static_cast<uint32_t>(g);
    }
    sel.resize(kept);
    for (auto& c : out_) c.Reserve(sel.size());
    if (!AddRows(cols, sel.data(), sel.size(), error)) return false;
    group_bytes_[0] = 0;  // main_groups goes now
    return true;
  }

  [[nodiscard]] bool SortAndLimit(SqlError* error) {
    if (!CheckTime(error) || !CheckMemory(out_rows_ * sizeof(uint32_t) + GatheredBytes(std::min(out_rows_, Limit())), error)) {
      return false;
    }
    std::vector<uint32_t> order(out_rows_);
    std::iota(order.begin(), order.end(), 0u);
    bool sorted = true;
    if (!plan_.order.empty()) {
      // Rows often come in order already (one sensor's blocks are read in time order).
      auto less = [&](uint32_t a, uint32_t b) { return Less(a, b); };
      sorted = std::is_sorted(order.begin(), order.end(), less);
      if (!sorted) std::stable_sort(order.begin(), order.end(), less);
      if (!CheckTime(error)) return false;
    }
    size_t begin = std::min(out_rows_, offset_left_);
    size_t end = begin + std::min(out_rows_ - begin, Limit());
    if (end - begin > options_.max_rows) return TooManyRows(error);
    result_->rows = end - begin;
    for (size_t k = 0; k < result_->names.size(); ++k) {
      if (sorted && begin == 0 && end == out_rows_) {
        result_->columns.push_back(std::move(out_[k]));
      } else {
        result_->columns.push_back(out_[k].Gather(order.data() + begin, end - begin));
      }
    }
    return true;
  }

  const Plan& plan_;
  const store::Snapshot& snap_;
  const QueryOptions& options_;
  ResultTable* result_;
  BatchSink* sink_;
  bool streaming_ = false;  // plain rows go to the sink batch by batch as they come
  size_t emitted_ = 0;      // rows the sink has had already (streaming)
  std::vector<Source> sources_;
  std::vector<ResultColumn> out_;  // the answer so far: every output column, hidden ones too
  size_t out_rows_ = 0;
  size_t offset_left_ = static_cast<size_t>(plan_.offset);  // OFFSET's rows not yet skipped by RunRows
  int64_t deadline_us_ = 0;                                 // MonotonicMicros past which query.timeout is exceeded
  mutable std::atomic<size_t> group_bytes_[2] = {0, 0};     // each aggregation thread's group table
  std::vector<int> key_kinds_;  // KeyKind of each GROUP BY key
  std::vector<Accumulator> accumulators_;
};

}  // namespace

const char* TypeName(Type type) {
  switch (type) {
    case Type::kNull: return "null";
    case Type::kBoolean: return "boolean";
    case Type::kInteger: return "integer";
    case Type::kDouble: return "double";
    case Type::kTimestamp: return "timestamp";
    case Type::kInterval: return "interval";
    case Type::kText: return "text";
  }
  return "?";
}

namespace {

bool Run(store::Store& store, std::string_view sql, const QueryOptions& options, ResultTable* result, BatchSink* sink,
         SqlError* error) {
  int64_t start = MonotonicMicros();
  SelectStatement statement;
  if (!Parse(sql, options.limits, &statement, error)) return false;
  Plan plan;
  int64_t now = options.now_us != 0 ? options.now_us : NowMicros();
  // The table's schema binds names; its rows are then read for the plan's sensors and times.
  bool forecasts = statement.table == "forecasts";
  std::vector<store::Field> fields = forecasts ? store::ForecastTable::Fields() : store.schema().Fields();
  if (!BuildPlan(statement, fields, now, &plan, error)) return false;
  store::SnapshotFilter filter;
  if (plan.sensors_set) filter.sensors = plan.sensors;
  if (plan.sensors_set && plan.sensors.empty()) plan.empty = true;
  filter.min_ts = plan.min_ts;
  filter.max_ts = plan.max_ts;
  filter.latest_only = plan.latest && !plan.where;
  auto snap = plan.empty                          ? std::make_shared<store::Snapshot>()
              : plan.table == Table::kForecasts ? store.forecasts().GetSnapshot(filter)
                                                : store.GetSnapshot(filter);
  if (!snap->status.ok()) {
    *error = SqlError{fmt::format("the store could not be read: {}", snap->status.ToString()), Position{0, 0}, SqlError::Kind::kStore};
    return false;
  }
  // The executor's errors are values (Run's false and *error); what can still be thrown here is
  // not query/'s: an allocation's std::bad_alloc, or a library's exception.
  try {
    if (!Executor(plan, *snap, options, start, result, sink).Run(error)) return false;
  } catch (const std::bad_alloc&) {
    // Not a limit's doing (they stop well before), but one statement must not end the process.
    *error = SqlError{"the query ran out of memory; narrow the WHERE clause or lower query.max_memory", Position{0, 0},
                      SqlError::Kind::kLimit};
    return false;
  } catch (const std::exception& e) {
    // A bug, not the statement's fault; the server must go on answering the others.
    *error = SqlError{fmt::format("internal error: {}", e.what()), Position{0, 0}, SqlError::Kind::kStore};
    return false;
  }
  return true;
}

}  // namespace

bool RunQuery(store::Store& store, std::string_view sql, const QueryOptions& options, ResultTable* result, SqlError* error) {
  return Run(store, sql, options, result, nullptr, error);
}

bool RunQuery(store::Store& store, std::string_view sql, const QueryOptions& options, BatchSink* sink, ResultTable* summary,
              SqlError* error) {
  return Run(store, sql, options, summary, sink, error);
}

bool RunQuery(store::Store& store, std::string_view sql, const QueryOptions& options, QueryResult* result, SqlError* error) {
  ResultTable table;
  if (!RunQuery(store, sql, options, &table, error)) return false;
  result->names = std::move(table.names);
  for (const auto& c : table.columns) result->types.push_back(c.type());
  result->rows.resize(table.rows);
  for (size_t r = 0; r < table.rows; ++r) {
    result->rows[r].reserve(table.columns.size());
    for (const auto& c : table.columns) result->rows[r].push_back(c.Get(r));
  }
  result->stats = table.stats;
  return true;
}

}  // namespace mare::query
