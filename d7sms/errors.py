"""The exceptions raised by :mod:`d7sms.client`, one class per thing a caller does differently.

``retryable`` says whether sending the same request again is safe and may succeed:
true only when D7 certainly did not take the message: the connection was refused
(:class:`NotSent`), or D7 itself answered that it did not (:class:`ServerError`: a 503, or a
5xx in one of Jasmin's own error shapes; :class:`RateLimited`: a 429). Any other answer from
which it cannot be told whether D7 acted (a 502, a 504 or another 5xx from something in
between, an HTML or unreadable body, a connection dropped after the request was written) is
:class:`OutcomeUnknown`, never retryable: the message may already be on its way, and a retry
could send it twice.

No exception text or repr ever contains the password or the Authorization header; the
client scrubs what it passes in, and these classes only show the provider's text.
"""

import email.utils
import json
import time

__all__ = [
    "D7Error",
    "CredentialsRejected",
    "NoCredit",
    "InvalidRequest",
    "NoRoute",
    "ServerError",
    "RateLimited",
    "TransportError",
    "NotSent",
    "OutcomeUnknown",
    "provider_text",
    "error_for_response",
]

# Long HTML error pages from proxies are cut: the start says enough.
_MAX_TEXT = 300


class D7Error(Exception):
    """Base class: ``status_code`` (None when no HTTP answer), ``provider_text`` (D7's own
    words, or a description of the local failure), ``reached_provider`` (True, False, or None
    when unknown) and ``retryable``."""

    retryable = False
    summary = "D7 request failed"
    default_reached = True

    def __init__(self, provider_text="", *, status_code=None, reached_provider=...):
        # ``...`` rather than None, which is a meaningful value here ("unknown").
        self.provider_text = provider_text or ""
        self.status_code = status_code
        self.reached_provider = self.default_reached if reached_provider is ... else reached_provider
        super().__init__(self._message())

    def _message(self):
        head = self.summary if self.status_code is None else f"{self.summary} ({self.status_code})"
        return f"{head}: {self.provider_text}" if self.provider_text else head

    def __str__(self):
        return self._message()

    def __repr__(self):
        return (
            f"{type(self).__name__}(status_code={self.status_code!r}, "
            f"provider_text={self.provider_text!r}, reached_provider={self.reached_provider!r})"
        )

    def __reduce__(self):
        # Keyword-only arguments do not survive the default pickling of exceptions, and task
        # queues pickle them.
        return (_rebuild, (type(self), self.provider_text, self.__dict__.copy()))


def _rebuild(cls, text, state):
    error = cls(text)
    error.__dict__.update(state)
    return error


class CredentialsRejected(D7Error):
    """D7 refused the username/password (401, 403 ``Authentication failure``, 412 on sendbatch)."""

    summary = "D7 rejected the credentials"


class NoCredit(D7Error):
    """The account cannot pay for the message (403 ``Cannot charge submit_sm``)."""

    summary = "D7 account has no credit for this message"


class InvalidRequest(D7Error):
    """D7 (or the client, before sending) found the request malformed; fix it, do not retry.

    ``bad_indexes`` lists the positions of the offending batch messages when the client
    refused a batch itself; it is empty otherwise.
    """

    summary = "D7 rejected the request as invalid"

    def __init__(self, provider_text="", *, status_code=None, reached_provider=..., bad_indexes=()):
        self.bad_indexes = tuple(bad_indexes)
        super().__init__(provider_text, status_code=status_code, reached_provider=reached_provider)

    def _message(self):
        if self.reached_provider is False:
            return f"Invalid request, not sent to D7: {self.provider_text}"
        return super()._message()


class NoRoute(D7Error):
    """D7 has no route to this destination (412 ``No route found``)."""

    summary = "D7 has no route for the destination"


class ServerError(D7Error):
    """D7 refused the request on its side: a 503, or another 5xx in one of Jasmin's own error
    shapes. The message was not taken and may be sent again."""

    summary = "D7 server error"
    retryable = True


class RateLimited(ServerError):
    """D7 asked us to slow down (429); ``retry_after`` is the advised wait in seconds or None."""

    summary = "D7 rate limit reached"

    def __init__(self, provider_text="", *, status_code=None, reached_provider=..., retry_after=None):
        self.retry_after = retry_after
        super().__init__(provider_text, status_code=status_code, reached_provider=reached_provider)


class TransportError(D7Error):
    """No usable HTTP answer was received."""

    summary = "No usable answer from D7"
    default_reached = None


class NotSent(TransportError):
    """The request certainly never reached D7 (refused, DNS failure, connect timeout)."""

    summary = "Could not reach D7; nothing was sent"
    retryable = True
    default_reached = False


class OutcomeUnknown(TransportError):
    """The request may have been processed (read timeout, dropped connection, unreadable 200).

    Sending again risks a duplicate SMS; reconcile through delivery reports instead.
    """

    summary = "D7 may or may not have accepted the request"


def provider_text(body):
    """Return D7's error text from a response body (bytes or str), whatever its shape.

    ``{"message": "Error \\"..."}`` (closing quote optional) gives the quoted text;
    ``{"title": ..., "description": ...}`` gives ``"title: description"``; anything else gives
    the body itself, shortened.
    """
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    body = body.strip()
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        message = data.get("message")
        if isinstance(message, str):
            return _unquote_error(message)
        title, description = data.get("title"), data.get("description")
        parts = [str(p).strip() for p in (title, description) if p not in (None, "")]
        if parts:
            return ": ".join(parts)
        inner = data.get("data")
        if isinstance(inner, str):
            return _unquote_error(inner)
    elif isinstance(data, str):
        return _unquote_error(data)
    return body[:_MAX_TEXT] + ("..." if len(body) > _MAX_TEXT else "")


def _unquote_error(text):
    text = text.strip()
    if text.startswith('Error "'):
        text = text[7:]
        if text.endswith('"'):
            text = text[:-1]
    return text


def _parse_retry_after(value):
    """Return the seconds a ``Retry-After`` header asks for (number or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds)


def _jasmin_error(body):
    """True when ``body`` is one of the two error shapes of Jasmin's REST API (wire notes):
    ``{"message": "Error \"..."}`` or ``{"title": ..., ...}``."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and (isinstance(data.get("message"), str) or isinstance(data.get("title"), str))


def error_for_response(status_code, body, *, retry_after=None):
    """Return the :class:`D7Error` for a non-2xx answer (status code and raw body)."""
    text = provider_text(body)
    low = text.lower()
    kwargs = {"status_code": status_code, "reached_provider": True}
    if status_code == 401:
        return CredentialsRejected(text, **kwargs)
    if status_code == 403:
        if "authentication fail" in low:
            return CredentialsRejected(text, **kwargs)
        if "cannot charge" in low or "charging" in low:
            return NoCredit(text, **kwargs)
        if "throughput exceeded" in low:
            return RateLimited(text, retry_after=_parse_retry_after(retry_after), **kwargs)
        # "Authorization failed for username:X": the account may not use a parameter it
        # sent (sender, priority, DLR...); the credentials themselves are fine.
        return InvalidRequest(text, **kwargs)
    if status_code == 412:
        if "no route" in low:
            return NoRoute(text, **kwargs)
        if "authentication fail" in low:
            return CredentialsRejected(text, **kwargs)
        return InvalidRequest(text, **kwargs)
    if status_code == 429:
        return RateLimited(text, retry_after=_parse_retry_after(retry_after), **kwargs)
    if status_code == 503 or (status_code >= 500 and status_code not in (502, 504) and _jasmin_error(body)):
        return ServerError(text, **kwargs)
    if status_code >= 500:
        # A gateway's 502/504, or a 5xx that is not Jasmin's own: D7 may have acted.
        return OutcomeUnknown(text, status_code=status_code, reached_provider=None)
    # 400, 404, 405, 415, and redirects the client does not follow: all need a fix on our
    # side, so repeating the same request cannot help.
    return InvalidRequest(text, **kwargs)
