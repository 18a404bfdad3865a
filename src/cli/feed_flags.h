// The flags `mare simulate` and `mare replay` share: where their readings go (--target) and what
// http(s) targets need besides them (--token, $MARE_TOKEN, --cacert).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "feeds/sender.h"

namespace mare::cli {

void AddFeedTargetFlags(CLI::App* cmd, std::vector<std::string>* targets, feeds::SenderOptions* sender);

}  // namespace mare::cli
