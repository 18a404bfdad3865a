"""Kept-alive HTTP connections to one mare server, so that a notebook's hundredth query does not
pay a TCP (and TLS) handshake again: on loopback that handshake and urllib's set-up cost more than
mare's answer to a small query. Only the standard library's http.client speaks HTTP.

    pool = Connections("http://127.0.0.1:8080", timeout=300)
    with pool.request("POST", "/api/v1/query", body, headers) as r:   # an http.client.HTTPResponse
        data = r.read()
"""
from __future__ import annotations

import http.client
import ssl
import threading
import urllib.parse
from typing import Dict, List, Optional

# Failures of a kept-alive connection that the server closed while it was idle (its keep-alive
# timeout, or its limit of requests per connection): the request never reached it, so it is
# sent once more on a new connection.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class Connections:
    """Idle connections to the server at url, taken by one request at a time and given back
    once its response has been read to the end; any number of threads may share it."""

    def __init__(self, url: str, timeout: float, max_idle: int = 4) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"a mare URL is http://HOST:PORT or https://HOST:PORT, not {url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.max_idle = max_idle
        self._context = ssl.create_default_context() if self.https else None
        self._idle: List[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _new(self) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self._context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[Dict[str, str]] = None) -> "_Response":
        """Sends one request and returns its response (any status) once its headers are in. A
        kept-alive connection the server had closed is replaced once; other network errors
        raise OSError."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        reused = conn is not None
        while True:
            if conn is None:
                conn = self._new()
            try:
                conn.request(method, self.prefix + path, body=body, headers=headers or {})
                return _Response(self, conn, conn.getresponse())
            except _STALE:
                conn.close()
                if not reused:
                    raise
                conn, reused = None, False
            except BaseException:
                conn.close()
                raise

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Closes the idle connections (a request in progress keeps its own)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class _Response:
    """A response that gives its connection back to the pool when closed after being read to
    the end, and closes it otherwise (what is left unread would be the next response's start)."""

    def __init__(self, pool: Connections, conn: http.client.HTTPConnection, response: http.client.HTTPResponse):
        self._pool, self._conn, self.response = pool, conn, response
        self.status = response.status

    def read(self, n: int = -1) -> bytes:
        return self.response.read() if n is None or n < 0 else self.response.read(n)

    def readinto(self, b) -> int:  # what pyarrow's stream reader calls on a file-like object
        return self.response.readinto(b)

    def readable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return self._conn is None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self.response.isclosed() and not self.response.will_close:
            self._pool._give_back(conn)  # read to its end: the connection is ready for another
        else:
            self.response.close()
            conn.close()

    def __enter__(self) -> "_Response":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
