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
  EXPECT_EQ(c->udp.listen, "127.0.0.1:20001");
  EXPECT_EQ(c->tcp.listen, "127.0.0.1:20002");
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
  EXPECT_EQ(c->log.embedded.fsync, log::FsyncPolicy::kBatch);
  EXPECT_EQ(c->log.embedded.fsync_interval_us, 250000);
  EXPECT_EQ(c->log.embedded.segment_bytes, 16 << 20);
  EXPECT_EQ(c->log.retention_us, 2LL * 86400 * 1000000);
  EXPECT_EQ(c->udp.threads, 3);
  EXPECT_EQ(c->LogDir(), "/tmp/x/log");
}

// A bare integer is seconds, bounded as a string is: 9223372036854775807 times a million
// overflowed (undefined behaviour) before.
TEST(Config, IntegerDurationsAreSecondsWithTheSameBounds) {
  auto c = LoadConfig("", {"rollup.lateness=90"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->rollup.lateness_us, 90'000'000);
  auto huge = LoadConfig("", {"rollup.lateness=9223372036854775807"});
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("rollup.lateness: duration '9223372036854775807s' is too large"), std::string::npos)
      << huge.status().message();
  EXPECT_FALSE(LoadConfig("", {"rollup.lateness=-5"}).ok());
}

TEST(Config, OverridesWin) {
  auto c = LoadConfig(WriteTemp("[log]\nfsync = \"batch\"\n"), {"log.fsync=never", "sources.tcp.listen=\"127.0.0.1:9\"", "sources.udp.enabled=false"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->log.embedded.fsync, log::FsyncPolicy::kNever);
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

TEST(Config, TokensAreTablesAndNeverPrinted) {
  auto c = LoadConfig(WriteTemp(R"(
[http]
allowed_hosts = ["mare.example.org"]
[[http.tokens]]
name = "buoys"
scopes = ["ingest"]
sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
[[http.tokens]]
name = "web"
scopes = ["query", "admin"]
env = "MARE_WEB_TOKEN"
)"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->http.server.tokens.size(), 2u);
  EXPECT_EQ(c->http.server.tokens[0].name, "buoys");
  EXPECT_EQ(c->http.server.tokens[1].scopes, (std::vector<std::string>{"query", "admin"}));
  EXPECT_EQ(c->http.server.tokens[1].env, "MARE_WEB_TOKEN");
  EXPECT_EQ(c->http.server.allowed_hosts, std::vector<std::string>{"mare.example.org"});
  std::string printed = FormatConfig(*c);
  EXPECT_EQ(printed.find("9f86d081"), std::string::npos) << printed;
  EXPECT_NE(printed.find("tokens = [{name = \"buoys\", scopes = [\"ingest\"], sha256 = \"(set)\"}"), std::string::npos) << printed;
  // What --print-config writes reads back the same.
  auto again = LoadConfig(WriteTemp(printed));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->http.server.tokens.size(), 2u);

  auto typo = LoadConfig(WriteTemp("[[http.tokens]]\nname = \"x\"\nscope = [\"query\"]\n"));
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("http.tokens.scope"), std::string::npos) << typo.status().message();
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
atomic_ingest = false
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
  EXPECT_FALSE(c->log.kafka.atomic_ingest);  // true by default
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

// One duplicate filter for every consumer of raw, so that they keep the same copy: on with Kafka
// by default, with ingest's horizon.
TEST(Config, RawDuplicateFilterIsOneSettingForEveryConsumer) {
  auto embedded = LoadConfig("");
  ASSERT_TRUE(embedded.ok());
  EXPECT_EQ(embedded->log.dedup, "auto");
  EXPECT_FALSE(embedded->rollup.dedup.enabled);
  EXPECT_FALSE(embedded->store.raw_dedup.enabled);
  auto kafka = LoadConfig("", {"log.kind=kafka", "ingest.dedup_horizon=\"5m\""});
  ASSERT_TRUE(kafka.ok()) << kafka.status().ToString();
  for (const log::DuplicateFilterOptions* o : {&kafka->rollup.dedup, &kafka->store.raw_dedup, &kafka->sink_mariadb.raw_dedup,
                                               &kafka->sink_elasticsearch.raw_dedup, &kafka->sink_clickhouse.raw_dedup}) {
    EXPECT_TRUE(o->enabled);
    EXPECT_EQ(o->horizon_us, 300'000'000);
  }
  auto off = LoadConfig("", {"log.kind=kafka", "log.dedup=\"off\""});
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->rollup.dedup.enabled);
  EXPECT_FALSE(off->sink_clickhouse.raw_dedup.enabled);
  auto on = LoadConfig("", {"log.dedup=\"on\""});
  ASSERT_TRUE(on.ok());
  EXPECT_TRUE(on->store.raw_dedup.enabled);
  auto no_horizon = LoadConfig("", {"log.dedup=\"on\"", "ingest.dedup_horizon=\"0s\""});
  ASSERT_TRUE(no_horizon.ok());
  EXPECT_FALSE(no_horizon->store.raw_dedup.enabled);
  EXPECT_FALSE(LoadConfig("", {"log.dedup=\"maybe\""}).ok());
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

// Each component's options are the config's sections: the defaults are the component's own,
// and what follows from other keys is filled in once, for every command.
TEST(Config, SectionsAreTheComponentsOptions) {
  auto c = LoadConfig("", {"data_dir=\"/srv/mare\"", "rollup.resolutions=[\"5m\",\"1h\"]", "rollup.lateness=\"2m\"",
                           "ingest.numeric_fields=[\"salinity\"]", "ingest.dead_letter_max=7"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->rollup.resolutions.size(), 2u);
  EXPECT_EQ(c->rollup.resolutions[0].length_us, 300'000'000);
  EXPECT_EQ(c->rollup.resolutions[1].name, "1h");
  EXPECT_EQ(c->rollup.lateness_us, 120'000'000);
  EXPECT_EQ(c->rollup.checkpoint_dir, "/srv/mare/rollup");
  EXPECT_EQ(c->store.dir, "/srv/mare/store");
  EXPECT_EQ(c->log.embedded.dir, "/srv/mare/log");
  EXPECT_EQ(c->UnixPath(), "/srv/mare/ingest.sock");
  EXPECT_EQ(c->dead_letter.max_entries, 7u);
  EXPECT_EQ(c->sink_mariadb.numeric_fields, std::vector<std::string>{"salinity"});
  EXPECT_EQ(c->sink_mariadb.resolutions, (std::vector<std::string>{"5m", "1h"}));

  Config defaults;
  rollup::RollupOptions rollup;
  EXPECT_EQ(defaults.rollup.lateness_us, rollup.lateness_us);
  ASSERT_EQ(defaults.rollup.resolutions.size(), 3u);
  EXPECT_EQ(FormatConfigValue(defaults, "rollup.resolutions"), "[\"1m\", \"1h\", \"1d\"]");
  EXPECT_EQ(FormatConfigValue(defaults, "ingest.dead_letter_max"), "10000");
  EXPECT_EQ(defaults.sink_mariadb.numeric_fields, ParserOptions{}.numeric_fields);

  auto bad = LoadConfig("", {"rollup.resolutions=[\"1h\",\"1h\"]"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("rollup.resolutions"), std::string::npos) << bad.status().message();
}

// bulk_timeout's default follows timeout (two thirds of it), so a shorter timeout alone stays a
// valid configuration; only a bulk_timeout set at or above timeout is refused.
TEST(Config, ElasticsearchBulkTimeoutFollowsTimeoutUnlessSet) {
  auto shorter = LoadConfig("", {"sink.elasticsearch.timeout=\"10s\""});
  ASSERT_TRUE(shorter.ok()) << shorter.status().ToString();
  EXPECT_EQ(shorter->sink_elasticsearch.bulk_timeout_us, 0);
  auto set = LoadConfig("", {"sink.elasticsearch.timeout=\"10s\"", "sink.elasticsearch.bulk_timeout=\"5s\""});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->sink_elasticsearch.bulk_timeout_us, 5'000'000);
  auto wrong = LoadConfig("", {"sink.elasticsearch.timeout=\"10s\"", "sink.elasticsearch.bulk_timeout=\"10s\""});
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().ToString().find("bulk_timeout (10s) must be shorter than sink.elasticsearch.timeout (10s)"), std::string::npos)
      << wrong.status().ToString();
}

// config/mare.toml is the reference users read: every key has its line there, with the default.
TEST(Config, ReferenceFileDocumentsEveryKeyWithItsDefault) {
  std::ifstream in("config/mare.toml");  // ctest runs in the source directory
  ASSERT_TRUE(in) << "config/mare.toml not found from " << testing::TempDir();
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto reference = LoadConfig("config/mare.toml");
  ASSERT_TRUE(reference.ok()) << reference.status().ToString();
  auto defaults = LoadConfig("");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(FormatConfig(*reference), FormatConfig(*defaults)) << "config/mare.toml must show the defaults";
  for (const std::string& key : ConfigKeys()) {
    if (key == "log.kafka.client" || key == "data_dir") continue;
    std::string name = key.substr(key.rfind('.') + 1);
    std::string section = "[" + key.substr(0, key.rfind('.')) + "]";
    size_t at = text.find("\n" + section);
    ASSERT_NE(at, std::string::npos) << key << ": no " << section << " in config/mare.toml";
    size_t end = text.find("\n[", at + 1);
    std::string body = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
    EXPECT_TRUE(body.find("\n" + name + " =") != std::string::npos || body.find("\n# " + name + " =") != std::string::npos)
        << key << " is not documented in config/mare.toml";
  }
}

}  // namespace
}  // namespace mare
