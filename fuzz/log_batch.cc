// Fuzz target: the embedded log's batch decoder (header, body check, zstd-compressed bodies,
// records and their carried numbers) and the segment scan recovery runs, over bytes whose
// checksums the harness fixes up.
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <vector>

#include "log/format.h"
#include "fuzz_check.h"

namespace fmt_ = mare::log::format;

using mare::fuzz::Check;

namespace {

uint32_t Crc(const char* p, size_t n) {
  return static_cast<uint32_t>(::crc32(::crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(p), static_cast<uInt>(n)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  // Checksums a mutation cannot keep right: set them, so the fuzzer reaches what they guard.
  for (size_t pos = 0; bytes.size() - pos >= fmt_::kBatchHeaderSize;) {
    char* p = bytes.data() + pos;
    uint32_t length = fmt_::GetU32(p + fmt_::kLengthAt);
    if (length < fmt_::kBatchHeaderSize || length > bytes.size() - pos) break;
    fmt_::PutU32(p + fmt_::kBodyCrcAt, Crc(p + fmt_::kBatchHeaderSize, length - fmt_::kBatchHeaderSize));
    fmt_::PutU32(p + fmt_::kHeaderCrcAt, Crc(p, fmt_::kHeaderCrcAt));
    pos += length;
  }

  // Batch by batch, as a consumer reads a segment.
  std::vector<mare::NumberField> numbers;
  std::string scratch;  // a compressed batch's records
  int64_t first_offset = -1;
  for (size_t pos = 0; bytes.size() - pos >= fmt_::kBatchHeaderSize;) {
    const char* p = bytes.data() + pos;
    fmt_::BatchHeader h;
    std::string why;
    if (!fmt_::ParseBatchHeader(p, &h, &why)) break;
    if (first_offset < 0) first_offset = h.base_offset;
    if (h.length > bytes.size() - pos) break;
    bool checked = fmt_::CheckBatchBody(p, h, &why);
    const char* b = nullptr;
    fmt_::BatchHeader ph;
    bool plain = fmt_::PlainBatch(p, h, false, &scratch, &b, &ph, &why);
    Check(checked == plain, "the body check and the decoder agree");
    if (!plain) break;
    Check((h.attributes & fmt_::kAttrCodecMask) == 0 ? b == p : b == scratch.data(), "a compressed batch is read decompressed");
    Check(ph.record_count == h.record_count && (ph.attributes & fmt_::kAttrCodecMask) == 0, "the plain header is the batch's");
    uint32_t records = 0;
    int64_t last_offset = h.base_offset - 1;
    fmt_::ForEachRecordAt(b, ph, [&](int64_t offset, int64_t, std::string_view key, std::string_view value, const fmt_::RecordNumbers& n) {
      Check(key.data() >= b && key.data() + key.size() <= b + ph.length, "a key lies in its batch");
      Check(value.data() >= b && value.data() + value.size() <= b + ph.length, "a value lies in its batch");
      numbers.clear();
      n.Decode(&numbers);
      Check(numbers.size() == n.size(), "every carried number decodes");
      for (const auto& f : numbers) Check(f.name.data() >= b && f.name.data() + f.name.size() <= b + ph.length, "a name lies in its batch");
      Check(offset > last_offset && offset < h.base_offset + h.record_count, "offsets increase within the batch's span");
      last_offset = offset;
      ++records;
    });
    // The header's count is the records', or with bit 6 the span their offsets cover.
    Check((h.attributes & fmt_::kAttrOffsets) ? records <= h.record_count && last_offset == h.base_offset + h.record_count - 1
                                               : records == h.record_count,
          "as many records as the header says");
    pos += h.length;
  }

  // The same bytes as a segment file, scanned as recovery scans one.
  int fd = ::memfd_create("segment", MFD_CLOEXEC);
  if (fd < 0) abort();
  if (::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) abort();
  fmt_::SegmentScan scan;
  scan.next_offset = first_offset < 0 ? 0 : first_offset;
  std::string buffer;
  Check(fmt_::ScanSegment(fd, true, &scan, &buffer).ok(), "scanning a readable file succeeds");
  Check(scan.valid_bytes >= 0 && scan.valid_bytes <= static_cast<int64_t>(bytes.size()), "the valid prefix lies in the file");
  Check(static_cast<int64_t>(scan.index.size()) == scan.batches, "one index entry per batch");
  ::close(fd);

  // The text files beside the segments: a group's offsets and the topic's metadata.
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto offsets = fmt_::ParseOffsets(text);
  if (offsets.ok()) {
    auto again = fmt_::ParseOffsets(fmt_::EncodeOffsets(*offsets));
    Check(again.ok() && *again == *offsets, "offsets read back as written");
  }
  auto meta = fmt_::ParseTopicMeta(text, "raw");
  if (meta.ok()) {
    auto again = fmt_::ParseTopicMeta(fmt_::EncodeTopicMeta(*meta), "raw");
    Check(again.ok() && again->partitions == meta->partitions && again->retention_us == meta->retention_us &&
              again->retention_bytes == meta->retention_bytes && again->compact == meta->compact &&
              again->compression == meta->compression,
          "topic metadata reads back as written");
  }
  return 0;
}
