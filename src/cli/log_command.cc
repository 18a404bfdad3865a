#include "cli/commands.h"

namespace mare::cli {

void AddLogCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("log", "(not yet built)");
  cmd->callback([exit_code] { *exit_code = 1; });
}

}  // namespace mare::cli
