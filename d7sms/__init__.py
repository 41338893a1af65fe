"""Send SMS from Django through the Direct7 (D7) REST API and follow each message to delivery.

Public API: :func:`send_sms`, :func:`send_batch`, :func:`get_balance`, and the suppression list's
:func:`suppress`, :func:`unsuppress` and :func:`opt_out_reply` (the same functions as in
:mod:`d7sms.api`, which also has ``resend``, ``retry_failed``, ``cancel_sendout`` and
``cancel_message``), and ``d7sms.outbox``, the messages the ``locmem`` test backend sent.
Everything else is internal and may change.
"""

from typing import TYPE_CHECKING

from d7sms.version import __version__
__all__ = ["get_balance", "opt_out_reply", "outbox", "send_batch", "send_sms", "suppress", "unsuppress"]
_API = ("send_sms", "send_batch", "get_balance", "suppress", "unsuppress", "opt_out_reply")

if TYPE_CHECKING:
    from d7sms.api import get_balance, send_batch, send_sms
    from d7sms.suppression import opt_out_reply, suppress, unsuppress
    from d7sms.backends.locmem import SentMessage

    outbox: list[SentMessage]


def __getattr__(name):
    # Imported on first use: this package is imported while Django loads its apps, before
    # models may be.
    if name in _API:
        from d7sms import api

        return getattr(api, name)
    if name == "outbox":
        from d7sms.backends import locmem

        return locmem.outbox()
    raise AttributeError(f"module 'd7sms' has no attribute {name!r}")
