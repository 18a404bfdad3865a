// The embedded log's on-disk format, written down in docs/formats/log.md: record batches in
// segment files, segment file names, the topic metadata file and consumer-group offset files.
// Shared by the log, `mare log verify` and the tests; nothing here locks or keeps state.
//
//   size_t n;  MARE_RETURN_IF_ERROR(format::MeasureBatch(records, &n));
//   format::EncodeBatch(records, buf);             // everything but offset and append time
//   format::SealBatch(buf, base_offset, now_us);   // then write buf[0, n) with one write()
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "log/log.h"

namespace mare::log::format {

// "MLB1" in file order: mare log batch, format version 1.
inline constexpr uint32_t kBatchMagic = 0x31424C4D;
inline constexpr size_t kBatchHeaderSize = 56;
// Per record: timestamp_us i64, key_len u16, value_len u32, then the key and value bytes.
inline constexpr size_t kRecordHeaderSize = 14;
inline constexpr size_t kMaxKeyBytes = 0xFFFF;
// A bound on a batch's length field, so a damaged header is never taken for a torn tail.
inline constexpr size_t kMaxBatchBytes = 64u << 20;

// Byte offsets of the header fields (all little-endian).
inline constexpr size_t kMagicAt = 0;           // u32
inline constexpr size_t kLengthAt = 4;          // u32, whole batch, header included
inline constexpr size_t kBaseOffsetAt = 8;      // i64
inline constexpr size_t kAppendTimeAt = 16;     // i64
inline constexpr size_t kMinTimestampAt = 24;   // i64
inline constexpr size_t kMaxTimestampAt = 32;   // i64
inline constexpr size_t kRecordCountAt = 40;    // u32
inline constexpr size_t kAttributesAt = 44;     // u16
inline constexpr size_t kReservedAt = 46;       // u16, zero
inline constexpr size_t kBodyCrcAt = 48;        // u32, crc32 of bytes [56, length)
inline constexpr size_t kHeaderCrcAt = 52;      // u32, crc32 of bytes [0, 52)

struct BatchHeader {
  uint32_t length = 0;
  int64_t base_offset = 0;
  int64_t append_time_us = 0;
  int64_t min_timestamp_us = 0;
  int64_t max_timestamp_us = 0;
  uint32_t record_count = 0;
  uint16_t attributes = 0;
  uint32_t body_crc = 0;
};

// Attribute bit 3: the records carry their readings' numeric fields (Record::numbers) after
// their value, the field names once per batch in a table before the first record.
inline constexpr uint16_t kAttrNumbers = 0x0008;
// With kAttrNumbers, per record: the 14 bytes above, then number_count u8.
inline constexpr size_t kNumbersRecordHeaderSize = 15;
// Per number: name index u16, value f64 (IEEE 754 bits, little-endian).
inline constexpr size_t kNumberSize = 10;
// number_count meaning "none carried: parse the value" (255 numbers or more, a name over 255
// bytes, or a record appended without numbers).
inline constexpr uint8_t kNumbersNotCarried = 0xFF;
inline constexpr size_t kMaxNames = 0xFFFF;

// Attribute bit 4: written by compaction. The batch may start after the previous batch's end
// (the records between were superseded by newer ones of their keys and removed); its own
// records are consecutive as in any batch. Batches appended never have it.
inline constexpr uint16_t kAttrCompacted = 0x0010;

// Attribute bit 6, only with bit 4: the batch's records are not consecutive. Its body (the
// uncompressed one) starts with their offsets: kept_count u32, then kept_count deltas u32 from
// base_offset, strictly increasing, the first 0 and the last record_count - 1; record_count is
// then the span of offsets the batch covers, so that its end (base_offset + record_count) is
// known from the header alone. Compaction writes such batches of the records it keeps, which
// are too few a batch otherwise to compress (docs/formats/log.md, "Compacted batches").
inline constexpr uint16_t kAttrOffsets = 0x0040;

// Attribute bit 5: the batch is one part of a group, batches appended together to several
// partitions of a topic (Log::AppendTogether), which a crash leaves all or none of. A trailer
// after the records names the group and its last part, written last: the group is complete
// exactly when that part is in the log (docs/formats/log.md, "Groups").
inline constexpr uint16_t kAttrGroup = 0x0020;
inline constexpr size_t kGroupTrailerSize = 20;  // id u64, last_partition u32, last_offset i64
struct GroupTrailer {
  uint64_t id = 0;             // the group's, the same in each of its parts
  int32_t last_partition = 0;  // where its last part is
  int64_t last_offset = 0;     // that part's base offset
};

// Attribute bits 0-2: the codec of the batch's body (Compression: 0 none, 1 zstd). A
// compressed batch's body is one zstd frame holding the body it would have uncompressed (name
// table and records), then the group trailer, if any, uncompressed; body_crc covers the stored
// bytes. Codecs 2-7 are unknown: such a batch is refused, never misread.
inline constexpr uint16_t kAttrCodecMask = 0x0007;
inline constexpr uint16_t kCodecZstd = 1;
// The zstd level batches are compressed at (zstd's default: the level measured in bench/README.md).
inline constexpr int kZstdLevel = 3;

// What MeasureBatch learns of a batch's numbers, for EncodeBatch: the name table, and per
// record and number what to write. Reused across batches to spare allocations.
struct BatchNumbers {
  bool used = false;                     // some record has numbers: kAttrNumbers
  std::vector<std::string_view> names;   // the name table
  std::vector<uint8_t> counts;           // per record: number_count
  std::vector<uint16_t> index;           // per carried number, in record order: into names
  std::vector<uint16_t> hint;            // by position in a record: the name index seen there last
};

// Sets *size to the encoded size of a batch of these records, or says why they cannot form
// one (no records, a key over kMaxKeyBytes, more than kMaxBatchBytes in all). *numbers
// receives what EncodeBatch needs for the records' numbers.
// With `offsets` (one per record, increasing, not all consecutive), the batch is one of bit 6:
// it holds the records at these offsets, the first its base offset.
Status MeasureBatch(std::span<const Record> records, size_t* size, BatchNumbers* numbers,
                    std::span<const int64_t> offsets = {});

// Encodes the records into out[0, size) (size and numbers from MeasureBatch): records, body
// checksum, count, length and event-time range. Base offset and append time are left for
// SealBatch.
void EncodeBatch(std::span<const Record> records, const BatchNumbers& numbers, char* out,
                 std::span<const int64_t> offsets = {});

// Fills in what is known only under the partition's lock, and the header checksum.
void SealBatch(char* batch, int64_t base_offset, int64_t append_time_us);

// Makes an encoded batch a part of a group, before SealBatch: writes the trailer in the
// kGroupTrailerSize bytes after its records (the buffer must have them) and sets bit 5, the
// length and the body checksum.
void AddGroupTrailer(char* batch, const GroupTrailer& group);

// The trailer of a kAttrGroup batch, from its last kGroupTrailerSize bytes.
GroupTrailer ReadGroupTrailer(const char* trailer);

// Compresses an encoded batch in place (after EncodeBatch, before AddGroupTrailer and
// SealBatch) when that makes it smaller, setting the codec bits, length and body checksum.
// Returns the batch's length, which is unchanged when compression would not save a byte.
size_t CompressBatch(char* batch, Compression codec);

// Decodes and checks the first kBatchHeaderSize bytes: magic, header checksum and that the
// fields make sense (length, count, attributes). On failure returns false and sets *why.
bool ParseBatchHeader(const char* p, BatchHeader* h, std::string* why);

// Checks the body checksum of a whole batch and that its records exactly fill it.
bool CheckBatchBody(const char* batch, const BatchHeader& h, std::string* why);

// Checks only the body checksum (CheckBatchBody does too, and the layout).
bool CheckBodyChecksum(const char* batch, const BatchHeader& h, std::string* why);

// For a batch with codec bits whose body checksum matched: the batch as if it had been written
// uncompressed, into *out (its header copied with the codec bits cleared and the plain length;
// the header checksum is not redone), *plain its header, the records' layout checked as
// CheckBatchBody checks it. False with *why for a frame that does not decode, an unknown codec,
// a size other than the frame says or more than kMaxBatchBytes, or records that do not fill it.
bool DecompressBatch(const char* batch, const BatchHeader& h, std::string* out, BatchHeader* plain, std::string* why);

// Makes a batch ready for ForEachRecord: *plain is the batch itself or, compressed, its
// decompressed copy in *scratch (DecompressBatch). Unless `checked` (a body this process
// wrote or checked before), the body is checked first as CheckBatchBody does.
bool PlainBatch(const char* batch, const BatchHeader& h, bool checked, std::string* scratch, const char** plain,
                BatchHeader* plain_h, std::string* why);

// Calls f(timestamp_us, key, value, numbers) for each record of an uncompressed batch that
// passed CheckBatchBody, or the plain batch PlainBatch gives (a compressed one passes
// CheckBatchBody too, but its bytes are a zstd frame); numbers is a RecordNumbers (carried()
// false when the record has none).
template <typename F>
void ForEachRecord(const char* batch, const BatchHeader& h, F&& f);
// The same, calling f(offset, timestamp_us, key, value, numbers): the offsets are base_offset,
// base_offset + 1, ... but in a batch of bit 6, whose records say theirs.
template <typename F>
void ForEachRecordAt(const char* batch, const BatchHeader& h, F&& f);

// A record's carried numbers, undecoded: Decode appends them to out as NumberFields whose
// names point into the batch.
class RecordNumbers {
 public:
  bool carried() const { return count_ != kNumbersNotCarried; }
  size_t size() const { return carried() ? count_ : 0; }
  void Decode(std::vector<NumberField>* out) const;

 private:
  template <typename F>
  friend void ForEachRecordAt(const char* batch, const BatchHeader& h, F&& f);
  const char* p_ = nullptr;                           // the first (index, value) pair
  uint8_t count_ = kNumbersNotCarried;
  const std::vector<std::string_view>* names_ = nullptr;
};

// The name table of a kAttrNumbers batch's body (after its offsets, with bit 6); returns where
// the records start.
const char* ReadNameTable(const char* batch, std::vector<std::string_view>* names);

// Where the name table or the records of an uncompressed batch start: after its offsets with
// bit 6 (read from the batch's own attributes), else right after the header.
inline const char* BodyStart(const char* batch);

// Segment files are named by the offset of their first record: 00000000000000001234.log.
std::string SegmentFileName(int64_t base_offset);
bool ParseSegmentFileName(std::string_view name, int64_t* base_offset);

// Topic and consumer group names: 1-200 of [A-Za-z0-9._-], not "." or "..".
bool IsValidName(std::string_view name);

// The topic metadata file (topic.toml): partitions and retention.
std::string EncodeTopicMeta(const TopicConfig& config);
Result<TopicConfig> ParseTopicMeta(std::string_view text, const std::string& name);

// A consumer group's committed positions on one topic: partition -> next offset to read.
std::string EncodeOffsets(const std::map<int32_t, int64_t>& offsets);
Result<std::map<int32_t, int64_t>> ParseOffsets(std::string_view text);

// One entry per batch: the offset of its first record, where it starts in the segment, and
// the offset after its last record (offset + record count).
struct IndexEntry {
  int64_t offset;
  int64_t position;
  int64_t end_offset;
};

// Reading a segment file batch by batch, from `valid_bytes` on, expecting the next batch to
// start at `next_offset` (a compacted batch: at or after it). The scan stops at end of file or
// at the first bad batch.
struct SegmentScan {
  int64_t valid_bytes = 0;   // end of the last good batch (in/out)
  int64_t next_offset = 0;   // offset the next batch must start at (in/out)
  int64_t file_bytes = 0;    // size of the file when scanned
  int64_t batches = 0;
  int64_t records = 0;
  int64_t first_append_us = 0;  // of the batches scanned in this call; 0 if none
  int64_t last_append_us = 0;
  std::vector<IndexEntry> index;  // appended to

  enum class Tail { kClean, kTorn, kCorrupt };
  Tail tail = Tail::kClean;  // how the scan ended; the problem is at valid_bytes
  std::string why;           // for kTorn and kCorrupt
};

// Scans with pread, a window of the file at a time (in *buffer). verify_bodies also checks each
// batch's body checksum and record layout (otherwise only headers are read). Returns an error
// only when reading fails; what it finds is in scan->tail. Torn: the file ends inside a batch,
// or everything left is zero bytes. Corrupt: a complete batch (or a full header) that does not
// check out.
Status ScanSegment(int fd, bool verify_bodies, SegmentScan* scan, std::string* buffer);

// --- little-endian coding, used above and by tests ---

inline void PutU16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v);
  p[1] = static_cast<char>(v >> 8);
}
inline void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline void PutU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline uint16_t GetU16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(u[0] | (u[1] << 8));
}
inline uint32_t GetU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(u[0]) | (static_cast<uint32_t>(u[1]) << 8) | (static_cast<uint32_t>(u[2]) << 16) |
         (static_cast<uint32_t>(u[3]) << 24);
}
inline uint64_t GetU64(const char* p) {
  return static_cast<uint64_t>(GetU32(p)) | (static_cast<uint64_t>(GetU32(p + 4)) << 32);
}
inline int64_t GetI64(const char* p) { return static_cast<int64_t>(GetU64(p)); }

inline const char* BodyStart(const char* batch) {
  const char* p = batch + kBatchHeaderSize;
  if (GetU16(batch + kAttributesAt) & kAttrOffsets) p += 4 + size_t{GetU32(p)} * 4;
  return p;
}

template <typename F>
void ForEachRecordAt(const char* batch, const BatchHeader& h, F&& f) {
  RecordNumbers numbers;
  // The records' offsets: consecutive, or a table of deltas (bit 6).
  uint32_t count = h.record_count;
  const char* deltas = nullptr;
  if (h.attributes & kAttrOffsets) {
    count = GetU32(batch + kBatchHeaderSize);
    deltas = batch + kBatchHeaderSize + 4;
  }
  auto offset = [&](uint32_t i) { return h.base_offset + (deltas ? int64_t{GetU32(deltas + 4 * size_t{i})} : int64_t{i}); };
  const char* p = BodyStart(batch);
  if (!(h.attributes & kAttrNumbers)) {
    for (uint32_t i = 0; i < count; ++i) {
      int64_t ts = GetI64(p);
      size_t key_len = GetU16(p + 8);
      size_t value_len = GetU32(p + 10);
      const char* key = p + kRecordHeaderSize;
      f(offset(i), ts, std::string_view(key, key_len), std::string_view(key + key_len, value_len), numbers);
      p = key + key_len + value_len;
    }
    return;
  }
  thread_local std::vector<std::string_view> names;
  p = ReadNameTable(batch, &names);
  numbers.names_ = &names;
  for (uint32_t i = 0; i < count; ++i) {
    int64_t ts = GetI64(p);
    size_t key_len = GetU16(p + 8);
    size_t value_len = GetU32(p + 10);
    numbers.count_ = static_cast<uint8_t>(p[14]);
    const char* key = p + kNumbersRecordHeaderSize;
    numbers.p_ = key + key_len + value_len;
    f(offset(i), ts, std::string_view(key, key_len), std::string_view(key + key_len, value_len), numbers);
    p = numbers.p_ + numbers.size() * kNumberSize;
  }
}

template <typename F>
void ForEachRecord(const char* batch, const BatchHeader& h, F&& f) {
  ForEachRecordAt(batch, h, [&](int64_t, int64_t ts, std::string_view key, std::string_view value,
                                const RecordNumbers& numbers) { f(ts, key, value, numbers); });
}

}  // namespace mare::log::format
