#include "sinks/mariadb/rollup_writer.h"

#include <gtest/gtest.h>

namespace mare::sinks {
namespace {

TEST(RollupWriter, TablesByResolution) {
  EXPECT_EQ(RollupTable("1m"), "rollup_minute");
  EXPECT_EQ(RollupTable("1h"), "rollup_hour");
  EXPECT_EQ(RollupTable("1d"), "rollup_day");
  EXPECT_EQ(RollupTable("5m"), "rollup_5m");
}

}  // namespace
}  // namespace mare::sinks
