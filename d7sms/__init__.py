"""Send SMS from Django through the Direct7 (D7) REST API and follow each message to delivery.

Public API: :func:`send_sms`, :func:`send_batch`, :func:`get_balance`. Everything else is
internal and may change.
"""

__version__ = "0.1.0"
__all__ = ["send_sms", "send_batch", "get_balance"]


def send_sms(*args, **kwargs):
    """Store one message and enqueue it; see :func:`d7sms.api.send_sms`."""
    from d7sms.api import send_sms as _send_sms

    return _send_sms(*args, **kwargs)


def send_batch(*args, **kwargs):
    """Store a sendout to many recipients and enqueue it; see :func:`d7sms.api.send_batch`."""
    from d7sms.api import send_batch as _send_batch

    return _send_batch(*args, **kwargs)


def get_balance(*args, **kwargs):
    """Read the account balance from D7; see :func:`d7sms.api.get_balance`."""
    from d7sms.api import get_balance as _get_balance

    return _get_balance(*args, **kwargs)
