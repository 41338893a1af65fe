"""100,000 recipients through ``send_batch()`` until every sendbatch call is answered.

    .venv/bin/python bench/batch_bench.py                      # SQLite, ORM broker
    .venv/bin/python bench/batch_bench.py --database postgres  # PostgreSQL, Redis broker

The time runs from the ``send_batch()`` call (validation, storage, enqueueing) until every
message is recorded ``accepted`` after its sendbatch call, through a running cluster. Each
recipient carries its own ``dlr-url`` and the sendout its callback URLs, as in production.
Peak memory is the resident size of the calling process, and of the largest cluster process
(sampled every 50 ms). Targets: >= 5,000 recipients/s, peak RSS < 300 MB.
"""

import argparse
import sys
import time

import pipeline
from tests.cluster import numbers

TARGET_RATE = 5_000
TARGET_RSS_MB = 300


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args(argv)

    sandbox = pipeline.SandboxProcess()
    settings = {"DLR_LEVEL": 3, "CALLBACK_BASE_URL": pipeline.CALLBACK, "USERNAME": "bench", "PASSWORD": "bench"}
    name = pipeline.prepare(args.database, sandbox.url, settings, args.workers)
    try:
        import d7sms
        from d7sms import conf
        from d7sms.models import Message, MessageStatus
        from tests.cluster import Cluster

        recipients = numbers(args.recipients)
        print(f"batch_bench: {args.recipients:,} recipients, {args.workers} workers, {args.database}, "
              f"{conf.get('BATCH_CHUNK_SIZE')} per sendbatch call", flush=True)
        with Cluster() as cluster, pipeline.PeakRSS(cluster.process.pid) as cluster_rss:
            started = time.perf_counter()
            sendout = d7sms.send_batch(recipients, "Benchmark sendout", name="bench")
            stored = time.perf_counter() - started
            caller_rss = pipeline.self_peak_rss_mb()
            pipeline.wait_until(lambda: not pipeline.waiting(Message), timeout=900)
            elapsed = time.perf_counter() - started
        accepted = Message.objects.filter(status=MessageStatus.ACCEPTED).count()
        if accepted != args.recipients:
            raise RuntimeError(f"only {accepted} of {args.recipients} recipients were accepted")
        sendout.refresh_from_db()
        calls = len(sendout.d7_batch_ids)
        rate = args.recipients / elapsed
        stats = sandbox.stats()
        print(f"  stored and enqueued in {stored:.2f} s; all {calls} sendbatch calls answered after {elapsed:.2f} s")
        print(f"  sandbox counted {stats.get('batches', '?')} batches")
        print(f"  {rate:,.0f} recipients/s ({'meets' if rate >= TARGET_RATE else 'misses'} the target {TARGET_RATE:,})")
        peak = max(caller_rss, cluster_rss.peak)
        print(f"  peak RSS: caller {caller_rss:.0f} MB, largest cluster process {cluster_rss.peak:.0f} MB "
              f"({'meets' if peak < TARGET_RSS_MB else 'misses'} the target < {TARGET_RSS_MB} MB)")
    finally:
        sandbox.stop()
        pipeline.cleanup(args.database, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
