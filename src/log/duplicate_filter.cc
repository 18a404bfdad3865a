#include "log/duplicate_filter.h"

#include <charconv>
#include <cstring>
#include <string_view>

#include "common/mix64.h"
#include "log/partition_reader.h"

namespace mare::log {
namespace {

// A key in decimal (a sensor id) is itself, exactly; any other goes by a hash with the top bit
// set, so that the two never meet.
uint64_t KeyId(std::string_view key) {
  uint64_t id = 0;
  auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
  if (!key.empty() && ec == std::errc() && end == key.data() + key.size() && id < (1ULL << 63)) return id;
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ key.size();
  size_t i = 0;
  for (; i + 8 <= key.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, key.data() + i, 8);
    h = Mix64(h ^ w);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, key.data() + i, key.size() - i);
  return Mix64(h ^ tail) | (1ULL << 63);
}

uint64_t Hash(uint64_t key, int64_t ts) { return Mix64(key * 0x9e3779b97f4a7c15ULL ^ static_cast<uint64_t>(ts)); }

}  // namespace

// One partition: the records appended within the horizon before the newest, oldest first, and a
// table (linear probing) of the newest copy of each (key, timestamp) among them.
//
// A slot packs 31 bits of the pair's hash (its home slot and a tag) with the low 32 bits of its
// entry's sequence number, so that probing, deleting and growing read the FIFO only on a tag
// match: one cache miss per lookup in a table too big for the caches, not one per slot probed.
class DuplicateFilter::Partition {
 public:
  explicit Partition(int64_t horizon_us) : horizon_us_(horizon_us), slots_(kMinSlots, 0) {}

  bool Drop(uint64_t key, int64_t ts, int64_t append_time) {
    const int64_t oldest = append_time - horizon_us_;
    while (!fifo_.empty() && fifo_.front().append_time < oldest) EvictFront();
    const uint32_t tag = Tag(key, ts);
    size_t at = Find(key, ts, tag);
    // An entry appended too long ago can linger only if the append times went back.
    bool duplicate = at != kNone && EntryOf(slots_[at]).append_time >= oldest;
    fifo_.push_back({key, ts, append_time});
    const uint64_t slot = Slot(tag, base_ + fifo_.size() - 1);
    if (at != kNone) {
      slots_[at] = slot;  // the newest copy stands for the pair from now on
    } else {
      if ((used_ + 1) * 2 > slots_.size()) Resize(slots_.size() * 2);
      slots_[Empty(tag)] = slot;
      ++used_;
    }
    return duplicate;
  }

  size_t records() const { return fifo_.size(); }
  size_t MemoryBytes() const { return sizeof(*this) + fifo_.size() * sizeof(Entry) + slots_.capacity() * sizeof(uint64_t); }

 private:
  struct Entry {
    uint64_t key;
    int64_t ts;
    int64_t append_time;
  };
  static constexpr size_t kNone = SIZE_MAX;
  static constexpr size_t kMinSlots = 1024;

  // Slots: 0 empty; else bit 63 set, the tag in bits 32..62, the entry's sequence number's low
  // 32 bits below (the FIFO never holds 2^32 entries, so they name one).
  static uint32_t Tag(uint64_t key, int64_t ts) { return static_cast<uint32_t>(Hash(key, ts)) & 0x7fffffffU; }
  static uint64_t Slot(uint32_t tag, uint64_t seq) { return 1ULL << 63 | uint64_t{tag} << 32 | static_cast<uint32_t>(seq); }
  static uint32_t TagOf(uint64_t slot) { return static_cast<uint32_t>(slot >> 32) & 0x7fffffffU; }
  const Entry& EntryOf(uint64_t slot) const {
    return fifo_[static_cast<uint32_t>(static_cast<uint32_t>(slot) - static_cast<uint32_t>(base_))];
  }

  size_t Find(uint64_t key, int64_t ts, uint32_t tag) const {
    const size_t mask = slots_.size() - 1;
    for (size_t i = tag & mask;; i = (i + 1) & mask) {
      const uint64_t s = slots_[i];
      if (s == 0) return kNone;
      if (TagOf(s) != tag) continue;
      const Entry& e = EntryOf(s);
      if (e.key == key && e.ts == ts) return i;
    }
  }

  size_t Empty(uint32_t tag) const {
    const size_t mask = slots_.size() - 1;
    size_t i = tag & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    return i;
  }

  void EvictFront() {
    const Entry& e = fifo_.front();
    size_t at = Find(e.key, e.ts, Tag(e.key, e.ts));
    // Unless a newer copy stands for the pair.
    if (at != kNone && static_cast<uint32_t>(slots_[at]) == static_cast<uint32_t>(base_)) Erase(at);
    fifo_.pop_front();
    ++base_;
    if (slots_.size() > kMinSlots && used_ * 8 < slots_.size()) Resize(slots_.size() / 2);
  }

  // Backward-shift deletion: the slots after `i` up to the next empty one move back where their
  // probe sequence allows, so no tombstones are needed.
  void Erase(size_t i) {
    const size_t mask = slots_.size() - 1;
    for (size_t j = (i + 1) & mask; slots_[j] != 0; j = (j + 1) & mask) {
      size_t home = TagOf(slots_[j]) & mask;
      bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (!stays) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = 0;
    --used_;
  }

  void Resize(size_t size) {
    std::vector<uint64_t> old(size, 0);
    old.swap(slots_);
    for (uint64_t s : old) {
      if (s != 0) slots_[Empty(TagOf(s))] = s;
    }
  }

  const int64_t horizon_us_;
  std::deque<Entry> fifo_;
  uint64_t base_ = 0;            // the sequence number of fifo_.front()
  std::vector<uint64_t> slots_;  // a power of two (below 2^31), at most half used
  size_t used_ = 0;
};

DuplicateFilter::DuplicateFilter(DuplicateFilterOptions options) : options_(options) {}
DuplicateFilter::~DuplicateFilter() = default;
DuplicateFilter::DuplicateFilter(DuplicateFilter&&) noexcept = default;
DuplicateFilter& DuplicateFilter::operator=(DuplicateFilter&&) noexcept = default;

bool DuplicateFilter::Drop(const ConsumedRecord& record) {
  if (!options_.enabled || record.partition < 0) return false;
  size_t p = static_cast<size_t>(record.partition);
  if (p >= partitions_.size()) partitions_.resize(p + 1);
  if (!partitions_[p]) partitions_[p] = std::make_unique<Partition>(options_.horizon_us);
  return partitions_[p]->Drop(KeyId(record.key), record.timestamp_us, record.append_time_us);
}

Status DuplicateFilter::Rebuild(Log* log, const std::string& topic, const std::vector<std::pair<int32_t, int64_t>>& next) {
  for (const auto& [p, n] : next) Reset(p);
  if (!options_.enabled) return Status::OK();
  std::vector<std::pair<int32_t, int64_t>> ends;
  for (const auto& [p, n] : next) {
    if (n > 0) ends.emplace_back(p, n);
  }
  if (ends.empty()) return Status::OK();
  auto reader = PartitionReader::Open(log, kDuplicateFilterGroup, topic);
  if (!reader.ok()) return reader.status();
  // The partitions together: one request for where each one's horizon begins (Kafka), not a
  // bisection of seeks and fetches per partition.
  auto read = reader->ReadAppendedWithin(ends, options_.horizon_us, [&](const ConsumedRecord& r) { Drop(r); });
  if (read.ok()) return Status::OK();
  for (const auto& [p, n] : ends) Reset(p);
  // Said where, keeping the code: an Unavailable or IOError is worth the caller's retry.
  std::string what = "rebuilding the duplicate filter of " + topic + " partitions ";
  for (size_t i = 0; i < ends.size(); ++i) what += (i ? "," : "") + std::to_string(ends[i].first);
  what += ": ";
  const Status& s = read.status();
  if (s.code() == Status::Code::kUnavailable) return Status::Unavailable(what + s.message());
  if (s.code() == Status::Code::kIOError) return Status::IOError(what + s.message());
  return s;
}

void DuplicateFilter::Reset() { partitions_.clear(); }

void DuplicateFilter::Reset(int32_t partition) {
  if (partition >= 0 && static_cast<size_t>(partition) < partitions_.size()) partitions_[static_cast<size_t>(partition)].reset();
}

size_t DuplicateFilter::records() const {
  size_t n = 0;
  for (const auto& p : partitions_) n += p ? p->records() : 0;
  return n;
}

size_t DuplicateFilter::MemoryBytes() const {
  size_t n = partitions_.capacity() * sizeof(void*);
  for (const auto& p : partitions_) n += p ? p->MemoryBytes() : 0;
  return n;
}

}  // namespace mare::log
