#include "common/split.h"

#include <gtest/gtest.h>

namespace mare {
namespace {

TEST(Split, KeepsEveryPieceEmptyOnesIncluded) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(Split("observatory/+/readings", '/'), (V{"observatory", "+", "readings"}));
  EXPECT_EQ(Split("n=user,r=abc", ','), (V{"n=user", "r=abc"}));
  EXPECT_EQ(Split("a,,b,", ','), (V{"a", "", "b", ""}));
  EXPECT_EQ(Split("", '/'), (V{""}));
  EXPECT_EQ(Split("/", '/'), (V{"", ""}));
}

}  // namespace
}  // namespace mare
