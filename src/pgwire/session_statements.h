// The statements a driver sends that are not a query of the readings: transaction control
// (BEGIN, COMMIT, ROLLBACK, savepoints: accepted, mare is read-only here), SET and RESET (remembered per
// connection), SHOW, the constant SELECTs of a connection's first moments (`SELECT 1`,
// version(), current_schema(), current_setting(...)), and the catalog lookups drivers rely on
// (pg_type by to_regtype, pg_class by name). Each is answered for real from the session's
// settings and mare's own types and table; anything else is left to mare's SQL.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pgwire/pg_error.h"
#include "pgwire/session_zone.h"
#include "query/result.h"

namespace mare::pgwire {

// A connection's settings: what the startup packet and SET gave, over the server's defaults.
class SessionSettings {
 public:
  SessionSettings();
  // Case-insensitive. False for a name the server does not know.
  bool Get(std::string_view name, std::string* value, std::string* display_name = nullptr) const;
  // Checks values the server cannot honour (an encoding other than UTF8, a DateStyle other
  // than ISO, a TimeZone the tz database does not have: 22023); unknown names are kept, as
  // PostgreSQL keeps placeholder settings.
  bool Set(std::string_view name, std::string value, PgError* error);
  void Reset(std::string_view name);
  // The settings reported to the client (ParameterStatus) at startup and when one changes.
  static bool IsReported(std::string_view name);
  std::vector<std::pair<std::string, std::string>> Reported() const;
  // TimeZone, as timestamptz text is written in it.
  const SessionZone& zone() const { return zone_; }

 private:
  struct Entry {
    std::string display_name;
    std::string value;
    std::string default_value;
  };
  std::map<std::string, Entry> entries_;  // by lower-cased name
  SessionZone zone_;
};

// A statement's answer made here: rows of typed columns (or none), and its command tag.
struct SessionAnswer {
  std::string tag;  // "SET", "SHOW", "BEGIN", "SELECT 1", ...
  bool returns_rows = false;
  std::vector<std::string> names;
  std::vector<int32_t> oids;
  std::vector<query::ResultColumn> columns;
  size_t rows = 0;
  // Settings changed by a SET or RESET, to report with ParameterStatus.
  std::vector<std::pair<std::string, std::string>> changed;
  enum class Transaction { kNone, kBegin, kEnd, kRecover } transaction = Transaction::kNone;
};

enum class SessionOutcome { kNotSession, kAnswered, kFailed };

// Answers sql (one statement, parameters already bound) if it is one of the above.
SessionOutcome AnswerSessionStatement(std::string_view sql, SessionSettings* settings, SessionAnswer* answer,
                                      PgError* error);

// "PostgreSQL 14.0 (mare ...)": what version() answers and server_version says.
std::string VersionText();

}  // namespace mare::pgwire
