"""The django-q2 boundary: the only module that imports django-q2.

It puts sends on the queue (:func:`enqueue_single`, :func:`enqueue_batch_chunks`), runs them on
the workers (:func:`single_task`, :func:`batch_chunk_task`, which call :mod:`d7sms.sending`),
and keeps the schedules that fire held sendouts and the housekeeping pass.

The database, not the queue, is the source of truth. A task carries only message ids, so a task
that is lost (django-q2's Redis broker drops the task of a killed worker) or delivered twice (its
ORM broker redelivers after ``retry`` seconds) costs nothing: :func:`sweep` enqueues what was
lost, and a claim is atomic, so a second task for the same messages finds nothing to do. A task
stops taking new messages after TASK_SECONDS and hands the rest to a new task, so it never runs
into ``Q_CLUSTER["timeout"]``, which would kill it mid-call.

With ``D7SMS["SYNC"]`` (by default with the locmem and console backends) the work runs in the
calling process instead.
"""

import contextlib
import logging
import os
import time
from datetime import timedelta

from django.db import connections, router, transaction
from django.db.models import F, Q
from django.utils import timezone

from d7sms import balance, busy, conf, pause, scheduling, sending, sql, status
from d7sms.backends import backend_class, is_local
from d7sms.models import Message, MessageStatus, SendMode, db_alias

SINGLE_TASK = "d7sms.tasks.single_task"
BATCH_CHUNK_TASK = "d7sms.tasks.batch_chunk_task"
FIRE_TASK = "d7sms.tasks.fire_task"
BALANCE_TASK = "d7sms.tasks.balance_task"
HOUSEKEEPING_TASK = "d7sms.housekeeping.run"
HOUSEKEEPING_SCHEDULE = "d7sms-housekeeping"

logger = logging.getLogger("d7sms.tasks")
_brokers = {}
# Seconds an enqueue keeps trying while the database is busy (d7sms.busy).
_PATIENCE = 20.0


def is_sync():
    """True when sends run in the calling process rather than on the cluster."""
    value = conf.get("SYNC")
    return is_local() if value is None else bool(value)


def after_commit(func):
    """Run ``func`` (an enqueue) once the caller's transaction on the d7sms database commits.

    With a test backend that records at the call (locmem) in SYNC mode it runs at once, as
    Django's locmem mail backend records at once: a test then sees ``d7sms.outbox`` inside a
    ``TestCase``, whose transaction never commits.
    """
    if is_sync() and backend_class().records_at_call:
        func()
    else:
        transaction.on_commit(func, using=db_alias())


def _broker():
    # async_task() opens a broker (a Redis connection) per call unless handed one; one per
    # process, because a connection must not cross a fork.
    from django_q.brokers import get_broker

    key = (os.getpid(), conf.get("Q_CLUSTER_NAME"))
    broker = _brokers.get(key)
    if broker is None:
        _brokers.clear()
        broker = _brokers[key] = get_broker(key[1])
    return broker


def _put(func, *args):
    from django_q.tasks import async_task

    options = {"broker": _broker(), "save": False}
    if conf.get("Q_CLUSTER_NAME"):
        options["cluster"] = conf.get("Q_CLUSTER_NAME")
    return async_task(func, *args, q_options=options)


def _one_transaction():
    # The ORM broker writes a row per task and, outside a transaction, first closes and reopens
    # stale connections; in one transaction many tasks cost about one write.
    from django_q.conf import Conf

    return transaction.atomic(using=Conf.ORM) if Conf.ORM else contextlib.nullcontext()


def _touch(ids):
    # Marks the messages as covered by a live task, so the sweeper leaves them alone.
    now = timezone.now()

    def touch():
        for part in sql.slices(ids):
            Message.objects.filter(pk__in=part, status=MessageStatus.QUEUED).update(enqueued_at=now)

    busy.retry(touch, seconds=_PATIENCE, what="marking messages enqueued")


def _put_all(calls):
    """Put the tasks ``[(func, *args)]`` on the queue together, waiting out a busy database
    (the ORM broker's queue is a table): a task lost here waits REQUEUE_AFTER for the sweeper."""
    from django_q.conf import Conf

    def put():
        with _one_transaction():
            for func, *args in calls:
                _put(func, *args)

    busy.retry(put, seconds=_PATIENCE, what="enqueueing sends", using=(Conf.ORM,) if Conf.ORM else ())


def _run_inline(send, ids):
    seconds = conf.get("TASK_SECONDS")
    while ids:
        ids = send(ids, time.monotonic() + seconds)


# -- enqueueing ---------------------------------------------------------------------------------


def enqueue_single(ids, *, touch=False):
    """Send these queued messages through ``/secure/send``, in tasks of SEND_CHUNK_SIZE."""
    ids = list(ids)
    if touch:
        _touch(ids)
    if is_sync():
        _run_inline(lambda part, deadline: sending.send_single(part, deadline=deadline), ids)
        return
    _put_all([(SINGLE_TASK, chunk) for chunk in sql.slices(ids, conf.get("SEND_CHUNK_SIZE"))])


def enqueue_batch_chunks(sendout_id, ids, *, touch=False):
    """Send these queued messages of one sendout through ``/secure/sendbatch``, BATCH_CHUNK_SIZE per task."""
    ids = list(ids)
    if touch:
        _touch(ids)
    if is_sync():
        _run_inline(lambda part, deadline: sending.send_batch_chunks(sendout_id, part, deadline=deadline), ids)
        return
    _put_all([(BATCH_CHUNK_TASK, sendout_id, chunk) for chunk in sql.slices(ids, conf.get("BATCH_CHUNK_SIZE"))])


def enqueue(rows, *, touch=False):
    """Enqueue messages given as ``(id, sendout id, sendout mode)`` rows, each the way its sendout goes."""
    single, by_sendout = [], {}
    for pk, sendout_id, mode in rows:
        if sendout_id and mode == SendMode.BATCH:
            by_sendout.setdefault(sendout_id, []).append(pk)
        else:
            single.append(pk)
    if single:
        enqueue_single(single, touch=touch)
    for sendout_id, ids in by_sendout.items():
        enqueue_batch_chunks(sendout_id, ids, touch=touch)


def orphaned(now=None, *, everything=False):
    """Queued messages that are due and that no live task covers.

    A message is covered when a task was enqueued for it after it became due, less than
    REQUEUE_AFTER ago. ``everything`` ignores that (after a pause no task covers anything).
    """
    now = now or timezone.now()
    qs = Message.objects.filter(status.due_q(now))
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
    rows = list(orphaned(now, everything=everything).order_by("pk").values_list("pk", "sendout_id", "sendout__mode"))
    if rows:
        logger.info("Enqueueing %d queued message(s) that had no live task.", len(rows))
        enqueue(rows, touch=True)
    return len(rows)


# -- what the workers run ---------------------------------------------------------------------


def _deadline():
    return time.monotonic() + conf.get("TASK_SECONDS")


def single_task(ids):
    """Worker: send queued messages through ``/secure/send``; return how many were left to a new task."""
    left = sending.send_single(ids, deadline=_deadline())
    if left:
        enqueue_single(left, touch=True)
    return len(left)


def batch_chunk_task(sendout_id, ids):
    """Worker: send queued messages of one sendout through ``/secure/sendbatch``."""
    left = sending.send_batch_chunks(sendout_id, ids, deadline=_deadline())
    if left:
        enqueue_batch_chunks(sendout_id, left, touch=True)
    return len(left)


def fire_task(now=None):
    """Worker (and housekeeping): fire local schedules that are due; return how many messages were queued."""
    rows = scheduling.fire_due(now)
    for sendout_id in {sendout_id for _pk, sendout_id, _mode in rows if sendout_id}:
        later = scheduling.next_release(sendout_id)  # quiet hours: messages released later
        if later is None:
            drop_schedule(sendout_id=sendout_id)
        else:
            hold(when=later, sendout_id=sendout_id)
    for pk, sendout_id, _mode in rows:
        if not sendout_id:
            drop_schedule(message_id=pk)
    enqueue(rows)
    return len(rows)


def balance_task():
    """Worker: read the balance from D7 and store it; resume sending if that lifts a pause.

    Returns the balance read, or None when D7 refused (stored as ``balance_error``).
    """
    from d7sms.errors import D7Error

    try:
        reading, resumed = balance.read(force=True)
    except D7Error as error:
        logger.warning("Reading the balance after a sendout failed: %s", error)
        return None
    if resumed:
        sweep(everything=True)
    return reading.balance if reading else None


def read_balance_soon(**_signal_kwargs):
    """Put a balance read on the queue, so the stored balance shows what a sendout spent.

    Connected to ``sendout_completed`` (:mod:`d7sms.apps`), which runs in whatever request or
    worker completed the sendout: the read, an HTTP call to D7, never runs there, except in
    SYNC mode, where all work runs inline.
    """
    if is_sync():
        balance_task()
        return
    _put_all([(BALANCE_TASK,)])


# -- schedules ----------------------------------------------------------------------------------


def schedule_name(sendout_id=None, message_id=None):
    """The name of the django-q2 schedule that fires a sendout (or a lone message)."""
    return f"d7sms-sendout-{sendout_id}" if sendout_id else f"d7sms-message-{message_id}"


def hold(*, when, sendout_id=None, message_id=None):
    """Create (or move) the one-off schedule that fires a held sendout (or lone message) at ``when``."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=schedule_name(sendout_id, message_id),
        defaults={
            "func": FIRE_TASK,
            "schedule_type": Schedule.ONCE,
            "repeats": -1,
            "next_run": when,
            "cluster": conf.get("Q_CLUSTER_NAME"),
        },
    )


def drop_schedule(*, sendout_id=None, message_id=None):
    """Delete the schedule of a held sendout (or lone message); return True if there was one."""
    from django_q.models import Schedule

    return Schedule.objects.filter(name=schedule_name(sendout_id, message_id)).delete()[0] > 0


def housekeeping_scheduled():
    """True when the housekeeping schedule exists; None when django-q2's tables are not migrated."""
    from django_q.models import Schedule

    alias = router.db_for_read(Schedule)
    if Schedule._meta.db_table not in connections[alias].introspection.table_names():
        return None
    return Schedule.objects.using(alias).filter(name=HOUSEKEEPING_SCHEDULE).exists()


def ensure_housekeeping():
    """Create or update the repeating housekeeping schedule; return ``(schedule, created)``."""
    from django_q.models import Schedule

    minutes = max(1, round(conf.get("HOUSEKEEPING_INTERVAL") / 60))
    return Schedule.objects.update_or_create(
        name=HOUSEKEEPING_SCHEDULE,
        defaults={
            "func": HOUSEKEEPING_TASK,
            "schedule_type": Schedule.MINUTES,
            "minutes": minutes,
            "repeats": -1,
            "cluster": conf.get("Q_CLUSTER_NAME"),
        },
    )
