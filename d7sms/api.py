"""The public API: store messages, and enqueue them once the caller's transaction commits.

Nothing is sent from inside the caller's transaction: work is enqueued with
``transaction.on_commit``, so a caller that rolls back sends nothing, and the rows it wrote are
gone too.
"""

import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from d7sms import conf, encoding, housekeeping, queue, recipients, scheduling, status
from d7sms.client import Balance
from d7sms.models import AccountState, Batch, Message, SendMode
from d7sms.recipients import InvalidNumber, clean_list, normalise

__all__ = [
    "cancel_batch",
    "cancel_message",
    "get_balance",
    "resend",
    "retry_failed",
    "send_batch",
    "send_sms",
]

# 8-bit binary messages: bytes in one message, and per part when split.


def send_sms(to, content=None, *, hex_content=None, coding=None, sender=None, schedule_at=None,
             dlr_level=None, user=None):
    """Store one SMS to ``to`` and enqueue it (or hold it until ``schedule_at``); return the Message.

    Give ``content`` (text; non-GSM text goes as UCS-2 hex automatically) or ``hex_content``
    with its ``coding``. ``schedule_at`` is a timezone-aware datetime; the message waits here
    until then and can be cancelled until it fires. Raises ``ValidationError`` for a bad number,
    sender, content or time.
    """
    try:
        number = normalise(to)
    except InvalidNumber as exc:
        raise ValidationError(f"Invalid number {to!r}: {exc}", code="invalid_number") from None
    text, hex_text, coding, parts = _content(content, hex_content, coding)
    when, held = _when(schedule_at)
    message = Message(
        to=number,
        sender=_sender(sender),
        content=text,
        hex_content=hex_text,
        coding=coding,
        parts=parts,
        dlr_level=_dlr_level(dlr_level),
        scheduled_at=when,
        enqueued_at=None if held else timezone.now(),
        created_by=user,
    )
    with transaction.atomic():
        status.create_many([message], scheduled=held)
        if held:
            scheduling.hold(message=message, when=when)
        else:
            transaction.on_commit(lambda: queue.send_messages([message.pk]))
    return message


def send_batch(recipients, content=None, *, hex_content=None, coding=None, sender=None, schedule_at=None,
               remote_schedule=False, mode=SendMode.BATCH, dlr_level=None, name="", user=None,
               duplicates_removed=0):
    """Store a sendout of one text to many recipients and enqueue it; return the Batch.

    ``recipients`` is any iterable of numbers (read once). Every number is validated and
    normalised to E.164 (national numbers in the DEFAULT_REGION); if any is invalid nothing is
    stored and ``ValidationError`` lists each bad entry with its 1-based position. Repeated
    numbers are sent once and counted in ``duplicate_count``, with ``duplicates_removed``
    repeats the caller already took out (as the admin's preview does).

    ``mode`` "batch" sends through ``/secure/sendbatch`` in chunks of BATCH_CHUNK_SIZE;
    "single" sends one ``/secure/send`` per message. ``schedule_at`` (timezone-aware) holds the
    sendout here until then, cancellable; with ``remote_schedule=True`` (batch mode only) it is
    handed to D7 at once with D7's ``schedule_at`` instead, and can no longer be cancelled.
    """
    mode = SendMode(mode)
    text, hex_text, coding, parts = _content(content, hex_content, coding)
    sender = _sender(sender)
    dlr_level = _dlr_level(dlr_level)
    when, held = _when(schedule_at)
    if remote_schedule:
        if mode != SendMode.BATCH:
            raise ValidationError("A remote schedule needs batch mode: /secure/send has no schedule.", code="mode")
        if when is None:
            raise ValidationError("remote_schedule needs a schedule_at.", code="schedule")
        held = False
    numbers, problems, duplicates = clean_list(recipients)
    if problems:
        raise ValidationError(
            [ValidationError(str(p), code="invalid_number", params={"position": p.position}) for p in problems]
        )
    if not numbers:
        raise ValidationError("No recipients.", code="no_recipients")

    with transaction.atomic():
        batch = Batch.objects.create(
            name=name, sender=sender, content=text, hex_content=hex_text, coding=coding, parts=parts,
            dlr_level=dlr_level, mode=mode, schedule_at=when, remote_schedule=bool(remote_schedule),
            recipient_count=len(numbers), duplicate_count=duplicates + duplicates_removed, created_by=user,
        )
        status.insert_many(
            numbers, scheduled=held, batch=batch, sender=sender, content=text, hex_content=hex_text,
            coding=coding, parts=parts, dlr_level=dlr_level, scheduled_at=when if held else None,
            enqueued_at=None if held else timezone.now(), created_by=user,
        )
        del numbers
        ids = list(Message.objects.filter(batch=batch).order_by("pk").values_list("pk", flat=True))
        status.refresh_batch(batch.pk)
        batch.refresh_from_db(fields=["status"])
        if held:
            scheduling.hold(batch=batch, when=when)
        else:
            transaction.on_commit(lambda: _enqueue(batch, ids))
    return batch


def _enqueue(batch, ids):
    if batch.mode == SendMode.BATCH:
        queue.send_batch(batch.pk, ids)
    else:
        queue.send_messages(ids)


def resend(message, *, user=None):
    """Send ``message`` again as a new Message linked by ``resend_of``; return the new one.

    This is the deliberate way out of ``unknown`` (or a failure): the original row is never
    sent again. Refused (``ValidationError``) while the original is still on its way here.
    """
    if message.status in (status.S.PENDING, status.S.QUEUED, status.S.SENDING):
        raise ValidationError(f"Message {message.pk} is still {message.status}; cancel it instead.", code="in_progress")
    copy = _copy(message, user)
    with transaction.atomic():
        status.create_many([copy], scheduled=False)
        if copy.batch_id:
            status.refresh_batch(copy.batch_id)
        transaction.on_commit(lambda: queue.send_messages([copy.pk]))
    return copy


def retry_failed(batch, *, user=None):
    """Resend every failed message of ``batch`` that has not been resent yet; return how many.

    Failed means failed, rejected, undelivered or expired; ``unknown`` messages are left to a
    person (:func:`resend`), since they may have arrived.
    """
    with transaction.atomic():
        originals = list(
            Message.objects.select_for_update(of=("self",))
            .filter(batch=batch, status__in=status.FAILURES, resends__isnull=True)
            .order_by("pk")
        )
        if not originals:
            return 0
        copies = status.create_many([_copy(m, user) for m in originals], scheduled=False)
        status.refresh_batch(batch.pk)
        rows = [(m.pk, batch.pk, batch.mode) for m in copies]
        transaction.on_commit(lambda: queue.send_rows(rows))
    return len(copies)


def _copy(message, user):
    return Message(
        batch_id=message.batch_id, to=message.to, sender=message.sender, content=message.content,
        hex_content=message.hex_content, coding=message.coding, parts=message.parts,
        dlr_level=message.dlr_level, resend_of=message, created_by=user, enqueued_at=timezone.now(),
    )


def cancel_batch(batch):
    """Cancel what of ``batch`` has not been handed to D7; return how many messages were cancelled."""
    return scheduling.cancel_batch(batch)


def cancel_message(message):
    """Cancel one message not yet handed to D7; return True if it was cancelled."""
    return scheduling.cancel_message(message)


def get_balance(refresh=True):
    """Return the account :class:`~d7sms.client.Balance`, read from D7 unless ``refresh`` is
    False and a stored reading is recent (BALANCE_CACHE_SECONDS).

    Every reading is stored in :class:`~d7sms.models.AccountState`; a successful one lifts a
    pause. D7's errors (:mod:`d7sms.errors`) propagate.
    """
    if not refresh:
        state = AccountState.get()
        age = conf.get("BALANCE_CACHE_SECONDS")
        if state.balance_read_at and timezone.now() - state.balance_read_at < datetime.timedelta(seconds=age):
            return Balance(state.balance, state.sms_count)
    return housekeeping.refresh_balance(force=True)


# -- validation -----------------------------------------------------------------------------


def _content(content, hex_content, coding):
    """Return ``(content, hex_content, coding, parts)`` as stored, or raise ValidationError."""
    if (content in (None, "")) == (hex_content in (None, "")):
        raise ValidationError("Give either content or hex_content (and not both).", code="content")
    if hex_content:
        if coding is None:
            raise ValidationError("hex_content needs its coding (8 for UCS-2).", code="coding")
        try:
            raw = encoding.validate_hex_content(hex_content, coding)
        except ValueError as exc:
            raise ValidationError(str(exc), code="hex_content") from None
        return "", hex_content.lower(), coding, encoding.binary_parts(raw, coding)
    if not isinstance(content, str):
        raise ValidationError("content must be text.", code="content")
    info = encoding.analyse(content)
    if coding not in (None, info.coding, encoding.UCS2):
        raise ValidationError(
            f"coding {coding} does not fit this text; leave coding unset to choose it from the text.", code="coding"
        )
    payload = encoding.message_payload(content)
    if "hex_content" in payload or coding == encoding.UCS2:
        # Text outside GSM 03.38 sent as plain content arrives garbled: it goes as UTF-16 hex.
        parts = info.parts if info.coding == encoding.UCS2 else encoding.ucs2_parts(content)
        return content, encoding.hex_content(content), encoding.UCS2, parts
    return content, "", None, info.parts



def _sender(sender):
    sender = sender if sender not in (None, "") else conf.get("DEFAULT_SENDER")
    if sender and not recipients.is_valid_sender(sender):
        raise ValidationError(
            f"Invalid sender {sender!r}: {recipients.SENDER_RULE}.",
            code="sender",
        )
    return sender or ""


def _dlr_level(level):
    level = conf.get("DLR_LEVEL") if level is None else level
    if level not in (0, 1, 2, 3):
        raise ValidationError(f"dlr_level must be 0, 1, 2 or 3, not {level!r}.", code="dlr_level")
    return level


def _when(schedule_at):
    """Return ``(time, held here)`` for a schedule; a time already passed means now."""
    if schedule_at is None:
        return None, False
    if not isinstance(schedule_at, datetime.datetime) or timezone.is_naive(schedule_at):
        raise ValidationError("schedule_at must be a timezone-aware datetime.", code="schedule")
    return schedule_at, schedule_at > timezone.now()
