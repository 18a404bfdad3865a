#include "server/http_server.h"

#include <httplib.h>

namespace mare {

HttpServer::HttpServer(int threads, size_t max_body_bytes) : server_(std::make_unique<httplib::Server>()) {
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server_->set_payload_max_length(max_body_bytes);
  server_->set_keep_alive_max_count(1000);
  server_->set_tcp_nodelay(true);  // small answers must not wait for Nagle + delayed ACK (~40 ms)
  // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, which lets a second mare bind
  // the same port silently and take half of the requests.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start(const std::string& listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return Status::InvalidArgument("http listen address '" + listen + "' must be host:port");
  std::string host = listen.substr(0, colon);
  int port = std::atoi(listen.c_str() + colon + 1);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (port == 0) {
    port_ = server_->bind_to_any_port(host);
    if (port_ < 0) return Status::IOError("http: cannot bind " + listen);
  } else {
    if (!server_->bind_to_port(host, port)) return Status::IOError("http: cannot bind " + listen + " (address in use?)");
    port_ = port;
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return Status::OK();
}

void HttpServer::Stop() {
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

}  // namespace mare
