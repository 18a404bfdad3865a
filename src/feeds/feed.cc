#include "feeds/feed.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <limits>
#include <thread>

#include "common/time.h"

namespace mare::feeds {

namespace {

constexpr size_t kNever = std::numeric_limits<size_t>::max();
constexpr size_t kUdpDatagramsPerFlush = 64;
constexpr size_t kFlatOutLinesPerWrite = 1000;
constexpr int64_t kErrorReportInterval = 5 * kMicrosPerSecond;

void OnStopSignal(int) { StopRequested().store(true, std::memory_order_relaxed); }

}  // namespace

Result<std::unique_ptr<Feed>> Feed::Open(std::string command, const std::vector<std::string>& urls,
                                         const BatchPolicy& policy, const SenderOptions& sender) {
  if (urls.empty()) return Status::InvalidArgument("no target given");
  std::vector<Target> targets;
  for (const std::string& url : urls) {
    Result<TargetSpec> spec = ParseTarget(url);
    if (!spec) return spec.status();
    Target t;
    size_t per_datagram = policy.batch == 0 ? 1 : policy.batch;
    t.sender = MakeSender(*spec, per_datagram, sender);
    Status s = t.sender->Open();
    if (!s.ok()) return Status::Unavailable(fmt::format("target {} cannot be reached: {}", url, s.message()));
    if (policy.feed_mode) {
      t.flush_at = kNever;
    } else {
      switch (spec->transport) {
        case Transport::kUdp:
          t.flush_at = per_datagram * kUdpDatagramsPerFlush;
          t.flush_on_tick = !policy.flat_out;
          break;
        case Transport::kHttp:
          t.flush_at = policy.batch == 0 ? kNever : policy.batch;
          t.flush_on_tick = policy.batch == 0;
          break;
        case Transport::kTcp:
        case Transport::kUnix:
        case Transport::kFile:
          t.flush_at = policy.batch != 0 ? policy.batch : policy.flat_out ? kFlatOutLinesPerWrite : 1;
          break;
      }
    }
    targets.push_back(std::move(t));
  }
  auto feed = std::unique_ptr<Feed>(new Feed(std::move(command), std::move(targets)));
  feed->started_ = MonotonicMicros();
  feed->last_progress_ = feed->started_;
  return feed;
}

void Feed::Add(const Reading& reading) {
  line_.clear();
  AppendReadingJson(reading, &line_);
  ++readings_;
  for (Target& t : targets_) {
    t.pending.Append(line_, reading.sensor_id);
    if (t.pending.size() >= t.flush_at) SendPending(t);
  }
}

void Feed::EndTick() {
  for (Target& t : targets_) {
    if (t.flush_on_tick && !t.pending.empty()) SendPending(t);
  }
}

void Feed::Flush() {
  for (Target& t : targets_) {
    if (!t.pending.empty()) SendPending(t);
  }
}

void Feed::SendPending(Target& t) {
  size_t delivered = 0;
  Status s = t.sender->Send(t.pending, &delivered);
  size_t failed = t.pending.size() - std::min(delivered, t.pending.size());
  t.pending.Clear();
  if (failed == 0 && s.ok()) return;
  t.errors += failed;
  if (t.sender->refused() && refusal_.ok()) refusal_ = s;
  // Report the first failure at once, later ones at most every few seconds.
  int64_t now = MonotonicMicros();
  if (t.errors_reported == 0 || now - t.last_error_report >= kErrorReportInterval) {
    fmt::print(stderr, "{}: send to {} failed: {} ({} readings not delivered so far)\n", command_,
               t.sender->spec().url, s.ok() ? "readings not accepted" : s.ToString(), t.errors);
    t.last_error_report = now;
    t.errors_reported = t.errors;
  }
}

uint64_t Feed::send_errors() const {
  uint64_t n = 0;
  for (const Target& t : targets_) n += t.errors;
  return n;
}

void Feed::MaybeReportProgress(int64_t interval_micros) {
  int64_t now = MonotonicMicros();
  if (now - last_progress_ < interval_micros) return;
  double seconds = static_cast<double>(now - last_progress_) / 1e6;
  double rate = static_cast<double>(readings_ - readings_at_last_progress_) / seconds;
  fmt::print(stderr, "{}: {} readings, {:.0f}/s, {} send errors\n", command_, readings_, rate, send_errors());
  last_progress_ = now;
  readings_at_last_progress_ = readings_;
}

std::string Feed::Summary() const {
  return fmt::format("{}: sent {} readings to {} target(s), {} send errors", command_, readings_, targets_.size(),
                     send_errors());
}

std::atomic<bool>& StopRequested() {
  static std::atomic<bool> stop{false};
  return stop;
}

void InstallStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;  // a second Ctrl-C ends the process the usual way
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool SleepUntil(int64_t deadline_micros, const std::atomic<bool>& stop) {
  constexpr int64_t kStep = 50'000;
  while (!stop.load(std::memory_order_relaxed)) {
    int64_t left = deadline_micros - MonotonicMicros();
    if (left <= 0) return true;
    std::this_thread::sleep_for(std::chrono::microseconds(std::min(left, kStep)));
  }
  return false;
}

}  // namespace mare::feeds
