"""What happens to a message, decided by the last digit of its destination, and its DLR params.

Deterministic so that tests and demos can ask for each fate by picking a number.
"""

import time
from dataclasses import dataclass

OUTCOMES_HELP = """\
Outcomes by the destination's last digit:
  ...9   accepted; DLR level 1 ESME_ROK, then level 2 UNDELIV (err 001)
  ...8   accepted; DLR level 1 ESME_RSUBMITFAIL (rejected by the SMSC), no level-2 report
  ...7   no route: /secure/send answers 412 "No route found"; in a batch it goes to
         the errback; never charged
  ...6   accepted; DLR level 1 ESME_ROK, then level 2 EXPIRED
  other  accepted; DLR level 1 ESME_ROK, then level 2 DELIVRD (err 000)"""


@dataclass(frozen=True)
class Outcome:
    """One fate: ``submit_status`` is the level-1 status, ``receipt`` the level-2 state or None."""

    name: str
    routed: bool
    submit_status: str
    receipt: str | None
    err: str


DELIVERED = Outcome("DELIVRD", True, "ESME_ROK", "DELIVRD", "000")
OUTCOMES = {
    "9": Outcome("UNDELIV", True, "ESME_ROK", "UNDELIV", "001"),
    "8": Outcome("ESME_RSUBMITFAIL", True, "ESME_RSUBMITFAIL", None, "000"),
    "7": Outcome("NO_ROUTE", False, "", None, ""),
    "6": Outcome("EXPIRED", True, "ESME_ROK", "EXPIRED", "000"),
}


def outcome_for(to):
    """The Outcome for destination ``to`` (a string of digits, maybe with a leading ``+``)."""
    return OUTCOMES.get(to[-1:], DELIVERED)


def _receipt_time(timestamp):
    # Receipts carry the SMSC's local time as YYMMDDhhmm.
    return time.strftime("%y%m%d%H%M", time.localtime(timestamp))


def level1_params(message):
    """Params of the SMSC-level (level 1) report for ``message``."""
    return {
        "id": message.id,
        "level": "1",
        "message_status": message.outcome.submit_status,
        "connector": "sandbox",
    }


def level2_params(message, done_at):
    """Params of the terminal-level (level 2) report, done at epoch ``done_at``."""
    outcome = message.outcome
    return {
        "id": message.id,
        "level": "2",
        "message_status": outcome.receipt,
        "id_smsc": message.id_smsc,
        "sub": "001",
        "dlvrd": "001" if outcome.receipt == "DELIVRD" else "000",
        "subdate": _receipt_time(message.accepted_at),
        "donedate": _receipt_time(done_at),
        "err": outcome.err,
        "text": message.text[:20],
        "connector": "sandbox",
    }
