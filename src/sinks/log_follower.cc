#include "sinks/log_follower.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
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
      duplicates_dropped_(r->GetCounter(names.duplicates, {{"topic", options_.topic}})),
      owned_(r->GetGauge(names.partitions, {{"topic", options_.topic}})),
      rebalances_(r->GetCounter(names.rebalances, {{"topic", options_.topic}})) {
  duplicates_ = log::DuplicateFilter(options_.dedup);
}

LogFollower::~LogFollower() { Stop(); }

Status LogFollower::Start() {
  partitions_ = log_->Partitions(options_.topic);
  if (partitions_ == 0) return Status::NotFound("no topic " + options_.topic + " in the log");
  group_mode_ = log_->HasGroups();
  if (group_mode_) {
    MARE_RETURN_IF_ERROR(JoinGroup());
  } else {
    auto subscribed = log_->Subscribe(options_.consumer, options_.topic);
    if (!subscribed.ok()) return subscribed.status();
    consumer_ = std::move(*subscribed);
  }
  thread_ = std::thread([this] { Run(); });
  return Status::OK();
}

std::string SinkGroupName(const std::string& consumer, const std::string& topic, std::string_view destination) {
  uint32_t h = 2166136261u;  // FNV-1a: short, stable across builds and machines
  for (unsigned char c : destination) h = (h ^ c) * 16777619u;
  return fmt::format("{}-{}-{:08x}", consumer, topic, h);
}

Status LogFollower::JoinGroup() {
  log::GroupOptions g{.group = SinkGroupName(options_.consumer, options_.topic, options_.destination),
                      .topic = options_.topic,
                      .member = options_.consumer,
                      .handlers = {},
                      .start_timeout_us = 0,
                      .transactional = false};
  g.handlers.revoked = [this](const std::vector<int32_t>& partitions) { Revoked(partitions); };
  g.handlers.lost = [this](const std::vector<int32_t>& partitions) { Lost(partitions); };
  g.handlers.assigned = [this](const std::vector<int32_t>& partitions, const std::vector<int64_t>&) {
    return Assigned(partitions);  // Kafka's committed offsets are not the ones that count
  };
  auto member = log_->JoinGroup(g);
  if (!member.ok()) return member.status();
  member_ = std::move(*member);
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

bool LogFollower::Ending() const {
  if (stop_.load()) return true;
  int64_t at = give_up_at_.load();
  return at != kNever && MonotonicMicros() > at;
}

bool LogFollower::Backoff(int64_t* backoff) {
  // The lag goes on growing meanwhile; a pipelined writer leaves the consumer to the reader,
  // which goes on updating it.
  if (!pipelined_ && !committed_.empty()) UpdateLag();
  for (int64_t slept = 0; slept < *backoff && !Ending(); slept += 50'000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  *backoff = std::min(*backoff * 2, options_.retry_max_us);
  return !Ending();
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
  int64_t behind = 0;
  bool known = group_mode_;  // a member without partitions has nothing to read
  for (const auto& [p, next] : committed_) {
    int64_t end = member_ ? member_->EndOffset(p) : consumer_ ? consumer_->EndOffset(p) : -1;
    if (end < 0) continue;
    known = true;
    behind += std::max<int64_t>(0, end - std::max<int64_t>(next, 0));
  }
  if (known) {
    lag_.Set(static_cast<double>(behind));
    health_.SetLag(behind);
  }
}

void LogFollower::SetOwned() { owned_.Set(static_cast<double>(committed_.size())); }

template <typename F>
bool LogFollower::UntilDone(F attempt) {
  int64_t backoff = options_.retry_initial_us;
  for (;;) {
    if (Ending()) return false;
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
    if (UntilDone([&] { return destination_->Flush(slot); })) {
      // Saved by whichever writer finds its batch, and every one before it, acknowledged: a batch
      // finished before an earlier one leaves its positions to that one's writer.
      std::lock_guard save(save_mu_);
      InOrderCommits::Committable done;
      {
        std::lock_guard lock(mu_);
        commits_.Acknowledged(batch);
        done = commits_.Take();
      }
      // Given up (Ending), the positions are not saved: the batches are resent from the last saved.
      if (!done.empty() && UntilDone([&] { return destination_->SavePositions(done.next); })) {
        int64_t now = MonotonicMicros();
        for (int64_t start : done.starts_us) batch_seconds_.Observe(static_cast<double>(now - start) / 1e6);
        std::lock_guard lock(mu_);
        for (const auto& [p, n] : done.next) written_[p] = n;
      } else if (!done.empty()) {
        std::lock_guard lock(mu_);
        unsaved_ = true;  // taken and not saved: Finish must not say every batch's positions are
      }
    } else {
      if (stop_.load()) return;
      destination_->Forget(slot);  // given up: Abandon forgets the batch in commits_
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
  while (free_slot() < 0 && !Ending()) {
    // Woken each second meanwhile, to keep the lag and the group's positions current (more
    // often while a give-up time is set, which nothing signals).
    auto wait = std::chrono::milliseconds(give_up_at_.load() == kNever ? 1000 : 50);
    if (!cv_.wait_for(lock, wait, [&] { return free_slot() >= 0 || stop_.load(); })) {
      lock.unlock();
      CommitWritten();
      UpdateLag();
      lock.lock();
    }
  }
  if (Ending()) return false;
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
  std::vector<std::pair<int32_t, int64_t>> owned;
  for (const auto& [p, n] : written) {
    auto it = committed_.find(p);
    if (it == committed_.end()) continue;  // not ours any more (Revoked finishes first: never)
    it->second = n;
    owned.emplace_back(p, n);
    if (consumer_) {
      // For `mare log groups`; refused when the log is open read-only, which is fine: the
      // position that counts is the one the destination saved.
      Status c = consumer_->Commit(p, n);
      if (!c.ok()) spdlog::debug("{}: log position of {}/{}: {}", options_.name, options_.topic, p, c.ToString());
    }
  }
  if (member_ && !owned.empty()) {
    Status c = member_->CommitTransaction(owned);  // without transactions: the offsets alone
    if (!c.ok()) spdlog::debug("{}: group positions of {}: {}", options_.name, options_.topic, c.ToString());
  }
}

Status LogFollower::Poll(std::vector<log::ConsumedRecord>* records) {
  size_t room = options_.batch - pending_;
  if (member_) return member_->Poll(records, room, std::chrono::milliseconds(100));
  return consumer_->Poll(records, room, std::chrono::milliseconds(100));
}

bool LogFollower::SealPending() {
  if (pending_ == 0) return true;
  if (pipelined_) {
    if (!HandOver(next_, batch_start_)) return false;
  } else {
    destination_->Seal(0);
    if (!Write(next_, batch_start_)) return false;
    std::lock_guard lock(mu_);
    for (const auto& [p, n] : next_) written_[p] = n;
  }
  next_.clear();
  pending_ = 0;
  return true;
}

bool LogFollower::Finish() {
  if (!SealPending()) return false;
  if (pipelined_) {
    // Every slot idle and no batch waiting for its positions: a writer clears its slot only
    // after saving the positions it took.
    std::unique_lock lock(mu_);
    auto idle = [&] {
      return commits_.pending() == 0 && std::none_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.busy; });
    };
    while (!idle()) {
      if (Ending()) return false;
      cv_.wait_for(lock, std::chrono::milliseconds(50));
    }
    // A writer that gave up saving after its flush went idle too: not finished (the review found
    // a revoke past its deadline reported as finished, with stale positions for the filters).
    if (unsaved_) return false;
  }
  CommitWritten();
  return true;
}

void LogFollower::Abandon() {
  if (pipelined_) {
    // Each writer gives up after its current attempt (a request's timeout at most) and forgets
    // its batch; the positions of batches acknowledged since are not saved either.
    std::unique_lock lock(mu_);
    while (std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.busy; })) {
      if (stop_.load()) return;
      cv_.wait_for(lock, std::chrono::milliseconds(50));
    }
    commits_.Clear();
    written_.clear();
    unsaved_ = false;
  } else {
    destination_->Forget(0);  // the batch Write gave up on
  }
  if (pending_ > 0) {  // read, not sealed yet
    destination_->Seal(0);
    destination_->Forget(0);
  }
  next_.clear();
  pending_ = 0;
}

void LogFollower::Revoked(const std::vector<int32_t>& partitions) {
  // What was read is finished before the partitions go: the next owner starts from the
  // positions saved, so none may be saved later (and what is written meanwhile is acknowledged
  // first, a resend of nothing). For revoke_timeout_us at most, as the group's rebalance waits
  // on it (up to max.poll.interval.ms, then it goes on without this member): past it, what is
  // left is dropped unsaved and the next owner sends it again, which the destination absorbs
  // (deterministic ids, replacing tables). Eager rebalancing takes every partition away at once,
  // so no batch dropped holds records of a partition kept.
  const int64_t began = MonotonicMicros();
  if (options_.revoke_timeout_us > 0) give_up_at_.store(began + options_.revoke_timeout_us);
  bool finished = Finish();
  if (!finished && !stop_.load()) {
    spdlog::warn("{}: giving partitions {} of {} up, {} did not take what was read of them within {} (revoke_timeout: "
                 "the group's rebalance waits on it); dropped with its positions unsaved, their next owner sends it again",
                 options_.name, fmt::join(partitions, ","), options_.topic, options_.server,
                 FormatDuration(MonotonicMicros() - began));
    Abandon();
  }
  give_up_at_.store(kNever);
  for (int32_t p : partitions) {
    // Finished: the filter judged exactly the records before the position saved; Assigned keeps
    // it if the partition comes back with that position.
    auto it = committed_.find(p);
    if (finished && duplicates_.enabled() && it != committed_.end()) {
      judged_[p] = it->second;
    } else {
      judged_.erase(p);
      duplicates_.Reset(p);
    }
    if (it != committed_.end()) committed_.erase(it);
  }
  SetOwned();
  UpdateLag();
}

void LogFollower::Lost(const std::vector<int32_t>& partitions) {
  // The group has moved on without this member: others may own the partitions and write them
  // already, so nothing more is saved about them. A write or save under way ends with its
  // attempt (it cannot be called back; the destination absorbs a write, and a position saved is
  // one whose records were written); the rest is dropped and sent again by the next owner.
  spdlog::warn("{}: lost partitions {} of {} (the group went on without it: a poll later than max.poll.interval.ms, or its session expired): what was read of them and not written "
               "is dropped with its positions unsaved, their next owner sends it again",
               options_.name, fmt::join(partitions, ","), options_.topic);
  give_up_at_.store(0);
  if (!stop_.load()) Abandon();
  give_up_at_.store(kNever);
  for (int32_t p : partitions) {
    committed_.erase(p);
    judged_.erase(p);
    duplicates_.Reset(p);  // not sure what happened to them meanwhile: rebuilt if they come back
  }
  SetOwned();
  UpdateLag();
}

Result<std::vector<int64_t>> LogFollower::Assigned(const std::vector<int32_t>& partitions) {
  std::vector<int64_t> from;
  // Filters of partitions given up at the revocation and not given back are forgotten.
  for (auto it = judged_.begin(); it != judged_.end();) {
    if (std::find(partitions.begin(), partitions.end(), it->first) != partitions.end()) {
      ++it;
    } else {
      duplicates_.Reset(it->first);
      it = judged_.erase(it);
    }
  }
  size_t rebuilt = 0;
  int64_t rebuild_us = 0;
  bool prepared = UntilDone([&] {
    std::map<int32_t, int64_t> saved;
    Status s = destination_->Prepare(partitions_, &saved);
    if (!s.ok()) return s;
    from.clear();
    for (int32_t p : partitions) from.push_back(std::max<int64_t>(saved[p], 0));
    if (duplicates_.enabled() && !partitions.empty()) {
      // A partition kept across the rebalance whose filter judged exactly the records before the
      // position it resumes at needs no rebuild: what the filter holds depends only on those
      // records, which nobody changes. If anyone else wrote it meanwhile, or this member gave up
      // what it had read, the saved position differs (or the filter was dropped): rebuilt.
      std::vector<std::pair<int32_t, int64_t>> at;
      for (size_t i = 0; i < partitions.size(); ++i) {
        auto it = judged_.find(partitions[i]);
        if (it != judged_.end() && it->second == from[i]) continue;
        if (it != judged_.end()) judged_.erase(it);
        at.emplace_back(partitions[i], from[i]);
      }
      int64_t t0 = MonotonicMicros();
      s = duplicates_.Rebuild(log_, options_.topic, at);
      rebuild_us = MonotonicMicros() - t0;
      rebuilt = at.size();
      if (s.ok()) {
        for (size_t i = 0; i < partitions.size(); ++i) judged_[partitions[i]] = from[i];
      }
    }
    return s;
  });
  if (!prepared) return Status::Unavailable(options_.name + ": stopped while taking partitions of " + options_.topic);
  for (size_t i = 0; i < partitions.size(); ++i) committed_[partitions[i]] = from[i];
  rebalances_.Add();
  SetOwned();
  UpdateLag();
  std::string list;
  for (int32_t p : partitions) list += (list.empty() ? "" : ",") + std::to_string(p);
  std::string filters;
  if (duplicates_.enabled() && !partitions.empty()) {
    filters = fmt::format("; duplicate filters: {} rebuilt in {}, {} kept", rebuilt, FormatDuration(rebuild_us),
                          partitions.size() - rebuilt);
  }
  spdlog::info("{}: owns partitions {} of {} ({} of {}{})", options_.name, list.empty() ? "none" : list, options_.topic,
               partitions.size(), partitions_, filters);
  return from;
}

void LogFollower::Rejoin(const Status& why) {
  spdlog::warn("{}: reading {} in group {}: {}; joining the group again", options_.name, options_.topic,
               SinkGroupName(options_.consumer, options_.topic, options_.destination), why.ToString());
  if (!Finish()) return;
  member_.reset();  // leaves: its partitions go to the others (no handler runs on the way out)
  committed_.clear();
  duplicates_.Reset();
  judged_.clear();
  SetOwned();
  UntilDone([&] { return JoinGroup(); });
}

void LogFollower::Run() {
  if (!group_mode_) {
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
    SetOwned();
  }
  // In a group the destination is prepared, and positions read, as partitions are given (in Poll).
  pipelined_ = destination_->Pipelined();
  if (pipelined_) {
    slots_.resize(static_cast<size_t>(std::max(1, destination_->Slots())));
    for (size_t k = 0; k < slots_.size(); ++k) writers_.emplace_back([this, k] { WriteHandedOver(static_cast<int>(k)); });
  }
  std::vector<log::ConsumedRecord> records;
  int64_t last_lag = 0;
  while (!stop_.load()) {
    // Out of the group only when Rejoin was stopped.
    Status s = group_mode_ && !member_ ? Status::Unavailable("not in the group") : Poll(&records);
    if (!s.ok()) {
      if (stop_.load()) break;
      if (group_mode_) {
        Rejoin(s);
      } else {
        spdlog::error("{}: reading {}: {}", options_.name, options_.topic, s.ToString());
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
      continue;
    }
    if (!records.empty()) {
      if (pending_ == 0) batch_start_ = MonotonicMicros();
      records_read_.Add(records.size());
      for (const log::ConsumedRecord& r : records) next_[r.partition] = r.offset + 1;
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
      pending_ += records.size();
    }
    bool full = pending_ >= options_.batch ||
                (pending_ > 0 && MonotonicMicros() - batch_start_ >= options_.max_delay_us);
    if (full && !SealPending()) break;
    CommitWritten();
    if (MonotonicMicros() - last_lag > 1'000'000) {
      UpdateLag();
      last_lag = MonotonicMicros();
    }
  }
  for (std::thread& w : writers_) w.join();  // stop_ is set: each ends after its current attempt
  CommitWritten();
  member_.reset();  // leaves the group: its partitions go to the others now
}

}  // namespace mare::sinks
