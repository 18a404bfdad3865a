// RoleStatusPublisher: a role's thread that appends its status (role_status.h) to the log's
// status topic every interval, so that the dashboard of another process shows this role's
// stages; on Stop, a last record saying it stopped (a clean stop is not a failure to show).
//
//   auto publisher = RoleStatusPublisher::Start(log.get(), &registry, "ingest", instance, {});
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "common/status.h"
#include "dashboard/role_status.h"
#include "log/log.h"

namespace mare::dashboard {

class RoleStatusPublisher {
 public:
  // Creates the status topic if absent, publishes a first status, and keeps publishing. `log`
  // and `registry` must outlive the publisher.
  static Result<std::unique_ptr<RoleStatusPublisher>> Start(log::Log* log, metrics::Registry* registry, const std::string& role,
                                                            const std::string& instance, const RoleStatusOptions& options);
  // Ends the thread without a last word: a role that fails shows as stale, not as stopped.
  ~RoleStatusPublisher();
  // Ends the thread and publishes the last status, stopped = true: the role stops on purpose,
  // and readers forget it. Idempotent.
  void Stop();

  const std::string& key() const { return key_; }

 private:
  RoleStatusPublisher(log::Log* log, metrics::Registry* registry, RoleStatus identity, RoleStatusOptions options);
  Status Publish(bool stopped);
  void Loop();
  bool EndThread();  // false when it had ended before

  log::Log* log_;
  metrics::Registry* registry_;
  RoleStatus identity_;  // role, instance, host, pid
  const RoleStatusOptions options_;
  std::string key_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

// This host's name, for a status's `host`.
std::string HostName();

}  // namespace mare::dashboard
