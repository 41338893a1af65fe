"""Local schedules: messages this site holds as ``pending`` until their ``scheduled_at``.

A one-off django-q2 schedule (made by :mod:`d7sms.tasks`) fires a sendout or a lone message at
its time, and housekeeping fires anything due as well, so a sendout whose time passed while the
cluster was down goes out once when the cluster is back: firing moves ``pending`` to ``queued``
conditionally, so only one firing enqueues a message. django-q2's scheduler looks for due
schedules about every 30 seconds, which bounds how late a local schedule fires; a remote
schedule (D7's ``schedule_at``) is exact but cannot be cancelled.

A sendout with quiet hours holds each message until its own release (its ``scheduled_at``), so
it may have several: firing one moves the sendout's schedule on to the next
(:func:`next_release`).
"""

from django.db.models import Count, Min
from django.utils import timezone

from d7sms import progress, sql, status
from d7sms.models import Message, MessageStatus


def fire_due(now=None):
    """Queue every pending message whose time has come.

    Returns the fired messages as ``(id, sendout id, sendout mode)`` rows, for the caller to
    enqueue; the sendouts they belong to are refreshed.
    """
    now = now or timezone.now()
    fired = []
    while True:
        ids = list(
            Message.objects.filter(status=MessageStatus.PENDING, scheduled_at__lte=now)
            .order_by("pk")
            .values_list("pk", flat=True)[: sql.SLICE]
        )
        if not ids:
            break
        moved = status.change_many(ids, MessageStatus.QUEUED, enqueued_at=now, next_attempt_at=None)
        fired.extend(moved)
        if not moved:  # another process fired this slice; what remains is picked up next round
            break
    rows = []
    for part in sql.slices(fired):
        rows.extend(Message.objects.filter(pk__in=part).values_list("pk", "sendout_id", "sendout__mode"))
    for sendout_id in {sendout_id for _pk, sendout_id, _mode in rows if sendout_id}:
        progress.refresh(sendout_id)
    return rows


def next_release(sendout_id):
    """When the next pending message of the sendout is due, or None when none waits."""
    found = Message.objects.filter(sendout_id=sendout_id, status=MessageStatus.PENDING).aggregate(at=Min("scheduled_at"))
    return found["at"]


def held_for_quiet_hours(sendout):
    """``(count, next release)`` of the sendout's messages that wait for its quiet hours, beyond
    its own time; ``(0, None)`` for a sendout without a window."""
    if sendout.send_from is None:
        return 0, None
    found = (
        Message.objects.filter(sendout=sendout, status=MessageStatus.PENDING)
        .exclude(scheduled_at=sendout.schedule_at)
        .aggregate(n=Count("pk"), at=Min("scheduled_at"))
    )
    return found["n"], found["at"]
