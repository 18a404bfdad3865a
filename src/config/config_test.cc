#include "config/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace mare {
namespace {

std::string WriteTemp(const std::string& text) {
  std::string path = testing::TempDir() + "/mare_config_test.toml";
  std::ofstream(path) << text;
  return path;
}

TEST(Config, DefaultsWithoutAFile) {
  auto c = LoadConfig("");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->udp.listen, "0.0.0.0:20001");
  EXPECT_EQ(c->log.retention_us, 7LL * 86400 * 1000000);
  EXPECT_EQ(c->http.listen, "127.0.0.1:8080");
  EXPECT_EQ(c->UnixPath(), "data/ingest.sock");
}

TEST(Config, ReadsDurationsSizesAndSections) {
  auto c = LoadConfig(WriteTemp(R"(
data_dir = "/tmp/x"
[log]
fsync = "batch"
fsync_interval = "250ms"
segment_bytes = "16MiB"
retention = "2d"
[sources.udp]
threads = 3
listen = "127.0.0.1:0"
)"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->data_dir, "/tmp/x");
  EXPECT_EQ(c->log.fsync, "batch");
  EXPECT_EQ(c->log.fsync_interval_us, 250000);
  EXPECT_EQ(c->log.segment_bytes, 16 << 20);
  EXPECT_EQ(c->log.retention_us, 2LL * 86400 * 1000000);
  EXPECT_EQ(c->udp.threads, 3);
  EXPECT_EQ(c->LogDir(), "/tmp/x/log");
}

TEST(Config, OverridesWin) {
  auto c = LoadConfig(WriteTemp("[log]\nfsync = \"batch\"\n"), {"log.fsync=never", "sources.tcp.listen=\"127.0.0.1:9\"", "sources.udp.enabled=false"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->log.fsync, "never");
  EXPECT_EQ(c->tcp.listen, "127.0.0.1:9");
  EXPECT_FALSE(c->udp.enabled);
}

TEST(Config, ErrorsNameTheKeyAndLine) {
  auto typo = LoadConfig(WriteTemp("[log]\npartitons = 4\n"));
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("unknown key 'log.partitons' (line 2"), std::string::npos) << typo.status().message();

  auto type = LoadConfig(WriteTemp("[sources.udp]\nthreads = \"two\"\n"));
  ASSERT_FALSE(type.ok());
  EXPECT_NE(type.status().message().find("sources.udp.threads must be an integer (line 2"), std::string::npos) << type.status().message();

  auto dur = LoadConfig(WriteTemp("[log]\nretention = \"a week\"\n"));
  ASSERT_FALSE(dur.ok());
  EXPECT_NE(dur.status().message().find("log.retention"), std::string::npos) << dur.status().message();

  auto syntax = LoadConfig(WriteTemp("[log\n"));
  ASSERT_FALSE(syntax.ok());
  EXPECT_NE(syntax.status().message().find("line 1"), std::string::npos) << syntax.status().message();

  auto policy = LoadConfig("", {"log.fsync=sometimes"});
  ASSERT_FALSE(policy.ok());
  EXPECT_NE(policy.status().message().find("interval"), std::string::npos);
}

TEST(Config, MariaDbReadingsAreOffUnlessAsked) {
  auto c = LoadConfig("");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->sink_mariadb.readings);
  auto on = LoadConfig(WriteTemp("[sink.mariadb]\nenabled = true\nreadings = true\n"));
  ASSERT_TRUE(on.ok()) << on.status().ToString();
  EXPECT_TRUE(on->sink_mariadb.readings);
  EXPECT_NE(FormatConfig(*on).find("batch = 5000\nreadings = true\n"), std::string::npos) << FormatConfig(*on);
  auto typo = LoadConfig("", {"sink.mariadb.reading=true"});
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("unknown key 'sink.mariadb.reading'"), std::string::npos) << typo.status().message();
  auto type = LoadConfig("", {"sink.mariadb.readings=\"yes\""});
  ASSERT_FALSE(type.ok());
  EXPECT_NE(type.status().message().find("sink.mariadb.readings must be true or false"), std::string::npos);
}

TEST(Config, PrintedConfigReadsBackTheSame) {
  auto c = LoadConfig("", {"log.retention=\"3d\"", "sources.udp.threads=5", "sink.mariadb.readings=true"});
  ASSERT_TRUE(c.ok());
  std::string printed = FormatConfig(*c);
  auto again = LoadConfig(WriteTemp(printed));
  ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << printed;
  EXPECT_EQ(FormatConfig(*again), printed);
  EXPECT_EQ(again->log.retention_us, 3LL * 86400 * 1000000);
  EXPECT_TRUE(again->sink_mariadb.readings);
}

}  // namespace
}  // namespace mare
