// RowBinary: the ClickHouse input format the sink sends (docs/formats/clickhouse.md): each row
// its columns' values back to back, in the INSERT's column order, no separators. Fixed-width
// numbers little-endian; String a LEB128 length then the bytes; Nullable(T) a byte 1 (NULL,
// nothing follows) or 0 then T; Array(T) a LEB128 count then the elements; DateTime a UInt32
// of seconds since the epoch.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace mare::sinks::row_binary {

static_assert(std::endian::native == std::endian::little, "RowBinary is little-endian: values are copied as they are");

template <typename T>
inline void AppendFixed(std::string* out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out->append(bytes, sizeof(T));
}

inline void AppendVarUInt(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

inline void AppendString(std::string* out, std::string_view s) {
  AppendVarUInt(out, s.size());
  out->append(s);
}

inline void AppendNullableFloat64(std::string* out, bool present, double v) {
  out->push_back(present ? 0 : 1);
  if (present) AppendFixed<double>(out, v);
}

// The same, written at a cursor into room already made (a row's size counted first, then one
// resize: a call per value to std::string::append cost more than the row's bytes).
inline size_t VarUIntSize(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}
inline size_t StringSize(std::string_view s) { return VarUIntSize(s.size()) + s.size(); }

template <typename T>
inline void PutFixed(char** at, T value) {
  std::memcpy(*at, &value, sizeof(T));
  *at += sizeof(T);
}

inline void PutVarUInt(char** at, uint64_t v) {
  char* p = *at;
  while (v >= 0x80) {
    *p++ = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  *at = p;
}

inline void PutString(char** at, std::string_view s) {
  PutVarUInt(at, s.size());
  if (!s.empty()) std::memcpy(*at, s.data(), s.size());
  *at += s.size();
}

}  // namespace mare::sinks::row_binary
