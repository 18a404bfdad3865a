#include "server/http_server.h"

#include <fmt/format.h>
#include <httplib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/json_writer.h"
#include "common/time.h"
#include "server/access.h"
#include "server/body_budget.h"
#include "server/connection.h"
#include "server/connection_threads.h"
#include "server/http_metrics.h"
#include "server/idempotency.h"
#include "server/tls.h"
#include "server/tls_reloader.h"

namespace mare {

void AnswerError(httplib::Response& res, int status, const std::string& message) {
  std::string body = "{\"error\":";
  AppendJsonString(&body, message);
  body += "}\n";
  res.status = status;
  res.set_content(body, "application/json");
}

namespace {

HttpServerOptions Sanitized(HttpServerOptions o) {
  o.threads = std::max(0, o.threads);
  o.max_connections = std::max(1, o.max_connections);
  o.keep_alive_max_requests = std::max(1, o.keep_alive_max_requests);
  // A body that may be received must fit in the budget on its own.
  o.max_in_flight_body_bytes = std::max(o.max_in_flight_body_bytes, o.max_body_bytes);
  return o;
}

// The ingest request on this thread that claimed an Idempotency-Key, until its answer.
thread_local std::string pending_key;

}  // namespace

struct HttpServer::State {
  State(const HttpServerOptions& options, metrics::Registry* registry)
      : own_registry(registry ? nullptr : std::make_unique<metrics::Registry>()),
        registry(registry),
        metrics(registry ? registry : own_registry.get()),
        budget(options.max_in_flight_body_bytes),
        stop_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
        idempotency(options.idempotency_horizon_us, static_cast<size_t>(std::max<int64_t>(0, options.idempotency_max_keys))),
        replays(this->metrics_registry().GetCounter(http_metrics::kIdempotentReplays)) {
    for (const char* reason : {"unauthenticated", "forbidden", "origin", "host", "content_type"}) {
      metrics_registry().GetCounter(http_metrics::kRequestsRefused, {{"reason", reason}});
    }
    // Registered with or without TLS (the gauge 0: no certificate), as every mare_http_* name.
    for (const char* result : {"ok", "failed"}) metrics_registry().GetCounter(http_metrics::kTlsReloads, {{"result", result}});
    metrics_registry().GetGauge(http_metrics::kTlsCertificateNotAfter);
  }
  ~State() {
    if (stop_fd >= 0) ::close(stop_fd);
  }
  metrics::Registry& metrics_registry() { return own_registry ? *own_registry : *registry; }

  // The access checks of one request (Access::Check); false when `res` holds the refusal.
  bool CheckAccess(const httplib::Request& req, httplib::Response& res, const Access::Token** token) {
    const char* token_param = AccessFor(req.method, req.path).token_param;
    Access::Decision d = access.Check(req.method, req.path, req.get_header_value("Host"), req.get_header_value("Origin"),
                                      req.get_header_value("Authorization"),
                                      token_param ? req.get_param_value(token_param) : std::string(),
                                      req.get_header_value("Content-Type"));
    if (token) *token = d.token;
    if (d.status == 0) return true;
    const char* reason = d.status == 401   ? "unauthenticated"
                         : d.status == 421 ? "host"
                         : d.status == 415 ? "content_type"
                         : d.www_authenticate.empty() ? "origin"
                                                      : "forbidden";
    metrics_registry().GetCounter(http_metrics::kRequestsRefused, {{"reason", reason}}).Add();
    if (!d.www_authenticate.empty()) res.set_header("WWW-Authenticate", d.www_authenticate);
    AnswerError(res, d.status, d.reason);
    return false;
  }

  // Access, then an ingest request's Idempotency-Key: false when `res` holds the answer (a
  // refusal, or the first answer replayed).
  bool Admit(const httplib::Request& req, httplib::Response& res) {
    pending_key.clear();
    const Access::Token* token = nullptr;
    if (!CheckAccess(req, res, &token)) return false;
    std::string key = req.get_header_value("Idempotency-Key");
    if (key.empty() || !idempotency.enabled() || !AccessFor(req.method, req.path).ingest) return true;
    if (key.size() > IdempotencyCache::kMaxKeyBytes) {
      AnswerError(res, 400, fmt::format("Idempotency-Key is longer than {} bytes", IdempotencyCache::kMaxKeyBytes));
      return false;
    }
    std::string full = (token ? token->name : std::string()) + '\n' + req.path + '\n' + key;
    IdempotencyCache::Answer first;
    switch (idempotency.Begin(full, req.get_header_value("Content-Length"), MonotonicMicros(), &first)) {
      case IdempotencyCache::Claim::kReplay:
        replays.Add();
        res.status = first.status;
        res.set_content(first.body, first.content_type);
        res.set_header("Idempotent-Replayed", "true");
        return false;
      case IdempotencyCache::Claim::kBusy:
        res.set_header("Retry-After", "1");
        AnswerError(res, 409, "a request with this Idempotency-Key is still being handled: send it again once it is answered");
        return false;
      case IdempotencyCache::Claim::kMismatch:
        AnswerError(res, 422, "this Idempotency-Key was used for another body (of another length) within http.idempotency_horizon: "
                         "use a new key for a new batch");
        return false;
      case IdempotencyCache::Claim::kNew:
        break;
    }
    pending_key = full;
    // Released however the request ends, unless its success was recorded first.
    if (Connection* c = Connection::Current()) {
      c->AtRequestEnd([this, full] {
        idempotency.Release(full);
        pending_key.clear();
      });
    }
    return true;
  }

  // Every answer: a claimed key is recorded with a success (its batch is in the log), else freed.
  void Answered(const httplib::Response& res) {
    if (pending_key.empty()) return;
    std::string key = std::move(pending_key);
    pending_key.clear();
    if (res.status >= 200 && res.status < 300) {
      idempotency.Finish(key, {res.status, res.body, res.get_header_value("Content-Type")}, MonotonicMicros());
    } else {
      idempotency.Release(key);
    }
  }

  std::unique_ptr<metrics::Registry> own_registry;
  metrics::Registry* registry;
  ConnectionMetrics metrics;
  BodyBudget budget;
  int stop_fd;  // readable once the server stops: wakes every connection's wait
  Access access;
  IdempotencyCache idempotency;
  metrics::Counter& replays;
  std::unique_ptr<TlsReloader> tls;  // http.tls_cert, tls_key and tls_client_ca, when set
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
      Connection::Refuse(sock, &state_->metrics, state_->tls != nullptr);
      return false;
    }
    // The certificate current at the accept serves this connection to its end, whatever
    // reloads come meanwhile.
    std::shared_ptr<const TlsContext> tls = state_->tls ? state_->tls->Current() : nullptr;
    Connection connection(sock, state_->stop_fd, options_, &state_->budget, &state_->metrics, tls.get());
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
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return Status::InvalidArgument("http listen address '" + listen + "' must be host:port");
  auto access = Access::Make(options_.tokens, options_.allowed_hosts, listen.substr(0, colon));
  if (!access.ok()) return access.status();
  state_->access = std::move(*access);
  TlsFiles files{.cert = options_.tls_cert, .key = options_.tls_key, .client_ca = options_.tls_client_ca,
                 .reload_interval_us = options_.tls_reload_interval_us};
  if (files.enabled()) {
    auto tls = TlsReloader::Start("http", files, &state_->metrics_registry(),
                                  {.reloads = http_metrics::kTlsReloads, .not_after = http_metrics::kTlsCertificateNotAfter});
    if (!tls.ok()) return tls.status();
    state_->tls = std::move(*tls);
  }
  State* state = state_.get();
  // Before any handler, and before a body is read: the one place every route is checked.
  server_->set_pre_routing_handler([state](const httplib::Request& req, httplib::Response& res) {
    return state->Admit(req, res) ? httplib::Server::HandlerResponse::Unhandled : httplib::Server::HandlerResponse::Handled;
  });
  server_->set_expect_100_continue_handler([state](const httplib::Request& req, httplib::Response& res) {
    if (!state->CheckAccess(req, res, nullptr)) return res.status;  // refused before the body is sent
    Connection* c = Connection::Current();
    return c ? c->OnExpectContinue(res) : 100;
  });
  server_->set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    Connection* c = Connection::Current();
    return c && c->OnError(res) ? httplib::Server::HandlerResponse::Handled : httplib::Server::HandlerResponse::Unhandled;
  }));
  server_->set_post_routing_handler([state](const httplib::Request&, httplib::Response& res) {
    state->Answered(res);
    if (Connection* c = Connection::Current()) c->OnAnswer(res);
  });
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
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    listen_returned_ = true;
  });
  return Status::OK();
}

bool HttpServer::ReloadTls() { return state_->tls && state_->tls->Reload(); }

void HttpServer::Stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!::write(state_->stop_fd, &one, sizeof(one));
    // cpp-httplib's stop() does nothing until its loop has begun: a Stop() right after Start()
    // (mare run giving up because a later component failed to start) would otherwise join a
    // thread that listens forever.
    while (!server_->is_running() && !listen_returned_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    server_->stop();
    thread_.join();
  }
}

}  // namespace mare
