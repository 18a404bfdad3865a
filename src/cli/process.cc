#include "cli/process.h"

#include <unistd.h>

#include <httplib.h>

namespace mare::cli {

sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  return signals;
}

Result<Config> LoadCommandConfig(const std::string& path, const std::vector<std::string>& overrides,
                                 const std::string& data_dir) {
  auto config = LoadConfig(path, overrides);
  if (config.ok() && !data_dir.empty()) config->data_dir = data_dir;
  return config;
}

void ServeMetrics(HttpServer& server, metrics::Registry& registry) {
  server.routes().Get("/metrics", [&registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry.Render(), "text/plain; version=0.0.4");
  });
}

std::string DefaultMemberName() {
  char host[256] = "host";
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(::getpid());
}

}  // namespace mare::cli
