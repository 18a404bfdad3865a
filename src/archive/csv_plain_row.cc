#include "archive/csv_plain_row.h"

namespace mare::archive {

PlainRowLayout::PlainRowLayout(const CsvColumns& columns, char delimiter_char) : delimiter(delimiter_char) {
  // Only a single time cell and a sensor_id column; a field bit each in ParsePlainRow's mask.
  // (A lone latitude or longitude column skips the rows it has a value in: the general rules'.)
  if (columns.time == kNoColumn || columns.time_of_day != kNoColumn || columns.sensor == kNoColumn || columns.fields.size() > 64 ||
      LoneCoordinateColumn(columns) != kNoColumn) {
    return;
  }
  // A delimiter that a plain cell may hold (a digit, '-', '.') would make rows ambiguous.
  if ((delimiter >= '0' && delimiter <= '9') || delimiter == '-' || delimiter == '.' || delimiter == '"' || delimiter == '\n' ||
      delimiter == '\r') {
    return;
  }
  roles.assign(columns.count, kField);
  field_of.assign(columns.count, 0);
  roles[columns.time] = kTime;
  roles[columns.sensor] = kSensor;
  if (columns.lat != kNoColumn) roles[columns.lat] = kLat;
  if (columns.lon != kNoColumn) roles[columns.lon] = kLon;
  for (size_t k = 0; k < columns.fields.size(); ++k) field_of[columns.fields[k].column] = static_cast<uint32_t>(k);
  usable = true;
}

}  // namespace mare::archive
