// SplitAfterRefusal: every request of the aborted group ends in exactly one place (failed or in one
// group run again), every group run again is smaller than the aborted one (the splitting ends), and
// the one named fails alone.
#include "log/refusal_split.h"

#include <gtest/gtest.h>

#include <vector>

namespace mare::log {
namespace {

// Each index of a group of n in exactly one place, and each group run again smaller than n.
void ExpectPartition(const RefusalSplit& split, size_t n) {
  std::vector<int> seen(n, 0);
  if (split.fails) ++seen.at(*split.fails);
  for (const std::vector<size_t>& group : split.run_again) {
    EXPECT_FALSE(group.empty());
    EXPECT_LT(group.size(), n);
    for (size_t i : group) ++seen.at(i);
  }
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(seen[i], 1) << "request " << i;
}

TEST(RefusalSplit, NoneNamedRunsEachAloneAndNeverTheGroupAgain) {
  // The review's finding: the whole group queued again after the single runs committed the
  // innocent twice and, refused again the same way, looped for ever.
  RefusalSplit split = SplitAfterRefusal({false, false, false});
  EXPECT_FALSE(split.fails.has_value());
  ASSERT_EQ(split.run_again.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(split.run_again[i], std::vector<size_t>{i});
  ExpectPartition(split, 3);
}

TEST(RefusalSplit, OneNamedFailsAloneTheOthersRunTogether) {
  RefusalSplit split = SplitAfterRefusal({false, true, false, false});
  ASSERT_TRUE(split.fails.has_value());
  EXPECT_EQ(*split.fails, 1u);
  ASSERT_EQ(split.run_again.size(), 1u);
  EXPECT_EQ(split.run_again[0], (std::vector<size_t>{0, 2, 3}));
  ExpectPartition(split, 4);
}

TEST(RefusalSplit, SeveralNamedRunAloneThenTheOthersTogether) {
  RefusalSplit split = SplitAfterRefusal({true, false, true, false, false});
  EXPECT_FALSE(split.fails.has_value());
  ASSERT_EQ(split.run_again.size(), 3u);
  EXPECT_EQ(split.run_again[0], std::vector<size_t>{0});
  EXPECT_EQ(split.run_again[1], std::vector<size_t>{2});
  EXPECT_EQ(split.run_again[2], (std::vector<size_t>{1, 3, 4}));
  ExpectPartition(split, 5);
}

TEST(RefusalSplit, AllNamedRunEachAlone) {
  RefusalSplit split = SplitAfterRefusal({true, true});
  EXPECT_FALSE(split.fails.has_value());
  ASSERT_EQ(split.run_again.size(), 2u);
  ExpectPartition(split, 2);
}

TEST(RefusalSplit, TheOnlyOtherRunsAgainAlone) {
  RefusalSplit split = SplitAfterRefusal({true, false});
  ASSERT_TRUE(split.fails.has_value());
  EXPECT_EQ(*split.fails, 0u);
  ASSERT_EQ(split.run_again.size(), 1u);
  EXPECT_EQ(split.run_again[0], std::vector<size_t>{1});
  ExpectPartition(split, 2);
}

}  // namespace
}  // namespace mare::log
