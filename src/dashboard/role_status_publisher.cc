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
  s = p->Publish(false);  // a first status now: a broker that refuses it is said at start
  if (!s.ok()) return s;
  p->thread_ = std::thread([raw = p.get()] { raw->Loop(); });
  return p;
}

RoleStatusPublisher::RoleStatusPublisher(log::Log* log, metrics::Registry* registry, RoleStatus identity,
                                         RoleStatusOptions options)
    : log_(log), registry_(registry), identity_(std::move(identity)), options_(std::move(options)), key_(identity_.Key()) {}

RoleStatusPublisher::~RoleStatusPublisher() { EndThread(); }

Status RoleStatusPublisher::Publish(bool stopped) {
  RoleStatus s = identity_;
  registry_->Refresh();  // the refreshed gauges (bytes on disk, lags), as a scrape would see them
  s.time_us = NowMicros();
  s.stopped = stopped;
  s.metrics = SampleMetrics(*registry_, PipelineHealth::Metrics());
  std::string value = EncodeRoleStatus(s);
  log::Record record{.timestamp_us = s.time_us, .key = key_, .value = value};
  return log_->Append(options_.topic, 0, std::span<const log::Record>(&record, 1));
}

void RoleStatusPublisher::Loop() {
  LogThrottle throttle(60'000'000);
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::microseconds(options_.interval_us), [&] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    Status s = Publish(false);  // a failure is retried at the next interval; the dashboard shows it stale meanwhile
    if (uint64_t held; !s.ok() && throttle.Allow(&held)) {
      spdlog::warn("status: cannot publish to topic {}: {} ({} more not logged)", options_.topic, s.ToString(), held);
    }
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
  Status s = Publish(true);
  if (!s.ok()) spdlog::warn("status: cannot say that {} stopped: {}", key_, s.ToString());
}

}  // namespace mare::dashboard
