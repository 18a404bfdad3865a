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
  if (log->Partitions(options.topic) == 0) {
    return Status::NotFound("store: the log has no topic " + options.topic + " (mare run creates it)");
  }
  std::unique_ptr<StoreFeeder> f(new StoreFeeder(store, log, parser_options, options, registry));
  MARE_RETURN_IF_ERROR(f->Recover());
  StoreFeeder* raw = f.get();
  f->thread_.Start({.step = [raw] { return raw->Step(); },
                    .recover = [raw] { return raw->Retry(); },
                    .on_error = [raw](const Status& s, bool will_retry) {
                      raw->failures_->Add();
                      if (!will_retry) {
                        spdlog::error("store: stopped: {}", s.ToString());
                      } else if (raw->thread_.healthy()) {  // once per outage, not per retry
                        spdlog::error("store: {}; retrying with backoff (readings are kept in the log meanwhile)", s.ToString());
                      }
                    },
                    .on_health_change = [raw] { raw->RefreshHealth(); }});
  return f;
}

StoreFeeder::StoreFeeder(Store* store, log::Log* log, const ParserOptions& parser_options, const FeederOptions& options,
                         metrics::Registry* registry)
    : store_(store), log_(log), options_(options), parser_(parser_options) {
  rejected_ = &registry->GetCounter(store_metrics::kReadingsRejected);
  lag_gauge_ = &registry->GetGauge(store_metrics::kLagRecords);
  segments_gauge_ = &registry->GetGauge(store_metrics::kDiskSegments);
  bytes_gauge_ = &registry->GetGauge(store_metrics::kDiskBytes);
  rows_gauge_ = &registry->GetGauge(store_metrics::kDiskRows);
  memtable_gauge_ = &registry->GetGauge(store_metrics::kMemtableRows);
  consumer_up_ = &registry->GetGauge(store_metrics::kConsumerUp);
  failures_ = &registry->GetCounter(store_metrics::kStepsFailed);
  consumer_up_->Set(1);
}

StoreFeeder::~StoreFeeder() {
  if (Status s = Stop(); !s.ok()) spdlog::error("store: final flush at shutdown failed: {}", s.ToString());
}

Status StoreFeeder::Recover() {
  auto consumer = log_->Subscribe(options_.group, options_.topic);
  if (!consumer.ok()) return consumer.status();
  consumer_ = std::move(*consumer);
  int32_t partitions = log_->Partitions(options_.topic);
  std::vector<int64_t> position = store_->raw_offsets();
  next_offsets_.assign(static_cast<size_t>(partitions), 0);
  for (int32_t p = 0; p < partitions; ++p) {
    int64_t from = static_cast<size_t>(p) < position.size() ? std::max<int64_t>(0, position[static_cast<size_t>(p)]) : 0;
    MARE_RETURN_IF_ERROR(consumer_->Seek(p, from));
    int64_t at = consumer_->Position(p);
    if (at > from) {
      spdlog::warn("store: {} partition {}: offsets {}..{} were removed by the log's retention before being stored",
                   options_.topic, p, from, at - 1);
    }
    next_offsets_[static_cast<size_t>(p)] = at;
  }
  return Status::OK();
}

Status StoreFeeder::Step() {
  MARE_RETURN_IF_ERROR(consumer_->Poll(&batch_, options_.poll_records, std::chrono::milliseconds(100)));
  if (!batch_.empty()) {
    size_t bytes = 0;
    for (const auto& r : batch_) bytes += r.value.size() + 1;
    lines_.Reserve(bytes);
    char* out = lines_.data();
    for (const auto& r : batch_) {
      std::memcpy(out, r.value.data(), r.value.size());
      out += r.value.size();
      *out++ = '\n';
      next_offsets_[static_cast<size_t>(r.partition)] = r.offset + 1;
    }
    lines_.set_size(bytes);
    int64_t now = NowMicros();
    store_->Write([&](Store::Batch& b) {
      StoreSink sink(&b, rejected_);
      parser_.Parse(lines_.view(), now, sink);
    });
    int64_t consumed = 0;
    for (int64_t o : next_offsets_) consumed += o;
    thread_.set_consumed(consumed);
  }
  const auto& o = store_->options();
  if (store_->memtable_rows() >= o.flush_rows || store_->memtable_age_us() >= o.flush_interval_us) {
    MARE_RETURN_IF_ERROR(FlushAndCommit());
  }
  int64_t now = MonotonicMicros();
  if (now >= next_lag_us_) {
    RefreshLag();
    next_lag_us_ = now + 1'000'000;
  }
  if (now >= next_retention_us_) {
    auto dropped = store_->ApplyRetention(NowMicros());
    if (!dropped.ok()) return dropped.status();
    if (*dropped > 0) spdlog::info("store: retention dropped {} readings", *dropped);
    next_retention_us_ = now + std::min(options_.retention_check_us, std::max<int64_t>(store_->options().flush_interval_us, 1'000'000));
  }
  return Status::OK();
}

Status StoreFeeder::FlushAndCommit() {
  MARE_RETURN_IF_ERROR(store_->Flush(next_offsets_));
  // The group's committed position is for `mare log groups`; the segments hold the truth, so a
  // commit that fails (a Kafka coordinator moving) is only worth a warning.
  for (size_t p = 0; p < next_offsets_.size(); ++p) {
    if (consumer_->Committed(static_cast<int32_t>(p)) == next_offsets_[p]) continue;
    Status s = consumer_->Commit(static_cast<int32_t>(p), next_offsets_[p]);
    if (!s.ok()) spdlog::warn("store: commit of group {} failed: {}", options_.group, s.ToString());
  }
  return Status::OK();
}

Status StoreFeeder::Retry() {
  return store_->memtable_rows() > 0 ? FlushAndCommit() : Status::OK();
}

void StoreFeeder::RefreshHealth() {
  consumer_up_->Set(thread_.healthy() ? 1 : 0);
  RefreshLag();
}

void StoreFeeder::RefreshLag() {
  if (int64_t lag = consumer_->Lag(static_cast<int32_t>(next_offsets_.size())); lag >= 0) {
    thread_.set_lag(lag);
    lag_gauge_->Set(static_cast<double>(lag));
  }
  Store::Stats stats = store_->GetStats();
  segments_gauge_->Set(static_cast<double>(stats.segments));
  bytes_gauge_->Set(static_cast<double>(stats.bytes));
  rows_gauge_->Set(static_cast<double>(stats.rows));
  memtable_gauge_->Set(static_cast<double>(stats.memtable_rows));
}

Status StoreFeeder::Stop() {
  return thread_.Stop([this] { return store_->memtable_rows() > 0 ? FlushAndCommit() : Status::OK(); });
}

}  // namespace mare::store
