"""The admin over one sendout of 100,000 recipients: its page, its figures, the message log.

    .venv/bin/python bench/log_bench.py                      # SQLite
    .venv/bin/python bench/log_bench.py --database postgres  # PostgreSQL

The sendout's messages are written straight to the table (mixed outcomes, every tenth
failure sent again), then each page is requested through the admin's own views, as staff
would, and timed with its query count:

- the sendout page (recipients by status, failures grouped by reason, resends, cost) and its
  progress JSON;
- the message log: the first page, a search by a run of digits, the sendout's failures of one
  reason;
- the export of the whole log as CSV (streamed), and its peak memory.

Target: every page under 1 s, the export under 10 s.
"""

import argparse
import sys
import time

import pipeline

TARGET_PAGE_S = 1.0
TARGET_EXPORT_S = 10.0
# (status, error_code) of the outcomes, in turn.
OUTCOMES = [("delivered", "")] * 7 + [("undelivered", "UNDELIV"), ("rejected", "NoRoute"), ("expired", "EXPIRED")]


def store(n):
    """One sendout of ``n`` recipients with mixed outcomes; every tenth failure resent (delivered)."""
    import uuid

    from django.utils import timezone

    from d7sms import sql
    from d7sms.models import Message, Sendout

    now = timezone.now()
    sendout = Sendout.objects.create(name="log bench", content="Spring sale", recipient_count=n, status="completed_with_failures",
                                     submitted_at=now, completed_at=now)
    rows = ((f"+4479{i:08d}", *OUTCOMES[i % len(OUTCOMES)]) for i in range(n))
    sql.insert_rows(Message, ("to", "status", "error_code"), rows, sendout=sendout, content="Spring sale, 20% off",
                    sender="Shop", submitted_at=now, final_at=now)
    failed = list(Message.objects.filter(sendout=sendout).exclude(status="delivered").values_list("pk", "to")[::10])
    token = uuid.uuid4()
    for part in sql.slices([pk for pk, _to in failed]):
        Message.objects.filter(pk__in=part).update(resend_token=token)
    Message.objects.bulk_create(
        [Message(sendout=sendout, to=to, content="Spring sale, 20% off", sender="Shop", status="delivered",
                 resend_of_id=pk, submitted_at=now, final_at=now) for pk, to in failed],
        batch_size=2000,
    )
    return sendout, len(failed)


def timed(client, url, stream=False):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        response = client.get(url)
        size = sum(len(chunk) for chunk in response.streaming_content) if stream else len(response.content)
        elapsed = time.perf_counter() - started
    assert response.status_code == 200, (url, response.status_code)
    return elapsed, len(ctx.captured_queries), size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args(argv)
    name = pipeline.prepare(args.database, "http://127.0.0.1:9", {"PRICE_PER_PART": "0.01", "CURRENCY": "EUR"}, 1,
                            name="d7sms_log_bench")
    try:
        from django.contrib.auth import get_user_model
        from django.test import Client

        started = time.perf_counter()
        sendout, resent = store(args.recipients)
        print(f"log_bench: {args.recipients:,} recipients and {resent:,} resends, {args.database} "
              f"(stored in {time.perf_counter() - started:.1f} s, not measured)", flush=True)
        staff = get_user_model().objects.create_superuser("bench", "bench@example.com", "x")
        client = Client()
        client.force_login(staff)
        client.get("/admin/")  # session and caches warm
        log = "/admin/d7sms/message/"
        pages = [
            ("sendout page", f"/admin/d7sms/sendout/{sendout.pk}/change/", False, TARGET_PAGE_S),
            ("progress JSON", f"/admin/d7sms/sendout/{sendout.pk}/progress/", False, TARGET_PAGE_S),
            ("message log", log, False, TARGET_PAGE_S),
            ("search '0012345'", f"{log}?q=0012345", False, TARGET_PAGE_S),
            ("one reason", f"{log}?sendout={sendout.pk}&status=rejected&reason=NoRoute&resent=no", False, TARGET_PAGE_S),
            ("export (CSV)", f"{log}export.csv", True, TARGET_EXPORT_S),
        ]
        before = pipeline.self_peak_rss_mb()
        for label, url, stream, target in pages:
            elapsed, queries, size = timed(client, url, stream)
            verdict = "meets" if elapsed < target else "misses"
            print(f"  {label}: {elapsed:.3f} s, {queries} queries, {size / 1024:,.0f} KiB ({verdict} < {target:g} s)",
                  flush=True)
        print(f"  peak RSS {pipeline.self_peak_rss_mb():.0f} MB (before the pages {before:.0f} MB)")
    finally:
        pipeline.cleanup(args.database, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
