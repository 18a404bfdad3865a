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

// An origin at 00:00 (a multiple of the step), checked by remainder: floor-dividing and
// multiplying back overflowed for origins near the smallest int64 (a hostile checkpoint, fuzz).
bool AtDayStart(int64_t origin) { return origin % ResidualBook::kOriginStep == 0; }

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
  if (lead < 1 || lead > leads_ || std::isnan(error) || !AtDayStart(origin)) return;
  Place(origin, lead, error);
}

size_t ResidualBook::Slot(int64_t day) const {
  int64_t s = day % days_;
  return static_cast<size_t>(s < 0 ? s + days_ : s);
}

void ResidualBook::Grow(int days) {
  // The days held, [newest_ - days_ + 1, newest_], each in its place in rings of `days` days:
  // fewer than `days`, so no two share one. Exactly that size (a vector's doubling would give
  // up to twice the memory the errors need, at every book of every series).
  std::vector<double> grown(static_cast<size_t>(leads_) * static_cast<size_t>(days), kNone);
  const size_t from = static_cast<size_t>(days_), to = static_cast<size_t>(days);
  for (int64_t d = std::max(oldest_, newest_ - days_ + 1); d <= newest_; ++d) {
    const size_t slot = Slot(d);
    const int64_t s = d % days;
    const size_t dest = static_cast<size_t>(s < 0 ? s + days : s);
    for (size_t l = 0; l < static_cast<size_t>(leads_); ++l) grown[l * to + dest] = errors_[l * from + slot];
  }
  errors_.swap(grown);
  days_ = days;
}

void ResidualBook::MoveTo(int64_t day) {
  // Days before day - keep_days_ leave. The rings grow to hold the errors' days from the oldest
  // that stays to the new newest (at most span()); then the slots of the new days, which held
  // days that left or none, are emptied. No answer's stamp need change: one that read a leaving
  // day reads from a later first day now (Reuse compares it), and the new days are empty until
  // Place bumps their leads.
  int64_t oldest = std::max(oldest_, day - keep_days_);
  if (oldest > newest_) oldest = day;  // every day held leaves: the rings need not grow
  const int days = static_cast<int>(std::min<int64_t>(day - oldest + 1, span()));
  if (days > days_) Grow(days);
  const int64_t fresh = std::min<int64_t>(day - newest_, days_);
  const size_t n = static_cast<size_t>(days_);
  for (int64_t d = day - fresh + 1; d <= day; ++d) {
    const size_t slot = Slot(d);
    for (size_t l = 0; l < static_cast<size_t>(leads_); ++l) errors_[l * n + slot] = kNone;
  }
  newest_ = day;
  oldest_ = oldest;
}

void ResidualBook::Place(int64_t origin, int lead, double error) {
  const int64_t day = origin / kOriginStep;
  if (errors_.empty()) {
    // One day of every lead at the first error; the rings grow as the days come (MoveTo), so a
    // book's memory follows the days it has errors of.
    days_ = 1;
    errors_.assign(static_cast<size_t>(leads_), kNone);
    changed_.assign(static_cast<size_t>(leads_), ++stamp_);
    newest_ = oldest_ = day;
  }
  if (day > newest_) MoveTo(day);
  if (day < newest_ - keep_days_) return;  // older than any reader's window
  if (day < newest_ - days_ + 1) Grow(static_cast<int>(newest_ - day + 1));  // a late error of an older day
  oldest_ = std::min(oldest_, day);
  errors_[static_cast<size_t>(lead - 1) * static_cast<size_t>(days_) + Slot(day)] = error;
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
  // Days before the rings' (at least newest_ - keep_days_) hold no error: not read.
  *first = std::max(*first, newest_ - days_ + 1);
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

double ResidualBook::BlendMae(const ResidualBook& other, double w, int64_t origin, int days, int64_t* count) const {
  int64_t first = 0, end = 0;
  Days(origin, days, &first, &end);
  Kept(&first, &end);
  other.Kept(&first, &end);
  double sum = 0;
  int64_t n = 0;
  const int leads = std::min(leads_, other.leads_);
  for (int l = 1; l <= leads && first < end; ++l) {
    const double *mine = Lead(l), *theirs = other.Lead(l);
    for (int64_t d = end - 1; d >= first; --d) {  // newest first, as the other sums
      double a = mine[Slot(d)], b = theirs[other.Slot(d)];
      if (std::isnan(a) || std::isnan(b)) continue;
      sum += std::fabs(w * a + (1 - w) * b);
      ++n;
    }
  }
  *count = n;
  return n > 0 ? sum / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
}

std::vector<ResidualBook::Errors> ResidualBook::Save(int64_t from) const {
  std::vector<Errors> out(static_cast<size_t>(leads_));
  if (errors_.empty()) return out;
  const int64_t first = std::max(newest_ - days_ + 1, FloorDiv(from + kOriginStep - 1, kOriginStep));
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
  days_ = 0;
  changed_.clear();
  mae_answers_.clear();
  interval_answers_.clear();
  stamp_ = 0;
  // The newest origin first, so that the errors are kept as Add would have kept them.
  bool any = false;
  int64_t newest = 0;
  for (size_t l = 0; l < by_lead.size() && l < static_cast<size_t>(leads_); ++l) {
    for (const auto& [origin, error] : by_lead[l]) {
      if (std::isnan(error) || !AtDayStart(origin)) continue;
      newest = any ? std::max(newest, origin) : origin;
      any = true;
    }
  }
  if (!any) return;
  Place(newest, 1, kNone);  // allocates the rings with newest as their newest day; NaN: no error
  for (size_t l = 0; l < by_lead.size() && l < static_cast<size_t>(leads_); ++l) {
    for (const auto& [origin, error] : by_lead[l]) {
      if (std::isnan(error) || !AtDayStart(origin)) continue;
      Place(origin, static_cast<int>(l) + 1, error);
    }
  }
}

}  // namespace mare::forecast
