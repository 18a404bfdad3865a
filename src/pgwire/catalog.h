// The catalog queries tools send to learn what tables and columns there are: JDBC's
// DatabaseMetaData (getSchemas, getTables, getColumns, which DBeaver and Grafana's JDBC users go
// through), information_schema.tables and information_schema.columns (Grafana's PostgreSQL data
// source, SQLAlchemy's inspector), and psql's \dt, \d, \d readings, \d+, \dn and \l (pg_class,
// pg_attribute, pg_namespace, pg_database; no rows from the catalogs of things mare has none
// of, such as pg_index or pg_policy). They are answered from CatalogTables the
// connection builds by planning `SELECT * FROM <table>` for each table mare's SQL has, so the
// answer is the store's schema as a query sees it at that moment. docs/formats/pgwire.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pgwire/session_statements.h"

namespace mare::pgwire {

struct CatalogColumn {
  std::string name;
  int32_t oid = 0;  // pg_type OID, as the column's values are described
};

struct CatalogTable {
  std::string name;
  int32_t oid = 0;  // a stable pg_class OID for the table (16384 + its place)
  std::vector<CatalogColumn> columns;
  int64_t disk_bytes = -1;  // what the store holds of it on disk (psql's \dt+ Size); -1: unknown
};

// PostgreSQL's pg_size_pretty: "8192 bytes", "24 kB", "118 MB" (10240 and more of a unit go up
// one, halves rounded away from zero).
std::string PrettySize(int64_t bytes);

// The tables of mare's SQL, in the order their OIDs are given.
inline constexpr const char* kCatalogTableNames[] = {"readings", "forecasts"};

// True when sql looks like one of the catalog queries above, so that the caller gathers the
// tables before calling AnswerCatalogQuery.
bool IsCatalogQuery(std::string_view sql);

// Answers sql from `tables`; false when it is not a catalog query answered here (it then goes
// on to mare's SQL, which refuses it with 42P01).
bool AnswerCatalogQuery(std::string_view sql, const std::vector<CatalogTable>& tables, SessionAnswer* answer);

}  // namespace mare::pgwire
