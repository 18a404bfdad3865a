"""The Python client of mare: SQL answers as pandas DataFrames and Arrow tables (through mare's
Arrow answers, docs/formats/arrow.md), the sensors, readings in, and exports to Parquet or CSV.

    import mare
    m = mare.connect("http://127.0.0.1:8080")
    df = m.query("SELECT ts, temperature FROM readings WHERE sensor_id = 1")
"""
from .client import Client, connect
from .errors import IngestError, MareError, QueryError

__all__ = ["Client", "connect", "MareError", "QueryError", "IngestError"]
__version__ = "0.1.0"
