"""Quiet hours over 100,000 recipients: how long releasing them takes, by kind of list.

    .venv/bin/python bench/quiet_hours_bench.py

The compose preview and ``send_batch`` plan every number (:class:`d7sms.quiet_hours.Plan`) once.
Measured in one run, against the baseline of looking up each number's zones with phonenumbers
alone (parse, then ``time_zones_for_number``), which every kind of list would otherwise pay:

- one country whose zones all keep one time (UK mobiles: four zones, one clock), where the
  country decides and no number is parsed;
- one country of several clocks (+1: New York to Honolulu, and toll-free numbers), at an hour
  when the window is closed in some of them, where each number is parsed;
- the same +1 list at an hour when the window is open in every +1 zone: the country decides again.

Target: under ~2 s for a one-clock country, which is most lists. A list of several clocks at an
hour when they differ costs what phonenumbers costs per number.
"""

import datetime as dt
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

import phonenumbers  # noqa: E402
from phonenumbers.timezone import time_zones_for_number  # noqa: E402

from d7sms import quiet_hours  # noqa: E402

COUNT = 100_000
TARGET_ONE_CLOCK_S = 2.0
UTC = dt.timezone.utc


def uk_mobiles(rng):
    return [f"+447911{n:06d}" for n in rng.sample(range(1_000_000), COUNT)]


def nanp(rng):
    areas = ["212", "415", "808", "907", "312", "416", "604", "709", "800"]
    return [f"+1{rng.choice(areas)}555{n % 10_000:04d}" for n in range(COUNT)]


def timed(work):
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def main():
    rng = random.Random(13)
    window = quiet_hours.parse(("09:00", "20:00"))
    cases = [
        ("UK mobiles, closed", uk_mobiles(rng), dt.datetime(2026, 12, 2, 7, 0, tzinfo=UTC)),
        ("+1 numbers, closed in some zones", nanp(rng), dt.datetime(2026, 12, 2, 13, 0, tzinfo=UTC)),
        ("+1 numbers, open in every zone", nanp(rng), dt.datetime(2026, 12, 2, 23, 0, tzinfo=UTC)),
    ]
    print(f"{COUNT:,} numbers, window {window}")
    worst_one_clock = 0.0
    for name, numbers, now in cases:
        baseline, _ = timed(lambda numbers=numbers: [time_zones_for_number(phonenumbers.parse(n)) for n in numbers])
        took, plan = timed(lambda numbers=numbers, now=now: quiet_hours.plan(numbers, window, now))
        releases = len(plan.releases())
        print(f"  {name:34s} plan {took:6.2f} s   phonenumbers alone {baseline:6.2f} s   "
              f"{plan.at_once:,} at once, {releases} release time(s), {len(plan.never):,} never")
        if name.startswith("UK"):
            worst_one_clock = took
    ok = worst_one_clock < TARGET_ONE_CLOCK_S
    print(f"one-clock country: {worst_one_clock:.2f} s (target < {TARGET_ONE_CLOCK_S} s): {'ok' if ok else 'SLOW'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
