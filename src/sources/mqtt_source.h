// MqttSource: subscribes to topics of an MQTT broker (MQTT 5, libmosquitto) and ingests their
// payloads, the same JSON readings as the other sources (one, several as NDJSON, or an array).
//
// With QoS 1 nothing the broker handed over is lost: the client runs its own event loop with
// libmosquitto in "threaded" mode, so the PUBACKs the library queues as messages arrive are
// written only after the readings read so far are appended to the log (Flush). If mare dies
// or the append fails before that, the broker still holds the messages and redelivers them to
// the persistent session (fixed client id, clean start off, a session expiry). A reading may
// then reach the log twice; the store keeps one per sensor and timestamp.
//
// The sensor id may come from a topic level: with sensor_id_topic "observatory/{sensor_id}/readings",
// a message on observatory/7/readings has "sensor_id":7 added to each of its readings.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "sources/ingest.h"

struct mosquitto;
struct mosquitto_message;
struct mqtt5__property;

namespace mare {

struct MqttSourceOptions {
  bool enabled = false;
  std::string host = "127.0.0.1";
  int port = 1883;
  std::string client_id = "mare-ingest";  // fixed: the broker keeps the QoS 1 session under it
  // Topic filters; "$share/<group>/<filter>" shares one subscription among several processes.
  std::vector<std::string> topics = {"observatory/+/readings"};
  int qos = 1;
  bool clean_session = false;         // true: the broker forgets the session at each connect
  int64_t session_expiry_us = 7LL * 86'400'000'000;  // how long the broker keeps it while mare is away
  // Empty: readings carry their own sensor_id. Else a topic pattern with one level "{sensor_id}".
  std::string sensor_id_topic;
  std::string username;
  std::string password;
  // A file whose first line is the password (a secret mounted by systemd, Docker, Kubernetes),
  // read at start, so that the password need not sit in the TOML; exclusive with `password`.
  std::string password_file;
  std::string tls_ca_file;  // set: TLS, the broker's certificate checked against this CA file
  // Mutual TLS: the client certificate (PEM) mare presents, and its unencrypted private key.
  std::string tls_cert_file;
  std::string tls_key_file;
  int64_t keepalive_us = 30'000'000;
  int64_t reconnect_min_us = 500'000;
  int64_t reconnect_max_us = 30'000'000;
  // Messages in flight (MQTT 5 receive maximum, at most 65535) and read before one log append.
  int max_batch = 1000;
};

// The level of `pattern` ("a/{sensor_id}/b") that holds the sensor id, or -1 if none.
int SensorIdLevel(const std::string& pattern);
// Copies `payload` to `out`, adding "sensor_id":<id>, to each top-level reading object (a line's
// object, or the objects of a line's array). Strings and nesting are respected.
void AddSensorId(std::string_view payload, uint32_t sensor_id, std::string* out);

class MqttSource {
 public:
  // Checks the options and starts the client thread; the broker need not be up yet (the
  // source connects, and reconnects, with backoff).
  static Result<std::unique_ptr<MqttSource>> Start(const MqttSourceOptions& options, Ingest* ingest,
                                                   metrics::Registry* registry);
  ~MqttSource();
  // Appends and acknowledges what was read, disconnects, and stops the thread.
  void Stop();
  bool connected() const { return connected_.load(); }

 private:
  MqttSource(MqttSourceOptions options, Ingest* ingest, metrics::Registry* registry);
  void Loop();
  int Connect();                 // a new client, connected (CONNECT queued); libmosquitto's rc
  void Disconnect(bool graceful);  // drops the client and any acknowledgement not yet written
  bool FlushAndAcknowledge();    // false: the connection is to be dropped
  static void OnConnect(mosquitto* m, void* self, int rc, int flags, const ::mqtt5__property* props);
  static void OnMessage(mosquitto* m, void* self, const mosquitto_message* message,
                        const ::mqtt5__property* props);
  void Message(const mosquitto_message& message);
  static void OnLog(mosquitto* m, void* self, int level, const char* text);
  static void OnSubscribe(mosquitto* m, void* self, int mid, int qos_count, const int* granted_qos,
                          const ::mqtt5__property* props);
  // Says, once per attempt, why a connection never reached CONNACK success: the broker's
  // refusal (credentials), TLS, or the socket; counts it by reason. `rc`: libmosquitto's, from
  // Connect (`connecting`) or from reading the broker's answer.
  void ConnectFailed(int rc, bool connecting, int64_t retry_us);

  MqttSourceOptions options_;
  int sensor_level_ = -1;
  std::unique_ptr<Ingest::Worker> worker_;
  mosquitto* client_ = nullptr;
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  std::thread thread_;
  // Payloads copied out of libmosquitto (which frees them after the callback), kept until Flush.
  std::vector<std::unique_ptr<PaddedBuffer>> buffers_;
  size_t buffers_used_ = 0;
  std::string rewritten_;
  size_t batch_messages_ = 0;
  // QoS 1 message ids read on this connection whose PUBACK is not known written; at a
  // connection loss they become `unacknowledged_`, and one arriving again is a redelivery.
  // (libmosquitto 2.0 does not hand the DUP flag to the callback.)
  std::unordered_set<int> pending_ids_;
  std::unordered_set<int> unacknowledged_;
  std::string password_;        // from `password` or read from `password_file`
  int refused_reason_ = 0;      // the CONNACK reason code of this attempt's refusal, if any
  std::string library_error_;   // libmosquitto's last error line (OpenSSL's reason for TLS)
  metrics::Registry* registry_;
  metrics::Gauge& up_;
  metrics::Counter& messages_;
  metrics::Counter& bytes_;
  metrics::Counter& redeliveries_;
};

}  // namespace mare
