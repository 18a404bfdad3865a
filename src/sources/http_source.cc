#include "sources/http_source.h"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>

#include "common/json_writer.h"

namespace mare {

struct HttpSource::Slot {
  std::unique_ptr<Ingest::Worker> worker;
};

HttpSource::HttpSource(Ingest* ingest, HttpServer* server, int workers) {
  for (int i = 0; i < std::max(1, workers); ++i) {
    auto slot = std::make_unique<Slot>();
    slot->worker = ingest->NewWorker("http");
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
    Status s = slot->worker->Flush();
    Give(slot);

    std::string out;
    if (!s.ok()) {
      res.status = 503;
      out = "{\"error\":";
      AppendJsonString(&out, "log append failed, nothing from this request is acknowledged: " + s.ToString());
      out += "}\n";
      res.set_content(out, "application/json");
      return;
    }
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
    // curl --data (the form type) strips the newlines of a file: its readings run into one line.
    if (report.rejected > 0 && req.get_header_value("Content-Type").starts_with("application/x-www-form-urlencoded") &&
        body.view().find('\n') == std::string_view::npos) {
      out += ",\"hint\":\"sent as a form (curl --data), whose files lose their newlines: send NDJSON with --data-binary\"";
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
