// The metrics of the sources (UDP, TCP, unix socket, HTTP ingest, MQTT), labelled source="udp", ...:
// declared once here, read back by the dashboard, the commands and the tests through these names.
#pragma once

#include "common/metrics.h"

namespace mare::source_metrics {

inline constexpr metrics::Metric kReadingsReceived{"mare_source_readings_received_total", "Readings received, valid or not"};
inline constexpr metrics::Metric kReadingsAccepted{"mare_source_readings_accepted_total", "Readings validated and appended to the log"};
inline constexpr metrics::Metric kReadingsRejected{"mare_source_readings_rejected_total", "Readings rejected, by reason"};
inline constexpr metrics::Metric kAppendsFailed{"mare_source_appends_failed_total", "Log appends that failed: their readings were not acknowledged"};
inline constexpr metrics::Metric kReadingsLost{"mare_source_readings_lost_total", "Accepted readings the log failed to take, from senders never told (UDP)"};
inline constexpr metrics::Metric kUdpDatagramsDropped{"mare_source_udp_datagrams_dropped_total", "Datagrams the kernel dropped because a receive buffer was full (SO_RXQ_OVFL)"};
inline constexpr metrics::Metric kUdpDatagramsReceived{"mare_source_udp_datagrams_received_total", "Datagrams received"};
inline constexpr metrics::Metric kUdpReceiveBufferBytes{"mare_source_udp_receive_buffer_bytes", "Receive buffer size granted by the kernel, per socket"};
inline constexpr metrics::Metric kOpenConnections{"mare_source_open_connections", "Open client connections"};
inline constexpr metrics::Metric kMqttUp{"mare_source_mqtt_up", "1 while the MQTT source is connected to its broker, 0 while not"};
inline constexpr metrics::Metric kMqttMessages{"mare_source_mqtt_messages_total", "MQTT messages received"};
inline constexpr metrics::Metric kMqttBytes{"mare_source_mqtt_bytes_total", "Bytes of MQTT message payloads received"};
inline constexpr metrics::Metric kMqttRedeliveries{"mare_source_mqtt_redeliveries_total", "QoS 1 messages the broker delivered again after a reconnect, by message id, seen by this process"};
inline constexpr metrics::Metric kMqttConnectFailures{"mare_source_mqtt_connect_failures_total", "MQTT connection attempts that failed, by reason: credentials, refused, tls, unreachable, closed"};
inline constexpr metrics::Metric kConnectionsAccepted{"mare_source_connections_accepted_total", "Client connections accepted"};

}  // namespace mare::source_metrics
