#include "server/http_server.h"

#include <httplib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "server/body_budget.h"
#include "server/connection.h"
#include "server/connection_threads.h"

namespace mare {

namespace {

HttpServerOptions Sanitized(HttpServerOptions o) {
  o.threads = std::max(0, o.threads);
  o.max_connections = std::max(1, o.max_connections);
  o.keep_alive_max_requests = std::max(1, o.keep_alive_max_requests);
  // A body that may be received must fit in the budget on its own.
  o.max_in_flight_body_bytes = std::max(o.max_in_flight_body_bytes, o.max_body_bytes);
  return o;
}

}  // namespace

struct HttpServer::State {
  State(const HttpServerOptions& options, metrics::Registry* registry)
      : own_registry(registry ? nullptr : std::make_unique<metrics::Registry>()),
        metrics(registry ? registry : own_registry.get()),
        budget(options.max_in_flight_body_bytes),
        stop_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~State() {
    if (stop_fd >= 0) ::close(stop_fd);
  }
  std::unique_ptr<metrics::Registry> own_registry;
  ConnectionMetrics metrics;
  BodyBudget budget;
  int stop_fd;  // readable once the server stops: wakes every connection's wait
};

// cpp-httplib's server with each accepted connection served by a Connection.
class HttpServer::Server final : public httplib::Server {
 public:
  Server(const HttpServerOptions& options, State* state) : options_(options), state_(state) {}

  void Listen(int backlog) {
    ::listen(svr_sock_, backlog);  // again, with a real backlog: cpp-httplib's is 5
  }

 private:
  // Called by cpp-httplib's accept loop through the task queue, on the connection's thread.
  bool process_and_close_socket(socket_t sock) override {
    if (ConnectionThreads::Refusing()) {
      Connection::Refuse(sock, &state_->metrics);
      return false;
    }
    Connection connection(sock, state_->stop_fd, options_, &state_->budget, &state_->metrics);
    connection.Serve([this](httplib::Stream& stream, bool close_connection, bool& connection_closed,
                            const std::function<void(httplib::Request&)>& setup) {
      return process_request(stream, close_connection, connection_closed, setup);
    });
    return true;
  }

  const HttpServerOptions& options_;
  State* state_;
};

HttpServer::HttpServer(const HttpServerOptions& options, metrics::Registry* registry)
    : options_(Sanitized(options)), state_(std::make_unique<State>(options_, registry)), server_(std::make_unique<Server>(options_, state_.get())) {
  server_->set_payload_max_length(options_.max_body_bytes);
  server_->set_keep_alive_max_count(static_cast<size_t>(options_.keep_alive_max_requests));
  // Only for the Keep-Alive header it sends: Connection enforces the idle timeout.
  server_->set_keep_alive_timeout(static_cast<time_t>(std::max<int64_t>(1, options_.idle_timeout_us / 1'000'000)));
  server_->set_tcp_nodelay(true);  // small answers must not wait for Nagle + delayed ACK (~40 ms)
  // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, which lets a second mare bind
  // the same port silently and take half of the requests.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
}

HttpServer::HttpServer(int threads, size_t max_body_bytes)
    : HttpServer(HttpServerOptions{.threads = threads, .max_body_bytes = max_body_bytes}) {}

HttpServer::~HttpServer() { Stop(); }

httplib::Server& HttpServer::routes() { return *server_; }

Status HttpServer::Start(const std::string& listen) {
  if (state_->stop_fd < 0) return Status::IOError("http: eventfd failed");
  // Installed here, last: a component may have set the task queue before (the dashboard did,
  // to have threads for its live streams; every connection has its own thread now).
  size_t max_connections = static_cast<size_t>(options_.max_connections);
  size_t keep_idle = static_cast<size_t>(options_.threads);
  server_->new_task_queue = [max_connections, keep_idle] { return new ConnectionThreads(max_connections, keep_idle); };
  server_->set_expect_100_continue_handler([](const httplib::Request&, httplib::Response& res) {
    Connection* c = Connection::Current();
    return c ? c->OnExpectContinue(res) : 100;
  });
  server_->set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    Connection* c = Connection::Current();
    return c && c->OnError(res) ? httplib::Server::HandlerResponse::Handled : httplib::Server::HandlerResponse::Unhandled;
  }));
  server_->set_post_routing_handler([](const httplib::Request&, httplib::Response& res) {
    if (Connection* c = Connection::Current()) c->OnAnswer(res);
  });

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
  server_->Listen(options_.listen_backlog);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return Status::OK();
}

void HttpServer::Stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!::write(state_->stop_fd, &one, sizeof(one));
    server_->stop();
    thread_.join();
  }
}

}  // namespace mare
