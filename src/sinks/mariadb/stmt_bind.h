// One-line parameter and result binds for Connector/C prepared statements (MYSQL_BIND), and one
// bulk execute, shared by the MariaDB sink's writers instead of three assignments per column each.
#pragma once

#include <mysql.h>

#include <cstddef>
#include <string>

#include "common/status.h"
#include "sinks/mariadb/connection.h"

namespace mare::sinks {

// `buffer` is one value, or the first of an array of them when the statement is executed in
// bulk (ExecuteBulk). `indicators`, where given, says per value STMT_INDICATOR_NULL (NULL),
// STMT_INDICATOR_NTS (a NUL-terminated string) or STMT_INDICATOR_NONE.
inline void BindUInt32(MYSQL_BIND& b, void* buffer) {
  b.buffer_type = MYSQL_TYPE_LONG;
  b.buffer = buffer;
  b.is_unsigned = 1;
}

inline void BindInt32(MYSQL_BIND& b, void* buffer) {
  b.buffer_type = MYSQL_TYPE_LONG;
  b.buffer = buffer;
}

inline void BindInt64(MYSQL_BIND& b, void* buffer) {
  b.buffer_type = MYSQL_TYPE_LONGLONG;
  b.buffer = buffer;
}

inline void BindTiny(MYSQL_BIND& b, void* buffer) {
  b.buffer_type = MYSQL_TYPE_TINY;
  b.buffer = buffer;
}

inline void BindDouble(MYSQL_BIND& b, void* buffer, char* indicators = nullptr) {
  b.buffer_type = MYSQL_TYPE_DOUBLE;
  b.buffer = buffer;
  b.u.indicator = indicators;
}

inline void BindDateTime(MYSQL_BIND& b, MYSQL_TIME* buffer) {
  b.buffer_type = MYSQL_TYPE_DATETIME;
  b.buffer = buffer;
}

// A string given NUL-terminated, or NULL, by its indicator.
inline void BindText(MYSQL_BIND& b, void* buffer, char* indicators) {
  b.buffer_type = MYSQL_TYPE_STRING;
  b.buffer = buffer;
  b.u.indicator = indicators;
}

// A string given by its length (`lengths`: one per value); `capacity` is the buffer's size when
// the bind receives a result column.
inline void BindText(MYSQL_BIND& b, void* buffer, unsigned long* lengths, unsigned long capacity = 0) {
  b.buffer_type = MYSQL_TYPE_STRING;
  b.buffer = buffer;
  b.length = lengths;
  b.buffer_length = capacity;
}

// Executes stmt once for `rows` rows of parameters: bound row-wise, `row_size` bytes apart, or
// column-wise (arrays of values) when row_size is 0. One round trip for the whole batch.
inline Status ExecuteBulk(MYSQL_STMT* stmt, MYSQL_BIND* binds, size_t rows, size_t row_size, const std::string& what) {
  unsigned int n = static_cast<unsigned int>(rows);
  if (mysql_stmt_attr_set(stmt, STMT_ATTR_ARRAY_SIZE, &n) != 0 ||
      (row_size != 0 && mysql_stmt_attr_set(stmt, STMT_ATTR_ROW_SIZE, &row_size) != 0) ||
      mysql_stmt_bind_param(stmt, binds) != 0 || mysql_stmt_execute(stmt) != 0) {
    return Connection::StmtError(stmt, what);
  }
  return Status::OK();
}

}  // namespace mare::sinks
