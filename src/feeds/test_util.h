// Helpers shared by the feeds tests: temporary directories, and NDJSON read back into
// plain structs with simdjson (the same parser mare ingests with).
#pragma once

#include <simdjson.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace mare::feeds::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mare-feeds-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

// One reading as parsed back from its JSON line.
struct Parsed {
  std::string timestamp;
  uint64_t sensor_id = 0;
  bool has_sensor_id = false;
  std::map<std::string, double> numbers;
  std::map<std::string, std::string> texts;
  std::optional<double> lat, lon;
  std::vector<std::string> keys;  // every top-level key, in order
  std::string error;              // non-empty when the line is not a valid reading
};

inline Parsed ParseLine(const std::string& line) {
  Parsed p;
  static thread_local simdjson::ondemand::parser parser;
  simdjson::padded_string json(line);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  if (parser.iterate(json).get(doc) || doc.get_object().get(object)) {
    p.error = "not a JSON object";
    return p;
  }
  for (auto field : object) {
    std::string_view key_view;
    if (field.unescaped_key().get(key_view)) {
      p.error = "bad key";
      return p;
    }
    std::string key(key_view);
    p.keys.push_back(key);
    simdjson::ondemand::value value = field.value();
    simdjson::ondemand::json_type type;
    if (value.type().get(type)) {
      p.error = "bad value for " + key;
      return p;
    }
    if (key == "timestamp") {
      std::string_view s;
      if (value.get_string().get(s)) p.error = "timestamp is not a string";
      p.timestamp = std::string(s);
    } else if (key == "sensor_id") {
      if (value.get_uint64().get(p.sensor_id)) p.error = "sensor_id is not a non-negative integer";
      p.has_sensor_id = true;
    } else if (key == "location") {
      simdjson::ondemand::object loc;
      double lat = 0, lon = 0;
      if (value.get_object().get(loc) || loc["lon"].get_double().get(lon) || loc["lat"].get_double().get(lat)) {
        p.error = "bad location";
      }
      p.lat = lat;
      p.lon = lon;
    } else if (type == simdjson::ondemand::json_type::number) {
      double v = 0;
      if (value.get_double().get(v)) p.error = "bad number for " + key;
      p.numbers[key] = v;
    } else if (type == simdjson::ondemand::json_type::string) {
      std::string_view s;
      if (value.get_string().get(s)) p.error = "bad string for " + key;
      p.texts[key] = std::string(s);
    } else {
      p.error = "unexpected type for " + key;  // null, bool, array: never written
    }
  }
  return p;
}

}  // namespace mare::feeds::testing
