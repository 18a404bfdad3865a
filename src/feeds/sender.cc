#include "feeds/sender.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "common/time.h"

namespace mare::feeds {

namespace {

constexpr int kConnectTimeoutMillis = 3000;
constexpr int64_t kReconnectIntervalMicros = kMicrosPerSecond;
// The largest UDP payload over IPv4 is 65507 bytes; stay a little below it.
constexpr size_t kMaxDatagramBytes = 65000;
constexpr size_t kDatagramsPerCall = 1024;  // sendmmsg's UIO_MAXIOV limit

Status BadTarget(std::string_view url, std::string_view why) {
  return Status::InvalidArgument(fmt::format(
      "target '{}': {} (expected udp://host:port, tcp://host:port, unix:///path, http://host:port/path, "
      "https://host:port/path, file:///path or -)",
      url, why));
}

// Splits "host:port[/rest]" (host may be "[v6]") into its parts.
Status ParseHostPort(std::string_view url, std::string_view rest, bool port_required, uint16_t default_port,
                     TargetSpec* spec) {
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  spec->path = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return BadTarget(url, "unterminated [ in host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return BadTarget(url, "expected :port after ]");
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
  }
  if (host.empty()) return BadTarget(url, "missing host");
  spec->host = std::string(host);
  if (port.empty()) {
    if (port_required) return BadTarget(url, "missing port");
    spec->port = default_port;
    return Status::OK();
  }
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || ptr != port.data() + port.size() || value == 0 || value > 65535) {
    return BadTarget(url, fmt::format("invalid port '{}'", port));
  }
  spec->port = static_cast<uint16_t>(value);
  return Status::OK();
}

void CloseFd(int* fd) {
  if (*fd >= 0) ::close(*fd);
  *fd = -1;
}

Status WriteAll(int fd, std::string_view bytes, const std::string& what) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("write to " + what, errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

// A blocking TCP connection to host:port, giving up after kConnectTimeoutMillis.
Result<int> ConnectTcp(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  std::string service = std::to_string(port);
  int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
  if (rc != 0) return Status::Unavailable(fmt::format("resolve {}: {}", host, ::gai_strerror(rc)));
  Status last = Status::Unavailable(fmt::format("connect {}:{}: no address", host, port));
  int result = -1;
  for (addrinfo* ai = list; ai != nullptr && result < 0; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      last = Status::FromErrno("socket", errno);
      continue;
    }
    int err = 0;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        int ready = ::poll(&p, 1, kConnectTimeoutMillis);
        if (ready <= 0) {
          err = ready == 0 ? ETIMEDOUT : errno;
        } else {
          socklen_t len = sizeof(err);
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        }
      }
    }
    if (err != 0) {
      last = Status::FromErrno(fmt::format("connect {}:{}", host, port), err);
      ::close(fd);
      continue;
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    result = fd;
  }
  ::freeaddrinfo(list);
  if (result < 0) return last;
  return result;
}

Result<int> ConnectUnix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return Status::InvalidArgument("unix socket path too long: " + path);
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno("socket", errno);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    Status s = Status::FromErrno("connect " + path, errno);
    ::close(fd);
    return s;
  }
  return fd;
}

// UDP sends like a fleet: sensor s always sends from socket s mod kUdpSockets, as buoys (or,
// with --batch, gateways that each serve a group of buoys) send from their own addresses. So
// one sensor's datagrams take one path and stay in order, and a receiver using SO_REUSEPORT
// spreads the fleet over its threads as it would real senders.
constexpr size_t kUdpSockets = 16;

class UdpSender : public Sender {
 public:
  UdpSender(TargetSpec spec, size_t lines_per_datagram)
      : Sender(std::move(spec)), lines_per_datagram_(lines_per_datagram == 0 ? 1 : lines_per_datagram) {}
  ~UdpSender() override {
    for (int& fd : fds_) CloseFd(&fd);
  }

  Status Open() override {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* list = nullptr;
    std::string service = std::to_string(spec_.port);
    int rc = ::getaddrinfo(spec_.host.c_str(), service.c_str(), &hints, &list);
    if (rc != 0) return Status::Unavailable(fmt::format("resolve {}: {}", spec_.host, ::gai_strerror(rc)));
    std::memcpy(&addr_, list->ai_addr, list->ai_addrlen);
    addr_len_ = list->ai_addrlen;
    int family = list->ai_family;
    ::freeaddrinfo(list);
    for (size_t i = 0; i < kUdpSockets; ++i) {
      int fd = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (fd < 0) return Status::FromErrno("socket", errno);
      int sndbuf = 4 << 20;  // best effort: room for a burst of datagrams in flat-out mode
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
      fds_.push_back(fd);
    }
    return Status::OK();
  }

  Status Send(const LineBatch& batch, size_t* delivered) override {
    *delivered = 0;
    Status first_error;
    // Each socket's lines, in order.
    by_socket_.resize(fds_.size());
    for (auto& lines : by_socket_) lines.clear();
    for (size_t i = 0; i < batch.size(); ++i) by_socket_[batch.sensors[i] % fds_.size()].push_back(i);

    for (size_t sock = 0; sock < fds_.size(); ++sock) {
      // Pack the socket's lines into datagrams of up to lines_per_datagram_ lines (one iovec
      // per line) and kMaxDatagramBytes.
      const std::vector<size_t>& lines = by_socket_[sock];
      iov_.clear();
      datagrams_.clear();  // (first iovec, iovec count)
      size_t bytes = 0;
      for (size_t line : lines) {
        size_t begin = line == 0 ? 0 : batch.ends[line - 1];
        size_t len = batch.ends[line] - begin;
        if (len > kMaxDatagramBytes) {
          if (first_error.ok()) first_error = Status::InvalidArgument("reading larger than a UDP datagram");
          continue;
        }
        bool fits = !datagrams_.empty() && datagrams_.back().second < lines_per_datagram_ && bytes + len <= kMaxDatagramBytes;
        if (!fits) {
          datagrams_.emplace_back(iov_.size(), 0);
          bytes = 0;
        }
        iov_.push_back(iovec{const_cast<char*>(batch.bytes.data() + begin), len});
        ++datagrams_.back().second;
        bytes += len;
      }
      msgs_.assign(datagrams_.size(), mmsghdr{});
      for (size_t d = 0; d < datagrams_.size(); ++d) {
        msgs_[d].msg_hdr.msg_name = &addr_;
        msgs_[d].msg_hdr.msg_namelen = addr_len_;
        msgs_[d].msg_hdr.msg_iov = &iov_[datagrams_[d].first];
        msgs_[d].msg_hdr.msg_iovlen = datagrams_[d].second;
      }
      size_t next = 0;
      while (next < msgs_.size()) {
        unsigned n = static_cast<unsigned>(std::min(kDatagramsPerCall, msgs_.size() - next));
        int sent = ::sendmmsg(fds_[sock], &msgs_[next], n, 0);
        if (sent < 0) {
          if (errno == EINTR) continue;
          // This datagram failed; count its lines and go on with the rest.
          if (first_error.ok()) first_error = Status::FromErrno("sendmmsg to " + spec_.url, errno);
          ++next;
          continue;
        }
        for (int k = 0; k < sent; ++k) *delivered += datagrams_[next + static_cast<size_t>(k)].second;
        next += static_cast<size_t>(sent);
      }
    }
    return first_error;
  }

 private:
  size_t lines_per_datagram_;
  std::vector<int> fds_;
  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;
  std::vector<std::vector<size_t>> by_socket_;
  std::vector<iovec> iov_;
  std::vector<std::pair<size_t, size_t>> datagrams_;
  std::vector<mmsghdr> msgs_;
};

// tcp and unix: NDJSON on one persistent stream connection.
class StreamSender : public Sender {
 public:
  explicit StreamSender(TargetSpec spec) : Sender(std::move(spec)) {}
  ~StreamSender() override { CloseFd(&fd_); }

  Status Open() override { return Connect(); }

  Status Send(const LineBatch& batch, size_t* delivered) override {
    *delivered = 0;
    if (fd_ < 0) {
      // Down since an earlier failure: try again at most once a second, dropping meanwhile.
      if (MonotonicMicros() - last_attempt_ < kReconnectIntervalMicros) {
        return Status::Unavailable("not connected to " + spec_.url);
      }
      MARE_RETURN_IF_ERROR(Connect());
    }
    Status s = WriteAll(fd_, batch.bytes, spec_.url);
    if (!s.ok()) {
      // The peer may have restarted: reconnect once and resend the whole batch.
      CloseFd(&fd_);
      if (!Connect().ok()) return s;
      s = WriteAll(fd_, batch.bytes, spec_.url);
      if (!s.ok()) {
        CloseFd(&fd_);
        return s;
      }
    }
    *delivered = batch.size();
    return Status::OK();
  }

 private:
  Status Connect() {
    last_attempt_ = MonotonicMicros();
    Result<int> fd = spec_.transport == Transport::kUnix ? ConnectUnix(spec_.path) : ConnectTcp(spec_.host, spec_.port);
    if (!fd) return fd.status();
    fd_ = *fd;
    if (spec_.transport == Transport::kTcp) {
      int one = 1;
      ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    timeval timeout{10, 0};  // a receiver that stops reading fails the write instead of hanging
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    return Status::OK();
  }

  int fd_ = -1;
  int64_t last_attempt_ = 0;
};

class FileSender : public Sender {
 public:
  explicit FileSender(TargetSpec spec) : Sender(std::move(spec)) {}
  ~FileSender() override {
    if (owned_) CloseFd(&fd_);
  }

  Status Open() override {
    if (spec_.path == "-") {
      fd_ = STDOUT_FILENO;
      return Status::OK();
    }
    fd_ = ::open(spec_.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return Status::FromErrno("open " + spec_.path, errno);
    owned_ = true;
    return Status::OK();
  }

  Status Send(const LineBatch& batch, size_t* delivered) override {
    *delivered = 0;
    MARE_RETURN_IF_ERROR(WriteAll(fd_, batch.bytes, spec_.path == "-" ? "stdout" : spec_.path));
    *delivered = batch.size();
    return Status::OK();
  }

 private:
  int fd_ = -1;
  bool owned_ = false;
};

// "https://[::1]:8080" for httplib::Client, which picks plain or TLS from the scheme.
std::string SchemeHostPort(const TargetSpec& spec) {
  bool v6 = spec.host.find(':') != std::string::npos;
  return fmt::format("{}://{}{}{}:{}", spec.tls ? "https" : "http", v6 ? "[" : "", spec.host, v6 ? "]" : "", spec.port);
}

// What to do about an answer that refuses the request itself rather than its readings.
std::string Advice(int status) {
  if (status == 401) return ": the server wants an API token with the ingest scope (--token or $MARE_TOKEN)";
  if (status == 403) return ": the token lacks the ingest scope";
  return "";
}

class HttpSender : public Sender {
 public:
  HttpSender(TargetSpec spec, SenderOptions options)
      : Sender(std::move(spec)), options_(std::move(options)), client_(SchemeHostPort(spec_)) {
    if (!options_.token.empty()) client_.set_bearer_token_auth(options_.token);
    if (spec_.tls) {
      client_.enable_server_certificate_verification(true);
      if (!options_.ca_file.empty()) client_.set_ca_cert_path(options_.ca_file);
    }
    client_.set_keep_alive(true);
    client_.set_tcp_nodelay(true);  // headers and body go in separate writes: no Nagle delay
    client_.set_connection_timeout(kConnectTimeoutMillis / 1000);
    client_.set_read_timeout(30);
    client_.set_write_timeout(30);
  }

  Status Open() override {
    // httplib connects lazily; probe now so an unreachable server fails at start.
    Result<int> fd = ConnectTcp(spec_.host, spec_.port);
    if (!fd) return fd.status();
    ::close(*fd);
    return Status::OK();
  }

  Status Send(const LineBatch& batch, size_t* delivered) override {
    *delivered = 0;
    httplib::Result res = client_.Post(spec_.path, batch.bytes, "application/x-ndjson");
    if (!res) {
      refused_ = res.error() == httplib::Error::SSLServerVerification;
      return Status::Unavailable(fmt::format("POST {}: {}", spec_.url, Describe(res.error())));
    }
    if (res->status != 200) {
      refused_ = res->status == 401 || res->status == 403;
      return Status::IOError(fmt::format("POST {}: HTTP {}{}: {}", spec_.url, res->status, Advice(res->status), res->body.substr(0, 200)));
    }
    uint64_t accepted = 0;
    simdjson::padded_string body(res->body);
    simdjson::ondemand::document doc;
    if (parser_.iterate(body).get(doc) != simdjson::SUCCESS ||
        doc["accepted"].get_uint64().get(accepted) != simdjson::SUCCESS) {
      return Status::Corruption(
          fmt::format("POST {}: reply has no \"accepted\" count: {}", spec_.url, res->body.substr(0, 200)));
    }
    *delivered = std::min<size_t>(accepted, batch.size());
    if (accepted < batch.size()) {
      return Status::IOError(fmt::format("POST {}: server accepted {} of {} readings: {}", spec_.url, accepted,
                                         batch.size(), res->body.substr(0, 200)));
    }
    return Status::OK();
  }

 private:
  std::string Describe(httplib::Error error) const {
    std::string text = httplib::to_string(error);
    if (error == httplib::Error::SSLServerVerification) {
      text = options_.ca_file.empty() ? "the server's certificate does not verify: it is not signed by a CA this system trusts (pass --cacert)"
                                      : "the server's certificate does not verify: it is not signed by --cacert " + options_.ca_file +
                                            ", or does not name " + spec_.host;
    } else if (error == httplib::Error::SSLConnection || error == httplib::Error::Read) {
      if (spec_.tls) text += " (is the server serving TLS on this port? http.tls_cert)";
    }
    return text;
  }

  SenderOptions options_;
  httplib::Client client_;
  simdjson::ondemand::parser parser_;
};

}  // namespace

Result<TargetSpec> ParseTarget(std::string_view url) {
  TargetSpec spec;
  spec.url = std::string(url);
  auto strip = [&](std::string_view prefix) {
    if (url.substr(0, prefix.size()) != prefix) return false;
    url.remove_prefix(prefix.size());
    return true;
  };
  std::string_view full = spec.url;
  if (url == "-") {
    spec.transport = Transport::kFile;
    spec.path = "-";
  } else if (strip("udp://")) {
    spec.transport = Transport::kUdp;
    MARE_RETURN_IF_ERROR(ParseHostPort(full, url, true, 0, &spec));
  } else if (strip("tcp://")) {
    spec.transport = Transport::kTcp;
    MARE_RETURN_IF_ERROR(ParseHostPort(full, url, true, 0, &spec));
  } else if (strip("http://")) {
    spec.transport = Transport::kHttp;
    MARE_RETURN_IF_ERROR(ParseHostPort(full, url, false, 80, &spec));
    if (spec.path.empty() || spec.path == "/") spec.path = "/api/v1/ingest";
  } else if (strip("unix://")) {
    spec.transport = Transport::kUnix;
    spec.path = std::string(url);
    if (spec.path.empty()) return BadTarget(full, "missing socket path");
  } else if (strip("file://")) {
    spec.transport = Transport::kFile;
    spec.path = std::string(url);
    if (spec.path.empty()) return BadTarget(full, "missing file path");
  } else if (strip("https://")) {
    spec.transport = Transport::kHttp;
    spec.tls = true;
    MARE_RETURN_IF_ERROR(ParseHostPort(full, url, false, 443, &spec));
    if (spec.path.empty() || spec.path == "/") spec.path = "/api/v1/ingest";
  } else {
    return BadTarget(full, "unknown scheme");
  }
  if (spec.transport != Transport::kHttp && spec.transport != Transport::kUnix && spec.transport != Transport::kFile &&
      !spec.path.empty()) {
    return BadTarget(full, "unexpected path after host:port");
  }
  return spec;
}

std::unique_ptr<Sender> MakeSender(const TargetSpec& spec, size_t lines_per_datagram, const SenderOptions& options) {
  switch (spec.transport) {
    case Transport::kUdp: return std::make_unique<UdpSender>(spec, lines_per_datagram);
    case Transport::kTcp:
    case Transport::kUnix: return std::make_unique<StreamSender>(spec);
    case Transport::kHttp: return std::make_unique<HttpSender>(spec, options);
    case Transport::kFile: return std::make_unique<FileSender>(spec);
  }
  return nullptr;
}

}  // namespace mare::feeds
