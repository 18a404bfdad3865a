// What every Kafka client of the Kafka log shares: librdkafka settings built from
// KafkaLogOptions, librdkafka errors as Status, and the retry of transient trouble.
#pragma once

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "log/kafka_options.h"

namespace mare::log::kafka {

// Consumers prefetch up to this many messages per partition (librdkafka's default, 100,000,
// is reached by a consumer catching up, and librdkafka 2.0 then pauses fetching for about a
// second: catching up went at half speed). Memory stays bounded by queued.max.messages.kbytes
// (64 MiB by default). Both can be set in [log.kafka.client].
inline constexpr const char* kQueuedMinMessages = "1000000";

// Microseconds as librdkafka's millisecond timeouts (at least 1).
inline int Ms(int64_t us) { return static_cast<int>(std::clamp<int64_t>(us / 1000, 1, INT32_MAX)); }

// Unavailable for what passes (timeouts, brokers or leaders away), NotFound for unknown topics
// and partitions, IOError otherwise.
Status KafkaError(rd_kafka_resp_err_t err, std::string_view what);

// The last time any client was refused by a broker (SASL authentication, or a TLS handshake:
// a certificate not trusted, say) after `since_us` (MonotonicMicros), as a non-transient error
// naming what to check; OK if none was. A refusal looks like an unreachable broker to the
// request that meets it, but waiting will not mend it.
Status RefusalSince(int64_t since_us);

struct ConfSetting {
  std::string key, value;
};

// mare's defaults, then the configured client settings, then what mare must have its way on.
Result<rd_kafka_conf_t*> MakeConf(const KafkaLogOptions& o, const std::vector<ConfSetting>& defaults,
                                  const std::vector<ConfSetting>& forced);

// A client of the type on conf, which it takes (also on failure).
Result<rd_kafka_t*> NewClient(rd_kafka_type_t type, rd_kafka_conf_t* conf);

struct PartitionList {
  rd_kafka_topic_partition_list_t* list;
  explicit PartitionList(int size) : list(rd_kafka_topic_partition_list_new(size)) {}
  ~PartitionList() { rd_kafka_topic_partition_list_destroy(list); }
  PartitionList(const PartitionList&) = delete;
  PartitionList& operator=(const PartitionList&) = delete;
};

// One try of something that may meet transient trouble, and whether its failure is such.
struct Attempt {
  Status status;
  bool transient = false;
};

// Tries `attempt` (given the microseconds left) until it succeeds, fails for good, or the next
// try, `pause` later, would start past timeout_us: brokers just started, a topic whose leaders
// are still being elected or a group coordinator still loading answer so for a while.
Status RetryTransient(int64_t timeout_us, std::chrono::milliseconds pause, const std::function<Attempt(int64_t left_us)>& attempt);

// A partition's oldest retained offset and end offset, asked of the brokers. A topic just
// created by another process may not have its leaders everywhere yet: retried until the timeout.
Status Watermarks(rd_kafka_t* rk, const std::string& topic, int32_t partition, int64_t timeout_us, int64_t* low,
                  int64_t* high);

// A consumer's cached high watermark of a partition, updated by every fetch response, so no
// request; -1 while unknown.
int64_t CachedEndOffset(rd_kafka_t* rk, const std::string& topic, int32_t partition);

}  // namespace mare::log::kafka
