"""How fast the DLR receiver takes reports, against a bare view that only stores them.

    .venv/bin/python bench/webhook_bench.py                 # 20 s per side, 32 connections
    .venv/bin/python bench/webhook_bench.py --seconds 5     # a quick run

Creates a PostgreSQL database (``d7sms_bench`` on 127.0.0.1:5432 as postgres), fills it with
sendouts of accepted messages, and serves both the d7sms DLR receiver and the bare baseline
(``bench/bare_app.py``) from one gunicorn (sync workers, persistent connections). ``wrk`` (or
``bench/loadgen.py`` where wrk is missing) then POSTs realistic level-1 and level-2 reports for
existing messages: first to the baseline, then to the receiver, each after a short warm-up.
Afterwards every report the receiver answered must be applied. The database is dropped at
the end (``--keep`` keeps it). Figures go to stdout and ``bench/results/webhook.json``.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 0.6
BLOCK = 64  # level 1 for this many messages, then their level 2: the two reports arrive apart


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per side (default 20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each side")
    parser.add_argument(
        "--rounds", type=int, default=4,
        help="alternate the sides in this many slices, so that a change in the machine's load hits both (default 4)",
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: 2 per core)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--database", default="d7sms_bench")
    parser.add_argument(
        "--binding", choices=["server", "client"], default="server",
        help="psycopg parameter binding: server (prepared statements, recommended) or client (Django's default)",
    )
    parser.add_argument("--python-load", action="store_true", help="use the Python load generator, not wrk")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args, _unknown = parser.parse_known_args(argv)  # run_all.py passes every bench the same args
    return args


def _admin(sql):
    import psycopg

    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(sql)


def create_database(name):
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{name}"')


def setup_django(database, binding="server"):
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.webhook_settings"
    os.environ["D7SMS_BENCH_DB"] = database
    os.environ["D7SMS_BENCH_BINDING"] = binding
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_messages(count, per_batch=1000):
    """Sendouts of ``count`` accepted messages with D7 ids; returns [(pk, d7 id)] in order."""
    from django.utils import timezone

    from d7sms.models import Sendout, Message

    now, made = timezone.now(), []
    for start in range(0, count, per_batch):
        sendout = Sendout.objects.create(name=f"bench {start}", content="Hello", status="in_progress", submitted_at=now)
        rows = Message.objects.bulk_create(
            Message(
                sendout=sendout,
                to=f"+4477{start + i:08d}",
                content="Your code is 123456",
                status="accepted",
                d7_message_id=str(uuid.uuid4()),
                submitted_at=now,
                accepted_at=now,
            )
            for i in range(min(per_batch, count - start))
        )
        made += [(m.pk, m.d7_message_id) for m in rows]
    return made


def report_lines(messages, prefix):
    """Lines "path<TAB>form" of a level-1 then a level-2 report for each of ``messages``."""
    from d7sms.webhook_urls import make_token

    stamp = time.strftime("%y%m%d%H%M", time.gmtime())
    lines = []
    for block in range(0, len(messages), BLOCK):
        chunk = messages[block : block + BLOCK]
        for level in (1, 2):
            for pk, d7_id in chunk:
                path = f"{prefix}/dlr/{pk}/{make_token('dlr', pk)}/"
                if level == 1:
                    form = {"id": d7_id, "level": "1", "message_status": "ESME_ROK", "connector": "smpp-01"}
                else:
                    form = {
                        "id": d7_id, "level": "2", "message_status": "DELIVRD", "id_smsc": f"{pk:x}",
                        "sub": "001", "dlvrd": "001", "subdate": stamp, "donedate": stamp, "err": "000",
                        "text": "Your code is 123456", "connector": "smpp-01",
                    }
                lines.append((path, urlencode(form)))
    return lines


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port, workers, database):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.webhook_settings", "D7SMS_BENCH_DB": database}
    # D7SMS_BENCH_BINDING is inherited from setup_django().
    cmd = [
        sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class", "sync",
        "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--pythonpath", str(ROOT),
        "django.core.wsgi:get_wsgi_application()",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/d7sms/schema/", timeout=5).read()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("gunicorn exited before it served a request") from None
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("gunicorn did not answer within 30 s")


def run_load(args, port, lines, seconds, workdir, name):
    if args.python_load:
        from bench import loadgen

        return loadgen.run(port, lines, seconds, args.connections)
    path = Path(workdir) / f"{name}.txt"
    path.write_text("".join(f"{p}\t{b}\n" for p, b in lines))
    cmd = [
        "wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{max(1, round(seconds))}s",
        "--timeout", "10s", "-s", str(ROOT / "bench" / "webhook_dlr.lua"),
        f"http://127.0.0.1:{port}", "--", str(path), str(args.threads),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        tag, _, payload = line.partition(" ")
        if tag in ("WRK_RESULT", "WRK_HISTOGRAM"):
            found[tag] = json.loads(payload)
    return {**found["WRK_RESULT"], "histogram": found["WRK_HISTOGRAM"]}


def merge(slices):
    """One result from the slices of one side: totals, and percentiles of all their latencies."""
    histogram = {}
    for result in slices:
        for value, count in result["histogram"]:
            histogram[value] = histogram.get(value, 0) + count
    points = sorted(histogram.items())
    total = sum(count for _value, count in points)

    def percentile(q):
        seen = 0
        for value, count in points:
            seen += count
            if seen >= q * total:
                return value
        return 0

    keys = ("requests", "duration_us", "non2xx", "not_acked", "socket_errors")
    merged = {key: sum(r[key] for r in slices) for key in keys}
    merged.update(p50_us=percentile(0.50), p99_us=percentile(0.99))
    merged["mean_us"] = sum(v * c for v, c in points) / total if total else 0.0
    return merged


def summarise(result):
    seconds = result["duration_us"] / 1e6
    return {
        **result,
        "rps": result["requests"] / seconds if seconds else 0.0,
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
    }


def verify(first_message, last_message):
    """Check every report the receiver stored (for messages in that pk range) was applied."""
    from django.db.models import Q

    from d7sms.models import DeliveryReport, Message

    rows = DeliveryReport.objects.filter(message_id__gte=first_message, message_id__lte=last_message)
    delivered_ids = rows.filter(level=2).values("message_id")
    reached_smsc_ids = rows.filter(level=1).values("message_id")
    return {
        "stored": rows.count(),
        "unapplied": rows.filter(applied_at__isnull=True).count(),
        "problems": rows.exclude(problem__in=["", "duplicate"]).count(),
        "duplicates": rows.filter(problem="duplicate").count(),
        "level2_not_delivered": Message.objects.filter(pk__in=delivered_ids).exclude(status="delivered").count(),
        "level1_not_advanced": Message.objects.filter(pk__in=reached_smsc_ids)
        .exclude(Q(status="at_smsc") | Q(status="delivered"))
        .count(),
    }


def main(argv):
    args = parse_args(argv)
    if not args.python_load and shutil.which("wrk") is None:
        print("wrk not found (apt-get install wrk): using the Python load generator")
        args.python_load = True
    workers = args.workers or 2 * (os.cpu_count() or 1)
    create_database(args.database)
    proc = None
    try:
        setup_django(args.database, args.binding)
        from django.db import connections

        # Each slice reports on messages of its own, enough that none is reported twice at
        # 3,000 req/s: a repeat would cost the receiver less than a first report does.
        rounds = max(1, args.rounds)
        slice_seconds = args.seconds / rounds
        per_slice = int(max(3_000, slice_seconds * 1_500))
        sides = {"bare": "/bare", "d7sms": "/d7sms"}
        plan, warm = {}, {}
        for name in sides:  # one side after the other, so the receiver's messages are one pk range
            plan[name] = [make_messages(per_slice) for _ in range(rounds)]
            warm[name] = make_messages(int(max(1_000, args.warmup * 1_500)))
        receiver_ids = [pk for chunk in [*plan["d7sms"], warm["d7sms"]] for pk, _id in chunk]
        connections.close_all()

        port = free_port()
        proc = start_gunicorn(port, workers, args.database)
        slices = {name: [] for name in sides}
        with tempfile.TemporaryDirectory() as workdir:
            if args.warmup:
                for name, prefix in sides.items():
                    run_load(args, port, report_lines(warm[name], prefix), args.warmup, workdir, f"{name}-warm")
            for n in range(rounds):
                order = list(sides.items()) if n % 2 == 0 else list(sides.items())[::-1]
                for name, prefix in order:
                    lines = report_lines(plan[name][n], prefix)
                    slices[name].append(run_load(args, port, lines, slice_seconds, workdir, f"{name}-{n}"))
        proc.terminate()
        proc.wait(30)
        proc = None
        for n in range(rounds):
            print(f"slice {n + 1}: " + ", ".join(
                f"{name} {summarise(slices[name][n])['rps']:.0f} req/s" for name in sides
            ), flush=True)
        results = {name: summarise(merge(parts)) for name, parts in slices.items()}
        check = verify(min(receiver_ids), max(receiver_ids))
        connections.close_all()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        if not args.keep:
            from django.db import connections as conns

            conns.close_all()
            _admin(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')

    bare, real = results["bare"], results["d7sms"]
    ratio = real["rps"] / bare["rps"] if bare["rps"] else 0.0
    print(f"gunicorn {workers} sync workers, PostgreSQL ({args.binding}-side binding, persistent connections), "
          f"{args.connections} connections, {args.seconds:g} s per side "
          f"in {args.rounds} alternating slices, load by {'Python' if args.python_load else 'wrk'}")
    print(f"{'':24}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}{'not ACK':>10}{'sock err':>10}")
    for label, r in (("bare view (INSERT only)", bare), ("d7sms DLR receiver", real)):
        print(f"{label:24}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
              f"{r['non2xx']:>10}{r['not_acked']:>10}{r['socket_errors']:>10}")
    print(f"ratio d7sms/bare: {ratio:.2f} (target >= {TARGET_RATIO})")
    print(f"receiver rows: {check['stored']} stored, {check['unapplied']} unapplied, {check['duplicates']} repeats, "
          f"{check['problems']} with problems; messages in the wrong state: "
          f"{check['level2_not_delivered'] + check['level1_not_advanced']}")
    ok = (
        ratio >= TARGET_RATIO
        and real["non2xx"] == 0 and real["not_acked"] == 0
        and check["unapplied"] == 0 and check["problems"] == 0
        and check["level2_not_delivered"] == 0 and check["level1_not_advanced"] == 0
        and check["stored"] >= real["requests"]
    )
    print("PASS" if ok else "MISSED TARGET")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "webhook.json").write_text(json.dumps(
        {"bare": bare, "d7sms": real, "ratio": ratio, "verify": check, "workers": workers, "binding": args.binding,
         "connections": args.connections, "seconds": args.seconds, "ok": ok}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
