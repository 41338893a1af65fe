"""The account balance: read from D7, stored for the admin, and what a reading means for a pause."""

from datetime import timedelta

from django.utils import timezone

from d7sms import conf, pause
from d7sms.backends import get_backend
from d7sms.client import Balance
from d7sms.errors import CredentialsRejected, D7Error
from d7sms.models import AccountState


def stored(max_age=None):
    """The stored reading as a :class:`~d7sms.client.Balance` if it is younger than ``max_age``
    seconds (default BALANCE_CACHE_SECONDS), else None."""
    state = AccountState.get()
    age = conf.get("BALANCE_CACHE_SECONDS") if max_age is None else max_age
    if state.balance_read_at and timezone.now() - state.balance_read_at < timedelta(seconds=age):
        return Balance(state.balance, state.sms_count)
    return None


def read(*, force=False):
    """Read the balance if the stored one is stale, sending is paused, or ``force``; store it.

    Returns ``(balance, resumed)``: the :class:`~d7sms.client.Balance` (None when nothing was
    read) and whether the reading lifted a pause, after which the caller enqueues what waited.
    A successful read lifts a pause unless the account still has nothing to spend. A refused
    read is stored as ``balance_error``, pauses sending with these credentials when D7 rejected
    them, and is re-raised. It lifts this process's pause, or another's for refused credentials
    (see :mod:`d7sms.pause`).
    """
    state = AccountState.get()
    # A pause this reading can lift: ours, or another's for refused credentials (see pause).
    liftable = pause.applies(state) or (state.paused and not state.pause_no_credit)
    if not (force or liftable) and stored() is not None:
        return None, False
    try:
        reading = get_backend().balance()
    except D7Error as error:
        AccountState.objects.filter(pk=1).update(balance_error=str(error)[:1000])
        if isinstance(error, CredentialsRejected):
            pause.pause(str(error))
        raise
    AccountState.objects.filter(pk=1).update(
        balance=reading.balance, sms_count=reading.sms_count, balance_read_at=timezone.now(), balance_error=""
    )
    can_pay = reading.balance is None or reading.balance > 0
    resumed = liftable and can_pay and pause.resume()
    return reading, bool(resumed)
