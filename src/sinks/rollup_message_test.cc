#include "sinks/rollup_message.h"

#include <gtest/gtest.h>

namespace mare::sinks {
namespace {

TEST(RollupMessage, ReadsTheDocumentedShape) {
  RollupReader reader;
  RollupMessage m;
  Status s = reader.Read(
      R"({"sensor_id": 7, "field": "temperature", "resolution": "1h", "window_start": "2024-01-21T10:00:00.000000Z",)"
      R"( "window_end": "2024-01-21T11:00:00.000000Z", "count": 3600, "min": 12.1, "max": 14.9, "mean": 13.52,)"
      R"( "stddev": 0.61, "first": 12.4, "last": 14.2, "revision": 3600, "final": true})",
      &m);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(m.sensor_id, 7u);
  EXPECT_EQ(m.field, "temperature");
  EXPECT_EQ(m.resolution, "1h");
  EXPECT_EQ(m.window_start_us, 1705831200000000);
  EXPECT_EQ(m.count, 3600);
  EXPECT_EQ(m.min, 12.1);
  EXPECT_EQ(m.max, 14.9);
  EXPECT_EQ(m.mean, 13.52);
  EXPECT_EQ(m.stddev, 0.61);
  EXPECT_EQ(m.first, 12.4);
  EXPECT_EQ(m.last, 14.2);
  EXPECT_EQ(m.revision, 3600);
  EXPECT_TRUE(m.final);
}

TEST(RollupMessage, RejectsWhatItCannotUpsert) {
  RollupReader reader;
  RollupMessage m;
  EXPECT_TRUE(reader.Read("not json", &m).IsCorruption());
  EXPECT_TRUE(reader.Read(R"({"sensor_id": 7, "field": "t", "resolution": "1h", "count": 1, "revision": 1})", &m).IsCorruption());
  EXPECT_TRUE(reader.Read(R"({"sensor_id": -1, "field": "t", "resolution": "1h", "window_start": "2024-01-21T10:00:00Z", "count": 1, "revision": 1})", &m)
                  .IsCorruption());
}

}  // namespace
}  // namespace mare::sinks
