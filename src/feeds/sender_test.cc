// Every transport against a real local listener: what arrives is exactly what was sent.
#include "feeds/sender.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <mutex>
#include <thread>

#include "reading/timestamp.h"
#include "feeds/replay.h"
#include "feeds/simulate.h"
#include "feeds/test_util.h"

namespace mare::feeds {
namespace {

using testing::ReadFile;
using testing::SplitLines;
using testing::TempDir;
using testing::WriteFile;

SimulateConfig SmallRun(const std::string& target) {
  SimulateConfig c;
  c.targets = {target};
  c.sensors = 3;
  c.count = 50;
  c.flat_out = true;
  c.seed = 11;
  c.start_micros = *ParseTimestampLoose("2024-06-01 00:00:00");
  c.fault_probability = 0.05;
  return c;
}

// The lines the run writes to a file: what every other transport must deliver.
std::vector<std::string> Expected(SimulateConfig c) {
  TempDir dir;
  c.targets = {"file://" + dir.File("expected")};
  std::atomic<bool> stop{false};
  EXPECT_TRUE(RunSimulate(c, stop).ok());
  return SplitLines(ReadFile(dir.File("expected")));
}

FeedOutcome RunFeed(const SimulateConfig& c) {
  std::atomic<bool> stop{false};
  Result<FeedOutcome> r = RunSimulate(c, stop);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : FeedOutcome{};
}

// A stream listener (TCP or Unix) that accepts connections one after another and keeps
// what each one carried until EOF.
class StreamListener {
 public:
  explicit StreamListener(int fd, int connections = 1, bool close_first = false) : fd_(fd) {
    EXPECT_EQ(::listen(fd_, 4), 0);
    thread_ = std::thread([this, connections, close_first] {
      for (int i = 0; i < connections; ++i) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        if (i + 1 < connections && close_first) {
          ::close(c);
          std::lock_guard<std::mutex> lock(mu_);
          received_.emplace_back();
          continue;
        }
        std::string data;
        char buf[65536];
        ssize_t n;
        while ((n = ::read(c, buf, sizeof(buf))) > 0) data.append(buf, static_cast<size_t>(n));
        ::close(c);
        std::lock_guard<std::mutex> lock(mu_);
        received_.push_back(data);
      }
    });
  }
  ~StreamListener() {
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  // Waits for the listener to finish its connections.
  std::vector<std::string> Received() {
    thread_.join();
    return received_;
  }

 private:
  int fd_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> received_;
};

int BoundTcpSocket(uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

TEST(Targets, ParsesEveryScheme) {
  Result<TargetSpec> udp = ParseTarget("udp://127.0.0.1:20001");
  ASSERT_TRUE(udp.ok());
  EXPECT_EQ(udp->transport, Transport::kUdp);
  EXPECT_EQ(udp->host, "127.0.0.1");
  EXPECT_EQ(udp->port, 20001);
  Result<TargetSpec> v6 = ParseTarget("tcp://[::1]:9000");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  Result<TargetSpec> http = ParseTarget("http://localhost:8080");
  ASSERT_TRUE(http.ok());
  EXPECT_EQ(http->path, "/api/v1/ingest");
  EXPECT_EQ(ParseTarget("http://h:1/x/y")->path, "/x/y");
  EXPECT_EQ(ParseTarget("unix:///run/mare.sock")->path, "/run/mare.sock");
  EXPECT_EQ(ParseTarget("file:///tmp/out.ndjson")->path, "/tmp/out.ndjson");
  EXPECT_EQ(ParseTarget("-")->transport, Transport::kFile);
  Result<TargetSpec> https = ParseTarget("https://mare.example.org");
  ASSERT_TRUE(https.ok());
  EXPECT_EQ(https->transport, Transport::kHttp);
  EXPECT_TRUE(https->tls);
  EXPECT_EQ(https->port, 443);
  EXPECT_EQ(https->path, "/api/v1/ingest");
  EXPECT_FALSE(ParseTarget("http://h:1/")->tls);
  for (const char* bad : {"udp://host", "udp://:9", "tcp://h:0", "tcp://h:70000", "https://h:0/", "https://", "ftp://x",
                          "unix://", "udp://h:9/path", "127.0.0.1:20001"}) {
    EXPECT_FALSE(ParseTarget(bad).ok()) << bad;
  }
}

TEST(Senders, UdpDeliversEveryLineInDatagramsOfBatchLines) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int rcvbuf = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));

  SimulateConfig c = SmallRun(fmt::format("udp://127.0.0.1:{}", ntohs(addr.sin_port)));
  c.batch = 4;
  std::vector<std::string> expected = Expected(c);
  FeedOutcome outcome = RunFeed(c);
  EXPECT_EQ(outcome.summary, "simulate: sent 150 readings to 1 target(s), 0 send errors");

  // Sensor s sends from socket s mod 16 (a fleet, or gateways each serving some sensors): each
  // datagram holds one sensor group's lines, and each sensor's lines arrive in order.
  std::vector<std::string> received;
  size_t datagrams = 0;
  char buf[65536];
  while (received.size() < expected.size()) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    std::string datagram(buf, static_cast<size_t>(n));
    ASSERT_EQ(datagram.back(), '\n');  // whole lines only
    std::vector<std::string> lines = SplitLines(datagram);
    EXPECT_LE(lines.size(), 4u);
    std::set<int> sensors;
    for (const auto& l : lines) sensors.insert(static_cast<int>(testing::ParseLine(l).sensor_id));
    EXPECT_EQ(sensors.size(), 1u) << datagram;  // 3 sensors: each its own socket
    received.insert(received.end(), lines.begin(), lines.end());
    ++datagrams;
  }
  ::close(fd);
  auto by_sensor = [](const std::vector<std::string>& lines) {
    std::map<int, std::vector<std::string>> out;
    for (const auto& l : lines) out[static_cast<int>(testing::ParseLine(l).sensor_id)].push_back(l);
    return out;
  };
  EXPECT_EQ(received.size(), expected.size());
  EXPECT_EQ(by_sensor(received), by_sensor(expected));
  EXPECT_GE(datagrams, 150u / 4);  // at most 4 lines per datagram
}

TEST(Senders, TcpDeliversEveryLine) {
  uint16_t port = 0;
  StreamListener listener(BoundTcpSocket(&port));
  SimulateConfig c = SmallRun(fmt::format("tcp://127.0.0.1:{}", port));
  std::vector<std::string> expected = Expected(c);
  FeedOutcome outcome = RunFeed(c);
  EXPECT_EQ(outcome.send_errors, 0u);
  std::vector<std::string> received = listener.Received();
  ASSERT_EQ(received.size(), 1u);  // one persistent connection
  EXPECT_EQ(SplitLines(received[0]), expected);
}

TEST(Senders, UnixDeliversEveryLine) {
  TempDir dir;
  std::string path = dir.File("mare.sock");
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  StreamListener listener(fd);
  SimulateConfig c = SmallRun("unix://" + path);
  c.batch = 10;
  std::vector<std::string> expected = Expected(c);
  FeedOutcome outcome = RunFeed(c);
  EXPECT_EQ(outcome.send_errors, 0u);
  std::vector<std::string> received = listener.Received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(SplitLines(received[0]), expected);
}

TEST(Senders, TcpReconnectsAfterThePeerGoesAway) {
  uint16_t port = 0;
  StreamListener listener(BoundTcpSocket(&port), 2, /*close_first=*/true);
  Result<TargetSpec> spec = ParseTarget(fmt::format("tcp://127.0.0.1:{}", port));
  std::unique_ptr<Sender> sender = MakeSender(*spec, 1);
  ASSERT_TRUE(sender->Open().ok());
  LineBatch batch;
  size_t delivered = 0;
  std::vector<std::string> sent;
  // The first writes may vanish into the closed connection; later ones must reach the new one.
  for (int i = 0; i < 20; ++i) {
    batch.Clear();
    std::string line = fmt::format("{{\"n\": {}}}\n", i);
    batch.Append(line);
    Status s = sender->Send(batch, &delivered);
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(delivered, 1u);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  sender.reset();
  std::vector<std::string> received = listener.Received();
  ASSERT_EQ(received.size(), 2u);
  std::vector<std::string> lines = SplitLines(received[1]);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back(), "{\"n\": 19}");
  EXPECT_GE(lines.size(), 17u);
}

// An ingest endpoint like mare's: NDJSON in, {"accepted": n} out.
class IngestServer {
 public:
  IngestServer() {
    server_.Post("/api/v1/ingest", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      bodies_.push_back(req.body);
      content_types_.push_back(req.get_header_value("Content-Type"));
      if (!token_.empty() && req.get_header_value("Authorization") != "Bearer " + token_) {
        res.status = 401;
        res.set_content("{\"error\": \"this route needs a token with the ingest scope\"}", "application/json");
        return;
      }
      size_t lines = SplitLines(req.body).size();
      if (status_ != 200) {
        res.status = status_;
        res.set_content("{\"error\": \"down\"}", "application/json");
        return;
      }
      res.set_content(fmt::format("{{\"accepted\": {}, \"rejected\": 0}}", lines - reject_), "application/json");
    });
    server_.set_tcp_nodelay(true);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~IngestServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return fmt::format("http://127.0.0.1:{}/api/v1/ingest", port_); }
  std::vector<std::string> bodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }
  std::vector<std::string> content_types() {
    std::lock_guard<std::mutex> lock(mu_);
    return content_types_;
  }
  int status_ = 200;
  size_t reject_ = 0;
  std::string token_;  // wanted as Authorization: Bearer (401 otherwise), when set

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> bodies_;
  std::vector<std::string> content_types_;
};

std::vector<std::string> Joined(const std::vector<std::string>& bodies) {
  std::vector<std::string> lines;
  for (const std::string& b : bodies) {
    for (std::string& l : SplitLines(b)) lines.push_back(std::move(l));
  }
  return lines;
}

TEST(Senders, HttpPostsOneTickPerRequestByDefault) {
  IngestServer server;
  SimulateConfig c = SmallRun(server.url());
  std::vector<std::string> expected = Expected(c);
  FeedOutcome outcome = RunFeed(c);
  EXPECT_EQ(outcome.summary, "simulate: sent 150 readings to 1 target(s), 0 send errors");
  std::vector<std::string> bodies = server.bodies();
  ASSERT_EQ(bodies.size(), 50u);
  for (const std::string& b : bodies) EXPECT_EQ(SplitLines(b).size(), 3u);
  EXPECT_EQ(server.content_types().front(), "application/x-ndjson");
  EXPECT_EQ(Joined(bodies), expected);
}

TEST(Senders, HttpBatchAndFailures) {
  IngestServer server;
  SimulateConfig c = SmallRun(server.url());
  c.batch = 7;
  FeedOutcome outcome = RunFeed(c);
  EXPECT_EQ(outcome.send_errors, 0u);
  EXPECT_EQ(server.bodies().size(), 22u);  // 150 readings, 7 per POST

  IngestServer partial;
  partial.reject_ = 1;  // the server takes all but one reading of each POST
  c.targets = {partial.url()};
  outcome = RunFeed(c);
  EXPECT_EQ(outcome.send_errors, 22u);
  EXPECT_EQ(outcome.summary, "simulate: sent 150 readings to 1 target(s), 22 send errors");

  IngestServer down;
  down.status_ = 503;
  c.targets = {down.url()};
  outcome = RunFeed(c);
  EXPECT_EQ(outcome.send_errors, 150u);
}

// A server with tokens: without one (or with a wrong one) the first POST is refused with 401,
// and the feed stops at once with an error saying what to do, rather than failing every batch.
TEST(Senders, HttpSendsTheTokenAndStopsWhenRefused) {
  IngestServer server;
  server.token_ = "s3cret";
  for (const char* token : {"", "wrong"}) {
    SimulateConfig c = SmallRun(server.url());
    c.sender.token = token;
    std::atomic<bool> stop{false};
    Result<FeedOutcome> refused = RunSimulate(c, stop);
    ASSERT_FALSE(refused.ok()) << token;
    EXPECT_NE(refused.status().message().find("HTTP 401: the server wants an API token with the ingest scope (--token or $MARE_TOKEN)"),
              std::string::npos)
        << refused.status().ToString();
  }
  EXPECT_EQ(server.bodies().size(), 2u);  // one refused POST per run

  SimulateConfig c = SmallRun(server.url());
  c.sender.token = "s3cret";
  FeedOutcome outcome = RunFeed(c);
  EXPECT_EQ(outcome.summary, "simulate: sent 150 readings to 1 target(s), 0 send errors");
  std::vector<std::string> bodies = server.bodies();
  EXPECT_EQ(Joined({bodies.begin() + 2, bodies.end()}).size(), 150u);
}

TEST(Senders, SeveralTargetsEachGetEverything) {
  IngestServer server;
  TempDir dir;
  SimulateConfig c = SmallRun(server.url());
  c.targets.push_back("file://" + dir.File("copy"));
  FeedOutcome outcome = RunFeed(c);
  EXPECT_EQ(outcome.summary, "simulate: sent 150 readings to 2 target(s), 0 send errors");
  EXPECT_EQ(Joined(server.bodies()), SplitLines(ReadFile(dir.File("copy"))));
}

TEST(Replay, FeedModePostsOneBatchPerInterval) {
  IngestServer server;
  TempDir dir;
  std::string csv = dir.File("minutes.csv");
  std::string text = "timestamp,v\n";
  for (int i = 0; i < 12; ++i) text += fmt::format("2024-01-21 10:{:02}:00,{}\n", i, i);
  WriteFile(csv, text);
  ReplayConfig config;
  config.path = csv;
  config.targets = {server.url()};
  config.speed = 600;                     // a minute of archive every 100 ms: 1.1 s in all
  config.feed_interval_micros = 400'000;  // a POST every 400 ms
  std::atomic<bool> stop{false};
  Result<FeedOutcome> outcome = RunReplay(config, stop);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(outcome->summary, "replay: sent 12 readings to 1 target(s), 0 send errors");
  std::vector<std::string> bodies = server.bodies();
  EXPECT_GE(bodies.size(), 2u);
  EXPECT_LE(bodies.size(), 4u);
  for (const std::string& b : bodies) EXPECT_GE(SplitLines(b).size(), 2u);
  std::vector<std::string> lines = Joined(bodies);
  ASSERT_EQ(lines.size(), 12u);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(testing::ParseLine(lines[static_cast<size_t>(i)]).numbers["v"], i);
}

TEST(Replay, WithoutFeedModeHttpPostsEachReading) {
  IngestServer server;
  TempDir dir;
  std::string csv = dir.File("rows.csv");
  WriteFile(csv, "ts,v\n2024-01-21 10:00:00,1\n2024-01-21 10:01:00,2\n2024-01-21 10:02:00,3\n");
  ReplayConfig config;
  config.path = csv;
  config.targets = {server.url()};
  std::atomic<bool> stop{false};
  Result<FeedOutcome> outcome = RunReplay(config, stop);
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(server.bodies().size(), 3u);
}

}  // namespace
}  // namespace mare::feeds
