// LineProtocolParser: turns InfluxDB line protocol (what Telegraf, the InfluxDB clients and
// QuestDB's ILP senders write) into mare's JSON readings, one per valid line, the form the log
// keeps. It also keeps what it parsed of each reading, and holds it to ingest's reading rules
// (ParserOptions): a reading it vouches for reaches ingest as it is, without its JSON being
// parsed again; the others (a name ingest refuses, text that needs escaping, a number with an
// exponent, ...) are parsed from their JSON by ingest's ReadingParser, which then accepts or
// rejects them with its own reasons. The grammar accepted, and how a line becomes a reading, is
// docs/formats/line-protocol.md.
//
//   LineProtocolParser parser(options, ingest_rules);
//   LineBatch batch;
//   parser.Convert(body, Precision::kNanoseconds, now_us, &batch);
//   // batch.json: NDJSON readings; batch.lines[i]: the line the i-th came from;
//   // batch.rejects: the lines that do not parse, with their 1-based number and reason.
//   HandOver(batch, reading_parser, now_us, sink, &scratch);   // each reading, as ReadingParser would
//
// No allocation per line once the batch's buffers are warm.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "reading/parser.h"
#include "reading/reading.h"

namespace mare {

// The unit of a line's timestamp: InfluxDB's precision parameter.
enum class Precision : uint8_t { kNanoseconds, kMicroseconds, kMilliseconds, kSeconds, kMinutes, kHours };

// "ns" or "n", "us" or "u", "ms", "s", "m", "h" (InfluxDB 1.x and 2.x spellings); false else.
bool ParsePrecision(std::string_view text, Precision* out);

struct LineProtocolOptions {
  // The tag (or, failing a tag, the integer field) holding the reading's sensor_id.
  std::string sensor_id_tag = "sensor_id";
  // Numeric fields that make the reading's location; empty: no location, kept as numbers.
  std::string lat_field = "lat";
  std::string lon_field = "lon";
  // The text field the measurement is kept in; empty: the measurement is dropped.
  std::string measurement_field = "measurement";
  // Other tags become text fields named after them; false: they are dropped.
  bool keep_tags = true;
  // Longer lines are rejected as oversized.
  size_t max_line_bytes = 64 * 1024;
  // An HTTP body, once decompressed, may be at most this long (413 beyond).
  size_t max_body_bytes = 64 << 20;
  // The precision of timestamps over TCP and UDP, which carry no parameter.
  std::string precision = "ns";
};

// A line that did not become a reading.
struct LineReject {
  uint32_t line;  // 1-based, in the buffer converted
  RejectReason reason;
  std::string detail;
  std::string_view raw;  // the line (at most 1024 bytes of it)
};

// What the parser knows of one converted reading. Names and texts are offsets into the batch's
// json: the reading's own JSON text holds them, unescaped, as ReadingParser's views would.
struct LineReading {
  int64_t timestamp_us;
  uint32_t sensor_id;
  uint32_t json_size;       // its JSON's length, without the line feed
  bool vouched;             // ingest's parser would accept the JSON and make exactly this reading of it
  bool has_location;
  double lat, lon;
  uint32_t numbers_at, number_count;  // in LineBatch::numbers
  uint32_t texts_at, text_count;      // in LineBatch::texts
};

// What Convert makes of one or more buffers, kept until Clear.
struct LineBatch {
  struct Number {
    uint32_t name_at;
    uint32_t name_size;
    double value;
  };
  struct Text {
    uint32_t name_at;
    uint32_t name_size;
    uint32_t value_at;
    uint32_t value_size;
  };
  PaddedBuffer json;                  // NDJSON: one reading per valid line
  std::vector<uint32_t> lines;        // the source line of each reading in json, in order
  std::vector<uint32_t> json_starts;  // where each reading starts in json
  std::vector<LineReading> readings;  // what the parser knows of each, in order
  std::vector<Number> numbers;
  std::vector<Text> texts;
  std::vector<LineReject> rejects;
  // The source line of the reading holding json offset `offset`.
  uint32_t LineAt(size_t offset) const;
  // The i-th reading's JSON text, without its line feed (readable kParsePadding bytes past it).
  std::string_view JsonOf(size_t i) const {
    return std::string_view(json.view().data() + json_starts[i], readings[i].json_size);
  }
  // The i-th reading, vouched for, as ReadingParser would make it of its JSON.
  void ReadingAt(size_t i, Reading* out) const;
  void Clear();
};

// Hands every reading of `batch`, in order, to `sink` as ingest's parser would: those the
// converter vouched for as they are (in *scratch), the others parsed from their JSON by `parser`
// (ingest's rules, now_us the time the batch was converted at).
void HandOver(const LineBatch& batch, ReadingParser& parser, int64_t now_us, ReadingSink& sink, Reading* scratch);

class LineProtocolParser {
 public:
  // `rules`: ingest's, which a reading must meet to be vouched for (LineReading::vouched).
  explicit LineProtocolParser(LineProtocolOptions options = {}, ParserOptions rules = {});

  // Converts every line of `data`, appending readings and rejects to *batch. A line without a
  // timestamp takes now_us. Line numbers count from first_line; returns the number the line
  // after `data` would have.
  uint32_t Convert(std::string_view data, Precision precision, int64_t now_us, LineBatch* batch, uint32_t first_line = 1);

  const LineProtocolOptions& options() const { return options_; }

 private:
  struct Field {
    std::string_view key;  // escaped as received
    std::string_view value;
    double decimal;        // the value, if `read` as it was scanned (a plain float)
    char type;             // 'f' float, 'i' integer, 'u' unsigned, 'b' boolean, 's' string
    uint8_t key_seen;      // the byte classes of the key, OR-ed (line_protocol.cc's ScanToken)
    bool read;
  };
  struct Tag {
    std::string_view key;
    std::string_view value;
    uint8_t key_seen, value_seen;  // as Field::key_seen
  };
  // Parses one line (without its end) onto the end of batch->json, batch->numbers and
  // batch->texts, and fills *reading; on failure returns the reason and sets *why (the caller
  // cuts the batch back).
  bool ConvertLine(std::string_view line, Precision precision, int64_t now_us, LineBatch* batch, LineReading* reading,
                   RejectReason* reason, std::string* why);

  LineProtocolOptions options_;
  ParserOptions rules_;
  uint64_t numeric_bits_ = 0;  // NameBit of every rules_.numeric_fields name
  bool measurement_field_is_name_ = false;  // IsFieldName(options_.measurement_field), asked once
  bool lat_is_lon_ = false;                 // options_.lat_field == options_.lon_field, asked once
  std::vector<Tag> tags_;
  std::vector<Field> fields_;
  std::vector<std::string_view> names_;  // the JSON names of the line's reading, for duplicates
  int64_t stamp_second_ = INT64_MIN;     // the second whose text is in stamp_, formatted once for many lines
  char stamp_[32] = {};
};

}  // namespace mare
