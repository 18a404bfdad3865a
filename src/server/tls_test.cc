// HTTPS on mare's HTTP server against real sockets and a certificate made here: the server's
// limits hold on TLS connections, a plaintext client is told what to do, a client that stalls
// in the handshake holds its thread no longer than header_timeout (issue 13).
#include "server/tls.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "server/http_server.h"
#include "server/tls_reloader.h"

namespace mare {
namespace {

using Clock = std::chrono::steady_clock;

double Elapsed(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A self-signed certificate for 127.0.0.1 and its key, as PEM files in a fresh directory.
struct Certificate {
  std::filesystem::path dir, cert, key;

  explicit Certificate(const std::string& common_name = "127.0.0.1", long serial = 1) {
    char tmpl[] = "/tmp/mare-tls-test-XXXXXX";
    dir = ::mkdtemp(tmpl);
    cert = dir / "cert.pem";
    key = dir / "key.pem";
    EVP_PKEY* pkey = EVP_EC_gen("P-256");
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
    X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    X509_add_ext(x, san, -1);
    X509_EXTENSION_free(san);
    X509_sign(x, pkey, EVP_sha256());
    FILE* f = std::fopen(cert.c_str(), "w");
    PEM_write_X509(f, x);
    std::fclose(f);
    f = std::fopen(key.c_str(), "w");
    PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
  }
  ~Certificate() { std::filesystem::remove_all(dir); }
};

int Connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads until the server closes or `seconds` pass; *closed says which.
std::string ReadUntilClosed(int fd, double seconds, bool* closed) {
  std::string out;
  *closed = false;
  auto start = Clock::now();
  while (Elapsed(start) < seconds) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      *closed = true;
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// A TLS client that does by hand what well-behaved clients never do (stall mid-request).
class RawTlsClient {
 public:
  RawTlsClient(int port, const std::string& ca_file, const Certificate* client = nullptr) : ctx_(SSL_CTX_new(TLS_client_method())) {
    SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (client) {
      SSL_CTX_use_certificate_chain_file(ctx_, client->cert.c_str());
      SSL_CTX_use_PrivateKey_file(ctx_, client->key.c_str(), SSL_FILETYPE_PEM);
    }
    fd_ = Connect(port);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    connected_ = fd_ >= 0 && SSL_connect(ssl_) == 1;
  }
  ~RawTlsClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  // The serial number of the certificate the server presented (-1: none).
  long PeerSerial() const {
    X509* peer = SSL_get1_peer_certificate(ssl_);
    if (!peer) return -1;
    long serial = ASN1_INTEGER_get(X509_get0_serialNumber(peer));
    X509_free(peer);
    return serial;
  }
  // One request with Connection: close, and what came back.
  std::string Get(const std::string& path) {
    if (!Send("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")) return "";
    bool closed = false;
    return ReadUntilClosed(5, &closed);
  }
  bool Send(std::string_view bytes) { return SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) == static_cast<int>(bytes.size()); }
  // Decrypted bytes until the server ends the session or `seconds` pass.
  std::string ReadUntilClosed(double seconds, bool* closed) {
    std::string out;
    *closed = false;
    auto start = Clock::now();
    while (Elapsed(start) < seconds) {
      if (SSL_pending(ssl_) == 0) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
      }
      char buf[4096];
      int n = SSL_read(ssl_, buf, sizeof(buf));
      if (n <= 0) {
        *closed = true;
        break;
      }
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  SSL_CTX* ctx_;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool connected_ = false;
};

class TlsServerTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions options) {
    options.tls_cert = cert_.cert.string();
    options.tls_key = cert_.key.string();
    if (options.tls_reload_interval_us == TlsFiles{}.reload_interval_us) options.tls_reload_interval_us = 0;
    server_ = std::make_unique<HttpServer>(options, &registry_);
    auto& r = server_->routes();
    r.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
    r.Post("/echo", [](const httplib::Request& req, httplib::Response& res) { res.set_content(std::to_string(req.body.size()), "text/plain"); });
    Status s = server_->Start("127.0.0.1:0");
    ASSERT_TRUE(s.ok()) << s.ToString();
    port_ = server_->port();
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }
  httplib::Client Client() {
    httplib::Client c("https://127.0.0.1:" + std::to_string(port_));
    c.set_ca_cert_path(cert_.cert.c_str());
    c.enable_server_certificate_verification(true);
    c.set_read_timeout(5, 0);
    return c;
  }
  double Metric(const std::string& series) {
    std::string text = registry_.Render();
    size_t at = text.find("\n" + series + " ");
    return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 2));
  }

  Certificate cert_;
  metrics::Registry registry_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

TEST_F(TlsServerTest, ServesRequestsOverTlsOnKeptAliveConnections) {
  Start({});
  auto client = Client();
  client.set_keep_alive(true);
  for (size_t size : {size_t{0}, size_t{10}, size_t{100'000}, size_t{3'000'000}}) {
    auto res = client.Post("/echo", std::string(size, 'x'), "application/x-ndjson");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, std::to_string(size));
  }
  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->body, "ok\n");
  EXPECT_EQ(Metric("mare_http_open_connections"), 1);  // one connection served them all
}

TEST_F(TlsServerTest, ACertificateTheClientDoesNotTrustFailsTheHandshake) {
  Start({});
  Certificate other;
  httplib::Client c("https://127.0.0.1:" + std::to_string(port_));
  c.set_ca_cert_path(other.cert.c_str());
  c.enable_server_certificate_verification(true);
  auto res = c.Get("/healthz");
  EXPECT_FALSE(res);
  EXPECT_EQ(res.error(), httplib::Error::SSLServerVerification);
  // A client that checks during the handshake aborts it (alert "unknown ca"): the server
  // counts it and goes on.
  RawTlsClient refusing(port_, other.cert.string());
  EXPECT_FALSE(refusing.connected());
  auto ok = Client().Get("/healthz");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  for (int i = 0; i < 100 && Metric("mare_http_tls_handshakes_failed_total{reason=\"error\"}") < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(Metric("mare_http_tls_handshakes_failed_total{reason=\"error\"}"), 1);
}

TEST_F(TlsServerTest, PlaintextRequestIsAnswered400InPlaintextAndTheServerGoesOn) {
  Start({});
  int fd = Connect(port_);
  ASSERT_GE(fd, 0);
  std::string request = "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello";
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  bool closed = false;
  auto start = Clock::now();
  std::string answer = ReadUntilClosed(fd, 3, &closed);
  ::close(fd);
  EXPECT_LT(Elapsed(start), 2.0);
  EXPECT_TRUE(closed);
  EXPECT_EQ(answer.rfind("HTTP/1.1 400 ", 0), 0u) << answer;
  EXPECT_NE(answer.find("this port speaks HTTPS (http.tls_cert is set)"), std::string::npos) << answer;
  EXPECT_EQ(Metric("mare_http_tls_handshakes_failed_total{reason=\"plaintext\"}"), 1);
  auto res = Client().Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

// Each refused handshake is counted; the log gets a line with the peer and the reason, at most
// one a second, the next saying how many it left out (a scanner cannot fill the disk).
TEST_F(TlsServerTest, RefusedHandshakesAreLoggedWithThePeerAtMostOnceASecond) {
  std::ostringstream logged;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(logged)));
  Start({});
  auto refuse = [&] {
    int fd = Connect(port_);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::send(fd, "GET / HTTP/1.1\r\n\r\n", 18, MSG_NOSIGNAL), 18);
    bool closed = false;
    ReadUntilClosed(fd, 3, &closed);
    ::close(fd);
  };
  for (int i = 0; i < 20; ++i) refuse();
  EXPECT_EQ(Metric("mare_http_tls_handshakes_failed_total{reason=\"plaintext\"}"), 20);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  refuse();
  server_->Stop();
  spdlog::set_default_logger(previous);
  std::string text = logged.str();
  size_t lines = 0, from = 0;
  while ((from = text.find("http: TLS handshake from 127.0.0.1:", from)) != std::string::npos) ++lines, ++from;
  // One for the first burst (two if it straddled a second), one after the pause.
  EXPECT_GE(lines, 2u) << text;
  EXPECT_LE(lines, 3u) << text;
  EXPECT_NE(text.find("refused: plaintext sent to the HTTPS port"), std::string::npos) << text;
  EXPECT_NE(text.find("more refused since the last such line)"), std::string::npos) << text;
}

// A client that connects and never finishes its handshake (silent, or a ClientHello cut short)
// is dropped after header_timeout; meanwhile the others are served at once.
TEST_F(TlsServerTest, StalledHandshakesAreDroppedAfterHeaderTimeout) {
  Start({.max_connections = 64, .header_timeout_us = 500'000});
  std::vector<int> stalled;
  for (int i = 0; i < 20; ++i) {
    int fd = Connect(port_);
    ASSERT_GE(fd, 0);
    // Half of them send the start of a ClientHello: a handshake record that never completes.
    if (i % 2) {
      ASSERT_EQ(::send(fd, "\x16\x03\x01\x02\x00\x01", 6, MSG_NOSIGNAL), 6);
    }
    stalled.push_back(fd);
  }
  auto start = Clock::now();
  auto res = Client().Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_LT(Elapsed(start), 0.45);
  for (int fd : stalled) {
    bool closed = false;
    ReadUntilClosed(fd, 3, &closed);
    EXPECT_TRUE(closed);
    ::close(fd);
  }
  double took = Elapsed(start);
  EXPECT_GT(took, 0.3);
  EXPECT_LT(took, 2.5);
  EXPECT_EQ(Metric("mare_http_tls_handshakes_failed_total{reason=\"timeout\"}"), 20);
  for (int i = 0; i < 100 && Metric("mare_http_open_connections") > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(Metric("mare_http_open_connections"), 0);
}

TEST_F(TlsServerTest, OverMaxConnectionsATlsClientIsClosedAtOnce) {
  Start({.max_connections = 2, .header_timeout_us = 5'000'000});
  int a = Connect(port_), b = Connect(port_);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // both accepted, both stalled
  auto start = Clock::now();
  auto res = Client().Get("/healthz");
  EXPECT_FALSE(res);
  EXPECT_LT(Elapsed(start), 1.0);
  EXPECT_EQ(Metric("mare_http_connections_refused_total"), 1);
  ::close(a);
  ::close(b);
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {
    auto again = Client().Get("/healthz");
    served = again && again->status == 200;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(served);
}

TEST_F(TlsServerTest, HeaderAndBodyDeadlinesHoldAfterTheHandshake) {
  Start({.header_timeout_us = 300'000, .body_timeout_us = 300'000});
  struct Case {
    std::string sent, answer;
  };
  for (const Case& c : {Case{"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", "request headers not received within 0.3 s"},
                        Case{"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nsome", "request body not received within 0.3 s"}}) {
    RawTlsClient slow(port_, cert_.cert.string());
    ASSERT_TRUE(slow.connected());
    auto start = Clock::now();
    ASSERT_TRUE(slow.Send(c.sent));
    bool closed = false;
    std::string answer = slow.ReadUntilClosed(3, &closed);
    EXPECT_LT(Elapsed(start), 1.5);
    EXPECT_TRUE(closed);
    EXPECT_EQ(answer.rfind("HTTP/1.1 408 ", 0), 0u) << answer;
    EXPECT_NE(answer.find(c.answer), std::string::npos) << answer;
  }
  EXPECT_EQ(Metric("mare_http_requests_timed_out_total{phase=\"headers\"}"), 1);
  EXPECT_EQ(Metric("mare_http_requests_timed_out_total{phase=\"body\"}"), 1);
}

TEST_F(TlsServerTest, BodyLimitsHoldOverTls) {
  Start({.max_body_bytes = 1000});
  auto client = Client();
  auto res = client.Post("/echo", std::string(5000, 'x'), "application/x-ndjson");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_NE(res->body.find("exceeds http.max_body_bytes (1000 bytes)"), std::string::npos) << res->body;
  auto small = Client().Post("/echo", std::string(500, 'x'), "application/x-ndjson");
  ASSERT_TRUE(small);
  EXPECT_EQ(small->body, "500");
}

TEST(TlsContext, RefusesWhatCannotServe) {
  Certificate cert, other;
  EXPECT_TRUE(TlsContext::Load(cert.cert.string(), cert.key.string()).ok());
  Status only_cert = TlsContext::Load(cert.cert.string(), "").status();
  EXPECT_NE(only_cert.message().find("both a certificate and its key"), std::string::npos) << only_cert.ToString();
  Status missing = TlsContext::Load((cert.dir / "none.pem").string(), cert.key.string()).status();
  EXPECT_NE(missing.message().find("none.pem"), std::string::npos) << missing.ToString();
  Status mismatch = TlsContext::Load(cert.cert.string(), other.key.string()).status();
  EXPECT_NE(mismatch.message().find("does not belong to the certificate"), std::string::npos) << mismatch.ToString();
  // The key where the certificate goes.
  Status swapped = TlsContext::Load(cert.key.string(), cert.key.string()).status();
  EXPECT_FALSE(swapped.ok());

  HttpServerOptions options;
  options.tls_cert = cert.cert.string();
  HttpServer server(options);
  Status s = server.Start("127.0.0.1:0");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("http: TLS needs both"), std::string::npos) << s.ToString();
}


// Puts `from`'s certificate and key where `to`'s are, as an operator renewing them would.
void Replace(const Certificate& to, const Certificate& from) {
  std::filesystem::copy_file(from.cert, to.cert, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(from.key, to.key, std::filesystem::copy_options::overwrite_existing);
}

double Series(metrics::Registry& registry, const std::string& series) {
  std::string text = registry.Render();
  size_t at = text.find("\n" + series + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 2));
}

const TlsReloader::Metrics kNames{.reloads = {"mare_test_tls_reloads_total", "reloads"},
                                  .not_after = {"mare_test_tls_certificate_not_after_seconds", "not after"}};

TEST(TlsReloader, ReadsAChangedPairAndKeepsTheOldOneWhenTheNewCannotServe) {
  Certificate live("127.0.0.1", 1), renewed("127.0.0.1", 2), third("127.0.0.1", 3);
  metrics::Registry registry;
  auto reloader = TlsReloader::Start("test", {.cert = live.cert.string(), .key = live.key.string(), .reload_interval_us = 0},
                                     &registry, kNames);
  ASSERT_TRUE(reloader.ok()) << reloader.status().ToString();
  TlsReloader& r = **reloader;
  EXPECT_EQ(r.Current()->serial(), "01");
  EXPECT_EQ(r.Current()->subject(), "CN=127.0.0.1");
  EXPECT_GT(Series(registry, "mare_test_tls_certificate_not_after_seconds"), 1.7e9);

  Replace(live, renewed);
  EXPECT_TRUE(r.Reload());
  EXPECT_EQ(r.Current()->serial(), "02");
  EXPECT_EQ(Series(registry, "mare_test_tls_reloads_total{result=\"ok\"}"), 1);

  // A new certificate whose key is not there yet: refused, the renewed one stays.
  std::filesystem::copy_file(third.cert, live.cert, std::filesystem::copy_options::overwrite_existing);
  EXPECT_FALSE(r.Reload());
  EXPECT_EQ(r.Current()->serial(), "02");
  // Then its key: taken.
  std::filesystem::copy_file(third.key, live.key, std::filesystem::copy_options::overwrite_existing);
  EXPECT_TRUE(r.Reload());
  EXPECT_EQ(r.Current()->serial(), "03");
  // A file cut short, one that is gone: refused, 03 stays.
  std::filesystem::resize_file(live.cert, 40);
  EXPECT_FALSE(r.Reload());
  std::filesystem::remove(live.key);
  EXPECT_FALSE(r.Reload());
  EXPECT_EQ(r.Current()->serial(), "03");
  EXPECT_EQ(Series(registry, "mare_test_tls_reloads_total{result=\"failed\"}"), 3);
  EXPECT_EQ(Series(registry, "mare_test_tls_reloads_total{result=\"ok\"}"), 2);
}

TEST(TlsReloader, SeesAChangeByItselfOnceTheWritesSettle) {
  Certificate live("127.0.0.1", 1), renewed("127.0.0.1", 2);
  metrics::Registry registry;
  auto reloader = TlsReloader::Start("test", {.cert = live.cert.string(), .key = live.key.string(), .reload_interval_us = 20'000},
                                     &registry, kNames);
  ASSERT_TRUE(reloader.ok()) << reloader.status().ToString();
  auto written = Clock::now();
  Replace(live, renewed);
  while (Elapsed(written) < 10 && (*reloader)->Current()->serial() != "02") std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ((*reloader)->Current()->serial(), "02");
  EXPECT_GE(Elapsed(written), 0.9);  // not before the files had been quiet for a second
  EXPECT_EQ(Series(registry, "mare_test_tls_reloads_total{result=\"ok\"}"), 1);
  EXPECT_EQ(Series(registry, "mare_test_tls_reloads_total{result=\"failed\"}"), 0);
}

TEST_F(TlsServerTest, AReloadedCertificateServesNewConnectionsWhileOpenOnesGoOn) {
  Start({});
  RawTlsClient before(port_, cert_.cert.string());
  ASSERT_TRUE(before.connected());
  EXPECT_EQ(before.PeerSerial(), 1);
  Certificate renewed("127.0.0.1", 2);
  Replace(cert_, renewed);
  EXPECT_TRUE(server_->ReloadTls());
  RawTlsClient after(port_, renewed.cert.string());
  ASSERT_TRUE(after.connected());
  EXPECT_EQ(after.PeerSerial(), 2);
  EXPECT_NE(after.Get("/healthz").find("HTTP/1.1 200"), std::string::npos);
  // The connection made before the reload is served on with its certificate.
  EXPECT_NE(before.Get("/healthz").find("HTTP/1.1 200"), std::string::npos);
  EXPECT_EQ(Metric("mare_http_tls_reloads_total{result=\"ok\"}"), 1);
  // A bad pair: refused, new connections still get serial 2.
  Certificate stray("127.0.0.1", 3);
  std::filesystem::copy_file(stray.key, cert_.key, std::filesystem::copy_options::overwrite_existing);
  EXPECT_FALSE(server_->ReloadTls());
  RawTlsClient later(port_, renewed.cert.string());
  ASSERT_TRUE(later.connected());
  EXPECT_EQ(later.PeerSerial(), 2);
  EXPECT_EQ(Metric("mare_http_tls_reloads_total{result=\"failed\"}"), 1);
}

TEST_F(TlsServerTest, WithAClientCaAClientWithoutACertificateItSignedIsRefused) {
  Certificate buoy("buoy-7", 7), stranger("stranger", 8);
  HttpServerOptions options;
  options.tls_client_ca = buoy.cert.string();  // self-signed: its own CA
  Start(options);
  RawTlsClient with(port_, cert_.cert.string(), &buoy);
  ASSERT_TRUE(with.connected());
  EXPECT_NE(with.Get("/healthz").find("HTTP/1.1 200"), std::string::npos);
  // TLS 1.3: the client may finish its side before the server has checked its certificate;
  // either way no request is answered.
  const Certificate* clients[] = {nullptr, &stranger};
  for (const Certificate* client : clients) {
    RawTlsClient without(port_, cert_.cert.string(), client);
    if (without.connected()) {
      EXPECT_EQ(without.Get("/healthz"), "");
    }
  }
  for (int i = 0; i < 100 && Metric("mare_http_tls_handshakes_failed_total{reason=\"client_certificate\"}") < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(Metric("mare_http_tls_handshakes_failed_total{reason=\"client_certificate\"}"), 2);
  EXPECT_EQ(Metric("mare_http_tls_handshakes_failed_total{reason=\"error\"}"), 0);

  Status bad_ca = TlsContext::Load(cert_.cert.string(), cert_.key.string(), cert_.key.string()).status();
  EXPECT_NE(bad_ca.message().find("TLS client CA"), std::string::npos) << bad_ca.ToString();
}

}  // namespace
}  // namespace mare
