"""The project's own Django app over real HTTP on a free loopback port, served by threads of
this process: where the sandbox's DLRs and batch callbacks arrive.

    with AppServer() as app:       # D7SMS["CALLBACK_BASE_URL"] = app.url
        ...

Django's threaded development server (what ``LiveServerTestCase`` uses), without the test
case around it; each connection is served in its own thread with its own database connection,
closed when the request ends. :meth:`AppServer.stop` also closes the keep-alive connections
still open, so that once it returns nothing more reaches the app.
"""

import socket
import threading

from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

from chaos.background import BackgroundServer


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


class _Server(ThreadedWSGIServer):
    """Remembers its open connections, so that stopping can close them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.open = set()
        self.open_lock = threading.Lock()

    def process_request(self, request, client_address):
        with self.open_lock:
            self.open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.open_lock:
            self.open.discard(request)
        super().shutdown_request(request)

    def close_open(self):
        with self.open_lock:
            requests, self.open = list(self.open), set()
        for request in requests:
            try:
                request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class AppServer(BackgroundServer):
    """Serve ``settings.ROOT_URLCONF`` on ``http://127.0.0.1:<free port>`` until :meth:`stop`."""

    def __init__(self, host="127.0.0.1"):
        server = _Server((host, 0), _Quiet, allow_reuse_address=False)
        server.set_app(WSGIHandler())
        super().__init__(server, "app-server")

    def stop(self):
        """Stop serving; close the listening socket and every connection still open."""
        super().stop()
        self._server.close_open()
