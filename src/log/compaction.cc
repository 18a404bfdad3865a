#include "log/compaction.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/number_field.h"
#include "log/file.h"

namespace mare::log {

namespace {

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
    int64_t offset = h.base_offset;
    int64_t last = h.base_offset + h.record_count - 1;
    format::ForEachRecord(batch, h, [&](int64_t ts, std::string_view key, std::string_view value,
                                                const format::RecordNumbers& numbers) {
      f(SegmentRecord{offset, ts, h.append_time_us, key, value, &numbers, offset == last});
      ++offset;
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
  std::vector<Record> run;
  std::vector<std::vector<NumberField>> run_numbers;
  int64_t run_append_us = 0;
  int64_t run_next = -1;  // the offset the run's next record must have
  int64_t run_first = 0;
  Status failed;

  auto flush_pending = [&](bool all) {
    if (!failed.ok() || pending.empty() || (!all && pending.size() < (1u << 20))) return;
    failed = file::WriteAt(out, written, pending.data(), pending.size(), tmp_path);
    written += static_cast<int64_t>(pending.size());
    pending.clear();
  };
  auto end_run = [&] {
    if (run.empty() || !failed.ok()) {
      run.clear();
      return;
    }
    for (size_t i = 0; i < run.size(); ++i) {
      if (run[i].has_numbers) run[i].numbers = run_numbers[i];
    }
    format::BatchNumbers numbers;
    size_t n = 0;
    failed = format::MeasureBatch(run, &n, &numbers);
    if (failed.ok()) {
      size_t at = pending.size();
      pending.resize(at + n);
      char* batch = pending.data() + at;
      format::EncodeBatch(run, numbers, batch);
      pending.resize(at + format::CompressBatch(batch, codec));
      format::PutU16(batch + format::kAttributesAt,
                     static_cast<uint16_t>(format::GetU16(batch + format::kAttributesAt) | format::kAttrCompacted));
      format::SealBatch(batch, run_first, run_append_us);
    }
    run.clear();
    flush_pending(false);
  };

  Status s = ForEachSegmentRecord(fd, path, index, size, [&](const SegmentRecord& r) {
    ++result->records_in;
    int64_t newer = r.offset < map_end ? newest.Get(r.key) : -1;
    if (newer > r.offset) {
      end_run();  // superseded: the run of consecutive kept records ends here
      return;
    }
    if (!run.empty() && r.offset != run_next) end_run();
    if (run.empty()) {
      run_first = r.offset;
      run_append_us = r.append_time_us;
    }
    if (run_numbers.size() <= run.size()) run_numbers.resize(run.size() + 1);
    std::vector<NumberField>& numbers = run_numbers[run.size()];
    numbers.clear();
    if (r.numbers->carried()) r.numbers->Decode(&numbers);
    run.push_back({.timestamp_us = r.timestamp_us, .key = r.key, .value = r.value, .has_numbers = r.numbers->carried()});
    run_next = r.offset + 1;
    ++result->records_kept;
    // The views into the batch die with it, and a batch has one append time: a run ends with
    // its batch.
    if (r.last_in_batch) end_run();
  });
  flush_pending(true);
  if (s.ok()) s = failed;
  if (s.ok() && sync && written > 0 && ::fdatasync(out) != 0) s = Status::FromErrno("fdatasync " + tmp_path, errno);
  ::close(out);
  if (!s.ok() || written == 0) ::unlink(tmp_path.c_str());
  result->bytes_out = s.ok() ? written : 0;
  return s;
}

}  // namespace mare::log
