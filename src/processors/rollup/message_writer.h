// MessageWriter: the text of the rollups topic's messages (docs/formats/rollups.md), one per
// changed aggregate of a window, written straight into RollupMessages' blocks.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "processors/rollup/aggregate.h"
#include "processors/rollup/rollup_messages.h"
#include "processors/rollup/window.h"

namespace mare::rollup {

class MessageWriter {
 public:
  // Field ids are RollupState's: AddField is called with each new name, in id order.
  void AddField(std::string_view name);
  void ClearFields() { field_json_.clear(); }

  // Appends to *out the messages of the window's aggregates with Aggregate::kToEmit set (the
  // bit is cleared; those with no reading are skipped). names: the fields' names by id.
  void Write(uint32_t sensor_id, int32_t partition, const Resolution& resolution, int64_t start, bool closed,
             std::span<Aggregate> fields, const std::deque<std::string>& names, RollupMessages* out);

 private:
  std::vector<std::string> field_json_;  // by id: the name as a JSON string
  std::string key_tail_, window_text_;   // scratch of Write
};

}  // namespace mare::rollup
