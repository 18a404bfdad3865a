#include "sources/line_protocol_pipeline.h"

#include <spdlog/spdlog.h>

#include "common/time.h"

namespace mare {

void LineProtocolPipeline::Job::Clear() {
  batch.Clear();
  rejects.clear();
  tails.clear();
  tail_bytes.clear();
  now_us = 0;
}

LineProtocolPipeline::LineProtocolPipeline(Ingest* ingest, const LineProtocolOptions& options, const std::string& source,
                                           size_t depth, size_t split_bytes)
    : parser_(options, ingest->options().parser),
      tail_parser_(options, ingest->options().parser),
      worker_(ingest->NewWorker(source)),
      readings_(ingest->options().parser),
      source_(source),
      depth_(depth < 1 ? 1 : depth),
      split_bytes_(split_bytes) {
  for (size_t i = 0; i < depth_ + 1; ++i) {
    jobs_.push_back(std::make_unique<Job>());
    free_.push_back(jobs_.back().get());
  }
  thread_ = std::thread(&LineProtocolPipeline::Loop, this);
}

LineProtocolPipeline::~LineProtocolPipeline() { Close(); }

LineProtocolPipeline::Job* LineProtocolPipeline::Current() {
  if (current_ && !current_->tails.empty()) Flush();  // its tail is converted last: it ends the job
  if (current_) return current_;
  std::unique_lock lock(mu_);
  // No job free: this thread waits for the ingest thread, which should convert less.
  if (free_.empty() && tail_share_ > 0) tail_share_.store(tail_share_ - 1, std::memory_order_relaxed);
  changed_.wait(lock, [&] { return !free_.empty(); });
  current_ = free_.back();
  free_.pop_back();
  lock.unlock();
  current_->Clear();
  current_->now_us = NowMicros();
  return current_;
}

void LineProtocolPipeline::Add(std::string_view data, Precision precision) {
  Job* job = Current();
  LineBatch& batch = job->batch;
  std::string_view head = data;
  const size_t share = tail_share_.load(std::memory_order_relaxed);
  if (data.size() >= split_bytes_ && share > 0) {
    // From the first line end in the tail's share: the tail is whole lines.
    const size_t from = data.size() - data.size() * share / kShares;
    const size_t nl = data.find('\n', from);
    if (nl != std::string_view::npos && nl + 1 < data.size()) head = data.substr(0, nl + 1);
  }
  const uint32_t next_line = parser_.Convert(head, precision, job->now_us, &batch);
  if (head.size() < data.size()) {
    const std::string_view tail = data.substr(head.size());
    job->tails.push_back({job->tail_bytes.size(), tail.size(), precision, next_line});
    job->tail_bytes.append(tail);
  }
  for (LineReject& r : batch.rejects) job->rejects.push_back({std::string(r.raw), r.reason, std::move(r.detail)});
  batch.rejects.clear();
}

void LineProtocolPipeline::Reject(std::string_view raw, RejectReason reason, std::string detail) {
  Current()->rejects.push_back({std::string(raw), reason, std::move(detail)});
}

void LineProtocolPipeline::Flush() {
  if (!current_) return;
  {
    std::lock_guard lock(mu_);
    // An empty job goes back: kept, it would give the next Add, maybe much later, its now_us.
    if (current_->empty()) {
      free_.push_back(current_);
    } else {
      queued_.push_back(current_);
    }
  }
  current_ = nullptr;
  changed_.notify_all();
}

void LineProtocolPipeline::Close() {
  if (!thread_.joinable()) return;
  Flush();
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void LineProtocolPipeline::Loop() {
  for (;;) {
    Job* job;
    {
      std::unique_lock lock(mu_);
      changed_.wait(lock, [&] { return !queued_.empty() || closing_; });
      if (queued_.empty()) return;  // closing, and everything flushed is appended
      job = queued_.front();
    }
    for (const Job::Tail& t : job->tails) {
      tail_parser_.Convert(std::string_view(job->tail_bytes).substr(t.at, t.size), t.precision, job->now_us, &job->batch,
                           t.first_line);
    }
    for (const Job::Rejected& r : job->rejects) worker_->Reject(r.raw, r.reason, r.detail);
    for (const LineReject& r : job->batch.rejects) worker_->Reject(r.raw, r.reason, r.detail);  // the tails
    if (!job->batch.readings.empty()) {
      worker_->AddParsed(job->batch.json.view(),
                         [&](ReadingSink& sink) { HandOver(job->batch, readings_, job->now_us, sink, &reading_); });
    }
    Status s = worker_->Flush();
    if (!s.ok()) spdlog::error("{}: readings lost, log append failed: {}", source_, s.ToString());
    {
      std::lock_guard lock(mu_);
      queued_.pop_front();
      free_.push_back(job);
      // Nothing queued: this thread waits for the caller's, and should convert more.
      if (queued_.empty() && tail_share_ < kMaxTailShare) tail_share_.store(tail_share_ + 1, std::memory_order_relaxed);
    }
    changed_.notify_all();
  }
}

}  // namespace mare
