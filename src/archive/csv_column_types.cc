#include "archive/csv_column_types.h"

#include <cstring>
#include <limits>

#include "archive/archive.h"
#include "archive/csv_blocks.h"

namespace mare::archive {
namespace {

constexpr uint32_t kNoField = std::numeric_limits<uint32_t>::max();

// [-]digits[.digits], shorter than any decimal too large for a double: a number (ParseNumber
// reads it), told without converting it. The common field cell; false for any other text.
bool IsPlainDecimal(const char* p, const char* end) {
  if (end - p > 300) return false;
  p += p != end && *p == '-';
  const char* digits = p;
  while (p != end && static_cast<unsigned>(*p - '0') < 10) ++p;
  if (p == digits) return false;
  if (p != end && *p == '.') {
    const char* fraction = ++p;
    while (p != end && static_cast<unsigned>(*p - '0') < 10) ++p;
    if (p == fraction) return false;
  }
  return p == end;
}

}  // namespace

bool IsTextCell(std::string_view trimmed) {
  if (trimmed.empty() || IsPlainDecimal(trimmed.data(), trimmed.data() + trimmed.size())) return false;
  double v = 0;
  return !IsMissingCell(trimmed) && !ParseNumber(trimmed, &v);
}

CsvColumnTypes::CsvColumnTypes(const CsvColumns& columns, char delimiter)
    : columns_(columns),
      delimiter_(delimiter),
      field_of_(columns.count, kNoField),
      text_(columns.fields.size(), 0),
      first_text_(columns.fields.size()),
      first_line_(columns.fields.size(), 0) {
  for (size_t k = 0; k < columns.fields.size(); ++k) field_of_[columns.fields[k].column] = static_cast<uint32_t>(k);
  // A first column of a field's would be passed over unread; a delimiter a plain cell may hold
  // would make the cells ambiguous.
  blocks_ = !field_of_.empty() && field_of_[0] == kNoField && !(delimiter >= '0' && delimiter <= '9') && delimiter != '-' &&
            delimiter != '.' && delimiter != '"' && delimiter != '\r' && delimiter != '\n';
}

void CsvColumnTypes::MarkText(size_t field, std::string_view cell, size_t line) {
  if (text_[field] != 0) return;
  text_[field] = 1;
  ++text_count_;
  if (cell.size() > kShownCellBytes) {
    size_t cut = kShownCellBytes;
    while (cut > 0 && (static_cast<uint8_t>(cell[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
    cell = cell.substr(0, cut);
  }
  first_text_[field].assign(cell);
  first_line_[field] = line;
}

void CsvColumnTypes::Merge(const CsvColumnTypes& later, size_t lines_before) {
  for (size_t k = 0; k < text_.size(); ++k) {
    if (later.text_[k] != 0) MarkText(k, later.first_text_[k], later.first_line_[k] + lines_before);
  }
}

bool CsvColumnTypes::Prepare(std::string_view* line) {
  if (all_text()) return false;
  if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
  return !TrimCell(*line).empty();  // a blank line: no row
}

void CsvColumnTypes::AddUnquotedLine(std::string_view line, size_t line_number) {
  if (Prepare(&line)) AddUnquoted(line, line_number);
}

void CsvColumnTypes::AddUnquoted(std::string_view line, size_t line_number) {
  // The cells are what lies between the delimiters (SplitCsvCells' answer, without its copies).
  // A field's cell is read byte by byte as a plain decimal, the common case, which needs no
  // trimming (a number cell is short: a call to find its delimiter cost more than the cell);
  // anything else is looked at whole.
  candidates_.clear();
  const char* p = line.data();
  const char* const end = p + line.size();
  const char delimiter = delimiter_;
  auto digit = [](char c) { return static_cast<unsigned>(c - '0') < 10; };
  size_t column = 0;
  while (true) {
    const char* const cell = p;
    const uint32_t k = column < field_of_.size() ? field_of_[column] : kNoField;
    if (k != kNoField && text_[k] == 0) {
      p += p != end && *p == '-';
      const char* digits = p;
      while (p != end && digit(*p)) ++p;
      bool plain = p != digits;
      if (p != end && *p == '.') {
        const char* fraction = ++p;
        while (p != end && digit(*p)) ++p;
        plain = plain && p != fraction;
      }
      // (IsPlainDecimal's length limit: a longer decimal may be too large for a double.)
      if (!plain || (p != end && *p != delimiter) || p - cell > 300) {
        while (p != end && *p != delimiter) ++p;
        const std::string_view trimmed = TrimCell(std::string_view(cell, static_cast<size_t>(p - cell)));
        if (IsTextCell(trimmed)) candidates_.push_back({k, trimmed});
      }
    } else {
      // Not a field's cell, or a text field's: skipped whole (the time's 19 bytes, say).
      const void* d = std::memchr(p, delimiter, static_cast<size_t>(end - p));
      p = d == nullptr ? end : static_cast<const char*>(d);
    }
    ++column;
    if (p == end) break;
    ++p;
  }
  if (column != columns_.count) return;  // no row of the header's shape: its cells do not count
  for (const Candidate& c : candidates_) MarkText(c.field, c.cell, line_number);
}

size_t CsvColumnTypes::AddLines(std::string_view lines, size_t first_line_number) {
  // A run of whole lines of about kRun bytes at a time: a run with a cell that is not plain
  // (a text cell, a quote, a space) is read line by line, the next may be passed over again.
  constexpr size_t kRun = 4096;
  const char* p = lines.data();
  const char* const end = p + lines.size();
  size_t done = 0;
  while (p < end && !all_text()) {
    const char* stop = end;
    if (static_cast<size_t>(end - p) > kRun) {
      if (const void* nl = ::memrchr(p, '\n', kRun); nl != nullptr) {
        stop = static_cast<const char*>(nl) + 1;
      } else {
        const void* later = std::memchr(p + kRun, '\n', static_cast<size_t>(end - p) - kRun);
        stop = later == nullptr ? end : static_cast<const char*>(later) + 1;
      }
    }
    size_t run_lines = 0;
    if (!blocks_ || !PlainCellsAfterFirst(p, stop, delimiter_, &run_lines)) {
      run_lines = 0;
      for (const char* q = p; q < stop && !all_text(); ++run_lines) {
        const void* nl = std::memchr(q, '\n', static_cast<size_t>(stop - q));
        const char* e = nl == nullptr ? stop : static_cast<const char*>(nl);
        AddLine(std::string_view(q, static_cast<size_t>(e - q)), first_line_number + done + run_lines);
        q = e + 1;
      }
    }
    done += run_lines;
    p = stop;
  }
  return done;
}

void CsvColumnTypes::AddLine(std::string_view line, size_t line_number) {
  if (!Prepare(&line)) return;
  if (std::memchr(line.data(), '"', line.size()) == nullptr) {
    AddUnquoted(line, line_number);
    return;
  }
  // Quotes: SplitCsvCells' rules; a quote left open, or another number of cells, counts nothing.
  if (!SplitCsvCells(line, delimiter_, &cells_, &unquoted_) || cells_.size() != columns_.count) return;
  for (size_t k = 0; k < columns_.fields.size(); ++k) {
    const std::string_view cell = TrimCell(cells_[columns_.fields[k].column]);
    if (text_[k] == 0 && IsTextCell(cell)) MarkText(k, cell, line_number);
  }
}

}  // namespace mare::archive
