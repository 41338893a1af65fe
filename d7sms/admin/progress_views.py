"""A running sendout's progress as JSON (polled by the sendout page) and its deliveries as SVG."""

from datetime import timedelta

from django.db.models import Count, Max, Min, Q
from django.db.models.functions import Trunc
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext as _

from d7sms import progress
from d7sms.admin import display
from d7sms.models import FAILURES, LATEST, Message, MessageStatus

# (longest span, bucket kind, bucket length, tick label format)
_GRAINS = (
    (timedelta(minutes=3), "second", timedelta(seconds=1), "%H:%M:%S"),
    (timedelta(hours=3), "minute", timedelta(minutes=1), "%H:%M"),
    (timedelta(days=7), "hour", timedelta(hours=1), "%d %b %H:%M"),
    (None, "day", timedelta(days=1), "%d %b %Y"),
)
WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 30, 30
# Tick spacings the x axis may use, smallest first; at most MAX_TICKS labels are drawn.
_TICK_STEPS = tuple(
    timedelta(seconds=n)
    for n in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
              86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400)
)
MAX_TICKS = 6
# Colours come from the page's theme (admin.css defines the variables, light and dark); the
# fallbacks serve the chart opened on its own.
_STYLE = (
    "<style>"
    ".d7c-bg{fill:var(--d7-chart-bg,#fff)}.d7c-grid{stroke:var(--d7-chart-grid,#e5e5e5)}"
    ".d7c-axis{stroke:var(--d7-chart-axis,#999)}.d7c-text{fill:var(--d7-chart-fg,#555)}"
    ".d7c-delivered{fill:var(--d7-delivered,#0b2f66);stroke:var(--d7-delivered,#0b2f66)}"
    ".d7c-failed{fill:var(--d7-failed,#d66000);stroke:var(--d7-failed,#d66000)}"
    "@media (prefers-color-scheme: dark){.d7c-bg{fill:var(--d7-chart-bg,#121212)}"
    ".d7c-grid{stroke:var(--d7-chart-grid,#353535)}.d7c-text{fill:var(--d7-chart-fg,#d0d0d0)}"
    ".d7c-delivered{fill:var(--d7-delivered,#b3daff);stroke:var(--d7-delivered,#b3daff)}"
    ".d7c-failed{fill:var(--d7-failed,#c24e00);stroke:var(--d7-failed,#c24e00)}}"
    "</style>"
)


def progress_json(sendout):
    """The counts the progress bar and the status table show, for one sendout."""
    counts = progress.counts([sendout.pk])[sendout.pk]
    state = progress.derive_status(sendout, counts)
    summary = display.progress(counts)
    return JsonResponse(
        {
            "id": sendout.pk,
            "status": state,
            "status_label": str(display.status_label(state)),
            "tone": display.tone(state),
            "counts": counts,
            **summary,
            "done": progress.is_done(sendout, counts),
            "live": live_text(progress.is_done(sendout, counts), summary),
        },
        headers={"Cache-Control": "no-store"},
    )


def live_text(done, summary):
    """The sentence the page's live region reads out: how far the sendout is, or that it finished."""
    groups, total = summary["groups"], summary["total"]
    if not total:
        return _("No messages.")
    if done:
        text = _("Sendout finished: %(delivered)d delivered, %(failed)d failed") % groups
        if groups["cancelled"]:
            text += _(", %(cancelled)d cancelled") % groups
        return text + "."
    final = groups["delivered"] + groups["failed"] + groups["cancelled"]
    return _("%(final)d of %(total)d messages final (%(percent)d %%).") % {
        "final": final, "total": total, "percent": summary["done_percent"]}


def delivery_series(sendout):
    """Cumulative ``(time, delivered, failed)`` points of the final reports of a sendout's
    recipients (their latest attempts), and the bucket.

    Two queries whatever the size of the sendout: the time span, then counts per bucket.
    """
    finished = Message.objects.filter(LATEST, sendout=sendout, final_at__isnull=False).exclude(
        status=MessageStatus.CANCELLED
    )
    span = finished.aggregate(first=Min("final_at"), last=Max("final_at"), start=Min("accepted_at"))
    if span["last"] is None:
        return [], None
    start = min(t for t in (span["start"], span["first"]) if t is not None)
    for longest, kind, step, label in _GRAINS:
        if longest is None or span["last"] - start <= longest:
            break
    rows = (
        finished.annotate(bucket=Trunc("final_at", kind))
        .values("bucket")
        .annotate(
            delivered=Count("pk", filter=Q(status=MessageStatus.DELIVERED)),
            failed=Count("pk", filter=Q(status__in=FAILURES)),
        )
        .order_by("bucket")
    )
    points = [(_floor(start, step), 0, 0)]
    delivered = failed = 0
    for row in rows:
        delivered += row["delivered"]
        failed += row["failed"]
        points.append((row["bucket"] + step, delivered, failed))
    return points, (step, label)


def _floor(moment, step):
    seconds = step.total_seconds()
    local = timezone.localtime(moment)
    return local - timedelta(seconds=local.timestamp() % seconds)


def chart_svg(sendout):
    """The deliveries chart as a standalone SVG image."""
    counts = progress.counts([sendout.pk])[sendout.pk]
    points, grain = delivery_series(sendout)
    response = HttpResponse(render_chart(points, grain, sum(counts.values())), content_type="image/svg+xml")
    response["Cache-Control"] = "no-store"
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


def render_chart(points, grain, total):
    """Cumulative delivered and failed messages over time, stacked; y runs to the sendout's size.

    Drawn with classes (``d7c-*``) whose colours follow the admin's light or dark theme when the
    SVG is inlined in the sendout page.
    """
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
            f'height="{HEIGHT}" font-family="-apple-system, Segoe UI, Helvetica, Arial, sans-serif" '
            'font-size="11" role="img" aria-labelledby="d7-chart-title" id="d7-chart">'
        ),
        '<title id="d7-chart-title">Delivered and failed messages over time</title>',
        _STYLE,
        f'<rect class="d7c-bg" x="0" y="0" width="{WIDTH}" height="{HEIGHT}"/>',
    ]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    if len(points) < 2:
        out.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="d7c-text">'
            "No delivery reports yet</text></svg>"
        )
        return "".join(out)
    top = max(total, points[-1][1] + points[-1][2], 1)
    t0, t1 = points[0][0], points[-1][0]
    width_s = max((t1 - t0).total_seconds(), 1)

    def x(t):
        return LEFT + plot_w * (t - t0).total_seconds() / width_s

    def y(n):
        return TOP + plot_h * (1 - n / top)

    for n in (0, top / 2, top):  # horizontal grid with y labels
        out.append(f'<line class="d7c-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(n):.1f}" y2="{y(n):.1f}"/>')
        out.append(f'<text class="d7c-text" x="{LEFT - 6}" y="{y(n) + 4:.1f}" text-anchor="end">{escape(_count(n))}</text>')
    for t, label in x_ticks(t0, t1, grain[0]):
        px = x(t)
        anchor = "start" if px < LEFT + 24 else "end" if px > WIDTH - RIGHT - 24 else "middle"
        out.append(f'<line class="d7c-axis" x1="{px:.1f}" x2="{px:.1f}" y1="{y(0):.1f}" y2="{y(0) + 4:.1f}"/>')
        out.append(f'<text class="d7c-text" x="{px:.1f}" y="{HEIGHT - 10}" text-anchor="{anchor}">{escape(label)}</text>')
    # Stacked areas: failed at the bottom, delivered on top, so the upper edge is all that is final.
    base = [(x(p[0]), y(0)) for p in points]
    failed = [(x(p[0]), y(p[2])) for p in points]
    total_edge = [(x(p[0]), y(p[1] + p[2])) for p in points]
    for name, upper, lower in (("failed", failed, base), ("delivered", total_edge, failed)):
        outline = " ".join(f"{px:.1f},{py:.1f}" for px, py in upper + lower[::-1])
        edge = " ".join(f"{px:.1f},{py:.1f}" for px, py in upper)
        out.append(f'<polygon class="d7c-{name}" points="{outline}" fill-opacity="0.3" stroke="none"/>')
        out.append(f'<polyline class="d7c-{name}" points="{edge}" fill="none" style="fill:none" stroke-width="2"/>')
    out.append(f'<line class="d7c-axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>')
    last = points[-1]
    legend = ((f"Delivered: {last[1]:,}", "delivered"), (f"Failed: {last[2]:,}", "failed"), (f"Recipients: {total:,}", None))
    for i, (text, name) in enumerate(legend):
        lx = LEFT + i * 150
        if name:
            out.append(f'<rect class="d7c-{name}" x="{lx}" y="8" width="12" height="12" rx="2"/>')
        out.append(f'<text class="d7c-text" x="{lx + (18 if name else 0)}" y="18" font-size="12">{escape(text)}</text>')
    out.append("</svg>")
    return "".join(out)


def x_ticks(t0, t1, grain):
    """``[(time, label)]`` for the x axis between ``t0`` and ``t1``: evenly spaced at a round
    step no finer than the chart's ``grain``, at most MAX_TICKS, every label different."""
    span = t1 - t0
    step = next((s for s in _TICK_STEPS if s >= grain and s * MAX_TICKS >= span), None)
    if step is None:
        step = timedelta(days=-(-span.days // MAX_TICKS) or 1)
    start = timezone.localtime(t0)
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if step < timedelta(days=1):
        into = (start - midnight).total_seconds()
        first = midnight + timedelta(seconds=-(-into // step.total_seconds()) * step.total_seconds())
    else:
        first = midnight if midnight >= start else midnight + timedelta(days=1)
    last = timezone.localtime(t1)
    if step < timedelta(minutes=1):
        fmt = "%H:%M:%S"
    elif step < timedelta(days=1):
        fmt = "%H:%M" if start.date() == last.date() else "%d %b %H:%M"
    else:
        fmt = "%d %b" if start.year == last.year else "%d %b %Y"
    ticks, seen, t = [], set(), first
    while t <= last and len(ticks) < MAX_TICKS + 1:
        label = timezone.localtime(t).strftime(fmt)
        if label not in seen:
            seen.add(label)
            ticks.append((t, label))
        t += step
    return ticks


def _count(n):
    return f"{n:,.0f}"
