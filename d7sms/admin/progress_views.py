"""A running sendout's progress as JSON (polled by the sendout page) and its deliveries as SVG."""

from datetime import timedelta

from django.db.models import Count, Max, Min, Q
from django.db.models.functions import Trunc
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.html import escape

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
COLOURS = {"delivered": "#2e7d32", "failed": "#c62828"}


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
        },
        headers={"Cache-Control": "no-store"},
    )


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
    """Cumulative delivered and failed messages over time, stacked; y runs to the sendout's size."""
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
            f'height="{HEIGHT}" font-family="-apple-system, Segoe UI, Helvetica, Arial, sans-serif" '
            'font-size="11" role="img">'
        ),
        "<title>Deliveries over time</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
    ]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    if len(points) < 2:
        out.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#666">'
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
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(n):.1f}" y2="{y(n):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(n) + 4:.1f}" text-anchor="end" fill="#666">{escape(_count(n))}</text>')
    _step, fmt = grain
    for i in range(3):  # x labels at start, middle, end
        t = t0 + (t1 - t0) * i / 2
        anchor = ("start", "middle", "end")[i]
        label = escape(timezone.localtime(t).strftime(fmt))
        out.append(f'<text x="{x(t):.1f}" y="{HEIGHT - 10}" text-anchor="{anchor}" fill="#666">{label}</text>')
    # Stacked areas: failed at the bottom, delivered on top, so the upper edge is all that is final.
    base = [(x(p[0]), y(0)) for p in points]
    failed = [(x(p[0]), y(p[2])) for p in points]
    total_edge = [(x(p[0]), y(p[1] + p[2])) for p in points]
    for name, upper, lower in (("failed", failed, base), ("delivered", total_edge, failed)):
        outline = " ".join(f"{px:.1f},{py:.1f}" for px, py in upper + lower[::-1])
        edge = " ".join(f"{px:.1f},{py:.1f}" for px, py in upper)
        colour = COLOURS[name]
        out.append(f'<polygon points="{outline}" fill="{colour}" fill-opacity="0.25" stroke="none"/>')
        out.append(f'<polyline points="{edge}" fill="none" stroke="{colour}" stroke-width="2"/>')
    out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#999"/>')
    last = points[-1]
    legend = ((f"Delivered: {last[1]:,}", "delivered"), (f"Failed: {last[2]:,}", "failed"), (f"Messages: {total:,}", None))
    for i, (text, name) in enumerate(legend):
        lx = LEFT + i * 150
        if name:
            out.append(f'<rect x="{lx}" y="8" width="12" height="12" rx="2" fill="{COLOURS[name]}" fill-opacity="0.6"/>')
        out.append(f'<text x="{lx + (18 if name else 0)}" y="18" fill="#333" font-size="12">{escape(text)}</text>')
    out.append("</svg>")
    return "".join(out)


def _count(n):
    return f"{n:,.0f}"
