// ReadCarried: a raw record's reading rebuilt from the numbers the embedded log carries beside
// its JSON (docs/formats/log.md, attribute bit 3), so that a sink copying readings out need not
// parse the JSON again: the numeric fields come from the log, the timestamp is the record's event
// time, and the JSON is only scanned for the sensor id, the location and the text fields.
//
//   Reading r;
//   if (!ReadCarried(record, &r)) { /* parse record.value with RawReadingReader */ }
#pragma once

#include "log/log.h"
#include "reading/reading.h"

namespace mare::sinks {

// True with *reading filled (views into the record and its numbers, valid as long as they are)
// when the record carries its numbers and its JSON is what ingest accepted in the plain form the
// scan reads: no escaped string, and its numeric fields those carried, in the same order. False
// otherwise (a record from Kafka or `mare log produce`, a text with an escape): the caller
// parses the JSON, which gives the same reading. Readings are only ever appended with numbers
// by ingest, which has validated them, and the record's timestamp is then the reading's.
bool ReadCarried(const log::ConsumedRecord& record, Reading* reading);

}  // namespace mare::sinks
