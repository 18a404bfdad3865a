#include "config/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <set>
#include <toml++/toml.h>

#include "common/json_writer.h"
#include "common/time.h"

namespace mare {
namespace {

std::string Where(const toml::node& node) {
  const auto& src = node.source();
  if (!src.begin) return "";
  return fmt::format(" (line {}, column {})", src.begin.line, src.begin.column);
}

// A TOML basic string: JSON's string escapes are a subset of TOML's.
std::string Quote(const std::string& s) {
  std::string out;
  AppendJsonString(&out, s);
  return out;
}

// Merges src into dst, key by key (tables recursively).
void Merge(toml::table& dst, const toml::table& src) {
  for (auto& [k, v] : src) {
    if (auto* st = v.as_table()) {
      if (auto* dt = dst.get(k) ? dst.get(k)->as_table() : nullptr) {
        Merge(*dt, *st);
        continue;
      }
    }
    dst.insert_or_assign(k, v);
  }
}

// One key of the file: where it lives in Config, and how its TOML value is read and written.
// The table of every key (Keys below) is the one place a key is named.
struct Key {
  std::string path;  // "sources.udp.threads"
  std::function<Status(const toml::node&)> read;
  std::function<std::string()> write;  // the value as TOML
};

Status Bad(const std::string& path, const toml::node& n, const std::string& want) {
  return Status::InvalidArgument(fmt::format("{} must be {}{}", path, want, Where(n)));
}

template <typename T>
Key Int(std::string path, T* field, int64_t min, int64_t max) {
  return {path,
          [=](const toml::node& n) -> Status {
            auto v = n.value_exact<int64_t>();
            if (!v) return Bad(path, n, "an integer");
            if (*v < min || *v > max) return Status::InvalidArgument(fmt::format("{}: {} out of range [{}, {}]{}", path, *v, min, max, Where(n)));
            *field = static_cast<T>(*v);
            return Status::OK();
          },
          [=] { return std::to_string(*field); }};
}

Key Bool(std::string path, bool* field) {
  return {path,
          [=](const toml::node& n) -> Status {
            auto v = n.value_exact<bool>();
            if (!v) return Bad(path, n, "true or false");
            *field = *v;
            return Status::OK();
          },
          [=] { return std::string(*field ? "true" : "false"); }};
}

Key String(std::string path, std::string* field, bool secret = false) {
  return {path,
          [=](const toml::node& n) -> Status {
            auto v = n.value_exact<std::string>();
            if (!v) return Bad(path, n, "a string");
            *field = *v;
            return Status::OK();
          },
          [=] { return Quote(secret && !field->empty() ? "(set)" : *field); }};
}

// A string that must be one of `choices`.
Key Choice(std::string path, std::string* field, std::vector<std::string> choices) {
  Key k = String(path, field);
  k.read = [=](const toml::node& n) -> Status {
    auto v = n.value_exact<std::string>();
    std::string list;
    for (size_t i = 0; i < choices.size(); ++i) list += (i ? (i + 1 == choices.size() ? " or " : ", ") : "") + Quote(choices[i]);
    if (!v || std::find(choices.begin(), choices.end(), *v) == choices.end()) {
      return Status::InvalidArgument(fmt::format("{} must be {}, got {}{}", path, list, v ? Quote(*v) : "another type", Where(n)));
    }
    *field = *v;
    return Status::OK();
  };
  return k;
}

Key Duration(std::string path, int64_t* field, int64_t min_us = 0) {
  return {path,
          [=](const toml::node& n) -> Status {
            std::string text;
            if (auto i = n.value_exact<int64_t>()) {
              text = std::to_string(*i) + "s";  // a bare integer is seconds, with a string's bounds
            } else if (auto s = n.value_exact<std::string>()) {
              text = *s;
            } else {
              return Bad(path, n, "a duration such as \"500ms\", \"30s\", \"7d\"");
            }
            auto d = ParseDurationMicros(text);
            if (!d.ok()) return Status::InvalidArgument(fmt::format("{}: {}{}", path, d.status().message(), Where(n)));
            int64_t us = *d;
            if (us < min_us) return Status::InvalidArgument(fmt::format("{} must be at least {}{}", path, FormatDuration(min_us), Where(n)));
            *field = us;
            return Status::OK();
          },
          [=] { return Quote(FormatDuration(*field)); }};
}

template <typename T>
Key Size(std::string path, T* field, int64_t min = 0, int64_t max = INT64_MAX) {
  return {path,
          [=](const toml::node& n) -> Status {
            int64_t bytes;
            if (auto i = n.value_exact<int64_t>()) {
              bytes = *i;
            } else if (auto s = n.value_exact<std::string>()) {
              auto b = ParseByteSize(*s);
              if (!b.ok()) return Status::InvalidArgument(fmt::format("{}: {}{}", path, b.status().message(), Where(n)));
              bytes = *b;
            } else {
              return Bad(path, n, "a size such as 65536 or \"64MiB\"");
            }
            if (bytes < min || bytes > max) return Status::InvalidArgument(fmt::format("{} must be within [{}, {}]{}", path, min, max, Where(n)));
            *field = static_cast<T>(bytes);
            return Status::OK();
          },
          [=] { return std::to_string(*field); }};
}

std::string QuoteList(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + Quote(v[i]);
  return out + "]";
}

Result<std::vector<std::string>> ReadStrings(const std::string& path, const toml::node& n) {
  auto* arr = n.as_array();
  if (!arr) return Bad(path, n, "an array of strings");
  std::vector<std::string> out;
  for (auto& e : *arr) {
    auto v = e.value_exact<std::string>();
    if (!v) return Bad(path, e, "an array of strings");
    out.push_back(*v);
  }
  return out;
}

Key Strings(std::string path, std::vector<std::string>* field) {
  return {path,
          [=](const toml::node& n) -> Status {
            auto v = ReadStrings(path, n);
            if (!v.ok()) return v.status();
            *field = std::move(*v);
            return Status::OK();
          },
          [=] { return QuoteList(*field); }};
}

// rollup.resolutions: window lengths, parsed by the rollups' own ParseResolutions.
Key Resolutions(std::string path, std::vector<rollup::Resolution>* field) {
  return {path,
          [=](const toml::node& n) -> Status {
            auto v = ReadStrings(path, n);
            if (!v.ok()) return v.status();
            if (v->empty()) return Status::InvalidArgument(path + " must name at least one window length" + Where(n));
            std::string list;
            for (const auto& r : *v) list += (list.empty() ? "" : ",") + r;
            auto parsed = rollup::ParseResolutions(list);
            if (!parsed.ok()) return Status::InvalidArgument(fmt::format("{}: {}{}", path, parsed.status().message(), Where(n)));
            *field = std::move(*parsed);
            return Status::OK();
          },
          [=] {
            std::vector<std::string> names;
            for (const auto& r : *field) names.push_back(r.name);
            return QuoteList(names);
          }};
}

// A key naming one of an enum's values, read and shown by its name (the first name is the
// fallback shown for a value without one).
template <typename T>
Key Enumerated(std::string path, T* field, std::vector<std::pair<std::string, T>> names) {
  return {path,
          [=](const toml::node& n) -> Status {
            auto v = n.value_exact<std::string>();
            std::string list;
            for (size_t i = 0; i < names.size(); ++i) {
              if (v && *v == names[i].first) {
                *field = names[i].second;
                return Status::OK();
              }
              list += (i ? (i + 1 == names.size() ? " or " : ", ") : "") + Quote(names[i].first);
            }
            return Status::InvalidArgument(fmt::format("{} must be {}, got {}{}", path, list, v ? Quote(*v) : "another type", Where(n)));
          },
          [=] {
            for (const auto& [name, value] : names) {
              if (value == *field) return Quote(name);
            }
            return Quote(names.front().first);
          }};
}

Key Fsync(std::string path, log::FsyncPolicy* field) {
  return Enumerated<log::FsyncPolicy>(
      path, field, {{"interval", log::FsyncPolicy::kInterval}, {"batch", log::FsyncPolicy::kBatch}, {"never", log::FsyncPolicy::kNever}});
}

// [log.kafka.client]: librdkafka settings passed through by name (librdkafka checks names and
// values when mare connects). Secrets (passwords, keys) show as "(set)" in --print-config.
Key KafkaClient(std::string path, std::vector<std::pair<std::string, std::string>>* field) {
  return {path,
          [=](const toml::node& n) -> Status {
            auto* table = n.as_table();
            if (!table) return Bad(path, n, "a table of librdkafka settings");
            field->clear();
            for (auto& [k, v] : *table) {
              std::string key(k.str()), value;
              if (auto str = v.value_exact<std::string>()) value = *str;
              else if (auto b = v.value_exact<bool>()) value = *b ? "true" : "false";
              else if (auto i = v.value_exact<int64_t>()) value = std::to_string(*i);
              else return Status::InvalidArgument(fmt::format("{}.{} must be a string, integer or boolean{}", path, key, Where(v)));
              field->emplace_back(key, value);
            }
            return Status::OK();
          },
          [=] {
            std::string out;
            for (const auto& [k, v] : *field) {
              bool secret = k.find("password") != std::string::npos || k.find("secret") != std::string::npos || k.ends_with("key.pem");
              out += Quote(k) + " = " + Quote(secret && !v.empty() ? "(set)" : v) + "\n";
            }
            return out;
          }};
}

// http.tokens: an array of tables, [[http.tokens]] name, scopes and one of sha256, file, env
// (server/access.h). The token is never in the file; --print-config shows the hash as "(set)".
Key Tokens(std::string path, std::vector<ApiToken>* field) {
  return {path,
          [=](const toml::node& n) -> Status {
            auto* arr = n.as_array();
            if (!arr) return Bad(path, n, "an array of tables ([[http.tokens]])");
            field->clear();
            for (auto& e : *arr) {
              auto* t = e.as_table();
              if (!t) return Bad(path, e, "an array of tables ([[http.tokens]])");
              ApiToken token;
              for (auto& [k, v] : *t) {
                std::string key(k.str());
                std::string* text = key == "name" ? &token.name : key == "sha256" ? &token.sha256 : key == "file" ? &token.file
                                  : key == "env"  ? &token.env  : nullptr;
                if (text) {
                  auto str = v.value_exact<std::string>();
                  if (!str) return Bad(path + "." + key, v, "a string");
                  *text = *str;
                } else if (key == "scopes") {
                  auto scopes = ReadStrings(path + ".scopes", v);
                  if (!scopes.ok()) return scopes.status();
                  token.scopes = std::move(*scopes);
                } else {
                  return Status::InvalidArgument(fmt::format("unknown key '{}.{}' (name, scopes, sha256, file, env){}", path, key, Where(v)));
                }
              }
              field->push_back(std::move(token));
            }
            return Status::OK();
          },
          [=] {
            std::string out = "[";
            for (size_t i = 0; i < field->size(); ++i) {
              const ApiToken& t = (*field)[i];
              out += (i ? ", " : "") + std::string("{name = ") + Quote(t.name) + ", scopes = " + QuoteList(t.scopes);
              if (!t.sha256.empty()) out += ", sha256 = " + Quote("(set)");
              if (!t.file.empty()) out += ", file = " + Quote(t.file);
              if (!t.env.empty()) out += ", env = " + Quote(t.env);
              out += "}";
            }
            return out + "]";
          }};
}

// Every key of the file, in the order --print-config and config/mare.toml show them.
std::vector<Key> Keys(Config& c) {
  auto& k = c.log.kafka;
  auto& p = c.ingest.parser;
  auto& m = c.sink_mariadb;
  auto& e = c.sink_elasticsearch;
  auto& ch = c.sink_clickhouse;
  auto& h = c.http.server;
  return {
      String("data_dir", &c.data_dir),

      Choice("log.kind", &c.log.kind, {"embedded", "kafka"}),
      Int("log.partitions", &c.log.partitions, 1, 1024),
      Fsync("log.fsync", &c.log.embedded.fsync),
      Duration("log.fsync_interval", &c.log.embedded.fsync_interval_us),
      Size("log.segment_bytes", &c.log.embedded.segment_bytes, 1),
      Duration("log.segment_age", &c.log.embedded.segment_age_us),
      Duration("log.retention_check_interval", &c.log.embedded.retention_check_interval_us, 1'000),
      Duration("log.compaction_lag", &c.log.embedded.compaction_lag_us),
      Size("log.compaction_map_bytes", &c.log.embedded.compaction_map_bytes, 1 << 20),
      Duration("log.retention", &c.log.retention_us),
      Choice("log.dedup", &c.log.dedup, {"auto", "on", "off"}),
      Size("log.retention_bytes", &c.log.retention_bytes),
      Choice("log.compression", &c.log.compression, {"none", "zstd"}),

      String("log.kafka.brokers", &k.brokers),
      Int("log.kafka.replication_factor", &k.replication_factor, 1, 32767),
      Choice("log.kafka.compression", &k.compression, {"none", "gzip", "snappy", "lz4", "zstd"}),
      String("log.kafka.topic_prefix", &k.topic_prefix),
      Duration("log.kafka.delivery_timeout", &k.delivery_timeout_us, 1'000'000),
      Duration("log.kafka.request_timeout", &k.request_timeout_us, 1'000'000),
      Duration("log.kafka.startup_wait", &k.startup_wait_us),
      Bool("log.kafka.atomic_ingest", &k.atomic_ingest),
      KafkaClient("log.kafka.client", &k.client),

      Size("ingest.max_reading_bytes", &p.max_reading_bytes, 1),
      Int("ingest.max_fields", &p.max_fields, 3, 4096),
      Size("ingest.max_text_bytes", &p.max_text_bytes),
      Duration("ingest.max_future_skew", &p.max_future_skew_us),
      Strings("ingest.numeric_fields", &p.numeric_fields),
      Duration("ingest.dedup_horizon", &c.ingest.dedup_horizon_us),
      Int("ingest.dedup_max_per_sensor", &c.ingest.dedup_max_per_sensor, 1, 1 << 24),
      Int("ingest.dead_letter_max", &c.dead_letter.max_entries, 0, INT64_MAX),
      Size("ingest.dead_letter_max_bytes", &c.dead_letter.max_bytes, 1024),
      Size("ingest.dead_letter_entry_bytes", &c.dead_letter.max_entry_bytes, 0),

      Bool("sources.udp.enabled", &c.udp.enabled),
      String("sources.udp.listen", &c.udp.listen),
      Int("sources.udp.threads", &c.udp.threads, 1, 64),
      Size("sources.udp.receive_buffer_bytes", &c.udp.receive_buffer_bytes),
      Int("sources.udp.batch", &c.udp.batch, 1, 1024),
      Size("sources.udp.max_datagram_bytes", &c.udp.max_datagram_bytes, 1, 65507),

      Bool("sources.tcp.enabled", &c.tcp.enabled),
      String("sources.tcp.listen", &c.tcp.listen),
      Int("sources.tcp.max_connections", &c.tcp.max_connections, 1, 1'000'000),

      Bool("sources.unix.enabled", &c.unix_socket.enabled),
      String("sources.unix.path", &c.unix_socket.listen),
      String("sources.unix.mode", &c.unix_socket.mode),

      Bool("sources.mqtt.enabled", &c.mqtt.enabled),
      String("sources.mqtt.host", &c.mqtt.host),
      Int("sources.mqtt.port", &c.mqtt.port, 1, 65535),
      String("sources.mqtt.client_id", &c.mqtt.client_id),
      Strings("sources.mqtt.topics", &c.mqtt.topics),
      Int("sources.mqtt.qos", &c.mqtt.qos, 0, 1),
      Bool("sources.mqtt.clean_session", &c.mqtt.clean_session),
      Duration("sources.mqtt.session_expiry", &c.mqtt.session_expiry_us, 1'000'000),
      String("sources.mqtt.sensor_id_topic", &c.mqtt.sensor_id_topic),
      String("sources.mqtt.username", &c.mqtt.username),
      String("sources.mqtt.password", &c.mqtt.password, true),
      String("sources.mqtt.password_file", &c.mqtt.password_file),
      String("sources.mqtt.tls_ca_file", &c.mqtt.tls_ca_file),
      String("sources.mqtt.tls_cert_file", &c.mqtt.tls_cert_file),
      String("sources.mqtt.tls_key_file", &c.mqtt.tls_key_file),
      Duration("sources.mqtt.keepalive", &c.mqtt.keepalive_us, 5'000'000),
      Duration("sources.mqtt.reconnect_min", &c.mqtt.reconnect_min_us, 1'000),
      Duration("sources.mqtt.reconnect_max", &c.mqtt.reconnect_max_us, 1'000),
      Int("sources.mqtt.max_batch", &c.mqtt.max_batch, 1, 65535),

      Bool("sources.line_protocol.http", &c.line_protocol.http),
      Bool("sources.line_protocol.tcp", &c.line_protocol.tcp),
      String("sources.line_protocol.tcp_listen", &c.line_protocol.tcp_listen),
      Bool("sources.line_protocol.udp", &c.line_protocol.udp),
      String("sources.line_protocol.udp_listen", &c.line_protocol.udp_listen),
      Choice("sources.line_protocol.precision", &c.line_protocol.parse.precision, {"ns", "us", "ms", "s", "m", "h"}),
      String("sources.line_protocol.sensor_id_tag", &c.line_protocol.parse.sensor_id_tag),
      String("sources.line_protocol.lat_field", &c.line_protocol.parse.lat_field),
      String("sources.line_protocol.lon_field", &c.line_protocol.parse.lon_field),
      String("sources.line_protocol.measurement_field", &c.line_protocol.parse.measurement_field),
      Bool("sources.line_protocol.keep_tags", &c.line_protocol.parse.keep_tags),
      Size("sources.line_protocol.max_line_bytes", &c.line_protocol.parse.max_line_bytes, 16, 16 << 20),
      Size("sources.line_protocol.max_body_bytes", &c.line_protocol.parse.max_body_bytes, 1024),

      Bool("http.enabled", &c.http.enabled),
      String("http.listen", &c.http.listen),
      Int("http.threads", &h.threads, 1, 256),
      Int("http.max_connections", &h.max_connections, 1, 1'000'000),
      Duration("http.header_timeout", &h.header_timeout_us, 1'000),
      Duration("http.body_timeout", &h.body_timeout_us, 1'000),
      Duration("http.idle_timeout", &h.idle_timeout_us, 1'000),
      Duration("http.write_timeout", &h.write_timeout_us, 1'000),
      Int("http.keep_alive_max_requests", &h.keep_alive_max_requests, 1, INT32_MAX),
      Size("http.max_body_bytes", &h.max_body_bytes, 1),
      Size("http.max_in_flight_body_bytes", &h.max_in_flight_body_bytes, 1),
      Int("http.listen_backlog", &h.listen_backlog, 1, 65535),
      Int("http.ready_max_lag", &h.ready_max_lag, 0, INT64_MAX),
      Tokens("http.tokens", &h.tokens),
      Strings("http.allowed_hosts", &h.allowed_hosts),
      String("http.tls_cert", &h.tls_cert),
      String("http.tls_key", &h.tls_key),
      String("http.tls_client_ca", &h.tls_client_ca),
      Duration("http.tls_reload_interval", &h.tls_reload_interval_us),
      Duration("http.idempotency_horizon", &h.idempotency_horizon_us),
      Int("http.idempotency_max_keys", &h.idempotency_max_keys, 0, 100'000'000),

      Bool("rollup.enabled", &c.rollup.enabled),
      Resolutions("rollup.resolutions", &c.rollup.resolutions),
      Duration("rollup.lateness", &c.rollup.lateness_us),
      Bool("rollup.idle_watermark", &c.rollup.idle_watermark),
      Duration("rollup.emit_interval", &c.rollup.emit_interval_us, 1),
      Duration("rollup.checkpoint_interval", &c.rollup.checkpoint_interval_us, 1),
      Choice("rollup.compression", &c.rollup.compression, {"none", "zstd"}),

      Bool("forecast.enabled", &c.forecast.enabled),
      Strings("forecast.fields", &c.forecast.fields),
      Int("forecast.horizon_hours", &c.forecast.horizon_hours, 1, 168),
      Int("forecast.history_days", &c.forecast.history_days, 30, 3650),
      Duration("forecast.refit_interval", &c.forecast.refit_interval_us, 3'600'000'000),
      Duration("forecast.checkpoint_interval", &c.forecast.checkpoint_interval_us, 1),
      Int("forecast.issue_threads", &c.forecast.issue_threads, 0, 256),

      Bool("store.enabled", &c.store.enabled),
      Duration("store.retention", &c.store.retention_us),
      Duration("store.forecast_retention", &c.store.forecast_retention_us),
      Int("store.flush_rows", &c.store.flush_rows, 1, INT64_MAX),
      Duration("store.flush_interval", &c.store.flush_interval_us),
      Size("store.index_cache_bytes", &c.store.index_cache_bytes, 1 << 20),

      Int("query.max_rows", &c.query.max_rows, 1, INT64_MAX),
      Size("query.max_statement_bytes", &c.query.limits.max_statement_bytes, 1),
      // Each level is a few recursive calls of the parser, planner and evaluator: past ~1000
      // the stack of a server thread would be at risk.
      Int("query.max_expression_depth", &c.query.limits.max_expression_depth, 1, 1000),
      Int("query.max_expression_nodes", &c.query.limits.max_expression_nodes, 1, 10'000'000),
      Duration("query.timeout", &c.query.limits.timeout_us),
      Size("query.max_memory", &c.query.limits.max_memory),
      Int("query.max_concurrent", &c.query.limits.max_concurrent, 0, 100'000),

      Bool("pgwire.enabled", &c.pgwire.enabled),
      String("pgwire.listen", &c.pgwire.listen),
      String("pgwire.auth", &c.pgwire.auth),
      String("pgwire.password", &c.pgwire.password, /*secret=*/true),
      Choice("pgwire.password_method", &c.pgwire.password_method, {"scram-sha-256", "md5", "cleartext"}),
      Int("pgwire.max_connections", &c.pgwire.max_connections, 1, 100'000),
      Size("pgwire.max_message_bytes", &c.pgwire.max_message_bytes, 1024, int64_t{1} << 30),
      Duration("pgwire.message_timeout", &c.pgwire.message_timeout_us, 1000),
      String("pgwire.tls_cert", &c.pgwire.tls_cert),
      String("pgwire.tls_key", &c.pgwire.tls_key),
      String("pgwire.tls_client_ca", &c.pgwire.tls_client_ca),
      Duration("pgwire.tls_reload_interval", &c.pgwire.tls_reload_interval_us),
      Bool("pgwire.tls_required", &c.pgwire.tls_required),

      Bool("sink.mariadb.enabled", &m.enabled),
      String("sink.mariadb.host", &m.host),
      Int("sink.mariadb.port", &m.port, 1, 65535),
      String("sink.mariadb.socket", &m.socket),
      String("sink.mariadb.user", &m.user),
      String("sink.mariadb.password", &m.password, /*secret=*/true),
      String("sink.mariadb.database", &m.database),
      Int("sink.mariadb.batch", &m.batch, 1, 1'000'000),
      Bool("sink.mariadb.readings", &m.readings),
      Bool("sink.mariadb.forecasts", &m.forecasts),

      Bool("sink.elasticsearch.enabled", &e.enabled),
      String("sink.elasticsearch.url", &e.url),
      String("sink.elasticsearch.user", &e.user),
      String("sink.elasticsearch.password", &e.password, /*secret=*/true),
      String("sink.elasticsearch.index_prefix", &e.index_prefix),
      Int("sink.elasticsearch.replicas", &e.replicas, 0, 100),
      Bool("sink.elasticsearch.readings", &e.readings),
      Bool("sink.elasticsearch.rollups", &e.rollups),
      Bool("sink.elasticsearch.forecasts", &e.forecasts),
      Enumerated<sinks::ElasticsearchIndexMode>("sink.elasticsearch.index_mode", &e.index_mode,
                                                {{"daily", sinks::ElasticsearchIndexMode::kDaily},
                                                 {"data_stream", sinks::ElasticsearchIndexMode::kDataStream}}),
      Int("sink.elasticsearch.batch", &e.batch, 1, 1'000'000),
      Int("sink.elasticsearch.in_flight", &e.in_flight, 1, 16),
      Bool("sink.elasticsearch.gzip", &e.gzip),
      Duration("sink.elasticsearch.timeout", &e.timeout_us, 1'000'000),
      Duration("sink.elasticsearch.bulk_timeout", &e.bulk_timeout_us),  // 0s: two thirds of timeout
      Duration("sink.elasticsearch.retry_max", &e.retry_max_us, 100'000),
      Duration("sink.elasticsearch.revoke_timeout", &e.revoke_timeout_us),

      Bool("sink.clickhouse.enabled", &ch.enabled),
      String("sink.clickhouse.url", &ch.url),
      String("sink.clickhouse.user", &ch.user),
      String("sink.clickhouse.password", &ch.password, /*secret=*/true),
      String("sink.clickhouse.database", &ch.database),
      Bool("sink.clickhouse.readings", &ch.readings),
      Bool("sink.clickhouse.rollups", &ch.rollups),
      Int("sink.clickhouse.batch", &ch.batch, 1, 10'000'000),
      Duration("sink.clickhouse.max_delay", &ch.max_delay_us),
      Bool("sink.clickhouse.gzip", &ch.gzip),
      Duration("sink.clickhouse.timeout", &ch.timeout_us, 1'000'000),
      Duration("sink.clickhouse.retry_max", &ch.retry_max_us, 100'000),
      Duration("sink.clickhouse.revoke_timeout", &ch.revoke_timeout_us),
  };
}

std::string Section(const std::string& path) {
  size_t dot = path.rfind('.');
  return dot == std::string::npos ? "" : path.substr(0, dot);
}

// Every value (not a table) of `t` whose path is not a key is a mistake; so is a table where a
// key's value belongs, or a table no key lives under.
Status NoUnknownKeys(const toml::table& t, const std::string& prefix, const std::set<std::string>& keys,
                     const std::set<std::string>& sections) {
  for (auto& [k, v] : t) {
    std::string path = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (keys.count(path)) continue;
    if (auto* sub = v.as_table(); sub && sections.count(path)) {
      MARE_RETURN_IF_ERROR(NoUnknownKeys(*sub, path, keys, sections));
      continue;
    }
    return Status::InvalidArgument(fmt::format("unknown key '{}'{}", path, Where(v)));
  }
  return Status::OK();
}

Status Apply(const toml::table& root, Config* c) {
  std::vector<Key> keys = Keys(*c);
  std::set<std::string> names, sections;
  for (const Key& k : keys) {
    names.insert(k.path);
    for (std::string s = Section(k.path); !s.empty(); s = Section(s)) sections.insert(s);
  }
  MARE_RETURN_IF_ERROR(NoUnknownKeys(root, "", names, sections));
  for (const Key& k : keys) {
    if (const toml::node* n = root.at_path(k.path).node()) MARE_RETURN_IF_ERROR(k.read(*n));
  }
  if (c->log.kind == "kafka" && c->log.kafka.brokers.empty()) {
    return Status::InvalidArgument("log.kafka.brokers must name at least one broker (host:port, comma-separated)");
  }
  // An item waiting longer for its shard than the request may take would fail the whole request.
  // 0 (the default) is two thirds of timeout (ElasticsearchSinkOptions): only another value is checked.
  if (c->sink_elasticsearch.bulk_timeout_us > 0 && c->sink_elasticsearch.bulk_timeout_us >= c->sink_elasticsearch.timeout_us) {
    return Status::InvalidArgument(fmt::format("sink.elasticsearch.bulk_timeout ({}) must be shorter than sink.elasticsearch.timeout ({})",
                                               FormatDuration(c->sink_elasticsearch.bulk_timeout_us),
                                               FormatDuration(c->sink_elasticsearch.timeout_us)));
  }
  return Status::OK();
}

// What follows from other keys, so that every command gets it the same way.
void Derive(Config* c) {
  c->log.embedded.dir = c->LogDir();
  c->store.dir = c->data_dir + "/store";
  c->rollup.checkpoint_dir = c->data_dir + "/rollup";
  c->forecast.checkpoint_dir = c->data_dir + "/forecast";
  c->unix_socket.listen = c->UnixPath();
  c->dead_letter.path = c->data_dir + "/dead-letter.log";
  // The MariaDB sink's `readings` table types the fields ingest types, and reads what ingest accepted.
  c->sink_mariadb.numeric_fields = c->ingest.parser.numeric_fields;
  c->sink_mariadb.max_reading_bytes = std::max<size_t>(c->ingest.parser.max_reading_bytes, 1 << 20);
  if (c->sink_mariadb.password.empty()) {
    if (const char* env = std::getenv("MARE_MARIADB_PASSWORD")) c->sink_mariadb.password = env;
  }
  c->sink_elasticsearch.max_reading_bytes = c->sink_mariadb.max_reading_bytes;
  if (c->sink_elasticsearch.password.empty()) {
    if (const char* env = std::getenv("MARE_ELASTICSEARCH_PASSWORD")) c->sink_elasticsearch.password = env;
  }
  c->sink_clickhouse.numeric_fields = c->ingest.parser.numeric_fields;
  c->sink_clickhouse.max_reading_bytes = c->sink_mariadb.max_reading_bytes;
  if (c->sink_clickhouse.password.empty()) {
    if (const char* env = std::getenv("MARE_CLICKHOUSE_PASSWORD")) c->sink_clickhouse.password = env;
  }
  // One filter for every consumer of raw, so that they all keep the same copy of a reading.
  log::DuplicateFilterOptions dedup{
      .enabled = c->ingest.dedup_horizon_us > 0 && (c->log.dedup == "on" || (c->log.dedup == "auto" && c->log.kind == "kafka")),
      .horizon_us = c->ingest.dedup_horizon_us};
  c->rollup.dedup = dedup;
  c->store.raw_dedup = dedup;
  c->sink_mariadb.raw_dedup = dedup;
  c->sink_elasticsearch.raw_dedup = dedup;
  c->sink_clickhouse.raw_dedup = dedup;
  c->sink_mariadb.resolutions.clear();
  for (const auto& r : c->rollup.resolutions) c->sink_mariadb.resolutions.push_back(r.name);
}

}  // namespace

Result<Config> LoadConfig(const std::string& path, const std::vector<std::string>& overrides) {
  toml::table root;
  if (!path.empty()) {
    try {
      root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
      return Status::InvalidArgument(fmt::format("{}: {} (line {}, column {})", path, e.description(), e.source().begin.line,
                                                 e.source().begin.column));
    }
  }
  for (const std::string& o : overrides) {
    size_t eq = o.find('=');
    if (eq == std::string::npos) return Status::InvalidArgument("--set '" + o + "': expected section.key=value");
    std::string key = o.substr(0, eq), value = o.substr(eq + 1);
    toml::table patch;
    try {
      patch = toml::parse(key + " = " + value);
    } catch (const toml::parse_error&) {
      try {
        patch = toml::parse(key + " = " + Quote(value));  // a bare word: take it as a string
      } catch (const toml::parse_error& e) {
        return Status::InvalidArgument(fmt::format("--set '{}': {}", o, e.description()));
      }
    }
    Merge(root, patch);
  }
  Config c;
  Status s = Apply(root, &c);
  if (!s.ok()) return Status::InvalidArgument((path.empty() ? std::string("config") : path) + ": " + s.message());
  Derive(&c);
  return c;
}

std::string FormatConfig(const Config& config) {
  Config copy = config;  // Keys() binds to a mutable Config; writing reads only
  std::string out, section = "-";
  for (const Key& k : Keys(copy)) {
    if (k.path == "log.kafka.client") {
      out += "\n[log.kafka.client]\n" + k.write();
      section = "log.kafka.client";
      continue;
    }
    std::string s = Section(k.path);
    if (s != section) {
      if (!s.empty()) out += "\n[" + s + "]\n";
      section = s;
    }
    out += k.path.substr(s.empty() ? 0 : s.size() + 1) + " = " + k.write() + "\n";
  }
  return out;
}

std::string FormatConfigValue(const Config& config, const std::string& key) {
  Config copy = config;
  for (const Key& k : Keys(copy)) {
    if (k.path == key) return k.write();
  }
  return "";
}

std::vector<std::string> ConfigKeys() {
  Config c;
  std::vector<std::string> names;
  for (const Key& k : Keys(c)) names.push_back(k.path);
  return names;
}

}  // namespace mare
