"""100,000 personalised recipients from an .xlsx: preview, storing, and the send through the sandbox.

    .venv/bin/python bench/personalised_bench.py                      # SQLite, ORM broker
    .venv/bin/python bench/personalised_bench.py --database postgres  # PostgreSQL, Redis broker

Measured in one run, so the figures can be compared:

- preview: the admin's two requests on the uploaded workbook (names with accents, 2 % of
  them outside GSM-7): reading its columns (calamine, kept compressed) and the preview that
  checks and renders every row. Target: under ~10 s together. ``--preview-only`` stops there.
- storing: ``send_batch()`` of the rows as mappings with ``"Hi {name}, your order {order} in
  {city} is ready"``, until it returns (validation, rendering, coding, insert, enqueue), with no
  cluster running. Target: >= 10,000 recipients/s.
- end to end: one text to 100,000 numbers (today's ``send_batch``) and the 100,000 personalised
  messages, each from the call until every sendbatch call is answered, through one running
  cluster and the sandbox (in its own process).
- peak memory: the caller's resident size (the preview and storing included) and the largest
  cluster process. Target: < 300 MB.
"""

import argparse
import random
import re
import sys
import tempfile
import time

import pipeline
from tests.cluster import numbers

TARGET_PREVIEW_S = 10
TARGET_STORE_RATE = 10_000
TARGET_RSS_MB = 300
TEXT = "Hi {name}, your order {order} in {city} is ready"
NAMES = ["Ada", "Bob", "Chloé", "Dmitri", "Zoë", "Øyvind", "Ana María", "Li", "Grace", "Sam"]
CITIES = ["Leeds", "Köln", "Reykjavík", "Paris", "Łódź", "York", "Bath"]


def workbook(path, count):
    """Write an .xlsx of ``count`` customers; 2 % have a name outside GSM-7 (Łukasz, 李)."""
    import openpyxl

    rng = random.Random(12)
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["name", "phone", "city", "order"])
    for i, number in enumerate(numbers(count)):
        name = rng.choice(NAMES) if i % 50 else rng.choice(["Łukasz", "李雷"])
        sheet.append([name, number, rng.choice(CITIES), f"A-{i:06d}"])
    book.save(path)
    return path


def other_numbers(count, prefix):
    """``count`` distinct valid UK mobiles under ``prefix`` (none ending in 7, the sandbox's no route)."""
    return [f"{prefix}{n:06d}" for n in range(count * 2) if n % 10 != 7][:count]


def figure(html, key):
    return re.search(rf'id="d7-{key}"><span class="d7-value">([^<]+)', html).group(1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--preview-only", action="store_true", help="measure the preview, then stop")
    args = parser.parse_args(argv)
    n = args.recipients

    sandbox = pipeline.SandboxProcess()
    settings = {"DLR_LEVEL": 3, "CALLBACK_BASE_URL": pipeline.CALLBACK, "USERNAME": "bench", "PASSWORD": "bench"}
    name = pipeline.prepare(args.database, sandbox.url, settings, args.workers)
    try:
        import d7sms
        from django.contrib.auth import get_user_model
        from django.core.files.uploadedfile import SimpleUploadedFile
        from django.test import Client

        from d7sms import conf
        from d7sms.admin import uploads
        from d7sms.models import ComposeUpload, Message, MessageStatus
        from tests.cluster import Cluster

        baseline = pipeline.self_peak_rss_mb()
        print(f"personalised_bench: {n:,} recipients, {args.workers} workers, {args.database}, "
              f"{conf.get('BATCH_CHUNK_SIZE')} per sendbatch call", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            path = workbook(f"{tmp}/customers.xlsx", n)
            print(f"  wrote the workbook in {time.perf_counter() - started:.1f} s (not measured)", flush=True)
            data = open(path, "rb").read()

        # -- the preview, through the admin's own views ------------------------------------
        staff = get_user_model().objects.create_superuser("bench", "bench@example.com", "x")
        client = Client()
        client.force_login(staff)
        url = "/admin/d7sms/sendout/compose/"
        typed = {"name": "bench", "sender": "Shop", "content": TEXT, "region": "GB", "dlr_level": "3",
                 "mode": "batch", "when": "now", "where": "local", "coding": "8"}
        started = time.perf_counter()
        page = client.post(url, {**typed, "_action": "columns",
                                 "upload": SimpleUploadedFile("customers.xlsx", data)})
        read = time.perf_counter() - started
        kept = ComposeUpload.objects.get()
        assert page.status_code == 200 and kept.row_count == n, (page.status_code, kept.row_count)
        started = time.perf_counter()
        preview = client.post(url, {**typed, "upload_ref": uploads.reference(staff, kept)})
        checked = time.perf_counter() - started
        html = preview.content.decode()
        valid, total_parts = (int(figure(html, key).replace(",", "")) for key in ("valid", "total-parts"))
        assert valid == n, figure(html, "invalid")
        print(f"  preview: read the columns in {read:.2f} s, checked and rendered every row in {checked:.2f} s "
              f"({read + checked:.2f} s; {'meets' if read + checked < TARGET_PREVIEW_S else 'misses'} "
              f"the target < {TARGET_PREVIEW_S} s); {total_parts:,} parts in all", flush=True)
        after_preview = pipeline.self_peak_rss_mb()
        if args.preview_only:
            print(f"  peak RSS: caller {after_preview:.0f} MB (before the preview {baseline:.0f} MB)")
            return 0
        rows = [{"to": cells[1], "name": cells[0], "city": cells[2], "order": cells[3]}
                for _line, cells in uploads.rows(kept)]
        del page, preview, data
        ComposeUpload.objects.all().delete()

        # -- storing, with no cluster taking the work yet ----------------------------------
        started = time.perf_counter()
        stored = d7sms.send_batch(rows, TEXT, name="personalised")
        store_s = time.perf_counter() - started
        del rows
        store_rate = n / store_s
        print(f"  storing: send_batch() of {n:,} mappings in {store_s:.2f} s = {store_rate:,.0f} recipients/s "
              f"({'meets' if store_rate >= TARGET_STORE_RATE else 'misses'} the target {TARGET_STORE_RATE:,})", flush=True)
        assert Message.objects.filter(sendout=stored).count() == n
        after_storing = pipeline.self_peak_rss_mb()

        # -- end to end, one text beside personalised --------------------------------------
        figures = {}
        with Cluster() as cluster, pipeline.PeakRSS(cluster.process.pid) as cluster_rss:
            # The stored personalised sendout is sent first: it was enqueued when stored.
            pipeline.wait_until(lambda: not pipeline.waiting(Message), timeout=900)
            for label, recipients, content in (
                ("one text", other_numbers(n, "+447912"), "Benchmark sendout"),
                ("personalised", [{"to": t, "name": NAMES[i % 10], "city": CITIES[i % 7], "order": f"B-{i:06d}"}
                                  for i, t in enumerate(other_numbers(n, "+447400"))], TEXT),
            ):
                started = time.perf_counter()
                sendout = d7sms.send_batch(recipients, content, name=label)
                del recipients
                pipeline.wait_until(lambda: not pipeline.waiting(Message), timeout=900)
                elapsed = time.perf_counter() - started
                accepted = Message.objects.filter(sendout=sendout, status=MessageStatus.ACCEPTED).count()
                if accepted != n:
                    raise RuntimeError(f"{label}: only {accepted} of {n} recipients were accepted")
                figures[label] = elapsed
        one, personal = figures["one text"], figures["personalised"]
        print(f"  end to end through the sandbox: one text {n / one:,.0f} recipients/s ({one:.1f} s), "
              f"personalised {n / personal:,.0f} recipients/s ({personal:.1f} s): "
              f"personalised at {personal / one:.2f}x the time of one text")
        caller = pipeline.self_peak_rss_mb()
        peak = max(caller, cluster_rss.peak)
        print(f"  peak RSS: caller {caller:.0f} MB (before the preview {baseline:.0f} MB, after it {after_preview:.0f} MB, "
              f"after storing {after_storing:.0f} MB), largest cluster process {cluster_rss.peak:.0f} MB "
              f"({'meets' if peak < TARGET_RSS_MB else 'misses'} the target < {TARGET_RSS_MB} MB)")
        print(f"  sandbox counted {sandbox.stats().get('batches', '?')} batches")
    finally:
        sandbox.stop()
        pipeline.cleanup(args.database, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
