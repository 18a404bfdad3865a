// PgwireOptions: the PostgreSQL wire protocol server's settings ([pgwire] in mare.toml), with
// their defaults; the statements it runs keep the query API's limits (query::QueryLimits).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "server/tls_reloader.h"

namespace mare::pgwire {

struct PgwireOptions {
  // pgwire.enabled: serve the protocol in `mare run` (with the store).
  bool enabled = true;
  // pgwire.listen: host:port. Loopback by default: without TLS the queries and answers (and a
  // cleartext password) cross in clear, so reaching it from elsewhere is a deliberate choice.
  std::string listen = "127.0.0.1:8812";
  // pgwire.auth: "trust" (any user, no password) or "password" (checked against
  // pgwire.password by pgwire.password_method).
  std::string auth = "trust";
  // pgwire.password: what auth = "password" expects, from any user name.
  std::string password;
  // pgwire.password_method: how the password is exchanged with auth = "password":
  // "scram-sha-256" (PostgreSQL's default since 14: the password never crosses the wire and the
  // server proves it knows it too), "md5" (older clients; a replayable hash, weaker), or
  // "cleartext" (the password itself: only under TLS; the one that also takes API tokens, since
  // mare keeps only their SHA-256, from which no SCRAM or MD5 answer can be checked).
  std::string password_method = "scram-sha-256";
  // Not a key: the SHA-256 of each API token with the query (or admin) scope, which `mare run`
  // fills from http.tokens. With auth = "password" and password_method = "cleartext", each such
  // token is also a password.
  std::vector<std::array<uint8_t, 32>> token_digests;
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
  // pgwire.tls_cert, pgwire.tls_key: a PEM certificate chain and its unencrypted PEM key. Both
  // set: an SSLRequest is answered 'S' and the session is encrypted (sslmode=require); the
  // handshake must be done within message_timeout. Empty: 'N', the client goes on in clear.
  std::string tls_cert;
  std::string tls_key;
  // pgwire.tls_client_ca, pgwire.tls_reload_interval: as http's, TlsFiles (server/tls_reloader.h)
  // says what they do. With a client CA, a client connecting with TLS must present a certificate
  // it signed (libpq's sslcert and sslkey).
  std::string tls_client_ca;
  int64_t tls_reload_interval_us = TlsFiles{}.reload_interval_us;
  // pgwire.tls_required: a client that starts without an SSLRequest (sslmode=disable, or allow
  // on its first try) is refused with SQLSTATE 28000 before any authentication, as PostgreSQL's
  // hostssl-only pg_hba.conf does. Needs tls_cert and tls_key. A CancelRequest is still taken in
  // clear (it carries no data, only the key the session was given).
  bool tls_required = false;
};

}  // namespace mare::pgwire
