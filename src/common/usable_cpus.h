// UsableCpus: how many CPUs this process may really use, for sizing worker threads.
// std::thread::hardware_concurrency() counts the machine's, not the affinity mask's or a container's quota.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace mare {

// The smallest of: the CPUs in the affinity mask (taskset, cpuset), the cgroup v2 quota
// (cpu.max) or v1 quota (cpu.cfs_quota_us / cpu.cfs_period_us), rounded up; at least 1.
// Read once per process: quotas changed later are not seen.
size_t UsableCpus();

// The same, counted now (for the calling thread's affinity mask), not cached.
size_t CountUsableCpus();

// The CPUs a cgroup v2 `cpu.max` line ("QUOTA PERIOD" or "max PERIOD") allows, rounded up;
// none when unlimited or unreadable. Exposed for its test.
std::optional<size_t> CpusOfCgroupV2Max(std::string_view line);

// The same for cgroup v1's two files' contents (quota -1 means unlimited).
std::optional<size_t> CpusOfCgroupV1Quota(std::string_view quota, std::string_view period);

}  // namespace mare
