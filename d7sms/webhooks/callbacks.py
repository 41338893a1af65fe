"""Batch callbacks and errbacks: store each call and apply it to the message it is about, in
the caller's transaction.

A D7 batch (one ``/secure/sendbatch`` call) calls back once per message. A callback names the
destination and, in ``statusText``, the D7 id of the message sent to it: the id is bound to our
message, which becomes ``accepted`` (unless a report already moved it further), and any orphan
DLRs waiting for that id are applied. An errback fails the message.
"""

from django.utils import timezone

from d7sms import pause, sql, status
from d7sms.models import FINAL, BatchCallback, Message, MessageStatus, Sendout
from d7sms.webhooks import dlr
from d7sms.webhooks.parsing import last


def _pick(candidates, d7_id):
    """Choose among a sendout's messages to one number (resends share it)."""
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


def _find_for_callback(sendout_id, callback):
    # ``to`` comes back as we sent it, with or without "+": compare digits.
    numbers = [f"+{callback.digits}", callback.digits]
    candidates = list(
        Message.objects.only(*dlr.MESSAGE_FIELDS, "to").filter(sendout_id=sendout_id, to__in=numbers).order_by("-pk")
    )
    return _pick(candidates, callback.d7_message_id)


def _apply_callback(message, row, d7_id):
    sql.lock_d7_id(d7_id)
    # Read again under the lock: a copy of this callback may have bound the id meanwhile.
    message.refresh_from_db(fields=["status", "d7_message_id", "accepted_at"])
    if message.d7_message_id and message.d7_message_id != d7_id:
        row.problem = dlr.mismatch(message)
        return
    bind = message.d7_message_id is None
    moved = status.change(message, MessageStatus.ACCEPTED, **({"d7_message_id": d7_id} if bind else {}))
    if not moved:
        if bind and not dlr.bind_d7_id(message, d7_id):
            row.problem = dlr.mismatch(message)
            return
        if not bind and BatchCallback.objects.filter(message=message, kind=row.kind, applied_at__isnull=False).exists():
            row.problem = dlr.DUPLICATE
    row.applied_at = timezone.now()
    dlr.apply_orphans(message)


NO_CREDIT = "Cannot charge submit_sm"


def _apply_errback(message, row):
    if NO_CREDIT in (row.status_text or ""):
        # D7 answers a sendbatch without credit with 200 and fails each message here: this is
        # the only place we learn of it, so stop sending until a balance check succeeds.
        pause.pause(f"D7 could not charge the account: {row.status_text[:200]}")
    if not status.change(message, MessageStatus.FAILED, error_code="errback", last_error=row.status_text or "errback"):
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
    message = _find_for_callback(row.sendout_id, callback) if row.sendout_id else None
    if row.sendout_id is None:
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
    return row


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
