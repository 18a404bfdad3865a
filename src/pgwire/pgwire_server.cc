#include "pgwire/pgwire_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>

#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "pgwire/pgwire_metrics.h"
#include "pgwire/scram.h"

namespace mare::pgwire {

PgwireServer::PgwireServer(const PgwireOptions& options, const query::QueryLimits& limits, store::Store* store,
                           metrics::Registry* registry)
    : gate_(limits.max_concurrent) {
  ctx_.options = options;
  ctx_.limits = limits;
  ctx_.store = store;
  ctx_.gate = &gate_;
  ctx_.cancels = &cancels_;
  ctx_.open = &open_;
  ctx_.connections = &registry->GetGauge(pgwire_metrics::kOpenConnections);
  ctx_.queries = &registry->GetCounter(pgwire_metrics::kQueries);
  ctx_.errors = &registry->GetCounter(pgwire_metrics::kErrors);
  ctx_.refused_tls_required = &registry->GetCounter(pgwire_metrics::kConnectionsRefused, {{"reason", "tls_required"}});
  ctx_.refused_tls_handshake = &registry->GetCounter(pgwire_metrics::kConnectionsRefused, {{"reason", "tls_handshake"}});
  ctx_.refused_max_connections = &registry->GetCounter(pgwire_metrics::kConnectionsRefused, {{"reason", "max_connections"}});
  ctx_.refused_handshakes_log = &refused_handshakes_log_;
  // Registered with or without TLS (the gauge 0: no certificate).
  for (const char* result : {"ok", "failed"}) registry->GetCounter(pgwire_metrics::kTlsReloads, {{"result", result}});
  registry->GetGauge(pgwire_metrics::kTlsCertificateNotAfter);
}

Result<std::unique_ptr<PgwireServer>> PgwireServer::Start(const PgwireOptions& options, const query::QueryLimits& limits,
                                                          store::Store* store, metrics::Registry* registry) {
  if (options.auth != "trust" && options.auth != "password") {
    return Status::InvalidArgument(fmt::format("pgwire.auth is \"{}\": use \"trust\" or \"password\"", options.auth));
  }
  const bool cleartext = options.password_method == "cleartext";
  if (options.password_method != "scram-sha-256" && options.password_method != "md5" && !cleartext) {
    return Status::InvalidArgument(fmt::format(
        "pgwire.password_method is \"{}\": use \"scram-sha-256\", \"md5\" or \"cleartext\"", options.password_method));
  }
  if (options.auth == "password" && options.password.empty() && (!cleartext || options.token_digests.empty())) {
    return Status::InvalidArgument(
        cleartext ? "pgwire.auth = \"password\" needs pgwire.password or http.tokens with the query scope"
                  : fmt::format("pgwire.auth = \"password\" with password_method = \"{}\" needs pgwire.password (API "
                                "tokens are taken as passwords only with password_method = \"cleartext\")",
                                options.password_method));
  }
  if (options.auth == "trust" && !options.password.empty()) {
    // A password that nothing asks for is a server believed closed that is open.
    return Status::InvalidArgument("pgwire.password is set but pgwire.auth is \"trust\": set pgwire.auth = \"password\"");
  }
  std::optional<ScramSecret> scram;
  if (options.auth == "password" && options.password_method == "scram-sha-256") {
    // Derived once, as PostgreSQL stores a verifier: each login then costs two HMACs.
    auto secret = NewScramSecret(options.password);
    if (!secret.ok()) return Status::Unavailable("pgwire: " + secret.status().message());
    scram = std::move(*secret);
  }
  TlsFiles files{.cert = options.tls_cert, .key = options.tls_key, .client_ca = options.tls_client_ca,
                 .reload_interval_us = options.tls_reload_interval_us};
  bool has_tls = files.enabled();
  if (options.tls_required && !has_tls) {
    return Status::InvalidArgument("pgwire.tls_required is set but there is no certificate: set pgwire.tls_cert and pgwire.tls_key");
  }
  if (options.auth == "password" && cleartext && !has_tls) {
    spdlog::warn("pgwire: password_method = \"cleartext\" without TLS: passwords cross the network as they are typed; set "
                 "pgwire.tls_cert and pgwire.tls_key, or use \"scram-sha-256\"");
  }
  if (options.auth == "password" && !cleartext && !options.token_digests.empty()) {
    spdlog::warn("pgwire: API tokens are not taken as passwords with password_method = \"{}\" (only with \"cleartext\")",
                 options.password_method);
  }
  size_t colon = options.listen.rfind(':');
  if (colon == std::string::npos) {
    return Status::InvalidArgument(fmt::format("pgwire.listen \"{}\" is not host:port", options.listen));
  }
  std::string host = options.listen.substr(0, colon), service = options.listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* list = nullptr;
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &list);
  if (rc != 0) return Status::InvalidArgument(fmt::format("pgwire.listen \"{}\": {}", options.listen, gai_strerror(rc)));
  std::unique_ptr<TlsReloader> tls;
  if (has_tls) {
    auto started = TlsReloader::Start("pgwire", files, registry,
                                      {.reloads = pgwire_metrics::kTlsReloads, .not_after = pgwire_metrics::kTlsCertificateNotAfter});
    if (!started.ok()) {
      ::freeaddrinfo(list);
      return started.status();
    }
    tls = std::move(*started);
  }
  std::unique_ptr<PgwireServer> server(new PgwireServer(options, limits, store, registry));
  server->tls_ = std::move(tls);
  server->ctx_.tls = server->tls_.get();
  server->ctx_.scram = std::move(scram);
  int fd = ::socket(list->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  Status s;
  if (fd < 0) {
    s = Status::FromErrno("pgwire: socket", errno);
  } else if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 || ::bind(fd, list->ai_addr, list->ai_addrlen) != 0 ||
             ::listen(fd, 128) != 0) {
    s = Status::FromErrno(fmt::format("pgwire: listen on {}", options.listen), errno);
  }
  ::freeaddrinfo(list);
  if (!s.ok()) {
    if (fd >= 0) ::close(fd);
    return s;
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  server->port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                    : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  server->listen_fd_ = fd;
  if (::pipe2(server->stop_pipe_, O_CLOEXEC) != 0) return Status::FromErrno("pgwire: pipe", errno);
  server->ctx_.stop_fd = server->stop_pipe_[0];
  server->acceptor_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

PgwireServer::~PgwireServer() {
  Stop();
  for (int fd : stop_pipe_) {
    if (fd >= 0) ::close(fd);
  }
}

void PgwireServer::Reap(bool all) {
  std::lock_guard lock(workers_mu_);
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (all || it->finished.load()) {
      it->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

void PgwireServer::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    int n = ::poll(fds, 2, 1000);
    if (n < 0 && errno != EINTR) return;
    if (fds[1].revents & POLLIN) return;
    Reap(false);
    if (n <= 0 || !(fds[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::lock_guard lock(workers_mu_);
    // Threads past max_connections only live to send the refusal; beyond a margin the
    // connection is closed at once, so a flood cannot take threads without end.
    if (workers_.size() >= static_cast<size_t>(ctx_.options.max_connections) + 16) {
      ::close(fd);
      continue;
    }
    Worker& w = workers_.emplace_back();
    w.thread = std::thread([this, fd, &w] {
      // A bug that throws on a client's statement ends that connection, never the process
      // (an exception leaving a thread is std::terminate).
      try {
        PgConnection connection(fd, ctx_);
        connection.Serve();
      } catch (const std::exception& e) {
        spdlog::error("pgwire: a connection ended on an internal error: {}", e.what());
      }
      w.finished.store(true);
    });
  }
}

void PgwireServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (stop_pipe_[1] >= 0) {
    char b = 1;
    (void)!::write(stop_pipe_[1], &b, 1);
  }
  if (acceptor_.joinable()) acceptor_.join();
  Reap(true);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

}  // namespace mare::pgwire
