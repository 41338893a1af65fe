"""The public API: store messages, and enqueue them once the caller's transaction commits.

Nothing is sent from inside the caller's transaction: work is enqueued once it commits
(:func:`d7sms.tasks.after_commit`), so a caller that rolls back sends nothing, and the rows it
wrote are gone too. The one exception is the locmem test backend, which records at the call as
Django's locmem mail backend does.
"""

from __future__ import annotations

import datetime
import itertools
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from d7sms import balance, creation, personalise, progress, sql, status, storing, suppression, tasks, validation
from d7sms.backends import get_backend
from d7sms.client import Balance
from d7sms.merge import Recipient
from d7sms.models import FAILURES, Message, MessageStatus, MessageTemplate, SendMode, Sendout, db_alias
from d7sms.recipients import InvalidNumber, normalise

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

__all__ = [
    "cancel_message",
    "cancel_sendout",
    "get_balance",
    "resend",
    "resend_many",
    "retry_failed",
    "send_batch",
    "send_sms",
    "suppress",
    "unsuppress",
    "opt_out_reply",
]

suppress = suppression.suppress
unsuppress = suppression.unsuppress
opt_out_reply = suppression.opt_out_reply


class Resent(list):
    """The copies a resend made (a list of Messages). ``suppressed`` counts the messages passed
    over because their number is on the suppression list; ``waiting`` counts the copies held
    for their sendout's quiet hours, by release instant (a Counter)."""

    suppressed = 0
    waiting = Counter()


class Retried(int):
    """How many failed messages a retry sent again. ``suppressed`` counts those passed over
    because their number is on the suppression list; ``waiting`` counts, by release instant,
    the copies held for the sendout's quiet hours."""

    suppressed = 0
    waiting = Counter()


def send_sms(
    to: str | int,
    content: str | None = None,
    *,
    hex_content: str | None = None,
    coding: int | None = None,
    sender: str | None = None,
    schedule_at: datetime.datetime | None = None,
    dlr_level: int | None = None,
    user: AbstractBaseUser | None = None,
    ignore_suppression: bool = False,
) -> Message:
    """Store one SMS to ``to`` and enqueue it (or hold it until ``schedule_at``); return the Message.

    Give ``content`` (text; non-GSM text goes as UCS-2 hex automatically) or ``hex_content``
    with its ``coding``. ``schedule_at`` is a timezone-aware datetime; the message waits here
    until then and can be cancelled until it fires. Raises ``ValidationError`` for a bad number,
    sender, content or time, and (code ``suppressed``) for a number on the suppression list,
    unless ``ignore_suppression`` is True: only for a transactional message the law allows
    (a one-time code, an order update). A number suppressed after the call is not sent to either
    (the message ends ``cancelled``), except with ``ignore_suppression``.
    """
    get_backend()  # raises ImproperlyConfigured now, before anything is stored, if it cannot send
    try:
        number = normalise(to)
    except InvalidNumber as exc:
        raise ValidationError(f"Invalid number {to!r}: {exc}", code="invalid_number") from None
    if not ignore_suppression and suppression.is_suppressed(number):
        raise ValidationError(
            f"{number} is on the suppression list (opted out); pass ignore_suppression=True only for a "
            "transactional message the law allows.", code="suppressed", params={"number": number},
        )
    text, hex_text, coding, parts = validation.content(content, hex_content, coding)
    when, held = validation.schedule(schedule_at)
    message = Message(
        to=number,
        sender=validation.sender(sender),
        content=text,
        hex_content=hex_text,
        coding=coding,
        parts=parts,
        dlr_level=validation.dlr_level(dlr_level),
        scheduled_at=when,
        enqueued_at=None if held else timezone.now(),
        created_by=user,
        ignore_suppression=bool(ignore_suppression),
    )
    alias = db_alias()
    with transaction.atomic(using=alias):
        creation.create_messages([message], scheduled=held)
        if held:
            tasks.hold(when=when, message_id=message.pk)
        else:
            tasks.after_commit(lambda: tasks.enqueue_single([message.pk]))
    return message


def send_batch(
    recipients: Iterable[str | int | Mapping | Recipient],
    content: str | MessageTemplate | None = None,
    *,
    hex_content: str | None = None,
    coding: int | None = None,
    sender: str | None = None,
    template: MessageTemplate | str | None = None,
    schedule_at: datetime.datetime | None = None,
    remote_schedule: bool = False,
    quiet_hours: tuple | str | bool | None = None,
    mode: SendMode | str = SendMode.BATCH,
    dlr_level: int | None = None,
    name: str = "",
    user: AbstractBaseUser | None = None,
    duplicates_removed: int = 0,
    idempotency_key: uuid.UUID | str | None = None,
    opt_out_footer: str | None = None,
) -> Sendout:
    """Store a sendout to many recipients and enqueue it; return the Sendout.

    ``recipients`` is any iterable (read once) of numbers, or of mappings for a personalised
    sendout. Numbers all get ``content`` exactly as written, braces included. A mapping has
    ``to`` (a number or a list of numbers) and any other fields; ``content`` may then hold
    placeholders such as ``{name}`` filled from each mapping, and a mapping may carry its own
    ``content`` (a template too) and ``sender``. Each message's coding (GSM-7 or UCS-2) and
    parts follow from its own text; each mapping's fields are stored on its messages
    (``Message.fields``). Placeholders are bare field names (:mod:`d7sms.merge`); ``{{`` and
    ``}}`` are literal braces.

    A saved :class:`~d7sms.models.MessageTemplate` can be given as ``content``, or by name as
    ``template``; its text is copied (later edits change nothing sent) and its sender is used
    when ``sender`` is not given.

    Every number is validated and normalised to E.164 (national numbers in the
    DEFAULT_REGION). If any recipient is invalid, or lacks a field its text needs, nothing is
    stored and ``ValidationError`` lists each problem with its 1-based position (and field).
    Repeated numbers are sent once and counted in ``duplicate_count``, with
    ``duplicates_removed`` repeats the caller already took out (as the admin's preview does).

    ``mode`` "batch" sends through ``/secure/sendbatch`` in chunks of BATCH_CHUNK_SIZE;
    "single" sends one ``/secure/send`` per message. ``schedule_at`` (timezone-aware) holds the
    sendout here until then, cancellable; with ``remote_schedule=True`` (batch mode only) it is
    handed to D7 at once with D7's ``schedule_at`` instead, and can no longer be cancelled.

    ``quiet_hours`` is the window of local time, in each recipient's own time zones, in which
    its message may arrive: ``("09:00", "20:00")`` (it may cross midnight); None takes the
    QUIET_HOURS setting, False sends at any hour. A message outside it is held (``pending``)
    until the window opens in every zone of its number (:mod:`d7sms.quiet_hours`). A number
    for which the window never holds in all its zones at once, or a remote schedule falling
    outside the window for some number, is refused (code ``quiet_hours``).

    ``idempotency_key`` (a UUID) makes the call safe to repeat: the first call with a key stores
    the sendout, every later one (however many race) returns that same sendout and sends
    nothing. ``sendout.repeated`` tells which happened.

    Numbers on the suppression list are left out when the sendout is stored and counted in
    ``suppressed_count`` (``recipient_count`` counts the rest); a sendout whose every recipient
    opted out raises ``ValidationError`` (code ``all_suppressed``) and stores nothing. A number
    suppressed later is cancelled before its message is sent. ``opt_out_footer`` (default:
    OPT_OUT_FOOTER; "" for none) is appended on its own line to every message's text and counted
    in its parts; it needs text content, not ``hex_content``.
    """
    get_backend()  # raises ImproperlyConfigured now, before anything is stored, if it cannot send
    mode = SendMode(mode)
    key = _uuid_or_none(idempotency_key)
    saved = storing.saved_template(content, template)
    if saved is not None:
        content, sender = saved.text, sender or saved.sender or None
    sender = validation.sender(sender)
    dlr_level = validation.dlr_level(dlr_level)
    when, held = validation.schedule(schedule_at)
    window = storing.window(quiet_hours)
    footer = suppression.footer(opt_out_footer)
    if footer and hex_content not in (None, ""):
        if opt_out_footer is not None:
            raise ValidationError("An opt-out footer needs text content, not hex_content.", code="opt_out_footer")
        footer = ""  # the default footer is text: binary content goes as it is
    if remote_schedule:
        if mode != SendMode.BATCH:
            raise ValidationError("A remote schedule needs batch mode: /secure/send has no schedule.", code="mode")
        if when is None:
            raise ValidationError("remote_schedule needs a schedule_at.", code="schedule")
        held = False
    items = iter(recipients)
    first = next(items, None)
    if first is None:
        raise ValidationError("No recipients.", code="no_recipients")
    items = itertools.chain([first], items)
    common = {"name": name, "sender": sender, "dlr_level": dlr_level, "mode": mode, "schedule_at": when,
              "remote_schedule": bool(remote_schedule), "template_name": saved.name if saved else "",
              "send_from": window.start if window else None, "send_until": window.end if window else None,
              "opt_out_footer": footer}
    if personalise.is_row(first):
        insert, fields = storing.personalised(items, content, hex_content, coding, sender, footer)
    else:
        if saved is not None:
            # A saved template is always a template: its {{ }} are literal braces, and it may
            # not need fields that plain numbers do not have.
            tpl = personalise.template_or_error(content)
            if not tpl.is_plain:
                raise ValidationError(
                    f"The template “{saved.name}” uses {{{tpl.fields[0]}}}: give each recipient as a mapping "
                    "with its fields.", code="missing_field", params={"row": None, "field": tpl.fields[0]},
                )
            content = tpl.render({})
        insert, fields = storing.plain(items, content, hex_content, coding, footer)
    fields["duplicate_count"] += duplicates_removed
    try:
        sendout = storing.store(insert, key, held, user, window, **common, **fields)
    except IntegrityError:
        # The unique confirm_key decided: another call with this key stored the sendout first.
        existing = Sendout.objects.filter(confirm_key=key).first() if key else None
        if existing is None:
            raise
        existing.repeated = True
        return existing
    sendout.repeated = False
    return sendout


def resend(message: Message, *, user: AbstractBaseUser | None = None) -> Message:
    """Send ``message`` again as a new Message linked by ``resend_of``; return the new one.

    This is the deliberate way out of ``unknown`` (or a failure): the original row is never
    sent again, and it is resent at most once, however many callers race (two clicks, two
    tabs): the others get ``ValidationError`` (code ``already_resent``) naming the copy. To
    try once more, resend the copy. Refused (code ``in_progress``) while the message is still
    on its way here, and (code ``suppressed``) while its number is on the suppression list,
    unless it was sent with ``ignore_suppression``. A copy of a message whose sendout has quiet
    hours waits (``pending``, until its ``scheduled_at``) for the window to open for its number.
    """
    copies = resend_many([message], user=user)
    if copies.suppressed:
        raise ValidationError(
            f"Message {message.pk} was not sent again: {message.to} is on the suppression list (opted out).",
            code="suppressed", params={"number": message.to},
        )
    if not copies:
        raise _not_resendable(message)
    return copies[0]


def _not_resendable(message):
    copy = Message.objects.filter(resend_of=message).values_list("pk", flat=True).first()
    if copy is not None:
        return ValidationError(
            f"Message {message.pk} was already sent again, as message {copy}.",
            code="already_resent", params={"copy": copy},
        )
    current = Message.objects.filter(pk=message.pk).values_list("status", flat=True).first()
    return ValidationError(f"Message {message.pk} is still {current}; cancel it instead.", code="in_progress")


def resend_many(messages: Iterable[Message | int], *, user: AbstractBaseUser | None = None) -> Resent:
    """Send each of ``messages`` (messages or their ids) again, as :func:`resend` does, at most
    once each however many callers race; return the copies this call made (:class:`Resent`).

    Messages already sent again, or still on their way here, are passed over; so are messages
    to numbers on the suppression list, counted in the result's ``suppressed``. Copies whose
    sendout has quiet hours wait until the window opens for their number (:func:`send_batch`),
    counted by release instant in the result's ``waiting``; a number the window never opens for
    raises ``ValidationError`` (code ``quiet_hours``), and nothing is sent again.
    """
    get_backend()  # raises ImproperlyConfigured now, before anything is stored, if it cannot send
    ids = [getattr(m, "pk", m) for m in messages]
    alias = db_alias()
    result = Resent()
    result.waiting = Counter()
    with transaction.atomic(using=alias):
        taken = status.take_for_resend(ids)
        # Counted after the database decided (take_for_resend): for the caller to tell.
        passed_over = set(ids) - set(taken)
        result.suppressed = sum(
            Message.objects.filter(suppression.blocked_q(), pk__in=part, resend_token__isnull=True)
            .exclude(status__in=(MessageStatus.PENDING, MessageStatus.QUEUED, MessageStatus.SENDING))
            .count()
            for part in sql.slices(sorted(passed_over))
        )
        if not taken:
            return result
        originals = [m for part in sql.slices(taken) for m in Message.objects.filter(pk__in=part).order_by("pk")]
        copies, result.waiting = storing.copies(originals, user)
    result.extend(copies)
    return result


def retry_failed(sendout: Sendout, *, user: AbstractBaseUser | None = None) -> Retried:
    """Resend every failed message of ``sendout`` that has not been resent yet; return how many
    this call resent (another call racing it resends none of the same), as :class:`Retried`,
    whose ``suppressed`` counts the failed messages passed over because their number opted out.

    Failed means failed, rejected, undelivered or expired; ``unknown`` messages are left to a
    person (:func:`resend`), since they may have arrived. Copies wait for the sendout's quiet
    hours as :func:`resend_many` says (``waiting``).
    """
    failed = Message.objects.filter(sendout=sendout, status__in=FAILURES, resend_token__isnull=True)
    copies = resend_many(list(failed.order_by("pk").values_list("pk", flat=True)), user=user)
    count = Retried(len(copies))
    count.suppressed, count.waiting = copies.suppressed, copies.waiting
    return count


def cancel_sendout(sendout: Sendout) -> int:
    """Cancel what of ``sendout`` has not been handed to D7; return how many messages were cancelled.

    A sendout that was wholly waiting (scheduled, or queued and unclaimed) is stopped completely
    and shows ``cancelled``; messages already with D7 cannot be called back.
    """
    with transaction.atomic(using=db_alias()):
        cancelled = status.cancel_waiting(sendout)
        if not sendout.messages.filter(status=MessageStatus.PENDING).exists():
            tasks.drop_schedule(sendout_id=sendout.pk)
    progress.refresh(sendout.pk)
    sendout.refresh_from_db(fields=["status", "completed_at"])
    return cancelled


def cancel_message(message: Message) -> bool:
    """Cancel one message not yet handed to D7; return True if it was cancelled."""
    with transaction.atomic(using=db_alias()):
        done = status.change(message, MessageStatus.CANCELLED)
        if done and not message.sendout_id:
            tasks.drop_schedule(message_id=message.pk)
    return done


def get_balance(refresh: bool = True) -> Balance:
    """Return the account :class:`~d7sms.client.Balance`, read from D7 unless ``refresh`` is
    False and a stored reading is recent (BALANCE_CACHE_SECONDS).

    Every reading is stored in :class:`~d7sms.models.AccountState`; a successful one lifts a
    pause. D7's errors (:mod:`d7sms.errors`) propagate.
    """
    if not refresh:
        reading = balance.stored()
        if reading is not None:
            return reading
    reading, resumed = balance.read(force=True)
    if resumed:
        tasks.sweep(everything=True)
    return reading


def _uuid_or_none(value):
    if value is None or isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError(f"idempotency_key must be a UUID, not {value!r}.", code="idempotency_key") from None
