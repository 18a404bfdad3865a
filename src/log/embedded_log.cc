// The embedded log. Layout and byte formats: docs/formats/log.md; the batch codec and the
// segment scanner live in format.cc, this file adds files, locking, threads and metrics.
//
// Locking: a partition's mutex guards its segment list, index and end offset; an Append holds
// it only for the pwrite of an already encoded batch. fsyncs run outside it, one at a time per
// partition (sync_mu), so under fsync = batch concurrent appenders share one fdatasync. Lock
// order: topics_mu -> partition mu -> partition sync_mu; the notify mutex is taken alone.
#include "log/embedded_log.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <shared_mutex>
#include <thread>
#include <utility>

#include "common/time.h"
#include "log/compaction.h"
#include "log/file.h"
#include "log/format.h"
#include "log/log_metrics.h"

namespace mare::log {

namespace {

constexpr int64_t kReadOnlyRefreshUs = 100'000;           // read-only: re-check files this often
constexpr int64_t kMaxPollBytesPerPartition = 4LL << 20;  // one pread per partition per Poll
constexpr int32_t kMaxPartitions = 100'000;

struct Segment {
  Segment(std::string path_in, int64_t base, int fd_in)
      : path(std::move(path_in)), base_offset(base), fd(fd_in), end_offset(base) {}
  ~Segment() { ::close(fd); }
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  const std::string path;
  const int64_t base_offset;
  const int fd;
  // Guarded by the partition's mutex; size is atomic because syncs read it without that lock.
  std::atomic<int64_t> size{0};  // bytes of complete, checked batches
  int64_t end_offset;            // offset after the segment's last record
  int64_t first_append_us = 0;   // 0 while empty
  int64_t last_append_us = 0;
  std::vector<format::IndexEntry> index;  // one entry per batch
  std::atomic<int64_t> synced{0};         // bytes known to be on stable storage
  // Bytes [0, verified) are known good: this process wrote them, or checked their bodies (at
  // open, in a read-only refresh, or when a consumer first read them). A consumer checks a
  // batch's body checksum and layout only beyond it, so each batch once per process.
  std::atomic<int64_t> verified{0};
};
using SegmentPtr = std::shared_ptr<Segment>;

struct Partition {
  int32_t id = 0;
  std::string dir;
  mutable std::mutex mu;
  std::deque<SegmentPtr> segments;  // oldest first; a writer always has one, back() is active
  int64_t end_offset = 0;
  int64_t last_append_us = 0;
  Status failed;              // sticky after a failed write or fsync: the tail is uncertain
  int64_t refreshed_at = -1;  // read-only: MonotonicMicros of the last look at the files
  std::mutex sync_mu;         // one fdatasync at a time
  metrics::Gauge* end_offset_gauge = nullptr;
  bool compact = false;       // the topic's, as of the last CreateTopic
  // Compaction: every record before this offset has been compared with the newest of its key
  // up to here. In memory only: after a restart the first pass starts again from the oldest.
  // Touched only under Core::compaction_mu_.
  int64_t compacted_upto = 0;

  int64_t start_offset() const { return segments.empty() ? end_offset : segments.front()->base_offset; }
  int64_t bytes() const {
    int64_t n = 0;
    for (const auto& s : segments) n += s->size.load();
    return n;
  }
};

struct Topic {
  std::string name;
  std::string dir;
  std::atomic<int64_t> retention_us{0};
  std::atomic<int64_t> retention_bytes{0};
  std::atomic<bool> compact{false};
  // The codec of batches appended and compacted from now on (TopicConfig::compression).
  std::atomic<Compression> compression{Compression::kNone};
  Partitioner partitioner = Partitioner::kMurmur2;  // fixed at creation, as the partition count
  std::vector<std::unique_ptr<Partition>> partitions;

  // Append bumps `appends` and wakes waiting consumers.
  std::atomic<uint64_t> appends{0};
  std::atomic<int> waiters{0};
  std::mutex notify_mu;
  std::condition_variable appended;

  metrics::Counter* appended_records = nullptr;
  metrics::Counter* appended_bytes = nullptr;               // as stored
  metrics::Counter* appended_uncompressed_bytes = nullptr;  // before compression
  metrics::Counter* append_batches = nullptr;
  metrics::Counter* deleted_by_age = nullptr;
  metrics::Counter* deleted_by_size = nullptr;
  metrics::Gauge* disk_bytes = nullptr;
  metrics::Counter* compacted_segments = nullptr;
  metrics::Counter* compacted_records = nullptr;
  metrics::Counter* compacted_bytes = nullptr;
  metrics::Counter* compaction_passes = nullptr;
};

struct GroupOffsets {
  std::string path;
  std::mutex mu;
  std::map<int32_t, int64_t> committed;
};

// Everything consumers share with the log; outlives the Log object while consumers exist.
class Core {
 public:
  explicit Core(const EmbeddedLogOptions& options)
      : options_(options),
        registry_(options.metrics ? options.metrics : &metrics::Registry::Global()),
        topics_dir_(options.dir + "/topics"),
        consumers_dir_(options.dir + "/consumers") {
    fsync_seconds_ = &registry_->GetHistogram(log_metrics::kFsyncSeconds);
    truncated_bytes_ = &registry_->GetCounter(log_metrics::kBytesTruncated);
    std::random_device random;
    next_group_id_ = (static_cast<uint64_t>(random()) << 32) ^ random();
  }
  ~Core() {
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }

  const EmbeddedLogOptions& options() const { return options_; }
  bool read_only() const { return options_.read_only; }
  int64_t Now() const { return options_.now_us ? options_.now_us() : NowMicros(); }

  Status Open(const std::shared_ptr<Core>& self);
  void ReleaseLock() {
    if (lock_fd_ >= 0) ::close(lock_fd_);
    lock_fd_ = -1;
  }

  std::shared_ptr<Topic> FindTopic(std::string_view name) const {
    std::shared_lock lock(topics_mu_);
    auto it = topics_.find(name);
    return it == topics_.end() ? nullptr : it->second;
  }
  std::vector<std::shared_ptr<Topic>> AllTopics() const {
    std::shared_lock lock(topics_mu_);
    std::vector<std::shared_ptr<Topic>> out;
    for (const auto& [name, t] : topics_) out.push_back(t);
    return out;
  }

  Status CreateTopic(const TopicConfig& config);
  Status Append(std::string_view topic, int32_t partition, std::span<const Record> records, int64_t* first_offset);
  Status AppendTogether(std::string_view topic, std::span<const PartitionRecords> parts, std::vector<Status>* results);
  Result<std::shared_ptr<GroupOffsets>> Group(const std::string& group, const std::string& topic);
  std::vector<std::string> Groups(std::string_view topic) const;
  Status CommitOffsets(GroupOffsets& g, const std::string& group);

  // Read-only: brings the partition's view up to date with the files. Caller holds p.mu.
  Status Refresh(Partition& p);
  Status RefreshIfStale(Partition& p) {
    if (!read_only()) return Status::OK();
    int64_t now = MonotonicMicros();
    if (p.refreshed_at >= 0 && now - p.refreshed_at < kReadOnlyRefreshUs) return Status::OK();
    return Refresh(p);
  }

  Status SyncAll();
  // Rolls segments past their age, deletes what retention allows and compacts compacted topics.
  void Maintain();

 private:
  Status Lock();
  Result<std::shared_ptr<Topic>> LoadTopic(const TopicConfig& config);
  Status LoadPartition(Topic& topic, Partition& p);
  // Recovery: removes the parts of groups a crash cut short (docs/formats/log.md, "Groups").
  Status DropIncompleteGroups(Topic& topic);
  // The group trailer of the partition's last batch, if that batch is a group's part; its
  // position and base offset in *position and *offset. Caller holds p.mu (or owns p alone).
  Result<std::optional<format::GroupTrailer>> TailGroupPart(Partition& p, int64_t* position, int64_t* offset);
  // Whether the batch starting at `offset` of the partition is a part of group `id`.
  Result<bool> HoldsGroupPart(Partition& p, int64_t offset, uint64_t id);
  Status CreateSegment(Partition& p);    // caller holds p.mu
  Status Roll(Partition& p);             // caller holds p.mu
  void ApplyRetention(Topic& topic, Partition& p, int64_t now);  // caller holds p.mu
  Status SyncSegment(Partition& p, const SegmentPtr& segment, int64_t upto);
  // One compaction pass over a partition of a compacted topic; takes p.mu only to look and swap.
  Status Compact(Topic& topic, Partition& p);
  // A segment's compacted copy at tmp_path, opened and indexed, to take the segment's place.
  Result<SegmentPtr> OpenCompacted(const Segment& old, const std::string& tmp_path);

  const EmbeddedLogOptions options_;
  std::mutex compaction_mu_;  // one compaction at a time (the background thread, or Maintain())
  metrics::Registry* const registry_;
  metrics::Histogram* fsync_seconds_ = nullptr;
  metrics::Counter* truncated_bytes_ = nullptr;
  std::atomic<uint64_t> next_group_id_{0};  // random at open: ids differ across restarts too
  const std::string topics_dir_;
  const std::string consumers_dir_;
  int lock_fd_ = -1;

  mutable std::shared_mutex topics_mu_;
  std::map<std::string, std::shared_ptr<Topic>, std::less<>> topics_;

  std::mutex groups_mu_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<GroupOffsets>> groups_;
};

Status Core::Lock() {
  std::string path = options_.dir + "/LOCK";
  lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return Status::FromErrno("open " + path, errno);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (e != EWOULDBLOCK) return Status::FromErrno("flock " + path, e);
    std::string holder;
    if (auto text = file::ReadAll(path); text && !text->empty()) {
      holder = " by pid " + text->substr(0, text->find('\n'));
    }
    return Status::Unavailable(fmt::format(
        "log {} is already open for writing{} (lock {} is held); is another `mare run` using this data dir?",
        options_.dir, holder, path));
  }
  std::string pid = fmt::format("{}\n", ::getpid());
  if (::ftruncate(lock_fd_, 0) == 0) (void)file::WriteAt(lock_fd_, 0, pid.data(), pid.size(), path);
  return Status::OK();
}

Status Core::Open(const std::shared_ptr<Core>& self) {
  if (read_only()) {
    if (!file::Exists(options_.dir)) return Status::NotFound("no log at " + options_.dir);
  } else {
    MARE_RETURN_IF_ERROR(file::CreateDirs(topics_dir_));
    MARE_RETURN_IF_ERROR(file::CreateDirs(consumers_dir_));
    MARE_RETURN_IF_ERROR(Lock());
  }
  auto names = file::ListDir(topics_dir_);
  if (!names) {
    if (!names.status().IsNotFound()) return names.status();
    names = std::vector<std::string>{};
  }
  std::sort(names->begin(), names->end());
  for (const std::string& name : *names) {
    if (!format::IsValidName(name)) continue;
    std::string meta_path = topics_dir_ + "/" + name + "/topic.toml";
    auto text = file::ReadAll(meta_path);
    if (!text) {
      if (text.status().IsNotFound()) {
        spdlog::warn("log: ignoring {}/{}: no topic.toml (topic creation interrupted?)", topics_dir_, name);
        continue;
      }
      return text.status();
    }
    auto config = format::ParseTopicMeta(*text, name);
    if (!config) return Status::Corruption(meta_path + ": " + config.status().message());
    auto topic = LoadTopic(*config);
    if (!topic) return topic.status();
    topics_[name] = *topic;
  }

  std::weak_ptr<Core> weak = self;
  registry_->AddRefresher([weak] {
    auto core = weak.lock();
    if (!core) return;
    for (const auto& t : core->AllTopics()) {
      int64_t bytes = 0;
      for (const auto& p : t->partitions) {
        std::lock_guard lock(p->mu);
        bytes += p->bytes();
      }
      t->disk_bytes->Set(static_cast<double>(bytes));
    }
  });
  return Status::OK();
}

Result<std::shared_ptr<Topic>> Core::LoadTopic(const TopicConfig& config) {
  auto topic = std::make_shared<Topic>();
  topic->name = config.name;
  topic->dir = topics_dir_ + "/" + config.name;
  topic->retention_us = config.retention_us;
  topic->retention_bytes = config.retention_bytes;
  topic->partitioner = config.partitioner;
  metrics::Labels labels = {{"topic", config.name}};
  topic->appended_records = &registry_->GetCounter(log_metrics::kRecordsAppended, labels);
  topic->appended_bytes = &registry_->GetCounter(log_metrics::kBytesAppended, labels);
  topic->appended_uncompressed_bytes = &registry_->GetCounter(log_metrics::kUncompressedBytesAppended, labels);
  topic->append_batches = &registry_->GetCounter(log_metrics::kBatchesAppended, labels);
  topic->deleted_by_age = &registry_->GetCounter(log_metrics::kSegmentsDeleted, {{"topic", config.name}, {"reason", "age"}});
  topic->deleted_by_size = &registry_->GetCounter(log_metrics::kSegmentsDeleted, {{"topic", config.name}, {"reason", "size"}});
  topic->disk_bytes = &registry_->GetGauge(log_metrics::kDiskBytes, labels);
  topic->compact = config.compact;
  topic->compression = config.compression.value_or(Compression::kNone);
  topic->compacted_segments = &registry_->GetCounter(log_metrics::kCompactedSegments, labels);
  topic->compacted_records = &registry_->GetCounter(log_metrics::kCompactedRecordsRemoved, labels);
  topic->compacted_bytes = &registry_->GetCounter(log_metrics::kCompactedBytesRemoved, labels);
  topic->compaction_passes = &registry_->GetCounter(log_metrics::kCompactionPasses, labels);
  for (int32_t i = 0; i < config.partitions; ++i) {
    auto p = std::make_unique<Partition>();
    p->id = i;
    p->dir = topic->dir + "/" + std::to_string(i);
    p->compact = config.compact;
    p->end_offset_gauge =
        &registry_->GetGauge(log_metrics::kEndOffset, {{"topic", config.name}, {"partition", std::to_string(i)}});
    std::lock_guard lock(p->mu);
    MARE_RETURN_IF_ERROR(LoadPartition(*topic, *p));
    topic->partitions.push_back(std::move(p));
  }
  if (!read_only()) MARE_RETURN_IF_ERROR(DropIncompleteGroups(*topic));
  return topic;
}

// A group's parts are written in partition order while the writer holds every one of their
// partitions' locks, and made visible only once the last is written (AppendTogether). So when
// a kill stops it midway, each part it wrote is the last batch of its partition, and nothing
// is appended after it: removing those parts is truncating tails, as for a torn batch. A part
// whose group's last part is in the log belongs to a complete group, wherever it is.
Status Core::DropIncompleteGroups(Topic& topic) {
  for (bool dropped = true; dropped;) {
    dropped = false;
    for (const auto& pp : topic.partitions) {
      Partition& p = *pp;
      int64_t position = 0;
      int64_t offset = 0;
      auto tail = TailGroupPart(p, &position, &offset);
      if (!tail.ok()) return tail.status();
      if (!*tail) continue;
      const format::GroupTrailer& g = **tail;
      if (g.last_partition == p.id && g.last_offset == offset) continue;  // the last part itself
      bool complete = false;
      if (g.last_partition >= 0 && static_cast<size_t>(g.last_partition) < topic.partitions.size()) {
        auto held = HoldsGroupPart(*topic.partitions[static_cast<size_t>(g.last_partition)], g.last_offset, g.id);
        if (!held.ok()) return held.status();
        complete = *held;
      }
      if (complete) continue;
      Segment& s = *p.segments.back();
      int64_t bytes = s.size.load() - position;
      spdlog::warn("log: removing the tail of {} from byte {} (offset {}, {} bytes): part of a group of batches whose "
                   "last part (partition {}, offset {}) a crash left unwritten",
                   s.path, position, offset, bytes, g.last_partition, g.last_offset);
      if (::ftruncate(s.fd, position) != 0) return Status::FromErrno("truncate " + s.path, errno);
      if (::fdatasync(s.fd) != 0) return Status::FromErrno("fdatasync " + s.path, errno);
      truncated_bytes_->Add(static_cast<uint64_t>(bytes));
      s.index.pop_back();
      s.size = position;
      s.verified = std::min(s.verified.load(), position);
      s.synced = std::min(s.synced.load(), position);
      s.end_offset = offset;
      if (s.index.empty()) s.first_append_us = 0;
      // last_append_us stays: append times only need to keep from going back.
      p.end_offset = offset;
      p.end_offset_gauge->Set(static_cast<double>(p.end_offset));
      dropped = true;
    }
  }
  return Status::OK();
}

Result<std::optional<format::GroupTrailer>> Core::TailGroupPart(Partition& p, int64_t* position, int64_t* offset) {
  if (p.segments.empty() || p.segments.back()->index.empty()) return std::optional<format::GroupTrailer>();
  const Segment& s = *p.segments.back();
  const format::IndexEntry& e = s.index.back();
  char header[format::kBatchHeaderSize];
  size_t got = 0;
  MARE_RETURN_IF_ERROR(file::ReadAt(s.fd, e.position, header, sizeof header, &got, s.path));
  format::BatchHeader h;
  std::string why;
  if (got < sizeof header || !format::ParseBatchHeader(header, &h, &why)) {
    return Status::Corruption(fmt::format("{} at byte {}: {}", s.path, e.position, why.empty() ? "short read" : why));
  }
  if (!(h.attributes & format::kAttrGroup)) return std::optional<format::GroupTrailer>();
  char trailer[format::kGroupTrailerSize];
  MARE_RETURN_IF_ERROR(
      file::ReadAt(s.fd, e.position + h.length - format::kGroupTrailerSize, trailer, sizeof trailer, &got, s.path));
  if (got < sizeof trailer) return Status::Corruption(fmt::format("{} at byte {}: short group trailer", s.path, e.position));
  *position = e.position;
  *offset = e.offset;
  return std::optional<format::GroupTrailer>(format::ReadGroupTrailer(trailer));
}

Result<bool> Core::HoldsGroupPart(Partition& p, int64_t offset, uint64_t id) {
  if (offset >= p.end_offset) return false;
  auto it = std::upper_bound(p.segments.begin(), p.segments.end(), offset,
                             [](int64_t o, const SegmentPtr& s) { return o < s->base_offset; });
  if (it == p.segments.begin()) return false;
  const Segment& s = **--it;
  auto e = std::lower_bound(s.index.begin(), s.index.end(), offset,
                            [](const format::IndexEntry& x, int64_t o) { return x.offset < o; });
  if (e == s.index.end() || e->offset != offset) return false;
  char header[format::kBatchHeaderSize];
  size_t got = 0;
  MARE_RETURN_IF_ERROR(file::ReadAt(s.fd, e->position, header, sizeof header, &got, s.path));
  format::BatchHeader h;
  std::string why;
  if (got < sizeof header || !format::ParseBatchHeader(header, &h, &why) || !(h.attributes & format::kAttrGroup)) {
    return false;
  }
  char trailer[format::kGroupTrailerSize];
  MARE_RETURN_IF_ERROR(
      file::ReadAt(s.fd, e->position + h.length - format::kGroupTrailerSize, trailer, sizeof trailer, &got, s.path));
  return got == sizeof trailer && format::ReadGroupTrailer(trailer).id == id;
}

// Recovery: every segment's batch headers are read (and checked by their own checksum) to
// build the index; a writer checks the newest segment's batch bodies as well, since that is
// where a crash leaves damage and it truncates a torn tail. Other bodies are checked as they
// are read.
Status Core::LoadPartition(Topic& topic, Partition& p) {
  auto names = file::ListDir(p.dir);
  if (!names) {
    if (!names.status().IsNotFound()) return names.status();
    names = std::vector<std::string>{};
    if (!read_only()) {
      MARE_RETURN_IF_ERROR(file::CreateDirs(p.dir));
      MARE_RETURN_IF_ERROR(file::SyncDir(topic.dir));
    }
  }
  std::vector<int64_t> bases;
  for (const std::string& name : *names) {
    int64_t base;
    if (format::ParseSegmentFileName(name, &base)) bases.push_back(base);
    std::string_view n = name;
    if (!read_only() && n.size() > kCleanedSuffix.size() && n.ends_with(kCleanedSuffix)) {
      // A compacted copy a crash left before it replaced its segment: the segment is whole.
      std::string path = p.dir + "/" + name;
      spdlog::info("log: removing {}, an interrupted compaction's copy", path);
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Status::FromErrno("unlink " + path, errno);
    }
  }
  std::sort(bases.begin(), bases.end());

  std::string buffer;
  for (size_t i = 0; i < bases.size(); ++i) {
    std::string path = p.dir + "/" + format::SegmentFileName(bases[i]);
    int fd = ::open(path.c_str(), (read_only() ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT && read_only()) continue;  // deleted by the writer's retention just now
      return Status::FromErrno("open " + path, errno);
    }
    auto segment = std::make_shared<Segment>(path, bases[i], fd);
    if (!p.segments.empty()) {
      const Segment& prev = *p.segments.back();
      if (bases[i] < prev.end_offset) {
        return Status::Corruption(fmt::format("{}: starts at offset {} but {} already reaches offset {}", path,
                                              bases[i], prev.path, prev.end_offset));
      }
      if (bases[i] > prev.end_offset && !p.compact) {
        spdlog::warn("log: offsets {}..{} of {}/{} are missing (cut by an earlier repair)", prev.end_offset,
                     bases[i] - 1, topic.name, p.id);
      }
    }
    bool newest = i + 1 == bases.size();
    // A read-only opener repairs nothing, so it need not know at open whether the newest
    // segment's tail is damaged: each body it reads is checked then (verified stays 0). With
    // repair it must, to stop reading where the damage starts.
    bool check_bodies = newest && (!read_only() || options_.repair);
    format::SegmentScan scan;
    scan.next_offset = bases[i];
    Status s = format::ScanSegment(fd, check_bodies, &scan, &buffer);
    if (!s.ok()) return Status::IOError(path + ": " + s.message());
    if (scan.tail != format::SegmentScan::Tail::kClean) {
      int64_t dropped = scan.file_bytes - scan.valid_bytes;
      bool corrupt = scan.tail == format::SegmentScan::Tail::kCorrupt;
      if (corrupt && !options_.repair) {
        return Status::Corruption(fmt::format("{} at byte {}: {} (`mare log verify` lists every damaged batch; `mare run --repair-log` truncates the segment there, losing what follows in it)",
                                              path, scan.valid_bytes, scan.why));
      }
      if (!read_only()) {
        if (corrupt) {
          spdlog::warn("log: repair: truncating {} at byte {}, dropping {} bytes: {}", path, scan.valid_bytes,
                       dropped, scan.why);
        } else {
          spdlog::warn("log: truncating torn tail of {} at byte {} ({} bytes: {})", path, scan.valid_bytes, dropped,
                       scan.why);
        }
        if (::ftruncate(fd, scan.valid_bytes) != 0) return Status::FromErrno("truncate " + path, errno);
        if (::fdatasync(fd) != 0) return Status::FromErrno("fdatasync " + path, errno);
        truncated_bytes_->Add(static_cast<uint64_t>(dropped));
      }
    }
    segment->size = scan.valid_bytes;
    segment->verified = check_bodies ? scan.valid_bytes : 0;
    // The newest segment may hold bytes a killed process wrote but never synced: sync it
    // at the first opportunity.
    segment->synced = newest ? 0 : scan.valid_bytes;
    segment->end_offset = scan.next_offset;
    segment->first_append_us = scan.first_append_us;
    segment->last_append_us = scan.last_append_us;
    segment->index = std::move(scan.index);
    p.last_append_us = std::max(p.last_append_us, scan.last_append_us);
    p.segments.push_back(std::move(segment));
  }
  p.end_offset = p.segments.empty() ? 0 : p.segments.back()->end_offset;
  if (p.segments.empty() && !read_only()) MARE_RETURN_IF_ERROR(CreateSegment(p));
  p.refreshed_at = MonotonicMicros();
  p.end_offset_gauge->Set(static_cast<double>(p.end_offset));
  return Status::OK();
}

Status Core::CreateSegment(Partition& p) {
  std::string path = p.dir + "/" + format::SegmentFileName(p.end_offset);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("create " + path, errno);
  auto segment = std::make_shared<Segment>(path, p.end_offset, fd);
  if (options_.fsync != FsyncPolicy::kNever) {
    // The new name must survive a power loss, or the batches written into it would vanish.
    Status s = file::SyncDir(p.dir);
    if (!s.ok()) {
      ::unlink(path.c_str());
      return s;
    }
  }
  p.segments.push_back(std::move(segment));
  return Status::OK();
}

Status Core::Roll(Partition& p) {
  const SegmentPtr& old = p.segments.back();
  if (options_.fsync != FsyncPolicy::kNever) {
    MARE_RETURN_IF_ERROR(SyncSegment(p, old, old->size.load()));
  }
  return CreateSegment(p);
}

void Core::ApplyRetention(Topic& topic, Partition& p, int64_t now) {
  int64_t retention_us = topic.retention_us.load();
  int64_t retention_bytes = topic.retention_bytes.load();
  int64_t total = p.bytes();
  while (p.segments.size() > 1) {  // the active segment (back) is never deleted
    const Segment& s = *p.segments.front();
    metrics::Counter* reason = nullptr;
    if (s.size.load() == 0) {
      reason = nullptr;  // an empty leftover (after a repair); nothing to account for
    } else if (retention_us > 0 && s.last_append_us < now - retention_us) {
      reason = topic.deleted_by_age;
    } else if (retention_bytes > 0 && total > retention_bytes) {
      reason = topic.deleted_by_size;
    } else {
      break;
    }
    if (::unlink(s.path.c_str()) != 0 && errno != ENOENT) {
      spdlog::warn("log: cannot delete {}: {}", s.path, std::strerror(errno));
      break;
    }
    spdlog::debug("log: deleted {} ({} bytes, offsets {}..{})", s.path, s.size.load(), s.base_offset,
                  s.end_offset - 1);
    if (reason) reason->Add();
    total -= s.size.load();
    p.segments.pop_front();  // readers holding it keep reading through the open descriptor
  }
}

Status Core::SyncSegment(Partition& p, const SegmentPtr& segment, int64_t upto) {
  std::lock_guard lock(p.sync_mu);
  if (segment->synced.load() >= upto) return Status::OK();  // someone else's fsync covered it
  int64_t target = segment->size.load();
  int64_t start = MonotonicMicros();
  int rc = ::fdatasync(segment->fd);
  int e = errno;
  fsync_seconds_->Observe(static_cast<double>(MonotonicMicros() - start) / 1e6);
  if (rc != 0) return Status::FromErrno("fdatasync " + segment->path, e);
  if (segment->synced.load() < target) segment->synced.store(target);
  return Status::OK();
}

Status Core::SyncAll() {
  Status result;
  for (const auto& topic : AllTopics()) {
    for (const auto& p : topic->partitions) {
      std::vector<SegmentPtr> dirty;
      {
        std::lock_guard lock(p->mu);
        for (const auto& s : p->segments) {
          if (s->synced.load() < s->size.load()) dirty.push_back(s);
        }
      }
      for (const auto& s : dirty) {
        Status st = SyncSegment(*p, s, s->size.load());
        if (!st.ok()) {
          // After a failed fsync the kernel may have dropped the dirty pages; refuse further
          // appends rather than acknowledge on top of a hole.
          std::lock_guard lock(p->mu);
          if (p->failed.ok()) p->failed = st;
          if (result.ok()) result = st;
        }
      }
    }
  }
  return result;
}

void Core::Maintain() {
  for (const auto& topic : AllTopics()) {
    for (const auto& p : topic->partitions) {
      {
        std::lock_guard lock(p->mu);
        if (p->segments.empty() || !p->failed.ok()) continue;
        int64_t now = Now();
        const Segment& active = *p->segments.back();
        if (active.size.load() > 0 && now - active.first_append_us >= options_.segment_age_us) {
          Status s = Roll(*p);
          if (!s.ok()) spdlog::warn("log: cannot roll {}: {}", p->dir, s.ToString());
        }
        ApplyRetention(*topic, *p, now);
      }
      if (topic->compact.load()) {
        Status s = Compact(*topic, *p);
        if (!s.ok()) spdlog::warn("log: compaction of {} stopped: {}", p->dir, s.ToString());
      }
    }
  }
}

// Kafka's log cleaner, per partition: the closed segments old enough (compaction_lag_us) are
// the compactable part; records from compacted_upto on are new. A pass reads the new records
// into a table of each key's newest offset (as many as fit, from the oldest), then rewrites
// every compactable segment up to there that holds a record whose key has a newer one in the
// table, without those records. The copy is written beside the segment, synced, and renamed
// over it; a crash leaves the segment or its copy, both whole (docs/formats/log.md).
Status Core::Compact(Topic& topic, Partition& p) {
  std::lock_guard compaction(compaction_mu_);
  std::vector<SegmentPtr> closed;
  int64_t start = 0;
  {
    std::lock_guard lock(p.mu);
    if (!p.failed.ok()) return Status::OK();
    int64_t now = Now();
    for (size_t i = 0; i + 1 < p.segments.size(); ++i) {  // never the active one (back)
      const SegmentPtr& s = p.segments[i];
      if (s->last_append_us > now - options_.compaction_lag_us) break;
      closed.push_back(s);
    }
    start = p.start_offset();
  }
  if (closed.empty()) return Status::OK();
  int64_t from = std::max(p.compacted_upto, start);
  int64_t total = 0;
  int64_t fresh = 0;
  for (const SegmentPtr& s : closed) {
    total += s->size.load();
    if (s->end_offset > from) fresh += s->size.load();
  }
  if (fresh == 0 || static_cast<double>(fresh) < options_.compaction_dirty_ratio * static_cast<double>(total)) {
    return Status::OK();
  }

  KeyOffsets newest(options_.compaction_map_bytes);
  int64_t upto = from;
  bool full = false;
  for (const SegmentPtr& s : closed) {
    if (s->end_offset <= from) continue;
    MARE_RETURN_IF_ERROR(ForEachSegmentRecord(s->fd, s->path, s->index, s->size.load(), [&](const SegmentRecord& r) {
      if (full || r.offset < from) return;
      if (!newest.Put(r.key, r.offset)) {
        full = true;  // the rest waits for the next pass
        return;
      }
      upto = r.offset + 1;
    }));
    if (full) break;
    upto = std::max(upto, s->end_offset);
  }
  if (upto == from) return Status::OK();
  topic.compaction_passes->Add();

  const bool sync = options_.fsync != FsyncPolicy::kNever;
  for (const SegmentPtr& s : closed) {
    if (s->base_offset >= upto) break;
    int64_t superseded = 0;
    MARE_RETURN_IF_ERROR(ForEachSegmentRecord(s->fd, s->path, s->index, s->size.load(), [&](const SegmentRecord& r) {
      if (r.offset < upto && newest.Get(r.key) > r.offset) ++superseded;
    }));
    if (superseded == 0) continue;
    std::string tmp = CleanedFileName(s->path);
    CompactedSegment result;
    MARE_RETURN_IF_ERROR(CompactSegment(s->fd, s->path, s->index, s->size.load(), newest, upto, tmp, sync,
                                        topic.compression.load(), &result));
    if (options_.compaction_fault && options_.compaction_fault("written")) return Status::OK();
    SegmentPtr copy;
    if (result.records_kept > 0) {
      auto opened = OpenCompacted(*s, tmp);
      if (!opened) {
        ::unlink(tmp.c_str());
        return opened.status();
      }
      copy = *opened;
    }
    {
      std::lock_guard lock(p.mu);
      auto it = std::find(p.segments.begin(), p.segments.end(), s);
      if (it == p.segments.end()) {  // retention deleted it meanwhile
        if (copy) ::unlink(tmp.c_str());
        continue;
      }
      // Readers holding the old segment keep reading it through its open descriptor.
      if (copy) {
        if (::rename(tmp.c_str(), s->path.c_str()) != 0) {
          Status e = Status::FromErrno("rename " + tmp, errno);
          ::unlink(tmp.c_str());
          return e;
        }
        *it = copy;
      } else {
        if (::unlink(s->path.c_str()) != 0 && errno != ENOENT) return Status::FromErrno("unlink " + s->path, errno);
        p.segments.erase(it);
      }
    }
    if (options_.compaction_fault && options_.compaction_fault("renamed")) return Status::OK();
    if (sync) MARE_RETURN_IF_ERROR(file::SyncDir(p.dir));
    topic.compacted_segments->Add();
    topic.compacted_records->Add(static_cast<uint64_t>(result.records_in - result.records_kept));
    topic.compacted_bytes->Add(static_cast<uint64_t>(std::max<int64_t>(0, result.bytes_in - result.bytes_out)));
    spdlog::debug("log: compacted {}: {} of {} records kept, {} -> {} bytes", s->path, result.records_kept,
                  result.records_in, result.bytes_in, result.bytes_out);
  }
  p.compacted_upto = upto;
  return Status::OK();
}

Result<SegmentPtr> Core::OpenCompacted(const Segment& old, const std::string& tmp_path) {
  int fd = ::open(tmp_path.c_str(), (read_only() ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + tmp_path, errno);
  auto segment = std::make_shared<Segment>(old.path, old.base_offset, fd);
  format::SegmentScan scan;
  scan.next_offset = old.base_offset;
  std::string buffer;
  MARE_RETURN_IF_ERROR(format::ScanSegment(fd, /*verify_bodies=*/false, &scan, &buffer));
  if (scan.tail != format::SegmentScan::Tail::kClean) {
    return Status::Corruption(fmt::format("{} at byte {}: {}", tmp_path, scan.valid_bytes, scan.why));
  }
  segment->size = scan.valid_bytes;
  segment->verified = scan.valid_bytes;  // written just now
  segment->synced = scan.valid_bytes;
  segment->end_offset = scan.next_offset;
  segment->first_append_us = scan.first_append_us;
  segment->last_append_us = scan.last_append_us;
  segment->index = std::move(scan.index);
  return segment;
}

Status Core::CreateTopic(const TopicConfig& config) {
  if (!format::IsValidName(config.name)) {
    return Status::InvalidArgument("invalid topic name '" + config.name + "': use 1-200 of [A-Za-z0-9._-]");
  }
  if (config.partitions < 1 || config.partitions > kMaxPartitions) {
    return Status::InvalidArgument(fmt::format("topic {}: partitions must be 1..{}", config.name, kMaxPartitions));
  }
  if (config.retention_us < 0 || config.retention_bytes < 0) {
    return Status::InvalidArgument("topic " + config.name + ": negative retention");
  }
  std::unique_lock lock(topics_mu_);
  auto it = topics_.find(config.name);
  if (it != topics_.end()) {
    Topic& t = *it->second;
    // Compaction is turned on by a creator that asks for it (a topic created before it was
    // compacted becomes compacted, its old segments compacted as any), never off: a creator
    // that does not ask only does not care, while the topic's consumers may rely on it.
    const bool compact = t.compact || config.compact;
    const Compression compression = config.compression.value_or(t.compression.load());
    if (read_only() || (t.retention_us == config.retention_us && t.retention_bytes == config.retention_bytes &&
                        t.compact == compact && t.compression.load() == compression)) {
      return Status::OK();
    }
    // Retention is configuration: the newest setting wins. The partition count and the
    // partitioner never change.
    TopicConfig stored = config;
    stored.compact = compact;
    stored.compression = compression;
    stored.partitions = static_cast<int32_t>(t.partitions.size());
    stored.partitioner = t.partitioner;
    MARE_RETURN_IF_ERROR(file::WriteAtomically(t.dir + "/topic.toml", format::EncodeTopicMeta(stored)));
    t.retention_us = config.retention_us;
    t.retention_bytes = config.retention_bytes;
    if (t.compression.load() != compression) {
      spdlog::info("log: topic {} now writes its batches {}", config.name,
                   compression == Compression::kZstd ? "compressed with zstd" : "uncompressed");
      t.compression = compression;
    }
    if (t.compact != compact) {
      spdlog::info("log: topic {} is now compacted (docs/formats/log.md, \"Compaction\")", config.name);
      t.compact = true;
      for (const auto& p : t.partitions) {
        std::lock_guard plock(p->mu);
        p->compact = true;
      }
    }
    return Status::OK();
  }
  if (read_only()) return Status::Unavailable("log " + options_.dir + " is open read-only; cannot create topics");
  std::string dir = topics_dir_ + "/" + config.name;
  MARE_RETURN_IF_ERROR(file::CreateDirs(dir));
  MARE_RETURN_IF_ERROR(file::SyncDir(topics_dir_));
  // topic.toml last: a directory without it is an interrupted creation and is ignored.
  MARE_RETURN_IF_ERROR(file::WriteAtomically(dir + "/topic.toml", format::EncodeTopicMeta(config)));
  auto topic = LoadTopic(config);
  if (!topic) return topic.status();
  topics_[config.name] = *topic;
  return Status::OK();
}

Status Core::Append(std::string_view topic_name, int32_t partition, std::span<const Record> records,
                    int64_t* first_offset) {
  if (read_only()) return Status::Unavailable("log " + options_.dir + " is open read-only");
  std::shared_ptr<Topic> topic = FindTopic(topic_name);
  if (!topic) return Status::NotFound(fmt::format("no topic '{}'", topic_name));
  if (partition < 0 || partition >= static_cast<int32_t>(topic->partitions.size())) {
    return Status::InvalidArgument(fmt::format("topic {} has no partition {}", topic_name, partition));
  }
  Partition& p = *topic->partitions[static_cast<size_t>(partition)];
  if (records.empty()) {
    std::lock_guard lock(p.mu);
    if (first_offset) *first_offset = p.end_offset;
    return Status::OK();
  }
  size_t n = 0;
  // Encoded outside the lock into buffers each thread reuses: no allocation per batch.
  thread_local format::BatchNumbers numbers;
  MARE_RETURN_IF_ERROR(format::MeasureBatch(records, &n, &numbers));
  thread_local std::string buffer;
  if (buffer.size() < n) buffer.resize(n);
  format::EncodeBatch(records, numbers, buffer.data());
  const size_t uncompressed = n;
  n = format::CompressBatch(buffer.data(), topic->compression.load());

  SegmentPtr segment;
  int64_t base_offset;
  int64_t end_position;
  {
    std::lock_guard lock(p.mu);
    if (!p.failed.ok()) return p.failed;
    int64_t append_time = std::max(Now(), p.last_append_us);  // monotonic per partition
    const Segment& active = *p.segments.back();
    if (active.size.load() > 0 && (active.size.load() + static_cast<int64_t>(n) > options_.segment_bytes ||
                                   append_time - active.first_append_us >= options_.segment_age_us)) {
      MARE_RETURN_IF_ERROR(Roll(p));
      ApplyRetention(*topic, p, append_time);
    }
    segment = p.segments.back();
    base_offset = p.end_offset;
    format::SealBatch(buffer.data(), base_offset, append_time);
    int64_t position = segment->size.load();
    Status s = file::WriteAt(segment->fd, position, buffer.data(), n, segment->path);
    if (!s.ok()) {
      // Take back a partial write so the segment stays a sequence of whole batches.
      if (::ftruncate(segment->fd, position) != 0) p.failed = s;
      return s;
    }
    segment->index.push_back({base_offset, position, base_offset + static_cast<int64_t>(records.size())});
    end_position = position + static_cast<int64_t>(n);
    if (segment->verified.load() == position) segment->verified.store(end_position);  // encoded here
    segment->size.store(end_position);
    segment->end_offset = base_offset + static_cast<int64_t>(records.size());
    if (segment->first_append_us == 0) segment->first_append_us = append_time;
    segment->last_append_us = append_time;
    p.end_offset = segment->end_offset;
    p.last_append_us = append_time;
    p.end_offset_gauge->Set(static_cast<double>(p.end_offset));
  }
  topic->appended_records->Add(records.size());
  topic->appended_bytes->Add(n);
  topic->appended_uncompressed_bytes->Add(uncompressed);
  topic->append_batches->Add();
  topic->appends.fetch_add(1);
  if (topic->waiters.load() > 0) {
    std::lock_guard lock(topic->notify_mu);
    topic->appended.notify_all();
  }
  if (options_.fsync == FsyncPolicy::kBatch) {
    Status s = SyncSegment(p, segment, end_position);
    if (!s.ok()) {
      std::lock_guard lock(p.mu);
      if (p.failed.ok()) p.failed = s;
      return s;
    }
  }
  if (first_offset) *first_offset = base_offset;
  return Status::OK();
}

// A group's parts are encoded outside the locks, then written in partition order while every
// partition of the group is locked (taken in that order, as no other path takes two), and made
// visible to consumers only once the last is written. So no batch ever follows a part of a
// group that is not complete, and recovery can drop an unfinished group by truncating tails.
// Under fsync = batch the parts are synced before the locks are released: a power loss then
// also finds an unfinished group's parts only at tails.
Status Core::AppendTogether(std::string_view topic_name, std::span<const PartitionRecords> parts,
                            std::vector<Status>* results) {
  results->assign(parts.size(), Status::OK());
  auto fail_all = [&](const Status& s) {
    for (Status& r : *results) r = s;
    return s;
  };
  // The parts with records, in partition order: the order of writing and locking.
  std::vector<size_t> order;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!parts[i].records.empty()) order.push_back(i);
  }
  if (order.size() <= 1) {  // one batch is all or nothing by itself (its checksum)
    if (order.empty()) return Status::OK();
    return fail_all(Append(topic_name, parts[order[0]].partition, parts[order[0]].records, nullptr));
  }
  if (read_only()) return fail_all(Status::Unavailable("log " + options_.dir + " is open read-only"));
  std::shared_ptr<Topic> topic = FindTopic(topic_name);
  if (!topic) return fail_all(Status::NotFound(fmt::format("no topic '{}'", topic_name)));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return parts[a].partition < parts[b].partition; });
  for (size_t k = 0; k < order.size(); ++k) {
    int32_t partition = parts[order[k]].partition;
    if (partition < 0 || partition >= static_cast<int32_t>(topic->partitions.size())) {
      return fail_all(Status::InvalidArgument(fmt::format("topic {} has no partition {}", topic_name, partition)));
    }
    if (k > 0 && partition == parts[order[k - 1]].partition) {
      return fail_all(Status::InvalidArgument(fmt::format("partition {} twice in one group", partition)));
    }
  }
  struct Part {
    Partition* p;
    size_t records;
    size_t bytes;
    size_t uncompressed_bytes;  // what bytes would be without compression
    SegmentPtr segment;
    int64_t base_offset;
    int64_t position;
  };
  thread_local std::vector<format::BatchNumbers> numbers;
  thread_local std::vector<std::string> buffers;
  if (numbers.size() < order.size()) numbers.resize(order.size());
  if (buffers.size() < order.size()) buffers.resize(order.size());
  std::vector<Part> w(order.size());
  for (size_t k = 0; k < order.size(); ++k) {
    const PartitionRecords& part = parts[order[k]];
    size_t n = 0;
    MARE_RETURN_IF_ERROR(fail_all(format::MeasureBatch(part.records, &n, &numbers[k])));
    if (n + format::kGroupTrailerSize > format::kMaxBatchBytes) {
      return fail_all(Status::InvalidArgument(fmt::format("batch exceeds {} bytes", format::kMaxBatchBytes)));
    }
    if (buffers[k].size() < n + format::kGroupTrailerSize) buffers[k].resize(n + format::kGroupTrailerSize);
    format::EncodeBatch(part.records, numbers[k], buffers[k].data());
    w[k].uncompressed_bytes = n + format::kGroupTrailerSize;
    n = format::CompressBatch(buffers[k].data(), topic->compression.load());
    w[k].p = topic->partitions[static_cast<size_t>(part.partition)].get();
    w[k].records = part.records.size();
    w[k].bytes = n + format::kGroupTrailerSize;
  }

  std::vector<std::unique_lock<std::mutex>> locks;
  locks.reserve(w.size());
  int64_t append_time = Now();
  for (Part& x : w) {
    locks.emplace_back(x.p->mu);
    if (!x.p->failed.ok()) return fail_all(x.p->failed);
    append_time = std::max(append_time, x.p->last_append_us);  // monotonic in each partition
  }
  for (Part& x : w) {
    Partition& p = *x.p;
    const Segment& active = *p.segments.back();
    if (active.size.load() > 0 && (active.size.load() + static_cast<int64_t>(x.bytes) > options_.segment_bytes ||
                                   append_time - active.first_append_us >= options_.segment_age_us)) {
      MARE_RETURN_IF_ERROR(fail_all(Roll(p)));
      ApplyRetention(*topic, p, append_time);
    }
    x.segment = p.segments.back();
    x.base_offset = p.end_offset;
    x.position = x.segment->size.load();
  }
  const format::GroupTrailer group{next_group_id_.fetch_add(1), w.back().p->id, w.back().base_offset};
  for (size_t k = 0; k < w.size(); ++k) {
    Part& x = w[k];
    char* batch = buffers[k].data();
    format::AddGroupTrailer(batch, group);
    format::SealBatch(batch, x.base_offset, append_time);
    Status s = file::WriteAt(x.segment->fd, x.position, batch, x.bytes, x.segment->path);
    if (!s.ok()) {
      // Take back this part and those before it, so that the segments stay sequences of whole
      // batches and the group leaves nothing.
      for (size_t j = 0; j <= k; ++j) {
        if (::ftruncate(w[j].segment->fd, w[j].position) != 0) w[j].p->failed = s;
      }
      return fail_all(s);
    }
  }
  for (Part& x : w) {
    Partition& p = *x.p;
    Segment& segment = *x.segment;
    int64_t end_position = x.position + static_cast<int64_t>(x.bytes);
    segment.index.push_back({x.base_offset, x.position, x.base_offset + static_cast<int64_t>(x.records)});
    if (segment.verified.load() == x.position) segment.verified.store(end_position);  // encoded here
    segment.size.store(end_position);
    segment.end_offset = x.base_offset + static_cast<int64_t>(x.records);
    if (segment.first_append_us == 0) segment.first_append_us = append_time;
    segment.last_append_us = append_time;
    p.end_offset = segment.end_offset;
    p.last_append_us = append_time;
    p.end_offset_gauge->Set(static_cast<double>(p.end_offset));
  }
  Status result;
  if (options_.fsync == FsyncPolicy::kBatch) {
    for (Part& x : w) {
      Status s = SyncSegment(*x.p, x.segment, x.position + static_cast<int64_t>(x.bytes));
      if (!s.ok()) {
        if (x.p->failed.ok()) x.p->failed = s;
        if (result.ok()) result = s;
      }
    }
  }
  locks.clear();
  size_t records = 0;
  size_t bytes = 0;
  size_t uncompressed_bytes = 0;
  for (const Part& x : w) {
    records += x.records;
    bytes += x.bytes;
    uncompressed_bytes += x.uncompressed_bytes;
  }
  topic->appended_records->Add(records);
  topic->appended_bytes->Add(bytes);
  topic->appended_uncompressed_bytes->Add(uncompressed_bytes);
  topic->append_batches->Add(w.size());
  topic->appends.fetch_add(1);
  if (topic->waiters.load() > 0) {
    std::lock_guard lock(topic->notify_mu);
    topic->appended.notify_all();
  }
  return result.ok() ? Status::OK() : fail_all(result);
}

Status Core::Refresh(Partition& p) {
  p.refreshed_at = MonotonicMicros();
  auto names = file::ListDir(p.dir);
  if (!names) return names.status().IsNotFound() ? Status::OK() : names.status();
  std::set<int64_t> present;
  for (const std::string& name : *names) {
    int64_t base;
    if (format::ParseSegmentFileName(name, &base)) present.insert(base);
  }
  // Segments the writer's retention deleted.
  while (!p.segments.empty() && !present.count(p.segments.front()->base_offset)) p.segments.pop_front();

  std::string buffer;
  // Listed before scanning: once a newer segment exists, the older one receives no more
  // batches, so scanning the known newest first and then the new ones misses nothing.
  auto scan_more = [&](Segment& s) -> Status {
    format::SegmentScan scan;
    scan.valid_bytes = s.size.load();
    scan.next_offset = s.end_offset;
    // As at open: bodies are checked when read, except with repair, which must find the damage
    // to stop before it.
    Status st = format::ScanSegment(s.fd, /*verify_bodies=*/options_.repair, &scan, &buffer);
    if (!st.ok()) return Status::IOError(s.path + ": " + st.message());
    if (scan.tail == format::SegmentScan::Tail::kCorrupt && !options_.repair) {
      return Status::Corruption(fmt::format("{} at byte {}: {}", s.path, scan.valid_bytes, scan.why));
    }
    // A torn tail here is a batch still being written: read it next time. (With repair, a
    // reader stops at corruption as it would at a torn tail, and truncates nothing.)
    if (scan.batches == 0) return Status::OK();
    if (options_.repair && s.verified.load() == s.size.load()) s.verified.store(scan.valid_bytes);  // bodies checked
    s.index.insert(s.index.end(), scan.index.begin(), scan.index.end());
    if (s.first_append_us == 0) s.first_append_us = scan.first_append_us;
    s.last_append_us = scan.last_append_us;
    s.end_offset = scan.next_offset;
    s.size.store(scan.valid_bytes);
    p.last_append_us = std::max(p.last_append_us, scan.last_append_us);
    return Status::OK();
  };
  if (p.compact) {
    // The writer's compaction replaces a closed segment by its copy (a new file under the same
    // name) or removes it when nothing of it is left. Each file is whole at every moment, so a
    // segment whose file changed is read again from its new file.
    for (auto it = p.segments.begin(); it != p.segments.end();) {
      const Segment& old = **it;
      struct stat named;
      struct stat opened;
      bool gone = !present.count(old.base_offset) || ::stat(old.path.c_str(), &named) != 0;
      if (!gone && ::fstat(old.fd, &opened) == 0 && named.st_ino == opened.st_ino && named.st_dev == opened.st_dev) {
        ++it;
        continue;
      }
      int fd = gone ? -1 : ::open(old.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        if (!gone && errno != ENOENT) return Status::FromErrno("open " + old.path, errno);
        it = p.segments.erase(it);
        continue;
      }
      auto fresh = std::make_shared<Segment>(old.path, old.base_offset, fd);
      MARE_RETURN_IF_ERROR(scan_more(*fresh));
      *it = std::move(fresh);
      ++it;
    }
  }
  if (!p.segments.empty()) MARE_RETURN_IF_ERROR(scan_more(*p.segments.back()));
  for (int64_t base : present) {
    if (!p.segments.empty() && base <= p.segments.back()->base_offset) continue;
    std::string path = p.dir + "/" + format::SegmentFileName(base);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      return Status::FromErrno("open " + path, errno);
    }
    auto segment = std::make_shared<Segment>(path, base, fd);
    MARE_RETURN_IF_ERROR(scan_more(*segment));
    p.segments.push_back(std::move(segment));
  }
  if (!p.segments.empty()) p.end_offset = std::max(p.end_offset, p.segments.back()->end_offset);
  return Status::OK();
}

Result<std::shared_ptr<GroupOffsets>> Core::Group(const std::string& group, const std::string& topic) {
  std::lock_guard lock(groups_mu_);
  auto& g = groups_[{group, topic}];
  if (g) return g;
  auto offsets = std::make_shared<GroupOffsets>();
  offsets->path = consumers_dir_ + "/" + group + "/" + topic + ".offsets";
  auto text = file::ReadAll(offsets->path);
  if (text) {
    auto parsed = format::ParseOffsets(*text);
    if (!parsed) return Status::Corruption(offsets->path + ": " + parsed.status().message());
    offsets->committed = std::move(*parsed);
  } else if (!text.status().IsNotFound()) {
    return text.status();
  }
  g = offsets;
  return g;
}

std::vector<std::string> Core::Groups(std::string_view topic) const {
  std::vector<std::string> out;
  auto names = file::ListDir(consumers_dir_);
  if (!names) return out;
  for (const std::string& group : *names) {
    if (format::IsValidName(group) && file::Exists(fmt::format("{}/{}/{}.offsets", consumers_dir_, group, topic))) {
      out.push_back(group);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status Core::CommitOffsets(GroupOffsets& g, const std::string& group) {
  std::string dir = consumers_dir_ + "/" + group;
  if (!file::Exists(dir)) {
    MARE_RETURN_IF_ERROR(file::CreateDirs(dir));
    MARE_RETURN_IF_ERROR(file::SyncDir(consumers_dir_));
  }
  return file::WriteAtomically(g.path, format::EncodeOffsets(g.committed));
}

class EmbeddedConsumer final : public Consumer {
 public:
  EmbeddedConsumer(std::shared_ptr<Core> core, std::shared_ptr<Topic> topic, std::string group,
                   std::shared_ptr<GroupOffsets> offsets)
      : core_(std::move(core)), topic_(std::move(topic)), group_(std::move(group)), offsets_(std::move(offsets)) {
    positions_.assign(topic_->partitions.size(), -1);
    std::lock_guard lock(offsets_->mu);
    for (const auto& [p, next] : offsets_->committed) {
      if (p >= 0 && static_cast<size_t>(p) < positions_.size()) positions_[static_cast<size_t>(p)] = next;
    }
  }

  int64_t Position(int32_t partition) const override {
    if (!Valid(partition)) return -1;
    const Partition& p = *topic_->partitions[static_cast<size_t>(partition)];
    std::lock_guard lock(p.mu);
    return Effective(p, positions_[static_cast<size_t>(partition)]);
  }

  Status Seek(int32_t partition, int64_t offset) override {
    if (!Valid(partition)) return Status::InvalidArgument(fmt::format("no partition {}", partition));
    Partition& p = *topic_->partitions[static_cast<size_t>(partition)];
    std::lock_guard lock(p.mu);
    MARE_RETURN_IF_ERROR(core_->RefreshIfStale(p));
    positions_[static_cast<size_t>(partition)] = std::clamp(offset, p.start_offset(), p.end_offset);
    return Status::OK();
  }

  Status Poll(std::vector<ConsumedRecord>* out, size_t max_records, std::chrono::milliseconds timeout) override {
    out->clear();
    if (max_records == 0) return Status::OK();
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      uint64_t seen = topic_->appends.load();
      MARE_RETURN_IF_ERROR(ReadOnce(out, max_records));
      if (!out->empty()) return Status::OK();
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return Status::OK();
      auto until = deadline;
      if (core_->read_only()) until = std::min(until, now + std::chrono::microseconds(kReadOnlyRefreshUs));
      topic_->waiters.fetch_add(1);
      {
        std::unique_lock lock(topic_->notify_mu);
        topic_->appended.wait_until(lock, until, [&] { return topic_->appends.load() != seen; });
      }
      topic_->waiters.fetch_sub(1);
    }
  }

  Status Commit(int32_t partition, int64_t next_offset) override {
    if (core_->read_only()) return Status::Unavailable("log is open read-only; cannot commit");
    if (!Valid(partition)) return Status::InvalidArgument(fmt::format("no partition {}", partition));
    if (next_offset < 0) return Status::InvalidArgument("negative offset");
    std::lock_guard lock(offsets_->mu);
    auto previous = offsets_->committed;
    offsets_->committed[partition] = next_offset;
    Status s = core_->CommitOffsets(*offsets_, group_);
    if (!s.ok()) offsets_->committed = std::move(previous);
    return s;
  }

  int64_t Committed(int32_t partition) const override {
    std::lock_guard lock(offsets_->mu);
    auto it = offsets_->committed.find(partition);
    return it == offsets_->committed.end() ? -1 : it->second;
  }

  int64_t EndOffset(int32_t partition) const override {
    if (!Valid(partition)) return -1;
    const Partition& p = *topic_->partitions[static_cast<size_t>(partition)];
    std::lock_guard lock(p.mu);
    return p.end_offset;
  }

 private:
  // What one partition contributes to a Poll: whole batches from one segment.
  struct Read {
    size_t partition;
    SegmentPtr segment;
    int64_t position;
    int64_t length;
    int64_t from_offset;  // skip records before this (a batch read from its middle)
    int64_t max_records;
  };

  bool Valid(int32_t partition) const {
    return partition >= 0 && static_cast<size_t>(partition) < topic_->partitions.size();
  }

  // The position to read from: the oldest retained record if none yet or if retention has
  // passed it; a writer's end if beyond it (data cut by a repair).
  int64_t Effective(const Partition& p, int64_t position) const {
    if (position < p.start_offset()) return p.start_offset();
    if (!core_->read_only() && position > p.end_offset) return p.end_offset;
    return position;
  }

  Status ReadOnce(std::vector<ConsumedRecord>* out, size_t max_records) {
    reads_.clear();
    int64_t remaining = static_cast<int64_t>(std::min<size_t>(max_records, std::numeric_limits<int64_t>::max()));
    int64_t total_bytes = 0;
    size_t n = topic_->partitions.size();
    for (size_t k = 0; k < n && remaining > 0; ++k) {
      size_t pid = (next_partition_ + k) % n;
      Partition& p = *topic_->partitions[pid];
      std::lock_guard lock(p.mu);
      MARE_RETURN_IF_ERROR(core_->RefreshIfStale(p));
      int64_t pos = Effective(p, positions_[pid]);
      positions_[pid] = pos;
      if (pos >= p.end_offset) continue;
      // The segment holding pos, or the next one if pos fell into a gap.
      auto it = std::upper_bound(p.segments.begin(), p.segments.end(), pos,
                                 [](int64_t o, const SegmentPtr& s) { return o < s->base_offset; });
      if (it != p.segments.begin()) --it;
      while (it != p.segments.end() && (*it)->end_offset <= pos) ++it;
      if (it == p.segments.end()) continue;
      const Segment& s = **it;
      pos = std::max(pos, s.base_offset);
      // The first batch ending after pos: in a compacted segment pos may fall between batches,
      // and then the next retained record is read.
      auto e = std::upper_bound(s.index.begin(), s.index.end(), pos,
                                [](int64_t o, const format::IndexEntry& x) { return o < x.end_offset; });
      if (e == s.index.end()) continue;
      size_t j = static_cast<size_t>(e - s.index.begin());
      pos = std::max(pos, s.index[j].offset);
      int64_t first_position = s.index[j].position;
      int64_t end_position = first_position;
      int64_t count = 0;
      while (j < s.index.size() && count < remaining && end_position - first_position < kMaxPollBytesPerPartition) {
        bool last = j + 1 == s.index.size();
        end_position = last ? s.size.load() : s.index[j + 1].position;
        count += s.index[j].end_offset - std::max(s.index[j].offset, pos);
        ++j;
      }
      count = std::min(count, remaining);
      positions_[pid] = pos;
      reads_.push_back({pid, *it, first_position, end_position - first_position, pos, count});
      remaining -= count;
      total_bytes += end_position - first_position;
    }
    next_partition_ = (next_partition_ + 1) % n;
    if (reads_.empty()) return Status::OK();

    numbers_.clear();
    number_starts_.clear();
    plain_used_ = 0;
    // One buffer for the whole Poll, sized up front: the views handed out point into it.
    if (buffer_.size() < static_cast<size_t>(total_bytes)) buffer_.resize(static_cast<size_t>(total_bytes));
    char* at = buffer_.data();
    for (const Read& r : reads_) {
      size_t got = 0;
      MARE_RETURN_IF_ERROR(file::ReadAt(r.segment->fd, r.position, at, static_cast<size_t>(r.length), &got,
                                        r.segment->path));
      if (got < static_cast<size_t>(r.length)) {
        return Status::Corruption(fmt::format("{} at byte {}: file shorter than its index", r.segment->path,
                                              r.position + static_cast<int64_t>(got)));
      }
      int64_t taken = 0;
      int64_t next = r.from_offset;
      int64_t verified = r.segment->verified.load();
      // Decompressed bytes of this partition's share: bounded like the stored ones
      // (kMaxPollBytesPerPartition, and always at least one batch), since a rollups batch
      // holds about ten times its size: the rest waits for the next Poll.
      int64_t plain_bytes = 0;
      for (int64_t off = 0; off < r.length && taken < r.max_records;) {
        if (taken > 0 && plain_bytes >= kMaxPollBytesPerPartition) break;
        const char* stored = at + off;
        format::BatchHeader stored_h;
        format::BatchHeader h;
        const char* batch = nullptr;
        std::string why;
        int64_t position = r.position + off;
        if (r.length - off < static_cast<int64_t>(format::kBatchHeaderSize) ||
            !format::ParseBatchHeader(stored, &stored_h, &why) || stored_h.length > r.length - off) {
          if (why.empty()) why = "batch overruns its index entry";
          return Status::Corruption(fmt::format("{} at byte {}: {}", r.segment->path, position, why));
        }
        const bool compressed = (stored_h.attributes & format::kAttrCodecMask) != 0;
        bool reused = false;    // the batch the last Poll stopped inside, decompressed then
        size_t slot = 0;        // else, compressed: its buffer in plain_
        if (compressed && last_.Holds(r.segment, position, stored)) {
          batch = last_.plain->data();
          h = last_.h;
          reused = true;
        } else {
          // A compressed batch's records are decompressed into a buffer of their own, which the
          // views handed out point into until the next Poll.
          slot = plain_used_;
          if (slot == plain_.size()) plain_.push_back(nullptr);
          if (!plain_[slot]) plain_[slot] = std::make_unique<std::string>();
          if (!format::PlainBatch(stored, stored_h, /*checked=*/position + stored_h.length <= verified,
                                  plain_[slot].get(), &batch, &h, &why)) {
            return Status::Corruption(fmt::format("{} at byte {}: {}", r.segment->path, position, why));
          }
          if (compressed) ++plain_used_;
        }
        if (compressed) plain_bytes += h.length;
        if (position == verified) {
          // Checked just now, right after what was known good: known good too.
          r.segment->verified.compare_exchange_strong(verified, position + stored_h.length);
          verified = r.segment->verified.load();
        }
        format::ForEachRecordAt(batch, h, [&](int64_t offset, int64_t ts, std::string_view key, std::string_view value,
                                              const format::RecordNumbers& numbers) {
          if (offset >= r.from_offset && taken < r.max_records) {
            ConsumedRecord& c = out->emplace_back();
            c.partition = static_cast<int32_t>(r.partition);
            c.offset = offset;
            c.timestamp_us = ts;
            c.append_time_us = h.append_time_us;
            c.key = key;
            c.value = value;
            if (numbers.carried()) {
              // The spans are made once numbers_ is done growing.
              c.has_numbers = true;
              number_starts_.push_back({out->size() - 1, numbers_.size()});
              numbers.Decode(&numbers_);
            }
            ++taken;
            next = offset + 1;
          }
        });
        if (compressed && !reused && taken == r.max_records && next < h.base_offset + h.record_count) {
          // Stopped inside it: the next Poll starts here, and takes the records decompressed now
          // rather than decompress the whole batch again for its rest. The buffer it leaves in
          // plain_ (the previous one's) is below plain_used_: not reused until the next Poll,
          // since this Poll's views may point into it.
          std::swap(plain_[slot], last_.plain);
          last_.segment = r.segment;
          last_.position = position;
          std::memcpy(last_.header, stored, format::kBatchHeaderSize);
          last_.h = h;
        }
        off += stored_h.length;
      }
      positions_[r.partition] = next;
      at += r.length;
    }
    for (size_t i = 0; i < number_starts_.size(); ++i) {
      auto [record, start] = number_starts_[i];
      size_t end = i + 1 < number_starts_.size() ? number_starts_[i + 1].second : numbers_.size();
      (*out)[record].numbers = std::span<const NumberField>(numbers_.data() + start, end - start);
    }
    return Status::OK();
  }

  std::shared_ptr<Core> core_;
  std::shared_ptr<Topic> topic_;
  std::string group_;
  std::shared_ptr<GroupOffsets> offsets_;
  std::vector<int64_t> positions_;  // -1: from the oldest retained record
  size_t next_partition_ = 0;       // where the next Poll starts, so no partition starves
  std::vector<Read> reads_;
  std::string buffer_;
  // Compressed batches' records, this Poll: each in a buffer of its own, which never moves
  // once views point into it; the first plain_used_ are in use, the rest kept for the next Poll.
  std::vector<std::unique_ptr<std::string>> plain_;
  size_t plain_used_ = 0;
  // The compressed batch a Poll stopped inside (at max_records), decompressed: the next Poll
  // reads the rest of it from here. It is the same batch when it is at the same position of the
  // same segment (a compaction's copy is another Segment) with the same 56 header bytes, its
  // body checksum among them; a weak pointer, so as not to keep a replaced segment's file open.
  struct LastBatch {
    std::weak_ptr<Segment> segment;
    int64_t position = -1;
    char header[format::kBatchHeaderSize] = {};
    format::BatchHeader h;  // of the decompressed batch
    std::unique_ptr<std::string> plain;

    bool Holds(const SegmentPtr& s, int64_t at, const char* stored) const {
      return plain && position == at && segment.lock() == s &&
             std::memcmp(header, stored, format::kBatchHeaderSize) == 0;
    }
  };
  LastBatch last_;
  std::vector<NumberField> numbers_;                   // the records' carried numbers, this Poll
  std::vector<std::pair<size_t, size_t>> number_starts_;  // (record in out, its first in numbers_)
};

class EmbeddedLog final : public Log {
 public:
  explicit EmbeddedLog(std::shared_ptr<Core> core) : core_(std::move(core)) {
    if (!core_->read_only()) maintenance_ = std::thread([this] { Run(); });
  }

  ~EmbeddedLog() override {
    if (maintenance_.joinable()) {
      {
        std::lock_guard lock(mu_);
        stop_ = true;
      }
      cv_.notify_all();
      maintenance_.join();
    }
    if (!core_->read_only() && core_->options().fsync != FsyncPolicy::kNever) {
      Status s = core_->SyncAll();
      if (!s.ok()) spdlog::error("log: sync at close failed: {}", s.ToString());
    }
    core_->ReleaseLock();
  }

  Status CreateTopic(const TopicConfig& config) override { return core_->CreateTopic(config); }

  std::vector<std::string> Topics() const override {
    std::vector<std::string> out;
    for (const auto& t : core_->AllTopics()) out.push_back(t->name);
    return out;
  }

  int32_t Partitions(std::string_view topic) const override {
    auto t = core_->FindTopic(topic);
    return t ? static_cast<int32_t>(t->partitions.size()) : 0;
  }

  Partitioner TopicPartitioner(std::string_view topic) const override {
    auto t = core_->FindTopic(topic);
    return t ? t->partitioner : Partitioner::kMurmur2;  // what a topic created now gets
  }

  Result<std::vector<PartitionInfo>> Describe(std::string_view topic) const override {
    auto t = core_->FindTopic(topic);
    if (!t) return Status::NotFound(fmt::format("no topic '{}'", topic));
    std::vector<PartitionInfo> out;
    for (const auto& p : t->partitions) {
      std::lock_guard lock(p->mu);
      if (core_->read_only()) MARE_RETURN_IF_ERROR(core_->Refresh(*p));
      PartitionInfo info;
      info.partition = p->id;
      info.start_offset = p->start_offset();
      info.end_offset = p->end_offset;
      info.bytes = p->bytes();
      info.segments = static_cast<int32_t>(p->segments.size());
      for (const auto& s : p->segments) {
        if (s->first_append_us == 0) continue;
        if (info.oldest_append_time_us == 0) info.oldest_append_time_us = s->first_append_us;
        info.newest_append_time_us = s->last_append_us;
      }
      out.push_back(info);
    }
    return out;
  }

  Status Append(std::string_view topic, int32_t partition, std::span<const Record> records,
                int64_t* first_offset) override {
    return core_->Append(topic, partition, records, first_offset);
  }

  Status AppendTogether(std::string_view topic, std::span<const PartitionRecords> parts,
                        std::vector<Status>* results) override {
    return core_->AppendTogether(topic, parts, results);
  }

  Result<std::unique_ptr<Consumer>> Subscribe(const std::string& group, const std::string& topic) override {
    if (!format::IsValidName(group)) {
      return Status::InvalidArgument("invalid consumer group name '" + group + "': use 1-200 of [A-Za-z0-9._-]");
    }
    auto t = core_->FindTopic(topic);
    if (!t) return Status::NotFound("no topic '" + topic + "'");
    auto offsets = core_->Group(group, topic);
    if (!offsets) return offsets.status();
    return std::unique_ptr<Consumer>(new EmbeddedConsumer(core_, t, group, *offsets));
  }

  std::vector<std::string> Groups(std::string_view topic) const override { return core_->Groups(topic); }

  Status Sync() override { return core_->read_only() ? Status::OK() : core_->SyncAll(); }

  Status Maintain() override {
    if (core_->read_only()) return Status::Unavailable("log is open read-only");
    core_->Maintain();
    return Status::OK();
  }

 private:
  // Background work of a writer: fsync under the interval policy, roll aged segments and
  // enforce retention.
  void Run() {
    const auto& o = core_->options();
    constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
    int64_t now = MonotonicMicros();
    int64_t next_sync = o.fsync == FsyncPolicy::kInterval ? now + o.fsync_interval_us : kNever;
    int64_t next_maintain = now + o.retention_check_interval_us;
    std::unique_lock lock(mu_);
    while (!stop_) {
      int64_t wake = std::min(next_sync, next_maintain);
      cv_.wait_for(lock, std::chrono::microseconds(std::max<int64_t>(0, wake - MonotonicMicros())),
                   [&] { return stop_; });
      if (stop_) break;
      lock.unlock();
      now = MonotonicMicros();
      if (now >= next_sync) {
        Status s = core_->SyncAll();
        if (!s.ok()) spdlog::error("log: periodic fsync failed: {}", s.ToString());
        next_sync = now + o.fsync_interval_us;
      }
      if (now >= next_maintain) {
        core_->Maintain();
        next_maintain = now + o.retention_check_interval_us;
      }
      lock.lock();
    }
  }

  std::shared_ptr<Core> core_;
  std::thread maintenance_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace

Result<std::unique_ptr<Log>> OpenEmbeddedLog(const EmbeddedLogOptions& options) {
  if (options.dir.empty()) return Status::InvalidArgument("log dir is empty");
  if (options.segment_bytes <= 0 || options.segment_age_us <= 0 || options.retention_check_interval_us <= 0 ||
      (options.fsync == FsyncPolicy::kInterval && options.fsync_interval_us <= 0)) {
    return Status::InvalidArgument("log: segment size, segment age and intervals must be positive");
  }
  auto core = std::make_shared<Core>(options);
  MARE_RETURN_IF_ERROR(core->Open(core));
  return std::unique_ptr<Log>(new EmbeddedLog(std::move(core)));
}

}  // namespace mare::log
