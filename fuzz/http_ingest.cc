// Fuzz target: bytes sent to mare's HTTP server (cpp-httplib's request parser behind mare's
// connection model) and ingest bodies posted to /api/v1/ingest, appended to a real embedded log.
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <simdjson.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "common/metrics.h"
#include "common/scratch_dir.h"
#include "log/embedded_log.h"
#include "server/http_server.h"
#include "sources/http_source.h"
#include "sources/ingest.h"
#include "fuzz_check.h"

using mare::fuzz::Check;

namespace {

// mare run's HTTP ingest path: the server, the HTTP source, ingest and the embedded log (kept
// small by retention, so long runs do not fill the disk), with short deadlines.
struct Fixture {
  mare::ScratchDir dir{"mare-fuzz-http"};
  mare::metrics::Registry registry;
  std::unique_ptr<mare::log::Log> log;
  std::unique_ptr<mare::Ingest> ingest;
  std::unique_ptr<mare::HttpServer> server;
  std::unique_ptr<mare::HttpSource> source;

  Fixture() {
    mare::log::EmbeddedLogOptions o;
    o.dir = dir.path() + "/log";
    o.fsync = mare::log::FsyncPolicy::kNever;
    o.segment_bytes = 1 << 20;
    o.retention_check_interval_us = 1'000'000;
    o.metrics = &registry;
    auto l = mare::log::OpenEmbeddedLog(o);
    if (!l.ok()) abort();
    log = std::move(*l);
    if (!log->CreateTopic({.name = "raw", .partitions = 2, .retention_bytes = 4 << 20}).ok()) abort();
    ingest = std::make_unique<mare::Ingest>(log.get(), mare::IngestOptions{}, nullptr, &registry);
    server = std::make_unique<mare::HttpServer>(
        mare::HttpServerOptions{.threads = 2, .header_timeout_us = 2'000'000, .body_timeout_us = 2'000'000,
                                .idle_timeout_us = 1'000'000, .max_body_bytes = 1 << 20},
        &registry);
    source = std::make_unique<mare::HttpSource>(ingest.get(), server.get(), 2);
    if (!server->Start("127.0.0.1:0").ok()) abort();
  }
  ~Fixture() { server->Stop(); }
};

// A connection to the server from a loopback address of its own. Each exchange leaves this side
// in TIME_WAIT for a minute and thousands run each second: one source address would run out of
// ephemeral ports (the connect fails with EADDRNOTAVAIL), so they rotate over 127.0.0.2-254.
// A connect interrupted by libFuzzer's timer (EINTR) goes on in the kernel: wait for it.
int Connect(int port) {
  static uint32_t next_source = 0;
  for (int attempt = 0;; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      fprintf(stderr, "socket: %s\n", strerror(errno));
      abort();
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in source{};
    source.sin_family = AF_INET;
    source.sin_addr.s_addr = htonl(0x7f000002u + next_source++ % 253);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof source) != 0) {
      fprintf(stderr, "bind: %s\n", strerror(errno));
      abort();
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    if (rc != 0 && errno == EINTR) {
      pollfd p{fd, POLLOUT, 0};
      while (::poll(&p, 1, 10'000) < 0 && errno == EINTR) {
      }
      int error = 0;
      socklen_t len = sizeof error;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
      errno = error;
      rc = error == 0 ? 0 : -1;
    }
    if (rc == 0) return fd;
    int error = errno;
    ::close(fd);
    if ((error == EADDRNOTAVAIL || error == EAGAIN) && attempt < 1000) {
      ::usleep(10'000);
      continue;
    }
    fprintf(stderr, "connect to the server: %s\n", strerror(error));
    abort();
  }
}

// Sends the bytes on a new connection, closes its sending side, and reads the answer to the end.
std::string Exchange(int port, std::string_view request) {
  int fd = Connect(port);
  std::string answer;
  char buf[65536];
  size_t sent = 0;
  bool closed_sending = false;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (!closed_sending) p.events |= POLLOUT;
    // The server's deadlines are 2 s: far longer than this means it hangs.
    int ready = ::poll(&p, 1, 10'000);
    if (ready < 0 && errno == EINTR) continue;  // libFuzzer's timer (SIGALRM) checking for hangs
    Check(ready > 0, "the server answers or closes within its deadlines");
    if (p.revents & POLLOUT) {
      ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
      if (n < 0 || sent == request.size()) {
        ::shutdown(fd, SHUT_WR);
        closed_sending = true;
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      answer.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return answer;
}

constexpr const char* kContentTypes[] = {"application/x-ndjson", "application/json", "text/plain",
                                         "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fixture;
  static simdjson::dom::parser json;
  if (size < 2) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  // Byte 0 even: the rest is sent as it is (the HTTP parser's input). Odd: the rest is an
  // ingest body, posted in a well-formed request with the content type byte 1 picks.
  if (data[0] % 2 == 0) {
    std::string answer = Exchange(fixture.server->port(), rest);
    Check(answer.empty() || answer.rfind("HTTP/1.1 ", 0) == 0, "an answer is HTTP");
    return 0;
  }
  const char* type = kContentTypes[data[1] % std::size(kContentTypes)];
  bool chunked = data[1] & 0x80;
  std::string request = "POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (*type) request += std::string("Content-Type: ") + type + "\r\n";
  if (chunked) {
    request += "Transfer-Encoding: chunked\r\n\r\n";
    char head[32];
    for (size_t at = 0; at < rest.size(); at += 1000) {
      size_t n = std::min<size_t>(1000, rest.size() - at);
      snprintf(head, sizeof head, "%zx\r\n", n);
      request += head;
      request.append(rest.substr(at, n));
      request += "\r\n";
    }
    request += "0\r\n\r\n";
  } else {
    request += "Content-Length: " + std::to_string(rest.size()) + "\r\n\r\n";
    request.append(rest);
  }
  std::string answer = Exchange(fixture.server->port(), request);
  Check(answer.rfind("HTTP/1.1 ", 0) == 0, "a well-formed request is answered");
  int status = std::atoi(answer.c_str() + 9);
  // Ingest takes JSON or NDJSON only: any other type (or none) is what a cross-site form sends.
  if (type != std::string_view(kContentTypes[0]) && type != std::string_view(kContentTypes[1])) {
    Check(status == 415, "a body that is not JSON or NDJSON is refused with 415");
    return 0;
  }
  Check(status == 200, "a well-formed ingest request within the limits is taken");
  size_t body = answer.find("\r\n\r\n");
  Check(body != std::string::npos, "an answer has a body");
  simdjson::dom::element doc;
  Check(!json.parse(answer.substr(body + 4)).get(doc), "the answer is JSON");
  uint64_t accepted = 0, rejected = 0;
  Check(!doc["accepted"].get(accepted) && !doc["rejected"].get(rejected), "the answer counts readings");
  return 0;
}
