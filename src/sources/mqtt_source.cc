#include "sources/mqtt_source.h"

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <mutex>

#include "sources/source_metrics.h"

namespace mare {
namespace {

std::vector<std::string_view> Levels(std::string_view topic) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t slash = topic.find('/', start);
    out.push_back(topic.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) return out;
    start = slash + 1;
  }
}

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

}  // namespace

int SensorIdLevel(const std::string& pattern) {
  auto levels = Levels(pattern);
  for (size_t i = 0; i < levels.size(); ++i) {
    if (levels[i] == "{sensor_id}") return static_cast<int>(i);
  }
  return -1;
}

void AddSensorId(std::string_view payload, uint32_t sensor_id, std::string* out) {
  const std::string field = "\"sensor_id\":" + std::to_string(sensor_id);
  out->clear();
  out->reserve(payload.size() + 32);
  int depth = 0;
  bool in_string = false, escaped = false, array_line = false;
  for (char ch : payload) {
    out->push_back(ch);
    if (in_string) {
      if (escaped) escaped = false;
      else if (ch == '\\') escaped = true;
      else if (ch == '"') in_string = false;
      continue;
    }
    switch (ch) {
      case '"': in_string = true; break;
      case '[':
        if (depth == 0) array_line = true;
        ++depth;
        break;
      case '{':
        if (depth == 0 || (depth == 1 && array_line)) {
          // The reading's own fields follow: a comma unless the object is empty.
          *out += field;
          *out += ',';
        }
        ++depth;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      case '\n':
        if (depth == 0) array_line = false;
        break;
      default: break;
    }
  }
  // "{}" became {"sensor_id":7,}: not JSON; the parser says so (not_json), as for "{}" alone
  // it would say missing_timestamp. Either way the reading is rejected with a reason.
}

MqttSource::MqttSource(MqttSourceOptions options, Ingest* ingest, metrics::Registry* registry)
    : options_(std::move(options)),
      worker_(ingest->NewWorker("mqtt")),
      up_(registry->GetGauge(source_metrics::kMqttUp)),
      messages_(registry->GetCounter(source_metrics::kMqttMessages)),
      bytes_(registry->GetCounter(source_metrics::kMqttBytes)),
      redeliveries_(registry->GetCounter(source_metrics::kMqttRedeliveries)) {}

Result<std::unique_ptr<MqttSource>> MqttSource::Start(const MqttSourceOptions& options, Ingest* ingest,
                                                      metrics::Registry* registry) {
  static std::once_flag init;
  std::call_once(init, [] { mosquitto_lib_init(); });
  if (options.topics.empty()) return Status::InvalidArgument("sources.mqtt.topics is empty");
  if (options.qos != 0 && options.qos != 1) return Status::InvalidArgument("sources.mqtt.qos must be 0 or 1");
  for (const auto& t : options.topics) {
    if (mosquitto_sub_topic_check(t.c_str()) != MOSQ_ERR_SUCCESS) {
      return Status::InvalidArgument("sources.mqtt.topics: '" + t + "' is not a valid topic filter");
    }
  }
  std::unique_ptr<MqttSource> src(new MqttSource(options, ingest, registry));
  if (!options.sensor_id_topic.empty()) {
    src->sensor_level_ = SensorIdLevel(options.sensor_id_topic);
    if (src->sensor_level_ < 0) {
      return Status::InvalidArgument("sources.mqtt.sensor_id_topic '" + options.sensor_id_topic +
                                     "' has no level {sensor_id}");
    }
  }
  src->thread_ = std::thread(&MqttSource::Loop, src.get());
  return src;
}

void MqttSource::OnConnect(mosquitto* m, void* self, int rc, int flags, const mosquitto_property*) {
  auto* s = static_cast<MqttSource*>(self);
  if (rc != 0) {
    spdlog::error("mqtt: broker {}:{} refused the connection: {}", s->options_.host, s->options_.port,
                  mosquitto_reason_string(rc));
    return;
  }
  s->connected_ = true;
  s->up_.Set(1);
  spdlog::info("mqtt: connected to {}:{} as {} ({} session)", s->options_.host, s->options_.port, s->options_.client_id,
               flags ? "resumed" : "new");
  std::vector<char*> topics;
  for (auto& t : s->options_.topics) topics.push_back(t.data());
  // Subscribed again even when the session is resumed: the filters may have changed.
  int sub_rc = mosquitto_subscribe_multiple(m, nullptr, static_cast<int>(topics.size()), topics.data(), s->options_.qos,
                                            0, nullptr);
  if (sub_rc != MOSQ_ERR_SUCCESS) spdlog::error("mqtt: subscribe: {}", mosquitto_strerror(sub_rc));
}

void MqttSource::OnMessage(mosquitto*, void* self, const mosquitto_message* message, const mosquitto_property*) {
  static_cast<MqttSource*>(self)->Message(*message);
}

void MqttSource::Message(const mosquitto_message& message) {
  messages_.Add();
  bytes_.Add(static_cast<uint64_t>(std::max(0, message.payloadlen)));
  ++batch_messages_;
  if (message.qos > 0) {
    if (unacknowledged_.erase(message.mid)) redeliveries_.Add();
    pending_ids_.insert(message.mid);
  }
  std::string_view payload(static_cast<const char*>(message.payload), static_cast<size_t>(std::max(0, message.payloadlen)));
  if (sensor_level_ >= 0) {
    auto levels = Levels(message.topic ? message.topic : "");
    uint32_t id = 0;
    bool ok = static_cast<size_t>(sensor_level_) < levels.size();
    if (ok) {
      std::string_view level = levels[static_cast<size_t>(sensor_level_)];
      auto [end, ec] = std::from_chars(level.data(), level.data() + level.size(), id);
      ok = !level.empty() && ec == std::errc() && end == level.data() + level.size();
    }
    if (!ok) {
      worker_->Reject(payload.substr(0, 1024), RejectReason::kInvalidSensorId,
                      fmt::format("topic '{}': level {} of {} is not a sensor id (an integer from 0 to 4294967295)",
                                  message.topic ? message.topic : "", sensor_level_ + 1, options_.sensor_id_topic));
      return;
    }
    AddSensorId(payload, id, &rewritten_);
    payload = rewritten_;
  }
  if (buffers_used_ == buffers_.size()) buffers_.push_back(std::make_unique<PaddedBuffer>());
  PaddedBuffer& buffer = *buffers_[buffers_used_++];
  buffer.Assign(payload);
  worker_->Add(buffer.view());
}

bool MqttSource::Connect() {
  client_ = mosquitto_new(options_.client_id.empty() ? nullptr : options_.client_id.c_str(),
                          options_.clean_session || options_.client_id.empty(), this);
  if (!client_) {
    spdlog::error("mqtt: cannot create a client");
    return false;
  }
  // The library only queues what it sends (PUBACKs included) until mosquitto_loop_write: the
  // loop below calls it after the log append. That is what "threaded" means to libmosquitto.
  mosquitto_threaded_set(client_, true);
  mosquitto_int_option(client_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
  // MQTT 5's receive maximum: how many QoS 1 messages the broker may send before their PUBACKs
  // (libmosquitto's default, 20, would make every log append cover 20 messages at most).
  mosquitto_int_option(client_, MOSQ_OPT_RECEIVE_MAXIMUM, std::clamp(options_.max_batch, 1, 65535));
  mosquitto_connect_v5_callback_set(client_, &MqttSource::OnConnect);
  mosquitto_message_v5_callback_set(client_, &MqttSource::OnMessage);
  if (!options_.username.empty()) {
    mosquitto_username_pw_set(client_, options_.username.c_str(),
                              options_.password.empty() ? nullptr : options_.password.c_str());
  }
  if (!options_.tls_ca_file.empty()) {
    int rc = mosquitto_tls_set(client_, options_.tls_ca_file.c_str(), nullptr, nullptr, nullptr, nullptr);
    if (rc != MOSQ_ERR_SUCCESS) {
      spdlog::error("mqtt: tls_ca_file {}: {}", options_.tls_ca_file, mosquitto_strerror(rc));
      return false;
    }
  }
  mosquitto_property* props = nullptr;
  if (!options_.clean_session) {
    uint32_t expiry = static_cast<uint32_t>(std::min<int64_t>(options_.session_expiry_us / 1'000'000, UINT32_MAX));
    mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, expiry);
  }
  int keepalive = static_cast<int>(std::clamp<int64_t>(options_.keepalive_us / 1'000'000, 5, 65535));
  int rc = mosquitto_connect_bind_v5(client_, options_.host.c_str(), options_.port, keepalive, nullptr, props);
  mosquitto_property_free_all(&props);
  if (rc != MOSQ_ERR_SUCCESS) {
    spdlog::warn("mqtt: cannot connect to {}:{}: {}", options_.host, options_.port,
                 rc == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(rc));
    return false;
  }
  return true;
}

void MqttSource::Disconnect(bool graceful) {
  if (!client_) return;
  if (graceful && connected_) {
    mosquitto_disconnect(client_);
    while (mosquitto_want_write(client_) && mosquitto_loop_write(client_, 1) == MOSQ_ERR_SUCCESS) {
    }
  }
  // Destroying the client drops whatever it still had queued: a PUBACK for a message the log
  // did not take must never reach the broker, on this connection or the next.
  mosquitto_destroy(client_);
  client_ = nullptr;
  connected_ = false;
  up_.Set(0);
  unacknowledged_.insert(pending_ids_.begin(), pending_ids_.end());
  pending_ids_.clear();
}

bool MqttSource::FlushAndAcknowledge() {
  Status s = worker_->Flush();
  buffers_used_ = 0;
  batch_messages_ = 0;
  if (!s.ok()) {
    spdlog::error("mqtt: log append failed, the broker will deliver those messages again: {}", s.ToString());
    return false;
  }
  while (mosquitto_want_write(client_)) {
    int rc = mosquitto_loop_write(client_, 1);
    if (rc != MOSQ_ERR_SUCCESS) return false;
    if (mosquitto_want_write(client_)) {
      pollfd p{mosquitto_socket(client_), POLLOUT, 0};
      if (::poll(&p, 1, 100) < 0) return false;
      if (stop_) break;
    }
  }
  if (!mosquitto_want_write(client_)) pending_ids_.clear();
  return true;
}

void MqttSource::Loop() {
  int64_t backoff_us = options_.reconnect_min_us;
  while (!stop_) {
    if (!client_) {
      if (!Connect()) {
        Disconnect(false);
        auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(backoff_us);
        while (!stop_ && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        backoff_us = std::min(options_.reconnect_max_us, std::max<int64_t>(1, backoff_us * 2));
        continue;
      }
    }
    int fd = mosquitto_socket(client_);
    pollfd p{fd, static_cast<short>(POLLIN | (mosquitto_want_write(client_) ? POLLOUT : 0)), 0};
    int ready = fd < 0 ? -1 : ::poll(&p, 1, 100);
    bool lost = ready < 0;
    if (!lost && (p.revents & (POLLIN | POLLERR | POLLHUP))) {
      // Read what is there, up to a batch: one log append and one write of PUBACKs for all.
      do {
        int rc = mosquitto_loop_read(client_, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
          lost = true;
          break;
        }
      } while (batch_messages_ < static_cast<size_t>(options_.max_batch) && Readable(fd));
    }
    // Even on a lost connection, what was read goes to the log: the broker sends it again
    // (a duplicate), but a reading held back could be one the broker never redelivers (QoS 0).
    if (!FlushAndAcknowledge()) lost = true;
    if (!lost && mosquitto_loop_misc(client_) != MOSQ_ERR_SUCCESS) lost = true;
    if (lost) {
      if (connected_) spdlog::warn("mqtt: connection to {}:{} lost; reconnecting", options_.host, options_.port);
      Disconnect(false);
      auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(backoff_us);
      while (!stop_ && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      backoff_us = std::min(options_.reconnect_max_us, std::max<int64_t>(1, backoff_us * 2));
    } else if (connected_) {
      backoff_us = options_.reconnect_min_us;
    }
  }
  if (client_) {
    FlushAndAcknowledge();
    Disconnect(true);
  }
}

void MqttSource::Stop() {
  if (stop_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
}

MqttSource::~MqttSource() { Stop(); }

}  // namespace mare
