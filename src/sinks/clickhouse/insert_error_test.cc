#include "sinks/clickhouse/insert_error.h"

#include <gtest/gtest.h>

namespace mare::sinks {
namespace {

// Bodies as ClickHouse 18.16 writes them.
TEST(InsertError, ACheckThatThrowsBlamesTheRows) {
  InsertError e = ReadInsertError(
      500, "Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non zero, e.what() = DB::Exception\n");
  EXPECT_EQ(e.code, 395);
  EXPECT_TRUE(e.rows_refused);
  EXPECT_EQ(e.message.find("HTTP 500: Code: 395"), 0u);
  EXPECT_EQ(e.message.find('\n'), std::string::npos);
}

TEST(InsertError, PassingTroubleIsRetriedNotBlamedOnRows) {
  InsertError parts = ReadInsertError(
      500, "Code: 252, e.displayText() = DB::Exception: Too many parts (300). Merges are processing significantly slower than inserts.");
  EXPECT_EQ(parts.code, 252);
  EXPECT_FALSE(parts.rows_refused);
  InsertError table = ReadInsertError(404, "Code: 60, e.displayText() = DB::Exception: Table mare.readings doesn't exist.");
  EXPECT_EQ(table.code, kUnknownTable);
  EXPECT_FALSE(table.rows_refused);
  InsertError proxy = ReadInsertError(502, "<html>Bad Gateway</html>");
  EXPECT_EQ(proxy.code, -1);
  EXPECT_FALSE(proxy.rows_refused);
}

TEST(InsertError, LaterVersionsWordingIsReadToo) {
  InsertError e = ReadInsertError(400, "Code: 27. DB::Exception: Cannot parse input: expected '\\t' before: ...");
  EXPECT_EQ(e.code, 27);
  EXPECT_TRUE(e.rows_refused);
}

}  // namespace
}  // namespace mare::sinks
