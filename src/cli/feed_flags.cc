#include "cli/feed_flags.h"

namespace mare::cli {

void AddFeedTargetFlags(CLI::App* cmd, std::vector<std::string>* targets, feeds::SenderOptions* sender) {
  cmd->add_option("--target", *targets,
                  "Where to send readings, repeatable: udp://host:port, tcp://host:port, unix:///path.sock, "
                  "http://host:port/api/v1/ingest, https://host:port/api/v1/ingest, file:///path or - (stdout)")
      ->capture_default_str();
  // From the environment, so that a token need not stand in the command line (and `ps`).
  cmd->add_option("--token", sender->token,
                  "http(s) targets: an API token with the ingest scope, for a mare with http.tokens")
      ->envname("MARE_TOKEN");
  cmd->add_option("--cacert", sender->ca_file,
                  "https targets: the PEM CA certificate(s) that sign the server's certificate (default: the system's CAs)")
      ->check(CLI::ExistingFile);
}

}  // namespace mare::cli
