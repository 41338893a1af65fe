"""Messages that really fail at the sandbox, for the doors that send failures again.

The sandbox decides a message's fate by the destination's last digit (d7sms/sandbox/outcomes.py).
Numbers ending in 9, 8 and 6 are accepted, and then their delivery report makes them
``undelivered``, ``rejected`` (by the SMSC) and ``expired``: failures that ``resend`` and
``retry_failed`` act on, and that the sandbox lists in ``/_sandbox/messages``, so every send
of them, first or again, can be counted there. A number ending in 7 ("no route") fails at
once, but is never listed: a duplicate of it could not be counted, so the harness does not use it.

The reports reach the app only when ``D7SMS["CALLBACK_BASE_URL"]`` points at a live server
(:class:`chaos.webapp.AppServer`, or pytest-django's ``live_server``).
"""

import time

FAILING = "986"
DELIVERED = "012345"  # accepted, then a report says delivered


def numbers_ending(digits, count, start=0):
    """``count`` distinct valid UK mobile numbers whose last digit is one of ``digits``, in turn."""
    out, n = [], start
    while len(out) < count:
        if str(n % 10) in digits:
            out.append(f"+447911{n:06d}")
        n += 1
    return out


def wait_final(ids, timeout=60):
    """Wait until every message in ``ids`` reached a final status; return ``{status: count}``.

    Raises TimeoutError naming how many are not final yet."""
    from d7sms.models import FINAL, Message

    ids = list(ids)
    deadline = time.monotonic() + timeout
    while True:
        statuses = list(Message.objects.filter(pk__in=ids).values_list("status", flat=True))
        if all(s in FINAL for s in statuses):
            return {s: statuses.count(s) for s in set(statuses)}
        if time.monotonic() > deadline:
            left = sum(1 for s in statuses if s not in FINAL)
            raise TimeoutError(f"{left} of {len(ids)} messages not final after {timeout} s")
        time.sleep(0.1)
