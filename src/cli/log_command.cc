// `mare log`: look inside the embedded log of a data dir, also while `mare run` writes to it
// (the log is opened read-only: no lock, nothing truncated), or into the Kafka topics of a
// configuration with log.kind = "kafka" (--config, --set).
//
//   mare log topics                          topics with partitions, records, bytes, retention
//   mare log partitions raw                  offsets, segments and append times per partition
//   mare log groups raw                      consumer groups: committed offset and lag
//   mare log tail raw -n 5 --follow          the newest records, then new ones as they come
//   mare log tail raw --from-beginning --format ndjson   every retained record, one JSON per line
//   mare log verify                          check every batch checksum of every segment
//   mare log produce rollups < records.tsv   append KEY<TAB>VALUE lines (writer: not beside mare run)
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <span>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/process.h"
#include "common/metrics.h"
#include "common/time.h"
#include "log/embedded_log.h"
#include "log/file.h"
#include "log/format.h"
#include "cli/open_log.h"

namespace mare::cli {

namespace {

std::string LogDir(const std::string& data_dir) { return data_dir + "/log"; }

// Which log: --data-dir's embedded log, or what --config and --set name.
struct Where {
  std::string data_dir;  // empty: the config's data_dir ("data")
  std::string config;
  std::vector<std::string> sets;
};

Result<Config> Load(const Where& where) { return LoadCommandConfig(where.config, where.sets, where.data_dir); }

Result<std::unique_ptr<log::Log>> OpenReadOnly(const Where& where, metrics::Registry* registry) {
  auto config = Load(where);
  if (!config.ok()) return config.status();
  return OpenLog(*config, {.read_only = true, .client_id = "mare-log", .metrics = registry});
}

int Fail(const Status& status) {
  std::fprintf(stderr, "mare log: %s\n", status.ToString().c_str());
  return 1;
}

std::string HumanBytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string TimeOrDash(int64_t micros) { return micros == 0 ? "-" : FormatTimestamp(micros); }

// Prints rows as aligned columns; the first row is the header. Columns listed in
// `right` are right-aligned (numbers).
void PrintTable(const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& right) {
  if (rows.empty()) return;
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i) line += "  ";
      size_t pad = width[i] - row[i].size();
      bool last = i + 1 == row.size();
      if (i < right.size() && right[i]) line += std::string(pad, ' ') + row[i];
      else line += last ? row[i] : row[i] + std::string(pad, ' ');
    }
    out += line + "\n";
  }
  std::fputs(out.c_str(), stdout);
}

// Topic settings come from topic.toml: the Log interface does not expose them.
std::string RetentionText(const Where& where, const std::string& topic) {
  auto loaded = Load(where);
  if (!loaded.ok() || loaded->log.kind != "embedded") return "-";
  const std::string& data_dir = loaded->data_dir;
  auto text = log::file::ReadAll(LogDir(data_dir) + "/topics/" + topic + "/topic.toml");
  if (!text) return "?";
  auto config = log::format::ParseTopicMeta(*text, topic);
  if (!config) return "?";
  std::string out = config->retention_us == 0 ? "forever" : FormatDuration(config->retention_us);
  if (config->retention_bytes > 0) out += ", " + HumanBytes(config->retention_bytes) + "/partition";
  return out;
}

int Topics(const Where& data_dir) {
  metrics::Registry registry;
  auto log = OpenReadOnly(data_dir, &registry);
  if (!log) return Fail(log.status());
  std::vector<std::vector<std::string>> rows = {{"TOPIC", "PARTITIONS", "RECORDS", "BYTES", "RETENTION"}};
  for (const std::string& topic : (*log)->Topics()) {
    auto info = (*log)->Describe(topic);
    if (!info) return Fail(info.status());
    int64_t records = 0, bytes = 0;
    for (const auto& p : *info) {
      records += p.end_offset - p.start_offset;
      bytes += p.bytes;
    }
    rows.push_back({topic, std::to_string(info->size()), std::to_string(records), HumanBytes(bytes),
                    RetentionText(data_dir, topic)});
  }
  PrintTable(rows, {false, true, true, true, false});
  return 0;
}

int Partitions(const Where& data_dir, const std::string& topic) {
  metrics::Registry registry;
  auto log = OpenReadOnly(data_dir, &registry);
  if (!log) return Fail(log.status());
  auto info = (*log)->Describe(topic);
  if (!info) return Fail(info.status());
  std::vector<std::vector<std::string>> rows = {
      {"PARTITION", "START", "END", "RECORDS", "SEGMENTS", "BYTES", "OLDEST APPEND", "NEWEST APPEND"}};
  for (const auto& p : *info) {
    rows.push_back({std::to_string(p.partition), std::to_string(p.start_offset), std::to_string(p.end_offset),
                    std::to_string(p.end_offset - p.start_offset), std::to_string(p.segments), HumanBytes(p.bytes),
                    TimeOrDash(p.oldest_append_time_us), TimeOrDash(p.newest_append_time_us)});
  }
  PrintTable(rows, {true, true, true, true, true, true, false, false});
  return 0;
}

int Groups(const Where& data_dir, const std::string& topic) {
  metrics::Registry registry;
  auto log = OpenReadOnly(data_dir, &registry);
  if (!log) return Fail(log.status());
  auto info = (*log)->Describe(topic);
  if (!info) return Fail(info.status());
  auto groups = (*log)->Groups(topic);
  if (groups.empty()) {
    std::printf("no consumer group has committed offsets on topic %s\n", topic.c_str());
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"GROUP", "PARTITION", "COMMITTED", "END", "LAG"}};
  for (const std::string& group : groups) {
    auto consumer = (*log)->Subscribe(group, topic);
    if (!consumer) return Fail(consumer.status());
    for (const auto& p : *info) {
      int64_t committed = (*consumer)->Committed(p.partition);
      // Without a commit the group would start at the oldest retained record.
      int64_t from = std::max(committed, p.start_offset);
      rows.push_back({group, std::to_string(p.partition), committed < 0 ? "-" : std::to_string(committed),
                      std::to_string(p.end_offset), std::to_string(std::max<int64_t>(0, p.end_offset - from))});
    }
  }
  PrintTable(rows, {false, true, true, true, true});
  return 0;
}

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) *out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
        else out->push_back(c);
    }
  }
  out->push_back('"');
}

struct TailArgs {
  std::string topic;
  int partition = -1;
  int64_t offset = -1;
  bool from_beginning = false;
  int64_t count = -1;  // -n; -1 when not given
  bool follow = false;
  std::string format = "text";
};

int Tail(const Where& data_dir, const TailArgs& args) {
  metrics::Registry registry;
  auto log = OpenReadOnly(data_dir, &registry);
  if (!log) return Fail(log.status());
  auto info = (*log)->Describe(args.topic);
  if (!info) return Fail(info.status());
  if (args.partition >= static_cast<int>(info->size())) {
    return Fail(Status::InvalidArgument(
        fmt::format("topic {} has {} partitions; no partition {}", args.topic, info->size(), args.partition)));
  }
  if (args.offset >= 0 && args.from_beginning) {
    return Fail(Status::InvalidArgument("--offset and --from-beginning exclude each other"));
  }
  auto consumer = (*log)->Subscribe("mare-log-tail", args.topic);  // never commits
  auto config = Load(data_dir);
  const bool kafka = config.ok() && config->log.kind == "kafka";
  if (!consumer) return Fail(consumer.status());

  // Per partition: where to start, how many to print, where the log ended when we looked.
  bool explicit_start = args.offset >= 0 || args.from_beginning;
  int64_t last_n = args.count >= 0 ? args.count : 10;
  std::vector<bool> selected(info->size());
  std::vector<int64_t> limit(info->size()), printed(info->size(), 0), stop_at(info->size());
  for (const auto& p : *info) {
    size_t i = static_cast<size_t>(p.partition);
    selected[i] = args.partition < 0 || args.partition == p.partition;
    stop_at[i] = p.end_offset;
    int64_t from = p.end_offset;
    if (selected[i]) {
      if (args.offset >= 0) from = args.offset;
      else if (args.from_beginning) from = p.start_offset;
      else from = std::max(p.start_offset, p.end_offset - last_n);
    }
    limit[i] = explicit_start && args.count >= 0 ? args.count : INT64_MAX;
    Status s = (*consumer)->Seek(p.partition, from);
    if (!s.ok()) return Fail(s);
  }
  auto done = [&] {
    if (args.follow) return false;
    for (size_t i = 0; i < selected.size(); ++i) {
      if (selected[i] && printed[i] < limit[i] && (*consumer)->Position(static_cast<int32_t>(i)) < stop_at[i]) {
        return false;
      }
    }
    return true;
  };

  std::vector<log::ConsumedRecord> batch;
  std::string out;
  while (!done()) {
    // Kafka's records arrive from the brokers asynchronously: give the first fetch time.
    auto wait = args.follow ? std::chrono::milliseconds(500) : kafka ? std::chrono::milliseconds(3000) : std::chrono::milliseconds(0);
    Status s = (*consumer)->Poll(&batch, 4096, wait);
    if (!s.ok()) return Fail(s);
    if (batch.empty() && !args.follow) break;  // nothing more to read (gaps, or deleted meanwhile)
    out.clear();
    for (const auto& r : batch) {
      size_t i = static_cast<size_t>(r.partition);
      if (!selected[i]) continue;
      if (!args.follow && (r.offset >= stop_at[i] || printed[i] >= limit[i])) continue;
      ++printed[i];
      if (args.format == "ndjson") {
        out += fmt::format(R"({{"partition":{},"offset":{},"timestamp":"{}","key":)", r.partition, r.offset,
                           FormatTimestamp(r.timestamp_us));
        AppendJsonString(&out, r.key);
        out += ",\"value\":";
        if (r.value.empty()) out += "null";
        else out += r.value;
        out += "}\n";
      } else {
        out += fmt::format("p{}@{} {} key={} {}\n", r.partition, r.offset, FormatTimestamp(r.timestamp_us), r.key,
                           r.value);
      }
    }
    if (!out.empty()) std::fwrite(out.data(), 1, out.size(), stdout);
    if (args.follow) std::fflush(stdout);
  }
  std::fflush(stdout);
  return 0;
}

// Reads every batch of every segment and checks both checksums, without the Log: it must
// also work on a log that no longer opens.
int Verify(const Where& where) {
  auto config = Load(where);
  if (!config.ok()) return Fail(config.status());
  if (config->log.kind != "embedded") {
    return Fail(Status::InvalidArgument("mare log verify checks the embedded log's files; Kafka's brokers check their own"));
  }
  const std::string& data_dir = config->data_dir;
  std::string topics_dir = LogDir(data_dir) + "/topics";
  if (!log::file::Exists(LogDir(data_dir))) return Fail(Status::NotFound("no log at " + LogDir(data_dir)));
  auto topics = log::file::ListDir(topics_dir);
  if (!topics) topics = std::vector<std::string>{};
  std::sort(topics->begin(), topics->end());
  int64_t n_topics = 0, n_partitions = 0, n_segments = 0, n_batches = 0, n_records = 0, n_bytes = 0, problems = 0;
  std::string buffer;
  auto problem = [&](const std::string& text) {
    std::fprintf(stderr, "corruption: %s\n", text.c_str());
    ++problems;
  };
  for (const std::string& topic : *topics) {
    std::string topic_dir = topics_dir + "/" + topic;
    auto meta_text = log::file::ReadAll(topic_dir + "/topic.toml");
    if (!meta_text) {
      std::fprintf(stderr, "warning: %s has no topic.toml; skipped\n", topic_dir.c_str());
      continue;
    }
    auto meta = log::format::ParseTopicMeta(*meta_text, topic);
    if (!meta) {
      problem(topic_dir + "/topic.toml: " + meta.status().message());
      continue;
    }
    ++n_topics;
    for (int32_t p = 0; p < meta->partitions; ++p) {
      ++n_partitions;
      std::string dir = topic_dir + "/" + std::to_string(p);
      auto names = log::file::ListDir(dir);
      if (!names) continue;
      std::vector<int64_t> bases;
      for (const auto& name : *names) {
        int64_t base;
        if (log::format::ParseSegmentFileName(name, &base)) bases.push_back(base);
      }
      std::sort(bases.begin(), bases.end());
      int64_t previous_end = -1;
      for (size_t i = 0; i < bases.size(); ++i) {
        std::string path = dir + "/" + log::format::SegmentFileName(bases[i]);
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;  // deleted by retention meanwhile
        ++n_segments;
        if (previous_end > bases[i]) {
          problem(fmt::format("{}: starts at offset {}, before the previous segment ends ({})", path, bases[i],
                              previous_end));
        }
        log::format::SegmentScan scan;
        scan.next_offset = bases[i];
        Status s = log::format::ScanSegment(fd, /*verify_bodies=*/true, &scan, &buffer);
        ::close(fd);
        if (!s.ok()) return Fail(Status::IOError(path + ": " + s.message()));
        n_batches += scan.batches;
        n_records += scan.records;
        n_bytes += scan.file_bytes;
        previous_end = scan.next_offset;
        if (scan.tail == log::format::SegmentScan::Tail::kCorrupt) {
          problem(fmt::format("{} at byte {}: {}", path, scan.valid_bytes, scan.why));
        } else if (scan.tail == log::format::SegmentScan::Tail::kTorn) {
          std::fprintf(stderr,
                       "note: %s ends with an incomplete batch at byte %lld (%s): being written now, or a torn "
                       "tail the next `mare run` truncates\n",
                       path.c_str(), static_cast<long long>(scan.valid_bytes), scan.why.c_str());
        }
      }
    }
  }
  std::printf("verified %lld topics, %lld partitions, %lld segments, %lld batches, %lld records, %s: %s\n",
              static_cast<long long>(n_topics), static_cast<long long>(n_partitions),
              static_cast<long long>(n_segments), static_cast<long long>(n_batches),
              static_cast<long long>(n_records), HumanBytes(n_bytes).c_str(),
              problems == 0 ? "OK" : fmt::format("{} corrupt", problems).c_str());
  return problems == 0 ? 0 : 1;
}

struct ProduceArgs {
  std::string topic;
  int32_t partitions = 4;
  bool with_timestamps = false;
};

// Appends stdin's lines, KEY<TAB>VALUE (or TIMESTAMP_US<TAB>KEY<TAB>VALUE), to a topic, each to
// the partition the topic's partitioner gives its key's leading integer (the sensor id), as ingest does.
int Produce(const Where& where, const ProduceArgs& args) {
  metrics::Registry registry;
  auto config = Load(where);
  if (!config.ok()) return Fail(config.status());
  auto opened = OpenLog(*config, {.client_id = "mare-log", .metrics = &registry});
  if (!opened.ok()) return Fail(opened.status());
  log::Log& log = **opened;
  Status s = log.CreateTopic({.name = args.topic, .partitions = args.partitions});
  if (!s.ok()) return Fail(s);
  int32_t partitions = log.Partitions(args.topic);
  std::string line;
  int64_t count = 0, line_no = 0;
  int c;
  auto flush_line = [&]() -> bool {
    ++line_no;
    if (line.empty()) return true;
    std::string_view rest(line);
    int64_t ts = NowMicros();
    if (args.with_timestamps) {
      size_t tab = rest.find('\t');
      auto [p, ec] = std::from_chars(rest.data(), rest.data() + (tab == std::string_view::npos ? 0 : tab), ts);
      if (tab == std::string_view::npos || ec != std::errc() || p != rest.data() + tab) {
        std::fprintf(stderr, "mare log produce: line %lld: expected TIMESTAMP_US<TAB>KEY<TAB>VALUE\n", static_cast<long long>(line_no));
        return false;
      }
      rest.remove_prefix(tab + 1);
    }
    size_t tab = rest.find('\t');
    if (tab == std::string_view::npos) {
      std::fprintf(stderr, "mare log produce: line %lld: expected KEY<TAB>VALUE\n", static_cast<long long>(line_no));
      return false;
    }
    std::string_view key = rest.substr(0, tab), value = rest.substr(tab + 1);
    uint64_t sensor = 0;
    std::from_chars(key.data(), key.data() + key.size(), sensor);
    log::Record record{ts, key, value};
    Status st = log.Append(args.topic, log::PartitionFor(log.TopicPartitioner(args.topic), sensor, partitions), std::span(&record, 1));
    if (!st.ok()) {
      Fail(st);
      return false;
    }
    ++count;
    line.clear();
    return true;
  };
  while ((c = std::fgetc(stdin)) != EOF) {
    if (c == '\n') {
      if (!flush_line()) return 1;
    } else {
      line.push_back(static_cast<char>(c));
    }
  }
  if (!line.empty() && !flush_line()) return 1;
  s = log.Sync();
  if (!s.ok()) return Fail(s);
  std::fprintf(stderr, "mare log produce: appended %lld records to %s\n", static_cast<long long>(count), args.topic.c_str());
  return 0;
}

}  // namespace

void AddLogCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("log", "Inspect the embedded log (read-only; safe beside a running `mare run`)");
  cmd->require_subcommand(1);
  auto data_dir = std::make_shared<Where>();
  auto add_data_dir = [data_dir](CLI::App* sub) {
    sub->add_option("--data-dir", data_dir->data_dir, "Data directory; the log is <data-dir>/log (default data)");
    sub->add_option("-c,--config", data_dir->config, "TOML config file: its [log] section says which log, e.g. Kafka")
        ->check(CLI::ExistingFile);
    sub->add_option("--set", data_dir->sets, "Override a config key: --set log.kind=kafka --set log.kafka.brokers=k1:9092");
  };

  auto* topics = cmd->add_subcommand("topics", "Topics: partitions, records, bytes on disk, retention");
  add_data_dir(topics);
  topics->callback([=] { *exit_code = Topics(*data_dir); });

  auto topic = std::make_shared<std::string>();
  auto* partitions = cmd->add_subcommand(
      "partitions", "Partitions of a topic: offsets, records, segments, bytes, oldest/newest append time");
  add_data_dir(partitions);
  partitions->add_option("topic", *topic, "Topic")->required();
  partitions->callback([=] { *exit_code = Partitions(*data_dir, *topic); });

  auto* groups = cmd->add_subcommand("groups", "Consumer groups of a topic: committed offset, end offset, lag");
  add_data_dir(groups);
  groups->add_option("topic", *topic, "Topic")->required();
  groups->callback([=] { *exit_code = Groups(*data_dir, *topic); });

  auto tail_args = std::make_shared<TailArgs>();
  auto* tail = cmd->add_subcommand("tail",
                                   "Print records of a topic. By default the last 10 of each partition; "
                                   "--from-beginning prints every retained record.");
  add_data_dir(tail);
  tail->add_option("topic", tail_args->topic, "Topic")->required();
  tail->add_option("--partition", tail_args->partition, "Only this partition")->check(CLI::NonNegativeNumber);
  auto* offset = tail->add_option("--offset", tail_args->offset, "Start at this offset (in each partition)")
                     ->check(CLI::NonNegativeNumber);
  tail->add_flag("--from-beginning", tail_args->from_beginning, "Start at the oldest retained record")
      ->excludes(offset);
  tail->add_option("-n", tail_args->count,
                   "Without --offset/--from-beginning: start this many records before the end of each partition "
                   "(default 10). With them: print at most this many per partition (default: all).")
      ->check(CLI::NonNegativeNumber);
  tail->add_flag("-f,--follow", tail_args->follow,
                 "After the records above, keep printing new ones as they are appended (until interrupted); "
                 "-n then only chooses the start");
  tail->add_option("--format", tail_args->format,
                   "text: p<partition>@<offset> <event time> key=<key> <value>; ndjson: one JSON object per record "
                   "{partition, offset, timestamp, key, value}")
      ->check(CLI::IsMember({"text", "ndjson"}))
      ->capture_default_str();
  tail->callback([=] { *exit_code = Tail(*data_dir, *tail_args); });

  auto* verify = cmd->add_subcommand(
      "verify", "Check every batch checksum in every segment; exit 1 naming file and byte position on corruption");
  add_data_dir(verify);
  verify->callback([=] { *exit_code = Verify(*data_dir); });

  auto produce_args = std::make_shared<ProduceArgs>();
  auto* produce = cmd->add_subcommand(
      "produce",
      "Append records from stdin, one KEY<TAB>VALUE line each, to a topic (created if absent), partitioned by the "
      "key's leading integer. Opens the log for writing: not beside a running `mare run`.");
  add_data_dir(produce);
  produce->add_option("topic", produce_args->topic, "Topic")->required();
  produce->add_option("--partitions", produce_args->partitions, "Partitions if the topic is created")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  produce->add_flag("--with-timestamps", produce_args->with_timestamps,
                    "Lines are TIMESTAMP_US<TAB>KEY<TAB>VALUE (default: the record timestamp is now)");
  produce->callback([=] { *exit_code = Produce(*data_dir, *produce_args); });
}

}  // namespace mare::cli
