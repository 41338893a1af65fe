"""Run one scenario on one database in this process and write its rows as JSON.

    python -m chaos.one --scenario kill --database sqlite --seed 7 --result /tmp/rows.json

:mod:`chaos.run` starts one such process per scenario and configuration: Django is set up once
per process, on one database. The random choices (kill moments) come from ``--seed``, the
scenario and the database; what the machine's timing does with them is not repeatable.
"""

import argparse
import json
import random
import sys
from pathlib import Path

from chaos import kills, races, timeouts
from chaos.stage import Stage

SCENARIOS = {"kill": kills, "504": timeouts, "race": races}
DEFAULT_SANDBOX_OPTIONS = ("--dlr-retries", "0")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), required=True)
    parser.add_argument("--database", choices=("sqlite", "postgres"), required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args(argv)

    module = SCENARIOS[args.scenario]
    random.seed(f"{args.seed}:{args.scenario}:{args.database}")
    rng = random.Random(f"{args.seed}:{args.scenario}:{args.database}:moments")
    stage = Stage(args.database, module.SETTINGS,
                  sandbox_options=getattr(module, "SANDBOX_OPTIONS", DEFAULT_SANDBOX_OPTIONS))
    try:
        rows = module.run(stage, rng, quick=args.quick, kills=args.kills)
    finally:
        stage.close()
    args.result.write_text(json.dumps([row.as_dict() for row in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
