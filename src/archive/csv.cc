#include "archive/csv.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <deque>
#include <filesystem>

#include "archive/csv_column_types.h"
#include "reading/timestamp.h"

namespace mare::archive {

namespace {

class CsvReader : public ArchiveReader {
 public:
  explicit CsvReader(const ArchiveOptions& options) : options_(options) {}

  Status Open(const std::string& path) {
    path_ = path;
    MARE_RETURN_IF_ERROR(lines_.Open(path));
    std::string header;
    do {
      if (!lines_.Next(&header)) {
        MARE_RETURN_IF_ERROR(lines_.status());
        return NoCsvHeaderError(path);
      }
    } while (TrimCell(header).empty());
    if (header.substr(0, 3) == "\xEF\xBB\xBF") header.erase(0, 3);  // UTF-8 byte order mark
    header_line_ = lines_.line_number();
    delimiter_ = DetectCsvDelimiter(header);
    std::vector<std::string> names;
    if (!SplitCsvLine(header, delimiter_, &names)) return CsvHeaderQuoteError(path, header_line_);
    MARE_RETURN_IF_ERROR(MapColumns(names));
    MARE_RETURN_IF_ERROR(TypeColumns());
    // Second pass: back to the first row after the header.
    lines_ = LineReader();
    MARE_RETURN_IF_ERROR(lines_.Open(path));
    std::string skip;
    while (lines_.line_number() < header_line_ && lines_.Next(&skip)) {
    }
    return Status::OK();
  }

  Row Next(Reading* out) override {
    while (lines_.Next(&row_)) {
      line_ = lines_.line_number();
      if (TrimCell(row_).empty()) continue;
      if (!SplitCsvLine(row_, delimiter_, &cells_)) {
        why_ = kUnterminatedQuoteReason;
        return Row::kSkipped;
      }
      if (cells_.size() != columns_.count) {
        why_ = CellCountReason(cells_.size(), columns_.count);
        return Row::kSkipped;
      }
      Result<int64_t> time = CsvRowTime(cells_, columns_, &joined_, options_.utc_offset_micros);
      if (!time) {
        why_ = CsvTimeReason(cells_, columns_, time.status());
        return Row::kSkipped;
      }
      out->Clear();
      out->time_micros = *time;
      out->sensor_id = options_.sensor_id;
      // The default id is for files without the column; a missing cell in it names no sensor
      // (a default could replace another sensor's reading). --missing codes are values, never
      // an id (99 is a sensor).
      if (columns_.sensor != kNoColumn && IsMissingCell(cells_[columns_.sensor])) {
        why_ = kMissingSensorIdReason;
        return Row::kSkipped;
      }
      if (columns_.sensor != kNoColumn) {
        std::string_view cell = TrimCell(cells_[columns_.sensor]);
        uint32_t id = 0;
        if (!ParseSensorIdCell(cell, &id)) {
          why_ = SensorIdReason(cell);
          return Row::kSkipped;
        }
        out->sensor_id = id;
      }
      if (size_t lone = LoneCoordinateColumn(columns_); lone != kNoColumn && !IsMissing(cells_[lone])) {
        why_ = LoneCoordinateReason(columns_, TrimCell(cells_[lone]));
        return Row::kSkipped;
      }
      out->location = options_.location;
      double lat = 0, lon = 0;
      if (columns_.lat != kNoColumn && columns_.lon != kNoColumn && NumberAt(columns_.lat, &lat) && NumberAt(columns_.lon, &lon) &&
          lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180) {
        out->location = Location{lat, lon};
      }
      for (const Field& f : fields_) {
        if (f.numeric) {
          double v = 0;
          if (NumberAt(f.column, &v)) out->numbers.push_back({f.name, v});
        } else {
          std::string_view cell = TrimCell(cells_[f.column]);
          if (!IsMissing(cell)) out->texts.push_back({f.name, std::string(cell)});
        }
      }
      return Row::kReading;
    }
    status_ = lines_.status();
    return Row::kEnd;
  }

  std::vector<TextColumn> text_columns() const override { return text_columns_; }

 private:
  struct Field {
    size_t column;
    std::string_view name;
    bool numeric = true;
  };

  Status MapColumns(const std::vector<std::string>& headers) {
    Result<CsvColumns> columns = MapCsvColumns(headers, path_);
    if (!columns) return columns.status();
    columns_ = std::move(*columns);
    for (CsvColumns::Field& f : columns_.fields) fields_.push_back({f.column, f.name});
    return Status::OK();
  }

  // A field column is numbers unless a cell of it is text (CsvColumnTypes: the bulk import's rule).
  Status TypeColumns() {
    CsvColumnTypes types(columns_, delimiter_);
    std::string line;
    std::error_code error;
    const auto size = static_cast<int64_t>(std::filesystem::file_size(path_, error));
    int64_t next_progress = 0;
    while (!types.all_text() && lines_.Next(&line)) {
      types.AddLine(line, lines_.line_number());
      if (options_.types_progress && lines_.bytes_read() >= next_progress) {
        options_.types_progress(lines_.bytes_read(), size);
        next_progress = lines_.bytes_read() + (8 << 20);
      }
    }
    if (options_.types_progress) options_.types_progress(size, size);
    for (size_t k = 0; k < fields_.size(); ++k) {
      fields_[k].numeric = !types.text(k);
      if (types.text(k)) text_columns_.push_back({std::string(fields_[k].name), types.first_text(k), types.first_text_line(k)});
    }
    return lines_.status();
  }

  bool IsMissing(std::string_view cell) const { return IsMissingCell(cell, options_.missing_codes); }

  bool NumberAt(size_t column, double* value) const {
    std::string_view cell = TrimCell(cells_[column]);
    return !IsMissing(cell) && ParseNumber(cell, value);
  }

  ArchiveOptions options_;
  std::string path_;
  LineReader lines_;
  size_t header_line_ = 0;
  char delimiter_ = ',';
  CsvColumns columns_;      // its fields' names are what the readings' names view
  std::vector<Field> fields_;
  std::vector<TextColumn> text_columns_;
  std::string row_;
  std::string joined_;
  std::vector<std::string> cells_;
};

}  // namespace

Result<std::unique_ptr<ArchiveReader>> OpenCsvArchive(const std::string& path, const ArchiveOptions& options) {
  auto reader = std::make_unique<CsvReader>(options);
  MARE_RETURN_IF_ERROR(reader->Open(path));
  return std::unique_ptr<ArchiveReader>(std::move(reader));
}

}  // namespace mare::archive
