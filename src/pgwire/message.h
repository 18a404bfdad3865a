// The PostgreSQL protocol v3 message codec (docs/formats/pgwire.md): a backend message is built
// with MessageWriter (type byte, int32 length patched at the end, then the fields, big-endian);
// a frontend message's body is read field by field with MessageReader, every read checked
// against the bytes that are there, so a malformed message is a refusal and never a read past it.
//
//   MessageWriter w(&out);
//   w.Begin('Z'); w.Byte('I'); w.End();
//   MessageReader r(body);
//   std::string_view name; if (!r.CString(&name)) return ProtocolViolation(...);
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mare::pgwire {

// The codes of the untyped first messages (the int32 after the length).
inline constexpr int32_t kProtocolV3 = 196608;  // 3 << 16
inline constexpr int32_t kSslRequest = 80877103;
inline constexpr int32_t kGssEncRequest = 80877104;
inline constexpr int32_t kCancelRequest = 80877102;
// A startup packet is small (a few parameters); PostgreSQL refuses one above 10,000 bytes.
inline constexpr size_t kMaxStartupBytes = 10'000;

// What a message's length field (which counts itself, not the type byte) leaves for the body,
// or an error when it is below 4 or above max_bytes: checked before anything is allocated.
Result<size_t> BodyLength(const unsigned char length_field[4], size_t max_bytes);

class MessageWriter {
 public:
  explicit MessageWriter(std::string* out) : out_(out) {}
  void Begin(char type);
  void Byte(char b) { out_->push_back(b); }
  void Int16(int16_t v);
  void Int32(int32_t v);
  void Int64(int64_t v);
  void CString(std::string_view s);  // the bytes then a 0
  void Bytes(std::string_view s) { out_->append(s); }
  // Patches the length of the message begun last.
  void End();

 private:
  std::string* out_;
  size_t start_ = 0;
};

class MessageReader {
 public:
  explicit MessageReader(std::string_view body) : body_(body) {}
  bool Byte(char* v);
  bool Int16(int16_t* v);
  bool Int32(int32_t* v);
  // Up to the next 0 byte, which must be there.
  bool CString(std::string_view* v);
  bool Bytes(size_t n, std::string_view* v);
  size_t remaining() const { return body_.size() - at_; }

 private:
  std::string_view body_;
  size_t at_ = 0;
};

// An ErrorResponse ('E') or NoticeResponse: severity, SQLSTATE, message, and the statement's
// 1-based character position when there is one (0: none).
void WriteError(std::string* out, std::string_view severity, std::string_view sqlstate, std::string_view message,
                int position = 0, char type = 'E');

}  // namespace mare::pgwire
