#include "server/access.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace mare {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

// The password of an HTTP Basic credential (base64 of "user:password"), or "" when it is not one.
std::string BasicPassword(std::string_view encoded) {
  if (encoded.empty() || encoded.size() % 4 != 0 || encoded.size() > 4096) return "";
  std::string decoded(encoded.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                          reinterpret_cast<const unsigned char*>(encoded.data()), static_cast<int>(encoded.size()));
  // EVP_DecodeBlock counts the padding's bytes as decoded zeros.
  const int padding = encoded.ends_with("==") ? 2 : encoded.ends_with("=") ? 1 : 0;
  if (n < padding) return "";
  decoded.resize(static_cast<size_t>(n - padding));
  size_t colon = decoded.find(':');
  return colon == std::string::npos ? "" : decoded.substr(colon + 1);
}

std::string ScopeName(uint8_t scope) {
  return scope == kScopeIngest ? "ingest" : scope == kScopeQuery ? "query" : "admin";
}

// The host of a Host header or an Origin's authority, without port and brackets, lower case;
// `literal` says whether it is an IP address (which no rebound DNS name can be).
std::string HostOf(std::string_view authority, bool* literal) {
  *literal = false;
  if (!authority.empty() && authority.front() == '[') {
    size_t end = authority.find(']');
    *literal = true;
    return Lower(authority.substr(1, end == std::string_view::npos ? std::string_view::npos : end - 1));
  }
  size_t colon = authority.find(':');
  std::string host = Lower(authority.substr(0, colon));
  if (!host.empty() && host.back() == '.') host.pop_back();
  in_addr v4;
  *literal = ::inet_pton(AF_INET, host.c_str(), &v4) == 1;
  return host;
}

bool HexDigest(std::string_view hex, Sha256Digest* out) {
  if (hex.size() != 64) return false;
  for (size_t i = 0; i < 32; ++i) {
    unsigned v = 0;
    for (size_t j = 0; j < 2; ++j) {
      char c = static_cast<char>(std::tolower(static_cast<unsigned char>(hex[2 * i + j])));
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return false;
      v = v * 16 + static_cast<unsigned>(d);
    }
    (*out)[i] = static_cast<uint8_t>(v);
  }
  return true;
}

// The media type of a Content-Type header, without parameters, lower case.
std::string MediaType(std::string_view content_type) { return Lower(Trim(content_type.substr(0, content_type.find(';')))); }

bool IsJsonType(const std::string& t) {
  return t == "application/json" || t == "application/x-ndjson" || t == "application/ndjson" || t == "application/jsonl" ||
         t == "application/x-jsonlines" || t == "application/jsonlines";
}

}  // namespace

Sha256Digest Sha256(std::string_view bytes) {
  Sha256Digest d{};
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), d.data(), &n, EVP_sha256(), nullptr);
  return d;
}

RouteAccess AccessFor(std::string_view method, std::string_view path) {
  using Body = RouteAccess::Body;
  const bool read = method == "GET" || method == "HEAD";
  if (read && (path == "/healthz" || path == "/readyz" || path == "/" || path == "/index.html" || path == "/favicon.ico" ||
               path == "/ping" || path.starts_with("/assets/"))) {
    return {.scope = kScopeNone};
  }
  if (method == "POST" && path == "/api/v1/ingest") return {.scope = kScopeIngest, .body = Body::kJson, .ingest = true};
  // The line protocol (InfluxDB's /write and /api/v2/write): text bodies, as Telegraf sends them.
  if (method == "POST" && path == "/write") return {.scope = kScopeIngest, .ingest = true, .token_param = "p", .basic = true};
  if (method == "POST" && path == "/api/v2/write") return {.scope = kScopeIngest, .ingest = true};
  if (path == "/api/v1/query") return {.scope = kScopeQuery, .body = method == "POST" ? Body::kQuery : Body::kAny};
  // EventSource cannot send headers: the live stream alone takes its token as ?access_token=.
  if (read && path == "/api/v1/live") return {.scope = kScopeQuery, .token_param = "access_token"};
  if (read && path.starts_with("/api/v1/")) return {.scope = kScopeQuery};
  return {.scope = kScopeAdmin};  // /metrics, and any route this table does not know yet
}

bool IsLoopbackHost(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host == "::1") return true;
  in_addr v4;
  std::string h(host);
  return ::inet_pton(AF_INET, h.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

Result<Access> Access::Make(const std::vector<ApiToken>& tokens, std::vector<std::string> allowed_hosts, std::string listen_host) {
  Access a;
  for (const ApiToken& t : tokens) {
    Token r;
    r.name = t.name;
    if (t.name.empty()) return Status::InvalidArgument("http.tokens: every token needs a name");
    std::string where = "http.tokens '" + t.name + "'";
    if (t.scopes.empty()) return Status::InvalidArgument(where + ": scopes is empty (\"ingest\", \"query\", \"admin\")");
    for (const std::string& s : t.scopes) {
      if (s == "ingest") r.scopes |= kScopeIngest;
      else if (s == "query") r.scopes |= kScopeQuery;
      else if (s == "admin") r.scopes |= kScopeAdmin;
      else return Status::InvalidArgument(fmt::format("{}: unknown scope \"{}\" (\"ingest\", \"query\" or \"admin\")", where, s));
    }
    int given = !t.sha256.empty() + !t.file.empty() + !t.env.empty();
    if (given != 1) return Status::InvalidArgument(where + ": give exactly one of sha256, file and env");
    if (!t.sha256.empty()) {
      if (!HexDigest(t.sha256, &r.digest)) return Status::InvalidArgument(where + ": sha256 must be 64 hex digits (sha256sum of the token)");
    } else {
      std::string secret;
      if (!t.file.empty()) {
        std::ifstream in(t.file, std::ios::binary);
        if (!in) return Status::IOError(where + ": cannot read file " + t.file);
        std::stringstream ss;
        ss << in.rdbuf();
        secret = std::string(Trim(ss.str()));
      } else if (const char* v = std::getenv(t.env.c_str())) {
        secret = std::string(Trim(v));
      }
      if (secret.empty()) {
        return Status::InvalidArgument(where + ": the token is empty (" + (t.file.empty() ? "environment variable " + t.env : "file " + t.file) + ")");
      }
      r.digest = Sha256(secret);
    }
    for (const Token& other : a.tokens_) {
      if (other.digest == r.digest) return Status::InvalidArgument(where + ": same token as '" + other.name + "'");
    }
    a.tokens_.push_back(std::move(r));
  }
  for (auto& h : allowed_hosts) h = Lower(h);
  a.allowed_hosts_ = std::move(allowed_hosts);
  bool literal;
  a.listen_host_ = HostOf(listen_host, &literal);
  return a;
}

bool Access::HostAllowed(std::string_view host_header) const {
  if (host_header.empty()) return true;  // HTTP/1.0 tools; every browser sends Host
  bool literal;
  std::string host = HostOf(Trim(host_header), &literal);
  if (literal || host == "localhost" || host == listen_host_) return true;
  for (const std::string& allowed : allowed_hosts_) {
    if (allowed == "*" || allowed == host) return true;
  }
  return false;
}

Access::Decision Access::Check(std::string_view method, std::string_view path, std::string_view host, std::string_view origin,
                               std::string_view authorization, std::string_view url_token,
                               std::string_view content_type) const {
  Decision d;
  auto refuse = [&d](int status, std::string reason) {
    d.status = status;
    d.reason = std::move(reason);
    return d;
  };
  if (!HostAllowed(host)) {
    return refuse(421, fmt::format("Host '{}' is not served here: add it to http.allowed_hosts (a browser led here by "
                                   "another name could be a DNS rebinding attack)", host));
  }
  const RouteAccess route = AccessFor(method, path);
  if (method != "GET" && method != "HEAD" && !origin.empty()) {
    size_t scheme = origin.find("://");
    std::string_view authority = scheme == std::string_view::npos ? std::string_view() : origin.substr(scheme + 3);
    bool literal;
    std::string origin_host = HostOf(authority, &literal);
    // Behind a proxy that rewrites Host, the page's own name is one of http.allowed_hosts.
    bool listed = std::find(allowed_hosts_.begin(), allowed_hosts_.end(), origin_host) != allowed_hosts_.end();
    if (authority.empty() || (Lower(authority) != Lower(Trim(host)) && !listed)) {
      return refuse(403, fmt::format("cross-origin request refused: Origin '{}' is not this server ('{}')", origin, host));
    }
  }
  if (!tokens_.empty() && route.scope != kScopeNone) {
    std::string_view presented;
    std::string basic;
    std::string_view auth = Trim(authorization);
    if (auth.size() > 7 && Lower(auth.substr(0, 7)) == "bearer ") {
      presented = Trim(auth.substr(7));
    } else if (auth.size() > 6 && Lower(auth.substr(0, 6)) == "token ") {
      presented = Trim(auth.substr(6));  // InfluxDB v2's scheme, as Telegraf sends it to the line protocol routes
    } else if (route.basic && auth.size() > 6 && Lower(auth.substr(0, 6)) == "basic ") {
      basic = BasicPassword(Trim(auth.substr(6)));
      presented = basic;
    } else if (route.token_param) {
      presented = url_token;
    }
    std::string scope = ScopeName(route.scope);
    if (presented.empty()) {
      d.www_authenticate = fmt::format("Bearer realm=\"mare\", scope=\"{}\"", scope);
      return refuse(401, fmt::format("this route needs a token with scope '{}': send Authorization: Bearer <token> "
                                     "(README, \"API tokens\")", scope));
    }
    // Every configured digest is compared, in constant time, whatever matches.
    const Sha256Digest digest = Sha256(presented);
    const Token* found = nullptr;
    for (const Token& t : tokens_) {
      bool same = CRYPTO_memcmp(t.digest.data(), digest.data(), digest.size()) == 0;
      if (same) found = &t;
    }
    if (!found) {
      d.www_authenticate = "Bearer realm=\"mare\", error=\"invalid_token\"";
      return refuse(401, "unknown token");
    }
    d.token = found;
    if (!(found->scopes & (route.scope | kScopeAdmin))) {
      d.www_authenticate = fmt::format("Bearer realm=\"mare\", error=\"insufficient_scope\", scope=\"{}\"", scope);
      return refuse(403, fmt::format("token '{}' lacks the scope '{}' this route needs", found->name, scope));
    }
  }
  if (route.body != RouteAccess::Body::kAny) {
    std::string type = MediaType(content_type);
    bool ok = IsJsonType(type) && (route.body == RouteAccess::Body::kJson || type == "application/json");
    if (route.body == RouteAccess::Body::kQuery && type == "application/sql") ok = true;
    if (!ok) {
      std::string want = route.body == RouteAccess::Body::kJson
                             ? "application/x-ndjson or application/json (curl --data-binary @file -H 'Content-Type: application/x-ndjson')"
                             : "application/json ({\"q\": \"SELECT ...\"}) or application/sql (the statement as the body)";
      return refuse(415, fmt::format("Content-Type '{}' is not accepted here (a browser may send it from any site): use {}",
                                     type.empty() ? "(none)" : type, want));
    }
  }
  return d;
}

}  // namespace mare
