// Compressed batches (docs/formats/log.md, "Compressed batches"): the layout, damaged frames
// refused with a clear error rather than misread, and a compressed topic through the embedded
// log's appends, groups, consumers, reopening and compaction.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/scratch_dir.h"
#include "log/embedded_log.h"
#include "log/format.h"
#include "log/log_metrics.h"

namespace mare::log {
namespace {

using namespace std::chrono_literals;
using namespace format;
namespace fs = std::filesystem;

uint32_t ZCrc(const char* p, size_t n) {
  return static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef*>(p), n));
}

// Rollup-like messages: JSON that repeats its keys, as the rollups topic's do.
std::vector<std::string> RollupValues(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(R"({"sensor_id":)" + std::to_string(i) +
                  R"(,"field":"temperature","resolution":"1m","window_start":"2024-01-21T10:00:00.000000Z","count":)" +
                  std::to_string(i % 7) + R"(,"min":12.1,"max":14.9,"revision":)" + std::to_string(i) + "}");
  }
  return out;
}

std::string EncodeWith(const std::vector<Record>& records, Compression codec, bool group = false) {
  size_t n = 0;
  BatchNumbers numbers;
  EXPECT_TRUE(MeasureBatch(records, &n, &numbers).ok());
  std::string b(n + kGroupTrailerSize, '\xff');
  EncodeBatch(records, numbers, b.data());
  n = CompressBatch(b.data(), codec);
  if (group) {
    AddGroupTrailer(b.data(), {.id = 99, .last_partition = 2, .last_offset = 5});
    n += kGroupTrailerSize;
  }
  SealBatch(b.data(), 100, 7);
  b.resize(n);
  return b;
}

// The records as ForEachRecord gives them, "key value n1=v1 ...".
std::vector<std::string> ReadRecords(const std::string& stored) {
  BatchHeader h;
  std::string why;
  EXPECT_TRUE(ParseBatchHeader(stored.data(), &h, &why)) << why;
  std::string scratch;
  const char* batch = nullptr;
  BatchHeader plain;
  EXPECT_TRUE(PlainBatch(stored.data(), h, false, &scratch, &batch, &plain, &why)) << why;
  std::vector<std::string> out;
  if (!batch) return out;
  ForEachRecord(batch, plain, [&](int64_t ts, std::string_view key, std::string_view value, const RecordNumbers& n) {
    std::vector<NumberField> numbers;
    n.Decode(&numbers);
    std::string s = std::to_string(ts) + " " + std::string(key) + " " + std::string(value);
    for (const auto& f : numbers) s += " " + std::string(f.name) + "=" + std::to_string(f.value);
    out.push_back(s);
  });
  return out;
}

// Rewrites the body checksum and then the header checksum, so that damage done to a body
// reaches the decoder instead of failing the checksum.
void Reseal(std::string* b) {
  PutU32(b->data() + kBodyCrcAt, ZCrc(b->data() + kBatchHeaderSize, b->size() - kBatchHeaderSize));
  PutU32(b->data() + kHeaderCrcAt, ZCrc(b->data(), kHeaderCrcAt));
}

TEST(CompressedBatch, IsOneZstdFrameOfTheUncompressedBodyWithTheCodecInBits0To2) {
  std::vector<std::string> values = RollupValues(50);
  std::vector<NumberField> nums = {{"min", 12.1}, {"max", 14.9}};
  for (bool group : {false, true}) {
    for (bool numbers : {false, true}) {
      SCOPED_TRACE(testing::Message() << "group " << group << " numbers " << numbers);
      std::vector<Record> records;
      for (int i = 0; i < 50; ++i) records.push_back({1000 + i, "key", values[static_cast<size_t>(i)], numbers, nums});
      std::string plain = EncodeWith(records, Compression::kNone, group);
      std::string packed = EncodeWith(records, Compression::kZstd, group);
      EXPECT_EQ(GetU16(plain.data() + kAttributesAt) & kAttrCodecMask, 0u);
      EXPECT_EQ(GetU16(packed.data() + kAttributesAt) & kAttrCodecMask, 1u);
      // The other attribute bits, the counts and times are those of the uncompressed batch.
      EXPECT_EQ(GetU16(packed.data() + kAttributesAt) & ~kAttrCodecMask, GetU16(plain.data() + kAttributesAt));
      EXPECT_EQ(std::string(packed.data() + 24, 20), std::string(plain.data() + 24, 20));
      EXPECT_EQ(GetU32(packed.data() + kLengthAt), packed.size());
      EXPECT_LT(packed.size() * 4, plain.size()) << packed.size() << " of " << plain.size();
      EXPECT_EQ(GetU32(packed.data() + kBodyCrcAt), ZCrc(packed.data() + 56, packed.size() - 56));  // the stored bytes
      // The frame, decompressed with zstd alone, is the uncompressed body; a trailer follows it as is.
      const size_t trailer = group ? kGroupTrailerSize : 0;
      std::string body(plain.size() - 56 - trailer, '\0');
      size_t got = ZSTD_decompress(body.data(), body.size(), packed.data() + 56, packed.size() - 56 - trailer);
      ASSERT_FALSE(ZSTD_isError(got)) << ZSTD_getErrorName(got);
      EXPECT_EQ(got, body.size());
      EXPECT_EQ(body, plain.substr(56, body.size()));
      EXPECT_EQ(ZSTD_getFrameContentSize(packed.data() + 56, packed.size() - 56 - trailer), body.size());
      if (group) {
        EXPECT_EQ(packed.substr(packed.size() - trailer), plain.substr(plain.size() - trailer));
      }
      EXPECT_EQ(ReadRecords(packed), ReadRecords(plain));
      EXPECT_EQ(ReadRecords(packed).size(), 50u);
    }
  }
}

TEST(CompressedBatch, StaysUncompressedWhenZstdWouldNotSaveAByte) {
  std::vector<Record> records = {{1, "k", "x"}};
  std::string b = EncodeWith(records, Compression::kZstd);
  EXPECT_EQ(GetU16(b.data() + kAttributesAt) & kAttrCodecMask, 0u);
  EXPECT_EQ(b.size(), 56u + 14 + 2);
}

TEST(CompressedBatch, DamageInsideTheFrameIsAClearErrorNotACrash) {
  std::vector<std::string> values = RollupValues(40);
  std::vector<Record> records;
  for (const auto& v : values) records.push_back({5, "key", v});
  const std::string good = EncodeWith(records, Compression::kZstd);
  const size_t frame = good.size() - 56;
  auto why_refused = [](const std::string& b) {
    BatchHeader h;
    std::string why;
    if (!ParseBatchHeader(b.data(), &h, &why)) return "header: " + why;
    if (b.size() < h.length) return std::string("short");
    std::string scratch;
    const char* plain = nullptr;
    BatchHeader ph;
    EXPECT_EQ(CheckBatchBody(b.data(), h, &why), PlainBatch(b.data(), h, false, &scratch, &plain, &ph, &why));
    std::string why2;
    return CheckBatchBody(b.data(), h, &why2) ? std::string() : why2;
  };
  ASSERT_EQ(why_refused(good), "");

  // Every byte of the frame flipped in turn, the checksums fixed up: refused or, if zstd's
  // format lets the flip through, records that still fill the batch; never a crash.
  int refused = 0;
  for (size_t i = 56; i < good.size(); ++i) {
    std::string b = good;
    b[i] = static_cast<char>(b[i] ^ 0x5a);
    Reseal(&b);
    std::string why = why_refused(b);
    if (!why.empty()) {
      ++refused;
      EXPECT_EQ(why.rfind("compressed batch: ", 0), 0u) << why;
    }
  }
  EXPECT_GT(refused, static_cast<int>(frame) / 2);

  // The frame cut short (length and checksums consistent): refused.
  std::string cut = good.substr(0, good.size() - 10);
  PutU32(cut.data() + kLengthAt, static_cast<uint32_t>(cut.size()));
  Reseal(&cut);
  EXPECT_NE(why_refused(cut).find("compressed batch"), std::string::npos) << why_refused(cut);

  // Not a zstd frame at all.
  std::string garbage = good;
  for (size_t i = 56; i < garbage.size(); ++i) garbage[i] = 'x';
  Reseal(&garbage);
  EXPECT_EQ(why_refused(garbage), "compressed batch: not a zstd frame");

  // A frame whose records do not fill what it decompresses to: one record more than it holds.
  std::string more = good;
  PutU32(more.data() + kRecordCountAt, static_cast<uint32_t>(records.size() + 1));
  Reseal(&more);
  EXPECT_NE(why_refused(more).find("compressed batch: record 40 overruns the batch"), std::string::npos)
      << why_refused(more);

  // A codec this mare does not know: refused by the header, naming it.
  std::string unknown = good;
  PutU16(unknown.data() + kAttributesAt, static_cast<uint16_t>((GetU16(unknown.data() + kAttributesAt) & ~7) | 2));
  Reseal(&unknown);
  EXPECT_NE(why_refused(unknown).find("unknown codec 2"), std::string::npos) << why_refused(unknown);

  // The body checksum still guards the frame first.
  std::string flipped = good;
  flipped[60] = static_cast<char>(flipped[60] ^ 1);
  EXPECT_NE(why_refused(flipped).find("batch checksum mismatch"), std::string::npos);
}

TEST(CompressedBatch, TopicMetaRecordsTheCodecOnlyWhenSet) {
  EXPECT_EQ(EncodeTopicMeta({.name = "raw"}).find("compression"), std::string::npos);
  std::string meta = EncodeTopicMeta({.name = "rollups", .compression = Compression::kZstd});
  EXPECT_NE(meta.find("\ncompression = 1\n"), std::string::npos) << meta;
  auto parsed = ParseTopicMeta(meta, "rollups");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->compression, Compression::kZstd);
  EXPECT_EQ(ParseTopicMeta(EncodeTopicMeta({.name = "raw"}), "raw")->compression, Compression::kNone);
  auto unknown = ParseTopicMeta(meta + "compression = 3\n", "rollups");
  ASSERT_TRUE(unknown.status().IsCorruption());
  EXPECT_NE(unknown.status().message().find("unknown compression codec 3"), std::string::npos);
}

class CompressedTopicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.dir = dir_;
    options_.metrics = &registry_;
    options_.segment_bytes = 4096;
    options_.retention_check_interval_us = 3'600'000'000;  // the tests call Maintain
  }
  std::unique_ptr<Log> Open() {
    auto log = OpenEmbeddedLog(options_);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return log ? std::move(*log) : nullptr;
  }
  // Rounds of every key k0..k19 with its round in the value, 10 records a batch.
  void Write(Log& log, const std::string& topic, int rounds) {
    for (int r = 0; r < rounds; ++r) {
      for (int k = 0; k < 20; k += 10) {
        std::vector<std::string> keys, values;
        for (int i = k; i < k + 10; ++i) {
          keys.push_back("k" + std::to_string(i));
          values.push_back(RollupValues(1)[0] + "@" + std::to_string(r));
        }
        std::vector<Record> records;
        for (size_t i = 0; i < keys.size(); ++i) records.push_back({r, keys[i], values[i]});
        ASSERT_TRUE(log.Append(topic, 0, records, nullptr).ok());
      }
    }
  }
  static std::vector<std::string> Drain(Log& log, const std::string& topic, const std::string& group) {
    auto c = log.Subscribe(group, topic);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    std::vector<std::string> out;
    std::vector<ConsumedRecord> batch;
    for (;;) {
      Status s = (*c)->Poll(&batch, 7, 0ms);  // small polls: views of several batches at once
      EXPECT_TRUE(s.ok()) << s.ToString();
      if (!s.ok() || batch.empty()) return out;
      for (const auto& r : batch) out.push_back(std::to_string(r.offset) + " " + std::string(r.key) + " " + std::string(r.value));
    }
  }
  int64_t Bytes(Log& log, const std::string& topic) { return (*log.Describe(topic))[0].bytes; }

  ScratchDir scratch_{"mare-compression-test"};
  const std::string dir_ = scratch_.path();
  metrics::Registry registry_;
  EmbeddedLogOptions options_;
};

TEST_F(CompressedTopicTest, ReadsBackAsTheUncompressedTopicInAFractionOfTheBytes) {
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "plain", .partitions = 1}).ok());
  ASSERT_TRUE(log->CreateTopic({.name = "packed", .partitions = 1, .compression = Compression::kZstd}).ok());
  Write(*log, "plain", 30);
  Write(*log, "packed", 30);
  auto plain = Drain(*log, "plain", "g");
  EXPECT_EQ(plain.size(), 600u);
  EXPECT_EQ(Drain(*log, "packed", "g"), plain);
  EXPECT_LT(Bytes(*log, "packed") * 3, Bytes(*log, "plain")) << Bytes(*log, "packed") << " " << Bytes(*log, "plain");

  // A creator that does not name a codec leaves it; one that does changes new batches only.
  ASSERT_TRUE(log->CreateTopic({.name = "packed", .partitions = 1}).ok());
  log.reset();
  log = Open();
  EXPECT_EQ(Drain(*log, "packed", "h"), plain);
  int64_t before = Bytes(*log, "packed");
  Write(*log, "packed", 1);
  EXPECT_LT(Bytes(*log, "packed") - before, (Bytes(*log, "plain") / 30) / 3) << "still compressed after reopening";
  ASSERT_TRUE(log->CreateTopic({.name = "packed", .partitions = 1, .compression = Compression::kNone}).ok());
  before = Bytes(*log, "packed");
  Write(*log, "packed", 1);
  EXPECT_GT(Bytes(*log, "packed") - before, (Bytes(*log, "plain") / 30) / 2) << "uncompressed once set so";
  EXPECT_EQ(Drain(*log, "packed", "i").size(), 640u);
  std::ifstream meta(dir_ + "/topics/packed/topic.toml");
  std::stringstream text;
  text << meta.rdbuf();
  EXPECT_EQ(text.str().find("compression"), std::string::npos) << text.str();
}

// mare_log_bytes_appended_total counts the bytes as stored, compressed; the uncompressed
// counter what the same batches would take uncompressed (what a compacted topic's size is
// judged against in bench/longrun.py), groups' trailers included.
TEST_F(CompressedTopicTest, CountsBytesAppendedAsStoredAndBeforeCompression) {
  options_.segment_bytes = 64 << 20;
  auto log = Open();
  for (const char* name : {"plain", "packed"}) {
    ASSERT_TRUE(log->CreateTopic({.name = name, .partitions = 2,
                                  .compression = name == std::string("plain") ? Compression::kNone : Compression::kZstd})
                    .ok());
    Write(*log, name, 30);
    std::vector<std::string> values = RollupValues(20);
    const std::vector<std::string> keys = {"s0", "s1"};
    std::vector<std::vector<Record>> records(2);
    for (size_t i = 0; i < values.size(); ++i) records[i % 2].push_back({1, keys[i % 2], values[i]});
    std::vector<PartitionRecords> parts = {{0, records[0]}, {1, records[1]}};
    std::vector<Status> results;
    ASSERT_TRUE(log->AppendTogether(name, parts, &results).ok());
  }
  auto stored = [&](const char* topic) {
    return registry_.GetCounter(log_metrics::kBytesAppended, {{"topic", topic}}).value();
  };
  auto uncompressed = [&](const char* topic) {
    return registry_.GetCounter(log_metrics::kUncompressedBytesAppended, {{"topic", topic}}).value();
  };
  auto on_disk = [&](const char* topic) {
    uint64_t bytes = 0;
    auto infos = log->Describe(topic);
    EXPECT_TRUE(infos.ok());
    for (const auto& p : *infos) bytes += static_cast<uint64_t>(p.bytes);
    return bytes;
  };
  EXPECT_EQ(stored("plain"), on_disk("plain"));
  EXPECT_EQ(uncompressed("plain"), stored("plain"));
  EXPECT_EQ(stored("packed"), on_disk("packed"));
  EXPECT_EQ(uncompressed("packed"), stored("plain")) << "the same records, as they would be stored uncompressed";
  EXPECT_LT(stored("packed") * 2, uncompressed("packed"));
}

// A Poll's decompressed bytes are bounded per partition as its stored bytes are (4 MiB, and
// at least one batch): 64 batches of 256 KiB of values that zstd shrinks to almost nothing are
// one pread, but not one Poll; every record still arrives, once and in order.
TEST_F(CompressedTopicTest, APollDecompressesAtMostItsShareOfBytes) {
  options_.segment_bytes = 64 << 20;
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "packed", .partitions = 1, .compression = Compression::kZstd}).ok());
  const std::string value(1024, 'x');
  for (int b = 0; b < 64; ++b) {
    std::vector<Record> records;
    for (int i = 0; i < 256; ++i) records.push_back({b, "k", value});
    ASSERT_TRUE(log->Append("packed", 0, records, nullptr).ok());
  }
  EXPECT_LT(Bytes(*log, "packed"), 1 << 20) << "the batches compress: one read covers them all";
  auto c = log->Subscribe("g", "packed");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::vector<ConsumedRecord> batch;
  int64_t next = 0;
  size_t polls = 0;
  for (;; ++polls) {
    ASSERT_TRUE((*c)->Poll(&batch, 1'000'000, 0ms).ok());
    if (batch.empty()) break;
    EXPECT_LE(batch.size(), 4u * 1024 + 256) << "at most 4 MiB of records, and the batch that crossed it";
    for (const auto& r : batch) {
      ASSERT_EQ(r.offset, next);
      ASSERT_EQ(r.value, value);
      ++next;
    }
  }
  EXPECT_EQ(next, 64 * 256);
  EXPECT_GE(polls, 4u);
}

// A Poll that stops inside a compressed batch (max_records) leaves it decompressed for the
// next, which reads the rest of it from there: every record arrives once, in order, with its
// value and numbers, whatever the Poll size, over several partitions, a Seek back into a batch
// and batches that interleave with other partitions' in the Polls.
TEST_F(CompressedTopicTest, PollsThatStopInsideACompressedBatchReadTheRestRight) {
  options_.segment_bytes = 64 << 20;
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "packed", .partitions = 3, .compression = Compression::kZstd}).ok());
  std::vector<std::string> values = RollupValues(40);
  const std::vector<std::string> keys = {"a", "b", "c"};
  std::map<std::pair<int32_t, int64_t>, std::string> expected;  // (partition, offset) -> "key value n"
  for (int b = 0; b < 6; ++b) {
    for (int32_t p = 0; p < 3; ++p) {
      std::vector<std::vector<NumberField>> nums;
      std::vector<Record> records;
      for (int i = 0; i < 40; ++i) nums.push_back({{"min", b * 100.0 + i}, {"p", double(p)}});
      for (int i = 0; i < 40; ++i) {
        records.push_back({b, keys[static_cast<size_t>(p)], values[static_cast<size_t>(i)], true,
                           nums[static_cast<size_t>(i)]});
      }
      int64_t first = 0;
      ASSERT_TRUE(log->Append("packed", p, records, &first).ok());
      for (int i = 0; i < 40; ++i) {
        expected[{p, first + i}] = keys[static_cast<size_t>(p)] + " " + values[static_cast<size_t>(i)] + " " +
                                   std::to_string(b * 100.0 + i) + " " + std::to_string(double(p));
      }
    }
  }
  auto text = [](const ConsumedRecord& r) {
    std::string s = std::string(r.key) + " " + std::string(r.value);
    for (const auto& n : r.numbers) s += " " + std::to_string(n.value);
    return s;
  };
  for (size_t max : {1u, 7u, 39u, 41u, 100u}) {
    SCOPED_TRACE(testing::Message() << "max_records " << max);
    auto c = log->Subscribe("g" + std::to_string(max), "packed");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    std::map<int32_t, int64_t> next;
    std::vector<ConsumedRecord> batch;
    size_t got = 0;
    bool sought = false;
    for (;;) {
      ASSERT_TRUE((*c)->Poll(&batch, max, 0ms).ok());
      if (batch.empty()) break;
      EXPECT_LE(batch.size(), max);
      for (const auto& r : batch) {  // each Poll's views checked before the next Poll
        ASSERT_EQ(r.offset, next[r.partition]) << r.partition;
        ASSERT_EQ(text(r), expected[std::make_pair(r.partition, r.offset)]) << r.partition << " " << r.offset;
        next[r.partition] = r.offset + 1;
        ++got;
      }
      if (!sought && next[1] > 100) {  // back into the middle of partition 1's second batch
        sought = true;
        ASSERT_TRUE((*c)->Seek(1, 45).ok());
        got -= static_cast<size_t>(next[1] - 45);
        next[1] = 45;
      }
    }
    EXPECT_TRUE(sought);
    EXPECT_EQ(got, expected.size());
  }
}

// The batch a Poll stopped inside is not decompressed again for the next: its frame damaged on
// disk after the first Poll (header and checksums unchanged, as the bytes a process checked
// once are not checked again) does not reach the second, which reads the rest from the copy;
// a consumer that reads the batch afresh decompresses the damaged frame and fails.
TEST_F(CompressedTopicTest, TheNextPollTakesTheRestOfTheBatchItStoppedInsideWithoutDecompressingIt) {
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "packed", .partitions = 1, .compression = Compression::kZstd}).ok());
  std::vector<std::string> values = RollupValues(50);
  std::vector<Record> records;
  for (const auto& v : values) records.push_back({1, "k", v});
  ASSERT_TRUE(log->Append("packed", 0, records, nullptr).ok());
  auto c = log->Subscribe("g", "packed");
  ASSERT_TRUE(c.ok());
  std::vector<ConsumedRecord> batch;
  ASSERT_TRUE((*c)->Poll(&batch, 20, 0ms).ok());
  ASSERT_EQ(batch.size(), 20u);

  std::string path = dir_ + "/topics/packed/0/" + SegmentFileName(0);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    std::string header(kBatchHeaderSize, '\0');
    f.read(header.data(), static_cast<std::streamsize>(header.size()));
    ASSERT_EQ(GetU16(header.data() + kAttributesAt) & kAttrCodecMask, kCodecZstd);
    f.seekp(70);  // the frame past its own header, to the batch's end
    f << std::string(GetU32(header.data() + kLengthAt) - 70, 'x');
  }
  for (int64_t next = 20; next < 50;) {
    Status s = (*c)->Poll(&batch, 20, 0ms);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_FALSE(batch.empty());
    for (const auto& r : batch) {
      ASSERT_EQ(r.offset, next);
      ASSERT_EQ(r.value, values[static_cast<size_t>(next)]);
      ++next;
    }
  }
  auto fresh = log->Subscribe("h", "packed");
  ASSERT_TRUE(fresh.ok());
  Status s = (*fresh)->Poll(&batch, 20, 0ms);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST_F(CompressedTopicTest, CompactionRewritesCompressedBatchesCompressed) {
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "rollups", .partitions = 1, .compact = true, .compression = Compression::kZstd}).ok());
  Write(*log, "rollups", 60);
  auto before = Drain(*log, "rollups", "before");
  ASSERT_EQ(before.size(), 1200u);
  ASSERT_GT((*log->Describe("rollups"))[0].segments, 2);
  ASSERT_TRUE(log->Maintain().ok());
  auto after = Drain(*log, "rollups", "after");
  EXPECT_LT(after.size(), before.size());
  // The newest record of each key is read at its offset, as before compaction.
  for (int k = 0; k < 20; ++k) {
    std::string key = " k" + std::to_string(k) + " ";
    auto last = [&](const std::vector<std::string>& v) {
      for (auto it = v.rbegin(); it != v.rend(); ++it) {
        if (it->find(key) != std::string::npos) return *it;
      }
      return std::string();
    };
    EXPECT_EQ(last(after), last(before)) << key;
  }
  // Every batch of the compacted segments is compacted and compressed (bits 4 and 0).
  int compacted = 0;
  for (const auto& e : fs::directory_iterator(dir_ + "/topics/rollups/0")) {
    std::ifstream in(e.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    for (size_t pos = 0; pos + kBatchHeaderSize <= bytes.size();) {
      BatchHeader h;
      std::string why;
      ASSERT_TRUE(ParseBatchHeader(bytes.data() + pos, &h, &why)) << why;
      if (h.attributes & kAttrCompacted) {
        ++compacted;
        if (h.record_count >= 5) {
          EXPECT_EQ(h.attributes & kAttrCodecMask, kCodecZstd);
        }
      }
      pos += h.length;
    }
  }
  EXPECT_GT(compacted, 0);
  log.reset();
  log = Open();
  EXPECT_EQ(Drain(*log, "rollups", "reopened"), after);
}

TEST_F(CompressedTopicTest, GroupsOfCompressedBatchesStayWholeAcrossAReopen) {
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 3, .compression = Compression::kZstd}).ok());
  std::vector<std::string> values = RollupValues(30);
  const std::vector<std::string> keys = {"s0", "s1", "s2"};  // a Record's key is a view: they must outlive it
  std::vector<std::vector<Record>> records(3);
  for (size_t i = 0; i < values.size(); ++i) records[i % 3].push_back({1, keys[i % 3], values[i]});
  std::vector<PartitionRecords> parts;
  for (int32_t p = 0; p < 3; ++p) parts.push_back({p, records[static_cast<size_t>(p)]});
  std::vector<Status> results;
  ASSERT_TRUE(log->AppendTogether("raw", parts, &results).ok());
  log.reset();
  log = Open();  // the open looks at each partition's last batch: a group, complete
  auto infos = log->Describe("raw");
  ASSERT_TRUE(infos.ok());
  for (const auto& info : *infos) EXPECT_EQ(info.end_offset, 10) << info.partition;
  auto c = log->Subscribe("g", "raw");
  ASSERT_TRUE(c.ok());
  std::vector<ConsumedRecord> batch;
  ASSERT_TRUE((*c)->Poll(&batch, 100, 0ms).ok());
  size_t got = batch.size();
  while (got < 30) {
    ASSERT_TRUE((*c)->Poll(&batch, 100, 0ms).ok());
    if (batch.empty()) break;
    got += batch.size();
  }
  EXPECT_EQ(got, 30u);
}

TEST_F(CompressedTopicTest, ADamagedCompressedBatchFailsTheReadNamingFileAndPosition) {
  {
    auto log = Open();
    ASSERT_TRUE(log->CreateTopic({.name = "rollups", .partitions = 1, .compression = Compression::kZstd}).ok());
    Write(*log, "rollups", 3);
  }
  // Damage the second batch's frame and fix its checksums: only decoding can tell.
  std::string path = dir_ + "/topics/rollups/0/" + SegmentFileName(0);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign((std::istreambuf_iterator<char>(in)), {});
  }
  size_t second = GetU32(bytes.data() + kLengthAt);
  std::string b = bytes.substr(second, GetU32(bytes.data() + second + kLengthAt));
  ASSERT_EQ(GetU16(b.data() + kAttributesAt) & kAttrCodecMask, kCodecZstd);
  for (size_t i = 70; i < b.size(); ++i) b[i] = 'x';
  Reseal(&b);
  bytes.replace(second, b.size(), b);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  options_.repair = false;
  auto opened = OpenEmbeddedLog(options_);  // the newest segment's bodies are checked at open
  ASSERT_FALSE(opened.ok());
  EXPECT_TRUE(opened.status().IsCorruption());
  EXPECT_NE(opened.status().message().find(fmt::format("{} at byte {}: compressed batch", path, second)), std::string::npos)
      << opened.status().ToString();
}

}  // namespace
}  // namespace mare::log
