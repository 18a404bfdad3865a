// Checkpoints: a state restored from one continues exactly as if it had never stopped; a
// damaged or mismatched checkpoint is refused, never half-loaded.
#include "processors/rollup/checkpoint.h"

#include <gtest/gtest.h>

#include <limits>

#include "common/scratch_dir.h"
#include "reading/timestamp.h"
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <cstring>
#include <map>

#include <zlib.h>

#include "processors/rollup/test_util.h"

namespace mare::rollup {
namespace {

// A checkpoint's body changed on purpose gets the CRC it would have had (the 24-byte header's
// last 4 bytes), so that decoding reaches the damage instead of stopping at the CRC.
void ResealCrc(std::string* bytes) {
  std::string_view body = std::string_view(*bytes).substr(24);
  uint32_t crc = static_cast<uint32_t>(::crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));
  std::memcpy(bytes->data() + 20, &crc, 4);
}

// The checkpoint of one partition holding one reading (sensor 3, temperature 1.5 at
// 2024-01-21 10:00 UTC, a whole hour): what the damaged-checkpoint cases damage.
constexpr int64_t kOneReadingTime = 1'705'831'200'000'000;
std::string OneReadingCheckpoint() {
  RollupState s({.partitions = 1});
  NumberField f[1] = {{"temperature", 1.5}};
  s.Add(0, 0, kOneReadingTime, 3, f);
  std::string good;
  EncodeCheckpoint(s, -1, &good);
  return good;
}

// `good` with `value`'s bytes written at `at` and its CRC resealed, decoded.
template <typename T>
Status DecodeDamaged(const std::string& good, size_t at, T value) {
  std::string bytes = good;
  std::memcpy(bytes.data() + at, &value, sizeof value);
  ResealCrc(&bytes);
  RollupState t({.partitions = 1});
  return DecodeCheckpoint(bytes, -1, &t, "damaged");
}

class CheckpointTest : public ::testing::Test {
 protected:
  ScratchDir scratch_{"mare-rollup-ckpt"};
  const std::string dir_ = scratch_.path();
  const std::string path_ = dir_ + "/checkpoint";
};

void FeedRange(RollupState& s, std::mt19937_64& rng, int64_t* t, int64_t* offsets, int n) {
  for (int i = 0; i < n; ++i) {
    *t += static_cast<int64_t>(rng() % 20'000'000);
    uint32_t sensor = static_cast<uint32_t>(rng() % 6);
    int32_t p = static_cast<int32_t>(sensor % 3);
    double v = std::uniform_real_distribution<double>(-10, 30)(rng);
    NumberField f[2] = {{"temperature", v}, {rng() % 2 ? "humidity" : "pressure", v * 3}};
    s.Add(p, offsets[p]++, *t - static_cast<int64_t>(rng() % 900'000'000), sensor, f);  // some beyond lateness
    if (i % 97 == 0) s.AdvanceWatermark();
  }
}

TEST_F(CheckpointTest, RestoredStateContinuesBitForBit) {
  RollupStateOptions o{.partitions = 3};
  RollupState a(o), b(o);
  std::mt19937_64 rng(7);
  int64_t t = 1'705'831'200'000'000, offsets[3] = {0, 0, 0};
  FeedRange(a, rng, &t, offsets, 5000);
  std::vector<RollupMessage> ignored;
  a.Emit(&ignored);  // some windows emitted and evicted, some dirty again below
  FeedRange(a, rng, &t, offsets, 500);
  std::string scratch;
  ASSERT_TRUE(WriteCheckpoint(path_, a, &scratch).ok());
  ASSERT_TRUE(ReadCheckpoint(path_, &b).ok());
  EXPECT_EQ(b.held_windows(), a.held_windows());
  EXPECT_EQ(b.open_windows(), a.open_windows());
  EXPECT_EQ(b.watermark_us(), a.watermark_us());
  for (int32_t p = 0; p < 3; ++p) EXPECT_EQ(b.next_offset(p), a.next_offset(p));

  std::mt19937_64 rng_b = rng;
  int64_t t_b = t, offsets_b[3] = {offsets[0], offsets[1], offsets[2]};
  FeedRange(a, rng, &t, offsets, 5000);
  FeedRange(b, rng_b, &t_b, offsets_b, 5000);
  a.AdvanceWatermark();
  b.AdvanceWatermark();
  std::vector<RollupMessage> ma, mb;
  a.Emit(&ma);
  b.Emit(&mb);
  std::map<std::string, std::string> ka, kb;
  for (const auto& m : ma) ka[m.key] = m.value;
  for (const auto& m : mb) kb[m.key] = m.value;
  EXPECT_GT(ka.size(), 10u);
  EXPECT_EQ(ka, kb);
}

TEST_F(CheckpointTest, MissingIsNotFoundDamagedIsCorruptionOtherSettingsAreRefused) {
  RollupState s({.partitions = 2});
  EXPECT_TRUE(ReadCheckpoint(path_, &s).IsNotFound());
  NumberField f[1] = {{"t", 1.5}};
  s.Add(1, 0, 1'705'831'200'000'000, 3, f);
  std::string scratch;
  ASSERT_TRUE(WriteCheckpoint(path_, s, &scratch).ok());
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));

  RollupState other_resolutions({.resolutions = {MakeResolution(60'000'000)}, .partitions = 2});
  Status st = ReadCheckpoint(path_, &other_resolutions);
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("1m,1h,1d"), std::string::npos) << st.message();
  RollupState other_partitions({.partitions = 4});
  EXPECT_EQ(ReadCheckpoint(path_, &other_partitions).code(), Status::Code::kInvalidArgument);

  // Flip one byte in the body.
  std::string bytes;
  {
    std::ifstream in(path_, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  bytes[bytes.size() - 3] ^= 0x40;
  {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  RollupState t({.partitions = 2});
  st = ReadCheckpoint(path_, &t);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("checksum mismatch"), std::string::npos);
  {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out << bytes.substr(0, 30);
  }
  EXPECT_TRUE(ReadCheckpoint(path_, &t).IsCorruption());
}


// Readings over several days (jumps of up to 3 hours), some out of order beyond the lateness.
void FeedDays(RollupState& s, std::mt19937_64& rng, int64_t* t, int64_t* offsets, int n) {
  for (int i = 0; i < n; ++i) {
    *t += static_cast<int64_t>(rng() % 3'000'000);
    if (rng() % 150 == 0) *t += static_cast<int64_t>(rng() % 10'800'000'000);
    uint32_t sensor = static_cast<uint32_t>(rng() % 6);
    int32_t p = static_cast<int32_t>(sensor % 3);
    double v = std::uniform_real_distribution<double>(-10, 30)(rng);
    NumberField f[2] = {{"temperature", v}, {rng() % 2 ? "humidity" : "pressure", v * 3 + 1e5}};
    s.Add(p, offsets[p]++, *t - static_cast<int64_t>(rng() % (rng() % 20 ? 120'000'000 : 900'000'000)), sensor, f);
    if (i % 97 == 0) s.AdvanceWatermark();
  }
}

std::map<std::string, std::string> EmitAll(RollupState& s) {
  s.AdvanceWatermark();
  std::vector<RollupMessage> out;
  s.Emit(&out);
  std::map<std::string, std::string> m;
  for (const auto& x : out) m[x.key] = x.value;
  return m;
}

// Found by fuzz/rollup_checkpoint (fuzz/corpus/rollup_checkpoint/resolution-count-4g.ckpt): a
// damaged count of resolutions (or of field names) was taken at its word, and decoding asked
// for tens of GB before finding the body too short. Now it is corruption, at once.
TEST_F(CheckpointTest, ADamagedCountIsCorruptionNotAHugeAllocation) {
  const std::string good = OneReadingCheckpoint();
  // Body (after the 24-byte header): lateness i64, resolution count u32 at 8, three lengths,
  // partition count u32, one (offset, newest) pair, then the field name count u32 at 56.
  for (size_t at : {size_t{24 + 8}, size_t{24 + 56}}) {
    Status st = DecodeDamaged(good, at, uint32_t{0xFFFFFFFF});
    EXPECT_TRUE(st.IsCorruption()) << at << ": " << st.ToString();
    EXPECT_NE(st.message().find("truncated"), std::string::npos) << st.message();
  }
  RollupState t({.partitions = 1});
  EXPECT_TRUE(DecodeCheckpoint(good, -1, &t, "good").ok());
}

// Found by fuzz/rollup_checkpoint (fuzz/corpus/rollup_checkpoint/window-start-near-int64-max.ckpt):
// a window starting near 2^63 overflowed its end (start + length) once restored. A start that is
// not a multiple of its window's length, or whose end does not fit, is corruption.
TEST_F(CheckpointTest, AWindowStartOutOfRangeIsCorruption) {
  const std::string good = OneReadingCheckpoint();
  const int64_t hour = kOneReadingTime;  // a whole hour: the 1m and 1h windows start there
  for (int64_t start : {std::numeric_limits<int64_t>::max() - 7, hour + 1}) {
    size_t at = good.rfind(std::string(reinterpret_cast<const char*>(&hour), 8));  // the last window's start
    ASSERT_NE(at, std::string::npos);
    Status st = DecodeDamaged(good, at, start);
    EXPECT_TRUE(st.IsCorruption()) << start << ": " << st.ToString();
    EXPECT_NE(st.message().find("window start out of range"), std::string::npos) << st.message();
  }
}

// Found by fuzz/rollup_checkpoint (fuzz/corpus/rollup_checkpoint/newest-time-near-int64-min.ckpt):
// a partition's newest time near the smallest int64 overflowed the watermark (newest - lateness)
// at the next reading. A newest time outside the readings' years is corruption.
TEST_F(CheckpointTest, ANewestTimeOutOfTheReadingsYearsIsCorruption) {
  const std::string good = OneReadingCheckpoint();
  // Body (after the 24-byte header): ..., partition count u32 at 36, next offset at 40, newest at 48.
  for (int64_t newest : {std::numeric_limits<int64_t>::min() + 15'597'568, kFirstReadingMicros - 1, kAfterLastReadingMicros}) {
    Status st = DecodeDamaged(good, 24 + 48, newest);
    EXPECT_TRUE(st.IsCorruption()) << newest << ": " << st.ToString();
    EXPECT_NE(st.message().find("newest time out of range"), std::string::npos) << st.message();
  }
  int64_t kept;
  std::memcpy(&kept, good.data() + 24 + 48, 8);
  EXPECT_EQ(kept, kOneReadingTime);  // the offset above is the newest time's
  RollupState t({.partitions = 1});
  EXPECT_TRUE(DecodeCheckpoint(good, -1, &t, "good").ok());
}

// Found by fuzz/rollup_checkpoint (fuzz/corpus/rollup_checkpoint/aggregate-count-near-int64-max):
// an aggregate's count near 2^63 overflowed when the next readings were merged into it. A count
// beyond 2^53 is corruption.
TEST_F(CheckpointTest, AnAggregateCountBeyond2To53IsCorruption) {
  const std::string good = OneReadingCheckpoint();
  // An aggregate is (field u16, flags u8, count i64, mean f64, ...): its count 1 then its mean 1.5.
  const int64_t one = 1;
  const double mean = 1.5;
  std::string pattern(reinterpret_cast<const char*>(&one), 8);
  pattern.append(reinterpret_cast<const char*>(&mean), 8);
  for (int64_t count : {std::numeric_limits<int64_t>::max() - 7, (int64_t{1} << 53) + 1}) {
    size_t at = good.rfind(pattern);
    ASSERT_NE(at, std::string::npos);
    Status st = DecodeDamaged(good, at, count);
    EXPECT_TRUE(st.IsCorruption()) << count << ": " << st.ToString();
    EXPECT_NE(st.message().find("aggregate count beyond 2^53"), std::string::npos) << st.message();
  }
  RollupState t({.partitions = 1});
  EXPECT_TRUE(DecodeCheckpoint(good, -1, &t, "good").ok());
}

// Checkpoints taken at many points of a stream crossing hours and days, with derived windows
// holding merged finer ones and finer ones still held, whole and per partition: each restored
// state emits exactly what the original emits from there on.
TEST_F(CheckpointTest, NestedStateRestoredMidStreamGoesOnIdentically) {
  RollupStateOptions o{.partitions = 3};
  RollupState a(o);
  std::mt19937_64 rng(5);
  int64_t t = 1'709'161'200'000'000 - 3'600'000'000LL * 30, offsets[3] = {0, 0, 0};  // over 2024-02-29
  std::string scratch;
  for (int round = 0; round < 12; ++round) {
    FeedDays(a, rng, &t, offsets, 2000);
    if (round % 3 != 2) EmitAll(a);  // sometimes dirty windows at the checkpoint
    FeedDays(a, rng, &t, offsets, 100);
    ASSERT_TRUE(WriteCheckpoint(path_, a, &scratch).ok());
    RollupState whole(o), parts(o);
    ASSERT_TRUE(ReadCheckpoint(path_, &whole).ok());
    for (int32_t p : {1, 2, 0}) {
      std::string bytes;
      EncodeCheckpoint(a, p, &bytes);
      ASSERT_TRUE(DecodeCheckpoint(bytes, p, &parts, "partition").ok());
    }
    for (RollupState* b : {&whole, &parts}) {
      EXPECT_EQ(b->held_windows(), a.held_windows());
      EXPECT_EQ(b->open_windows(), a.open_windows());
    }
    // Go on, all three, with the same readings.
    std::mt19937_64 rng_w = rng, rng_p = rng;
    int64_t t_w = t, t_p = t, off_w[3], off_p[3];
    std::copy(offsets, offsets + 3, off_w);
    std::copy(offsets, offsets + 3, off_p);
    FeedDays(a, rng, &t, offsets, 1500);
    FeedDays(whole, rng_w, &t_w, off_w, 1500);
    FeedDays(parts, rng_p, &t_p, off_p, 1500);
    auto want = EmitAll(a);
    EXPECT_FALSE(want.empty());
    EXPECT_EQ(EmitAll(whole), want) << "round " << round;
    EXPECT_EQ(EmitAll(parts), want) << "round " << round;
  }
}

// The original itself against its restore, at one point with derived windows evicted into.
TEST_F(CheckpointTest, NestedStateRestoredContinuesLikeTheOriginal) {
  RollupStateOptions o{.partitions = 3};
  RollupState a(o), b(o);
  std::mt19937_64 rng(9);
  int64_t t = 1'704'063'600'000'000 - 3'600'000'000LL * 20, offsets[3] = {0, 0, 0};  // over 2024-01-01
  FeedDays(a, rng, &t, offsets, 15000);
  EmitAll(a);
  FeedDays(a, rng, &t, offsets, 300);
  std::string scratch;
  ASSERT_TRUE(WriteCheckpoint(path_, a, &scratch).ok());
  ASSERT_TRUE(ReadCheckpoint(path_, &b).ok());
  std::mt19937_64 rng_b = rng;
  int64_t t_b = t, offsets_b[3] = {offsets[0], offsets[1], offsets[2]};
  for (int round = 0; round < 5; ++round) {
    FeedDays(a, rng, &t, offsets, 3000);
    FeedDays(b, rng_b, &t_b, offsets_b, 3000);
    auto ka = EmitAll(a), kb = EmitAll(b);
    EXPECT_GT(ka.size(), 10u);
    EXPECT_EQ(ka, kb) << "round " << round;
  }
}

// A version 1 body (every window updated per reading), made from a state that does not nest:
// the same bytes but for the flag values.
std::string V1Body(const std::string& v2) {
  size_t at = 0;
  auto skip = [&](size_t n) { at += n; };
  auto get32 = [&]() { uint32_t v; std::memcpy(&v, v2.data() + at, 4); at += 4; return v; };
  skip(8);
  skip(8 * get32());
  skip(16 * get32());
  for (uint32_t n = get32(); n > 0; --n) {
    uint16_t len;
    std::memcpy(&len, v2.data() + at, 2);
    skip(2 + len);
  }
  uint64_t windows;
  std::memcpy(&windows, v2.data() + at, 8);
  skip(8);
  std::string v1 = v2;
  for (; windows > 0; --windows) {
    skip(4 + 4 + 1 + 8);
    v1[at] = static_cast<char>(v1[at] & 3);  // closed, dirty
    skip(1);
    uint16_t n;
    std::memcpy(&n, v2.data() + at, 2);
    skip(2);
    for (; n > 0; --n) {
      skip(2);
      v1[at] = static_cast<char>(v1[at] & 1);  // dirty: to emit
      skip(1 + 8 * 9);
    }
  }
  EXPECT_EQ(at, v2.size());
  return v1;
}

// A checkpoint of the previous layout (version 1) is read: its windows go on being updated
// per reading, windows made after it are derived, and what it emits from there on is what a
// state that never nests emits (exactly for count, min, max, first, last; mean and stddev
// within 1e-9).
TEST_F(CheckpointTest, Version1CheckpointsAreReadAndGoOn) {
  RollupStateOptions o{.partitions = 3};
  o.nest = false;
  RollupState old(o);
  std::mt19937_64 rng(3);
  int64_t t = 1'709'161'200'000'000 - 3'600'000'000LL * 5, offsets[3] = {0, 0, 0};
  FeedDays(old, rng, &t, offsets, 3000);
  EmitAll(old);
  FeedDays(old, rng, &t, offsets, 200);
  std::string v2;
  old.Encode(&v2);
  std::string v1 = V1Body(v2);

  // Through the file header too: version 1 in the header.
  std::string file;
  EncodeCheckpoint(old, -1, &file);
  file.replace(24, std::string::npos, v1);
  uint32_t version = 1, crc = static_cast<uint32_t>(::crc32(0, reinterpret_cast<const Bytef*>(v1.data()), static_cast<uInt>(v1.size())));
  std::memcpy(file.data() + 8, &version, 4);
  std::memcpy(file.data() + 20, &crc, 4);
  RollupState nested({.partitions = 3});
  ASSERT_TRUE(DecodeCheckpoint(file, -1, &nested, "v1").ok());
  EXPECT_EQ(nested.held_windows(), old.held_windows());
  EXPECT_EQ(nested.open_windows(), old.open_windows());
  version = 3;
  std::memcpy(file.data() + 8, &version, 4);
  RollupState refused({.partitions = 3});
  Status st = DecodeCheckpoint(file, -1, &refused, "v3");
  EXPECT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("unknown checkpoint version 3"), std::string::npos) << st.message();

  for (int round = 0; round < 6; ++round) {
    std::mt19937_64 rng_n = rng;
    int64_t t_n = t, offsets_n[3] = {offsets[0], offsets[1], offsets[2]};
    FeedDays(old, rng, &t, offsets, 2000);
    FeedDays(nested, rng_n, &t_n, offsets_n, 2000);
    auto want = EmitAll(old), got = EmitAll(nested);
    ASSERT_EQ(got.size(), want.size()) << "round " << round;
    for (const auto& [key, value] : want) {
      ASSERT_TRUE(got.count(key)) << key;
      const std::string& g = got[key];
      // Equal but for the last digits of mean and stddev.
      auto number = [](const std::string& v, const char* name) {
        size_t at = v.find(std::string("\"") + name + "\":") + std::strlen(name) + 3;
        return std::stod(v.substr(at, v.find(',', at) - at));
      };
      for (const char* exact : {"count", "min", "max", "first", "last", "revision"}) {
        EXPECT_EQ(number(g, exact), number(value, exact)) << key << " " << exact;
      }
      EXPECT_EQ(testing::FinalOf(g), testing::FinalOf(value)) << key;
      double m = number(value, "mean"), sd = number(value, "stddev");
      EXPECT_NEAR(number(g, "mean"), m, 1e-9 * std::abs(m)) << key;
      EXPECT_NEAR(number(g, "stddev"), sd, 1e-9 * std::max(sd, 1e-6 * std::abs(m))) << key;
    }
    EXPECT_EQ(nested.held_windows(), old.held_windows());
  }
}

}  // namespace
}  // namespace mare::rollup
