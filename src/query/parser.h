// The SQL parser: statement text to a SelectStatement (ast.h), by recursive descent over the
// lexer's tokens (lexer.h). The grammar it accepts is docs/sql.md's "Grammar" section.
//
//   SelectStatement stmt;
//   SqlError error;
//   if (!Parse("SELECT max(temperature) FROM readings", &stmt, &error)) puts(error.ToString().c_str());
//
// Parse() itself is declared in ast.h, so the planner needs only that header.
#pragma once

#include "query/ast.h"
