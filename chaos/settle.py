"""Bring a scenario to rest the way an installation recovers from a crash.

The harness process runs with ``SENDING_TIMEOUT`` and ``REQUEUE_AFTER`` of 0 (:data:`AT_ONCE`;
its clusters keep the defaults, which the system checks insist on), so the two housekeeping
steps act at once: :func:`d7sms.housekeeping.expire_stuck` turns every message
left ``sending`` into ``unknown`` (call it only while no cluster runs: a live worker's messages
would be caught too), and :func:`d7sms.tasks.sweep` enqueues again every due message that is
still ``queued``. A stage's database holds nothing but its scenario, so "every message" is meant.
"""

import time

WAITING = ("pending", "queued", "sending")
AT_ONCE = {"SENDING_TIMEOUT": 0, "REQUEUE_AFTER": 0}


def waiting():
    """How many messages are still waiting or on their way."""
    from d7sms.models import Message

    return Message.objects.filter(status__in=WAITING).count()


def after_kill():
    """What a housekeeping pass does after a crash: returns ``(ids made unknown, swept)``."""
    from d7sms import housekeeping, tasks
    from d7sms.models import Message

    before = set(Message.objects.filter(status="sending").values_list("pk", flat=True))
    housekeeping.expire_stuck()
    unknown = set(Message.objects.filter(pk__in=list(before), status="unknown").values_list("pk", flat=True))
    return sorted(unknown), tasks.sweep()


def run_out(*, timeout=600, quiet_for=3.0):
    """With a cluster running, wait until no message waits; sweep whenever the count stood
    still for ``quiet_for`` seconds (a task was lost). Raises TimeoutError."""
    from d7sms import tasks

    deadline = time.monotonic() + timeout
    last, since = waiting(), time.monotonic()
    while last:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{last} messages still waiting after {timeout} s")
        time.sleep(0.5)
        now_waiting = waiting()
        if now_waiting < last:
            last, since = now_waiting, time.monotonic()
        elif time.monotonic() - since > quiet_for:
            tasks.sweep()
            since = time.monotonic()
