// RoleStatusReader: follows the log's status topic (role_status.h) in the process serving the
// dashboard and keeps each other role instance's newest status, for PipelineHealth to merge
// with its own figures. A role that said it stopped is forgotten; one silent for longer than
// the status retention too (its newest status is older than anything the topic still keeps).
//
//   auto reader = RoleStatusReader::Start(log.get(), publisher->key(), {});
//   std::vector<RoleStatus> others = reader->Others();
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "dashboard/role_status.h"
#include "log/log.h"

namespace mare::dashboard {

// The newest status of each role instance among `records` (keyed as RoleStatus::Key), applied
// in order to `latest`: a stopped one removed, an undecodable one skipped (counted in *bad).
// Separate from the thread for the tests.
void ApplyStatuses(const std::vector<log::ConsumedRecord>& records, std::map<std::string, RoleStatus>* latest, uint64_t* bad);

class RoleStatusReader {
 public:
  // Subscribes to the status topic (made if absent) from its oldest record. `self`: this
  // process's own key, left out (its own registry is fresher). `log` must outlive the reader.
  static Result<std::unique_ptr<RoleStatusReader>> Start(log::Log* log, const std::string& self, const RoleStatusOptions& options);
  ~RoleStatusReader();

  // The other role instances' newest statuses, by key; those older than the retention left out.
  std::vector<RoleStatus> Others() const;

 private:
  RoleStatusReader(std::unique_ptr<log::Consumer> consumer, std::string self, RoleStatusOptions options);
  void Loop();

  std::unique_ptr<log::Consumer> consumer_;
  const std::string self_;
  const RoleStatusOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, RoleStatus> latest_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace mare::dashboard
