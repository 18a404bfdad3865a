// Ingest against the real embedded log: accepted readings land in their sensor's partition,
// in order, keyed by sensor; rejects are counted by reason and kept in the dead-letter file.
#include "sources/ingest.h"

#include <gtest/gtest.h>

#include "common/scratch_dir.h"
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <functional>
#include <mutex>
#include <thread>

#include "log/log_with_topics.h"
#include "log/forwarding_log.h"

namespace mare {
namespace {

class IngestTest : public testing::Test {
 protected:
  void SetUp() override {
    auto l = log::OpenLogWithTopics({.dir = dir_ + "/log", .metrics = &registry_}, {{.name = "raw", .partitions = 3}});
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    log_ = std::move(*l);
    auto dl = DeadLetter::Open({.path = dir_ + "/dead-letter.log", .max_entries = 100}, &registry_);
    ASSERT_TRUE(dl.ok());
    dead_letter_ = std::move(*dl);
  }
  struct Stored {
    int32_t partition;
    int64_t timestamp_us;
    std::string key, value;
    std::string numbers;  // "name=value ..." as carried beside the value, "-" if none
  };
  // Every record of raw, copied: a consumer's views die with it.
  std::vector<Stored> ReadAll() {
    auto c = log_->Subscribe("test", "raw");
    EXPECT_TRUE(c.ok());
    std::vector<Stored> all;
    std::vector<log::ConsumedRecord> batch;
    for (int i = 0; i < 20; ++i) {
      EXPECT_TRUE((*c)->Poll(&batch, 1000, std::chrono::milliseconds(10)).ok());
      if (batch.empty()) break;
      for (auto& r : batch) {
        std::string numbers = r.has_numbers ? "" : "-";
        for (const NumberField& f : r.numbers) numbers += (numbers.empty() ? "" : " ") + std::string(f.name) + "=" + std::to_string(f.value);
        all.push_back({r.partition, r.timestamp_us, std::string(r.key), std::string(r.value), numbers});
      }
    }
    return all;
  }

  ScratchDir scratch_{"mare-ingest-test"};
  const std::string dir_ = scratch_.path();
  metrics::Registry registry_;
  std::unique_ptr<log::Log> log_;
  std::unique_ptr<DeadLetter> dead_letter_;
};

TEST_F(IngestTest, AcceptedReadingsGoToTheirSensorsPartitionInOrder) {
  Ingest ingest(log_.get(), {}, dead_letter_.get(), &registry_);
  auto worker = ingest.NewWorker("test");
  PaddedBuffer a, b;
  a.Assign(R"({"timestamp":1705831560,"sensor_id":1,"temperature":20.1})" "\n"
           R"({"timestamp":1705831560,"sensor_id":2,"temperature":19.0})" "\n"
           R"({"timestamp":1705831560,"sensor_id":3,"temperature":NaN})" "\n");
  b.Assign(R"({"timestamp":1705831561,"sensor_id":1,"temperature":20.2})" "\n"
           R"({"timestamp":"2024-01-21 10:06:01","sensor_id":4,"temperature":18.5})");
  IngestReport report;
  worker->Add(a.view(), &report);
  worker->Add(b.view(), &report);
  EXPECT_EQ(worker->queued(), 4u);
  ASSERT_TRUE(worker->Flush().ok());
  EXPECT_EQ(worker->queued(), 0u);
  EXPECT_EQ(report.accepted, 4u);
  EXPECT_EQ(report.rejected, 1u);
  EXPECT_EQ(report.by_reason[static_cast<size_t>(RejectReason::kInvalidNumber)], 1u);
  ASSERT_EQ(report.errors.size(), 1u);
  EXPECT_EQ(std::string(report.errors[0].reason), "invalid_number");

  auto records = ReadAll();
  ASSERT_EQ(records.size(), 4u);
  for (auto& r : records) {
    int sensor = std::stoi(r.key);
    // A new topic: where Kafka's producers put a record keyed by the sensor (murmur2).
    EXPECT_EQ(r.partition, log::KeyPartition(r.key, 3)) << "sensor " << sensor;
  }
  // Sensor 1's two readings, in order, in one partition, each value the reading's exact JSON.
  std::vector<std::string> sensor1;
  for (auto& r : records) {
    if (r.key == "1") sensor1.push_back(r.value);
  }
  EXPECT_EQ(sensor1, (std::vector<std::string>{R"({"timestamp":1705831560,"sensor_id":1,"temperature":20.1})",
                                               R"({"timestamp":1705831561,"sensor_id":1,"temperature":20.2})"}));
  for (auto& r : records) {
    if (r.key == "4") {
      EXPECT_EQ(r.timestamp_us, 1705831561000000);
      // The parsed numbers travel beside the JSON, so processors need not parse it again.
      EXPECT_EQ(r.numbers, "temperature=18.500000");
    }
  }
  EXPECT_EQ(dead_letter_->kept(), 1u);
  std::string metrics = registry_.Render();
  EXPECT_NE(metrics.find("mare_source_readings_received_total{source=\"test\"} 5"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("mare_source_readings_accepted_total{source=\"test\"} 4"), std::string::npos);
  EXPECT_NE(metrics.find("mare_source_readings_rejected_total{source=\"test\",reason=\"invalid_number\"} 1"), std::string::npos);
}

TEST_F(IngestTest, WholeBufferRejectIsCountedAndKept) {
  Ingest ingest(log_.get(), {}, dead_letter_.get(), &registry_);
  auto worker = ingest.NewWorker("udp");
  IngestReport report;
  worker->Reject("xxxxxxxx", RejectReason::kOversized, "datagram too big", &report);
  EXPECT_EQ(report.rejected, 1u);
  EXPECT_EQ(dead_letter_->kept(), 1u);
  EXPECT_TRUE(worker->Flush().ok());
  EXPECT_TRUE(ReadAll().empty());
}

// A log that reports on appends later, from another thread, as Kafka's delivery reports do;
// the appends themselves go to the real embedded log, and may be made to fail.
class DeferredLog : public log::ForwardingLog {
 public:
  explicit DeferredLog(log::Log* real) : ForwardingLog(real) {}
  ~DeferredLog() override { Release(); }
  void AppendAsync(std::string_view topic, int32_t partition, std::span<const log::Record> records,
                   std::function<void(const Status&)> done) override {
    Status s = fail_ ? Status::Unavailable("broker away") : ForwardingLog::Append(topic, partition, records);
    std::lock_guard lock(mu_);
    pending_.push_back([s, done = std::move(done)] { done(s); });
  }
  // Delivers the held reports on another thread, and waits for that thread.
  void Release() {
    std::vector<std::function<void()>> reports;
    {
      std::lock_guard lock(mu_);
      reports.swap(pending_);
    }
    std::thread([&] {
      for (auto& r : reports) r();
    }).join();
  }
  size_t pending() {
    std::lock_guard lock(mu_);
    return pending_.size();
  }
  bool fail_ = false;

  Status Append(std::string_view t, int32_t p, std::span<const log::Record> r, int64_t* first) override {
    if (fail_) return Status::IOError("disk full");
    return ForwardingLog::Append(t, p, r, first);
  }

 private:
  std::mutex mu_;
  std::vector<std::function<void()>> pending_;
};

TEST_F(IngestTest, AsyncWorkerCountsReadingsWhenTheLogReportsNotBefore) {
  DeferredLog deferred(log_.get());
  Ingest ingest(&deferred, {}, dead_letter_.get(), &registry_);
  auto worker = ingest.NewWorker("udp", Ingest::Acks::kAsync);
  PaddedBuffer a;
  a.Assign(R"({"timestamp":1705831560,"sensor_id":1,"temperature":20.1})" "\n"
           R"({"timestamp":1705831560,"sensor_id":2,"temperature":19.0})" "\n"
           R"({"timestamp":1705831561,"sensor_id":1,"temperature":20.2})");
  worker->Add(a.view());
  ASSERT_TRUE(worker->Flush().ok());
  EXPECT_EQ(worker->queued(), 0u);
  EXPECT_EQ(deferred.pending(), 2u);  // partitions 1 and 2, one append each
  std::string before = registry_.Render();
  EXPECT_NE(before.find("mare_source_readings_accepted_total{source=\"udp\"} 0"), std::string::npos) << before;

  deferred.Release();
  std::string after = registry_.Render();
  EXPECT_NE(after.find("mare_source_readings_accepted_total{source=\"udp\"} 3"), std::string::npos) << after;
  EXPECT_NE(after.find("mare_source_readings_lost_total{source=\"udp\"} 0"), std::string::npos) << after;
  EXPECT_EQ(ReadAll().size(), 3u);

  // The log fails: the readings are counted lost, with the failed appends.
  deferred.fail_ = true;
  a.Assign(R"({"timestamp":1705831562,"sensor_id":1,"temperature":20.3})");
  worker->Add(a.view());
  ASSERT_TRUE(worker->Flush().ok());
  deferred.Release();
  std::string failed = registry_.Render();
  EXPECT_NE(failed.find("mare_source_readings_lost_total{source=\"udp\"} 1"), std::string::npos) << failed;
  EXPECT_NE(failed.find("mare_source_appends_failed_total{source=\"udp\"} 1"), std::string::npos) << failed;
  EXPECT_NE(failed.find("mare_source_readings_accepted_total{source=\"udp\"} 3"), std::string::npos) << failed;
}

TEST_F(IngestTest, AsyncWorkerWaitsForTheLastReportWhenDestroyed) {
  DeferredLog deferred(log_.get());
  Ingest ingest(&deferred, {}, dead_letter_.get(), &registry_);
  auto worker = ingest.NewWorker("udp", Ingest::Acks::kAsync);
  PaddedBuffer a;
  a.Assign(R"({"timestamp":1705831560,"sensor_id":1,"temperature":20.1})");
  worker->Add(a.view());
  ASSERT_TRUE(worker->Flush().ok());
  std::atomic<bool> destroyed{false};
  std::thread t([&] {
    worker.reset();
    destroyed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(destroyed.load());  // one report outstanding
  deferred.Release();
  t.join();
  EXPECT_TRUE(destroyed.load());
  std::string m = registry_.Render();
  EXPECT_NE(m.find("mare_source_readings_accepted_total{source=\"udp\"} 1"), std::string::npos) << m;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

uint64_t Duplicates(metrics::Registry& registry, const std::string& source) {
  std::string text = registry.Render();
  std::string key = "mare_source_readings_rejected_total{source=\"" + source + "\",reason=\"duplicate\"} ";
  size_t at = text.find(key);
  return at == std::string::npos ? UINT64_MAX : std::stoull(text.substr(at + key.size()));
}

constexpr const char* kR1 = R"({"timestamp":1705831560,"sensor_id":1,"temperature":20.1})";
constexpr const char* kR2 = R"({"timestamp":1705831560,"sensor_id":2,"temperature":19.0})";

TEST_F(IngestTest, AReadingDeliveredTwiceIsAppendedOnce) {
  Ingest ingest(log_.get(), {}, dead_letter_.get(), &registry_);
  auto worker = ingest.NewWorker("http");
  PaddedBuffer a;
  // Within one batch: the same reading twice (in another form: spaces, the timestamp's form).
  a.Assign(std::string(kR1) + "\n" + kR2 + "\n" + R"({"sensor_id": 1, "temperature": 20.1, "timestamp": "2024-01-21T10:06:00Z"})");
  IngestReport first;
  worker->Add(a.view(), &first);
  ASSERT_TRUE(worker->Flush(&first).ok());
  EXPECT_EQ(first.accepted, 2u);
  EXPECT_EQ(first.rejected, 1u);
  EXPECT_EQ(first.by_reason[static_cast<size_t>(RejectReason::kDuplicate)], 1u);
  ASSERT_EQ(first.errors.size(), 1u);
  EXPECT_EQ(std::string(first.errors[0].reason), "duplicate");
  EXPECT_EQ(first.errors[0].offset, a.view().rfind('{'));

  // The same batch again, as a sender that retries: nothing new.
  IngestReport second;
  worker->Add(a.view(), &second);
  ASSERT_TRUE(worker->Flush(&second).ok());
  EXPECT_EQ(second.accepted, 0u);
  EXPECT_EQ(second.rejected, 3u);
  EXPECT_EQ(Duplicates(registry_, "http"), 4u);
  // From another source and worker too: the windows are the Ingest's, not a worker's.
  auto tcp = ingest.NewWorker("tcp");
  tcp->Add(a.view());
  ASSERT_TRUE(tcp->Flush().ok());
  EXPECT_EQ(Duplicates(registry_, "tcp"), 3u);

  auto records = ReadAll();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].value == kR1 || records[1].value == kR1, true);
  EXPECT_EQ(dead_letter_->kept(), 0u) << "a plain resend is counted, not dead-lettered";
  std::string m = registry_.Render();
  EXPECT_NE(m.find("mare_source_readings_accepted_total{source=\"http\"} 2"), std::string::npos) << m;
}

TEST_F(IngestTest, AConflictingDuplicateIsDeadLetteredWithBothCopiesAndTheFirstWins) {
  Ingest ingest(log_.get(), {}, dead_letter_.get(), &registry_);
  auto worker = ingest.NewWorker("http");
  PaddedBuffer a;
  a.Assign(kR1);
  worker->Add(a.view());
  ASSERT_TRUE(worker->Flush().ok());
  // Another batch: the first copy is read back from the log.
  a.Assign(R"({"timestamp":1705831560,"sensor_id":1,"temperature":25.5})");
  IngestReport report;
  worker->Add(a.view(), &report);
  ASSERT_TRUE(worker->Flush(&report).ok());
  EXPECT_EQ(report.accepted, 0u);
  EXPECT_EQ(report.by_reason[static_cast<size_t>(RejectReason::kDuplicate)], 1u);
  ASSERT_EQ(dead_letter_->kept(), 1u);
  std::string file = ReadFile(dir_ + "/dead-letter.log");
  EXPECT_NE(file.find(" http duplicate "), std::string::npos) << file;
  EXPECT_NE(file.find(std::string("the first copy is kept: ") + kR1), std::string::npos) << file;
  EXPECT_NE(file.find("\n" R"({"timestamp":1705831560,"sensor_id":1,"temperature":25.5})" "\n"), std::string::npos) << file;

  // Within one batch: the first copy is the earlier one in it.
  a.Assign(R"({"timestamp":1705831570,"sensor_id":1,"temperature":1})" "\n"
           R"({"timestamp":1705831570,"sensor_id":1,"temperature":2})");
  worker->Add(a.view());
  ASSERT_TRUE(worker->Flush().ok());
  ASSERT_EQ(dead_letter_->kept(), 2u);
  file = ReadFile(dir_ + "/dead-letter.log");
  EXPECT_NE(file.find(R"(the first copy is kept: {"timestamp":1705831570,"sensor_id":1,"temperature":1})"), std::string::npos) << file;

  auto records = ReadAll();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].value, kR1);
  EXPECT_EQ(records[1].value, R"({"timestamp":1705831570,"sensor_id":1,"temperature":1})");
}

TEST_F(IngestTest, AReadingOlderThanTheHorizonIsAcceptedAsLate) {
  IngestOptions o;
  o.dedup_horizon_us = 600'000'000;
  Ingest ingest(log_.get(), o, dead_letter_.get(), &registry_);
  auto worker = ingest.NewWorker("udp");
  PaddedBuffer a;
  a.Assign(R"({"timestamp":1705835160,"sensor_id":1,"temperature":20})" "\n"   // 11:06
           R"({"timestamp":1705831560,"sensor_id":1,"temperature":20})" "\n"   // 10:06, an hour late: new
           R"({"timestamp":1705834620,"sensor_id":1,"temperature":20})" "\n"   // 10:57, within 10 minutes: new
           R"({"timestamp":1705834620,"sensor_id":1,"temperature":20})");      // its resend
  worker->Add(a.view());
  ASSERT_TRUE(worker->Flush().ok());
  EXPECT_EQ(ReadAll().size(), 3u);
  EXPECT_EQ(Duplicates(registry_, "udp"), 1u);
}

TEST_F(IngestTest, HorizonZeroTurnsDeduplicationOff) {
  IngestOptions o;
  o.dedup_horizon_us = 0;
  Ingest ingest(log_.get(), o, dead_letter_.get(), &registry_);
  auto worker = ingest.NewWorker("http");
  PaddedBuffer a;
  a.Assign(std::string(kR1) + "\n" + kR1);
  worker->Add(a.view());
  ASSERT_TRUE(worker->Flush().ok());
  EXPECT_EQ(ReadAll().size(), 2u);
  EXPECT_EQ(Duplicates(registry_, "http"), 0u);
}

TEST_F(IngestTest, AResendAfterARestartIsRecognisedFromTheLogsTail) {
  PaddedBuffer a;
  a.Assign(std::string(kR1) + "\n" + kR2);
  {
    Ingest ingest(log_.get(), {}, dead_letter_.get(), &registry_);
    auto worker = ingest.NewWorker("http");
    worker->Add(a.view());
    ASSERT_TRUE(worker->Flush().ok());
  }
  Ingest restarted(log_.get(), {}, dead_letter_.get(), &registry_);
  EXPECT_EQ(restarted.DedupReadings(), 0u) << "nothing read back before a source starts";
  auto worker = restarted.NewWorker("http");
  EXPECT_EQ(restarted.DedupReadings(), 2u);
  IngestReport report;
  a.Assign(std::string(kR1) + "\n" + kR2 + "\n" + R"({"timestamp":1705831561,"sensor_id":1,"temperature":20.2})");
  worker->Add(a.view(), &report);
  ASSERT_TRUE(worker->Flush(&report).ok());
  EXPECT_EQ(report.accepted, 1u);
  EXPECT_EQ(report.rejected, 2u);
  EXPECT_EQ(ReadAll().size(), 3u);
}

TEST_F(IngestTest, AReadingWhoseAppendFailedIsTakenWhenResent) {
  DeferredLog flaky(log_.get());
  Ingest ingest(&flaky, {}, dead_letter_.get(), &registry_);
  PaddedBuffer a;
  a.Assign(std::string(kR1) + "\n" + kR2);
  // Waiting for the log (HTTP): the 503's readings must be taken again.
  auto worker = ingest.NewWorker("http");
  flaky.fail_ = true;
  IngestReport failed;
  worker->Add(a.view(), &failed);
  EXPECT_FALSE(worker->Flush(&failed).ok());
  EXPECT_EQ(failed.unacknowledged, 2u);
  flaky.fail_ = false;
  IngestReport retried;
  worker->Add(a.view(), &retried);
  ASSERT_TRUE(worker->Flush(&retried).ok());
  EXPECT_EQ(retried.accepted, 2u);
  EXPECT_EQ(retried.rejected, 0u);

  // Not waiting (UDP): forgotten when the log reports the failure.
  auto udp = ingest.NewWorker("udp", Ingest::Acks::kAsync);
  a.Assign(R"({"timestamp":1705831590,"sensor_id":3,"temperature":1})");
  flaky.fail_ = true;
  udp->Add(a.view());
  ASSERT_TRUE(udp->Flush().ok());
  flaky.Release();
  flaky.fail_ = false;
  udp->Add(a.view());
  ASSERT_TRUE(udp->Flush().ok());
  flaky.Release();
  EXPECT_EQ(Duplicates(registry_, "udp"), 0u);
  EXPECT_EQ(ReadAll().size(), 3u);
}

}  // namespace
}  // namespace mare
