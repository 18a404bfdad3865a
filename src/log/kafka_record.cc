#include "log/kafka_record.h"

#include <charconv>

namespace mare::log::kafka {
namespace {

int64_t MessageEventTime(const rd_kafka_message_t* m, std::string_view value, int64_t fallback, EventTimeReader* reader) {
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const void* v = nullptr;
    size_t size = 0;
    if (rd_kafka_header_get_last(headers, kEventTimeHeader, &v, &size) == RD_KAFKA_RESP_ERR_NO_ERROR && v) {
      const char* s = static_cast<const char*>(v);
      int64_t ts = 0;
      auto [end, ec] = std::from_chars(s, s + size, ts);
      if (ec == std::errc() && end == s + size) return ts;
    }
  }
  int64_t ts = 0;
  if (reader && reader->Read(value, &ts)) return ts;
  return fallback;
}

}  // namespace

void ToRecord(const rd_kafka_message_t* m, EventTimeReader* reader, ConsumedRecord* r) {
  r->partition = m->partition;
  r->offset = m->offset;
  r->key = std::string_view(static_cast<const char*>(m->key), m->key_len);
  r->value = std::string_view(static_cast<const char*>(m->payload), m->len);
  rd_kafka_timestamp_type_t type;
  int64_t ms = rd_kafka_message_timestamp(m, &type);
  r->append_time_us = ms >= 0 ? ms * 1000 : 0;
  r->timestamp_us = MessageEventTime(m, r->value, r->append_time_us, reader);
}

}  // namespace mare::log::kafka
