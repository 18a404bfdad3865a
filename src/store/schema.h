// Schema: the store's fields, each a (name, type) with a store-wide id, in order of first
// appearance. A new field in the readings simply becomes a new id. Append-only and shared by
// the writer and the queries (thread-safe).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/block.h"

namespace mare::store {

struct Field {
  std::string name;
  FieldType type = FieldType::kNumber;
};

class Schema {
 public:
  // The id of (name, type), adding it when new.
  uint32_t Intern(std::string_view name, FieldType type) {
    std::lock_guard lock(mu_);
    auto it = ids_.find({std::string(name), type});
    if (it != ids_.end()) return it->second;
    uint32_t id = static_cast<uint32_t>(fields_.size());
    fields_.push_back(Field{std::string(name), type});
    ids_.emplace(std::make_pair(std::string(name), type), id);
    return id;
  }
  std::optional<uint32_t> Find(std::string_view name, FieldType type) const {
    std::lock_guard lock(mu_);
    auto it = ids_.find({std::string(name), type});
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<Field> Fields() const {
    std::lock_guard lock(mu_);
    return fields_;
  }
  Field Get(uint32_t id) const {
    std::lock_guard lock(mu_);
    return fields_.at(id);
  }

 private:
  mutable std::mutex mu_;
  std::vector<Field> fields_;
  std::map<std::pair<std::string, FieldType>, uint32_t> ids_;
};

}  // namespace mare::store
