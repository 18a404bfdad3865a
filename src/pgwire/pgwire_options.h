// PgwireOptions: the PostgreSQL wire protocol server's settings ([pgwire] in mare.toml), with
// their defaults; the statements it runs keep the query API's limits (query::QueryLimits).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mare::pgwire {

struct PgwireOptions {
  // pgwire.enabled: serve the protocol in `mare run` (with the store).
  bool enabled = true;
  // pgwire.listen: host:port. Loopback by default: the protocol carries a password in clear
  // text (there is no TLS), so reaching it from elsewhere is a deliberate choice.
  std::string listen = "127.0.0.1:8812";
  // pgwire.auth: "trust" (any user, no password) or "password" (the cleartext password
  // exchange, checked against pgwire.password).
  std::string auth = "trust";
  // pgwire.password: what auth = "password" expects, from any user name.
  std::string password;
  // pgwire.max_connections: clients at once, each a thread; one more is refused with SQLSTATE
  // 53300 as PostgreSQL does. Statements at once are query.max_concurrent's.
  int max_connections = 64;
  // pgwire.max_message_bytes: the largest message a client may send (a Parse or Bind with its
  // statement and parameters); a larger claimed length ends the connection with 08P01 before
  // anything of it is read or allocated. 16 MiB: query.max_statement_bytes (1 MiB) with room for
  // parameters.
  size_t max_message_bytes = 16 << 20;
  // pgwire.message_timeout: once a message's first byte is in, the rest must arrive within this
  // (a client that stalls mid-message holds its thread no longer). An idle connection between
  // messages waits as long as the client likes, as PostgreSQL's do.
  int64_t message_timeout_us = 30'000'000;
};

}  // namespace mare::pgwire
