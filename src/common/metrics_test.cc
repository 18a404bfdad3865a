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

// The read API the dashboard uses in place of parsing Render's text back.
TEST(Metrics, ReadsSumsByLabelsFirstValuesAndLabelValues) {
  Registry r;
  r.GetCounter("mare_x_total", "X", {{"source", "udp"}, {"reason", "not_json"}}).Add(3);
  r.GetCounter("mare_x_total", "X", {{"source", "tcp"}, {"reason", "not_json"}}).Add(4);
  r.GetCounter("mare_x_total", "X", {{"source", "tcp"}, {"reason", "say \"hi\""}}).Add(1);
  r.GetGauge("mare_y_bytes", "Y").Set(2.5);
  r.GetHistogram("mare_z_seconds", "Z").Observe(0.01);

  EXPECT_EQ(r.Sum("mare_x_total"), 8);
  EXPECT_EQ(r.Sum("mare_x_total", {{"source", "tcp"}}), 5);
  EXPECT_EQ(r.Sum("mare_x_total", {{"reason", "not_json"}}), 7);
  EXPECT_EQ(r.Sum("mare_x_total", {{"source", "tcp"}, {"reason", "say \"hi\""}}), 1);
  EXPECT_EQ(r.Sum("mare_x_total", {{"source", "sctp"}}), 0);
  EXPECT_EQ(r.Find("mare_y_bytes").value_or(-1), 2.5);
  EXPECT_EQ(r.Find("mare_x_total", {{"source", "udp"}}).value_or(-1), 3);
  EXPECT_FALSE(r.Find("mare_missing").has_value());
  EXPECT_FALSE(r.Find("mare_x_total", {{"source", "sctp"}}).has_value());
  EXPECT_FALSE(r.Find("mare_z_seconds").has_value()) << "histograms are not read back";
  // In the order /metrics lists the series (by rendered label set).
  EXPECT_EQ(r.LabelValues("mare_x_total", "source"), (std::vector<std::string>{"tcp", "udp"}));
  EXPECT_EQ(r.LabelValues("mare_x_total", "reason"), (std::vector<std::string>{"not_json", "say \"hi\""}));
  EXPECT_TRUE(r.LabelValues("mare_x_total", "topic").empty());
  EXPECT_EQ(r.Names(), (std::vector<std::string>{"mare_x_total", "mare_y_bytes", "mare_z_seconds"}));
}

TEST(Metrics, ReadsWhatRenderShows) {
  Registry r;
  r.GetCounter("mare_a_total", "A", {{"topic", "raw"}}).Add(41);
  r.GetCounter("mare_a_total", "A", {{"topic", "rollups"}}).Add(1);
  auto& g = r.GetGauge("mare_b_bytes", "B", {{"topic", "raw"}});
  r.AddRefresher([&g] { g.Set(12); });
  std::string text = r.Render();
  EXPECT_NE(text.find("mare_a_total{topic=\"raw\"} 41\n"), std::string::npos) << text;
  EXPECT_EQ(r.Sum("mare_a_total", {{"topic", "raw"}}), 41);
  EXPECT_EQ(r.Sum("mare_a_total"), 42);
  g.Set(0);
  EXPECT_EQ(r.Sum("mare_b_bytes"), 0) << "reads do not refresh by themselves";
  r.Refresh();
  EXPECT_EQ(r.Sum("mare_b_bytes", {{"topic", "raw"}}), 12);
}

}  // namespace
}  // namespace mare::metrics
