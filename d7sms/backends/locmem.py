"""A backend for tests: every message lands in ``d7sms.outbox``, as mail does in ``mail.outbox``.

    D7SMS = {..., "BACKEND": "locmem"}

    d7sms.send_sms("+447700900123", "Your code is 1234")
    assert d7sms.outbox[0].content == "Your code is 1234"

Like Django's locmem email backend it records at the call: the send runs in the calling
process at once (``D7SMS["SYNC"]``), not when the caller's transaction commits, so it works
inside a ``TestCase``, whose transaction never commits. (A message sent in a transaction that
then rolls back therefore stays in the outbox, while its rows are rolled back.)

The outbox is empty at the start of every test, as ``mail.outbox`` is: Django's test cases
give ``mail.outbox`` a new list before each test, and this outbox starts afresh whenever that
list is a new one; under pytest, d7sms's plugin (:mod:`d7sms.pytest_plugin`) empties it, as
pytest-django empties ``mail.outbox``. :func:`inject` makes the next calls fail as D7 would.
"""

import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.core import mail

from d7sms.backends import base
from d7sms.client import Balance, BatchResult

_errors = deque()
_outbox = []
# The mail.outbox list the outbox belongs to: a new one means a new test.
_test = {"mail_outbox": None}
#: What :meth:`LocmemBackend.balance` answers; tests may replace it.
balance = Balance(Decimal(100), None)


@dataclass
class SentMessage:
    """One message as D7 would have received it."""

    to: str
    params: dict
    message_id: int
    d7_message_id: str | None
    d7_batch_id: str | None = None
    schedule_at: datetime | None = None
    extra: dict = field(default_factory=dict)

    @property
    def content(self):
        return self.params.get("content")

    @property
    def hex_content(self):
        return self.params.get("hex_content")

    @property
    def sender(self):
        return self.params.get("sender")


def _follow_tests():
    # Outside a test run there is no mail.outbox and nothing to follow.
    current = getattr(mail, "outbox", None)
    if current is not None and current is not _test["mail_outbox"]:
        _test["mail_outbox"] = current
        _outbox.clear()
        _errors.clear()


def outbox():
    """Return the outbox, which is also ``d7sms.outbox``."""
    _follow_tests()
    return _outbox


def inject(*errors):
    """Make the next calls raise these :mod:`d7sms.errors` exceptions, one per call, in order."""
    _follow_tests()
    _errors.extend(errors)


def reset():
    """Empty the outbox and forget injected errors."""
    _follow_tests()
    _outbox.clear()
    _errors.clear()


def _maybe_fail():
    _follow_tests()
    if _errors:
        raise _errors.popleft()


class LocmemBackend(base.BaseBackend):
    """Records messages in ``d7sms.outbox`` and answers like a D7 that accepts everything."""

    records_at_call = True

    def send_message(self, message):
        _maybe_fail()
        d7_id = str(uuid.uuid4())
        outbox().append(SentMessage(message.to, base.message_params(message), message.pk, d7_id))
        return d7_id

    def send_chunk(self, sendout, messages, *, schedule_at=None):
        _maybe_fail()
        batch_id = str(uuid.uuid4())
        globals_, items = base.batch_payload(messages)
        config = base.batch_config(sendout)
        box = outbox()
        for item, message in zip(items, messages, strict=True):
            box.append(SentMessage(message.to, {**globals_, **item}, message.pk, None, batch_id, schedule_at, config))
        return BatchResult(batch_id, len(messages), None, len(messages))

    def balance(self):
        _maybe_fail()
        return balance
