#include "sources/http_source.h"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>

#include "common/json_writer.h"

namespace mare {

struct HttpSource::Slot {
  std::unique_ptr<Ingest::Worker> worker;
  PaddedBuffer body;
};

HttpSource::HttpSource(Ingest* ingest, HttpServer* server, int workers) : ingest_(ingest) {
  for (int i = 0; i < workers; ++i) {
    auto slot = std::make_unique<Slot>();
    slot->worker = ingest->NewWorker("http");
    free_.push_back(slot.get());
    slots_.push_back(std::move(slot));
  }
  server->routes().Post("/api/v1/ingest", [this](const httplib::Request& req, httplib::Response& res) {
    Slot* slot = Take();
    slot->body.Assign(req.body);
    IngestReport report;
    slot->worker->Add(slot->body.view(), &report);
    Status s = slot->worker->Flush();
    std::string_view body = slot->body.view();  // valid until Give(slot), below

    std::string out;
    if (!s.ok()) {
      res.status = 503;
      out = "{\"error\":";
      AppendJsonString(&out, "log append failed, nothing from this request is acknowledged: " + s.ToString());
      out += "}\n";
      res.set_content(out, "application/json");
      Give(slot);
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
      size_t line = 1 + static_cast<size_t>(std::count(body.begin(), body.begin() + static_cast<long>(std::min(e.offset, body.size())), '\n'));
      if (i) out += ',';
      fmt::format_to(std::back_inserter(out), "{{\"line\":{},\"reason\":", line);
      AppendJsonString(&out, e.reason);
      out += ",\"detail\":";
      AppendJsonString(&out, e.detail);
      out += '}';
    }
    out += "]}\n";
    Give(slot);
    res.set_content(out, "application/json");
  });
}

HttpSource::~HttpSource() = default;

HttpSource::Slot* HttpSource::Take() {
  std::lock_guard lock(mu_);
  if (free_.empty()) {
    // More concurrent requests than slots (the server pool grew): make another.
    auto slot = std::make_unique<Slot>();
    slot->worker = ingest_->NewWorker("http");
    slots_.push_back(std::move(slot));
    return slots_.back().get();
  }
  Slot* s = free_.back();
  free_.pop_back();
  return s;
}

void HttpSource::Give(Slot* slot) {
  std::lock_guard lock(mu_);
  free_.push_back(slot);
}

}  // namespace mare
