#include "sources/mqtt_source.h"

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>

#include "common/split.h"
#include "sources/source_metrics.h"

namespace mare {
namespace {

// "", or why `path` (the value of sources.mqtt.<key>) cannot be read: said at start, not at
// every connection attempt.
std::string Unreadable(const char* key, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (in) return "";
  return fmt::format("sources.mqtt.{} '{}' cannot be read: {}", key, path, std::strerror(errno));
}

// An encrypted tls_key_file would make OpenSSL ask for its passphrase on the terminal; with no
// passphrase given, loading it fails instead, with an error mare reports.
int NoPassphrase(char*, int, int, void*) { return 0; }

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

}  // namespace

int SensorIdLevel(const std::string& pattern) {
  auto levels = Split(pattern, '/');
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
      registry_(registry),
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
  if (!options.password.empty() && !options.password_file.empty()) {
    return Status::InvalidArgument("sources.mqtt: set password or password_file, not both");
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return Status::InvalidArgument("sources.mqtt: tls_cert_file and tls_key_file go together (mutual TLS)");
  }
  if (!options.tls_cert_file.empty() && options.tls_ca_file.empty()) {
    return Status::InvalidArgument("sources.mqtt: tls_cert_file needs tls_ca_file (the CA of the broker's certificate)");
  }
  const std::pair<const char*, const std::string*> files[] = {{"tls_ca_file", &options.tls_ca_file},
                                                               {"tls_cert_file", &options.tls_cert_file},
                                                               {"tls_key_file", &options.tls_key_file},
                                                               {"password_file", &options.password_file}};
  for (const auto& [key, path] : files) {
    if (path->empty()) continue;
    if (std::string why = Unreadable(key, *path); !why.empty()) return Status::InvalidArgument(why);
  }
  std::unique_ptr<MqttSource> src(new MqttSource(options, ingest, registry));
  src->password_ = options.password;
  if (!options.password_file.empty()) {
    std::ifstream in(options.password_file, std::ios::binary);
    std::getline(in, src->password_);
    if (!src->password_.empty() && src->password_.back() == '\r') src->password_.pop_back();
    if (src->password_.empty()) {
      return Status::InvalidArgument("sources.mqtt.password_file '" + options.password_file +
                                     "' holds no password on its first line");
    }
  }
  if (!src->password_.empty() && options.username.empty()) {
    return Status::InvalidArgument("sources.mqtt: a password without a username (set sources.mqtt.username)");
  }
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
    // Said by ConnectFailed once the attempt is over (the broker closes the connection).
    s->refused_reason_ = rc;
    return;
  }
  // Connected: libmosquitto's log would now format a line for every PUBACK (a cost on the
  // message path), and its errors from here on show as a lost connection anyway.
  mosquitto_log_callback_set(m, nullptr);
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

void MqttSource::OnSubscribe(mosquitto*, void* self, int, int qos_count, const int* granted_qos, const mosquitto_property*) {
  // The SUBACK: from here the broker delivers (a shared subscription's group counts this member).
  // A filter the broker refused (granted 0x80: its ACL, a malformed $share) is said, by name.
  auto* s = static_cast<MqttSource*>(self);
  int granted = 0;
  for (int i = 0; i < qos_count; ++i) {
    const std::string& filter = static_cast<size_t>(i) < s->options_.topics.size() ? s->options_.topics[static_cast<size_t>(i)] : "?";
    if (granted_qos[i] >= 0x80) {
      spdlog::error("mqtt: the broker refused the subscription to '{}' (reason {:#x})", filter, granted_qos[i]);
    } else {
      ++granted;
    }
  }
  spdlog::info("mqtt: subscribed to {} of {} topic filter(s)", granted, qos_count);
}

void MqttSource::OnLog(mosquitto*, void* self, int level, const char* text) {
  if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING)) static_cast<MqttSource*>(self)->library_error_ = text ? text : "";
}

void MqttSource::ConnectFailed(int rc, bool connecting, int64_t retry_us) {
  const auto& o = options_;
  // The wait as set, to the microsecond ("0.05s", "30s"): the log shows the backoff doubling.
  std::string retry = fmt::format("retrying in {}s", static_cast<double>(retry_us) / 1e6);
  std::string_view reason;
  if (refused_reason_ == MQTT_RC_BAD_USERNAME_OR_PASSWORD || refused_reason_ == MQTT_RC_NOT_AUTHORIZED) {
    reason = "credentials";
    if (o.username.empty()) {
      spdlog::error("mqtt: broker {}:{} refused an anonymous connection ({}): it wants a user; set "
                    "sources.mqtt.username and password (or password_file); {}",
                    o.host, o.port, mosquitto_reason_string(refused_reason_), retry);
    } else {
      spdlog::error("mqtt: broker {}:{} refused user '{}' ({}): check sources.mqtt.username and {} "
                    "against the broker's password file; {}",
                    o.host, o.port, o.username, mosquitto_reason_string(refused_reason_),
                    o.password_file.empty() ? "sources.mqtt.password" : "the password in " + o.password_file, retry);
    }
  } else if (refused_reason_ != 0) {
    reason = "refused";
    spdlog::error("mqtt: broker {}:{} refused the connection as client '{}': {} (reason code {}); {}", o.host, o.port,
                  o.client_id, mosquitto_reason_string(refused_reason_), refused_reason_, retry);
  } else if (rc == MOSQ_ERR_TLS || (!o.tls_ca_file.empty() && library_error_.find("SSL") != std::string::npos)) {
    // A failed handshake read back by libmosquitto 2.0 is MOSQ_ERR_ERRNO (EPROTO), with
    // OpenSSL's reason in its log: that line tells TLS apart.
    reason = "tls";
    spdlog::error("mqtt: TLS with {}:{} failed: {}. The broker's certificate must be signed by the CA in "
                  "sources.mqtt.tls_ca_file ('{}') and name host '{}'{}; {}",
                  o.host, o.port, library_error_.empty() ? "the handshake failed" : library_error_, o.tls_ca_file, o.host,
                  o.tls_cert_file.empty() ? "; a broker that requires client certificates needs tls_cert_file and tls_key_file"
                                          : fmt::format("; the broker must trust the CA of tls_cert_file ('{}')", o.tls_cert_file),
                  retry);
  } else if (connecting) {
    reason = "unreachable";
    // A broker away (restarting, not yet up) is routine: a warning.
    spdlog::warn("mqtt: cannot connect to {}:{}: {}; {}", o.host, o.port,
                 rc == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(rc), retry);
  } else {
    reason = "closed";
    spdlog::error("mqtt: {}:{} closed the connection before accepting it ({}{}){}; {}", o.host, o.port,
                  rc == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(rc), library_error_.empty() ? "" : ": " + library_error_,
                  o.tls_ca_file.empty() ? "; if it is a TLS listener, set sources.mqtt.tls_ca_file" : "", retry);
  }
  registry_->GetCounter(source_metrics::kMqttConnectFailures, {{"reason", std::string(reason)}}).Add();
  refused_reason_ = 0;
  library_error_.clear();
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
    auto levels = Split(message.topic ? message.topic : "", '/');
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

int MqttSource::Connect() {
  client_ = mosquitto_new(options_.client_id.empty() ? nullptr : options_.client_id.c_str(),
                          options_.clean_session || options_.client_id.empty(), this);
  if (!client_) {
    spdlog::error("mqtt: cannot create a client");
    return MOSQ_ERR_NOMEM;
  }
  // Until the CONNACK, the library's own error lines (OpenSSL's reasons) explain a failure.
  mosquitto_log_callback_set(client_, &MqttSource::OnLog);
  // The library only queues what it sends (PUBACKs included) until mosquitto_loop_write: the
  // loop below calls it after the log append. That is what "threaded" means to libmosquitto.
  mosquitto_threaded_set(client_, true);
  mosquitto_int_option(client_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
  // MQTT 5's receive maximum: how many QoS 1 messages the broker may send before their PUBACKs
  // (libmosquitto's default, 20, would make every log append cover 20 messages at most).
  mosquitto_int_option(client_, MOSQ_OPT_RECEIVE_MAXIMUM, std::clamp(options_.max_batch, 1, 65535));
  mosquitto_connect_v5_callback_set(client_, &MqttSource::OnConnect);
  mosquitto_message_v5_callback_set(client_, &MqttSource::OnMessage);
  mosquitto_subscribe_v5_callback_set(client_, &MqttSource::OnSubscribe);
  if (!options_.username.empty()) {
    mosquitto_username_pw_set(client_, options_.username.c_str(), password_.empty() ? nullptr : password_.c_str());
  }
  if (!options_.tls_ca_file.empty()) {
    auto file = [](const std::string& f) { return f.empty() ? nullptr : f.c_str(); };
    int rc = mosquitto_tls_set(client_, options_.tls_ca_file.c_str(), nullptr, file(options_.tls_cert_file),
                               file(options_.tls_key_file), &NoPassphrase);
    if (rc != MOSQ_ERR_SUCCESS) {
      library_error_ = fmt::format("tls_ca_file '{}', tls_cert_file '{}', tls_key_file '{}': {}", options_.tls_ca_file,
                                   options_.tls_cert_file, options_.tls_key_file, mosquitto_strerror(rc));
      return MOSQ_ERR_TLS;
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
  return rc;
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
      if (int rc = Connect(); rc != MOSQ_ERR_SUCCESS) {
        ConnectFailed(rc, true, backoff_us);
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
    int read_rc = MOSQ_ERR_SUCCESS, read_errno = 0;
    if (!lost && (p.revents & (POLLIN | POLLERR | POLLHUP))) {
      // Read what is there, up to a batch: one log append and one write of PUBACKs for all.
      do {
        read_rc = mosquitto_loop_read(client_, 1);
        if (read_rc != MOSQ_ERR_SUCCESS) {
          read_errno = errno;
          lost = true;
          break;
        }
      } while (batch_messages_ < static_cast<size_t>(options_.max_batch) && Readable(fd) && !refused_reason_);
    }
    if (refused_reason_) lost = true;
    // Even on a lost connection, what was read goes to the log: the broker sends it again
    // (a duplicate), but a reading held back could be one the broker never redelivers (QoS 0).
    if (!FlushAndAcknowledge()) lost = true;
    if (!lost && mosquitto_loop_misc(client_) != MOSQ_ERR_SUCCESS) lost = true;
    if (lost) {
      // Before a CONNACK success the attempt failed (credentials, TLS): said with what to fix.
      if (connected_) spdlog::warn("mqtt: connection to {}:{} lost; reconnecting", options_.host, options_.port);
      else {
        errno = read_errno;  // what the failed read saw, for ConnectFailed's message
        ConnectFailed(read_rc, false, backoff_us);
      }
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
