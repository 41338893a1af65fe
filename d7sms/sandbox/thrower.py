"""Calls the client back: batch callbacks/errbacks (once, never retried) and DLRs (retried).

Each scheduler worker keeps its own keep-alive connection per host, so throwing 100k reports
does not open 100k sockets.
"""

import base64
import http.client
import threading
import time
from urllib.parse import unquote, urlencode, urlsplit

from .records import Delivery

ACK = b"ACK/Jasmin"
# Errors that mean a reused keep-alive connection had been closed by the other side before
# our request reached it: those are resent once on a fresh connection.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class _Target:
    """A parsed client URL: where to connect, the request target and any Basic credentials."""

    __slots__ = ("key", "path", "query", "auth")

    def __init__(self, url):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"Not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self.key = (parts.scheme, parts.hostname, port)
        self.path = parts.path or "/"
        self.query = parts.query
        self.auth = None
        if parts.username is not None:
            # Userinfo is how the client authenticates our calls: send it as Basic auth.
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.auth = "Basic " + base64.b64encode(pair.encode()).decode()


class Thrower:
    """Throws callbacks and DLRs through a Scheduler and records every attempt in a Store."""

    def __init__(self, scheduler, store, timeout=5.0, dlr_retries=3, dlr_retry_delay=2.0):
        self.scheduler = scheduler
        self.store = store
        self.timeout = timeout
        self.dlr_retries = dlr_retries
        self.dlr_retry_delay = dlr_retry_delay
        self._local = threading.local()

    def callback(self, kind, url, params, batch_id, message_id=None):
        """Queue one batch callback (``kind`` "callback") or errback: one GET, never retried."""
        self.scheduler.submit(0, self._throw, kind, url, "GET", params, 1, batch_id, message_id)

    def dlr(self, delay, url, method, params, batch_id=None):
        """Queue one DLR, thrown after ``delay`` seconds and resent until the receiver ACKs."""
        self.scheduler.submit(delay, self._throw, "dlr", url, method, params, 1, batch_id, params["id"])

    def _throw(self, kind, url, method, params, attempt, batch_id, message_id):
        generation = self.scheduler.generation
        status, error, body = None, None, b""
        try:
            status, body = self.request(method, url, params)
        except Exception as exc:  # any failure is just a failed attempt to the server
            error = f"{type(exc).__name__}: {exc}"
        if kind == "dlr":
            acked = status == 200 and body.strip() == ACK
        else:
            # The server ignores the answer to a batch callback; "acked" only reports it.
            acked = status is not None and status < 400
        if generation != self.scheduler.generation:
            return  # the sandbox was reset while this attempt ran
        self.store.add_delivery(Delivery(kind, url, method, params, attempt, status, error, acked,
                                         message_id, batch_id, time.time()))
        if kind == "dlr" and not acked and attempt <= self.dlr_retries:
            self.scheduler.submit(self.dlr_retry_delay, self._throw, kind, url, method, params,
                                  attempt + 1, batch_id, message_id)

    def request(self, method, url, params):
        """Send ``params`` to ``url`` (GET: query string, POST: form body); (status, body)."""
        target = _Target(url)
        encoded = urlencode(params)
        headers = {"User-Agent": "d7sms-sandbox"}
        if target.auth:
            headers["Authorization"] = target.auth
        if method == "GET":
            sep = "&" if target.query else ""
            path, body = f"{target.path}?{target.query}{sep}{encoded}", None
        else:
            path = f"{target.path}?{target.query}" if target.query else target.path
            body = encoded.encode("ascii")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = self._connection(target.key)
        reused = conn.sock is not None
        try:
            return self._exchange(conn, method, path, body, headers)
        except _STALE:
            conn.close()
            if not reused:
                raise
        except Exception:
            conn.close()
            raise
        try:
            return self._exchange(conn, method, path, body, headers)
        except Exception:
            conn.close()
            raise

    @staticmethod
    def _exchange(conn, method, path, body, headers):
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()

    def _connection(self, key):
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        conn = conns.get(key)
        if conn is None:
            scheme, host, port = key
            cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            conn = conns[key] = cls(host, port, timeout=self.timeout)
        return conn
