// PgConnection: one client of the PostgreSQL wire protocol server, served on its own thread:
// the startup (SSLRequest answered 'N', trust or cleartext password), then simple Query and
// the extended protocol (Parse, Bind, Describe, Execute with row limits, Sync, Close, Flush)
// until Terminate or the client goes. Statements are mare's SQL run by the executor through a
// Cursor, or the session statements drivers send (session_statements.h). docs/formats/pgwire.md.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "pgwire/cancel_registry.h"
#include "pgwire/cursor.h"
#include "pgwire/pg_error.h"
#include "pgwire/pgwire_options.h"
#include "pgwire/session_statements.h"
#include "pgwire/statement_text.h"
#include "query/limits.h"
#include "query/query_gate.h"
#include "store/store.h"

namespace mare::pgwire {

// What every connection of one server shares.
struct ServerContext {
  PgwireOptions options;
  query::QueryLimits limits;
  store::Store* store = nullptr;
  query::QueryGate* gate = nullptr;
  CancelRegistry* cancels = nullptr;
  std::atomic<int>* open = nullptr;  // connections past their startup
  int stop_fd = -1;                  // readable once the server stops
  metrics::Gauge* connections = nullptr;
  metrics::Counter* queries = nullptr;
  metrics::Counter* errors = nullptr;
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
  bool Authenticate(const std::string& user);
  void SendError(const PgError& e, const char* severity = "ERROR");
  void SendReady();

  // The protocol's messages; false ends the connection.
  bool OnQuery(std::string_view body);
  bool OnParse(std::string_view body);
  bool OnBind(std::string_view body);
  bool OnDescribe(std::string_view body);
  bool OnExecute(std::string_view body);
  bool OnClose(std::string_view body);

  // Starts a portal's statement: a session answer or a cursor. False with *error on failure.
  bool Start(Portal* p, PgError* error);
  void Describe(const Portal& p, bool with_formats);
  // Sends up to max_rows rows (0: all); *suspended when rows remain. False: the client is gone.
  bool SendRows(Portal* p, size_t max_rows, bool* suspended, PgError* error, bool* failed);
  void Complete(const Portal& p);
  PgError ErrorOf(const query::SqlError& e, const Portal& p, bool cancelled);
  void NoteTransaction(const Portal& p);
  void CancelRunning();

  const int fd_;
  const ServerContext& ctx_;
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
