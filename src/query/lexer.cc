#include "query/lexer.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

#include "common/utf8.h"
#include "query/chars.h"

namespace mare::query {
namespace {

// The words that cannot be bare names; docs/sql.md lists them too.
constexpr std::string_view kReservedWords[] = {
    "SELECT", "FROM", "WHERE", "GROUP", "BY", "HAVING", "ORDER", "LIMIT", "OFFSET", "AND",
    "OR", "NOT", "IN", "IS", "NULL", "BETWEEN", "AS", "ASC", "DESC", "LATEST",
    "ON", "PARTITION", "TRUE", "FALSE", "INTERVAL", "TIMESTAMP", "DISTINCT",
};

bool IsWordStart(char c) { return IsLetter(c) || c == '_'; }
bool IsWordChar(char c) { return IsWordStart(c) || IsDigit(c); }
char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
char Upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

// A character that starts no token, shown so the user can find it: "@", "é", or "\x01".
std::string DescribeStray(std::string_view rest) {
  auto c = static_cast<unsigned char>(rest[0]);
  if (c >= 0x20 && c < 0x7f) return fmt::format("\"{}\"", rest[0]);
  size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
  if (len == 1 || len > rest.size()) return fmt::format("\"\\x{:02x}\"", c);
  return fmt::format("\"{}\"", rest.substr(0, len));
}

class Lexer {
 public:
  Lexer(std::string_view sql, std::vector<Token>* tokens, SqlError* error)
      : sql_(sql), tokens_(tokens), error_(error) {}

  bool Run() {
    tokens_->clear();
    // Statements are text: bytes that are not UTF-8 would reach answers (in string literals,
    // names, error messages) that must be.
    if (size_t bad = FirstNonUtf8(sql_); bad < sql_.size()) {
      return Fail(bad, fmt::format("the statement is not UTF-8 text: byte \\x{:02x} here", static_cast<unsigned char>(sql_[bad])));
    }
    for (;;) {
      if (!SkipSpaceAndComments()) return false;
      if (i_ == sql_.size()) break;
      char c = sql_[i_];
      bool ok;
      if (IsDigit(c) || (c == '.' && i_ + 1 < sql_.size() && IsDigit(sql_[i_ + 1]))) {
        ok = Number();
      } else if (IsWordStart(c)) {
        ok = Word();
      } else if (c == '\'') {
        ok = Quoted('\'', TokenKind::kString);
      } else if (c == '"') {
        ok = Quoted('"', TokenKind::kQuotedIdentifier);
      } else {
        ok = Symbol();
      }
      if (!ok) return false;
    }
    Token& end = Push(TokenKind::kEnd, sql_.size());
    end.end = sql_.size();
    return true;
  }

 private:
  // Positions are asked for in increasing offsets, so lines are counted once.
  Position PositionAt(size_t offset) {
    if (offset < scanned_) {
      line_ = 1;
      line_start_ = 0;
      scanned_ = 0;
    }
    for (; scanned_ < offset; ++scanned_) {
      if (sql_[scanned_] == '\n') {
        ++line_;
        line_start_ = scanned_ + 1;
      }
    }
    return Position{line_, static_cast<int>(offset - line_start_) + 1};
  }

  bool Fail(size_t offset, std::string message) {
    error_->pos = PositionAt(offset);
    error_->message = std::move(message);
    return false;
  }

  Token& Push(TokenKind kind, size_t begin) {
    Token& t = tokens_->emplace_back();
    t.kind = kind;
    t.pos = PositionAt(begin);
    t.begin = begin;
    t.end = i_;
    return t;
  }

  bool SkipSpaceAndComments() {
    while (i_ < sql_.size()) {
      char c = sql_[i_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
        ++i_;
      } else if (sql_.substr(i_, 2) == "--") {
        size_t newline = sql_.find('\n', i_);
        i_ = newline == std::string_view::npos ? sql_.size() : newline + 1;
      } else if (sql_.substr(i_, 2) == "/*") {
        size_t close = sql_.find("*/", i_ + 2);
        if (close == std::string_view::npos) return Fail(i_, "unterminated comment: /* is never closed by */");
        i_ = close + 2;
      } else {
        break;
      }
    }
    return true;
  }

  // 42, 1.5, .5, 1., 1e3, 1.5E-3. A number running into letters (12abc, 1h) is an error,
  // not a number followed by a name.
  bool Number() {
    size_t begin = i_;
    bool real = false;
    while (i_ < sql_.size() && IsDigit(sql_[i_])) ++i_;
    if (i_ < sql_.size() && sql_[i_] == '.') {
      real = true;
      ++i_;
      while (i_ < sql_.size() && IsDigit(sql_[i_])) ++i_;
    }
    if (i_ < sql_.size() && (sql_[i_] == 'e' || sql_[i_] == 'E')) {
      size_t j = i_ + 1;
      if (j < sql_.size() && (sql_[j] == '+' || sql_[j] == '-')) ++j;
      if (j < sql_.size() && IsDigit(sql_[j])) {
        real = true;
        i_ = j;
        while (i_ < sql_.size() && IsDigit(sql_[i_])) ++i_;
      }
    }
    if (i_ < sql_.size() && IsWordChar(sql_[i_])) {
      size_t end = i_;
      while (end < sql_.size() && IsWordChar(sql_[end])) ++end;
      return Fail(begin, fmt::format("invalid number \"{}\"", sql_.substr(begin, end - begin)));
    }
    std::string_view text = sql_.substr(begin, i_ - begin);
    const char* first = text.data();
    const char* last = text.data() + text.size();
    if (real) {
      double value = 0;
      auto [ptr, ec] = std::from_chars(first, last, value);
      if (ec != std::errc() || ptr != last || !std::isfinite(value)) {
        return Fail(begin, fmt::format("number {} is out of range", text));
      }
      Push(TokenKind::kReal, begin).real = value;
    } else {
      int64_t value = 0;
      auto [ptr, ec] = std::from_chars(first, last, value);
      if (ec != std::errc() || ptr != last) {
        return Fail(begin, fmt::format("integer {} is out of range (the largest is 9223372036854775807)", text));
      }
      Push(TokenKind::kInteger, begin).integer = value;
    }
    return true;
  }

  bool Word() {
    size_t begin = i_;
    while (i_ < sql_.size() && IsWordChar(sql_[i_])) ++i_;
    std::string_view word = sql_.substr(begin, i_ - begin);
    bool reserved = IsReservedWord(word);
    Token& t = Push(reserved ? TokenKind::kKeyword : TokenKind::kIdentifier, begin);
    t.text.reserve(word.size());
    for (char c : word) t.text.push_back(reserved ? Upper(c) : Lower(c));
    return true;
  }

  // 'text' or "name", the quote doubled inside to stand for itself.
  bool Quoted(char quote, TokenKind kind) {
    size_t begin = i_++;
    std::string value;
    for (;;) {
      if (i_ == sql_.size()) {
        return Fail(begin, kind == TokenKind::kString ? "unterminated string: the ' is never closed"
                                                      : "unterminated quoted name: the \" is never closed");
      }
      char c = sql_[i_++];
      if (c == quote) {
        if (i_ < sql_.size() && sql_[i_] == quote) {
          value.push_back(quote);
          ++i_;
          continue;
        }
        break;
      }
      value.push_back(c);
    }
    if (kind == TokenKind::kQuotedIdentifier && value.empty()) return Fail(begin, "a quoted name cannot be empty");
    Push(kind, begin).text = std::move(value);
    return true;
  }

  bool Symbol() {
    static constexpr std::string_view kTwo[] = {"<>", "!=", "<=", ">="};
    static constexpr std::string_view kOne = "=<>+-*/%(),;.";
    size_t begin = i_;
    std::string_view two = sql_.substr(i_, 2);
    for (std::string_view s : kTwo) {
      if (two == s) {
        i_ += 2;
        Push(TokenKind::kSymbol, begin).text = s;
        return true;
      }
    }
    char c = sql_[i_];
    if (kOne.find(c) == std::string_view::npos) {
      std::string message = "unexpected character " + DescribeStray(sql_.substr(i_));
      if (c == '`') message += "; names are quoted with double quotes: \"name\"";
      return Fail(begin, message);
    }
    ++i_;
    Push(TokenKind::kSymbol, begin).text = std::string(1, c);
    return true;
  }

  std::string_view sql_;
  std::vector<Token>* tokens_;
  SqlError* error_;
  size_t i_ = 0;
  int line_ = 1;
  size_t line_start_ = 0;
  size_t scanned_ = 0;
};

}  // namespace

bool Tokenize(std::string_view sql, std::vector<Token>* tokens, SqlError* error) {
  return Lexer(sql, tokens, error).Run();
}

bool IsReservedWord(std::string_view word) {
  for (std::string_view reserved : kReservedWords) {
    if (reserved.size() != word.size()) continue;
    bool same = true;
    for (size_t i = 0; i < word.size() && same; ++i) same = Upper(word[i]) == reserved[i];
    if (same) return true;
  }
  return false;
}

}  // namespace mare::query
