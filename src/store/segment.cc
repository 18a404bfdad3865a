#include "store/segment.h"

#include <fcntl.h>
#include <isa-l/crc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include <fmt/format.h>

#include "log/file.h"
#include "store/coding.h"

namespace mare::store {
namespace {

constexpr char kMagic[8] = {'M', 'A', 'R', 'E', 'S', 'E', 'G', '1'};
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

}  // namespace

std::string SegmentFileName(uint64_t id) { return fmt::format("{:020d}.seg", id); }

Status WriteSegment(const std::string& dir, const SegmentInfo& info, const Schema& schema,
                    std::vector<EncodedBlock>* blocks, uint64_t* file_bytes) {
  // Local field ids: the fields these blocks use, in store id order.
  std::map<uint32_t, uint32_t> local;
  for (const auto& b : *blocks) {
    for (const auto& c : b.meta.columns) local.emplace(c.field, 0);
  }
  uint32_t next = 0;
  for (auto& [field, id] : local) id = next++;

  std::string path = dir + "/" + SegmentFileName(info.id);
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("create " + tmp, errno);
  Status s;
  uint64_t offset = 0;
  std::string pending;
  for (auto& b : *blocks) {
    b.meta.offset = offset;
    b.meta.crc = Crc(b.bytes);
    offset += b.bytes.size();
    pending.append(b.bytes);
    if (pending.size() >= (4u << 20)) {
      s = WriteAll(fd, pending, tmp);
      pending.clear();
      if (!s.ok()) break;
    }
  }
  std::string index;
  if (s.ok()) {
    PutFixed64(&index, info.id);
    PutFixed64(&index, static_cast<uint64_t>(info.hour));
    PutVarint(&index, info.supersedes.size());
    for (uint64_t id : info.supersedes) PutFixed64(&index, id);
    PutVarint(&index, info.raw_offsets.size());
    for (int64_t o : info.raw_offsets) PutFixed64(&index, static_cast<uint64_t>(o));
    PutVarint(&index, local.size());
    for (const auto& [field, id] : local) {
      Field f = schema.Get(field);
      PutString(&index, f.name);
      index.push_back(static_cast<char>(f.type));
    }
    PutVarint(&index, blocks->size());
    for (const auto& b : *blocks) {
      const BlockMeta& m = b.meta;
      PutFixed32(&index, m.sensor_id);
      PutFixed32(&index, m.rows);
      PutFixed64(&index, static_cast<uint64_t>(m.min_ts));
      PutFixed64(&index, static_cast<uint64_t>(m.max_ts));
      PutFixed64(&index, m.offset);
      PutFixed32(&index, m.length);
      PutFixed32(&index, m.crc);
      PutFixed32(&index, m.ts_length);
      PutVarint(&index, m.columns.size());
      for (const auto& c : m.columns) {
        PutVarint(&index, local[c.field]);
        PutFixed32(&index, c.offset);
        PutFixed32(&index, c.length);
        const ColumnStats& st = c.stats;
        PutFixed32(&index, st.count);
        PutFixed64(&index, static_cast<uint64_t>(st.first_ts));
        PutFixed64(&index, static_cast<uint64_t>(st.last_ts));
        if (c.type == FieldType::kNumber) {
          for (double d : {st.min, st.max, st.sum, st.m2, st.first, st.last}) PutDouble(&index, d);
        } else {
          PutString(&index, st.first_text);
          PutString(&index, st.last_text);
        }
      }
    }
    std::string footer;
    PutFixed64(&footer, offset);
    PutFixed64(&footer, index.size());
    PutFixed32(&footer, Crc(index));
    PutFixed32(&footer, 0);
    footer.append(kMagic, 8);
    pending.append(index);
    pending.append(footer);
    s = WriteAll(fd, pending, tmp);
    *file_bytes = offset + index.size() + footer.size();
  }
  if (s.ok() && ::fsync(fd) != 0) s = Status::FromErrno("fsync " + tmp, errno);
  ::close(fd);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = Status::FromErrno("rename " + tmp, errno);
  if (s.ok()) s = log::file::SyncDir(dir);
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

Result<std::shared_ptr<Segment>> Segment::Open(const std::string& path, Schema* schema) {
  std::shared_ptr<Segment> seg(new Segment());
  seg->path_ = path;
  seg->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (seg->fd_ < 0) return Status::FromErrno("open " + path, errno);
  struct stat st;
  if (::fstat(seg->fd_, &st) != 0) return Status::FromErrno("stat " + path, errno);
  seg->file_bytes_ = static_cast<uint64_t>(st.st_size);
  auto corrupt = [&](const std::string& what) { return Status::Corruption(fmt::format("store segment {}: {}", path, what)); };
  if (seg->file_bytes_ < kFooterSize) return corrupt("shorter than its footer");
  char footer[kFooterSize];
  MARE_RETURN_IF_ERROR(PreadAll(seg->fd_, footer, kFooterSize, seg->file_bytes_ - kFooterSize, path));
  if (std::memcmp(footer + 24, kMagic, 8) != 0) return corrupt("no segment magic at its end");
  Reader f(std::string_view(footer, kFooterSize));
  uint64_t index_offset = 0, index_length = 0;
  uint32_t index_crc = 0;
  f.Fixed64(&index_offset);
  f.Fixed64(&index_length);
  f.Fixed32(&index_crc);
  if (index_offset + index_length + kFooterSize != seg->file_bytes_) return corrupt("index does not end at the footer");
  std::string index(index_length, '\0');
  MARE_RETURN_IF_ERROR(PreadAll(seg->fd_, index.data(), index_length, index_offset, path));
  if (Crc(index) != index_crc) return corrupt("index checksum mismatch");

  Reader r(index);
  SegmentInfo& info = seg->info_;
  uint64_t n = 0, hour = 0;
  bool ok = r.Fixed64(&info.id) && r.Fixed64(&hour) && r.Varint(&n) && n < (1u << 20);
  info.hour = static_cast<int64_t>(hour);
  for (uint64_t i = 0; ok && i < n; ++i) {
    uint64_t id = 0;
    ok = r.Fixed64(&id);
    info.supersedes.push_back(id);
  }
  ok = ok && r.Varint(&n) && n < (1u << 16);
  for (uint64_t i = 0; ok && i < n; ++i) {
    int64_t o = 0;
    ok = r.Int64(&o);
    info.raw_offsets.push_back(o);
  }
  std::vector<std::pair<uint32_t, FieldType>> fields;
  ok = ok && r.Varint(&n) && n < (1u << 16);
  for (uint64_t i = 0; ok && i < n; ++i) {
    std::string_view name;
    uint8_t type = 0;
    ok = r.String(&name) && r.Byte(&type) && (type == 1 || type == 2);
    if (ok) fields.emplace_back(schema->Intern(name, static_cast<FieldType>(type)), static_cast<FieldType>(type));
  }
  ok = ok && r.Varint(&n) && n < (1u << 28);
  for (uint64_t i = 0; ok && i < n; ++i) {
    BlockMeta m;
    uint64_t columns = 0;
    ok = r.Fixed32(&m.sensor_id) && r.Fixed32(&m.rows) && r.Int64(&m.min_ts) && r.Int64(&m.max_ts) && r.Fixed64(&m.offset) &&
         r.Fixed32(&m.length) && r.Fixed32(&m.crc) && r.Fixed32(&m.ts_length) && r.Varint(&columns) && columns <= fields.size();
    ok = ok && m.offset + m.length <= index_offset && m.ts_length <= m.length && m.rows > 0 && m.min_ts <= m.max_ts;
    for (uint64_t c = 0; ok && c < columns; ++c) {
      ColumnMeta col;
      uint64_t local = 0;
      ok = r.Varint(&local) && local < fields.size() && r.Fixed32(&col.offset) && r.Fixed32(&col.length);
      if (!ok) break;
      col.field = fields[local].first;
      col.type = fields[local].second;
      ColumnStats& st = col.stats;
      ok = r.Fixed32(&st.count) && r.Int64(&st.first_ts) && r.Int64(&st.last_ts) &&
           static_cast<uint64_t>(col.offset) + col.length <= m.length;
      if (ok && col.type == FieldType::kNumber) {
        ok = r.Double(&st.min) && r.Double(&st.max) && r.Double(&st.sum) && r.Double(&st.m2) && r.Double(&st.first) &&
             r.Double(&st.last);
      } else if (ok) {
        std::string_view a, b;
        ok = r.String(&a) && r.String(&b);
        st.first_text.assign(a);
        st.last_text.assign(b);
      }
      m.columns.push_back(std::move(col));
    }
    std::sort(m.columns.begin(), m.columns.end(), [](const ColumnMeta& a, const ColumnMeta& b) { return a.field < b.field; });
    seg->rows_ += m.rows;
    seg->blocks_.push_back(std::move(m));
  }
  if (!ok || r.remaining() != 0) return corrupt("index is malformed");
  return seg;
}

Segment::~Segment() {
  if (fd_ >= 0) ::close(fd_);
}

Status Segment::ReadBlock(size_t i, std::string* bytes) const {
  const BlockMeta& m = blocks_.at(i);
  bytes->resize(m.length);
  MARE_RETURN_IF_ERROR(PreadAll(fd_, bytes->data(), m.length, m.offset, path_));
  if (Crc(*bytes) != m.crc) {
    return Status::Corruption(fmt::format("store segment {}: block {} (sensor {}) checksum mismatch", path_, i, m.sensor_id));
  }
  return Status::OK();
}

}  // namespace mare::store
