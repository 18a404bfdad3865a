// A log record as a Kafka message: the key and value as they are, the event time in header
// mare.ts (docs/formats/kafka.md), or, from another producer, found in the value.
#pragma once

#include <librdkafka/rdkafka.h>

#include "log/kafka_options.h"
#include "log/log.h"

namespace mare::log::kafka {

inline constexpr char kEventTimeHeader[] = "mare.ts";

// A consumed message as a ConsumedRecord (views into the message). The event time: header
// mare.ts, else what the reader (may be null) finds in the value, else the broker's timestamp.
void ToRecord(const rd_kafka_message_t* m, EventTimeReader* reader, ConsumedRecord* r);

}  // namespace mare::log::kafka
