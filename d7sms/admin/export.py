"""Results as CSV, streamed so 100,000 messages are never held in memory: a sendout's (one row
per recipient, its latest attempt), and the message list as filtered (one row per message).

A personalised sendout's rows also carry each recipient's sender and message as sent, and
its uploaded columns, so the results can be joined back to the spreadsheet they came from.
"""

import csv
import re

from django.http import StreamingHttpResponse

from d7sms.admin import money
from d7sms.admin.reasons import explain
from d7sms.models import LATEST, Message

COLUMNS = (
    "to", "status", "d7_message_id", "parts", "attempts", "submitted_at",
    "accepted_at", "final_at", "error_code", "last_error",
)
# Cells a spreadsheet would run as a formula; numbers we wrote ourselves ("+44...") are safe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A phone number as uploaded ("+44 7911 123450", "-5") computes nothing: kept as it is, so it
# still matches the spreadsheet it came from.
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9 ().-]*")


class _Echo:
    def write(self, value):
        return value


def _safe(value):
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def results_csv(sendout):
    """A CSV file with one row per recipient of ``sendout`` (its latest attempt): status, times
    and why it failed; for a personalised sendout also its sender, its text and the recipient's
    uploaded columns."""
    writer = csv.writer(_Echo())
    personal = sendout.personalised
    columns = list(sendout.columns) if personal else []
    extra = ("sender", "content", "fields") if personal else ()
    rows = (
        Message.objects.filter(LATEST, sendout=sendout)
        .order_by("pk")
        .values_list(*COLUMNS, *extra)
        .iterator(chunk_size=2000)
    )
    taken = {*COLUMNS, "reason", "sender", "message"}
    header = [*COLUMNS, "reason"]
    if personal:
        header += ["sender", "message", *(_safe(c if c not in taken else f"{c} (uploaded)") for c in columns)]

    def lines():
        yield writer.writerow(header)
        for row in rows:
            base = row[: len(COLUMNS)]
            to, status, *rest = base
            reason = explain(status, base[-2] or "", base[-1] or "")
            out = [to, status, *(_safe(v) for v in rest), _safe(reason)]
            if personal:
                sender, content, fields = row[len(COLUMNS):]
                fields = fields or {}
                out += [_safe(sender), _safe(content), *(_safe(fields.get(c)) for c in columns)]
            yield writer.writerow(out)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="sendout-{sendout.pk}.csv"'
    return response


MESSAGE_COLUMNS = (
    "id", "created_at", "to", "sender", "content", "status", "error_code", "parts", "sendout_id", "sendout__name",
    "resend_of_id", "d7_message_id", "submitted_at", "final_at", "last_error",
)


def messages_csv(queryset, filename):
    """A CSV file with one row per message of ``queryset`` (as filtered and ordered), with why
    it failed and what it cost (parts x PRICE_PER_PART, for messages D7 charged)."""
    writer = csv.writer(_Echo())
    rows = queryset.values_list(*MESSAGE_COLUMNS).iterator(chunk_size=2000)
    header = [
        "id", "created_at", "to", "sender", "text", "status", "reason", "error_code", "parts", "cost", "currency",
        "sendout_id", "sendout", "resend_of", "d7_message_id", "submitted_at", "final_at",
    ]
    currency, price = money.currency(), money.price_per_part()
    reasons = {}

    def reason(status, code, last_error):
        # Many rows share a reason: each is put into words once (a bounded memo).
        key = (status, code, last_error)
        text = reasons.get(key)
        if text is None:
            text = _safe(explain(status, code or "", last_error or ""))
            if len(reasons) < 10_000:
                reasons[key] = text
        return text

    def lines():
        yield writer.writerow(header)
        block = []
        for (pk, created, to, sender, content, status, code, parts, sendout_id, sendout_name, resend_of,
             d7_id, submitted, final, last_error) in rows:
            charged = price is not None and money.is_charged(submitted, code)
            block.append(writer.writerow([
                pk, _safe(created), to, _safe(sender), _safe(content), status, reason(status, code, last_error),
                _safe(code), parts, money.amount(price * parts) if charged else "", currency if charged else "",
                _safe(sendout_id), _safe(sendout_name), _safe(resend_of), _safe(d7_id), _safe(submitted), _safe(final),
            ]))
            if len(block) == 1000:  # one chunk per thousand rows, not one per row
                yield "".join(block)
                block = []
        if block:
            yield "".join(block)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
