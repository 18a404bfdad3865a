#include "common/metrics.h"

#include <gtest/gtest.h>

namespace mare::metrics {
namespace {

TEST(Metrics, RendersCountersWithLabelsOnceperFamily) {
  Registry r;
  r.GetCounter("mare_x_total", "Things", {{"source", "udp"}}).Add(3);
  r.GetCounter("mare_x_total", "Things", {{"source", "tcp"}}).Add(1);
  r.GetCounter("mare_x_total", "Things", {{"source", "udp"}}).Add(2);
  std::string text = r.Render();
  EXPECT_EQ(text,
            "# HELP mare_x_total Things\n# TYPE mare_x_total counter\n"
            "mare_x_total{source=\"tcp\"} 1\nmare_x_total{source=\"udp\"} 5\n");
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Registry r;
  auto& h = r.GetHistogram("mare_lat_seconds", "Latency", {}, {0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(5);
  std::string text = r.Render();
  EXPECT_NE(text.find("mare_lat_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("mare_lat_seconds_bucket{le=\"1\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("mare_lat_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("mare_lat_seconds_count 3\n"), std::string::npos) << text;
}

TEST(Metrics, EscapesLabelValues) {
  EXPECT_EQ(RenderLabels({{"reason", "a\"b\\c\nd"}}), "{reason=\"a\\\"b\\\\c\\nd\"}");
}

TEST(Metrics, RefreshersRunBeforeRender) {
  Registry r;
  auto& g = r.GetGauge("mare_disk_bytes", "Bytes");
  r.AddRefresher([&g] { g.Set(42); });
  EXPECT_NE(r.Render().find("mare_disk_bytes 42\n"), std::string::npos);
}

}  // namespace
}  // namespace mare::metrics
