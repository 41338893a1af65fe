"""Delivery reports: store each one and apply it to its message, in the caller's transaction.

How a report moves a message (statuses only move forward, see :mod:`d7sms.status`, so repeats
change nothing and every arrival order ends in the same state):

=========  ==================  ============  =============================================
source     message_status      new status    notes
=========  ==================  ============  =============================================
level 1    ESME_ROK            at_smsc       the operator's SMSC took it
level 1    any other ESME_*    rejected      the SMSC refused it; error_code = the ESME code
level 2    DELIVRD             delivered
level 2    UNDELIV             undelivered   error_code UNDELIV, last_error names ``err``
level 2    EXPIRED             expired       validity period ran out
level 2    REJECTD             rejected
level 2    DELETED             failed        deleted at the SMSC: it will never be delivered
level 2    UNKNOWN             undelivered   the SMSC gave up without a known state: final,
                                             and delivery was never confirmed
level 2    ACCEPTD, ENROUTE    at_smsc       not final; another receipt may follow
callback   Success "<id>"      accepted      binds the D7 message id
errback    "No route found"    rejected      D7 refused it: error_code "NoRoute"
errback    any other text      failed        error_code "errback", last_error = statusText
=========  ==================  ============  =============================================

A report moves only a message handed to D7 (``sending``, ``unknown``, ``accepted``, ``at_smsc``;
see :data:`d7sms.status.HANDED_TO_D7`): one that is ``pending``, ``queued`` or ``cancelled`` was
never given to D7, so a report about it is a replay or a forgery. It is stored with the reason
and answered ACK (D7 would only send it again), and moves nothing.

A DLR received on a message's own URL is tied to that row by its token, and binds the D7 id when
the row has none. A DLR whose message cannot be found (the row was deleted, or the report came
to the installation-wide URL before anything told us its id) is stored as an *orphan* and applied
as soon as a callback binds that id (:func:`apply_orphans`), or by housekeeping
(:func:`apply_bound_orphans`). Batch callbacks are in :mod:`d7sms.webhooks.callbacks`.
"""

from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from d7sms import signals, sql, status
from d7sms.models import DeliveryReport, Message, MessageStatus, db_alias
from d7sms.webhooks.parsing import last

#: ``problem`` of a report stored while its message is unknown; cleared when applied.
ORPHAN = "orphan: no message with this D7 id yet"
DUPLICATE = "duplicate"
#: ``problem`` of a report about a message that was never handed to D7 (``%(status)s``).
NOT_HANDED_TO_D7 = "not applied: the message is %(status)s, it was never handed to D7"
NO_SUCH_MESSAGE = "no message with this id"
# The largest primary key a message can have (a 64-bit signed integer).
_MAX_PK = 2**63 - 1

_LEVEL2 = {
    "DELIVRD": MessageStatus.DELIVERED,
    "UNDELIV": MessageStatus.UNDELIVERED,
    "EXPIRED": MessageStatus.EXPIRED,
    "REJECTD": MessageStatus.REJECTED,
    "DELETED": MessageStatus.FAILED,
    "UNKNOWN": MessageStatus.UNDELIVERED,
    "ACCEPTD": MessageStatus.AT_SMSC,
    "ENROUTE": MessageStatus.AT_SMSC,
}
#: The fields read for status.change; touching any other would cost a query.
MESSAGE_FIELDS = ("id", "status", "d7_message_id", "sendout_id", "accepted_at", "dlr_level")


def outcome(level, message_status, err=""):
    """Return ``(new status, extra fields)`` for a validated report's level and status."""
    if level == 1:
        if message_status == "ESME_ROK":
            return MessageStatus.AT_SMSC, {}
        text = f"SMSC refused the message: {message_status}"
        return MessageStatus.REJECTED, {"error_code": message_status, "last_error": text}
    new = _LEVEL2[message_status]
    if new in (MessageStatus.DELIVERED, MessageStatus.AT_SMSC):
        return new, {}
    detail = f"delivery receipt {message_status}" + (f", err {err}" if err else "")
    return new, {"error_code": message_status, "last_error": detail}


def _announce(row):
    if signals.delivery_report_received.has_listeners():
        message = row.message if row.applied_at else None
        transaction.on_commit(
            lambda: signals.delivery_report_received.send(sender=DeliveryReport, report=row, message=message),
            using=db_alias(),
        )


def _insert(row):
    # Model.save() costs more than the INSERT itself (bench/sql_bench.py); it is used whenever
    # someone listens to the model's save signals, or to delivery_report_received (whose
    # receivers get the row's pk).
    model = type(row)
    if signals.delivery_report_received.has_listeners() or pre_save.has_listeners(model) or post_save.has_listeners(model):
        row.save(force_insert=True)
    else:
        sql.insert_row(row)


def lock_message(message):
    """Hold ``message``'s row until commit before asking "was this seen already?".

    Two copies of a report that change nothing take no row lock on their own, and could each
    miss the other's uncommitted row; with this the second waits and sees the first.
    """
    list(Message.objects.select_for_update().filter(pk=message.pk).values_list("pk", flat=True))


def mismatch(message):
    """The ``problem`` of a call whose D7 id differs from the one ``message`` carries."""
    return f"id mismatch: the message has D7 id {message.d7_message_id}"[:200]


def bind_d7_id(message, d7_id):
    """Give ``message`` the D7 id ``d7_id`` if it has none; True when it now carries that id."""
    if Message.objects.filter(pk=message.pk, d7_message_id__isnull=True).update(d7_message_id=d7_id):
        message.d7_message_id = d7_id
        return True
    message.d7_message_id = Message.objects.filter(pk=message.pk).values_list("d7_message_id", flat=True).first()
    return message.d7_message_id == d7_id


def _apply_dlr(message, row):
    """Apply ``row`` to ``message`` (which carries no other D7 id); fill the row's outcome."""
    new, fields = outcome(row.level, row.message_status, row.err)
    bind = message.d7_message_id is None
    if bind:
        fields["d7_message_id"] = row.d7_message_id
    row.message = message
    if not status.change(message, new, only_from=status.HANDED_TO_D7, **fields):
        if message.status in status.NEVER_HANDED:
            row.problem = NOT_HANDED_TO_D7 % {"status": message.status}
            return
        if bind:
            bind_d7_id(message, row.d7_message_id)
        lock_message(message)
        seen = DeliveryReport.objects.filter(
            message=message, level=row.level, message_status=row.message_status, applied_at__isnull=False
        )
        if seen.exists():
            row.problem = DUPLICATE
    row.applied_at = timezone.now()


def _apply_fast(row, message_id):
    """Apply ``row`` in one UPDATE when its message exists, carries its D7 id and may move.

    The common case, and the hot path: anything else (an id to bind, a repeat, a missing
    message, listeners wanting the message) returns False for the reading path to sort out.
    """
    if signals.delivery_report_received.has_listeners():
        return False
    new, fields = outcome(row.level, row.message_status, row.err)
    if not status.advance(
        message_id, new, only_from=status.HANDED_TO_D7, match={"d7_message_id": row.d7_message_id}, **fields
    ):
        return False
    row.message_id = message_id
    row.applied_at = timezone.now()
    return True


def _find_for_dlr(row, message_id):
    """The message ``row`` applies to, or None after recording why it cannot be applied."""
    if message_id is not None:
        message = Message.objects.only(*MESSAGE_FIELDS).filter(pk=message_id).first()
        if message is None:
            row.problem = ORPHAN
        elif message.d7_message_id and message.d7_message_id != row.d7_message_id:
            row.message = message
            row.problem = mismatch(message)
            return None
        return message
    lookup = Message.objects.only(*MESSAGE_FIELDS).filter(d7_message_id=row.d7_message_id)
    message = lookup.first()
    if message is None:
        sql.lock_d7_id(row.d7_message_id)
        message = lookup.first()
        if message is None:
            row.problem = ORPHAN
    return message


def receive(params, report, *, message_id=None, method="", remote_addr=None):
    """Store one DLR call and apply it, in the caller's transaction; return the stored row.

    ``report`` is a validated :class:`~d7sms.webhooks.parsing.Report`; ``message_id`` the pk
    from the message's own URL, or None for the installation-wide URL (matched by D7 id).
    Database errors propagate.
    """
    row = DeliveryReport(
        d7_message_id=report.d7_message_id,
        level=report.level,
        message_status=report.message_status,
        id_smsc=report.id_smsc,
        err=report.err,
        submitted_date=report.submitted_date,
        done_date=report.done_date,
        params=params,
        method=method,
        remote_addr=remote_addr,
    )

    if message_id is not None and not 0 < message_id <= _MAX_PK:
        row.problem = NO_SUCH_MESSAGE
    elif message_id is None or not _apply_fast(row, message_id):
        message = _find_for_dlr(row, message_id)
        if message is not None:
            _apply_dlr(message, row)
    _insert(row)
    _announce(row)
    return row


def store_raw(params, problem, *, message_id=None, method="", remote_addr=None):
    """Store a DLR call that cannot be applied, with ``problem`` saying why; return the row."""
    level = last(params.get("level", "")).strip()
    if message_id is not None and not (0 < message_id <= _MAX_PK and Message.objects.filter(pk=message_id).exists()):
        message_id = None
    return DeliveryReport.objects.create(
        message_id=message_id,
        d7_message_id=last(params.get("id", "")).strip()[:64],
        level=int(level) if level in ("1", "2") else None,
        message_status=last(params.get("message_status", "")).strip()[:40],
        params=params,
        method=method,
        remote_addr=remote_addr,
        problem=problem[:200],
    )


def apply_orphans(message):
    """Apply the stored orphan DLRs that carry ``message``'s D7 id; return how many."""
    if not message.d7_message_id:
        return 0
    with transaction.atomic(using=db_alias()):
        rows = list(
            DeliveryReport.objects.select_for_update()
            .filter(message__isnull=True, applied_at__isnull=True, problem=ORPHAN, d7_message_id=message.d7_message_id)
            .order_by("level", "pk")
        )
        for row in rows:
            row.problem = ""
            _apply_dlr(message, row)
            row.save(update_fields=["message", "applied_at", "problem"])
    return len(rows)


def apply_bound_orphans(limit=1000):
    """Apply orphan DLRs whose D7 id some message has been given since; return how many.

    Callbacks apply their orphans at once; this catches ids bound elsewhere (a send response).
    """
    orphan_ids = (
        DeliveryReport.objects.filter(message__isnull=True, applied_at__isnull=True, problem=ORPHAN)
        .values_list("d7_message_id", flat=True)
        .distinct()[:limit]
    )
    messages = Message.objects.only(*MESSAGE_FIELDS).filter(d7_message_id__in=list(orphan_ids))
    return sum(apply_orphans(message) for message in messages)
