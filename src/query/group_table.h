// The aggregation's state: accumulators per group and aggregate, their merge with a block's
// statistics, and the hash table of groups (no allocation per group), with the group scope.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/time.h"
#include "query/eval.h"
#include "query/planner.h"
#include "query/exec_names.h"

namespace mare::query::exec {

// ---- aggregation ------------------------------------------------------------------------------

// A group's running state for one aggregate. Text values (first/last of a text column) are
// kept beside it, in TextAcc, only when an aggregate is of text: most aggregations hold
// numbers, and a string pair per accumulator would triple their size.
struct Acc {
  int64_t count = 0;
  double sum = 0;
  double mean = 0;
  double m2 = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  int64_t first_ts = 0, last_ts = 0;  // first and last are set once count > 0
  double first = 0, last = 0;
};

struct TextAcc {
  std::string first, last;
};

struct Partial {  // a block's statistics for one aggregate argument
  int64_t count;
  double sum, m2, min, max, first, last;
  int64_t first_ts, last_ts;
  const std::string* first_text;
  const std::string* last_text;
};

inline void Merge(Acc& a, TextAcc* text, const Partial& p, bool need_m2) {
  if (p.count == 0) return;
  if (need_m2) {
    // Equal values: the mean is exactly that value and there is no spread. sum / count can be
    // a few ulps off it, which would give a constant column a tiny non-zero stddev.
    bool equal = p.min == p.max;
    double mean_b = equal ? p.min : p.sum / static_cast<double>(p.count);
    double m2_b = equal ? 0 : p.m2;
    if (a.count == 0) {
      a.mean = mean_b;
      a.m2 = m2_b;
    } else {
      double n = static_cast<double>(a.count + p.count);
      double delta = mean_b - a.mean;
      a.mean += delta * static_cast<double>(p.count) / n;
      a.m2 += m2_b + delta * delta * static_cast<double>(a.count) * static_cast<double>(p.count) / n;
    }
  }
  bool empty = a.count == 0;
  a.count += p.count;
  a.sum += p.sum;
  a.min = std::min(a.min, p.min);
  a.max = std::max(a.max, p.max);
  if (empty || p.first_ts < a.first_ts) {
    a.first_ts = p.first_ts;
    a.first = p.first;
    if (text != nullptr && p.first_text != nullptr) text->first = *p.first_text;
  }
  if (empty || p.last_ts >= a.last_ts) {
    a.last_ts = p.last_ts;
    a.last = p.last;
    if (text != nullptr && p.last_text != nullptr) text->last = *p.last_text;
  }
}

// The results of one aggregate over groups taken in `order`, as a column (a slot): from the
// groups' row counts for count(*), else from its accumulator (accs[g * stride]).
inline void FinishColumn(const Aggregate& agg, const int64_t* counts, const Acc* accs, const TextAcc* texts, size_t stride,
                  const std::vector<uint32_t>& order, Vec* out) {
  size_t n = order.size();
  out->type = agg.type;
  out->n = n;
  out->own_valid.assign(n, 1);
  bool counting = agg.func == AggFunc::kCountStar || agg.func == AggFunc::kCount;
  bool integral = counting || IsIntegral(agg.type);
  if (agg.type == Type::kText) {
    out->own_s.resize(n);
  } else if (integral) {
    out->own_i.resize(n);
  } else {
    out->own_d.resize(n);
  }
  bool any_null = false;
  for (size_t r = 0; r < n; ++r) {
    if (agg.func == AggFunc::kCountStar) {
      out->own_i[r] = counts[order[r]];
      continue;
    }
    const Acc& a = accs[order[r] * stride];
    if (counting) {
      out->own_i[r] = a.count;
      continue;
    }
    double x = 0;
    bool null = a.count == 0;
    switch (agg.func) {
      case AggFunc::kSum: x = a.sum; break;
      case AggFunc::kAvg: x = a.sum / static_cast<double>(a.count); break;
      case AggFunc::kMin: x = a.min; break;
      case AggFunc::kMax: x = a.max; break;
      case AggFunc::kFirst: x = a.first; break;
      case AggFunc::kLast: x = a.last; break;
      case AggFunc::kStddevSamp:
        null = a.count < 2;
        if (!null) x = std::sqrt(std::max(0.0, a.m2) / static_cast<double>(a.count - 1));
        break;
      case AggFunc::kStddevPop:
        if (!null) x = std::sqrt(std::max(0.0, a.m2) / static_cast<double>(a.count));
        break;
      default: null = true; break;
    }
    if (null) {
      out->own_valid[r] = 0;
      any_null = true;
      continue;
    }
    if (agg.type == Type::kText) {
      const TextAcc& t = texts[order[r] * stride];
      out->own_s[r] = agg.func == AggFunc::kFirst ? t.first : t.last;
    } else if (integral) {
      out->own_i[r] = static_cast<int64_t>(std::llround(x));
    } else {
      out->own_d[r] = x;
    }
  }
  out->i = out->own_i.data();
  out->d = out->own_d.data();
  out->s = out->own_s.data();
  out->valid = any_null ? out->own_valid.data() : nullptr;
}

// The slot scope: group keys, then aggregate results, one row per group.
class GroupChunk : public ChunkSource {
 public:
  explicit GroupChunk(std::vector<Vec>* slots, size_t rows) : slots_(slots), rows_(rows) {}
  size_t rows() const override { return rows_; }
  bool Column(int32_t, FieldType, Vec*, SqlError*) override { return true; }
  void Slot(int32_t slot, Vec* out) override {
    const Vec& v = (*slots_)[static_cast<size_t>(slot)];
    out->type = v.type;
    out->n = v.n;
    out->i = v.i;
    out->d = v.d;
    out->s = v.s;
    out->valid = v.valid;
  }

 private:
  std::vector<Vec>* slots_;
  size_t rows_;
};

// Group keys are byte strings: per key a 0 byte for NULL, else a 1 byte and the value (8 bytes
// of an integer, timestamp or double; a 4-byte length and the bytes of a text). Groups from
// statistics and from decoded rows meet in one table, so every path encodes the same way.
inline void AppendKeyInt(int64_t x, std::string* key) {
  char bytes[9];
  bytes[0] = '\1';
  std::memcpy(bytes + 1, &x, 8);
  key->append(bytes, 9);
}

inline void AppendKey(const Vec& v, size_t r, std::string* key) {
  if (!v.IsValid(r)) {
    key->push_back('\0');
    return;
  }
  if (v.type == Type::kDouble) {
    int64_t bits;
    std::memcpy(&bits, &v.d[r], 8);
    AppendKeyInt(bits, key);
  } else if (v.type == Type::kText) {
    key->push_back('\1');
    uint32_t len = static_cast<uint32_t>(v.s[r].size());
    key->append(reinterpret_cast<const char*>(&len), 4);
    key->append(v.s[r]);
  } else {
    AppendKeyInt(v.i[r], key);
  }
}

// One thread's groups: their keys back to back in one string, an open-addressing index over
// them, and their accumulators. No allocation per group: an hourly rollup of a year of a
// thousand sensors has millions.
class GroupTable {
 public:
  GroupTable(size_t aggregates, bool texts) : aggregates_(aggregates), texts_(texts) {}

  size_t size() const { return hashes_.size(); }
  std::string_view Key(size_t g) const { return std::string_view(keys_).substr(starts_[g], starts_[g + 1] - starts_[g]); }
  uint64_t Hash(size_t g) const { return hashes_[g]; }
  Acc* Accs(size_t g) { return accs_.data() + g * aggregates_; }
  int64_t& Rows(size_t g) { return rows_[g]; }  // count(*)
  const int64_t* rows() const { return rows_.data(); }
  // The text accumulators of group g, aggregate a (null when no aggregate is of text).
  TextAcc* Text(size_t g, size_t a) { return texts_ ? &texts_acc_[g * aggregates_ + a] : nullptr; }
  const Acc* accs() const { return accs_.data(); }
  const TextAcc* texts() const { return texts_acc_.data(); }
  const std::string& keys() const { return keys_; }
  size_t KeyStart(size_t g) const { return starts_[g]; }

  static uint64_t HashOf(std::string_view key) { return std::hash<std::string_view>()(key); }

  // The group of `key`, added if new.
  size_t For(std::string_view key, uint64_t hash) {
    if ((size() + 1) * 2 > slots_.size()) Grow();
    size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      uint32_t s = slots_[i];
      if (s == 0) {
        slots_[i] = static_cast<uint32_t>(size() + 1);
        break;
      }
      if (hashes_[s - 1] == hash && Key(s - 1) == key) return s - 1;
    }
    hashes_.push_back(hash);
    keys_.append(key);
    starts_.push_back(keys_.size());
    rows_.push_back(0);
    accs_.resize(accs_.size() + aggregates_);
    if (texts_) texts_acc_.resize(texts_acc_.size() + aggregates_);
    return size() - 1;
  }
  size_t For(std::string_view key) { return For(key, HashOf(key)); }

  // Room for this many groups without moving the accumulators (an estimate: more may come).
  void Reserve(size_t groups) {
    hashes_.reserve(groups);
    starts_.reserve(groups + 1);
    rows_.reserve(groups);
    accs_.reserve(groups * aggregates_);
    if (texts_) texts_acc_.reserve(groups * aggregates_);
    while (groups * 2 > slots_.size()) Grow();
  }

  // The memory it holds (capacities; texts longer than a string's inline buffer not counted).
  size_t Bytes() const {
    return keys_.capacity() + (starts_.capacity() + hashes_.capacity() + rows_.capacity()) * 8 + slots_.capacity() * 4 +
           accs_.capacity() * sizeof(Acc) + texts_acc_.capacity() * sizeof(TextAcc);
  }

  QueryStats stats;
  std::optional<SqlError> error;  // of the thread that filled it

 private:
  void Grow() {
    slots_.assign(std::max<size_t>(64, slots_.size() * 2), 0);
    size_t mask = slots_.size() - 1;
    for (size_t g = 0; g < size(); ++g) {
      size_t i = hashes_[g] & mask;
      while (slots_[i] != 0) i = (i + 1) & mask;
      slots_[i] = static_cast<uint32_t>(g + 1);
    }
  }

  size_t aggregates_;
  bool texts_;
  std::string keys_;
  std::vector<size_t> starts_{0};  // group g's key is keys_[starts_[g], starts_[g + 1])
  std::vector<uint64_t> hashes_;
  std::vector<uint32_t> slots_;    // group + 1; 0 is empty
  std::vector<int64_t> rows_;      // per group
  std::vector<Acc> accs_;          // groups x aggregates
  std::vector<TextAcc> texts_acc_;
};

}  // namespace mare::query::exec
