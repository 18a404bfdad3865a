#include "processors/rollup/rollup_processor.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "common/time.h"
#include "log/file.h"
#include "processors/rollup/checkpoint.h"
#include "processors/rollup/rollup_metrics.h"

namespace mare::rollup {

Result<std::unique_ptr<RollupProcessor>> RollupProcessor::Start(const RollupOptions& options, log::Log* log,
                                                                DeadLetter* dead_letter, metrics::Registry* registry) {
  if (options.checkpoint_dir.empty()) return Status::InvalidArgument("rollup: checkpoint_dir is required");
  if (options.resolutions.empty()) return Status::InvalidArgument("rollup: no resolutions");
  if (options.emit_interval_us <= 0 || options.checkpoint_interval_us <= 0) {
    return Status::InvalidArgument("rollup: emit_interval and checkpoint_interval must be positive");
  }
  int32_t partitions = log->Partitions(options.input_topic);
  if (partitions == 0) {
    return Status::NotFound("rollup: the log has no topic " + options.input_topic + " (mare run creates it)");
  }
  // Rollups go to the partition of their sensor's readings: the output records the input's rule.
  // Every revision of a window has its key, and a consumer keeps the newest: the topic keeps
  // only the newest of each key once its segments close (cleanup.policy=compact,delete), so that
  // it holds about one message per window instead of one per second the window was open.
  MARE_RETURN_IF_ERROR(log->CreateTopic({.name = options.output_topic,
                                         .partitions = partitions,
                                         .compact = true,
                                         .retention_us = options.output_retention_us,
                                         .partitioner = log->TopicPartitioner(options.input_topic),
                                         .compression = log::CompressionNamed(options.compression)}));
  if (log->Partitions(options.output_topic) != partitions) {
    return Status::InvalidArgument(fmt::format("rollup: topic {} has {} partitions, {} has {}; they must match",
                                               options.output_topic, log->Partitions(options.output_topic),
                                               options.input_topic, partitions));
  }
  if (options.group_mode) {
    // The newest state of each partition, kept forever: compacted, no retention.
    MARE_RETURN_IF_ERROR(
        log->CreateTopic({.name = options.state_topic, .partitions = partitions, .compact = true, .retention_us = 0}));
    if (log->Partitions(options.state_topic) != partitions) {
      return Status::InvalidArgument(fmt::format("rollup: topic {} has {} partitions, {} has {}; they must match",
                                                 options.state_topic, log->Partitions(options.state_topic),
                                                 options.input_topic, partitions));
    }
    if (options.member.empty()) return Status::InvalidArgument("rollup: a group member needs a name");
  } else {
    MARE_RETURN_IF_ERROR(log::file::CreateDirs(options.checkpoint_dir));
  }
  if (registry == nullptr) registry = &metrics::Registry::Global();
  std::unique_ptr<RollupProcessor> p(new RollupProcessor(options, log, dead_letter, registry, partitions));
  MARE_RETURN_IF_ERROR(p->Recover());
  int64_t now = MonotonicMicros();
  p->next_emit_us_ = now + options.emit_interval_us;
  p->next_checkpoint_us_ = now + options.checkpoint_interval_us;
  RollupProcessor* raw = p.get();
  log::ConsumerThread::Hooks hooks{
      .step = [raw] { return raw->Step(); },
      .recover = nullptr,  // below
      .on_error = [raw](const Status& s, bool will_retry) {
        raw->failures_->Add();
        if (!will_retry) {
          spdlog::error("rollup: {}; stopped (restart resumes from the last checkpoint)", s.ToString());
          raw->member_.reset();  // leaves the group, which would otherwise wait for it at each rebalance
        } else if (raw->thread_.healthy()) {  // once per outage, not per retry
          spdlog::error("rollup: {}; retrying from the last checkpoint with backoff", s.ToString());
        }
      },
      .on_health_change = [raw] { raw->RefreshHealth(); }};
  if (options.group_mode) {
    hooks.recover = [raw] { return raw->Rejoin(); };
  } else {
    hooks.recover = [raw] { return raw->Rewind(); };
  }
  p->thread_.Start(std::move(hooks));
  return p;
}

RollupProcessor::RollupProcessor(const RollupOptions& options, log::Log* log, DeadLetter* dead_letter,
                                 metrics::Registry* registry, int32_t partitions)
    : options_(options),
      log_(log),
      dead_letter_(dead_letter),
      state_({.resolutions = options.resolutions,
              .lateness_us = options.lateness_us,
              .partitions = partitions,
              .partitioner = log->TopicPartitioner(options.input_topic)}),
      duplicates_(options.dedup),
      changed_(static_cast<size_t>(partitions), false),
      by_partition_(static_cast<size_t>(partitions)) {
  readings_ = &registry->GetCounter(rollup_metrics::kReadingsCounted);
  emitted_ = &registry->GetCounter(rollup_metrics::kMessagesEmitted);
  dropped_late_ = &registry->GetCounter(rollup_metrics::kLateReadingsDropped);
  duplicates_dropped_ = &registry->GetCounter(rollup_metrics::kDuplicatesDropped);
  watermark_ = &registry->GetGauge(rollup_metrics::kWatermarkSeconds);
  lag_gauge_ = &registry->GetGauge(rollup_metrics::kLagRecords);
  open_windows_ = &registry->GetGauge(rollup_metrics::kOpenWindows);
  checkpoint_seconds_ = &registry->GetHistogram(rollup_metrics::kCheckpointSeconds);
  consumer_up_ = &registry->GetGauge(rollup_metrics::kConsumerUp);
  failures_ = &registry->GetCounter(rollup_metrics::kStepsFailed);
  consumer_up_->Set(1);
  state_.set_reject_handler([this](std::string_view reason, std::string_view detail, std::string_view raw) {
    if (dead_letter_ != nullptr) dead_letter_->Add("rollup", reason, detail, raw);
  });
  // A big emission is appended in parts of 8 MiB while it is made: the messages need no more
  // memory than that, and are still in the CPU's caches when the log copies them. (A crash
  // half way is like one after the whole emission: the restart appends them all again.)
  messages_.set_flush(8 << 20, [this](RollupMessages&) {
    if (flush_status_.ok()) flush_status_ = AppendMessages();
  });
}

RollupProcessor::~RollupProcessor() {
  if (Status s = Stop(); !s.ok()) spdlog::error("rollup: final checkpoint at shutdown failed: {}", s.ToString());
}

Status RollupProcessor::Recover() {
  last_read_us_ = MonotonicMicros();  // silence is counted from (re)starting, never from before
  if (options_.group_mode) return JoinGroup();
  auto consumer = log_->Subscribe(options_.group, options_.input_topic);
  if (!consumer.ok()) return consumer.status();
  consumer_ = std::move(*consumer);
  return Rewind();
}

Status RollupProcessor::Rewind() {
  last_read_us_ = MonotonicMicros();
  state_.Reset();
  Status s = ReadCheckpoint(checkpoint_path(), &state_);
  if (s.IsNotFound()) {
    state_.Reset();
    spdlog::info("rollup: no checkpoint in {}; computing from the oldest retained reading", options_.checkpoint_dir);
  } else if (!s.ok()) {
    if (s.code() == Status::Code::kIOError) return s;  // could not read it: transient, worth a retry
    return Status(s.code() == Status::Code::kCorruption ? Status::Corruption("rollup: " + s.message())
                                                        : Status::InvalidArgument("rollup: " + s.message()));
  } else {
    spdlog::info("rollup: resumed from {}: {} windows, watermark {}", checkpoint_path(), state_.held_windows(),
                 state_.watermark_us() == kNoTime ? std::string("none") : FormatTimestamp(state_.watermark_us()));
  }
  for (int32_t p = 0; p < state_.options().partitions; ++p) {
    MARE_RETURN_IF_ERROR(consumer_->Seek(p, state_.next_offset(p)));
    int64_t at = consumer_->Position(p);
    if (at > state_.next_offset(p)) {
      // Retention removed readings the processor never read: say so, they cannot be counted.
      spdlog::warn("rollup: {} partition {}: offsets {}..{} were removed by retention before being rolled up",
                   options_.input_topic, p, state_.next_offset(p), at - 1);
    }
  }
  std::vector<int32_t> all(static_cast<size_t>(state_.options().partitions));
  for (size_t p = 0; p < all.size(); ++p) all[p] = static_cast<int32_t>(p);
  MARE_RETURN_IF_ERROR(RebuildFilter(all));
  // What the checkpoint holds was counted in the metrics before (by this run or an earlier one);
  // after a rewind, so was what is read again up to where this run had come.
  counted_before_ = std::max<uint64_t>(counted_before_, state_.readings());
  dropped_before_ = std::max<uint64_t>(dropped_before_, state_.dropped_late());
  messages_.Clear();
  flush_status_ = Status::OK();
  int64_t consumed = 0;
  for (int32_t p = 0; p < state_.options().partitions; ++p) consumed += state_.next_offset(p);
  thread_.set_consumed(consumed);
  return Status::OK();
}

Status RollupProcessor::JoinGroup(int64_t start_timeout_us) {
  log::GroupOptions g{.group = options_.group,
                      .topic = options_.input_topic,
                      .member = options_.member,
                      .handlers = {},
                      .start_timeout_us = start_timeout_us};
  // Eager rebalancing: every revocation takes all partitions, so the state is dropped whole.
  g.handlers.revoked = [this](const std::vector<int32_t>&) {
    state_.Reset();
    duplicates_.Reset();
    counted_before_ = dropped_before_ = 0;
    changed_.assign(changed_.size(), false);
  };
  g.handlers.assigned = [this](const std::vector<int32_t>& partitions, const std::vector<int64_t>& committed) {
    return Restore(partitions, committed);
  };
  auto member = log_->JoinGroup(g);
  if (!member.ok()) return member.status();
  member_ = std::move(*member);
  spdlog::info("rollup: joined group {} as {}; state in topic {}", options_.group, options_.member, options_.state_topic);
  return Status::OK();
}

Status RollupProcessor::Rejoin() {
  if (member_ && member_->fenced()) {
    return Status::InvalidArgument(fmt::format("rollup: member {} of group {} was fenced by another with the same name",
                                               options_.member, options_.group));
  }
  // The old member leaves first (its open transaction aborted, or fenced by the new one's
  // producer, which has the same transactional.id): its partitions come back through the
  // handlers, restored from the state topic, so nothing is counted twice or skipped.
  member_.reset();
  state_.Reset();
  duplicates_.Reset();
  changed_.assign(changed_.size(), false);
  messages_.Clear();
  flush_status_ = Status::OK();
  last_read_us_ = MonotonicMicros();
  return JoinGroup(/*start_timeout_us=*/0);  // one attempt: the consumer thread's backoff, which Stop ends, retries
}

// The partitions' last committed state from the state topic; each is read on from its offset.
Result<std::vector<int64_t>> RollupProcessor::Restore(const std::vector<int32_t>& partitions,
                                                      const std::vector<int64_t>& committed) {
  std::map<std::pair<int32_t, std::string>, std::string> latest;
  MARE_RETURN_IF_ERROR(member_->ReadLatest(options_.state_topic, partitions, &latest));
  std::vector<int64_t> from;
  for (size_t i = 0; i < partitions.size(); ++i) {
    int32_t p = partitions[i];
    int64_t start = 0;
    auto it = latest.find({p, std::to_string(p)});
    if (it != latest.end()) {
      MARE_RETURN_IF_ERROR(
          DecodeCheckpoint(it->second, p, &state_, fmt::format("topic {} partition {}", options_.state_topic, p)));
      start = state_.next_offset(p);
    }
    if (committed[i] >= 0 && committed[i] != start) {
      // One transaction writes both: they differ only if one was removed by hand.
      return Status::InvalidArgument(fmt::format(
          "rollup: partition {}: group {} committed offset {}, but its state in topic {} is at offset {}; delete the "
          "group's offsets and the state topic to recompute the rollups from the oldest retained reading",
          p, options_.group, committed[i], options_.state_topic, start));
    }
    from.push_back(start);
  }
  MARE_RETURN_IF_ERROR(RebuildFilter(partitions));
  spdlog::info("rollup: partitions {} restored from {}: {} windows, reading on from offsets {}", fmt::join(partitions, ","),
               options_.state_topic, state_.held_windows(), fmt::join(from, ","));
  return from;
}

Status RollupProcessor::RebuildFilter(const std::vector<int32_t>& partitions) {
  if (!duplicates_.enabled()) return Status::OK();
  std::vector<std::pair<int32_t, int64_t>> next;
  for (int32_t p : partitions) next.emplace_back(p, state_.next_offset(p));
  return duplicates_.Rebuild(log_, options_.input_topic, next);
}

Status RollupProcessor::Step() {
  if (member_) {
    MARE_RETURN_IF_ERROR(member_->Poll(&batch_, options_.poll_records, std::chrono::milliseconds(100)));
  } else {
    MARE_RETURN_IF_ERROR(consumer_->Poll(&batch_, options_.poll_records, std::chrono::milliseconds(100)));
  }
  uint64_t duplicates = 0;
  for (const auto& r : batch_) {
    if (duplicates_.Drop(r)) {
      state_.Skip(r.partition, r.offset);  // read, not counted: the first copy was
      ++duplicates;
    } else {
      state_.AddRecord(r);
    }
    changed_[static_cast<size_t>(r.partition)] = true;
  }
  if (duplicates > 0) duplicates_dropped_->Add(duplicates);
  // A window that closes is emitted at once, not at the next emit_interval: its final rollup is
  // what the forecast processor and the sinks wait for (closings are rare: once a minute). Not
  // in a burst (a full poll: a backlog, a catch-up after a restart): there a minute closes every
  // few polls, and each emission re-emits every window the polls touched since the last (all of
  // them), which made bench/rollup.py's 2M readings 660,180 messages instead of ~188,000 and cut
  // the processor's rate by 4; the finals then wait for the next emit_interval, as the forecast
  // processor's work does in a burst.
  const bool in_burst = batch_.size() >= options_.poll_records;
  const int64_t open_before = state_.open_windows();
  bool closed = false;
  if (!batch_.empty()) {
    last_read_us_ = MonotonicMicros();
    state_.AdvanceWatermark();
    closed = state_.open_windows() < open_before;
    if (state_.readings() > counted_before_) {
      readings_->Add(state_.readings() - counted_before_);
      counted_before_ = state_.readings();
    }
    if (state_.dropped_late() > dropped_before_) {
      dropped_late_->Add(state_.dropped_late() - dropped_before_);
      dropped_before_ = state_.dropped_late();
    }
    int64_t consumed = 0;
    for (int32_t p = 0; p < state_.options().partitions; ++p) consumed += state_.next_offset(p);
    thread_.set_consumed(consumed);
  } else if (options_.idle_watermark) {
    state_.AdvanceIdleWatermark(MonotonicMicros() - last_read_us_);
    closed = state_.open_windows() < open_before;
  }
  int64_t now = MonotonicMicros();
  if (now >= next_emit_us_ || (closed && !in_burst)) {
    MARE_RETURN_IF_ERROR(EmitPending());
    if (member_) MARE_RETURN_IF_ERROR(CommitTransaction());  // the group's checkpoint
    next_emit_us_ = now + options_.emit_interval_us;
  }
  if (!member_ && now >= next_checkpoint_us_) {
    MARE_RETURN_IF_ERROR(Checkpoint());
    next_checkpoint_us_ = MonotonicMicros() + options_.checkpoint_interval_us;
  }
  if (now >= next_lag_us_) {
    RefreshLag();
    next_lag_us_ = now + 1'000'000;
  }
  return Status::OK();
}

Status RollupProcessor::EmitPending() {
  messages_.Clear();
  flush_status_ = Status::OK();
  state_.Emit(&messages_);
  watermark_->Set(state_.watermark_us() == kNoTime ? 0.0 : static_cast<double>(state_.watermark_us()) / 1e6);
  open_windows_->Set(static_cast<double>(state_.open_windows()));
  MARE_RETURN_IF_ERROR(flush_status_);
  return AppendMessages();
}

Status RollupProcessor::AppendMessages() {
  if (messages_.empty()) return Status::OK();
  for (auto& v : by_partition_) v.clear();
  for (size_t i = 0; i < messages_.size(); ++i) {
    by_partition_[static_cast<size_t>(messages_.partition(i))].push_back(
        {messages_.timestamp_us(i), messages_.key(i), messages_.value(i)});
  }
  for (size_t p = 0; p < by_partition_.size(); ++p) {
    if (by_partition_[p].empty()) continue;
    if (member_) {
      MARE_RETURN_IF_ERROR(member_->Produce(options_.output_topic, static_cast<int32_t>(p), by_partition_[p]));
      changed_[p] = true;  // its windows' dirty flags changed
    } else {
      MARE_RETURN_IF_ERROR(log_->Append(options_.output_topic, static_cast<int32_t>(p), by_partition_[p]));
    }
  }
  emitted_->Add(messages_.size());
  return Status::OK();
}

Status RollupProcessor::Checkpoint() {
  int64_t t0 = MonotonicMicros();
  // What the checkpoint says was read and emitted must not be lost by a power cut after it.
  if (options_.sync_log_before_checkpoint) MARE_RETURN_IF_ERROR(log_->Sync());
  MARE_RETURN_IF_ERROR(WriteCheckpoint(checkpoint_path(), state_, &checkpoint_scratch_));
  checkpoint_seconds_->Observe(static_cast<double>(MonotonicMicros() - t0) / 1e6);
  // The group's committed position is for `mare log groups`; the checkpoint is the truth.
  for (int32_t p = 0; p < state_.options().partitions; ++p) {
    if (consumer_->Committed(p) == state_.next_offset(p)) continue;
    Status s = consumer_->Commit(p, state_.next_offset(p));
    if (!s.ok()) spdlog::warn("rollup: commit of group {} failed: {}", options_.group, s.ToString());
  }
  return Status::OK();
}

// One transaction: the rollups EmitPending produced, the state of every partition that changed,
// and the input offsets that state reflects.
Status RollupProcessor::CommitTransaction() {
  int64_t t0 = MonotonicMicros();
  std::vector<std::pair<int32_t, int64_t>> offsets;
  for (size_t p = 0; p < changed_.size(); ++p) {
    if (!changed_[p]) continue;
    int32_t partition = static_cast<int32_t>(p);
    EncodeCheckpoint(state_, partition, &checkpoint_scratch_);
    std::string key = std::to_string(p);
    log::Record record{.timestamp_us = NowMicros(), .key = key, .value = checkpoint_scratch_};
    MARE_RETURN_IF_ERROR(member_->Produce(options_.state_topic, partition, std::span(&record, 1)));
    offsets.emplace_back(partition, state_.next_offset(partition));
  }
  changed_.assign(changed_.size(), false);
  MARE_RETURN_IF_ERROR(member_->CommitTransaction(offsets));
  if (!offsets.empty()) checkpoint_seconds_->Observe(static_cast<double>(MonotonicMicros() - t0) / 1e6);
  return Status::OK();
}

void RollupProcessor::RefreshLag() {
  int64_t lag = 0;
  bool known = false;
  if (member_) {
    known = true;  // a member without partitions has nothing to read
    for (int32_t p : member_->Assignment()) {
      int64_t end = member_->EndOffset(p);
      if (end >= 0) lag += std::max<int64_t>(0, end - member_->Position(p));
    }
  }
  if (int64_t behind = consumer_ ? consumer_->Lag(state_.options().partitions) : -1; behind >= 0) {
    known = true;
    lag += behind;
  }
  if (!known) return;
  thread_.set_lag(lag);
  lag_gauge_->Set(static_cast<double>(lag));
}

void RollupProcessor::RefreshHealth() {
  consumer_up_->Set(thread_.healthy() ? 1 : 0);
  RefreshLag();
}

Status RollupProcessor::Stop() {
  return thread_.Stop([this] {
    Status s = EmitPending();
    if (s.ok()) s = member_ ? CommitTransaction() : Checkpoint();
    RefreshLag();
    member_.reset();  // leaves the group: its partitions move to the other members now
    return s;
  });
}

}  // namespace mare::rollup
