// The statements drivers send on connect, answered from the session's settings and mare's own
// types and table, and everything else left to mare's SQL.
#include <gtest/gtest.h>

#include "pgwire/pg_types.h"
#include "pgwire/session_statements.h"

namespace mare::pgwire {
namespace {

SessionOutcome Answer(std::string_view sql, SessionSettings* s, SessionAnswer* a, PgError* e) {
  *a = SessionAnswer();
  return AnswerSessionStatement(sql, s, a, e);
}

TEST(PgwireSession, SetIsRememberedAndShownAndReported) {
  SessionSettings s;
  SessionAnswer a;
  PgError e;
  ASSERT_EQ(Answer("SET application_name = 'notebook';", &s, &a, &e), SessionOutcome::kAnswered);
  EXPECT_EQ(a.tag, "SET");
  ASSERT_EQ(a.changed.size(), 1u);
  EXPECT_EQ(a.changed[0], std::make_pair(std::string("application_name"), std::string("notebook")));
  ASSERT_EQ(Answer("show APPLICATION_NAME", &s, &a, &e), SessionOutcome::kAnswered);
  ASSERT_TRUE(a.returns_rows);
  EXPECT_EQ(a.columns[0].Text(0), "notebook");
  ASSERT_EQ(Answer("SHOW transaction isolation level", &s, &a, &e), SessionOutcome::kAnswered);
  EXPECT_EQ(a.names[0], "transaction_isolation");
  EXPECT_EQ(a.columns[0].Text(0), "read committed");
  ASSERT_EQ(Answer("SET TIME ZONE 'UTC'", &s, &a, &e), SessionOutcome::kAnswered);
  ASSERT_EQ(Answer("RESET application_name", &s, &a, &e), SessionOutcome::kAnswered);
  std::string v;
  ASSERT_TRUE(s.Get("application_name", &v));
  EXPECT_EQ(v, "");
  EXPECT_EQ(Answer("SHOW no_such_thing", &s, &a, &e), SessionOutcome::kFailed);
  EXPECT_EQ(e.sqlstate, "42704");
  EXPECT_EQ(Answer("SET client_encoding = 'LATIN1'", &s, &a, &e), SessionOutcome::kFailed);
  EXPECT_EQ(e.sqlstate, "22023");
  // TimeZone: checked against the tz database, reported in its spelling, applied to the zone.
  EXPECT_EQ(Answer("SET TIME ZONE 'Mars/Olympus'", &s, &a, &e), SessionOutcome::kFailed);
  EXPECT_EQ(e.sqlstate, "22023");
  ASSERT_EQ(Answer("SET timezone TO 'america/new_york'", &s, &a, &e), SessionOutcome::kAnswered);
  ASSERT_EQ(a.changed.size(), 1u);
  EXPECT_EQ(a.changed[0], std::make_pair(std::string("TimeZone"), std::string("America/New_York")));
  EXPECT_EQ(s.zone().OffsetSeconds(1704067200'000000), -5 * 3600);
  ASSERT_EQ(Answer("SET TIME ZONE -7", &s, &a, &e), SessionOutcome::kAnswered);
  EXPECT_EQ(s.zone().OffsetSeconds(1704067200'000000), -7 * 3600);
  ASSERT_EQ(Answer("SET TIME ZONE LOCAL", &s, &a, &e), SessionOutcome::kAnswered);
  EXPECT_TRUE(s.zone().is_utc());
  ASSERT_TRUE(s.Get("timezone", &v));
  EXPECT_EQ(v, "UTC");
}

TEST(PgwireSession, TransactionControlIsAccepted) {
  SessionSettings s;
  SessionAnswer a;
  PgError e;
  ASSERT_EQ(Answer("begin", &s, &a, &e), SessionOutcome::kAnswered);
  EXPECT_EQ(a.transaction, SessionAnswer::Transaction::kBegin);
  ASSERT_EQ(Answer("SAVEPOINT \"_pg3_1\"", &s, &a, &e), SessionOutcome::kAnswered);
  ASSERT_EQ(Answer("ROLLBACK TO SAVEPOINT \"_pg3_1\"", &s, &a, &e), SessionOutcome::kAnswered);
  EXPECT_EQ(a.transaction, SessionAnswer::Transaction::kRecover);
  ASSERT_EQ(Answer("COMMIT", &s, &a, &e), SessionOutcome::kAnswered);
  EXPECT_EQ(a.transaction, SessionAnswer::Transaction::kEnd);
}

TEST(PgwireSession, ConstantSelectsWithoutFrom) {
  SessionSettings s;
  SessionAnswer a;
  PgError e;
  ASSERT_EQ(Answer("SELECT 1", &s, &a, &e), SessionOutcome::kAnswered);
  EXPECT_EQ(a.oids[0], oid::kInt4);
  EXPECT_EQ(a.columns[0].Int(0), 1);
  ASSERT_EQ(Answer("select pg_catalog.version()", &s, &a, &e), SessionOutcome::kAnswered);
  EXPECT_EQ(a.names[0], "version");
  EXPECT_EQ(a.columns[0].Text(0).substr(0, 16), "PostgreSQL 14.0 ");
  ASSERT_EQ(Answer("select current_schema(), current_setting('DateStyle') AS ds", &s, &a, &e), SessionOutcome::kAnswered);
  EXPECT_EQ(a.columns[0].Text(0), "public");
  EXPECT_EQ(a.names[1], "ds");
  EXPECT_EQ(a.columns[1].Text(0), "ISO, MDY");
  // With a FROM, or anything else: mare's SQL.
  EXPECT_EQ(Answer("SELECT 1 FROM readings", &s, &a, &e), SessionOutcome::kNotSession);
  EXPECT_EQ(Answer("SELECT max(temperature) FROM readings", &s, &a, &e), SessionOutcome::kNotSession);
  EXPECT_EQ(Answer("SELECT now()", &s, &a, &e), SessionOutcome::kNotSession);
}

TEST(PgwireSession, CatalogLookupsDriversRelyOn) {
  SessionSettings s;
  SessionAnswer a;
  PgError e;
  const char* type_info =
      "SELECT typname AS name, oid, typarray AS array_oid, oid::regtype::text AS regtype, typdelim AS delimiter "
      "FROM pg_type t WHERE t.oid = to_regtype( 'timestamptz' ) ORDER BY t.oid";
  ASSERT_EQ(Answer(type_info, &s, &a, &e), SessionOutcome::kAnswered);
  ASSERT_EQ(a.rows, 1u);
  EXPECT_EQ(a.columns[1].Int(0), oid::kTimestamptz);
  EXPECT_EQ(a.columns[2].Int(0), 1185);
  ASSERT_EQ(Answer("SELECT typname FROM pg_type t WHERE t.oid = to_regtype('hstore')", &s, &a, &e), SessionOutcome::kAnswered);
  EXPECT_EQ(a.rows, 0u);
  ASSERT_EQ(Answer("SELECT pg_catalog.pg_class.relname FROM pg_catalog.pg_class WHERE pg_class.relname = 'readings'", &s, &a, &e),
            SessionOutcome::kAnswered);
  EXPECT_EQ(a.rows, 1u);
  ASSERT_EQ(Answer("SELECT pg_catalog.pg_class.relname FROM pg_catalog.pg_class WHERE pg_class.relname = 'forecasts'", &s, &a, &e),
            SessionOutcome::kAnswered);
  ASSERT_EQ(a.rows, 1u);
  EXPECT_EQ(a.columns[0].Get(0).s, "forecasts");
  ASSERT_EQ(Answer("SELECT pg_catalog.pg_class.relname FROM pg_catalog.pg_class WHERE pg_class.relname = 'SELECT 1'", &s, &a, &e),
            SessionOutcome::kAnswered);
  EXPECT_EQ(a.rows, 0u);
}

}  // namespace
}  // namespace mare::pgwire
