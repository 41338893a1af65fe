"""New messages, stored in their first status: ``pending`` when held for a local schedule,
``queued`` when a worker may send them now."""

from django.utils import timezone

from d7sms import sql
from d7sms.personalise import ROW_FIELDS
from d7sms.models import Message, MessageStatus


def first_status(scheduled):
    """The status a new message starts in."""
    return MessageStatus.PENDING if scheduled else MessageStatus.QUEUED


def create_messages(messages, *, scheduled):
    """Save the unsaved ``messages`` in their first status; return them with primary keys."""
    for message in messages:
        message.status = first_status(scheduled)
    return Message.objects.bulk_create(messages)


def insert_messages(numbers, *, scheduled, **common):
    """Save one new message per number in ``numbers``, alike in everything else (``common``
    field values); return how many. Primary keys are not read back: read them by sendout."""
    return sql.insert_rows(Message, ("to",), ((n,) for n in numbers), status=first_status(scheduled), **common)


def insert_personalised(rows, *, scheduled, **common):
    """Save one new message per row of :func:`d7sms.personalise.prepare` (its own number,
    sender, text, coding, parts and fields), alike in everything else; return how many."""
    return sql.insert_rows(Message, ROW_FIELDS, rows, status=first_status(scheduled), **common)


def copy_of(message, user=None):
    """An unsaved new message that sends ``message`` again, linked to it by ``resend_of``."""
    return Message(
        sendout_id=message.sendout_id, to=message.to, sender=message.sender, content=message.content,
        hex_content=message.hex_content, coding=message.coding, parts=message.parts,
        dlr_level=message.dlr_level, fields=message.fields, resend_of=message, created_by=user, enqueued_at=timezone.now(),
        ignore_suppression=message.ignore_suppression,
    )


def attempts(message):
    """Every attempt at ``message``'s recipient in its chain of resends, oldest first: the first
    message, then each copy (a message is sent again at most once, so the chain is a line)."""
    first = message
    while first.resend_of_id is not None:
        first = Message.objects.get(pk=first.resend_of_id)
    chain = [first]
    while (copy := Message.objects.filter(resend_of=chain[-1]).first()) is not None:
        chain.append(copy)
    return chain
