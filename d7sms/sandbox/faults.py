"""Fault injection: latency, 500s, 429s, dropped connections, malformed answers, and 504s from
a gateway in front of the server after it took the request.

Random faults draw from one seeded ``random.Random`` (one draw per request), so a seeded run
repeats the same sequence of faults for the same sequence of requests.
"""

import random
import threading
from dataclasses import asdict, dataclass

HEADER = "X-Sandbox-Fault"

# The kinds a request can suffer besides latency, in the order the draw tests them.
KINDS = ("500", "429", "drop", "malformed", "504")


@dataclass(frozen=True)
class Faults:
    """Shares (0..1) of requests that fail each way, plus latency added to every request."""

    error_500_rate: float = 0.0
    error_429_rate: float = 0.0
    drop_rate: float = 0.0
    malformed_rate: float = 0.0
    latency_ms: int = 0
    seed: int | None = None
    gateway_timeout_rate: float = 0.0

    @property
    def rates(self):
        """The share of each kind, in the order of KINDS."""
        return (self.error_500_rate, self.error_429_rate, self.drop_rate, self.malformed_rate, self.gateway_timeout_rate)

    def __post_init__(self):
        rates = self.rates
        if any(not 0.0 <= r <= 1.0 for r in rates) or sum(rates) > 1.0:
            raise ValueError("Fault rates must each be within 0..1 and add up to at most 1.")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must not be negative.")

    def as_dict(self):
        """The settings as a JSON-ready dict (the keys ``set_faults`` takes)."""
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """What to do to one request: ``kind`` is one of KINDS or None; ``latency_ms`` to sleep."""

    kind: str | None = None
    latency_ms: int = 0


NO_FAULT = Decision()


def parse_header(value):
    """Decision from an ``X-Sandbox-Fault`` value such as ``500``, ``drop`` or ``latency=200,429``.

    Raises ValueError for anything else, so that a typo in a test shows instead of passing.
    """
    kind, latency = None, 0
    for token in (t.strip().lower() for t in value.split(",")):
        if token in KINDS:
            kind = token
        elif token.startswith("latency="):
            latency = int(token.partition("=")[2])
        elif token:
            raise ValueError(f"Unknown {HEADER} value: {token!r}")
    return Decision(kind, latency)


class FaultInjector:
    """Decides, per request, which fault (if any) applies; safe to call from many threads."""

    def __init__(self, faults=None):
        self._lock = threading.Lock()
        self.configure(faults or Faults())

    def configure(self, faults):
        """Replace the settings and re-seed the random source."""
        with self._lock:
            self.faults = faults
            self._random = random.Random(faults.seed)
            f = faults
            # Cumulative bounds so that one draw picks at most one kind.
            bounds, total = [], 0.0
            for kind, rate in zip(KINDS, f.rates, strict=True):
                total += rate
                bounds.append((total, kind))
            self._bounds = [(b, k) for b, k in bounds if b > 0]
            self._active = total > 0

    def decide(self, header_value=None):
        """Decision for one request; an explicit header value overrides the random draw."""
        if header_value:
            return parse_header(header_value)
        faults = self.faults
        if not self._active:
            return Decision(None, faults.latency_ms) if faults.latency_ms else NO_FAULT
        with self._lock:
            draw = self._random.random()
        kind = next((k for bound, k in self._bounds if draw < bound), None)
        return Decision(kind, faults.latency_ms)
