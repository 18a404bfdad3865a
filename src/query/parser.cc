#include "query/parser.h"

#include <fmt/format.h>

#include <algorithm>

#include "query/lexer.h"
#include "query/literal.h"

namespace mare::query {
namespace {

using ExprPtr = std::unique_ptr<Expr>;

constexpr std::string_view kClauseOrder =
    "clauses go in the order SELECT, FROM, WHERE, LATEST ON, GROUP BY, HAVING, ORDER BY, LIMIT, OFFSET";

// Reserved words people also use as column names; naming one where a name is expected gets a hint.
constexpr std::string_view kNameLikeKeywords[] = {"GROUP", "HAVING", "ORDER",  "LIMIT",    "OFFSET",
                                                  "ASC",   "DESC",   "LATEST", "PARTITION"};

// The words that open a clause, for "out of place" errors.
constexpr std::string_view kClauseKeywords[] = {"SELECT", "FROM",  "WHERE", "LATEST", "GROUP",
                                                "HAVING", "ORDER", "LIMIT", "OFFSET"};

bool IsOneOf(const auto& words, std::string_view word) {
  return std::find(std::begin(words), std::end(words), word) != std::end(words);
}

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

// Recursive descent, one function per precedence level. The first error wins; functions
// return false or nullptr after recording it.
class Parser {
 public:
  Parser(std::string_view sql, const std::vector<Token>& tokens, const QueryLimits& limits, SqlError* error)
      : sql_(sql), tokens_(tokens), limits_(limits), error_(error) {}

  bool Statement(SelectStatement* out) {
    if (!ExpectKeyword("SELECT") || !SelectList(&out->items) || !ExpectKeyword("FROM")) return false;
    if (!Name("a table name", &out->table, &out->table_pos)) return false;
    if (AcceptKeyword("WHERE") && !(out->where = Or())) return false;
    if (AcceptKeyword("LATEST")) {
      if (!ExpectKeyword("ON") || !Name("a time column", &out->latest_on, &out->latest_pos) ||
          !ExpectKeyword("PARTITION") || !ExpectKeyword("BY") || !ExprList(&out->latest_partition_by)) {
        return false;
      }
    }
    if (AcceptKeyword("GROUP") && !(ExpectKeyword("BY") && ExprList(&out->group_by))) return false;
    if (AcceptKeyword("HAVING") && !(out->having = Or())) return false;
    if (AcceptKeyword("ORDER") && !(ExpectKeyword("BY") && OrderList(&out->order_by))) return false;
    if (AcceptKeyword("LIMIT")) {
      if (!Count("LIMIT", &out->limit)) return false;
      if (AcceptKeyword("OFFSET") && !Count("OFFSET", &out->offset)) return false;
    }
    AcceptSymbol(";");
    return End(out->limit.has_value());
  }

 private:
  // --- Tokens -------------------------------------------------------------------------------

  const Token& Peek(size_t ahead = 0) const { return tokens_[std::min(i_ + ahead, tokens_.size() - 1)]; }
  const Token& Next() {
    const Token& t = tokens_[i_];
    if (t.kind != TokenKind::kEnd) ++i_;
    return t;
  }
  static bool IsKeyword(const Token& t, std::string_view word) {
    return t.kind == TokenKind::kKeyword && t.text == word;
  }
  static bool IsSymbol(const Token& t, std::string_view symbol) {
    return t.kind == TokenKind::kSymbol && t.text == symbol;
  }
  static bool IsName(const Token& t) {
    return t.kind == TokenKind::kIdentifier || t.kind == TokenKind::kQuotedIdentifier;
  }
  static bool IsComparison(const Token& t) {
    return t.kind == TokenKind::kSymbol && (t.text == "=" || t.text == "<>" || t.text == "!=" || t.text == "<" ||
                                            t.text == "<=" || t.text == ">" || t.text == ">=");
  }
  bool AcceptKeyword(std::string_view word) {
    if (!IsKeyword(Peek(), word)) return false;
    ++i_;
    return true;
  }
  bool AcceptSymbol(std::string_view symbol) {
    if (!IsSymbol(Peek(), symbol)) return false;
    ++i_;
    return true;
  }
  bool ExpectKeyword(std::string_view word) { return AcceptKeyword(word) || Expected(word); }
  bool ExpectSymbol(std::string_view symbol) {
    return AcceptSymbol(symbol) || Expected(fmt::format("\"{}\"", symbol));
  }

  // The token as the user wrote it, for messages: "FROM", 'text', "Name" or end of input.
  std::string Describe(const Token& t) const {
    if (t.kind == TokenKind::kEnd) return "end of input";
    std::string_view raw = sql_.substr(t.begin, t.end - t.begin);
    std::string shown = raw.size() > 40 ? std::string(raw.substr(0, 37)) + "..." : std::string(raw);
    if (t.kind == TokenKind::kString || t.kind == TokenKind::kQuotedIdentifier) return shown;
    return "\"" + shown + "\"";
  }

  // The statement text from token `first` through the last token consumed.
  std::string_view SourceFrom(size_t first) const {
    size_t begin = tokens_[first].begin;
    return sql_.substr(begin, tokens_[i_ - 1].end - begin);
  }

  // --- Errors -------------------------------------------------------------------------------

  bool Fail(Position pos, std::string message, SqlError::Kind kind = SqlError::Kind::kStatement) {
    if (!failed_) {
      failed_ = true;
      error_->pos = pos;
      error_->message = std::move(message);
      error_->kind = kind;
    }
    return false;
  }

  // "expected FROM, found "x"" or "unexpected end of input, expected FROM", at the next token.
  // A reserved word found where a name could be gets a hint on quoting it.
  bool Expected(std::string_view what, bool any_keyword_is_a_name = false) {
    const Token& t = Peek();
    if (t.kind == TokenKind::kEnd) return Fail(t.pos, fmt::format("unexpected end of input, expected {}", what));
    std::string message = fmt::format("expected {}, found {}", what, Describe(t));
    if (t.kind == TokenKind::kKeyword && (any_keyword_is_a_name || IsOneOf(kNameLikeKeywords, t.text))) {
      std::string lower = LowerAscii(t.text);
      message += fmt::format(" ({} is a reserved word; a name {} is written \"{}\")", t.text, lower, lower);
    }
    return Fail(t.pos, std::move(message));
  }

  // --- Clauses ------------------------------------------------------------------------------

  bool SelectList(std::vector<SelectItem>* items) {
    do {
      const Token& first = Peek();
      if (IsKeyword(first, "DISTINCT")) return Fail(first.pos, "DISTINCT is not supported");
      SelectItem item;
      item.pos = first.pos;
      if (IsSymbol(first, "*")) {
        item.expr = Star();
      } else {
        if (!(item.expr = Or())) return false;
        if (AcceptKeyword("AS")) {
          if (!IsName(Peek())) return Expected("a name after AS", /*any_keyword_is_a_name=*/true);
          item.alias = Next().text;
        } else if (IsName(Peek())) {
          item.alias = Next().text;  // `max(t) m`: an identifier right after an item names it
        }
      }
      items->push_back(std::move(item));
    } while (AcceptSymbol(","));
    return true;
  }

  // A table or column name: FROM readings, LATEST ON ts.
  bool Name(std::string_view what, std::string* name, Position* pos) {
    if (!IsName(Peek())) return Expected(what, /*any_keyword_is_a_name=*/true);
    const Token& t = Next();
    *name = t.text;
    *pos = t.pos;
    if (IsSymbol(Peek(), ".")) return QualifiedName();
    return true;
  }

  bool QualifiedName() {
    return Fail(Peek().pos, "qualified names (a.b) are not supported; write the name alone");
  }

  bool ExprList(std::vector<ExprPtr>* list) {
    do {
      ExprPtr e = Or();
      if (!e) return false;
      list->push_back(std::move(e));
    } while (AcceptSymbol(","));
    return true;
  }

  bool OrderList(std::vector<OrderItem>* list) {
    do {
      OrderItem item;
      item.pos = Peek().pos;
      if (!(item.expr = Or())) return false;
      if (AcceptKeyword("DESC")) {
        item.descending = true;
      } else {
        AcceptKeyword("ASC");
      }
      list->push_back(std::move(item));
    } while (AcceptSymbol(","));
    return true;
  }

  // The operand of LIMIT and OFFSET.
  bool Count(std::string_view clause, std::optional<int64_t>* out) {
    const Token& t = Peek();
    if (t.kind != TokenKind::kInteger) return Fail(t.pos, fmt::format("{} needs a non-negative integer", clause));
    *out = Next().integer;
    return true;
  }

  // After the last clause (and an optional `;`) must come the end of the text.
  bool End(bool has_limit) {
    const Token& t = Peek();
    if (t.kind == TokenKind::kEnd) return true;
    if (IsKeyword(t, "OFFSET") && !has_limit) {
      return Fail(t.pos, fmt::format("{} without LIMIT: write LIMIT n OFFSET m", Describe(t)));
    }
    if (t.kind == TokenKind::kKeyword && IsOneOf(kClauseKeywords, t.text) && !IsSymbol(tokens_[i_ - 1], ";")) {
      return Fail(t.pos, fmt::format("{} is out of place: {}", Describe(t), kClauseOrder));
    }
    return Fail(t.pos, fmt::format("unexpected {} after the end of the statement", Describe(t)));
  }

  // --- Expressions, loosest binding first ---------------------------------------------------

  // Every node is counted against max_expression_nodes as it is made.
  ExprPtr NewExpr(ExprKind kind, Position pos) {
    if (++nodes_ > limits_.max_expression_nodes) {
      Fail(pos, fmt::format("statement too large: more than {} expression nodes (query.max_expression_nodes)",
                            limits_.max_expression_nodes),
           SqlError::Kind::kLimit);
      return nullptr;
    }
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }

  // Called once a node has its arguments: its tree's height, refused past max_expression_depth.
  // Chains (a+b+c..., a AND b AND ...) are built by loops, not recursion, so this is what keeps
  // a long chain from overflowing the stack of whatever recurses over the tree later.
  bool Grown(Expr* e) {
    int depth = 0;
    for (const auto& a : e->args) depth = std::max(depth, a->depth);
    e->depth = depth + 1;
    if (e->depth <= limits_.max_expression_depth) return true;
    return Fail(e->pos, fmt::format("expression nested too deeply (more than {} levels; query.max_expression_depth)",
                                    limits_.max_expression_depth),
                SqlError::Kind::kLimit);
  }

  ExprPtr Binary(size_t first, const Token& op, ExprPtr left, ExprPtr right) {
    ExprPtr e = NewExpr(ExprKind::kBinary, op.pos);
    if (!e) return nullptr;
    e->op = op.text == "!=" ? "<>" : op.text;
    e->args.push_back(std::move(left));
    e->args.push_back(std::move(right));
    e->source = SourceFrom(first);
    if (!Grown(e.get())) return nullptr;
    return e;
  }

  // Counts the nesting of the recursive rules (Or, Not, Unary) while one is running.
  class Nesting {
   public:
    explicit Nesting(int* depth) : depth_(depth) { ++*depth_; }
    ~Nesting() { --*depth_; }
    Nesting(const Nesting&) = delete;
    Nesting& operator=(const Nesting&) = delete;

   private:
    int* depth_;
  };

  // The parser's own recursion (parentheses, NOT, minus signs, function arguments, IN lists)
  // is bounded by the same setting as the trees it builds.
  bool TooDeep() {
    if (depth_ <= limits_.max_expression_depth) return false;
    return !Fail(Peek().pos, fmt::format("expression nested too deeply (more than {} levels; query.max_expression_depth)",
                                         limits_.max_expression_depth),
                 SqlError::Kind::kLimit);
  }

  ExprPtr Or() {
    Nesting nesting(&depth_);
    if (TooDeep()) return nullptr;
    size_t first = i_;
    ExprPtr left = And();
    while (left && IsKeyword(Peek(), "OR")) {
      const Token& op = Next();
      ExprPtr right = And();
      if (!right) return nullptr;
      left = Binary(first, op, std::move(left), std::move(right));
    }
    return left;
  }

  ExprPtr And() {
    size_t first = i_;
    ExprPtr left = Not();
    while (left && IsKeyword(Peek(), "AND")) {
      const Token& op = Next();
      ExprPtr right = Not();
      if (!right) return nullptr;
      left = Binary(first, op, std::move(left), std::move(right));
    }
    return left;
  }

  ExprPtr Not() {
    if (!IsKeyword(Peek(), "NOT")) return Predicate();
    Nesting nesting(&depth_);
    if (TooDeep()) return nullptr;
    size_t first = i_;
    const Token& op = Next();
    ExprPtr operand = Not();
    if (!operand) return nullptr;
    ExprPtr e = NewExpr(ExprKind::kUnary, op.pos);
    if (!e) return nullptr;
    e->op = "NOT";
    e->args.push_back(std::move(operand));
    e->source = SourceFrom(first);
    if (!Grown(e.get())) return nullptr;
    return e;
  }

  // x = y, x [NOT] BETWEEN a AND b, x [NOT] IN (...), x IS [NOT] NULL. They do not chain:
  // `a < b < c` is an error rather than a comparison of a boolean with c.
  ExprPtr Predicate() {
    size_t first = i_;
    ExprPtr left = Additive();
    if (!left) return nullptr;
    const Token& t = Peek();
    ExprPtr result;
    if (IsComparison(t)) {
      Next();
      if (IsSymbol(t, "=") && IsSymbol(Peek(), "=") && Peek().begin == t.end) {
        Fail(t.pos, "== is not SQL; equality is a single =");
        return nullptr;
      }
      ExprPtr right = Additive();
      if (!right) return nullptr;
      result = Binary(first, t, std::move(left), std::move(right));
    } else if (IsKeyword(t, "IS")) {
      Next();
      result = NewExpr(ExprKind::kIsNull, left->pos);
      if (!result) return nullptr;
      result->negated = AcceptKeyword("NOT");
      if (!ExpectKeyword("NULL")) return nullptr;
      result->args.push_back(std::move(left));
    } else if (IsKeyword(t, "BETWEEN") || IsKeyword(t, "IN") || IsKeyword(t, "NOT")) {
      bool negated = AcceptKeyword("NOT");
      if (AcceptKeyword("BETWEEN")) {
        result = NewExpr(ExprKind::kBetween, left->pos);
        if (!result) return nullptr;
        result->args.push_back(std::move(left));
        ExprPtr low = Additive();
        if (!low || !ExpectKeyword("AND")) return nullptr;
        ExprPtr high = Additive();
        if (!high) return nullptr;
        result->args.push_back(std::move(low));
        result->args.push_back(std::move(high));
      } else if (AcceptKeyword("IN")) {
        result = NewExpr(ExprKind::kIn, left->pos);
        if (!result) return nullptr;
        result->args.push_back(std::move(left));
        if (!ExpectSymbol("(")) return nullptr;
        do {
          ExprPtr e = Or();
          if (!e) return nullptr;
          result->args.push_back(std::move(e));
        } while (AcceptSymbol(","));
        if (!ExpectSymbol(")")) return nullptr;
      } else {
        Expected("BETWEEN or IN after NOT");
        return nullptr;
      }
      result->negated = negated;
    } else {
      return left;
    }
    result->source = SourceFrom(first);
    if (!Grown(result.get())) return nullptr;
    const Token& after = Peek();
    if (IsComparison(after) || IsKeyword(after, "IS") || IsKeyword(after, "BETWEEN") || IsKeyword(after, "IN")) {
      Fail(after.pos, fmt::format("{} cannot follow a comparison; combine comparisons with AND, or use parentheses",
                                  Describe(after)));
      return nullptr;
    }
    return result;
  }

  ExprPtr Additive() {
    size_t first = i_;
    ExprPtr left = Multiplicative();
    while (left && (IsSymbol(Peek(), "+") || IsSymbol(Peek(), "-"))) {
      const Token& op = Next();
      ExprPtr right = Multiplicative();
      if (!right) return nullptr;
      left = Binary(first, op, std::move(left), std::move(right));
    }
    return left;
  }

  ExprPtr Multiplicative() {
    size_t first = i_;
    ExprPtr left = Unary();
    while (left && (IsSymbol(Peek(), "*") || IsSymbol(Peek(), "/") || IsSymbol(Peek(), "%"))) {
      const Token& op = Next();
      ExprPtr right = Unary();
      if (!right) return nullptr;
      left = Binary(first, op, std::move(left), std::move(right));
    }
    return left;
  }

  // -x. A minus before a number or interval literal is folded into it: -5 is the literal -5.
  ExprPtr Unary() {
    if (!IsSymbol(Peek(), "-")) return Primary();
    Nesting nesting(&depth_);
    if (TooDeep()) return nullptr;
    size_t first = i_;
    const Token& op = Next();
    ExprPtr operand = Unary();
    if (!operand) return nullptr;
    if (operand->kind == ExprKind::kLiteral) {
      bool folded = true;
      if (operand->literal_type == LiteralType::kInteger || operand->literal_type == LiteralType::kInterval) {
        operand->integer = -operand->integer;  // never overflows: literals are read non-negative
      } else if (operand->literal_type == LiteralType::kDouble) {
        operand->real = -operand->real;
      } else {
        folded = false;
      }
      if (folded) {
        operand->pos = op.pos;
        operand->source = SourceFrom(first);
        return operand;
      }
    }
    ExprPtr e = NewExpr(ExprKind::kUnary, op.pos);
    if (!e) return nullptr;
    e->op = "-";
    e->args.push_back(std::move(operand));
    e->source = SourceFrom(first);
    if (!Grown(e.get())) return nullptr;
    return e;
  }

  ExprPtr Literal(LiteralType type, const Token& t) {
    ExprPtr e = NewExpr(ExprKind::kLiteral, t.pos);
    if (e) e->literal_type = type;
    return e;
  }

  ExprPtr Primary() {
    size_t first = i_;
    const Token& t = Peek();
    ExprPtr e;
    switch (t.kind) {
      case TokenKind::kInteger:
        if (!(e = Literal(LiteralType::kInteger, Next()))) return nullptr;
        e->integer = t.integer;
        break;
      case TokenKind::kReal:
        if (!(e = Literal(LiteralType::kDouble, Next()))) return nullptr;
        e->real = t.real;
        break;
      case TokenKind::kString:
        if (!(e = Literal(LiteralType::kString, Next()))) return nullptr;
        e->text = t.text;
        break;
      case TokenKind::kIdentifier:
      case TokenKind::kQuotedIdentifier:
        Next();
        if (IsSymbol(Peek(), "(")) return Call(first);
        if (IsSymbol(Peek(), ".")) {
          QualifiedName();
          return nullptr;
        }
        if (!(e = NewExpr(ExprKind::kColumn, t.pos))) return nullptr;
        e->name = t.text;
        break;
      case TokenKind::kSymbol:
        if (IsSymbol(t, "(")) {
          Next();
          e = Or();
          if (!e || !ExpectSymbol(")")) return nullptr;
          break;  // keeps the inner expression's position; its source gains the parentheses
        }
        Expected("an expression");
        return nullptr;
      case TokenKind::kKeyword:
        if (t.text == "TRUE" || t.text == "FALSE") {
          if (!(e = Literal(LiteralType::kBoolean, Next()))) return nullptr;
          e->integer = t.text == "TRUE" ? 1 : 0;
        } else if (t.text == "NULL") {
          if (!(e = Literal(LiteralType::kNull, Next()))) return nullptr;
        } else if (t.text == "INTERVAL") {
          return Interval();
        } else if (t.text == "TIMESTAMP") {
          return Timestamp();
        } else if (t.text == "DISTINCT") {
          Fail(t.pos, "DISTINCT is not supported");
          return nullptr;
        } else if (t.text == "SELECT") {
          Fail(t.pos, "subqueries are not supported");
          return nullptr;
        } else {
          Expected("an expression");
          return nullptr;
        }
        break;
      case TokenKind::kEnd:
        Expected("an expression");
        return nullptr;
    }
    e->source = SourceFrom(first);
    return e;
  }

  ExprPtr Star() {
    const Token& t = Next();
    ExprPtr e = NewExpr(ExprKind::kStar, t.pos);
    if (e) e->source = "*";
    return e;
  }

  // name(args), the name already consumed at `first`: now(), count(*), max(temperature).
  ExprPtr Call(size_t first) {
    const Token& name = tokens_[first];
    ExprPtr e = NewExpr(ExprKind::kFunction, name.pos);
    if (!e) return nullptr;
    e->name = name.text;
    Next();  // (
    if (IsKeyword(Peek(), "DISTINCT")) {
      Fail(Peek().pos, "DISTINCT is not supported");
      return nullptr;
    }
    if (IsSymbol(Peek(), "*")) {
      ExprPtr star = Star();
      if (!star) return nullptr;
      e->args.push_back(std::move(star));
      if (!ExpectSymbol(")")) return nullptr;
    } else if (!AcceptSymbol(")")) {
      for (;;) {
        ExprPtr arg = Or();
        if (!arg) return nullptr;
        e->args.push_back(std::move(arg));
        if (AcceptSymbol(")")) break;
        if (!AcceptSymbol(",")) {
          Expected("\",\" or \")\"");
          return nullptr;
        }
      }
    }
    e->source = SourceFrom(first);
    if (!Grown(e.get())) return nullptr;
    return e;
  }

  // INTERVAL '1 hour', INTERVAL '1h30m', or INTERVAL '1' HOUR.
  ExprPtr Interval() {
    size_t first = i_;
    const Token& keyword = Next();
    if (Peek().kind != TokenKind::kString) {
      Expected("a quoted interval after INTERVAL, e.g. INTERVAL '1 hour'");
      return nullptr;
    }
    const Token& text = Next();
    std::string value = text.text;
    Position error_pos = text.pos;
    const Token& unit = Peek();
    if (IsPlainNumber(text.text) && unit.kind == TokenKind::kIdentifier && IsIntervalUnitWord(unit.text)) {
      Next();
      value += " " + unit.text;
      error_pos = unit.pos;
    }
    ExprPtr e = Literal(LiteralType::kInterval, keyword);
    if (!e) return nullptr;
    std::string why;
    if (!ParseIntervalText(value, &e->integer, &why)) {
      Fail(error_pos, std::move(why));
      return nullptr;
    }
    e->text = std::move(value);
    e->source = SourceFrom(first);
    return e;
  }

  static bool IsPlainNumber(std::string_view s) {
    bool digit = false;
    for (char c : s) {
      if (c >= '0' && c <= '9') {
        digit = true;
      } else if (c != '.') {
        return false;
      }
    }
    return digit;
  }

  // TIMESTAMP '2024-01-21 10:00:00'.
  ExprPtr Timestamp() {
    size_t first = i_;
    const Token& keyword = Next();
    if (Peek().kind != TokenKind::kString) {
      Expected("a quoted time after TIMESTAMP, e.g. TIMESTAMP '2024-01-21 10:00:00' (TIMESTAMP is a reserved word; "
               "a column named timestamp is written \"timestamp\")");
      return nullptr;
    }
    const Token& text = Next();
    ExprPtr e = Literal(LiteralType::kTimestamp, keyword);
    if (!e) return nullptr;
    std::string why;
    if (!ParseTimestampLiteral(text.text, &e->integer, &why)) {
      Fail(text.pos, std::move(why));
      return nullptr;
    }
    e->text = text.text;
    e->source = SourceFrom(first);
    return e;
  }

  std::string_view sql_;
  const std::vector<Token>& tokens_;
  const QueryLimits& limits_;
  SqlError* error_;
  size_t i_ = 0;
  int depth_ = 0;   // of the parser's recursion
  int nodes_ = 0;   // made so far
  bool failed_ = false;
};

}  // namespace

bool Parse(std::string_view sql, const QueryLimits& limits, SelectStatement* out, SqlError* error) {
  *out = SelectStatement();
  // Before the lexer: its tokens take several times the text's size.
  if (sql.size() > limits.max_statement_bytes) {
    *error = SqlError{fmt::format("statement too large: {} bytes, more than {} (query.max_statement_bytes)", sql.size(),
                                  limits.max_statement_bytes),
                      Position{1, 1}, SqlError::Kind::kLimit};
    return false;
  }
  out->text = std::make_unique<const std::string>(sql);
  std::string_view text = *out->text;
  std::vector<Token> tokens;
  if (!Tokenize(text, &tokens, error)) return false;
  Parser parser(text, tokens, limits, error);
  return parser.Statement(out);
}

bool Parse(std::string_view sql, SelectStatement* out, SqlError* error) { return Parse(sql, QueryLimits(), out, error); }

}  // namespace mare::query
