#include "dashboard/metrics_text.h"

#include <algorithm>
#include <cstdlib>

namespace mare::dashboard {
namespace {

bool NameChar(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ':'; }

// Parses {a="1",b="x\"y"} starting at text[i] == '{'; leaves i after the '}'.
bool ParseLabels(std::string_view text, size_t& i, metrics::Labels* labels) {
  ++i;
  while (i < text.size() && text[i] != '}') {
    size_t start = i;
    while (i < text.size() && NameChar(text[i])) ++i;
    std::string key(text.substr(start, i - start));
    if (key.empty() || i + 1 >= text.size() || text[i] != '=' || text[i + 1] != '"') return false;
    i += 2;
    std::string value;
    while (i < text.size() && text[i] != '"') {
      if (text[i] == '\\' && i + 1 < text.size()) {
        ++i;
        value += text[i] == 'n' ? '\n' : text[i];
      } else {
        value += text[i];
      }
      ++i;
    }
    if (i >= text.size()) return false;
    ++i;  // closing quote
    labels->emplace_back(std::move(key), std::move(value));
    if (i < text.size() && text[i] == ',') ++i;
  }
  if (i >= text.size()) return false;
  ++i;
  return true;
}

}  // namespace

const std::string& MetricSample::Label(std::string_view key) const {
  static const std::string kNone;
  for (const auto& [k, v] : labels) {
    if (k == key) return v;
  }
  return kNone;
}

std::vector<MetricSample> ParseMetricsText(std::string_view text) {
  std::vector<MetricSample> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line[0] == '#') continue;
    MetricSample s;
    size_t i = 0;
    while (i < line.size() && NameChar(line[i])) ++i;
    s.name = std::string(line.substr(0, i));
    if (s.name.empty()) continue;
    if (i < line.size() && line[i] == '{' && !ParseLabels(line, i, &s.labels)) continue;
    while (i < line.size() && line[i] == ' ') ++i;
    std::string value(line.substr(i));
    size_t space = value.find(' ');  // an optional timestamp follows
    if (space != std::string::npos) value.resize(space);
    if (value.empty()) continue;
    char* parsed_end = nullptr;
    s.value = std::strtod(value.c_str(), &parsed_end);  // also "+Inf", "NaN"
    if (parsed_end == value.c_str()) continue;
    out.push_back(std::move(s));
  }
  return out;
}

bool MetricSet::Matches(const MetricSample& s, const metrics::Labels& match) {
  return std::all_of(match.begin(), match.end(), [&](const auto& kv) { return s.Label(kv.first) == kv.second; });
}

double MetricSet::Sum(std::string_view name, const metrics::Labels& match) const {
  double total = 0;
  for (const auto& s : samples_) {
    if (s.name == name && Matches(s, match)) total += s.value;
  }
  return total;
}

std::optional<double> MetricSet::Find(std::string_view name, const metrics::Labels& match) const {
  for (const auto& s : samples_) {
    if (s.name == name && Matches(s, match)) return s.value;
  }
  return std::nullopt;
}

std::vector<std::string> MetricSet::LabelValues(std::string_view name, std::string_view key) const {
  std::vector<std::string> out;
  for (const auto& s : samples_) {
    if (s.name != name) continue;
    const std::string& v = s.Label(key);
    if (!v.empty() && std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  return out;
}

}  // namespace mare::dashboard
