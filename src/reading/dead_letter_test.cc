#include "reading/dead_letter.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fmt/format.h>

#include <fstream>
#include <set>
#include <sstream>

namespace mare {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(DeadLetter, KeepsReasonAndRawBytes) {
  std::string path = testing::TempDir() + "/dl_entries.log";
  ::unlink(path.c_str());
  ::unlink((path + ".1").c_str());
  metrics::Registry registry;
  auto dl = DeadLetter::Open({.path = path, .max_entries = 10}, &registry);
  ASSERT_TRUE(dl.ok()) << dl.status().ToString();
  (*dl)->Add("udp", "not_json", "not JSON: bad\nthing", std::string_view("{\xff\n", 3));
  (*dl)->Add("tcp", "invalid_number", "field 'temperature': NaN", "{\"temperature\":NaN}");
  EXPECT_EQ((*dl)->kept(), 2u);
  std::string content = ReadFile(path);
  // Header line, then exactly raw_length raw bytes, then a newline.
  EXPECT_NE(content.find(" udp not_json 3 not JSON: bad thing\n{\xff\n\n"), std::string::npos) << content;
  EXPECT_NE(content.find(" tcp invalid_number 19 field 'temperature': NaN\n{\"temperature\":NaN}\n"), std::string::npos);
}

// Issue 13: eight 60 MB rejects made a 503 MB file, and the first 10,000 rejects ever were
// kept, never the newest. Now an entry keeps its first entry bytes, its length and a hash, and
// the file rotates so that the newest are kept within the bounds.
TEST(DeadLetter, KeepsTheHeadOfABigRejectWithItsLengthAndHash) {
  std::string path = testing::TempDir() + "/dl_big.log";
  ::unlink(path.c_str());
  ::unlink((path + ".1").c_str());
  metrics::Registry registry;
  auto dl = DeadLetter::Open({.path = path, .max_entries = 100, .max_bytes = 1 << 20, .max_entry_bytes = 4096}, &registry);
  ASSERT_TRUE(dl.ok());
  std::string big(60 << 20, 'x');
  big[0] = '{';
  for (int i = 0; i < 8; ++i) {
    big[1] = static_cast<char>('a' + i);  // eight bodies that differ only near their start
    (*dl)->Add("http", "oversized", "line of 62914560 bytes exceeds max_reading_bytes 65536", big);
  }
  std::string content = ReadFile(path) + ReadFile(path + ".1");
  EXPECT_LT(content.size(), 8u * 4300);
  EXPECT_NE(content.find(" http oversized 4096 [first 4096 of 62914560 bytes kept, fnv1a64 "), std::string::npos)
      << content.substr(0, 200);
  EXPECT_NE(content.find("\n{h" + std::string(4094, 'x') + "\n"), std::string::npos);
  std::set<std::string> hashes;
  for (size_t at = content.find("fnv1a64 "); at != std::string::npos; at = content.find("fnv1a64 ", at + 1)) {
    hashes.insert(content.substr(at + 8, 16));
  }
  EXPECT_EQ(hashes.size(), 8u);
  EXPECT_NE(registry.Render().find("mare_dead_letter_readings_truncated_total 8"), std::string::npos);
}

TEST(DeadLetter, RotatesKeepingTheNewestWithinTheBounds) {
  std::string path = testing::TempDir() + "/dl_rotate.log";
  ::unlink(path.c_str());
  ::unlink((path + ".1").c_str());
  metrics::Registry registry;
  {
    auto dl = DeadLetter::Open({.path = path, .max_entries = 10, .max_bytes = 1 << 20, .max_entry_bytes = 4096}, &registry);
    ASSERT_TRUE(dl.ok());
    for (int i = 0; i < 1000; ++i) (*dl)->Add("tcp", "not_json", "bad", fmt::format("reject-{:04}", i));
    std::string both = ReadFile(path + ".1") + ReadFile(path);
    EXPECT_NE(both.find("reject-0999"), std::string::npos);
    EXPECT_NE(both.find("reject-0995"), std::string::npos);  // at least the newest half of the bound
    EXPECT_EQ(both.find("reject-0989"), std::string::npos);  // at most the bound
    EXPECT_EQ(both.find("reject-0000"), std::string::npos);
  }
  // By bytes: 1000 entries of ~1 KiB within 64 KiB.
  ::unlink(path.c_str());
  ::unlink((path + ".1").c_str());
  auto dl = DeadLetter::Open({.path = path, .max_entries = 100000, .max_bytes = 64 << 10, .max_entry_bytes = 4096}, &registry);
  ASSERT_TRUE(dl.ok());
  for (int i = 0; i < 1000; ++i) (*dl)->Add("tcp", "not_json", "bad", fmt::format("reject-{:04}-{}", i, std::string(1000, 'y')));
  std::string current = ReadFile(path), rotated = ReadFile(path + ".1");
  EXPECT_LE(current.size() + rotated.size(), 64u << 10);
  EXPECT_GE(current.size() + rotated.size(), 32u << 10);
  EXPECT_NE(current.find("reject-0999"), std::string::npos);
  EXPECT_EQ((current + rotated).find("reject-0900"), std::string::npos);
}

TEST(DeadLetter, AnOversizedFileFromBeforeIsRotatedAtOpen) {
  std::string path = testing::TempDir() + "/dl_old.log";
  ::unlink((path + ".1").c_str());
  std::ofstream(path, std::ios::trunc) << std::string(100 << 10, 'z');
  metrics::Registry registry;
  auto dl = DeadLetter::Open({.path = path, .max_entries = 10, .max_bytes = 64 << 10, .max_entry_bytes = 4096}, &registry);
  ASSERT_TRUE(dl.ok()) << dl.status().ToString();
  EXPECT_EQ((*dl)->kept(), 0u);
  EXPECT_EQ(ReadFile(path), "");
  EXPECT_EQ(ReadFile(path + ".1").size(), 100u << 10);
}

TEST(DeadLetter, CountsWhatIsAlreadyThereAndCutsATornEntry) {
  std::string path = testing::TempDir() + "/dl_reopen.log";
  ::unlink(path.c_str());
  metrics::Registry registry;
  {
    auto dl = DeadLetter::Open({.path = path, .max_entries = 6}, &registry);
    ASSERT_TRUE(dl.ok());
    (*dl)->Add("udp", "not_json", "x", "aaa");
    (*dl)->Add("udp", "not_json", "y", "bbb");
  }
  std::string intact = ReadFile(path);
  std::ofstream(path, std::ios::app) << "2024-01-01T00:00:00.000000Z udp not_json 50 torn\npartial";
  auto dl = DeadLetter::Open({.path = path, .max_entries = 6}, &registry);
  ASSERT_TRUE(dl.ok());
  EXPECT_EQ((*dl)->kept(), 2u);
  EXPECT_EQ(ReadFile(path), intact);
  (*dl)->Add("http", "oversized", "z", "ccc");
  EXPECT_EQ((*dl)->kept(), 3u);
  EXPECT_NE(ReadFile(path).find("ccc"), std::string::npos);
}

}  // namespace
}  // namespace mare
