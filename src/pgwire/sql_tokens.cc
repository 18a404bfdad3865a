#include "pgwire/sql_tokens.h"

#include <cctype>

namespace mare::pgwire {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool Tokenize(std::string_view s, std::vector<Token>* out) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (std::isspace(c)) {
      ++i;
    } else if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
      size_t nl = s.find('\n', i);
      i = nl == std::string_view::npos ? s.size() : nl + 1;
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      size_t end = s.find("*/", i + 2);
      if (end == std::string_view::npos) return false;
      i = end + 2;
    } else if (c == '\'' || c == '"') {
      std::string text;
      size_t j = i + 1;
      for (;;) {
        if (j >= s.size()) return false;
        if (s[j] == static_cast<char>(c)) {
          if (j + 1 < s.size() && s[j + 1] == static_cast<char>(c)) {
            text.push_back(static_cast<char>(c));
            j += 2;
            continue;
          }
          break;
        }
        text.push_back(s[j++]);
      }
      out->push_back({c == '\'' ? Token::kString : Token::kWord, std::move(text), i, j + 1});
      i = j + 1;
    } else if (std::isalpha(c) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_' || s[j] == '$')) ++j;
      out->push_back({Token::kWord, Lower(s.substr(i, j - i)), i, j});
      i = j;
    } else if (std::isdigit(c) || (c == '.' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '.')) ++j;
      out->push_back({Token::kNumber, std::string(s.substr(i, j - i)), i, j});
      i = j;
    } else {
      out->push_back({Token::kPunct, std::string(1, static_cast<char>(c)), i, i + 1});
      ++i;
    }
  }
  if (!out->empty() && out->back().kind == Token::kPunct && out->back().text == ";") out->pop_back();
  return true;
}

}  // namespace mare::pgwire
