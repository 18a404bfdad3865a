#include "pgwire/catalog.h"

#include <regex.h>

#include <algorithm>
#include <cctype>
#include <charconv>
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
          {"owner", T("mare")}, {"is_insertable_into", T("NO")}, {"is_typed", T("NO")},
          // What psql's \d reads of pg_class: a plain, permanent table of mare's own access
          // method, with no check constraints, indexes, rules, triggers, row security,
          // partitions, options or tablespace of its own; replica identity default.
          {"relchecks", I(0)}, {"relhasindex", B(false)}, {"relhasrules", B(false)}, {"relhastriggers", B(false)},
          {"relrowsecurity", B(false)}, {"relforcerowsecurity", B(false)}, {"relhasoids", B(false)},
          {"relispartition", B(false)}, {"reloptions", Cell{}}, {"reltablespace", I(0)}, {"reloftype", T("")},
          {"relpersistence", T("p")}, {"relreplident", T("d")}, {"amname", T("mare")},
          {"size", t.disk_bytes >= 0 ? T(PrettySize(t.disk_bytes)) : Cell{}}};
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
      // What psql's \d reads of pg_attribute: mare's columns have no defaults, collations,
      // identity, generation, statistics targets or comments; fixed-length values are stored
      // plain ('p'), text extended ('x').
      r["attrelid"] = I(t.oid);
      r["format_type"] = T(DataType(col.oid));
      r["pg_get_expr"] = Cell{};
      r["collname"] = Cell{};
      r["attidentity"] = T("");
      r["attgenerated"] = T("");
      r["attstorage"] = T(TypeLength(col.oid) < 0 ? "x" : "p");
      r["attcompression"] = T("");
      r["attstattarget"] = Cell{};
      r["col_description"] = Cell{};
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
    while (IsPunct(t, i, ".") && i + 1 < t.size() && t[i + 1].kind == Token::kWord) {  // [schema.]table.column
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

// The leading digits of a number token; SIZE_MAX past size_t (never an exception: a client's
// LIMIT 99999999999999999999999 once ended the process through std::stoul).
size_t CountOf(const std::string& text) {
  size_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  return ec == std::errc::result_out_of_range ? SIZE_MAX : v;
}

std::optional<size_t> LimitOf(const std::vector<Token>& t) {
  for (size_t i = 0; i + 1 < t.size(); ++i) {
    if (IsWord(t, i, "limit") && t[i + 1].kind == Token::kNumber) return CountOf(t[i + 1].text);
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
      size_t k = CountOf(name);
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

// A pg_catalog table the statement's outer FROM reads, and whether it is only LEFT JOINed (its
// rows optional) or joined by a comma or an inner JOIN (no rows there: none in the answer).
struct FromTable {
  std::string name;
  bool optional = false;
};

// The pg_catalog tables of the statement's first SELECT's FROM, up to its WHERE.
std::vector<FromTable> FromTables(const std::vector<Token>& t) {
  std::vector<FromTable> out;
  int depth = 0;
  bool in_from = false, left = false;
  for (size_t i = 0; i < t.size(); ++i) {
    if (IsPunct(t, i, "(")) ++depth;
    if (IsPunct(t, i, ")")) --depth;
    if (depth != 0) continue;
    if (IsWord(t, i, "from")) {
      in_from = true;
    } else if (in_from && (IsWord(t, i, "where") || IsWord(t, i, "order") || IsWord(t, i, "group") ||
                           IsWord(t, i, "union") || IsWord(t, i, "limit"))) {
      break;
    } else if (in_from && IsWord(t, i, "left")) {
      left = true;
    } else if (in_from && t[i].kind == Token::kWord && t[i].text.starts_with("pg_") && !IsPunct(t, i + 1, ".") &&
               !IsPunct(t, i + 1, "(")) {
      out.push_back({t[i].text, left});
      left = false;
    }
  }
  return out;
}

bool Reads(const std::vector<FromTable>& from, std::string_view table) {
  return std::any_of(from.begin(), from.end(), [&](const FromTable& f) { return f.name == table; });
}

// The catalogs of things mare has none of (constraints, indexes, triggers, rules, row-security
// policies, extended statistics, publications, inheritance, partitions, defaults, comments): a
// query that needs rows of one of them is answered with no rows, which is the truth, rather
// than refused (psql's \d reads several).
bool ReadsAnEmptyCatalog(const std::vector<FromTable>& from) {
  static const char* const kEmpty[] = {"pg_constraint", "pg_index",        "pg_trigger",     "pg_rewrite",
                                       "pg_policy",     "pg_statistic_ext", "pg_publication", "pg_publication_rel",
                                       "pg_inherits",   "pg_partitioned_table", "pg_foreign_table", "pg_sequence",
                                       "pg_description", "pg_attrdef",     "pg_event_trigger", "pg_subscription"};
  for (const FromTable& f : from) {
    if (f.optional) continue;
    for (const char* e : kEmpty) {
      if (f.name == e) return true;
    }
  }
  return false;
}

// An output name as PostgreSQL gives it: a "quoted" alias as written, another folded to lower
// case (the tokens' words are all lower-cased, so the text is read again from the statement).
std::string AliasText(std::string_view sql, const Token& tok) {
  if (tok.end > sql.size() || tok.begin >= tok.end) return tok.text;
  std::string_view raw = sql.substr(tok.begin, tok.end - tok.begin);
  if (raw.size() < 2 || raw.front() != '"' || raw.back() != '"') return tok.text;
  std::string out;
  for (size_t i = 1; i + 1 < raw.size(); ++i) {
    out.push_back(raw[i]);
    if (raw[i] == '"' && i + 2 < raw.size() && raw[i + 1] == '"') ++i;  // "" is one quote
  }
  return out;
}

// A select list over pg_class or pg_attribute (psql's \d readings): each item is the row key
// of the first column it names ("c.oid", "pg_catalog.format_type(a.atttypid, a.atttypmod)",
// "(SELECT c.collname FROM ...)") or a literal ('', false). False when an item names nothing
// known here: that statement is not answered rather than answered with made-up values.
bool SelectListOver(std::string_view sql, const std::vector<Token>& t, const Row& sample, std::vector<Row>* rows,
                    std::vector<OutColumn>* out) {
  auto items = SelectItems(t);
  if (items.empty()) return false;
  for (size_t k = 0; k < items.size(); ++k) {
    const auto& item = items[k];
    if (item.empty()) return false;
    std::string name;
    size_t n = item.size();
    if (n >= 2 && IsWord(item, n - 2, "as") && item[n - 1].kind == Token::kWord) name = AliasText(sql, item[n - 1]), n -= 2;
    std::string key;
    std::optional<Cell> literal;
    if (item[0].kind == Token::kString) {
      literal = T(item[0].text);
    } else if (IsWord(item, 0, "true") || IsWord(item, 0, "false")) {
      literal = B(IsWord(item, 0, "true"));
    } else if (IsWord(item, 0, "null")) {
      literal = Cell{};
    } else if (item[0].kind == Token::kNumber) {
      int64_t v = 0;
      const std::string& text = item[0].text;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      literal = ec == std::errc() && end == text.data() + text.size() ? I(v) : T(text);
    }
    if (literal) {
      key = fmt::format("#{}", k);
      for (Row& r : *rows) r[key] = *literal;
      if (name.empty()) name = "?column?";
    } else {
      for (size_t i = 0; i < n && key.empty(); ++i) {
        if (item[i].kind == Token::kWord && sample.count(Canonical(item[i].text))) {
          key = Canonical(item[i].text);
          if (name.empty()) name = item[i].text;
        }
      }
      if (key.empty()) return false;
    }
    const Cell& c = literal ? *literal : sample.at(key);
    int32_t type = c.kind == Cell::kBool ? oid::kBool
                   : c.kind == Cell::kInt ? (key == "oid" || key == "attrelid" ? oid::kOid : oid::kInt4)
                                          : oid::kText;
    out->push_back({name, key, type});
  }
  return true;
}

// Answers a select list over `rows` (sample: the keys any row has; none when there are no
// tables) with the statement's filters and order.
bool AnswerOver(std::string_view sql, const std::vector<Token>& t, std::vector<Row> rows, const Row& sample,
                SessionAnswer* answer) {
  std::vector<OutColumn> out;
  if (!SelectListOver(sql, t, sample, &rows, &out)) return false;
  Build(std::move(rows), out, t, answer);
  return true;
}

// A column row of a table with one column of each kind: the keys every column row has.
Row SampleColumnRow() {
  return ColumnRows({{"t", 0, {{"c", oid::kInt8}}}}).front();
}

// psql's \d on the things mare has none of: the select list's items, no rows.
void AnswerEmpty(std::string_view sql, const std::vector<Token>& t, SessionAnswer* answer) {
  SessionAnswer a;
  a.returns_rows = true;
  auto items = SelectItems(t);
  for (size_t k = 0; k < items.size(); ++k) {
    const auto& item = items[k];
    size_t n = item.size();
    std::string name = n >= 2 && IsWord(item, n - 2, "as") ? AliasText(sql, item[n - 1])
                       : n >= 1 && item[n - 1].kind == Token::kWord ? item[n - 1].text
                                                                    : "?column?";
    a.names.push_back(name);
    a.oids.push_back(oid::kText);
    a.columns.emplace_back(query::Type::kText);
  }
  a.tag = "SELECT 0";
  *answer = std::move(a);
}

}  // namespace

std::string PrettySize(int64_t bytes) {
  constexpr int64_t kLimit = 10 * 1024, kLimit2 = kLimit * 2 - 1;
  if (bytes < kLimit) return fmt::format("{} bytes", bytes);
  int64_t size = bytes >> 9;  // one extra bit, for the rounding
  for (const char* unit : {"kB", "MB", "GB"}) {
    if (size < kLimit2) return fmt::format("{} {}", (size + 1) / 2, unit);
    size >>= 10;
  }
  return fmt::format("{} TB", (size + 1) / 2);
}

bool IsCatalogQuery(std::string_view sql) {
  std::vector<Token> t;
  if (!CatalogTokens(sql, &t)) return false;
  if (Mentions(t, "information_schema") || Mentions(t, "pg_namespace") || Mentions(t, "pg_attribute") ||
      (Mentions(t, "pg_class") && Mentions(t, "relkind"))) {
    return true;
  }
  auto from = FromTables(t);
  return Reads(from, "pg_class") || Reads(from, "pg_database") || ReadsAnEmptyCatalog(from);
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
  // psql's \dt (and \d with no name): Schema, Name, Type, Owner; with \dt+ also Persistence,
  // Access method, Size (the store's bytes on disk) and Description (mare keeps no comments: NULL).
  if (Mentions(t, "pg_class") && Mentions(t, "relkind") && Mentions(t, "pg_get_userbyid") && !Mentions(t, "pg_attribute")) {
    static const std::pair<const char*, OutColumn> kListColumns[] = {
        {"schema", {"Schema", "table_schema", oid::kName}},
        {"name", {"Name", "table_name", oid::kName}},
        {"type", {"Type", "psql_type", oid::kText}},
        {"owner", {"Owner", "owner", oid::kName}},
        {"persistence", {"Persistence", "psql_persistence", oid::kText}},
        {"access method", {"Access method", "amname", oid::kName}},
        {"size", {"Size", "size", oid::kText}},
        {"description", {"Description", "description", oid::kText}}};
    std::vector<OutColumn> out;
    for (const auto& item : SelectItems(t)) {
      size_t n = item.size();
      if (n < 2 || !IsWord(item, n - 2, "as")) return false;
      auto it = std::find_if(std::begin(kListColumns), std::end(kListColumns),
                             [&](const auto& c) { return item[n - 1].text == c.first; });
      if (it == std::end(kListColumns)) return false;
      out.push_back(it->second);
    }
    std::vector<Row> rows = TableRows(tables);
    for (Row& r : rows) r["psql_type"] = T("table"), r["psql_persistence"] = T("permanent");
    Build(std::move(rows), out, t, answer);
    return true;
  }
  // psql's \d readings: the footers' catalogs (none here), pg_attribute's columns, pg_class's
  // tables (found by a pattern, then read by OID).
  auto from = FromTables(t);
  if (ReadsAnEmptyCatalog(from)) {
    AnswerEmpty(sql, t, answer);
    return true;
  }
  if (Reads(from, "pg_attribute")) return AnswerOver(sql, t, ColumnRows(tables), SampleColumnRow(), answer);
  if (Reads(from, "pg_class")) return AnswerOver(sql, t, TableRows(tables), TableRow({}), answer);
  // psql's \dn: the one schema. \l: the one database.
  if (Reads(from, "pg_namespace")) {
    Row ns = {{"table_schema", T("public")}, {"oid", I(2200)}, {"pg_get_userbyid", T("mare")}, {"nspacl", Cell{}},
              {"obj_description", Cell{}}};
    return AnswerOver(sql, t, {ns}, ns, answer);
  }
  if (Reads(from, "pg_database")) {
    Row db = {{"datname", T("mare")}, {"oid", I(16383)}, {"pg_get_userbyid", T("mare")}, {"pg_encoding_to_char", T("UTF8")},
              {"datcollate", T("C")}, {"datctype", T("C")}, {"daticulocale", Cell{}}, {"datlocprovider", T("c")},
              {"datacl", Cell{}}, {"datistemplate", B(false)}, {"datallowconn", B(true)}};
    return AnswerOver(sql, t, {db}, db, answer);
  }
  return false;
}

}  // namespace mare::pgwire
