// InOrderCommits: batches acknowledged out of order never let a position pass an earlier batch
// that is still unacknowledged.
#include "sinks/in_order_commits.h"

#include <gtest/gtest.h>

namespace mare::sinks {
namespace {

using Positions = std::map<int32_t, int64_t>;

TEST(InOrderCommitsTest, InOrderAcknowledgementsCommitEachBatch) {
  InOrderCommits c;
  uint64_t a = c.Sealed({{0, 10}}, 1);
  uint64_t b = c.Sealed({{0, 20}}, 2);
  EXPECT_EQ(a, 0u);
  EXPECT_EQ(b, 1u);
  EXPECT_TRUE(c.Take().empty());
  c.Acknowledged(a);
  auto t = c.Take();
  EXPECT_EQ(t.next, (Positions{{0, 10}}));
  EXPECT_EQ(t.starts_us, (std::vector<int64_t>{1}));
  EXPECT_TRUE(c.Take().empty()) << "taken once";
  c.Acknowledged(b);
  EXPECT_EQ(c.Take().next, (Positions{{0, 20}}));
  EXPECT_EQ(c.pending(), 0u);
}

TEST(InOrderCommitsTest, ALaterBatchWaitsForAnEarlierOne) {
  InOrderCommits c;
  uint64_t a = c.Sealed({{0, 10}, {1, 5}}, 1);
  uint64_t b = c.Sealed({{0, 20}}, 2);
  uint64_t d = c.Sealed({{1, 9}, {2, 3}}, 3);
  c.Acknowledged(b);
  c.Acknowledged(d);
  EXPECT_TRUE(c.Take().empty()) << "batch 0 is not acknowledged: nothing may be saved";
  EXPECT_EQ(c.pending(), 3u);
  c.Acknowledged(a);
  auto t = c.Take();
  EXPECT_EQ(t.next, (Positions{{0, 20}, {1, 9}, {2, 3}})) << "the three batches' positions, the later winning";
  EXPECT_EQ(t.starts_us, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(c.pending(), 0u);
}

TEST(InOrderCommitsTest, TakesOnlyTheAcknowledgedPrefix) {
  InOrderCommits c;
  uint64_t a = c.Sealed({{0, 1}}, 0);
  uint64_t b = c.Sealed({{0, 2}}, 0);
  uint64_t d = c.Sealed({{0, 3}}, 0);
  uint64_t e = c.Sealed({{0, 4}}, 0);
  c.Acknowledged(a);
  c.Acknowledged(d);
  EXPECT_EQ(c.Take().next, (Positions{{0, 1}})) << "stops before batch 1, not acknowledged, though 2 is";
  c.Acknowledged(e);
  EXPECT_TRUE(c.Take().empty());
  c.Acknowledged(b);
  EXPECT_EQ(c.Take().next, (Positions{{0, 4}}));
  // Numbers go on after the forgotten ones; stale or unknown numbers are ignored.
  uint64_t f = c.Sealed({{0, 5}}, 0);
  EXPECT_EQ(f, 4u);
  c.Acknowledged(a);
  c.Acknowledged(99);
  EXPECT_TRUE(c.Take().empty());
  c.Acknowledged(f);
  EXPECT_EQ(c.Take().next, (Positions{{0, 5}}));
}

}  // namespace
}  // namespace mare::sinks
