"""The pause: set when D7 rejects our credentials or the account has no credit.

A pause belongs to the account D7 refused, identified by a fingerprint of the endpoint and the
credentials (:func:`account`): a keyed HMAC, so the stored value says nothing about the password.
Processes sending with other credentials carry on, so ``manage.py d7sms_balance`` run once with a
wrong password does not stop workers that hold the right one. While paused, tasks using the
refused credentials leave their messages queued. A successful balance check with those
credentials (housekeeping, :func:`d7sms.api.get_balance`, ``manage.py d7sms_balance``) lifts
it, and what waited is enqueued again. A successful check with other credentials also lifts a
pause for refused credentials (the usual story: the password was wrong and has been fixed, so
the refused one is no longer in use; a process still using it pauses again at its next refused
call, which sends nothing), but never another account's pause for want of credit: a sendbatch
without credit fails every message it carries.

The state lives in the one :class:`~d7sms.models.AccountState` row, so every host and the admin
see it. Should two sets of credentials be refused, the later refusal holds the pause; the other
set pauses again at its next refused call. A pause stored without a fingerprint (before this
field existed) applies to every account, and any successful check lifts it.
"""

import functools
import logging
import time

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from d7sms import conf, signals
from d7sms.models import AccountState, db_alias

logger = logging.getLogger("d7sms.sending")

# Workers check the flag before every window of messages; one read a second per process is
# plenty, and a stale "not paused" costs at most one more refused call.
_CHECK_EVERY = 1.0
_last = {"at": 0.0, "paused": False, "account": None}


def account():
    """The fingerprint of the D7 account this process sends with (BASE_URL, USERNAME, PASSWORD)."""
    return _fingerprint(conf.get("BASE_URL"), conf.get("USERNAME"), conf.get("PASSWORD"), settings.SECRET_KEY)


@functools.lru_cache(maxsize=8)
def _fingerprint(base_url, username, password, secret_key):
    # Keyed with SECRET_KEY: a leaked table cannot be used to test password guesses.
    value = f"{base_url}\n{username}\n{password}"
    return salted_hmac("d7sms.pause", value, secret=secret_key, algorithm="sha256").hexdigest()


def _mine(fingerprint):
    return Q(paused_account=fingerprint) | Q(paused_account="")


def applies(state, fingerprint=None):
    """True when the stored ``state`` pauses the account ``fingerprint`` (default: this process's)."""
    return state.paused and state.paused_account in ("", fingerprint or account())


def is_paused(*, fresh=False):
    """True while sending with this process's credentials is paused (read at most once a second
    per process unless ``fresh``)."""
    now = time.monotonic()
    mine = account()
    if fresh or now - _last["at"] >= _CHECK_EVERY or _last["account"] != mine:
        _last["paused"] = AccountState.objects.filter(_mine(mine), pk=1, paused=True).exists()
        _last.update(at=now, account=mine)
    return _last["paused"]


def pause(reason, *, no_credit=False, fingerprint=None):
    """Pause sending with the account ``fingerprint`` (default: this process's) for ``reason``
    (``no_credit``: the account cannot pay, else D7 refused the credentials); return True if
    this call paused it.

    Logs at ERROR and sends :data:`~d7sms.signals.sending_paused` once per pause, however many
    workers hit the same refusal.
    """
    mine = fingerprint or account()
    AccountState.get()
    now = timezone.now()
    alias = db_alias()
    with transaction.atomic(using=alias):
        # Another account's pause is replaced, unless that account has no credit and this is
        # only a refusal of credentials: lifting it would let a sendbatch fail every message.
        replaceable = ~Q(paused_account=mine) if no_credit else ~Q(paused_account=mine) & Q(pause_no_credit=False)
        changed = (
            AccountState.objects.filter(pk=1)
            .filter(Q(paused=False) | replaceable)
            .update(paused=True, pause_reason=reason, paused_at=now, paused_account=mine, pause_no_credit=no_credit)
        )
        if changed:
            transaction.on_commit(lambda: signals.sending_paused.send(sender=AccountState, reason=reason), using=alias)
    if mine == account():
        _last.update(at=time.monotonic(), paused=True, account=mine)
    if changed:
        logger.error("SMS sending paused: %s. It resumes after a successful balance check.", reason)
    return bool(changed)


def resume(*, fingerprint=None):
    """After a successful balance check with the account ``fingerprint`` (default: this
    process's), lift its pause, or another's pause for refused credentials; return True if
    sending was paused and now is not. Another account's pause for want of credit stays."""
    mine = fingerprint or account()
    alias = db_alias()
    with transaction.atomic(using=alias):
        changed = AccountState.objects.filter(_mine(mine) | Q(pause_no_credit=False), pk=1, paused=True).update(
            paused=False, pause_reason="", paused_at=None, paused_account="", pause_no_credit=False
        )
        if changed:
            transaction.on_commit(lambda: signals.sending_resumed.send(sender=AccountState), using=alias)
    if mine == account():
        _last.update(at=time.monotonic(), paused=False, account=mine)
    if changed:
        logger.warning("SMS sending resumed after a successful balance check.")
    return bool(changed)


def forget():
    """Drop this process's cached reading of the flag (tests, and after changing it by hand)."""
    _last.update(at=0.0, paused=False, account=None)
