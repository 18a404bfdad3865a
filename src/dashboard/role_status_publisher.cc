#include "dashboard/role_status_publisher.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "common/log_throttle.h"
#include "common/time.h"
#include "dashboard/pipeline.h"

namespace mare::dashboard {

std::string HostName() {
  char host[256] = "host";
  ::gethostname(host, sizeof host - 1);
  return host;
}

Result<std::unique_ptr<RoleStatusPublisher>> RoleStatusPublisher::Start(log::Log* log, metrics::Registry* registry,
                                                                        const std::string& role, const std::string& instance,
                                                                        const RoleStatusOptions& options) {
  // One partition: the statuses are few and small, and a reader wants them all.
  Status s = log->CreateTopic({.name = options.topic, .partitions = 1, .compact = true, .retention_us = options.retention_us});
  if (!s.ok()) return s;
  RoleStatus identity;
  identity.role = role;
  identity.instance = instance;
  identity.host = HostName();
  identity.pid = ::getpid();
  identity.interval_us = options.interval_us;
  std::unique_ptr<RoleStatusPublisher> p(new RoleStatusPublisher(log, registry, std::move(identity), options));
  // A first status now, waited for: a broker that refuses it is said at start.
  // A topic just created may be unknown to a broker, or without a leader, for a moment (three
  // brokers and replication factor 1): retried for up to 10 s.
  const int64_t deadline = MonotonicMicros() + 10'000'000;
  for (;;) {
    std::string first = p->Encode(false);
    log::Record record{.timestamp_us = NowMicros(), .key = p->key_, .value = first};
    s = log->Append(options.topic, 0, std::span<const log::Record>(&record, 1));
    if (s.ok()) break;
    if ((s.code() != Status::Code::kNotFound && s.code() != Status::Code::kUnavailable) || MonotonicMicros() > deadline) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  p->thread_ = std::thread([raw = p.get()] { raw->Loop(); });
  return p;
}

RoleStatusPublisher::RoleStatusPublisher(log::Log* log, metrics::Registry* registry, RoleStatus identity,
                                         RoleStatusOptions options)
    : log_(log), registry_(registry), identity_(std::move(identity)), options_(std::move(options)), key_(identity_.Key()) {}

RoleStatusPublisher::~RoleStatusPublisher() { EndThread(); }

std::string RoleStatusPublisher::Encode(bool stopped) {
  RoleStatus s = identity_;
  registry_->Refresh();  // the refreshed gauges (bytes on disk, lags), as a scrape would see them
  s.time_us = NowMicros();
  s.stopped = stopped;
  s.metrics = SampleMetrics(*registry_, PipelineHealth::Metrics());
  return EncodeRoleStatus(s);
}

bool RoleStatusPublisher::PublishAsync() {
  if (in_flight_->busy.exchange(true)) return false;
  std::string value = Encode(false);
  log::Record record{.timestamp_us = NowMicros(), .key = key_, .value = value};
  // The callback holds the shared state, not the publisher: it may run after the publisher is gone.
  log_->AppendAsync(options_.topic, 0, std::span<const log::Record>(&record, 1),
                    [state = in_flight_, topic = options_.topic](const Status& s) {
                      static LogThrottle throttle(60'000'000);
                      if (uint64_t held; !s.ok() && throttle.Allow(&held)) {
                        spdlog::warn("status: cannot publish to topic {}: {} ({} more not logged)", topic, s.ToString(), held);
                      }
                      {
                        std::lock_guard lock(state->mu);
                        state->last_ok = s.ok();
                        state->busy = false;
                      }
                      state->answered.notify_all();
                    });
  return true;
}

void RoleStatusPublisher::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::microseconds(options_.interval_us), [&] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    // A failure is retried at the next interval; the dashboard shows the role stale meanwhile.
    PublishAsync();
    lock.lock();
  }
}

bool RoleStatusPublisher::EndThread() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  return true;
}

void RoleStatusPublisher::Stop() {
  if (!EndThread()) return;
  // The last word is waited for, but only when the brokers answered the status before it within
  // an interval: while they are away, a stop would otherwise wait out the delivery timeout.
  {
    std::unique_lock lock(in_flight_->mu);
    in_flight_->answered.wait_for(lock, std::chrono::microseconds(options_.interval_us), [&] { return !in_flight_->busy.load(); });
    if (in_flight_->busy || !in_flight_->last_ok) {
      spdlog::warn("status: the log did not take the last status; {} will show as stale, not as stopped", key_);
      return;
    }
  }
  std::string value = Encode(true);
  log::Record record{.timestamp_us = NowMicros(), .key = key_, .value = value};
  Status s = log_->Append(options_.topic, 0, std::span<const log::Record>(&record, 1));
  if (!s.ok()) spdlog::warn("status: cannot say that {} stopped: {}", key_, s.ToString());
}

}  // namespace mare::dashboard
