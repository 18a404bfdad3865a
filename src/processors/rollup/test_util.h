// Helpers shared by the rollup tests: readings as raw records, and the upserted view of a
// stream of rollup messages (highest revision per key; at equal revision, final wins).
#pragma once

#include <charconv>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_writer.h"
#include "reading/timestamp.h"
#include "processors/rollup/rollup_state.h"

namespace mare::rollup::testing {

struct RawReading {
  uint32_t sensor = 0;
  int64_t ts = 0;
  std::vector<std::pair<std::string, double>> numbers;
};

inline std::string ReadingJson(const RawReading& r) {
  std::string s = "{\"timestamp\":\"" + FormatReadingTime(r.ts) + "\",\"sensor_id\":" + std::to_string(r.sensor);
  for (const auto& [name, v] : r.numbers) {
    s += ",\"" + name + "\":";
    AppendJsonNumber(&s, v);
  }
  s += ",\"location\":{\"lat\":42.5,\"lon\":3.1},\"status\":\"ok \\\"q\\\"\"}";
  return s;
}

struct Upserted {
  int64_t revision = -1;
  bool final = false;
  std::string value;
};

inline int64_t RevisionOf(std::string_view value) {
  size_t at = value.find("\"revision\":");
  int64_t r = -1;
  if (at == std::string_view::npos) return r;
  at += 11;
  std::from_chars(value.data() + at, value.data() + value.size(), r);
  return r;
}

inline bool FinalOf(std::string_view value) { return value.ends_with("\"final\":true}"); }

// The consumer rule of docs/formats/rollups.md.
inline void Upsert(std::map<std::string, Upserted>* table, std::string_view key, std::string_view value) {
  Upserted u{RevisionOf(value), FinalOf(value), std::string(value)};
  auto [it, inserted] = table->try_emplace(std::string(key), u);
  if (inserted) return;
  if (u.revision > it->second.revision || (u.revision == it->second.revision && u.final && !it->second.final)) {
    it->second = u;
  }
}

inline void UpsertAll(std::map<std::string, Upserted>* table, const std::vector<RollupMessage>& messages) {
  for (const auto& m : messages) Upsert(table, m.key, m.value);
}

}  // namespace mare::rollup::testing
