"""The Sandbox: one object that starts the server and its workers and answers questions about them."""

import threading
from decimal import Decimal
from types import SimpleNamespace

from .accounts import Accounts, SandboxUser
from .api import RestApi
from .faults import FaultInjector, Faults
from .gateway import DEFAULT_PRICE_PER_PART, Gateway
from .records import Store
from .scheduler import Scheduler
from .server import SandboxHTTPServer
from .thrower import Thrower


class Sandbox:
    """A D7-compatible REST server on ``host:port`` (0: any free port), run in background threads.

    ``dlr_delay`` is the wait before a level-1 report (level 2 follows at twice that);
    ``dlr_retries`` and ``dlr_retry_delay`` govern resending a DLR that was not ACKed;
    ``threads`` is the number of workers sending batches, callbacks and DLRs.
    """

    def __init__(self, host="127.0.0.1", port=0, users=None, price_per_part=DEFAULT_PRICE_PER_PART,
                 dlr_retries=3, dlr_retry_delay=2.0, dlr_delay=0.2, callback_timeout=5.0,
                 faults=None, quiet=True, threads=8):
        self.host, self.port, self.quiet = host, port, quiet
        if users is None:
            users = [SandboxUser("foo", "bar", Decimal("100"))]
        if isinstance(faults, dict):
            faults = Faults(**faults)
        self._initial_faults = faults or Faults()
        self.accounts = Accounts(users)
        self.store = Store()
        self.scheduler = Scheduler(threads=threads)
        self.thrower = Thrower(self.scheduler, self.store, timeout=callback_timeout,
                               dlr_retries=dlr_retries, dlr_retry_delay=dlr_retry_delay)
        self.gateway = Gateway(self.accounts, self.store, self.thrower,
                               price_per_part=Decimal(price_per_part), dlr_delay=dlr_delay)
        self.injector = FaultInjector(self._initial_faults)
        self.rest = RestApi(self.accounts, self.gateway, self.scheduler, self.store)
        self._server = None
        self._thread = None

    def start(self):
        """Bind, start serving and the workers; returns self."""
        if self._thread is not None:
            raise RuntimeError("This Sandbox was started already.")
        app = SimpleNamespace(sandbox=self, rest=self.rest, faults=self.injector, store=self.store)
        self._server = SandboxHTTPServer((self.host, self.port), app, quiet=self.quiet)
        self.port = self._server.server_address[1]
        self.scheduler.start()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="d7sms-sandbox-http", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop serving, close open connections and drop whatever was still scheduled."""
        if self._server is not None:
            self._server.shutdown()
            self._server.close_all()
            self._server.server_close()
            self._server = None
        self.scheduler.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def url(self):
        """Base URL, e.g. ``http://127.0.0.1:8099``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def accepted(self, to=None):
        """Accepted messages as dicts, oldest first; ``to`` keeps those for one destination."""
        return self.store.messages(to=to)

    def deliveries(self, kind=None):
        """Every callback/errback/DLR attempt as dicts; ``kind`` keeps one kind."""
        return self.store.deliveries(kind=kind)

    @property
    def faults(self):
        """The fault settings in force (a Faults)."""
        return self.injector.faults

    def set_faults(self, error_500_rate=0.0, error_429_rate=0.0, drop_rate=0.0, malformed_rate=0.0,
                   latency_ms=0, seed=None, gateway_timeout_rate=0.0):
        """Replace the fault settings (every one not given goes back to none)."""
        self.injector.configure(Faults(float(error_500_rate), float(error_429_rate), float(drop_rate),
                                       float(malformed_rate), int(latency_ms), seed, float(gateway_timeout_rate)))

    def reset(self):
        """Forget messages and deliveries, drop scheduled work, restore balances and faults."""
        self.scheduler.clear()
        self.store.clear()
        self.accounts.restore()
        self.injector.configure(self._initial_faults)

    def balance(self, username):
        """Current balance of ``username`` (Decimal; None for an account without quota)."""
        return self.accounts.balance(username)

    def sms_count(self, username):
        """Parts ``username`` may still send (int; None for an account without that quota)."""
        return self.accounts.sms_count(username)

    def wait_idle(self, timeout=None):
        """Block until no batch, callback or DLR is scheduled or running; False on timeout."""
        return self.scheduler.wait_idle(timeout)

    def stats(self):
        """Counts of requests, faults, accepted messages and deliveries, plus balances."""
        return {
            **self.store.stats(),
            "pending": self.scheduler.pending(),
            "balances": {k: (None if v is None else str(v)) for k, v in self.accounts.balances().items()},
        }
