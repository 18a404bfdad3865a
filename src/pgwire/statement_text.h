// What the server does to a statement's text before mare's SQL sees it: a simple Query's
// string split at its semicolons, the $n parameters of the extended protocol replaced by
// literals (quoted: a parameter is never spliced in as SQL), and an error's line and column in
// mare's text turned back into PostgreSQL's Position, a 1-based character index into what the
// client sent. Quotes, quoted names and comments are skipped the way mare's lexer skips them.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "query/ast.h"

namespace mare::pgwire {

// One statement of a Query message: its text (without the ';') and where it starts.
struct StatementPiece {
  std::string_view text;
  size_t offset = 0;
};
// The statements of a simple Query, empty ones (blanks, comments) left out.
std::vector<StatementPiece> SplitStatements(std::string_view query);
// Blanks and comments only.
bool IsBlank(std::string_view text);

// The highest $n in the text (0: none).
int CountParameters(std::string_view sql);

// A statement with its parameters replaced, and how to find an original byte from one of it.
struct BoundText {
  std::string sql;
  struct Splice {
    size_t at, length;       // in sql
    size_t original_at, original_length;  // the $n in the original
  };
  std::vector<Splice> splices;
  // The byte of the original that byte `at` of sql came from.
  size_t OriginalOffset(size_t at) const;
};
// literals[k] replaces $k+1; a $n past them is an error naming it.
Result<BoundText> BindParameters(std::string_view sql, const std::vector<std::string>& literals);

// The byte offset of a 1-based line and column (in bytes) within text; npos for 0:0.
size_t OffsetOf(std::string_view text, query::Position pos);
// PostgreSQL's Position: the 1-based character (not byte) index of byte `offset` of text.
int CharacterPosition(std::string_view text, size_t offset);

}  // namespace mare::pgwire
