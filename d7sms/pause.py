"""The installation-wide pause: set when D7 rejects our credentials or the account has no credit.

While paused, tasks leave their messages queued. A successful balance check (housekeeping,
:func:`d7sms.api.get_balance`, ``manage.py d7sms_balance``) clears the flag, and what waited is
enqueued again. The flag lives in :class:`~d7sms.models.AccountState`, so every host
and the admin see the same state.
"""

import logging
import time

from django.db import transaction
from django.utils import timezone

from d7sms import signals
from d7sms.models import AccountState, db_alias

logger = logging.getLogger("d7sms.sending")

# Workers check the flag before every window of messages; one read a second per process is
# plenty, and a stale "not paused" costs at most one more refused call.
_CHECK_EVERY = 1.0
_last = {"at": 0.0, "paused": False}


def is_paused(*, fresh=False):
    """True while sending is paused (read at most once a second per process unless ``fresh``)."""
    now = time.monotonic()
    if fresh or now - _last["at"] >= _CHECK_EVERY:
        _last["paused"] = AccountState.objects.filter(pk=1, paused=True).exists()
        _last["at"] = now
    return _last["paused"]


def pause(reason):
    """Pause all sending with ``reason``; return True if this call paused it.

    Logs at ERROR and sends :data:`~d7sms.signals.sending_paused` once per pause, however many
    workers hit the same refusal.
    """
    AccountState.get()
    now = timezone.now()
    alias = db_alias()
    with transaction.atomic(using=alias):
        changed = AccountState.objects.filter(pk=1, paused=False).update(
            paused=True, pause_reason=reason, paused_at=now
        )
        if changed:
            transaction.on_commit(lambda: signals.sending_paused.send(sender=AccountState, reason=reason), using=alias)
    _last.update(at=time.monotonic(), paused=True)
    if changed:
        logger.error("SMS sending paused: %s. It resumes after a successful balance check.", reason)
    return bool(changed)


def resume():
    """Clear the pause; return True if sending was paused and now is not."""
    alias = db_alias()
    with transaction.atomic(using=alias):
        changed = AccountState.objects.filter(pk=1, paused=True).update(paused=False, pause_reason="", paused_at=None)
        if changed:
            transaction.on_commit(lambda: signals.sending_resumed.send(sender=AccountState), using=alias)
    _last.update(at=time.monotonic(), paused=False)
    if changed:
        logger.warning("SMS sending resumed after a successful balance check.")
    return bool(changed)


def forget():
    """Drop this process's cached reading of the flag (tests, and after changing it by hand)."""
    _last.update(at=0.0, paused=False)
