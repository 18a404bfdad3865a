// The tokens of mare's SQL (docs/sql.md, "Grammar"): names, reserved words, numbers, strings,
// operators and comments, each with its 1-based line and byte column.
#include "query/lexer.h"

#include <gtest/gtest.h>

namespace mare::query {
namespace {

std::vector<Token> Lex(std::string_view sql) {
  std::vector<Token> tokens;
  SqlError error;
  EXPECT_TRUE(Tokenize(sql, &tokens, &error)) << error.ToString();
  return tokens;
}

std::string LexError(std::string_view sql) {
  std::vector<Token> tokens;
  SqlError error;
  if (Tokenize(sql, &tokens, &error)) return "no error";
  return error.ToString();
}

// "kind:text" per token, kEnd left out, to compare a whole statement at once.
std::string Kinds(std::string_view sql) {
  static const char* kNames[] = {"end", "ident", "quoted", "keyword", "int", "real", "string", "symbol"};
  std::string out;
  for (const Token& t : Lex(sql)) {
    if (t.kind == TokenKind::kEnd) break;
    if (!out.empty()) out += " ";
    out += kNames[static_cast<int>(t.kind)];
    out += ":";
    if (t.kind == TokenKind::kInteger) {
      out += std::to_string(t.integer);
    } else if (t.kind == TokenKind::kReal) {
      out += std::to_string(t.real);
    } else {
      out += t.text;
    }
  }
  return out;
}

TEST(Lexer, SplitsAStatementIntoTokens) {
  EXPECT_EQ(Kinds("SELECT max(temperature) FROM readings WHERE sensor_id = 'a-1';"),
            "keyword:SELECT ident:max symbol:( ident:temperature symbol:) keyword:FROM ident:readings "
            "keyword:WHERE ident:sensor_id symbol:= string:a-1 symbol:;");
}

TEST(Lexer, ReservedWordsAreCaseInsensitiveAndNamesAreLowerCased) {
  EXPECT_EQ(Kinds("select Select SELECT"), "keyword:SELECT keyword:SELECT keyword:SELECT");
  EXPECT_EQ(Kinds("Temperature sensor_ID _x t2"), "ident:temperature ident:sensor_id ident:_x ident:t2");
  // Words that are not reserved are names, even when they sound like SQL.
  EXPECT_EQ(Kinds("hour day ts now count"), "ident:hour ident:day ident:ts ident:now ident:count");
  EXPECT_TRUE(IsReservedWord("latest"));
  EXPECT_TRUE(IsReservedWord("Partition"));
  EXPECT_FALSE(IsReservedWord("readings"));
}

TEST(Lexer, DoubleQuotedNamesAreKeptAsWritten) {
  EXPECT_EQ(Kinds("\"Temp C\" \"select\" \"say \"\"hi\"\"\""), "quoted:Temp C quoted:select quoted:say \"hi\"");
  EXPECT_EQ(LexError("SELECT \"\" FROM readings"), "line 1, column 8: a quoted name cannot be empty");
}

TEST(Lexer, StringsDoubleTheQuoteToContainIt) {
  EXPECT_EQ(Kinds("'it''s' '' 'two\nlines'"), "string:it's string: string:two\nlines");
}

TEST(Lexer, NumbersAreIntegersOrReals) {
  EXPECT_EQ(Kinds("0 42 9223372036854775807"), "int:0 int:42 int:9223372036854775807");
  std::vector<Token> t = Lex("1.5 .5 1e3 1.5E-3 2. 1E+2");
  ASSERT_EQ(t.size(), 7u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(t[i].kind, TokenKind::kReal) << i;
  EXPECT_EQ(t[0].real, 1.5);
  EXPECT_EQ(t[1].real, 0.5);
  EXPECT_EQ(t[2].real, 1000);
  EXPECT_EQ(t[3].real, 0.0015);
  EXPECT_EQ(t[4].real, 2);
  EXPECT_EQ(t[5].real, 100);
  // A minus sign is an operator of its own; the parser folds it into the literal.
  EXPECT_EQ(Kinds("-5"), "symbol:- int:5");
}

TEST(Lexer, NumbersOutOfRangeOrRunningIntoLettersAreErrors) {
  EXPECT_EQ(LexError("SELECT 9223372036854775808"),
            "line 1, column 8: integer 9223372036854775808 is out of range (the largest is 9223372036854775807)");
  EXPECT_EQ(LexError("SELECT 1e999"), "line 1, column 8: number 1e999 is out of range");
  EXPECT_EQ(LexError("SELECT 12abc"), "line 1, column 8: invalid number \"12abc\"");
  EXPECT_EQ(LexError("SELECT 1h"), "line 1, column 8: invalid number \"1h\"");
}

TEST(Lexer, Operators) {
  EXPECT_EQ(Kinds("= <> != < <= > >= + - * / % ( ) , ; ."),
            "symbol:= symbol:<> symbol:!= symbol:< symbol:<= symbol:> symbol:>= symbol:+ symbol:- symbol:* "
            "symbol:/ symbol:% symbol:( symbol:) symbol:, symbol:; symbol:.");
  EXPECT_EQ(Kinds("a<=b"), "ident:a symbol:<= ident:b");
}

TEST(Lexer, CommentsAreSkipped) {
  EXPECT_EQ(Kinds("SELECT -- the rest of this line\n1 /* a\nblock */ + 2 --"), "keyword:SELECT int:1 symbol:+ int:2");
  EXPECT_EQ(Kinds("1/**/2"), "int:1 int:2");
}

TEST(Lexer, PositionsAreOneBasedLinesAndByteColumns) {
  std::vector<Token> t = Lex("SELECT a,\n\tb -- c\n  /* d\n */ 'é' e");
  ASSERT_EQ(t.size(), 7u);
  EXPECT_EQ(t[0].pos.line, 1);
  EXPECT_EQ(t[0].pos.column, 1);
  EXPECT_EQ(t[1].pos.column, 8);  // a
  EXPECT_EQ(t[2].pos.column, 9);  // ,
  EXPECT_EQ(t[3].pos.line, 2);    // b, after a tab counted as one column
  EXPECT_EQ(t[3].pos.column, 2);
  EXPECT_EQ(t[4].pos.line, 4);  // 'é'
  EXPECT_EQ(t[4].pos.column, 5);
  EXPECT_EQ(t[5].pos.column, 10);  // e: é is two bytes
  // The end token sits after the last byte.
  EXPECT_EQ(t[6].kind, TokenKind::kEnd);
  EXPECT_EQ(t[6].pos.line, 4);
  EXPECT_EQ(t[6].pos.column, 11);
}

TEST(Lexer, TokensKnowTheirBytesAsWritten) {
  std::string_view sql = "select  'it''s'";
  std::vector<Token> t = Lex(sql);
  EXPECT_EQ(sql.substr(t[0].begin, t[0].end - t[0].begin), "select");
  EXPECT_EQ(sql.substr(t[1].begin, t[1].end - t[1].begin), "'it''s'");
}

TEST(Lexer, UnterminatedTextIsAnErrorWhereItOpens) {
  EXPECT_EQ(LexError("SELECT 'abc"), "line 1, column 8: unterminated string: the ' is never closed");
  EXPECT_EQ(LexError("SELECT\n  \"abc"), "line 2, column 3: unterminated quoted name: the \" is never closed");
  EXPECT_EQ(LexError("SELECT 1 /* never\nclosed"), "line 1, column 10: unterminated comment: /* is never closed by */");
}

TEST(Lexer, StrayCharactersAreErrors) {
  EXPECT_EQ(LexError("SELECT a @ b"), "line 1, column 10: unexpected character \"@\"");
  EXPECT_EQ(LexError("SELECT a ! b"), "line 1, column 10: unexpected character \"!\"");
  EXPECT_EQ(LexError("SELECT é"), "line 1, column 8: unexpected character \"é\"");
  EXPECT_EQ(LexError("SELECT `a`"),
            "line 1, column 8: unexpected character \"`\"; names are quoted with double quotes: \"name\"");
}

// Found by fuzz/sql (fuzz/corpus/sql/string-literal-invalid-utf8.sql): a string literal of bytes
// that are not UTF-8 came back in a JSON answer that was then not JSON. The statement is refused
// where its first such byte is; UTF-8 anywhere (in strings, names, comments) is fine.
TEST(Lexer, AStatementMustBeUtf8) {
  EXPECT_EQ(LexError("SELECT '\xff\xfe'"), "line 1, column 9: the statement is not UTF-8 text: byte \\xff here");
  EXPECT_EQ(LexError("SELECT 1 AS \"temp\xC3\"\nFROM readings"), "line 1, column 18: the statement is not UTF-8 text: byte \\xc3 here");
  EXPECT_EQ(LexError("SELECT 1 -- \xED\xA0\x80 a surrogate"), "line 1, column 13: the statement is not UTF-8 text: byte \\xed here");
  EXPECT_EQ(Lex("SELECT 'café 🌊' AS \"été\" -- ok\n").size(), 5u);
}

}  // namespace
}  // namespace mare::query
