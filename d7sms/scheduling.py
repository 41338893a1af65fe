"""Local schedules (we hold messages until their time) and cancelling what has not gone out.

A locally scheduled message waits as ``pending`` with ``scheduled_at``. A one-off django-q2
schedule fires it at that time, and housekeeping fires anything due as well, so a sendout whose
time passed while the cluster was down goes out once when the cluster is back: firing moves
``pending`` to ``queued`` conditionally, so only one firing enqueues a message. django-q2's
scheduler looks for due schedules about every 30 seconds, which bounds how late a local
schedule fires; a remote schedule (D7's ``schedule_at``) is exact but cannot be cancelled.
"""

from django.db import transaction
from django.utils import timezone

from d7sms import queue, status
from d7sms.models import Message, MessageStatus

S = MessageStatus
_SLICE = 900


def hold(batch=None, message=None, *, when):
    """Arrange for the pending messages of ``batch`` (or the lone ``message``) to fire at ``when``."""
    queue.add_schedule(queue.schedule_name(getattr(batch, "pk", None), getattr(message, "pk", None)), when)


def fire_due(now=None):
    """Queue and enqueue every pending message whose time has come; return how many."""
    now = now or timezone.now()
    fired = []
    while True:
        ids = list(
            Message.objects.filter(status=S.PENDING, scheduled_at__lte=now).order_by("pk").values_list("pk", flat=True)[
                :_SLICE
            ]
        )
        if not ids:
            break
        moved = status.change_many(ids, S.QUEUED, enqueued_at=now, next_attempt_at=None)
        fired.extend(moved)
        if not moved:  # another process fired this slice; what remains is picked up next round
            break
    if not fired:
        return 0
    rows = []
    for start in range(0, len(fired), _SLICE):
        rows.extend(
            Message.objects.filter(pk__in=fired[start : start + _SLICE]).values_list("pk", "batch_id", "batch__mode")
        )
    batch_ids = {batch_id for _pk, batch_id, _mode in rows if batch_id}
    for batch_id in batch_ids:
        status.refresh_batch(batch_id)
        queue.drop_schedule(queue.schedule_name(batch_id=batch_id))
    for pk, batch_id, _mode in rows:
        if not batch_id:
            queue.drop_schedule(queue.schedule_name(message_id=pk))
    queue.send_rows(rows)
    return len(fired)


def cancel_batch(batch):
    """Cancel every message of ``batch`` not yet handed to D7; return how many were cancelled.

    A sendout that was wholly waiting (scheduled, or queued and unclaimed) is stopped completely
    and shows ``cancelled``; messages already with D7 cannot be called back.
    """
    with transaction.atomic():
        cancelled = status.cancel_batch(batch)
        if not Message.objects.filter(batch=batch, status=S.PENDING).exists():
            queue.drop_schedule(queue.schedule_name(batch_id=batch.pk))
    status.refresh_batch(batch.pk)
    batch.refresh_from_db(fields=["status", "completed_at"])
    return cancelled


def cancel_message(message):
    """Cancel one message that has not been handed to D7; return True if it was cancelled."""
    with transaction.atomic():
        done = status.change(message, S.CANCELLED)
        if done and not message.batch_id:
            queue.drop_schedule(queue.schedule_name(message_id=message.pk))
    return done

