// CSV text read 64 bytes at a time as bit masks (AVX2, when the build may use it), for the bulk
// import's passes over a whole file: its lines counted and skipped, and runs of lines found to
// hold nothing that could make a field column text, without looking at them line by line.
//
//   size_t skipped;
//   const char* next = SkipCsvLines(p, end, 262'144, &skipped);   // past that many '\n'
//   size_t lines;
//   if (PlainCellsAfterFirst(p, end, ',', &lines)) { /* no cell after a line's first types text */ }
#pragma once

#include <cstddef>

namespace mare::archive {

// Past the n-th '\n' from p (or end, when there are fewer): *skipped says how many were passed.
const char* SkipCsvLines(const char* p, const char* end, size_t n, size_t* skipped);

// True when every cell of the lines [p, end) but each line's first is a plain decimal
// ([-]digits[.digits], under 64 bytes) or empty, the lines ending in '\n' or "\r\n" (the last
// may end at end): no quote, space or other byte anywhere but in a first cell. Such lines make
// no column whose first cell is not a field's text (csv_column_types.h). *lines: how many lines
// there are. False is no verdict (the lines may be plain all the same: a cell of 64 bytes, a
// build without AVX2): the caller reads them one by one. The delimiter is not a digit, '-',
// '.', '"', '\r' or '\n'.
bool PlainCellsAfterFirst(const char* p, const char* end, char delimiter, size_t* lines);

}  // namespace mare::archive
