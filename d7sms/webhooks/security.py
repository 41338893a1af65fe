"""Who may call the webhooks.

D7 cannot sign its calls, so the proof travels in the URL we gave it: a token bound to the one
message or sendout the call reports on (see :mod:`d7sms.webhooks.tokens`). Deployments may add
an IP allowlist (``WEBHOOK_ALLOWED_IPS``) and Basic auth (``WEBHOOK_BASIC_AUTH``, which D7
sends when the callback URL carries ``user:password@``).

A refused call changes nothing and is not stored; it is counted in the cache and logged at
WARNING, never with its token. The client address is ``REMOTE_ADDR``: behind a proxy, have the
proxy or a middleware set it to the real client before relying on the allowlist.
"""

import base64
import binascii
import functools
import hmac
import ipaddress
import logging

from django.core.cache import caches

from d7sms import conf
from d7sms.webhooks import tokens

logger = logging.getLogger("d7sms.webhooks")

FORGED_COUNT_KEY = "d7sms:webhooks:forged"


class Denied(Exception):
    """The call is not authenticated; ``status`` is the HTTP status to answer with."""

    def __init__(self, reason, status=403):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def remote_addr(request):
    """The client's IP address as a string, or None when ``REMOTE_ADDR`` is not an address."""
    value = request.META.get("REMOTE_ADDR") or ""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


@functools.lru_cache(maxsize=8)
def _networks(allowed):
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in allowed)


def _allowed_ip(addr, setting):
    if isinstance(setting, str):
        setting = [setting]
    if addr is None:
        return False
    ip = ipaddress.ip_address(addr)
    return any(ip in net for net in _networks(tuple(setting)))


def _basic_auth_ok(request, expected):
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return False
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    want_user, want_password = expected
    # Both compared in full every time so the answer's timing says nothing about either.
    user_ok = hmac.compare_digest(user.encode(), str(want_user).encode())
    password_ok = hmac.compare_digest(password.encode(), str(want_password).encode())
    return bool(sep) and user_ok and password_ok


def authenticate(request, kind, key, token):
    """Raise :class:`Denied` unless the call may report on ``kind`` for object ``key``.

    ``kind`` is a token kind ("dlr", "dlr-any", "callback", "errback"); ``token`` the one from
    the URL, checked in constant time.
    """
    allowed = conf.get("WEBHOOK_ALLOWED_IPS")
    if allowed and not _allowed_ip(remote_addr(request), allowed):
        raise Denied("address not in WEBHOOK_ALLOWED_IPS")
    basic = conf.get("WEBHOOK_BASIC_AUTH")
    if basic and not _basic_auth_ok(request, basic):
        raise Denied("missing or wrong Basic auth credentials", status=401)
    if not tokens.check_token(kind, key, token):
        raise Denied("invalid token")


def record_denied(request, kind, key, denied):
    """Count a refused call and log it at WARNING (without the token)."""
    try:
        cache = caches[conf.get("CACHE_ALIAS")]
        if not cache.add(FORGED_COUNT_KEY, 1, timeout=None):
            cache.incr(FORGED_COUNT_KEY)
    except Exception:  # noqa: BLE001  (a cache outage must not turn a 403 into a 500)
        logger.exception("Could not count a refused webhook call")
    logger.warning(
        "Refused %s webhook for %s from %s: %s", kind, key, remote_addr(request) or "?", denied.reason
    )


def denied_count():
    """How many webhook calls were refused since the counter was last cleared."""
    try:
        return int(caches[conf.get("CACHE_ALIAS")].get(FORGED_COUNT_KEY) or 0)
    except Exception:  # noqa: BLE001
        return 0
