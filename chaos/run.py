"""`make chaos`: send through the sandbox while things go wrong, count what it received.

    .venv/bin/python -m chaos.run [--quick] [--only kill|504|race] [--seed N] [--kills N]

Scenarios (see their modules): ``kill`` (SIGKILL of the cluster, :mod:`chaos.kills`), ``504``
(a gateway that times out after D7 took the message, :mod:`chaos.timeouts`) and ``race`` (8
callers of resend, retry_failed and the admin's confirm at once, and one task run by 8 workers
on a database without SKIP LOCKED, :mod:`chaos.races`). Each runs
on SQLite with django-q2's ORM broker and on PostgreSQL with Redis; the second is skipped with
one line when either is not reachable on 127.0.0.1. Loopback only; about a minute and a half
here. ``--quick`` sends smaller sendouts and kills 5 times instead of 6: less CPU and memory,
but hardly less time, which goes into starting clusters and migrating fresh databases.

Prints one table (see :mod:`chaos.ledger` for what each column counts), the ``unknown``
messages each kill left, and what else each scenario saw. Exit status: 0 when no number was
received twice and none was lost, 1 otherwise, 2 when a scenario could not run.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chaos.ledger import Row, render
from scripts.run_tests import reachable

ROOT = Path(__file__).resolve().parent.parent
ORDER = ("kill", "504", "race")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help="repeat the random choices of an earlier run")
    parser.add_argument("--quick", action="store_true", help="smaller sendouts (CI-like runs)")
    parser.add_argument("--only", choices=ORDER, action="append", help="run only this scenario (repeatable)")
    parser.add_argument("--kills", type=int, help="kills per kill scenario (at least 5; default 6, --quick 5)")
    args = parser.parse_args(argv)
    if args.kills is None:
        args.kills = 5 if args.quick else 6
    if args.kills < 5:
        parser.error("--kills must be at least 5")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    print(f"chaos: seed {seed} (repeat with --seed {seed}){' --quick' if args.quick else ''}", flush=True)

    databases = ["sqlite"]
    missing = [name for name, port in (("PostgreSQL", 5432), ("Redis", 6379)) if not reachable("127.0.0.1", port)]
    if missing:
        print(f"SKIPPED: PostgreSQL + Redis ({' and '.join(missing)} not reachable on 127.0.0.1).", flush=True)
    else:
        databases.append("postgres")

    rows, broken = [], []
    for scenario in [s for s in ORDER if not args.only or s in args.only]:
        for database in databases:
            got = _run_one(scenario, database, seed, args)
            if got is None:
                broken.append(f"{scenario} on {database}")
            else:
                rows.extend(got)
    _report(rows, broken)
    if broken:
        return 2
    return 0 if all(row.ok for row in rows) else 1


def _run_one(scenario, database, seed, args):
    """Run one scenario in its own process; its rows, or None when it could not run."""
    started = time.monotonic()
    print(f"  {scenario} on {database} ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="d7sms-chaos-") as tmp:
        result = Path(tmp) / "rows.json"
        command = [sys.executable, "-m", "chaos.one", "--scenario", scenario, "--database", database,
                   "--seed", str(seed), "--kills", str(args.kills), "--result", str(result)]
        if args.quick:
            command.append("--quick")
        child = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            code = child.wait()
        finally:
            if child.poll() is None:  # we were interrupted: let it clean up
                child.send_signal(signal.SIGTERM)
                child.wait(60)
        if code != 0 or not result.exists():
            print(f"  {scenario} on {database}: FAILED TO RUN (exit {code})", flush=True)
            return None
        rows = [Row(**data) for data in json.loads(result.read_text())]
    print(f"  {scenario} on {database}: {time.monotonic() - started:.0f} s", flush=True)
    return rows


def _report(rows, broken):
    print()
    print(render(rows))
    kills = [row for row in rows if row.unknown_per_kill]
    if kills:
        print("\nunknown per kill (of which the sandbox had received):")
        for row in kills:
            figures = ", ".join(f"{n} ({got})" for n, got in row.unknown_per_kill)
            print(f"  {row.scenario}: {figures}")
    noted = [row for row in rows if row.notes]
    if noted:
        print("\nnotes:")
        for row in noted:
            print(f"  {row.scenario}: {'; '.join(row.notes)}")
    bad = [row.scenario for row in rows if not row.ok]
    print()
    if broken:
        print(f"COULD NOT RUN: {', '.join(broken)}")
    print(f"FAIL: sent twice or lost in {len(bad)} of {len(rows)} scenarios." if bad
          else f"OK: nothing sent twice, nothing lost ({len(rows)} scenarios).")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.exit(main())
