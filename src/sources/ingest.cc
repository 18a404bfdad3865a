#include "sources/ingest.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "common/time.h"
#include "sources/raw_readback.h"
#include "sources/source_metrics.h"

namespace mare {

Ingest::Ingest(log::Log* log, IngestOptions options, DeadLetter* dead_letter, metrics::Registry* registry)
    : log_(log),
      options_(std::move(options)),
      partitions_(log->Partitions(options_.topic)),
      partitioner_(log->TopicPartitioner(options_.topic)),
      dead_letter_(dead_letter),
      registry_(registry) {
  if (options_.dedup_horizon_us > 0) {
    for (int32_t p = 0; p < std::max(partitions_, 1); ++p) {
      dedup_.push_back(std::make_unique<DedupShard>(options_.dedup_horizon_us, options_.dedup_max_per_sensor));
    }
  }
}

void Ingest::RebuildDedup() {
  if (partitions_ <= 0) return;
  const int64_t started = MonotonicMicros();
  struct Rebuilder : ReadingSink {
    DedupWindow* window = nullptr;
    void OnReading(const Reading& r) override { window->Admit(r.sensor_id, r.timestamp_us, ValuesHash(r)); }
    void OnReject(const mare::Reject&) override {}
  } rebuilder;
  ParserOptions parser_options = options_.parser;
  parser_options.max_future_skew_us = INT64_MAX / 2;  // accepted once: the clock decides nothing now
  ReadingParser parser(parser_options);
  PaddedBuffer buffer;
  uint64_t records = 0;
  for (int32_t p = 0; p < partitions_; ++p) {
    rebuilder.window = &dedup_[static_cast<size_t>(p)]->window;
    // The horizon is in event time, the tail is cut in append time: for readings that arrive
    // about when they are taken the two agree; a sensor silent for longer than the horizon before
    // the stop is not rebuilt (its resends are taken, as a late reading would be).
    auto n = ReadRawTail(log_, options_.topic, p, options_.dedup_horizon_us, [&](const log::ConsumedRecord& r) {
      buffer.Assign(r.value);
      parser.Parse(buffer.view(), r.timestamp_us, rebuilder);
    });
    if (!n.ok()) {
      spdlog::warn("ingest: dedup window of {} partition {} not rebuilt, readings resent from before the start may "
                   "be appended twice: {}", options_.topic, p, n.status().ToString());
      continue;
    }
    records += *n;
  }
  if (records > 0) {
    spdlog::info("ingest: dedup windows rebuilt from the last {} of {} ({} readings, {} sensors held) in {:.2f} s",
                 FormatDuration(options_.dedup_horizon_us), options_.topic, records, DedupReadings(),
                 static_cast<double>(MonotonicMicros() - started) / 1e6);
  }
}

size_t Ingest::DedupReadings() {
  size_t n = 0;
  for (auto& shard : dedup_) {
    std::lock_guard lock(shard->mu);
    n += shard->window.readings();
  }
  return n;
}

std::string Ingest::FirstCopy(int32_t partition, std::string_view key, int64_t timestamp_us) {
  // A rare path, but a sender repeating conflicting readings must not make ingest read the log
  // for each: ten look-ups a second at most.
  int64_t now = MonotonicMicros();
  int64_t last = last_lookup_us_.load();
  if (now - last < 100'000 || !last_lookup_us_.compare_exchange_strong(last, now)) {
    return "(not read back: too many conflicts)";
  }
  auto found = FindRawRecord(log_, options_.topic, partition, key, timestamp_us, 65'536);
  if (!found.ok()) return "(not read back: " + found.status().ToString() + ")";
  if (!*found) return "(not among the partition's last 65536 records)";
  return std::move(**found);
}

std::unique_ptr<Ingest::Worker> Ingest::NewWorker(const std::string& source, Acks acks, Flushes flushes) {
  // Appends together readied first (HTTP's sources are made before the others): on Kafka that
  // aborts the transaction a killed predecessor left open, so that the rebuild below reads every
  // committed record to the end, instead of stopping where that transaction begins.
  if (flushes == Flushes::kAllOrNothing) {
    std::call_once(prepared_, [this] {
      Status s = log_->PrepareAppendTogether();
      if (!s.ok()) spdlog::warn("ingest: {} (tried again at the first request)", s.ToString());
    });
  }
  // The windows are rebuilt when the first source starts, before it takes anything: a command
  // that makes an Ingest without sources (mare store) reads nothing back.
  if (!dedup_.empty()) std::call_once(rebuilt_, [this] { RebuildDedup(); });
  return std::unique_ptr<Worker>(new Worker(this, source, acks, flushes));
}

Ingest::Worker::Worker(Ingest* ingest, std::string source, Acks acks, Flushes flushes)
    : ingest_(ingest),
      source_(std::move(source)),
      parser_(ingest->options_.parser),
      by_partition_(static_cast<size_t>(std::max(ingest->partitions_, 1))),
      queued_by_partition_(by_partition_.size()),
      claims_(by_partition_.size()),
      received_(ingest->registry_->GetCounter(source_metrics::kReadingsReceived, {{"source", source_}})),
      accepted_(ingest->registry_->GetCounter(source_metrics::kReadingsAccepted, {{"source", source_}})),
      append_errors_(ingest->registry_->GetCounter(source_metrics::kAppendsFailed, {{"source", source_}})),
      lost_(ingest->registry_->GetCounter(source_metrics::kReadingsLost, {{"source", source_}})),
      acks_(acks),
      flushes_(flushes) {
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

void Ingest::Worker::AddParsed(std::string_view buffer, const std::function<void(ReadingSink&)>& produce,
                               IngestReport* report) {
  report_ = report;
  buffer_start_ = buffer.data();
  if (report) report->buffer = buffer.data();
  size_t before = received_local_;
  produce(*this);
  received_.Add(received_local_ - before);
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
  q.sensor_id = r.sensor_id;
  q.values_hash = ingest_->dedup_.empty() ? 0 : ValuesHash(r);
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

void Ingest::Worker::Deduplicate(IngestReport* report) {
  for (auto& indices : queued_by_partition_) indices.clear();
  for (size_t i = 0; i < queue_.size(); ++i) {
    queued_by_partition_[static_cast<size_t>(queue_[i].partition)].push_back(static_cast<uint32_t>(i));
  }
  outcomes_.resize(queue_.size());
  for (size_t p = 0; p < queued_by_partition_.size(); ++p) {
    claims_[p].clear();
    const auto& indices = queued_by_partition_[p];
    if (indices.empty()) continue;
    {
      // One lock per partition per flush; sources on other partitions go on meanwhile.
      DedupShard& shard = *ingest_->dedup_[p];
      std::lock_guard lock(shard.mu);
      for (uint32_t i : indices) {
        const Queued& q = queue_[i];
        outcomes_[i] = shard.window.Admit(q.sensor_id, q.timestamp_us, q.values_hash);
      }
    }
    for (uint32_t i : indices) {
      const Queued& q = queue_[i];
      switch (outcomes_[i]) {
        case DedupWindow::Outcome::kNew:
          // An asynchronous append's callback takes its claims along; a waited-for one's are
          // read back from queue_ and outcomes_ if it fails (ForgetClaims).
          if (acks_ == Acks::kAsync) claims_[p].push_back({q.sensor_id, q.timestamp_us, q.values_hash});
          [[fallthrough]];
        case DedupWindow::Outcome::kLate:
          by_partition_[p].push_back(log::Record{q.timestamp_us, std::string_view(q.key, q.key_len), q.value, true,
                                                 std::span<const NumberField>(numbers_.data() + q.numbers_at, q.number_count)});
          break;
        case DedupWindow::Outcome::kDuplicate:
        case DedupWindow::Outcome::kConflict:
          Duplicate(i, outcomes_[i] == DedupWindow::Outcome::kConflict, report);
          break;
      }
    }
  }
}

void Ingest::Worker::Duplicate(size_t index, bool conflict, IngestReport* report) {
  const Queued& q = queue_[index];
  rejected_[static_cast<size_t>(RejectReason::kDuplicate)]->Add();
  std::string detail;
  if (conflict || (report && report->errors.size() < report->max_errors)) {
    detail = fmt::format("sensor {} at {} was accepted before{}", q.sensor_id, FormatTimestamp(q.timestamp_us),
                         conflict ? " with other values; the first copy is kept: " : "");
  }
  if (conflict) {
    // The first copy: earlier in this flush, or in the log.
    std::string first;
    const auto& indices = queued_by_partition_[static_cast<size_t>(q.partition)];
    for (uint32_t j : indices) {
      if (j >= index) break;
      const Queued& o = queue_[j];
      if (o.sensor_id == q.sensor_id && o.timestamp_us == q.timestamp_us && outcomes_[j] == DedupWindow::Outcome::kNew) {
        first = std::string(o.value);
        break;
      }
    }
    if (first.empty()) first = ingest_->FirstCopy(q.partition, std::string_view(q.key, q.key_len), q.timestamp_us);
    if (first.size() > 4096) first = first.substr(0, 4096) + "...";
    detail += first;
    if (ingest_->dead_letter_) ingest_->dead_letter_->Add(source_, ReasonName(RejectReason::kDuplicate), detail, q.value);
  }
  if (report && report->buffer) {
    --report->accepted;
    ++report->rejected;
    ++report->by_reason[static_cast<size_t>(RejectReason::kDuplicate)];
    if (report->errors.size() < report->max_errors) {
      report->errors.push_back({ReasonName(RejectReason::kDuplicate), std::move(detail),
                                static_cast<size_t>(q.value.data() - report->buffer)});
    }
  }
}

void Ingest::Worker::ForgetClaims(size_t partition) {
  if (ingest_->dedup_.empty() || queued_by_partition_[partition].empty()) return;
  DedupShard& shard = *ingest_->dedup_[partition];
  std::lock_guard lock(shard.mu);
  for (uint32_t i : queued_by_partition_[partition]) {
    if (outcomes_[i] != DedupWindow::Outcome::kNew) continue;
    const Queued& q = queue_[i];
    shard.window.Forget(q.sensor_id, q.timestamp_us, q.values_hash);
  }
}

void Ingest::Worker::Appended(size_t p, const Status& s, uint64_t* appended, IngestReport* report) {
  if (s.ok()) {
    *appended += by_partition_[p].size();
    return;
  }
  append_errors_.Add();
  ForgetClaims(p);
  if (report && report->buffer) {
    report->accepted -= by_partition_[p].size();
    report->unacknowledged += by_partition_[p].size();
    for (const log::Record& r : by_partition_[p]) {
      report->unacknowledged_offsets.push_back(static_cast<size_t>(r.value.data() - report->buffer));
    }
  }
}

Status Ingest::Worker::Flush(IngestReport* report) {
  if (queue_.empty()) return Status::OK();
  for (auto& records : by_partition_) records.clear();
  if (ingest_->dedup_.empty()) {
    for (const Queued& q : queue_) {
      by_partition_[static_cast<size_t>(q.partition)].push_back(
          log::Record{q.timestamp_us, std::string_view(q.key, q.key_len), q.value, true,
                      std::span<const NumberField>(numbers_.data() + q.numbers_at, q.number_count)});
    }
  } else {
    Deduplicate(report);
  }
  if (acks_ == Acks::kAsync) {
    for (size_t p = 0; p < by_partition_.size(); ++p) {
      if (by_partition_[p].empty()) continue;
      {
        std::lock_guard lock(in_flight_mu_);
        ++in_flight_;
      }
      size_t n = by_partition_[p].size();
      if (ingest_->dedup_.empty()) {
        ingest_->log_->AppendAsync(ingest_->options_.topic, static_cast<int32_t>(p), by_partition_[p],
                                   [this, n](const Status& s) { Settled(s, n); });
        continue;
      }
      // The claims go with the append, to be forgotten if it fails (the worker waits for every
      // outcome before it is destroyed, so `ingest_` outlives the callback).
      ingest_->log_->AppendAsync(ingest_->options_.topic, static_cast<int32_t>(p), by_partition_[p],
                                 [this, n, p, claims = claims_[p]](const Status& s) {
                                   if (!s.ok() && !claims.empty()) {
                                     DedupShard& shard = *ingest_->dedup_[p];
                                     std::lock_guard lock(shard.mu);
                                     for (const Claim& c : claims) shard.window.Forget(c.sensor_id, c.timestamp_us, c.values_hash);
                                   }
                                   Settled(s, n);
                                 });
    }
    queue_.clear();
    numbers_.clear();
    return Status::OK();
  }
  Status status;
  uint64_t appended = 0;
  if (flushes_ == Flushes::kAllOrNothing) {
    parts_.clear();
    for (size_t p = 0; p < by_partition_.size(); ++p) {
      if (!by_partition_[p].empty()) parts_.push_back({static_cast<int32_t>(p), by_partition_[p]});
    }
    status = ingest_->log_->AppendTogether(ingest_->options_.topic, parts_, &part_status_);
    for (size_t i = 0; i < parts_.size(); ++i) {
      Appended(static_cast<size_t>(parts_[i].partition), part_status_[i], &appended, report);
    }
  } else {
    for (size_t p = 0; p < by_partition_.size(); ++p) {
      if (by_partition_[p].empty()) continue;
      Status s = ingest_->log_->Append(ingest_->options_.topic, static_cast<int32_t>(p), by_partition_[p]);
      if (!s.ok() && status.ok()) status = s;
      Appended(p, s, &appended, report);
    }
  }
  if (report) std::sort(report->unacknowledged_offsets.begin(), report->unacknowledged_offsets.end());
  accepted_.Add(appended);
  queue_.clear();
  numbers_.clear();
  return status;
}

}  // namespace mare
