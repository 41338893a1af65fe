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
from collections import Counter

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
    def send_chunk(self, sendout, messages, *, schedule_at=None):
        """Send ``messages`` of ``sendout`` through one ``/secure/sendbatch`` call.

        ``messages`` is a list of :class:`~d7sms.models.Message` (with at least ``pk``, ``to``,
        ``sender``, ``content``, ``hex_content``, ``coding`` and ``dlr_level``); they may differ
        in text and sender (see :func:`batch_payload`). ``schedule_at`` is an aware datetime
        for D7 to hold the batch until, or None. Returns a :class:`~d7sms.client.BatchResult`.
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


# Parameters that are each message's own even when two happen to be equal.
_OWN = ("to", "dlr_url")


def batch_payload(messages):
    """``(globals, items)`` of one sendbatch call for ``messages``: each item is one message.

    A parameter every message has goes to ``globals`` with its most common value (as in the
    provider's Example 2), and stays in the items that differ, whose own value wins. One that
    only some messages have (``content`` beside ``hex_content``, ``coding``) stays in each
    item: inherited, it would reach messages that must not have it. ``to`` and ``dlr-url``
    are always the item's own.
    """
    urls = webhook_urls.dlr_urls([m.pk for m in messages if wants_dlr(m.dlr_level)])
    items = []
    for message in messages:
        item = {"to": message.to, **content_params(message), **dlr_params(message.dlr_level)}
        url = urls.get(message.pk)
        if url is not None:
            item["dlr_url"] = url
        items.append(item)
    return share(items), items


def share(items):
    """Move what ``items`` have in common to a globals dict (returned); ``items`` change in place."""
    globals_ = {}
    if not items:
        return globals_
    keys = [k for k in items[0] if k not in _OWN and all(k in item for item in items)]
    for key in keys:
        value, count = Counter(item[key] for item in items).most_common(1)[0]
        if count > 1 or len(items) == 1:
            globals_[key] = value
            for item in items:
                if item[key] == value:
                    del item[key]
    return globals_


def batch_config(sendout):
    """``callback_url`` and ``errback_url`` of a sendbatch call for ``sendout``, when D7 can reach this site."""
    if not conf.get("CALLBACK_BASE_URL"):
        return {}
    return {"callback_url": webhook_urls.callback_url(sendout.key), "errback_url": webhook_urls.errback_url(sendout.key)}
