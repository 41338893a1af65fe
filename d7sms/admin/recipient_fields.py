"""Each recipient's own message and uploaded fields, on the sendout and message pages."""

from django.utils.html import format_html, format_html_join

from d7sms.admin import display
from d7sms.models import Message

SHOWN_RECIPIENTS = 20


def sendout_context(sendout):
    """Context for the sendout page: the first recipients of a personalised sendout with the
    message each was sent and its uploaded columns (empty for other sendouts)."""
    if not sendout.personalised:
        return {}
    rows = list(
        Message.objects.filter(sendout=sendout, resend_of__isnull=True)
        .order_by("pk")
        .values("pk", "to", "status", "sender", "content", "parts", "fields")[:SHOWN_RECIPIENTS]
    )
    columns = list(sendout.columns)
    for row in rows:
        row["badge"] = display.badge(row["status"])
        fields = row["fields"] or {}
        row["cells"] = ["" if fields.get(c) is None else fields[c] for c in columns]
    return {
        "d7_recipients": rows,
        "d7_columns": columns,
        "d7_more_recipients": max(0, sendout.recipient_count - len(rows)),
    }


def fields_table(fields):
    """A recipient's uploaded fields as a small two-column table, or a dash."""
    if not fields:
        return "–"
    rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", ((k, "" if v is None else v) for k, v in fields.items()))
    return format_html('<table class="d7-fields-table">{}</table>', rows)
