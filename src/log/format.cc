#include "log/format.h"

#include <fmt/format.h>
#include <isa-l/crc.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <limits>

#include "common/short_bytes.h"
#include "log/file.h"

namespace mare::log::format {

namespace {

// zlib's CRC-32 (see docs/formats/log.md), computed by ISA-L with carry-less multiplication:
// the same values, about three times faster than zlib's tables on this machine.
uint32_t Crc(const char* p, size_t n) {
  return ::crc32_gzip_refl(0, reinterpret_cast<const unsigned char*>(p), n);
}

// How much of a segment one read of a scan takes (ScanSegment).
constexpr size_t kScanWindow = 256 << 10;

// The fewest bytes an uncompressed body of h's records can take: a record header each, or, with
// bit 6 (record_count then the span of offsets), the offset table's count, one offset and one record.
uint64_t MinimumBody(const BatchHeader& h) {
  if (h.attributes & kAttrOffsets) return 4 + 4 + kRecordHeaderSize;
  return static_cast<uint64_t>(h.record_count) * kRecordHeaderSize;
}

bool AllZero(const char* p, size_t n) {
  return std::all_of(p, p + n, [](char c) { return c == 0; });
}

// Parses "key = integer" lines (a subset of TOML), skipping blank lines and # comments.
Result<std::map<std::string, int64_t>> ParseIntegerLines(std::string_view text, const char* what) {
  std::map<std::string, int64_t> out;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    auto trim = [](std::string_view s) {
      while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
      while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
      return s;
    };
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) return Status::Corruption(fmt::format("{} line {}: expected key = value", what, line_no));
    std::string_view key = trim(line.substr(0, eq));
    std::string_view value = trim(line.substr(eq + 1));
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (key.empty() || ec != std::errc() || ptr != value.data() + value.size()) {
      return Status::Corruption(fmt::format("{} line {}: expected key = integer", what, line_no));
    }
    out[std::string(key)] = v;
  }
  return out;
}

}  // namespace

namespace {

// Whether two names are the same bytes. Asked of every number of every record appended (the
// hint below): up to 16 bytes, as most field names are, with two overlapping loads of 8 or 4
// bytes each side rather than a call to memcmp, which was 8 % of the line protocol's ingest
// thread (perf, bench/lineproto.py's load).
bool SameName(std::string_view a, std::string_view b) { return ShortBytesEqual(a, b); }

// Copies a record's key: a sensor id's 1 to 10 digits, most often, moved with two overlapping
// stores of 8, 4 or 1 bytes rather than a call to memcpy per record.
void PutKey(char* out, std::string_view key) { CopyShortBytes(out, key); }

// The index of a name in the table, added if new; kMaxNames if the table is full.
size_t NameIndex(BatchNumbers* n, std::string_view name, size_t position) {
  if (position < n->hint.size()) {
    uint16_t h = n->hint[position];
    if (h < n->names.size() && SameName(n->names[h], name)) return h;
  }
  size_t i = 0;
  while (i < n->names.size() && !SameName(n->names[i], name)) ++i;
  if (i == n->names.size()) {
    if (i >= kMaxNames) return kMaxNames;
    n->names.push_back(name);
  }
  if (position >= n->hint.size()) n->hint.resize(position + 1, 0);
  n->hint[position] = static_cast<uint16_t>(i);
  return i;
}

}  // namespace

Status MeasureBatch(std::span<const Record> records, size_t* size, BatchNumbers* numbers,
                    std::span<const int64_t> offsets) {
  if (records.empty()) return Status::InvalidArgument("a batch needs at least one record");
  if (records.size() > std::numeric_limits<uint32_t>::max()) return Status::InvalidArgument("too many records");
  if (!offsets.empty()) {
    if (offsets.size() != records.size()) return Status::InvalidArgument("one offset per record");
    for (size_t i = 1; i < offsets.size(); ++i) {
      if (offsets[i] <= offsets[i - 1]) return Status::InvalidArgument("offsets must increase");
    }
    if (offsets.back() - offsets.front() >= int64_t{std::numeric_limits<uint32_t>::max()}) {
      return Status::InvalidArgument("offsets span more than a batch can");
    }
  }
  numbers->used = std::any_of(records.begin(), records.end(), [](const Record& r) { return r.has_numbers; });
  numbers->names.clear();
  numbers->counts.clear();
  numbers->index.clear();
  size_t n = kBatchHeaderSize + (offsets.empty() ? 0 : 4 + 4 * offsets.size());
  size_t per_record = numbers->used ? kNumbersRecordHeaderSize : kRecordHeaderSize;
  for (const Record& r : records) {
    if (r.key.size() > kMaxKeyBytes) {
      return Status::InvalidArgument(fmt::format("record key of {} bytes exceeds {}", r.key.size(), kMaxKeyBytes));
    }
    n += per_record + r.key.size() + r.value.size();
    if (numbers->used) {
      bool carried = r.has_numbers && r.numbers.size() < kNumbersNotCarried;
      size_t first = numbers->index.size();
      for (size_t j = 0; carried && j < r.numbers.size(); ++j) {
        std::string_view name = r.numbers[j].name;
        size_t i = name.empty() || name.size() > 0xFF ? kMaxNames : NameIndex(numbers, name, j);
        if (i >= kMaxNames) {
          carried = false;  // this record's value is parsed instead
          numbers->index.resize(first);
        } else {
          numbers->index.push_back(static_cast<uint16_t>(i));
        }
      }
      numbers->counts.push_back(carried ? static_cast<uint8_t>(r.numbers.size()) : kNumbersNotCarried);
      if (carried) n += r.numbers.size() * kNumberSize;
    }
    if (n > kMaxBatchBytes) return Status::InvalidArgument(fmt::format("batch exceeds {} bytes", kMaxBatchBytes));
  }
  if (numbers->used) {
    n += 2;
    for (std::string_view name : numbers->names) n += 1 + name.size();
    if (n > kMaxBatchBytes) return Status::InvalidArgument(fmt::format("batch exceeds {} bytes", kMaxBatchBytes));
  }
  *size = n;
  return Status::OK();
}

void EncodeBatch(std::span<const Record> records, const BatchNumbers& numbers, char* out,
                 std::span<const int64_t> offsets) {
  char* p = out + kBatchHeaderSize;
  int64_t min_ts = records.front().timestamp_us;
  int64_t max_ts = min_ts;
  if (!offsets.empty()) {
    PutU32(p, static_cast<uint32_t>(offsets.size()));
    p += 4;
    for (int64_t o : offsets) {
      PutU32(p, static_cast<uint32_t>(o - offsets.front()));
      p += 4;
    }
  }
  if (numbers.used) {
    PutU16(p, static_cast<uint16_t>(numbers.names.size()));
    p += 2;
    for (std::string_view name : numbers.names) {
      *p++ = static_cast<char>(name.size());
      std::memcpy(p, name.data(), name.size());
      p += name.size();
    }
  }
  const uint16_t* index = numbers.index.data();
  for (size_t i = 0; i < records.size(); ++i) {
    const Record& r = records[i];
    PutU64(p, static_cast<uint64_t>(r.timestamp_us));
    PutU16(p + 8, static_cast<uint16_t>(r.key.size()));
    PutU32(p + 10, static_cast<uint32_t>(r.value.size()));
    uint8_t count = numbers.used ? numbers.counts[i] : kNumbersNotCarried;
    if (numbers.used) {
      p[14] = static_cast<char>(count);
      p += kNumbersRecordHeaderSize;
    } else {
      p += kRecordHeaderSize;
    }
    PutKey(p, r.key);
    p += r.key.size();
    if (!r.value.empty()) std::memcpy(p, r.value.data(), r.value.size());
    p += r.value.size();
    if (count != kNumbersNotCarried) {
      for (size_t j = 0; j < count; ++j) {
        PutU16(p, *index++);
        PutU64(p + 2, std::bit_cast<uint64_t>(r.numbers[j].value));
        p += kNumberSize;
      }
    }
    min_ts = std::min(min_ts, r.timestamp_us);
    max_ts = std::max(max_ts, r.timestamp_us);
  }
  size_t length = static_cast<size_t>(p - out);
  PutU32(out + kMagicAt, kBatchMagic);
  PutU32(out + kLengthAt, static_cast<uint32_t>(length));
  PutU64(out + kBaseOffsetAt, 0);
  PutU64(out + kAppendTimeAt, 0);
  PutU64(out + kMinTimestampAt, static_cast<uint64_t>(min_ts));
  PutU64(out + kMaxTimestampAt, static_cast<uint64_t>(max_ts));
  // With offsets, the count is the span they cover (kAttrOffsets).
  PutU32(out + kRecordCountAt, static_cast<uint32_t>(offsets.empty() ? records.size()
                                                                     : offsets.back() - offsets.front() + 1));
  PutU16(out + kAttributesAt, static_cast<uint16_t>((numbers.used ? kAttrNumbers : 0) | (offsets.empty() ? 0 : kAttrOffsets)));
  PutU16(out + kReservedAt, 0);
  PutU32(out + kBodyCrcAt, Crc(out + kBatchHeaderSize, length - kBatchHeaderSize));
  PutU32(out + kHeaderCrcAt, 0);
}

const char* ReadNameTable(const char* batch, std::vector<std::string_view>* names) {
  const char* p = BodyStart(batch);
  size_t count = GetU16(p);
  p += 2;
  names->clear();
  for (size_t i = 0; i < count; ++i) {
    size_t len = static_cast<unsigned char>(*p++);
    names->emplace_back(p, len);
    p += len;
  }
  return p;
}

void RecordNumbers::Decode(std::vector<NumberField>* out) const {
  const char* p = p_;
  for (size_t j = 0; j < size(); ++j, p += kNumberSize) {
    out->push_back({(*names_)[GetU16(p)], std::bit_cast<double>(GetU64(p + 2))});
  }
}

void SealBatch(char* batch, int64_t base_offset, int64_t append_time_us) {
  PutU64(batch + kBaseOffsetAt, static_cast<uint64_t>(base_offset));
  PutU64(batch + kAppendTimeAt, static_cast<uint64_t>(append_time_us));
  PutU32(batch + kHeaderCrcAt, Crc(batch, kHeaderCrcAt));
}

void AddGroupTrailer(char* batch, const GroupTrailer& group) {
  uint32_t length = GetU32(batch + kLengthAt);
  char* t = batch + length;
  PutU64(t, group.id);
  PutU32(t + 8, static_cast<uint32_t>(group.last_partition));
  PutU64(t + 12, static_cast<uint64_t>(group.last_offset));
  PutU32(batch + kLengthAt, static_cast<uint32_t>(length + kGroupTrailerSize));
  PutU16(batch + kAttributesAt, static_cast<uint16_t>(GetU16(batch + kAttributesAt) | kAttrGroup));
  // The records' checksum, continued over the trailer: the body's.
  uint32_t crc = ::crc32_gzip_refl(GetU32(batch + kBodyCrcAt), reinterpret_cast<const unsigned char*>(t), kGroupTrailerSize);
  PutU32(batch + kBodyCrcAt, crc);
}

GroupTrailer ReadGroupTrailer(const char* t) {
  GroupTrailer g;
  g.id = GetU64(t);
  g.last_partition = static_cast<int32_t>(GetU32(t + 8));
  g.last_offset = GetI64(t + 12);
  return g;
}

bool ParseBatchHeader(const char* p, BatchHeader* h, std::string* why) {
  if (GetU32(p + kMagicAt) != kBatchMagic) {
    *why = fmt::format("bad batch magic {:#010x}", GetU32(p + kMagicAt));
    return false;
  }
  uint32_t stored = GetU32(p + kHeaderCrcAt);
  uint32_t actual = Crc(p, kHeaderCrcAt);
  if (stored != actual) {
    *why = fmt::format("batch header checksum mismatch (stored {:#010x}, computed {:#010x})", stored, actual);
    return false;
  }
  h->length = GetU32(p + kLengthAt);
  h->base_offset = GetI64(p + kBaseOffsetAt);
  h->append_time_us = GetI64(p + kAppendTimeAt);
  h->min_timestamp_us = GetI64(p + kMinTimestampAt);
  h->max_timestamp_us = GetI64(p + kMaxTimestampAt);
  h->record_count = GetU32(p + kRecordCountAt);
  h->attributes = GetU16(p + kAttributesAt);
  h->body_crc = GetU32(p + kBodyCrcAt);
  if ((h->attributes & ~(kAttrCodecMask | kAttrNumbers | kAttrCompacted | kAttrGroup | kAttrOffsets)) != 0 ||
      GetU16(p + kReservedAt) != 0 || ((h->attributes & kAttrOffsets) && !(h->attributes & kAttrCompacted))) {
    *why = fmt::format("unsupported batch attributes {:#06x}", h->attributes);
    return false;
  }
  const uint16_t codec = h->attributes & kAttrCodecMask;
  if (codec > kCodecZstd) {
    *why = fmt::format("batch compressed with unknown codec {} (attributes {:#06x}; this mare knows 1, zstd)", codec,
                       h->attributes);
    return false;
  }
  if (h->record_count == 0 || h->length > kMaxBatchBytes || h->base_offset < 0 ||
      h->base_offset > std::numeric_limits<int64_t>::max() - h->record_count ||
      // A compressed body is smaller than its records; the frame's size is checked when it is
      // decompressed (DecompressBatch).
      h->length < kBatchHeaderSize + (codec ? 1 : MinimumBody(*h)) + ((h->attributes & kAttrGroup) ? kGroupTrailerSize : 0) ||
      h->min_timestamp_us > h->max_timestamp_us) {
    *why = fmt::format("implausible batch header (length {}, {} records, base offset {})", h->length, h->record_count,
                       h->base_offset);
    return false;
  }
  return true;
}

bool CheckBodyChecksum(const char* batch, const BatchHeader& h, std::string* why) {
  uint32_t actual = Crc(batch + kBatchHeaderSize, h.length - kBatchHeaderSize);
  if (actual != h.body_crc) {
    *why = fmt::format("batch checksum mismatch (stored {:#010x}, computed {:#010x})", h.body_crc, actual);
    return false;
  }
  return true;
}

namespace {

// That the records (and the name table, the trailer) of an uncompressed batch fill it exactly.
bool CheckLayout(const char* batch, const BatchHeader& h, std::string* why) {
  size_t pos = kBatchHeaderSize;
  // The records fill the batch up to the group trailer, if any (ParseBatchHeader made sure it fits).
  const size_t end = h.length - ((h.attributes & kAttrGroup) ? kGroupTrailerSize : 0);
  if (h.attributes & kAttrGroup) {
    GroupTrailer g = ReadGroupTrailer(batch + end);
    if (g.last_partition < 0 || g.last_offset < 0) {
      *why = fmt::format("group trailer names partition {} offset {}", g.last_partition, g.last_offset);
      return false;
    }
  }
  // The records' offsets (bit 6): in the span record_count says, the first and last at its ends.
  uint32_t records = h.record_count;
  if (h.attributes & kAttrOffsets) {
    if (end - pos < 4) {
      *why = "offset table overruns the batch";
      return false;
    }
    records = GetU32(batch + pos);
    pos += 4;
    if (records == 0 || records > h.record_count || (end - pos) / 4 < records) {
      *why = fmt::format("offset table of {} records in a span of {} overruns the batch", records, h.record_count);
      return false;
    }
    uint32_t previous = 0;
    for (uint32_t i = 0; i < records; ++i, pos += 4) {
      uint32_t d = GetU32(batch + pos);
      if ((i == 0 && d != 0) || (i > 0 && d <= previous) || (i + 1 == records && d != h.record_count - 1)) {
        *why = fmt::format("offset {} of the table ({}) out of order or outside the span of {}", i, d, h.record_count);
        return false;
      }
      previous = d;
    }
  }
  const bool numbers = h.attributes & kAttrNumbers;
  size_t name_count = 0;
  if (numbers) {
    if (end - pos < 2) {
      *why = "name table overruns the batch";
      return false;
    }
    name_count = GetU16(batch + pos);
    pos += 2;
    for (size_t i = 0; i < name_count; ++i) {
      if (end - pos < 1 || end - pos - 1 < static_cast<unsigned char>(batch[pos])) {
        *why = "name table overruns the batch";
        return false;
      }
      if (batch[pos] == 0) {
        *why = fmt::format("name {} of the table is empty", i);
        return false;
      }
      pos += 1 + static_cast<unsigned char>(batch[pos]);
    }
  }
  const size_t header = numbers ? kNumbersRecordHeaderSize : kRecordHeaderSize;
  for (uint32_t i = 0; i < records; ++i) {
    if (end - pos < header) {
      *why = fmt::format("record {} overruns the batch", i);
      return false;
    }
    size_t need = header + GetU16(batch + pos + 8) + size_t{GetU32(batch + pos + 10)};
    uint8_t count = numbers ? static_cast<uint8_t>(batch[pos + 14]) : kNumbersNotCarried;
    if (count != kNumbersNotCarried) need += count * kNumberSize;
    if (end - pos < need) {
      *why = fmt::format("record {} overruns the batch", i);
      return false;
    }
    for (size_t j = 0; count != kNumbersNotCarried && j < count; ++j) {
      size_t index = GetU16(batch + pos + need - (count - j) * kNumberSize);
      if (index >= name_count) {
        *why = fmt::format("record {} number {}: name index {} beyond the table's {} names", i, j, index, name_count);
        return false;
      }
    }
    pos += need;
  }
  if (pos != end) {
    *why = fmt::format("{} bytes after the last record", end - pos);
    return false;
  }
  return true;
}

// One compression and one decompression context per thread, reused: a context costs more to
// make than a batch of rollups to compress.
struct ZstdContexts {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_DCtx* d = ZSTD_createDCtx();
  std::string out;  // CompressBatch's frame, before it is copied over the records
  ZstdContexts() = default;
  ZstdContexts(const ZstdContexts&) = delete;
  ZstdContexts& operator=(const ZstdContexts&) = delete;
  ~ZstdContexts() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};
ZstdContexts& Zstd() {
  thread_local ZstdContexts z;
  return z;
}

}  // namespace

bool CheckBatchBody(const char* batch, const BatchHeader& h, std::string* why) {
  if (!CheckBodyChecksum(batch, h, why)) return false;
  if ((h.attributes & kAttrCodecMask) == 0) return CheckLayout(batch, h, why);
  thread_local std::string scratch;
  BatchHeader plain;
  return DecompressBatch(batch, h, &scratch, &plain, why);
}

size_t CompressBatch(char* batch, Compression codec) {
  const size_t length = GetU32(batch + kLengthAt);
  if (codec != Compression::kZstd) return length;
  const size_t body = length - kBatchHeaderSize;
  ZstdContexts& z = Zstd();
  size_t bound = ZSTD_compressBound(body);
  if (z.out.size() < bound) z.out.resize(bound);
  ZSTD_CCtx_reset(z.c, ZSTD_reset_session_only);
  ZSTD_CCtx_setParameter(z.c, ZSTD_c_compressionLevel, kZstdLevel);
  // The content size in the frame header is what lets a reader size its buffer, and refuse a
  // frame that would expand past kMaxBatchBytes, before decompressing.
  ZSTD_CCtx_setParameter(z.c, ZSTD_c_contentSizeFlag, 1);
  ZSTD_CCtx_setParameter(z.c, ZSTD_c_checksumFlag, 0);  // body_crc covers the frame
  size_t n = ZSTD_compress2(z.c, z.out.data(), z.out.size(), batch + kBatchHeaderSize, body);
  if (ZSTD_isError(n) || n >= body) return length;
  std::memcpy(batch + kBatchHeaderSize, z.out.data(), n);
  const size_t compressed = kBatchHeaderSize + n;
  PutU32(batch + kLengthAt, static_cast<uint32_t>(compressed));
  PutU16(batch + kAttributesAt, static_cast<uint16_t>(GetU16(batch + kAttributesAt) | kCodecZstd));
  PutU32(batch + kBodyCrcAt, Crc(batch + kBatchHeaderSize, n));
  return compressed;
}

bool DecompressBatch(const char* batch, const BatchHeader& h, std::string* out, BatchHeader* plain, std::string* why) {
  const uint16_t codec = h.attributes & kAttrCodecMask;
  if (codec != kCodecZstd) {
    *why = fmt::format("batch compressed with unknown codec {} (this mare knows 1, zstd)", codec);
    return false;
  }
  const size_t trailer = (h.attributes & kAttrGroup) ? kGroupTrailerSize : 0;
  const char* frame = batch + kBatchHeaderSize;
  const size_t frame_bytes = h.length - kBatchHeaderSize - trailer;
  unsigned long long content = ZSTD_getFrameContentSize(frame, frame_bytes);
  if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN) {
    *why = content == ZSTD_CONTENTSIZE_ERROR ? "compressed batch: not a zstd frame"
                                             : "compressed batch: zstd frame without its content size";
    return false;
  }
  if (content > kMaxBatchBytes - kBatchHeaderSize - trailer) {
    *why = fmt::format("compressed batch: records of {} bytes exceed the batch limit", content);
    return false;
  }
  // Exactly one frame: zstd would also take skippable or further frames after it, which the
  // format does not allow (docs/formats/log.md).
  const size_t whole = ZSTD_findFrameCompressedSize(frame, frame_bytes);
  if (ZSTD_isError(whole) || whole != frame_bytes) {
    *why = ZSTD_isError(whole) ? fmt::format("compressed batch: {}", ZSTD_getErrorName(whole))
                               : fmt::format("compressed batch: {} bytes after its zstd frame", frame_bytes - whole);
    return false;
  }
  const size_t plain_length = kBatchHeaderSize + static_cast<size_t>(content) + trailer;
  out->resize(plain_length);
  char* p = out->data();
  std::memcpy(p, batch, kBatchHeaderSize);
  size_t n = ZSTD_decompressDCtx(Zstd().d, p + kBatchHeaderSize, static_cast<size_t>(content), frame, frame_bytes);
  if (ZSTD_isError(n) || n != content) {
    *why = ZSTD_isError(n) ? fmt::format("compressed batch: {}", ZSTD_getErrorName(n))
                           : fmt::format("compressed batch: {} bytes decompressed, the frame says {}", n, content);
    return false;
  }
  if (trailer) std::memcpy(p + kBatchHeaderSize + content, frame + frame_bytes, trailer);
  *plain = h;
  plain->length = static_cast<uint32_t>(plain_length);
  plain->attributes = static_cast<uint16_t>(h.attributes & ~kAttrCodecMask);
  PutU32(p + kLengthAt, plain->length);
  PutU16(p + kAttributesAt, plain->attributes);
  if (plain_length < kBatchHeaderSize + MinimumBody(h) + trailer) {
    *why = fmt::format("compressed batch: {} records cannot fit in {} bytes", h.record_count, content);
    return false;
  }
  if (!CheckLayout(p, *plain, why)) {
    *why = "compressed batch: " + *why;
    return false;
  }
  return true;
}

bool PlainBatch(const char* batch, const BatchHeader& h, bool checked, std::string* scratch, const char** plain,
                BatchHeader* plain_h, std::string* why) {
  if ((h.attributes & kAttrCodecMask) == 0) {
    if (!checked && !CheckBatchBody(batch, h, why)) return false;
    *plain = batch;
    *plain_h = h;
    return true;
  }
  if (!checked && !CheckBodyChecksum(batch, h, why)) return false;
  if (!DecompressBatch(batch, h, scratch, plain_h, why)) return false;
  *plain = scratch->data();
  return true;
}

std::string SegmentFileName(int64_t base_offset) { return fmt::format("{:020}.log", base_offset); }

bool ParseSegmentFileName(std::string_view name, int64_t* base_offset) {
  if (name.size() != 24 || name.substr(20) != ".log") return false;
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + 20, v);
  if (ec != std::errc() || ptr != name.data() + 20 || v < 0) return false;
  *base_offset = v;
  return true;
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 200 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

std::string EncodeTopicMeta(const TopicConfig& config) {
  std::string out = fmt::format(
      "# mare log topic {} (docs/formats/log.md)\n"
      "format = {}\n"
      "partitions = {}\n"
      "retention_us = {}\n"
      "retention_bytes = {}\n",
      config.name, config.partitioner == Partitioner::kModulo ? 1 : 2, config.partitions, config.retention_us,
      config.retention_bytes);
  // Format 1 (no partitioner line) stays for topics placed by sensor_id mod partitions, so that
  // they remain as they were; a mare that knows only format 1 refuses a murmur2 topic rather
  // than splitting its sensors across partitions.
  if (config.partitioner != Partitioner::kModulo) {
    out += fmt::format("# partitioner: 1 = murmur2 of the key, as Kafka's producers\npartitioner = {}\n",
                       static_cast<int32_t>(config.partitioner));
  }
  // Written only when set, so that a topic that never was compacted keeps its file as it was.
  if (config.compact) out += "# compact: 1 = closed segments keep only the newest record of each key\ncompact = 1\n";
  // Likewise only when set: a mare from before compression refuses the unknown line's batches
  // anyway (their attributes), but reads the topic's older ones.
  if (config.compression.value_or(Compression::kNone) != Compression::kNone) {
    out += fmt::format("# compression: codec of new batches, 1 = zstd\ncompression = {}\n",
                       static_cast<int>(*config.compression));
  }
  return out;
}

Result<TopicConfig> ParseTopicMeta(std::string_view text, const std::string& name) {
  auto kv = ParseIntegerLines(text, "topic.toml");
  if (!kv) return kv.status();
  auto get = [&](const char* key) -> int64_t {
    auto it = kv->find(key);
    return it == kv->end() ? -1 : it->second;
  };
  int64_t format = get("format");
  if (format != 1 && format != 2) return Status::Corruption("topic.toml of " + name + ": unsupported or missing format");
  TopicConfig c;
  c.name = name;
  c.partitioner = Partitioner::kModulo;  // format 1: topics from before the partitioner was recorded
  if (format == 2) {
    if (get("partitioner") != static_cast<int64_t>(Partitioner::kMurmur2)) {
      return Status::Corruption("topic.toml of " + name + ": missing or unknown partitioner");
    }
    c.partitioner = Partitioner::kMurmur2;
  }
  int64_t partitions = get("partitions");
  c.retention_us = get("retention_us");
  c.retention_bytes = get("retention_bytes");
  if (partitions < 1 || partitions > 100000 || c.retention_us < 0 || c.retention_bytes < 0) {
    return Status::Corruption("topic.toml of " + name + ": missing or invalid partitions/retention");
  }
  c.partitions = static_cast<int32_t>(partitions);
  int64_t compact = get("compact");
  if (compact != -1 && compact != 0 && compact != 1) return Status::Corruption("topic.toml of " + name + ": compact must be 0 or 1");
  c.compact = compact == 1;
  int64_t compression = get("compression");
  if (compression != -1 && compression != 0 && compression != kCodecZstd) {
    return Status::Corruption(fmt::format("topic.toml of {}: unknown compression codec {} (this mare knows 0, none, and 1, zstd)",
                                          name, compression));
  }
  c.compression = compression == kCodecZstd ? Compression::kZstd : Compression::kNone;
  return c;
}

std::string EncodeOffsets(const std::map<int32_t, int64_t>& offsets) {
  std::string out = "# mare consumer group offsets: partition = next offset to read\nformat = 1\n";
  for (const auto& [p, o] : offsets) out += fmt::format("{} = {}\n", p, o);
  return out;
}

Result<std::map<int32_t, int64_t>> ParseOffsets(std::string_view text) {
  auto kv = ParseIntegerLines(text, "offsets file");
  if (!kv) return kv.status();
  std::map<int32_t, int64_t> out;
  bool have_format = false;
  for (const auto& [key, value] : *kv) {
    if (key == "format") {
      if (value != 1) return Status::Corruption("offsets file: unsupported format");
      have_format = true;
      continue;
    }
    int32_t p = 0;
    auto [ptr, ec] = std::from_chars(key.data(), key.data() + key.size(), p);
    if (ec != std::errc() || ptr != key.data() + key.size() || p < 0 || value < 0) {
      return Status::Corruption("offsets file: bad entry '" + key + "'");
    }
    out[p] = value;
  }
  if (!have_format) return Status::Corruption("offsets file: missing format");
  return out;
}

Status ScanSegment(int fd, bool verify_bodies, SegmentScan* scan, std::string* buffer) {
  off_t end = ::lseek(fd, 0, SEEK_END);
  if (end < 0) return Status::FromErrno("lseek", errno);
  scan->file_bytes = end;
  scan->tail = SegmentScan::Tail::kClean;
  scan->why.clear();
  // Everything from the current position to end of file is zero: space the file system
  // allocated but whose data never reached the disk, which is a torn tail.
  auto rest_is_zero = [&](int64_t from) -> Result<bool> {
    char chunk[4096];
    while (from < scan->file_bytes) {
      size_t want = static_cast<size_t>(std::min<int64_t>(sizeof chunk, scan->file_bytes - from));
      size_t got = 0;
      MARE_RETURN_IF_ERROR(file::ReadAt(fd, from, chunk, want, &got, "segment"));
      if (got == 0) break;
      if (!AllZero(chunk, got)) return false;
      from += static_cast<int64_t>(got);
    }
    return true;
  };
  auto stop = [&](SegmentScan::Tail tail, std::string why) -> Status {
    if (tail == SegmentScan::Tail::kCorrupt) {
      Result<bool> zero = rest_is_zero(scan->valid_bytes);
      if (!zero) return zero.status();
      if (*zero) {
        tail = SegmentScan::Tail::kTorn;
        why = "zero-filled tail";
      }
    }
    scan->tail = tail;
    scan->why = std::move(why);
    return Status::OK();
  };

  // The file is read through a window held in *buffer: a segment of small batches costs one
  // pread per kScanWindow bytes, not one or two per batch. After a large batch only its
  // successor's header is read (when bodies are not verified), so that skipping over big
  // batches copies no body.
  int64_t window_at = 0;
  size_t window_len = 0;
  size_t last_length = 0;
  // The n bytes at pos, or nullptr when the file ends before them (it shrank meanwhile).
  auto bytes_at = [&](int64_t pos, size_t n, const char** out) -> Status {
    if (pos >= window_at && pos + static_cast<int64_t>(n) <= window_at + static_cast<int64_t>(window_len)) {
      *out = buffer->data() + (pos - window_at);
      return Status::OK();
    }
    size_t want = n;
    if (verify_bodies || last_length <= kScanWindow / 8) {
      want = std::max(n, static_cast<size_t>(std::min<int64_t>(kScanWindow, scan->file_bytes - pos)));
    }
    if (buffer->size() < want) buffer->resize(want);
    size_t got = 0;
    window_len = 0;
    MARE_RETURN_IF_ERROR(file::ReadAt(fd, pos, buffer->data(), want, &got, "segment"));
    window_at = pos;
    window_len = got;
    *out = got < n ? nullptr : buffer->data();
    return Status::OK();
  };

  while (scan->valid_bytes < scan->file_bytes) {
    int64_t pos = scan->valid_bytes;
    int64_t left = scan->file_bytes - pos;
    if (left < static_cast<int64_t>(kBatchHeaderSize)) {
      return stop(SegmentScan::Tail::kTorn, fmt::format("{} bytes, less than a batch header", left));
    }
    const char* header = nullptr;
    MARE_RETURN_IF_ERROR(bytes_at(pos, kBatchHeaderSize, &header));
    if (!header) return stop(SegmentScan::Tail::kTorn, "file shrank while scanning");
    BatchHeader h;
    std::string why;
    if (!ParseBatchHeader(header, &h, &why)) return stop(SegmentScan::Tail::kCorrupt, std::move(why));
    bool gap_allowed = h.attributes & kAttrCompacted;
    if (h.base_offset != scan->next_offset && !(gap_allowed && h.base_offset > scan->next_offset)) {
      return stop(SegmentScan::Tail::kCorrupt,
                  fmt::format("batch starts at offset {}, expected {}", h.base_offset, scan->next_offset));
    }
    if (static_cast<int64_t>(h.length) > left) {
      return stop(SegmentScan::Tail::kTorn, fmt::format("batch of {} bytes cut short at {}", h.length, left));
    }
    if (verify_bodies) {
      const char* batch = nullptr;
      MARE_RETURN_IF_ERROR(bytes_at(pos, h.length, &batch));
      if (!batch) return stop(SegmentScan::Tail::kTorn, "file shrank while scanning");
      if (!CheckBatchBody(batch, h, &why)) return stop(SegmentScan::Tail::kCorrupt, std::move(why));
    }
    last_length = h.length;
    scan->index.push_back({h.base_offset, pos, h.base_offset + h.record_count});
    if (scan->first_append_us == 0) scan->first_append_us = h.append_time_us;
    scan->last_append_us = h.append_time_us;
    scan->batches += 1;
    scan->records += h.record_count;
    scan->next_offset = h.base_offset + h.record_count;
    scan->valid_bytes = pos + h.length;
  }
  return Status::OK();
}

}  // namespace mare::log::format
