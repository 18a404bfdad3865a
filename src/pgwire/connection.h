// PgConnection: one client of the PostgreSQL wire protocol server, served on its own thread:
// the startup (SSLRequest answered 'S' and TLS when pgwire.tls_cert is set, else 'N'; trust, or a
// password by SCRAM-SHA-256, MD5 or in clear), then simple Query and
// the extended protocol (Parse, Bind, Describe, Execute with row limits, Sync, Close, Flush)
// until Terminate or the client goes. Statements are mare's SQL run by the executor through a
// Cursor, or the session statements drivers send (session_statements.h). docs/formats/pgwire.md.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/log_throttle.h"
#include "common/metrics.h"
#include "pgwire/cancel_registry.h"
#include "pgwire/catalog.h"
#include "pgwire/cursor.h"
#include "pgwire/pg_error.h"
#include "pgwire/pgwire_options.h"
#include "pgwire/scram.h"
#include "pgwire/session_statements.h"
#include "pgwire/statement_text.h"
#include "query/limits.h"
#include "query/query_gate.h"
#include "server/tls.h"
#include "server/tls_reloader.h"
#include "store/store.h"

namespace mare::pgwire {

// The settings in a startup packet's `options` ("-c TimeZone=Europe/Paris --search_path=public"),
// read as PostgreSQL reads them; an option other than a setting is an error.
Status ParseStartupOptions(std::string_view options, std::vector<std::pair<std::string, std::string>>* out);

// What every connection of one server shares.
struct ServerContext {
  PgwireOptions options;
  query::QueryLimits limits;
  store::Store* store = nullptr;
  query::QueryGate* gate = nullptr;
  CancelRegistry* cancels = nullptr;
  std::atomic<int>* open = nullptr;  // connections past their startup
  int stop_fd = -1;                  // readable once the server stops
  TlsReloader* tls = nullptr;        // pgwire.tls_cert, tls_key and tls_client_ca, when set
  std::optional<ScramSecret> scram;  // pgwire.password's, with password_method = "scram-sha-256"
  metrics::Gauge* connections = nullptr;
  metrics::Counter* queries = nullptr;
  metrics::Counter* errors = nullptr;
  metrics::Counter* refused_tls_required = nullptr;
  metrics::Counter* refused_tls_handshake = nullptr;
  metrics::Counter* refused_max_connections = nullptr;
  LogThrottle* refused_handshakes_log = nullptr;  // one line a second at most, with the peer
};

class PgConnection {
 public:
  PgConnection(int fd, const ServerContext& context);
  ~PgConnection();  // closes the socket
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  void Serve();

 private:
  struct Prepared {
    std::string sql;
    std::vector<int32_t> param_oids;  // as Parse gave them, 0 where left open
    int params = 0;
  };
  struct Portal {
    std::string original;  // the statement's text as the client wrote it, for positions
    BoundText bound;
    std::vector<int16_t> formats;  // result formats as Bind gave them
    bool started = false, finished = false;
    bool session = false;
    SessionAnswer answer;
    std::unique_ptr<Cursor> cursor;
    query::QueryGate::Permit permit;
    Cursor::Batch batch;
    bool has_batch = false;
    size_t at = 0;  // next row of the batch (or of the answer)
    size_t sent = 0;
    // The columns as described.
    std::vector<std::string> names;
    std::vector<int32_t> oids;
  };

  // I/O. Reads wait for the client (without limit for a message's first byte when idle) and
  // for the server's stop; false when the connection is over.
  bool ReadExact(char* p, size_t n, bool idle);
  bool ReadMessage(char* type, std::string* body);
  bool Flush();
  bool FlushIfLarge();

  bool Startup();
  bool StartTls();  // the handshake after 'S'; false ends the connection
  bool Authenticate(const std::string& user);
  // The password exchanges of auth = "password"; false (after a FATAL) when refused or gone.
  bool CheckCleartext(const std::string& user);
  bool CheckMd5(const std::string& user);
  bool CheckScram(const std::string& user);
  // Reads the client's next message, which must be a PasswordMessage ('p'): its body.
  bool ReadPasswordMessage(std::string* body);
  bool RefusePassword(const std::string& user);
  void SendError(const PgError& e, const char* severity = "ERROR");
  // An error in the extended protocol: sent, and the messages up to the next Sync ignored.
  void FailUntilSync(const PgError& e);
  void SendReady();

  // The protocol's messages; false ends the connection.
  bool OnQuery(std::string_view body);
  bool OnParse(std::string_view body);
  bool OnBind(std::string_view body);
  bool OnDescribe(std::string_view body);
  bool OnExecute(std::string_view body);
  bool OnClose(std::string_view body);

  // The session and catalog statements answered by the server itself (session_statements.h,
  // catalog.h); kNotSession for mare's SQL.
  SessionOutcome AnswerHere(const std::string& sql, SessionSettings* settings, SessionAnswer* answer, PgError* error);
  std::vector<CatalogTable> CatalogTables();
  // Starts a portal's statement: a session answer or a cursor. False with *error on failure.
  bool Start(Portal* p, PgError* error);
  // The named portal; null, after FailUntilSync, when there is none.
  Portal* FindPortal(std::string_view name);
  // Start unless started; false, after FailUntilSync (the portal finished), when it failed.
  bool StartOrFail(Portal* p);
  void Describe(const Portal& p, bool with_formats);
  // Sends up to max_rows rows (0: all); *suspended when rows remain. False: the client is gone.
  bool SendRows(Portal* p, size_t max_rows, bool* suspended, PgError* error, bool* failed);
  void Complete(const Portal& p);
  PgError ErrorOf(const query::SqlError& e, const Portal& p, bool cancelled);
  void NoteTransaction(const Portal& p);
  void CancelRunning();

  const int fd_;
  const ServerContext& ctx_;
  std::unique_ptr<TlsSession> tls_;  // after an SSLRequest answered 'S'
  std::string out_;
  std::string user_;
  SessionSettings settings_;
  int32_t pid_ = 0;
  bool registered_ = false;
  bool counted_ = false;
  bool in_transaction_ = false, transaction_failed_ = false;
  bool skip_until_sync_ = false;  // after an error in the extended protocol
  std::map<std::string, Prepared> statements_;
  std::map<std::string, Portal> portals_;

  std::mutex running_mu_;
  Cursor* running_ = nullptr;
  std::atomic<bool> cancelled_{false};
};

}  // namespace mare::pgwire
