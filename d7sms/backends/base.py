"""The contract every backend fulfils, and the D7 parameters built from our rows.

A backend is created once per process (see :func:`d7sms.backends.get_backend`) and reused for
every message; it must be safe to call from one thread at a time. It raises the exceptions of
:mod:`d7sms.errors`, because :mod:`d7sms.sending` decides from their class what happens next:

- :class:`~d7sms.errors.NotSent`, :class:`~d7sms.errors.ServerError` (and
  :class:`~d7sms.errors.RateLimited`): nothing was sent; retried with backoff;
- :class:`~d7sms.errors.OutcomeUnknown` (or any unexpected exception): the message may have
  gone out; it becomes ``unknown`` and is never retried on its own;
- :class:`~d7sms.errors.CredentialsRejected`, :class:`~d7sms.errors.NoCredit`: sending pauses;
- any other :class:`~d7sms.errors.D7Error`: the message fails with the provider's text.

The helpers below turn stored rows into D7 parameters, so every backend sees (and the test
backends record) exactly what D7 would receive.
"""

from abc import ABC, abstractmethod

from d7sms import conf
from d7sms import webhook_urls


class BaseBackend(ABC):
    """Send messages somewhere. Subclasses implement :meth:`send_message`, :meth:`send_chunk`
    and :meth:`balance`."""

    #: True for a test backend that records at the call, as Django's locmem mail backend does:
    #: in SYNC mode its sends then run at once rather than when the caller's transaction commits.
    records_at_call = False

    @abstractmethod
    def send_message(self, message):
        """Send one :class:`~d7sms.models.Message` through ``/secure/send``; return D7's message id."""

    @abstractmethod
    def send_chunk(self, sendout, recipients, *, schedule_at=None):
        """Send ``sendout``'s content to ``recipients`` through one ``/secure/sendbatch`` call.

        ``recipients`` is a list of ``(message_id, to)`` pairs; ``schedule_at`` an aware
        datetime for D7 to hold the batch until, or None. Returns a
        :class:`~d7sms.client.BatchResult`.
        """

    @abstractmethod
    def balance(self):
        """Return the account's :class:`~d7sms.client.Balance`."""

    def close(self):
        """Release connections; the backend is not used afterwards."""


def dlr_params(level):
    """The delivery-report parameters shared by every message of one DLR level.

    Without CALLBACK_BASE_URL there is nowhere for D7 to report to, so no report is asked for.
    """
    if not level or not conf.get("CALLBACK_BASE_URL"):
        return {"dlr": "no"}
    return {"dlr": "yes", "dlr_level": level, "dlr_method": str(conf.get("DLR_METHOD")).upper()}


def wants_dlr(level):
    """True when messages of this DLR level carry a ``dlr-url``."""
    return bool(level) and bool(conf.get("CALLBACK_BASE_URL"))


def content_params(obj):
    """``content`` or ``hex_content`` (with ``coding``) and ``sender`` of a message or sendout."""
    params = {}
    if obj.hex_content:
        params["hex_content"] = obj.hex_content
    else:
        params["content"] = obj.content
    if obj.coding is not None:
        params["coding"] = obj.coding
    sender = obj.sender or conf.get("DEFAULT_SENDER")
    if sender:
        params["sender"] = sender
    return params


def message_params(message):
    """Every ``/secure/send`` parameter for ``message`` except ``to``."""
    params = content_params(message)
    params.update(dlr_params(message.dlr_level))
    if wants_dlr(message.dlr_level):
        params["dlr_url"] = webhook_urls.dlr_url(message.pk)
    return params


def batch_globals(sendout):
    """The ``globals`` of a sendbatch call for ``sendout``: what all its messages share."""
    params = content_params(sendout)
    params.update(dlr_params(sendout.dlr_level))
    return params


def batch_items(sendout, recipients):
    """One sendbatch message per recipient: its number and, with reports, its own ``dlr-url``."""
    if wants_dlr(sendout.dlr_level):
        urls = webhook_urls.dlr_urls(pk for pk, _to in recipients)
        return [{"to": to, "dlr_url": urls[pk]} for pk, to in recipients]
    return [{"to": to} for _pk, to in recipients]


def batch_config(sendout):
    """``callback_url`` and ``errback_url`` of a sendbatch call for ``sendout``, when D7 can reach this site."""
    if not conf.get("CALLBACK_BASE_URL"):
        return {}
    return {"callback_url": webhook_urls.callback_url(sendout.key), "errback_url": webhook_urls.errback_url(sendout.key)}
