#include "archive/ndjson.h"

#include <fmt/format.h>

#include <deque>

#include "common/time.h"
#include "reading/parser.h"

namespace mare::archive {
namespace {

// The parser hands out readings whose views die with the line: each is copied into an owning
// archive::Reading, with field names interned in names_ (stable addresses).
class NdjsonReader : public ArchiveReader, private ReadingSink {
 public:
  NdjsonReader() : parser_(ParserOptions{}) {}

  Status Open(const std::string& path) { return lines_.Open(path); }

  Row Next(Reading* out) override {
    while (pending_.empty()) {
      if (!lines_.Next(&line_text_)) {
        status_ = lines_.status();
        return Row::kEnd;
      }
      line_ = lines_.line_number();
      if (line_text_.find_first_not_of(" \t\r") == std::string::npos) continue;
      buffer_.Assign(line_text_);
      parser_.Parse(buffer_.view(), NowMicros(), *this);
    }
    Entry& e = pending_.front();
    Row row = e.skipped ? Row::kSkipped : Row::kReading;
    if (e.skipped) {
      why_ = std::move(e.why);
    } else {
      *out = std::move(e.reading);
    }
    pending_.pop_front();
    return row;
  }

 private:
  // A line's readings and rejects in order (an array line may hold both).
  struct Entry {
    bool skipped = false;
    Reading reading;
    std::string why;
  };

  void OnReading(const mare::Reading& r) override {
    Reading& a = pending_.emplace_back().reading;
    a.time_micros = r.timestamp_us;
    a.sensor_id = r.sensor_id;
    if (r.has_location) a.location = Location{r.lat, r.lon};
    for (const auto& f : r.numbers) a.numbers.push_back({Intern(f.name), f.value});
    for (const auto& f : r.texts) a.texts.push_back({Intern(f.name), std::string(f.value)});
  }

  void OnReject(const Reject& reject) override {
    Entry& e = pending_.emplace_back();
    e.skipped = true;
    e.why = fmt::format("{}: {}", ReasonName(reject.reason), reject.detail);
  }

  std::string_view Intern(std::string_view name) {
    for (const auto& n : names_) {
      if (n == name) return n;
    }
    return names_.emplace_back(name);
  }

  ReadingParser parser_;
  LineReader lines_;
  std::string line_text_;
  PaddedBuffer buffer_;
  std::deque<Entry> pending_;
  std::deque<std::string> names_;
};

}  // namespace

Result<std::unique_ptr<ArchiveReader>> OpenNdjsonArchive(const std::string& path, const ArchiveOptions&) {
  auto reader = std::make_unique<NdjsonReader>();
  MARE_RETURN_IF_ERROR(reader->Open(path));
  return std::unique_ptr<ArchiveReader>(std::move(reader));
}

}  // namespace mare::archive
