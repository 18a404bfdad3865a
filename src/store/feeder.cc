#include "store/feeder.h"

#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/time.h"
#include "store/store_metrics.h"

namespace mare::store {
namespace {

// Adds parsed readings to the store; counts what does not parse (ingest validated every raw
// reading, so that is a reading from another producer, or a stricter configuration since).
class StoreSink : public ReadingSink {
 public:
  StoreSink(Store::Batch* batch, metrics::Counter* rejected) : batch_(batch), rejected_(rejected) {}
  void OnReading(const Reading& reading) override { batch_->Add(reading); }
  void OnReject(const Reject& reject) override {
    rejected_->Add();
    spdlog::warn("store: raw reading not stored ({}): {}", ReasonName(reject.reason), reject.detail);
  }

 private:
  Store::Batch* batch_;
  metrics::Counter* rejected_;
};

}  // namespace

Result<std::unique_ptr<StoreFeeder>> StoreFeeder::Start(Store* store, log::Log* log, const ParserOptions& parser_options,
                                                        const FeederOptions& options, metrics::Registry* registry) {
  std::unique_ptr<StoreFeeder> f(new StoreFeeder(store, parser_options, options, registry));
  MARE_RETURN_IF_ERROR(f->loop_.Start(f.get(), log,
                                      {.name = "store",
                                       .kept = "readings",
                                       .topic = options.topic,
                                       .group = options.group,
                                       .poll_records = options.poll_records,
                                       .dedup = store->options().raw_dedup},
                                      {.lag = &registry->GetGauge(store_metrics::kLagRecords),
                                       .up = &registry->GetGauge(store_metrics::kConsumerUp),
                                       .failures = &registry->GetCounter(store_metrics::kStepsFailed),
                                       .duplicates = &registry->GetCounter(store_metrics::kDuplicatesDropped)}));
  return f;
}

StoreFeeder::StoreFeeder(Store* store, const ParserOptions& parser_options, const FeederOptions& options,
                         metrics::Registry* registry)
    : store_(store), options_(options), parser_(parser_options) {
  rejected_ = &registry->GetCounter(store_metrics::kReadingsRejected);
  segments_gauge_ = &registry->GetGauge(store_metrics::kDiskSegments);
  bytes_gauge_ = &registry->GetGauge(store_metrics::kDiskBytes);
  rows_gauge_ = &registry->GetGauge(store_metrics::kDiskRows);
  memtable_gauge_ = &registry->GetGauge(store_metrics::kMemtableRows);
}

StoreFeeder::~StoreFeeder() {
  if (Status s = Stop(); !s.ok()) spdlog::error("store: final flush at shutdown failed: {}", s.ToString());
}

Status StoreFeeder::Apply(const std::vector<log::ConsumedRecord>& records) {
  size_t bytes = 0;
  for (const auto& r : records) bytes += r.value.size() + 1;
  lines_.Reserve(bytes);
  char* out = lines_.data();
  for (const auto& r : records) {
    std::memcpy(out, r.value.data(), r.value.size());
    out += r.value.size();
    *out++ = '\n';
  }
  lines_.set_size(bytes);
  int64_t now = NowMicros();
  store_->Write([&](Store::Batch& b) {
    StoreSink sink(&b, rejected_);
    parser_.Parse(lines_.view(), now, sink);
  });
  return Status::OK();
}

Result<bool> StoreFeeder::Persist(const std::vector<int64_t>& read) {
  const auto& o = store_->options();
  bool flushed = false;
  if (store_->memtable_rows() >= o.flush_rows || store_->memtable_age_us() >= o.flush_interval_us) {
    MARE_RETURN_IF_ERROR(store_->Flush(read));
    flushed = true;
  }
  int64_t now = MonotonicMicros();
  if (now >= next_retention_us_) {
    auto dropped = store_->ApplyRetention(NowMicros());
    if (!dropped.ok()) return dropped.status();
    if (*dropped > 0) spdlog::info("store: retention dropped {} readings", *dropped);
    next_retention_us_ = now + std::min(options_.retention_check_us, std::max<int64_t>(o.flush_interval_us, 1'000'000));
  }
  return flushed;
}

Status StoreFeeder::Finish(const std::vector<int64_t>& read) {
  return store_->memtable_rows() > 0 ? store_->Flush(read) : Status::OK();
}

void StoreFeeder::RefreshGauges() {
  Store::Stats stats = store_->GetStats();
  segments_gauge_->Set(static_cast<double>(stats.segments));
  bytes_gauge_->Set(static_cast<double>(stats.bytes));
  rows_gauge_->Set(static_cast<double>(stats.rows));
  memtable_gauge_->Set(static_cast<double>(stats.memtable_rows));
}

}  // namespace mare::store
