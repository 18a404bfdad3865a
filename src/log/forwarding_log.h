// ForwardingLog: a Log that passes every call to another one, for wrappers that change a single
// call (the tests' logs whose appends fail on demand, as a full disk or a broker away would).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "log/log.h"

namespace mare::log {

class ForwardingLog : public Log {
 public:
  explicit ForwardingLog(Log* real) : real_(real) {}
  explicit ForwardingLog(std::unique_ptr<Log> real) : owned_(std::move(real)), real_(owned_.get()) {}

  Result<std::unique_ptr<GroupMember>> JoinGroup(const GroupOptions& o) override { return real_->JoinGroup(o); }
  bool HasGroups() const override { return real_->HasGroups(); }
  Status CreateTopic(const TopicConfig& c) override { return real_->CreateTopic(c); }
  std::vector<std::string> Topics() const override { return real_->Topics(); }
  int32_t Partitions(std::string_view t) const override { return real_->Partitions(t); }
  Result<std::vector<PartitionInfo>> Describe(std::string_view t) const override { return real_->Describe(t); }
  Partitioner TopicPartitioner(std::string_view t) const override { return real_->TopicPartitioner(t); }
  // AppendAsync and AppendTogether are not forwarded: Log's own call this Append, so an
  // override of Append sees every append (and a wrapped embedded log's groups are appended
  // part by part, as on Kafka).
  Status Append(std::string_view topic, int32_t partition, std::span<const Record> records,
                int64_t* first_offset = nullptr) override {
    return real_->Append(topic, partition, records, first_offset);
  }
  Result<std::unique_ptr<Consumer>> Subscribe(const std::string& g, const std::string& t) override {
    return real_->Subscribe(g, t);
  }
  std::vector<std::string> Groups(std::string_view t) const override { return real_->Groups(t); }
  Status Sync() override { return real_->Sync(); }
  Status Maintain() override { return real_->Maintain(); }

 private:
  std::unique_ptr<Log> owned_;
  Log* real_;
};

}  // namespace mare::log
