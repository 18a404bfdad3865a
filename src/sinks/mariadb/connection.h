// Connection: one session of the MariaDB sink with its database, and the few calls its table
// writers share (statements, errors as Status, creating or migrating a table). One per sink
// thread; not thread-safe.
#pragma once

#include <mysql.h>

#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace mare::sinks {

// A column: its name and its definition as CREATE TABLE takes it ("DOUBLE", "BIGINT NOT NULL", ...).
using ColumnDefinition = std::pair<std::string, std::string>;

// Where a connection goes (the sink's [sink.mariadb] keys).
struct ConnectionTarget {
  std::string host = "127.0.0.1";
  int port = 3306;
  std::string socket;  // a unix socket path instead of host:port
  std::string user = "root";
  std::string password;
  std::string database = "mare";
};

struct Connection {
  MYSQL* mysql = nullptr;
  std::string database;

  // Connects (5 s timeouts, utf8mb4), sets the session's time zone to UTC, and creates and
  // selects the database. On failure nothing stays open.
  Status Connect(const ConnectionTarget& target);
  void Close();

  Status Error(const std::string& what) const;
  static Status StmtError(MYSQL_STMT* stmt, const std::string& what);
  Status Exec(const std::string& sql);
  // A prepared statement, or the server's reason for refusing it.
  Result<MYSQL_STMT*> Prepare(const std::string& sql);
  // Creates `table` with `columns`, `keys` ("PRIMARY KEY (...)") and `options` ("ENGINE=InnoDB"),
  // or adds the columns an older version of it lacks (a NOT NULL one without a default gets
  // DEFAULT 0, for the rows it already has).
  Status EnsureTable(const std::string& table, const std::vector<ColumnDefinition>& columns, const std::string& keys,
                     const std::string& options);
};

}  // namespace mare::sinks
