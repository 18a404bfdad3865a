#include "store/feed_loop.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/time.h"

namespace mare::store {

Status FeedLoop::Start(FeedTarget* target, log::Log* log, FeedLoopOptions options, FeedLoopMetrics metrics) {
  target_ = target;
  log_ = log;
  options_ = std::move(options);
  metrics_ = metrics;
  duplicates_ = log::DuplicateFilter(options_.dedup);
  if (log_->Partitions(options_.topic) > 0) {
    MARE_RETURN_IF_ERROR(Subscribe());
  } else if (!options_.wait_for_topic) {
    return Status::NotFound(options_.name + ": the log has no topic " + options_.topic + " (mare run creates it)");
  }
  if (metrics_.up) metrics_.up->Set(1);
  thread_.Start({.step = [this] { return Step(); },
                 .recover = [this] { return Recover(); },
                 .on_error = [this](const Status& s, bool will_retry) {
                   if (metrics_.failures) metrics_.failures->Add();
                   if (!will_retry) {
                     spdlog::error("{}: stopped: {}", options_.name, s.ToString());
                   } else if (thread_.healthy()) {  // once per outage, not per retry
                     spdlog::error("{}: {}; retrying with backoff ({} are kept in the log meanwhile)", options_.name,
                                   s.ToString(), options_.kept);
                   }
                 },
                 .on_health_change = [this] {
                   if (metrics_.up) metrics_.up->Set(thread_.healthy() ? 1 : 0);
                   RefreshLag();
                 }});
  return Status::OK();
}

Status FeedLoop::Subscribe() {
  auto consumer = log_->Subscribe(options_.group, options_.topic);
  if (!consumer.ok()) return consumer.status();
  consumer_ = std::move(*consumer);
  int32_t partitions = log_->Partitions(options_.topic);
  std::vector<int64_t> position = target_->durable_offsets();
  read_.assign(static_cast<size_t>(partitions), 0);
  for (int32_t p = 0; p < partitions; ++p) {
    int64_t from = static_cast<size_t>(p) < position.size() ? std::max<int64_t>(0, position[static_cast<size_t>(p)]) : 0;
    MARE_RETURN_IF_ERROR(consumer_->Seek(p, from));
    int64_t at = consumer_->Position(p);
    if (at > from) {
      spdlog::warn("store: {} partition {}: offsets {}..{} were removed by the log's retention before being stored",
                   options_.topic, p, from, at - 1);
    }
    read_[static_cast<size_t>(p)] = at;
  }
  if (duplicates_.enabled()) {
    std::vector<std::pair<int32_t, int64_t>> next;
    for (int32_t p = 0; p < partitions; ++p) next.emplace_back(p, read_[static_cast<size_t>(p)]);
    MARE_RETURN_IF_ERROR(duplicates_.Rebuild(log_, options_.topic, next));
  }
  return Status::OK();
}

Status FeedLoop::Step() {
  if (!consumer_) {
    // The topic is made with its first record. Looked for once a second (on Kafka that asks
    // the brokers), in steps short enough for a prompt Stop.
    int64_t now = MonotonicMicros();
    if (now < next_topic_check_us_ || log_->Partitions(options_.topic) == 0) {
      if (now >= next_topic_check_us_) next_topic_check_us_ = now + 1'000'000;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      return Status::OK();
    }
    MARE_RETURN_IF_ERROR(Subscribe());
  }
  MARE_RETURN_IF_ERROR(consumer_->Poll(&batch_, options_.poll_records, std::chrono::milliseconds(100)));
  if (!batch_.empty()) {
    for (const auto& r : batch_) read_[static_cast<size_t>(r.partition)] = r.offset + 1;
    if (duplicates_.enabled()) {
      // Read (read_ is past them) but not applied: the first copy was.
      size_t before = batch_.size();
      std::erase_if(batch_, [this](const log::ConsumedRecord& r) { return duplicates_.Drop(r); });
      if (metrics_.duplicates && batch_.size() < before) metrics_.duplicates->Add(before - batch_.size());
    }
    if (!batch_.empty()) MARE_RETURN_IF_ERROR(target_->Apply(batch_));
    int64_t consumed = 0;
    for (int64_t o : read_) consumed += o;
    thread_.set_consumed(consumed);
  }
  Result<bool> moved = target_->Persist(read_);
  if (!moved.ok()) return moved.status();
  if (*moved) Commit();
  int64_t now = MonotonicMicros();
  if (now >= next_lag_us_) {
    RefreshLag();
    next_lag_us_ = now + 1'000'000;
  }
  return Status::OK();
}

Status FeedLoop::Recover() {
  if (options_.reread_after_failure) return consumer_ ? Subscribe() : Status::OK();
  MARE_RETURN_IF_ERROR(target_->Finish(read_));
  Commit();
  return Status::OK();
}

void FeedLoop::Commit() {
  if (!consumer_) return;
  // The group's committed position is for `mare log groups`; the target holds the truth, so a
  // commit that fails (a Kafka coordinator moving) is only worth a warning.
  std::vector<int64_t> durable = target_->durable_offsets();
  for (size_t p = 0; p < durable.size() && p < read_.size(); ++p) {
    if (consumer_->Committed(static_cast<int32_t>(p)) == durable[p]) continue;
    if (Status s = consumer_->Commit(static_cast<int32_t>(p), durable[p]); !s.ok()) {
      spdlog::warn("store: commit of group {} failed: {}", options_.group, s.ToString());
    }
  }
}

void FeedLoop::RefreshLag() {
  if (consumer_) {
    if (int64_t lag = consumer_->Lag(static_cast<int32_t>(read_.size())); lag >= 0) {
      thread_.set_lag(lag);
      metrics_.lag->Set(static_cast<double>(lag));
    }
  }
  target_->RefreshGauges();
}

Status FeedLoop::Stop() {
  if (target_ == nullptr) return Status::OK();  // never started
  return thread_.Stop([this] {
    MARE_RETURN_IF_ERROR(target_->Finish(read_));
    Commit();
    return Status::OK();
  });
}

}  // namespace mare::store
