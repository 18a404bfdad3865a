// The ASCII character classes of mare's SQL (keywords, identifiers, numbers, interval units),
// shared by the lexer and the literal parser so that both read the same text the same way.
#pragma once

namespace mare::query {

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }
inline bool IsLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

}  // namespace mare::query
