#include "sources/line_protocol_ingest.h"

#include <algorithm>

#include "common/time.h"

namespace mare {

LineProtocolWorker::LineProtocolWorker(Ingest* ingest, const LineProtocolOptions& options, const std::string& source,
                                       Ingest::Acks acks, Ingest::Flushes flushes)
    : worker_(ingest->NewWorker(source, acks, flushes)),
      parser_(options, ingest->options().parser),
      readings_(ingest->options().parser) {}

void LineProtocolWorker::Add(std::string_view data, Precision precision, LineProtocolReport* report) {
  if (used_ == batches_.size()) batches_.push_back(std::make_unique<LineBatch>());
  LineBatch& batch = *batches_[used_++];
  batch.Clear();
  const int64_t now_us = NowMicros();
  parser_.Convert(data, precision, now_us, &batch);
  for (const LineReject& r : batch.rejects) {
    worker_->Reject(r.raw, r.reason, r.detail);
    if (report && report->errors.size() < report->max_errors) {
      report->errors.push_back({r.line, ReasonName(r.reason), r.detail});
    }
  }
  if (report) {
    report->lines += batch.rejects.size() + batch.lines.size();
    report->rejected += batch.rejects.size();
    ingest_report_ = IngestReport{};
    ingest_report_.max_errors = report->max_errors;
  }
  if (batch.readings.empty()) return;
  worker_->AddParsed(
      batch.json.view(), [&](ReadingSink& sink) { HandOver(batch, readings_, now_us, sink, &reading_); },
      report ? &ingest_report_ : nullptr);
}

void LineProtocolWorker::Reject(std::string_view raw, RejectReason reason, std::string detail) {
  worker_->Reject(raw, reason, std::move(detail));
}

Status LineProtocolWorker::Flush(LineProtocolReport* report) {
  Status s = worker_->Flush(report ? &ingest_report_ : nullptr);
  if (report && used_ > 0) {
    const LineBatch& batch = *batches_[used_ - 1];
    report->accepted += ingest_report_.accepted;
    report->rejected += ingest_report_.rejected;
    report->duplicates += ingest_report_.by_reason[static_cast<size_t>(RejectReason::kDuplicate)];
    report->unacknowledged += ingest_report_.unacknowledged;
    for (const auto& e : ingest_report_.errors) {
      report->errors.push_back({batch.LineAt(e.offset), e.reason, e.detail});
    }
    std::stable_sort(report->errors.begin(), report->errors.end(),
                     [](const auto& a, const auto& b) { return a.line < b.line; });
    if (report->errors.size() > report->max_errors) report->errors.resize(report->max_errors);
    for (size_t offset : ingest_report_.unacknowledged_offsets) {
      uint32_t line = batch.LineAt(offset);
      if (report->unacknowledged_lines.empty() || report->unacknowledged_lines.back() != line) {
        report->unacknowledged_lines.push_back(line);
      }
    }
    ingest_report_ = IngestReport{};
  }
  used_ = 0;
  return s;
}

}  // namespace mare
