"""The message state machine: the only place a message's status changes.

pending -> queued -> sending -> accepted -> at_smsc -> delivered | undelivered | expired | rejected,
plus failed, cancelled and unknown. Transitions only move forward: once a status is final no
later event changes it, and a level-1 report arriving after a level-2 one changes nothing. The one
step back is :func:`requeue` (sending -> queued) for a call that certainly did not reach D7.

Every write is a conditional UPDATE (``WHERE status IN (...)``), so concurrent webhooks and
workers on several hosts cannot overwrite one another. A message that settles (becomes final, or
goes as far as its reports can take it, :func:`d7sms.progress.settled`) refreshes its sendout
(:mod:`d7sms.progress`) once the change commits. ``message_status_changed`` is announced only for
rows an UPDATE really moved.
"""

import uuid

from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from d7sms import busy, progress, signals, sql, suppression
from d7sms.models import FINAL, NOT_FINAL, Message, MessageStatus, db_alias

PENDING, QUEUED, SENDING, UNKNOWN = MessageStatus.PENDING, MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.UNKNOWN
ACCEPTED, AT_SMSC, CANCELLED = MessageStatus.ACCEPTED, MessageStatus.AT_SMSC, MessageStatus.CANCELLED

# Which statuses each status may be reached from.
ALLOWED_FROM = {
    PENDING: frozenset(),
    QUEUED: frozenset({PENDING}),
    SENDING: frozenset({QUEUED}),
    UNKNOWN: frozenset({SENDING}),
    ACCEPTED: frozenset({PENDING, QUEUED, SENDING, UNKNOWN}),
    AT_SMSC: frozenset({PENDING, QUEUED, SENDING, UNKNOWN, ACCEPTED}),
    CANCELLED: frozenset({PENDING, QUEUED}),
    **{final: NOT_FINAL for final in FINAL - {CANCELLED}},
}

#: A message in these statuses has been handed to D7 (or its call is under way) and is not
#: final: the only ones D7's reports and callbacks may move (see ``only_from`` below).
HANDED_TO_D7 = frozenset({SENDING, UNKNOWN, ACCEPTED, AT_SMSC})
#: A message in these statuses was never handed to D7, so no call from D7 can be about it.
NEVER_HANDED = frozenset({PENDING, QUEUED, CANCELLED})

# The timestamp a status stamps when first reached.
_STAMPS = {SENDING: "claimed_at", ACCEPTED: "accepted_at", AT_SMSC: "accepted_at"}
#: ``last_error`` of a message cancelled because its number opted out after it was stored.
SUPPRESSED_TEXT = "Not sent: the number is on the suppression list (opted out)."
# Re-reads of a row that a concurrent writer moved first, before change() gives up.
_RETRIES = 5


def ids_q(ids):
    """A filter for the messages with these ids: a range when the ids are contiguous (a chunk
    of one sendout almost always is), else an IN list. Both select the same rows, but Django
    spends longer building a long IN list than the database spends using it."""
    ids = sorted(set(ids))
    if ids and ids[-1] - ids[0] + 1 == len(ids):
        return Q(pk__gte=ids[0], pk__lte=ids[-1])
    return Q(pk__in=ids)


def due_q(now=None):
    """Queued messages whose time has come: no retry pending, or its time passed."""
    now = now or timezone.now()
    return Q(status=QUEUED) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))


def can_change(old, new, only_from=None):
    """True when a message in ``old`` may move to ``new`` (and ``old`` is in ``only_from``, if given)."""
    return old in _allowed(new, only_from)


def _allowed(new, only_from):
    return ALLOWED_FROM[new] if only_from is None else ALLOWED_FROM[new] & only_from


def _stamp(new, now, fields):
    stamp = _STAMPS.get(new)
    if stamp and stamp not in fields:
        fields[stamp] = now
    if new in FINAL and "final_at" not in fields:
        fields["final_at"] = now


def _announce(changes):
    """Send message_status_changed for (id, old, new) triples once the transaction commits."""
    if not changes or not signals.message_status_changed.has_listeners():
        return

    def send():
        for message_id, old, new in changes:
            signals.message_status_changed.send(sender=Message, message_id=message_id, old=old, new=new)

    transaction.on_commit(send, using=db_alias())


def change(message, new, *, only_from=None, **fields):
    """Move one message to ``new`` if the machine allows it; return True if it moved.

    ``fields`` are saved with the change. ``only_from`` narrows the statuses it may leave
    (the receivers pass :data:`HANDED_TO_D7`). Safe against concurrent writers: the UPDATE only
    applies while the row still holds the status it was read with, and re-reads otherwise.
    """
    now = timezone.now()
    old = message.status
    for _attempt in range(_RETRIES):
        if not can_change(old, new, only_from):
            return False
        values = dict(fields)
        _stamp(new, now, values)
        if "accepted_at" in values and message.accepted_at:
            del values["accepted_at"]  # keep the first acceptance time
        updated = Message.objects.filter(pk=message.pk, status=old).update(status=new, updated_at=now, **values)
        if updated:
            message.status = new
            for name, value in values.items():
                setattr(message, name, value)
            _announce([(message.pk, old, new)])
            if new in FINAL or progress.settled(new, message.dlr_level):
                progress.refresh_after_commit([message.sendout_id])
            return True
        row = Message.objects.filter(pk=message.pk).values("status", "accepted_at").first()
        if row is None:
            return False
        old = message.status = row["status"]
        message.accepted_at = row["accepted_at"]
    return False


def advance(message_id, new, *, only_from=None, match=None, **fields):
    """Move message ``message_id`` to ``new`` in one conditional UPDATE, without reading it first.

    For the receivers' hot path: the UPDATE applies only while the row's status may move to
    ``new`` (and is in ``only_from``, if given) and the row holds the values in ``match``
    (e.g. its D7 id). ``fields`` are saved
    with the change. Returns True if it moved; False when it did not, or when
    message_status_changed has listeners (they need the old status): the caller then reads the
    message and uses :func:`change`.
    """
    if signals.message_status_changed.has_listeners():
        return False
    at_least = None
    if new not in FINAL:
        # Only where the move leaves the message waiting for more: where it is the last word
        # (e.g. at_smsc for a level-1 message), the caller's slow path refreshes its sendout.
        floor = progress.lowest_level_waiting(new)
        if floor is None:
            return False
        at_least = {"dlr_level": floor} if floor else None
    now = timezone.now()
    values = {"status": new, "updated_at": now, **fields}
    _stamp(new, now, values)
    if not sql.update_message_if(message_id, _allowed(new, only_from), values, match, at_least):
        return False
    if new in FINAL:
        busy.after_commit(lambda: progress.refresh_for_message(message_id), what="a sendout refresh")
    return True


def change_many(ids, new, *, per_row=None, **fields):
    """Move every message in ``ids`` that may go to ``new``; return the ids that moved.

    ``per_row`` maps a field name to ``{message_id: value}`` for values that differ per row
    (such as error texts); ``fields`` are shared by all rows.
    """
    ids = list(ids)
    if not ids:
        return []
    now = timezone.now()
    values = dict(fields)
    _stamp(new, now, values)
    for name, by_id in (per_row or {}).items():
        values[name] = Case(
            *[When(pk=pk, then=Value(v)) for pk, v in by_id.items()],
            default=F(name),
            output_field=Message._meta.get_field(name),
        )
    with transaction.atomic(using=db_alias()):
        rows = list(
            Message.objects.select_for_update()
            .filter(ids_q(ids), status__in=ALLOWED_FROM[new])
            .values_list("pk", "status", "sendout_id", "dlr_level")
        )
        moved = [pk for pk, _old, _s, _level in rows]
        if moved:
            Message.objects.filter(ids_q(moved)).update(status=new, updated_at=now, **values)
            _announce([(pk, old, new) for pk, old, _s, _level in rows])
            settles = [(old, s) for _pk, old, s, level in rows if progress.settled(new, level)]
            others = {s for old, s in settles if old != SENDING}
            progress.refresh_after_send({s for old, s in settles if old == SENDING} - others)
            progress.refresh_after_commit(others)
    return moved


def claim(ids):
    """Atomically take queued messages that are due for sending; return the ids this caller owns.

    A message waiting for a retry (``next_attempt_at`` in the future) is not due yet. The
    conditional UPDATE decides: only the rows it changed are returned (read back with ``RETURNING``,
    or, where the database cannot, by the token it stamped them with), so each message is claimed
    by exactly one caller on any database. Where the database can, rows another worker holds are
    skipped (``SKIP LOCKED``) instead of waited for. A due message whose number is on the
    suppression list (and not sent with ``ignore_suppression``) is not taken but cancelled, in the
    same transaction: nothing is sent to a number that opted out after its message was stored.
    """
    return [message.pk for message in claim_messages(ids, ("id",))]


def claim_messages(ids, fields):
    """:func:`claim`, returning the claimed messages (with only ``fields`` loaded), by id."""
    now = timezone.now()
    alias = db_alias()
    token = uuid.uuid4()
    # In the model's order, as Message.from_db takes them; the id first, to sort by.
    wanted = {*fields, "id"}
    fields = tuple(f.attname for f in Message._meta.concrete_fields if f.attname in wanted or f.name in wanted)
    with transaction.atomic(using=alias):
        if sql.updates_return_rows():
            rows = sql.claim_messages(ids, fields, now=now, token=token, queued=QUEUED, sending=SENDING)
            mine = [Message.from_db(alias, fields, row) for row in rows]
        else:
            mine = _claim_by_token(ids, fields, now, token, alias)
        if len(mine) < len(set(ids)):
            # Only when the claim left some behind: a second statement on every claim costs more
            # than the claim itself.
            _cancel_suppressed(Message.objects.filter(ids_q(ids), due_q(now)), now)
    _announce([(message.pk, QUEUED, SENDING) for message in mine])
    return mine


def _claim_by_token(ids, fields, now, token, alias):
    due = Message.objects.filter(ids_q(ids), due_q(now))
    if transaction.get_connection(alias).features.has_select_for_update_skip_locked:
        free = list(due.select_for_update(skip_locked=True).values_list("pk", flat=True))
        if not free:
            return []
        due = Message.objects.filter(ids_q(free), due_q(now))
    changed = due.exclude(suppression.blocked_q()).update(
        status=SENDING, claim_token=token, claimed_at=now, updated_at=now, attempts=F("attempts") + 1
    )
    if not changed:
        return []
    return list(Message.objects.filter(ids_q(ids), claim_token=token).only(*fields).order_by("pk"))


def _cancel_suppressed(due, now):
    """Cancel the messages of ``due`` (queued) whose number is on the suppression list, in one
    conditional UPDATE; return their ids. Part of the claim: what it left behind."""
    token = uuid.uuid4()
    values = {"error_code": suppression.ERROR_CODE, "last_error": SUPPRESSED_TEXT}
    _stamp(CANCELLED, now, values)
    if not due.filter(suppression.blocked_q()).update(status=CANCELLED, claim_token=token, updated_at=now, **values):
        return []
    rows = list(Message.objects.filter(claim_token=token).values_list("pk", "sendout_id"))
    _announce([(pk, QUEUED, CANCELLED) for pk, _s in rows])
    progress.refresh_after_commit({s for _pk, s in rows if s})
    return [pk for pk, _s in rows]


def take_for_resend(ids):
    """Mark the messages in ``ids`` as being sent again, each by exactly one caller; return the
    ids this caller took. A message is taken once, ever, and only when it is no longer on its
    way here (not pending, queued or sending), and is never taken while its number is on the
    suppression list (unless it was sent with ``ignore_suppression``)."""
    token = uuid.uuid4()
    waiting = (PENDING, QUEUED, SENDING)
    taken = []
    with transaction.atomic(using=db_alias()):
        for part in sql.slices(ids):
            # A number on the suppression list is passed over, and stays resendable if it
            # comes off the list.
            free = Message.objects.filter(pk__in=part, resend_token__isnull=True).exclude(status__in=waiting)
            if free.exclude(suppression.blocked_q()).update(resend_token=token):
                taken += Message.objects.filter(pk__in=part, resend_token=token).values_list("pk", flat=True)
    return taken


def take_for_deletion(message):
    """Take ``message`` for deletion if it never left for D7 and was not sent again; return True
    if taken. A waiting message is cancelled first (no worker claims it then); the take is one
    conditional UPDATE that marks it resent, so no resend takes it either. The caller deletes
    it in the same transaction, and :func:`forget_resend` its original's mark if it was a copy."""
    with transaction.atomic(using=db_alias()):
        change(message, CANCELLED)  # only a pending or queued message moves
        never_handed = Message.objects.filter(
            pk=message.pk, status=CANCELLED, resend_token__isnull=True, submitted_at__isnull=True, d7_message_id__isnull=True
        )
        return bool(never_handed.update(resend_token=uuid.uuid4()))


def forget_resend(message_id):
    """Make the message whose copy is being deleted its recipient's latest attempt again (and
    resendable), as if it had never been sent again."""
    Message.objects.filter(pk=message_id).update(resend_token=None)


def requeue(ids, *, next_attempt_at, error="", **fields):
    """Put claimed messages back in the queue after an error that certainly did not reach D7.

    ``fields`` are saved with the change (e.g. ``enqueued_at`` when the caller will retry
    them itself).
    """
    now = timezone.now()
    ids = list(ids)
    with transaction.atomic(using=db_alias()):
        moved = list(Message.objects.select_for_update().filter(ids_q(ids), status=SENDING).values_list("pk", flat=True))
        if moved:
            Message.objects.filter(ids_q(moved)).update(
                status=QUEUED, next_attempt_at=next_attempt_at, last_error=error, updated_at=now, **fields
            )
        _announce([(pk, SENDING, QUEUED) for pk in moved])
    return len(moved)


def record_accepted(ids, *, d7_ids=None, **fields):
    """Record that D7 took these messages; return the ids that moved to ``accepted``.

    ``d7_ids`` maps message ids to D7 message ids. A report can overtake the answer to the
    send call and move a message past ``accepted`` first; such a message keeps its status but
    still gets its D7 id (unless it already has one) and ``fields``.
    """
    ids = list(ids)
    with transaction.atomic(using=db_alias()):
        moved = []
        if ids and sql.updates_return_rows() and not signals.message_status_changed.has_listeners():
            # The usual case in one statement: claimed messages (still ``sending``) accepted.
            # With receivers connected each change is read first, to be announced with its old status.
            now = timezone.now()
            values = {"status": ACCEPTED, "updated_at": now, **fields}
            _stamp(ACCEPTED, now, values)
            rows = sql.accept_sent(ids, values, d7_ids, sending=SENDING)
            moved = [pk for pk, _s, _level in rows]
            progress.refresh_after_send({s for _pk, s, level in rows if progress.settled(ACCEPTED, level)})
        rest = sorted(set(ids) - set(moved))
        if rest:
            moved += change_many(rest, ACCEPTED, **fields)
            overtaken = sorted(set(rest) - set(moved))
            if overtaken and fields:
                Message.objects.filter(ids_q(overtaken)).exclude(status__in=(QUEUED, SENDING)).update(**fields)
            sql.bind_d7_ids({pk: d7_ids[pk] for pk in rest if pk in d7_ids} if d7_ids else None)
    return moved


def cancel_waiting(sendout):
    """Cancel every message of ``sendout`` not yet handed to D7; return how many were cancelled."""
    moved = 0
    with transaction.atomic(using=db_alias()):
        ids = list(sendout.messages.filter(status__in=ALLOWED_FROM[CANCELLED]).values_list("pk", flat=True))
        for part in sql.slices(ids):
            moved += len(change_many(part, CANCELLED))
    return moved
