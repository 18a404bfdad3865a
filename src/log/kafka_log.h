// The Kafka log: log::Log on an Apache Kafka cluster, through librdkafka, so that every stage of
// mare can run against real brokers unchanged (topics, keys and values: docs/formats/kafka.md).
//
// - Append() produces the records to the given partition with an idempotent producer (acks=all)
//   and returns only when the brokers have acknowledged every one of them: acknowledged means
//   replicated to the in-sync replicas, which is Kafka's meaning of durable. The records of one
//   Append get consecutive offsets, in order.
// - Topics are created when absent with the configured partitions and replication factor,
//   retention.ms from TopicConfig, and message.timestamp.type=LogAppendTime, so that retention
//   goes by append time as in the embedded log. The event time travels in a record header
//   ("mare.ts"); a record without one (another producer's, e.g. kcat) gets it from
//   event_time_reader, which for the raw topic reads the reading's own timestamp.
// - A Consumer is assigned every partition of its topic (no group rebalancing: the processors
//   keep their own positions and Seek), and Commit() stores the group's committed offset with
//   the group coordinator, where Kafka's own tools see it.
//
// Its parts: kafka_client.h (settings, errors, retries), kafka_record.h (records as messages),
// kafka_producer.h, kafka_consumer.h, kafka_group_member.h; kafka_log.cc holds the topics.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "log/kafka_options.h"
#include "log/log.h"

namespace mare::log {

// Connects (and checks that the brokers answer within request_timeout_us).
Result<std::unique_ptr<Log>> OpenKafkaLog(const KafkaLogOptions& options);

}  // namespace mare::log
