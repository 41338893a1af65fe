"""The housekeeping pass, run every HOUSEKEEPING_INTERVAL by the django-q2 schedule that
``manage.py d7sms_setup`` creates:

- messages stuck in ``sending`` past SENDING_TIMEOUT (their worker died mid-call) become
  ``unknown``: they may have gone out, so only a person may send them again;
- local schedules that are due fire (also those missed while the cluster was down);
- the balance is read; a successful read lifts a pause;
- queued messages that are due but have no live task are enqueued again;
- delivery reports that arrived before their message's D7 id was known are applied;
- batch callbacks stored while the database was too busy to apply them are applied;
- sendouts shown in progress are refreshed (a refresh lost to a busy database is made good);
- recipient lists uploaded while composing and never sent are deleted after a day.
"""

import logging
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from d7sms import balance, conf, progress, sql, status, tasks
from d7sms.errors import D7Error
from d7sms.models import ComposeUpload, Message, MessageStatus
from d7sms.webhooks import callbacks, dlr

logger = logging.getLogger("d7sms.housekeeping")


def expire_stuck(now=None):
    """Mark messages claimed longer than SENDING_TIMEOUT ago as ``unknown``; return how many."""
    now = now or timezone.now()
    limit = now - timedelta(seconds=conf.get("SENDING_TIMEOUT"))
    text = f"no outcome recorded within {conf.get('SENDING_TIMEOUT')} s of the call (the worker stopped?)"
    total = 0
    while True:
        stuck = Message.objects.filter(status=MessageStatus.SENDING, claimed_at__lt=limit)
        ids = list(stuck.values_list("pk", flat=True)[: sql.SLICE])
        if not ids:
            return total
        moved = status.change_many(ids, MessageStatus.UNKNOWN, error_code="outcome_unknown", last_error=text)
        total += len(moved)
        if not moved:
            return total


def purge_uploads(now=None):
    """Delete compose uploads older than ComposeUpload.MAX_AGE; return how many."""
    limit = (now or timezone.now()) - timedelta(seconds=ComposeUpload.MAX_AGE)
    return ComposeUpload.objects.filter(created_at__lt=limit).delete()[0]


def run():
    """One housekeeping pass; return what it did, by step."""
    done = {"stuck": expire_stuck(), "fired": tasks.fire_task()}
    try:
        reading, resumed = balance.read()
        done["balance"] = None if reading is None else str(reading.balance)
        if resumed:
            tasks.sweep(everything=True)
    except (D7Error, ImproperlyConfigured) as error:
        logger.warning("Balance check failed: %s", error)
        done["balance"] = None
    done["swept"] = tasks.sweep()
    done["orphans_applied"] = dlr.apply_bound_orphans()
    done["callbacks_applied"] = callbacks.apply_unapplied()
    done["sendouts_completed"] = progress.refresh_open()
    done["uploads_purged"] = purge_uploads()
    return done
