"""The message state machine: the only place a message's or a sendout's status changes.

pending -> queued -> sending -> accepted -> at_smsc -> delivered | undelivered | expired | rejected,
plus failed, cancelled and unknown. Transitions only move forward: once a status is final no
later event changes it, and a level-1 report arriving after a level-2 one changes nothing. The one
step back is :func:`requeue` (sending -> queued) for a call that certainly did not reach D7.

Every write is a conditional UPDATE (``WHERE status IN (...)``), so concurrent webhooks and
workers on several hosts cannot overwrite one another.
"""

from django.db import transaction
from django.db.models import Case, Count, F, Value, When
from django.utils import timezone

from d7sms import signals
from d7sms.models import Batch, BatchStatus, Message, MessageStatus

S = MessageStatus

FINAL = frozenset({S.DELIVERED, S.UNDELIVERED, S.EXPIRED, S.REJECTED, S.FAILED, S.CANCELLED})
FAILURES = frozenset({S.UNDELIVERED, S.EXPIRED, S.REJECTED, S.FAILED})
NOT_FINAL = frozenset(set(S) - FINAL)

# Which statuses each status may be reached from.
ALLOWED_FROM = {
    S.PENDING: frozenset(),
    S.QUEUED: frozenset({S.PENDING}),
    S.SENDING: frozenset({S.QUEUED}),
    S.UNKNOWN: frozenset({S.SENDING}),
    S.ACCEPTED: frozenset({S.PENDING, S.QUEUED, S.SENDING, S.UNKNOWN}),
    S.AT_SMSC: frozenset({S.PENDING, S.QUEUED, S.SENDING, S.UNKNOWN, S.ACCEPTED}),
    S.CANCELLED: frozenset({S.PENDING, S.QUEUED}),
}
for _final in FINAL - {S.CANCELLED}:
    ALLOWED_FROM[_final] = NOT_FINAL

# The timestamp a status stamps when first reached.
_STAMPS = {S.SENDING: "claimed_at", S.ACCEPTED: "accepted_at", S.AT_SMSC: "accepted_at"}


def can_change(old, new):
    """True when a message in ``old`` may move to ``new``."""
    return old in ALLOWED_FROM[new]


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

    transaction.on_commit(send)


def change(message, new, **fields):
    """Move one message to ``new`` if the machine allows it; return True if it moved.

    ``fields`` are saved with the change. Safe against concurrent writers: the UPDATE only
    applies while the row still holds the status it was read with, and re-reads otherwise.
    """
    now = timezone.now()
    old = message.status
    for _attempt in range(5):
        if not can_change(old, new):
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
            if new in FINAL and message.batch_id:
                transaction.on_commit(lambda: refresh_batch(message.batch_id))
            return True
        row = Message.objects.filter(pk=message.pk).values("status", "accepted_at").first()
        if row is None:
            return False
        old = message.status = row["status"]
        message.accepted_at = row["accepted_at"]
    return False


def change_many(ids, new, *, per_row=None, **fields):
    """Move every message in ``ids`` that may go to ``new``; return the ids that moved.

    ``per_row`` maps a field name to ``{message_id: value}`` for values that differ per row
    (such as D7 message ids); ``fields`` are shared by all rows.
    """
    ids = list(ids)
    if not ids:
        return []
    now = timezone.now()
    values = dict(fields)
    _stamp(new, now, values)
    for name, by_id in (per_row or {}).items():
        values[name] = Case(*[When(pk=pk, then=Value(v)) for pk, v in by_id.items()], default=F(name))
    allowed = ALLOWED_FROM[new]
    with transaction.atomic():
        rows = list(
            Message.objects.select_for_update()
            .filter(pk__in=ids, status__in=allowed)
            .values_list("pk", "status", "batch_id")
        )
        moved = [pk for pk, _old, _b in rows]
        if moved:
            Message.objects.filter(pk__in=moved).update(status=new, updated_at=now, **values)
            _announce([(pk, old, new) for pk, old, _b in rows])
            if new in FINAL:
                batch_ids = {b for _pk, _old, b in rows if b}
                transaction.on_commit(lambda: [refresh_batch(b) for b in batch_ids])
    return moved


def claim(ids):
    """Atomically take queued messages for sending; return the ids this caller now owns.

    On PostgreSQL rows locked by another worker are skipped (``SKIP LOCKED``); elsewhere the
    conditional UPDATE alone decides, so each message is claimed by exactly one caller.
    """
    from django.db import connection

    now = timezone.now()
    with transaction.atomic():
        qs = Message.objects.filter(pk__in=list(ids), status=S.QUEUED)
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        mine = list(qs.values_list("pk", flat=True))
        if not mine:
            return []
        Message.objects.filter(pk__in=mine, status=S.QUEUED).update(
            status=S.SENDING, claimed_at=now, updated_at=now, attempts=F("attempts") + 1
        )
    _announce([(pk, S.QUEUED, S.SENDING) for pk in mine])
    return mine


def requeue(ids, *, next_attempt_at, error=""):
    """Put claimed messages back in the queue after an error that certainly did not reach D7."""
    now = timezone.now()
    ids = list(ids)
    with transaction.atomic():
        n = Message.objects.filter(pk__in=ids, status=S.SENDING).update(
            status=S.QUEUED, next_attempt_at=next_attempt_at, last_error=error, updated_at=now
        )
    _announce([(pk, S.SENDING, S.QUEUED) for pk in ids] if n else [])
    return n


def batch_counts(batch_ids):
    """Return ``{batch_id: {status: count}}`` for the given sendouts, in one query."""
    counts = {b: {} for b in batch_ids}
    rows = (
        Message.objects.filter(batch_id__in=list(batch_ids))
        .values_list("batch_id", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for batch_id, status, n in rows:
        counts[batch_id][status] = n
    return counts


def derive_batch_status(batch, counts):
    """The status a sendout should show, given its stored status and its messages' counts."""
    if batch.status == BatchStatus.CANCELLED:
        return BatchStatus.CANCELLED
    total = sum(counts.values())
    waiting = sum(n for s, n in counts.items() if s not in FINAL)
    if total and not waiting:
        if counts.get(S.CANCELLED, 0) == total:
            return BatchStatus.CANCELLED
        failed = sum(n for s, n in counts.items() if s in FAILURES)
        return BatchStatus.COMPLETED_WITH_FAILURES if failed else BatchStatus.COMPLETED
    if counts.get(S.PENDING, 0) == total and batch.submitted_at is None:
        return BatchStatus.SCHEDULED
    early = counts.get(S.PENDING, 0) + counts.get(S.QUEUED, 0) + counts.get(S.SENDING, 0)
    return BatchStatus.SUBMITTING if early == waiting and waiting else BatchStatus.IN_PROGRESS


def refresh_batch(batch_id):
    """Recompute and store a sendout's status; announce batch_completed exactly once."""
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None:
        return None
    new = derive_batch_status(batch, batch_counts([batch_id])[batch_id])
    if new == batch.status:
        return new
    done = new in (BatchStatus.COMPLETED, BatchStatus.COMPLETED_WITH_FAILURES)
    values = {"status": new}
    if done:
        values["completed_at"] = timezone.now()
    # Conditional on the old status so two concurrent refreshes announce completion once.
    updated = Batch.objects.filter(pk=batch_id, status=batch.status).update(**values)
    if updated and done:
        batch.status = new
        batch.completed_at = values["completed_at"]
        transaction.on_commit(lambda: signals.batch_completed.send(sender=Batch, batch=batch))
    return new


def cancel_batch(batch):
    """Cancel a sendout not yet handed to D7; return the number of messages cancelled."""
    with transaction.atomic():
        ids = list(batch.messages.filter(status__in=ALLOWED_FROM[S.CANCELLED]).values_list("pk", flat=True))
        moved = change_many(ids, S.CANCELLED)
        if not batch.messages.exclude(status=S.CANCELLED).exists():
            Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.CANCELLED)
            batch.status = BatchStatus.CANCELLED
    return len(moved)
