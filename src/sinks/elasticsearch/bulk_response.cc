#include "sinks/elasticsearch/bulk_response.h"

#include <fmt/format.h>
#include <simdjson.h>

namespace mare::sinks {
namespace {

using simdjson::ondemand::object;

// "type: reason", then the same of each caused_by, innermost last.
void DescribeError(object error, std::string* out, int depth) {
  std::string type, reason;
  for (auto field : error) {
    std::string_view key;
    if (field.unescaped_key().get(key)) continue;
    if (key == "type") {
      std::string_view v;
      if (!field.value().get_string().get(v)) type = v;
    } else if (key == "reason") {
      std::string_view v;
      if (!field.value().get_string().get(v)) reason = v;
    } else if (key == "caused_by" && depth < 4) {
      object cause;
      if (!field.value().get_object().get(cause)) {
        // Read at once: ondemand cannot come back to it once the loop moves on.
        std::string inner;
        DescribeError(cause, &inner, depth + 1);
        if (!inner.empty()) reason += " (caused by " + inner + ")";
      }
    }
  }
  *out = type.empty() ? reason : (reason.empty() ? type : type + ": " + reason);
}

}  // namespace

BulkItemFate FateOf(int status) {
  if (status >= 200 && status < 300) return BulkItemFate::kDone;
  // A version conflict: the document already holds this or a newer revision (external versions),
  // or, for a `create` (a data stream's), the id is there already: a resend of what was written.
  if (status == 409) return BulkItemFate::kDone;
  if (status == 429 || status >= 500 || status == 0) return BulkItemFate::kRetry;
  return BulkItemFate::kRejected;
}

Status ReadBulkResponse(std::string_view body, std::vector<BulkItemOutcome>* items) {
  items->clear();
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(body);
  simdjson::ondemand::document doc;
  auto bad = [&](std::string_view why) {
    return Status::Corruption(fmt::format("bulk answer: {}: {}", why, body.substr(0, 300)));
  };
  if (parser.iterate(padded).get(doc)) return bad("not JSON");
  object root;
  if (doc.get_object().get(root)) return bad("not an object");
  bool seen_items = false;
  for (auto field : root) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return bad("unreadable key");
    if (key != "items") continue;
    simdjson::ondemand::array array;
    if (field.value().get_array().get(array)) return bad("items is not an array");
    seen_items = true;
    for (auto element : array) {
      object item;
      if (element.get_object().get(item)) return bad("an item is not an object");
      BulkItemOutcome outcome;
      bool seen_action = false;
      for (auto action : item) {  // {"index": {...}}: one key, the action's name
        object result;
        if (action.value().get_object().get(result)) return bad("an item's action is not an object");
        seen_action = true;
        for (auto f : result) {
          std::string_view k;
          if (f.unescaped_key().get(k)) return bad("unreadable key");
          if (k == "status") {
            int64_t status;
            if (f.value().get_int64().get(status)) return bad("status is not a number");
            outcome.status = static_cast<int>(status);
          } else if (k == "error") {
            simdjson::ondemand::value v;
            simdjson::ondemand::json_type type;
            if (f.value().get(v) || v.type().get(type)) return bad("unreadable error");
            object error;
            std::string_view text;
            if (type == simdjson::ondemand::json_type::object && !v.get_object().get(error)) {
              DescribeError(error, &outcome.error, 0);
            } else if (type == simdjson::ondemand::json_type::string && !v.get_string().get(text)) {
              outcome.error = text;
            }
          }
        }
      }
      if (!seen_action) return bad("an item without an action");
      if (outcome.status != 0 && FateOf(outcome.status) != BulkItemFate::kDone && outcome.error.empty()) {
        outcome.error = fmt::format("status {}", outcome.status);
      }
      items->push_back(std::move(outcome));
    }
  }
  if (!seen_items) return bad("no items");
  return Status::OK();
}

Status ReadBulkAnswer(long http_status, std::string_view body, size_t sent, std::vector<BulkItemOutcome>* items) {
  if (http_status == 200) {
    MARE_RETURN_IF_ERROR(ReadBulkResponse(body, items));
    if (items->size() != sent) {
      return Status::Corruption(fmt::format("bulk answer has {} items for {} sent", items->size(), sent));
    }
    return Status::OK();
  }
  const int status = static_cast<int>(http_status);
  if (FateOf(status) != BulkItemFate::kRetry || status == 0) {
    return Status::Unavailable(fmt::format("bulk request answered HTTP {}: {}", http_status, body.substr(0, 300)));
  }
  // {"error":{"root_cause":[...],"type":...,"reason":...},"status":429}; a proxy's page otherwise.
  std::string error;
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(body);
  simdjson::ondemand::document doc;
  object root, e;
  if (!parser.iterate(padded).get(doc) && !doc.get_object().get(root) && !root["error"].get_object().get(e)) {
    DescribeError(e, &error, 0);
  }
  if (error.empty()) error = fmt::format("HTTP {}: {}", http_status, body.substr(0, 200));
  items->assign(sent, BulkItemOutcome{.status = status, .error = error});
  return Status::OK();
}

}  // namespace mare::sinks
