"""Each hand-written statement of d7sms/sql.py against its ORM twin (tests/sql_twins.py).

    .venv/bin/python bench/sql_bench.py                       # SQLite, then PostgreSQL if reachable
    .venv/bin/python bench/sql_bench.py --database sqlite

Both sides run the same work on fresh rows of one database, inside one transaction each, so the
figures compare what Python and the database spend on the statement itself. A statement earns
its place when its twin costs clearly more (``KEEP_RATIO``) on a path that runs per message or
per report. Figures go to stdout and ``bench/results/sql-<database>.json``.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEEP_RATIO = 1.3


def _timed(work, repeat):
    from django.db import transaction

    best = None
    for _ in range(repeat):
        with transaction.atomic():
            setup = work.setup()
            started = time.perf_counter()
            ops = work.run(setup)
            elapsed = time.perf_counter() - started
            transaction.set_rollback(True)
        per_op = elapsed / ops * 1e6
        best = per_op if best is None else min(best, per_op)
    return best


class Case:
    def __init__(self, name, path, setup, raw, orm):
        self.name, self.path, self._setup = name, path, setup
        self.raw, self.orm = raw, orm

    def side(self, fn):
        case = self

        class Side:
            setup = staticmethod(case._setup)

            @staticmethod
            def run(rows):
                return fn(rows)

        return Side


def cases(count):
    import uuid

    from django.utils import timezone

    from d7sms import sql
    from d7sms.models import DeliveryReport, Message, MessageStatus, Sendout, SendoutStatus
    from d7sms.status import ALLOWED_FROM
    from tests import sql_twins

    def accepted_messages():
        sendout = Sendout.objects.create(name="bench", status=SendoutStatus.IN_PROGRESS)
        sql.insert_rows(Message, ("to", "d7_message_id"), ((f"+4479{i:08d}", f"d7-{i}") for i in range(count)),
                        sendout=sendout, status=MessageStatus.ACCEPTED, content="x")
        return list(sendout.messages.values_list("pk", "d7_message_id"))

    def update(fn):
        def run(rows):
            now = timezone.now()
            for pk, d7_id in rows:
                fn(pk, ALLOWED_FROM[MessageStatus.AT_SMSC], {"status": MessageStatus.AT_SMSC, "updated_at": now,
                                                             "accepted_at": now}, {"d7_message_id": d7_id})
            return len(rows)
        return run

    def running(fn):
        def run(rows):
            for pk, _d7 in rows:
                fn(message_id=pk)
            return len(rows)
        return run

    def unbound_messages():
        sendout = Sendout.objects.create(name="bench")
        sql.insert_rows(Message, ("to",), ((f"+4479{i:08d}",) for i in range(count)), sendout=sendout, content="x")
        return list(sendout.messages.values_list("pk", flat=True))

    def bind(fn):
        def run(ids):
            windows = 0
            for start in range(0, len(ids), 50):  # one send window
                fn({pk: f"d7-{pk}" for pk in ids[start : start + 50]})
                windows += 1
            return windows
        return run

    def queued_messages(status=MessageStatus.QUEUED):
        sendout = Sendout.objects.create(name="bench")
        sql.insert_rows(Message, ("to",), ((f"+4479{i:08d}",) for i in range(count)), sendout=sendout, content="x",
                        status=status, dlr_level=0)
        return list(sendout.messages.order_by("pk").values_list("pk", flat=True))

    fields = ("id", "sendout_id", "to", "sender", "content", "hex_content", "coding", "dlr_level", "attempts")

    def claim(fn):
        def run(ids):
            windows = 0
            for start in range(0, len(ids), 4):  # one SEND_WINDOW of 4
                fn(ids[start : start + 4], fields, now=timezone.now(), token=uuid.uuid4(),
                   queued=MessageStatus.QUEUED, sending=MessageStatus.SENDING)
                windows += 1
            return windows
        return run

    def accept(fn):
        def run(ids):
            windows = 0
            for start in range(0, len(ids), 4):
                now = timezone.now()
                values = {"status": MessageStatus.ACCEPTED, "updated_at": now, "accepted_at": now, "submitted_at": now}
                fn(ids[start : start + 4], values, {pk: f"d7-{pk}" for pk in ids[start : start + 4]},
                   sending=MessageStatus.SENDING)
                windows += 1
            return windows
        return run

    def reports():
        message = Message.objects.create(to="+447911000001", status=MessageStatus.ACCEPTED)
        return message

    def insert_one(fn):
        def run(message):
            for i in range(count):
                fn(DeliveryReport(message=message, d7_message_id=f"d7-{i}", level=2, message_status="DELIVRD",
                                  params={"id": f"d7-{i}", "level": "2"}, method="POST", applied_at=timezone.now()))
            return count
        return run

    def sendout():
        return Sendout.objects.create(name="bench")

    def insert_many(fn):
        def run(target):
            n = count * 10
            fn(Message, ("to",), ((f"+4479{i:08d}",) for i in range(n)), sendout=target, status=MessageStatus.QUEUED,
               content="Sale today", dlr_level=3, enqueued_at=timezone.now())
            return n
        return run

    return [
        Case("update_message_if", "every DLR", accepted_messages, update(sql.update_message_if),
             update(sql_twins.update_message_if)),
        Case("sendout_running", "every final DLR", accepted_messages, running(sql.sendout_running),
             running(sql_twins.sendout_running)),
        Case("insert_row", "every DLR", reports, insert_one(sql.insert_row), insert_one(sql_twins.insert_row)),
        Case("bind_d7_ids (per 50)", "every /secure/send window", unbound_messages, bind(sql.bind_d7_ids),
             bind(sql_twins.bind_d7_ids)),
        Case("claim_messages (per 4)", "every /secure/send window", queued_messages, claim(sql.claim_messages),
             claim(sql_twins.claim_messages)),
        Case("accept_sent (per 4)", "every /secure/send window", lambda: queued_messages(MessageStatus.SENDING),
             accept(sql.accept_sent), accept(sql_twins.accept_sent)),
        Case("insert_rows", "every recipient of send_batch", sendout, insert_many(sql.insert_rows),
             insert_many(sql_twins.insert_rows)),
    ]


def measure(database, count, repeat):
    from pipeline import fresh_database

    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["D7SMS_TEST_DATABASE"] = database
    fresh_database(database, "d7sms_sql_bench")
    import django

    django.setup()
    from django.db import connections

    print(f"\nsql_bench: {database}, best of {repeat}, microseconds per operation")
    print(f"  {'statement':24} {'hand-written':>12} {'ORM twin':>10} {'ratio':>7}  verdict")
    results = {}
    for case in cases(count):
        raw = _timed(case.side(case.raw), repeat)
        orm = _timed(case.side(case.orm), repeat)
        ratio = orm / raw
        verdict = "keep" if ratio >= KEEP_RATIO else "drop: the ORM is as fast"
        results[case.name] = {"raw_us": round(raw, 1), "orm_us": round(orm, 1), "ratio": round(ratio, 2)}
        print(f"  {case.name:24} {raw:12.1f} {orm:10.1f} {ratio:7.2f}  {verdict} ({case.path})")
    connections.close_all()
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"sql-{database}.json").write_text(json.dumps(results, indent=2))
    return results


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--count", type=int, default=2000, help="operations per run (default 2000)")
    parser.add_argument("--repeat", type=int, default=3)
    args, _unknown = parser.parse_known_args(argv)
    databases = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    for database in databases:
        if database == "postgres" and not _reachable(5432):
            print("\nsql_bench: PostgreSQL is not reachable on 127.0.0.1:5432; skipped.")
            continue
        # One process per database: Django is configured once per process.
        if len(databases) > 1:
            code = subprocess.call([sys.executable, __file__, "--database", database, "--count", str(args.count),
                                    "--repeat", str(args.repeat)])
            if code:
                return code
        else:
            measure(database, args.count, args.repeat)
    return 0


def _reachable(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
