"""Why a message failed, in words a person who has never read an SMPP document understands."""

from django.utils.translation import gettext_lazy as _

from d7sms.models import MessageStatus


#: error_code of an ``unknown`` message that staff marked failed.
UNKNOWN_RESOLVED = "unknown"

# error_code values (receipt states, "errback") as the webhooks store them.
_BY_CODE = {
    "UNDELIV": _("The operator could not deliver it to the phone (switched off, out of coverage, or not in service)."),
    "EXPIRED": _("The phone could not be reached before the message expired."),
    "REJECTD": _("The operator rejected the message."),
    "DELETED": _("The message was deleted at the operator before delivery."),
    "UNKNOWN": _("The operator gave up without saying why."),
    "errback": _("D7 could not hand the message to any operator."),
    "NoRoute": _("D7 has no route to this number: no operator it works with takes it."),
    UNKNOWN_RESOLVED: _("The call to D7 was interrupted and staff decided the message did not arrive."),
}
_BY_STATUS = {
    MessageStatus.UNDELIVERED: _BY_CODE["UNDELIV"],
    MessageStatus.EXPIRED: _BY_CODE["EXPIRED"],
    MessageStatus.REJECTED: _BY_CODE["REJECTD"],
    MessageStatus.FAILED: _("The message could not be sent."),
    MessageStatus.CANCELLED: _("The sending was cancelled before it was handed to D7."),
    MessageStatus.UNKNOWN: _(
        "The call to D7 was interrupted: the message may or may not have been sent. Check with the "
        "recipient or D7, then resend it or mark it failed."
    ),
}


def explain(status, error_code="", last_error=""):
    """A sentence saying why a message in ``status`` did not arrive ('' when it is not a failure)."""
    if error_code.startswith("ESME_"):
        text = _("The operator's message centre refused it (%(code)s).") % {"code": error_code}
    else:
        text = _BY_CODE.get(error_code) or _BY_STATUS.get(status, "")
    if last_error and text and last_error not in str(text):
        return f"{text} {_('Details')}: {last_error}"
    return str(text or last_error)


# A few words per reason, for failures grouped by reason ("No route: 800").
_SHORT = {
    "NoRoute": _("No route"),
    "UNDELIV": _("Not delivered to the phone"),
    "EXPIRED": _("Expired"),
    "REJECTD": _("Rejected by the operator"),
    "DELETED": _("Deleted at the operator"),
    "UNKNOWN": _("Operator gave no reason"),
    "errback": _("D7 could not send it"),
    "InvalidRequest": _("Refused by D7 as invalid"),
    UNKNOWN_RESOLVED: _("Outcome unknown, marked failed"),
}
_SHORT_BY_STATUS = {
    MessageStatus.UNDELIVERED: _SHORT["UNDELIV"],
    MessageStatus.EXPIRED: _SHORT["EXPIRED"],
    MessageStatus.REJECTED: _("Rejected"),
    MessageStatus.FAILED: _("Could not be sent"),
}
#: The error codes staff can filter the message list by (any other code found is offered too).
KNOWN_CODES = tuple(_SHORT)


def short(status, error_code=""):
    """A few words naming why a message in ``status`` failed, for a group of failures."""
    if error_code.startswith("ESME_"):
        return _("Refused by the operator's message centre (%(code)s)") % {"code": error_code}
    text = _SHORT.get(error_code) or _SHORT_BY_STATUS.get(status)
    if text is None:
        return error_code or str(status)
    return f"{text} ({error_code})" if error_code and error_code not in _SHORT else str(text)
