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


# The fields quiet hours decide per message.
_TIMING = ("status", "scheduled_at", "enqueued_at")


def insert_messages(numbers, *, scheduled, release=None, **common):
    """Save one new message per number in ``numbers``, alike in everything else (``common``
    field values); return how many. Primary keys are not read back: read them by sendout.

    ``release`` (a :class:`d7sms.quiet_hours.Plan`) holds each number until its window opens."""
    if release is None:
        return sql.insert_rows(Message, ("to",), ((n,) for n in numbers), status=first_status(scheduled), **common)
    rows = ((n, *_timing(release, n, scheduled, common)) for n in numbers)
    return sql.insert_rows(Message, ("to", *_TIMING), rows, **_untimed(common))


def insert_personalised(rows, *, scheduled, release=None, **common):
    """Save one new message per row of :func:`d7sms.personalise.prepare` (its own number,
    sender, text, coding, parts and fields), alike in everything else; return how many.

    ``release`` holds each row as :func:`insert_messages` does."""
    if release is None:
        return sql.insert_rows(Message, ROW_FIELDS, rows, status=first_status(scheduled), **common)
    timed = ((*row, *_timing(release, row[0], scheduled, common)) for row in rows)
    return sql.insert_rows(Message, (*ROW_FIELDS, *_TIMING), timed, **_untimed(common))


def _timing(release, number, scheduled, common):
    """``(status, scheduled_at, enqueued_at)`` of a new message to ``number`` under quiet hours:
    held (``pending``) until its release when that is later than the sendout's own time."""
    when = release.release(number)
    if when is None:  # never inside the window: counted by the plan, refused by the caller
        when = release.now
    if scheduled or when > release.now:
        return MessageStatus.PENDING, when, None
    return MessageStatus.QUEUED, None, common.get("enqueued_at")


def _untimed(common):
    return {k: v for k, v in common.items() if k not in _TIMING}


def copy_of(message, user=None, *, release=None):
    """An unsaved new message that sends ``message`` again, linked to it by ``resend_of``: queued,
    or held (``pending``) until ``release`` when that is given (its sendout's quiet hours)."""
    timing = (
        {"status": MessageStatus.PENDING, "scheduled_at": release, "enqueued_at": None} if release is not None
        else {"status": MessageStatus.QUEUED, "enqueued_at": timezone.now()}
    )
    return Message(
        sendout_id=message.sendout_id, to=message.to, sender=message.sender, content=message.content,
        hex_content=message.hex_content, coding=message.coding, parts=message.parts,
        dlr_level=message.dlr_level, fields=message.fields, resend_of=message, created_by=user,
        ignore_suppression=message.ignore_suppression, **timing,
    )


def create_copies(copies):
    """Save the unsaved copies of :func:`copy_of`, each in the status it was given; return them
    with primary keys."""
    return Message.objects.bulk_create(copies)


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
