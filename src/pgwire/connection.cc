#include "pgwire/connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <array>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/time.h"
#include "pgwire/catalog.h"
#include "pgwire/message.h"
#include "server/access.h"
#include "server/socket_address.h"
#include "pgwire/pg_types.h"
#include "pgwire/scram.h"
#include "query/ast.h"

namespace mare::pgwire {
namespace {

// A client that takes no bytes of an answer for this long is gone.
constexpr int64_t kWriteStallUs = 300'000'000;
// Output is sent once this much is waiting (and at every ReadyForQuery and Flush).
constexpr size_t kFlushBytes = 256 << 10;
// Prepared statements and portals one connection may hold.
constexpr size_t kMaxNamed = 10'000;

// Waits for fd to be ready for `events`, or the server's stop; deadline_us 0: none.
// 1: ready, 0: timed out, -1: stopping or failed.
int WaitFor(int fd, short events, int stop_fd, int64_t deadline_us) {
  for (;;) {
    pollfd fds[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    int timeout = -1;
    if (deadline_us > 0) {
      int64_t left = deadline_us - MonotonicMicros();
      if (left <= 0) return 0;
      timeout = static_cast<int>(std::min<int64_t>(left / 1000 + 1, 60'000));
    }
    int n = ::poll(fds, stop_fd >= 0 ? 2 : 1, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (stop_fd >= 0 && (fds[1].revents & POLLIN)) return -1;
    if (fds[0].revents != 0) return 1;
  }
}

}  // namespace

Status ParseStartupOptions(std::string_view options, std::vector<std::pair<std::string, std::string>>* out) {
  // Split as PostgreSQL's pg_split_opts: blanks separate, a backslash takes the next byte as is.
  std::vector<std::string> args;
  std::string arg;
  bool in_arg = false;
  for (size_t i = 0; i < options.size(); ++i) {
    char c = options[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_arg) args.push_back(std::move(arg));
      arg.clear();
      in_arg = false;
      continue;
    }
    if (c == '\\' && i + 1 < options.size()) c = options[++i];
    arg.push_back(c);
    in_arg = true;
  }
  if (in_arg) args.push_back(std::move(arg));
  for (size_t k = 0; k < args.size(); ++k) {
    std::string setting;
    if (args[k] == "-c" && k + 1 < args.size()) {
      setting = args[++k];
    } else if (args[k].starts_with("-c") && args[k].size() > 2) {
      setting = args[k].substr(2);
    } else if (args[k].starts_with("--") && args[k].size() > 2) {
      setting = args[k].substr(2);
    } else {
      return Status::InvalidArgument(
          fmt::format("startup option \"{}\" is not supported: mare takes settings as -c name=value or --name=value", args[k]));
    }
    size_t eq = setting.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument(fmt::format("startup option -c {}: a setting is name=value", setting));
    }
    std::string name = setting.substr(0, eq);
    for (char& ch : name) ch = ch == '-' ? '_' : ch;  // --client-encoding=... as PostgreSQL reads it
    out->emplace_back(name, setting.substr(eq + 1));
  }
  return Status::OK();
}

PgConnection::PgConnection(int fd, const ServerContext& context) : fd_(fd), ctx_(context) {}

PgConnection::~PgConnection() {
  portals_.clear();  // cancels and joins their statements
  if (registered_) ctx_.cancels->Remove(pid_);
  if (counted_) {
    ctx_.open->fetch_sub(1);
    ctx_.connections->Add(-1);
  }
  if (tls_) tls_->Close();
  ::close(fd_);
}

bool PgConnection::ReadExact(char* p, size_t n, bool idle) {
  int64_t deadline = idle ? 0 : MonotonicMicros() + ctx_.options.message_timeout_us;
  size_t got = 0;
  while (tls_ && got < n) {
    size_t r = 0;
    TlsSession::Io io = tls_->Read(p + got, n - got, &r);
    if (io == TlsSession::Io::kDone) {
      got += r;
      continue;
    }
    if (io != TlsSession::Io::kWantRead && io != TlsSession::Io::kWantWrite) return false;
    short events = io == TlsSession::Io::kWantRead ? POLLIN : POLLOUT;
    if (WaitFor(fd_, events, ctx_.stop_fd, got == 0 && idle ? 0 : deadline) <= 0) return false;
  }
  while (got < n) {
    int ready = WaitFor(fd_, POLLIN, ctx_.stop_fd, got == 0 && idle ? 0 : deadline);
    if (ready <= 0) return false;
    ssize_t r = ::recv(fd_, p + got, n - got, 0);
    if (r == 0) return false;  // the client went, perhaps mid-message
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return false;
    }
    got += static_cast<size_t>(r);
  }
  return true;
}

bool PgConnection::ReadMessage(char* type, std::string* body) {
  char header[5];
  if (!ReadExact(header, 1, true)) return false;
  if (!ReadExact(header + 1, 4, false)) return false;
  *type = header[0];
  auto length = BodyLength(reinterpret_cast<const unsigned char*>(header + 1), ctx_.options.max_message_bytes);
  if (!length.ok()) {
    SendError({sqlstate::kProtocolViolation, length.status().message(), 0}, "FATAL");
    Flush();
    return false;
  }
  body->resize(*length);
  return *length == 0 || ReadExact(body->data(), *length, false);
}

bool PgConnection::Flush() {
  size_t sent = 0;
  int64_t deadline = MonotonicMicros() + kWriteStallUs;
  while (tls_ && sent < out_.size()) {
    size_t w = 0;
    TlsSession::Io io = tls_->Write(out_.data() + sent, out_.size() - sent, &w);
    if (io == TlsSession::Io::kDone) {
      sent += w;
      deadline = MonotonicMicros() + kWriteStallUs;
      continue;
    }
    if (io != TlsSession::Io::kWantRead && io != TlsSession::Io::kWantWrite) return false;
    short events = io == TlsSession::Io::kWantRead ? POLLIN : POLLOUT;
    if (WaitFor(fd_, events, ctx_.stop_fd, deadline) <= 0) return false;
  }
  while (sent < out_.size()) {
    ssize_t w = ::send(fd_, out_.data() + sent, out_.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      sent += static_cast<size_t>(w);
      deadline = MonotonicMicros() + kWriteStallUs;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (WaitFor(fd_, POLLOUT, ctx_.stop_fd, deadline) <= 0) return false;
      continue;
    }
    return false;
  }
  out_.clear();
  return true;
}

bool PgConnection::FlushIfLarge() { return out_.size() < kFlushBytes || Flush(); }

void PgConnection::SendError(const PgError& e, const char* severity) {
  WriteError(&out_, severity, e.sqlstate, e.message, e.position);
  ctx_.errors->Add();
  if (in_transaction_) transaction_failed_ = true;
}

void PgConnection::SendReady() {
  MessageWriter w(&out_);
  w.Begin('Z');
  w.Byte(!in_transaction_ ? 'I' : transaction_failed_ ? 'E' : 'T');
  w.End();
}

bool PgConnection::StartTls() {
  int64_t deadline = MonotonicMicros() + ctx_.options.message_timeout_us;
  // The certificate current now; the session's SSL keeps its own reference to the context, so
  // a reload meanwhile changes nothing for this connection.
  std::shared_ptr<const TlsContext> context = ctx_.tls->Current();
  tls_ = std::make_unique<TlsSession>(*context, fd_);
  for (;;) {
    TlsSession::Io io = tls_->Handshake();
    if (io == TlsSession::Io::kDone) return true;
    if ((io != TlsSession::Io::kWantRead && io != TlsSession::Io::kWantWrite) ||
        WaitFor(fd_, io == TlsSession::Io::kWantRead ? POLLIN : POLLOUT, ctx_.stop_fd, deadline) <= 0) {
      ctx_.refused_tls_handshake->Add();
      // A scanner can refuse thousands a second: the counter has them all, the log a sample.
      uint64_t held = 0;
      if (ctx_.refused_handshakes_log != nullptr && ctx_.refused_handshakes_log->Allow(&held)) {
        std::string why = io == TlsSession::Io::kWantRead || io == TlsSession::Io::kWantWrite
                              ? "not completed within pgwire.message_timeout"
                              : (tls_->error().empty() ? "closed by the client" : tls_->error());
        spdlog::warn("pgwire: TLS handshake from {} refused: {}{}", PeerAddress(fd_), why,
                     held > 0 ? fmt::format(" ({} more refused since the last such line)", held) : "");
      }
      return false;
    }
  }
}

bool PgConnection::Startup() {
  for (int attempt = 0; attempt < 3; ++attempt) {
    unsigned char length_field[4];
    if (!ReadExact(reinterpret_cast<char*>(length_field), 4, false)) return false;
    auto length = BodyLength(length_field, kMaxStartupBytes);
    if (!length.ok() || *length < 4) {
      SendError({sqlstate::kProtocolViolation, "invalid startup packet length", 0}, "FATAL");
      Flush();
      return false;
    }
    std::string body(*length, '\0');
    if (!ReadExact(body.data(), body.size(), false)) return false;
    MessageReader r(body);
    int32_t code = 0;
    r.Int32(&code);
    if (code == kSslRequest && ctx_.tls && !tls_) {
      out_ = "S";
      if (!Flush() || !StartTls()) return false;
      continue;
    }
    if (code == kSslRequest || code == kGssEncRequest) {
      out_ = "N";  // no TLS: the client goes on in the clear or gives up, as it is configured
      if (!Flush()) return false;
      continue;
    }
    if (code == kCancelRequest) {
      int32_t pid = 0, secret = 0;
      if (r.Int32(&pid) && r.Int32(&secret)) ctx_.cancels->Cancel(pid, secret);
      return false;  // no answer: the client closes
    }
    if ((code >> 16) != 3) {
      SendError({sqlstate::kFeatureNotSupported,
                 fmt::format("unsupported frontend protocol {}.{}: mare speaks 3.0", code >> 16, code & 0xFFFF), 0},
                "FATAL");
      Flush();
      return false;
    }
    if (ctx_.options.tls_required && !tls_) {
      // Before the user is read or a password asked for: nothing of a login crosses in clear.
      ctx_.refused_tls_required->Add();
      SendError({"28000", "TLS is required by this server (pgwire.tls_required): connect with sslmode=require (or "
                          "verify-ca, verify-full)", 0},
                "FATAL");
      Flush();
      return false;
    }
    std::vector<std::string> unknown_options;
    std::vector<std::pair<std::string, std::string>> params;
    for (;;) {
      std::string_view key, value;
      if (!r.CString(&key)) {
        SendError({sqlstate::kProtocolViolation, "invalid startup packet layout", 0}, "FATAL");
        Flush();
        return false;
      }
      if (key.empty()) break;
      if (!r.CString(&value)) {
        SendError({sqlstate::kProtocolViolation, "invalid startup packet layout: a parameter without its value", 0}, "FATAL");
        Flush();
        return false;
      }
      if (key.starts_with("_pq_.")) {
        unknown_options.emplace_back(key);
      } else {
        params.emplace_back(key, value);
      }
    }
    if ((code & 0xFFFF) != 0 || !unknown_options.empty()) {
      MessageWriter w(&out_);
      w.Begin('v');
      w.Int32(kProtocolV3);
      w.Int32(static_cast<int32_t>(unknown_options.size()));
      for (const auto& o : unknown_options) w.CString(o);
      w.End();
    }
    // libpq's options="-c TimeZone=Europe/Paris": the settings it carries, after the others.
    std::vector<std::pair<std::string, std::string>> from_options;
    for (const auto& [key, value] : params) {
      if (key != "options") continue;
      if (Status parsed = ParseStartupOptions(value, &from_options); !parsed.ok()) {
        SendError({sqlstate::kFeatureNotSupported, parsed.message(), 0}, "FATAL");
        Flush();
        return false;
      }
    }
    params.insert(params.end(), from_options.begin(), from_options.end());
    for (const auto& [key, value] : params) {
      if (key == "user") user_ = value;
      if (key == "database" || key == "options" || key == "replication") continue;
      PgError error;
      if (!settings_.Set(key, value, &error)) {
        SendError(error, "FATAL");
        Flush();
        return false;
      }
    }
    if (user_.empty()) {
      SendError({"28000", "no PostgreSQL user name specified in startup packet", 0}, "FATAL");
      Flush();
      return false;
    }
    PgError ignored;
    settings_.Set("user", user_, &ignored);
    settings_.Set("session_authorization", user_, &ignored);
    // Past max_connections: refused as PostgreSQL refuses, once the client listens for it.
    if (ctx_.open->fetch_add(1) >= ctx_.options.max_connections) {
      ctx_.open->fetch_sub(1);
      ctx_.refused_max_connections->Add();
      SendError({sqlstate::kTooManyConnections,
                 fmt::format("sorry, too many clients already: pgwire.max_connections ({}) are connected",
                             ctx_.options.max_connections),
                 0},
                "FATAL");
      Flush();
      return false;
    }
    counted_ = true;
    ctx_.connections->Add(1);
    return Authenticate(user_);
  }
  return false;
}

// A protocol violation inside a message: reported, and the connection ends (the stream can no
// longer be trusted to be at a message boundary).
#define MARE_PGWIRE_MALFORMED(what)                                                         \
  do {                                                                                      \
    SendError({sqlstate::kProtocolViolation, "malformed " what " message", 0}, "FATAL");    \
    Flush();                                                                                \
    return false;                                                                           \
  } while (0)

bool PgConnection::ReadPasswordMessage(std::string* body) {
  char type;
  if (!ReadMessage(&type, body)) return false;
  if (type != 'p') {
    SendError({sqlstate::kProtocolViolation, fmt::format("expected a password response, got message type {}", type), 0}, "FATAL");
    Flush();
    return false;
  }
  return true;
}

bool PgConnection::RefusePassword(const std::string& user) {
  SendError({sqlstate::kInvalidPassword, fmt::format("password authentication failed for user \"{}\"", user), 0}, "FATAL");
  Flush();
  return false;
}

bool PgConnection::CheckCleartext(const std::string& user) {
  MessageWriter w(&out_);
  w.Begin('R');
  w.Int32(3);  // AuthenticationCleartextPassword
  w.End();
  std::string body;
  if (!Flush() || !ReadPasswordMessage(&body)) return false;
  std::string_view password;
  MessageReader r(body);
  if (!r.CString(&password)) MARE_PGWIRE_MALFORMED("password");
  const std::string& want = ctx_.options.password;
  bool ok = !want.empty() && SameBytes(password, want);
  // An API token with the query scope is a password too; digests compared in full as well.
  const Sha256Digest digest = Sha256(password);
  for (const auto& token : ctx_.options.token_digests) {
    ok |= SameBytes({reinterpret_cast<const char*>(token.data()), token.size()},
                    {reinterpret_cast<const char*>(digest.data()), digest.size()});
  }
  return ok || RefusePassword(user);
}

bool PgConnection::CheckMd5(const std::string& user) {
  std::array<uint8_t, 4> salt{};
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) {
    SendError({sqlstate::kInternalError, "no random bytes for the MD5 salt", 0}, "FATAL");
    Flush();
    return false;
  }
  MessageWriter w(&out_);
  w.Begin('R');
  w.Int32(5);  // AuthenticationMD5Password
  w.Bytes({reinterpret_cast<const char*>(salt.data()), salt.size()});
  w.End();
  std::string body;
  if (!Flush() || !ReadPasswordMessage(&body)) return false;
  std::string_view answer;
  MessageReader r(body);
  if (!r.CString(&answer)) MARE_PGWIRE_MALFORMED("password");
  return SameBytes(answer, Md5PasswordResponse(ctx_.options.password, user, salt)) || RefusePassword(user);
}

bool PgConnection::CheckScram(const std::string& user) {
  MessageWriter w(&out_);
  w.Begin('R');
  w.Int32(10);  // AuthenticationSASL: the mechanisms, then an empty name
  w.CString("SCRAM-SHA-256");
  w.CString("");
  w.End();
  std::string body;
  if (!Flush() || !ReadPasswordMessage(&body)) return false;
  // SASLInitialResponse: the mechanism chosen, then the client-first-message with its length.
  MessageReader r(body);
  std::string_view mechanism, client_first;
  int32_t length = 0;
  if (!r.CString(&mechanism) || !r.Int32(&length) || length < 0 || !r.Bytes(static_cast<size_t>(length), &client_first)) {
    MARE_PGWIRE_MALFORMED("SASLInitialResponse");
  }
  auto fail = [&](const Status& s) {
    if (s.message() == "wrong password") return RefusePassword(user);
    SendError({sqlstate::kProtocolViolation, s.message(), 0}, "FATAL");
    Flush();
    return false;
  };
  if (mechanism != "SCRAM-SHA-256") {
    return fail(Status::InvalidArgument(fmt::format("SASL mechanism \"{}\" is not offered: SCRAM-SHA-256 is", mechanism)));
  }
  ScramExchange exchange(*ctx_.scram);
  auto server_first = exchange.ServerFirst(client_first);
  if (!server_first.ok()) return fail(server_first.status());
  w.Begin('R');
  w.Int32(11);  // AuthenticationSASLContinue
  w.Bytes(*server_first);
  w.End();
  if (!Flush() || !ReadPasswordMessage(&body)) return false;  // SASLResponse: the client-final-message
  auto server_final = exchange.ServerFinal(body);
  if (!server_final.ok()) return fail(server_final.status());
  w.Begin('R');
  w.Int32(12);  // AuthenticationSASLFinal: the server's signature, which the client checks
  w.Bytes(*server_final);
  w.End();
  return true;
}

bool PgConnection::Authenticate(const std::string& user) {
  if (ctx_.options.auth == "password") {
    const std::string& method = ctx_.options.password_method;
    bool ok = method == "cleartext" ? CheckCleartext(user) : method == "md5" ? CheckMd5(user) : CheckScram(user);
    if (!ok) return false;
  }
  MessageWriter w(&out_);
  w.Begin('R');
  w.Int32(0);  // AuthenticationOk
  w.End();
  for (const auto& [name, value] : settings_.Reported()) {
    w.Begin('S');
    w.CString(name);
    w.CString(value);
    w.End();
  }
  auto [pid, secret] = ctx_.cancels->Add([this] { CancelRunning(); });
  pid_ = pid;
  registered_ = true;
  w.Begin('K');
  w.Int32(pid);
  w.Int32(secret);
  w.End();
  SendReady();
  return Flush();
}

void PgConnection::CancelRunning() {
  std::lock_guard lock(running_mu_);
  if (running_ != nullptr) {
    cancelled_.store(true);
    running_->Cancel();
  }
}

void PgConnection::Serve() {
  if (!Startup()) return;
  for (;;) {
    char type;
    std::string body;
    if (!ReadMessage(&type, &body)) return;
    if (skip_until_sync_ && type != 'S' && type != 'X') continue;
    bool ok = true;
    switch (type) {
      case 'Q': ok = OnQuery(body); break;
      case 'P': ok = OnParse(body); break;
      case 'B': ok = OnBind(body); break;
      case 'D': ok = OnDescribe(body); break;
      case 'E': ok = OnExecute(body); break;
      case 'C': ok = OnClose(body); break;
      case 'H': ok = Flush(); break;
      case 'S': {
        skip_until_sync_ = false;
        // Outside a transaction block, Sync ends the implicit transaction and its portals.
        if (!in_transaction_) portals_.clear();
        SendReady();
        ok = Flush();
        break;
      }
      case 'X': return;
      case 'd':
      case 'c':
      case 'f': break;  // COPY data outside a COPY: ignored, as PostgreSQL does
      default:
        SendError({sqlstate::kProtocolViolation, fmt::format("invalid frontend message type {}", static_cast<int>(static_cast<unsigned char>(type))), 0},
                  "FATAL");
        Flush();
        return;
    }
    if (!ok) return;
  }
}


bool PgConnection::OnQuery(std::string_view body) {
  MessageReader r(body);
  std::string_view query;
  if (!r.CString(&query)) MARE_PGWIRE_MALFORMED("Query");
  std::vector<StatementPiece> pieces = SplitStatements(query);
  if (pieces.empty()) {
    MessageWriter w(&out_);
    w.Begin('I');
    w.End();
  }
  for (const StatementPiece& piece : pieces) {
    Portal p;
    // Positions are found within the piece, then shifted to the whole Query string.
    p.original = std::string(piece.text);
    p.bound.sql = std::string(piece.text);
    PgError error;
    bool failed = false;
    bool ok = true;
    if (Start(&p, &error)) {
      if (!p.session || p.answer.returns_rows) Describe(p, false);
      bool suspended = false;
      ok = SendRows(&p, 0, &suspended, &error, &failed);
      if (ok && !failed) Complete(p);
    } else {
      failed = true;
    }
    if (!ok) return false;
    if (failed) {
      if (error.position > 0) {
        // Start/SendRows gave the character within the piece: shift it to the whole string.
        size_t byte = piece.offset;
        int chars_before = CharacterPosition(query, byte) - 1;
        error.position += chars_before;
      }
      SendError(error);
      break;
    }
  }
  SendReady();
  return Flush();
}

bool PgConnection::OnParse(std::string_view body) {
  MessageReader r(body);
  std::string_view name, sql;
  int16_t n = 0;
  if (!r.CString(&name) || !r.CString(&sql) || !r.Int16(&n) || n < 0 || r.remaining() != static_cast<size_t>(n) * 4) {
    MARE_PGWIRE_MALFORMED("Parse");
  }
  Prepared prepared;
  prepared.sql = std::string(sql);
  for (int16_t k = 0; k < n; ++k) {
    int32_t o;
    r.Int32(&o);
    prepared.param_oids.push_back(o);
  }
  prepared.params = std::max<int>(CountParameters(sql), n);
  if (!name.empty() && statements_.count(std::string(name)) > 0) {
    FailUntilSync({"42P05", fmt::format("prepared statement \"{}\" already exists", name), 0});
    return true;
  }
  if (statements_.size() >= kMaxNamed) {
    FailUntilSync({sqlstate::kProgramLimitExceeded, fmt::format("more than {} prepared statements on one connection", kMaxNamed), 0});
    return true;
  }
  statements_[std::string(name)] = std::move(prepared);
  MessageWriter w(&out_);
  w.Begin('1');
  w.End();
  return FlushIfLarge();
}

bool PgConnection::OnBind(std::string_view body) {
  MessageReader r(body);
  std::string_view portal_name, statement_name;
  int16_t nformats = 0, nparams = 0, nresults = 0;
  if (!r.CString(&portal_name) || !r.CString(&statement_name) || !r.Int16(&nformats) || nformats < 0) MARE_PGWIRE_MALFORMED("Bind");
  std::vector<int16_t> formats(static_cast<size_t>(nformats));
  for (auto& f : formats) {
    if (!r.Int16(&f) || (f != 0 && f != 1)) MARE_PGWIRE_MALFORMED("Bind");
  }
  if (!r.Int16(&nparams) || nparams < 0) MARE_PGWIRE_MALFORMED("Bind");
  struct Param {
    std::string_view value;
    bool null;
  };
  std::vector<Param> params;
  for (int16_t k = 0; k < nparams; ++k) {
    int32_t len;
    if (!r.Int32(&len) || len < -1) MARE_PGWIRE_MALFORMED("Bind");
    Param p{{}, len == -1};
    if (len >= 0 && !r.Bytes(static_cast<size_t>(len), &p.value)) MARE_PGWIRE_MALFORMED("Bind");
    params.push_back(p);
  }
  if (!r.Int16(&nresults) || nresults < 0) MARE_PGWIRE_MALFORMED("Bind");
  std::vector<int16_t> results(static_cast<size_t>(nresults));
  for (auto& f : results) {
    if (!r.Int16(&f) || (f != 0 && f != 1)) MARE_PGWIRE_MALFORMED("Bind");
  }
  auto fail = [&](PgError e) {
    FailUntilSync(e);
    return true;
  };
  auto it = statements_.find(std::string(statement_name));
  if (it == statements_.end()) {
    return fail({sqlstate::kInvalidStatementName, fmt::format("prepared statement \"{}\" does not exist", statement_name), 0});
  }
  const Prepared& st = it->second;
  if (nformats > 1 && nformats != nparams) {
    return fail({sqlstate::kProtocolViolation, fmt::format("bind message has {} parameter formats but {} parameters", nformats, nparams), 0});
  }
  if (nparams != st.params) {
    return fail({sqlstate::kProtocolViolation,
                 fmt::format("bind message supplies {} parameters, but prepared statement \"{}\" requires {}", nparams,
                             statement_name, st.params),
                 0});
  }
  std::vector<std::string> literals;
  for (int16_t k = 0; k < nparams; ++k) {
    int16_t format = nformats == 0 ? 0 : nformats == 1 ? formats[0] : formats[static_cast<size_t>(k)];
    int32_t type = static_cast<size_t>(k) < st.param_oids.size() ? st.param_oids[static_cast<size_t>(k)] : 0;
    auto literal = ParameterLiteral(params[static_cast<size_t>(k)].value, params[static_cast<size_t>(k)].null, format, type,
                                    &settings_.zone());
    if (!literal.ok()) {
      return fail({IsOutOfRange(literal.status()) ? sqlstate::kNumericValueOutOfRange
                   : format == 1                  ? sqlstate::kInvalidBinaryRepresentation
                                                  : sqlstate::kInvalidTextRepresentation,
                   fmt::format("parameter ${}: {}", k + 1, literal.status().message()), 0});
    }
    literals.push_back(std::move(*literal));
  }
  auto bound = BindParameters(st.sql, literals);
  if (!bound.ok()) return fail({sqlstate::kProtocolViolation, bound.status().message(), 0});
  if (portals_.size() >= kMaxNamed && portals_.count(std::string(portal_name)) == 0) {
    return fail({sqlstate::kProgramLimitExceeded, fmt::format("more than {} portals on one connection", kMaxNamed), 0});
  }
  if (!portal_name.empty() && portals_.count(std::string(portal_name)) > 0) {
    return fail({"42P03", fmt::format("cursor \"{}\" already exists", portal_name), 0});
  }
  Portal& p = portals_[std::string(portal_name)];
  p = Portal();
  p.original = st.sql;
  p.bound = std::move(*bound);
  p.formats = std::move(results);
  MessageWriter w(&out_);
  w.Begin('2');
  w.End();
  return FlushIfLarge();
}

std::vector<CatalogTable> PgConnection::CatalogTables() {
  std::vector<CatalogTable> tables;
  query::QueryOptions options;
  options.limits = ctx_.limits;
  int32_t next_oid = 16384;
  for (const char* name : kCatalogTableNames) {
    CatalogTable table;
    table.name = name;
    table.oid = next_oid++;
    // Planned, not run: the columns `SELECT *` has now, as the store's schema makes them.
    Cursor dry(*ctx_.store, fmt::format("SELECT * FROM {}", name), options, /*describe_only=*/true);
    if (!dry.WaitColumns()) continue;
    for (size_t c = 0; c < dry.names().size(); ++c) table.columns.push_back({dry.names()[c], OidOf(dry.types()[c])});
    // On disk: the readings' live segment files; the forecasts' journal.
    if (table.name == "readings") {
      table.disk_bytes = ctx_.store->GetStats().bytes;
    } else if (struct stat st; ::stat(ctx_.store->forecasts().journal_path().c_str(), &st) == 0) {
      table.disk_bytes = static_cast<int64_t>(st.st_size);
    }
    tables.push_back(std::move(table));
  }
  return tables;
}

SessionOutcome PgConnection::AnswerHere(const std::string& sql, SessionSettings* settings, SessionAnswer* answer,
                                        PgError* error) {
  if (IsCatalogQuery(sql) && AnswerCatalogQuery(sql, CatalogTables(), answer)) return SessionOutcome::kAnswered;
  return AnswerSessionStatement(sql, settings, answer, error);
}

bool PgConnection::Start(Portal* p, PgError* error) {
  p->started = true;
  ctx_.queries->Add();
  SessionAnswer answer;
  switch (AnswerHere(p->bound.sql, &settings_, &answer, error)) {
    case SessionOutcome::kFailed: return false;
    case SessionOutcome::kAnswered:
      p->session = true;
      p->names = answer.names;
      p->oids = answer.oids;
      for (const auto& [name, value] : answer.changed) {
        MessageWriter w(&out_);
        w.Begin('S');
        w.CString(name);
        w.CString(value);
        w.End();
      }
      p->answer = std::move(answer);
      NoteTransaction(*p);
      return true;
    case SessionOutcome::kNotSession: break;
  }
  if (transaction_failed_) {
    // As PostgreSQL: a failed transaction block takes nothing but its end.
    *error = {"25P02", "current transaction is aborted, commands ignored until end of transaction block", 0};
    return false;
  }
  p->permit = ctx_.gate->TryEnter();
  if (!p->permit) {
    *error = {sqlstate::kInsufficientResources,
              fmt::format("too many concurrent queries: query.max_concurrent ({}) are running; retry in a moment",
                          ctx_.limits.max_concurrent),
              0};
    return false;
  }
  query::QueryOptions options;
  options.limits = ctx_.limits;
  options.max_rows = SIZE_MAX;  // streamed: any number of rows
  {
    std::lock_guard lock(running_mu_);
    cancelled_.store(false);
    p->cursor = std::make_unique<Cursor>(*ctx_.store, p->bound.sql, options);
    running_ = p->cursor.get();
  }
  bool ok = p->cursor->WaitColumns();
  {
    std::lock_guard lock(running_mu_);
    running_ = nullptr;
  }
  if (!ok) {
    *error = ErrorOf(p->cursor->error(), *p, cancelled_.load());
    p->cursor.reset();
    p->permit = query::QueryGate::Permit();
    return false;
  }
  p->names = p->cursor->names();
  for (query::Type t : p->cursor->types()) p->oids.push_back(OidOf(t));
  return true;
}

void PgConnection::NoteTransaction(const Portal& p) {
  if (p.answer.transaction == SessionAnswer::Transaction::kBegin) {
    in_transaction_ = true;
  } else if (p.answer.transaction == SessionAnswer::Transaction::kEnd) {
    in_transaction_ = false;
    transaction_failed_ = false;
  } else if (p.answer.transaction == SessionAnswer::Transaction::kRecover) {
    transaction_failed_ = false;
  }
}

PgError PgConnection::ErrorOf(const query::SqlError& e, const Portal& p, bool cancelled) {
  query::SelectStatement statement;
  query::SqlError parse_error;
  bool parse_failed = e.kind == query::SqlError::Kind::kStatement && !query::Parse(p.bound.sql, ctx_.limits, &statement, &parse_error);
  PgError out;
  out.sqlstate = SqlStateOf(e, parse_failed, cancelled);
  out.message = out.sqlstate == sqlstate::kQueryCanceled && e.kind != query::SqlError::Kind::kLimit
                    ? "canceling statement due to user request"
                    : e.message;
  size_t at = OffsetOf(p.bound.sql, e.pos);
  if (at != std::string_view::npos) out.position = CharacterPosition(p.original, p.bound.OriginalOffset(at));
  return out;
}

void PgConnection::Describe(const Portal& p, bool with_formats) {
  MessageWriter w(&out_);
  bool rows = p.session ? p.answer.returns_rows : true;
  if (!rows) {
    w.Begin('n');  // NoData
    w.End();
    return;
  }
  w.Begin('T');
  w.Int16(static_cast<int16_t>(p.names.size()));
  for (size_t c = 0; c < p.names.size(); ++c) {
    w.CString(p.names[c]);
    w.Int32(0);  // not a table's column
    w.Int16(0);
    w.Int32(p.oids[c]);
    w.Int16(TypeLength(p.oids[c]));
    w.Int32(-1);
    int16_t format = 0;
    if (with_formats && !p.formats.empty()) format = p.formats.size() == 1 ? p.formats[0] : c < p.formats.size() ? p.formats[c] : 0;
    w.Int16(format);
  }
  w.End();
}

bool PgConnection::SendRows(Portal* p, size_t max_rows, bool* suspended, PgError* error, bool* failed) {
  *suspended = false;
  size_t sent_now = 0;
  auto format_of = [&](size_t c) -> bool {
    if (p->formats.empty()) return false;
    return (p->formats.size() == 1 ? p->formats[0] : c < p->formats.size() ? p->formats[c] : 0) == 1;
  };
  auto send_batch = [&](const std::vector<query::ResultColumn>& columns, size_t end) -> bool {
    size_t ncols = p->names.size();
    for (; p->at < end; ++p->at) {
      if (max_rows > 0 && sent_now == max_rows) {
        *suspended = true;
        return true;
      }
      MessageWriter w(&out_);
      w.Begin('D');
      w.Int16(static_cast<int16_t>(ncols));
      for (size_t c = 0; c < ncols; ++c) {
        const query::ResultColumn& col = columns[c];
        if (col.type() == query::Type::kNull || !col.IsValid(p->at)) {
          w.Int32(-1);
          continue;
        }
        size_t length_at = out_.size();
        w.Int32(0);
        AppendValue(col, p->at, p->oids[c], format_of(c), &out_, &settings_.zone());
        auto n = static_cast<uint32_t>(out_.size() - length_at - 4);
        for (int k = 0; k < 4; ++k) out_[length_at + k] = static_cast<char>(n >> (24 - 8 * k));
      }
      w.End();
      ++sent_now;
      ++p->sent;
      if (!FlushIfLarge()) return false;
    }
    return true;
  };
  if (p->session) {
    if (!p->answer.returns_rows) return true;
    return send_batch(p->answer.columns, p->answer.rows);
  }
  if (!p->cursor) return true;
  {
    std::lock_guard lock(running_mu_);
    running_ = p->cursor.get();
  }
  bool ok = true;
  for (;;) {
    if (!p->has_batch) {
      if (!p->cursor->Next(&p->batch)) break;
      p->has_batch = true;
      p->at = p->batch.begin;
    }
    if (!send_batch(*p->batch.columns, p->batch.end)) {
      ok = false;
      break;
    }
    if (*suspended) break;
    p->has_batch = false;
    p->cursor->Done();
    if (p->cursor->cancelled()) {
      // The rest of the answer is not wanted: the statement ends at its next batch.
      while (p->cursor->Next(&p->batch)) p->cursor->Done();
      break;
    }
  }
  {
    std::lock_guard lock(running_mu_);
    running_ = nullptr;
  }
  if (!ok) return false;
  if (!*suspended && p->cursor->failed()) {
    *error = ErrorOf(p->cursor->error(), *p, cancelled_.load());
    *failed = true;
  }
  return true;
}

void PgConnection::Complete(const Portal& p) {
  MessageWriter w(&out_);
  w.Begin('C');
  w.CString(p.session ? (p.answer.returns_rows && p.answer.tag.starts_with("SELECT") ? fmt::format("SELECT {}", p.sent) : p.answer.tag)
                      : fmt::format("SELECT {}", p.sent));
  w.End();
}

void PgConnection::FailUntilSync(const PgError& e) {
  SendError(e);
  skip_until_sync_ = true;
}

PgConnection::Portal* PgConnection::FindPortal(std::string_view name) {
  auto it = portals_.find(std::string(name));
  if (it != portals_.end()) return &it->second;
  FailUntilSync({sqlstate::kInvalidCursorName, fmt::format("portal \"{}\" does not exist", name), 0});
  return nullptr;
}

bool PgConnection::StartOrFail(Portal* p) {
  PgError error;
  if (p->started || Start(p, &error)) return true;
  p->finished = true;
  FailUntilSync(error);
  return false;
}

bool PgConnection::OnDescribe(std::string_view body) {
  MessageReader r(body);
  char kind;
  std::string_view name;
  if (!r.Byte(&kind) || !r.CString(&name) || (kind != 'S' && kind != 'P')) MARE_PGWIRE_MALFORMED("Describe");
  if (kind == 'P') {
    Portal* p = FindPortal(name);
    if (p == nullptr || !StartOrFail(p)) return true;
    Describe(*p, true);
    return FlushIfLarge();
  }
  auto it = statements_.find(std::string(name));
  if (it == statements_.end()) {
    FailUntilSync({sqlstate::kInvalidStatementName, fmt::format("prepared statement \"{}\" does not exist", name), 0});
    return true;
  }
  const Prepared& st = it->second;
  MessageWriter w(&out_);
  w.Begin('t');
  w.Int16(static_cast<int16_t>(st.params));
  for (int k = 0; k < st.params; ++k) {
    int32_t o = static_cast<size_t>(k) < st.param_oids.size() ? st.param_oids[static_cast<size_t>(k)] : 0;
    w.Int32(o == 0 ? oid::kText : o);
  }
  w.End();
  // The columns, from a dry run with every parameter NULL: planned, not run.
  std::vector<std::string> nulls(static_cast<size_t>(st.params), "NULL");
  auto bound = BindParameters(st.sql, nulls);
  Portal p;
  p.original = st.sql;
  if (bound.ok()) p.bound = std::move(*bound);
  SessionSettings scratch = settings_;
  SessionAnswer answer;
  PgError error;
  switch (AnswerHere(p.bound.sql, &scratch, &answer, &error)) {
    case SessionOutcome::kAnswered:
      p.session = true;
      p.answer = std::move(answer);
      p.names = p.answer.names;
      p.oids = p.answer.oids;
      Describe(p, false);
      return FlushIfLarge();
    case SessionOutcome::kFailed:
      w.Begin('n');
      w.End();
      return FlushIfLarge();
    case SessionOutcome::kNotSession: break;
  }
  query::QueryOptions options;
  options.limits = ctx_.limits;
  Cursor dry(*ctx_.store, p.bound.sql, options, /*describe_only=*/true);
  if (!dry.WaitColumns()) {
    FailUntilSync(ErrorOf(dry.error(), p, false));
    return true;
  }
  p.names = dry.names();
  for (query::Type t : dry.types()) p.oids.push_back(OidOf(t));
  Describe(p, false);
  return FlushIfLarge();
}

bool PgConnection::OnExecute(std::string_view body) {
  MessageReader r(body);
  std::string_view name;
  int32_t max_rows = 0;
  if (!r.CString(&name) || !r.Int32(&max_rows)) MARE_PGWIRE_MALFORMED("Execute");
  Portal* found = FindPortal(name);
  if (found == nullptr) return true;
  Portal& p = *found;
  if (p.finished) {
    Complete(p);
    return FlushIfLarge();
  }
  if (!StartOrFail(&p)) return true;
  PgError error;
  bool suspended = false, failed = false;
  if (!SendRows(&p, max_rows > 0 ? static_cast<size_t>(max_rows) : 0, &suspended, &error, &failed)) return false;
  if (failed) {
    p.finished = true;
    FailUntilSync(error);
    return true;
  }
  if (suspended) {
    MessageWriter w(&out_);
    w.Begin('s');
    w.End();
    return FlushIfLarge();
  }
  p.finished = true;
  p.cursor.reset();
  p.permit = query::QueryGate::Permit();
  Complete(p);
  return FlushIfLarge();
}

bool PgConnection::OnClose(std::string_view body) {
  MessageReader r(body);
  char kind;
  std::string_view name;
  if (!r.Byte(&kind) || !r.CString(&name) || (kind != 'S' && kind != 'P')) MARE_PGWIRE_MALFORMED("Close");
  if (kind == 'S') {
    statements_.erase(std::string(name));
  } else {
    portals_.erase(std::string(name));
  }
  MessageWriter w(&out_);
  w.Begin('3');
  w.End();
  return FlushIfLarge();
}

}  // namespace mare::pgwire
