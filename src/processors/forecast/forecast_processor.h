// ForecastProcessor: the forecast stream processor on its own thread. It reads the rollups
// topic as consumer group "forecast", keeps each configured field's hourly means per sensor
// (final 1h rollups), and each time one of a series' hours closes appends to the forecasts
// topic the forecast of its next hours (the ensemble, 80 % intervals); the one issued at
// 00:00 UTC is the day-ahead forecast. `mare run` starts one beside the rollups; `mare forecast
// run` runs one alone.
//
//   auto p = ForecastProcessor::Start(options, log, &registry);  // Result<unique_ptr>
//   std::string json = (*p)->Latest(7, "temperature", false);   // for GET /api/v1/forecast
//   Status s = (*p)->Stop();   // appends what is pending, writes a final checkpoint
//
// Exactly-once by key: the checkpoint holds the rollups offsets read and each series' kept
// hours; what a series issues is a function of those hours alone, so after kill -9 the
// processor re-reads from the checkpoint's offsets and appends again, byte for byte, the
// forecasts it had appended since (docs/formats/forecasts.md). Fits never block the rollups:
// they run on this thread, which only reads their topic, and on its issue pool: the series whose
// hours close in one batch are issued side by side (a series' hours in order, by one worker),
// and what they issue is appended in the batch's order, the same records in the same order
// whatever the number of threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "log/consumer_thread.h"
#include "log/log.h"
#include "processors/forecast/forecast_checkpoint.h"
#include "processors/forecast/issue_pool.h"
#include "processors/forecast/series_forecaster.h"

namespace mare::forecast {

// Gives a new processor (one without a checkpoint) the hourly means from before the rollups
// it will read, e.g. from the store: calls `add` once per series with its hours of the last
// `hours` hours before the newest reading. A series' newest hour is dropped (it may still be
// filling) and taken from the rollups instead.
using HistoryLoader = std::function<Status(
    int64_t hours, const std::function<void(uint64_t sensor_id, const std::string& field, const HourlySeries&)>& add)>;

// The [forecast] section of the configuration.
struct ForecastOptions {
  bool enabled = true;
  std::vector<std::string> fields = {"temperature"};  // numeric fields forecast, each per sensor
  int horizon_hours = 24;                             // hours forecast by each issue, 1..168
  int history_days = 90;                              // hours the models fit on, 30..3650 days
  int64_t refit_interval_us = 86'400'000'000;         // Holt–Winters refit: 1h..1d, dividing 1d
  int64_t checkpoint_interval_us = 10'000'000;        // 10s
  std::string checkpoint_dir;  // required: <data_dir>/forecast; holds the file "checkpoint"

  std::string input_topic = "rollups";
  std::string output_topic = "forecasts";
  std::string group = "forecast";
  size_t poll_records = 4096;
  // Threads that issue the series of a batch (the processor's own thread among them); 0: one
  // per usable CPU (UsableCpus). When every sensor's hour closes at once, this divides the wait.
  int issue_threads = 0;
  bool sync_log_before_checkpoint = true;
  HistoryLoader history;  // optional, for a start without a checkpoint
};

class ForecastProcessor {
 public:
  // Loads the checkpoint (or the history), creates the output topic (as many partitions as the
  // input, same partitioner) and starts the thread.
  static Result<std::unique_ptr<ForecastProcessor>> Start(const ForecastOptions& options, log::Log* log,
                                                          metrics::Registry* registry);
  ~ForecastProcessor();

  // Appends what is pending, writes a final checkpoint, joins the thread. Idempotent.
  Status Stop();

  // The value of the latest forecast record of (sensor, field), or of its latest day-ahead
  // one; "" if none. Thread-safe.
  std::string Latest(uint64_t sensor_id, const std::string& field, bool day_ahead) const;
  // Its models' skill over the last 30 days' day-ahead issues, as of the latest one
  // (model_skill.h's JSON); "" if the series is unknown. Thread-safe.
  std::string Skill(uint64_t sensor_id, const std::string& field) const;
  static constexpr int kSkillDays = 30;

  // Series the last start resumed with their models from the checkpoint (not rebuilt from hours).
  size_t restored_with_models() const { return restored_with_models_; }

  bool healthy() const { return thread_.healthy(); }
  log::ConsumerHealth health() const { return thread_.health(); }
  int64_t lag() const { return thread_.lag(); }
  // The next offset of input partition p not yet consumed: every record before it is read and
  // what it closed is in the output topic. Thread-safe. Unlike lag() (0 before the first poll,
  // while the end is unknown), comparing it with the topic's end offsets says the processor is
  // caught up with them.
  int64_t consumed(int32_t partition) const {
    return partition >= 0 && partition < partitions_ ? consumed_[static_cast<size_t>(partition)].load(std::memory_order_acquire) : -1;
  }
  int32_t partitions() const { return partitions_; }
  // Series whose work ahead (SeriesForecaster::Prepare) is queued and not done yet. Thread-safe.
  size_t preparing() const { return preparing_.load(std::memory_order_relaxed); }
  std::string checkpoint_path() const { return options_.checkpoint_dir + "/checkpoint"; }

 private:
  static constexpr size_t kNoJob = SIZE_MAX;
  struct Series {
    SeriesForecaster forecaster;
    int32_t partition = 0;
    size_t last_job = kNoJob;  // while a batch is split into jobs: its latest job in it
    // In to_prepare_ and not prepared yet: a series is queued once, or two of the pool's
    // workers would prepare it at the same time (a data race on its models).
    bool queued = false;
  };
  // A series' hour closing in a batch, and what a worker issued from it.
  struct Job {
    Series* series;
    uint64_t sensor_id;
    const std::string* field;  // one of options_.fields
    int64_t hour;
    double mean;
    size_t next = kNoJob;  // the series' next job in the batch: issued after this one, by the same worker
    bool issued = false;   // Close took the hour
    bool day_ahead = false;
    int64_t origin = 0;
    double seconds = 0;
    std::string key, value, skill;  // the forecast record; skill for a day-ahead issue
  };
  struct LatestIssue {
    std::string latest, day_ahead;
    std::string skill;  // SkillValue as of the latest day-ahead issue (or the start)
  };
  using SeriesKey = std::pair<uint64_t, std::string>;

  ForecastProcessor(const ForecastOptions& options, log::Log* log, metrics::Registry* registry, int32_t partitions);
  // A series' options: its Holt–Winters refit phase comes from its key, so that the series'
  // refits spread over the day instead of all falling at 00:00 UTC.
  SeriesOptions series_options(const SeriesKey& key) const;
  Status Rewind();  // the state and offsets of the checkpoint, or a fresh start
  Status LoadHistory();
  Status Step();
  void Take(const log::ConsumedRecord& record);  // a final 1h rollup of a field forecast becomes a job
  Status IssueJobs();                            // on the pool; appends as they are done, in order
  void Issue(Job* job, ForecastIssue* issue) const;  // on a worker: touches only job->series
  size_t Emit(size_t from);                      // the done jobs from `from` on to pending_; returns the next
  Status AppendPending();
  // What the series' next issues can do ahead (SeriesForecaster::Prepare: the books' answers;
  // the day-ahead ridge fit, in the hour before 23:00 closes), so that the issues, which all
  // wait for when an hour closes for every series, have less to do: the batch's series (and
  // every series after a rewind) are queued, and done on the pool in slices of kPrepareSliceUs
  // in steps whose poll found nothing (a burst of closing hours is never held up either). Undone
  // when the next hour closes first: that issue then does all of it itself.
  void Queue(Series* series);  // into to_prepare_, unless it is there already
  void QueuePrepare();
  void PrepareSome();
  Status Checkpoint();
  void RefreshLag();
  void PublishConsumed();  // next_offsets_ to consumed_, once what they closed is appended

  const ForecastOptions options_;
  log::Log* const log_;
  const int32_t partitions_;
  std::unique_ptr<log::Consumer> consumer_;
  std::map<SeriesKey, Series> series_;
  std::vector<int64_t> next_offsets_;
  // next_offsets_ as of the last append, for consumed(): written by this thread, read by any.
  std::unique_ptr<std::atomic<int64_t>[]> consumed_;
  std::vector<log::ConsumedRecord> batch_;
  std::vector<std::vector<std::pair<std::string, std::string>>> pending_;  // per partition: key, value
  std::vector<std::vector<int64_t>> pending_ts_;
  std::map<SeriesKey, LatestIssue> staged_latest_;  // issued in this step, not yet appended
  mutable std::mutex latest_mu_;
  std::map<SeriesKey, LatestIssue> latest_;  // guarded by latest_mu_
  int64_t pending_day_ahead_ = 0;        // day-ahead issues among pending_
  std::atomic<size_t> restored_with_models_ = 0;
  static constexpr int64_t kAppendEveryUs = 50'000;  // issued forecasts wait at most this long
  static constexpr int64_t kCheckpointDeferMax = 6;    // intervals a checkpoint may wait for a burst's end
  bool dirty_ = false;                   // an hour closed since the last checkpoint
  std::string checkpoint_scratch_;
  int64_t next_checkpoint_us_ = 0;
  int64_t next_lag_us_ = 0;
  std::vector<Job> jobs_;
  std::vector<size_t> units_;  // per series with jobs in the batch: its first job, in order of first jobs
  std::vector<Series*> to_prepare_;  // queued by QueuePrepare; [0, prepared_) done
  size_t prepared_ = 0;
  std::atomic<size_t> preparing_ = 0;  // to_prepare_'s undone, for preparing()
  static constexpr int64_t kPrepareSliceUs = 50'000;
  std::unique_ptr<std::atomic<uint8_t>[]> done_;  // per job: issued by its worker
  std::vector<ForecastIssue> issues_;              // per worker
  IssuePool pool_;

  log::ConsumerThread thread_;

  metrics::Counter* hours_closed_;
  metrics::Counter* issued_;
  metrics::Counter* day_ahead_issued_;
  metrics::Histogram* issue_seconds_;
  metrics::Gauge* series_gauge_;
  metrics::Gauge* lag_gauge_;
  metrics::Histogram* checkpoint_seconds_;
  metrics::Gauge* consumer_up_;
  metrics::Counter* failures_;
};

}  // namespace mare::forecast
