"""The installation-wide send rate: ``D7SMS["THROUGHPUT"]`` messages per second.

Every worker on every host counts against one fixed-window counter in Django's cache, so the
cache must be shared by all of them and count atomically: Redis or Memcached in production. A
local-memory cache throttles each process on its own; the database cache is shared but its
``incr`` reads and writes separately, so busy workers can let a few extra messages through. A
fixed window can let up to twice the rate through across a window boundary; the average over
any longer stretch holds.

A cache that cannot count (a DummyCache keeps nothing, so every ``incr`` fails; or a cache that
is down) would make a worker retry for ever at full CPU. The process then counts on its own
(each process at THROUGHPUT), says so once in the log, and check ``d7sms.E035`` names the cache.
"""

import logging
import math
import threading
import time

from django.core.cache import caches

from d7sms import conf

logger = logging.getLogger("d7sms.sending")

_PREFIX = "d7sms:throttle:"
# Failed counts in a row after which the cache is taken as unable to count.
_MISSES = 2


class _ProcessCounter:
    """The window counter of this process alone: the fallback for a cache that cannot count."""

    def __init__(self):
        self._counts = {}
        self._lock = threading.Lock()

    def add(self, key, value, timeout=None):
        with self._lock:
            if key in self._counts:
                return False
            self._counts = {key: value}  # windows only move forward: older ones are done
            return True

    def incr(self, key, delta=1):
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + delta
            return self._counts[key]


_process_counter = _ProcessCounter()
_warned = set()


def _cannot_count(alias, reason):
    if alias not in _warned:
        _warned.add(alias)
        logger.warning(
            "D7SMS THROUGHPUT: the %r cache cannot count (%s); this process throttles itself alone. "
            "Use a cache every worker shares, such as Redis.", alias, reason,
        )
    return _process_counter


def rate():
    """Messages per second allowed, or None when unthrottled."""
    value = conf.get("THROUGHPUT")
    return float(value) if value else None


def acquire(count=1):
    """Block until ``count`` messages may go out; return the seconds spent waiting.

    A count larger than one window's allowance is taken across as many windows as it needs.
    """
    limit = rate()
    if limit is None or count <= 0:
        return 0.0
    # Below one message per second a window is as long as one message takes.
    window = max(1.0, 1.0 / limit)
    allowance = max(1, math.floor(limit * window))
    alias = conf.get("CACHE_ALIAS")
    cache = caches[alias]
    waited = 0.0
    remaining = count
    misses = 0
    while remaining:
        now = time.time()
        slot = math.floor(now / window)
        key = f"{_PREFIX}{window:g}:{slot}"
        take = min(remaining, allowance)
        try:
            cache.add(key, 0, timeout=int(window) + 5)
            total = cache.incr(key, take)
        except ValueError:  # the key expired between add() and incr(), or the cache keeps nothing
            misses += 1
            if misses >= _MISSES:
                cache = _cannot_count(alias, "its counter vanishes between add() and incr()")
            continue
        except Exception as exc:  # noqa: BLE001  (a cache that is down must not stop sending)
            cache = _cannot_count(alias, type(exc).__name__)
            continue
        if not isinstance(total, int):
            cache = _cannot_count(alias, "incr() returned no number")
            continue
        misses = 0
        granted = max(0, min(take, allowance - (total - take)))
        remaining -= granted
        if remaining:
            pause = (slot + 1) * window - now
            time.sleep(pause)
            waited += pause
    return waited


def chunk_limit(default):
    """The most messages one call should carry so that its tokens come within a few seconds."""
    limit = rate()
    if limit is None:
        return default
    return max(1, min(default, math.floor(limit * 5)))
