"""Batch callbacks and errbacks: store each call and apply it to the message it is about, in
the caller's transaction.

A D7 batch (one ``/secure/sendbatch`` call) calls back once per message. A callback names the
destination and, in ``statusText``, the D7 id of the message sent to it: the id is bound to our
message, which becomes ``accepted`` (unless a report already moved it further), and any orphan
DLRs waiting for that id are applied. An errback saying "No route found" makes the message
``rejected`` (D7 refused it); any other errback fails it.

Which message a call may move. The URL's token proves only the sendout, and the URL sits in
access logs, so the call's own parameters decide, and they are checked against what we know:

- only a message handed to D7 moves (:data:`d7sms.status.HANDED_TO_D7`): a ``pending`` or
  ``queued`` one (such as the copy "Retry failed" just made) was never given to D7;
- only a message of the D7 batch the call names (``batchId``): a message whose sendbatch answer
  was recorded carries that batch's id (``d7_batch_id``), and a call of another batch is not
  about it. A message sent by ``/secure/send`` has no batch and takes no batch call.
- The race: D7 calls back as soon as it has queued the batch, often before the worker has
  recorded the 200 that names the batch (the message is still ``sending``, without a batch id),
  and when that answer never came the message is ``unknown``, also without one. Such a message
  (no batch id, nothing recorded as submitted) takes the call, which pins it to the call's
  batch: a later call of another batch no longer moves it. Waiting for the answer instead would
  leave an ``unknown`` message unresolved for good, and the callback is the only word D7 sends
  about it; the price is that a forged call in the seconds of a sendbatch call can move a
  message of that sendout, which needs the sendout's URL and the message's number.

A call that may not move anything is stored with the reason and answered ACK.
"""

from django.utils import timezone

from d7sms import busy, pause, sql, status
from d7sms.models import FINAL, BatchCallback, Message, MessageStatus, Sendout
from d7sms.webhooks import dlr
from d7sms.webhooks.parsing import Malformed, last, parse_callback

#: ``problem`` of a call for which no message of its batch goes to its number.
NO_MESSAGE_OF_BATCH = "no message of this D7 batch to this number was handed to D7"
# What a call reads of a message to choose it and apply itself.
_FIELDS = (*dlr.MESSAGE_FIELDS, "to", "d7_batch_id", "submitted_at")


def may_be_about(message, batch_id):
    """True when a call of D7 batch ``batch_id`` can be about ``message``."""
    if message.status in status.NEVER_HANDED:
        return False
    if message.d7_batch_id:
        return message.d7_batch_id == batch_id
    # No batch recorded: either its sendbatch answer is not recorded yet (or never came), or it
    # went by /secure/send, whose recorded acceptance stamps submitted_at without a batch.
    return message.submitted_at is None


def _pick(candidates, d7_id, batch_id):
    """Choose among a sendout's messages to one number (resends share it) the one the call of
    D7 batch ``batch_id`` is about, or None."""
    candidates = [m for m in candidates if may_be_about(m, batch_id)]
    if d7_id:
        for message in candidates:
            if message.d7_message_id == d7_id:
                return message
    for pool in (
        [m for m in candidates if m.d7_message_id is None and m.status not in FINAL],
        [m for m in candidates if m.d7_message_id is None],
        [m for m in candidates if m.status not in FINAL],
        candidates,
    ):
        if pool:
            return pool[0]
    return None


NO_SUCH_NUMBER = "no message to this number in the sendout"


def _has_number(sendout_id, callback):
    return Message.objects.filter(sendout_id=sendout_id, to__in=[f"+{callback.digits}", callback.digits]).exists()


def _find_for_callback(sendout_id, callback):
    # ``to`` comes back as we sent it, with or without "+": compare digits.
    numbers = [f"+{callback.digits}", callback.digits]
    candidates = list(Message.objects.only(*_FIELDS).filter(sendout_id=sendout_id, to__in=numbers).order_by("-pk"))
    return _pick(candidates, callback.d7_message_id, callback.d7_batch_id)


def _reread(message, batch_id):
    """Read ``message`` again, locked until commit; False when the call may no longer move it.

    A copy of the call may have bound the id meanwhile, or the worker recorded the batch.
    """
    row = Message.objects.select_for_update().filter(pk=message.pk).values(*_FIELDS[1:]).first()
    for name, value in (row or {}).items():
        setattr(message, name, value)
    return row is not None and may_be_about(message, batch_id)


def _pin_batch(message, batch_id):
    """The batch id to save with a change: the call's, for a message that has none yet."""
    return {} if message.d7_batch_id or not batch_id else {"d7_batch_id": batch_id[:64]}


def _apply_callback(message, row, d7_id, batch_id):
    sql.lock_d7_id(d7_id)
    if not _reread(message, batch_id):
        row.problem = NO_MESSAGE_OF_BATCH
        return
    if message.d7_message_id and message.d7_message_id != d7_id:
        row.problem = dlr.mismatch(message)
        return
    bind = message.d7_message_id is None
    fields = {"d7_message_id": d7_id} if bind else {}
    moved = status.change(
        message, MessageStatus.ACCEPTED, only_from=status.HANDED_TO_D7, **fields, **_pin_batch(message, batch_id)
    )
    if not moved:
        if bind and not dlr.bind_d7_id(message, d7_id):
            row.problem = dlr.mismatch(message)
            return
        if not bind and BatchCallback.objects.filter(message=message, kind=row.kind, applied_at__isnull=False).exists():
            row.problem = dlr.DUPLICATE
    row.applied_at = timezone.now()
    dlr.apply_orphans(message)


NO_CREDIT = "Cannot charge submit_sm"
#: An errback saying D7 has no route for the number: D7 refused this message (``rejected``).
NO_ROUTE = "No route found"


def _apply_errback(message, row, batch_id):
    if not _reread(message, batch_id):
        row.problem = NO_MESSAGE_OF_BATCH
        return
    if NO_CREDIT in (row.status_text or ""):
        # D7 answers a sendbatch without credit with 200 and fails each message here: this is
        # the only place we learn of it, so stop sending until a balance check succeeds.
        pause.pause(f"D7 could not charge the account: {row.status_text[:200]}", no_credit=True)
    # D7 refusing this message for its destination is a rejection; anything else (no credit, an
    # error inside D7) stays a failure to send.
    refused = NO_ROUTE in (row.status_text or "")
    failed = status.change(
        message, MessageStatus.REJECTED if refused else MessageStatus.FAILED, only_from=status.HANDED_TO_D7,
        error_code="NoRoute" if refused else "errback", last_error=row.status_text or "errback",
        **_pin_batch(message, batch_id),
    )
    if not failed:
        dlr.lock_message(message)
        if BatchCallback.objects.filter(message=message, kind=row.kind, applied_at__isnull=False).exists():
            row.problem = dlr.DUPLICATE
    row.applied_at = timezone.now()


def receive(kind, sendout_key, params, callback, *, remote_addr=None):
    """Store one batch callback or errback call and apply it, in the caller's transaction;
    return the row.

    ``kind`` is "callback" or "errback"; ``callback`` a validated
    :class:`~d7sms.webhooks.parsing.Callback`. Database errors propagate.
    """
    row = BatchCallback(
        kind=kind,
        d7_batch_id=callback.d7_batch_id,
        to=callback.to,
        status=callback.status,
        status_text=callback.status_text,
        d7_message_id=callback.d7_message_id,
        params=params,
        remote_addr=remote_addr,
    )
    row.sendout_id = Sendout.objects.filter(key=sendout_key).values_list("pk", flat=True).first()
    _apply(row, callback)
    row.save(force_insert=True)
    return row


def _apply(row, callback):
    """Apply the call ``row`` (of its ``sendout_id``) reads as ``callback``; fill its outcome."""
    message = _find_for_callback(row.sendout_id, callback) if row.sendout_id else None
    if row.sendout_id is None:
        row.problem = "unknown sendout"
    elif message is None:
        row.problem = NO_MESSAGE_OF_BATCH if _has_number(row.sendout_id, callback) else NO_SUCH_NUMBER
    else:
        row.message = message
        if row.kind == BatchCallback.Kind.CALLBACK:
            _apply_callback(message, row, callback.d7_message_id, callback.d7_batch_id)
        else:
            _apply_errback(message, row, callback.d7_batch_id)


#: ``problem`` of a call stored as it came because the database stayed busy: housekeeping
#: applies it (:func:`apply_unapplied`), since D7 never sends a batch callback again.
NOT_APPLIED_YET = "not applied yet: the database was busy (housekeeping applies it)"


def apply_unapplied(limit=1000):
    """Apply the batch callbacks stored as :data:`NOT_APPLIED_YET`; return how many were applied.

    Each in its own transaction; one that cannot be read is left with the reason.
    """
    ids = list(
        BatchCallback.objects.filter(problem=NOT_APPLIED_YET, applied_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    applied = 0
    for pk in ids:
        with busy.write_transaction():
            row = BatchCallback.objects.select_for_update().filter(pk=pk, problem=NOT_APPLIED_YET).first()
            if row is None:
                continue
            row.problem = ""
            try:
                callback = parse_callback(row.params, row.kind)
            except Malformed as exc:
                row.problem = str(exc)[:200]
            else:
                row.d7_batch_id, row.d7_message_id = callback.d7_batch_id, callback.d7_message_id
                row.status, row.status_text = callback.status, callback.status_text
                _apply(row, callback)
            row.save(update_fields=["message", "applied_at", "problem", "d7_batch_id", "d7_message_id", "status", "status_text"])
            applied += row.applied_at is not None
    return applied


def store_raw(kind, sendout_key, params, problem, *, remote_addr=None):
    """Store a batch callback or errback call that cannot be applied; return the row."""
    return BatchCallback.objects.create(
        kind=kind,
        sendout_id=Sendout.objects.filter(key=sendout_key).values_list("pk", flat=True).first(),
        to=last(params.get("to", "")).strip()[:32],
        status_text=last(params.get("statusText", ""))[:2000],
        params=params,
        remote_addr=remote_addr,
        problem=problem[:200],
    )
