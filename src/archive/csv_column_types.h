// Which field columns of a CSV file are text, the one rule both readers type by
// (docs/formats/csv.md, "Text"): a column is numbers unless a cell of it is text.
//
//   CsvColumnTypes types(columns, delimiter);
//   for (each data line) types.AddLine(line, line_number);  // in the file's order; Merge() joins parts read apart
//   if (types.text(k)) { /* every present cell of field k is text, "12" included */ }
//   types.first_text(k), types.first_text_line(k)  // what made it text, for the user
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "archive/csv_format.h"

namespace mare::archive {

class CsvColumnTypes {
 public:
  CsvColumnTypes(const CsvColumns& columns, char delimiter);

  // A data line (its '\n' removed; a '\r' before it may stay). A field becomes text when its
  // cell (trimmed) is neither missing nor a number, in a line with no quote left open and the
  // header's number of cells: a line skipped later for its time, sensor_id or a lone coordinate
  // counts (its cells are the file's), one with another shape has no columns to count.
  // line_number: the line's, kept with a field's first text cell.
  void AddLine(std::string_view line, size_t line_number);
  // The same for a line known to hold no quote (the caller looked for one in many lines at once).
  void AddUnquotedLine(std::string_view line, size_t line_number);
  // The same for each line of `lines` (whole lines, '\n' after each but perhaps the last), the
  // first numbered first_line_number: runs of lines whose cells after the first are all plain
  // decimals (csv_blocks.h) are passed over whole when the first column is not a field's, the
  // others read one by one. Returns how many lines it read (fewer once every field is text).
  size_t AddLines(std::string_view lines, size_t first_line_number);
  // The text fields of the part of the file after this one's, read elsewhere (another thread's),
  // whose line numbers count from lines_before (added to them).
  void Merge(const CsvColumnTypes& later, size_t lines_before = 0);

  bool text(size_t field) const { return text_[field] != 0; }
  // A text field's first text cell (trimmed, unquoted; cut to at most kShownCellBytes at a
  // character's start) and its line.
  static constexpr size_t kShownCellBytes = 40;
  const std::string& first_text(size_t field) const { return first_text_[field]; }
  size_t first_text_line(size_t field) const { return first_line_[field]; }
  bool any_text() const { return text_count_ > 0; }
  // Every field is text: no line can change a type any more.
  bool all_text() const { return text_count_ == text_.size(); }

 private:
  void MarkText(size_t field, std::string_view cell, size_t line);
  bool Prepare(std::string_view* line);  // false: nothing to read in it
  void AddUnquoted(std::string_view line, size_t line_number);

  const CsvColumns& columns_;
  char delimiter_;
  bool blocks_ = false;  // AddLines may pass plain runs over (PlainCellsAfterFirst)
  std::vector<uint32_t> field_of_;  // by column: its field's index, or kNoField
  std::vector<uint8_t> text_;       // by field
  size_t text_count_ = 0;
  std::vector<std::string> first_text_;  // by field
  std::vector<size_t> first_line_;       // by field
  struct Candidate {
    uint32_t field;
    std::string_view cell;
  };
  std::vector<Candidate> candidates_;  // a line's text cells, kept once its cell count is known
  std::vector<std::string_view> cells_;
  std::string unquoted_;
};

// A field cell (trimmed) that types its column as text: not missing (IsMissingCell, no codes:
// a missing code is a number) and not a number (ParseNumber).
bool IsTextCell(std::string_view trimmed);

}  // namespace mare::archive
