#include "cli/process.h"

#include <unistd.h>

#include <ctime>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "common/time.h"

namespace mare::cli {
namespace {

// A TOML basic string holding s (a path may hold quotes or backslashes).
std::string QuoteTomlString(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

}  // namespace

sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  return signals;
}

bool WaitForStop(const sigset_t& signals, const std::string& command, const std::function<bool()>& ended,
                 const std::function<void(double seconds)>& report, const std::function<void()>& on_hup) {
  constexpr int64_t kReportEveryUs = 10'000'000;
  int64_t last_report = MonotonicMicros();
  for (;;) {
    timespec timeout{1, 0};
    int sig = ::sigtimedwait(&signals, nullptr, &timeout);
    if (sig == SIGINT || sig == SIGTERM) {
      spdlog::info("{}: {} received, stopping", command, sig == SIGINT ? "SIGINT" : "SIGTERM");
      return true;
    }
    if (sig == SIGHUP && on_hup) on_hup();
    if (ended && ended()) return false;
    int64_t now = MonotonicMicros();
    if (now - last_report >= kReportEveryUs) {
      if (report) report(static_cast<double>(now - last_report) / 1e6);
      last_report = now;
    }
  }
}

Result<Config> LoadCommandConfig(const std::string& path, const std::vector<std::string>& overrides,
                                 const std::string& data_dir) {
  // --data-dir is one more override, applied last, so that what derives from data_dir follows it.
  std::vector<std::string> all = overrides;
  if (!data_dir.empty()) all.push_back("data_dir=" + QuoteTomlString(data_dir));
  return LoadConfig(path, all);
}

void ServeMetrics(HttpServer& server, metrics::Registry& registry) {
  server.routes().Get("/metrics", [&registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry.Render(), "text/plain; version=0.0.4");
  });
}

StageCheck ConsumerCheck(std::string component, const log::ConsumerHealth& health, int64_t lag) {
  StageCheck c{.component = std::move(component), .lag = lag};
  if (!health.healthy) {
    c.state = health.stopped ? StageCheck::State::kStopped : StageCheck::State::kRetrying;
    c.reason = health.reason;
    c.failures = health.retries;
  }
  return c;
}

std::string DefaultMemberName() {
  char host[256] = "host";
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(::getpid());
}

}  // namespace mare::cli
