"""The message state machine: the only place a message's or a sendout's status changes.

pending -> queued -> sending -> accepted -> at_smsc -> delivered | undelivered | expired | rejected,
plus failed, cancelled and unknown. Transitions only move forward: once a status is final no
later event changes it, and a level-1 report arriving after a level-2 one changes nothing. The one
step back is :func:`requeue` (sending -> queued) for a call that certainly did not reach D7.

Every write is a conditional UPDATE (``WHERE status IN (...)``), so concurrent webhooks and
workers on several hosts cannot overwrite one another.
"""

import functools

from django.db import connections, router, transaction
from django.db.models import Case, Count, F, Q, Value, When
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

# Ids per statement when a caller passes many: stays under SQLite's parameter limit.
_SLICE = 900

# Handed to D7 and not final: a sendout holding one of these is in progress.
_OUT_AT_D7 = (S.ACCEPTED, S.AT_SMSC, S.UNKNOWN)

# The timestamp a status stamps when first reached.
_STAMPS = {S.SENDING: "claimed_at", S.ACCEPTED: "accepted_at", S.AT_SMSC: "accepted_at"}


def ids_q(ids):
    """A filter for the messages with these ids: a range when the ids are contiguous (a chunk
    of one sendout almost always is), else an IN list. Both select the same rows, but Django
    spends longer building a 500-value IN list than the database spends using it."""
    ids = sorted(set(ids))
    if ids and ids[-1] - ids[0] + 1 == len(ids):
        return Q(pk__gte=ids[0], pk__lte=ids[-1])
    return Q(pk__in=ids)


def create_many(messages, *, scheduled, batch_size=None):
    """Save new messages in their first status: ``pending`` when held for a local schedule,
    else ``queued``. Returns them with primary keys."""
    first = S.PENDING if scheduled else S.QUEUED
    for message in messages:
        message.status = first
    return Message.objects.bulk_create(messages, batch_size=batch_size)


def insert_many(numbers, *, scheduled, **common):
    """Save one new message per number in ``numbers``, alike in everything else (``common``
    field values), in its first status as :func:`create_many` does; return how many.

    Several times faster than :func:`create_many` for a large sendout, but the primary keys
    are not read back.
    """
    from d7sms import bulk

    first = S.PENDING if scheduled else S.QUEUED
    return bulk.insert(Message, ("to",), ((n,) for n in numbers), status=first, **common)


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


@functools.lru_cache(maxsize=128)
def _advance_sql(alias, new, names, match_names):
    """The UPDATE of :func:`advance`, written by hand and kept: building it through the ORM
    costs five times what running it does."""
    qn = connections[alias].ops.quote_name
    meta = Message._meta
    fields = [meta.get_field(name) for name in names]
    # The first acceptance time is kept.
    sets = [
        f"{qn(f.column)} = COALESCE({qn(f.column)}, %s)" if f.name == "accepted_at" else f"{qn(f.column)} = %s"
        for f in fields
    ]
    allowed = sorted(s.value for s in ALLOWED_FROM[new])
    match_fields = [meta.get_field(name) for name in match_names]
    where = [
        f"{qn(meta.pk.column)} = %s",
        f"{qn(meta.get_field('status').column)} IN ({', '.join(['%s'] * len(allowed))})",
        *(f"{qn(f.column)} = %s" for f in match_fields),
    ]
    sql = f"UPDATE {qn(meta.db_table)} SET {', '.join(sets)} WHERE {' AND '.join(where)}"
    return sql, fields, allowed, match_fields


def advance(message_id, new, *, match=None, **fields):
    """Move message ``message_id`` to ``new`` in one conditional UPDATE, without reading it first.

    For hot paths: the UPDATE applies only while the row's status may move to ``new`` and the
    row holds the values in ``match`` (e.g. its D7 id). ``fields`` are saved with the change.
    Returns True if it moved; False when it did not, or when message_status_changed has
    listeners (they need the old status): the caller then reads the message and uses
    :func:`change`.
    """
    if signals.message_status_changed.has_listeners():
        return False
    now = timezone.now()
    values = {"status": new, "updated_at": now, **fields}
    _stamp(new, now, values)
    alias = router.db_for_write(Message)
    conn = connections[alias]
    match = match or {}
    sql, columns, allowed, match_fields = _advance_sql(alias, new, tuple(values), tuple(match))
    params = [f.get_db_prep_save(values[f.name], conn) for f in columns]
    params += [message_id, *allowed]
    params += [f.get_db_prep_value(match[f.name], conn) for f in match_fields]
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        moved = cursor.rowcount
    if not moved:
        return False
    if new in FINAL:
        transaction.on_commit(lambda: refresh_batch_of_message(message_id), using=alias)
    return True


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
        values[name] = Case(
            *[When(pk=pk, then=Value(v)) for pk, v in by_id.items()],
            default=F(name),
            output_field=Message._meta.get_field(name),
        )
    allowed = ALLOWED_FROM[new]
    with transaction.atomic():
        rows = list(
            Message.objects.select_for_update()
            .filter(ids_q(ids), status__in=allowed)
            .values_list("pk", "status", "batch_id")
        )
        moved = [pk for pk, _old, _b in rows]
        if moved:
            Message.objects.filter(ids_q(moved)).update(status=new, updated_at=now, **values)
            _announce([(pk, old, new) for pk, old, _b in rows])
            if new in FINAL:
                batch_ids = {b for _pk, _old, b in rows if b}
                transaction.on_commit(lambda: [refresh_batch(b) for b in batch_ids])
    return moved


def claim(ids):
    """Atomically take queued messages that are due for sending; return the ids this caller owns.

    A message waiting for a retry (``next_attempt_at`` in the future) is not due yet. On
    PostgreSQL rows locked by another worker are skipped (``SKIP LOCKED``); elsewhere the
    conditional UPDATE alone decides, so each message is claimed by exactly one caller.
    """
    from django.db import connection

    now = timezone.now()
    with transaction.atomic():
        qs = Message.objects.filter(ids_q(ids), status=S.QUEUED).filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
        )
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        mine = list(qs.values_list("pk", flat=True))
        if not mine:
            return []
        Message.objects.filter(ids_q(mine), status=S.QUEUED).update(
            status=S.SENDING, claimed_at=now, updated_at=now, attempts=F("attempts") + 1
        )
    _announce([(pk, S.QUEUED, S.SENDING) for pk in mine])
    return mine


def requeue(ids, *, next_attempt_at, error="", **fields):
    """Put claimed messages back in the queue after an error that certainly did not reach D7.

    ``fields`` are saved with the change (e.g. ``enqueued_at`` when the caller will retry
    them itself).
    """
    now = timezone.now()
    ids = list(ids)
    with transaction.atomic():
        n = Message.objects.filter(ids_q(ids), status=S.SENDING).update(
            status=S.QUEUED, next_attempt_at=next_attempt_at, last_error=error, updated_at=now, **fields
        )
    _announce([(pk, S.SENDING, S.QUEUED) for pk in ids] if n else [])
    return n


def record_accepted(ids, *, d7_ids=None, **fields):
    """Record that D7 took these messages; return the ids that moved to ``accepted``.

    ``d7_ids`` maps message ids to D7 message ids. A report can overtake the answer to the
    send call and move a message past ``accepted`` first; such a message keeps its status but
    still gets its D7 id (unless it already has one) and ``fields``.
    """
    ids = list(ids)
    with transaction.atomic():
        moved = change_many(ids, S.ACCEPTED, **fields)
        overtaken = sorted(set(ids) - set(moved))
        if overtaken and fields:
            Message.objects.filter(ids_q(overtaken)).exclude(status__in=(S.QUEUED, S.SENDING)).update(**fields)
        if d7_ids:
            _bind_d7_ids(d7_ids)
    return moved


def _bind_d7_ids(d7_ids):
    # One prepared statement for many rows: a CASE expression per row costs more to build in
    # Python than the call to D7 it records.
    from django.db import connection

    table = connection.ops.quote_name(Message._meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET d7_message_id = %s WHERE id = %s AND d7_message_id IS NULL",
            [(d7_id, pk) for pk, d7_id in d7_ids.items()],
        )


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


@functools.lru_cache(maxsize=8)
def _still_running_sql(alias):
    """The statements of :func:`_still_running`: (by sendout id, by message id)."""
    qn = connections[alias].ops.quote_name
    msg, batch = qn(Message._meta.db_table), qn(Batch._meta.db_table)
    # One EXISTS per status: each is an equality probe of the (batch, status) index, where an
    # IN list can make the planner walk every finished message of the sendout first.
    out_at_d7 = " OR ".join(
        [f"EXISTS(SELECT 1 FROM {msg} o WHERE o.batch_id = {{ref}} AND o.status = %s)"] * len(_OUT_AT_D7)
    )
    running = (
        f"CASE WHEN EXISTS(SELECT 1 FROM {batch} b WHERE b.id = {{ref}} AND b.status = %s) "
        f"AND ({out_at_d7}) THEN 1 ELSE 0 END"
    )
    return (
        f"SELECT {running.format(ref='%s')}",
        f"SELECT m.batch_id, {running.format(ref='m.batch_id')} FROM {msg} m WHERE m.id = %s",
    )


def _still_running(*, batch_id=None, message_id=None):
    """(sendout id, flag): the flag is true while the sendout is in progress and still has a
    message out at D7, so its status cannot have changed.

    Runs after every final report, so it is one hand-written statement: the ORM spends ten
    times longer building the query than the database spends answering it.
    """
    alias = router.db_for_write(Message)
    by_batch, by_message = _still_running_sql(alias)
    in_progress, out = BatchStatus.IN_PROGRESS.value, [s.value for s in _OUT_AT_D7]
    with connections[alias].cursor() as cursor:
        if message_id is None:
            probes = [value for state in out for value in (batch_id, state)]
            cursor.execute(by_batch, [batch_id, in_progress, *probes])
            return batch_id, bool(cursor.fetchone()[0])
        cursor.execute(by_message, [in_progress, *out, message_id])
        row = cursor.fetchone()
    return (row[0], bool(row[1])) if row else (None, False)


def refresh_batch_of_message(message_id):
    """Refresh the sendout of message ``message_id`` (if any) after it reached a final status."""
    batch_id, running = _still_running(message_id=message_id)
    if batch_id is None:
        return None
    return BatchStatus.IN_PROGRESS if running else refresh_batch(batch_id)


def refresh_batch(batch_id):
    """Recompute and store a sendout's status; announce batch_completed exactly once."""
    if _still_running(batch_id=batch_id)[1]:
        return BatchStatus.IN_PROGRESS
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
    moved = 0
    with transaction.atomic():
        ids = list(batch.messages.filter(status__in=ALLOWED_FROM[S.CANCELLED]).values_list("pk", flat=True))
        # In slices: a large sendout would exceed the database's limit on query parameters.
        for start in range(0, len(ids), _SLICE):
            moved += len(change_many(ids[start : start + _SLICE], S.CANCELLED))
        if not batch.messages.exclude(status=S.CANCELLED).exists():
            Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.CANCELLED)
            batch.status = BatchStatus.CANCELLED
    return moved
