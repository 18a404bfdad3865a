// Access: who may use which route of mare's HTTP server, decided in one place for every route.
// HttpServer asks Access::Check before any handler (and before a body is read), so a route added
// by any component is covered by the table in access.cc (AccessFor), not by code of its own:
//
// - API tokens with scopes ([[http.tokens]]): `Authorization: Bearer <token>` (or InfluxDB's
//   `Token <token>`; on /write also InfluxDB 1.x's Basic or ?p=, the password being the token);
//   ingest routes need `ingest`, the query API and the dashboard's data
//   `query`, /metrics and any route the table does not know `admin`, which also grants the other
//   two. /healthz, /readyz and the dashboard's static files stay open. No token configured:
//   everything is open (the default, on loopback).
// - The Host header: a browser led to mare by a rebound DNS name (DNS rebinding) sends that name;
//   only IP literals, localhost, the listen host and http.allowed_hosts are served (421 else).
// - POST bodies: the types a cross-site form or `fetch` may send without asking (text/plain,
//   form, multipart) are refused (415) where JSON or NDJSON is expected, and a POST whose Origin
//   is not the Host it is sent to is refused (403).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"

namespace mare {

// What a token may do: a set of scopes.
enum Scope : uint8_t { kScopeNone = 0, kScopeIngest = 1, kScopeQuery = 2, kScopeAdmin = 4 };

// One [[http.tokens]] entry as configured. The token itself is never in the file: either its
// SHA-256 (hex), or the name of a file or of an environment variable that holds it.
struct ApiToken {
  std::string name;                 // for the log and metrics, never the token
  std::vector<std::string> scopes;  // "ingest", "query", "admin"
  std::string sha256;               // hex digest of the token
  std::string file;                 // or: a file whose content (trailing newline dropped) is the token
  std::string env;                  // or: an environment variable holding the token
};

using Sha256Digest = std::array<uint8_t, 32>;
Sha256Digest Sha256(std::string_view bytes);

// What a route asks of a request.
struct RouteAccess {
  uint8_t scope = kScopeAdmin;  // kScopeNone: open to anyone
  enum class Body { kAny, kJson, kQuery } body = Body::kAny;
  bool ingest = false;          // appends readings: Idempotency-Key applies
  // A token in the URL, where a client cannot send the header: EventSource's ?access_token= on
  // the live stream, InfluxDB 1.x's ?p= (the password: u is not read) on /write.
  const char* token_param = nullptr;
  bool basic = false;  // InfluxDB 1.x clients (Telegraf's influxdb output): Basic, the password the token
};
RouteAccess AccessFor(std::string_view method, std::string_view path);

// Whether a listen host ("127.0.0.1", "[::1]", "localhost", "0.0.0.0", ...) is loopback only.
bool IsLoopbackHost(std::string_view host);

class Access {
 public:
  struct Token {
    std::string name;
    uint8_t scopes = 0;
    Sha256Digest digest{};
  };
  // What a request was found to be.
  struct Decision {
    int status = 0;             // 0: go on; else the refusal's status
    std::string reason;         // the refusal, for the answer's JSON body
    std::string www_authenticate;
    const Token* token = nullptr;  // the token presented, when tokens are configured
  };

  // Resolves the configured tokens (reading files and environment variables) and checks them.
  static Result<Access> Make(const std::vector<ApiToken>& tokens, std::vector<std::string> allowed_hosts,
                             std::string listen_host);

  // The checks, in order: Host, Origin of a POST, token and scope, content type. url_token: the
  // value of the route's token_param in the URL, if it has one.
  Decision Check(std::string_view method, std::string_view path, std::string_view host, std::string_view origin,
                 std::string_view authorization, std::string_view url_token, std::string_view content_type) const;

  bool has_tokens() const { return !tokens_.empty(); }
  const std::vector<Token>& tokens() const { return tokens_; }
  bool HostAllowed(std::string_view host_header) const;

 private:
  std::vector<Token> tokens_;
  std::vector<std::string> allowed_hosts_;  // lower case
  std::string listen_host_;
};

}  // namespace mare
