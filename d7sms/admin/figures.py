"""A sendout's figures as staff read them: its recipients' failures grouped by reason, the
recipients it sent again, and what it cost.

Every figure counts recipients by their latest attempt (:data:`d7sms.models.LATEST`): a resend
or a retry replaces a recipient's attempt and is shown as such, never as a new recipient.
"""

from urllib.parse import urlencode

from django.db.models import Count

from d7sms.admin import display, money
from d7sms.admin.reasons import explain, short
from d7sms.models import FAILURES, LATEST, Message

SHOWN_FAILURES = 50
SHOWN_RESENDS = 20
#: The ``reason`` filter's value for a failure that carries no error code.
NO_CODE = "none"


def list_url(base, sendout, **params):
    """The message list at ``base`` filtered to ``sendout`` and ``params``."""
    return f"{base}?{urlencode({'sendout': sendout.pk, **params})}"


def failure_groups(sendout, base):
    """The sendout's failed recipients grouped by status and reason, largest group first: each
    with its count and the message list filtered to exactly those recipients."""
    rows = (
        Message.objects.filter(LATEST, sendout=sendout, status__in=FAILURES)
        .values_list("status", "error_code")
        .annotate(n=Count("pk"))
        .order_by("-n", "status", "error_code")
    )
    return [
        {
            "status": status,
            "badge": display.badge(status),
            "label": short(status, code),
            "count": n,
            "url": list_url(base, sendout, status=status, reason=code or NO_CODE, resent="no"),
        }
        for status, code, n in rows
    ]


def failed_recipients(sendout):
    """The first SHOWN_FAILURES failed recipients (their latest attempts), oldest failure first."""
    rows = list(
        Message.objects.filter(LATEST, sendout=sendout, status__in=FAILURES)
        .order_by("final_at", "pk")
        .values("pk", "to", "status", "error_code", "last_error", "final_at", "resend_of_id")[:SHOWN_FAILURES]
    )
    for row in rows:
        row["badge"] = display.badge(row["status"])
        row["reason"] = explain(row["status"], row["error_code"], row["last_error"])
    return rows


def resends(sendout, base):
    """The recipients of ``sendout`` sent again: how many, how many resends that took, and the
    latest few, each linked to its attempt and the one it replaced."""
    copies = Message.objects.filter(sendout=sendout, resend_of__isnull=False)
    totals = copies.aggregate(attempts=Count("pk"), recipients=Count("pk", filter=LATEST))
    rows = []
    if totals["attempts"]:
        latest = copies.filter(LATEST).select_related("resend_of").order_by("-pk")
        fields = ("id", "to", "status", "created_at", "resend_of__id", "resend_of__status")
        for copy in latest.only(*fields)[:SHOWN_RESENDS]:
            rows.append({
                "pk": copy.pk, "to": copy.to, "badge": display.badge(copy.status), "created_at": copy.created_at,
                "previous": copy.resend_of.pk, "previous_badge": display.badge(copy.resend_of.status),
            })
    return {
        **totals,
        "rows": rows,
        "url": list_url(base, sendout, attempt="resend"),
    }


def cost(sendout):
    """What D7 charged for the sendout so far (every attempt), for the sendout page."""
    parts, amount = money.sendout_cost(sendout)
    return {"parts": parts, "amount": money.text(amount), "price_known": amount is not None}


def context(sendout, base):
    """Everything the sendout page shows of these figures, under ``d7_`` names."""
    groups = failure_groups(sendout, base)
    return {
        "d7_failure_groups": groups,
        "d7_failed_total": sum(g["count"] for g in groups),
        "d7_failures": failed_recipients(sendout) if groups else [],
        "d7_resends": resends(sendout, base),
        "d7_cost": cost(sendout),
        "d7_recipients_url": list_url(base, sendout, resent="no"),
    }
