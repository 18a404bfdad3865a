#include "pgwire/statement_text.h"

#include <fmt/format.h>

namespace mare::pgwire {
namespace {

// Past a quoted string, quoted name or comment starting at i (or i + 1 for anything else).
size_t Skip(std::string_view s, size_t i) {
  char c = s[i];
  if (c == '\'' || c == '"') {
    size_t j = i + 1;
    while (j < s.size()) {
      if (s[j] == c) {
        if (j + 1 < s.size() && s[j + 1] == c) {
          j += 2;
          continue;
        }
        return j + 1;
      }
      ++j;
    }
    return s.size();
  }
  if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
    size_t end = s.find('\n', i);
    return end == std::string_view::npos ? s.size() : end + 1;
  }
  if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
    size_t end = s.find("*/", i + 2);
    return end == std::string_view::npos ? s.size() : end + 2;
  }
  return i + 1;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

bool IsBlank(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      ++i;
    } else if ((c == '-' && i + 1 < text.size() && text[i + 1] == '-') || (c == '/' && i + 1 < text.size() && text[i + 1] == '*')) {
      i = Skip(text, i);
    } else {
      return false;
    }
  }
  return true;
}

std::vector<StatementPiece> SplitStatements(std::string_view query) {
  std::vector<StatementPiece> out;
  size_t start = 0, i = 0;
  while (i <= query.size()) {
    if (i == query.size() || query[i] == ';') {
      std::string_view text = query.substr(start, i - start);
      if (!IsBlank(text)) out.push_back({text, start});
      start = i + 1;
      ++i;
      continue;
    }
    i = Skip(query, i);
  }
  return out;
}

int CountParameters(std::string_view sql) {
  int highest = 0;
  size_t i = 0;
  while (i < sql.size()) {
    if (sql[i] == '$' && i + 1 < sql.size() && IsDigit(sql[i + 1])) {
      size_t j = i + 1;
      int n = 0;
      while (j < sql.size() && IsDigit(sql[j])) {
        n = n > 100'000 ? n : n * 10 + (sql[j] - '0');
        ++j;
      }
      highest = std::max(highest, n);
      i = j;
      continue;
    }
    i = Skip(sql, i);
  }
  return highest;
}

Result<BoundText> BindParameters(std::string_view sql, const std::vector<std::string>& literals) {
  BoundText out;
  out.sql.reserve(sql.size());
  size_t i = 0;
  while (i < sql.size()) {
    if (sql[i] == '$' && i + 1 < sql.size() && IsDigit(sql[i + 1])) {
      size_t j = i + 1;
      size_t n = 0;
      while (j < sql.size() && IsDigit(sql[j])) {
        n = n > 100'000 ? n : n * 10 + static_cast<size_t>(sql[j] - '0');
        ++j;
      }
      if (n == 0 || n > literals.size()) {
        return Status::InvalidArgument(fmt::format("there is no parameter ${}", n));
      }
      // Spaces around the literal keep it from running into a neighbouring token.
      out.sql.push_back(' ');
      out.splices.push_back({out.sql.size(), literals[n - 1].size(), i, j - i});
      out.sql.append(literals[n - 1]);
      out.sql.push_back(' ');
      i = j;
      continue;
    }
    size_t next = Skip(sql, i);
    out.sql.append(sql.substr(i, next - i));
    i = next;
  }
  return out;
}

size_t BoundText::OriginalOffset(size_t at) const {
  // Past a splice, the new text has drifted from the original by what the splice changed.
  long delta = 0;  // original - new
  for (const Splice& s : splices) {
    size_t begin = s.at - 1, end = s.at + s.length + 1;  // with the spaces around the literal
    if (at < begin) break;
    if (at < end) return s.original_at;
    delta = static_cast<long>(s.original_at + s.original_length) - static_cast<long>(end);
  }
  return static_cast<size_t>(static_cast<long>(at) + delta);
}

size_t OffsetOf(std::string_view text, query::Position pos) {
  if (pos.line <= 0 || pos.column <= 0) return std::string_view::npos;
  size_t at = 0;
  for (int line = 1; line < pos.line; ++line) {
    size_t nl = text.find('\n', at);
    if (nl == std::string_view::npos) return text.size();
    at = nl + 1;
  }
  return std::min(text.size(), at + static_cast<size_t>(pos.column - 1));
}

int CharacterPosition(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  int chars = 0;
  for (size_t i = 0; i < offset; ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++chars;
  }
  return chars + 1;
}

}  // namespace mare::pgwire
