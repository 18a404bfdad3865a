// The tokens of a short statement, for recognizing the session and catalog statements drivers
// send without a full parser: words (lower-cased; "quoted" names kept as written), 'strings'
// (their text), numbers, and single punctuation characters, each with its place in the text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mare::pgwire {

struct Token {
  enum Kind { kWord, kString, kNumber, kPunct } kind;
  std::string text;
  size_t begin = 0, end = 0;  // in the statement
};

// False on an unterminated string, name or comment. A trailing ';' is dropped.
bool Tokenize(std::string_view s, std::vector<Token>* out);

std::string Lower(std::string_view s);

inline bool IsWord(const std::vector<Token>& t, size_t i, std::string_view w) {
  return i < t.size() && t[i].kind == Token::kWord && t[i].text == w;
}
inline bool IsPunct(const std::vector<Token>& t, size_t i, std::string_view p) {
  return i < t.size() && t[i].kind == Token::kPunct && t[i].text == p;
}
inline bool Mentions(const std::vector<Token>& t, std::string_view word) {
  for (const Token& tok : t) {
    if (tok.kind == Token::kWord && tok.text == word) return true;
  }
  return false;
}

}  // namespace mare::pgwire
