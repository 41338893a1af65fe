"""Batch callbacks and errbacks: which message of a sendout a call is about, and what it does.

A callback names the destination and, in ``statusText``, the D7 id of the message sent to it:
the id is bound to our message, which becomes ``accepted`` (unless a report already moved it
further), and any orphan DLRs waiting for that id are applied. An errback fails the message.
"""

from django.utils import timezone

from d7sms import pause, status
from d7sms.models import Batch, BatchCallback, Message, MessageStatus
from d7sms.webhooks import apply, storage

S = MessageStatus


def _pick(candidates, d7_id):
    """Choose among a sendout's messages to one number (resends share it)."""
    if d7_id:
        for message in candidates:
            if message.d7_message_id == d7_id:
                return message
    for pool in (
        [m for m in candidates if m.d7_message_id is None and m.status not in status.FINAL],
        [m for m in candidates if m.d7_message_id is None],
        [m for m in candidates if m.status not in status.FINAL],
        candidates,
    ):
        if pool:
            return pool[0]
    return None


def _find_for_callback(batch_id, callback):
    # ``to`` comes back as we sent it, with or without "+": compare digits.
    numbers = [f"+{callback.digits}", callback.digits]
    candidates = list(
        Message.objects.only(*apply.MESSAGE_FIELDS, "to").filter(batch_id=batch_id, to__in=numbers).order_by("-pk")
    )
    return _pick(candidates, callback.d7_message_id)


def _apply_callback(message, row, d7_id):
    storage.lock_d7_id(d7_id)
    # Read again under the lock: a copy of this callback may have bound the id meanwhile.
    message.refresh_from_db(fields=["status", "d7_message_id", "accepted_at"])
    if message.d7_message_id and message.d7_message_id != d7_id:
        row.problem = apply.mismatch(message)
        return
    bind = message.d7_message_id is None
    moved = status.change(message, S.ACCEPTED, **({"d7_message_id": d7_id} if bind else {}))
    if not moved:
        if bind and not apply.bind_d7_id(message, d7_id):
            row.problem = apply.mismatch(message)
            return
        if not bind and BatchCallback.objects.filter(message=message, kind=row.kind, applied_at__isnull=False).exists():
            row.problem = apply.DUPLICATE
    row.applied_at = timezone.now()
    apply.apply_orphans(message)


NO_CREDIT = "Cannot charge submit_sm"


def _apply_errback(message, row):
    if NO_CREDIT in (row.status_text or ""):
        # D7 answers a sendbatch without credit with 200 and fails each message here: this is
        # the only place we learn of it, so stop sending until a balance check succeeds.
        pause.pause(f"D7 could not charge the account: {row.status_text[:200]}")
    if not status.change(message, S.FAILED, error_code="errback", last_error=row.status_text or "errback"):
        apply.lock_message(message)
        if BatchCallback.objects.filter(message=message, kind=row.kind, applied_at__isnull=False).exists():
            row.problem = apply.DUPLICATE
    row.applied_at = timezone.now()


def receive_callback(kind, batch_key, params, callback, *, remote_addr=None):
    """Store one batch callback or errback call and apply it in one transaction; return the row.

    ``kind`` is "callback" or "errback"; ``callback`` a validated
    :class:`~d7sms.webhooks.parsing.Callback`. Database errors propagate, with nothing stored.
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

    def work():
        row.batch_id = Batch.objects.filter(key=batch_key).values_list("pk", flat=True).first()
        message = _find_for_callback(row.batch_id, callback) if row.batch_id else None
        if row.batch_id is None:
            row.problem = "unknown sendout"
        elif message is None:
            row.problem = "no message to this number in the sendout"
        else:
            row.message = message
            if kind == BatchCallback.Kind.CALLBACK:
                _apply_callback(message, row, callback.d7_message_id)
            else:
                _apply_errback(message, row)
        row.save(force_insert=True)

    storage.commit(work, row)
    return row
