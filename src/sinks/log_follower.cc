#include "sinks/log_follower.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "common/time.h"

namespace mare::sinks {

LogFollower::LogFollower(LogFollowerOptions options, std::unique_ptr<Destination> destination, log::Log* log,
                         const LogFollowerMetrics& names, metrics::Registry* r)
    : options_(std::move(options)),
      destination_(std::move(destination)),
      log_(log),
      records_read_(r->GetCounter(names.records_read, {{"topic", options_.topic}})),
      errors_(r->GetCounter(names.errors, {{"topic", options_.topic}})),
      lag_(r->GetGauge(names.lag, {{"topic", options_.topic}})),
      batch_seconds_(r->GetHistogram(names.batch_seconds, {{"topic", options_.topic}})),
      duplicates_dropped_(r->GetCounter(names.duplicates, {{"topic", options_.topic}})) {
  duplicates_ = log::DuplicateFilter(options_.dedup);
}

LogFollower::~LogFollower() { Stop(); }

Status LogFollower::Start() {
  partitions_ = log_->Partitions(options_.topic);
  if (partitions_ == 0) return Status::NotFound("no topic " + options_.topic + " in the log");
  auto subscribed = log_->Subscribe(options_.consumer, options_.topic);
  if (!subscribed.ok()) return subscribed.status();
  consumer_ = std::move(*subscribed);
  thread_ = std::thread([this] { Run(); });
  return Status::OK();
}

void LogFollower::Stop() {
  {
    std::lock_guard lock(mu_);  // so that a waiting reader or writer cannot miss it
    stop_.store(true);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool LogFollower::Backoff(int64_t* backoff) {
  // The lag goes on growing meanwhile; a pipelined writer leaves the consumer to the reader,
  // which goes on updating it.
  if (!pipelined_ && !committed_.empty()) UpdateLag();
  for (int64_t slept = 0; slept < *backoff && !stop_.load(); slept += 50'000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  *backoff = std::min(*backoff * 2, options_.retry_max_us);
  return !stop_.load();
}

void LogFollower::Warn(const Status& s, int64_t backoff) {
  errors_.Add();
  health_.Failed(s.message());
  int64_t now = MonotonicMicros();
  int64_t last = last_warning_.load();
  // At most one line per 10 s while it lasts, whichever writer fails.
  if (now - last > 10'000'000 && last_warning_.compare_exchange_strong(last, now)) {
    spdlog::warn("{}: {} (retrying every {}, the log keeps the {} meanwhile)", options_.name, s.message(),
                 FormatDuration(backoff), options_.topic);
  }
}

void LogFollower::UpdateLag() {
  // The consumer's own idea of the end: asking the log could wait on a broker that is away.
  int64_t behind = consumer_->Lag(static_cast<int32_t>(committed_.size()),
                                  [&](int32_t p) { return std::max<int64_t>(committed_.at(p), 0); });
  if (behind >= 0) {
    lag_.Set(static_cast<double>(behind));
    health_.SetLag(behind);
  }
}

template <typename F>
bool LogFollower::UntilDone(F attempt) {
  int64_t backoff = options_.retry_initial_us;
  for (;;) {
    if (stop_.load()) return false;
    Status s = attempt();
    if (s.ok()) break;
    Warn(s, backoff);
    if (!Backoff(&backoff)) return false;
  }
  health_.Succeeded();
  if (last_warning_.exchange(0) != 0) {
    spdlog::info("{}: {} reachable again, catching up on {}", options_.name, options_.server, options_.topic);
  }
  return true;
}

bool LogFollower::Write(const std::map<int32_t, int64_t>& next, int64_t batch_start) {
  if (!UntilDone([&] { return destination_->Flush(0); })) return false;
  if (!UntilDone([&] { return destination_->SavePositions(next); })) return false;
  batch_seconds_.Observe(static_cast<double>(MonotonicMicros() - batch_start) / 1e6);
  return true;
}

void LogFollower::WriteHandedOver(int slot) {
  for (;;) {
    uint64_t batch = 0;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return slots_[slot].busy || stop_.load(); });
      if (stop_.load()) return;
      batch = slots_[slot].batch;
    }
    if (!UntilDone([&] { return destination_->Flush(slot); })) return;
    {
      // Saved by whichever writer finds its batch, and every one before it, acknowledged: a batch
      // finished before an earlier one leaves its positions to that one's writer.
      std::lock_guard save(save_mu_);
      InOrderCommits::Committable done;
      {
        std::lock_guard lock(mu_);
        commits_.Acknowledged(batch);
        done = commits_.Take();
      }
      if (!done.empty()) {
        if (!UntilDone([&] { return destination_->SavePositions(done.next); })) return;
        int64_t now = MonotonicMicros();
        for (int64_t start : done.starts_us) batch_seconds_.Observe(static_cast<double>(now - start) / 1e6);
        std::lock_guard lock(mu_);
        for (const auto& [p, n] : done.next) written_[p] = n;
      }
    }
    {
      std::lock_guard lock(mu_);
      slots_[slot].busy = false;
    }
    cv_.notify_all();
  }
}

bool LogFollower::HandOver(const std::map<int32_t, int64_t>& next, int64_t batch_start) {
  std::unique_lock lock(mu_);
  auto free_slot = [&] {
    // No more batches past the saved position than there are slots: a batch retried for long
    // holds the others back, instead of the reader running ever further ahead of what a
    // restart would send again.
    if (commits_.pending() >= slots_.size()) return -1;
    for (size_t k = 0; k < slots_.size(); ++k) {
      if (!slots_[k].busy) return static_cast<int>(k);
    }
    return -1;
  };
  while (free_slot() < 0 && !stop_.load()) {
    // Woken each second meanwhile, to keep the lag and the group's positions current.
    if (!cv_.wait_for(lock, std::chrono::seconds(1), [&] { return free_slot() >= 0 || stop_.load(); })) {
      lock.unlock();
      CommitWritten();
      UpdateLag();
      lock.lock();
    }
  }
  if (stop_.load()) return false;
  int slot = free_slot();
  destination_->Seal(slot);
  slots_[slot].busy = true;
  slots_[slot].batch = commits_.Sealed(next, batch_start);
  lock.unlock();
  cv_.notify_all();
  return true;
}

void LogFollower::CommitWritten() {
  std::map<int32_t, int64_t> written;
  {
    std::lock_guard lock(mu_);
    written.swap(written_);
  }
  for (const auto& [p, n] : written) {
    committed_[p] = n;
    // For `mare log groups`; refused when the log is open read-only, which is fine: the
    // position that counts is the one the destination saved.
    Status c = consumer_->Commit(p, n);
    if (!c.ok()) spdlog::debug("{}: log position of {}/{}: {}", options_.name, options_.topic, p, c.ToString());
  }
}

void LogFollower::Run() {
  bool prepared = UntilDone([&] {
    committed_.clear();
    Status s = destination_->Prepare(partitions_, &committed_);
    for (int32_t p = 0; s.ok() && p < partitions_; ++p) s = consumer_->Seek(p, committed_[p]);
    if (s.ok() && duplicates_.enabled()) {
      std::vector<std::pair<int32_t, int64_t>> from;
      for (int32_t p = 0; p < partitions_; ++p) from.emplace_back(p, consumer_->Position(p));
      s = duplicates_.Rebuild(log_, options_.topic, from);
    }
    return s;
  });
  if (!prepared) return;
  pipelined_ = destination_->Pipelined();
  if (pipelined_) {
    slots_.resize(static_cast<size_t>(std::max(1, destination_->Slots())));
    for (size_t k = 0; k < slots_.size(); ++k) writers_.emplace_back([this, k] { WriteHandedOver(static_cast<int>(k)); });
  }
  std::vector<log::ConsumedRecord> records;
  std::map<int32_t, int64_t> next;  // after the pending batch
  size_t pending = 0;
  int64_t batch_start = 0, last_lag = 0;
  while (!stop_.load()) {
    Status s = consumer_->Poll(&records, options_.batch - pending, std::chrono::milliseconds(100));
    if (!s.ok()) {
      spdlog::error("{}: reading {}: {}", options_.name, options_.topic, s.ToString());
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    if (!records.empty()) {
      if (pending == 0) batch_start = MonotonicMicros();
      records_read_.Add(records.size());
      for (const log::ConsumedRecord& r : records) next[r.partition] = r.offset + 1;
      if (duplicates_.enabled()) {
        // Read (their positions are saved with the batch) but not written: the first copy was.
        kept_.clear();
        for (const log::ConsumedRecord& r : records) {
          if (!duplicates_.Drop(r)) kept_.push_back(r);
        }
        if (kept_.size() < records.size()) duplicates_dropped_.Add(records.size() - kept_.size());
        destination_->Add(kept_);
      } else {
        destination_->Add(records);
      }
      pending += records.size();
    }
    bool full = pending >= options_.batch || (pending > 0 && MonotonicMicros() - batch_start >= options_.max_delay_us);
    if (full) {
      if (pipelined_) {
        if (!HandOver(next, batch_start)) break;
      } else {
        destination_->Seal(0);
        if (!Write(next, batch_start)) break;
        std::lock_guard lock(mu_);
        for (const auto& [p, n] : next) written_[p] = n;
      }
      next.clear();
      pending = 0;
    }
    CommitWritten();
    if (MonotonicMicros() - last_lag > 1'000'000) {
      UpdateLag();
      last_lag = MonotonicMicros();
    }
  }
  for (std::thread& w : writers_) w.join();  // stop_ is set: each ends after its current attempt
  CommitWritten();
}

}  // namespace mare::sinks
