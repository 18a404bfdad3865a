// RoleStatusPublisher: a role's thread that appends its status (role_status.h) to the log's
// status topic every interval, so that the dashboard of another process shows this role's
// stages; on Stop, a last record saying it stopped (a clean stop is not a failure to show).
// It never waits on the log: while the brokers are away it skips intervals, and a stop does not
// wait out a delivery timeout (the role then shows stale, which is what is known of it).
//
//   auto publisher = RoleStatusPublisher::Start(log.get(), &registry, "ingest", instance, {});
#pragma once

#include <atomic>
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
  // What the log's callbacks touch: it outlives the publisher while an append is in flight.
  struct InFlight {
    std::atomic<bool> busy{false};         // an append is queued and not yet answered
    std::atomic<bool> last_ok{true};       // how the newest answered append ended
    std::mutex mu;
    std::condition_variable answered;
  };

  RoleStatusPublisher(log::Log* log, metrics::Registry* registry, RoleStatus identity, RoleStatusOptions options);
  std::string Encode(bool stopped);
  // Queues the status unless the previous one is still unanswered (a broker away: it would only
  // pile up); false when skipped.
  bool PublishAsync();
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
  std::shared_ptr<InFlight> in_flight_ = std::make_shared<InFlight>();
};

// This host's name, for a status's `host`.
std::string HostName();

}  // namespace mare::dashboard
