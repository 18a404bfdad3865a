#include "log/compaction.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "common/number_field.h"
#include "log/file.h"

namespace mare::log {

namespace {

// About how many bytes (uncompressed) compaction gathers into one batch of the records it keeps:
// a rollups batch as appended, ~800 records of ~320 B, which zstd shrinks ~8 times.
constexpr size_t kCompactedBatchBytes = 256 << 10;

// A 64-bit hash of the key under a seed (murmur-like mixing of 8-byte words); two seeds make
// the 128 bits KeyOffsets keys by.
uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

uint64_t Hash(std::string_view key, uint64_t seed) {
  uint64_t h = seed ^ (key.size() * 0x9e3779b97f4a7c15ULL);
  size_t i = 0;
  for (; i + 8 <= key.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, key.data() + i, 8);
    h = Mix(h ^ Mix(w + seed));
  }
  uint64_t tail = 0;
  std::memcpy(&tail, key.data() + i, key.size() - i);
  return Mix(h ^ Mix(tail + seed + key.size()));
}

constexpr uint64_t kSeedA = 0x243f6a8885a308d3ULL;
constexpr uint64_t kSeedB = 0x13198a2e03707344ULL;

}  // namespace

KeyOffsets::KeyOffsets(int64_t bytes) {
  size_t n = static_cast<size_t>(std::max<int64_t>(bytes, 1024) / static_cast<int64_t>(sizeof(Slot)));
  slots_.resize(n);
  limit_ = n / 4 * 3;
}

size_t KeyOffsets::Find(uint64_t a, uint64_t b) const {
  size_t i = static_cast<size_t>(a % slots_.size());
  while (slots_[i].offset >= 0 && (slots_[i].a != a || slots_[i].b != b)) i = (i + 1) % slots_.size();
  return i;
}

bool KeyOffsets::Put(std::string_view key, int64_t offset) {
  uint64_t a = Hash(key, kSeedA);
  uint64_t b = Hash(key, kSeedB);
  size_t i = Find(a, b);
  if (slots_[i].offset < 0) {
    if (used_ >= limit_) return false;
    ++used_;
    slots_[i].a = a;
    slots_[i].b = b;
  }
  slots_[i].offset = offset;
  return true;
}

int64_t KeyOffsets::Get(std::string_view key) const {
  return slots_[Find(Hash(key, kSeedA), Hash(key, kSeedB))].offset;
}

Status ForEachSegmentRecord(int fd, const std::string& path, std::span<const format::IndexEntry> index, int64_t size,
                            const std::function<void(const SegmentRecord&)>& f) {
  std::string buffer;
  std::string plain_buffer;  // a compressed batch's records
  for (size_t i = 0; i < index.size(); ++i) {
    int64_t position = index[i].position;
    int64_t end = i + 1 < index.size() ? index[i + 1].position : size;
    size_t length = static_cast<size_t>(end - position);
    if (buffer.size() < length) buffer.resize(length);
    size_t got = 0;
    MARE_RETURN_IF_ERROR(file::ReadAt(fd, position, buffer.data(), length, &got, path));
    format::BatchHeader stored;
    format::BatchHeader h;
    const char* batch = nullptr;
    std::string why;
    if (got < length) why = "file shorter than its index";
    if (why.empty() && (length < format::kBatchHeaderSize || !format::ParseBatchHeader(buffer.data(), &stored, &why) ||
                        stored.length != length ||
                        !format::PlainBatch(buffer.data(), stored, /*checked=*/false, &plain_buffer, &batch, &h, &why))) {
      if (why.empty()) why = "batch does not match its index entry";
    }
    if (!why.empty()) return Status::Corruption(fmt::format("{} at byte {}: {}", path, position, why));
    int64_t last = h.base_offset + h.record_count - 1;  // a batch's last record is at its span's end
    format::ForEachRecordAt(batch, h, [&](int64_t offset, int64_t ts, std::string_view key, std::string_view value,
                                          const format::RecordNumbers& numbers) {
      f(SegmentRecord{offset, ts, h.append_time_us, key, value, &numbers, offset == last});
    });
  }
  return Status::OK();
}

std::string CleanedFileName(const std::string& segment_path) { return segment_path + std::string(kCleanedSuffix); }

Status CompactSegment(int fd, const std::string& path, std::span<const format::IndexEntry> index, int64_t size,
                      const KeyOffsets& newest, int64_t map_end, const std::string& tmp_path, bool sync,
                      Compression codec, CompactedSegment* result) {
  *result = {};
  result->bytes_in = size;
  int out = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) return Status::FromErrno("create " + tmp_path, errno);
  int64_t written = 0;
  std::string pending;  // encoded batches not yet written
  // The records kept, gathered across the input's batches (and over the offsets of records
  // removed) into batches of about kCompactedBatchBytes: one batch per run of consecutive kept
  // records held ~5 of the rollups' a batch, too few to compress well. Their bytes (keys,
  // values, number names) are copied out of the input batches, whose views die with them.
  struct Kept {
    int64_t offset;
    int64_t timestamp_us;
    size_t at;  // key, then value, in `bytes`
    uint32_t key_len;
    uint32_t value_len;
    bool has_numbers;
    size_t first_number;  // in kept_numbers
    size_t numbers;
  };
  struct KeptNumber {
    size_t name_at;  // in `bytes`
    size_t name_len;
    double value;
  };
  std::vector<Kept> kept;
  std::vector<KeptNumber> kept_numbers;
  std::string bytes;
  std::vector<NumberField> decoded;
  std::vector<Record> run;
  std::vector<NumberField> run_numbers;
  std::vector<int64_t> offsets;
  int64_t run_append_us = 0;  // the newest of its records' batches' (append times never decrease)
  Status failed;

  auto flush_pending = [&](bool all) {
    if (!failed.ok() || pending.empty() || (!all && pending.size() < (1u << 20))) return;
    failed = file::WriteAt(out, written, pending.data(), pending.size(), tmp_path);
    written += static_cast<int64_t>(pending.size());
    pending.clear();
  };
  auto end_run = [&] {
    if (kept.empty() || !failed.ok()) {
      kept.clear();
      kept_numbers.clear();
      bytes.clear();
      return;
    }
    // Views into `bytes`, made now that it no longer grows.
    run.clear();
    run_numbers.clear();
    offsets.clear();
    for (const KeptNumber& n : kept_numbers) run_numbers.push_back({std::string_view(bytes).substr(n.name_at, n.name_len), n.value});
    for (const Kept& k : kept) {
      std::string_view b(bytes);
      run.push_back({.timestamp_us = k.timestamp_us,
                     .key = b.substr(k.at, k.key_len),
                     .value = b.substr(k.at + k.key_len, k.value_len),
                     .has_numbers = k.has_numbers,
                     .numbers = std::span<const NumberField>(run_numbers).subspan(k.first_number, k.numbers)});
      offsets.push_back(k.offset);
    }
    // Consecutive offsets need no table (a batch as compaction wrote them before bit 6).
    const bool consecutive = offsets.back() - offsets.front() + 1 == static_cast<int64_t>(offsets.size());
    std::span<const int64_t> sparse = consecutive ? std::span<const int64_t>() : std::span<const int64_t>(offsets);
    format::BatchNumbers numbers;
    size_t n = 0;
    failed = format::MeasureBatch(run, &n, &numbers, sparse);
    if (failed.ok()) {
      size_t at = pending.size();
      pending.resize(at + n);
      char* batch = pending.data() + at;
      format::EncodeBatch(run, numbers, batch, sparse);
      pending.resize(at + format::CompressBatch(batch, codec));
      format::PutU16(batch + format::kAttributesAt,
                     static_cast<uint16_t>(format::GetU16(batch + format::kAttributesAt) | format::kAttrCompacted));
      format::SealBatch(batch, offsets.front(), run_append_us);
    }
    kept.clear();
    kept_numbers.clear();
    bytes.clear();
    flush_pending(false);
  };

  Status s = ForEachSegmentRecord(fd, path, index, size, [&](const SegmentRecord& r) {
    ++result->records_in;
    int64_t newer = r.offset < map_end ? newest.Get(r.key) : -1;
    if (newer > r.offset) return;  // superseded
    // A batch's offsets span at most what its u32 deltas can say.
    if (!kept.empty() && r.offset - kept.front().offset >= int64_t{std::numeric_limits<uint32_t>::max()}) end_run();
    Kept k{r.offset, r.timestamp_us, bytes.size(), static_cast<uint32_t>(r.key.size()),
           static_cast<uint32_t>(r.value.size()), r.numbers->carried(), kept_numbers.size(), 0};
    bytes.append(r.key);
    bytes.append(r.value);
    if (k.has_numbers) {
      decoded.clear();
      r.numbers->Decode(&decoded);
      for (const NumberField& f : decoded) {
        kept_numbers.push_back({bytes.size(), f.name.size(), f.value});
        bytes.append(f.name);
      }
      k.numbers = decoded.size();
    }
    kept.push_back(k);
    run_append_us = r.append_time_us;
    ++result->records_kept;
    if (bytes.size() + kept.size() * format::kNumbersRecordHeaderSize >= kCompactedBatchBytes) end_run();
  });
  end_run();
  flush_pending(true);
  if (s.ok()) s = failed;
  if (s.ok() && sync && written > 0 && ::fdatasync(out) != 0) s = Status::FromErrno("fdatasync " + tmp_path, errno);
  ::close(out);
  if (!s.ok() || written == 0) ::unlink(tmp_path.c_str());
  result->bytes_out = s.ok() ? written : 0;
  return s;
}

}  // namespace mare::log
