// OpenLogWithTopics: an embedded log opened with the topics a test needs already made, so that a
// test's setup says which log and topics it wants instead of repeating how to make them.
#pragma once

#include <initializer_list>
#include <memory>

#include "log/embedded_log.h"

namespace mare::log {

// The first failure, of the opening or of a topic's creation, is the answer.
inline Result<std::unique_ptr<Log>> OpenLogWithTopics(const EmbeddedLogOptions& options,
                                                      std::initializer_list<TopicConfig> topics) {
  auto log = OpenEmbeddedLog(options);
  if (!log.ok()) return log.status();
  for (const TopicConfig& topic : topics) MARE_RETURN_IF_ERROR((*log)->CreateTopic(topic));
  return log;
}

}  // namespace mare::log
