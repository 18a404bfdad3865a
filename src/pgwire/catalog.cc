#include "pgwire/catalog.h"

#include <regex.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "pgwire/pg_types.h"
#include "pgwire/sql_tokens.h"

namespace mare::pgwire {
namespace {

// One value of a catalog row: text, an integer, a boolean (an integer 0/1), or NULL.
struct Cell {
  enum Kind { kNull, kText, kInt, kBool } kind = kNull;
  std::string s;
  int64_t i = 0;
  std::string Text() const { return kind == kText ? s : kind == kNull ? "" : std::to_string(i); }
};
Cell T(std::string s) { return {Cell::kText, std::move(s), 0}; }
Cell I(int64_t i) { return {Cell::kInt, "", i}; }
Cell B(bool b) { return {Cell::kBool, "", b ? 1 : 0}; }

// A row by canonical name: information_schema's names, plus the pg_catalog ones they stand for.
using Row = std::map<std::string, Cell>;

// pg_catalog's column names, as filters write them, to the canonical names rows carry.
std::string Canonical(const std::string& name) {
  static const std::map<std::string, std::string> kAliases = {
      {"relname", "table_name"}, {"nspname", "table_schema"}, {"attname", "column_name"},
      {"attnum", "ordinal_position"}, {"typname", "udt_name"}, {"table_schem", "table_schema"}};
  auto it = kAliases.find(name);
  return it == kAliases.end() ? name : it->second;
}

// information_schema.columns.data_type of a type OID.
std::string DataType(int32_t o) {
  switch (o) {
    case oid::kInt8: return "bigint";
    case oid::kFloat8: return "double precision";
    case oid::kTimestamptz: return "timestamp with time zone";
    case oid::kInterval: return "interval";
    case oid::kBool: return "boolean";
    default: return "text";
  }
}

Row TableRow(const CatalogTable& t) {
  return {{"table_catalog", T("mare")}, {"table_schema", T("public")}, {"table_name", T(t.name)},
          {"table_type", T("BASE TABLE")}, {"jdbc_table_type", T("TABLE")}, {"relkind", T("r")}, {"oid", I(t.oid)},
          {"owner", T("mare")}, {"is_insertable_into", T("NO")}, {"is_typed", T("NO")}};
}

std::vector<Row> TableRows(const std::vector<CatalogTable>& tables) {
  std::vector<Row> rows;
  for (const auto& t : tables) rows.push_back(TableRow(t));
  return rows;
}

std::vector<Row> ColumnRows(const std::vector<CatalogTable>& tables) {
  std::vector<Row> rows;
  for (const auto& t : tables) {
    for (size_t c = 0; c < t.columns.size(); ++c) {
      const CatalogColumn& col = t.columns[c];
      Row r = TableRow(t);
      r["column_name"] = T(col.name);
      r["ordinal_position"] = I(static_cast<int64_t>(c + 1));
      r["data_type"] = T(DataType(col.oid));
      r["udt_name"] = T(std::string(TypeName(col.oid)));
      r["atttypid"] = I(col.oid);
      r["attlen"] = I(TypeLength(col.oid));
      r["atttypmod"] = I(-1);
      r["typtypmod"] = I(-1);
      r["typbasetype"] = I(0);
      r["typtype"] = T("b");
      // mare's SQL declares no NOT NULL: a field absent from a reading is NULL there.
      r["is_nullable"] = T("YES");
      r["attnotnull"] = B(false);
      r["is_updatable"] = T("NO");
      r["numeric_precision"] = col.oid == oid::kInt8 ? I(64) : col.oid == oid::kFloat8 ? I(53) : Cell{};
      r["datetime_precision"] = col.oid == oid::kTimestamptz || col.oid == oid::kInterval ? I(6) : Cell{};
      rows.push_back(std::move(r));
    }
  }
  return rows;
}

// SQL LIKE: % any run, _ one character, \ escapes.
bool Like(std::string_view s, std::string_view p) {
  if (p.empty()) return s.empty();
  if (p[0] == '%') {
    for (size_t k = 0; k <= s.size(); ++k) {
      if (Like(s.substr(k), p.substr(1))) return true;
    }
    return false;
  }
  if (p[0] == '\\' && p.size() > 1) return !s.empty() && s[0] == p[1] && Like(s.substr(1), p.substr(2));
  return !s.empty() && (p[0] == '_' || p[0] == s[0]) && Like(s.substr(1), p.substr(1));
}

// psql's patterns ('^(readings)$'): POSIX extended regular expressions. One that does not
// compile matches nothing.
bool Matches(const std::string& v, const std::string& pattern) {
  regex_t re;
  if (regcomp(&re, pattern.c_str(), REG_EXTENDED | REG_NOSUB) != 0) return false;
  bool match = regexec(&re, v.c_str(), 0, nullptr, 0) == 0;
  regfree(&re);
  return match;
}

// Three-valued: a condition not understood here is Unknown and keeps the row, so that what is
// answered is never less than what matches (conditions on things mare has one of, such as
// pg_table_is_visible or the search_path, are true of every table).
enum class Truth { kFalse, kTrue, kUnknown };

class Condition {
 public:
  // Parses tokens [*at, end) as an OR of ANDs, stopping at a ')' closing an outer group.
  static std::unique_ptr<Condition> Parse(const std::vector<Token>& t, size_t* at, size_t end) {
    auto left = ParseAnd(t, at, end);
    while (IsWord(t, *at, "or")) {
      ++*at;
      auto node = std::make_unique<Condition>();
      node->kind_ = kOr;
      node->children_.push_back(std::move(left));
      node->children_.push_back(ParseAnd(t, at, end));
      left = std::move(node);
    }
    return left;
  }

  Truth Eval(const Row& row) const {
    switch (kind_) {
      case kConst: return value_ ? Truth::kTrue : Truth::kFalse;
      case kUnknown: return Truth::kUnknown;
      case kNot: {
        Truth v = children_[0]->Eval(row);
        return v == Truth::kUnknown ? v : v == Truth::kTrue ? Truth::kFalse : Truth::kTrue;
      }
      case kAnd:
      case kOr: {
        Truth a = children_[0]->Eval(row), b = children_[1]->Eval(row);
        Truth dominant = kind_ == kAnd ? Truth::kFalse : Truth::kTrue;
        if (a == dominant || b == dominant) return dominant;
        if (a == Truth::kUnknown || b == Truth::kUnknown) return Truth::kUnknown;
        return a;
      }
      case kCompare: {
        auto it = row.find(column_);
        if (it == row.end()) return Truth::kUnknown;
        std::string v = it->second.Text();
        bool match = false;
        for (const std::string& want : values_) {
          if (op_ == "like") match |= Like(v, want);
          else if (op_ == "ilike") match |= Like(Lower(v), Lower(want));
          else if (op_ == "~") match |= Matches(v, want);
          else match |= v == want;
        }
        return match != negated_ ? Truth::kTrue : Truth::kFalse;
      }
    }
    return Truth::kUnknown;
  }

 private:
  enum Kind { kConst, kUnknown, kNot, kAnd, kOr, kCompare };

  static std::unique_ptr<Condition> ParseAnd(const std::vector<Token>& t, size_t* at, size_t end) {
    auto left = ParseFactor(t, at, end);
    while (IsWord(t, *at, "and")) {
      ++*at;
      auto node = std::make_unique<Condition>();
      node->kind_ = kAnd;
      node->children_.push_back(std::move(left));
      node->children_.push_back(ParseFactor(t, at, end));
      left = std::move(node);
    }
    return left;
  }

  static std::unique_ptr<Condition> ParseFactor(const std::vector<Token>& t, size_t* at, size_t end) {
    auto node = std::make_unique<Condition>();
    if (IsWord(t, *at, "not")) {
      ++*at;
      node->kind_ = kNot;
      node->children_.push_back(ParseFactor(t, at, end));
      return node;
    }
    if (IsPunct(t, *at, "(")) {
      size_t save = *at;
      ++*at;
      auto inner = Parse(t, at, end);
      if (IsPunct(t, *at, ")")) {
        ++*at;
        return inner;
      }
      *at = save;  // not a group after all: skipped below as one condition
    }
    if ((IsWord(t, *at, "true") || IsWord(t, *at, "false")) && !IsPunct(t, *at + 1, "=")) {
      node->kind_ = kConst;
      node->value_ = IsWord(t, *at, "true");
      ++*at;
      return node;
    }
    size_t begin = *at;
    if (ParseCompare(t, at, node.get())) return node;
    // Skip one condition: up to AND/OR or an unmatched ')' at this depth.
    *at = begin;
    int depth = 0;
    while (*at < end) {
      if (IsPunct(t, *at, "(")) ++depth;
      if (IsPunct(t, *at, ")")) {
        if (depth == 0) break;
        --depth;
      }
      if (depth == 0 && (IsWord(t, *at, "and") || IsWord(t, *at, "or") || IsWord(t, *at, "order") ||
                         IsWord(t, *at, "limit") || IsWord(t, *at, "group"))) {
        break;
      }
      ++*at;
    }
    node->kind_ = kUnknown;
    return node;
  }

  // [quote_ident(] [q.]column [)] op value, with op one of = <> != LIKE ILIKE ~ !~ IN NOT IN
  // and OPERATOR(pg_catalog.~); value a string (E'...' too) or a parenthesized list of them.
  static bool ParseCompare(const std::vector<Token>& t, size_t* at, Condition* node) {
    size_t i = *at;
    bool wrapped = false;
    if ((IsWord(t, i, "quote_ident") || IsWord(t, i, "lower")) && IsPunct(t, i + 1, "(")) {
      wrapped = true;
      i += 2;
    }
    if (i >= t.size() || t[i].kind != Token::kWord) return false;
    std::string column = t[i].text;
    ++i;
    if (IsPunct(t, i, ".") && i + 1 < t.size() && t[i + 1].kind == Token::kWord) {
      column = t[i + 1].text;
      i += 2;
    }
    if (wrapped) {
      if (!IsPunct(t, i, ")")) return false;
      ++i;
    }
    node->column_ = Canonical(column);
    std::string op;
    if (IsPunct(t, i, "=")) {
      op = "=", ++i;
    } else if ((IsPunct(t, i, "<") && IsPunct(t, i + 1, ">")) || (IsPunct(t, i, "!") && IsPunct(t, i + 1, "="))) {
      op = "=", node->negated_ = true, i += 2;
    } else if (IsPunct(t, i, "!") && IsPunct(t, i + 1, "~")) {
      op = "~", node->negated_ = true, i += 2;
    } else if (IsPunct(t, i, "~")) {
      op = "~", ++i;
    } else if (IsWord(t, i, "operator") && IsPunct(t, i + 1, "(") && IsWord(t, i + 2, "pg_catalog") && IsPunct(t, i + 3, ".") &&
               IsPunct(t, i + 4, "~") && IsPunct(t, i + 5, ")")) {
      op = "~", i += 6;
    } else {
      if (IsWord(t, i, "not")) node->negated_ = true, ++i;
      if (IsWord(t, i, "like") || IsWord(t, i, "ilike") || IsWord(t, i, "in")) {
        op = t[i].text == "in" ? "=" : t[i].text;
        ++i;
      } else {
        return false;
      }
    }
    node->op_ = op;
    auto string_at = [&](size_t* k, std::string* out) {
      if (IsWord(t, *k, "e") && *k + 1 < t.size() && t[*k + 1].kind == Token::kString) ++*k;
      if (*k >= t.size() || t[*k].kind != Token::kString) return false;
      *out = t[*k].text;
      ++*k;
      // '...'::name and friends
      while (IsPunct(t, *k, ":") && IsPunct(t, *k + 1, ":") && *k + 2 < t.size() && t[*k + 2].kind == Token::kWord) *k += 3;
      return true;
    };
    std::string v;
    if (IsPunct(t, i, "(")) {
      ++i;
      for (;;) {
        if (!string_at(&i, &v)) return false;
        node->values_.push_back(v);
        if (IsPunct(t, i, ")")) break;
        if (!IsPunct(t, i, ",")) return false;
        ++i;
      }
      ++i;
    } else {
      if (!string_at(&i, &v)) return false;
      node->values_.push_back(v);
    }
    if (IsWord(t, i, "collate")) {  // COLLATE pg_catalog.default
      ++i;
      while (i < t.size() && (t[i].kind == Token::kWord || IsPunct(t, i, "."))) ++i;
    }
    node->kind_ = kCompare;
    *at = i;
    return true;
  }

  Kind kind_ = kUnknown;
  bool value_ = false;
  std::vector<std::unique_ptr<Condition>> children_;
  std::string column_, op_;
  std::vector<std::string> values_;
  bool negated_ = false;
};

// The output: columns by (name, key of the row, OID).
struct OutColumn {
  std::string name;
  std::string key;
  int32_t oid;
};

// Every WHERE of the statement, at any depth (JDBC's getColumns filters inside and outside its
// subquery): a row is kept unless one of them is false of it.
std::vector<std::unique_ptr<Condition>> WheresOf(const std::vector<Token>& t) {
  std::vector<std::unique_ptr<Condition>> out;
  for (size_t i = 0; i < t.size(); ++i) {
    if (IsWord(t, i, "where")) {
      size_t at = i + 1;
      out.push_back(Condition::Parse(t, &at, t.size()));
    }
  }
  return out;
}

// The statement's tokens with every word lower-cased, quoted names too ("TABLE_SCHEM").
bool CatalogTokens(std::string_view sql, std::vector<Token>* t) {
  if (!Tokenize(sql, t) || !IsWord(*t, 0, "select")) return false;
  for (Token& tok : *t) {
    if (tok.kind == Token::kWord) tok.text = Lower(tok.text);
  }
  return true;
}

// The last ORDER BY at depth 0: output names or 1-based positions, each ASC or DESC.
std::vector<std::pair<std::string, bool>> OrderOf(const std::vector<Token>& t) {
  std::vector<std::pair<std::string, bool>> out;
  int depth = 0;
  size_t from = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    if (IsPunct(t, i, "(")) ++depth;
    if (IsPunct(t, i, ")")) --depth;
    if (depth == 0 && IsWord(t, i, "order") && IsWord(t, i + 1, "by")) from = i + 2;
  }
  if (from == 0) return out;
  for (size_t i = from; i < t.size();) {
    std::string key;
    if (t[i].kind == Token::kNumber || t[i].kind == Token::kWord) {
      key = t[i].text;
      ++i;
      if (IsPunct(t, i, ".") && i + 1 < t.size()) {
        key = t[i + 1].text;
        i += 2;
      }
    } else {
      break;
    }
    bool desc = false;
    if (IsWord(t, i, "asc")) ++i;
    if (IsWord(t, i, "desc")) desc = true, ++i;
    out.emplace_back(key, desc);
    if (!IsPunct(t, i, ",")) break;
    ++i;
  }
  return out;
}

std::optional<size_t> LimitOf(const std::vector<Token>& t) {
  for (size_t i = 0; i + 1 < t.size(); ++i) {
    if (IsWord(t, i, "limit") && t[i + 1].kind == Token::kNumber) return std::stoul(t[i + 1].text);
  }
  return std::nullopt;
}

void Build(std::vector<Row> rows, const std::vector<OutColumn>& out, const std::vector<Token>& t, SessionAnswer* answer) {
  for (const auto& where : WheresOf(t)) {
    std::erase_if(rows, [&](const Row& r) { return where->Eval(r) == Truth::kFalse; });
  }
  auto order = OrderOf(t);
  auto key_of = [&](const std::string& name) -> std::string {
    if (!name.empty() && std::isdigit(static_cast<unsigned char>(name[0]))) {
      size_t k = std::stoul(name);
      return k >= 1 && k <= out.size() ? out[k - 1].key : "";
    }
    for (const auto& c : out) {
      if (Lower(c.name) == name) return c.key;
    }
    return Canonical(name);
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    for (const auto& [name, desc] : order) {
      std::string k = key_of(name);
      auto x = a.find(k), y = b.find(k);
      if (x == a.end() || y == b.end()) continue;
      const Cell &p = x->second, &q = y->second;
      bool numeric = p.kind != Cell::kText && q.kind != Cell::kText;
      int c = numeric ? (p.i < q.i ? -1 : p.i > q.i) : p.s.compare(q.s);
      if (c != 0) return desc ? c > 0 : c < 0;
    }
    return false;
  });
  if (auto limit = LimitOf(t); limit && rows.size() > *limit) rows.resize(*limit);
  SessionAnswer a;
  a.returns_rows = true;
  for (const auto& c : out) {
    a.names.push_back(c.name);
    a.oids.push_back(c.oid);
    bool integer = c.oid == oid::kInt2 || c.oid == oid::kInt4 || c.oid == oid::kInt8 || c.oid == oid::kOid;
    a.columns.emplace_back(c.oid == oid::kBool ? query::Type::kBoolean : integer ? query::Type::kInteger : query::Type::kText);
  }
  for (const Row& r : rows) {
    for (size_t k = 0; k < out.size(); ++k) {
      auto it = r.find(out[k].key);
      query::ResultColumn& col = a.columns[k];
      if (it == r.end() || it->second.kind == Cell::kNull) {
        col.Append(query::Value::Null(col.type()));
      } else if (col.type() == query::Type::kText) {
        col.Append(query::Value::Text(it->second.Text()));
      } else {
        col.Append(query::Value::Int(col.type(), it->second.i));
      }
    }
  }
  a.rows = rows.size();
  a.tag = fmt::format("SELECT {}", a.rows);
  *answer = std::move(a);
}

// The tokens of the select list at depth 0, split at commas, up to the FROM.
std::vector<std::vector<Token>> SelectItems(const std::vector<Token>& t) {
  std::vector<std::vector<Token>> items(1);
  int depth = 0;
  for (size_t i = 1; i < t.size(); ++i) {
    if (depth == 0 && IsWord(t, i, "from")) return items;
    if (IsPunct(t, i, "(")) ++depth;
    if (IsPunct(t, i, ")")) --depth;
    if (depth == 0 && IsPunct(t, i, ",")) {
      items.emplace_back();
      continue;
    }
    items.back().push_back(t[i]);
  }
  return {};
}

// information_schema.tables or .columns: the select list of column names (each perhaps in
// quote_ident(...), perhaps aliased) or *, over the rows.
bool AnswerInformationSchema(const std::vector<Token>& t, const std::vector<CatalogTable>& tables, SessionAnswer* answer) {
  bool columns = false;
  for (size_t i = 0; i + 2 < t.size(); ++i) {
    if (IsWord(t, i, "information_schema") && IsPunct(t, i + 1, ".")) {
      if (IsWord(t, i + 2, "columns")) columns = true;
      else if (!IsWord(t, i + 2, "tables")) return false;
    }
  }
  std::vector<std::string> all = {"table_catalog", "table_schema", "table_name", "table_type", "is_insertable_into", "is_typed"};
  if (columns) {
    all = {"table_catalog", "table_schema", "table_name", "column_name", "ordinal_position", "column_default",
           "is_nullable", "data_type", "numeric_precision", "datetime_precision", "udt_name", "is_updatable"};
  }
  auto oid_of = [](const std::string& key) {
    return key == "ordinal_position" || key == "numeric_precision" || key == "datetime_precision" ? oid::kInt4 : oid::kName;
  };
  std::vector<OutColumn> out;
  for (const auto& item : SelectItems(t)) {
    if (item.size() == 1 && item[0].kind == Token::kPunct && item[0].text == "*") {
      for (const auto& k : all) out.push_back({k, k, oid_of(k)});
      continue;
    }
    size_t i = 0;
    bool quoted = IsWord(item, 0, "quote_ident") && IsPunct(item, 1, "(");
    if (quoted) i = 2;
    if (i >= item.size() || item[i].kind != Token::kWord) return false;
    std::string key = item[i].text;
    ++i;
    if (IsPunct(item, i, ".") && i + 1 < item.size()) key = item[i + 1].text, i += 2;
    if (quoted) {
      if (!IsPunct(item, i, ")")) return false;
      ++i;
    }
    if (std::find(all.begin(), all.end(), key) == all.end()) return false;
    std::string name = quoted ? "quote_ident" : key;
    if (IsWord(item, i, "as")) ++i;
    if (i < item.size() && item[i].kind == Token::kWord) name = item[i].text, ++i;
    if (i != item.size()) return false;
    out.push_back({name, key, oid_of(key)});
  }
  if (out.empty()) return false;
  Build(columns ? ColumnRows(tables) : TableRows(tables), out, t, answer);
  return true;
}

}  // namespace

bool IsCatalogQuery(std::string_view sql) {
  std::vector<Token> t;
  if (!CatalogTokens(sql, &t)) return false;
  return Mentions(t, "information_schema") || Mentions(t, "pg_namespace") || Mentions(t, "pg_attribute") ||
         (Mentions(t, "pg_class") && Mentions(t, "relkind"));
}

bool AnswerCatalogQuery(std::string_view sql, const std::vector<CatalogTable>& tables, SessionAnswer* answer) {
  std::vector<Token> t;
  if (!CatalogTokens(sql, &t)) return false;
  if (Mentions(t, "information_schema") && !Mentions(t, "pg_class")) return AnswerInformationSchema(t, tables, answer);
  // JDBC getColumns: pg_attribute joined to pg_class, pg_namespace and pg_type.
  if (Mentions(t, "pg_attribute") && Mentions(t, "atttypid") && Mentions(t, "typtype") && Mentions(t, "nspname")) {
    std::vector<OutColumn> out = {
        {"current_database", "table_catalog", oid::kName},
        {"nspname", "table_schema", oid::kName},    {"relname", "table_name", oid::kName},
        {"attname", "column_name", oid::kName},     {"atttypid", "atttypid", oid::kOid},
        {"attnotnull", "attnotnull", oid::kBool},   {"atttypmod", "atttypmod", oid::kInt4},
        {"attlen", "attlen", oid::kInt2},           {"typtypmod", "typtypmod", oid::kInt4},
        {"attnum", "ordinal_position", oid::kInt8}, {"attidentity", "attidentity", oid::kText},
        {"attgenerated", "attgenerated", oid::kText}, {"adsrc", "adsrc", oid::kText},
        {"description", "description", oid::kText}, {"typbasetype", "typbasetype", oid::kOid},
        {"typtype", "typtype", oid::kText}};
    Build(ColumnRows(tables), out, t, answer);
    return true;
  }
  // JDBC getTables: pg_namespace and pg_class, the columns JDBC names.
  if (Mentions(t, "pg_namespace") && Mentions(t, "pg_class") && Mentions(t, "table_type")) {
    std::vector<OutColumn> out = {{"TABLE_CAT", "table_catalog", oid::kName}, {"TABLE_SCHEM", "table_schema", oid::kName},
                                  {"TABLE_NAME", "table_name", oid::kName},    {"TABLE_TYPE", "jdbc_table_type", oid::kText},
                                  {"REMARKS", "none", oid::kText},             {"TYPE_CAT", "empty", oid::kText},
                                  {"TYPE_SCHEM", "empty", oid::kText},         {"TYPE_NAME", "empty", oid::kText},
                                  {"SELF_REFERENCING_COL_NAME", "empty", oid::kText},
                                  {"REF_GENERATION", "empty", oid::kText}};
    // Its types clause (TABLE, VIEW, ...) is a condition on relkind like any other.
    std::vector<Row> rows = TableRows(tables);
    for (Row& r : rows) r["empty"] = T("");
    Build(std::move(rows), out, t, answer);
    return true;
  }
  // JDBC getSchemas: pg_namespace alone. mare has one schema, public, where its tables are.
  if (Mentions(t, "pg_namespace") && Mentions(t, "table_schem") && !Mentions(t, "pg_class")) {
    Build({Row{{"table_schema", T("public")}, {"table_catalog", T("mare")}}},
          {{"TABLE_SCHEM", "table_schema", oid::kName}, {"TABLE_CATALOG", "table_catalog", oid::kName}}, t, answer);
    return true;
  }
  // psql's \dt (and \d with no name): Schema, Name, Type, Owner.
  if (Mentions(t, "pg_class") && Mentions(t, "relkind") && Mentions(t, "pg_get_userbyid") && !Mentions(t, "pg_attribute")) {
    std::vector<Row> rows = TableRows(tables);
    for (Row& r : rows) r["psql_type"] = T("table");
    Build(std::move(rows),
          {{"Schema", "table_schema", oid::kName}, {"Name", "table_name", oid::kName}, {"Type", "psql_type", oid::kText},
           {"Owner", "owner", oid::kName}},
          t, answer);
    return true;
  }
  return false;
}

}  // namespace mare::pgwire
