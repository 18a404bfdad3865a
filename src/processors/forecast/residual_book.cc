#include "processors/forecast/residual_book.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace mare::forecast {

namespace {

constexpr double kNone = std::numeric_limits<double>::quiet_NaN();

int64_t FloorDiv(int64_t v, int64_t d) {
  int64_t q = v / d;
  return q - (v % d < 0 ? 1 : 0);
}

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

// The errors an interval is computed from, per thread (the processor's issue pool): one buffer
// for every book, not one held by each of a series' books.
std::vector<double>& Scratch() {
  thread_local std::vector<double> scratch;
  return scratch;
}

}  // namespace

ResidualBook::ResidualBook(int leads, ResidualOptions options)
    : options_(options),
      leads_(leads),
      keep_days_(options.keep_days > 0 ? options.keep_days : options.interval_window_days + 2) {}

void ResidualBook::Add(int64_t origin, int lead, double error) {
  if (lead < 1 || lead > leads_ || std::isnan(error) || FloorDiv(origin, kOriginStep) * kOriginStep != origin) return;
  Place(origin, lead, error);
}

size_t ResidualBook::Slot(int64_t day) const {
  int64_t s = day % span();
  return static_cast<size_t>(s < 0 ? s + span() : s);
}

void ResidualBook::MoveTo(int64_t day) {
  // Days [newest_ - keep_days_, day - keep_days_) leave; their slots become the new days'. No
  // answer's stamp need change: one that read a leaving day reads from a later first day now
  // (Reuse compares it), and the new days are empty until Place bumps their leads.
  const int64_t leaving = std::min<int64_t>(day - newest_, span());
  const size_t n = static_cast<size_t>(span());
  for (int64_t d = newest_ - keep_days_; d < newest_ - keep_days_ + leaving; ++d) {
    const size_t slot = Slot(d);
    for (size_t l = 0; l < static_cast<size_t>(leads_); ++l) errors_[l * n + slot] = kNone;
  }
  newest_ = day;
}

void ResidualBook::Place(int64_t origin, int lead, double error) {
  const int64_t day = origin / kOriginStep;
  if (errors_.empty()) {
    // Every lead's whole window at once, at the first error: a book's memory (8 bytes a day and
    // lead) is all there from its first day, and never grows.
    errors_.assign(static_cast<size_t>(leads_) * static_cast<size_t>(span()), kNone);
    changed_.assign(static_cast<size_t>(leads_), ++stamp_);
    newest_ = day;
  }
  if (day > newest_) MoveTo(day);
  if (day < newest_ - keep_days_) return;  // older than any reader's window
  errors_[static_cast<size_t>(lead - 1) * static_cast<size_t>(span()) + Slot(day)] = error;
  changed_[static_cast<size_t>(lead - 1)] = ++stamp_;
}

void ResidualBook::Days(int64_t origin, int days, int64_t* first, int64_t* end) const {
  // Origins o = 24 d with origin - 24 days <= o < origin.
  *first = FloorDiv(origin - kOriginStep * static_cast<int64_t>(days) + kOriginStep - 1, kOriginStep);
  *end = FloorDiv(origin + kOriginStep - 1, kOriginStep);
}

void ResidualBook::Kept(int64_t* first, int64_t* end) const {
  if (errors_.empty()) {
    *end = *first;
    return;
  }
  *first = std::max(*first, newest_ - keep_days_);
  *end = std::min(*end, newest_ + 1);
}

bool ResidualBook::Reuse(Answer* answer, int64_t origin, int lead, int days) const {
  // What the answer reads: its window's days, of which the kept ones (days after the newest are
  // empty until Place bumps their lead, so only the first kept day matters), and the pooled
  // leads' errors on them, unchanged since the answer's stamp.
  int64_t first = 0, end = 0;
  Days(origin, days, &first, &end);
  const int64_t kept_from = errors_.empty() ? 0 : std::max(first, newest_ - keep_days_);
  uint64_t changed = 0;
  if (!changed_.empty()) {
    int from = std::max(1, lead - options_.lead_pool);
    int to = std::min(leads_, lead + options_.lead_pool);
    for (int l = from; l <= to; ++l) changed = std::max(changed, changed_[static_cast<size_t>(l - 1)]);
  }
  if (answer->days == days && answer->first == first && answer->end == end && answer->kept_from == kept_from &&
      changed <= answer->stamp) {
    return true;
  }
  answer->days = days;
  answer->first = first;
  answer->end = end;
  answer->kept_from = kept_from;
  answer->stamp = stamp_;
  answer->ok = false;
  return false;
}

void ResidualBook::Collect(int64_t origin, int lead, int days, std::vector<double>* out) const {
  out->clear();
  int64_t first = 0, end = 0;
  Days(origin, days, &first, &end);
  Kept(&first, &end);
  int from = std::max(1, lead - options_.lead_pool);
  int to = std::min(leads_, lead + options_.lead_pool);
  for (int l = from; l <= to && first < end; ++l) {
    NewestFirst(Lead(l), first, end, [&](double e) { out->push_back(e); });
  }
}

bool ResidualBook::Interval(int64_t origin, int lead, double* lower, double* upper) const {
  Answer* answer = nullptr;
  if (lead >= 1 && lead <= leads_) {
    if (interval_answers_.empty()) interval_answers_.resize(static_cast<size_t>(leads_));
    answer = &interval_answers_[static_cast<size_t>(lead - 1)];
    if (Reuse(answer, origin, lead, options_.interval_window_days)) {
      if (!answer->ok) return false;
      *lower = answer->a;
      *upper = answer->b;
      return true;
    }
  }
  std::vector<double>& errors = Scratch();
  Collect(origin, lead, options_.interval_window_days, &errors);
  if (static_cast<int>(errors.size()) < options_.min_errors) return false;
  double tail = (1 - options_.coverage) / 2;
  *lower = Quantile(errors, tail);
  *upper = Quantile(errors, 1 - tail);
  if (answer != nullptr) {
    answer->ok = true;
    answer->a = *lower;
    answer->b = *upper;
  }
  return true;
}

double ResidualBook::RecentMae(int64_t origin, int lead, int days) const {
  Answer* answer = nullptr;
  if (lead >= 1 && lead <= leads_) {
    if (mae_answers_.empty()) mae_answers_.resize(static_cast<size_t>(leads_));
    answer = &mae_answers_[static_cast<size_t>(lead - 1)];
    if (Reuse(answer, origin, lead, days)) return answer->a;
  }
  // The pooled leads' errors, each newest first, summed in that order.
  int64_t first = 0, end = 0;
  Days(origin, days, &first, &end);
  Kept(&first, &end);
  int from = std::max(1, lead - options_.lead_pool);
  int to = std::min(leads_, lead + options_.lead_pool);
  double sum = 0;
  int64_t n = 0;
  for (int l = from; l <= to && first < end; ++l) {
    NewestFirst(Lead(l), first, end, [&](double e) {
      sum += std::fabs(e);
      ++n;
    });
  }
  double mae = n > 0 ? sum / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
  if (answer != nullptr) answer->a = mae;
  return mae;
}

double ResidualBook::MeanAbsError(int64_t origin, int days, int64_t* count) const {
  int64_t first = 0, end = 0;
  Days(origin, days, &first, &end);
  Kept(&first, &end);
  double sum = 0;
  int64_t n = 0;
  for (int l = 1; l <= leads_ && first < end; ++l) {
    NewestFirst(Lead(l), first, end, [&](double e) {
      sum += std::fabs(e);
      ++n;
    });
  }
  *count = n;
  return n > 0 ? sum / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
}

std::vector<ResidualBook::Errors> ResidualBook::Save(int64_t from) const {
  std::vector<Errors> out(static_cast<size_t>(leads_));
  if (errors_.empty()) return out;
  const int64_t first = std::max(newest_ - keep_days_, FloorDiv(from + kOriginStep - 1, kOriginStep));
  for (int l = 1; l <= leads_; ++l) {
    const double* errors = Lead(l);
    for (int64_t d = first; d <= newest_; ++d) {
      double e = errors[Slot(d)];
      if (!std::isnan(e)) out[static_cast<size_t>(l - 1)].emplace_back(d * kOriginStep, e);
    }
  }
  return out;
}

void ResidualBook::Load(const std::vector<Errors>& by_lead) {
  errors_.clear();
  errors_.shrink_to_fit();
  changed_.clear();
  mae_answers_.clear();
  interval_answers_.clear();
  stamp_ = 0;
  // The newest origin first, so that the errors are kept as Add would have kept them.
  bool any = false;
  int64_t newest = 0;
  for (size_t l = 0; l < by_lead.size() && l < static_cast<size_t>(leads_); ++l) {
    for (const auto& [origin, error] : by_lead[l]) {
      if (std::isnan(error) || FloorDiv(origin, kOriginStep) * kOriginStep != origin) continue;
      newest = any ? std::max(newest, origin) : origin;
      any = true;
    }
  }
  if (!any) return;
  Place(newest, 1, kNone);  // allocates the ring with newest as its newest day; NaN: no error
  for (size_t l = 0; l < by_lead.size() && l < static_cast<size_t>(leads_); ++l) {
    for (const auto& [origin, error] : by_lead[l]) {
      if (std::isnan(error) || FloorDiv(origin, kOriginStep) * kOriginStep != origin) continue;
      Place(origin, static_cast<int>(l) + 1, error);
    }
  }
}

}  // namespace mare::forecast
