#include "query/result.h"

#include <algorithm>
#include <cmath>

#include "query/eval.h"

namespace mare::query {

Value ResultColumn::Get(size_t r) const {
  if (!IsValid(r)) return Value::Null(type_);
  if (IsDouble()) return Value::Double(d_[r]);
  if (IsText()) return Value::Text(std::string(Text(r)));
  return Value::Int(type_, i_[r]);
}

int ResultColumn::Compare(size_t a, size_t b) const {
  if (IsText()) {
    int c = Text(a).compare(Text(b));
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (IsDouble()) return d_[a] < d_[b] ? -1 : (d_[a] > d_[b] ? 1 : 0);
  return i_[a] < i_[b] ? -1 : (i_[a] > i_[b] ? 1 : 0);
}

void ResultColumn::Reserve(size_t rows) {
  valid_.reserve(rows);
  if (IsText()) {
    text_end_.reserve(rows);
  } else if (IsDouble()) {
    d_.reserve(rows);
  } else {
    i_.reserve(rows);
  }
}

void ResultColumn::Clear() {
  valid_.clear();
  i_.clear();
  d_.clear();
  text_.clear();
  text_end_.clear();
}

void ResultColumn::Append(const Vec& v, const uint32_t* sel, size_t n) {
  size_t at = size();
  valid_.resize(at + n);
  uint8_t* valid = valid_.data() + at;
  // A NULL vector (of a NULL constant, say) may have no values of this column's kind at all.
  bool all_valid = v.valid == nullptr && v.type != Type::kNull;
  if (all_valid) {
    std::fill(valid, valid + n, 1);
  } else {
    for (size_t r = 0; r < n; ++r) valid[r] = v.type != Type::kNull && v.valid[sel[r]] != 0;
  }
  if (IsText()) {
    text_end_.resize(at + n);
    for (size_t r = 0; r < n; ++r) {
      if (valid[r] && v.type == Type::kText) text_.append(v.s[sel[r]]);
      text_end_[at + r] = text_.size();
    }
    return;
  }
  if (IsDouble()) {
    d_.resize(at + n);
    double* d = d_.data() + at;
    if (all_valid && v.type == Type::kDouble) {
      for (size_t r = 0; r < n; ++r) d[r] = v.d[sel[r]];
    } else {
      for (size_t r = 0; r < n; ++r) d[r] = valid[r] ? v.AsDouble(sel[r]) : 0;
    }
    return;
  }
  i_.resize(at + n);
  int64_t* out = i_.data() + at;
  if (all_valid && v.type != Type::kDouble) {
    for (size_t r = 0; r < n; ++r) out[r] = v.i[sel[r]];
  } else {
    for (size_t r = 0; r < n; ++r) {
      if (!valid[r]) {
        out[r] = 0;
      } else {
        out[r] = v.type == Type::kDouble ? static_cast<int64_t>(std::llround(v.d[sel[r]])) : v.i[sel[r]];
      }
    }
  }
}

void ResultColumn::Append(const Value& v) {
  bool valid = !v.null && v.type != Type::kNull;
  valid_.push_back(valid ? 1 : 0);
  if (IsText()) {
    if (valid && v.type == Type::kText) text_.append(v.s);
    text_end_.push_back(text_.size());
  } else if (IsDouble()) {
    d_.push_back(valid ? v.AsDouble() : 0);
  } else {
    i_.push_back(!valid ? 0 : v.type == Type::kDouble ? static_cast<int64_t>(std::llround(v.d)) : v.i);
  }
}

ResultColumn ResultColumn::Gather(const uint32_t* order, size_t n) const {
  ResultColumn out(type_);
  out.valid_.resize(n);
  for (size_t r = 0; r < n; ++r) out.valid_[r] = valid_[order[r]];
  if (IsText()) {
    out.text_end_.resize(n);
    for (size_t r = 0; r < n; ++r) {
      out.text_.append(Text(order[r]));
      out.text_end_[r] = out.text_.size();
    }
  } else if (IsDouble()) {
    out.d_.resize(n);
    for (size_t r = 0; r < n; ++r) out.d_[r] = d_[order[r]];
  } else {
    out.i_.resize(n);
    for (size_t r = 0; r < n; ++r) out.i_[r] = i_[order[r]];
  }
  return out;
}

}  // namespace mare::query
