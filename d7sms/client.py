"""HTTP client for the D7 REST API (``/secure/send``, ``/secure/sendbatch``, ``/secure/balance``).

One :class:`D7Client` holds one keep-alive ``requests`` session; create it after any fork
(e.g. inside a worker), share it between threads of one process, and close it when done.
Every failure is a :mod:`d7sms.errors` exception whose class says what to do next.
"""

import base64
import json
import logging
import os
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from d7sms import conf, wire
from d7sms.version import __version__
from d7sms.errors import InvalidRequest, NotSent, OutcomeUnknown, error_for_response

__all__ = ["D7Client", "SendResult", "BatchResult", "Balance"]

logger = logging.getLogger("d7sms.client")

# Built once: json.dumps() with options would build a new encoder on every call.
_encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_decode_json = json.JSONDecoder().decode
_decode_json_exact = json.JSONDecoder(parse_float=Decimal).decode

_SUCCESS_PREFIX = 'Success "'
_OBJECT_ADDRESS = re.compile(r"<[^<>]* object at 0x[0-9a-fA-F]+>:?\s*")
# Threads sharing one client each hold a connection; fewer slots than threads would make
# urllib3 drop and reopen connections.
_POOL_SIZE = 32


@dataclass(frozen=True, slots=True)
class SendResult:
    """A message D7 accepted; ``message_id`` is the id its delivery reports carry."""

    message_id: str


@dataclass(frozen=True, slots=True)
class BatchResult:
    """A batch D7 queued.

    ``message_count`` is what D7 says it queued, ``expected_count`` what the client sent
    (one per destination); they differ when D7 skipped messages. ``scheduled`` is the delay
    in seconds for a scheduled batch, else None.
    """

    batch_id: str
    message_count: int
    scheduled: float | None = None
    expected_count: int | None = None


@dataclass(frozen=True, slots=True)
class Balance:
    """Account balance and SMS quota; None where D7 reports ``ND`` (no limit defined)."""

    balance: Decimal | None
    sms_count: int | None


class _BasicAuth(AuthBase):
    """Adds a Basic Authorization header computed once; its repr never shows it."""

    __slots__ = ("header", "secrets")

    def __init__(self, username, password):
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self.header = "Basic " + token
        # Longest first, so that masking the password cannot break up the token.
        self.secrets = tuple(s for s in (token, password) if s)

    def __call__(self, request):
        request.headers["Authorization"] = self.header
        return request

    def __repr__(self):
        return "<_BasicAuth ***>"


class _Body(bytes):
    """A request body; its repr hides the callback URLs (and their tokens) it carries."""

    __slots__ = ()

    def __repr__(self):
        return f"<JSON body, {len(self)} bytes>"


class D7Client:
    """Client for one D7 account. Methods raise :class:`d7sms.errors.D7Error` subclasses."""

    def __init__(self, base_url, username, password, *, connect_timeout=5.0, read_timeout=30.0, session=None):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http:// or https:// URL.")
        if "@" in parts.netloc:
            # Said without echoing the URL, which holds the secret.
            raise ValueError("base_url must not contain credentials; pass username and password.")
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._auth = _BasicAuth(username, password)
        self._timeout = (float(connect_timeout), float(read_timeout))
        json_headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"d7sms/{__version__}",
        }
        # A None value removes a session header from that one request.
        self._get_headers = {"Content-Type": None}
        self._send_url = self.base_url + "/secure/send"
        self._batch_url = self.base_url + "/secure/sendbatch"
        self._balance_url = self.base_url + "/secure/balance"
        self._ping_url = self.base_url + "/ping"
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            # max_retries=0 means urllib3 never repeats a request by itself: a repeated POST
            # could send an SMS twice, so only the caller decides about retries.
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=_POOL_SIZE, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            # requests re-reads proxy settings from os.environ on every call, a large share of
            # the client's CPU per message (bench/send_bench.py); read them once here instead.
            session.trust_env = False
            session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
            ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if ca_bundle:
                session.verify = ca_bundle
            # On our own session the headers are set once: requests merges per-call headers
            # into the session's on every request.
            session.headers.update(json_headers)
            self._json_headers = None
        else:
            self._json_headers = json_headers
            self._get_headers = {"Accept": "application/json", "User-Agent": json_headers["User-Agent"]}
        self._session = session

    @classmethod
    def from_settings(cls):
        """Return a client configured from the ``D7SMS`` settings."""
        return cls(
            conf.get("BASE_URL"),
            conf.get("USERNAME"),
            conf.get("PASSWORD"),
            connect_timeout=conf.get("CONNECT_TIMEOUT"),
            read_timeout=conf.get("READ_TIMEOUT"),
        )

    def __repr__(self):
        return f"{type(self).__name__}(base_url={self.base_url!r}, username={self.username!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        """Close the connections, unless the session was passed in (its owner closes it)."""
        if self._owns_session:
            self._session.close()

    # -- API calls ------------------------------------------------------------------------

    def send(self, to, *, content=None, hex_content=None, coding=None, sender=None, dlr=None,
             dlr_url=None, dlr_level=None, dlr_method=None, **extra):
        """Send one message to one destination; return its :class:`SendResult`.

        Give exactly one of ``content`` (text) and ``hex_content`` (hex of the raw bytes);
        ``sender`` becomes ``from``; ``dlr`` may be a bool. Further D7 parameters
        (``priority``, ``validity_period``, ``tags``...) go in ``extra``.
        """
        if to is None or to == "" or isinstance(to, (bool, list, tuple, set)):
            raise InvalidRequest(
                "send() takes one destination (str or int); use sendbatch() for several.",
                reached_provider=False,
            )
        if (content is None or content == "") == (hex_content is None or hex_content == ""):
            raise InvalidRequest("Give exactly one non-empty content or hex_content.", reached_provider=False)
        payload = {"to": to, "content": content} if content else {"to": to, "hex_content": hex_content}
        if isinstance(dlr, bool):
            dlr = "yes" if dlr else "no"
        for key, value in (("from", sender), ("coding", coding), ("dlr", dlr), ("dlr-url", dlr_url),
                           ("dlr-level", dlr_level), ("dlr-method", dlr_method)):
            if value is not None:
                payload[key] = value
        for key, value in extra.items():
            if value is not None:
                payload[wire.WIRE_KEYS.get(key, key)] = value
        data = self._call("POST", self._send_url, payload).get("data")
        if isinstance(data, str):
            start = data.find(_SUCCESS_PREFIX)
            if start >= 0:
                # The real server drops the closing quote; the provider's page keeps it.
                message_id = data[start + len(_SUCCESS_PREFIX):].strip().rstrip('"').strip()
                if message_id:
                    return SendResult(message_id)
        raise self._unreadable(data)

    def sendbatch(self, messages, *, globals=None, callback_url=None, errback_url=None, schedule_at=None):
        """Queue a batch; return its :class:`BatchResult`.

        ``messages`` is a list of dicts of send parameters (``to`` may be a list); ``globals``
        holds parameters every message inherits. Keys may use ``_`` or ``-``; ``sender``
        means ``from``. Messages D7 would skip silently (no ``to``, no content) are refused
        here with :class:`InvalidRequest` naming their indexes. ``schedule_at`` is a string
        passed as is, an aware datetime or a timedelta (both sent as ``"<N>s"``).
        """
        wire_globals = wire.wire_params(globals) if globals else {}
        wire_messages = [wire.wire_params(m) if isinstance(m, Mapping) else m for m in messages]
        expected = wire.check_batch(wire_messages, wire_globals)
        payload = {"messages": wire_messages}
        if wire_globals:
            payload["globals"] = wire_globals
        batch_config = {}
        if callback_url is not None:
            batch_config["callback_url"] = callback_url
        if errback_url is not None:
            batch_config["errback_url"] = errback_url
        if schedule_at is not None:
            batch_config["schedule_at"] = wire.schedule_value(schedule_at)
        if batch_config:
            payload["batch_config"] = batch_config
        data = self._call("POST", self._batch_url, payload).get("data")
        if isinstance(data, dict):
            batch_id, count = data.get("batchId"), data.get("messageCount")
            if isinstance(batch_id, str) and batch_id and isinstance(count, int) and not isinstance(count, bool):
                if count != expected:
                    logger.debug("Batch %s: D7 queued %d messages, %d were sent.", batch_id, count, expected)
                return BatchResult(batch_id, count, wire.seconds_value(data.get("scheduled")), expected)
        raise self._unreadable(data)

    def balance(self):
        """Return the account's :class:`Balance`."""
        data = self._call("GET", self._balance_url, None, exact=True).get("data")
        if isinstance(data, dict):
            try:
                return Balance(_number_or_nd(data.get("balance")), _number_or_nd(data.get("sms_count"), True))
            except (ValueError, ArithmeticError):
                pass
        raise self._unreadable(data)

    def ping(self):
        """Return True when the server answers ``GET /ping`` with a 2xx, False otherwise."""
        try:
            response = self._session.get(
                self._ping_url, headers=self._get_headers, timeout=self._timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            logger.debug("Ping %s failed: %s", self.base_url, type(exc).__name__)
            return False
        return 200 <= response.status_code < 300

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, method, url, payload, *, exact=False):
        """Do one authenticated request; return the decoded 2xx JSON object or raise."""
        if payload is None:
            body, headers = None, self._get_headers
        else:
            body, headers = _Body(_encode_json(payload).encode("utf-8")), self._json_headers
        started = time.perf_counter()
        try:
            response = self._session.request(
                method, url, data=body, headers=headers, auth=self._auth,
                timeout=self._timeout, allow_redirects=False,
            )
        except requests.RequestException as exc:
            error = self._transport_error(exc, method, url)
            logger.debug("%s %s failed after %.1f ms: %r", method, url, _ms(started), error)
            # Not chained: the frames of requests, urllib3 and http.client below hold the
            # Authorization header among their variables, and tracebacks (Django's debug page,
            # error reports) show the variables of every chained frame. ``error`` says what failed.
            raise error from None
        status = response.status_code
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s -> %d in %.1f ms", method, url, status, _ms(started))
        if 200 <= status < 300:
            try:
                document = (_decode_json_exact if exact else _decode_json)(response.content.decode("utf-8"))
            except ValueError:
                document = None
            if isinstance(document, dict):
                return document
            raise self._unreadable(response.content, status)
        body = self._scrub(response.content.decode("utf-8", "replace"))
        raise error_for_response(status, body, retry_after=response.headers.get("Retry-After"))

    def _unreadable(self, what, status=200):
        # D7 answered "OK" but not in a form we can read, so whether it acted is unknown.
        if isinstance(what, bytes):
            what = what.decode("utf-8", "replace")
        text = self._scrub(repr(what) if not isinstance(what, str) else what)[:200]
        return OutcomeUnknown(f"unreadable success answer: {text}", status_code=status, reached_provider=True)

    def _scrub(self, text):
        for secret in self._auth.secrets:
            text = text.replace(secret, "***")
        return text

    def _transport_error(self, exc, method, url):
        """Classify a failed request by whether it can have reached D7."""
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, MaxRetryError) and reason.reason is not None:
            reason = reason.reason
        detail = _OBJECT_ADDRESS.sub("", str(reason)) or type(exc).__name__
        detail = self._scrub(f"{detail} [{method} {urlsplit(url).path}]")
        if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.ProxyError)):
            return NotSent(detail)
        if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                            requests.exceptions.MissingSchema, requests.exceptions.InvalidHeader)):
            return InvalidRequest(detail, reached_provider=False)
        if isinstance(exc, requests.exceptions.SSLError):
            # A refused certificate stops the handshake before any byte of the request; other
            # TLS failures may happen mid-request.
            if _caused_by(exc, ssl.SSLCertVerificationError):
                return NotSent(detail)
            return OutcomeUnknown(detail)
        if isinstance(exc, requests.exceptions.ConnectionError) and isinstance(reason, ConnectTimeoutError):
            # NewConnectionError (refused, unreachable) and NameResolutionError subclass it.
            return NotSent(detail)
        # Read timeouts, resets and closes after sending: D7 may have acted on the request.
        return OutcomeUnknown(detail)


def _ms(started):
    return (time.perf_counter() - started) * 1000


def _caused_by(exc, kind):
    for _ in range(8):
        if exc is None or isinstance(exc, kind):
            return exc is not None
        exc = (getattr(exc, "reason", None) or exc.__cause__ or exc.__context__
               or next((a for a in exc.args if isinstance(a, BaseException)), None))
    return False


def _number_or_nd(value, whole=False):
    """A JSON number or numeric string as Decimal (int if ``whole``); ``"ND"`` or absent -> None."""
    if value is None or value == "ND":
        return None
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise ValueError(f"not a number: {value!r}")
    # A str or the Decimal the parser made: never through float, so no cent is lost.
    number = Decimal(value.strip() if isinstance(value, str) else value)
    if not number.is_finite() or (whole and number != number.to_integral_value()):
        raise ValueError(f"not a usable number: {value!r}")
    return int(number) if whole else number
