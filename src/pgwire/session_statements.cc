#include "pgwire/session_statements.h"

#include <cctype>

#include <fmt/format.h>

#include "pgwire/pg_types.h"
#include "pgwire/sql_tokens.h"

namespace mare::pgwire {
namespace {

// Builds an answer of one row of typed values.
class RowBuilder {
 public:
  explicit RowBuilder(SessionAnswer* a) : a_(a) { a_->returns_rows = true; }
  void Column(std::string name, int32_t oid, query::Value v) {
    a_->names.push_back(std::move(name));
    a_->oids.push_back(oid);
    query::ResultColumn c(v.type);
    c.Append(v);
    a_->columns.push_back(std::move(c));
    a_->rows = 1;
  }

 private:
  SessionAnswer* a_;
};

query::Value TextValue(std::string s) { return query::Value::Text(std::move(s)); }

constexpr std::pair<std::string_view, int32_t> kArrayOids[] = {
    {"bool", 1000}, {"name", 1003}, {"int8", 1016}, {"int2", 1005}, {"int4", 1007}, {"text", 1009}, {"oid", 1028},
    {"float4", 1021}, {"float8", 1022}, {"varchar", 1015}, {"timestamp", 1115}, {"timestamptz", 1185},
    {"interval", 1187}, {"numeric", 1231}, {"unknown", 0},
};

// SELECT of constants and session functions, without FROM: `SELECT 1`, `SELECT version()`.
// False if the statement is anything else (it is then mare's SQL, which wants a FROM).
bool AnswerConstantSelect(const std::vector<Token>& t, const SessionSettings& settings, SessionAnswer* answer,
                          PgError* error, bool* failed) {
  if (!IsWord(t, 0, "select") || t.size() < 2) return false;
  SessionAnswer out;
  RowBuilder row(&out);
  size_t i = 1;
  for (;;) {
    std::string name = "?column?";
    int32_t oid = oid::kText;
    query::Value value;
    if (i >= t.size()) return false;
    const Token& tok = t[i];
    if (tok.kind == Token::kNumber) {
      bool integral = tok.text.find_first_not_of("0123456789") == std::string::npos;
      if (integral && tok.text.size() <= 9) {
        oid = oid::kInt4;
        value = query::Value::Int(query::Type::kInteger, std::stoll(tok.text));
      } else if (integral && tok.text.size() <= 18) {
        oid = oid::kInt8;
        value = query::Value::Int(query::Type::kInteger, std::stoll(tok.text));
      } else {
        char* end = nullptr;
        double d = std::strtod(tok.text.c_str(), &end);
        if (end == nullptr || *end != '\0') return false;
        oid = oid::kFloat8;
        value = query::Value::Double(d);
      }
      ++i;
    } else if (tok.kind == Token::kString) {
      value = TextValue(tok.text);
      ++i;
    } else if (tok.kind == Token::kWord && (tok.text == "true" || tok.text == "false")) {
      name = "bool";
      oid = oid::kBool;
      value = query::Value::Int(query::Type::kBoolean, tok.text == "true");
      ++i;
    } else if (tok.kind == Token::kWord) {
      size_t f = i;
      if (IsWord(t, f, "pg_catalog") && IsPunct(t, f + 1, ".")) f += 2;
      if (f >= t.size() || t[f].kind != Token::kWord) return false;
      std::string fn = t[f].text;
      bool call = IsPunct(t, f + 1, "(");
      std::string arg;
      size_t after = f + 1;
      if (call) {
        if (IsPunct(t, f + 2, ")")) {
          after = f + 3;
        } else if (f + 3 < t.size() && t[f + 2].kind == Token::kString && IsPunct(t, f + 3, ")")) {
          arg = t[f + 2].text;
          after = f + 4;
        } else if (f + 5 < t.size() && t[f + 2].kind == Token::kString && IsPunct(t, f + 3, ",") && IsPunct(t, f + 5, ")")) {
          arg = t[f + 2].text;  // current_setting(name, missing_ok)
          after = f + 6;
        } else {
          return false;
        }
      }
      name = fn;
      if (fn == "version" && call && arg.empty()) {
        value = TextValue(VersionText());
      } else if ((fn == "current_schema" || fn == "current_database" || fn == "current_catalog") ) {
        value = TextValue(fn == "current_schema" ? "public" : "mare");
        oid = oid::kName;
      } else if ((fn == "current_user" || fn == "session_user" || fn == "user") && !call) {
        std::string user;
        settings.Get("user", &user);
        value = TextValue(user);
        oid = oid::kName;
      } else if (fn == "current_setting" && call && !arg.empty()) {
        std::string v;
        if (!settings.Get(arg, &v)) {
          *error = {sqlstate::kUndefinedObject, fmt::format("unrecognized configuration parameter \"{}\"", arg), 0};
          *failed = true;
          return true;
        }
        value = TextValue(v);
      } else if (fn == "pg_backend_pid" && call && arg.empty()) {
        return false;
      } else {
        return false;
      }
      i = after;
    } else {
      return false;
    }
    if (IsWord(t, i, "as")) ++i;
    if (i < t.size() && t[i].kind == Token::kWord && !IsPunct(t, i, ",") && t[i].text != "from") {
      name = t[i].text;
      ++i;
    }
    row.Column(name, oid, std::move(value));
    if (i == t.size()) break;
    if (!IsPunct(t, i, ",")) return false;
    ++i;
  }
  out.tag = "SELECT 1";
  *answer = std::move(out);
  return true;
}

// The catalog lookups drivers make: psycopg's TypeInfo.fetch (pg_type by to_regtype, which
// SQLAlchemy runs on connect for hstore) and SQLAlchemy's has_table (pg_class by relname,
// which pandas.read_sql runs first with the statement's text).
bool AnswerCatalog(const std::vector<Token>& t, SessionAnswer* answer) {
  if (!IsWord(t, 0, "select")) return false;
  if (Mentions(t, "pg_type") && Mentions(t, "to_regtype")) {
    std::string type_name;
    for (size_t i = 0; i + 2 < t.size(); ++i) {
      if (IsWord(t, i, "to_regtype") && IsPunct(t, i + 1, "(") && t[i + 2].kind == Token::kString) type_name = Lower(t[i + 2].text);
    }
    SessionAnswer out;
    out.returns_rows = true;
    out.names = {"name", "oid", "array_oid", "regtype", "delimiter"};
    out.oids = {oid::kName, oid::kOid, oid::kOid, oid::kText, oid::kText};
    out.columns = {query::ResultColumn(query::Type::kText), query::ResultColumn(query::Type::kInteger),
                   query::ResultColumn(query::Type::kInteger), query::ResultColumn(query::Type::kText),
                   query::ResultColumn(query::Type::kText)};
    int32_t o = OidByName(type_name);
    if (o != 0) {
      std::string name(TypeName(o));
      int32_t array = 0;
      for (const auto& [n, a] : kArrayOids) {
        if (n == name) array = a;
      }
      out.columns[0].Append(TextValue(name));
      out.columns[1].Append(query::Value::Int(query::Type::kInteger, o));
      out.columns[2].Append(query::Value::Int(query::Type::kInteger, array));
      out.columns[3].Append(TextValue(name));
      out.columns[4].Append(TextValue(","));
      out.rows = 1;
    }
    out.tag = fmt::format("SELECT {}", out.rows);
    *answer = std::move(out);
    return true;
  }
  if (Mentions(t, "pg_class") && Mentions(t, "relname")) {
    SessionAnswer out;
    out.returns_rows = true;
    out.names = {"relname"};
    out.oids = {oid::kName};
    out.columns = {query::ResultColumn(query::Type::kText)};
    for (const Token& tok : t) {
      if (tok.kind == Token::kString && (tok.text == "readings" || tok.text == "forecasts")) {
        out.columns[0].Append(TextValue(tok.text));
        out.rows = 1;
        break;
      }
    }
    out.tag = fmt::format("SELECT {}", out.rows);
    *answer = std::move(out);
    return true;
  }
  return false;
}

// The raw text of a SET's value: one or more items, quotes removed from a lone string.
std::string SetValue(std::string_view sql, const std::vector<Token>& t, size_t from) {
  if (from + 1 == t.size() && (t[from].kind == Token::kString || t[from].kind == Token::kWord)) return t[from].text;
  if (from >= t.size()) return "";
  std::string_view raw = sql.substr(t[from].begin, t.back().end - t[from].begin);
  return std::string(raw);
}

}  // namespace

std::string VersionText() { return "PostgreSQL 14.0 (mare, the PostgreSQL wire protocol over mare's SQL)"; }

SessionSettings::SessionSettings() {
  const std::pair<const char*, const char*> defaults[] = {
      {"server_version", "14.0"},
      {"server_version_num", "140000"},
      {"server_encoding", "UTF8"},
      {"client_encoding", "UTF8"},
      {"DateStyle", "ISO, MDY"},
      {"TimeZone", "UTC"},
      {"integer_datetimes", "on"},
      {"standard_conforming_strings", "on"},
      {"IntervalStyle", "postgres"},
      {"is_superuser", "off"},
      {"session_authorization", ""},
      {"application_name", ""},
      {"transaction_isolation", "read committed"},
      {"default_transaction_isolation", "read committed"},
      {"transaction_read_only", "on"},
      {"default_transaction_read_only", "on"},
      {"search_path", "public"},
      {"extra_float_digits", "1"},
      {"max_identifier_length", "63"},
      {"lc_collate", "C"},
      {"lc_ctype", "C"},
      {"lc_messages", "C"},
      {"lc_monetary", "C"},
      {"lc_numeric", "C"},
      {"lc_time", "C"},
      {"bytea_output", "hex"},
      {"statement_timeout", "0"},
      {"user", ""},
      {"database", "mare"},
  };
  for (const auto& [name, value] : defaults) entries_[Lower(name)] = {name, value, value};
}

bool SessionSettings::Get(std::string_view name, std::string* value, std::string* display_name) const {
  auto it = entries_.find(Lower(name));
  if (it == entries_.end()) return false;
  *value = it->second.value;
  if (display_name != nullptr) *display_name = it->second.display_name;
  return true;
}

bool SessionSettings::Set(std::string_view name, std::string value, PgError* error) {
  std::string key = Lower(name);
  std::string v = Lower(value);
  if (key == "client_encoding" && v != "utf8" && v != "utf-8" && v != "unicode") {
    *error = {sqlstate::kInvalidParameterValue,
              fmt::format("client_encoding \"{}\" is not supported: mare speaks UTF8 only", value), 0};
    return false;
  }
  if (key == "client_encoding") value = "UTF8";
  if (key == "datestyle" && v.find("iso") == std::string::npos) {
    *error = {sqlstate::kInvalidParameterValue, fmt::format("DateStyle \"{}\" is not supported: mare writes ISO dates", value), 0};
    return false;
  }
  if (key == "datestyle" && v.find(',') == std::string::npos) value = "ISO, MDY";
  if (key == "timezone") {
    std::string shown;
    auto zone = SessionZone::Parse(value, &shown);
    if (!zone.ok()) {
      *error = {sqlstate::kInvalidParameterValue, zone.status().message(), 0};
      return false;
    }
    zone_ = *zone;
    value = shown;
  }
  if (key == "server_version" || key == "server_encoding" || key == "integer_datetimes" || key == "server_version_num") {
    *error = {"55P02", fmt::format("parameter \"{}\" cannot be changed", name), 0};
    return false;
  }
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    entries_[key] = {std::string(name), value, ""};
  } else {
    it->second.value = std::move(value);
  }
  return true;
}

void SessionSettings::Reset(std::string_view name) {
  if (Lower(name) == "timezone") zone_ = SessionZone();
  auto it = entries_.find(Lower(name));
  if (it != entries_.end()) it->second.value = it->second.default_value;
}

bool SessionSettings::IsReported(std::string_view name) {
  std::string n = Lower(name);
  for (const char* r : {"server_version", "server_encoding", "client_encoding", "application_name", "datestyle", "timezone",
                        "integer_datetimes", "standard_conforming_strings", "intervalstyle", "is_superuser",
                        "session_authorization", "default_transaction_read_only"}) {
    if (n == r) return true;
  }
  return false;
}

std::vector<std::pair<std::string, std::string>> SessionSettings::Reported() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, e] : entries_) {
    if (IsReported(key)) out.emplace_back(e.display_name, e.value);
  }
  return out;
}

SessionOutcome AnswerSessionStatement(std::string_view sql, SessionSettings* settings, SessionAnswer* answer,
                                      PgError* error) {
  std::vector<Token> t;
  if (!Tokenize(sql, &t) || t.empty() || t[0].kind != Token::kWord) return SessionOutcome::kNotSession;
  const std::string& first = t[0].text;
  SessionAnswer out;
  if (first == "begin" || (first == "start" && IsWord(t, 1, "transaction"))) {
    out.tag = "BEGIN";
    out.transaction = SessionAnswer::Transaction::kBegin;
  } else if (first == "rollback" && IsWord(t, 1, "to")) {
    // ROLLBACK TO SAVEPOINT: nothing was written, so only the failed state goes.
    out.tag = "ROLLBACK";
    out.transaction = SessionAnswer::Transaction::kRecover;
  } else if (first == "savepoint" || first == "release") {
    out.tag = first == "savepoint" ? "SAVEPOINT" : "RELEASE";
  } else if (first == "commit" || first == "end" || first == "rollback" || first == "abort") {
    if (IsWord(t, 1, "prepared")) return SessionOutcome::kNotSession;
    out.tag = first == "commit" || first == "end" ? "COMMIT" : "ROLLBACK";
    out.transaction = SessionAnswer::Transaction::kEnd;
  } else if (first == "discard" || first == "deallocate" || first == "unlisten") {
    out.tag = Lower(first == "discard" ? "DISCARD ALL" : first == "deallocate" ? "DEALLOCATE" : "UNLISTEN");
    for (char& c : out.tag) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  } else if (first == "set" || first == "reset") {
    size_t i = 1;
    if (IsWord(t, i, "session") || IsWord(t, i, "local")) {
      if (IsWord(t, i, "session") && (IsWord(t, i + 1, "characteristics") || IsWord(t, i + 1, "authorization"))) {
        out.tag = "SET";
        *answer = std::move(out);
        return SessionOutcome::kAnswered;
      }
      ++i;
    }
    if (IsWord(t, i, "transaction")) {  // SET TRANSACTION READ ONLY, ISOLATION LEVEL ...: read-only anyway
      out.tag = "SET";
      *answer = std::move(out);
      return SessionOutcome::kAnswered;
    }
    std::string name;
    size_t value_at;
    if (IsWord(t, i, "time") && IsWord(t, i + 1, "zone")) {
      name = "TimeZone";
      value_at = i + 2;
    } else if (IsWord(t, i, "names")) {
      name = "client_encoding";
      value_at = i + 1;
    } else if (i < t.size() && t[i].kind == Token::kWord) {
      name = t[i].text;
      value_at = i + 1;
      while (IsPunct(t, value_at, ".") && value_at + 1 < t.size()) {  // a placeholder such as myapp.setting
        name += "." + t[value_at + 1].text;
        value_at += 2;
      }
      if (first == "set") {
        if (!(IsWord(t, value_at, "to") || IsPunct(t, value_at, "="))) return SessionOutcome::kNotSession;
        ++value_at;
      }
    } else {
      return SessionOutcome::kNotSession;
    }
    std::string display;
    std::string old;
    settings->Get(name, &old, &display);
    if (first == "reset" || IsWord(t, value_at, "default") || IsWord(t, value_at, "local")) {
      if (name == "all") return SessionOutcome::kNotSession;
      settings->Reset(name);
    } else {
      if (value_at >= t.size()) return SessionOutcome::kNotSession;
      if (!settings->Set(name, SetValue(sql, t, value_at), error)) return SessionOutcome::kFailed;
    }
    std::string now;
    settings->Get(name, &now, &display);
    if (SessionSettings::IsReported(name)) out.changed.emplace_back(display, now);
    out.tag = first == "set" ? "SET" : "RESET";
  } else if (first == "show") {
    std::string name;
    for (size_t i = 1; i < t.size(); ++i) name += (i > 1 ? " " : "") + t[i].text;
    if (name == "transaction isolation level") name = "transaction_isolation";
    std::string value, display;
    if (name == "all" || !settings->Get(name, &value, &display)) {
      *error = {sqlstate::kUndefinedObject, fmt::format("unrecognized configuration parameter \"{}\"", name), 0};
      return SessionOutcome::kFailed;
    }
    RowBuilder row(&out);
    row.Column(display, oid::kText, TextValue(value));
    out.tag = "SHOW";
  } else if (first == "select") {
    bool failed = false;
    if (AnswerConstantSelect(t, *settings, &out, error, &failed)) {
      if (failed) return SessionOutcome::kFailed;
    } else if (!AnswerCatalog(t, &out)) {
      return SessionOutcome::kNotSession;
    }
  } else {
    return SessionOutcome::kNotSession;
  }
  *answer = std::move(out);
  return SessionOutcome::kAnswered;
}

}  // namespace mare::pgwire
