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

// A whole request refused for now is every item refused for now: each is sent again, as an item
// answered 429 alone is. The bodies as real nodes answered (7.10.2 and OpenSearch 3.8.0 alike):
// the in-flight requests breaker (network.breaker.inflight_requests.limit), the indexing
// pressure limit (indexing_pressure.memory.limit; OpenSearch names it rejected_execution_exception).
TEST(BulkResponse, AWholeRequestAnswered429OrA5xxRefusesEveryItemForNow) {
  std::vector<BulkItemOutcome> items;
  ASSERT_TRUE(ReadBulkAnswer(
                  429,
                  R"({"error":{"root_cause":[{"type":"circuit_breaking_exception","reason":"[in_flight_requests] Data too large, )"
                  R"(data for [<http_request>] would be [105560/103kb], which is larger than the limit of [16384/16kb]",)"
                  R"("bytes_wanted":105560,"bytes_limit":16384,"durability":"TRANSIENT"}],"type":"circuit_breaking_exception",)"
                  R"("reason":"[in_flight_requests] Data too large, data for [<http_request>] would be [105560/103kb], which is )"
                  R"(larger than the limit of [16384/16kb]","bytes_wanted":105560,"bytes_limit":16384,"durability":"TRANSIENT"},)"
                  R"("status":429})",
                  3, &items)
                  .ok());
  ASSERT_EQ(items.size(), 3u);
  for (const BulkItemOutcome& item : items) {
    EXPECT_EQ(item.status, 429);
    EXPECT_EQ(FateOf(item.status), BulkItemFate::kRetry);
    EXPECT_EQ(item.error,
              "circuit_breaking_exception: [in_flight_requests] Data too large, data for [<http_request>] would be "
              "[105560/103kb], which is larger than the limit of [16384/16kb]");
  }
  ASSERT_TRUE(ReadBulkAnswer(
                  429,
                  R"({"error":{"root_cause":[{"type":"es_rejected_execution_exception","reason":"rejected execution of )"
                  R"(coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, )"
                  R"(coordinating_operation_bytes=77762, max_coordinating_and_primary_bytes=16384]"}],)"
                  R"("type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation )"
                  R"([coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=77762, )"
                  R"(max_coordinating_and_primary_bytes=16384]"},"status":429})",
                  2, &items)
                  .ok());
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(FateOf(items[1].status), BulkItemFate::kRetry);
  EXPECT_TRUE(items[1].error.starts_with("es_rejected_execution_exception: rejected execution of coordinating operation"))
      << items[1].error;
  // A proxy's page in front of the node: its status, and the start of the page.
  ASSERT_TRUE(ReadBulkAnswer(502, "<html>Bad Gateway</html>", 2, &items).ok());
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].status, 502);
  EXPECT_EQ(items[0].error, "HTTP 502: <html>Bad Gateway</html>");
}

// A 200 is read item by item, and must have one per item sent; other statuses fault the request.
TEST(BulkResponse, AnAnswerOtherThan200429Or5xxIsTheRequestsFault) {
  std::vector<BulkItemOutcome> items;
  const std::string_view two = R"({"items":[{"index":{"status":201}},{"index":{"status":429}}]})";
  ASSERT_TRUE(ReadBulkAnswer(200, two, 2, &items).ok());
  EXPECT_EQ(items[1].status, 429);
  EXPECT_TRUE(ReadBulkAnswer(200, two, 3, &items).IsCorruption());
  Status s = ReadBulkAnswer(413, "", 2, &items);
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.ToString();
  s = ReadBulkAnswer(401, R"({"error":{"type":"security_exception"},"status":401})", 2, &items);
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.ToString();
  s = ReadBulkAnswer(400, R"({"error":{"type":"illegal_argument_exception"},"status":400})", 2, &items);
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.ToString();
}

}  // namespace
}  // namespace mare::sinks
