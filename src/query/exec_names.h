// The store's types every part of the executor (chunks, group table, block outcomes) names
// unqualified, declared once for all of them.
#pragma once

#include "store/block.h"
#include "store/column.h"
#include "store/segment.h"

namespace mare::query::exec {

using store::BlockMeta;
using store::ColumnMeta;
using store::ColumnValues;
using store::FieldType;
using store::RowBuffer;
using store::Segment;

}  // namespace mare::query::exec
