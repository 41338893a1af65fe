"""A socketserver served by a daemon thread of this process, for the harness's loopback servers."""

import threading


class BackgroundServer:
    """Wraps ``server`` (bound already): :meth:`start`, :meth:`stop`, ``url``, and ``with``."""

    def __init__(self, server, name):
        self._server = server
        self._name = name
        self._thread = None

    @property
    def url(self):
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        """Serve in a background thread; returns self."""
        self._thread = threading.Thread(target=self._server.serve_forever, name=self._name, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop serving and close the listening socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(10)
            self._thread = None
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
