// mare's SQL dialect, clause by clause (docs/sql.md, "Grammar"): what parses into which tree,
// and what is refused with which message at which line and column.
#include "query/parser.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include "common/time.h"
#include "query/literal.h"

namespace mare::query {
namespace {


SelectStatement MustParse(std::string_view sql) {
  SelectStatement stmt;
  SqlError error;
  EXPECT_TRUE(Parse(sql, &stmt, &error)) << sql << "\n" << error.ToString();
  return stmt;
}

// The error as the user sees it, or "parsed".
std::string ErrorOf(std::string_view sql) {
  SelectStatement stmt;
  SqlError error;
  if (Parse(sql, &stmt, &error)) return "parsed";
  return error.ToString();
}

// An expression tree written out with every operation parenthesized: "(a + (b * c))".
std::string Tree(const Expr& e) {
  auto arg = [&](size_t i) { return Tree(*e.args[i]); };
  switch (e.kind) {
    case ExprKind::kLiteral:
      switch (e.literal_type) {
        case LiteralType::kNull: return "NULL";
        case LiteralType::kBoolean: return e.integer ? "TRUE" : "FALSE";
        case LiteralType::kInteger: return std::to_string(e.integer);
        case LiteralType::kDouble: return fmt::format("{}", e.real);
        case LiteralType::kString: return "'" + e.text + "'";
        case LiteralType::kInterval: return fmt::format("INTERVAL({}us)", e.integer);
        case LiteralType::kTimestamp: return fmt::format("TIMESTAMP({})", FormatTimestamp(e.integer));
      }
      return "?";
    case ExprKind::kColumn: return e.name;
    case ExprKind::kStar: return "*";
    case ExprKind::kUnary: return "(" + e.op + " " + arg(0) + ")";
    case ExprKind::kBinary: return "(" + arg(0) + " " + e.op + " " + arg(1) + ")";
    case ExprKind::kFunction: {
      std::string out = e.name + "(";
      for (size_t i = 0; i < e.args.size(); ++i) out += (i ? ", " : "") + arg(i);
      return out + ")";
    }
    case ExprKind::kBetween:
      return "(" + arg(0) + (e.negated ? " NOT" : "") + " BETWEEN " + arg(1) + " AND " + arg(2) + ")";
    case ExprKind::kIn: {
      std::string out = "(" + arg(0) + (e.negated ? " NOT" : "") + " IN (";
      for (size_t i = 1; i < e.args.size(); ++i) out += (i > 1 ? ", " : "") + arg(i);
      return out + "))";
    }
    case ExprKind::kIsNull: return "(" + arg(0) + (e.negated ? " IS NOT NULL)" : " IS NULL)");
  }
  return "?";
}

// The tree of the one expression in `SELECT <expr> FROM readings`.
std::string TreeOf(std::string_view expr) {
  SelectStatement stmt = MustParse(fmt::format("SELECT {} FROM readings", expr));
  if (stmt.items.size() != 1 || !stmt.items[0].expr) return "(not one item)";
  return Tree(*stmt.items[0].expr);
}

// The error for `SELECT <expr> FROM readings`: the expression starts at column 8.
std::string ExprError(std::string_view expr) { return ErrorOf(fmt::format("SELECT {} FROM readings", expr)); }

int64_t IntervalOf(std::string_view literal) {
  SelectStatement stmt = MustParse(fmt::format("SELECT {} FROM readings", literal));
  const Expr& e = *stmt.items[0].expr;
  EXPECT_EQ(e.kind, ExprKind::kLiteral) << literal;
  EXPECT_EQ(e.literal_type, LiteralType::kInterval) << literal;
  return e.integer;
}

std::string TimestampOf(std::string_view literal) {
  SelectStatement stmt = MustParse(fmt::format("SELECT TIMESTAMP '{}' FROM readings", literal));
  const Expr& e = *stmt.items[0].expr;
  EXPECT_EQ(e.literal_type, LiteralType::kTimestamp) << literal;
  return FormatTimestamp(e.integer);
}

// --- The shape of a statement -----------------------------------------------------------------

TEST(Statement, TheSmallestIsSelectStarFromATable) {
  SelectStatement s = MustParse("SELECT * FROM readings");
  ASSERT_EQ(s.items.size(), 1u);
  EXPECT_EQ(s.items[0].expr->kind, ExprKind::kStar);
  EXPECT_EQ(s.table, "readings");
  EXPECT_EQ(s.table_pos.column, 15);
  EXPECT_EQ(s.where, nullptr);
  EXPECT_TRUE(s.latest_on.empty());
  EXPECT_TRUE(s.group_by.empty());
  EXPECT_EQ(s.having, nullptr);
  EXPECT_TRUE(s.order_by.empty());
  EXPECT_FALSE(s.limit.has_value());
  EXPECT_FALSE(s.offset.has_value());
}

TEST(Statement, EveryClauseInItsOrder) {
  SelectStatement s = MustParse(
      "SELECT sensor_id, max(temperature) AS hottest\n"
      "FROM Readings\n"
      "WHERE ts > now() - INTERVAL '1 day'\n"
      "GROUP BY sensor_id\n"
      "HAVING count(*) > 10\n"
      "ORDER BY hottest DESC, 1\n"
      "LIMIT 5 OFFSET 10;");
  ASSERT_EQ(s.items.size(), 2u);
  EXPECT_EQ(Tree(*s.items[0].expr), "sensor_id");
  EXPECT_EQ(Tree(*s.items[1].expr), "max(temperature)");
  EXPECT_EQ(s.items[1].alias, "hottest");
  EXPECT_EQ(s.table, "readings");
  EXPECT_EQ(s.table_pos.line, 2);
  EXPECT_EQ(s.table_pos.column, 6);
  EXPECT_EQ(Tree(*s.where), "(ts > (now() - INTERVAL(86400000000us)))");
  ASSERT_EQ(s.group_by.size(), 1u);
  EXPECT_EQ(Tree(*s.group_by[0]), "sensor_id");
  EXPECT_EQ(Tree(*s.having), "(count(*) > 10)");
  ASSERT_EQ(s.order_by.size(), 2u);
  EXPECT_EQ(Tree(*s.order_by[0].expr), "hottest");
  EXPECT_TRUE(s.order_by[0].descending);
  EXPECT_EQ(s.order_by[0].pos.line, 6);
  EXPECT_EQ(s.order_by[0].pos.column, 10);
  EXPECT_EQ(Tree(*s.order_by[1].expr), "1");
  EXPECT_FALSE(s.order_by[1].descending);
  EXPECT_EQ(s.limit, 5);
  EXPECT_EQ(s.offset, 10);
}

TEST(Statement, KeywordsAreCaseInsensitive) {
  SelectStatement s = MustParse("select ts from readings where ts is not null order by ts asc limit 1");
  EXPECT_EQ(Tree(*s.where), "(ts IS NOT NULL)");
  EXPECT_FALSE(s.order_by[0].descending);
  EXPECT_EQ(s.limit, 1);
}

TEST(Statement, LatestOnKeepsTheNewestRowOfEachPartition) {
  SelectStatement s = MustParse(
      "SELECT * FROM readings WHERE station = 'north' LATEST ON ts PARTITION BY sensor_id, field ORDER BY sensor_id");
  EXPECT_EQ(s.latest_on, "ts");
  EXPECT_EQ(s.latest_pos.column, 58);
  ASSERT_EQ(s.latest_partition_by.size(), 2u);
  EXPECT_EQ(Tree(*s.latest_partition_by[0]), "sensor_id");
  EXPECT_EQ(Tree(*s.latest_partition_by[1]), "field");
  EXPECT_EQ(ErrorOf("SELECT * FROM readings LATEST ON ts"),
            "line 1, column 36: unexpected end of input, expected PARTITION");
  EXPECT_EQ(ErrorOf("SELECT * FROM readings LATEST BY ts"), "line 1, column 31: expected ON, found \"BY\"");
}

TEST(Statement, HavingWorksWithoutGroupBy) {
  SelectStatement s = MustParse("SELECT count(*) FROM readings HAVING count(*) > 0");
  EXPECT_EQ(Tree(*s.having), "(count(*) > 0)");
}

TEST(Statement, LimitAndOffsetTakeNonNegativeIntegers) {
  EXPECT_EQ(MustParse("SELECT * FROM readings LIMIT 0").limit, 0);
  EXPECT_EQ(ErrorOf("SELECT * FROM readings LIMIT -1"), "line 1, column 30: LIMIT needs a non-negative integer");
  EXPECT_EQ(ErrorOf("SELECT * FROM readings LIMIT 1.5"), "line 1, column 30: LIMIT needs a non-negative integer");
  EXPECT_EQ(ErrorOf("SELECT * FROM readings LIMIT"), "line 1, column 29: LIMIT needs a non-negative integer");
  EXPECT_EQ(ErrorOf("SELECT * FROM readings LIMIT 5 OFFSET x"),
            "line 1, column 39: OFFSET needs a non-negative integer");
  EXPECT_EQ(ErrorOf("SELECT * FROM readings OFFSET 5"),
            "line 1, column 24: \"OFFSET\" without LIMIT: write LIMIT n OFFSET m");
}

TEST(Statement, ASemicolonMayEndIt) {
  MustParse("SELECT * FROM readings;");
  MustParse("SELECT * FROM readings ; -- done\n");
  EXPECT_EQ(ErrorOf("SELECT * FROM readings; SELECT 1 FROM readings"),
            "line 1, column 25: unexpected \"SELECT\" after the end of the statement");
}

TEST(Statement, NothingMayFollowTheLastClause) {
  EXPECT_EQ(ErrorOf("SELECT * FROM readings WHERE x = 1 foo"),
            "line 1, column 36: unexpected \"foo\" after the end of the statement");
  EXPECT_EQ(ErrorOf("SELECT a FROM readings WHERE temperature > 20.5 foo"),
            "line 1, column 49: unexpected \"foo\" after the end of the statement");
}

TEST(Statement, ClausesOutOfOrderAreNamedAsSuch) {
  EXPECT_EQ(ErrorOf("SELECT * FROM readings LIMIT 5 WHERE x = 1"),
            "line 1, column 32: \"WHERE\" is out of place: clauses go in the order SELECT, FROM, WHERE, LATEST ON, "
            "GROUP BY, HAVING, ORDER BY, LIMIT, OFFSET");
  EXPECT_EQ(ErrorOf("SELECT * FROM readings group by a where x = 1"),
            "line 1, column 35: \"where\" is out of place: clauses go in the order SELECT, FROM, WHERE, LATEST ON, "
            "GROUP BY, HAVING, ORDER BY, LIMIT, OFFSET");
}

TEST(Statement, ErrorsSayWhatWasExpectedAndWhatWasFound) {
  EXPECT_EQ(ErrorOf(""), "line 1, column 1: unexpected end of input, expected SELECT");
  EXPECT_EQ(ErrorOf("SHOW TABLES"), "line 1, column 1: expected SELECT, found \"SHOW\"");
  EXPECT_EQ(ErrorOf("SELECT a, b c readings"), "line 1, column 15: expected FROM, found \"readings\"");
  EXPECT_EQ(ErrorOf("SELECT a FROM"), "line 1, column 14: unexpected end of input, expected a table name");
  EXPECT_EQ(ErrorOf("SELECT a FROM 'readings'"), "line 1, column 15: expected a table name, found 'readings'");
  EXPECT_EQ(ErrorOf("SELECT a, FROM readings"), "line 1, column 11: expected an expression, found \"FROM\"");
  EXPECT_EQ(ErrorOf("SELECT * FROM readings GROUP sensor_id"),
            "line 1, column 30: expected BY, found \"sensor_id\"");
  EXPECT_EQ(ErrorOf("SELECT * FROM readings ORDER BY"),
            "line 1, column 32: unexpected end of input, expected an expression");
}

TEST(Statement, ErrorPositionsCountLinesAndColumns) {
  EXPECT_EQ(ErrorOf("SELECT max(temperature)\nFROM readings\nWHERE\n"),
            "line 4, column 1: unexpected end of input, expected an expression");
  // A misspelt FROM right after an item is that item's alias, so the table name is what is wrong.
  EXPECT_EQ(ErrorOf("SELECT ts,\n       temperature\n  FORM readings"),
            "line 3, column 8: expected FROM, found \"readings\"");
  EXPECT_EQ(ErrorOf("SELECT ts\nFROM readings\nWHER ts > 0"),
            "line 3, column 1: unexpected \"WHER\" after the end of the statement");
  EXPECT_EQ(ErrorOf("SELECT ts -- a comment with 'quotes'\n  FROM readings /* and\n a block */ WHERE ts >"),
            "line 3, column 23: unexpected end of input, expected an expression");
}

// --- Select items -----------------------------------------------------------------------------

TEST(SelectItems, NamedWithAsOrJustAFollowingName) {
  SelectStatement s = MustParse("SELECT max(t) AS hottest, min(t) coldest, avg(t) \"Mean T\", ts FROM readings");
  ASSERT_EQ(s.items.size(), 4u);
  EXPECT_EQ(s.items[0].alias, "hottest");
  EXPECT_EQ(s.items[1].alias, "coldest");
  EXPECT_EQ(s.items[2].alias, "Mean T");
  EXPECT_EQ(s.items[3].alias, "");
  EXPECT_EQ(s.items[0].pos.column, 8);
  EXPECT_EQ(s.items[1].pos.column, 27);
  // Unquoted names are lower-cased, aliases too.
  EXPECT_EQ(MustParse("SELECT t AS Hottest FROM readings").items[0].alias, "hottest");
}

TEST(SelectItems, ReservedWordsAreNeitherAliasesNorColumns) {
  EXPECT_EQ(ErrorOf("SELECT max(t) AS from FROM readings"),
            "line 1, column 18: expected a name after AS, found \"from\" (FROM is a reserved word; a name from is "
            "written \"from\")");
  EXPECT_EQ(ErrorOf("SELECT offset FROM readings"),
            "line 1, column 8: expected an expression, found \"offset\" (OFFSET is a reserved word; a name offset is "
            "written \"offset\")");
  EXPECT_EQ(MustParse("SELECT \"offset\" FROM readings").items[0].expr->name, "offset");
  EXPECT_EQ(ErrorOf("SELECT timestamp FROM readings"),
            "line 1, column 18: expected a quoted time after TIMESTAMP, e.g. TIMESTAMP '2024-01-21 10:00:00' "
            "(TIMESTAMP is a reserved word; a column named timestamp is written \"timestamp\"), found \"FROM\"");
}

TEST(SelectItems, EveryReservedWordNeedsQuotesToBeAName) {
  for (const char* word : {"SELECT", "FROM", "WHERE", "GROUP", "BY", "HAVING", "ORDER", "LIMIT", "OFFSET", "AND",
                           "OR", "NOT", "IN", "IS", "NULL", "BETWEEN", "AS", "ASC", "DESC", "LATEST", "ON",
                           "PARTITION", "TRUE", "FALSE", "INTERVAL", "TIMESTAMP", "DISTINCT"}) {
    // As a column after a comma, not one of them parses as a name ...
    std::string sql = fmt::format("SELECT a, {} FROM readings", word);
    SelectStatement stmt;
    SqlError error;
    bool ok = Parse(sql, &stmt, &error);
    EXPECT_FALSE(ok && stmt.items.size() == 2 && stmt.items[1].expr->kind == ExprKind::kColumn) << sql;
    // ... and quoted, every one does.
    SelectStatement quoted = MustParse(fmt::format("SELECT a, \"{}\" FROM readings", word));
    ASSERT_EQ(quoted.items.size(), 2u);
    EXPECT_EQ(quoted.items[1].expr->name, word);
  }
}

TEST(SelectItems, EverythingElseIsAName) {
  SelectStatement s = MustParse("SELECT hour, day, ts, count, value, time, station FROM readings");
  ASSERT_EQ(s.items.size(), 7u);
  EXPECT_EQ(s.items[0].expr->name, "hour");
  EXPECT_EQ(s.items[6].expr->name, "station");
}

TEST(SelectItems, StarAloneOrAmongOthers) {
  SelectStatement s = MustParse("SELECT *, temperature * 2 FROM readings");
  ASSERT_EQ(s.items.size(), 2u);
  EXPECT_EQ(s.items[0].expr->kind, ExprKind::kStar);
  EXPECT_EQ(s.items[0].expr->source, "*");
  EXPECT_EQ(Tree(*s.items[1].expr), "(temperature * 2)");
}

TEST(SelectItems, DistinctIsNotSupported) {
  EXPECT_EQ(ErrorOf("SELECT DISTINCT sensor_id FROM readings"), "line 1, column 8: DISTINCT is not supported");
  EXPECT_EQ(ErrorOf("SELECT count(DISTINCT sensor_id) FROM readings"),
            "line 1, column 14: DISTINCT is not supported");
}

// --- Expressions ------------------------------------------------------------------------------

TEST(Expressions, PrecedenceFromLooseToTight) {
  // OR < AND < NOT < comparison < + - < * / % < unary minus.
  EXPECT_EQ(TreeOf("a OR b AND c"), "(a OR (b AND c))");
  EXPECT_EQ(TreeOf("a AND b OR c"), "((a AND b) OR c)");
  EXPECT_EQ(TreeOf("NOT a AND b"), "((NOT a) AND b)");
  EXPECT_EQ(TreeOf("NOT a = b"), "(NOT (a = b))");
  EXPECT_EQ(TreeOf("NOT NOT a"), "(NOT (NOT a))");
  EXPECT_EQ(TreeOf("a = b AND c <> d"), "((a = b) AND (c <> d))");
  EXPECT_EQ(TreeOf("a + b = c * d"), "((a + b) = (c * d))");
  EXPECT_EQ(TreeOf("a + b * c"), "(a + (b * c))");
  EXPECT_EQ(TreeOf("a * b + c"), "((a * b) + c)");
  EXPECT_EQ(TreeOf("a - b - c"), "((a - b) - c)");
  EXPECT_EQ(TreeOf("a / b % c * d"), "(((a / b) % c) * d)");
  EXPECT_EQ(TreeOf("-a * b"), "((- a) * b)");
  EXPECT_EQ(TreeOf("a * -b"), "(a * (- b))");
  EXPECT_EQ(TreeOf("(a + b) * c"), "((a + b) * c)");
  EXPECT_EQ(TreeOf("a OR b OR c"), "((a OR b) OR c)");
}

TEST(Expressions, ComparisonOperators) {
  EXPECT_EQ(TreeOf("a = 1"), "(a = 1)");
  EXPECT_EQ(TreeOf("a <> 1"), "(a <> 1)");
  EXPECT_EQ(TreeOf("a != 1"), "(a <> 1)");  // one spelling for the planner
  EXPECT_EQ(TreeOf("a < 1"), "(a < 1)");
  EXPECT_EQ(TreeOf("a <= 1"), "(a <= 1)");
  EXPECT_EQ(TreeOf("a > 1"), "(a > 1)");
  EXPECT_EQ(TreeOf("a >= 1"), "(a >= 1)");
  EXPECT_EQ(ExprError("a == 1"), "line 1, column 10: == is not SQL; equality is a single =");
}

TEST(Expressions, ComparisonsDoNotChain) {
  EXPECT_EQ(ExprError("a < b < c"),
            "line 1, column 14: \"<\" cannot follow a comparison; combine comparisons with AND, or use parentheses");
  EXPECT_EQ(ExprError("a IS NULL = TRUE"),
            "line 1, column 18: \"=\" cannot follow a comparison; combine comparisons with AND, or use parentheses");
  EXPECT_EQ(TreeOf("(a < b) = TRUE"), "((a < b) = TRUE)");
}

TEST(Expressions, BetweenInAndIsNull) {
  EXPECT_EQ(TreeOf("t BETWEEN 1 AND 2"), "(t BETWEEN 1 AND 2)");
  EXPECT_EQ(TreeOf("t NOT BETWEEN 1 AND 2 AND ok"), "((t NOT BETWEEN 1 AND 2) AND ok)");
  EXPECT_EQ(TreeOf("t BETWEEN a + 1 AND b * 2"), "(t BETWEEN (a + 1) AND (b * 2))");
  EXPECT_EQ(TreeOf("id IN ('a', 'b')"), "(id IN ('a', 'b'))");
  EXPECT_EQ(TreeOf("id NOT IN (1)"), "(id NOT IN (1))");
  EXPECT_EQ(TreeOf("x IS NULL"), "(x IS NULL)");
  EXPECT_EQ(TreeOf("x IS NOT NULL OR y"), "((x IS NOT NULL) OR y)");
  EXPECT_EQ(TreeOf("NOT x IN (1, 2)"), "(NOT (x IN (1, 2)))");
  EXPECT_EQ(TreeOf("a + 1 IS NULL"), "((a + 1) IS NULL)");
  EXPECT_EQ(ExprError("x IN ()"), "line 1, column 14: expected an expression, found \")\"");
  EXPECT_EQ(ExprError("x IN 1"), "line 1, column 13: expected \"(\", found \"1\"");
  EXPECT_EQ(ExprError("x IS 1"), "line 1, column 13: expected NULL, found \"1\"");
  EXPECT_EQ(ExprError("x BETWEEN 1 OR 2"), "line 1, column 20: expected AND, found \"OR\"");
  EXPECT_EQ(ExprError("x NOT LIKE 'a%'"), "line 1, column 14: expected BETWEEN or IN after NOT, found \"LIKE\"");
  EXPECT_EQ(ExprError("x IN (SELECT 1)"), "line 1, column 14: subqueries are not supported");
}

TEST(Expressions, Literals) {
  EXPECT_EQ(TreeOf("42"), "42");
  EXPECT_EQ(TreeOf("2.5"), "2.5");
  EXPECT_EQ(TreeOf("1e3"), "1000");
  EXPECT_EQ(TreeOf("'it''s'"), "'it's'");
  EXPECT_EQ(TreeOf("TRUE"), "TRUE");
  EXPECT_EQ(TreeOf("false"), "FALSE");
  EXPECT_EQ(TreeOf("NULL"), "NULL");
  SelectStatement s = MustParse("SELECT 1.5, 7, true FROM readings");
  EXPECT_EQ(s.items[0].expr->literal_type, LiteralType::kDouble);
  EXPECT_EQ(s.items[1].expr->literal_type, LiteralType::kInteger);
  EXPECT_EQ(s.items[2].expr->literal_type, LiteralType::kBoolean);
  EXPECT_EQ(s.items[2].expr->integer, 1);
}

TEST(Expressions, AMinusBeforeANumberIsPartOfTheLiteral) {
  SelectStatement s = MustParse("SELECT -5, - 2.5, -(3), -x, - -1, -9223372036854775807 FROM readings");
  ASSERT_EQ(s.items.size(), 6u);
  EXPECT_EQ(s.items[0].expr->kind, ExprKind::kLiteral);
  EXPECT_EQ(s.items[0].expr->integer, -5);
  EXPECT_EQ(s.items[0].expr->source, "-5");
  EXPECT_EQ(s.items[0].expr->pos.column, 8);
  EXPECT_EQ(s.items[1].expr->real, -2.5);
  EXPECT_EQ(s.items[1].expr->source, "- 2.5");
  EXPECT_EQ(s.items[2].expr->integer, -3);
  EXPECT_EQ(Tree(*s.items[3].expr), "(- x)");
  EXPECT_EQ(s.items[4].expr->integer, 1);
  EXPECT_EQ(s.items[5].expr->integer, -9223372036854775807);
  EXPECT_EQ(TreeOf("1 - -2"), "(1 - -2)");
  EXPECT_EQ(TreeOf("now() - -INTERVAL '1h'"), "(now() - INTERVAL(-3600000000us))");
}

TEST(Expressions, ColumnsAndFunctions) {
  EXPECT_EQ(TreeOf("Temperature"), "temperature");
  EXPECT_EQ(TreeOf("\"Temp C\""), "Temp C");
  EXPECT_EQ(TreeOf("now()"), "now()");
  EXPECT_EQ(TreeOf("MAX(temperature)"), "max(temperature)");
  EXPECT_EQ(TreeOf("count(*)"), "count(*)");
  EXPECT_EQ(TreeOf("time_bucket('1h', ts)"), "time_bucket('1h', ts)");
  EXPECT_EQ(TreeOf("round(avg(t) * 10, 1)"), "round((avg(t) * 10), 1)");
  SelectStatement s = MustParse("SELECT count(*) FROM readings");
  const Expr& count = *s.items[0].expr;
  EXPECT_EQ(count.kind, ExprKind::kFunction);
  ASSERT_EQ(count.args.size(), 1u);
  EXPECT_EQ(count.args[0]->kind, ExprKind::kStar);
  EXPECT_EQ(count.args[0]->pos.column, 14);
  EXPECT_EQ(ExprError("max(t"), "line 1, column 14: expected \",\" or \")\", found \"FROM\"");
  EXPECT_EQ(ExprError("max(t,)"), "line 1, column 14: expected an expression, found \")\"");
  EXPECT_EQ(ExprError("count(*, t)"), "line 1, column 15: expected \")\", found \",\"");
  EXPECT_EQ(ExprError("readings.ts"),
            "line 1, column 16: qualified names (a.b) are not supported; write the name alone");
  EXPECT_EQ(ExprError("(a + b"), "line 1, column 15: expected \")\", found \"FROM\"");
  EXPECT_EQ(ExprError("a +"), "line 1, column 12: expected an expression, found \"FROM\"");
}

// --- INTERVAL and TIMESTAMP -------------------------------------------------------------------

TEST(Intervals, AreNumbersWithUnitsInMicroseconds) {
  EXPECT_EQ(IntervalOf("INTERVAL '1 hour'"), kMicrosPerHour);
  EXPECT_EQ(IntervalOf("INTERVAL '90 seconds'"), 90 * kMicrosPerSecond);
  EXPECT_EQ(IntervalOf("INTERVAL '1 day 2 hours'"), kMicrosPerDay + 2 * kMicrosPerHour);
  EXPECT_EQ(IntervalOf("INTERVAL '15 minutes'"), 15 * kMicrosPerMinute);
  EXPECT_EQ(IntervalOf("INTERVAL '2 weeks'"), 14 * kMicrosPerDay);
  EXPECT_EQ(IntervalOf("INTERVAL '1 Week'"), 7 * kMicrosPerDay);
  EXPECT_EQ(IntervalOf("INTERVAL '1.5 hours'"), 90 * kMicrosPerMinute);
  EXPECT_EQ(IntervalOf("INTERVAL '0 s'"), 0);
  EXPECT_EQ(IntervalOf("interval '250 microseconds 3 milliseconds'"), 3250);
}

TEST(Intervals, CompactForms) {
  EXPECT_EQ(IntervalOf("INTERVAL '1h'"), kMicrosPerHour);
  EXPECT_EQ(IntervalOf("INTERVAL '30s'"), 30 * kMicrosPerSecond);
  EXPECT_EQ(IntervalOf("INTERVAL '1h30m'"), 90 * kMicrosPerMinute);
  EXPECT_EQ(IntervalOf("INTERVAL '7d'"), 7 * kMicrosPerDay);
  EXPECT_EQ(IntervalOf("INTERVAL '500ms'"), 500'000);
  EXPECT_EQ(IntervalOf("INTERVAL '250us'"), 250);
  EXPECT_EQ(IntervalOf("INTERVAL '2w'"), 14 * kMicrosPerDay);
  EXPECT_EQ(IntervalOf("INTERVAL '5min'"), 5 * kMicrosPerMinute);
  EXPECT_EQ(IntervalOf("INTERVAL '10sec'"), 10 * kMicrosPerSecond);
}

TEST(Intervals, ANumberInQuotesThenAUnitWord) {
  EXPECT_EQ(IntervalOf("INTERVAL '1' HOUR"), kMicrosPerHour);
  EXPECT_EQ(IntervalOf("INTERVAL '90' second"), 90 * kMicrosPerSecond);
  EXPECT_EQ(IntervalOf("INTERVAL '2' DAYS"), 2 * kMicrosPerDay);
  SelectStatement s = MustParse("SELECT INTERVAL '15' MINUTE AS q FROM readings");
  EXPECT_EQ(s.items[0].expr->source, "INTERVAL '15' MINUTE");
  EXPECT_EQ(s.items[0].alias, "q");
  // With a unit inside the quotes, a following name is an alias as usual.
  SelectStatement t = MustParse("SELECT INTERVAL '1 hour' hour FROM readings");
  EXPECT_EQ(t.items[0].expr->integer, kMicrosPerHour);
  EXPECT_EQ(t.items[0].alias, "hour");
}

TEST(Intervals, MonthsAndYearsHaveNoFixedLength) {
  EXPECT_EQ(ExprError("INTERVAL '1 month'"),
            "line 1, column 17: INTERVAL '1 month': months have no fixed length, so they cannot be an interval; "
            "write days instead (e.g. '30 days')");
  EXPECT_EQ(ExprError("INTERVAL '2 years'"),
            "line 1, column 17: INTERVAL '2 years': years have no fixed length, so they cannot be an interval; "
            "write days instead (e.g. '365 days')");
  EXPECT_EQ(ExprError("INTERVAL '1' MONTH"),
            "line 1, column 21: INTERVAL '1 month': months have no fixed length, so they cannot be an interval; "
            "write days instead (e.g. '30 days')");
}

TEST(Intervals, BadTextIsAnErrorAtTheString) {
  EXPECT_EQ(ExprError("INTERVAL '2 fortnights'"),
            "line 1, column 17: INTERVAL '2 fortnights': unknown unit \"fortnights\"; use microseconds (us), "
            "milliseconds (ms), seconds (s), minutes (m), hours (h), days (d) or weeks (w)");
  EXPECT_EQ(ExprError("INTERVAL '90'"),
            "line 1, column 17: INTERVAL '90': 90 has no unit; write e.g. '90s', '90m' or '90h'");
  EXPECT_EQ(ExprError("INTERVAL ''"),
            "line 1, column 17: INTERVAL '': empty; write e.g. '1 hour', '90 seconds' or '1h30m'");
  EXPECT_EQ(ExprError("INTERVAL '-1 hour'"),
            "line 1, column 17: INTERVAL '-1 hour': a negative interval is written -INTERVAL '...'");
  EXPECT_EQ(ExprError("INTERVAL 'an hour'"), "line 1, column 17: INTERVAL 'an hour': expected a number, found \"an\"");
  EXPECT_EQ(ExprError("INTERVAL '1 hour, 2 minutes'"),
            "line 1, column 17: INTERVAL '1 hour, 2 minutes': expected a number, found \",\"");
  EXPECT_EQ(ExprError("INTERVAL '1.5us'"),
            "line 1, column 17: INTERVAL '1.5us': 1.5us is not a whole number of microseconds");
  EXPECT_EQ(ExprError("INTERVAL '99999999999 weeks'"), "line 1, column 17: INTERVAL '99999999999 weeks': out of range");
  EXPECT_EQ(ExprError("INTERVAL 1"),
            "line 1, column 17: expected a quoted interval after INTERVAL, e.g. INTERVAL '1 hour', found \"1\"");
  EXPECT_EQ(ErrorOf("SELECT ts FROM readings\nWHERE ts > now() - INTERVAL '1 moment'"),
            "line 2, column 29: INTERVAL '1 moment': unknown unit \"moment\"; use microseconds (us), milliseconds "
            "(ms), seconds (s), minutes (m), hours (h), days (d) or weeks (w)");
}

TEST(Intervals, TheTextParserServesFunctionArgumentsToo) {
  int64_t us = 0;
  std::string why;
  ASSERT_TRUE(ParseIntervalText("1h", &us, &why));
  EXPECT_EQ(us, kMicrosPerHour);
  ASSERT_TRUE(ParseIntervalText(" 1 day  12 hours ", &us, &why));
  EXPECT_EQ(us, kMicrosPerDay + 12 * kMicrosPerHour);
  EXPECT_FALSE(ParseIntervalText("soon", &us, &why));
  EXPECT_EQ(why, "INTERVAL 'soon': expected a number, found \"soon\"");
}

TEST(Timestamps, DatesAndTimesInUtc) {
  EXPECT_EQ(TimestampOf("2024-01-21"), "2024-01-21T00:00:00.000000Z");
  EXPECT_EQ(TimestampOf("2024-01-21 10:06"), "2024-01-21T10:06:00.000000Z");
  EXPECT_EQ(TimestampOf("2024-01-21 10:06:04"), "2024-01-21T10:06:04.000000Z");
  EXPECT_EQ(TimestampOf("2024-01-21 10:06:04.095931"), "2024-01-21T10:06:04.095931Z");
  EXPECT_EQ(TimestampOf("2024-01-21T10:06:04.5"), "2024-01-21T10:06:04.500000Z");
  EXPECT_EQ(TimestampOf("2024-01-21T10:06:04Z"), "2024-01-21T10:06:04.000000Z");
  EXPECT_EQ(TimestampOf("2024-01-21 10:06:04+00:00"), "2024-01-21T10:06:04.000000Z");
  EXPECT_EQ(TimestampOf("2024-01-21T12:06:04+02:00"), "2024-01-21T10:06:04.000000Z");
  EXPECT_EQ(TimestampOf("2024-02-29"), "2024-02-29T00:00:00.000000Z");
  SelectStatement s = MustParse("SELECT * FROM readings WHERE ts >= TIMESTAMP '2024-01-21'");
  const Expr& ts = *s.where->args[1];
  EXPECT_EQ(ts.integer, 1705795200000000);
  EXPECT_EQ(ts.text, "2024-01-21");
  EXPECT_EQ(ts.source, "TIMESTAMP '2024-01-21'");
  EXPECT_EQ(ts.pos.column, 36);
}

TEST(Timestamps, BadTextIsAnErrorAtTheString) {
  EXPECT_EQ(ExprError("TIMESTAMP 'yesterday'"),
            "line 1, column 18: TIMESTAMP 'yesterday' is not a date-time: expected "
            "YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][Z|+HH:MM]");
  EXPECT_EQ(ExprError("TIMESTAMP '2024-13-01'"), "line 1, column 18: TIMESTAMP '2024-13-01': month 13 out of range");
  EXPECT_EQ(ExprError("TIMESTAMP '2023-02-29'"),
            "line 1, column 18: TIMESTAMP '2023-02-29': day 29 out of range for 2023-02");
  EXPECT_EQ(ExprError("TIMESTAMP '2024-01-21 25:00'"),
            "line 1, column 18: TIMESTAMP '2024-01-21 25:00': time of day 25:00:00 out of range");
  EXPECT_EQ(ExprError("TIMESTAMP '2024-01-21 10:00 tomorrow'"),
            "line 1, column 18: TIMESTAMP '2024-01-21 10:00 tomorrow': unexpected text after the time");
  EXPECT_EQ(ExprError("TIMESTAMP 1705795200"),
            "line 1, column 18: expected a quoted time after TIMESTAMP, e.g. TIMESTAMP '2024-01-21 10:00:00' "
            "(TIMESTAMP is a reserved word; a column named timestamp is written \"timestamp\"), found \"1705795200\"");
}

TEST(Expressions, NestingIsLimited) {
  EXPECT_EQ(TreeOf(std::string(100, '(') + "1" + std::string(100, ')')), "1");
  EXPECT_EQ(ExprError(std::string(100'000, '(') + "1" + std::string(100'000, ')')),
            "line 1, column 208: expression nested too deeply (more than 200 levels; query.max_expression_depth)");
  std::string minuses;
  for (int i = 0; i < 100'000; ++i) minuses += "- ";  // spaced: "--" starts a comment
  EXPECT_EQ(ExprError(minuses + "1"),
            "line 1, column 406: expression nested too deeply (more than 200 levels; query.max_expression_depth)");
}

// Issue 13: `SELECT lat+lat+...+lat` of 10,000 terms (40 KB) overflowed the evaluator's stack and
// took `mare run` down; chains are built by a loop, so the tree's height is what is bounded.
TEST(Limits, LongChainIsRefusedAtTheDepthLimit) {
  std::string sql = "SELECT lat";
  for (int i = 1; i < 10'000; ++i) sql += "+lat";
  sql += " FROM readings";
  EXPECT_EQ(ErrorOf(sql), "line 1, column 807: expression nested too deeply (more than 200 levels; query.max_expression_depth)");
  std::string ands = "SELECT * FROM readings WHERE lat > 0";
  for (int i = 1; i < 10'000; ++i) ands += " AND lat > 0";
  EXPECT_EQ(ErrorOf(ands).find("expression nested too deeply (more than 200 levels; query.max_expression_depth)") != std::string::npos,
            true);
  // At the limit exactly: parsed.
  std::string at = "SELECT lat";
  for (int i = 1; i < 200; ++i) at += "+lat";
  EXPECT_EQ(ErrorOf(at + " FROM readings"), "parsed");
}

// Wide rather than deep: IN lists, function arguments and select lists count toward the nodes.
TEST(Limits, ExpressionNodesAreCounted) {
  std::string in = "SELECT * FROM readings WHERE sensor_id IN (1";
  for (int i = 2; i <= 20'000; ++i) in += fmt::format(",{}", i);
  in += ")";
  EXPECT_EQ(ErrorOf(in), "line 1, column 48922: statement too large: more than 10000 expression nodes (query.max_expression_nodes)");
  std::string items = "SELECT lat";
  for (int i = 1; i < 20'000; ++i) items += ",lat";
  EXPECT_EQ(ErrorOf(items + " FROM readings").find("more than 10000 expression nodes (query.max_expression_nodes)") != std::string::npos,
            true);
  QueryLimits small;
  small.max_expression_nodes = 3;
  SelectStatement stmt;
  SqlError error;
  EXPECT_TRUE(Parse("SELECT a + b FROM readings", small, &stmt, &error)) << error.ToString();
  EXPECT_FALSE(Parse("SELECT a + b + c FROM readings", small, &stmt, &error));
  EXPECT_EQ(error.ToString(), "line 1, column 16: statement too large: more than 3 expression nodes (query.max_expression_nodes)");
  EXPECT_EQ(error.kind, SqlError::Kind::kLimit);
}

long PeakRssKb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// Issue 13: a 1.2 MB chain grew the server to 23 GB (each node copied its source text: n^2).
// Now a statement over 1 MiB is refused before the lexer, and one just under it parses in
// memory linear in its size.
TEST(Limits, MegabyteStatementIsRefusedInBoundedMemory) {
  long before = PeakRssKb();
  std::string sql = "SELECT lat";
  while (sql.size() < (1 << 20) + 100) sql += "+lat";
  sql += " FROM readings";
  EXPECT_EQ(ErrorOf(sql), fmt::format("line 1, column 1: statement too large: {} bytes, more than 1048576 (query.max_statement_bytes)",
                                      sql.size()));
  // Just under the limit: the lexer's tokens, then the depth limit.
  std::string under = "SELECT lat";
  while (under.size() < (1 << 20) - 100) under += "+lat";
  under += " FROM readings";
  EXPECT_NE(ErrorOf(under).find("levels; query.max_expression_depth)"), std::string::npos) << ErrorOf(under).substr(0, 200);
  // Within the node limit but as wide as possible (9,999 one-node select items, ~1 MB of
  // source text each view of which used to be a copy): parsed, memory linear.
  std::string wide = "SELECT ";
  for (int i = 0; i < 9'999; ++i) wide += fmt::format("{}{}", i ? "," : "", std::string(90, 'x'));
  wide += " FROM readings";
  EXPECT_EQ(ErrorOf(wide), "parsed");
  long grown_mb = (PeakRssKb() - before) / 1024;
  EXPECT_LT(grown_mb, 200) << "parsing grew the process by " << grown_mb << " MB";
}

// --- Source text and positions ----------------------------------------------------------------

TEST(SourceText, IsTheExpressionAsWrittenForDefaultColumnNames) {
  SelectStatement s = MustParse(
      "SELECT max(temperature), time_bucket('1h', ts), Temp * 1.8 + 32, (a + b), count( * ) ,  f(x)\n"
      "  FROM readings");
  ASSERT_EQ(s.items.size(), 6u);
  EXPECT_EQ(s.items[0].expr->source, "max(temperature)");
  EXPECT_EQ(s.items[1].expr->source, "time_bucket('1h', ts)");
  EXPECT_EQ(s.items[2].expr->source, "Temp * 1.8 + 32");  // as written, not lower-cased
  EXPECT_EQ(s.items[2].expr->args[0]->source, "Temp * 1.8");
  EXPECT_EQ(s.items[3].expr->source, "(a + b)");
  EXPECT_EQ(s.items[3].expr->args[0]->source, "a");
  EXPECT_EQ(s.items[4].expr->source, "count( * )");
  EXPECT_EQ(s.items[5].expr->source, "f(x)");
}

TEST(SourceText, SpansLinesAndCommentsInsideTheExpression) {
  SelectStatement s = MustParse("SELECT a +\n  b /* plus b */ * 2 AS c FROM readings");
  EXPECT_EQ(s.items[0].expr->source, "a +\n  b /* plus b */ * 2");
}

TEST(Positions, AreTheFirstTokenOrTheOperator) {
  SelectStatement s = MustParse(
      "SELECT f(x),\n"
      "       a + b * c\n"
      "FROM readings WHERE NOT x BETWEEN 1 AND 2 AND y IS NULL");
  EXPECT_EQ(s.items[0].expr->pos.line, 1);
  EXPECT_EQ(s.items[0].expr->pos.column, 8);
  const Expr& sum = *s.items[1].expr;  // a + (b * c): positioned at its operator
  EXPECT_EQ(sum.pos.line, 2);
  EXPECT_EQ(sum.pos.column, 10);
  EXPECT_EQ(sum.args[0]->pos.column, 8);
  EXPECT_EQ(sum.args[1]->pos.column, 14);
  EXPECT_EQ(s.items[1].pos.line, 2);
  EXPECT_EQ(s.items[1].pos.column, 8);
  const Expr& conj = *s.where;  // (NOT (x BETWEEN 1 AND 2)) AND (y IS NULL)
  EXPECT_EQ(conj.op, "AND");
  EXPECT_EQ(conj.pos.line, 3);
  EXPECT_EQ(conj.pos.column, 43);
  EXPECT_EQ(conj.args[0]->pos.column, 21);            // NOT
  EXPECT_EQ(conj.args[0]->args[0]->pos.column, 25);   // x BETWEEN ...: at x
  EXPECT_EQ(conj.args[1]->pos.column, 47);            // y IS NULL: at y
}

}  // namespace
}  // namespace mare::query
