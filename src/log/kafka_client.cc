#include "log/kafka_client.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/time.h"

namespace mare::log::kafka {
namespace {

// librdkafka's log lines and client errors, into mare's log. Errors such as a broker being
// unreachable repeat every few hundred milliseconds while they last: at most one line per 10 s.
void LogLine(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
  if (level <= 3) spdlog::error("kafka {}: {}: {}", rd_kafka_name(rk), facility, text);
  else if (level <= 4) spdlog::warn("kafka {}: {}: {}", rd_kafka_name(rk), facility, text);
  else spdlog::debug("kafka {}: {}: {}", rd_kafka_name(rk), facility, text);
}

std::atomic<int64_t> last_error_line_us{0};

// librdkafka also reports a handshake cut short (a broker still starting, a connection reset) as
// an authentication or TLS error: only the broker's verdict, or the certificate's, is a refusal.
bool IsVerdict(std::string_view reason) {
  for (std::string_view verdict : {"Authentication failed", "invalid credentials", "certificate verify failed",
                                   "Unsupported SASL mechanism", "unsupported SASL mechanism"}) {
    if (reason.find(verdict) != std::string_view::npos) return true;
  }
  return false;
}

std::mutex refusal_mu;
int64_t refusal_us = -1;  // guarded by refusal_mu
std::string refusal;      // guarded by refusal_mu

void ErrorLine(rd_kafka_t* rk, int err, const char* reason, void*) {
  int64_t now = MonotonicMicros();
  if ((err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__SSL) && IsVerdict(reason)) {
    std::lock_guard lock(refusal_mu);
    refusal_us = now;
    refusal = reason;
  }
  int64_t last = last_error_line_us.load();
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char why[512];
    rd_kafka_fatal_error(rk, why, sizeof why);
    spdlog::error("kafka {}: fatal: {}", rd_kafka_name(rk), why);
  } else if (now - last > 10'000'000 && last_error_line_us.compare_exchange_strong(last, now)) {
    spdlog::warn("kafka {}: {} ({})", rd_kafka_name(rk), reason, rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)));
  }
}

}  // namespace

Status RefusalSince(int64_t since_us) {
  std::lock_guard lock(refusal_mu);
  if (refusal_us < since_us) return Status::OK();
  return Status::InvalidArgument(fmt::format(
      "kafka: the brokers refused the connection: {} (check the sasl.* and ssl.* settings in [log.kafka.client])",
      refusal));
}

Status KafkaError(rd_kafka_resp_err_t err, std::string_view what) {
  std::string m = fmt::format("kafka: {}: {}", what, rd_kafka_err2str(err));
  switch (err) {
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
      return Status::Unavailable(std::move(m));
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      return Status::NotFound(std::move(m));
    default:
      return Status::IOError(std::move(m));
  }
}

// mare's defaults, then the configured client settings, then what mare must have its way on.
Result<rd_kafka_conf_t*> MakeConf(const KafkaLogOptions& o, const std::vector<ConfSetting>& defaults,
                                  const std::vector<ConfSetting>& forced) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) -> Status {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      return Status::InvalidArgument(fmt::format("kafka client setting {}: {}", k, err));
    }
    return Status::OK();
  };
  std::vector<ConfSetting> all = {{"bootstrap.servers", o.brokers},
                                  {"client.id", o.client_id},
                                  {"socket.keepalive.enable", "true"},
                                  {"reconnect.backoff.max.ms", "1000"},
                                  // Learn of a partition's new leader within seconds, not 5 min.
                                  {"topic.metadata.refresh.interval.ms", "10000"}};
  all.insert(all.end(), defaults.begin(), defaults.end());
  for (const auto& [k, v] : o.client) all.push_back({k, v});
  all.insert(all.end(), forced.begin(), forced.end());
  for (const auto& s : all) {
    Status st = set(s.key, s.value);
    if (!st.ok()) {
      rd_kafka_conf_destroy(conf);
      return st;
    }
  }
  rd_kafka_conf_set_log_cb(conf, LogLine);
  rd_kafka_conf_set_error_cb(conf, ErrorLine);
  return conf;
}

Result<rd_kafka_t*> NewClient(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);  // owns conf on success
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return Status::InvalidArgument(std::string("kafka: ") + err);
  }
  return rk;
}

Status RetryTransient(int64_t timeout_us, std::chrono::milliseconds pause, const std::function<Attempt(int64_t left_us)>& attempt) {
  int64_t deadline = MonotonicMicros() + timeout_us;
  int64_t pause_us = static_cast<int64_t>(pause.count()) * 1000;
  for (;;) {
    Attempt a = attempt(std::max<int64_t>(deadline - MonotonicMicros(), 1000));
    if (a.status.ok() || !a.transient || MonotonicMicros() + pause_us > deadline) return a.status;
    std::this_thread::sleep_for(pause);
  }
}

Status Watermarks(rd_kafka_t* rk, const std::string& topic, int32_t partition, int64_t timeout_us, int64_t* low,
                  int64_t* high) {
  return RetryTransient(timeout_us, std::chrono::milliseconds(200), [&](int64_t left_us) -> Attempt {
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, low, high, Ms(left_us));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
    Status s = KafkaError(err, fmt::format("offsets of {} partition {}", topic, partition));
    // No leader, not the leader, unknown yet: transient; having waited the whole time is not.
    bool transient = (s.code() == Status::Code::kUnavailable || s.code() == Status::Code::kNotFound) &&
                     err != RD_KAFKA_RESP_ERR__TIMED_OUT;
    return {std::move(s), transient};
  });
}

int64_t CachedEndOffset(rd_kafka_t* rk, const std::string& topic, int32_t partition) {
  int64_t low = -1, high = -1;
  if (rd_kafka_get_watermark_offsets(rk, topic.c_str(), partition, &low, &high) != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
  return high >= 0 ? high : -1;
}

}  // namespace mare::log::kafka
