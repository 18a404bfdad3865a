#include "processors/forecast/forecast_processor.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "common/time.h"
#include "common/usable_cpus.h"
#include "log/file.h"
#include "log/partitioner.h"
#include "processors/forecast/forecast_metrics.h"
#include "processors/forecast/forecast_record.h"
#include "processors/forecast/model_skill.h"

namespace mare::forecast {

Result<std::unique_ptr<ForecastProcessor>> ForecastProcessor::Start(const ForecastOptions& options, log::Log* log,
                                                                    metrics::Registry* registry) {
  if (options.checkpoint_dir.empty()) return Status::InvalidArgument("forecast: checkpoint_dir is required");
  if (options.fields.empty()) return Status::InvalidArgument("forecast: no fields");
  if (options.horizon_hours < 1 || options.horizon_hours > 168) {
    return Status::InvalidArgument("forecast: horizon_hours must be within 1..168");
  }
  if (options.history_days < 30 || options.history_days > 3650) {
    return Status::InvalidArgument("forecast: history_days must be within 30..3650");
  }
  if (options.refit_interval_us < kMicrosPerHour || options.refit_interval_us % kMicrosPerHour != 0 ||
      (24 * kMicrosPerHour) % options.refit_interval_us != 0) {
    return Status::InvalidArgument("forecast: refit_interval must be a whole number of hours dividing 1d (1h, 2h, ..., 1d)");
  }
  if (options.checkpoint_interval_us <= 0) return Status::InvalidArgument("forecast: checkpoint_interval must be positive");
  if (options.issue_threads < 0 || options.issue_threads > 256) {
    return Status::InvalidArgument("forecast: issue_threads must be within 0..256 (0: one per usable CPU)");
  }
  int32_t partitions = log->Partitions(options.input_topic);
  if (partitions == 0) {
    return Status::NotFound("forecast: the log has no topic " + options.input_topic +
                            " (the rollups make it: mare run, or mare stream)");
  }
  // A series' forecasts go to the partition of its rollups, so that a sensor's stay in order.
  MARE_RETURN_IF_ERROR(log->CreateTopic(
      {.name = options.output_topic, .partitions = partitions, .partitioner = log->TopicPartitioner(options.input_topic)}));
  if (log->Partitions(options.output_topic) != partitions) {
    return Status::InvalidArgument(fmt::format("forecast: topic {} has {} partitions, {} has {}; they must match",
                                               options.output_topic, log->Partitions(options.output_topic),
                                               options.input_topic, partitions));
  }
  MARE_RETURN_IF_ERROR(log::file::CreateDirs(options.checkpoint_dir));
  if (registry == nullptr) registry = &metrics::Registry::Global();
  std::unique_ptr<ForecastProcessor> p(new ForecastProcessor(options, log, registry, partitions));
  auto consumer = log->Subscribe(options.group, options.input_topic);
  if (!consumer.ok()) return consumer.status();
  p->consumer_ = std::move(*consumer);
  MARE_RETURN_IF_ERROR(p->Rewind());
  p->next_checkpoint_us_ = MonotonicMicros() + options.checkpoint_interval_us;
  ForecastProcessor* raw = p.get();
  p->thread_.Start({.step = [raw] { return raw->Step(); },
                    .recover = [raw] { return raw->Rewind(); },
                    .on_error = [raw](const Status& s, bool will_retry) {
                      raw->failures_->Add();
                      if (!will_retry) {
                        spdlog::error("forecast: {}; stopped (restart resumes from the last checkpoint)", s.ToString());
                      } else if (raw->thread_.healthy()) {
                        spdlog::error("forecast: {}; retrying from the last checkpoint with backoff", s.ToString());
                      }
                    },
                    .on_health_change = [raw] {
                      raw->consumer_up_->Set(raw->thread_.healthy() ? 1 : 0);
                      raw->RefreshLag();
                    }});
  return p;
}

namespace {

size_t IssueThreads(int option) {
  if (option > 0) return static_cast<size_t>(option);
  return UsableCpus();
}

}  // namespace

ForecastProcessor::ForecastProcessor(const ForecastOptions& options, log::Log* log, metrics::Registry* registry,
                                     int32_t partitions)
    : options_(options),
      log_(log),
      partitions_(partitions),
      next_offsets_(static_cast<size_t>(partitions), 0),
      consumed_(new std::atomic<int64_t>[static_cast<size_t>(partitions)]()),
      pending_(static_cast<size_t>(partitions)),
      pending_ts_(static_cast<size_t>(partitions)),
      issues_(IssueThreads(options.issue_threads)),
      pool_(IssueThreads(options.issue_threads)) {
  hours_closed_ = &registry->GetCounter(forecast_metrics::kHoursClosed);
  issued_ = &registry->GetCounter(forecast_metrics::kIssued);
  day_ahead_issued_ = &registry->GetCounter(forecast_metrics::kDayAheadIssued);
  issue_seconds_ = &registry->GetHistogram(forecast_metrics::kIssueSeconds);
  series_gauge_ = &registry->GetGauge(forecast_metrics::kSeries);
  lag_gauge_ = &registry->GetGauge(forecast_metrics::kLagRecords);
  checkpoint_seconds_ = &registry->GetHistogram(forecast_metrics::kCheckpointSeconds);
  consumer_up_ = &registry->GetGauge(forecast_metrics::kConsumerUp);
  failures_ = &registry->GetCounter(forecast_metrics::kStepsFailed);
  consumer_up_->Set(1);
}

ForecastProcessor::~ForecastProcessor() { (void)Stop(); }

SeriesOptions ForecastProcessor::series_options(const SeriesKey& key) const {
  SeriesOptions s;
  s.horizon = options_.horizon_hours;
  s.history_days = options_.history_days;
  s.refit_hours = static_cast<int>(options_.refit_interval_us / kMicrosPerHour);
  s.skill_days = kSkillDays;
  // FNV-1a of "<sensor_id>/<field>": the same phase in every run and build.
  std::string name = std::to_string(key.first) + "/" + key.second;
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ULL;
  s.refit_phase = static_cast<int>(h % static_cast<uint64_t>(s.refit_hours));
  return s;
}

Status ForecastProcessor::Rewind() {
  series_.clear();
  to_prepare_.clear();
  prepared_ = 0;
  preparing_ = 0;
  for (auto& p : pending_) p.clear();
  for (auto& p : pending_ts_) p.clear();
  staged_latest_.clear();
  pending_day_ahead_ = 0;
  {
    std::lock_guard lock(latest_mu_);
    latest_.clear();
  }
  std::fill(next_offsets_.begin(), next_offsets_.end(), 0);
  ForecastCheckpoint c;
  Status s = ReadForecastCheckpoint(checkpoint_path(), &c);
  std::map<SeriesKey, LatestIssue> latest;
  if (s.IsNotFound()) {
    spdlog::info("forecast: no checkpoint in {}; reading {} from its oldest retained record", options_.checkpoint_dir,
                 options_.input_topic);
    if (options_.history) {
      MARE_RETURN_IF_ERROR(LoadHistory());
      // The loaded hours are the state from now on, whatever the store holds after a crash.
      MARE_RETURN_IF_ERROR(Checkpoint());
    }
  } else if (!s.ok()) {
    if (s.code() == Status::Code::kIOError) return s;
    return Status::Corruption("forecast: " + s.message() + " (delete it to start over from the rollups topic)");
  } else {
    if (c.next_offsets.size() != static_cast<size_t>(partitions_)) {
      return Status::InvalidArgument(fmt::format(
          "forecast: {} was written for {} partitions of {}, which has {}; delete it to start over",
          checkpoint_path(), c.next_offsets.size(), options_.input_topic, partitions_));
    }
    SeriesOptions so = series_options({0, ""});
    const bool same_settings = c.horizon == static_cast<uint32_t>(so.horizon) &&
                               c.history_days == static_cast<uint32_t>(so.history_days) &&
                               c.refit_hours == static_cast<uint32_t>(so.refit_hours);
    if (!same_settings) {
      spdlog::warn("forecast: the checkpoint was made with horizon {}h, history {}d, refit {}h; its models are rebuilt "
                   "from its hours, and forecasts from now on follow the new settings", c.horizon, c.history_days,
                   c.refit_hours);
    }
    next_offsets_ = c.next_offsets;
    int64_t t0 = MonotonicMicros();
    size_t rebuilt = 0;
    for (SeriesCheckpoint& sc : c.series) {
      SeriesKey key{sc.sensor_id, sc.field};
      auto [it, added] = series_.try_emplace(key, Series{SeriesForecaster(series_options(key)), sc.partition});
      // With its models when the checkpoint has them for these settings; else replayed from its hours.
      if (!same_settings || !sc.state || !it->second.forecaster.RestoreState(sc.history, *sc.state).ok()) {
        it->second.forecaster.Restore(sc.history);
        ++rebuilt;
      }
      latest[key] = {std::move(sc.latest), std::move(sc.latest_day_ahead)};
    }
    restored_with_models_ = series_.size() - rebuilt;
    spdlog::info("forecast: resumed from {}: {} series with their models, {} rebuilt from their hours, in {:.2f} s",
                 checkpoint_path(), series_.size() - rebuilt, rebuilt, static_cast<double>(MonotonicMicros() - t0) / 1e6);
  }
  for (int32_t p = 0; p < partitions_; ++p) {
    MARE_RETURN_IF_ERROR(consumer_->Seek(p, next_offsets_[static_cast<size_t>(p)]));
    int64_t at = consumer_->Position(p);
    if (at > next_offsets_[static_cast<size_t>(p)]) {
      spdlog::warn("forecast: {} partition {}: offsets {}..{} were removed by retention before being read",
                   options_.input_topic, p, next_offsets_[static_cast<size_t>(p)], at - 1);
    }
  }
  for (const auto& [key, series] : series_) {
    latest[key].skill = SkillValue(key.first, key.second, series.forecaster.Skill(kSkillDays));
  }
  if (!latest.empty()) {
    std::lock_guard lock(latest_mu_);
    latest_ = std::move(latest);
  }
  series_gauge_->Set(static_cast<double>(series_.size()));
  // Their next issues' work ahead (the books' answers are not in the checkpoint), in the idle
  // time before the next hour closes.
  for (auto& [key, series] : series_) Queue(&series);
  preparing_.store(to_prepare_.size(), std::memory_order_relaxed);
  dirty_ = false;
  PublishConsumed();
  return Status::OK();
}

Status ForecastProcessor::LoadHistory() {
  const SeriesOptions so = series_options({0, ""});
  const int64_t hours_back = 24 * static_cast<int64_t>(SeriesForecaster(so).kept_days());
  const log::Partitioner partitioner = log_->TopicPartitioner(options_.input_topic);
  size_t hours = 0;
  int64_t t0 = MonotonicMicros();
  Status s = options_.history(hours_back, [&](uint64_t sensor_id, const std::string& field, const HourlySeries& series) {
    if (std::find(options_.fields.begin(), options_.fields.end(), field) == options_.fields.end()) return;
    if (series.values.size() < 2) return;
    HourlySeries kept = series;
    kept.values.pop_back();  // the newest hour may still be filling: the rollups give it
    while (!kept.values.empty() && std::isnan(kept.values.back())) kept.values.pop_back();
    if (kept.values.empty()) return;
    SeriesKey key{sensor_id, field};
    int32_t partition = log::PartitionFor(partitioner, sensor_id, partitions_);
    auto [it, added] = series_.try_emplace(key, Series{SeriesForecaster(series_options(key)), partition});
    it->second.forecaster.Restore(kept);
    hours += kept.values.size();
  });
  if (!s.ok()) {
    spdlog::error("forecast: loading history failed: {}", s.ToString());
    return s;
  }
  spdlog::info("forecast: {} series with {} hours of history loaded in {:.2f} s", series_.size(), hours,
               static_cast<double>(MonotonicMicros() - t0) / 1e6);
  return Status::OK();
}

Status ForecastProcessor::Step() {
  // With work ahead queued, a poll does not wait for records: the step does the work instead.
  const bool work_ahead = prepared_ < to_prepare_.size();
  MARE_RETURN_IF_ERROR(consumer_->Poll(&batch_, options_.poll_records, std::chrono::milliseconds(work_ahead ? 0 : 100)));
  // When many series' hours close at once (the watermark passes an hour for every sensor), a
  // batch holds thousands of issues of ~0.5 ms each: they are issued on the pool, and what is
  // issued goes to the topic every kAppendEveryUs, not only at the batch's end, so the first
  // series need not wait for the last.
  jobs_.clear();
  units_.clear();
  for (const log::ConsumedRecord& r : batch_) {
    next_offsets_[static_cast<size_t>(r.partition)] = r.offset + 1;
    Take(r);
  }
  for (const Job& j : jobs_) j.series->last_job = kNoJob;
  if (!jobs_.empty()) MARE_RETURN_IF_ERROR(IssueJobs());
  MARE_RETURN_IF_ERROR(AppendPending());
  if (!units_.empty()) QueuePrepare();
  if (batch_.empty()) PrepareSome();  // nothing came in: spare time
  PublishConsumed();
  if (!batch_.empty()) series_gauge_->Set(static_cast<double>(series_.size()));
  int64_t now = MonotonicMicros();
  // A checkpoint (seconds for 10,000 series) waits for the end of a burst of closing hours (a
  // batch that is not full), so that it does not hold up the burst's forecasts, unless overdue.
  const bool in_burst = batch_.size() >= options_.poll_records;
  if (dirty_ && now >= next_checkpoint_us_ &&
      (!in_burst || now >= next_checkpoint_us_ + kCheckpointDeferMax * options_.checkpoint_interval_us)) {
    MARE_RETURN_IF_ERROR(Checkpoint());
    next_checkpoint_us_ = MonotonicMicros() + options_.checkpoint_interval_us;
  }
  if (now >= next_lag_us_) {
    RefreshLag();
    next_lag_us_ = now + 1'000'000;
  }
  return Status::OK();
}

void ForecastProcessor::Take(const log::ConsumedRecord& r) {
  RollupKey key;
  if (!ParseRollupKey(r.key, &key)) return;  // not a rollup: nothing to forecast from
  if (key.resolution != "1h" || key.window_start_us % kMicrosPerHour != 0) return;
  auto field = std::find(options_.fields.begin(), options_.fields.end(), key.field);
  if (field == options_.fields.end()) return;
  double mean = 0;
  bool final = false;
  if (Status s = ParseRollupValue(r.value, &mean, &final); !s.ok()) {
    spdlog::warn("forecast: {} partition {} offset {}: {}; skipped", options_.input_topic, r.partition, r.offset,
                 s.message());
    return;
  }
  if (!final || !std::isfinite(mean)) return;  // the hour closes with its first final rollup
  SeriesKey series_key{key.sensor_id, *field};
  auto it = series_.find(series_key);
  if (it == series_.end()) {
    it = series_.try_emplace(series_key, Series{SeriesForecaster(series_options(series_key)), r.partition}).first;
  }
  Series* series = &it->second;
  const size_t j = jobs_.size();
  jobs_.push_back({.series = series, .sensor_id = key.sensor_id, .field = &*field,
                   .hour = key.window_start_us / kMicrosPerHour, .mean = mean});
  if (series->last_job == kNoJob) {
    units_.push_back(j);
  } else {
    jobs_[series->last_job].next = j;
  }
  series->last_job = j;
}

Status ForecastProcessor::IssueJobs() {
  done_.reset(new std::atomic<uint8_t>[jobs_.size()]());
  std::atomic<size_t> next_unit{0};
  size_t emitted = 0;
  Status appended = Status::OK();
  int64_t appended_at = MonotonicMicros();
  pool_.Run([&](size_t worker) {
    for (;;) {
      size_t u = next_unit.fetch_add(1, std::memory_order_relaxed);
      if (u >= units_.size()) return;
      for (size_t j = units_[u]; j != kNoJob; j = jobs_[j].next) {
        Issue(&jobs_[j], &issues_[worker]);
        done_[j].store(1, std::memory_order_release);
      }
      // Only this thread appends: the done jobs at the head of the batch, in its order.
      if (worker == 0 && MonotonicMicros() - appended_at >= kAppendEveryUs) {
        emitted = Emit(emitted);
        if (appended.ok()) appended = AppendPending();
        appended_at = MonotonicMicros();
      }
    }
  });
  emitted = Emit(emitted);
  return appended;
}

void ForecastProcessor::Issue(Job* job, ForecastIssue* issue) const {
  int64_t t0 = MonotonicMicros();
  SeriesForecaster& forecaster = job->series->forecaster;
  if (!forecaster.Close(job->hour, job->mean, issue)) return;
  job->seconds = static_cast<double>(MonotonicMicros() - t0) / 1e6;
  job->issued = true;
  job->day_ahead = issue->day_ahead;
  job->origin = issue->origin;
  job->key = ForecastKey(job->sensor_id, *job->field, issue->origin);
  job->value = ForecastValue(job->sensor_id, *job->field, *issue);
  if (issue->day_ahead) job->skill = SkillValue(job->sensor_id, *job->field, forecaster.Skill(kSkillDays));
}

void ForecastProcessor::Queue(Series* series) {
  if (series->queued) return;
  series->queued = true;
  to_prepare_.push_back(series);
}

void ForecastProcessor::QueuePrepare() {
  for (size_t u : units_) Queue(jobs_[u].series);
  preparing_.store(to_prepare_.size() - prepared_, std::memory_order_relaxed);
}

void ForecastProcessor::PrepareSome() {
  if (prepared_ >= to_prepare_.size()) return;
  const int64_t until = MonotonicMicros() + kPrepareSliceUs;
  std::atomic<size_t> next{prepared_};
  pool_.Run([&](size_t) {
    while (MonotonicMicros() < until) {
      size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= to_prepare_.size()) return;
      // A series whose next hour closed since prepares for the one after: no harm either way.
      to_prepare_[i]->forecaster.Prepare();
      to_prepare_[i]->queued = false;  // read again only after pool_.Run has returned
    }
  });
  prepared_ = std::min(next.load(), to_prepare_.size());
  if (prepared_ >= to_prepare_.size()) {
    to_prepare_.clear();
    prepared_ = 0;
  }
  preparing_.store(to_prepare_.size() - prepared_, std::memory_order_relaxed);
}

size_t ForecastProcessor::Emit(size_t from) {
  for (; from < jobs_.size() && done_[from].load(std::memory_order_acquire) != 0; ++from) {
    Job& job = jobs_[from];
    if (!job.issued) continue;
    // Only a closed hour makes a checkpoint due: records without one (the 1m and 1d rollups, every
    // second) would otherwise rewrite it every checkpoint_interval, seconds of this thread each.
    dirty_ = true;
    issue_seconds_->Observe(job.seconds);
    hours_closed_->Add();
    LatestIssue& staged = staged_latest_[{job.sensor_id, *job.field}];
    if (job.day_ahead) {
      staged.day_ahead = job.value;
      staged.skill = std::move(job.skill);
      ++pending_day_ahead_;
    }
    staged.latest = job.value;
    size_t p = static_cast<size_t>(job.series->partition);
    pending_[p].emplace_back(std::move(job.key), std::move(job.value));
    pending_ts_[p].push_back(job.origin * kMicrosPerHour);
  }
  return from;
}

Status ForecastProcessor::AppendPending() {
  std::vector<log::Record> records;
  for (size_t p = 0; p < pending_.size(); ++p) {
    if (pending_[p].empty()) continue;
    records.clear();
    for (size_t i = 0; i < pending_[p].size(); ++i) {
      records.push_back({.timestamp_us = pending_ts_[p][i], .key = pending_[p][i].first, .value = pending_[p][i].second});
    }
    MARE_RETURN_IF_ERROR(log_->Append(options_.output_topic, static_cast<int32_t>(p), records));
    issued_->Add(pending_[p].size());
    pending_[p].clear();
    pending_ts_[p].clear();
  }
  day_ahead_issued_->Add(static_cast<uint64_t>(pending_day_ahead_));
  pending_day_ahead_ = 0;
  if (!staged_latest_.empty()) {
    std::lock_guard lock(latest_mu_);
    for (auto& [key, staged] : staged_latest_) {
      LatestIssue& l = latest_[key];
      l.latest = std::move(staged.latest);
      if (!staged.day_ahead.empty()) l.day_ahead = std::move(staged.day_ahead);
      if (!staged.skill.empty()) l.skill = std::move(staged.skill);
    }
    staged_latest_.clear();
  }
  return Status::OK();
}

Status ForecastProcessor::Checkpoint() {
  int64_t t0 = MonotonicMicros();
  // What the checkpoint says was read and appended must not be lost by a power cut after it.
  if (options_.sync_log_before_checkpoint) MARE_RETURN_IF_ERROR(log_->Sync());
  ForecastCheckpoint c;
  SeriesOptions so = series_options({0, ""});
  c.horizon = static_cast<uint32_t>(so.horizon);
  c.history_days = static_cast<uint32_t>(so.history_days);
  c.refit_hours = static_cast<uint32_t>(so.refit_hours);
  c.next_offsets = next_offsets_;
  // Each series' models are copied on the pool (a quarter of a checkpoint's time on one
  // thread), in the map's order; the latest issues after, under the lock Latest() takes.
  std::vector<std::pair<const SeriesKey*, const Series*>> all;
  all.reserve(series_.size());
  for (const auto& [key, s] : series_) all.emplace_back(&key, &s);
  c.series.resize(all.size());
  std::atomic<size_t> next{0};
  constexpr size_t kChunk = 64;
  pool_.Run([&](size_t) {
    for (size_t from = next.fetch_add(kChunk); from < all.size(); from = next.fetch_add(kChunk)) {
      for (size_t i = from; i < std::min(all.size(), from + kChunk); ++i) {
        const auto& [key, s] = all[i];
        c.series[i] = {.sensor_id = key->first, .field = key->second, .partition = s->partition,
                       .history = s->forecaster.ModelHistory(), .latest = {}, .latest_day_ahead = {},
                       .state = s->forecaster.SaveState()};
      }
    }
  });
  {
    std::lock_guard lock(latest_mu_);
    for (size_t i = 0; i < all.size(); ++i) {
      if (auto it = latest_.find(*all[i].first); it != latest_.end()) {
        c.series[i].latest = it->second.latest;
        c.series[i].latest_day_ahead = it->second.day_ahead;
      }
    }
  }
  MARE_RETURN_IF_ERROR(WriteForecastCheckpoint(checkpoint_path(), c, &checkpoint_scratch_));
  checkpoint_seconds_->Observe(static_cast<double>(MonotonicMicros() - t0) / 1e6);
  dirty_ = false;
  // The group's committed position is for `mare log groups`; the checkpoint is the truth.
  for (int32_t p = 0; p < partitions_; ++p) {
    int64_t next = next_offsets_[static_cast<size_t>(p)];
    if (consumer_->Committed(p) == next || next == 0) continue;
    if (Status s = consumer_->Commit(p, next); !s.ok()) {
      spdlog::warn("forecast: commit of group {} failed: {}", options_.group, s.ToString());
    }
  }
  return Status::OK();
}

void ForecastProcessor::PublishConsumed() {
  for (int32_t p = 0; p < partitions_; ++p) {
    consumed_[static_cast<size_t>(p)].store(next_offsets_[static_cast<size_t>(p)], std::memory_order_release);
  }
}

void ForecastProcessor::RefreshLag() {
  int64_t lag = consumer_->Lag(partitions_, [this](int32_t p) { return next_offsets_[static_cast<size_t>(p)]; });
  if (lag < 0) return;
  thread_.set_lag(lag);
  lag_gauge_->Set(static_cast<double>(lag));
}

std::string ForecastProcessor::Latest(uint64_t sensor_id, const std::string& field, bool day_ahead) const {
  std::lock_guard lock(latest_mu_);
  auto it = latest_.find({sensor_id, field});
  if (it == latest_.end()) return "";
  return day_ahead ? it->second.day_ahead : it->second.latest;
}

std::string ForecastProcessor::Skill(uint64_t sensor_id, const std::string& field) const {
  std::lock_guard lock(latest_mu_);
  auto it = latest_.find({sensor_id, field});
  return it == latest_.end() ? "" : it->second.skill;
}

Status ForecastProcessor::Stop() {
  return thread_.Stop([this] {
    Status s = AppendPending();
    if (s.ok()) s = Checkpoint();
    RefreshLag();
    return s;
  });
}

}  // namespace mare::forecast
