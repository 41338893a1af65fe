"""The one module that puts work on django-q2: send tasks, and the schedules that fire sendouts.

The database, not the queue, is the source of truth. A task carries only message ids, so a task
that is lost (django-q2's Redis broker drops the task of a killed worker) or delivered twice (its
ORM broker redelivers after ``retry`` seconds) costs nothing: the sweeper in
:mod:`d7sms.housekeeping` enqueues what was lost, and a claim is atomic, so a second task for
the same messages finds nothing to do.

With ``D7SMS["SYNC"]`` (by default with the locmem and console backends) the work runs in the
calling process instead.
"""

import contextlib
import os
import time

from django.db import transaction
from django.utils import timezone

from d7sms import conf, sending
from d7sms.backends import is_local
from d7sms.models import Message, MessageStatus, SendMode

SEND_TASK = "d7sms.tasks.send_messages"
BATCH_TASK = "d7sms.tasks.send_batch_chunk"
FIRE_TASK = "d7sms.tasks.fire_due"
HOUSEKEEPING_TASK = "d7sms.tasks.housekeeping"
HOUSEKEEPING_SCHEDULE = "d7sms-housekeeping"

_brokers = {}


def is_sync():
    """True when sends run in the calling process rather than on the cluster."""
    value = conf.get("SYNC")
    return is_local() if value is None else bool(value)


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


def _enqueue(func, *args):
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


def _chunks(ids, size):
    ids = list(ids)
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _touch(ids):
    # Marks the messages as covered by a live task, so the sweeper leaves them alone.
    now = timezone.now()
    for part in _chunks(ids, 900):
        Message.objects.filter(pk__in=part, status=MessageStatus.QUEUED).update(enqueued_at=now)


def send_messages(ids, *, touch=False):
    """Send these queued messages through ``/secure/send``, in tasks of SEND_CHUNK_SIZE."""
    ids = list(ids)
    if touch:
        _touch(ids)
    if is_sync():
        _run_sync(lambda part, deadline: sending.send_messages(part, deadline=deadline), ids)
        return
    with _one_transaction():
        for chunk in _chunks(ids, conf.get("SEND_CHUNK_SIZE")):
            _enqueue(SEND_TASK, chunk)


def send_batch(batch_id, ids, *, touch=False):
    """Send these queued messages of one sendout through ``/secure/sendbatch``, BATCH_CHUNK_SIZE per task."""
    ids = list(ids)
    if touch:
        _touch(ids)
    if is_sync():
        _run_sync(lambda part, deadline: sending.send_batch_chunk(batch_id, part, deadline=deadline), ids)
        return
    with _one_transaction():
        for chunk in _chunks(ids, conf.get("BATCH_CHUNK_SIZE")):
            _enqueue(BATCH_TASK, batch_id, chunk)


def send_rows(rows, *, touch=False):
    """Enqueue messages given as ``(id, batch_id, batch mode)`` rows, each the way its sendout goes."""
    single, batches = [], {}
    for pk, batch_id, mode in rows:
        if batch_id and mode == SendMode.BATCH:
            batches.setdefault(batch_id, []).append(pk)
        else:
            single.append(pk)
    if single:
        send_messages(single, touch=touch)
    for batch_id, ids in batches.items():
        send_batch(batch_id, ids, touch=touch)


def _run_sync(send, ids):
    seconds = conf.get("TASK_SECONDS")
    while ids:
        ids = send(ids, time.monotonic() + seconds)


def schedule_name(batch_id=None, message_id=None):
    """The name of the django-q2 schedule that fires a sendout (or a lone message)."""
    return f"d7sms-batch-{batch_id}" if batch_id else f"d7sms-message-{message_id}"


def add_schedule(name, when):
    """Create (or move) the one-off django-q2 schedule ``name`` that fires due messages at ``when``."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=name,
        defaults={
            "func": FIRE_TASK,
            "schedule_type": Schedule.ONCE,
            "repeats": -1,
            "next_run": when,
            "cluster": conf.get("Q_CLUSTER_NAME"),
        },
    )


def drop_schedule(name):
    """Delete the django-q2 schedule ``name``; return True if there was one."""
    from django_q.models import Schedule

    return Schedule.objects.filter(name=name).delete()[0] > 0


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
