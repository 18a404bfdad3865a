// PgwireServer: mare's PostgreSQL wire protocol (v3) server on its own port ([pgwire] listen),
// so that psql, psycopg, SQLAlchemy/pandas and JDBC run mare's SQL over the readings: one
// thread per connection up to pgwire.max_connections, statements under the query API's limits
// (query.timeout, query.max_memory, query.max_concurrent), answers streamed a batch at a time.
// docs/formats/pgwire.md describes what of the protocol it speaks.
//
//   auto server = PgwireServer::Start(options, limits, store, &registry);
//   ...
//   (*server)->Stop();
#pragma once

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include "common/metrics.h"
#include "common/status.h"
#include "pgwire/cancel_registry.h"
#include "pgwire/connection.h"
#include "pgwire/pgwire_options.h"
#include "query/limits.h"
#include "query/query_gate.h"
#include "server/tls_reloader.h"
#include "store/store.h"

namespace mare::pgwire {

class PgwireServer {
 public:
  // Listens on options.listen and serves until Stop. The store outlives the server.
  static Result<std::unique_ptr<PgwireServer>> Start(const PgwireOptions& options, const query::QueryLimits& limits,
                                                     store::Store* store, metrics::Registry* registry);
  ~PgwireServer();
  PgwireServer(const PgwireServer&) = delete;
  PgwireServer& operator=(const PgwireServer&) = delete;

  // The port it listens on (the one chosen when listen said port 0).
  int port() const { return port_; }
  // Closes the listener, ends every connection (their statements are cancelled) and waits.
  void Stop();
  // Reads pgwire.tls_cert, tls_key and tls_client_ca again now (SIGHUP): true when new
  // connections get a new context. Changes are also seen every pgwire.tls_reload_interval.
  bool ReloadTls() { return tls_ && tls_->Reload(); }

 private:
  PgwireServer(const PgwireOptions& options, const query::QueryLimits& limits, store::Store* store,
               metrics::Registry* registry);
  void AcceptLoop();
  void Reap(bool all);

  struct Worker {
    std::thread thread;
    std::atomic<bool> finished{false};
  };

  std::unique_ptr<TlsReloader> tls_;
  LogThrottle refused_handshakes_log_;
  ServerContext ctx_;
  query::QueryGate gate_;
  CancelRegistry cancels_;
  std::atomic<int> open_{0};
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  int port_ = 0;
  std::thread acceptor_;
  std::mutex workers_mu_;
  std::list<Worker> workers_;
  bool stopped_ = false;
};

}  // namespace mare::pgwire
