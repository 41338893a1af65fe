"""A sendout's progress: its recipients counted by status, and the one place its status changes.

A sendout counts recipients, not messages: each recipient's *latest attempt* (the message not
sent again since, :data:`d7sms.models.LATEST`) decides where that recipient stands. A resend or
a "Retry failed" replaces the recipient's attempt; it never adds a recipient.

A sendout's status follows from those attempts: ``scheduled`` while all wait for their time,
``submitting`` while none has been handed to D7 yet, ``in_progress`` until every attempt has
*settled*, then ``completed`` (or ``completed_with_failures``); ``cancelled`` when nothing of it
was sent. A message settles when D7 will tell nothing more about it: at a final status, or as
far as the reports it asked for go (:func:`settled`): ``accepted`` for one that asked for none
(``dlr_level`` 0, or sent while CALLBACK_BASE_URL is empty: no report can come back),
``at_smsc`` for one that asked for SMSC-level reports only (level 1).

``completed_at`` is when every recipient first had a settled attempt, and it stays so: a resend
or a retry re-opens the status (``in_progress`` while the new attempts are out, so the page
follows them) but does not move the completion time. :func:`refresh` announces
``sendout_completed`` once per sendout, at that first completion; follow resends and retries
with ``message_status_changed``.
"""

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from d7sms import busy, conf, signals, sql
from d7sms.models import FAILURES, FINAL, LATEST, Message, MessageStatus, Sendout, SendoutStatus, db_alias

DONE = (SendoutStatus.COMPLETED, SendoutStatus.COMPLETED_WITH_FAILURES)
# Beyond the final statuses, where a message settles for each reach of its reports.
_NOT_HANDED_OVER = (MessageStatus.PENDING, MessageStatus.QUEUED, MessageStatus.SENDING)
_LAST_WORD = {0: {MessageStatus.ACCEPTED, MessageStatus.AT_SMSC}, 1: {MessageStatus.AT_SMSC}, 2: set()}


def reach(dlr_level):
    """How far the reports of a message asking for ``dlr_level`` go: 0 none, 1 the SMSC, 2 the phone."""
    if not dlr_level or not conf.get("CALLBACK_BASE_URL"):
        return 0
    return 1 if dlr_level == 1 else 2


def settled(status, dlr_level):
    """True when a message of ``dlr_level`` in ``status`` will hear nothing more from D7."""
    return status in FINAL or status in _LAST_WORD[reach(dlr_level)]


def lowest_level_waiting(status):
    """The lowest DLR level at which a message in the not-final ``status`` still waits for a
    report (0: at every level), or None when it has settled at every level."""
    for level in (0, 1, 2):
        if not settled(status, level):
            return level
    return None


def waiting(sendout, by_status):
    """How many of ``sendout``'s messages (counted ``{status: n}``) have not settled."""
    return sum(n for s, n in by_status.items() if not settled(s, sendout.dlr_level))


def is_done(sendout, by_status):
    """True when ``sendout`` has messages and all of them have settled (its page stops polling)."""
    return bool(sum(by_status.values())) and not waiting(sendout, by_status)


def counts(sendout_ids):
    """Return ``{sendout_id: {status: count}}`` of the given sendouts' recipients (their latest
    attempts), in one query."""
    found = {pk: {} for pk in sendout_ids}
    rows = (
        Message.objects.filter(LATEST, sendout_id__in=list(sendout_ids))
        .values_list("sendout_id", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for sendout_id, status, n in rows:
        found[sendout_id][status] = n
    return found


def derive_status(sendout, by_status):
    """The status ``sendout`` should show, given its stored status and its messages' counts."""
    if sendout.status == SendoutStatus.CANCELLED:
        return SendoutStatus.CANCELLED
    total = sum(by_status.values())
    unsettled = waiting(sendout, by_status)
    if total and not unsettled:
        if by_status.get(MessageStatus.CANCELLED, 0) == total:
            return SendoutStatus.CANCELLED
        failed = sum(n for s, n in by_status.items() if s in FAILURES)
        return SendoutStatus.COMPLETED_WITH_FAILURES if failed else SendoutStatus.COMPLETED
    pending = by_status.get(MessageStatus.PENDING, 0)
    if pending == total and sendout.submitted_at is None:
        return SendoutStatus.SCHEDULED
    if sendout.submitted_at is not None:
        return SendoutStatus.IN_PROGRESS  # e.g. re-opened by a resend or a retry
    early = pending + by_status.get(MessageStatus.QUEUED, 0) + by_status.get(MessageStatus.SENDING, 0)
    return SendoutStatus.SUBMITTING if early == unsettled and unsettled else SendoutStatus.IN_PROGRESS


def refresh(sendout_id):
    """Recompute and store a sendout's status; return it (None for a sendout that is gone).

    ``sendout_completed`` is sent once the change commits, only by the call that made it, and
    only for the sendout's first completion (``completed_at`` was empty).
    """
    if sql.sendout_running(sendout_id=sendout_id)[1]:
        return SendoutStatus.IN_PROGRESS
    sendout = Sendout.objects.filter(pk=sendout_id).first()
    if sendout is None:
        return None
    new = derive_status(sendout, counts([sendout_id])[sendout_id])
    if new == sendout.status:
        return new
    values = {"status": new}
    first_done = new in DONE and sendout.completed_at is None
    if first_done:
        values["completed_at"] = timezone.now()
    # Conditional on the old status so two concurrent refreshes announce completion once; and
    # on no earlier completion, so a sendout a retry re-opened keeps its completion time and
    # is not announced again.
    current = Sendout.objects.filter(pk=sendout_id, status=sendout.status)
    first = first_done and current.filter(completed_at__isnull=True).update(**values)
    if not first:
        current.update(status=new)
    if first:
        sendout.status = new
        sendout.completed_at = values["completed_at"]
        transaction.on_commit(
            lambda: signals.sendout_completed.send(sender=Sendout, sendout=sendout), using=db_alias()
        )
    return new


def refresh_for_message(message_id):
    """Refresh the sendout of message ``message_id`` (if any) after the message became final."""
    sendout_id, running = sql.sendout_running(message_id=message_id)
    if sendout_id is None:
        return None
    return SendoutStatus.IN_PROGRESS if running else refresh(sendout_id)


def refresh_after_commit(sendout_ids):
    """Refresh these sendouts once the current transaction commits (riding out a busy database)."""
    sendout_ids = {pk for pk in sendout_ids if pk}
    if sendout_ids:
        busy.after_commit(lambda: [refresh(pk) for pk in sendout_ids], what="a sendout refresh")


def refresh_after_send(sendout_ids):
    """Refresh these sendouts, whose messages just went from ``sending`` to a status where they
    settle, once the current transaction commits; skip those that still hold a message not
    handed to D7 yet (pending, queued or sending).

    Such a move takes one message off both the "not handed over" and the "not settled" counts,
    which leaves :func:`derive_status` where it was as long as any message is left not handed
    over: only the window that sends a sendout's last message can change its status, so a
    worker's window is spared counting a large sendout's messages.
    """
    sendout_ids = {pk for pk in sendout_ids if pk}
    if sendout_ids:
        busy.after_commit(
            lambda: [refresh(pk) for pk in sendout_ids if not _handing_over(pk)], what="a sendout refresh"
        )


def _handing_over(sendout_id):
    """True while a message of the sendout is pending, queued or sending (an index probe)."""
    return Message.objects.filter(sendout_id=sendout_id, status__in=_NOT_HANDED_OVER).exists()


def refresh_open():
    """Refresh every sendout shown in progress (housekeeping: heals a refresh that was lost to
    a database that stayed busy); return how many completed."""
    open_ids = Sendout.objects.filter(status=SendoutStatus.IN_PROGRESS).values_list("pk", flat=True)
    return sum(refresh(pk) in DONE for pk in list(open_ids))


def mark_submitted(sendout_ids, now):
    """Record that D7 took a first message of these sendouts; refresh those still shown as waiting."""
    Sendout.objects.filter(pk__in=sendout_ids, submitted_at__isnull=True).update(submitted_at=now)
    early = (SendoutStatus.SCHEDULED, SendoutStatus.SUBMITTING)
    for sendout_id in Sendout.objects.filter(pk__in=sendout_ids, status__in=early).values_list("pk", flat=True):
        refresh(sendout_id)


def add_d7_batch(sendout_id, d7_batch_id):
    """Note the id of a D7 batch (one ``/secure/sendbatch`` call) made for the sendout."""
    with busy.write_transaction():
        # Locked, so that two workers finishing chunks of one sendout do not lose an id.
        sendout = Sendout.objects.select_for_update().only("d7_batch_ids").get(pk=sendout_id)
        Sendout.objects.filter(pk=sendout_id).update(d7_batch_ids=[*sendout.d7_batch_ids, d7_batch_id])
