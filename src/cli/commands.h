// mare's subcommands. Each Add*Command registers one on the app; its callback runs the
// command and stores the process exit code in *exit_code (0 success, 1 failure, 2 usage).
#pragma once

#include <CLI/CLI.hpp>

namespace mare::cli {

void AddRunCommand(CLI::App& app, int* exit_code);
void AddSimulateCommand(CLI::App& app, int* exit_code);
void AddReplayCommand(CLI::App& app, int* exit_code);
void AddLogCommand(CLI::App& app, int* exit_code);
void AddSinkCommand(CLI::App& app, int* exit_code);
void AddStreamCommand(CLI::App& app, int* exit_code);
void AddImportCommand(CLI::App& app, int* exit_code);
void AddQueryCommand(CLI::App& app, int* exit_code);
void AddForecastCommand(CLI::App& app, int* exit_code);
void AddBatchCommand(CLI::App& app, int* exit_code);
// `mare forecast run`, a subcommand of `mare forecast`.
void AddForecastRunCommand(CLI::App& forecast, int* exit_code);

}  // namespace mare::cli
