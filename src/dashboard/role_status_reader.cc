#include "dashboard/role_status_reader.h"

#include <spdlog/spdlog.h>

#include "common/log_throttle.h"
#include "common/time.h"

namespace mare::dashboard {

void ApplyStatuses(const std::vector<log::ConsumedRecord>& records, std::map<std::string, RoleStatus>* latest, uint64_t* bad) {
  for (const log::ConsumedRecord& r : records) {
    auto decoded = DecodeRoleStatus(r.value);
    if (!decoded.ok() || decoded->Key() != r.key) {  // a record of another writer's making, or damaged
      ++*bad;
      continue;
    }
    if (decoded->stopped) {
      latest->erase(std::string(r.key));
      continue;
    }
    auto it = latest->find(std::string(r.key));
    // In offset order the newest comes last; its own time only guards against a clock set back.
    if (it == latest->end() || it->second.time_us <= decoded->time_us) (*latest)[std::string(r.key)] = std::move(*decoded);
  }
}

Result<std::unique_ptr<RoleStatusReader>> RoleStatusReader::Start(log::Log* log, const std::string& self,
                                                                  const RoleStatusOptions& options) {
  Status s = log->CreateTopic({.name = options.topic, .partitions = 1, .compact = true, .retention_us = options.retention_us});
  if (!s.ok()) return s;
  // A group that never commits: each reader starts from the oldest status the topic keeps.
  auto consumer = log->Subscribe("dashboard-status", options.topic);
  if (!consumer.ok()) return consumer.status();
  std::unique_ptr<RoleStatusReader> r(new RoleStatusReader(std::move(*consumer), self, options));
  r->thread_ = std::thread([raw = r.get()] { raw->Loop(); });
  return r;
}

RoleStatusReader::RoleStatusReader(std::unique_ptr<log::Consumer> consumer, std::string self, RoleStatusOptions options)
    : consumer_(std::move(consumer)), self_(std::move(self)), options_(std::move(options)) {}

RoleStatusReader::~RoleStatusReader() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void RoleStatusReader::Loop() {
  LogThrottle throttle(60'000'000);
  std::vector<log::ConsumedRecord> batch;
  uint64_t bad = 0, said_bad = 0;
  while (!stopping_) {
    Status s = consumer_->Poll(&batch, 1000, std::chrono::milliseconds(200));
    if (!s.ok()) {
      if (uint64_t held; throttle.Allow(&held)) {
        spdlog::warn("status: reading topic {}: {} ({} more not logged)", options_.topic, s.ToString(), held);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    if (batch.empty()) continue;
    std::lock_guard lock(mu_);
    ApplyStatuses(batch, &latest_, &bad);
    latest_.erase(self_);
    if (bad != said_bad) {
      spdlog::warn("status: {} records of topic {} are not role statuses (docs/formats/role-status.md), skipped",
                   bad - said_bad, options_.topic);
      said_bad = bad;
    }
  }
}

std::vector<RoleStatus> RoleStatusReader::Others() const {
  const int64_t oldest = NowMicros() - options_.retention_us;
  std::lock_guard lock(mu_);
  std::vector<RoleStatus> out;
  for (const auto& [key, status] : latest_) {
    if (status.time_us >= oldest) out.push_back(status);
  }
  return out;
}

}  // namespace mare::dashboard
