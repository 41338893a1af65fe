"""A gateway in front of the sandbox that times out after the sandbox took the message.

    from chaos.proxy import GatewayProxy
    with GatewayProxy(sandbox.url, every=3) as proxy:   # D7SMS["BASE_URL"] = proxy.url
        ...
    proxy.posts, proxy.injected

Every request is forwarded to ``upstream`` and its answer read in full. The answer to every
``every``-th POST (the 3rd, 6th, ... counted over all connections) is then thrown away and
replaced by ``status`` (504) with the HTML page a real gateway (nginx) sends: the sandbox has
the message, the client is told the gateway gave up. Other requests get the sandbox's answer.
Loopback only, HTTP/1.1 keep-alive on both sides; no Django, so tests and the harness share it.
"""

import http.client
import itertools
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from chaos.background import BackgroundServer

# Hop-by-hop headers are the proxy's own business on each side, never forwarded.
_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}


def gateway_page(status):
    """The HTML body nginx sends with ``status``."""
    title = f"{status} {HTTPStatus(status).phrase.replace('Timeout', 'Time-out')}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


class GatewayProxy(BackgroundServer):
    """Forward to ``upstream``; answer every ``every``-th POST with ``status`` after upstream handled it."""

    def __init__(self, upstream, *, every=3, status=504, host="127.0.0.1", port=0):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port or 80)
        self.every, self.status = every, status
        self.posts = self.injected = 0
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        server = ThreadingHTTPServer((host, port), _Handler)
        server.daemon_threads = True
        server.proxy = self
        super().__init__(server, "gateway-proxy")

    def take(self, method):
        """Count one request; True when its answer is to be replaced."""
        if method != "POST":
            return False
        with self._lock:
            self.posts = next(self._numbers)
            hit = self.posts % self.every == 0
            self.injected += hit
        return hit


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else every keep-alive answer waits ~40 ms
    upstream = None

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        try:
            status, reason, answer_headers, answer = self._forward(body, headers)
        except (OSError, http.client.HTTPException):
            self.upstream = None
            self._answer(502, "Bad Gateway", [("Content-Type", "text/html")], gateway_page(502))
            return
        if proxy.take(self.command):
            self._answer(proxy.status, HTTPStatus(proxy.status).phrase, [("Content-Type", "text/html")],
                         gateway_page(proxy.status))
            return
        self._answer(status, reason, answer_headers, answer)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _forward(self, body, headers):
        if self.upstream is None:
            self.upstream = http.client.HTTPConnection(*self.server.proxy.upstream, timeout=60)
        self.upstream.request(self.command, self.path, body=body, headers=headers)
        response = self.upstream.getresponse()
        answer = response.read()
        kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP | {"content-length"}]
        if response.will_close:
            self.upstream.close()
            self.upstream = None
        return response.status, response.reason, kept, answer

    def _answer(self, status, reason, headers, body):
        self.send_response_only(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def finish(self):
        if self.upstream is not None:
            self.upstream.close()
        try:
            super().finish()
        except OSError:
            pass
