// udp_blast: the benchmark's UDP sender. Loads NDJSON readings from a file once, packs them
// into datagrams of LINES readings (the lines of sensor s go out from socket s mod 16, as from
// a fleet of buoys or gateways, so each sensor's readings stay in order and SO_REUSEPORT
// receivers share the load), then sends them with sendmmsg, flat out or paced to RATE
// datagrams per second. Prints "sent D datagrams (R readings) in S s".
//
//   udp_blast PORT FILE [LINES=1] [RATE=0 (flat out)] [REPEAT=1]
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: udp_blast PORT FILE [LINES] [RATE] [REPEAT]\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const size_t lines_per = argc > 3 ? std::max(1, std::atoi(argv[3])) : 1;
  const double rate = argc > 4 ? std::atof(argv[4]) : 0;
  const int repeat = argc > 5 ? std::max(1, std::atoi(argv[5])) : 1;
  constexpr size_t kSockets = 16, kBatch = 64;

  std::ifstream in(argv[2], std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();

  // Datagram payloads per socket, packed in file order.
  std::vector<std::vector<std::string>> payloads(kSockets);
  std::vector<size_t> pending_lines(kSockets, 0);
  size_t readings = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) continue;
    size_t at = line.find("\"sensor_id\":");
    unsigned long sensor = at == std::string_view::npos ? 0 : std::strtoul(line.data() + at + 12, nullptr, 10);
    size_t s = sensor % kSockets;
    if (pending_lines[s] == 0 || pending_lines[s] == lines_per || payloads[s].back().size() + line.size() > 60000) {
      payloads[s].emplace_back();
      pending_lines[s] = 0;
    }
    payloads[s].back().append(line).push_back('\n');
    ++pending_lines[s];
    ++readings;
  }
  // Interleave the sockets' datagrams in runs of kBatch (one sendmmsg each), keeping each
  // socket's order.
  struct Datagram { size_t socket; const std::string* payload; };
  std::vector<Datagram> order;
  for (size_t i = 0;; i += kBatch) {
    bool any = false;
    for (size_t s = 0; s < kSockets; ++s) {
      for (size_t j = i; j < std::min(i + kBatch, payloads[s].size()); ++j) {
        order.push_back({s, &payloads[s][j]});
        any = true;
      }
    }
    if (!any) break;
  }

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<int> fds;
  for (size_t s = 0; s < kSockets; ++s) {
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    int buf = 4 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    fds.push_back(fd);
  }

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  size_t sent = 0;
  std::vector<iovec> iov(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  for (int r = 0; r < repeat; ++r) {
    for (size_t i = 0; i < order.size();) {
      // A run of consecutive datagrams for one socket, up to kBatch, in one sendmmsg.
      size_t s = order[i].socket, n = 0;
      while (n < kBatch && i + n < order.size() && order[i + n].socket == s) {
        iov[n] = {const_cast<char*>(order[i + n].payload->data()), order[i + n].payload->size()};
        msgs[n].msg_hdr = {};
        msgs[n].msg_hdr.msg_name = &addr;
        msgs[n].msg_hdr.msg_namelen = sizeof addr;
        msgs[n].msg_hdr.msg_iov = &iov[n];
        msgs[n].msg_hdr.msg_iovlen = 1;
        ++n;
      }
      int k = ::sendmmsg(fds[s], msgs.data(), static_cast<unsigned>(n), 0);
      if (k <= 0) continue;
      i += static_cast<size_t>(k);
      sent += static_cast<size_t>(k);
      if (rate > 0) {
        auto due = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(static_cast<double>(sent) / rate));
        if (due > Clock::now()) std::this_thread::sleep_until(due);
      }
    }
  }
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("sent %zu datagrams (%zu readings) in %.3f s\n", sent, readings * static_cast<size_t>(repeat), secs);
  return 0;
}
