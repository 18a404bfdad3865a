// RecordParser: the numeric fields of a raw record's JSON, for records that do not carry the
// numbers ingest parsed (from Kafka, or from a producer other than ingest).
#pragma once

#include <simdjson.h>

#include <string_view>
#include <vector>

#include "reading/parser.h"
#include "reading/reading.h"

namespace mare::rollup {

// The values in raw were validated at ingest, so a plain On-Demand pass over the top-level
// fields is enough: numbers other than timestamp and sensor_id are the numeric fields (the
// event time and the sensor come with the record, as its timestamp and key). Field names
// match [A-Za-z_][A-Za-z0-9_]*, so the escaped key is the name.
class RecordParser {
 public:
  // The numeric fields of value into *out (names view the parser's buffer: valid until the
  // next call). False if value is not a JSON object.
  bool Numbers(std::string_view value, std::vector<NumberField>* out);

 private:
  simdjson::ondemand::parser json_;
  PaddedBuffer buffer_{4096};
};

}  // namespace mare::rollup
