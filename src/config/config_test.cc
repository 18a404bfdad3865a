#include "config/config.h"

#include <gtest/gtest.h>

#include <algorithm>
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

TEST(Config, KafkaLogWithClientSettingsPassedThrough) {
  auto c = LoadConfig(WriteTemp(R"(
[log]
kind = "kafka"
partitions = 6
[log.kafka]
brokers = "k1:9092,k2:9092"
replication_factor = 2
compression = "zstd"
topic_prefix = "obs."
delivery_timeout = "45s"
[log.kafka.client]
"security.protocol" = "SASL_SSL"
"sasl.mechanisms" = "SCRAM-SHA-512"
"sasl.password" = "hunter2"
"socket.nagle.disable" = true
"fetch.max.bytes" = 1048576
)"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->log.kind, "kafka");
  EXPECT_EQ(c->log.partitions, 6);
  EXPECT_EQ(c->log.kafka.brokers, "k1:9092,k2:9092");
  EXPECT_EQ(c->log.kafka.replication_factor, 2);
  EXPECT_EQ(c->log.kafka.compression, "zstd");
  EXPECT_EQ(c->log.kafka.topic_prefix, "obs.");
  EXPECT_EQ(c->log.kafka.delivery_timeout_us, 45'000'000);
  EXPECT_EQ(c->log.kafka.request_timeout_us, 10'000'000);
  using Setting = std::pair<std::string, std::string>;
  std::vector<Setting> want = {{"fetch.max.bytes", "1048576"},
                               {"sasl.mechanisms", "SCRAM-SHA-512"},
                               {"sasl.password", "hunter2"},
                               {"security.protocol", "SASL_SSL"},
                               {"socket.nagle.disable", "true"}};
  auto got = c->log.kafka.client;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);

  // Printed without the password, and read back the same otherwise.
  std::string printed = FormatConfig(*c);
  EXPECT_EQ(printed.find("hunter2"), std::string::npos) << printed;
  EXPECT_NE(printed.find("\"sasl.password\" = \"(set)\""), std::string::npos) << printed;
  auto again = LoadConfig(WriteTemp(printed));
  ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << printed;
  EXPECT_EQ(again->log.kafka.brokers, "k1:9092,k2:9092");
  EXPECT_EQ(again->log.kafka.client.size(), 5u);

  // From the command line too, with a quoted key.
  auto set = LoadConfig("", {"log.kind=kafka", "log.kafka.brokers=127.0.0.1:9", "log.kafka.client.\"client.rack\"=r1"});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  ASSERT_EQ(set->log.kafka.client.size(), 1u);
  EXPECT_EQ(set->log.kafka.client[0], Setting("client.rack", "r1"));
}

TEST(Config, KafkaDefaultsAndErrors) {
  auto c = LoadConfig("");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->log.kind, "embedded");
  EXPECT_EQ(c->log.kafka.brokers, "127.0.0.1:9092");
  EXPECT_EQ(c->log.kafka.replication_factor, 3);
  EXPECT_EQ(c->log.kafka.compression, "lz4");
  EXPECT_TRUE(c->log.kafka.client.empty());

  auto kind = LoadConfig("", {"log.kind=zookeeper"});
  ASSERT_FALSE(kind.ok());
  EXPECT_NE(kind.status().message().find("log.kind must be \"embedded\" or \"kafka\""), std::string::npos) << kind.status().message();

  auto typo = LoadConfig(WriteTemp("[log.kafka]\nbroker = \"x:1\"\n"));
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("unknown key 'log.kafka.broker' (line 2"), std::string::npos) << typo.status().message();

  auto codec = LoadConfig("", {"log.kafka.compression=brotli"});
  ASSERT_FALSE(codec.ok());
  EXPECT_NE(codec.status().message().find("log.kafka.compression"), std::string::npos) << codec.status().message();

  auto replicas = LoadConfig("", {"log.kafka.replication_factor=0"});
  ASSERT_FALSE(replicas.ok());
  EXPECT_NE(replicas.status().message().find("log.kafka.replication_factor"), std::string::npos);

  auto nested = LoadConfig(WriteTemp("[log.kafka.client]\nsasl = { mechanisms = \"PLAIN\" }\n"));
  ASSERT_FALSE(nested.ok());
  EXPECT_NE(nested.status().message().find("log.kafka.client.sasl must be a string, integer or boolean (line 2"),
            std::string::npos) << nested.status().message();

  auto none = LoadConfig("", {"log.kind=kafka", "log.kafka.brokers=\"\""});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("log.kafka.brokers"), std::string::npos);
}

}  // namespace
}  // namespace mare
