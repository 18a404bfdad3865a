#include "common/usable_cpus.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <thread>

namespace mare {
namespace {

TEST(UsableCpusTest, ReadsCgroupV2Quotas) {
  EXPECT_EQ(CpusOfCgroupV2Max("max 100000\n"), std::nullopt);
  EXPECT_EQ(CpusOfCgroupV2Max("200000 100000\n"), 2u);
  EXPECT_EQ(CpusOfCgroupV2Max("150000 100000"), 2u);  // 1.5 CPUs: two threads, each busy part of the time
  EXPECT_EQ(CpusOfCgroupV2Max("50000 100000\n"), 1u);
  EXPECT_EQ(CpusOfCgroupV2Max(""), std::nullopt);
  EXPECT_EQ(CpusOfCgroupV2Max("garbage"), std::nullopt);
  EXPECT_EQ(CpusOfCgroupV2Max("12x 100000"), std::nullopt);
}

TEST(UsableCpusTest, ReadsCgroupV1Quotas) {
  EXPECT_EQ(CpusOfCgroupV1Quota("-1\n", "100000\n"), std::nullopt);
  EXPECT_EQ(CpusOfCgroupV1Quota("300000\n", "100000\n"), 3u);
  EXPECT_EQ(CpusOfCgroupV1Quota("", ""), std::nullopt);
  EXPECT_EQ(CpusOfCgroupV1Quota("100000", "0"), std::nullopt);
}

TEST(UsableCpusTest, NeverMoreThanTheAffinityMaskAllows) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(::sched_getaffinity(0, sizeof(set), &set), 0);
  size_t cpus = UsableCpus();
  EXPECT_GE(cpus, 1u);
  EXPECT_LE(cpus, static_cast<size_t>(CPU_COUNT(&set)));
  EXPECT_LE(cpus, std::max(1u, std::thread::hardware_concurrency()));
}

TEST(UsableCpusTest, CountsOneWhenPinnedToOneCpu) {
  cpu_set_t all;
  CPU_ZERO(&all);
  ASSERT_EQ(::sched_getaffinity(0, sizeof(all), &all), 0);
  int first = 0;
  while (!CPU_ISSET(first, &all)) ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(::sched_setaffinity(0, sizeof(one), &one), 0);  // this thread only
  size_t pinned = CountUsableCpus();
  ASSERT_EQ(::sched_setaffinity(0, sizeof(all), &all), 0);
  EXPECT_EQ(pinned, 1u);
  EXPECT_EQ(CountUsableCpus(), UsableCpus());
}

}  // namespace
}  // namespace mare
