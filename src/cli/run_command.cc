#include "cli/commands.h"

namespace mare::cli {

void AddRunCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("run", "(not yet built)");
  cmd->callback([exit_code] { *exit_code = 1; });
}

}  // namespace mare::cli
