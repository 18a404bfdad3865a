#include "store/segment.h"

#include <fcntl.h>
#include <isa-l/crc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <utility>

#include <fmt/format.h>

#include "log/file.h"
#include "store/coding.h"
#include "store/index_cache.h"

namespace mare::store {
namespace {

// Format 1: one hour per segment (read only). Format 2: a range of hours (written).
constexpr char kMagicV1[8] = {'M', 'A', 'R', 'E', 'S', 'E', 'G', '1'};
constexpr char kMagicV2[8] = {'M', 'A', 'R', 'E', 'S', 'E', 'G', '2'};
constexpr char kMagicV3[8] = {'M', 'A', 'R', 'E', 'S', 'E', 'G', '3'};
constexpr size_t kFooterSize = 32;  // index_offset u64, index_length u64, index_crc u32, reserved u32, magic

uint32_t Crc(std::string_view bytes) {
  return ::crc32_gzip_refl(0, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

Status WriteAll(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("write " + path, errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

Status PreadAll(int fd, char* out, size_t n, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, out + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("read " + path, errno);
    }
    if (r == 0) return Status::Corruption(fmt::format("{}: file ends at byte {}, expected {} more", path, offset + done, n - done));
    done += static_cast<size_t>(r);
  }
  return Status::OK();
}

// One index entry as the file holds it (docs/formats/store.md); a column's local id is its
// store field id (the header lists the store's fields in id order).
void PutEntry(std::string* out, const BlockMeta& m) {
  PutFixed32(out, m.sensor_id);
  PutFixed32(out, m.rows);
  PutFixed64(out, static_cast<uint64_t>(m.min_ts));
  PutFixed64(out, static_cast<uint64_t>(m.max_ts));
  PutFixed64(out, m.offset);
  PutFixed32(out, m.length);
  PutFixed32(out, m.crc);
  PutFixed32(out, m.ts_length);
  PutVarint(out, m.columns.size());
  for (const auto& c : m.columns) {
    PutVarint(out, c.field);
    PutFixed32(out, c.offset);
    PutFixed32(out, c.length);
    const ColumnStats& st = c.stats;
    PutFixed32(out, st.count);
    PutFixed64(out, static_cast<uint64_t>(st.first_ts));
    PutFixed64(out, static_cast<uint64_t>(st.last_ts));
    if (c.type == FieldType::kNumber) {
      for (double d : {st.min, st.max, st.sum, st.m2, st.first, st.last}) PutDouble(out, d);
    } else {
      PutString(out, st.first_text());
      PutString(out, st.last_text());
    }
  }
}

constexpr size_t kIndexChunk = 1u << 20;  // entries held before they go to the index's temporary file; a cursor's read

}  // namespace

std::string SegmentFileName(uint64_t id) { return fmt::format("{:020d}.seg", id); }

SegmentWriter::SegmentWriter(std::string dir, uint64_t id) : dir_(std::move(dir)), id_(id) {
  path_ = dir_ + "/" + SegmentFileName(id);
  tmp_ = path_ + ".tmp";
  index_tmp_ = path_ + ".idx.tmp";  // ".tmp": a store opening removes it, as it does tmp_
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) error_ = Status::FromErrno("create " + tmp_, errno);
}

SegmentWriter::~SegmentWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (index_fd_ >= 0) {
    ::close(index_fd_);
    ::unlink(index_tmp_.c_str());
  }
  if (!finished_) ::unlink(tmp_.c_str());
}

Status SegmentWriter::Flush() {
  if (error_.ok() && !pending_.empty()) error_ = WriteAll(fd_, pending_, tmp_);
  pending_.clear();
  return error_;
}

Status SegmentWriter::SpillEntries() {
  if (!error_.ok() || entries_.empty()) return error_;
  if (index_fd_ < 0) {
    index_fd_ = ::open(index_tmp_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (index_fd_ < 0) return error_ = Status::FromErrno("create " + index_tmp_, errno);
  }
  spilled_crc_ = ::crc32_gzip_refl(spilled_crc_, reinterpret_cast<const unsigned char*>(entries_.data()), entries_.size());
  error_ = WriteAll(index_fd_, entries_, index_tmp_);
  spilled_ += entries_.size();
  entries_.clear();
  return error_;
}

Status SegmentWriter::Add(EncodedBlock block) {
  if (!error_.ok()) return error_;
  BlockMeta& m = block.meta;
  int64_t hour = HourOf(m.min_ts);
  if (HourOf(m.max_ts) != hour) {
    return error_ = Status::InvalidArgument(fmt::format("segment {}: a block spans hours", tmp_));
  }
  if (blocks_ > 0 && (hour < last_hour_ || (hour == last_hour_ && m.sensor_id < last_sensor_))) {
    return error_ = Status::InvalidArgument(fmt::format("segment {}: blocks out of (hour, sensor) order", tmp_));
  }
  if (blocks_ == 0) first_hour_ = hour;
  last_hour_ = hour;
  last_sensor_ = m.sensor_id;
  for (const ColumnMeta& c : m.columns) fields_listed_ = std::max(fields_listed_, c.field + 1);
  m.offset = offset_;
  m.crc = Crc(block.bytes);
  offset_ += block.bytes.size();
  pending_.append(block.bytes);
  PutEntry(&entries_, m);
  ++blocks_;
  if (entries_.size() >= kIndexChunk) MARE_RETURN_IF_ERROR(SpillEntries());
  if (pending_.size() >= (4u << 20)) return Flush();
  return Status::OK();
}

Status SegmentWriter::Finish(SegmentInfo info, const Schema& schema, uint64_t* file_bytes) {
  if (!error_.ok()) return error_;
  if (blocks_ == 0) return Status::InvalidArgument(fmt::format("segment {}: no blocks", tmp_));
  if (info.id != id_) return Status::InvalidArgument(fmt::format("segment {}: id {} given", tmp_, info.id));
  info.min_hour = first_hour_;
  info.max_hour = last_hour_;

  std::string head;
  PutFixed64(&head, info.id);
  PutFixed64(&head, static_cast<uint64_t>(info.min_hour));
  PutFixed64(&head, static_cast<uint64_t>(info.max_hour));
  PutVarint(&head, info.supersedes.size());
  for (uint64_t id : info.supersedes) PutFixed64(&head, id);
  PutVarint(&head, info.raw_offsets.size());
  for (int64_t o : info.raw_offsets) PutFixed64(&head, static_cast<uint64_t>(o));
  // Format 2 unless this segment hides blocks: an older mare reads everything else.
  bool v3 = !info.hides.empty();
  if (v3) {
    PutVarint(&head, info.hides.size());
    for (const BlockRef& h : info.hides) {
      PutFixed64(&head, h.segment);
      PutFixed32(&head, h.block);
    }
  }
  // The store's fields in id order, up to the largest a block uses: a local id is the store's, so
  // that each entry is written as its block comes, and a store reopening interns the fields in
  // their order of old (SELECT * keeps its columns across a restart).
  PutVarint(&head, fields_listed_);
  for (uint32_t field = 0; field < fields_listed_; ++field) {
    Field f = schema.Get(field);
    PutString(&head, f.name);
    head.push_back(static_cast<char>(f.type));
  }
  PutVarint(&head, blocks_);
  uint32_t crc = Crc(head);
  uint64_t index_bytes = head.size() + spilled_ + entries_.size();
  pending_.append(head);
  std::string().swap(head);
  // The entries spilled, read back a chunk at a time behind the blocks, then those still held.
  // What is read back must be what was encoded (its CRC taken as it was spilled): the index's
  // checksum is computed over the bytes read, and would otherwise seal a damaged spill as sound.
  if (index_fd_ >= 0) {
    MARE_RETURN_IF_ERROR(Flush());
    std::string chunk(kIndexChunk, '\0');
    uint32_t back = 0;
    for (uint64_t at = 0; at < spilled_; at += chunk.size()) {
      chunk.resize(std::min<uint64_t>(kIndexChunk, spilled_ - at));
      MARE_RETURN_IF_ERROR(error_ = PreadAll(index_fd_, chunk.data(), chunk.size(), at, index_tmp_));
      crc = ::crc32_gzip_refl(crc, reinterpret_cast<const unsigned char*>(chunk.data()), chunk.size());
      back = ::crc32_gzip_refl(back, reinterpret_cast<const unsigned char*>(chunk.data()), chunk.size());
      MARE_RETURN_IF_ERROR(error_ = WriteAll(fd_, chunk, tmp_));
    }
    if (back != spilled_crc_) {
      return error_ = Status::Corruption(fmt::format("segment {}: the index entries read back from {} are not those written there",
                                                     tmp_, index_tmp_));
    }
    ::close(index_fd_);
    index_fd_ = -1;
    ::unlink(index_tmp_.c_str());
  }
  crc = ::crc32_gzip_refl(crc, reinterpret_cast<const unsigned char*>(entries_.data()), entries_.size());
  pending_.append(entries_);
  std::string().swap(entries_);
  std::string footer;
  PutFixed64(&footer, offset_);
  PutFixed64(&footer, index_bytes);
  PutFixed32(&footer, crc);
  PutFixed32(&footer, 0);
  footer.append(v3 ? kMagicV3 : kMagicV2, 8);
  pending_.append(footer);
  MARE_RETURN_IF_ERROR(Flush());
  std::string().swap(pending_);
  *file_bytes = offset_ + index_bytes + footer.size();
  if (::fsync(fd_) != 0) return error_ = Status::FromErrno("fsync " + tmp_, errno);
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return error_ = Status::FromErrno("close " + tmp_, errno);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) return error_ = Status::FromErrno("rename " + tmp_, errno);
  finished_ = true;  // the .seg is complete; the directory's fsync makes it durable
  return log::file::SyncDir(dir_);
}

namespace {

using FieldMap = Segment::FieldMap;

struct Footer {
  bool v1 = false, v3 = false;
  uint64_t index_offset = 0, index_length = 0;
  uint32_t index_crc = 0;
};

Status ReadFooter(int fd, uint64_t file_bytes, const std::string& path, Footer* out) {
  auto corrupt = [&](const std::string& what) { return Status::Corruption(fmt::format("store segment {}: {}", path, what)); };
  if (file_bytes < kFooterSize) return corrupt("shorter than its footer");
  char footer[kFooterSize];
  MARE_RETURN_IF_ERROR(PreadAll(fd, footer, kFooterSize, file_bytes - kFooterSize, path));
  out->v1 = std::memcmp(footer + 24, kMagicV1, 8) == 0;
  out->v3 = std::memcmp(footer + 24, kMagicV3, 8) == 0;
  if (!out->v1 && !out->v3 && std::memcmp(footer + 24, kMagicV2, 8) != 0) {
    if (std::memcmp(footer + 24, kMagicV2, 7) == 0) {
      return corrupt(fmt::format("segment format version {} is newer than this mare reads (1 to 3); upgrade mare",
                                 std::string_view(footer + 31, 1)));
    }
    return corrupt("no segment magic at its end");
  }
  Reader f(std::string_view(footer, kFooterSize));
  f.Fixed64(&out->index_offset);
  f.Fixed64(&out->index_length);
  f.Fixed32(&out->index_crc);
  // Compared without sums that could wrap: a damaged offset must not frame a huge index.
  if (out->index_offset > file_bytes - kFooterSize || out->index_length != file_bytes - kFooterSize - out->index_offset) {
    return corrupt("index does not end at the footer");
  }
  return Status::OK();
}

// The index's checksum against the footer's, its bytes read a chunk at a time.
Status CheckIndexChecksum(int fd, uint64_t file_bytes, const std::string& path) {
  Footer footer;
  MARE_RETURN_IF_ERROR(ReadFooter(fd, file_bytes, path, &footer));
  std::string chunk(static_cast<size_t>(std::min<uint64_t>(kIndexChunk, footer.index_length)), '\0');
  uint32_t crc = 0;
  for (uint64_t at = 0; at < footer.index_length; at += chunk.size()) {
    chunk.resize(static_cast<size_t>(std::min<uint64_t>(kIndexChunk, footer.index_length - at)));
    MARE_RETURN_IF_ERROR(PreadAll(fd, chunk.data(), chunk.size(), footer.index_offset + at, path));
    crc = ::crc32_gzip_refl(crc, reinterpret_cast<const unsigned char*>(chunk.data()), chunk.size());
  }
  if (crc != footer.index_crc) return Status::Corruption(fmt::format("store segment {}: index checksum mismatch", path));
  return Status::OK();
}

// The index's header: the segment's info, its fields and the count of entries. With a schema,
// the fields are interned into it and *fields is set; without one (reading the index again) the
// index must name fields of the same types as *fields. False when malformed or cut short.
bool ReadHeader(Reader& r, const Footer& footer, Schema* schema, FieldMap* fields, SegmentInfo* info, uint64_t* count) {
  uint64_t n = 0, min_hour = 0, max_hour = 0;
  bool ok = r.Fixed64(&info->id) && r.Fixed64(&min_hour);
  if (footer.v1) {
    max_hour = min_hour;
  } else {
    ok = ok && r.Fixed64(&max_hour);
  }
  ok = ok && r.Varint(&n) && n < (1u << 20);
  info->min_hour = static_cast<int64_t>(min_hour);
  info->max_hour = static_cast<int64_t>(max_hour);
  for (uint64_t i = 0; ok && i < n; ++i) {
    uint64_t id = 0;
    ok = r.Fixed64(&id);
    info->supersedes.push_back(id);
  }
  ok = ok && r.Varint(&n) && n < (1u << 16);
  for (uint64_t i = 0; ok && i < n; ++i) {
    int64_t o = 0;
    ok = r.Int64(&o);
    info->raw_offsets.push_back(o);
  }
  if (footer.v3) {
    ok = ok && r.Varint(&n) && n < (1u << 24) && n <= r.remaining() / 12;
    for (uint64_t i = 0; ok && i < n; ++i) {
      BlockRef h;
      ok = r.Fixed64(&h.segment) && r.Fixed32(&h.block);
      info->hides.push_back(h);
    }
  }
  const bool known = schema == nullptr;
  ok = ok && r.Varint(&n) && n < (1u << 16) && (!known || n == fields->size());
  for (uint64_t i = 0; ok && i < n; ++i) {
    std::string_view name;
    uint8_t type = 0;
    ok = r.String(&name) && r.Byte(&type) && (type == 1 || type == 2);
    if (!ok) break;
    if (known) {
      ok = (*fields)[i].second == static_cast<FieldType>(type);
    } else {
      fields->emplace_back(schema->Intern(name, static_cast<FieldType>(type)), static_cast<FieldType>(type));
    }
  }
  return ok && r.Varint(count) && *count < (1u << 28);
}

// One entry, checked as far as it can be alone (blocks_end: where the blocks' bytes end). False
// when malformed or cut short.
bool ReadEntry(Reader& r, const FieldMap& fields, uint64_t blocks_end, BlockMeta* m) {
  uint64_t columns = 0;
  bool ok = r.Fixed32(&m->sensor_id) && r.Fixed32(&m->rows) && r.Int64(&m->min_ts) && r.Int64(&m->max_ts) && r.Fixed64(&m->offset) &&
            r.Fixed32(&m->length) && r.Fixed32(&m->crc) && r.Fixed32(&m->ts_length) && r.Varint(&columns) && columns <= fields.size();
  // A block holds 1 to kMaxBlockRows rows: decoding sizes its columns by the count.
  ok = ok && m->offset <= blocks_end && m->length <= blocks_end - m->offset && m->ts_length <= m->length && m->rows > 0 &&
       m->rows <= kMaxBlockRows && m->min_ts <= m->max_ts;
  if (!ok) return false;
  m->columns.clear();
  m->columns.reserve(columns);
  for (uint64_t c = 0; ok && c < columns; ++c) {
    ColumnMeta col;
    uint64_t local = 0;
    ok = r.Varint(&local) && local < fields.size() && r.Fixed32(&col.offset) && r.Fixed32(&col.length);
    if (!ok) break;
    col.field = fields[local].first;
    col.type = fields[local].second;
    ColumnStats& cs = col.stats;
    ok = r.Fixed32(&cs.count) && r.Int64(&cs.first_ts) && r.Int64(&cs.last_ts) && static_cast<uint64_t>(col.offset) + col.length <= m->length;
    if (ok && col.type == FieldType::kNumber) {
      ok = r.Double(&cs.min) && r.Double(&cs.max) && r.Double(&cs.sum) && r.Double(&cs.m2) && r.Double(&cs.first) && r.Double(&cs.last);
    } else if (ok) {
      std::string_view a, b;
      ok = r.String(&a) && r.String(&b);
      cs.text.Set(a, b);
    }
    m->columns.push_back(std::move(col));
  }
  std::sort(m->columns.begin(), m->columns.end(), [](const ColumnMeta& a, const ColumnMeta& b) { return a.field < b.field; });
  return ok;
}

// Views rely on this: every block in one hour of [min_hour, max_hour], in hour order.
bool InItsHour(const BlockMeta& m, const SegmentInfo& info, int64_t* prev_hour) {
  int64_t hour = HourOf(m.min_ts);
  if (HourOf(m.max_ts) != hour || hour < *prev_hour || hour < info.min_hour || hour > info.max_hour) return false;
  *prev_hour = hour;
  return true;
}

// Reads and checks the footer and index of an open segment file into *info and *index (the
// schema and fields as for ReadHeader).
Status ReadIndex(int fd, uint64_t file_bytes, const std::string& path, Schema* schema, FieldMap* fields, SegmentInfo* info,
                 SegmentIndex* index) {
  auto corrupt = [&](const std::string& what) { return Status::Corruption(fmt::format("store segment {}: {}", path, what)); };
  Footer footer;
  MARE_RETURN_IF_ERROR(ReadFooter(fd, file_bytes, path, &footer));
  std::string bytes(footer.index_length, '\0');
  MARE_RETURN_IF_ERROR(PreadAll(fd, bytes.data(), footer.index_length, footer.index_offset, path));
  if (Crc(bytes) != footer.index_crc) return corrupt("index checksum mismatch");

  Reader r(bytes);
  uint64_t n = 0;
  bool ok = ReadHeader(r, footer, schema, fields, info, &n);
  if (ok && n <= r.remaining() / 48) {  // an entry takes at least 48 bytes: no huge reserve for a bad count
    index->blocks.reserve(n);
    index->rows_before.reserve(n + 1);
  }
  index->rows_before.push_back(0);
  int64_t prev_hour = std::numeric_limits<int64_t>::min();
  for (uint64_t i = 0; ok && i < n; ++i) {
    BlockMeta m;
    ok = ReadEntry(r, *fields, footer.index_offset, &m);
    if (!ok) break;
    if (!InItsHour(m, *info, &prev_hour)) {
      return corrupt(fmt::format("block {} (sensor {}) is outside the segment's hours or out of order", i, m.sensor_id));
    }
    index->rows_before.push_back(index->rows_before.back() + m.rows);
    index->blocks.push_back(std::move(m));
  }
  if (!ok || r.remaining() != 0) return corrupt("index is malformed");
  index->memory_bytes = index->MemoryBytes();
  return Status::OK();
}

}  // namespace

// What stays resident of an open segment file: its descriptor and summary. The index is
// `resident` (opened without a cache) or in the cache under `cache_key`.
struct Segment::File {
  std::string path;
  int fd = -1;
  SegmentInfo info;
  uint64_t file_bytes = 0;
  size_t blocks = 0;
  int64_t rows = 0;
  FieldMap fields;  // the index's local field ids, to read it again without the schema
  std::optional<uint32_t> lat_field, lon_field;  // the store's location fields, if known at Open
  std::shared_ptr<const SensorSummary> sensors;   // of the whole file
  std::shared_ptr<const SegmentIndex> resident;
  std::shared_ptr<IndexCache> cache;
  uint64_t cache_key = 0;

  ~File() {
    if (cache) cache->Erase(cache_key);
    if (fd >= 0) ::close(fd);
  }

  // The index, from memory or read again (and checked against the summary); one read again
  // goes into the cache when `keep`.
  Result<std::shared_ptr<const SegmentIndex>> Load(bool keep) const {
    if (resident) return resident;
    if (auto hit = cache->Find(cache_key)) return hit;
    auto corrupt = [&](const std::string& what) {
      return Status::Corruption(fmt::format("store segment {}: {} (reading its block index again)", path, what));
    };
    struct stat st;
    if (::fstat(fd, &st) != 0) return Status::FromErrno("stat " + path, errno);
    if (static_cast<uint64_t>(st.st_size) != file_bytes) {
      return corrupt(fmt::format("its size changed from {} to {} bytes since it was opened", file_bytes, st.st_size));
    }
    SegmentInfo again;
    FieldMap same = fields;
    auto index = std::make_shared<SegmentIndex>();
    Status s = ReadIndex(fd, file_bytes, path, nullptr, &same, &again, index.get());
    if (!s.ok()) return s;  // "store segment <path>: index checksum mismatch", say
    if (again.id != info.id || index->blocks.size() != blocks || index->rows_before.back() != rows) {
      return corrupt("its index changed since it was opened");
    }
    if (keep) cache->Insert(cache_key, index);
    return std::shared_ptr<const SegmentIndex>(std::move(index));
  }
};

Segment::Segment(std::shared_ptr<const File> file, std::shared_ptr<const SegmentIndex> index, size_t begin, size_t end)
    : file_(std::move(file)), index_(std::move(index)), info_(&file_->info), blocks_(index_->blocks.data() + begin), begin_(begin), end_(end) {
  rows_ = index_->rows_before[end] - index_->rows_before[begin];
  if (begin == 0 && end == file_->blocks) sensors_ = file_->sensors;
  if (begin < end) {
    first_hour_ = HourOf(index_->blocks[begin].min_ts);
    last_hour_ = HourOf(index_->blocks[end - 1].min_ts);
  } else {
    first_hour_ = file_->info.min_hour;
    last_hour_ = file_->info.max_hour;
  }
}

Segment::Segment(const Segment& other, std::shared_ptr<const SegmentIndex> index)
    : std::enable_shared_from_this<Segment>(),
      file_(other.file_),
      index_(std::move(index)),
      info_(other.info_),
      blocks_(index_ ? index_->blocks.data() + other.begin_ : nullptr),
      sensors_(other.sensors_),
      begin_(other.begin_),
      end_(other.end_),
      rows_(other.rows_),
      first_hour_(other.first_hour_),
      last_hour_(other.last_hour_) {}

const std::string& Segment::path() const { return file_->path; }
uint64_t Segment::file_bytes() const { return file_->file_bytes; }
int64_t Segment::file_rows() const { return file_->rows; }
bool Segment::cached() const { return file_->cache && file_->cache->Contains(file_->cache_key); }
bool Segment::whole() const { return begin_ == 0 && end_ == file_->blocks; }

Result<std::shared_ptr<const Segment>> Segment::Pin(bool keep_in_cache) const {
  if (index_) return shared_from_this();
  auto index = file_->Load(keep_in_cache);
  if (!index.ok()) return index.status();
  return std::shared_ptr<const Segment>(new Segment(*this, std::move(*index)));
}

std::shared_ptr<const Segment> Segment::Unpinned() const {
  if (!index_ || file_->resident) return shared_from_this();  // a resident index costs nothing more to hold
  return std::shared_ptr<const Segment>(new Segment(*this, nullptr));
}

std::shared_ptr<const Segment> Segment::View(int64_t from_hour, int64_t to_hour) const {
  if (!index_) return nullptr;  // callers pin first (see the class comment)
  const auto& all = index_->blocks;
  auto hour_less = [](const BlockMeta& m, int64_t hour) { return HourOf(m.min_ts) < hour; };
  auto begin = std::lower_bound(all.begin() + static_cast<std::ptrdiff_t>(begin_), all.begin() + static_cast<std::ptrdiff_t>(end_),
                                from_hour, hour_less);
  auto end = std::partition_point(begin, all.begin() + static_cast<std::ptrdiff_t>(end_),
                                  [&](const BlockMeta& m) { return HourOf(m.min_ts) <= to_hour; });
  size_t b = static_cast<size_t>(begin - all.begin()), e = static_cast<size_t>(end - all.begin());
  if (b == e) return nullptr;
  if (b == begin_ && e == end_) return shared_from_this();
  return std::shared_ptr<const Segment>(new Segment(file_, index_, b, e));
}

std::shared_ptr<const Segment> Segment::WithSensors() const {
  if (sensors_ || !index_) return shared_from_this();
  auto copy = std::shared_ptr<Segment>(new Segment(*this, index_));
  copy->sensors_ = std::make_shared<const SensorSummary>(SensorSummary::Build(blocks(), file_->lat_field, file_->lon_field));
  return copy;
}

std::shared_ptr<const Segment> Segment::Range(size_t begin, size_t end) const {
  if (!index_) return nullptr;
  begin = std::clamp(begin, begin_, end_);
  end = std::clamp(end, begin, end_);
  if (begin == end) return nullptr;
  if (begin == begin_ && end == end_) return shared_from_this();
  return std::shared_ptr<const Segment>(new Segment(file_, index_, begin, end));
}

Result<std::shared_ptr<Segment>> Segment::Open(const std::string& path, Schema* schema, std::shared_ptr<IndexCache> cache,
                                                bool keep_in_cache) {
  auto file = std::make_shared<File>();
  file->path = path;
  file->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file->fd < 0) return Status::FromErrno("open " + path, errno);
  struct stat st;
  if (::fstat(file->fd, &st) != 0) return Status::FromErrno("stat " + path, errno);
  file->file_bytes = static_cast<uint64_t>(st.st_size);
  auto index = std::make_shared<SegmentIndex>();
  MARE_RETURN_IF_ERROR(ReadIndex(file->fd, file->file_bytes, path, schema, &file->fields, &file->info, index.get()));
  file->blocks = index->blocks.size();
  file->rows = index->rows_before.back();
  file->lat_field = schema->Find(kLatField, FieldType::kNumber);
  file->lon_field = schema->Find(kLonField, FieldType::kNumber);
  file->sensors = std::make_shared<const SensorSummary>(SensorSummary::Build(index->blocks, file->lat_field, file->lon_field));
  if (cache) {
    // Cached only when asked: the store opens every segment it writes or finds, and without
    // queries of the newest hours most of a day's are never read before a merge replaces them
    // (caching each flush's index grew a day at 10,000 sensors by ~170 MiB).
    file->cache = std::move(cache);
    file->cache_key = file->cache->NewKey();
    if (keep_in_cache) file->cache->Insert(file->cache_key, index);
  } else {
    file->resident = index;
  }
  size_t blocks = file->blocks;
  return std::shared_ptr<Segment>(new Segment(std::move(file), std::move(index), 0, blocks));
}

Status Segment::ReadBlock(size_t i, std::string* bytes) const {
  if (i >= end_ - begin_) return Status::InvalidArgument(fmt::format("store segment {}: no block {}", file_->path, i));
  if (!index_) return Status::InvalidArgument(fmt::format("store segment {}: block {} read without its index", file_->path, i));
  const BlockMeta& m = index_->blocks[begin_ + i];
  bytes->resize(m.length);
  MARE_RETURN_IF_ERROR(PreadAll(file_->fd, bytes->data(), m.length, m.offset, file_->path));
  if (Crc(*bytes) != m.crc) {
    return Status::Corruption(
        fmt::format("store segment {}: block {} (sensor {}) checksum mismatch", file_->path, begin_ + i, m.sensor_id));
  }
  return Status::OK();
}


Status Segment::ReadBlock(const BlockMeta& m, std::string* bytes) const {
  bytes->resize(m.length);
  MARE_RETURN_IF_ERROR(PreadAll(file_->fd, bytes->data(), m.length, m.offset, file_->path));
  if (Crc(*bytes) != m.crc) {
    return Status::Corruption(fmt::format("store segment {}: block at byte {} (sensor {}) checksum mismatch", file_->path, m.offset, m.sensor_id));
  }
  return Status::OK();
}

Segment::Segment(std::shared_ptr<const File> file, int64_t first_hour, int64_t last_hour)
    : file_(std::move(file)), info_(&file_->info), sensors_(file_->sensors), begin_(0), end_(file_->blocks), rows_(file_->rows),
      first_hour_(first_hour), last_hour_(last_hour) {}

Result<std::unique_ptr<Segment::Cursor>> Segment::Entries() const {
  struct stat st;
  if (::fstat(file_->fd, &st) != 0) return Status::FromErrno("stat " + file_->path, errno);
  if (static_cast<uint64_t>(st.st_size) != file_->file_bytes) {
    return Status::Corruption(fmt::format("store segment {}: its size changed from {} to {} bytes since it was opened", file_->path,
                                          file_->file_bytes, st.st_size));
  }
  std::unique_ptr<Cursor> cursor(new Cursor(file_, begin_, end_));
  cursor->fields_ = file_->fields;
  MARE_RETURN_IF_ERROR(cursor->Start(nullptr));
  if (cursor->info_.id != file_->info.id || cursor->count_ != file_->blocks) return cursor->Corrupt("its index changed since it was opened");
  return cursor;
}

Result<std::shared_ptr<const Segment>> Segment::OpenUnpinned(const std::string& path, Schema* schema, std::shared_ptr<IndexCache> cache) {
  if (!cache) {
    auto opened = Open(path, schema);
    if (!opened.ok()) return opened.status();
    return std::shared_ptr<const Segment>(std::move(*opened));
  }
  auto file = std::make_shared<File>();
  file->path = path;
  file->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file->fd < 0) return Status::FromErrno("open " + path, errno);
  struct stat st;
  if (::fstat(file->fd, &st) != 0) return Status::FromErrno("stat " + path, errno);
  file->file_bytes = static_cast<uint64_t>(st.st_size);
  // The index's checksum first, read a chunk at a time: the cursor checks it only at the end,
  // and its start interns the header's field names into the store's schema, which a damaged
  // file must not add to (Open checks before it interns too).
  MARE_RETURN_IF_ERROR(CheckIndexChecksum(file->fd, file->file_bytes, path));
  // The file's summary from its entries read one at a time (the cursor checks them as ReadIndex does).
  Cursor cursor(file, 0, std::numeric_limits<size_t>::max());
  MARE_RETURN_IF_ERROR(cursor.Start(schema));
  // Looked up once its fields are interned, as Open does: the file may be the first to name them.
  file->lat_field = schema->Find(kLatField, FieldType::kNumber);
  file->lon_field = schema->Find(kLonField, FieldType::kNumber);
  SensorSummary::Builder sensors(file->lat_field, file->lon_field);
  BlockMeta m;
  size_t i = 0;
  int64_t first_hour = cursor.info_.min_hour, last_hour = cursor.info_.max_hour;
  while (true) {
    auto more = cursor.Next(&m, &i);
    if (!more.ok()) return more.status();
    if (!*more) break;
    if (i == 0) first_hour = HourOf(m.min_ts);
    last_hour = HourOf(m.min_ts);
    sensors.Add(m);
  }
  file->info = std::move(cursor.info_);
  file->fields = std::move(cursor.fields_);
  file->blocks = cursor.count_;
  file->rows = cursor.rows_;
  file->sensors = std::make_shared<const SensorSummary>(sensors.Finish());
  file->cache = std::move(cache);
  file->cache_key = file->cache->NewKey();
  return std::shared_ptr<const Segment>(new Segment(std::move(file), first_hour, last_hour));
}

Status Segment::Cursor::Corrupt(const std::string& what) const {
  return Status::Corruption(fmt::format("store segment {}: {} (reading its block index)", file_->path, what));
}

Status Segment::Cursor::Start(Schema* schema) {
  Footer footer;
  MARE_RETURN_IF_ERROR(ReadFooter(file_->fd, file_->file_bytes, file_->path, &footer));
  v3_ = footer.v3;
  blocks_end_ = footer.index_offset;
  index_offset_ = footer.index_offset;
  index_left_ = footer.index_length;
  index_crc_ = footer.index_crc;
  prev_hour_ = std::numeric_limits<int64_t>::min();
  while (true) {
    Reader r(std::string_view(buf_).substr(pos_));
    SegmentInfo info;
    FieldMap fields = schema ? FieldMap{} : fields_;
    if (ReadHeader(r, footer, schema, &fields, &info, &count_)) {
      info_ = std::move(info);
      fields_ = std::move(fields);
      pos_ = static_cast<size_t>(r.position() - buf_.data());
      return Status::OK();
    }
    if (index_left_ == 0) return Corrupt("index is malformed");
    MARE_RETURN_IF_ERROR(Refill());
  }
}

Status Segment::Cursor::Refill() {
  buf_.erase(0, pos_);
  pos_ = 0;
  size_t n = static_cast<size_t>(std::min<uint64_t>(index_left_, std::max(kIndexChunk, buf_.size())));
  size_t held = buf_.size();
  buf_.resize(held + n);
  MARE_RETURN_IF_ERROR(PreadAll(file_->fd, buf_.data() + held, n, index_offset_, file_->path));
  crc_ = ::crc32_gzip_refl(crc_, reinterpret_cast<const unsigned char*>(buf_.data() + held), n);
  index_offset_ += n;
  index_left_ -= n;
  return Status::OK();
}

Status Segment::Cursor::End() {
  while (index_left_ > 0) MARE_RETURN_IF_ERROR(Refill());
  if (crc_ != index_crc_) return Corrupt("index checksum mismatch");
  if (pos_ != buf_.size()) return Corrupt("index is malformed");
  std::string().swap(buf_);
  pos_ = 0;
  checked_ = true;
  return Status::OK();
}

Result<bool> Segment::Cursor::Next(BlockMeta* m, size_t* file_index) {
  while (next_ < count_) {
    Reader r(std::string_view(buf_).substr(pos_));
    if (!ReadEntry(r, fields_, blocks_end_, m)) {
      if (index_left_ == 0) return Corrupt("index is malformed");
      MARE_RETURN_IF_ERROR(Refill());
      continue;
    }
    pos_ = static_cast<size_t>(r.position() - buf_.data());
    if (!InItsHour(*m, info_, &prev_hour_)) {
      return Corrupt(fmt::format("block {} (sensor {}) is outside the segment's hours or out of order", next_, m->sensor_id));
    }
    size_t i = next_++;
    rows_ += m->rows;
    if (i < begin_) continue;
    if (i >= end_) break;  // the rest of the view's file: read for its checksum only
    *file_index = i;
    if (next_ == count_) MARE_RETURN_IF_ERROR(End());
    return true;
  }
  // Past the view: the rest of the index is read only to check it whole.
  BlockMeta rest;
  while (next_ < count_) {
    Reader r(std::string_view(buf_).substr(pos_));
    if (!ReadEntry(r, fields_, blocks_end_, &rest)) {
      if (index_left_ == 0) return Corrupt("index is malformed");
      MARE_RETURN_IF_ERROR(Refill());
      continue;
    }
    pos_ = static_cast<size_t>(r.position() - buf_.data());
    ++next_;
  }
  if (!checked_) MARE_RETURN_IF_ERROR(End());
  return false;
}
}  // namespace mare::store
