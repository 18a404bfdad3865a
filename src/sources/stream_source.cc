#include "sources/stream_source.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "sources/udp_source.h"
#include "sources/source_metrics.h"

namespace mare {

struct StreamSource::Connection {
  int fd;
  PaddedBuffer buffer;
  size_t consumed = 0;       // bytes at the front already handed to the worker
  bool discarding = false;   // skipping the rest of an oversized line
  bool closed = false;
};

namespace {

// "0660", "660" or "0o660": permission bits, nothing else (no setuid, sticky or file type).
Result<mode_t> ParseSocketMode(std::string_view text) {
  std::string_view digits = text.starts_with("0o") ? text.substr(2) : text;
  mode_t mode = 0;
  bool ok = !digits.empty() && digits.size() <= 4;
  for (char c : digits) {
    ok = ok && c >= '0' && c <= '7';
    mode = mode * 8 + static_cast<mode_t>(c - '0');
  }
  if (!ok || mode > 0777) {
    return Status::InvalidArgument("sources.unix.mode \"" + std::string(text) + "\": an octal mode such as \"0660\" is expected");
  }
  return mode;
}

}  // namespace

StreamSource::StreamSource(StreamSourceOptions options, metrics::Registry* registry)
    : options_(std::move(options)),
      connections_(registry->GetGauge(source_metrics::kOpenConnections, {{"source", options_.name}})),
      accepted_connections_(registry->GetCounter(source_metrics::kConnectionsAccepted,
                                                 {{"source", options_.name}})) {}

Result<std::unique_ptr<StreamSource>> StreamSource::Start(const StreamSourceOptions& options, Ingest* ingest,
                                                          metrics::Registry* registry,
                                                          const LineProtocolOptions* line_protocol) {
  std::unique_ptr<StreamSource> src(new StreamSource(options, registry));
  src->max_line_ = ingest->options().parser.max_reading_bytes;
  if (line_protocol) {
    if (!ParsePrecision(line_protocol->precision, &src->precision_)) {
      return Status::InvalidArgument("line protocol precision must be ns, us, ms, s, m or h: " + line_protocol->precision);
    }
    src->max_line_ = line_protocol->max_line_bytes;
  }
  if (options.name == "unix") {
    Result<mode_t> mode = ParseSocketMode(options.mode);
    if (!mode.ok()) return mode.status();
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (options.listen.size() >= sizeof addr.sun_path) return Status::InvalidArgument("unix socket path too long: " + options.listen);
    std::strcpy(addr.sun_path, options.listen.c_str());
    ::unlink(options.listen.c_str());  // a stale socket from a previous run
    src->listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (src->listen_fd_ < 0) return Status::FromErrno("unix socket", errno);
    if (::bind(src->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      return Status::FromErrno("unix bind " + options.listen, errno);
    }
    // Before listen(): until then a connect is refused, so the umask's mode is never usable.
    if (::chmod(options.listen.c_str(), *mode) != 0) return Status::FromErrno("unix chmod " + options.listen, errno);
  } else {
    sockaddr_storage addr{};
    unsigned len = 0;
    MARE_RETURN_IF_ERROR(ResolveAddress(options.listen, &addr, &len));
    src->listen_fd_ = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (src->listen_fd_ < 0) return Status::FromErrno("tcp socket", errno);
    int one = 1;
    ::setsockopt(src->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(src->listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      return Status::FromErrno("tcp bind " + options.listen, errno);
    }
    sockaddr_storage bound{};
    socklen_t bound_len = sizeof bound;
    ::getsockname(src->listen_fd_, reinterpret_cast<sockaddr*>(&bound), &bound_len);
    src->port_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                                  : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  }
  if (::listen(src->listen_fd_, 1024) != 0) return Status::FromErrno("listen " + options.listen, errno);
  src->epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (src->epoll_fd_ < 0) return Status::FromErrno("epoll_create1", errno);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // nullptr marks the listening socket
  ::epoll_ctl(src->epoll_fd_, EPOLL_CTL_ADD, src->listen_fd_, &ev);
  if (line_protocol) {
    src->lines_ = std::make_unique<LineProtocolPipeline>(ingest, *line_protocol, options.name);
  } else {
    src->worker_ = ingest->NewWorker(options.name);
  }
  src->thread_ = std::thread(&StreamSource::Loop, src.get());
  return src;
}

void StreamSource::Loop() {
  constexpr size_t kReadChunk = 64 * 1024;
  std::unordered_map<int, std::unique_ptr<Connection>> conns;
  std::vector<epoll_event> events(256);
  std::vector<Connection*> touched;

  auto add = [&](std::string_view data) {
    if (lines_) lines_->Add(data, precision_);
    else worker_->Add(data);
  };
  auto reject = [&](std::string_view raw, std::string detail) {
    if (lines_) lines_->Reject(raw, RejectReason::kOversized, std::move(detail));
    else worker_->Reject(raw, RejectReason::kOversized, std::move(detail));
  };
  // Line protocol: handed to the pipeline's ingest thread, which logs a failed append itself.
  auto flush = [&] {
    if (!lines_) return worker_->Flush();
    lines_->Flush();
    return Status::OK();
  };
  auto hand_over = [&](Connection* c, bool at_eof) {
    // Gives the worker every complete line after `consumed`; at EOF also the unterminated tail.
    if (c->discarding) {
      size_t nl = c->buffer.view().find('\n', c->consumed);
      if (nl == std::string_view::npos) {
        c->consumed = c->buffer.size();
        return;
      }
      c->discarding = false;
      c->consumed = nl + 1;
    }
    std::string_view data = c->buffer.view().substr(c->consumed);
    size_t last_nl = data.rfind('\n');
    size_t take = at_eof ? data.size() : (last_nl == std::string_view::npos ? 0 : last_nl + 1);
    if (take > 0) {
      add(data.substr(0, take));
      c->consumed += take;
    }
    // A partial line that already exceeds the limit cannot become valid: reject it now.
    if (!at_eof && c->buffer.size() - c->consumed > max_line_) {
      std::string_view partial = c->buffer.view().substr(c->consumed);
      reject(partial.substr(0, 1024), "line longer than " + std::string(lines_ ? "max_line_bytes" : "max_reading_bytes") +
                                          " = " + std::to_string(max_line_));
      c->consumed = c->buffer.size();
      c->discarding = true;
    }
  };

  while (!stop_.load(std::memory_order_relaxed)) {
    int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 100);
    if (n < 0 && errno != EINTR) {
      spdlog::error("{}: epoll_wait: {}", options_.name, std::strerror(errno));
      break;
    }
    touched.clear();
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Connection*>(events[static_cast<size_t>(i)].data.ptr);
      if (c == nullptr) {
        for (;;) {
          int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          if (static_cast<int>(conns.size()) >= options_.max_connections) {
            ::close(fd);
            continue;
          }
          auto conn = std::make_unique<Connection>();
          conn->fd = fd;
          conn->buffer.Reserve(kReadChunk * 2);
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLRDHUP;
          ev.data.ptr = conn.get();
          ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
          conns[fd] = std::move(conn);
          accepted_connections_.Add();
        }
        connections_.Set(static_cast<double>(conns.size()));
        continue;
      }
      // Read what is there (bounded, so one busy client cannot starve the others).
      bool eof = false;
      for (int reads = 0; reads < 4; ++reads) {
        c->buffer.Reserve(c->buffer.size() + kReadChunk);
        ssize_t r = ::read(c->fd, c->buffer.data() + c->buffer.size(), kReadChunk);
        if (r > 0) {
          c->buffer.set_size(c->buffer.size() + static_cast<size_t>(r));
          if (static_cast<size_t>(r) < kReadChunk) break;
          continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) eof = true;
        break;
      }
      hand_over(c, eof);
      c->closed = eof;
      touched.push_back(c);
    }
    if (touched.empty()) continue;
    Status s = flush();
    if (!s.ok()) spdlog::error("{}: readings lost, log append failed: {}", options_.name, s.ToString());
    for (Connection* c : touched) {
      if (c->closed) {
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
        ::close(c->fd);
        conns.erase(c->fd);
        continue;
      }
      // Keep only the unconsumed tail, at the front.
      size_t rest = c->buffer.size() - c->consumed;
      std::memmove(c->buffer.data(), c->buffer.data() + c->consumed, rest);
      c->buffer.set_size(rest);
      c->consumed = 0;
    }
    connections_.Set(static_cast<double>(conns.size()));
  }
  // Shutting down: what clients sent completely is still appended.
  for (auto& [fd, c] : conns) {
    hand_over(c.get(), false);
    ::close(fd);
  }
  Status s = flush();
  if (!s.ok()) spdlog::error("{}: log append failed at shutdown: {}", options_.name, s.ToString());
  if (lines_) lines_->Close();
}

void StreamSource::Stop() {
  if (stop_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
}

StreamSource::~StreamSource() {
  Stop();
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (options_.name == "unix") ::unlink(options_.listen.c_str());
}

}  // namespace mare
