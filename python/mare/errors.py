"""What goes wrong, as exceptions that carry the server's own reasons: a statement mare refused
(with its line and column), readings it rejected (with each reason), or a server that is not
there or answered something else."""
from __future__ import annotations

from typing import Any, Dict, List, Optional


class MareError(Exception):
    """Any failure talking to mare: status is the HTTP status (None when there was no answer)."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class QueryError(MareError):
    """A statement mare refused or could not run: a bad statement or one past a limit (400), too
    many statements at once (503), a failure of the store (500). line and column point at the
    fault in the statement (0 when it has no position)."""

    def __init__(self, message: str, status: Optional[int], line: int = 0, column: int = 0) -> None:
        super().__init__(message, status)
        self.line = line
        self.column = column


class IngestError(MareError):
    """Readings mare did not take. accepted counts those it did take (they are stored: do not
    send them again); reasons counts the rejects by reason; errors lists the first of them, each
    {"row": index in the DataFrame, "reason": ..., "detail": ...}; unacknowledged_rows lists the
    rows mare could not store after accepting them (a full disk, say): only those may be sent
    again."""

    def __init__(self, message: str, status: Optional[int], accepted: int, rejected: int, reasons: Dict[str, int],
                 errors: List[Dict[str, Any]], unacknowledged_rows: Optional[List[Any]] = None) -> None:
        super().__init__(message, status)
        self.accepted = accepted
        self.rejected = rejected
        self.reasons = reasons
        self.errors = errors
        self.unacknowledged_rows = unacknowledged_rows or []
