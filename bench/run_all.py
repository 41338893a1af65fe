"""`make bench`: every hot path measured against its baseline in the same run.

Each benchmark prints its own figures and ratios; this runs them one after another and
stops at none of them failing to reach a target (the figures are the point), but exits
non-zero if one could not run at all.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    "sandbox_bench.py", "send_bench.py", "batch_bench.py", "personalised_bench.py", "webhook_bench.py", "sql_bench.py",
    "quiet_hours_bench.py",
    "log_bench.py",
]


def main(args):
    broken = []
    for name in BENCHES:
        print(f"\n##### {name}", flush=True)
        if subprocess.call([sys.executable, str(HERE / name), *args], cwd=HERE.parent) != 0:
            broken.append(name)
    if broken:
        print(f"\nCould not run: {', '.join(broken)}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
