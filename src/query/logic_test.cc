// Runs the SQL logic tests in tests/sql/*.test (the format is described in tests/sql/README.md).
// Every file runs twice: once with its readings in the memtable, and once with each load
// flushed to segments and merged, so that decoding, block statistics and memtable scans must
// all give the same answers.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/metrics.h"
#include "common/scratch_dir.h"
#include "query/ast.h"
#include "query/executor.h"
#include "query/format.h"
#include "reading/parser.h"

namespace mare::query {
namespace {

constexpr int64_t kNow = 1'893'456'000'000'000;  // 2030-01-01T00:00:00Z: now() in the tests

struct Case {
  std::string kind;  // "load", "flush", "query", "error"
  int line = 0;
  std::string body;       // readings, or the statement
  std::vector<std::string> expected;
};

std::vector<Case> ReadCases(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  std::vector<Case> cases;
  size_t i = 0;
  while (i < lines.size()) {
    const std::string& l = lines[i];
    if (l.empty() || l[0] == '#') {
      ++i;
      continue;
    }
    Case c;
    c.kind = l.substr(0, l.find(' '));
    c.line = static_cast<int>(i + 1);
    ++i;
    if (c.kind == "flush") {
      cases.push_back(c);
      continue;
    }
    while (i < lines.size() && !lines[i].empty() && lines[i] != "----") c.body += lines[i++] + "\n";
    if (i < lines.size() && lines[i] == "----") {
      ++i;
      while (i < lines.size() && !lines[i].empty()) c.expected.push_back(lines[i++]);
    }
    cases.push_back(c);
  }
  return cases;
}

bool SameCell(const std::string& got, const std::string& want) {
  if (got == want) return true;
  char* end_a;
  char* end_b;
  double a = std::strtod(got.c_str(), &end_a);
  double b = std::strtod(want.c_str(), &end_b);
  if (*end_a != '\0' || *end_b != '\0' || got.empty() || want.empty()) return false;
  return std::fabs(a - b) <= 1e-9 * std::max(std::fabs(a), std::fabs(b));
}

std::vector<std::string> Split(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  for (std::string cell; std::getline(ss, cell, '\t');) out.push_back(cell);
  if (!line.empty() && line.back() == '\t') out.push_back("");
  return out;
}

class Loader : public ReadingSink {
 public:
  explicit Loader(store::Store::Batch* b) : batch_(b) {}
  void OnReading(const Reading& r) override { batch_->Add(r); }
  void OnReject(const Reject& r) override { ADD_FAILURE() << "test reading rejected: " << r.detail; }

 private:
  store::Store::Batch* batch_;
};

void RunFile(const std::string& path, bool flush_every_load) {
  SCOPED_TRACE(path + (flush_every_load ? " (flushed and merged)" : " (memtable)"));
  ScratchDir dir("mare-sql-test");
  metrics::Registry registry;
  auto store = store::Store::Open({.dir = dir.path(), .compaction_thread = false}, &registry);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ReadingParser parser;
  int64_t flushes = 0;
  int64_t forecast_offset = 0;
  for (const Case& c : ReadCases(path)) {
    SCOPED_TRACE(path + ":" + std::to_string(c.line));
    if (c.kind == "forecasts") {
      // Records of the forecasts topic, as the store's ForecastFeeder applies them.
      std::vector<std::string> values;
      std::stringstream lines(c.body);
      for (std::string l; std::getline(lines, l);) values.push_back(l);
      std::vector<log::ConsumedRecord> records;
      for (const auto& v : values) records.push_back(log::ConsumedRecord{.offset = forecast_offset++, .value = v});
      uint64_t skipped = 0;
      ASSERT_TRUE((*store)->forecasts().Apply(records, &skipped).ok());
      ASSERT_EQ(skipped, 0u) << c.body;
      continue;
    }
    if (c.kind == "load") {
      PaddedBuffer buf;
      buf.Assign(c.body);
      (*store)->Write([&](store::Store::Batch& b) {
        Loader loader(&b);
        parser.Parse(buf.view(), kNow, loader);
      });
      if (!flush_every_load) continue;
    } else if (c.kind != "flush") {
      QueryResult result;
      SqlError error;
      bool ok = RunQuery(**store, c.body, {.now_us = kNow}, &result, &error);
      if (c.kind == "error") {
        ASSERT_FALSE(ok) << "expected an error from:\n" << c.body;
        std::string message = error.pos.line > 0 ? error.ToString() : error.message;
        ASSERT_EQ(c.expected.size(), 1u) << "an error case expects one line";
        EXPECT_EQ(message, c.expected[0]) << c.body;
        continue;
      }
      ASSERT_EQ(c.kind, "query") << "unknown directive";
      ASSERT_TRUE(ok) << c.body << "\n" << error.ToString();
      std::vector<std::string> got;
      for (const auto& row : result.rows) {
        std::string line;
        for (size_t k = 0; k < row.size(); ++k) line += (k ? "\t" : "") + (row[k].null ? std::string("NULL") : FormatValue(row[k]));
        got.push_back(line);
      }
      bool same = got.size() == c.expected.size();
      for (size_t r = 0; same && r < got.size(); ++r) {
        auto a = Split(got[r]), b = Split(c.expected[r]);
        same = a.size() == b.size();
        for (size_t k = 0; same && k < a.size(); ++k) same = SameCell(a[k], b[k]);
      }
      if (!same) {
        std::string g, w;
        for (const auto& l : got) g += l + "\n";
        for (const auto& l : c.expected) w += l + "\n";
        ADD_FAILURE() << c.body << "got:\n" << g << "expected:\n" << w;
      }
      continue;
    }
    ASSERT_TRUE((*store)->Flush({++flushes}).ok());
    if (flush_every_load) {
      ASSERT_TRUE((*store)->Compact(true).ok());
    }
  }
}

std::vector<std::string> Files() {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator("tests/sql")) {
    if (e.path().extension() == ".test") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(SqlLogic, EveryFileInMemtableAndOnDisk) {
  auto files = Files();
  ASSERT_FALSE(files.empty()) << "no tests/sql/*.test (run from the source root)";
  for (const auto& f : files) {
    RunFile(f, false);
    RunFile(f, true);
  }
}

}  // namespace
}  // namespace mare::query
