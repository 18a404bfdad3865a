#include "processors/rollup/message_writer.h"

#include <charconv>
#include <cstring>

#include "common/json_writer.h"
#include "common/time.h"

namespace mare::rollup {
namespace {

template <typename Int>
void AppendInt(std::string* out, Int v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, end);
}

// Writing at a pointer, with room made once per message: the bytes of s, or of a literal
// (whose size the compiler knows, so its copy is a few moves).
inline char* Put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}
template <size_t N>
inline char* Put(char* p, const char (&literal)[N]) {
  std::memcpy(p, literal, N - 1);
  return p + N - 1;
}
inline char* PutInt(char* p, int64_t v) { return std::to_chars(p, p + 20, v).ptr; }

// The room a message needs besides its field's name (twice: in the key, and as JSON) and the
// window's common text: its literal text (under 160 bytes), 6 numbers and 4 integers.
constexpr size_t kMessageRoom = 160 + 6 * kMaxDoubleChars + 4 * 20;

}  // namespace

void MessageWriter::AddField(std::string_view name) {
  field_json_.emplace_back();
  AppendJsonString(&field_json_.back(), name);
}

// What is the same for all of a window's messages (resolution, start, end) is written once.
void MessageWriter::Write(uint32_t sensor_id, int32_t partition, const Resolution& res, int64_t start, bool closed,
                          std::span<Aggregate> fields, const std::deque<std::string>& names, RollupMessages* out) {
  char sensor_text[16];
  std::string_view sensor(sensor_text,
                          static_cast<size_t>(std::to_chars(sensor_text, sensor_text + sizeof sensor_text, sensor_id).ptr -
                                              sensor_text));
  std::string& key_tail = key_tail_;  // "/1h/1705831200000000"
  key_tail.clear();
  key_tail += '/';
  key_tail += res.name;
  key_tail += '/';
  AppendInt(&key_tail, start);
  std::string& window = window_text_;  // ",\"resolution\":...,\"count\":"
  window.clear();
  window += ",\"resolution\":";
  AppendJsonString(&window, res.name);
  window += ",\"window_start\":\"";
  AppendTimestamp(&window, start);
  window += "\",\"window_end\":\"";
  AppendTimestamp(&window, start + res.length_us);
  window += "\",\"count\":";
  for (size_t f = 0; f < fields.size(); ++f) {
    Aggregate& a = fields[f];
    if (!(a.dirty & Aggregate::kToEmit)) continue;
    a.dirty &= static_cast<uint8_t>(~Aggregate::kToEmit);
    if (a.count == 0) continue;
    const std::string& name = names[f];
    const std::string& name_json = field_json_[f];
    char* const key = out->Room(kMessageRoom + 2 * sensor.size() + name.size() + name_json.size() + key_tail.size() +
                                window.size());
    char* p = Put(key, sensor);
    *p++ = '/';
    p = Put(p, name);
    p = Put(p, key_tail);
    char* const value = p;
    p = Put(p, "{\"sensor_id\":");
    p = Put(p, sensor);
    p = Put(p, ",\"field\":");
    p = Put(p, name_json);
    p = Put(p, window);
    p = PutInt(p, a.count);
    p = Put(p, ",\"min\":");
    p = WriteJsonNumber(p, a.min);
    p = Put(p, ",\"max\":");
    p = WriteJsonNumber(p, a.max);
    p = Put(p, ",\"mean\":");
    p = WriteJsonNumber(p, a.mean);
    p = Put(p, ",\"stddev\":");
    p = WriteJsonNumber(p, a.stddev());
    p = Put(p, ",\"first\":");
    p = WriteJsonNumber(p, a.first);
    p = Put(p, ",\"last\":");
    p = WriteJsonNumber(p, a.last);
    p = Put(p, ",\"revision\":");
    p = PutInt(p, a.count);
    p = closed ? Put(p, ",\"final\":true}") : Put(p, ",\"final\":false}");
    out->Add(partition, start, key, static_cast<size_t>(value - key), static_cast<size_t>(p - value));
  }
}

}  // namespace mare::rollup
