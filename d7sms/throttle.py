"""The installation-wide send rate: ``D7SMS["THROUGHPUT"]`` messages per second.

Every worker on every host counts against one fixed-window counter in Django's cache, so the
cache must be shared by all of them and count atomically: Redis or Memcached in production. A
local-memory cache throttles each process on its own; the database cache is shared but its
``incr`` reads and writes separately, so busy workers can let a few extra messages through. A
fixed window can let up to twice the rate through across a window boundary; the average over
any longer stretch holds.
"""

import math
import time

from django.core.cache import caches

from d7sms import conf

_PREFIX = "d7sms:throttle:"


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
    cache = caches[conf.get("CACHE_ALIAS")]
    waited = 0.0
    remaining = count
    while remaining:
        now = time.time()
        slot = math.floor(now / window)
        key = f"{_PREFIX}{window:g}:{slot}"
        take = min(remaining, allowance)
        cache.add(key, 0, timeout=int(window) + 5)
        try:
            total = cache.incr(key, take)
        except ValueError:  # the key expired between add() and incr()
            continue
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
