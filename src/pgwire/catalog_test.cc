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
          {"forecasts", 16385, {{"issued_at", oid::kTimestamptz}, {"mean", oid::kFloat8}}, 0}};
}

std::vector<std::string> Column(const SessionAnswer& a, size_t c) {
  std::vector<std::string> out;
  for (size_t r = 0; r < a.rows; ++r) {
    std::string text = "NULL";
    if (a.columns[c].IsValid(r)) {
      text.clear();
      AppendValue(a.columns[c], r, a.oids[c], /*binary=*/false, &text);  // as a client reads it
    }
    out.push_back(text);
  }
  return out;
}

TEST(Catalog, SizesArePrettyAsPostgreSqlWritesThem) {
  EXPECT_EQ(PrettySize(0), "0 bytes");
  EXPECT_EQ(PrettySize(10239), "10239 bytes");
  EXPECT_EQ(PrettySize(10240), "10 kB");
  EXPECT_EQ(PrettySize(1536 * 1024 - 1), "1536 kB");
  EXPECT_EQ(PrettySize(20 * 1024 * 1024), "20 MB");
  EXPECT_EQ(PrettySize(int64_t{15} * 1024 * 1024 * 1024), "15 GB");
  EXPECT_EQ(PrettySize(int64_t{30} * 1024 * 1024 * 1024 * 1024), "30 TB");
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
  // Numbers past size_t in LIMIT and ORDER BY: no limit, no such position (not an exception).
  ASSERT_TRUE(AnswerCatalogQuery("SELECT table_name FROM information_schema.tables ORDER BY 99999999999999999999999 "
                                 "LIMIT 99999999999999999999999",
                                 Tables(), &a));
  EXPECT_EQ(a.rows, 2u);
  // A column that information_schema does not have here: left to mare's SQL (42P01 there).
  EXPECT_FALSE(AnswerCatalogQuery("SELECT character_set_name FROM information_schema.columns", Tables(), &a));
  EXPECT_FALSE(IsCatalogQuery("SELECT ts FROM readings"));
}

// psql 15's \d readings, as `psql -E` shows it sends them: the table by pattern, its flags by
// OID, its columns, then the footers' catalogs of things mare has none of.
TEST(Catalog, PsqlDescribesATable) {
  SessionAnswer a;
  const std::string find =
      "SELECT c.oid,\n  n.nspname,\n  c.relname\nFROM pg_catalog.pg_class c\n     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = "
      "c.relnamespace\nWHERE c.relname OPERATOR(pg_catalog.~) '^(readings)$' COLLATE pg_catalog.default\n  AND "
      "pg_catalog.pg_table_is_visible(c.oid)\nORDER BY 2, 3;";
  ASSERT_TRUE(IsCatalogQuery(find));
  ASSERT_TRUE(AnswerCatalogQuery(find, Tables(), &a));
  EXPECT_EQ(a.rows, 1u);
  EXPECT_EQ(Column(a, 0), (std::vector<std::string>{"16384"}));
  EXPECT_EQ(Column(a, 2), (std::vector<std::string>{"readings"}));
  ASSERT_TRUE(AnswerCatalogQuery("SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n "
                                 "ON n.oid = c.relnamespace WHERE c.relname OPERATOR(pg_catalog.~) '^(.*s)$' COLLATE "
                                 "pg_catalog.default ORDER BY 2, 3",
                                 Tables(), &a));
  EXPECT_EQ(Column(a, 2), (std::vector<std::string>{"forecasts", "readings"}));
  ASSERT_TRUE(AnswerCatalogQuery("SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n "
                                 "ON n.oid = c.relnamespace WHERE c.relname OPERATOR(pg_catalog.~) '^(buoys)$' COLLATE "
                                 "pg_catalog.default ORDER BY 2, 3",
                                 Tables(), &a));
  EXPECT_EQ(a.rows, 0u);

  const std::string flags =
      "SELECT c.relchecks, c.relkind, c.relhasindex, c.relhasrules, c.relhastriggers, c.relrowsecurity, c.relforcerowsecurity, "
      "false AS relhasoids, c.relispartition, '', c.reltablespace, CASE WHEN c.reloftype = 0 THEN '' ELSE "
      "c.reloftype::pg_catalog.regtype::pg_catalog.text END, c.relpersistence, c.relreplident, am.amname\nFROM "
      "pg_catalog.pg_class c\n LEFT JOIN pg_catalog.pg_class tc ON (c.reltoastrelid = tc.oid)\nLEFT JOIN pg_catalog.pg_am am ON "
      "(c.relam = am.oid)\nWHERE c.oid = '16385';";
  ASSERT_TRUE(IsCatalogQuery(flags));
  ASSERT_TRUE(AnswerCatalogQuery(flags, Tables(), &a));
  ASSERT_EQ(a.rows, 1u);
  std::vector<std::string> row;
  for (size_t c = 0; c < a.columns.size(); ++c) row.push_back(Column(a, c)[0]);
  EXPECT_EQ(row, (std::vector<std::string>{"0", "r", "f", "f", "f", "f", "f", "f", "f", "", "0", "", "p", "d", "mare"}));

  const std::string columns =
      "SELECT a.attname,\n  pg_catalog.format_type(a.atttypid, a.atttypmod),\n  (SELECT pg_catalog.pg_get_expr(d.adbin, "
      "d.adrelid, true)\n   FROM pg_catalog.pg_attrdef d\n   WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND "
      "a.atthasdef),\n  a.attnotnull,\n  (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t\n   WHERE "
      "c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation,\n  a.attidentity,\n  "
      "a.attgenerated\nFROM pg_catalog.pg_attribute a\nWHERE a.attrelid = '16384' AND a.attnum > 0 AND NOT a.attisdropped\nORDER "
      "BY a.attnum;";
  ASSERT_TRUE(IsCatalogQuery(columns));
  ASSERT_TRUE(AnswerCatalogQuery(columns, Tables(), &a));
  EXPECT_EQ(a.columns.size(), 7u);
  EXPECT_EQ(Column(a, 0), (std::vector<std::string>{"ts", "sensor_id", "temperature", "station"}));
  EXPECT_EQ(Column(a, 1), (std::vector<std::string>{"timestamp with time zone", "bigint", "double precision", "text"}));
  EXPECT_EQ(Column(a, 2), (std::vector<std::string>(4, "NULL")));
  EXPECT_EQ(Column(a, 3), (std::vector<std::string>(4, "f")));
  EXPECT_EQ(Column(a, 4), (std::vector<std::string>(4, "NULL")));
  EXPECT_EQ(Column(a, 5), (std::vector<std::string>(4, "")));

  // The footers: row security policies, extended statistics, publications, inheritance.
  const std::string policies =
      "SELECT pol.polname, pol.polpermissive,\n  CASE WHEN pol.polroles = '{0}' THEN NULL ELSE "
      "pg_catalog.array_to_string(array(select rolname from pg_catalog.pg_roles where oid = any (pol.polroles) order by 1),',') "
      "END,\n  pg_catalog.pg_get_expr(pol.polqual, pol.polrelid),\n  pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid),\n  "
      "CASE pol.polcmd\n    WHEN 'r' THEN 'SELECT'\n    END AS cmd\nFROM pg_catalog.pg_policy pol\nWHERE pol.polrelid = "
      "'16384' ORDER BY 1;";
  ASSERT_TRUE(IsCatalogQuery(policies));
  ASSERT_TRUE(AnswerCatalogQuery(policies, Tables(), &a));
  EXPECT_EQ(a.rows, 0u);
  EXPECT_EQ(a.columns.size(), 6u);
  const std::string inherits =
      "SELECT c.oid::pg_catalog.regclass\nFROM pg_catalog.pg_class c, pg_catalog.pg_inherits i\nWHERE c.oid = i.inhparent AND "
      "i.inhrelid = '16384'\n  AND c.relkind != 'p' AND c.relkind != 't'\nORDER BY inhseqno;";
  ASSERT_TRUE(AnswerCatalogQuery(inherits, Tables(), &a));
  EXPECT_EQ(a.rows, 0u);
  // A catalog of things mare has none of, only LEFT JOINed: the rows stay.
  ASSERT_TRUE(AnswerCatalogQuery("SELECT a.attname FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_attrdef d ON "
                                 "d.adrelid = a.attrelid WHERE a.attrelid = '16385' ORDER BY a.attnum",
                                 Tables(), &a));
  EXPECT_EQ(Column(a, 0), (std::vector<std::string>{"issued_at", "mean"}));
  // Every prefix of psql's statements (a client may send anything): answered or not, no crash.
  for (const std::string* sql : {&find, &flags, &columns, &policies, &inherits}) {
    for (size_t n = 0; n <= sql->size(); ++n) {
      std::string prefix = sql->substr(0, n);
      if (IsCatalogQuery(prefix)) AnswerCatalogQuery(prefix, Tables(), &a);
    }
  }
  // A column of pg_class not known here: not answered (mare's SQL then refuses it).
  EXPECT_FALSE(AnswerCatalogQuery("SELECT c.relfrozenxid FROM pg_catalog.pg_class c", Tables(), &a));
  // SQLAlchemy's has_table, with its three-part names: only the table named.
  ASSERT_TRUE(AnswerCatalogQuery(
      "SELECT pg_catalog.pg_class.relname FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = "
      "pg_catalog.pg_class.relnamespace WHERE pg_catalog.pg_class.relname = 'SELECT ts FROM readings'::VARCHAR AND "
      "pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm']) AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid) "
      "AND pg_catalog.pg_namespace.nspname != 'pg_catalog'::VARCHAR",
      Tables(), &a));
  EXPECT_EQ(a.rows, 0u);
}

// psql 15's \dt+, \dn and \l: the verbose table list, the one schema, the one database, with
// the output names psql prints as headers.
TEST(Catalog, PsqlListsWithDetailsSchemasAndDatabases) {
  SessionAnswer a;
  ASSERT_TRUE(AnswerCatalogQuery(
      "SELECT n.nspname as \"Schema\",\n  c.relname as \"Name\",\n  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' END "
      "as \"Type\",\n  pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\",\n  CASE c.relpersistence WHEN 'p' THEN 'permanent' "
      "END as \"Persistence\",\n  am.amname as \"Access method\",\n  pg_catalog.pg_size_pretty(pg_catalog.pg_table_size(c.oid)) as "
      "\"Size\",\n  pg_catalog.obj_description(c.oid, 'pg_class') as \"Description\"\nFROM pg_catalog.pg_class c\n     LEFT JOIN "
      "pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam\nWHERE "
      "c.relkind IN ('r','p','')\n      AND n.nspname <> 'pg_catalog'\n  AND c.relname OPERATOR(pg_catalog.~) '^(readings)$' "
      "COLLATE pg_catalog.default\n  AND pg_catalog.pg_table_is_visible(c.oid)\nORDER BY 1,2;",
      Tables(), &a));
  EXPECT_EQ(a.names, (std::vector<std::string>{"Schema", "Name", "Type", "Owner", "Persistence", "Access method", "Size",
                                               "Description"}));
  ASSERT_EQ(a.rows, 1u);
  std::vector<std::string> row;
  for (size_t c = 0; c < a.columns.size(); ++c) row.push_back(Column(a, c)[0]);
  // Size: unknown for readings here (-1), so NULL; the forecasts' 0 bytes below.
  EXPECT_EQ(row, (std::vector<std::string>{"public", "readings", "table", "mare", "permanent", "mare", "NULL", "NULL"}));
  std::vector<CatalogTable> sized = Tables();
  sized[0].disk_bytes = 25 * 1024 * 1024 + 300 * 1024;
  ASSERT_TRUE(AnswerCatalogQuery("SELECT c.relname as \"Name\", pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\", "
                                 "pg_catalog.pg_size_pretty(pg_catalog.pg_table_size(c.oid)) as \"Size\" FROM "
                                 "pg_catalog.pg_class c WHERE c.relkind IN ('r','p','') ORDER BY 1",
                                 sized, &a));
  EXPECT_EQ(Column(a, 2), (std::vector<std::string>{"0 bytes", "25 MB"}));

  ASSERT_TRUE(IsCatalogQuery("SELECT n.nspname AS \"Name\", pg_catalog.pg_get_userbyid(n.nspowner) AS \"Owner\" FROM pg_catalog.pg_namespace n"));
  ASSERT_TRUE(AnswerCatalogQuery("SELECT n.nspname AS \"Name\",\n  pg_catalog.pg_get_userbyid(n.nspowner) AS \"Owner\"\nFROM "
                                 "pg_catalog.pg_namespace n\nWHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'\nORDER BY 1;",
                                 Tables(), &a));
  EXPECT_EQ(a.names, (std::vector<std::string>{"Name", "Owner"}));
  EXPECT_EQ(Column(a, 0), (std::vector<std::string>{"public"}));
  EXPECT_EQ(Column(a, 1), (std::vector<std::string>{"mare"}));

  const std::string databases =
      "SELECT d.datname as \"Name\",\n       pg_catalog.pg_get_userbyid(d.datdba) as \"Owner\",\n       "
      "pg_catalog.pg_encoding_to_char(d.encoding) as \"Encoding\",\n       d.datcollate as \"Collate\",\n       d.datctype as "
      "\"Ctype\",\n       NULL as \"ICU Locale\",\n       'libc' AS \"Locale Provider\",\n       "
      "pg_catalog.array_to_string(d.datacl, E'\\n') AS \"Access privileges\"\nFROM pg_catalog.pg_database d\nORDER BY 1;";
  ASSERT_TRUE(IsCatalogQuery(databases));
  ASSERT_TRUE(AnswerCatalogQuery(databases, Tables(), &a));
  ASSERT_EQ(a.rows, 1u);
  row.clear();
  for (size_t c = 0; c < a.columns.size(); ++c) row.push_back(Column(a, c)[0]);
  EXPECT_EQ(row, (std::vector<std::string>{"mare", "mare", "UTF8", "C", "C", "NULL", "libc", "NULL"}));
  EXPECT_EQ(a.names[5], "ICU Locale");
}

}  // namespace
}  // namespace mare::pgwire
