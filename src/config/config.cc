#include "config/config.h"

#include <fmt/format.h>

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

// Reads one section's keys into the struct through typed setters, rejecting unknown keys.
class Section {
 public:
  Section(const toml::table* table, std::string name) : table_(table), name_(std::move(name)) {}

  Status String(const char* key, std::string* out) {
    if (auto* n = Get(key)) {
      auto v = n->value<std::string>();
      if (!v) return Bad(key, *n, "a string");
      *out = *v;
    }
    return Status::OK();
  }
  Status Bool(const char* key, bool* out) {
    if (auto* n = Get(key)) {
      auto v = n->value<bool>();
      if (!v) return Bad(key, *n, "true or false");
      *out = *v;
    }
    return Status::OK();
  }
  Status Int(const char* key, int64_t* out, int64_t min, int64_t max) {
    if (auto* n = Get(key)) {
      auto v = n->value<int64_t>();
      if (!v) return Bad(key, *n, "an integer");
      if (*v < min || *v > max) return Status::InvalidArgument(fmt::format("{}: {} out of range [{}, {}]{}", Path(key), *v, min, max, Where(*n)));
      *out = *v;
    }
    return Status::OK();
  }
  Status Duration(const char* key, int64_t* out) {
    if (auto* n = Get(key)) {
      if (auto i = n->value<int64_t>(); i && n->is_integer()) {
        *out = *i * 1'000'000;
        return Status::OK();
      }
      auto s = n->value<std::string>();
      if (!s) return Bad(key, *n, "a duration such as \"500ms\", \"30s\", \"7d\"");
      auto d = ParseDurationMicros(*s);
      if (!d) return Status::InvalidArgument(fmt::format("{}: {}{}", Path(key), d.status().message(), Where(*n)));
      *out = *d;
    }
    return Status::OK();
  }
  Status Size(const char* key, int64_t* out) {
    if (auto* n = Get(key)) {
      if (n->is_integer()) {
        *out = *n->value<int64_t>();
        return Status::OK();
      }
      auto s = n->value<std::string>();
      if (!s) return Bad(key, *n, "a size such as 65536 or \"64MiB\"");
      auto b = ParseByteSize(*s);
      if (!b) return Status::InvalidArgument(fmt::format("{}: {}{}", Path(key), b.status().message(), Where(*n)));
      *out = *b;
    }
    return Status::OK();
  }
  Status Strings(const char* key, std::vector<std::string>* out) {
    if (auto* n = Get(key)) {
      auto* arr = n->as_array();
      if (!arr) return Bad(key, *n, "an array of strings");
      out->clear();
      for (auto& e : *arr) {
        auto v = e.value<std::string>();
        if (!v) return Bad(key, e, "an array of strings");
        out->push_back(*v);
      }
    }
    return Status::OK();
  }
  // After reading: any key not asked for is a mistake.
  Status NoOthers(const std::set<std::string>& subsections = {}) {
    if (!table_) return Status::OK();
    for (auto& [k, v] : *table_) {
      std::string key(k.str());
      if (!known_.count(key) && !subsections.count(key)) {
        return Status::InvalidArgument(fmt::format("unknown key '{}'{}", Path(key.c_str()), Where(v)));
      }
    }
    return Status::OK();
  }

 private:
  const toml::node* Get(const char* key) {
    known_.insert(key);
    return table_ ? table_->get(key) : nullptr;
  }
  std::string Path(const char* key) const { return name_.empty() ? key : name_ + "." + key; }
  Status Bad(const char* key, const toml::node& n, const char* want) {
    return Status::InvalidArgument(fmt::format("{} must be {}{}", Path(key), want, Where(n)));
  }
  const toml::table* table_;
  std::string name_;
  std::set<std::string> known_;
};

const toml::table* Sub(const toml::table& t, const char* key) {
  auto* n = t.get(key);
  return n ? n->as_table() : nullptr;
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

Status Apply(const toml::table& root, Config* c) {
  Section top(&root, "");
  MARE_RETURN_IF_ERROR(top.String("data_dir", &c->data_dir));
  MARE_RETURN_IF_ERROR(top.NoOthers({"log", "ingest", "sources", "http", "rollup", "store", "query", "sink"}));

  Section log(Sub(root, "log"), "log");
  int64_t partitions = c->log.partitions;
  MARE_RETURN_IF_ERROR(log.String("kind", &c->log.kind));
  MARE_RETURN_IF_ERROR(log.Int("partitions", &partitions, 1, 1024));
  c->log.partitions = static_cast<int>(partitions);
  MARE_RETURN_IF_ERROR(log.String("fsync", &c->log.fsync));
  MARE_RETURN_IF_ERROR(log.Duration("fsync_interval", &c->log.fsync_interval_us));
  MARE_RETURN_IF_ERROR(log.Size("segment_bytes", &c->log.segment_bytes));
  MARE_RETURN_IF_ERROR(log.Duration("segment_age", &c->log.segment_age_us));
  MARE_RETURN_IF_ERROR(log.Duration("retention", &c->log.retention_us));
  MARE_RETURN_IF_ERROR(log.Size("retention_bytes", &c->log.retention_bytes));
  MARE_RETURN_IF_ERROR(log.NoOthers({"kafka"}));
  if (c->log.kind != "embedded" && c->log.kind != "kafka") {
    return Status::InvalidArgument("log.kind must be \"embedded\" or \"kafka\", got \"" + c->log.kind + "\"");
  }
  const toml::table* log_table = Sub(root, "log");
  const toml::table* kafka_table = log_table ? Sub(*log_table, "kafka") : nullptr;
  Section kafka(kafka_table, "log.kafka");
  MARE_RETURN_IF_ERROR(kafka.String("brokers", &c->log.kafka.brokers));
  MARE_RETURN_IF_ERROR(kafka.Int("replication_factor", &c->log.kafka.replication_factor, 1, 32767));
  MARE_RETURN_IF_ERROR(kafka.String("compression", &c->log.kafka.compression));
  MARE_RETURN_IF_ERROR(kafka.String("topic_prefix", &c->log.kafka.topic_prefix));
  MARE_RETURN_IF_ERROR(kafka.Duration("delivery_timeout", &c->log.kafka.delivery_timeout_us));
  MARE_RETURN_IF_ERROR(kafka.Duration("request_timeout", &c->log.kafka.request_timeout_us));
  MARE_RETURN_IF_ERROR(kafka.NoOthers({"client"}));
  static const std::set<std::string> kCompressions = {"none", "gzip", "snappy", "lz4", "zstd"};
  if (!kCompressions.count(c->log.kafka.compression)) {
    return Status::InvalidArgument("log.kafka.compression must be \"none\", \"gzip\", \"snappy\", \"lz4\" or \"zstd\", got \"" +
                                   c->log.kafka.compression + "\"");
  }
  if (c->log.kafka.delivery_timeout_us < 1'000'000 || c->log.kafka.request_timeout_us < 1'000'000) {
    return Status::InvalidArgument("log.kafka.delivery_timeout and log.kafka.request_timeout must be at least 1s");
  }
  if (c->log.kind == "kafka" && c->log.kafka.brokers.empty()) {
    return Status::InvalidArgument("log.kafka.brokers must name at least one broker (host:port, comma-separated)");
  }
  if (const toml::table* client = kafka_table ? Sub(*kafka_table, "client") : nullptr) {
    // Passed through to librdkafka, which checks names and values when mare connects.
    c->log.kafka.client.clear();
    for (auto& [k, v] : *client) {
      std::string key(k.str());
      std::string value;
      if (auto str = v.value_exact<std::string>()) value = *str;
      else if (auto b = v.value_exact<bool>()) value = *b ? "true" : "false";
      else if (auto i = v.value_exact<int64_t>()) value = std::to_string(*i);
      else return Status::InvalidArgument(fmt::format("log.kafka.client.{} must be a string, integer or boolean{}", key, Where(v)));
      c->log.kafka.client.emplace_back(key, value);
    }
  } else if (kafka_table && kafka_table->get("client")) {
    return Status::InvalidArgument("log.kafka.client must be a table of librdkafka settings" + Where(*kafka_table->get("client")));
  }
  if (c->log.fsync != "interval" && c->log.fsync != "batch" && c->log.fsync != "never") {
    return Status::InvalidArgument("log.fsync must be \"interval\", \"batch\" or \"never\", got \"" + c->log.fsync + "\"");
  }

  Section ingest(Sub(root, "ingest"), "ingest");
  MARE_RETURN_IF_ERROR(ingest.Size("max_reading_bytes", &c->ingest.max_reading_bytes));
  MARE_RETURN_IF_ERROR(ingest.Int("max_fields", &c->ingest.max_fields, 3, 4096));
  MARE_RETURN_IF_ERROR(ingest.Size("max_text_bytes", &c->ingest.max_text_bytes));
  MARE_RETURN_IF_ERROR(ingest.Duration("max_future_skew", &c->ingest.max_future_skew_us));
  MARE_RETURN_IF_ERROR(ingest.Strings("numeric_fields", &c->ingest.numeric_fields));
  MARE_RETURN_IF_ERROR(ingest.Int("dead_letter_max", &c->ingest.dead_letter_max, 0, INT64_MAX));
  MARE_RETURN_IF_ERROR(ingest.NoOthers());

  const toml::table* sources = Sub(root, "sources");
  Section src(sources, "sources");
  MARE_RETURN_IF_ERROR(src.NoOthers({"udp", "tcp", "unix"}));
  Section udp(sources ? Sub(*sources, "udp") : nullptr, "sources.udp");
  MARE_RETURN_IF_ERROR(udp.Bool("enabled", &c->udp.enabled));
  MARE_RETURN_IF_ERROR(udp.String("listen", &c->udp.listen));
  MARE_RETURN_IF_ERROR(udp.Int("threads", &c->udp.threads, 1, 64));
  MARE_RETURN_IF_ERROR(udp.Size("receive_buffer_bytes", &c->udp.receive_buffer_bytes));
  MARE_RETURN_IF_ERROR(udp.Int("batch", &c->udp.batch, 1, 1024));
  MARE_RETURN_IF_ERROR(udp.Size("max_datagram_bytes", &c->udp.max_datagram_bytes));
  MARE_RETURN_IF_ERROR(udp.NoOthers());
  if (c->udp.max_datagram_bytes < 1 || c->udp.max_datagram_bytes > 65507) {
    return Status::InvalidArgument("sources.udp.max_datagram_bytes must be within [1, 65507]");
  }
  Section tcp(sources ? Sub(*sources, "tcp") : nullptr, "sources.tcp");
  MARE_RETURN_IF_ERROR(tcp.Bool("enabled", &c->tcp.enabled));
  MARE_RETURN_IF_ERROR(tcp.String("listen", &c->tcp.listen));
  MARE_RETURN_IF_ERROR(tcp.Int("max_connections", &c->tcp.max_connections, 1, 1'000'000));
  MARE_RETURN_IF_ERROR(tcp.NoOthers());
  Section unix_s(sources ? Sub(*sources, "unix") : nullptr, "sources.unix");
  MARE_RETURN_IF_ERROR(unix_s.Bool("enabled", &c->unix_socket.enabled));
  MARE_RETURN_IF_ERROR(unix_s.String("path", &c->unix_socket.path));
  MARE_RETURN_IF_ERROR(unix_s.NoOthers());

  Section http(Sub(root, "http"), "http");
  MARE_RETURN_IF_ERROR(http.Bool("enabled", &c->http.enabled));
  MARE_RETURN_IF_ERROR(http.String("listen", &c->http.listen));
  MARE_RETURN_IF_ERROR(http.Int("threads", &c->http.threads, 1, 256));
  MARE_RETURN_IF_ERROR(http.Size("max_body_bytes", &c->http.max_body_bytes));
  MARE_RETURN_IF_ERROR(http.NoOthers());

  Section rollup(Sub(root, "rollup"), "rollup");
  MARE_RETURN_IF_ERROR(rollup.Bool("enabled", &c->rollup.enabled));
  MARE_RETURN_IF_ERROR(rollup.Strings("resolutions", &c->rollup.resolutions));
  MARE_RETURN_IF_ERROR(rollup.Duration("lateness", &c->rollup.lateness_us));
  MARE_RETURN_IF_ERROR(rollup.Duration("emit_interval", &c->rollup.emit_interval_us));
  MARE_RETURN_IF_ERROR(rollup.Duration("checkpoint_interval", &c->rollup.checkpoint_interval_us));
  MARE_RETURN_IF_ERROR(rollup.NoOthers());
  if (c->rollup.resolutions.empty()) return Status::InvalidArgument("rollup.resolutions must name at least one window length");
  for (const std::string& r : c->rollup.resolutions) {
    auto d = ParseDurationMicros(r);
    if (!d.ok() || *d <= 0) return Status::InvalidArgument("rollup.resolutions: '" + r + "' is not a window length such as \"1h\"");
  }

  Section store(Sub(root, "store"), "store");
  MARE_RETURN_IF_ERROR(store.Bool("enabled", &c->store.enabled));
  MARE_RETURN_IF_ERROR(store.Duration("retention", &c->store.retention_us));
  MARE_RETURN_IF_ERROR(store.Int("flush_rows", &c->store.flush_rows, 1, INT64_MAX));
  MARE_RETURN_IF_ERROR(store.Duration("flush_interval", &c->store.flush_interval_us));
  MARE_RETURN_IF_ERROR(store.NoOthers());

  Section query(Sub(root, "query"), "query");
  MARE_RETURN_IF_ERROR(query.Int("max_rows", &c->query.max_rows, 1, INT64_MAX));
  MARE_RETURN_IF_ERROR(query.NoOthers());

  const toml::table* sink = Sub(root, "sink");
  Section sinks(sink, "sink");
  MARE_RETURN_IF_ERROR(sinks.NoOthers({"mariadb"}));
  Section maria(sink ? Sub(*sink, "mariadb") : nullptr, "sink.mariadb");
  MARE_RETURN_IF_ERROR(maria.Bool("enabled", &c->sink_mariadb.enabled));
  MARE_RETURN_IF_ERROR(maria.String("host", &c->sink_mariadb.host));
  MARE_RETURN_IF_ERROR(maria.Int("port", &c->sink_mariadb.port, 1, 65535));
  MARE_RETURN_IF_ERROR(maria.String("socket", &c->sink_mariadb.socket));
  MARE_RETURN_IF_ERROR(maria.String("user", &c->sink_mariadb.user));
  MARE_RETURN_IF_ERROR(maria.String("password", &c->sink_mariadb.password));
  MARE_RETURN_IF_ERROR(maria.String("database", &c->sink_mariadb.database));
  MARE_RETURN_IF_ERROR(maria.Int("batch", &c->sink_mariadb.batch, 1, 1'000'000));
  MARE_RETURN_IF_ERROR(maria.Bool("readings", &c->sink_mariadb.readings));
  MARE_RETURN_IF_ERROR(maria.NoOthers());
  return Status::OK();
}

// A TOML basic string: JSON's string escapes are a subset of TOML's.
std::string Quote(const std::string& s) {
  std::string out;
  AppendJsonString(&out, s);
  return out;
}

// [log.kafka.client] for --print-config: secrets (passwords, keys, secrets) show as "(set)".
std::string ClientSettings(const Config& c) {
  std::string out;
  for (const auto& [k, v] : c.log.kafka.client) {
    bool secret = k.find("password") != std::string::npos || k.find("secret") != std::string::npos ||
                  k.ends_with(".key.pem") || k.ends_with("key.pem");
    out += Quote(k) + " = " + Quote(secret && !v.empty() ? "(set)" : v) + "\n";
  }
  return out;
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
  return c;
}

std::string FormatConfig(const Config& c) {
  auto strings = [](const std::vector<std::string>& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + Quote(v[i]);
    return out + "]";
  };
  return fmt::format(
      "data_dir = {}\n\n"
      "[log]\nkind = {}\npartitions = {}\nfsync = {}\nfsync_interval = \"{}\"\nsegment_bytes = {}\nsegment_age = \"{}\"\n"
      "retention = \"{}\"\nretention_bytes = {}\n\n"
      "[log.kafka]\nbrokers = {}\nreplication_factor = {}\ncompression = {}\ntopic_prefix = {}\ndelivery_timeout = \"{}\"\n"
      "request_timeout = \"{}\"\n\n[log.kafka.client]\n{}\n"
      "[ingest]\nmax_reading_bytes = {}\nmax_fields = {}\nmax_text_bytes = {}\nmax_future_skew = \"{}\"\nnumeric_fields = {}\n"
      "dead_letter_max = {}\n\n"
      "[sources.udp]\nenabled = {}\nlisten = {}\nthreads = {}\nreceive_buffer_bytes = {}\nbatch = {}\nmax_datagram_bytes = {}\n\n"
      "[sources.tcp]\nenabled = {}\nlisten = {}\nmax_connections = {}\n\n"
      "[sources.unix]\nenabled = {}\npath = {}\n\n"
      "[http]\nenabled = {}\nlisten = {}\nthreads = {}\nmax_body_bytes = {}\n\n"
      "[rollup]\nenabled = {}\nresolutions = {}\nlateness = \"{}\"\nemit_interval = \"{}\"\ncheckpoint_interval = \"{}\"\n\n"
      "[store]\nenabled = {}\nretention = \"{}\"\nflush_rows = {}\nflush_interval = \"{}\"\n\n"
      "[query]\nmax_rows = {}\n\n"
      "[sink.mariadb]\nenabled = {}\nhost = {}\nport = {}\nsocket = {}\nuser = {}\npassword = {}\ndatabase = {}\nbatch = {}\nreadings = {}\n",
      Quote(c.data_dir), Quote(c.log.kind), c.log.partitions, Quote(c.log.fsync), FormatDuration(c.log.fsync_interval_us),
      c.log.segment_bytes, FormatDuration(c.log.segment_age_us), FormatDuration(c.log.retention_us), c.log.retention_bytes,
      Quote(c.log.kafka.brokers), c.log.kafka.replication_factor, Quote(c.log.kafka.compression), Quote(c.log.kafka.topic_prefix),
      FormatDuration(c.log.kafka.delivery_timeout_us), FormatDuration(c.log.kafka.request_timeout_us), ClientSettings(c),
      c.ingest.max_reading_bytes, c.ingest.max_fields, c.ingest.max_text_bytes, FormatDuration(c.ingest.max_future_skew_us),
      strings(c.ingest.numeric_fields), c.ingest.dead_letter_max, c.udp.enabled, Quote(c.udp.listen), c.udp.threads,
      c.udp.receive_buffer_bytes, c.udp.batch, c.udp.max_datagram_bytes, c.tcp.enabled, Quote(c.tcp.listen),
      c.tcp.max_connections, c.unix_socket.enabled, Quote(c.UnixPath()), c.http.enabled, Quote(c.http.listen), c.http.threads,
      c.http.max_body_bytes, c.rollup.enabled, strings(c.rollup.resolutions), FormatDuration(c.rollup.lateness_us),
      FormatDuration(c.rollup.emit_interval_us), FormatDuration(c.rollup.checkpoint_interval_us), c.store.enabled, FormatDuration(c.store.retention_us), c.store.flush_rows,
      FormatDuration(c.store.flush_interval_us), c.query.max_rows, c.sink_mariadb.enabled, Quote(c.sink_mariadb.host), c.sink_mariadb.port,
      Quote(c.sink_mariadb.socket), Quote(c.sink_mariadb.user),
      Quote(c.sink_mariadb.password.empty() ? "" : "(set)"), Quote(c.sink_mariadb.database), c.sink_mariadb.batch,
      c.sink_mariadb.readings);
}

}  // namespace mare
