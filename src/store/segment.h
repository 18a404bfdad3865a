// Segments: immutable files of blocks (docs/formats/store.md). Each block lies within one UTC
// hour; a segment's blocks are ordered by hour, then sensor, then time, so the blocks of a range
// of hours are one run of its index. A flush of the memtable writes one segment whatever the
// hours it holds, a merge one segment from several. A segment names the segments it replaces
// and the raw-topic position it reflects, so that the directory alone says what is live and
// where ingestion resumes.
//
//   SegmentWriter w(dir, id);
//   w.Add(std::move(block));                       // in (hour, sensor, time) order
//   w.Finish(info, schema, &file_bytes);           // fsync, rename, fsync of the directory
//   auto seg = Segment::Open(dir + "/00000000000000000042.seg", &schema, cache);   // Result<shared_ptr>, pinned
//   auto kept = (*seg)->Unpinned();                     // summary only; the index may be evicted
//   auto pinned = kept->Pin();                          // Result: the index back, from cache or file
//   auto day = (*pinned)->View(t0, t0 + 23 * kHourMicros);   // its blocks of those hours
//   std::string bytes;
//   day->ReadBlock(0, &bytes);
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "store/block.h"
#include "store/schema.h"
#include "store/segment_index.h"
#include "store/sensor_summary.h"

namespace mare::store {

class IndexCache;  // store/index_cache.h

// A block of another segment: its file's id and the block's index in that file's index.
struct BlockRef {
  uint64_t segment = 0;
  uint32_t block = 0;
  auto operator<=>(const BlockRef&) const = default;
};

struct SegmentInfo {
  uint64_t id = 0;
  int64_t min_hour = 0;              // the first and last UTC hour its blocks lie in (starts, microseconds)
  int64_t max_hour = 0;
  std::vector<uint64_t> supersedes;  // segments this one replaces (compaction and retention inputs)
  std::vector<int64_t> raw_offsets;  // raw-topic next offset per partition it reflects (-1: none)
  // Blocks of other segments this one replaces (format 3): a reading of the same sensor and
  // time came again, and this segment holds that block's rows with the newer reading instead.
  std::vector<BlockRef> hides;
};

std::string SegmentFileName(uint64_t id);  // "00000000000000000042.seg"

// Writes dir/<id>.seg block by block: blocks go to <id>.seg.tmp as they come, their index
// entries encoded, past a MiB to <id>.seg.idx.tmp (a day's merge writes ~100 MB of them at 10,000
// sensors, which memory would otherwise hold to the end); Finish writes the index and footer,
// fsyncs, renames and fsyncs the directory. A writer dropped before Finish (or whose Finish
// failed) removes its temporary files.
class SegmentWriter {
 public:
  SegmentWriter(std::string dir, uint64_t id);
  ~SegmentWriter();
  SegmentWriter(const SegmentWriter&) = delete;
  SegmentWriter& operator=(const SegmentWriter&) = delete;

  // Blocks must come in (hour, sensor, min_ts) order, each within one hour.
  Status Add(EncodedBlock block);
  size_t blocks() const { return blocks_; }
  // The .seg is in place (renamed): a Finish that failed after that (the directory's fsync)
  // leaves it for the caller to remove.
  bool finished() const { return finished_; }
  // info.id must be the writer's; min_hour and max_hour are set from the blocks (at least one).
  Status Finish(SegmentInfo info, const Schema& schema, uint64_t* file_bytes);

 private:
  Status Flush();
  Status SpillEntries();  // entries_ to the index's temporary file

  std::string dir_, path_, tmp_, index_tmp_;
  uint64_t id_;
  int fd_ = -1;
  int index_fd_ = -1;  // opened at the first spill
  Status error_;
  bool finished_ = false;
  uint64_t offset_ = 0;
  std::string pending_;
  // Index entries as the file holds them, their fields as local ids numbered as they first come.
  std::string entries_;
  uint64_t spilled_ = 0;                                  // bytes of entries in index_tmp_
  uint32_t spilled_crc_ = 0;                              // of those bytes as encoded, to check them read back
  uint32_t fields_listed_ = 0;  // the header lists store fields [0, this): 1 + the largest id a block uses
  int64_t first_hour_ = 0, last_hour_ = 0;
  uint32_t last_sensor_ = 0;
  size_t blocks_ = 0;
};

// An open segment file, or a view of the blocks of some of its hours. Views share the file's
// descriptor; blocks() and ReadBlock number the view's blocks from 0.
//
// The block index (about 550 bytes a block of five columns; a day at 10,000 sensors is 240,000
// blocks, ~130 MB) is what a store of many days cannot keep resident. A segment opened with an IndexCache keeps only its
// summary (info, hours, rows, block count, and its sensors': sensors()); a handle is **pinned** when it holds the index
// (blocks(), ReadBlock, View and Range need one) and **unpinned** otherwise. Pin() returns a
// pinned handle of the same blocks, from the cache or read again from the file; Unpinned() one
// that lets the index go. A segment opened without a cache keeps its index and is always pinned.
class Segment : public std::enable_shared_from_this<Segment> {
 public:
  // Reads and checks the footer and index (formats 1 to 3); field names are interned into
  // *schema. The handle returned is pinned. With a cache, the index goes into it only when
  // keep_in_cache; otherwise only the returned handle (and views of it) hold it, and the first
  // Pin() of an unpinned handle that reads it again caches it.
  static Result<std::shared_ptr<Segment>> Open(const std::string& path, Schema* schema,
                                               std::shared_ptr<IndexCache> cache = nullptr, bool keep_in_cache = false);
  // Opened as Open does, but the handle returned is unpinned and the index was never whole in
  // memory: its entries are read a chunk at a time for the summary (a store writing a segment
  // nobody queries yet: a day's merge output, ~130 MB of index at 10,000 sensors), after a first
  // pass over the index for its checksum, so that a damaged file interns no field into *schema.
  // Needs a cache.
  static Result<std::shared_ptr<const Segment>> OpenUnpinned(const std::string& path, Schema* schema,
                                                             std::shared_ptr<IndexCache> cache);

  // A view's block index read from its file entry by entry, holding a chunk of it (1 MiB) rather
  // than all of it: how a merge walks its inputs, so that its memory does not grow with them.
  class Cursor;
  // Of this view, pinned or not. The index's checksum is checked once the cursor has read it all.
  Result<std::unique_ptr<Cursor>> Entries() const;

  const SegmentInfo& info() const { return *info_; }  // the file's
  const std::string& path() const;
  uint64_t file_bytes() const;
  int64_t file_rows() const;        // rows of the whole file
  // The view's blocks; empty unless pinned (a store's resident handles are not: Pin() first).
  std::span<const BlockMeta> blocks() const { return {blocks_, blocks_ != nullptr ? end_ - begin_ : 0}; }  // inline: queries' inner loops call it
  size_t block_count() const { return end_ - begin_; }  // pinned or not
  bool pinned() const { return index_ != nullptr; }
  bool cached() const;  // its file's index is in the cache now (false without a cache)
  int64_t rows() const { return rows_; }  // rows of this view
  // The hours of the view's first and last blocks (the file's min_hour/max_hour when empty).
  int64_t first_hour() const { return first_hour_; }
  int64_t last_hour() const { return last_hour_; }
  bool whole() const;  // the view holds every block of its file
  size_t file_index(size_t i) const { return begin_ + i; }  // view block i's index in the file

  // This view with its block index: itself when pinned, else the index from the cache or read
  // again from the file (checked as at Open: a file damaged since gives a Corruption error).
  // An index read again goes into the cache unless !keep_in_cache (a merge's inputs: read once,
  // then deleted; caching them would only push out what queries use).
  Result<std::shared_ptr<const Segment>> Pin(bool keep_in_cache = true) const;
  // This view without its index (itself when not pinned): what a store keeps between uses.
  std::shared_ptr<const Segment> Unpinned() const;

  // Pinned only. The view of the file's blocks [begin, end) (file indexes within this view's).
  std::shared_ptr<const Segment> Range(size_t begin, size_t end) const;

  // Pinned only. The blocks of this view within hours [from_hour, to_hour] (hour starts): this
  // segment itself when that is all of them, nullptr when none.
  std::shared_ptr<const Segment> View(int64_t from_hour, int64_t to_hour) const;

  // The per-sensor summary of this view's blocks (sensor_summary.h), resident pinned or not:
  // a file's whole view has it from Open; a view made by View() or Range() has none (null)
  // until WithSensors(). Hidden blocks are the store's business: they are not left out here.
  const SensorSummary* sensors() const { return sensors_.get(); }
  // Pinned only. This view with its sensor summary, computed from its blocks if it has none.
  std::shared_ptr<const Segment> WithSensors() const;

  // Pinned only. Reads block i's bytes and checks its CRC. Works after the file was unlinked
  // (the store unlinks replaced segments at once; readers that still hold one keep its descriptor).
  Status ReadBlock(size_t i, std::string* bytes) const;
  // The block an entry of this file's index names (from a Cursor), pinned or not.
  Status ReadBlock(const BlockMeta& m, std::string* bytes) const;

  // Local field id -> store field id and type, as an index names its fields.
  using FieldMap = std::vector<std::pair<uint32_t, FieldType>>;

 private:
  struct File;
  Segment(std::shared_ptr<const File> file, std::shared_ptr<const SegmentIndex> index, size_t begin, size_t end);
  Segment(const Segment& other, std::shared_ptr<const SegmentIndex> index);  // other's view, with or without an index
  Segment(std::shared_ptr<const File> file, int64_t first_hour, int64_t last_hour);  // the whole file, unpinned
  std::shared_ptr<const File> file_;
  std::shared_ptr<const SegmentIndex> index_;  // null: unpinned
  const SegmentInfo* info_ = nullptr;    // file_'s
  const BlockMeta* blocks_ = nullptr;    // index_'s block begin_ (null: unpinned)
  std::shared_ptr<const SensorSummary> sensors_;  // of blocks [begin_, end_); null: not computed
  size_t begin_ = 0, end_ = 0;
  int64_t rows_ = 0;
  int64_t first_hour_ = 0, last_hour_ = 0;
};

class Segment::Cursor {
 public:
  // The view's next entry, with its index in the file; false after the last. An error for an
  // index damaged or changed since it was opened: what came before it is not to be trusted.
  Result<bool> Next(BlockMeta* m, size_t* file_index);

 private:
  friend class Segment;
  Cursor(std::shared_ptr<const File> file, size_t begin, size_t end) : file_(std::move(file)), begin_(begin), end_(end) {}
  Status Start(Schema* schema);  // reads the footer and the index's header (fields interned into schema, if given)
  Status Refill();               // more of the index's bytes, at least as many as held
  Status End();                  // the rest of the index read: its checksum and size
  Status Corrupt(const std::string& what) const;

  std::shared_ptr<const File> file_;
  size_t begin_, end_;       // the view's entries
  SegmentInfo info_;         // the header's
  FieldMap fields_;
  bool v3_ = false;
  uint64_t blocks_end_ = 0;                     // the blocks' bytes end where the index starts
  uint64_t index_offset_ = 0, index_left_ = 0;  // where the index's bytes not read yet start, how many
  uint32_t crc_ = 0, index_crc_ = 0;            // of the bytes read so far; the footer's
  std::string buf_;                             // bytes read, not yet decoded from pos_
  size_t pos_ = 0;
  uint64_t count_ = 0, next_ = 0;               // entries in the index; the next one's index
  int64_t rows_ = 0;
  int64_t prev_hour_ = 0;
  bool checked_ = false;  // End() done
};

}  // namespace mare::store
