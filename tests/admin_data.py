"""Test data for the admin tests: sendouts with messages in chosen statuses."""

import itertools

from django.utils import timezone

from d7sms.models import Sendout, Message, MessageStatus

S = MessageStatus
_numbers = itertools.count(100)


def number():
    """A fresh valid UK mobile number in E.164 (the last digit picks the sandbox's outcome: 0)."""
    return f"+447911{next(_numbers):05d}0"


def make_sendout(statuses=(), **fields):
    """A sendout with one message per status in ``statuses``, written directly as test data."""
    now = timezone.now()
    sendout = Sendout.objects.create(
        name=fields.pop("name", "Spring sale"),
        content=fields.pop("content", "Hello"),
        sender="D7sms",
        recipient_count=len(statuses),
        submitted_at=now if any(s not in (S.PENDING, S.QUEUED) for s in statuses) else None,
        **fields,
    )
    final = {S.DELIVERED, S.UNDELIVERED, S.EXPIRED, S.REJECTED, S.FAILED, S.CANCELLED}
    Message.objects.bulk_create(
        [
            Message(
                sendout=sendout,
                to=number(),
                content=sendout.content,
                status=status,
                accepted_at=now if status not in (S.PENDING, S.QUEUED, S.SENDING, S.CANCELLED) else None,
                final_at=now if status in final else None,
                error_code="UNDELIV" if status == S.UNDELIVERED else "",
                last_error="delivery receipt UNDELIV, err 001" if status == S.UNDELIVERED else "",
            )
            for status in statuses
        ]
    )
    return sendout
