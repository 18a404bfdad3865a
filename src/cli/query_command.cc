// mare query "SQL": runs a statement on a running mare (its HTTP API) or, with --data-dir and
// --offline, directly on a store's files; prints an aligned table, CSV, JSON or NDJSON.
#include <fmt/format.h>
#include <httplib.h>
#include <simdjson.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/process.h"
#include "query/executor.h"
#include "query/format.h"

namespace mare::cli {
namespace {

struct QueryFlags {
  std::string sql;
  std::string url;
  std::string token;  // a bearer token with the `query` scope; default: $MARE_TOKEN
  std::string ca_file;  // a CA to check an https server's certificate against, besides the system's
  std::string format = "table";
  std::string config;
  std::vector<std::string> overrides;
  std::string data_dir;
  bool offline = false;
};

query::Type TypeFromName(std::string_view name) {
  for (query::Type t : {query::Type::kBoolean, query::Type::kInteger, query::Type::kDouble, query::Type::kTimestamp,
                        query::Type::kInterval, query::Type::kText}) {
    if (name == query::TypeName(t)) return t;
  }
  return query::Type::kText;
}

// The API's JSON answer as a result to print as a table (values as the API wrote them).
bool ResultFromJson(const std::string& body, query::QueryResult* out, std::string* why) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc) != simdjson::SUCCESS) {
    *why = "the server's answer is not JSON";
    return false;
  }
  simdjson::dom::array columns, rows;
  if (doc["columns"].get(columns) != simdjson::SUCCESS || doc["rows"].get(rows) != simdjson::SUCCESS) {
    *why = "the server's answer has no columns or rows";
    return false;
  }
  for (auto c : columns) {
    std::string_view name, type;
    if (c["name"].get(name) != simdjson::SUCCESS || c["type"].get(type) != simdjson::SUCCESS) continue;
    out->names.emplace_back(name);
    out->types.push_back(TypeFromName(type));
  }
  for (auto row : rows) {
    std::vector<query::Value> values;
    size_t k = 0;
    for (auto cell : row.get_array()) {
      query::Type t = k < out->types.size() ? out->types[k] : query::Type::kText;
      ++k;
      if (cell.is_null()) {
        values.push_back(query::Value::Null(t));
      } else if (cell.is_int64() && t == query::Type::kInteger) {
        values.push_back(query::Value::Int(t, cell.get_int64().value()));
      } else if (cell.is_number()) {
        values.push_back(query::Value::Double(cell.get_double().value()));
        if (t == query::Type::kInteger) values.back() = query::Value::Int(t, static_cast<int64_t>(cell.get_double().value()));
      } else if (cell.is_bool()) {
        values.push_back(query::Value::Int(query::Type::kBoolean, cell.get_bool().value() ? 1 : 0));
      } else {
        std::string_view s = cell.get_string().value_unsafe();
        query::Value v = query::Value::Text(std::string(s));
        values.push_back(std::move(v));
      }
    }
    out->rows.push_back(std::move(values));
  }
  return true;
}

int Print(const query::QueryResult& result, const std::string& format, double elapsed_ms) {
  std::string out;
  if (format == "csv") {
    query::WriteCsv(result, &out);
  } else if (format == "json") {
    query::WriteJson(result, elapsed_ms, &out);
    out.push_back('\n');
  } else if (format == "ndjson") {
    query::WriteNdjson(result, &out);
  } else {
    out = query::FormatTable(result);
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int RunOffline(const QueryFlags& flags, const Config& config) {
  metrics::Registry registry;
  store::StoreOptions options = config.store;
  options.read_only = true;
  auto store = store::Store::Open(options, &registry);
  if (!store) {
    fmt::print(stderr, "query: {}\n", store.status().ToString());
    return 1;
  }
  query::QueryResult result;
  query::SqlError error;
  auto start = std::chrono::steady_clock::now();
  if (!query::RunQuery(**store, flags.sql, query::QueryOptions{.max_rows = config.query.max_rows, .limits = config.query.limits}, &result, &error)) {
    fmt::print(stderr, "query: {}\n", error.pos.line > 0 ? error.ToString() : error.message);
    return 1;
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return Print(result, flags.format, ms);
}

int RunQueryCommand(const QueryFlags& flags) {
  auto config = LoadCommandConfig(flags.config, flags.overrides, flags.data_dir);
  if (!config) {
    fmt::print(stderr, "query: {}\n", config.status().ToString());
    return 2;
  }
  if (flags.offline) return RunOffline(flags, *config);
  // The config's own server speaks https when it has a certificate.
  std::string url = flags.url.empty() ? (config->http.server.tls_cert.empty() ? "http://" : "https://") + config->http.listen : flags.url;
  httplib::Client client(url);
  if (!flags.ca_file.empty()) client.set_ca_cert_path(flags.ca_file);
  client.set_read_timeout(300, 0);
  httplib::Params params{{"q", flags.sql}, {"format", flags.format == "table" ? "json" : flags.format}};
  auto start = std::chrono::steady_clock::now();
  httplib::Headers headers;
  std::string token = flags.token;
  if (token.empty()) {
    if (const char* env = std::getenv("MARE_TOKEN")) token = env;
  }
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  auto res = client.Get("/api/v1/query", params, headers);
  if (!res) {
    fmt::print(stderr,
               "query: cannot reach mare at {} ({}); is `mare run` running? Pass --url, or --offline --data-dir DIR to read a "
               "store's files directly\n",
               url, httplib::to_string(res.error()));
    return 1;
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (res->status != 200) {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    std::string_view message;
    if (parser.parse(res->body).get(doc) == simdjson::SUCCESS && doc["error"].get(message) == simdjson::SUCCESS) {
      fmt::print(stderr, "query: {}\n", message);
    } else {
      fmt::print(stderr, "query: HTTP {}: {}\n", res->status, res->body);
    }
    return 1;
  }
  if (flags.format != "table") {
    std::fwrite(res->body.data(), 1, res->body.size(), stdout);
    if (flags.format == "json") std::fputc('\n', stdout);
    return 0;
  }
  query::QueryResult result;
  std::string why;
  if (!ResultFromJson(res->body, &result, &why)) {
    fmt::print(stderr, "query: {}\n", why);
    return 1;
  }
  return Print(result, "table", ms);
}

}  // namespace

void AddQueryCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("query", "Run a SQL statement over the readings (docs/sql.md) and print the rows");
  auto flags = std::make_shared<QueryFlags>();
  cmd->add_option("sql", flags->sql,
                  "The statement, e.g. \"SELECT sensor_id, max(temperature) FROM readings GROUP BY sensor_id\"")
      ->required();
  cmd->add_option("--format", flags->format, "table, csv, json or ndjson")
      ->check(CLI::IsMember({"table", "csv", "json", "ndjson"}))
      ->capture_default_str();
  cmd->add_option("--url", flags->url,
                  "A running mare's HTTP address (default: http://<http.listen> from the config, https:// when it sets http.tls_cert)");
  cmd->add_option("--cacert", flags->ca_file, "A PEM CA file to check an https server's certificate against (e.g. a self-signed one)");
  cmd->add_option("--token", flags->token, "An API token with the query scope, for a mare with http.tokens (default: $MARE_TOKEN)");
  cmd->add_flag("--offline", flags->offline,
                "Read the store's files directly instead of asking a running mare (with --data-dir or --config)");
  cmd->add_option("--config", flags->config, "mare.toml (for http.listen, data_dir)");
  cmd->add_option("--set", flags->overrides, "Override a config key (repeatable)");
  cmd->add_option("--data-dir", flags->data_dir, "Data directory, for --offline");
  cmd->callback([flags, exit_code] { *exit_code = RunQueryCommand(*flags); });
}

}  // namespace mare::cli
