#include "reading/dead_letter.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace mare {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(DeadLetter, KeepsReasonAndRawBytesOfTheFirstN) {
  std::string path = testing::TempDir() + "/dl_first_n.log";
  ::unlink(path.c_str());
  metrics::Registry registry;
  auto dl = DeadLetter::Open(path, 2, &registry);
  ASSERT_TRUE(dl.ok()) << dl.status().ToString();
  (*dl)->Add("udp", "not_json", "not JSON: bad\nthing", std::string_view("{\xff\n", 3));
  (*dl)->Add("tcp", "invalid_number", "field 'temperature': NaN", "{\"temperature\":NaN}");
  (*dl)->Add("tcp", "invalid_number", "third", "{}");
  EXPECT_EQ((*dl)->kept(), 2u);
  std::string content = ReadFile(path);
  // Header line, then exactly raw_length raw bytes, then a newline.
  EXPECT_NE(content.find(" udp not_json 3 not JSON: bad thing\n{\xff\n\n"), std::string::npos) << content;
  EXPECT_NE(content.find(" tcp invalid_number 19 field 'temperature': NaN\n{\"temperature\":NaN}\n"), std::string::npos);
  EXPECT_EQ(content.find("third"), std::string::npos);
  EXPECT_NE(registry.Render().find("mare_dead_letter_readings_dropped_total 1"), std::string::npos);
}

TEST(DeadLetter, CountsWhatIsAlreadyThereAndCutsATornEntry) {
  std::string path = testing::TempDir() + "/dl_reopen.log";
  ::unlink(path.c_str());
  metrics::Registry registry;
  {
    auto dl = DeadLetter::Open(path, 3, &registry);
    ASSERT_TRUE(dl.ok());
    (*dl)->Add("udp", "not_json", "x", "aaa");
    (*dl)->Add("udp", "not_json", "y", "bbb");
  }
  std::string intact = ReadFile(path);
  std::ofstream(path, std::ios::app) << "2024-01-01T00:00:00.000000Z udp not_json 50 torn\npartial";
  auto dl = DeadLetter::Open(path, 3, &registry);
  ASSERT_TRUE(dl.ok());
  EXPECT_EQ((*dl)->kept(), 2u);
  EXPECT_EQ(ReadFile(path), intact);
  (*dl)->Add("http", "oversized", "z", "ccc");
  (*dl)->Add("http", "oversized", "z", "ddd");  // over the limit of 3
  EXPECT_EQ((*dl)->kept(), 3u);
  EXPECT_EQ(ReadFile(path).find("ddd"), std::string::npos);
}

}  // namespace
}  // namespace mare
