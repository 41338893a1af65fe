"""Who may call the webhooks, as DRF authentication and permission classes.

D7 cannot sign its calls, so the proof travels in the URL we gave it: a token bound to the one
message or sendout the call reports on (see :mod:`d7sms.webhook_urls`). Deployments may add
an IP allowlist (``WEBHOOK_ALLOWED_IPS``) and Basic auth (``WEBHOOK_BASIC_AUTH``, which D7
sends when the callback URL carries ``user:password@``).

A refused call changes nothing and is not stored; it is counted in the cache and logged at
WARNING, never with its token, and :class:`RedactTokens` keeps the token out of the lines
Django's request logger writes about the receivers' answers. The client address is
``REMOTE_ADDR``: behind a proxy, have the proxy or a middleware set it to the real client
before relying on the allowlist.
"""

import base64
import binascii
import functools
import hmac
import ipaddress
import logging

from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from rest_framework import authentication, exceptions, permissions

from d7sms import conf, webhook_urls

logger = logging.getLogger("d7sms.webhooks")

FORGED_COUNT_KEY = "d7sms:webhooks:forged"
REALM = 'Basic realm="d7sms"'


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


class BasicAuthentication(authentication.BaseAuthentication):
    """``WEBHOOK_BASIC_AUTH``, where configured: 401 with a Basic challenge without it."""

    def authenticate(self, request):
        expected = conf.get("WEBHOOK_BASIC_AUTH")
        if expected and not _basic_auth_ok(request, expected):
            refuse(request, "missing or wrong Basic auth credentials", exceptions.AuthenticationFailed)
        return None

    def authenticate_header(self, request):
        return REALM if conf.get("WEBHOOK_BASIC_AUTH") else None


class TokenPermission(permissions.BasePermission):
    """The URL's token (and the address, with ``WEBHOOK_ALLOWED_IPS``): 403 when either is wrong.

    The view names what the call reports on with ``token_subject(**url kwargs)``, which
    returns the token kind ("dlr", "dlr-any", "callback", "errback") and the object's key.
    """

    def has_permission(self, request, view):
        allowed = conf.get("WEBHOOK_ALLOWED_IPS")
        if allowed and not _allowed_ip(remote_addr(request), allowed):
            refuse(request, "address not in WEBHOOK_ALLOWED_IPS")
        kind, key = view.token_subject(**view.kwargs)
        try:
            valid = webhook_urls.check_token(kind, key, view.kwargs.get("token"))
        except ImproperlyConfigured as exc:
            # No call can be told from a forgery with this secret: D7 retries reports later.
            logger.error("Refused a %s webhook call: %s", kind, exc)
            raise Unavailable() from None
        if not valid:
            refuse(request, "invalid token")
        return True


class Unavailable(exceptions.APIException):
    """The installation cannot check calls now (its webhook secret is refused): 503."""

    status_code = 503
    default_detail = "Service unavailable: the webhook secret is not usable; see the server log."
    default_code = "unavailable"


def refuse(request, reason, exception=exceptions.PermissionDenied):
    """Count and log a refused call, then raise ``exception`` (a DRF one) saying why."""
    record_denied(request, reason)
    raise exception(f"Forbidden: {reason}")


class RedactTokens(logging.Filter):
    """Masks the receivers' URL tokens in what Django's request logger writes (4xx and 5xx).

    Added to the ``django.request`` logger by the app config; records of other URLs pass
    unchanged.
    """

    def filter(self, record):
        request = getattr(record, "request", None)
        match = getattr(request, "resolver_match", None)
        token = match.kwargs.get("token") if match is not None and match.app_name == "d7sms" else None
        if token and isinstance(record.args, tuple):
            record.args = tuple(a.replace(token, "<token>") if isinstance(a, str) else a for a in record.args)
        return True


def record_denied(request, reason):
    """Count a refused call and log it at WARNING (without the token)."""
    try:
        cache = caches[conf.get("CACHE_ALIAS")]
        if not cache.add(FORGED_COUNT_KEY, 1, timeout=None):
            cache.incr(FORGED_COUNT_KEY)
    except Exception:  # noqa: BLE001  (a cache outage must not turn a 403 into a 500)
        logger.exception("Could not count a refused webhook call")
    match = getattr(request, "resolver_match", None)
    name = match.url_name if match is not None else "?"
    subject = {k: v for k, v in (match.kwargs if match is not None else {}).items() if k != "token"}
    logger.warning(
        "Refused %s webhook for %s from %s: %s", name, subject or "all", remote_addr(request) or "?", reason
    )


def denied_count():
    """How many webhook calls were refused since the counter was last cleared."""
    try:
        return int(caches[conf.get("CACHE_ALIAS")].get(FORGED_COUNT_KEY) or 0)
    except Exception:  # noqa: BLE001
        return 0
