"""20,000 messages through ``/secure/send`` by a django-q2 cluster, against a bare loop of
``requests.Session`` posts with the same concurrency to the same sandbox, in the same run.

    .venv/bin/python bench/send_bench.py                      # SQLite, ORM broker
    .venv/bin/python bench/send_bench.py --database postgres  # PostgreSQL, Redis broker

The cluster's time runs from the ``send_batch()`` call (mode "single") until the last message
is recorded ``accepted`` in the database: validation, storage, enqueueing, claims, calls and
status writes all count. The baseline does nothing but post the same JSON bodies. It runs
before and after the cluster and the mean is used, so that drift on a shared machine cancels
out. Target: ratio >= 0.6.

The cluster runs once per ``--windows`` value (SEND_WINDOW: messages a worker claims and
records at a time, the most a killed worker leaves unknown), so the cost of a small window is
measured against a large one in the same run.
"""

import argparse
import base64
import json
import sys
import threading
import time

import pipeline
from tests.cluster import numbers

TARGET = 0.6
CONTENT = "Benchmark message"


def baseline(url, total, concurrency):
    """Messages per second of ``concurrency`` threads each posting with its own Session."""
    import requests

    auth = "Basic " + base64.b64encode(":".join(pipeline.BENCH_USER).encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json", "Accept": "application/json"}
    to_send = numbers(total, start=500_000)
    errors = []

    def run(part):
        session = requests.Session()
        for to in part:
            body = json.dumps({"to": to, "from": "D7sms", "content": CONTENT, "dlr": "no"}).encode()
            response = session.post(url + "/secure/send", data=body, headers=headers, timeout=30)
            if response.status_code != 200:
                errors.append(response.status_code)
        session.close()

    threads = [threading.Thread(target=run, args=(to_send[i::concurrency],)) for i in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"baseline got {len(errors)} errors")
    return total / elapsed


def through_cluster(total, settings):
    """Messages per second from send_batch() to the last acceptance, and the sending phase alone."""
    from django.db.models import Max, Min

    import d7sms
    from d7sms.models import Message, MessageStatus, SendMode
    from tests.cluster import Cluster

    recipients = numbers(total)
    Message.objects.all().delete()
    with Cluster(settings=settings):
        started = time.perf_counter()
        d7sms.send_batch(recipients, CONTENT, mode=SendMode.SINGLE, dlr_level=0)
        stored = time.perf_counter()
        pipeline.wait_until(lambda: not pipeline.waiting(Message), timeout=600)
        elapsed = time.perf_counter() - started
    left = Message.objects.exclude(status=MessageStatus.ACCEPTED).count()
    if left:
        raise RuntimeError(f"{left} messages were not accepted")
    span = Message.objects.aggregate(first=Min("claimed_at"), last=Max("accepted_at"))
    sending = (span["last"] - span["first"]).total_seconds()
    return total / elapsed, total / sending, stored - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2, help="cluster workers = baseline threads")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--windows", default="4,50", help="SEND_WINDOW values to run the cluster with (default 4,50)")
    args, _unknown = parser.parse_known_args(argv)  # run_all.py passes every bench the same args
    windows = [int(w) for w in args.windows.split(",")]

    sandbox = pipeline.SandboxProcess()
    settings = {"DLR_LEVEL": 0, "CALLBACK_BASE_URL": pipeline.CALLBACK, "USERNAME": "bench", "PASSWORD": "bench"}
    name = pipeline.prepare(args.database, sandbox.url, settings, args.workers)
    try:
        print(f"send_bench: {args.messages:,} messages, concurrency {args.workers}, {args.database}", flush=True)
        before = baseline(sandbox.url, args.messages, args.workers)
        print(f"  bare requests.Session loop (before): {before:8.0f} msg/s", flush=True)
        overall = {}
        for window in windows:
            sandbox.reset()
            overall[window], sending, storing = through_cluster(args.messages, {**settings, "SEND_WINDOW": window})
            print(f"  d7sms cluster, SEND_WINDOW {window}, send_batch() to last accepted: {overall[window]:8.0f} msg/s "
                  f"(storing {storing:.2f} s; sending phase alone {sending:.0f} msg/s)", flush=True)
        sandbox.reset()
        after = baseline(sandbox.url, args.messages, args.workers)
        print(f"  bare requests.Session loop (after):  {after:8.0f} msg/s", flush=True)
        base = (before + after) / 2
        for window in windows:
            ratio = overall[window] / base
            verdict = "meets" if ratio >= TARGET else "misses"
            print(f"  ratio cluster (SEND_WINDOW {window}) / baseline: {ratio:.2f} ({verdict} the target {TARGET})")
    finally:
        sandbox.stop()
        pipeline.cleanup(args.database, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
