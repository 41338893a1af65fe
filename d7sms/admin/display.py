"""How statuses and progress look in the admin: badges, progress groups and bars."""

from django import forms
from django.utils import dateformat, timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from d7sms.models import FAILURES, MessageStatus, SendoutStatus


#: The stylesheet every d7sms admin page needs (badges, bars, panels).
MEDIA = forms.Media(css={"all": ("d7sms/admin.css",)})

# The progress bar's segments, in drawing order, and which message statuses fill each.
GROUPS = (
    ("delivered", _("delivered"), frozenset({MessageStatus.DELIVERED})),
    ("failed", _("failed"), FAILURES),
    ("accepted", _("accepted"), frozenset({MessageStatus.ACCEPTED, MessageStatus.AT_SMSC})),
    ("waiting", _("waiting"), frozenset({MessageStatus.PENDING, MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.UNKNOWN})),
    ("cancelled", _("cancelled"), frozenset({MessageStatus.CANCELLED})),
)
GROUP_OF = {status: key for key, _label, statuses in GROUPS for status in statuses}

# Badge colour classes (see static/d7sms/admin.css).
_TONE = {
    MessageStatus.PENDING: "wait",
    MessageStatus.QUEUED: "wait",
    MessageStatus.SENDING: "busy",
    MessageStatus.UNKNOWN: "warn",
    MessageStatus.ACCEPTED: "busy",
    MessageStatus.AT_SMSC: "busy",
    MessageStatus.DELIVERED: "ok",
    MessageStatus.UNDELIVERED: "bad",
    MessageStatus.EXPIRED: "bad",
    MessageStatus.REJECTED: "bad",
    MessageStatus.FAILED: "bad",
    MessageStatus.CANCELLED: "off",
    SendoutStatus.SCHEDULED: "wait",
    SendoutStatus.SUBMITTING: "busy",
    SendoutStatus.IN_PROGRESS: "busy",
    SendoutStatus.COMPLETED: "ok",
    SendoutStatus.COMPLETED_WITH_FAILURES: "warn",
    SendoutStatus.CANCELLED: "off",
}
_LABELS = {**dict(MessageStatus.choices), **dict(SendoutStatus.choices)}


def short_time(value):
    """A compact local time for list columns ("24 Nov 14:05"; the year only when not this one)."""
    if value is None:
        return "–"
    local = timezone.localtime(value)
    fmt = "j M H:i" if local.year == timezone.localdate().year else "j M Y H:i"
    return format_html('<span title="{}">{}</span>', local.isoformat(" ", "seconds"), dateformat.format(local, fmt))


def exact_time(value):
    """A local time to the second, for histories where order and gaps matter."""
    if value is None:
        return "–"
    return dateformat.format(timezone.localtime(value), "Y-m-d H:i:s")


def held_for_quiet_hours(waiting):
    """What a resend or retry says of its copies held for the sendout's quiet hours (``waiting``:
    how many by release instant): how many, and when they go, in the site's time zone named."""
    if not waiting:
        return ""
    n, first, last = sum(waiting.values()), min(waiting), max(waiting)
    values = {"n": n, "first": exact_time(first), "last": exact_time(last), "zone": timezone.get_current_timezone_name()}
    if first == last:
        text = ngettext(
            "%(n)d waits for the sendout's quiet hours and goes at %(first)s (%(zone)s).",
            "%(n)d wait for the sendout's quiet hours and go at %(first)s (%(zone)s).", n,
        )
    else:
        text = ngettext(
            "%(n)d waits for the sendout's quiet hours and goes between %(first)s and %(last)s (%(zone)s).",
            "%(n)d wait for the sendout's quiet hours and go between %(first)s and %(last)s (%(zone)s).", n,
        )
    return text % values


def status_label(status):
    """The human label of a message or sendout status."""
    return _LABELS.get(status, status)


def tone(status):
    """The colour class of a status's badge."""
    return _TONE.get(status, "off")


def badge(status):
    """A coloured badge for a message or sendout status."""
    return format_html(
        '<span class="d7-badge d7-{}" data-status="{}">{}</span>',
        tone(status),
        status,
        status_label(status),
    )


def progress(counts):
    """Summarise ``{status: n}`` as group counts and percentages for the progress bar."""
    total = sum(counts.values())
    groups = {key: 0 for key, _label, _statuses in GROUPS}
    for status, n in counts.items():
        groups[GROUP_OF.get(status, "waiting")] += n
    final = groups["delivered"] + groups["failed"] + groups["cancelled"]
    return {
        "total": total,
        "groups": groups,
        "percent": {key: _percent(n, total) for key, n in groups.items()},
        "done_percent": int(100 * final / total) if total else 0,
    }


def _percent(n, total):
    return round(100 * n / total, 2) if total else 0


def progress_bar(counts, *, sendout_id=None):
    """The progress bar as HTML: one segment per group, widths as proportions."""
    summary = progress(counts)
    total = summary["total"]
    label_parts = [f"{summary['groups'][key]} {label}" for key, label, _s in GROUPS if summary["groups"][key]]
    title = ", ".join(label_parts) or str(_("no messages"))
    segments = format_html_join(
        "",
        '<span class="d7-seg d7-seg-{}" data-group="{}" style="width: {}%"></span>',
        ((key, key, summary["percent"][key]) for key, _label, _s in GROUPS),
    )
    return format_html(
        '<div class="d7-progress"{} title="{}">'
        '<div class="d7-bar" role="img" aria-label="{}">{}</div>'
        '<span class="d7-progress-text">{}</span></div>',
        format_html(' data-sendout="{}"', sendout_id) if sendout_id else "",
        title,
        title,
        segments,
        f"{summary['done_percent']} %" if total else "–",
    )
