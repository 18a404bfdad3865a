#include "processors/rollup/record_parser.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "reading/json_number.h"

namespace mare::rollup {
namespace {

// The length of a name up to its closing quote. Names have no escapes, and simdjson found the
// quote before the document's end, so the 16-byte loads stay within the padding.
size_t KeyLength(const char* k) {
#if defined(__SSE2__)
  for (size_t n = 0;; n += 16) {
    __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(k + n));
    auto quotes = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8('"'))));
    if (quotes != 0) return n + static_cast<size_t>(__builtin_ctz(quotes));
  }
#else
  size_t n = 0;
  while (k[n] != '"') ++n;
  return n;
#endif
}

}  // namespace

bool RecordParser::Numbers(std::string_view value, std::vector<NumberField>* out) {
  out->clear();
  buffer_.Assign(value);
  // simdjson scans the whole document for balanced brackets when the byte past it is '}', as
  // a longer value parsed before leaves there often. A zero, as in simdjson's own padded
  // strings, spares that scan, and keeps a damaged value's fate independent of earlier ones.
  buffer_.data()[value.size()] = '\0';
  simdjson::ondemand::document doc;
  if (json_.iterate(buffer_.data(), buffer_.size(), buffer_.capacity() + kParsePadding).get(doc)) return false;
  simdjson::ondemand::object object;
  if (doc.get_object().get(object)) return false;
  for (auto f : object) {
    if (f.error()) return false;
    simdjson::ondemand::field& field = f.value_unsafe();  // by reference: copying a field is slow
    const char* k = field.key().raw();
    std::string_view key(k, KeyLength(k));
    if (key == "timestamp" || key == "sensor_id") continue;
    simdjson::ondemand::value v = field.value();
    simdjson::ondemand::json_type type;
    if (v.type().get(type)) return false;
    if (type != simdjson::ondemand::json_type::number) continue;
    double d;
    std::string_view token = v.raw_json_token();
    if (v.get_double().get(d)) return false;
    CorrectLongNumber(token, &d);  // a reading another Kafka producer wrote may have 20 digits
    out->push_back({key, d});
  }
  return true;
}

}  // namespace mare::rollup
