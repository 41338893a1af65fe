"""The HTTP front: keep-alive request handling, fault injection and the /_sandbox/ endpoints.

Built on the stdlib's ThreadingHTTPServer (one thread per connection), tuned so that it is never
what limits a benchmark: HTTP/1.1 keep-alive, Nagle off, one write per response, and nothing
per request that grows with the number of messages held.
"""

import email.utils
import json
import logging
import socket
import struct
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from .api import Response, RestError, server_error
from .faults import HEADER

log = logging.getLogger("d7sms.sandbox")

_GARBAGE = b'{"data": "Succ'  # a body cut short, as from a proxy that gave up mid-answer
_GATEWAY_TIMEOUT = b"<html><head><title>504 Gateway Time-out</title></head><body><h1>504 Gateway Time-out</h1></body></html>"
_REASONS = {s.value: s.phrase for s in HTTPStatus}


class SandboxHTTPServer(ThreadingHTTPServer):
    """Threaded server that remembers its open connections so ``stop`` can close them."""

    daemon_threads = True
    request_queue_size = 1024  # the default of 5 drops SYNs when many clients connect at once

    def __init__(self, address, app, quiet=True):
        self.app = app
        self.quiet = quiet
        self._conns = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, Handler)

    def track(self, sock, add):
        """Add or remove an open client socket."""
        with self._conns_lock:
            (self._conns.add if add else self._conns.discard)(sock)

    def close_all(self):
        """Shut every open keep-alive connection, so no handler thread serves after stop."""
        with self._conns_lock:
            conns, self._conns = list(self._conns), set()
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _DateCache:
    """The Date header, formatted once a second rather than once a request."""

    second, value = 0, ""

    @classmethod
    def get(cls):
        now = int(time.time())
        if now != cls.second:
            cls.second, cls.value = now, email.utils.formatdate(now, usegmt=True)
        return cls.value


class Handler(BaseHTTPRequestHandler):
    """Reads one request at a time from a keep-alive connection and answers it."""

    protocol_version = "HTTP/1.1"
    server_version = "d7sms-sandbox"
    disable_nagle_algorithm = True
    timeout = 300  # an idle keep-alive connection is closed after this many seconds

    def setup(self):
        super().setup()
        self.server.track(self.connection, True)

    def finish(self):
        self.server.track(self.connection, False)
        try:
            super().finish()
        except OSError:
            pass

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def log_message(self, format, *args):
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} - [{self.log_date_time_string()}] {format % args}\n")

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self):
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        path, _, query = self.path.partition("?")
        app = self.server.app
        if path.startswith("/_sandbox/"):
            response = introspect(app.sandbox, self.command, path, query, body)
            return self._write(response)
        try:
            decision = app.faults.decide(self.headers.get(HEADER))
        except ValueError as exc:
            return self._write(Response(400, {"title": f"Bad {HEADER} header", "description": str(exc)}))
        app.store.count("requests")
        if decision.latency_ms:
            time.sleep(decision.latency_ms / 1000.0)
        kind = decision.kind
        if kind is not None:
            app.store.count(f"fault_{kind}")
        if kind == "drop":
            return self._drop()
        if kind == "500":
            return self._write(RestError(500, "Jasmin httpapi connection error",
                                         "Could not connect to Jasmin http api").response)
        if kind == "429":
            return self._write(RestError(429, "Too Many Requests", "Throughput exceeded, retry later",
                                         headers=(("Retry-After", "1"),)).response)
        try:
            response = app.rest.handle(self.command, path, query, self.headers, body)
        except Exception:
            # A sandbox bug must show as a 500 to the client under test, not as a dropped connection.
            log.exception("Sandbox failed on %s %s", self.command, path)
            response = server_error().response
        if kind == "malformed":
            # Processed for real (the message is accepted), but the answer is unreadable.
            response = Response(200, None)
            response.body = _GARBAGE
        elif kind == "504":
            # Processed for real, but a gateway in front gave up waiting for the answer.
            response = Response(504, None, content_type="text/html")
            response.body = _GATEWAY_TIMEOUT
        self._write(response)

    def _drop(self):
        # Reset instead of answering: linger 0 makes close() send RST, which clients report
        # as "connection reset" without knowing whether the request was processed.
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _write(self, response):
        body = response.body
        head = [
            f"{self.protocol_version} {response.status} {_REASONS.get(response.status, '')}",
            f"Server: {self.server_version}",
            f"Date: {_DateCache.get()}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(body)}",
        ]
        head.extend(f"{name}: {value}" for name, value in response.headers)
        if self.close_connection:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if self.command != "HEAD":
            data += body
        try:
            self.wfile.write(data)
        except OSError:
            self.close_connection = True
            return
        if not self.server.quiet:
            self.log_request(response.status, len(body))


def introspect(sandbox, method, path, query, body):
    """Answer a ``/_sandbox/`` request (no auth, no faults): messages, deliveries, stats, reset, faults."""
    args = parse_qs(query)
    if path == "/_sandbox/messages" and method == "GET":
        to = args.get("to", [None])[0]
        # An unencoded "+" of an E.164 number arrives as a space; numbers never hold spaces.
        return Response(200, sandbox.accepted(to=to and to.replace(" ", "+")))
    if path == "/_sandbox/deliveries" and method == "GET":
        return Response(200, sandbox.deliveries(kind=args.get("kind", [None])[0]))
    if path == "/_sandbox/stats" and method == "GET":
        return Response(200, sandbox.stats())
    if path == "/_sandbox/reset" and method == "POST":
        sandbox.reset()
        return Response(200, {"reset": True})
    if path == "/_sandbox/faults" and method in ("GET", "POST"):
        if method == "POST":
            try:
                settings = json.loads(body or b"{}")
                sandbox.set_faults(**settings)
            except (ValueError, TypeError) as exc:
                return Response(400, {"title": "Invalid faults", "description": str(exc)})
        return Response(200, sandbox.faults.as_dict())
    if path == "/_sandbox/idle" and method == "GET":
        timeout = float(args.get("timeout", ["10"])[0])
        return Response(200, {"idle": sandbox.wait_idle(timeout)})
    return Response(404, {"title": "404 Not Found"})
