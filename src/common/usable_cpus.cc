#include "common/usable_cpus.h"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace mare {

namespace {

std::optional<long long> ParseInteger(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<size_t> CpusOfQuota(std::optional<long long> quota, std::optional<long long> period) {
  if (!quota || !period || *quota <= 0 || *period <= 0) return std::nullopt;
  return static_cast<size_t>(std::max(1LL, (*quota + *period - 1) / *period));
}

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t CountUsableCpusNow() {
  size_t cpus = std::max(1u, std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) cpus = std::min<size_t>(cpus, std::max(1, CPU_COUNT(&set)));
  // The process's own cgroup is usually mounted at the root of /sys/fs/cgroup inside a
  // container (cgroup namespaces); on a host the root's files are absent or unlimited.
  if (auto v2 = CpusOfCgroupV2Max(ReadFile("/sys/fs/cgroup/cpu.max"))) cpus = std::min(cpus, *v2);
  if (auto v1 = CpusOfCgroupV1Quota(ReadFile("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
                                    ReadFile("/sys/fs/cgroup/cpu/cpu.cfs_period_us")))
    cpus = std::min(cpus, *v1);
  return std::max<size_t>(1, cpus);
}

}  // namespace

std::optional<size_t> CpusOfCgroupV2Max(std::string_view line) {
  size_t space = line.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  return CpusOfQuota(ParseInteger(line.substr(0, space)), ParseInteger(line.substr(space + 1)));
}

std::optional<size_t> CpusOfCgroupV1Quota(std::string_view quota, std::string_view period) {
  return CpusOfQuota(ParseInteger(quota), ParseInteger(period));
}

size_t CountUsableCpus() { return CountUsableCpusNow(); }

size_t UsableCpus() {
  static const size_t cpus = CountUsableCpus();
  return cpus;
}

}  // namespace mare
