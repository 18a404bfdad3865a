// Segments: immutable files of blocks, all within one UTC hour (docs/formats/store.md). A flush
// of the memtable writes one segment per hour it holds; compaction merges an hour's segments
// into one. A segment names the segments it replaces and the raw-topic position it reflects,
// so that the directory alone says what is live and where ingestion resumes.
//
//   Status s = WriteSegment(dir, info, schema, &blocks);
//   auto seg = Segment::Open(dir + "/00000000000000000042.seg", &schema);   // Result<shared_ptr>
//   std::string bytes;
//   (*seg)->ReadBlock(0, &bytes);
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/block.h"
#include "store/schema.h"

namespace mare::store {

struct SegmentInfo {
  uint64_t id = 0;
  int64_t hour = 0;                  // the UTC hour every block lies in (its start, microseconds)
  std::vector<uint64_t> supersedes;  // segments this one replaces (compaction inputs)
  std::vector<int64_t> raw_offsets;  // raw-topic next offset per partition it reflects (-1: none)
};

std::string SegmentFileName(uint64_t id);  // "00000000000000000042.seg"

// Writes the blocks (sorted by sensor, then time) as dir/<id>.seg: a temporary file, fsync,
// rename, fsync of the directory. Sets each block's offset and crc. *file_bytes gets the size.
Status WriteSegment(const std::string& dir, const SegmentInfo& info, const Schema& schema,
                    std::vector<EncodedBlock>* blocks, uint64_t* file_bytes);

class Segment {
 public:
  // Reads and checks the footer and index; field names are interned into *schema.
  static Result<std::shared_ptr<Segment>> Open(const std::string& path, Schema* schema);
  ~Segment();

  const SegmentInfo& info() const { return info_; }
  const std::vector<BlockMeta>& blocks() const { return blocks_; }
  uint64_t file_bytes() const { return file_bytes_; }
  const std::string& path() const { return path_; }
  int64_t rows() const { return rows_; }

  // Reads block i's bytes and checks its CRC. Works after the file was unlinked (the store
  // unlinks replaced segments at once; readers that still hold one keep its descriptor).
  Status ReadBlock(size_t i, std::string* bytes) const;

 private:
  Segment() = default;
  std::string path_;
  int fd_ = -1;
  SegmentInfo info_;
  std::vector<BlockMeta> blocks_;
  uint64_t file_bytes_ = 0;
  int64_t rows_ = 0;
};

}  // namespace mare::store
