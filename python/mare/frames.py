"""Arrow answers into pandas DataFrames, as Client.query returns them: timestamps tz-aware, NULLs
kept (NaN, NaT, None, or pandas' nullable Int64 and boolean), every column writable.

    df = to_frame(table)   # a pyarrow.Table of mare's types (docs/formats/arrow.md)

A small answer of fixed-width columns (the usual notebook query: a sensor's hour or day) is built
here column by column, each copied once into an array the frame owns, under a column index kept
between answers of the same columns: pyarrow's to_pandas spends most of its time for a few
thousand rows on a new string index and its per-call type checks (Q3 of bench/notebook.py, 3,600
rows: 0.26 to about 0.06 ms). Anything else goes through to_pandas.
"""
from __future__ import annotations

import threading
from typing import Dict, Optional, Tuple

import numpy as np
import pandas as pd
import pyarrow as pa

try:  # pandas 3's public way to assemble a frame from its blocks (what pyarrow's to_pandas uses)
    from pandas.api.internals import create_dataframe_from_blocks
except ImportError:  # pandas before 3: to_pandas for every answer
    create_dataframe_from_blocks = None

try:
    from zoneinfo import ZoneInfo
except ImportError:  # Python 3.8 has no zoneinfo; pandas 3 needs 3.10, so the small path is off then
    ZoneInfo = None

# Answers of fewer rows are built here, on the calling thread; larger ones by to_pandas with its
# thread pool, which then pays off.
SMALL_ROWS = 65_536

# Column indexes by their names: a notebook asks the same columns again and again. Each frame
# gets a view of its own (an Index's name may be set in place); bounded, cleared when full.
_INDEX_CACHE_SIZE = 256
_indexes: Dict[Tuple[str, ...], pd.Index] = {}
_indexes_lock = threading.Lock()

_NULLABLE = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}


def to_frame(table: pa.Table) -> pd.DataFrame:
    """The table as a pandas DataFrame (see the module's docstring)."""
    if table.num_rows < SMALL_ROWS and create_dataframe_from_blocks is not None and ZoneInfo is not None:
        df = _small_frame(table)
        if df is not None:
            return df
    return frame_by_pyarrow(table)


def frame_by_pyarrow(table: pa.Table) -> pd.DataFrame:
    """The same frame through pyarrow's to_pandas: consolidated blocks (writable copies, unlike
    split_blocks' zero-copy ones), then integer and boolean columns with NULLs as pandas'
    nullable dtypes so that their values stay exact."""
    df = table.to_pandas(use_threads=table.num_rows >= SMALL_ROWS)
    for i, column in enumerate(table.columns):
        if column.null_count > 0 and column.type in _NULLABLE:
            df.isetitem(i, column.to_pandas(types_mapper=_NULLABLE.get))
    return df


def _column_index(names: Tuple[str, ...]) -> pd.Index:
    index = _indexes.get(names)
    if index is None:
        index = pd.Index(list(names))
        with _indexes_lock:
            if len(_indexes) >= _INDEX_CACHE_SIZE:
                _indexes.clear()
            _indexes[names] = index
    return index.view()


_DATETIME_TZ: Dict[Tuple[str, str], pd.DatetimeTZDtype] = {}


def _datetime_tz(unit: str, tz: str) -> pd.DatetimeTZDtype:
    """As pyarrow's to_pandas makes it under pandas 3: the unit kept, the zone a ZoneInfo."""
    dtype = _DATETIME_TZ.get((unit, tz))
    if dtype is None:
        dtype = _DATETIME_TZ.setdefault((unit, tz), pd.DatetimeTZDtype(unit, ZoneInfo(tz)))
    return dtype


def _values(column: pa.ChunkedArray):
    """One column as a numpy array to be copied into a block, or a pandas extension array of
    its own; None for a type left to to_pandas (text, NULL-typed, anything mare does not answer).
    Arrays from to_numpy may be Arrow's read-only buffer: numpy ones are copied into the
    frame's blocks, the others are copies already (NULLs filled)."""
    t = column.type
    if t == pa.float64() or pa.types.is_duration(t):
        return column.to_numpy()  # NULLs as NaN (NaT)
    if pa.types.is_timestamp(t):
        values = column.to_numpy()  # datetime64, NaT for NULLs
        if t.tz is None:
            return values
        return pd.array(values.view("int64").copy(), dtype=_datetime_tz(t.unit, t.tz), copy=False)
    if t == pa.int64() or t == pa.bool_():
        if column.null_count == 0:
            return column.to_numpy()
        mask = column.is_null().to_numpy()
        if t == pa.int64():
            return pd.arrays.IntegerArray(column.fill_null(0).to_numpy().copy(), mask.copy())
        return pd.arrays.BooleanArray(column.fill_null(False).to_numpy().copy(), mask.copy())
    return None


def _small_frame(table: pa.Table) -> Optional[pd.DataFrame]:
    """The frame built from the table's columns, or None when one has a type left to to_pandas.
    Numpy columns of one dtype share a 2-D block (to_pandas' consolidated layout), filled by the
    one copy that makes them the frame's own."""
    n = table.num_rows
    blocks = []
    by_dtype: Dict[np.dtype, list] = {}
    for i, column in enumerate(table.columns):
        values = _values(column)
        if values is None:
            return None
        if isinstance(values, np.ndarray):
            by_dtype.setdefault(values.dtype, []).append((i, values))
        else:
            blocks.append((values, np.array([i], dtype=np.intp)))
    for dtype, columns in by_dtype.items():
        block = np.empty((len(columns), n), dtype=dtype)
        for row, (_, values) in enumerate(columns):
            block[row] = values
        blocks.append((block, np.array([i for i, _ in columns], dtype=np.intp)))
    return create_dataframe_from_blocks(blocks, index=pd.RangeIndex(n), columns=_column_index(tuple(table.column_names)))
