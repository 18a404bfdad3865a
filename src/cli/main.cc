// mare: one binary, one subcommand per job. `mare --help` lists them.
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"mare: real-time pipeline for ocean buoys and weather stations"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mare 0.1.0");
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  // The store keeps every live segment file open, and the log its segments: take every
  // descriptor the system allows, as databases do.
  rlimit files;
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  int exit_code = 0;
  mare::cli::AddRunCommand(app, &exit_code);
  mare::cli::AddSimulateCommand(app, &exit_code);
  mare::cli::AddReplayCommand(app, &exit_code);
  mare::cli::AddLogCommand(app, &exit_code);
  mare::cli::AddSinkCommand(app, &exit_code);
  mare::cli::AddStreamCommand(app, &exit_code);
  mare::cli::AddImportCommand(app, &exit_code);
  mare::cli::AddQueryCommand(app, &exit_code);
  mare::cli::AddForecastCommand(app, &exit_code);
  mare::cli::AddBatchCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return exit_code;
}
