// udp_sink: the bare receiver that UDP ingest is measured against: THREADS receivers, each
// with its own SO_REUSEPORT socket (as mare's UDP source has), calling recvmmsg into reused
// buffers and discarding. It is the most this machine's loopback delivers. Once no datagram
// has come for IDLE seconds after traffic it prints
//   received N datagrams, B bytes in S s
// where S runs from the first datagram to the last.
//
//   udp_sink PORT [IDLE_SECONDS=1] [THREADS=2]
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Receiver {
  int fd = -1;
  long long datagrams = 0, bytes = 0;
  Clock::time_point first{}, last{};
};

void Receive(Receiver* r, std::atomic<long long>* total, double idle) {
  constexpr int kBatch = 64, kSize = 65536;
  std::vector<char> data(static_cast<size_t>(kBatch) * kSize);
  std::vector<iovec> iov(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  auto idle_since = Clock::now();
  for (;;) {
    for (size_t i = 0; i < kBatch; ++i) {
      iov[i] = {data.data() + i * kSize, kSize};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = ::recvmmsg(r->fd, msgs.data(), kBatch, MSG_WAITFORONE, nullptr);
    auto now = Clock::now();
    if (n <= 0) {
      // Done once the whole sink has seen traffic and this socket has been idle long enough.
      if (total->load() > 0 && std::chrono::duration<double>(now - idle_since).count() >= idle) break;
      continue;
    }
    idle_since = now;
    if (r->datagrams == 0) r->first = now;
    r->last = now;
    r->datagrams += n;
    total->fetch_add(n);
    for (int i = 0; i < n; ++i) r->bytes += msgs[static_cast<size_t>(i)].msg_len;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: udp_sink PORT [IDLE_SECONDS] [THREADS]\n");
    return 2;
  }
  int port = std::atoi(argv[1]);
  double idle = argc > 2 ? std::atof(argv[2]) : 1.0;
  int threads = argc > 3 ? std::max(1, std::atoi(argv[3])) : 2;
  std::vector<Receiver> receivers(static_cast<size_t>(threads));
  for (Receiver& r : receivers) {
    r.fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    int one = 1, buf = 32 << 20;
    ::setsockopt(r.fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (::setsockopt(r.fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) != 0) {
      ::setsockopt(r.fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    }
    timeval tv{0, 100'000};
    ::setsockopt(r.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(r.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      std::perror("bind");
      return 1;
    }
  }
  std::printf("ready\n");
  std::fflush(stdout);
  std::atomic<long long> total{0};
  std::vector<std::thread> pool;
  for (Receiver& r : receivers) pool.emplace_back(Receive, &r, &total, idle);
  for (auto& t : pool) t.join();
  long long datagrams = 0, bytes = 0;
  Clock::time_point first = Clock::time_point::max(), last{};
  for (const Receiver& r : receivers) {
    datagrams += r.datagrams;
    bytes += r.bytes;
    if (r.datagrams) {
      first = std::min(first, r.first);
      last = std::max(last, r.last);
    }
  }
  double secs = datagrams ? std::chrono::duration<double>(last - first).count() : 0;
  std::printf("received %lld datagrams, %lld bytes in %.3f s\n", datagrams, bytes, secs);
  return 0;
}
