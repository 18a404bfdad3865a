#include "sources/line_protocol_http.h"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>

#include "common/json_writer.h"

namespace mare {
namespace {

enum class Api { kV1, kV2 };

// The error body each InfluxDB version answers with: 2.x {"code":...,"message":...}, 1.x
// {"error":...}. `extra` (",\"accepted\":..." or empty) follows inside the object.
void Answer(httplib::Response& res, Api api, int status, std::string_view code, std::string_view message,
            std::string_view extra = {}) {
  std::string out = "{";
  if (api == Api::kV2) {
    out += "\"code\":";
    AppendJsonString(&out, code);
    out += ",\"message\":";
  } else {
    out += "\"error\":";
  }
  AppendJsonString(&out, message);
  out += extra;
  out += "}\n";
  res.status = status;
  res.set_content(out, "application/json; charset=utf-8");
}

}  // namespace

LineProtocolHttp::LineProtocolHttp(Ingest* ingest, HttpServer* server, const LineProtocolOptions& options, int workers) {
  for (int i = 0; i < std::max(1, workers); ++i) {
    // A request is answered as a whole: its points are appended all or nothing.
    workers_.push_back(std::make_unique<LineProtocolWorker>(ingest, options, "line_http", Ingest::Acks::kWait,
                                                            Ingest::Flushes::kAllOrNothing));
    free_.push_back(workers_.back().get());
  }
  const size_t max_body = options.max_body_bytes;
  auto handler = [this, max_body](Api api) {
    return [this, max_body, api](const httplib::Request& req, httplib::Response& res,
                                 const httplib::ContentReader& content_reader) {
      Precision precision = Precision::kNanoseconds;
      std::string p = req.get_param_value("precision");
      bool known = p.empty() || (api == Api::kV2 ? (p == "ns" || p == "us" || p == "ms" || p == "s")
                                                 : ParsePrecision(p, &precision));
      if (known && !p.empty()) ParsePrecision(p, &precision);
      if (!known) {
        Answer(res, api, 400, "invalid",
               fmt::format("invalid precision '{}': {}", p, api == Api::kV2 ? "ns, us, ms or s" : "n, ns, u, us, ms, s, m or h"));
        return;
      }
      // The body as the server decompressed it; its own buffer, freed with the request.
      PaddedBuffer body(std::min<size_t>(max_body, req.get_header_value<uint64_t>("Content-Length")));
      bool too_large = false;
      bool received = content_reader([&](const char* data, size_t n) {
        if (body.size() + n > max_body) {
          too_large = true;
          return false;
        }
        body.Append(data, n);
        return true;
      });
      if (too_large) {
        Answer(res, api, 413, "request too large",
               fmt::format("the body is over sources.line_protocol.max_body_bytes = {} bytes (decompressed): send "
                           "smaller batches", max_body));
        return;
      }
      if (!received) {
        if (res.status < 400) res.status = 400;  // the server's error hook says why (too large, too slow, ...)
        return;
      }
      LineProtocolReport report;
      LineProtocolWorker* worker = Take();
      worker->Add(body.view(), precision, &report);
      Status s = worker->Flush(&report);
      Give(worker);

      const uint64_t refused = report.rejected - report.duplicates;
      if (s.ok() && refused == 0) {
        res.status = 204;
        return;
      }
      std::string listed;  // the first ten, for people reading the message
      int shown = 0;
      for (const auto& e : report.errors) {
        if (std::string_view(e.reason) == "duplicate") continue;
        if (shown++ == 10) {
          listed += "; ...";
          break;
        }
        if (!listed.empty()) listed += "; ";
        listed += fmt::format("line {}: {}: {}", e.line, e.reason, e.detail);
      }
      std::string extra = fmt::format(",\"accepted\":{},\"rejected\":{},\"errors\":[", report.accepted, refused);
      bool first = true;
      for (const auto& e : report.errors) {
        if (std::string_view(e.reason) == "duplicate") continue;
        if (!first) extra += ',';
        first = false;
        fmt::format_to(std::back_inserter(extra), "{{\"line\":{},\"reason\":", e.line);
        AppendJsonString(&extra, e.reason);
        extra += ",\"detail\":";
        AppendJsonString(&extra, e.detail);
        extra += '}';
      }
      extra += ']';
      if (!s.ok()) {
        extra += ",\"unacknowledged_lines\":[";
        for (size_t i = 0; i < report.unacknowledged_lines.size(); ++i) {
          fmt::format_to(std::back_inserter(extra), "{}{}", i ? "," : "", report.unacknowledged_lines[i]);
        }
        extra += ']';
        res.set_header("Retry-After", "1");
        Answer(res, api, 503, "unavailable",
               fmt::format("log append failed: {} of {} valid lines are not written (unacknowledged_lines), the {} "
                           "others are: send those lines again; {}{}{}",
                           report.unacknowledged, report.unacknowledged + report.accepted, report.accepted, s.ToString(),
                           listed.empty() ? "" : "; rejected: ", listed),
               extra);
        return;
      }
      Answer(res, api, 400, "invalid",
             fmt::format("partial write: {} of {} lines rejected ({} written): {}", refused, report.lines,
                         report.lines - refused, listed),
             extra);
    };
  };
  server->routes().Post("/write", handler(Api::kV1));
  server->routes().Post("/api/v2/write", handler(Api::kV2));
  auto ping = [](const httplib::Request&, httplib::Response& res) {
    res.status = 204;
    res.set_header("X-Influxdb-Version", "mare");
  };
  server->routes().Get("/ping", ping);
}

LineProtocolHttp::~LineProtocolHttp() = default;

LineProtocolWorker* LineProtocolHttp::Take() {
  std::unique_lock lock(mu_);
  worker_free_.wait(lock, [this] { return !free_.empty(); });
  LineProtocolWorker* w = free_.back();
  free_.pop_back();
  return w;
}

void LineProtocolHttp::Give(LineProtocolWorker* worker) {
  {
    std::lock_guard lock(mu_);
    free_.push_back(worker);
  }
  worker_free_.notify_one();
}

}  // namespace mare
