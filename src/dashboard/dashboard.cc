#include "dashboard/dashboard.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>

#include "common/time.h"
#include "dashboard/assets.h"
#include "common/json_out.h"
#include "dashboard/pipeline.h"
#include "dashboard/sensor_health.h"
#include "dashboard/static_files.h"
#include "query/executor.h"
#include "query/format.h"
#include "reading/timestamp.h"

namespace mare::dashboard {

struct Dashboard::State {
  State(store::Store* s, metrics::Registry* registry, const DashboardOptions& o)
      : store(s), options(o), pipeline(registry, o.pipeline), sensors(s, o.dead_letter_path) {}

  store::Store* const store;
  const DashboardOptions options;
  PipelineHealth pipeline;

  std::mutex build_mu;  // one snapshot built at a time (SensorHealth has one caller)
  SensorHealth sensors;

  std::mutex mu;
  std::condition_variable new_frame;
  std::condition_variable stop_cv;
  bool stopping = false;
  uint64_t seq = 0;
  std::shared_ptr<const std::string> frame;  // the latest snapshot, as JSON
  int64_t frame_us = 0;

  std::atomic<int> streams{0};
  std::atomic<int64_t> wanted_until_us{0};  // someone asked for snapshots recently
  std::thread thread;

  // Builds a snapshot and hands it to every waiting stream.
  std::shared_ptr<const std::string> Publish(int64_t now_us) {
    std::lock_guard build(build_mu);
    JsonOut j;
    j.Open('{').Key("time").Str(FormatTimestamp(now_us));
    j.Key("sensors").Raw(sensors.Json(now_us));
    j.Key("pipeline").Raw(pipeline.Json()).Close('}');
    auto f = std::make_shared<const std::string>(j.Take());
    {
      std::lock_guard lock(mu);
      frame = f;
      frame_us = now_us;
      ++seq;
    }
    new_frame.notify_all();
    return f;
  }

  // The latest snapshot if it is at most `max_age_us` old.
  std::shared_ptr<const std::string> Fresh(int64_t now_us, int64_t max_age_us) {
    std::lock_guard lock(mu);
    return frame && now_us - frame_us <= max_age_us ? frame : nullptr;
  }

  // Waits up to `timeout_us` for a snapshot newer than *seen.
  std::shared_ptr<const std::string> Wait(uint64_t* seen, int64_t timeout_us, bool* stop) {
    std::unique_lock lock(mu);
    new_frame.wait_for(lock, std::chrono::microseconds(timeout_us), [&] { return stopping || seq > *seen; });
    *stop = stopping;
    if (stopping || seq <= *seen) return nullptr;
    *seen = seq;
    return frame;
  }

  void Loop() {
    auto next = std::chrono::steady_clock::now();
    for (;;) {
      int64_t now = NowMicros();
      {
        std::lock_guard build(build_mu);
        sensors.ScanRejects(now);
      }
      int64_t unattributed;
      {
        std::lock_guard build(build_mu);
        unattributed = sensors.unattributed_rejects();
      }
      pipeline.Sample(now, unattributed);
      if (streams.load() > 0 || now < wanted_until_us.load()) Publish(now);
      next += std::chrono::microseconds(options.tick_us);
      if (next < std::chrono::steady_clock::now()) next = std::chrono::steady_clock::now();  // a slow build: no burst
      std::unique_lock lock(mu);
      if (stop_cv.wait_until(lock, next, [&] { return stopping; })) return;
    }
  }
};

namespace {

// One open /api/v1/live stream.
struct Stream {
  std::shared_ptr<Dashboard::State> state;
  std::optional<uint32_t> sensor;
  std::string cursor;  // the sensor's readings after this time are sent next
  uint64_t seen = 0;
  bool hello = false;

  ~Stream() { state->streams.fetch_sub(1); }

  void AppendReadings(std::string* out) {
    std::string sql = "SELECT * FROM readings WHERE sensor_id = " + std::to_string(*sensor) + " AND ts > TIMESTAMP '" + cursor +
                      "' ORDER BY ts LIMIT 5000";
    query::QueryResult result;
    query::SqlError error;
    if (!query::RunQuery(*state->store, sql, {.max_rows = 5000, .threads = 1}, &result, &error) || result.rows.empty()) return;
    const query::Value& last = result.rows.back()[0];  // SELECT * starts with ts
    if (result.names.empty() || result.names[0] != "ts" || last.null) return;
    cursor = FormatTimestamp(last.i);
    std::string body;
    query::WriteJson(result, 0, &body);  // {"columns":..,"rows":..}: no newline inside
    *out += "event: readings\ndata: {\"sensor_id\":" + std::to_string(*sensor) + ",";
    out->append(body, 1, std::string::npos);
    *out += "\n\n";
  }

  // Called again and again by the server while the connection is open: at most every tick
  // it writes the new snapshot (and readings); in between it waits briefly, so that a server
  // stopping is noticed within a quarter of a second.
  bool Next(httplib::DataSink& sink) {
    std::string out;
    if (!hello) {
      out = "retry: 3000\n\n";
      hello = true;
    }
    bool stop = false;
    auto frame = state->Wait(&seen, 250'000, &stop);
    if (stop) {
      sink.done();
      return true;
    }
    if (frame) {
      out += "event: snapshot\ndata: ";
      out += *frame;
      out += "\n\n";
      if (sensor && state->store != nullptr) AppendReadings(&out);
    }
    if (out.empty()) return true;
    return sink.write(out.data(), out.size());
  }
};

void BadRequest(httplib::Response& res, const std::string& message) {
  JsonOut j;
  j.Open('{').Key("error").Str(message).Close('}');
  res.status = 400;
  res.set_content(j.Take(), "application/json");
}

// The newest reading time of a sensor, as a cursor ("" when the store has none of it).
std::string NewestOf(store::Store* store, uint32_t sensor) {
  query::QueryResult result;
  query::SqlError error;
  if (store == nullptr ||
      !query::RunQuery(*store, "SELECT max(ts) FROM readings WHERE sensor_id = " + std::to_string(sensor), {.threads = 1}, &result,
                       &error) ||
      result.rows.empty() || result.rows[0][0].null) {
    return FormatTimestamp(0);
  }
  return FormatTimestamp(result.rows[0][0].i);
}

}  // namespace

Dashboard::Dashboard(std::shared_ptr<State> state) : state_(std::move(state)) {}

Dashboard::~Dashboard() {
  {
    std::lock_guard lock(state_->mu);
    state_->stopping = true;
  }
  state_->stop_cv.notify_all();
  state_->new_frame.notify_all();
  if (state_->thread.joinable()) state_->thread.join();
}

std::unique_ptr<Dashboard> Dashboard::Start(HttpServer* server, store::Store* store, metrics::Registry* registry,
                                            const DashboardOptions& options) {
  auto state = std::make_shared<State>(store, registry, options);
  httplib::Server& routes = server->routes();

  AddStaticRoutes(server, Assets());

  routes.Get("/api/v1/live", [state](const httplib::Request& req, httplib::Response& res) {
    std::optional<uint32_t> sensor;
    std::string cursor;
    if (req.has_param("sensor")) {
      std::string text = req.get_param_value("sensor");
      char* end = nullptr;
      unsigned long v = std::strtoul(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || text[0] == '-' || v > 0xffffffffUL) return BadRequest(res, "sensor must be a sensor id");
      sensor = static_cast<uint32_t>(v);
    }
    if (req.has_param("since")) {
      int64_t us = 0;
      std::string why;
      if (!ParseTimestampText(req.get_param_value("since"), &us, &why)) return BadRequest(res, "since: " + why);
      cursor = FormatTimestamp(us);
    }
    if (state->streams.fetch_add(1) >= state->options.max_live_streams) {
      state->streams.fetch_sub(1);
      res.status = 503;
      res.set_header("Retry-After", "3");
      res.set_content("too many live streams open\n", "text/plain");
      return;
    }
    auto stream = std::make_shared<Stream>();
    stream->state = state;
    stream->sensor = sensor;
    if (sensor) stream->cursor = cursor.empty() ? NewestOf(state->store, *sensor) : cursor;
    int64_t now = NowMicros();
    if (!state->Fresh(now, 2 * state->options.tick_us)) state->Publish(now);  // the page gets a first snapshot at once
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider("text/event-stream",
                                     [stream](size_t, httplib::DataSink& sink) { return stream->Next(sink); });
  });

  routes.Get("/api/v1/live/snapshot", [state](const httplib::Request&, httplib::Response& res) {
    int64_t now = NowMicros();
    state->wanted_until_us.store(now + 10 * state->options.tick_us);
    auto frame = state->Fresh(now, state->options.tick_us + state->options.tick_us / 2);
    if (!frame) frame = state->Publish(now);
    res.set_header("Cache-Control", "no-store");
    res.set_content(*frame, "application/json");
  });

  routes.Get("/api/v1/pipeline", [state](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_content(state->pipeline.HistoryJson(), "application/json");
  });

  state->pipeline.Sample(NowMicros(), 0);  // a first sample before any request can ask for it
  state->thread = std::thread([state] { state->Loop(); });
  return std::unique_ptr<Dashboard>(new Dashboard(state));
}

}  // namespace mare::dashboard
