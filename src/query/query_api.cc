#include "query/query_api.h"

#include <httplib.h>
#include <limits>
#include <memory>
#include <fmt/format.h>
#include <simdjson.h>

#include "common/json_writer.h"
#include "common/time.h"
#include "query/answer_stream.h"
#include "query/format.h"
#include "query/query_gate.h"
#include "query/statement_threads.h"
#include "query/sensors.h"
#include "query/query_metrics.h"

namespace mare::query {
namespace {

enum class Format { kJson, kCsv, kNdjson, kArrow };

constexpr const char* kArrowStreamType = "application/vnd.apache.arrow.stream";

bool ChooseFormat(const httplib::Request& req, const std::string& explicit_format, Format* f, std::string* error) {
  std::string name = explicit_format.empty() ? req.get_param_value("format") : explicit_format;
  if (name.empty()) {
    std::string accept = req.get_header_value("Accept");
    if (accept.find(kArrowStreamType) != std::string::npos) {
      *f = Format::kArrow;
    } else if (accept.find("text/csv") != std::string::npos) {
      *f = Format::kCsv;
    } else if (accept.find("application/x-ndjson") != std::string::npos || accept.find("application/ndjson") != std::string::npos) {
      *f = Format::kNdjson;
    } else {
      *f = Format::kJson;
    }
    return true;
  }
  if (name == "json") *f = Format::kJson;
  else if (name == "csv") *f = Format::kCsv;
  else if (name == "ndjson") *f = Format::kNdjson;
  else if (name == "arrow") *f = Format::kArrow;
  else {
    *error = "unknown format \"" + name + "\"; use json, csv, ndjson or arrow";
    return false;
  }
  return true;
}

const char* ContentType(Format f) {
  switch (f) {
    case Format::kJson: return "application/json";
    case Format::kCsv: return "text/csv";
    case Format::kNdjson: return "application/x-ndjson";
    case Format::kArrow: return kArrowStreamType;
  }
  return "application/octet-stream";
}

AnswerFormat AnswerFormatOf(Format f) {
  return f == Format::kCsv ? AnswerFormat::kCsv : f == Format::kNdjson ? AnswerFormat::kNdjson : AnswerFormat::kArrow;
}

// Pieces an answer's chunk is written in: the server copies each into a chunk of its own.
constexpr size_t kWritePiece = 1 << 20;

// Statement threads kept idle when query.max_concurrent sets no limit.
constexpr size_t kUngatedStatementThreads = 8;

}  // namespace

void AddQueryRoutes(HttpServer* server, store::Store* store, const QueryApiOptions& options, metrics::Registry* registry) {
  auto* ok = &registry->GetCounter(query_metrics::kRequests, {{"status", "ok"}});
  auto* bad = &registry->GetCounter(query_metrics::kRequests, {{"status", "invalid"}});
  auto* failed = &registry->GetCounter(query_metrics::kRequests, {{"status", "failed"}});
  auto* seconds = &registry->GetHistogram(query_metrics::kExecutionSeconds, {},
                                          {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30});
  auto* busy = &registry->GetCounter(query_metrics::kRequests, {{"status", "busy"}});
  auto gate = std::make_shared<QueryGate>(options.limits.max_concurrent);
  // The streamed answers' statements run on threads kept for the next: as many kept as the
  // gate lets run at once.
  auto threads = std::make_shared<StatementThreads>(
      options.limits.max_concurrent > 0 ? static_cast<size_t>(options.limits.max_concurrent) : kUngatedStatementThreads);
  auto handler = [=](const httplib::Request& req, httplib::Response& res) {
    std::string sql = req.get_param_value("q");
    std::string format_name;
    if (sql.empty() && req.method == "POST") {
      std::string type = req.get_header_value("Content-Type");
      if (type.find("application/json") != std::string::npos) {
        simdjson::dom::parser parser;
        simdjson::dom::element doc;
        std::string_view q, fmt_value;
        if (parser.parse(req.body).get(doc) != simdjson::SUCCESS || doc["q"].get(q) != simdjson::SUCCESS) {
          bad->Add();
          return AnswerError(res, 400, "a JSON body needs a string member \"q\" with the SQL statement");
        }
        sql = std::string(q);
        if (doc["format"].get(fmt_value) == simdjson::SUCCESS) format_name = std::string(fmt_value);
      } else {
        sql = req.body;
      }
    }
    if (sql.empty()) {
      bad->Add();
      return AnswerError(res, 400, "no statement: pass the SQL as q=... or as the POST body");
    }
    Format format;
    std::string why;
    if (!ChooseFormat(req, format_name, &format, &why)) {
      bad->Add();
      return AnswerError(res, 400, why);
    }
    // Refused, not queued, when the gate is full: the client hears at once and comes back.
    QueryGate::Permit permit = gate->TryEnter();
    if (!permit) {
      busy->Add();
      res.set_header("Retry-After", "1");
      SqlError error{fmt::format("too many concurrent queries: query.max_concurrent ({}) are running; retry in a moment",
                                 options.limits.max_concurrent),
                     Position{0, 0}, SqlError::Kind::kBusy};
      res.status = 503;
      res.set_content(ErrorJson(error), "application/json");
      return;
    }
    // The statement's fault or a limit it reached: 400; the server's load: 503; the store's: 500.
    auto fail = [&](const SqlError& error) {
      bool user = error.kind == SqlError::Kind::kStatement || error.kind == SqlError::Kind::kLimit;
      (user ? bad : failed)->Add();
      res.status = user ? 400 : error.kind == SqlError::Kind::kBusy ? 503 : 500;
      res.set_content(ErrorJson(error), "application/json");
    };
    if (format == Format::kJson) {
      // One document: the whole answer is held, within query.max_rows.
      ResultTable result;
      SqlError error;
      int64_t start = MonotonicMicros();
      bool done = RunQuery(*store, sql, {.max_rows = options.max_rows, .limits = options.limits}, &result, &error);
      double elapsed_ms = static_cast<double>(MonotonicMicros() - start) / 1000.0;
      seconds->Observe(elapsed_ms / 1000.0);
      if (!done) return fail(error);
      ok->Add();
      std::string body;
      res.set_header("X-Mare-Row-Count", std::to_string(result.rows));
      res.set_header("X-Mare-Elapsed-Ms", fmt::format("{:.3f}", elapsed_ms));
      WriteJson(result, elapsed_ms, &body);
      res.set_content(std::move(body), "application/json");
      return;
    }
    // CSV, NDJSON and Arrow stream: any number of rows, in the memory of a batch and a queue.
    // An answer that fits the queue is sent whole, with its row count; a larger one goes out
    // chunked as the statement runs, and a client that goes away stops it.
    auto stream = std::make_shared<AnswerStream>(
        *store, sql, QueryOptions{.max_rows = std::numeric_limits<size_t>::max(), .limits = options.limits},
        AnswerFormatOf(format), AnswerStream::kDefaultQueueBytes, threads.get());
    AnswerStream::State state = stream->WaitStarted();
    if (state == AnswerStream::State::kFailed) {
      seconds->Observe(stream->elapsed_ms() / 1000.0);
      return fail(stream->error());
    }
    ok->Add();
    if (state == AnswerStream::State::kComplete) {
      seconds->Observe(stream->elapsed_ms() / 1000.0);
      res.set_header("X-Mare-Row-Count", std::to_string(stream->summary().rows));
      res.set_header("X-Mare-Elapsed-Ms", fmt::format("{:.3f}", stream->elapsed_ms()));
      // Moved into the response: set_content would copy it once more.
      stream->TakeAll(&res.body);
      res.set_header("Content-Type", ContentType(format));
      return;
    }
    auto held = std::make_shared<QueryGate::Permit>(std::move(permit));
    res.set_chunked_content_provider(
        ContentType(format),
        [stream, held, threads](size_t, httplib::DataSink& sink) {
          std::string chunk;
          if (!stream->Next(&chunk)) {
            if (stream->failed()) return false;  // cut short: the chunked body has no end, the client sees it
            // The statement is over: its place is free before the client hears the end.
            *held = QueryGate::Permit();
            sink.done();
            return true;
          }
          for (size_t at = 0; at < chunk.size(); at += kWritePiece) {
            if (!sink.write(chunk.data() + at, std::min(kWritePiece, chunk.size() - at))) return false;
          }
          return true;
        },
        [stream, seconds, threads](bool) {
          stream->Finish();  // the statement stops here if the client went away
          seconds->Observe(stream->elapsed_ms() / 1000.0);
        });
  };
  server->routes().Get("/api/v1/query", handler);
  server->routes().Post("/api/v1/query", handler);
  server->routes().Get("/api/v1/sensors", [store](const httplib::Request&, httplib::Response& res) {
    res.set_content(SensorsJson(ListSensors(*store)), "application/json");
  });
}

}  // namespace mare::query
