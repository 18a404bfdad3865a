#include "processors/rollup/checkpoint.h"

#include <fmt/format.h>
#include <zlib.h>

#include <cstring>

#include "log/file.h"

namespace mare::rollup {
namespace {

constexpr char kMagic[8] = {'M', 'A', 'R', 'E', 'R', 'O', 'L', 'L'};
constexpr uint32_t kVersion = kCheckpointVersion;  // written; 1 is read too
constexpr size_t kHeaderSize = 24;  // magic, version, body length, body crc

uint32_t Crc(std::string_view b) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths: feed large bodies in pieces.
  while (!b.empty()) {
    size_t n = std::min<size_t>(b.size(), 1u << 30);
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(b.data()), static_cast<uInt>(n));
    b.remove_prefix(n);
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

void EncodeCheckpoint(const RollupState& state, int32_t partition, std::string* out) {
  if (partition < 0) state.Encode(out);
  else state.EncodePartition(partition, out);
  uint64_t length = out->size();
  uint32_t crc = Crc(*out);
  char header[kHeaderSize];
  std::memcpy(header, kMagic, 8);
  std::memcpy(header + 8, &kVersion, 4);
  std::memcpy(header + 12, &length, 8);
  std::memcpy(header + 20, &crc, 4);
  out->insert(0, header, kHeaderSize);
}

Status DecodeCheckpoint(std::string_view b, int32_t partition, RollupState* state, const std::string& path) {
  if (b.size() < kHeaderSize || std::memcmp(b.data(), kMagic, 8) != 0) {
    return Status::Corruption(path + ": not a rollup checkpoint (bad magic or too short)");
  }
  uint32_t version, crc;
  uint64_t length;
  std::memcpy(&version, b.data() + 8, 4);
  std::memcpy(&length, b.data() + 12, 8);
  std::memcpy(&crc, b.data() + 20, 4);
  if (version != kVersion && version != 1) return Status::Corruption(fmt::format("{}: unknown checkpoint version {}", path, version));
  if (length != b.size() - kHeaderSize) {
    return Status::Corruption(fmt::format("{}: body is {} bytes, header says {}", path, b.size() - kHeaderSize, length));
  }
  std::string_view body = b.substr(kHeaderSize);
  uint32_t actual = Crc(body);
  if (actual != crc) {
    return Status::Corruption(fmt::format("{}: checksum mismatch (stored {:#010x}, computed {:#010x})", path, crc, actual));
  }
  Status s = partition < 0 ? state->Decode(body, version) : state->DecodePartition(partition, body, version);
  if (!s.ok()) return s.code() == Status::Code::kInvalidArgument ? Status::InvalidArgument(path + ": " + s.message())
                                                                          : Status::Corruption(path + ": " + s.message());
  return Status::OK();
}

Status WriteCheckpoint(const std::string& path, const RollupState& state, std::string* scratch) {
  EncodeCheckpoint(state, -1, scratch);
  return log::file::WriteAtomically(path, *scratch);
}

Status ReadCheckpoint(const std::string& path, RollupState* state) {
  auto bytes = log::file::ReadAll(path);
  if (!bytes.ok()) return bytes.status();
  return DecodeCheckpoint(*bytes, -1, state, path);
}

}  // namespace mare::rollup
