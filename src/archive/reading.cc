#include "archive/reading.h"

namespace mare::archive {

void Reading::Clear() {
  time_micros = 0;
  sensor_id = 0;
  numbers.clear();
  texts.clear();
  location.reset();
}

const double* Reading::Number(std::string_view name) const {
  for (const NumericField& f : numbers) {
    if (f.name == name) return &f.value;
  }
  return nullptr;
}

const std::string* Reading::Text(std::string_view name) const {
  for (const TextField& f : texts) {
    if (f.name == name) return &f.value;
  }
  return nullptr;
}

bool IsFieldName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string ToFieldName(std::string_view header) {
  std::string name;
  bool pending_underscore = false;
  for (char c : header) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    bool word = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!word) {
      pending_underscore = !name.empty();
      continue;
    }
    if (pending_underscore) name.push_back('_');
    pending_underscore = false;
    name.push_back(c);
  }
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) name.insert(name.begin(), '_');
  if (name.size() > kMaxFieldNameBytes) name.resize(kMaxFieldNameBytes);
  return name;
}

}  // namespace mare::archive
