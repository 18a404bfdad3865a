// The store's block-index cache: its bound in bytes, its evictions, and a store whose segments'
// indexes come and go giving the same answers as one that keeps them all.
#include "store/index_cache.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common/scratch_dir.h"
#include "store/segment.h"
#include "store/store.h"
#include "store/store_metrics.h"

namespace mare::store {
namespace {

constexpr int64_t kCacheT0 = 1'704'067'200'000'000;  // 2024-01-01T00:00:00Z
constexpr int64_t kOneMinute = 60'000'000;
constexpr int kCacheDays = 8;
constexpr int kCacheSensors = 20;

std::shared_ptr<SegmentIndex> IndexOf(size_t bytes) {
  auto index = std::make_shared<SegmentIndex>();
  index->memory_bytes = bytes;
  return index;
}

TEST(IndexCacheTest, KeepsWithinItsBoundLeastRecentlyUsedOutFirst) {
  metrics::Registry registry;
  IndexCache cache(1000, &registry);
  uint64_t a = cache.NewKey(), b = cache.NewKey(), c = cache.NewKey();
  cache.Insert(a, IndexOf(400));
  cache.Insert(b, IndexOf(400));
  EXPECT_EQ(cache.bytes(), 800u);
  ASSERT_NE(cache.Find(a), nullptr);  // a is now the most recently used: b goes first
  cache.Insert(c, IndexOf(400));
  EXPECT_EQ(cache.bytes(), 800u);
  EXPECT_NE(cache.Find(a), nullptr);
  EXPECT_EQ(cache.Find(b), nullptr);
  EXPECT_NE(cache.Find(c), nullptr);
  EXPECT_EQ(cache.evictions(), 1u);
  EXPECT_EQ(cache.hits(), 3u);
  EXPECT_EQ(cache.misses(), 1u);
  EXPECT_EQ(registry.GetGauge(store_metrics::kIndexCacheBytes).value(), 800);
  EXPECT_EQ(registry.GetCounter(store_metrics::kIndexCacheHits).value(), 3u);
  EXPECT_EQ(registry.GetCounter(store_metrics::kIndexCacheMisses).value(), 1u);

  // An index larger than the whole cache is not kept; the one who loaded it still holds it.
  uint64_t big = cache.NewKey();
  auto huge = IndexOf(5000);
  cache.Insert(big, huge);
  EXPECT_EQ(cache.Find(big), nullptr);
  EXPECT_LE(cache.bytes(), 1000u);
  EXPECT_EQ(huge.use_count(), 1);

  cache.Erase(a);
  cache.Erase(c);
  EXPECT_EQ(cache.bytes(), 0u);
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(registry.GetGauge(store_metrics::kIndexCacheBytes).value(), 0);
}

class StoreIndexCacheTest : public ::testing::Test {
 protected:
  ScratchDir scratch_{"mare-index-cache-test"};
  metrics::Registry registry_;

  std::unique_ptr<Store> Open(const std::string& dir, size_t cache_bytes, metrics::Registry* registry) {
    StoreOptions options;
    options.dir = dir;
    options.compaction_thread = false;
    options.index_cache_bytes = cache_bytes;
    auto store = Store::Open(options, registry);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // A day per flush (one segment a day): every sensor every 10 minutes, so 24 blocks a sensor.
  static void WriteDays(Store* store, int days, double bias = 0) {
    for (int d = 0; d < days; ++d) {
      store->Write([&](Store::Batch& b) {
        for (int m = 0; m < 24 * 6; ++m) {
          for (int s = 1; s <= kCacheSensors; ++s) {
            Reading r;
            r.timestamp_us = kCacheT0 + d * kDayMicros + m * 10 * kOneMinute;
            r.sensor_id = static_cast<uint32_t>(s);
            r.numbers.push_back({"temperature", bias + d + m / 1000.0 + s});
            r.numbers.push_back({"humidity", 50.0 + m % 7});
            b.Add(r);
          }
        }
      });
      ASSERT_TRUE(store->Flush({d + 1}).ok());
    }
  }

  // rows, sum of temperatures, and the blocks' own checksums, over what a snapshot holds.
  struct Totals {
    int64_t rows = 0;
    double sum = 0;
    uint64_t crcs = 0;
    bool operator==(const Totals&) const = default;
  };
  static Totals Count(const Store& store, int64_t from, int64_t to) {
    auto snap = store.GetSnapshot({.min_ts = from, .max_ts = to});
    EXPECT_TRUE(snap->status.ok()) << snap->status.ToString();
    uint32_t temperature = *store.schema().Find("temperature", FieldType::kNumber);
    Totals t;
    std::string bytes;
    ColumnValues v;
    for (const auto& seg : snap->segments) {
      EXPECT_TRUE(seg->pinned());
      for (size_t b = 0; b < seg->blocks().size(); ++b) {
        const BlockMeta& m = seg->blocks()[b];
        EXPECT_TRUE(seg->ReadBlock(b, &bytes).ok());
        EXPECT_TRUE(DecodeBlockColumn(m, bytes, temperature, FieldType::kNumber, &v).ok());
        for (size_t i = 0; i < m.rows; ++i) {
          if ((v.valid.empty() || v.valid[i])) t.sum += v.numbers[i];
        }
        t.rows += m.rows;
        t.crcs += m.crc;
      }
    }
    for (const auto& rows : snap->memtable) t.rows += static_cast<int64_t>(rows.size());
    return t;
  }
};

TEST_F(StoreIndexCacheTest, ABoundedCacheGivesTheAnswersOfAnUnboundedOne) {
  const std::string small_dir = scratch_.path() + "/small", big_dir = scratch_.path() + "/big";
  size_t day_index = 0;
  {
    metrics::Registry registry;
    auto big = Open(big_dir, size_t{1} << 30, &registry);
    WriteDays(big.get(), kCacheDays);
    EXPECT_EQ(big->index_cache().bytes(), 0u);  // written, not read since: not cached
    Count(*big, kCacheT0, kCacheT0 + kCacheDays * kDayMicros);
    day_index = big->index_cache().bytes() / kCacheDays;
    EXPECT_GT(day_index, size_t{24 * kCacheSensors * 100});  // a few hundred bytes a block (two fields)
    EXPECT_EQ(big->index_cache().entries(), static_cast<size_t>(kCacheDays));
  }
  const size_t bound = day_index * 5 / 2;  // two days' indexes and a half
  {
    metrics::Registry registry;
    auto small = Open(small_dir, bound, &registry);
    WriteDays(small.get(), kCacheDays);
    Count(*small, kCacheT0, kCacheT0 + kCacheDays * kDayMicros);
    EXPECT_LE(small->index_cache().bytes(), bound);
    EXPECT_EQ(small->index_cache().entries(), 2u);
    EXPECT_GE(small->index_cache().evictions(), static_cast<uint64_t>(kCacheDays - 2));
  }
  metrics::Registry small_registry, big_registry;
  auto small = Open(small_dir, bound, &small_registry);
  auto big = Open(big_dir, size_t{1} << 30, &big_registry);
  // Opening reads every index once, one at a time, and caches none.
  EXPECT_EQ(small->index_cache().bytes(), 0u);
  EXPECT_EQ(big->index_cache().bytes(), 0u);
  EXPECT_LE(small_registry.GetGauge(store_metrics::kIndexCacheBytes).value(), static_cast<double>(bound));

  // The whole store, each day, and a range across a day boundary: the same blocks, the same sums.
  EXPECT_EQ(Count(*small, kCacheT0, kCacheT0 + kCacheDays * kDayMicros), Count(*big, kCacheT0, kCacheT0 + kCacheDays * kDayMicros));
  EXPECT_EQ(Count(*small, kCacheT0, kCacheT0 + kCacheDays * kDayMicros).rows, int64_t{kCacheDays} * kCacheSensors * 24 * 6);
  for (int d = 0; d < kCacheDays; ++d) {
    int64_t from = kCacheT0 + d * kDayMicros;
    EXPECT_EQ(Count(*small, from, from + kDayMicros - 1), Count(*big, from, from + kDayMicros - 1)) << "day " << d;
  }
  EXPECT_EQ(Count(*small, kCacheT0 + 2 * kDayMicros + 20 * kHourMicros, kCacheT0 + 3 * kDayMicros + 3 * kHourMicros),
            Count(*big, kCacheT0 + 2 * kDayMicros + 20 * kHourMicros, kCacheT0 + 3 * kDayMicros + 3 * kHourMicros));
  EXPECT_LE(small->index_cache().bytes(), bound);

  // A query of one day loads that day's segment only.
  uint64_t loads = small->index_cache().hits() + small->index_cache().misses();
  uint64_t misses = small->index_cache().misses();
  Count(*small, kCacheT0 + 5 * kDayMicros, kCacheT0 + 5 * kDayMicros + kHourMicros);
  EXPECT_EQ(small->index_cache().hits() + small->index_cache().misses(), loads + 1);
  Count(*small, kCacheT0 + 5 * kDayMicros, kCacheT0 + 5 * kDayMicros + kHourMicros);
  EXPECT_EQ(small->index_cache().misses(), misses + 1);  // the second time, a hit
  EXPECT_EQ(small_registry.GetCounter(store_metrics::kIndexCacheMisses).value(), small->index_cache().misses());

  // A reading replacing a stored one of an evicted day (the block comes back from disk), and a
  // merge of every segment, whose indexes do not all fit: still the same answers.
  for (Store* s : {small.get(), big.get()}) {
    s->Write([&](Store::Batch& b) {
      Reading r;
      r.timestamp_us = kCacheT0 + 30 * kOneMinute;  // day 0, sensor 3
      r.sensor_id = 3;
      r.numbers.push_back({"temperature", 1000.0});
      b.Add(r);
    });
    ASSERT_TRUE(s->Flush({kCacheDays + 1}).ok());
  }
  EXPECT_EQ(Count(*small, kCacheT0, kCacheT0 + kCacheDays * kDayMicros), Count(*big, kCacheT0, kCacheT0 + kCacheDays * kDayMicros));
  ASSERT_TRUE(small->Compact(true).ok());
  ASSERT_TRUE(big->Compact(true).ok());
  EXPECT_EQ(Count(*small, kCacheT0, kCacheT0 + kCacheDays * kDayMicros), Count(*big, kCacheT0, kCacheT0 + kCacheDays * kDayMicros));
  EXPECT_EQ(Count(*small, kCacheT0, kCacheT0 + kCacheDays * kDayMicros).rows, int64_t{kCacheDays} * kCacheSensors * 24 * 6);
  EXPECT_EQ(small->GetStats().rows, big->GetStats().rows);
  EXPECT_EQ(small->GetStats().blocks, big->GetStats().blocks);
  EXPECT_LE(small->index_cache().bytes(), bound);
}

// What the cache charges for an index is what the index takes on the heap: the allocator's bytes
// in use drop by that much (within 1 %) when the cache lets the index go (charged from the
// vectors' sizes alone, it was 8.7 % less here: the allocator's headers and rounding). Numbers and a text column (whose first and last values are kept, past the
// small-string buffer here), 200 sensors' blocks of an hour each over a day.
// glibc's heap only: the sanitizer build's allocator is AddressSanitizer's, which neither
// mallinfo2 sees nor the charge models, so the test is not compiled there.
#if !defined(__SANITIZE_ADDRESS__)
TEST_F(StoreIndexCacheTest, ChargesAnIndexWhatItTakesOnTheHeap) {
  const std::string dir = scratch_.path() + "/charged";
  {
    metrics::Registry registry;
    auto store = Open(dir, size_t{1} << 30, &registry);
    store->Write([&](Store::Batch& b) {
      for (int m = 0; m < 24 * 6; ++m) {
        for (int s = 1; s <= 200; ++s) {
          Reading r;
          r.timestamp_us = kCacheT0 + m * 10 * kOneMinute;
          r.sensor_id = static_cast<uint32_t>(s);
          r.numbers.push_back({"temperature", 12.0 + m / 100.0});
          r.numbers.push_back({"humidity", 50.0 + m % 7});
          r.numbers.push_back({"pressure", 1013.0 + s % 5});
          r.texts.push_back({"status", m % 2 ? "operating within limits" : "maintenance due soon"});
          b.Add(r);
        }
      }
    });
    ASSERT_TRUE(store->Flush({1}).ok());
  }
  std::string path;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") path = e.path().string();
  }
  ASSERT_FALSE(path.empty());
  auto cache = std::make_shared<IndexCache>(size_t{1} << 30, nullptr);
  auto filler = IndexOf(size_t{1} << 30);  // takes the whole bound: the least recently used goes
  Schema schema;
  auto opened = Segment::Open(path, &schema, cache);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ((*opened)->block_count(), 200u * 24);
  std::shared_ptr<const Segment> unpinned = (*opened)->Unpinned();
  opened->reset();
  EXPECT_EQ(cache->bytes(), 0u);  // opened, not read again: not cached
  ASSERT_TRUE(unpinned->Pin().ok());  // read again, and dropped at once: only the cache holds it
  const size_t charged = cache->bytes();
  // Bytes in use, those of chunks glibc mapped on their own (above its mmap threshold) too.
  auto in_use = [] {
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
  };
  const size_t before = in_use();
  cache->Insert(cache->NewKey(), filler);
  ASSERT_EQ(cache->evictions(), 1u);
  const size_t after = in_use();
  ASSERT_GT(before, after);
  const double freed = static_cast<double>(before - after);
  EXPECT_NEAR(freed, static_cast<double>(charged), 0.01 * static_cast<double>(charged)) << "charged " << charged;
  EXPECT_GT(charged, 200u * 24 * 300);  // a few hundred bytes a block (four columns)
}
#endif  // !__SANITIZE_ADDRESS__

// A snapshot for LATEST ON without WHERE loads only the segments from the oldest of the
// sensors' newest readings on, and still holds every sensor's newest reading.
TEST_F(StoreIndexCacheTest, TheLatestReadingsLoadOnlyTheRecentSegments) {
  auto store = Open(scratch_.path() + "/latest", 1, &registry_);
  WriteDays(store.get(), kCacheDays);
  auto newest = [&](const Snapshot& snap) {
    std::map<uint32_t, int64_t> out;
    for (const auto& seg : snap.segments) {
      for (const BlockMeta& m : seg->blocks()) out[m.sensor_id] = std::max(out[m.sensor_id], m.max_ts);
    }
    for (const auto& rows : snap.memtable) {
      if (rows.size() > 0) out[rows.sensor_id()] = std::max(out[rows.sensor_id()], rows.ts().back());
    }
    return out;
  };
  auto loads = [&] { return store->index_cache().hits() + store->index_cache().misses(); };
  const auto all = newest(*store->GetSnapshot({}));
  ASSERT_EQ(all.size(), static_cast<size_t>(kCacheSensors));
  uint64_t before = loads();
  auto latest = store->GetSnapshot({.latest_only = true});
  EXPECT_EQ(loads() - before, 1u);  // the last day's segment
  EXPECT_EQ(newest(*latest), all);

  // A sensor last heard of on day 1 (on disk), one only in the memtable at day 0: the segments
  // from day 1 on, and the memtable whatever its hours.
  store->Write([&](Store::Batch& b) {
    Reading r;
    r.timestamp_us = kCacheT0 + kDayMicros + 5 * kOneMinute;
    r.sensor_id = 500;
    r.numbers.push_back({"temperature", 1.0});
    b.Add(r);
  });
  ASSERT_TRUE(store->Flush({100}).ok());
  store->Write([&](Store::Batch& b) {
    Reading r;
    r.timestamp_us = kCacheT0 + 7 * kOneMinute;
    r.sensor_id = 501;
    r.numbers.push_back({"temperature", 2.0});
    b.Add(r);
  });
  const auto all_now = newest(*store->GetSnapshot({}));
  ASSERT_EQ(all_now.size(), static_cast<size_t>(kCacheSensors + 2));
  before = loads();
  latest = store->GetSnapshot({.latest_only = true});
  EXPECT_EQ(newest(*latest), all_now);
  EXPECT_EQ(loads() - before, static_cast<uint64_t>(kCacheDays - 1 + 1));  // days 1-7 and sensor 500's flush
  // Asked for the sensors heard of every day: the last day's segment again.
  before = loads();
  latest = store->GetSnapshot({.sensors = {1, 2, 3}, .latest_only = true});
  EXPECT_EQ(loads() - before, 1u);
  auto three = newest(*latest);
  for (uint32_t s : {1u, 2u, 3u}) EXPECT_EQ(three[s], all_now.at(s)) << s;
}

// The cache holds what was read, not what was written: the indexes of a flush's segments and of
// a merge's output stay out of it until a query reads them (cached, each a day at 10,000
// sensors grew the cache by ~170 MiB in bench/longrun.py without a query), and a merge reads its
// inputs past it. Once queries read the newest hours, what is written next of them is cached at
// once (a query under ingest would otherwise miss after each flush and merge). A replaced
// reading's block, read for ingest, is cached like a query's.
TEST_F(StoreIndexCacheTest, OnlyWhatIsReadAgainIsCachedNotWhatIsWrittenOrMerged) {
  StoreOptions options;
  options.dir = scratch_.path() + "/written";
  options.compaction_thread = false;
  options.compaction_quiet_us = 0;  // a day is merged at once
  auto opened = Store::Open(options, &registry_);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store& store = **opened;
  const IndexCache& cache = store.index_cache();
  auto flush_hour = [&](int h) {
    store.Write([&](Store::Batch& b) {
      for (int m = 0; m < 6; ++m) {
        for (int s = 1; s <= kCacheSensors; ++s) {
          Reading r;
          r.timestamp_us = kCacheT0 + h * kHourMicros + m * 10 * kOneMinute;
          r.sensor_id = static_cast<uint32_t>(s);
          r.numbers.push_back({"temperature", h + s / 100.0});
          b.Add(r);
        }
      }
    });
    ASSERT_TRUE(store.Flush({h + 1}).ok());
  };
  for (int h = 0; h < 3; ++h) flush_hour(h);  // three flushes of day 0, an hour each
  EXPECT_EQ(store.GetStats().segments, 3);
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
  EXPECT_EQ(cache.hits() + cache.misses(), 0u);  // opening a written segment looks nothing up

  ASSERT_TRUE(store.Compact(true).ok());
  EXPECT_EQ(store.GetStats().segments, 1);
  EXPECT_EQ(cache.entries(), 0u);  // neither the inputs (read once) nor the output
  // The inputs' indexes were read entry by entry from their files (Segment::Cursor), never
  // whole: the merge does not look them up.
  EXPECT_EQ(cache.hits() + cache.misses(), 0u);

  // A query reads the merged segment's index once; the next finds it cached.
  EXPECT_EQ(Count(store, kCacheT0, kCacheT0 + kDayMicros - 1).rows, 3 * 6 * kCacheSensors);
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_EQ(cache.misses(), 1u);
  EXPECT_EQ(Count(store, kCacheT0, kCacheT0 + kDayMicros - 1).rows, 3 * 6 * kCacheSensors);
  EXPECT_EQ(cache.misses(), 1u);
  EXPECT_EQ(cache.hits(), 1u);

  // Now that its hours are read, the next hour's flush is cached as written, and so is the
  // merge of both: the query after them misses nothing.
  flush_hour(3);
  EXPECT_EQ(cache.entries(), 2u);
  ASSERT_TRUE(store.Compact(true).ok());
  EXPECT_EQ(store.GetStats().segments, 1);
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_EQ(Count(store, kCacheT0, kCacheT0 + kDayMicros - 1).rows, 4 * 6 * kCacheSensors);
  EXPECT_EQ(cache.misses(), 1u);

  // A reading again of sensor 1 at a stored time, after a restart (nothing cached): ingest reads
  // the block it replaces through the cache, and a later query finds that index there.
  opened->reset();
  auto again = Store::Open(options, &registry_);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)->index_cache().entries(), 0u);
  (*again)->Write([&](Store::Batch& b) {
    Reading r;
    r.timestamp_us = kCacheT0 + 10 * kOneMinute;
    r.sensor_id = 1;
    r.numbers.push_back({"temperature", 99.0});
    b.Add(r);
  });
  EXPECT_EQ((*again)->index_cache().entries(), 1u);
  EXPECT_EQ((*again)->index_cache().misses(), 1u);
  EXPECT_EQ(Count(**again, kCacheT0, kCacheT0 + kDayMicros - 1).rows, 4 * 6 * kCacheSensors);
  EXPECT_EQ((*again)->index_cache().misses(), 1u);
}

// A segment whose index is damaged after the store opened it: found when its index is read
// again, as a clear error for what needs it, while the rest of the store goes on.
TEST_F(StoreIndexCacheTest, AnIndexDamagedSinceOpeningIsAnErrorWhenLoadedAgain) {
  const std::string dir = scratch_.path() + "/store";
  {
    auto store = Open(dir, size_t{1} << 30, &registry_);
    WriteDays(store.get(), 3);
  }
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 3u);
  // A cache of 1 byte holds no index: each use reads it again.
  auto store = Open(dir, 1, &registry_);
  EXPECT_EQ(store->index_cache().bytes(), 0u);
  EXPECT_EQ(Count(*store, kCacheT0, kCacheT0 + 3 * kDayMicros).rows, int64_t{3} * kCacheSensors * 24 * 6);

  // Day 0's index: one byte changed in place (the store holds the file open), size unchanged.
  {
    std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-32 - 40, std::ios::end);  // inside the last block entry of the index
    char c = 0;
    f.get(c);
    f.seekp(-32 - 40, std::ios::end);
    f.put(static_cast<char>(c ^ 0x5a));
  }
  auto snap = store->GetSnapshot({.min_ts = kCacheT0, .max_ts = kCacheT0 + kDayMicros - 1});
  ASSERT_FALSE(snap->status.ok());
  EXPECT_TRUE(snap->status.IsCorruption()) << snap->status.ToString();
  EXPECT_NE(snap->status.message().find(files[0]), std::string::npos) << snap->status.ToString();
  EXPECT_NE(snap->status.message().find("checksum"), std::string::npos) << snap->status.ToString();
  EXPECT_TRUE(snap->segments.empty());
  // The other days still answer; a merge that needs day 0 fails without touching anything.
  EXPECT_EQ(Count(*store, kCacheT0 + kDayMicros, kCacheT0 + 3 * kDayMicros).rows, int64_t{2} * kCacheSensors * 24 * 6);
  EXPECT_FALSE(store->Compact(true).ok());
  EXPECT_EQ(Count(*store, kCacheT0 + kDayMicros, kCacheT0 + 3 * kDayMicros).rows, int64_t{2} * kCacheSensors * 24 * 6);

  // Truncated since: its size no longer matches.
  std::filesystem::resize_file(files[1], std::filesystem::file_size(files[1]) - 10);
  snap = store->GetSnapshot({.min_ts = kCacheT0 + kDayMicros, .max_ts = kCacheT0 + 2 * kDayMicros - 1});
  ASSERT_FALSE(snap->status.ok());
  EXPECT_NE(snap->status.message().find("size changed"), std::string::npos) << snap->status.ToString();
  // Writing goes on.
  store->Write([&](Store::Batch& b) {
    Reading r;
    r.timestamp_us = kCacheT0 + 10 * kDayMicros;
    r.sensor_id = 1;
    r.numbers.push_back({"temperature", 1.0});
    b.Add(r);
  });
  EXPECT_TRUE(store->Flush({9}).ok());
  EXPECT_EQ(Count(*store, kCacheT0 + 10 * kDayMicros, kCacheT0 + 11 * kDayMicros).rows, 1);
}

}  // namespace
}  // namespace mare::store
