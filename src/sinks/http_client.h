// HttpClient: one keep-alive HTTP connection from a sink to its server (an Elasticsearch or
// OpenSearch node, a ClickHouse server; libcurl), sending request bodies gzip-compressed when
// asked and accepting compressed answers. A transport
// failure (refused, reset, timed out) is a Status; any HTTP answer, 4xx and 5xx included, is a
// Response for the caller to judge. Not thread-safe: one client per sink thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mare::sinks {

struct HttpClientOptions {
  std::string url = "http://127.0.0.1:9200";  // scheme, host and port; no trailing path
  std::string user;                           // basic authentication when not empty
  std::string password;
  int64_t timeout_us = 30'000'000;  // a whole request, connecting included
  bool gzip = true;                 // compress request bodies
};

class HttpClient {
 public:
  struct Response {
    long status = 0;
    std::string body;
  };

  explicit HttpClient(HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // method "GET", "PUT", "POST", "HEAD"; path "/_bulk" (with its query string, escaped); body JSON
  // (content_type "application/json"), NDJSON ("application/x-ndjson") or binary; empty body: none sent.
  Result<Response> Send(std::string_view method, std::string_view path, std::string_view body,
                        std::string_view content_type = "application/json");

  // Bytes of request bodies put on the wire (after compression), since the start.
  uint64_t bytes_sent() const { return bytes_sent_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint64_t bytes_sent_ = 0;
};

// gzip (RFC 1952) of `in`, appended to *out after clearing it.
Status GzipCompress(std::string_view in, std::string* out);

}  // namespace mare::sinks
