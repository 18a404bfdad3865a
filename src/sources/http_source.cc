#include "sources/http_source.h"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <cstdint>

#include "common/json_writer.h"

namespace mare {
namespace {

// "unacknowledged_lines":[...],"unacknowledged_items":[{"line":L,"items":[...]},...]: the
// lines (1-based) holding a reading the log did not acknowledge, and for a line holding an
// array of readings, which of its elements (0-based) those are, since the others of the same
// line may be acknowledged. Resending exactly these stores every reading once.
void AppendUnacknowledged(std::string_view body, const IngestReport& report, std::string* out) {
  struct Missing {
    size_t line;
    size_t item;  // SIZE_MAX when the line holds one reading
  };
  std::vector<Missing> missing;
  missing.reserve(report.unacknowledged_offsets.size());
  size_t pos = 0, line = 1, line_start = 0;
  for (size_t offset : report.unacknowledged_offsets) {
    for (; pos < offset && pos < body.size(); ++pos) {
      if (body[pos] == '\n') {
        ++line;
        line_start = pos + 1;
      }
    }
    size_t first = line_start;
    while (first < body.size() && (body[first] == ' ' || body[first] == '\t')) ++first;
    size_t item = SIZE_MAX;
    if (first < body.size() && body[first] == '[') {
      // Its index among the line's readings (valid or not), which the parser reports in order.
      auto begin = std::lower_bound(report.reading_offsets.begin(), report.reading_offsets.end(), line_start);
      auto at = std::lower_bound(begin, report.reading_offsets.end(), offset);
      item = static_cast<size_t>(at - begin);
    }
    missing.push_back({line, item});
  }
  *out += "\"unacknowledged_lines\":[";
  for (size_t i = 0; i < missing.size(); ++i) {
    if (i && missing[i].line == missing[i - 1].line) continue;
    if (i) *out += ',';
    fmt::format_to(std::back_inserter(*out), "{}", missing[i].line);
  }
  *out += "],\"unacknowledged_items\":[";
  bool first_line = true;
  for (size_t i = 0; i < missing.size(); ++i) {
    if (missing[i].item == SIZE_MAX) continue;
    bool opens = i == 0 || missing[i - 1].line != missing[i].line;
    if (opens) {
      if (!first_line) *out += "]},";
      first_line = false;
      fmt::format_to(std::back_inserter(*out), "{{\"line\":{},\"items\":[{}", missing[i].line, missing[i].item);
    } else {
      fmt::format_to(std::back_inserter(*out), ",{}", missing[i].item);
    }
  }
  if (!first_line) *out += "]}";
  *out += ']';
}

}  // namespace

struct HttpSource::Slot {
  std::unique_ptr<Ingest::Worker> worker;
};

HttpSource::HttpSource(Ingest* ingest, HttpServer* server, int workers) {
  for (int i = 0; i < std::max(1, workers); ++i) {
    auto slot = std::make_unique<Slot>();
    // A request is answered as a whole: its readings are appended all or nothing.
    slot->worker = ingest->NewWorker("http", Ingest::Acks::kWait, Ingest::Flushes::kAllOrNothing);
    free_.push_back(slot.get());
    slots_.push_back(std::move(slot));
  }
  const size_t max_body = server->options().max_body_bytes;
  server->routes().Post("/api/v1/ingest", [this, max_body](const httplib::Request& req, httplib::Response& res,
                                                             const httplib::ContentReader& content_reader) {
    if (req.is_multipart_form_data()) {
      res.status = 415;
      res.set_content("{\"error\":\"multipart/form-data is not accepted: send the NDJSON readings as the body itself "
                      "(curl --data-binary @readings.ndjson)\"}\n",
                      "application/json");
      return;
    }
    // The body's own buffer, freed with the request: the server counts its bytes in flight.
    PaddedBuffer body(std::min<size_t>(max_body, req.get_header_value<uint64_t>("Content-Length")));
    bool received = content_reader([&body, max_body](const char* data, size_t n) {
      if (body.size() + n > max_body) return false;
      body.Append(data, n);
      return true;
    });
    if (!received) {
      if (res.status < 400) res.status = 400;  // the server's error hook says why (too large, too slow, ...)
      return;
    }
    IngestReport report;
    Slot* slot = Take();
    slot->worker->Add(body.view(), &report);
    Status s = slot->worker->Flush(&report);
    Give(slot);

    std::string out;
    fmt::format_to(std::back_inserter(out), "{{\"accepted\":{},\"rejected\":{},\"reasons\":{{", report.accepted, report.rejected);
    bool first = true;
    for (int i = 0; i < kRejectReasonCount; ++i) {
      if (report.by_reason[static_cast<size_t>(i)] == 0) continue;
      if (!first) out += ',';
      first = false;
      AppendJsonString(&out, ReasonName(static_cast<RejectReason>(i)));
      fmt::format_to(std::back_inserter(out), ":{}", report.by_reason[static_cast<size_t>(i)]);
    }
    out += "},\"errors\":[";
    for (size_t i = 0; i < report.errors.size(); ++i) {
      const auto& e = report.errors[i];
      std::string_view text = body.view();
      size_t line = 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + static_cast<long>(std::min(e.offset, text.size())), '\n'));
      if (i) out += ',';
      fmt::format_to(std::back_inserter(out), "{{\"line\":{},\"reason\":", line);
      AppendJsonString(&out, e.reason);
      out += ",\"detail\":";
      AppendJsonString(&out, e.detail);
      out += '}';
    }
    out += ']';
    if (!s.ok()) {
      res.status = 503;
      res.set_header("Retry-After", "1");
      fmt::format_to(std::back_inserter(out), ",\"unacknowledged\":{},", report.unacknowledged);
      AppendUnacknowledged(body.view(), report, &out);
      out += ",\"error\":";
      AppendJsonString(&out, fmt::format("log append failed: {} of {} valid readings are not acknowledged, the {} others are: "
                                         "send again only the unacknowledged lines (and items); {}",
                                         report.unacknowledged, report.unacknowledged + report.accepted,
                                         report.accepted, s.ToString()));
    }
    // curl --data strips the newlines of a file, whatever the content type: its readings run
    // together on one line, and the first reject says only that the line is not one reading.
    if (report.rejected > 0 && body.view().find('\n') == std::string_view::npos &&
        body.view().find("}{") != std::string_view::npos) {
      out += ",\"hint\":\"readings run together on one line, as curl --data sends a file (it strips newlines): send it "
             "with --data-binary\"";
    }
    out += "}\n";
    res.set_content(out, "application/json");
  });
}

HttpSource::~HttpSource() = default;

HttpSource::Slot* HttpSource::Take() {
  std::unique_lock lock(mu_);
  slot_free_.wait(lock, [this] { return !free_.empty(); });
  Slot* s = free_.back();
  free_.pop_back();
  return s;
}

void HttpSource::Give(Slot* slot) {
  {
    std::lock_guard lock(mu_);
    free_.push_back(slot);
  }
  slot_free_.notify_one();
}

}  // namespace mare
