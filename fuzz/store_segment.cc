// Fuzz target: a store segment file as Segment::Open reads it (footer, index, block metadata),
// then every block's timestamps and columns decoded as a query decodes them, and the index read
// again entry by entry (Segment::Cursor, OpenUnpinned) as a merge reads it.
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "store/block.h"
#include "store/index_cache.h"
#include "store/schema.h"
#include "store/segment.h"
#include "fuzz_check.h"

namespace store = mare::store;

using mare::fuzz::Check;

namespace {

constexpr size_t kFooterSize = 32;  // docs/formats/store.md

uint64_t Get64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  // The index checksum a mutation cannot keep right: set it when the footer frames an index.
  if (bytes.size() >= kFooterSize) {
    char* footer = bytes.data() + bytes.size() - kFooterSize;
    uint64_t offset = Get64(footer), length = Get64(footer + 8);
    if (offset <= bytes.size() - kFooterSize && length == bytes.size() - kFooterSize - offset) {
      uint32_t crc = static_cast<uint32_t>(
          ::crc32(::crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(bytes.data() + offset), static_cast<uInt>(length)));
      std::memcpy(footer + 16, &crc, 4);
    }
  }
  int fd = ::memfd_create("segment", MFD_CLOEXEC);
  if (fd < 0) abort();
  if (::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) abort();
  store::Schema schema;
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  auto segment = store::Segment::Open(path, &schema);
  // What a merge's output is opened as: never the whole index in memory, the same verdict.
  store::Schema unpinned_schema;
  auto unpinned = store::Segment::OpenUnpinned(path, &unpinned_schema, std::make_shared<store::IndexCache>(1 << 20, nullptr));
  ::close(fd);  // the segments keep their own descriptors
  Check(segment.ok() == unpinned.ok(), "Open and OpenUnpinned agree on a file");
  if (!segment.ok()) return 0;
  Check((*unpinned)->rows() == (*segment)->rows() && (*unpinned)->block_count() == (*segment)->block_count(),
        "an unpinned open sees the same blocks");
  const store::Segment& s = **segment;
  Check(s.whole(), "an open segment is a view of all its blocks");
  std::vector<int64_t> ts;
  store::ColumnValues values;
  int64_t rows = 0;
  for (size_t i = 0; i < s.blocks().size(); ++i) {
    const store::BlockMeta& m = s.blocks()[i];
    rows += m.rows;
    Check(m.offset <= bytes.size() && m.length <= bytes.size() - m.offset, "a block lies in the file");
    std::string_view b(bytes.data() + m.offset, m.length);
    std::string block;
    // The checksum usually fails (the harness fixes only the index's); the bytes, once read, are the file's.
    if (s.ReadBlock(i, &block).ok()) Check(block == b, "a block reads as the file holds it");
    if (store::DecodeBlockTimestamps(m, b, &ts).ok()) Check(ts.size() == m.rows, "one timestamp per row");
    for (const auto& c : m.columns) {
      values.Clear();
      if (store::DecodeBlockColumn(m, b, c.field, c.type, &values).ok()) {
        Check((c.type == store::FieldType::kNumber ? values.numbers.size() : values.texts.size()) == m.rows, "one value per row");
      }
    }
  }
  Check(rows == s.rows() && rows == s.file_rows(), "rows add up");
  // The index again, entry by entry as a merge reads it: the same entries in the same order,
  // its checksum (fixed up above) found right at the end.
  for (const store::Segment* each : {&s, (*unpinned).get()}) {
    auto cursor = each->Entries();
    Check(cursor.ok(), "a cursor starts on an index that opened");
    store::BlockMeta m;
    size_t i = 0, at = 0;
    for (;;) {
      auto more = (*cursor)->Next(&m, &at);
      Check(more.ok(), "a cursor reads an index that opened to its end");
      if (!*more) break;
      Check(i < s.blocks().size() && at == i, "a cursor's entries are the index's, in order");
      const store::BlockMeta& o = s.blocks()[i];
      Check(m.sensor_id == o.sensor_id && m.rows == o.rows && m.min_ts == o.min_ts && m.max_ts == o.max_ts &&
                m.offset == o.offset && m.length == o.length && m.crc == o.crc && m.ts_length == o.ts_length &&
                m.columns.size() == o.columns.size(),
            "a cursor's entry is the one Open read");
      ++i;
    }
    Check(i == s.blocks().size(), "a cursor reads every entry");
  }
  if (!s.blocks().empty()) {
    auto view = s.View(s.first_hour(), s.first_hour());
    Check(view != nullptr && view->rows() <= s.rows(), "a segment's first hour has blocks");
  }
  return 0;
}
