// HttpServer: the one HTTP endpoint of `mare run` (default 127.0.0.1:8080). Components add
// their routes before Start: the HTTP source (/api/v1/ingest), /metrics, and later the query
// API and the dashboard. Built on cpp-httplib, served by a small thread pool.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "common/status.h"

namespace httplib {
class Server;
}

namespace mare {

class HttpServer {
 public:
  explicit HttpServer(int threads = 4, size_t max_body_bytes = 64 << 20);
  ~HttpServer();

  httplib::Server& routes() { return *server_; }

  // Binds "host:port" and serves from a background thread.
  Status Start(const std::string& listen);
  void Stop();
  int port() const { return port_; }

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace mare
