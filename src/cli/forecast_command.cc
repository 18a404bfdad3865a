// mare forecast backtest ARCHIVE...: the forecast models' rolling-origin evaluation over
// archives (NDBC or CSV, read as `mare replay` reads them), per series (sensor and field).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "archive/open_archive.h"
#include "cli/commands.h"
#include "common/json_out.h"
#include "processors/forecast/backtest.h"
#include "processors/forecast/hourly_series.h"
#include "reading/timestamp.h"

namespace mare::cli {
namespace {

// Fields the ridge regression may lean on when the archive has them: NDBC's names, then the
// Beijing CSV's (iws: the wind speed cumulated since its direction class last changed).
constexpr std::string_view kAutoCovariates[] = {"dew_point", "water_temperature", "pressure", "dewp", "pres", "iws"};
// Text fields whose classes it may lean on (one series per class, ForecastInput::categories):
// the Beijing CSV's wind direction class (NW, NE, SE, cv for calm and variable).
constexpr std::string_view kAutoCategories[] = {"cbwd"};
// A text field with more classes than this is not a category (a name, a free text).
constexpr size_t kMaxClasses = 16;

struct BacktestFlags {
  std::vector<std::string> archives;
  std::string field = "temperature";
  std::string covariates = "auto";
  std::string categories = "auto";
  std::string format = "table";
  std::string utc_offset;
  uint64_t sensor_id = 0;
  bool quiet = false;
};

struct SeriesResult {
  std::string archive;
  uint64_t sensor_id = 0;
  std::vector<std::string> covariates;  // and the categories' classes, as field=class
  forecast::BacktestReport report;
};

// Each sensor's fields of one archive, as hourly means.
using SensorFields = std::map<uint64_t, std::map<std::string, forecast::HourlyMeans, std::less<>>>;
// Each sensor's text fields (only those asked for), as (time, value) in the archive's order.
using TextValues = std::vector<std::pair<int64_t, std::string>>;
using SensorTexts = std::map<uint64_t, std::map<std::string, TextValues, std::less<>>>;

// One series per class of a text field: the share of each hour's readings of that class. Empty
// when the field has more than kMaxClasses classes.
std::map<std::string, forecast::HourlySeries> ClassShares(const TextValues& values, int64_t first_hour, int64_t end_hour) {
  std::map<std::string, forecast::HourlyMeans> shares;
  for (const auto& [time, value] : values) {
    if (shares.count(value) == 0 && shares.size() == kMaxClasses) return {};
    shares.try_emplace(value);
  }
  for (const auto& [time, value] : values) {
    for (auto& [name, means] : shares) means.Add(time, name == value ? 1.0 : 0.0);
  }
  std::map<std::string, forecast::HourlySeries> out;
  for (const auto& [name, means] : shares) out.emplace(name, means.Build(first_hour, end_hour));
  return out;
}

Status ReadArchive(const std::string& path, const archive::ArchiveOptions& options,
                   const std::vector<std::string>& text_fields, SensorFields* sensors, SensorTexts* texts,
                   size_t* skipped) {
  Result<std::unique_ptr<archive::ArchiveReader>> reader = archive::OpenArchive(path, options);
  if (!reader) return reader.status();
  archive::Reading reading;
  for (;;) {
    archive::ArchiveReader::Row row = (*reader)->Next(&reading);
    if (row == archive::ArchiveReader::Row::kEnd) break;
    if (row == archive::ArchiveReader::Row::kSkipped) {
      ++*skipped;
      continue;
    }
    auto& fields = (*sensors)[reading.sensor_id];
    for (const archive::NumericField& f : reading.numbers) {
      auto it = fields.find(f.name);
      if (it == fields.end()) it = fields.emplace(std::string(f.name), forecast::HourlyMeans()).first;
      it->second.Add(reading.time_micros, f.value);
    }
    for (const archive::TextField& f : reading.texts) {
      if (std::find(text_fields.begin(), text_fields.end(), f.name) == text_fields.end()) continue;
      (*texts)[reading.sensor_id][std::string(f.name)].emplace_back(reading.time_micros, f.value);
    }
  }
  return (*reader)->status();
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    if (comma > start) out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

std::string OriginText(int64_t hour) { return FormatReadingTime(hour * 3'600'000'000).substr(0, 19); }

void PrintTable(const std::vector<SeriesResult>& results, const std::string& field) {
  for (const SeriesResult& s : results) {
    const forecast::BacktestReport& r = s.report;
    fmt::print("{} sensor {} {}: {} days from {} UTC, issued 00:00 UTC for 24 h; best naive: {}; covariates: {}; {:.2f} s\n",
               s.archive, s.sensor_id, field, r.days, OriginText(r.first_origin), r.best_naive,
               s.covariates.empty() ? std::string("none") : fmt::format("{}", fmt::join(s.covariates, ",")), r.seconds);
    fmt::print("  selected: the local ridge's weight against the ensemble (days):");
    for (const auto& [w, days] : r.weight_days) fmt::print(" {:.2f} ({})", w, days);
    fmt::print("\n");
    fmt::print("  {:<15} {:>7} {:>7} {:>7} {:>10} {:>11} {:>8} {:>7} {:>8}\n", "model", "MAE", "RMSE", "bias",
               "skill_pers", "skill_naive", "cover80", "hours", "seconds");
    for (const forecast::ModelScore& m : r.models) {
      fmt::print("  {:<15} {:>7.3f} {:>7.3f} {:>7.3f} {:>10.3f} {:>11.3f} {:>8.3f} {:>7} {:>8.3f}\n", m.model, m.mae, m.rmse,
                 m.bias, m.skill_persistence, m.skill_best_naive, m.coverage, m.hours, m.seconds);
    }
  }
}

void PrintCsv(const std::vector<SeriesResult>& results, const std::string& field) {
  fmt::print("archive,sensor_id,field,model,days,hours,mae,rmse,bias,skill_persistence,skill_best_naive,coverage,"
             "interval_hours,fallback_hours,seconds\n");
  for (const SeriesResult& s : results) {
    for (const forecast::ModelScore& m : s.report.models) {
      fmt::print("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", s.archive, s.sensor_id, field, m.model, s.report.days,
                 m.hours, m.mae, m.rmse, m.bias, m.skill_persistence, m.skill_best_naive, m.coverage, m.interval_hours,
                 m.fallback_hours, m.seconds);
    }
  }
}

void PrintJson(const std::vector<SeriesResult>& results, const std::string& field) {
  JsonOut j;
  j.Open('{').Key("series").Open('[');
  for (const SeriesResult& s : results) {
    const forecast::BacktestReport& r = s.report;
    j.Open('{').Key("archive").Str(s.archive).Key("sensor_id").Int(static_cast<int64_t>(s.sensor_id)).Key("field").Str(field);
    j.Key("first_origin").Str(OriginText(r.first_origin)).Key("days").Int(static_cast<int64_t>(r.days));
    j.Key("best_naive").Str(r.best_naive).Key("selected_weight_days").Open('{');
    for (const auto& [w, days] : r.weight_days) j.Key(fmt::format("{:.2f}", w)).Int(days);
    j.Close('}').Key("covariates").Open('[');
    for (const std::string& c : s.covariates) j.Str(c);
    j.Close(']').Key("seconds").Num(r.seconds).Key("models").Open('[');
    for (const forecast::ModelScore& score : r.models) {
      j.Open('{').Key("model").Str(score.model);
      j.Key("hours").Int(static_cast<int64_t>(score.hours)).Key("fallback_hours").Int(static_cast<int64_t>(score.fallback_hours));
      j.Key("interval_hours").Int(static_cast<int64_t>(score.interval_hours));
      j.Key("mae").Num(score.mae).Key("rmse").Num(score.rmse).Key("bias").Num(score.bias);
      j.Key("skill_persistence").Num(score.skill_persistence).Key("skill_best_naive").Num(score.skill_best_naive);
      j.Key("coverage").Num(score.coverage).Key("seconds").Num(score.seconds).Close('}');
    }
    j.Close(']').Close('}');
  }
  j.Close(']').Close('}');
  fmt::print("{}\n", j.str());
}

int RunBacktest(const BacktestFlags& flags, bool has_sensor_id) {
  archive::ArchiveOptions base;
  if (!flags.utc_offset.empty()) {
    Result<int64_t> offset = archive::ParseUtcOffset(flags.utc_offset);
    if (!offset) {
      fmt::print(stderr, "forecast backtest: --utc-offset: {}\n", offset.status().message());
      return 2;
    }
    base.utc_offset_micros = *offset;
  }
  std::vector<std::string> wanted_covariates, wanted_categories;
  if (flags.covariates == "auto") {
    wanted_covariates.assign(std::begin(kAutoCovariates), std::end(kAutoCovariates));
  } else if (flags.covariates != "none") {
    wanted_covariates = SplitList(flags.covariates);
  }
  if (flags.categories == "auto") {
    wanted_categories.assign(std::begin(kAutoCategories), std::end(kAutoCategories));
  } else if (flags.categories != "none") {
    wanted_categories = SplitList(flags.categories);
  }
  std::vector<SeriesResult> results;
  for (const std::string& path : flags.archives) {
    archive::ArchiveOptions options = base;
    options.sensor_id = has_sensor_id ? flags.sensor_id : archive::StationFromFileName(path).value_or(1);
    SensorFields sensors;
    SensorTexts texts;
    size_t skipped = 0;
    Status read = ReadArchive(path, options, wanted_categories, &sensors, &texts, &skipped);
    if (!read.ok()) {
      fmt::print(stderr, "forecast backtest: {}: {}\n", path, read.message());
      return 1;
    }
    if (skipped > 0 && !flags.quiet) fmt::print(stderr, "forecast backtest: {}: {} rows skipped\n", path, skipped);
    std::string name = path.substr(path.find_last_of('/') + 1);
    for (auto& [sensor, fields] : sensors) {
      auto target = fields.find(flags.field);
      if (target == fields.end()) {
        std::vector<std::string> names;
        for (const auto& [n, unused] : fields) names.push_back(n);
        fmt::print(stderr, "forecast backtest: {}: sensor {} has no field '{}' (it has: {}); choose one with --field\n", path,
                   sensor, flags.field, fmt::join(names, ", "));
        return 1;
      }
      forecast::HourlySeries y = target->second.Build();
      std::vector<forecast::HourlySeries> covariate_series;
      SeriesResult result{name, sensor, {}, {}};
      for (const std::string& c : wanted_covariates) {
        auto it = fields.find(c);
        if (it == fields.end() || c == flags.field) continue;
        covariate_series.push_back(it->second.Build(y.first_hour, y.end_hour()));
        result.covariates.push_back(c);
      }
      std::vector<forecast::HourlySeries> class_series;
      for (const std::string& c : wanted_categories) {
        auto it = texts[sensor].find(c);
        if (it == texts[sensor].end()) continue;
        for (auto& [name, series] : ClassShares(it->second, y.first_hour, y.end_hour())) {
          class_series.push_back(std::move(series));
          result.covariates.push_back(c + "=" + name);
        }
      }
      forecast::ForecastInput input{&y, {}, {}};
      for (const forecast::HourlySeries& c : covariate_series) input.covariates.push_back(&c);
      for (const forecast::HourlySeries& c : class_series) input.categories.push_back(&c);
      forecast::BacktestOptions options;
      int last_tenth = -1;
      if (!flags.quiet) {
        options.progress = [&](int64_t done, int64_t total) {
          int tenth = static_cast<int>(done * 10 / total);
          if (tenth == last_tenth) return;
          last_tenth = tenth;
          fmt::print(stderr, "forecast backtest: {} sensor {} {}: day {} of {}\n", name, sensor, flags.field, done, total);
        };
      }
      Result<forecast::BacktestReport> report = forecast::RunBacktest(input, options);
      if (!report) {
        fmt::print(stderr, "forecast backtest: {} sensor {} {}: {}\n", path, sensor, flags.field, report.status().message());
        return 1;
      }
      result.report = std::move(*report);
      results.push_back(std::move(result));
    }
  }
  if (flags.format == "json") {
    PrintJson(results, flags.field);
  } else if (flags.format == "csv") {
    PrintCsv(results, flags.field);
  } else {
    PrintTable(results, flags.field);
  }
  return 0;
}

}  // namespace

void AddForecastCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("forecast", "Hourly forecasts of readings' fields: the processor (run) and the backtest");
  cmd->require_subcommand(1);
  AddForecastRunCommand(*cmd, exit_code);
  auto* backtest = cmd->add_subcommand(
      "backtest",
      "Rolling-origin evaluation over archives: each day forecast at 00:00 UTC for 24 h from the hours before it only");
  auto flags = std::make_shared<BacktestFlags>();
  backtest->add_option("archives", flags->archives, "NDBC or CSV archives (as mare replay reads them)")
      ->required()
      ->check(CLI::ExistingFile);
  backtest->add_option("--field", flags->field, "The numeric field to forecast (its hourly mean per UTC hour)")
      ->capture_default_str();
  backtest->add_option("--covariates", flags->covariates,
                       "Other fields the ridge regression may use: auto (dew_point, water_temperature, pressure, dewp, "
                       "pres, iws when present), none, or a comma-separated list")
      ->capture_default_str();
  backtest->add_option("--categories", flags->categories,
                       "Text fields whose classes the ridge regression may use, one series per class (its share of "
                       "the hour's readings): auto (cbwd, the wind direction class, when present), none, or a "
                       "comma-separated list")
      ->capture_default_str();
  backtest->add_option("--format", flags->format, "table, csv or json")
      ->capture_default_str()
      ->check(CLI::IsMember({"table", "csv", "json"}));
  backtest->add_option("--utc-offset", flags->utc_offset,
                       "CSV: the archive's times without a zone are local time at this offset, e.g. +08:00 for the "
                       "Beijing data (default: UTC)");
  auto* sensor = backtest->add_option("--sensor-id", flags->sensor_id,
                                      "sensor_id of rows without one (default: the station number in the file name, else 1)");
  backtest->add_flag("--quiet", flags->quiet, "No progress on stderr");
  backtest->callback([flags, sensor, exit_code] { *exit_code = RunBacktest(*flags, sensor->count() > 0); });
}

}  // namespace mare::cli
