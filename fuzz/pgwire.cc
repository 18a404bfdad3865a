// Fuzz target: bytes a PostgreSQL client sends (startup packet, then frontend messages: simple
// Query, the extended protocol, Close, Sync, Terminate...) to one PgConnection over a socket
// pair, in front of a small store. The connection must end on its own (at the input's end, at
// Terminate or at an error it reports), and what it writes back must be well-formed backend
// messages: a type byte and a length that counts itself and stays within what was written.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "common/log_throttle.h"
#include "common/metrics.h"
#include "common/scratch_dir.h"
#include "pgwire/cancel_registry.h"
#include "pgwire/connection.h"
#include "pgwire/message.h"
#include "pgwire/pgwire_metrics.h"
#include "query/query_gate.h"
#include "store/store.h"
#include "fuzz_check.h"

namespace pgwire = mare::pgwire;
namespace store = mare::store;

using mare::fuzz::Check;

namespace {

constexpr int64_t kT0 = 1'704'067'200'000'000;  // 2024-01-01T00:00:00Z

// Three sensors over two hours, the first in a segment and the second in the memtable, with a
// text field and locations, so that statements have rows of every type to answer.
struct Fixture {
  mare::ScratchDir dir{"mare-fuzz-pgwire"};
  mare::metrics::Registry registry;
  std::unique_ptr<store::Store> store;
  mare::query::QueryGate gate{4};
  pgwire::CancelRegistry cancels;
  std::atomic<int> open{0};
  mare::LogThrottle throttle;
  int stop[2] = {-1, -1};  // never written: the server does not stop during a run
  pgwire::ServerContext ctx;

  Fixture() {
    auto s = store::Store::Open({.dir = dir.path(), .compaction_thread = false}, &registry);
    if (!s.ok() || ::pipe2(stop, O_CLOEXEC) != 0) abort();
    store = std::move(*s);
    for (int hour = 0; hour < 2; ++hour) {
      store->Write([&](store::Store::Batch& b) {
        for (int i = 0; i < 30; ++i) {
          for (uint32_t sensor = 1; sensor <= 3; ++sensor) {
            mare::Reading r;
            r.timestamp_us = kT0 + (hour * 3600 + i * 120) * 1'000'000LL + sensor;
            r.sensor_id = sensor;
            r.numbers.push_back({"temperature", 10 + sensor + i / 8.0});
            if (sensor != 2) r.texts.push_back({"status", i % 4 ? "ok" : "low"});
            r.has_location = sensor != 3;
            r.lat = 42.4 + sensor / 100.0;
            r.lon = 3.1 + sensor / 100.0;
            b.Add(r);
          }
        }
      });
      if (hour == 0 && !store->Flush({0}).ok()) abort();
    }
    ctx.options.message_timeout_us = 2'000'000;
    ctx.options.max_message_bytes = 1 << 20;
    ctx.limits.timeout_us = 2'000'000;
    ctx.limits.max_memory = 64 << 20;
    ctx.store = store.get();
    ctx.gate = &gate;
    ctx.cancels = &cancels;
    ctx.open = &open;
    ctx.stop_fd = stop[0];
    namespace m = mare::pgwire_metrics;
    ctx.connections = &registry.GetGauge(m::kOpenConnections);
    ctx.queries = &registry.GetCounter(m::kQueries);
    ctx.errors = &registry.GetCounter(m::kErrors);
    ctx.refused_tls_required = &registry.GetCounter(m::kConnectionsRefused, {{"reason", "tls_required"}});
    ctx.refused_tls_handshake = &registry.GetCounter(m::kConnectionsRefused, {{"reason", "tls_handshake"}});
    ctx.refused_max_connections = &registry.GetCounter(m::kConnectionsRefused, {{"reason", "max_connections"}});
    ctx.refused_handshakes_log = &throttle;
  }
};

int32_t BigEndian32(const char* p) {
  uint32_t v = (static_cast<uint32_t>(static_cast<unsigned char>(p[0])) << 24) |
               (static_cast<uint32_t>(static_cast<unsigned char>(p[1])) << 16) |
               (static_cast<uint32_t>(static_cast<unsigned char>(p[2])) << 8) | static_cast<unsigned char>(p[3]);
  return static_cast<int32_t>(v);
}

// The answer: single-byte 'N' refusals of SSLRequest or GSSENCRequest first (one per such
// request the input opens with), then typed messages back to back, each whole (the client
// side reads until the server has closed).
void CheckAnswer(const std::string& input, const std::string& out) {
  size_t at = 0;
  size_t in = 0;
  // As the server frames them (PostgreSQL's rule too): a packet of any valid length whose code
  // asks for SSL or GSS encryption gets the one byte, and the whole packet is passed over.
  while (in + 8 <= input.size() && at < out.size()) {
    int32_t length = BigEndian32(input.data() + in), code = BigEndian32(input.data() + in + 4);
    if (length < 8 || static_cast<size_t>(length) > input.size() - in ||
        static_cast<size_t>(length) > pgwire::kMaxStartupBytes ||
        (code != pgwire::kSslRequest && code != pgwire::kGssEncRequest)) {
      break;
    }
    Check(out[at] == 'N', "an SSLRequest or GSSENCRequest without TLS is answered 'N'");
    ++at;
    in += static_cast<size_t>(length);
  }
  while (at < out.size()) {
    Check(out.size() - at >= 5, "a backend message has its type and length");
    int32_t length = BigEndian32(out.data() + at + 1);
    Check(length >= 4, "a backend message's length counts itself");
    Check(static_cast<size_t>(length) <= out.size() - at - 1, "a backend message lies within the answer");
    at += 1 + static_cast<size_t>(length);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fixture;  // for the whole run; its directory is removed at exit
  if (size > (1 << 20)) return 0;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) abort();
  std::string input(reinterpret_cast<const char*>(data), size);
  std::string out;
  // The client's side: writes the input, says it is done, and reads every answer until the
  // server closes (a thread, so that neither side waits on a full socket buffer).
  std::thread client([&] {
    size_t sent = 0;
    while (sent < input.size()) {
      ssize_t n = ::send(sv[0], input.data() + sent, input.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) break;  // the server hung up first
      char buf[65536];
      ssize_t r = ::recv(sv[0], buf, sizeof buf, MSG_DONTWAIT);
      if (r > 0) out.append(buf, static_cast<size_t>(r));
      if (r == 0) break;
      if (r < 0) ::usleep(100);
    }
    ::shutdown(sv[0], SHUT_WR);
    char buf[65536];
    for (ssize_t r; (r = ::recv(sv[0], buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(r));
    ::close(sv[0]);
  });
  {
    pgwire::PgConnection connection(sv[1], fixture.ctx);  // closes sv[1] when it ends
    connection.Serve();
  }
  client.join();
  Check(fixture.open.load() == 0, "a connection that ended is no longer counted open");
  CheckAnswer(input, out);
  return 0;
}
