#include "sinks/elasticsearch/bulk_response.h"

#include <gtest/gtest.h>

namespace mare::sinks {
namespace {

// Answers as Elasticsearch 7.10 writes them (abridged only in _shards).
TEST(BulkResponse, EachItemsOutcomeIsReadEvenUnderA200) {
  std::vector<BulkItemOutcome> items;
  ASSERT_TRUE(ReadBulkResponse(
                  R"({"took":30,"errors":true,"items":[)"
                  R"({"index":{"_index":"mare-readings-2024.01.21","_type":"_doc","_id":"1-1","_version":1,"result":"created","_shards":{"total":1},"_seq_no":0,"_primary_term":1,"status":201}},)"
                  R"({"index":{"_index":"mare-readings-2024.01.21","_type":"_doc","_id":"1-2","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [wave] of type [double] in document with id '1-2'. Preview of field's value: 'calm'","caused_by":{"type":"number_format_exception","reason":"For input string: \"calm\""}}}},)"
                  R"({"index":{"_index":"mare-readings-2024.01.21","_type":"_doc","_id":"1-3","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution"}}},)"
                  R"({"index":{"_index":"mare-rollups-2024.01.21","_type":"_doc","_id":"1/t/1h/0","status":409,"error":{"type":"version_conflict_engine_exception","reason":"version conflict"}}},)"
                  R"({"index":{"_index":"x","_id":"y","status":503,"error":"unavailable"}})"
                  R"(]})",
                  &items)
                  .ok());
  ASSERT_EQ(items.size(), 5u);
  EXPECT_EQ(items[0].status, 201);
  EXPECT_EQ(items[0].error, "");
  EXPECT_EQ(FateOf(items[0].status), BulkItemFate::kDone);
  EXPECT_EQ(items[1].status, 400);
  EXPECT_EQ(FateOf(items[1].status), BulkItemFate::kRejected);
  EXPECT_EQ(items[1].error,
            "mapper_parsing_exception: failed to parse field [wave] of type [double] in document with id '1-2'. Preview of "
            "field's value: 'calm' (caused by number_format_exception: For input string: \"calm\")");
  EXPECT_EQ(FateOf(items[2].status), BulkItemFate::kRetry);
  EXPECT_EQ(FateOf(items[3].status), BulkItemFate::kDone);  // a newer revision is already there
  EXPECT_EQ(items[4].error, "unavailable");
  EXPECT_EQ(FateOf(items[4].status), BulkItemFate::kRetry);
}

// The sink asks for each item's status and error alone (filter_path=items.*.status,items.*.error):
// the answer as Elasticsearch 7.10 then writes it reads the same.
TEST(BulkResponse, AFilteredAnswerReadsTheSame) {
  std::vector<BulkItemOutcome> items;
  ASSERT_TRUE(ReadBulkResponse(
                  R"({"items":[{"index":{"status":201}},{"index":{"status":400,"error":{"type":"mapper_parsing_exception",)"
                  R"("reason":"failed to parse","caused_by":{"type":"number_format_exception","reason":"calm"}}}},)"
                  R"({"index":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected"}}}]})",
                  &items)
                  .ok());
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(FateOf(items[0].status), BulkItemFate::kDone);
  EXPECT_EQ(FateOf(items[1].status), BulkItemFate::kRejected);
  EXPECT_EQ(items[1].error, "mapper_parsing_exception: failed to parse (caused by number_format_exception: calm)");
  EXPECT_EQ(FateOf(items[2].status), BulkItemFate::kRetry);
}

TEST(BulkResponse, AnAnswerWithoutItemsIsCorruption) {
  std::vector<BulkItemOutcome> items;
  EXPECT_TRUE(ReadBulkResponse(R"({"error":{"type":"illegal_argument_exception"},"status":400})", &items).IsCorruption());
  EXPECT_TRUE(ReadBulkResponse("<html>", &items).IsCorruption());
  EXPECT_TRUE(ReadBulkResponse(R"({"items":[{"index":3}]})", &items).IsCorruption());
}

}  // namespace
}  // namespace mare::sinks
