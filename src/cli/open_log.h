// OpenLog: the log a configuration names ([log] kind), for every command that reads or writes
// it: mare's embedded log in <data_dir>/log, or a Kafka cluster (kafka_log.h).
//
//   auto log = OpenLog(config, {.client_id = "mare-stream"});
#pragma once

#include <memory>
#include <string>

#include "common/metrics.h"
#include "config/config.h"
#include "log/log.h"

namespace mare::cli {

struct OpenLogOptions {
  bool read_only = false;          // embedded: a reader beside the writer (no lock, no truncation)
  bool repair = false;             // embedded: truncate at a corrupt batch instead of failing
  std::string client_id = "mare";  // kafka: how this process's clients are named to the brokers
  // kafka: wait up to log.kafka.startup_wait for brokers that do not answer (long-running
  // commands), or fail at once (one-shot commands). SIGINT or SIGTERM ends the wait.
  bool wait_for_brokers = false;
  metrics::Registry* metrics = nullptr;
};

Result<std::unique_ptr<log::Log>> OpenLog(const Config& config, const OpenLogOptions& options = {});

// Where the log is, for messages: the embedded log's directory, or "kafka <brokers>".
std::string DescribeLog(const Config& config);

}  // namespace mare::cli
