#include "sources/udp_source.h"
#include "sources/source_metrics.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mare {

Status ResolveAddress(const std::string& host_port, sockaddr_storage* out, unsigned* out_len) {
  size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) return Status::InvalidArgument("address '" + host_port + "' must be host:port");
  std::string host = host_port.substr(0, colon);
  std::string port = host_port.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) return Status::InvalidArgument("address '" + host_port + "': " + gai_strerror(rc));
  std::memcpy(out, res->ai_addr, res->ai_addrlen);
  *out_len = static_cast<unsigned>(res->ai_addrlen);
  ::freeaddrinfo(res);
  return Status::OK();
}

UdpSource::UdpSource(UdpSourceOptions options, metrics::Registry* registry)
    : options_(std::move(options)),
      kernel_drops_(registry->GetCounter(source_metrics::kUdpDatagramsDropped)),
      datagrams_(registry->GetCounter(source_metrics::kUdpDatagramsReceived)),
      buffer_bytes_(registry->GetGauge(source_metrics::kUdpReceiveBufferBytes)) {}

Result<std::unique_ptr<UdpSource>> UdpSource::Start(const UdpSourceOptions& options, Ingest* ingest,
                                                    metrics::Registry* registry,
                                                    const LineProtocolOptions* line_protocol) {
  std::unique_ptr<UdpSource> src(new UdpSource(options, registry));
  if (line_protocol && !ParsePrecision(line_protocol->precision, &src->precision_)) {
    return Status::InvalidArgument("line protocol precision must be ns, us, ms, s, m or h: " + line_protocol->precision);
  }
  sockaddr_storage addr{};
  unsigned addr_len = 0;
  MARE_RETURN_IF_ERROR(ResolveAddress(options.listen, &addr, &addr_len));
  int threads = std::max(1, options.threads);
  for (int i = 0; i < threads; ++i) {
    int fd = ::socket(addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Status::FromErrno("udp socket", errno);
    src->fds_.push_back(fd);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    ::setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
    int want = static_cast<int>(std::min<int64_t>(options.receive_buffer_bytes, INT32_MAX / 2));
    // SO_RCVBUFFORCE passes net.core.rmem_max when privileged; otherwise take what we may.
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    }
    int got = 0;
    socklen_t got_len = sizeof got;
    ::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &got_len);
    src->buffer_bytes_.Set(got);
    if (got < want) {
      spdlog::warn("udp: receive buffer is {} bytes, not the {} asked for (raise net.core.rmem_max)", got, want);
    }
    timeval tv{0, 100'000};  // wake up to notice Stop()
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (i > 0 && src->port_ != 0) {
      // Every receiver binds the port the first one got (matters when asked for port 0).
      if (addr.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(static_cast<uint16_t>(src->port_));
      else reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = htons(static_cast<uint16_t>(src->port_));
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
      return Status::FromErrno("udp bind " + options.listen, errno);
    }
    sockaddr_storage bound{};
    socklen_t bound_len = sizeof bound;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
    src->port_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                                  : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    if (line_protocol) {
      src->line_workers_.push_back(
          std::make_unique<LineProtocolWorker>(ingest, *line_protocol, options.name, Ingest::Acks::kAsync));
    } else {
      src->workers_.push_back(ingest->NewWorker(options.name, Ingest::Acks::kAsync));
    }
  }
  for (size_t i = 0; i < src->fds_.size(); ++i) {
    src->threads_.emplace_back(&UdpSource::Receive, src.get(), src->fds_[i], i);
  }
  return src;
}

void UdpSource::Receive(int fd, size_t receiver) {
  Ingest::Worker* worker = workers_.empty() ? nullptr : workers_[receiver].get();
  LineProtocolWorker* lines = line_workers_.empty() ? nullptr : line_workers_[receiver].get();
  const size_t batch = static_cast<size_t>(std::max(1, options_.batch));
  // One slot per datagram: room for one byte more than the limit (to see oversize) plus the
  // parser's padding. Allocated once.
  const size_t slot = options_.max_datagram_bytes + 1 + kParsePadding;
  std::vector<char> buffers(batch * slot);
  std::vector<iovec> iov(batch);
  std::vector<mmsghdr> msgs(batch);
  constexpr size_t kControl = CMSG_SPACE(sizeof(uint32_t));
  std::vector<char> control(batch * kControl);
  uint32_t last_drops = 0;

  while (!stop_.load(std::memory_order_relaxed)) {
    for (size_t i = 0; i < batch; ++i) {
      iov[i] = {buffers.data() + i * slot, options_.max_datagram_bytes + 1};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = control.data() + i * kControl;
      msgs[i].msg_hdr.msg_controllen = kControl;
    }
    int n = ::recvmmsg(fd, msgs.data(), static_cast<unsigned>(batch), MSG_WAITFORONE, nullptr);
    if (n <= 0) {
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        spdlog::error("udp: recvmmsg: {}", std::strerror(errno));
      }
      continue;
    }
    datagrams_.Add(static_cast<uint64_t>(n));
    for (int i = 0; i < n; ++i) {
      const mmsghdr& m = msgs[static_cast<size_t>(i)];
      std::string_view data(static_cast<const char*>(iov[static_cast<size_t>(i)].iov_base), m.msg_len);
      if (m.msg_len > options_.max_datagram_bytes || (m.msg_hdr.msg_flags & MSG_TRUNC)) {
        std::string why = "datagram of more than max_datagram_bytes = " + std::to_string(options_.max_datagram_bytes) + " bytes";
        std::string_view head = data.substr(0, std::min<size_t>(data.size(), 1024));
        if (lines) lines->Reject(head, RejectReason::kOversized, std::move(why));
        else worker->Reject(head, RejectReason::kOversized, std::move(why));
        continue;
      }
      if (lines) lines->Add(data, precision_);
      else worker->Add(data);
      for (cmsghdr* c = CMSG_FIRSTHDR(&m.msg_hdr); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&m.msg_hdr), c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
          uint32_t drops;
          std::memcpy(&drops, CMSG_DATA(c), sizeof drops);
          if (drops != last_drops) {
            kernel_drops_.Add(drops - last_drops);
            last_drops = drops;
          }
        }
      }
    }
    // UDP acknowledges nothing, and the log counts and logs what it fails to append as it
    // reports; there is no one to hand this Status to.
    if (lines) (void)lines->Flush();
    else (void)worker->Flush();
  }
}

void UdpSource::Stop() {
  if (stop_.exchange(true)) return;
  for (auto& t : threads_) t.join();
}

UdpSource::~UdpSource() {
  Stop();
  for (int fd : fds_) ::close(fd);
}

}  // namespace mare
