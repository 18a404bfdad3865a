// Compaction of a keyed topic's closed segments (Kafka's cleanup.policy=compact): what is kept
// of a segment when only the newest record of each key must remain. Pure file work; the
// embedded log (embedded_log.cc) decides when, holds the locks and swaps the files in.
//
//   KeyOffsets newest(map_bytes);                       // key -> newest offset, bounded
//   ForEachSegmentRecord(fd, path, index, size, [&](const SegmentRecord& r) { newest.Put(r.key, r.offset); });
//   CompactSegment(fd, path, index, size, newest, map_end, tmp_path, &result);  // then rename
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "log/format.h"

namespace mare::log {

// The newest offset of each key seen, in a fixed table of `bytes / 24` slots (a 128-bit hash
// of the key and an offset each), never grown: the memory a compaction pass takes is `bytes`.
// Two keys whose 128-bit hashes are equal count as one (probability about n² / 2^129).
class KeyOffsets {
 public:
  explicit KeyOffsets(int64_t bytes);
  // Records offset as key's newest (offsets come in increasing order). False, and nothing
  // recorded, when the key is new and the table is 3/4 full.
  bool Put(std::string_view key, int64_t offset);
  // The newest offset recorded for key, or -1.
  int64_t Get(std::string_view key) const;
  size_t size() const { return used_; }
  size_t capacity() const { return limit_; }

 private:
  struct Slot {
    uint64_t a = 0;
    uint64_t b = 0;
    int64_t offset = -1;  // -1: empty
  };
  size_t Find(uint64_t a, uint64_t b) const;
  std::vector<Slot> slots_;
  size_t used_ = 0;
  size_t limit_ = 0;
};

// One record of a segment, as read back batch by batch.
struct SegmentRecord {
  int64_t offset;
  int64_t timestamp_us;
  int64_t append_time_us;  // its batch's
  std::string_view key;
  std::string_view value;
  const format::RecordNumbers* numbers;
  bool last_in_batch;  // the views above are valid until f returns on this one
};

// Reads a closed segment's batches [0, size) (one batch in memory at a time, its body
// checked, decompressed if it is compressed) and calls f on each record in offset order. Corruption names the file and byte.
Status ForEachSegmentRecord(int fd, const std::string& path, std::span<const format::IndexEntry> index, int64_t size,
                            const std::function<void(const SegmentRecord&)>& f);

struct CompactedSegment {
  int64_t records_in = 0;
  int64_t records_kept = 0;
  int64_t bytes_in = 0;
  int64_t bytes_out = 0;  // of the file written; 0 when nothing was kept (no file is left)
};

// Writes to tmp_path the records of the segment that survive: those at or after map_end, and
// those whose key has no newer offset in `newest`. Kept records stay in order with their
// offsets, timestamps and numbers, gathered into batches flagged kAttrCompacted of about 256 KiB
// uncompressed (across the input's batches; with kAttrOffsets when their offsets are not
// consecutive), each with the append time of its newest record's input batch, compressed with
// `codec` (the topic's now, whatever its input batches' was). The file is fdatasynced before
// this returns (unless sync is false). When nothing survives, no file is left at tmp_path.
Status CompactSegment(int fd, const std::string& path, std::span<const format::IndexEntry> index, int64_t size,
                      const KeyOffsets& newest, int64_t map_end, const std::string& tmp_path, bool sync,
                      Compression codec, CompactedSegment* result);

// The name a segment's compacted copy is written under before it replaces the segment:
// "<segment>.log.cleaned", which no reader takes for a segment.
std::string CleanedFileName(const std::string& segment_path);
inline constexpr std::string_view kCleanedSuffix = ".cleaned";

}  // namespace mare::log
