"""A sendout's results as CSV, streamed so a 100,000-message sendout is never held in memory."""

import csv

from django.http import StreamingHttpResponse

from d7sms.admin.reasons import explain
from d7sms.models import Message

COLUMNS = (
    "to", "status", "d7_message_id", "parts", "attempts", "submitted_at",
    "accepted_at", "final_at", "error_code", "last_error",
)
# Cells a spreadsheet would run as a formula; numbers we wrote ourselves ("+44...") are safe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    def write(self, value):
        return value


def _safe(value):
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def results_csv(sendout):
    """A CSV file with one row per message of ``sendout``: status, times and why it failed."""
    writer = csv.writer(_Echo())
    rows = (
        Message.objects.filter(sendout=sendout)
        .order_by("pk")
        .values_list(*COLUMNS)
        .iterator(chunk_size=2000)
    )

    def lines():
        yield writer.writerow([*COLUMNS, "reason"])
        for row in rows:
            to, status, *rest = row
            reason = explain(status, row[-2] or "", row[-1] or "")
            yield writer.writerow([to, status, *(_safe(v) for v in rest), _safe(reason)])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="sendout-{sendout.pk}.csv"'
    return response
