#include "pgwire/message.h"

#include <fmt/format.h>

namespace mare::pgwire {

Result<size_t> BodyLength(const unsigned char length_field[4], size_t max_bytes) {
  uint32_t n = (uint32_t{length_field[0]} << 24) | (uint32_t{length_field[1]} << 16) | (uint32_t{length_field[2]} << 8) |
               uint32_t{length_field[3]};
  if (n < 4) return Status::InvalidArgument(fmt::format("invalid message length {}", n));
  if (n > max_bytes) {
    return Status::InvalidArgument(
        fmt::format("message of {} bytes is larger than pgwire.max_message_bytes ({})", n, max_bytes));
  }
  return size_t{n} - 4;
}

void MessageWriter::Begin(char type) {
  out_->push_back(type);
  start_ = out_->size();
  out_->append(4, '\0');
}

void MessageWriter::Int16(int16_t v) {
  auto u = static_cast<uint16_t>(v);
  out_->push_back(static_cast<char>(u >> 8));
  out_->push_back(static_cast<char>(u));
}

void MessageWriter::Int32(int32_t v) {
  // One append, not four push_backs: this runs for every value of every DataRow.
  auto u = static_cast<uint32_t>(v);
  const char b[4] = {static_cast<char>(u >> 24), static_cast<char>(u >> 16), static_cast<char>(u >> 8), static_cast<char>(u)};
  out_->append(b, 4);
}

void MessageWriter::Int64(int64_t v) {
  auto u = static_cast<uint64_t>(v);
  for (int shift = 56; shift >= 0; shift -= 8) out_->push_back(static_cast<char>(u >> shift));
}

void MessageWriter::CString(std::string_view s) {
  // A 0 inside would end the string early and shift every field after it.
  for (char c : s) out_->push_back(c == '\0' ? ' ' : c);
  out_->push_back('\0');
}

void MessageWriter::End() {
  auto n = static_cast<uint32_t>(out_->size() - start_);
  for (int k = 0; k < 4; ++k) (*out_)[start_ + k] = static_cast<char>(n >> (24 - 8 * k));
}

bool MessageReader::Byte(char* v) {
  if (remaining() < 1) return false;
  *v = body_[at_++];
  return true;
}

bool MessageReader::Int16(int16_t* v) {
  if (remaining() < 2) return false;
  auto b = reinterpret_cast<const unsigned char*>(body_.data() + at_);
  *v = static_cast<int16_t>((b[0] << 8) | b[1]);
  at_ += 2;
  return true;
}

bool MessageReader::Int32(int32_t* v) {
  if (remaining() < 4) return false;
  auto b = reinterpret_cast<const unsigned char*>(body_.data() + at_);
  *v = static_cast<int32_t>((uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]});
  at_ += 4;
  return true;
}

bool MessageReader::CString(std::string_view* v) {
  size_t end = body_.find('\0', at_);
  if (end == std::string_view::npos) return false;
  *v = body_.substr(at_, end - at_);
  at_ = end + 1;
  return true;
}

bool MessageReader::Bytes(size_t n, std::string_view* v) {
  if (remaining() < n) return false;
  *v = body_.substr(at_, n);
  at_ += n;
  return true;
}

void WriteError(std::string* out, std::string_view severity, std::string_view sqlstate, std::string_view message,
                int position, char type) {
  MessageWriter w(out);
  w.Begin(type);
  w.Byte('S');
  w.CString(severity);
  w.Byte('V');
  w.CString(severity);
  w.Byte('C');
  w.CString(sqlstate);
  w.Byte('M');
  w.CString(message);
  if (position > 0) {
    w.Byte('P');
    w.CString(std::to_string(position));
  }
  w.Byte('\0');
  w.End();
}

}  // namespace mare::pgwire
