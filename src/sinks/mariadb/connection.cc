#include "sinks/mariadb/connection.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <set>

namespace mare::sinks {

Status Connection::Error(const std::string& what) const {
  return Status::Unavailable(fmt::format("mariadb: {}: {}", what, mysql ? mysql_error(mysql) : "not connected"));
}

Status Connection::StmtError(MYSQL_STMT* stmt, const std::string& what) {
  return Status::Unavailable(fmt::format("mariadb: {}: {}", what, mysql_stmt_error(stmt)));
}

Status Connection::Connect(const ConnectionTarget& t) {
  Close();
  mysql = mysql_init(nullptr);
  database = t.database;
  unsigned timeout = 5;
  mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &timeout);
  mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &timeout);
  mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");  // text fields are UTF-8
  const char* socket = t.socket.empty() ? nullptr : t.socket.c_str();
  if (!mysql_real_connect(mysql, socket ? nullptr : t.host.c_str(), t.user.c_str(), t.password.c_str(), nullptr,
                          static_cast<unsigned>(t.port), socket, 0)) {
    Status s = Error(fmt::format("connect {}", socket ? t.socket : t.host + ":" + std::to_string(t.port)));
    Close();
    return s;
  }
  Status s = Exec("SET time_zone = '+00:00'");
  if (s.ok()) s = Exec(fmt::format("CREATE DATABASE IF NOT EXISTS `{}`", t.database));
  if (s.ok() && mysql_select_db(mysql, t.database.c_str()) != 0) s = Error("use " + t.database);
  if (!s.ok()) Close();
  return s;
}

void Connection::Close() {
  if (mysql) mysql_close(mysql);
  mysql = nullptr;
}

Status Connection::Exec(const std::string& sql) {
  if (mysql_real_query(mysql, sql.data(), sql.size()) != 0) return Error(sql.substr(0, 80));
  return Status::OK();
}

Result<MYSQL_STMT*> Connection::Prepare(const std::string& sql) {
  MYSQL_STMT* stmt = mysql_stmt_init(mysql);
  if (!stmt) return Error("statement");
  if (mysql_stmt_prepare(stmt, sql.data(), sql.size()) != 0) {
    Status s = StmtError(stmt, "prepare " + sql.substr(0, 60));
    mysql_stmt_close(stmt);
    return s;
  }
  return stmt;
}

Status Connection::EnsureTable(const std::string& table, const std::vector<ColumnDefinition>& columns,
                               const std::string& keys, const std::string& options) {
  std::string create = fmt::format("CREATE TABLE IF NOT EXISTS `{}` (", table);
  for (const auto& [name, def] : columns) create += fmt::format("`{}` {}, ", name, def);
  create += keys + ") " + options;
  MARE_RETURN_IF_ERROR(Exec(create));
  MARE_RETURN_IF_ERROR(Exec(fmt::format(
      "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME = '{}'", database, table)));
  MYSQL_RES* res = mysql_store_result(mysql);
  if (!res) return Error("columns of " + table);
  std::set<std::string> present;
  while (MYSQL_ROW row = mysql_fetch_row(res)) present.insert(row[0]);
  mysql_free_result(res);
  for (const auto& [name, def] : columns) {
    if (present.count(name)) continue;
    spdlog::info("mariadb: adding column {}.{}", table, name);
    std::string definition = def;
    if (definition.find("NOT NULL") != std::string::npos && definition.find("DEFAULT") == std::string::npos) {
      definition += " DEFAULT 0";  // existing rows need a value
    }
    MARE_RETURN_IF_ERROR(Exec(fmt::format("ALTER TABLE `{}` ADD COLUMN `{}` {}", table, name, definition)));
  }
  return Status::OK();
}

}  // namespace mare::sinks
