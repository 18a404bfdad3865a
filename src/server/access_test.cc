// Access checks (tokens, scopes, Host, Origin, content type) and Idempotency-Key replays, on
// their own and through a real HttpServer (issue 13, "Security").
#include "server/access.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>

#include <atomic>
#include <fstream>

#include "common/metrics.h"
#include "server/http_server.h"
#include "server/idempotency.h"

namespace mare {
namespace {

std::string Hex(const Sha256Digest& d) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (uint8_t b : d) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

Access Make(const std::vector<ApiToken>& tokens, std::vector<std::string> hosts = {}, std::string listen = "127.0.0.1") {
  auto a = Access::Make(tokens, std::move(hosts), std::move(listen));
  EXPECT_TRUE(a.ok()) << a.status().ToString();
  return a.ok() ? std::move(*a) : Access();
}

// Check with a host and a JSON body unless given.
Access::Decision Get(const Access& a, std::string_view path, std::string_view auth = "", std::string_view host = "127.0.0.1:8080") {
  return a.Check("GET", path, host, "", auth, "", "");
}
Access::Decision Post(const Access& a, std::string_view path, std::string_view auth, std::string_view type = "application/x-ndjson") {
  return a.Check("POST", path, "127.0.0.1:8080", "", auth, "", type);
}

TEST(Access, Sha256IsTheStandardOne) {
  EXPECT_EQ(Hex(Sha256("test")), "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  EXPECT_EQ(Hex(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Access, WithoutTokensEveryRouteIsOpen) {
  Access a = Make({});
  EXPECT_EQ(Get(a, "/metrics").status, 0);
  EXPECT_EQ(Get(a, "/api/v1/query").status, 0);
  EXPECT_EQ(Post(a, "/api/v1/ingest", "").status, 0);
}

TEST(Access, ScopesDecideWhoGetsWhat) {
  Access a = Make({{.name = "buoys", .scopes = {"ingest"}, .sha256 = Hex(Sha256("ingest-secret"))},
                   {.name = "web", .scopes = {"query"}, .sha256 = Hex(Sha256("query-secret"))},
                   {.name = "ops", .scopes = {"admin"}, .sha256 = Hex(Sha256("admin-secret"))}});
  // Open routes.
  for (const char* path : {"/healthz", "/readyz", "/", "/index.html", "/assets/index-abc.js"}) EXPECT_EQ(Get(a, path).status, 0) << path;
  // No token: 401 naming the scope.
  auto none = Post(a, "/api/v1/ingest", "");
  EXPECT_EQ(none.status, 401);
  EXPECT_NE(none.www_authenticate.find("scope=\"ingest\""), std::string::npos);
  // A wrong token: 401, invalid_token.
  auto wrong = Get(a, "/api/v1/query", "Bearer query-secreT");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_NE(wrong.www_authenticate.find("invalid_token"), std::string::npos);
  // The right token for the scope.
  EXPECT_EQ(Post(a, "/api/v1/ingest", "Bearer ingest-secret").status, 0);
  EXPECT_EQ(Get(a, "/api/v1/query", "bearer   query-secret").status, 0);
  EXPECT_EQ(Get(a, "/api/v1/sensors", "Bearer query-secret").status, 0);
  // Another scope: 403 naming the token, never the secret.
  auto other = Get(a, "/api/v1/query", "Bearer ingest-secret");
  EXPECT_EQ(other.status, 403);
  EXPECT_NE(other.reason.find("'buoys'"), std::string::npos);
  EXPECT_EQ(other.reason.find("secret"), std::string::npos);
  EXPECT_EQ(Post(a, "/api/v1/ingest", "Bearer query-secret").status, 403);
  EXPECT_EQ(Get(a, "/metrics", "Bearer query-secret").status, 403);
  // admin has every scope; routes the table does not know need it.
  EXPECT_EQ(Get(a, "/metrics", "Bearer admin-secret").status, 0);
  EXPECT_EQ(Post(a, "/api/v1/ingest", "Bearer admin-secret").status, 0);
  EXPECT_EQ(Get(a, "/api/v1/query", "Bearer admin-secret").status, 0);
  EXPECT_EQ(a.Check("DELETE", "/something/new", "127.0.0.1", "", "Bearer query-secret", "", "").status, 403);
  // InfluxDB v2 clients (Telegraf) say "Token" for the same thing.
  EXPECT_EQ(Post(a, "/api/v1/ingest", "Token ingest-secret").status, 0);
  // The line protocol routes are ingest routes.
  EXPECT_EQ(a.Check("POST", "/api/v2/write", "127.0.0.1", "", "Bearer ingest-secret", "", "text/plain").status, 0);
  EXPECT_EQ(a.Check("POST", "/write", "127.0.0.1", "", "Bearer query-secret", "", "text/plain").status, 403);
  // ?access_token= only for the live stream, which EventSource opens without headers.
  EXPECT_EQ(a.Check("GET", "/api/v1/live", "127.0.0.1", "", "", "query-secret", "").status, 0);
  EXPECT_EQ(a.Check("GET", "/api/v1/query", "127.0.0.1", "", "", "query-secret", "").status, 401);
  // InfluxDB 1.x clients on /write (Telegraf's influxdb output): Basic or ?p=, the password the
  // token and the user not read, as InfluxDB 2's 1.x API; nowhere else.
  auto write = [&a](std::string_view auth, std::string_view p = "") {
    return a.Check("POST", "/write", "127.0.0.1", "", auth, p, "text/plain").status;
  };
  EXPECT_EQ(write("Basic dGVsZWdyYWY6aW5nZXN0LXNlY3JldA=="), 0);      // telegraf:ingest-secret
  EXPECT_EQ(write("basic OmluZ2VzdC1zZWNyZXQ="), 0);                 // :ingest-secret
  EXPECT_EQ(write("Basic dGVsZWdyYWY6d3Jvbmc="), 401);               // telegraf:wrong
  EXPECT_EQ(write("Basic dGVsZWdyYWY6cXVlcnktc2VjcmV0"), 403);       // telegraf:query-secret
  EXPECT_EQ(write("Basic aW5nZXN0LXNlY3JldA=="), 401);               // no colon: no password
  EXPECT_EQ(write("Basic not base64!"), 401);
  EXPECT_EQ(write("Basic ===="), 401);
  EXPECT_EQ(write("", "ingest-secret"), 0);
  EXPECT_EQ(write("", "query-secret"), 403);
  EXPECT_EQ(a.Check("POST", "/api/v2/write", "127.0.0.1", "", "", "ingest-secret", "text/plain").status, 401);
  EXPECT_EQ(a.Check("POST", "/api/v2/write", "127.0.0.1", "", "Basic dGVsZWdyYWY6aW5nZXN0LXNlY3JldA==", "", "text/plain").status, 401);
  EXPECT_EQ(Post(a, "/api/v1/ingest", "Basic dGVsZWdyYWY6aW5nZXN0LXNlY3JldA==").status, 401);
  EXPECT_EQ(AccessFor("POST", "/write").token_param, std::string_view("p"));
  EXPECT_EQ(AccessFor("GET", "/api/v1/live").token_param, std::string_view("access_token"));
  EXPECT_EQ(AccessFor("GET", "/api/v1/query").token_param, nullptr);
}

TEST(Access, TokensFromFilesAndEnvironment) {
  std::string path = testing::TempDir() + "/mare_token";
  std::ofstream(path) << "from-a-file\n";
  ::setenv("MARE_ACCESS_TEST_TOKEN", "from-the-env", 1);
  Access a = Make({{.name = "f", .scopes = {"query"}, .file = path}, {.name = "e", .scopes = {"query"}, .env = "MARE_ACCESS_TEST_TOKEN"}});
  EXPECT_EQ(Get(a, "/api/v1/query", "Bearer from-a-file").status, 0);
  EXPECT_EQ(Get(a, "/api/v1/query", "Bearer from-the-env").status, 0);

  auto bad = [](const ApiToken& t) { return Access::Make({t}, {}, "127.0.0.1").status().message(); };
  EXPECT_NE(bad({.name = "x", .scopes = {"write"}, .sha256 = Hex(Sha256("a"))}).find("unknown scope \"write\""), std::string::npos);
  EXPECT_NE(bad({.name = "x", .scopes = {"query"}}).find("exactly one of"), std::string::npos);
  EXPECT_NE(bad({.name = "x", .scopes = {"query"}, .sha256 = "abc"}).find("64 hex"), std::string::npos);
  EXPECT_NE(bad({.name = "x", .scopes = {"query"}, .env = "MARE_ACCESS_TEST_UNSET"}).find("empty"), std::string::npos);
  EXPECT_NE(bad({.name = "x", .scopes = {"query"}, .file = "/nonexistent/token"}).find("cannot read"), std::string::npos);
  EXPECT_NE(bad({.name = "", .scopes = {"query"}, .env = "MARE_ACCESS_TEST_TOKEN"}).find("name"), std::string::npos);
}

TEST(Access, HostHeaderStopsDnsRebinding) {
  Access a = Make({}, {"mare.example.org"}, "buoys.local");
  for (const char* host : {"127.0.0.1:8080", "127.0.0.1", "localhost:8080", "LocalHost", "[::1]:8080", "10.1.2.3:80",
                           "mare.example.org", "MARE.example.org:443", "buoys.local:8080", ""}) {
    EXPECT_TRUE(a.HostAllowed(host)) << host;
  }
  for (const char* host : {"attacker.example.com", "attacker.example.com:8080", "127.0.0.1.attacker.net", "localhost.evil.org"}) {
    EXPECT_FALSE(a.HostAllowed(host)) << host;
    auto d = Get(a, "/api/v1/query", "", host);
    EXPECT_EQ(d.status, 421);
    EXPECT_NE(d.reason.find("http.allowed_hosts"), std::string::npos);
  }
  EXPECT_TRUE(Make({}, {"*"}).HostAllowed("anything.example"));
}

TEST(Access, CrossSiteBodiesAreRefused) {
  Access a = Make({});
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""}) {
    auto d = Post(a, "/api/v1/ingest", "", type);
    EXPECT_EQ(d.status, 415) << type;
    EXPECT_NE(d.reason.find("application/x-ndjson"), std::string::npos);
    EXPECT_EQ(Post(a, "/api/v1/query", "", type).status, 415) << type;
  }
  for (const char* type : {"application/x-ndjson", "application/json; charset=utf-8", "Application/NDJSON"}) {
    EXPECT_EQ(Post(a, "/api/v1/ingest", "", type).status, 0) << type;
  }
  EXPECT_EQ(Post(a, "/api/v1/query", "", "application/json").status, 0);
  EXPECT_EQ(Post(a, "/api/v1/query", "", "application/sql").status, 0);
  EXPECT_EQ(Post(a, "/api/v1/query", "", "application/x-ndjson").status, 415);
  // A POST from a page of another origin, whatever its type.
  EXPECT_EQ(a.Check("POST", "/write", "127.0.0.1:8080", "http://evil.example", "", "", "text/plain").status, 403);
  EXPECT_EQ(a.Check("POST", "/api/v1/ingest", "127.0.0.1:8080", "null", "", "", "application/json").status, 403);
  EXPECT_EQ(a.Check("POST", "/api/v1/ingest", "127.0.0.1:8080", "http://127.0.0.1:8080", "", "", "application/json").status, 0);
  // Behind a proxy that rewrites Host: the page's name is listed.
  Access proxied = Make({}, {"mare.example.org"});
  EXPECT_EQ(proxied.Check("POST", "/api/v1/query", "127.0.0.1:8080", "https://mare.example.org", "", "", "application/json").status, 0);
  EXPECT_EQ(proxied.Check("POST", "/api/v1/query", "127.0.0.1:8080", "https://evil.example.org", "", "", "application/json").status, 403);
}

TEST(Access, LoopbackHosts) {
  for (const char* h : {"127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"}) EXPECT_TRUE(IsLoopbackHost(h)) << h;
  for (const char* h : {"0.0.0.0", "", "::", "[::]", "10.0.0.1", "example.org"}) EXPECT_FALSE(IsLoopbackHost(h)) << h;
}

TEST(IdempotencyCache, ReplaysSuccessesWithinTheHorizonOnly) {
  IdempotencyCache cache(1'000'000, 2);
  IdempotencyCache::Answer a;
  EXPECT_EQ(cache.Begin("k1", "10", 0, &a), IdempotencyCache::Claim::kNew);
  EXPECT_EQ(cache.Begin("k1", "10", 1, &a), IdempotencyCache::Claim::kBusy);
  cache.Finish("k1", {200, "{\"accepted\":1}", "application/json"}, 2);
  EXPECT_EQ(cache.Begin("k1", "10", 3, &a), IdempotencyCache::Claim::kReplay);
  EXPECT_EQ(a.body, "{\"accepted\":1}");
  EXPECT_EQ(cache.Begin("k1", "11", 3, &a), IdempotencyCache::Claim::kMismatch);
  // A failure releases its key: the retry runs again.
  EXPECT_EQ(cache.Begin("k2", "", 4, &a), IdempotencyCache::Claim::kNew);
  cache.Release("k2");
  EXPECT_EQ(cache.Begin("k2", "", 5, &a), IdempotencyCache::Claim::kNew);
  cache.Finish("k2", {200, "b", ""}, 6);
  // Bounded in keys: a third forgets the oldest.
  EXPECT_EQ(cache.Begin("k3", "", 7, &a), IdempotencyCache::Claim::kNew);
  cache.Finish("k3", {200, "c", ""}, 8);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Begin("k1", "10", 9, &a), IdempotencyCache::Claim::kNew);
  cache.Release("k1");
  // Past the horizon, forgotten.
  EXPECT_EQ(cache.Begin("k3", "", 1'000'009, &a), IdempotencyCache::Claim::kNew);
}

// Through the real server: the checks run before the handler, the answers say why.
TEST(AccessServer, TokensHostsAndIdempotencyThroughTheServer) {
  metrics::Registry registry;
  HttpServerOptions options;
  options.tokens = {{.name = "buoys", .scopes = {"ingest"}, .sha256 = Hex(Sha256("s3cret"))}};
  HttpServer server(options, &registry);
  std::atomic<int> appended{0};
  server.routes().Post("/api/v1/ingest", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.body == "fail") {
      res.status = 503;
      return;
    }
    res.set_content("{\"accepted\":" + std::to_string(++appended) + "}", "application/json");
  });
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  httplib::Client client("127.0.0.1", server.port());

  auto none = client.Post("/api/v1/ingest", "{}", "application/json");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_TRUE(none->has_header("WWW-Authenticate"));
  EXPECT_NE(none->body.find("\"error\":"), std::string::npos);
  EXPECT_EQ(appended, 0);

  httplib::Headers auth = {{"Authorization", "Bearer s3cret"}};
  auto text = client.Post("/api/v1/ingest", auth, "{}", "text/plain");
  ASSERT_TRUE(text);
  EXPECT_EQ(text->status, 415);
  EXPECT_EQ(appended, 0);

  httplib::Headers rebound = {{"Authorization", "Bearer s3cret"}, {"Host", "attacker.example:8080"}};
  auto host = client.Post("/api/v1/ingest", rebound, "{}", "application/json");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->status, 421);

  httplib::Headers keyed = {{"Authorization", "Bearer s3cret"}, {"Idempotency-Key", "batch-1"}};
  auto first = client.Post("/api/v1/ingest", keyed, "{}", "application/json");
  auto again = client.Post("/api/v1/ingest", keyed, "{}", "application/json");
  ASSERT_TRUE(first && again);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(again->status, 200);
  EXPECT_EQ(again->body, first->body);
  EXPECT_EQ(again->get_header_value("Idempotent-Replayed"), "true");
  EXPECT_EQ(appended, 1);
  // A failed attempt does not hold its key.
  httplib::Headers failing = {{"Authorization", "Bearer s3cret"}, {"Idempotency-Key", "batch-2"}};
  auto failed = client.Post("/api/v1/ingest", failing, "fail", "application/json");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status, 503);
  auto retried = client.Post("/api/v1/ingest", failing, "fine", "application/json");
  ASSERT_TRUE(retried);
  EXPECT_EQ(retried->status, 200);
  EXPECT_EQ(appended, 2);

  std::string text_metrics = registry.Render();
  EXPECT_NE(text_metrics.find("mare_http_requests_refused_total{reason=\"unauthenticated\"} 1"), std::string::npos) << text_metrics;
  EXPECT_NE(text_metrics.find("mare_http_requests_refused_total{reason=\"content_type\"} 1"), std::string::npos);
  EXPECT_NE(text_metrics.find("mare_http_requests_refused_total{reason=\"host\"} 1"), std::string::npos);
  EXPECT_NE(text_metrics.find("mare_http_idempotent_replays_total 1"), std::string::npos);
  server.Stop();
}

TEST(AccessServer, AnUnreadableTokenFailsStart) {
  HttpServerOptions options;
  options.tokens = {{.name = "x", .scopes = {"query"}, .file = "/nonexistent/token"}};
  HttpServer server(options);
  Status s = server.Start("127.0.0.1:0");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cannot read"), std::string::npos);
}

}  // namespace
}  // namespace mare
