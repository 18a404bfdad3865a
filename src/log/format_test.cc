// The byte layout of docs/formats/log.md, checked field by field, and how a segment scan
// tells a torn tail from corruption.
#include "log/format.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include "common/scratch_dir.h"
#include <unistd.h>
#include <zlib.h>

#include <bit>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace mare::log::format {
namespace {

uint32_t Crc(const std::string& s, size_t from, size_t to) {
  return static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef*>(s.data() + from), to - from));
}

std::string Encode(const std::vector<Record>& records, int64_t base_offset, int64_t append_time) {
  size_t n = 0;
  BatchNumbers numbers;
  EXPECT_TRUE(MeasureBatch(records, &n, &numbers).ok());
  std::string buf(n, '\xff');
  EncodeBatch(records, numbers, buf.data());
  SealBatch(buf.data(), base_offset, append_time);
  return buf;
}

TEST(BatchFormat, LayoutIsAsDocumented) {
  std::vector<Record> records = {{1'700'000'000'000'000, "42", R"({"t":1})"}, {1'600'000'000'000'000, "7", "{}"}};
  std::string b = Encode(records, 1234, 1'800'000'000'000'000);

  size_t expected_length = 56 + (14 + 2 + 7) + (14 + 1 + 2);
  ASSERT_EQ(b.size(), expected_length);
  EXPECT_EQ(b.substr(0, 4), "MLB1");
  EXPECT_EQ(GetU32(b.data() + 4), expected_length);
  EXPECT_EQ(GetI64(b.data() + 8), 1234);                       // base offset
  EXPECT_EQ(GetI64(b.data() + 16), 1'800'000'000'000'000);     // append time
  EXPECT_EQ(GetI64(b.data() + 24), 1'600'000'000'000'000);     // min event time
  EXPECT_EQ(GetI64(b.data() + 32), 1'700'000'000'000'000);     // max event time
  EXPECT_EQ(GetU32(b.data() + 40), 2u);                        // record count
  EXPECT_EQ(GetU16(b.data() + 44), 0u);                        // attributes: uncompressed
  EXPECT_EQ(GetU16(b.data() + 46), 0u);                        // reserved
  EXPECT_EQ(GetU32(b.data() + 48), Crc(b, 56, b.size()));      // body checksum
  EXPECT_EQ(GetU32(b.data() + 52), Crc(b, 0, 52));             // header checksum

  // Records: timestamp i64, key length u16, value length u32, key, value.
  EXPECT_EQ(GetI64(b.data() + 56), 1'700'000'000'000'000);
  EXPECT_EQ(GetU16(b.data() + 64), 2u);
  EXPECT_EQ(GetU32(b.data() + 66), 7u);
  EXPECT_EQ(b.substr(70, 9), R"(42{"t":1})");
  EXPECT_EQ(GetU16(b.data() + 79 + 8), 1u);
  EXPECT_EQ(b.substr(79 + 14, 3), "7{}");

  BatchHeader h;
  std::string why;
  ASSERT_TRUE(ParseBatchHeader(b.data(), &h, &why)) << why;
  ASSERT_TRUE(CheckBatchBody(b.data(), h, &why)) << why;
  std::vector<std::string> seen;
  ForEachRecord(b.data(), h, [&](int64_t ts, std::string_view key, std::string_view value, const RecordNumbers& n) {
    EXPECT_FALSE(n.carried());
    seen.push_back(std::to_string(ts) + " " + std::string(key) + " " + std::string(value));
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"1700000000000000 42 {\"t\":1}", "1600000000000000 7 {}"}));
}

// A group's part: the records as in any batch, then the 20-byte trailer, covered by the body
// checksum; attribute bit 5.
TEST(BatchFormat, GroupTrailerLayoutIsAsDocumented) {
  std::vector<NumberField> a = {{"temperature", 20.5}};
  for (bool numbers : {false, true}) {
    std::vector<Record> records = {{5, "42", "{}", numbers, a}};
    size_t n = 0;
    BatchNumbers bn;
    ASSERT_TRUE(MeasureBatch(records, &n, &bn).ok());
    std::string b(n + kGroupTrailerSize, '\xff');
    EncodeBatch(records, bn, b.data());
    AddGroupTrailer(b.data(), {.id = 0x0102030405060708, .last_partition = 3, .last_offset = 77});
    SealBatch(b.data(), 10, 1);
    EXPECT_EQ(GetU32(b.data() + 4), n + 20);
    EXPECT_EQ(GetU16(b.data() + 44), numbers ? 0x0028u : 0x0020u);
    EXPECT_EQ(GetU64(b.data() + n), 0x0102030405060708u);  // id
    EXPECT_EQ(GetU32(b.data() + n + 8), 3u);               // last_partition
    EXPECT_EQ(GetI64(b.data() + n + 12), 77);              // last_offset
    EXPECT_EQ(GetU32(b.data() + 48), Crc(b, 56, b.size()));
    EXPECT_EQ(GetU32(b.data() + 52), Crc(b, 0, 52));
    BatchHeader h;
    std::string why;
    ASSERT_TRUE(ParseBatchHeader(b.data(), &h, &why)) << why;
    ASSERT_TRUE(CheckBatchBody(b.data(), h, &why)) << why;
    GroupTrailer g = ReadGroupTrailer(b.data() + h.length - kGroupTrailerSize);
    EXPECT_EQ(g.last_offset, 77);
    std::vector<std::string> seen;
    ForEachRecord(b.data(), h, [&](int64_t, std::string_view key, std::string_view value, const RecordNumbers& nums) {
      EXPECT_EQ(nums.carried(), numbers);
      seen.push_back(std::string(key) + std::string(value));
    });
    EXPECT_EQ(seen, std::vector<std::string>{"42{}"});
    // Without the bit, the trailer is bytes after the last record: refused.
    PutU16(b.data() + 44, static_cast<uint16_t>(GetU16(b.data() + 44) & ~kAttrGroup));
    PutU32(b.data() + 52, Crc(b, 0, 52));
    ASSERT_TRUE(ParseBatchHeader(b.data(), &h, &why)) << why;
    EXPECT_FALSE(CheckBatchBody(b.data(), h, &why));
  }
}

TEST(BatchFormat, NumbersLayoutIsAsDocumented) {
  std::vector<NumberField> a = {{"temperature", 20.5}, {"humidity", -1.25}};
  std::vector<NumberField> b = {{"humidity", 3.0}};
  std::vector<Record> records = {{5, "1", "A", true, a}, {6, "2", "BB", true, b}, {7, "3", "C"}};
  std::string batch = Encode(records, 0, 1);
  // Name table: count, then each name's length and bytes, in first-seen order.
  size_t table = 2 + (1 + 11) + (1 + 8);
  size_t expected = 56 + table + (15 + 1 + 1 + 2 * 10) + (15 + 1 + 2 + 10) + (15 + 1 + 1);
  ASSERT_EQ(batch.size(), expected);
  EXPECT_EQ(GetU16(batch.data() + 44), kAttrNumbers);
  const char* p = batch.data() + 56;
  EXPECT_EQ(GetU16(p), 2u);
  EXPECT_EQ(std::string(p + 2, 12), std::string("\x0btemperature"));
  EXPECT_EQ(std::string(p + 14, 9), std::string("\x08humidity"));
  p += table;
  EXPECT_EQ(GetI64(p), 5);
  EXPECT_EQ(GetU16(p + 8), 1u);
  EXPECT_EQ(GetU32(p + 10), 1u);
  EXPECT_EQ(static_cast<uint8_t>(p[14]), 2u);  // number count
  EXPECT_EQ(std::string(p + 15, 2), "1A");
  EXPECT_EQ(GetU16(p + 17), 0u);  // temperature
  EXPECT_EQ(GetU64(p + 19), std::bit_cast<uint64_t>(20.5));
  EXPECT_EQ(GetU16(p + 27), 1u);  // humidity
  EXPECT_EQ(GetU64(p + 29), std::bit_cast<uint64_t>(-1.25));
  p += 15 + 2 + 20;
  EXPECT_EQ(static_cast<uint8_t>(p[14]), 1u);
  EXPECT_EQ(GetU16(p + 18), 1u);
  p += 15 + 3 + 10;
  EXPECT_EQ(static_cast<uint8_t>(p[14]), kNumbersNotCarried);  // appended without numbers

  BatchHeader h;
  std::string why;
  ASSERT_TRUE(ParseBatchHeader(batch.data(), &h, &why)) << why;
  ASSERT_TRUE(CheckBatchBody(batch.data(), h, &why)) << why;
  std::vector<std::string> seen;
  ForEachRecord(batch.data(), h, [&](int64_t ts, std::string_view key, std::string_view value, const RecordNumbers& n) {
    std::string line = std::to_string(ts) + " " + std::string(key) + " " + std::string(value);
    if (n.carried()) {
      std::vector<NumberField> out;
      n.Decode(&out);
      for (auto& f : out) line += " " + std::string(f.name) + "=" + std::to_string(f.value);
    } else {
      line += " -";
    }
    seen.push_back(line);
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"5 1 A temperature=20.500000 humidity=-1.250000", "6 2 BB humidity=3.000000",
                                            "7 3 C -"}));
}

TEST(BatchFormat, NumbersThatCannotBeCarriedLeaveTheValueToBeParsed) {
  std::string long_name(256, 'x');
  std::vector<NumberField> too_long = {{"ok", 1}, {long_name, 2}};
  std::vector<NumberField> many(255, NumberField{"n", 1});
  std::vector<NumberField> none;
  std::vector<Record> records = {{1, "1", "a", true, too_long}, {2, "2", "b", true, many}, {3, "3", "c", true, none}};
  std::string batch = Encode(records, 0, 1);
  BatchHeader h;
  std::string why;
  ASSERT_TRUE(ParseBatchHeader(batch.data(), &h, &why)) << why;
  ASSERT_TRUE(CheckBatchBody(batch.data(), h, &why)) << why;
  std::vector<std::pair<bool, size_t>> seen;
  ForEachRecord(batch.data(), h, [&](int64_t, std::string_view, std::string_view, const RecordNumbers& n) {
    seen.push_back({n.carried(), n.size()});
  });
  EXPECT_EQ(seen, (std::vector<std::pair<bool, size_t>>{{false, 0}, {false, 0}, {true, 0}}));
}

TEST(BatchFormat, ANameIndexBeyondTheTableIsCorruption) {
  std::vector<NumberField> a = {{"t", 1.5}};
  std::string batch = Encode({{1, "1", "v", true, a}}, 0, 1);
  // The one number's name index (after the table, the record header, key and value).
  size_t at = 56 + (2 + 2) + 15 + 2;
  PutU16(batch.data() + at, 1);
  PutU32(batch.data() + kBodyCrcAt, Crc(batch, 56, batch.size()));
  SealBatch(batch.data(), 0, 1);
  BatchHeader h;
  std::string why;
  ASSERT_TRUE(ParseBatchHeader(batch.data(), &h, &why)) << why;
  EXPECT_FALSE(CheckBatchBody(batch.data(), h, &why));
  EXPECT_NE(why.find("name index 1"), std::string::npos) << why;
}

// Bit 6 (compacted batches of records whose offsets are not consecutive): the kept count and the
// offsets' deltas before the name table and the records; record_count the span they cover, so
// the batch's end is known from its header.
std::string EncodeSparse(const std::vector<Record>& records, const std::vector<int64_t>& offsets) {
  size_t n = 0;
  BatchNumbers numbers;
  EXPECT_TRUE(MeasureBatch(records, &n, &numbers, offsets).ok());
  std::string buf(n, '\xff');
  EncodeBatch(records, numbers, buf.data(), offsets);
  PutU16(buf.data() + kAttributesAt, static_cast<uint16_t>(GetU16(buf.data() + kAttributesAt) | kAttrCompacted));
  SealBatch(buf.data(), offsets.front(), 5);
  return buf;
}

TEST(BatchFormat, OffsetsLayoutIsAsDocumented) {
  std::vector<NumberField> a = {{"t", 1.5}};
  std::vector<Record> records = {{10, "1", "a", true, a}, {20, "2", "bb", true, a}, {30, "3", "c", true, a}};
  std::string b = EncodeSparse(records, {100, 103, 109});
  EXPECT_EQ(GetU16(b.data() + kAttributesAt), kAttrNumbers | kAttrCompacted | kAttrOffsets);
  EXPECT_EQ(GetI64(b.data() + kBaseOffsetAt), 100);
  EXPECT_EQ(GetU32(b.data() + kRecordCountAt), 10u) << "the span, 100 to 109";
  EXPECT_EQ(GetU32(b.data() + 56), 3u);  // kept
  EXPECT_EQ(GetU32(b.data() + 60), 0u);
  EXPECT_EQ(GetU32(b.data() + 64), 3u);
  EXPECT_EQ(GetU32(b.data() + 68), 9u);
  EXPECT_EQ(GetU16(b.data() + 72), 1u);  // then the name table
  EXPECT_EQ(b.size(), 56 + 4 + 12 + (2 + 2) + 3 * (15 + 10) + (2 + 3 + 2));
  BatchHeader h;
  std::string why;
  ASSERT_TRUE(ParseBatchHeader(b.data(), &h, &why)) << why;
  ASSERT_TRUE(CheckBatchBody(b.data(), h, &why)) << why;
  std::vector<std::string> got;
  ForEachRecordAt(b.data(), h, [&](int64_t offset, int64_t ts, std::string_view key, std::string_view value,
                                   const RecordNumbers& n) {
    std::vector<NumberField> numbers;
    n.Decode(&numbers);
    got.push_back(std::to_string(offset) + " " + std::to_string(ts) + " " + std::string(key) + " " +
                  std::string(value) + " " + std::string(numbers.at(0).name));
  });
  EXPECT_EQ(got, (std::vector<std::string>{"100 10 1 a t", "103 20 2 bb t", "109 30 3 c t"}));
  // Compressed, the table is inside the frame and reads back the same.
  std::string packed = b;
  size_t n = CompressBatch(packed.data(), Compression::kZstd);
  packed.resize(n);
  SealBatch(packed.data(), 100, 5);
  BatchHeader ph;
  ASSERT_TRUE(ParseBatchHeader(packed.data(), &ph, &why)) << why;
  std::string scratch;
  const char* plain = nullptr;
  BatchHeader plain_h;
  if (ph.attributes & kAttrCodecMask) {
    ASSERT_TRUE(PlainBatch(packed.data(), ph, false, &scratch, &plain, &plain_h, &why)) << why;
    EXPECT_EQ(std::string(plain + 56, b.size() - 56), b.substr(56));
  }
}

TEST(BatchFormat, AnOffsetTableThatDoesNotFitItsSpanIsCorruption) {
  std::vector<Record> records = {{1, "a", "x"}, {2, "b", "y"}};
  struct Case {
    size_t at;  // a u32 of the table
    uint32_t value;
    const char* what;
  };
  for (const Case& c : {Case{60, 1, "first not at the base"}, Case{64, 0, "not increasing"},
                        Case{64, 7, "last not at the span's end"}, Case{56, 3, "more records than the table"}}) {
    std::string b = EncodeSparse(records, {50, 54});
    PutU32(b.data() + c.at, c.value);
    PutU32(b.data() + kBodyCrcAt, Crc(b, 56, b.size()));
    SealBatch(b.data(), 50, 5);
    BatchHeader h;
    std::string why;
    ASSERT_TRUE(ParseBatchHeader(b.data(), &h, &why)) << why;
    EXPECT_FALSE(CheckBatchBody(b.data(), h, &why)) << c.what;
  }
  // Bit 6 is only for compacted batches (bit 4).
  std::string b = EncodeSparse(records, {50, 54});
  PutU16(b.data() + kAttributesAt, static_cast<uint16_t>(GetU16(b.data() + kAttributesAt) & ~kAttrCompacted));
  SealBatch(b.data(), 50, 5);
  BatchHeader h;
  std::string why;
  EXPECT_FALSE(ParseBatchHeader(b.data(), &h, &why));
  size_t n;
  BatchNumbers numbers;
  std::vector<int64_t> backwards = {5, 4};
  EXPECT_FALSE(MeasureBatch(records, &n, &numbers, backwards).ok());
}

TEST(BatchFormat, EveryHeaderByteIsCoveredByTheHeaderChecksum) {
  std::string b = Encode({{1, "k", "v"}}, 0, 1);
  for (size_t i = 0; i < kBatchHeaderSize; ++i) {
    std::string damaged = b;
    damaged[i] ^= 0x10;
    BatchHeader h;
    std::string why;
    EXPECT_FALSE(ParseBatchHeader(damaged.data(), &h, &why)) << "byte " << i;
    EXPECT_FALSE(why.empty());
  }
}

TEST(BatchFormat, EveryBodyByteIsCoveredByTheBodyChecksum) {
  std::string b = Encode({{1, "key", "value"}, {2, "", "x"}}, 0, 1);
  for (size_t i = kBatchHeaderSize; i < b.size(); ++i) {
    std::string damaged = b;
    damaged[i] ^= 0x01;
    BatchHeader h;
    std::string why;
    ASSERT_TRUE(ParseBatchHeader(damaged.data(), &h, &why));
    EXPECT_FALSE(CheckBatchBody(damaged.data(), h, &why)) << "byte " << i;
  }
}

TEST(BatchFormat, RejectsWhatCannotBeEncoded) {
  size_t n;
  BatchNumbers numbers;
  EXPECT_FALSE(MeasureBatch({}, &n, &numbers).ok());
  std::string long_key(kMaxKeyBytes + 1, 'k');
  std::vector<Record> r = {{0, long_key, "v"}};
  EXPECT_FALSE(MeasureBatch(r, &n, &numbers).ok());
}

TEST(SegmentNames, AreTwentyDigitBaseOffsets) {
  EXPECT_EQ(SegmentFileName(0), "00000000000000000000.log");
  EXPECT_EQ(SegmentFileName(1234567), "00000000000001234567.log");
  int64_t base = -1;
  EXPECT_TRUE(ParseSegmentFileName("00000000000001234567.log", &base));
  EXPECT_EQ(base, 1234567);
  EXPECT_FALSE(ParseSegmentFileName("1234567.log", &base));
  EXPECT_FALSE(ParseSegmentFileName("00000000000001234567.tmp", &base));
}

TEST(MetaFiles, TopicMetaAndOffsetsRoundTrip) {
  TopicConfig c{.name = "raw", .partitions = 8, .retention_us = 3'600'000'000, .retention_bytes = 1 << 30};
  auto parsed = ParseTopicMeta(EncodeTopicMeta(c), "raw");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->partitions, 8);
  EXPECT_EQ(parsed->retention_us, 3'600'000'000);
  EXPECT_EQ(parsed->retention_bytes, 1 << 30);
  EXPECT_TRUE(ParseTopicMeta("format = 1\npartitions = x\n", "raw").status().IsCorruption());
  EXPECT_EQ(parsed->partitioner, Partitioner::kMurmur2);  // what a new topic gets
  // Format 1, from before the partitioner was recorded: sensor_id mod partitions, written back so.
  c.partitioner = Partitioner::kModulo;
  std::string old = EncodeTopicMeta(c);
  EXPECT_NE(old.find("format = 1\n"), std::string::npos);
  EXPECT_EQ(old.find("partitioner"), std::string::npos);
  EXPECT_EQ(ParseTopicMeta(old, "raw")->partitioner, Partitioner::kModulo);
  EXPECT_NE(EncodeTopicMeta({.name = "raw"}).find("format = 2\n"), std::string::npos);
  EXPECT_TRUE(ParseTopicMeta("format = 2\npartitions = 4\nretention_us = 0\nretention_bytes = 0\n", "raw")
                  .status().IsCorruption());  // format 2 names its partitioner
  EXPECT_TRUE(ParseTopicMeta("format = 2\npartitions = 4\nretention_us = 0\nretention_bytes = 0\npartitioner = 7\n", "raw")
                  .status().IsCorruption());

  std::map<int32_t, int64_t> offsets = {{0, 17}, {3, 0}, {11, 123456789012}};
  auto back = ParseOffsets(EncodeOffsets(offsets));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, offsets);
  EXPECT_TRUE(ParseOffsets("0 = 1\n").status().IsCorruption());  // no format line
}

// A segment file on disk for the scanner.
class ScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_ + "/" + SegmentFileName(0);
    for (int i = 0; i < 3; ++i) {
      std::string value = "value" + std::to_string(i);  // outlives the records that view it
      std::vector<Record> records = {{i, "k", value}, {i, "k", "more"}};
      std::string b = Encode(records, i * 2, 1000 + i);
      batch_starts_.push_back(static_cast<int64_t>(contents_.size()));
      contents_ += b;
    }
  }

  SegmentScan Scan(const std::string& bytes, bool verify = true) {
    int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    SegmentScan scan;
    std::string buffer;
    EXPECT_TRUE(ScanSegment(fd, verify, &scan, &buffer).ok());
    ::close(fd);
    return scan;
  }

  ScratchDir scratch_{"mare-format-test"};
  const std::string dir_ = scratch_.path();
  std::string path_, contents_;
  std::vector<int64_t> batch_starts_;
};

// Only compaction's batches (attribute bit 4) may start past the previous batch's end.
TEST_F(ScanTest, AnOffsetGapIsCorruptionUnlessTheBatchIsCompacted) {
  std::vector<Record> records = {{7, "k", "late"}};
  std::string gap = Encode(records, 100, 2000);  // the segment's batches end at offset 6
  SegmentScan plain = Scan(contents_ + gap);
  EXPECT_EQ(plain.tail, SegmentScan::Tail::kCorrupt);
  EXPECT_NE(plain.why.find("expected 6"), std::string::npos) << plain.why;

  PutU16(gap.data() + kAttributesAt, kAttrCompacted);
  SealBatch(gap.data(), 100, 2000);
  SegmentScan compacted = Scan(contents_ + gap);
  EXPECT_EQ(compacted.tail, SegmentScan::Tail::kClean) << compacted.why;
  EXPECT_EQ(compacted.next_offset, 101);
  ASSERT_EQ(compacted.index.size(), 4u);
  EXPECT_EQ(compacted.index[3].offset, 100);
  EXPECT_EQ(compacted.index[3].end_offset, 101);
  EXPECT_EQ(compacted.index[2].end_offset, 6);

  SealBatch(gap.data(), 5, 2000);  // compacted, but overlapping the batch before
  EXPECT_EQ(Scan(contents_ + gap).tail, SegmentScan::Tail::kCorrupt);
  PutU16(gap.data() + kAttributesAt, 0x0020);  // a bit no mare knows
  SealBatch(gap.data(), 100, 2000);
  EXPECT_EQ(Scan(contents_ + gap).tail, SegmentScan::Tail::kCorrupt);
}

TEST(MetaFiles, CompactIsWrittenOnlyForCompactedTopics) {
  TopicConfig plain{.name = "raw", .partitions = 2};
  EXPECT_EQ(EncodeTopicMeta(plain).find("compact"), std::string::npos);
  TopicConfig compacted{.name = "rollups", .partitions = 2, .compact = true};
  std::string text = EncodeTopicMeta(compacted);
  EXPECT_NE(text.find("\ncompact = 1\n"), std::string::npos) << text;
  auto parsed = ParseTopicMeta(text, "rollups");
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->compact);
  EXPECT_FALSE(ParseTopicMeta(EncodeTopicMeta(plain), "raw")->compact);
  EXPECT_FALSE(ParseTopicMeta(text + "compact = 2\n", "rollups").ok());
}

TEST_F(ScanTest, CleanSegmentIndexesEveryBatch) {
  SegmentScan s = Scan(contents_);
  EXPECT_EQ(s.tail, SegmentScan::Tail::kClean);
  EXPECT_EQ(s.valid_bytes, static_cast<int64_t>(contents_.size()));
  EXPECT_EQ(s.next_offset, 6);
  ASSERT_EQ(s.index.size(), 3u);
  EXPECT_EQ(s.index[2].offset, 4);
  EXPECT_EQ(s.index[2].position, batch_starts_[2]);
  EXPECT_EQ(s.first_append_us, 1000);
  EXPECT_EQ(s.last_append_us, 1002);
}

TEST_F(ScanTest, FileEndingInsideTheLastBatchIsATornTail) {
  for (size_t cut = 1; cut < contents_.size() - static_cast<size_t>(batch_starts_[2]); ++cut) {
    SegmentScan s = Scan(contents_.substr(0, contents_.size() - cut));
    EXPECT_EQ(s.tail, SegmentScan::Tail::kTorn) << "cut " << cut;
    EXPECT_EQ(s.valid_bytes, batch_starts_[2]);
    EXPECT_EQ(s.next_offset, 4);
  }
}

TEST_F(ScanTest, ZeroBytesAfterTheLastBatchAreATornTail) {
  SegmentScan s = Scan(contents_ + std::string(8192, '\0'));
  EXPECT_EQ(s.tail, SegmentScan::Tail::kTorn);
  EXPECT_EQ(s.valid_bytes, static_cast<int64_t>(contents_.size()));
}

TEST_F(ScanTest, DamagedCompleteBatchIsCorruption) {
  std::string damaged = contents_;
  damaged[static_cast<size_t>(batch_starts_[1]) + 60] ^= 0x04;  // a payload byte of batch 1
  SegmentScan s = Scan(damaged);
  EXPECT_EQ(s.tail, SegmentScan::Tail::kCorrupt);
  EXPECT_EQ(s.valid_bytes, batch_starts_[1]);
  EXPECT_NE(s.why.find("checksum"), std::string::npos) << s.why;

  // Reading headers only does not see a payload flip; it does see a damaged header.
  EXPECT_EQ(Scan(damaged, /*verify=*/false).tail, SegmentScan::Tail::kClean);
  damaged = contents_;
  damaged[static_cast<size_t>(batch_starts_[1]) + 4] ^= 0x01;  // its length field
  s = Scan(damaged, /*verify=*/false);
  EXPECT_EQ(s.tail, SegmentScan::Tail::kCorrupt);
  EXPECT_EQ(s.valid_bytes, batch_starts_[1]);
}

}  // namespace
// The scan reads the file a window (256 KiB) at a time: batches across a window's edge, batches
// larger than a window and small batches after them are indexed and checked as one at a time.
TEST_F(ScanTest, BatchesAcrossReadWindowsAreAllIndexedAndChecked) {
  std::string bytes;
  std::vector<int64_t> starts;
  int64_t offset = 0;
  std::string big(600 << 10, 'b');
  auto add = [&](const std::string& value) {
    std::vector<Record> records = {{offset, "k", value}};
    starts.push_back(static_cast<int64_t>(bytes.size()));
    bytes += Encode(records, offset, 1000 + offset);
    ++offset;
  };
  for (int i = 0; i < 4000; ++i) add("small value " + std::to_string(i));
  add(big);
  for (int i = 0; i < 10; ++i) add("after " + std::to_string(i));
  add(big);
  add(big);
  for (int i = 0; i < 3000; ++i) add("tail " + std::to_string(i));
  for (bool verify : {true, false}) {
    SegmentScan s = Scan(bytes, verify);
    EXPECT_EQ(s.tail, SegmentScan::Tail::kClean) << s.why;
    EXPECT_EQ(s.valid_bytes, static_cast<int64_t>(bytes.size()));
    ASSERT_EQ(s.index.size(), starts.size());
    for (size_t i = 0; i < starts.size(); ++i) ASSERT_EQ(s.index[i].position, starts[i]) << i;
    EXPECT_EQ(s.next_offset, offset);
  }

  // The batch that straddles the first window's end, and the one right after a big batch.
  size_t straddling = 0;
  while (starts[straddling + 1] <= 256 << 10) ++straddling;
  ASSERT_LT(starts[straddling], 256 << 10);
  for (size_t damaged_batch : {straddling, size_t{4001}, starts.size() - 1}) {
    std::string damaged = bytes;
    damaged[static_cast<size_t>(starts[damaged_batch]) + kBatchHeaderSize + 16] ^= 0x08;  // its value
    SegmentScan s = Scan(damaged);
    EXPECT_EQ(s.tail, SegmentScan::Tail::kCorrupt) << damaged_batch;
    EXPECT_EQ(s.valid_bytes, starts[damaged_batch]);
    EXPECT_EQ(Scan(damaged, /*verify=*/false).tail, SegmentScan::Tail::kClean);
    damaged = bytes;
    damaged[static_cast<size_t>(starts[damaged_batch]) + kRecordCountAt] ^= 0x01;  // its header
    for (bool verify : {true, false}) {
      s = Scan(damaged, verify);
      EXPECT_EQ(s.tail, SegmentScan::Tail::kCorrupt) << damaged_batch;
      EXPECT_EQ(s.valid_bytes, starts[damaged_batch]);
    }
  }

  // Cut inside the second big batch: a torn tail at its start.
  for (bool verify : {true, false}) {
    SegmentScan s = Scan(bytes.substr(0, static_cast<size_t>(starts[4011]) + 300'000), verify);
    EXPECT_EQ(s.tail, SegmentScan::Tail::kTorn);
    EXPECT_EQ(s.valid_bytes, starts[4011]);
    EXPECT_EQ(s.index.size(), 4011u);
  }
}

}  // namespace mare::log::format
