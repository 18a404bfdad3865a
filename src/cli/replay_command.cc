#include "cli/commands.h"

namespace mare::cli {

void AddReplayCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("replay", "(not yet built)");
  cmd->callback([exit_code] { *exit_code = 1; });
}

}  // namespace mare::cli
