#include "server/tls.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/bn.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace mare {

namespace {

// The oldest error on OpenSSL's queue of this thread, which is then cleared.
std::string TakeError(std::string fallback) {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return fallback;
  const char* reason = ERR_reason_error_string(code);
  return reason ? reason : fallback;
}

std::string SubjectOf(X509* x) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio) return "";
  X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, n > 0 ? static_cast<size_t>(n) : 0);
  BIO_free(bio);
  return out;
}

std::string SerialOf(X509* x) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr);
  if (!bn) return "";
  char* hex = BN_bn2hex(bn);
  std::string out = hex ? hex : "";
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

int64_t NotAfterOf(X509* x) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1) return 0;
  return static_cast<int64_t>(::timegm(&tm));
}

}  // namespace

Result<std::shared_ptr<TlsContext>> TlsContext::Load(const std::string& cert_file, const std::string& key_file,
                                                     const std::string& client_ca) {
  if (cert_file.empty() || key_file.empty()) {
    return Status::InvalidArgument("TLS needs both a certificate and its key (tls_cert and tls_key)");
  }
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return Status::IOError("TLS: " + TakeError("cannot create a context"));
  std::shared_ptr<TlsContext> context(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // Renegotiation is a client's way to make the server work again mid-connection: refused.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Writes resume where they stopped, from wherever the caller's buffer now is.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return Status::InvalidArgument("TLS certificate " + cert_file + ": " + TakeError("cannot read it") +
                                   " (a PEM file is expected)");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    std::string why = TakeError("cannot read it");
    if (why.find("mismatch") != std::string::npos) {
      return Status::InvalidArgument("TLS key " + key_file + " does not belong to the certificate " + cert_file);
    }
    return Status::InvalidArgument("TLS key " + key_file + ": " + why + " (an unencrypted PEM key is expected)");
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return Status::InvalidArgument("TLS key " + key_file + " does not belong to the certificate " + cert_file);
  }
  if (X509* x = SSL_CTX_get0_certificate(ctx)) {
    context->subject_ = SubjectOf(x);
    context->serial_ = SerialOf(x);
    context->not_after_ = NotAfterOf(x);
  }
  // Sessions are resumed only by the context that made them; OpenSSL refuses to resume
  // (rather than skip the client's certificate) without an id context once clients are verified.
  static constexpr unsigned char kSessionContext[] = "mare";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
  if (!client_ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, client_ca.c_str(), nullptr) != 1) {
      return Status::InvalidArgument("TLS client CA " + client_ca + ": " + TakeError("cannot read it") +
                                     " (a PEM bundle of CA certificates is expected)");
    }
    // The names the server sends in its CertificateRequest, so that a client holding several
    // certificates picks one these CAs signed.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(client_ca.c_str());
    if (!names) {
      return Status::InvalidArgument("TLS client CA " + client_ca + ": " + TakeError("holds no certificate") +
                                     " (a PEM bundle of CA certificates is expected)");
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    context->verifies_clients_ = true;
  }
  ERR_clear_error();
  return context;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

TlsSession::TlsSession(const TlsContext& context, int fd) : ssl_(SSL_new(context.get())) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  if (ssl_) {
    SSL_set_fd(ssl_, fd);
    SSL_set_accept_state(ssl_);
  } else {
    error_ = TakeError("cannot create a session");
  }
}

TlsSession::~TlsSession() {
  if (ssl_) SSL_free(ssl_);
}

bool TlsSession::LooksLikeTls(int fd) {
  unsigned char first = 0;
  ssize_t n = ::recv(fd, &first, 1, MSG_PEEK | MSG_DONTWAIT);
  return n != 1 || first == 0x16;
}

TlsSession::Io TlsSession::Outcome(int ret) {
  int saved_errno = errno;
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ: return Io::kWantRead;
    case SSL_ERROR_WANT_WRITE: return Io::kWantWrite;
    case SSL_ERROR_ZERO_RETURN: return Io::kClosed;
    case SSL_ERROR_SYSCALL:
      ERR_clear_error();
      if (saved_errno == EINTR) return Io::kWantRead;
      error_ = saved_errno == 0 ? "the peer closed the connection" : std::strerror(saved_errno);
      return saved_errno == 0 ? Io::kClosed : Io::kFailed;
    default: {
      int reason = ERR_GET_REASON(ERR_peek_error());
      client_certificate_refused_ = reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE || reason == SSL_R_CERTIFICATE_VERIFY_FAILED;
      error_ = TakeError("TLS error");
      long verify = SSL_get_verify_result(ssl_);
      if (client_certificate_refused_ && verify != X509_V_OK) error_ += std::string(": ") + X509_verify_cert_error_string(verify);
      return Io::kFailed;
    }
  }
}

TlsSession::Io TlsSession::Handshake() {
  if (!ssl_) return Io::kFailed;
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  return r == 1 ? Io::kDone : Outcome(r);
}

TlsSession::Io TlsSession::Read(char* data, size_t size, size_t* got) {
  *got = 0;
  if (!ssl_) return Io::kFailed;
  ERR_clear_error();
  size_t n = 0;
  int r = SSL_read_ex(ssl_, data, size, &n);
  if (r == 1) {
    *got = n;
    return Io::kDone;
  }
  return Outcome(r);
}

TlsSession::Io TlsSession::Write(const char* data, size_t size, size_t* wrote) {
  *wrote = 0;
  if (!ssl_) return Io::kFailed;
  ERR_clear_error();
  size_t n = 0;
  int r = SSL_write_ex(ssl_, data, size, &n);
  if (r == 1) {
    *wrote = n;
    return Io::kDone;
  }
  return Outcome(r);
}

bool TlsSession::HasBuffered() const { return ssl_ && SSL_pending(ssl_) > 0; }

void TlsSession::Close() {
  if (!ssl_ || !SSL_is_init_finished(ssl_)) return;
  ERR_clear_error();
  (void)SSL_shutdown(ssl_);
  ERR_clear_error();
}

}  // namespace mare
