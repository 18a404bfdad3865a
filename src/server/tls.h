// TLS for mare's listeners (the HTTP server, the PostgreSQL wire protocol), on OpenSSL: the
// server's certificate and key (TlsContext), and one connection's session (TlsSession).
//
// A session never blocks: each step says whether it needs the socket readable or writable
// first, and the caller waits for that with its own deadlines and stop signal. So the limits
// of a plaintext connection (header and body timeouts, write timeout, the server's stop) hold
// on a TLS one too, and a client that stalls in the handshake is dropped like one that stalls
// in its request.
//
//   auto tls = TlsContext::Load("/etc/mare/cert.pem", "/etc/mare/key.pem");
//   TlsSession session(**tls, fd);
//   for (;;) switch (session.Handshake()) { case TlsSession::Io::kWantRead: wait for POLLIN; ... }
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

using SSL_CTX = struct ssl_ctx_st;
using SSL = struct ssl_st;

namespace mare {

class TlsContext {
 public:
  // Reads a PEM certificate chain (the server's certificate first, then any intermediates) and
  // its PEM private key, and checks that they match. TLS 1.2 and 1.3 only. With `client_ca` (a
  // PEM bundle of CA certificates), every client must present a certificate signed by one of
  // them, or the handshake fails (mutual TLS).
  static Result<std::shared_ptr<TlsContext>> Load(const std::string& cert_file, const std::string& key_file,
                                                  const std::string& client_ca = "");
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* get() const { return ctx_; }
  // The server certificate's subject ("CN=mare,O=..."), serial number (hex) and end of validity
  // (Unix seconds): what the log says of the certificate in use.
  const std::string& subject() const { return subject_; }
  const std::string& serial() const { return serial_; }
  int64_t not_after() const { return not_after_; }
  bool verifies_clients() const { return verifies_clients_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
  std::string subject_, serial_;
  int64_t not_after_ = 0;
  bool verifies_clients_ = false;
};

class TlsSession {
 public:
  enum class Io {
    kDone,       // the step completed
    kWantRead,   // wait until the socket is readable, then call again
    kWantWrite,  // wait until it is writable, then call again
    kClosed,     // the peer ended the session (close_notify or end of stream)
    kFailed,     // a protocol or socket error: error() says which
  };

  // A server session on the connected socket `fd`, which it makes non-blocking. The socket
  // stays the caller's to close, after the session is gone or closed.
  TlsSession(const TlsContext& context, int fd);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Whether the first bytes waiting on `fd` open a TLS handshake (a record of type 22). A
  // plaintext request to a TLS port starts with a letter. Does not consume anything.
  // True when nothing can be peeked: the handshake then reports the error.
  static bool LooksLikeTls(int fd);

  Io Handshake();
  // Up to `size` bytes of the peer's data; *got how many on kDone.
  Io Read(char* data, size_t size, size_t* got);
  // Some of `size` bytes (the rest is for the next call, with the same data); *wrote how many.
  Io Write(const char* data, size_t size, size_t* wrote);
  // Whether decrypted data is waiting inside the session (the socket may not be readable).
  bool HasBuffered() const;
  // Sends close_notify, best effort and without waiting for the peer's.
  void Close();
  // Why the last step failed ("wrong version number", "unknown ca", ...).
  const std::string& error() const { return error_; }
  // Whether the last failure was the client's certificate: none sent, or not signed by the
  // client CA (mutual TLS).
  bool client_certificate_refused() const { return client_certificate_refused_; }

 private:
  Io Outcome(int ret);

  SSL* ssl_ = nullptr;
  std::string error_;
  bool client_certificate_refused_ = false;
};

}  // namespace mare
