#include "processors/forecast/residual_book.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace mare::forecast {

namespace {

// The q quantile with linear interpolation between order statistics (numpy's default).
double Quantile(std::vector<double>& v, double q) {
  double pos = q * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(lo), v.end());
  double a = v[lo];
  if (lo + 1 >= v.size()) return a;
  double b = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(lo) + 1, v.end());
  return a + (pos - static_cast<double>(lo)) * (b - a);
}

}  // namespace

ResidualBook::ResidualBook(int leads, ResidualOptions options) : options_(options), leads_(leads) {}

void ResidualBook::Add(int64_t origin, int lead, double error) {
  if (lead < 1 || lead > leads_ || std::isnan(error)) return;
  if (by_lead_.empty()) {
    by_lead_.resize(static_cast<size_t>(leads_));
    versions_.assign(static_cast<size_t>(leads_), 0);
  }
  auto& errors = by_lead_[lead - 1];
  // One error a day and lead is kept for the longest window a reader asks for (below): room for
  // them at once, not the doubling's up to 2x. Reserved for the whole window at the first error,
  // so a book's memory (16 bytes a day and lead) is all there from its first day.
  const int64_t keep_days = options_.keep_days > 0 ? options_.keep_days : options_.interval_window_days + 2;
  if (errors.capacity() == 0) errors.reserve(static_cast<size_t>(keep_days) + 2);
  if (!errors.empty() && origin < errors.back().first) sorted_ = false;
  errors.emplace_back(origin, error);
  ++versions_[lead - 1];
  // Keep what the longest window may read. (It kept 60 more days than the interval's window
  // before, which no reader asked for: twice the memory.)
  int64_t keep_from = origin - 24 * keep_days;
  auto keep = errors.begin();
  while (keep != errors.end() && keep->first < keep_from) ++keep;
  errors.erase(errors.begin(), keep);
}

void ResidualBook::Key(int64_t origin, int lead, int days, std::vector<uint32_t>* key) const {
  key->clear();
  const int64_t from = origin - 24 * static_cast<int64_t>(days);
  int first = std::max(1, lead - options_.lead_pool);
  int last = std::min(static_cast<int>(by_lead_.size()), lead + options_.lead_pool);
  for (int l = first; l <= last; ++l) {
    const auto& errors = by_lead_[l - 1];
    auto before = [](const std::pair<int64_t, double>& e, int64_t t) { return e.first < t; };
    auto end = std::lower_bound(errors.begin(), errors.end(), origin, before);
    auto begin = std::lower_bound(errors.begin(), end, from, before);
    key->push_back(versions_[l - 1]);
    key->push_back(static_cast<uint32_t>(begin - errors.begin()));
    key->push_back(static_cast<uint32_t>(end - errors.begin()));
  }
}

bool ResidualBook::Reuse(Answer* answer, int days) const {
  if (answer->days == days && answer->from == key_) return true;
  answer->days = days;
  answer->from = key_;
  answer->ok = false;
  return false;
}

void ResidualBook::Collect(int64_t origin, int lead, int days, std::vector<double>* out) const {
  out->clear();
  int64_t from = origin - 24 * static_cast<int64_t>(days);
  int first = std::max(1, lead - options_.lead_pool);
  int last = std::min(static_cast<int>(by_lead_.size()), lead + options_.lead_pool);
  for (int l = first; l <= last; ++l) {
    const auto& errors = by_lead_[l - 1];
    for (auto it = errors.rbegin(); it != errors.rend() && it->first >= from; ++it) {
      if (it->first < origin) out->push_back(it->second);
    }
  }
}

bool ResidualBook::Interval(int64_t origin, int lead, double* lower, double* upper) const {
  Answer* answer = nullptr;
  if (sorted_ && lead >= 1 && lead <= leads_) {
    if (interval_answers_.empty()) interval_answers_.resize(static_cast<size_t>(leads_));
    answer = &interval_answers_[static_cast<size_t>(lead - 1)];
    Key(origin, lead, options_.interval_window_days, &key_);
    if (Reuse(answer, options_.interval_window_days)) {
      if (!answer->ok) return false;
      *lower = answer->a;
      *upper = answer->b;
      return true;
    }
  }
  Collect(origin, lead, options_.interval_window_days, &scratch_);
  if (static_cast<int>(scratch_.size()) < options_.min_errors) return false;
  double tail = (1 - options_.coverage) / 2;
  *lower = Quantile(scratch_, tail);
  *upper = Quantile(scratch_, 1 - tail);
  if (answer != nullptr) {
    answer->ok = true;
    answer->a = *lower;
    answer->b = *upper;
  }
  return true;
}

double ResidualBook::RecentMae(int64_t origin, int lead, int days) const {
  Answer* answer = nullptr;
  if (sorted_ && lead >= 1 && lead <= leads_) {
    if (mae_answers_.empty()) mae_answers_.resize(static_cast<size_t>(leads_));
    answer = &mae_answers_[static_cast<size_t>(lead - 1)];
    Key(origin, lead, days, &key_);
    if (Reuse(answer, days)) return answer->a;
  }
  Collect(origin, lead, days, &scratch_);
  double mae = std::numeric_limits<double>::quiet_NaN();
  if (!scratch_.empty()) {
    double sum = 0;
    for (double e : scratch_) sum += std::fabs(e);
    mae = sum / static_cast<double>(scratch_.size());
  }
  if (answer != nullptr) answer->a = mae;
  return mae;
}

double ResidualBook::MeanAbsError(int64_t origin, int days, int64_t* count) const {
  const int64_t from = origin - 24 * static_cast<int64_t>(days);
  double sum = 0;
  int64_t n = 0;
  for (const auto& errors : by_lead_) {
    for (auto it = errors.rbegin(); it != errors.rend() && it->first >= from; ++it) {
      if (it->first >= origin) continue;
      sum += std::fabs(it->second);
      ++n;
    }
  }
  *count = n;
  return n > 0 ? sum / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
}

std::vector<ResidualBook::Errors> ResidualBook::Save(int64_t from) const {
  std::vector<Errors> out(static_cast<size_t>(leads_));
  for (size_t l = 0; l < by_lead_.size(); ++l) {
    for (const auto& e : by_lead_[l]) {
      if (e.first >= from) out[l].push_back(e);
    }
  }
  return out;
}

void ResidualBook::Load(const std::vector<Errors>& by_lead) {
  by_lead_.clear();
  versions_.clear();
  mae_answers_.clear();
  interval_answers_.clear();
  sorted_ = true;
  bool any = false;
  for (const Errors& errors : by_lead) any = any || !errors.empty();
  if (any) {
    by_lead_.resize(static_cast<size_t>(leads_));
    versions_.assign(static_cast<size_t>(leads_), 0);
  }
  for (size_t l = 0; l < by_lead_.size(); ++l) {
    by_lead_[l].clear();
    if (l < by_lead.size()) by_lead_[l].assign(by_lead[l].begin(), by_lead[l].end());
    for (size_t i = 1; i < by_lead_[l].size(); ++i) sorted_ = sorted_ && by_lead_[l][i - 1].first <= by_lead_[l][i].first;
  }
}

}  // namespace mare::forecast
