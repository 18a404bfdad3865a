// udp_sink: the bare receiver that UDP ingest is measured against. recvmmsg into reused
// buffers and discard: the most this machine's loopback delivers to one socket. Prints
// "received N datagrams, B bytes in S s" once no datagram has come for --idle seconds.
//
//   udp_sink PORT [IDLE_SECONDS]
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: udp_sink PORT [IDLE_SECONDS]\n");
    return 2;
  }
  int port = std::atoi(argv[1]);
  double idle = argc > 2 ? std::atof(argv[2]) : 1.0;
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  int buf = 32 << 20;
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) != 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror("bind");
    return 1;
  }
  timeval tv{static_cast<time_t>(idle), static_cast<suseconds_t>((idle - static_cast<double>(static_cast<time_t>(idle))) * 1e6)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::printf("ready\n");
  std::fflush(stdout);
  constexpr int kBatch = 64, kSize = 65536;
  std::vector<char> data(static_cast<size_t>(kBatch) * kSize);
  std::vector<iovec> iov(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  long long datagrams = 0, bytes = 0;
  auto first = std::chrono::steady_clock::now(), last = first;
  for (;;) {
    for (int i = 0; i < kBatch; ++i) {
      iov[static_cast<size_t>(i)] = {data.data() + static_cast<size_t>(i) * kSize, kSize};
      msgs[static_cast<size_t>(i)].msg_hdr = {};
      msgs[static_cast<size_t>(i)].msg_hdr.msg_iov = &iov[static_cast<size_t>(i)];
      msgs[static_cast<size_t>(i)].msg_hdr.msg_iovlen = 1;
    }
    int n = ::recvmmsg(fd, msgs.data(), kBatch, MSG_WAITFORONE, nullptr);
    if (n <= 0) {
      if (datagrams > 0) break;  // idle after traffic: done
      continue;
    }
    auto now = std::chrono::steady_clock::now();
    if (datagrams == 0) first = now;
    last = now;
    datagrams += n;
    for (int i = 0; i < n; ++i) bytes += msgs[static_cast<size_t>(i)].msg_len;
  }
  double secs = std::chrono::duration<double>(last - first).count();
  std::printf("received %lld datagrams, %lld bytes in %.3f s\n", datagrams, bytes, secs);
  return 0;
}
