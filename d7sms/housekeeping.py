"""What keeps the pipeline honest, run every HOUSEKEEPING_INTERVAL by a django-q2 schedule
(created by ``manage.py d7sms_setup``):

- messages stuck in ``sending`` past SENDING_TIMEOUT (their worker died mid-call) become
  ``unknown``: they may have gone out, so only a person may send them again;
- local schedules that are due fire (also those missed while the cluster was down);
- the balance is read; a successful read lifts a pause;
- the sweeper enqueues queued messages that are due but have no live task.
"""

import logging
from datetime import timedelta

from django.db.models import F, Q
from django.utils import timezone

from d7sms import conf, pause, queue, scheduling, status
from d7sms.errors import CredentialsRejected, D7Error
from d7sms.models import AccountState, Message, MessageStatus
from d7sms.sending import due_q, get_backend

S = MessageStatus
logger = logging.getLogger("d7sms.housekeeping")
_SLICE = 900


def expire_stuck(now=None):
    """Mark messages claimed longer than SENDING_TIMEOUT ago as ``unknown``; return how many."""
    now = now or timezone.now()
    limit = now - timedelta(seconds=conf.get("SENDING_TIMEOUT"))
    text = f"no outcome recorded within {conf.get('SENDING_TIMEOUT')} s of the call (the worker stopped?)"
    total = 0
    while True:
        ids = list(Message.objects.filter(status=S.SENDING, claimed_at__lt=limit).values_list("pk", flat=True)[:_SLICE])
        if not ids:
            return total
        moved = status.change_many(ids, S.UNKNOWN, error_code="outcome_unknown", last_error=text)
        total += len(moved)
        if not moved:
            return total


def orphaned(now=None, *, everything=False):
    """Queued messages that are due and that no live task covers.

    A message is covered when a task was enqueued for it after it became due, less than
    REQUEUE_AFTER ago. ``everything`` ignores that (after a pause no task covers anything).
    """
    now = now or timezone.now()
    qs = Message.objects.filter(due_q(now))
    if not everything:
        stale = now - timedelta(seconds=conf.get("REQUEUE_AFTER"))
        qs = qs.filter(
            Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=F("next_attempt_at")) | Q(enqueued_at__lt=stale)
        )
    return qs


def sweep(now=None, *, everything=False):
    """Enqueue the :func:`orphaned` messages again; return how many. Nothing while paused."""
    if pause.is_paused(fresh=True):
        return 0
    now = now or timezone.now()
    rows = list(orphaned(now, everything=everything).order_by("pk").values_list("pk", "batch_id", "batch__mode"))
    if rows:
        logger.info("Enqueueing %d queued message(s) that had no live task.", len(rows))
        queue.send_rows(rows, touch=True)
    return len(rows)


def refresh_balance(*, force=False):
    """Read the balance if it is stale, paused or ``force``d; store it; return the Balance or None.

    A successful read lifts a pause unless the account still has nothing to spend, and then
    enqueues what waited. A refused read is stored as ``balance_error`` and re-raised.
    """
    state = AccountState.get()
    age = conf.get("BALANCE_CACHE_SECONDS")
    fresh = state.balance_read_at and timezone.now() - state.balance_read_at < timedelta(seconds=age)
    if fresh and not state.paused and not force:
        return None
    try:
        balance = get_backend().balance()
    except D7Error as error:
        AccountState.objects.filter(pk=1).update(balance_error=str(error)[:1000])
        if isinstance(error, CredentialsRejected):
            pause.pause(str(error))
        raise
    AccountState.objects.filter(pk=1).update(
        balance=balance.balance, sms_count=balance.sms_count, balance_read_at=timezone.now(), balance_error=""
    )
    can_pay = balance.balance is None or balance.balance > 0
    if state.paused and can_pay and pause.resume():
        sweep(everything=True)
    return balance


def run():
    """One housekeeping pass; return what it did, by step."""
    done = {"stuck": expire_stuck(), "fired": scheduling.fire_due()}
    try:
        balance = refresh_balance()
        done["balance"] = None if balance is None else str(balance.balance)
    except D7Error as error:
        logger.warning("Balance check failed: %s", error)
        done["balance"] = None
    done["swept"] = sweep()
    return done
