#include "sinks/rollup_message.h"

#include <fmt/format.h>
#include <simdjson.h>

#include "reading/parser.h"
#include "reading/timestamp.h"

namespace mare::sinks {

struct RollupReader::Impl {
  simdjson::ondemand::parser parser;
  PaddedBuffer buffer;
};

RollupReader::RollupReader() : impl_(std::make_unique<Impl>()) {}
RollupReader::~RollupReader() = default;

Status RollupReader::Read(std::string_view json, RollupMessage* out) {
  namespace od = simdjson::ondemand;
  impl_->buffer.Assign(json);
  od::document doc;
  auto bad = [&](std::string_view what) {
    return Status::Corruption(fmt::format("rollup message: {}: {}", what, json.substr(0, 200)));
  };
  if (impl_->parser.iterate(impl_->buffer.data(), json.size(), impl_->buffer.capacity() + kParsePadding).get(doc)) {
    return bad("not JSON");
  }
  od::object obj;
  if (doc.get_object().get(obj)) return bad("not an object");
  bool have[6] = {};
  out->source = "stream";
  for (auto f : obj) {
    if (f.error()) return bad("not JSON");
    od::field& field = f.value_unsafe();
    std::string_view key;
    if (field.unescaped_key().get(key)) return bad("bad key");
    od::value& v = field.value();
    auto number = [&](double* d) { return v.get_double().get(*d) == simdjson::SUCCESS; };
    auto integer = [&](int64_t* i) { return v.get_int64().get(*i) == simdjson::SUCCESS; };
    std::string_view text;
    if (key == "sensor_id") {
      int64_t id;
      if (!integer(&id) || id < 0 || id > UINT32_MAX) return bad("sensor_id");
      out->sensor_id = static_cast<uint32_t>(id);
      have[0] = true;
    } else if (key == "field") {
      if (v.get_string().get(text)) return bad("field");
      out->field = text;
      have[1] = true;
    } else if (key == "resolution") {
      if (v.get_string().get(text)) return bad("resolution");
      out->resolution = text;
      have[2] = true;
    } else if (key == "window_start") {
      std::string why;
      if (v.get_string().get(text) || !ParseTimestampText(text, &out->window_start_us, &why)) return bad("window_start");
      have[3] = true;
    } else if (key == "count") {
      if (!integer(&out->count)) return bad("count");
      have[4] = true;
    } else if (key == "revision") {
      if (!integer(&out->revision)) return bad("revision");
      have[5] = true;
    } else if (key == "min") {
      if (!number(&out->min)) return bad("min");
    } else if (key == "max") {
      if (!number(&out->max)) return bad("max");
    } else if (key == "mean") {
      if (!number(&out->mean)) return bad("mean");
    } else if (key == "stddev") {
      if (!number(&out->stddev)) return bad("stddev");
    } else if (key == "first") {
      if (!number(&out->first)) return bad("first");
    } else if (key == "last") {
      if (!number(&out->last)) return bad("last");
    } else if (key == "source") {
      if (v.get_string().get(text)) return bad("source");
      out->source = text;
    } else if (key == "final") {
      if (v.get_bool().get(out->final)) return bad("final");
    }
    // Other keys (window_end, ...) are not needed by sinks.
  }
  for (bool h : have) {
    if (!h) return bad("missing sensor_id, field, resolution, window_start, count or revision");
  }
  return Status::OK();
}

}  // namespace mare::sinks
