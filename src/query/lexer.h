// The SQL lexer: statement text to tokens. Every token keeps its position (for errors) and its
// byte range in the text (so the parser can quote tokens as the user wrote them and give each
// expression its source text). The dialect's tokens are described in docs/sql.md.
//
//   std::vector<Token> tokens;
//   SqlError error;
//   if (!Tokenize("SELECT ts FROM readings", &tokens, &error)) return error;
//   // tokens: SELECT, ts, FROM, readings, and always a final kEnd
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "query/ast.h"

namespace mare::query {

enum class TokenKind {
  kEnd,               // the end of the text; always the last token, positioned after the last byte
  kIdentifier,        // text: lower-cased (Temp -> "temp"); never a reserved word
  kQuotedIdentifier,  // text: as written between the double quotes, "" read as one "
  kKeyword,           // text: the reserved word in upper case (select -> "SELECT")
  kInteger,           // integer (non-negative: a minus sign is a separate token)
  kReal,              // real
  kString,            // text: the value between the single quotes, '' read as one '
  kSymbol,            // text: = <> != < <= > >= + - * / % ( ) , ; . as written
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::string text;
  int64_t integer = 0;
  double real = 0;
  Position pos;
  // sql.substr(begin, end - begin) is the token exactly as written (quotes included).
  size_t begin = 0;
  size_t end = 0;
};

// Splits `sql` into *tokens (cleared first). False with *error set at the offending character
// for an unterminated string, quoted name or comment, a malformed or out-of-range number, or
// a character that starts no token.
[[nodiscard]] bool Tokenize(std::string_view sql, std::vector<Token>* tokens, SqlError* error);

// True for the words that cannot be bare names (SELECT, FROM, ..., see docs/sql.md), in any case.
bool IsReservedWord(std::string_view word);

}  // namespace mare::query
