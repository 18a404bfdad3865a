#include "sources/ingest.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "common/time.h"
#include "sources/source_metrics.h"

namespace mare {

Ingest::Ingest(log::Log* log, IngestOptions options, DeadLetter* dead_letter, metrics::Registry* registry)
    : log_(log),
      options_(std::move(options)),
      partitions_(log->Partitions(options_.topic)),
      partitioner_(log->TopicPartitioner(options_.topic)),
      dead_letter_(dead_letter),
      registry_(registry) {}

std::unique_ptr<Ingest::Worker> Ingest::NewWorker(const std::string& source, Acks acks) {
  return std::unique_ptr<Worker>(new Worker(this, source, acks));
}

Ingest::Worker::Worker(Ingest* ingest, std::string source, Acks acks)
    : ingest_(ingest),
      source_(std::move(source)),
      parser_(ingest->options_.parser),
      by_partition_(static_cast<size_t>(std::max(ingest->partitions_, 1))),
      received_(ingest->registry_->GetCounter(source_metrics::kReadingsReceived, {{"source", source_}})),
      accepted_(ingest->registry_->GetCounter(source_metrics::kReadingsAccepted, {{"source", source_}})),
      append_errors_(ingest->registry_->GetCounter(source_metrics::kAppendsFailed, {{"source", source_}})),
      lost_(ingest->registry_->GetCounter(source_metrics::kReadingsLost, {{"source", source_}})),
      acks_(acks) {
  for (int i = 0; i < kRejectReasonCount; ++i) {
    rejected_[static_cast<size_t>(i)] = &ingest->registry_->GetCounter(
        source_metrics::kReadingsRejected, {{"source", source_}, {"reason", ReasonName(static_cast<RejectReason>(i))}});
  }
  queue_.reserve(4096);
}

void Ingest::Worker::Add(std::string_view data, IngestReport* report) {
  report_ = report;
  buffer_start_ = data.data();
  if (report) report->buffer = data.data();
  now_us_ = NowMicros();
  size_t before = received_local_;
  parser_.Parse(data, now_us_, *this);
  received_.Add(received_local_ - before);  // one shared-counter add per buffer, not per reading
  report_ = nullptr;
}

void Ingest::Worker::OnReading(const Reading& r) {
  Queued& q = queue_.emplace_back();
  q.timestamp_us = r.timestamp_us;
  q.partition = log::PartitionFor(ingest_->partitioner_, r.sensor_id, ingest_->partitions_);
  auto [end, ec] = std::to_chars(q.key, q.key + sizeof q.key, r.sensor_id);
  q.key_len = static_cast<uint8_t>(end - q.key);
  q.value = r.raw;
  q.numbers_at = static_cast<uint32_t>(numbers_.size());
  q.number_count = static_cast<uint32_t>(r.numbers.size());
  numbers_.insert(numbers_.end(), r.numbers.begin(), r.numbers.end());
  ++received_local_;
  if (report_) {
    ++report_->accepted;
    report_->reading_offsets.push_back(static_cast<size_t>(r.raw.data() - buffer_start_));
  }
}

void Ingest::Worker::OnReject(const mare::Reject& reject) {
  ++received_local_;
  Count(reject.reason, reject.detail, reject.raw);
}

void Ingest::Worker::Reject(std::string_view raw, RejectReason reason, std::string detail, IngestReport* report) {
  report_ = report;
  buffer_start_ = raw.data();
  received_.Add();
  Count(reason, detail, raw);
  report_ = nullptr;
}

void Ingest::Worker::Count(RejectReason reason, std::string_view detail, std::string_view raw) {
  rejected_[static_cast<size_t>(reason)]->Add();
  if (ingest_->dead_letter_) ingest_->dead_letter_->Add(source_, ReasonName(reason), detail, raw);
  if (report_) {
    report_->reading_offsets.push_back(static_cast<size_t>(raw.data() - buffer_start_));
    ++report_->rejected;
    ++report_->by_reason[static_cast<size_t>(reason)];
    if (report_->errors.size() < report_->max_errors) {
      report_->errors.push_back({ReasonName(reason), std::string(detail), static_cast<size_t>(raw.data() - buffer_start_)});
    }
  }
}

Ingest::Worker::~Worker() {
  std::unique_lock lock(in_flight_mu_);
  in_flight_done_.wait(lock, [&] { return in_flight_ == 0; });
}

void Ingest::Worker::Settled(const Status& status, size_t readings) {
  if (status.ok()) {
    accepted_.Add(readings);
  } else {
    append_errors_.Add();
    lost_.Add(readings);
    lost_unlogged_.fetch_add(readings);
    // One line per 10 s at most while the log is away, not one per datagram batch.
    int64_t now = MonotonicMicros();
    int64_t last = last_error_log_us_.load();
    if (now - last >= 10'000'000 && last_error_log_us_.compare_exchange_strong(last, now)) {
      spdlog::error("{}: {} readings lost, log append failed: {}", source_, lost_unlogged_.exchange(0), status.ToString());
    }
  }
  std::lock_guard lock(in_flight_mu_);
  if (--in_flight_ == 0) in_flight_done_.notify_all();
}

Status Ingest::Worker::Flush(IngestReport* report) {
  if (queue_.empty()) return Status::OK();
  for (auto& records : by_partition_) records.clear();
  for (const Queued& q : queue_) {
    by_partition_[static_cast<size_t>(q.partition)].push_back(
        log::Record{q.timestamp_us, std::string_view(q.key, q.key_len), q.value, true,
                    std::span<const NumberField>(numbers_.data() + q.numbers_at, q.number_count)});
  }
  if (acks_ == Acks::kAsync) {
    for (size_t p = 0; p < by_partition_.size(); ++p) {
      if (by_partition_[p].empty()) continue;
      {
        std::lock_guard lock(in_flight_mu_);
        ++in_flight_;
      }
      size_t n = by_partition_[p].size();
      ingest_->log_->AppendAsync(ingest_->options_.topic, static_cast<int32_t>(p), by_partition_[p],
                                 [this, n](const Status& s) { Settled(s, n); });
    }
    queue_.clear();
    numbers_.clear();
    return Status::OK();
  }
  Status status;
  uint64_t appended = 0;
  for (size_t p = 0; p < by_partition_.size(); ++p) {
    if (by_partition_[p].empty()) continue;
    Status s = ingest_->log_->Append(ingest_->options_.topic, static_cast<int32_t>(p), by_partition_[p]);
    if (s.ok()) {
      appended += by_partition_[p].size();
    } else {
      append_errors_.Add();
      if (status.ok()) status = s;
      if (report && report->buffer) {
        report->accepted -= by_partition_[p].size();
        report->unacknowledged += by_partition_[p].size();
        for (const log::Record& r : by_partition_[p]) {
          report->unacknowledged_offsets.push_back(static_cast<size_t>(r.value.data() - report->buffer));
        }
      }
    }
  }
  if (report) std::sort(report->unacknowledged_offsets.begin(), report->unacknowledged_offsets.end());
  accepted_.Add(appended);
  queue_.clear();
  numbers_.clear();
  return status;
}

}  // namespace mare
