"""django-q2 entry points. Each is thin: the work is in :mod:`d7sms.sending`,
:mod:`d7sms.scheduling`, :mod:`d7sms.housekeeping` and :mod:`d7sms.webhooks.apply`.

A task stops taking new messages after TASK_SECONDS and hands the rest to a new task, so it
never runs into ``Q_CLUSTER["timeout"]``, which would kill it mid-call.
"""

import time

from d7sms import conf, queue, scheduling, sending
from d7sms import housekeeping as _housekeeping


def _deadline():
    return time.monotonic() + conf.get("TASK_SECONDS")


def send_messages(ids):
    """Send queued messages through ``/secure/send``; return how many were left to a new task."""
    left = sending.send_messages(ids, deadline=_deadline())
    if left:
        queue.send_messages(left, touch=True)
    return len(left)


def send_batch_chunk(batch_id, ids):
    """Send queued messages of one sendout through ``/secure/sendbatch``."""
    left = sending.send_batch_chunk(batch_id, ids, deadline=_deadline())
    if left:
        queue.send_batch(batch_id, left, touch=True)
    return len(left)


def fire_due():
    """Fire local schedules that are due; return how many messages were queued."""
    return scheduling.fire_due()


def housekeeping():
    """One housekeeping pass (see :mod:`d7sms.housekeeping`), then apply orphan reports whose
    message has learnt its D7 id since they arrived."""
    from d7sms.webhooks import apply

    done = _housekeeping.run()
    done["orphans_applied"] = apply.apply_bound_orphans()
    return done
