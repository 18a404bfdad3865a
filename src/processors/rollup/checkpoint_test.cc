// Checkpoints: a state restored from one continues exactly as if it had never stopped; a
// damaged or mismatched checkpoint is refused, never half-loaded.
#include "processors/rollup/checkpoint.h"

#include <gtest/gtest.h>

#include "common/scratch_dir.h"
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "processors/rollup/test_util.h"

namespace mare::rollup {
namespace {

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

}  // namespace
}  // namespace mare::rollup
