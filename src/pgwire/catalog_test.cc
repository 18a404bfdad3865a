// The catalog queries tools send, as they send them (JDBC 42.7's getTables, psql 15's \dt,
// Grafana's information_schema), answered from given tables: filters, ORDER BY, and the
// conditions not understood, which keep rows rather than drop them.
#include <gtest/gtest.h>

#include "pgwire/catalog.h"
#include "pgwire/pg_types.h"

namespace mare::pgwire {
namespace {

std::vector<CatalogTable> Tables() {
  return {{"readings", 16384, {{"ts", oid::kTimestamptz}, {"sensor_id", oid::kInt8}, {"temperature", oid::kFloat8}, {"station", oid::kText}}},
          {"forecasts", 16385, {{"issued_at", oid::kTimestamptz}, {"mean", oid::kFloat8}}}};
}

std::vector<std::string> Column(const SessionAnswer& a, size_t c) {
  std::vector<std::string> out;
  for (size_t r = 0; r < a.rows; ++r) out.push_back(a.columns[c].IsValid(r) ? std::string(a.columns[c].Text(r)) : "NULL");
  return out;
}

TEST(Catalog, JdbcGetTablesHonoursPatternsAndTypes) {
  const std::string head =
      "SELECT current_database() AS \"TABLE_CAT\", n.nspname AS \"TABLE_SCHEM\", c.relname AS \"TABLE_NAME\", "
      "'' AS \"TABLE_TYPE\" FROM pg_catalog.pg_namespace n, pg_catalog.pg_class c WHERE c.relnamespace = n.oid "
      "AND n.nspname LIKE 'public' AND c.relname LIKE ";
  const std::string order = " ORDER BY \"TABLE_TYPE\",\"TABLE_SCHEM\",\"TABLE_NAME\"";
  SessionAnswer a;
  ASSERT_TRUE(IsCatalogQuery(head + "'%'" + order));
  ASSERT_TRUE(AnswerCatalogQuery(head + "'%' AND (false OR ( c.relkind IN ('r','p') AND n.nspname !~ '^pg_' "
                                        "AND n.nspname <> 'information_schema' ) )" + order, Tables(), &a));
  EXPECT_EQ(Column(a, 2), (std::vector<std::string>{"forecasts", "readings"}));
  EXPECT_EQ(Column(a, 3), (std::vector<std::string>{"TABLE", "TABLE"}));
  ASSERT_TRUE(AnswerCatalogQuery(head + "'%' AND (false OR ( c.relkind = 'v' AND n.nspname !~ '^pg_' ) )" + order, Tables(), &a));
  EXPECT_EQ(a.rows, 0u);
  ASSERT_TRUE(AnswerCatalogQuery(head + "'r\\_a%'" + order, Tables(), &a));
  EXPECT_EQ(a.rows, 0u);
  ASSERT_TRUE(AnswerCatalogQuery(head + "'rea_ings'" + order, Tables(), &a));
  EXPECT_EQ(Column(a, 2), (std::vector<std::string>{"readings"}));
}

TEST(Catalog, PsqlListsTablesAndInformationSchemaColumns) {
  SessionAnswer a;
  ASSERT_TRUE(AnswerCatalogQuery(
      "SELECT n.nspname as \"Schema\", c.relname as \"Name\", CASE c.relkind WHEN 'r' THEN 'table' END as \"Type\", "
      "pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\" FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n "
      "ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p','') AND n.nspname <> 'pg_catalog' AND n.nspname !~ '^pg_toast' "
      "AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 1,2;",
      Tables(), &a));
  EXPECT_EQ(a.names, (std::vector<std::string>{"Schema", "Name", "Type", "Owner"}));
  EXPECT_EQ(Column(a, 1), (std::vector<std::string>{"forecasts", "readings"}));
  ASSERT_TRUE(AnswerCatalogQuery("SELECT quote_ident(column_name) AS \"column\", data_type AS \"type\" FROM "
                                 "information_schema.columns WHERE quote_ident(table_name) = 'readings' ORDER BY ordinal_position DESC",
                                 Tables(), &a));
  EXPECT_EQ(Column(a, 0), (std::vector<std::string>{"station", "temperature", "sensor_id", "ts"}));
  EXPECT_EQ(Column(a, 1), (std::vector<std::string>{"text", "double precision", "bigint", "timestamp with time zone"}));
  ASSERT_TRUE(AnswerCatalogQuery("SELECT table_name, column_name FROM information_schema.columns WHERE table_name IN "
                                 "('forecasts') OR column_name ~ '^temp' ORDER BY 1, 2 LIMIT 2",
                                 Tables(), &a));
  EXPECT_EQ(Column(a, 1), (std::vector<std::string>{"issued_at", "mean"}));
  // A column that information_schema does not have here: left to mare's SQL (42P01 there).
  EXPECT_FALSE(AnswerCatalogQuery("SELECT character_set_name FROM information_schema.columns", Tables(), &a));
  EXPECT_FALSE(IsCatalogQuery("SELECT ts FROM readings"));
}

}  // namespace
}  // namespace mare::pgwire
